import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Progress } from "../../src/raft/progress.ts";

const snapshot = {
  meta: { index: 10, term: 2, membership: { voters: ["a"], learners: [], removed: [] } },
  data: new Uint8Array(4),
};

describe("Progress", () => {
  it("probe state sends one append at a time until an answer", () => {
    const pr = new Progress(5, 3);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(7, 3);
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.next, 5, "probing does not advance next");
    pr.onHeartbeatResponse();
    assert.equal(pr.isPaused(), false, "a heartbeat answer resumes probing");
  });

  it("replicate state pipelines up to the inflight limit and frees on acknowledgement", () => {
    const pr = new Progress(1, 2);
    pr.maybeUpdate(0);
    pr.becomeReplicate();
    pr.sentEntries(3, 3);
    assert.equal(pr.next, 4);
    pr.sentEntries(5, 2);
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.inflight, 2);
    assert.equal(pr.maybeUpdate(3), true);
    assert.equal(pr.inflight, 1);
    assert.equal(pr.isPaused(), false);
    assert.equal(pr.maybeUpdate(2), false, "stale acknowledgement");
    pr.sentEntries(6, 1);
    pr.onHeartbeatResponse();
    assert.equal(pr.inflight, 1, "a full window frees its oldest slot on a heartbeat answer");
  });

  it("empty appends take no window slot", () => {
    const pr = new Progress(1, 1);
    pr.becomeReplicate();
    pr.sentEntries(0, 0);
    assert.equal(pr.isPaused(), false);
  });

  it("decreases next on a rejection and ignores stale rejections", () => {
    const pr = new Progress(11, 4);
    assert.equal(pr.maybeDecrTo(5, 3), false, "not the probe that is out");
    assert.equal(pr.maybeDecrTo(10, 3), true);
    assert.equal(pr.next, 4);
    pr.maybeUpdate(6);
    pr.becomeReplicate();
    pr.sentEntries(9, 3);
    assert.equal(pr.maybeDecrTo(6, 0), false, "at or below match: stale");
    assert.equal(pr.maybeDecrTo(9, 8), true);
    assert.equal(pr.state, "probe");
    assert.equal(pr.next, 9);
    assert.equal(pr.maybeDecrTo(8, 2), true);
    assert.equal(pr.next, 7, "never below match + 1");
  });

  it("snapshot state pauses appends and keeps the transfer", () => {
    const pr = new Progress(3, 4);
    pr.becomeSnapshot(snapshot);
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.transfer?.snapshot, snapshot);
    assert.equal(pr.maybeDecrTo(2, 0), false);
    pr.match = 10;
    pr.becomeReplicate();
    assert.equal(pr.transfer, undefined);
    assert.equal(pr.next, 11);
  });
});
