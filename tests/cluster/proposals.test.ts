import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Proposals, type ProposalSubmitter } from "../../src/cluster/proposals.ts";
import { HamokClosedError, HamokNoLeaderError, HamokOutcomeUnknownError } from "../../src/errors.ts";
import type { RaftNode } from "../../src/raft/raft_node.ts";
import type { ProposeResult } from "../../src/raft/types.ts";

/** A driver whose node answers every proposal with `answer` and records the request ids. */
function fakeDriver(answer: () => ProposeResult): { driver: ProposalSubmitter; proposed: string[] } {
  const proposed: string[] = [];
  const node = {
    propose(_data: Uint8Array, requestId?: string): ProposeResult {
      proposed.push(requestId ?? "");
      return answer();
    },
  } as unknown as RaftNode;
  return { driver: { run: (fn) => fn(node) }, proposed };
}

const appended = (): ProposeResult => ({ status: "appended", index: 1, term: 1 });
const forwarded = (): ProposeResult => ({ status: "forwarded", leaderId: "b" });
const dropped = (): ProposeResult => ({ status: "dropped", reason: "no-leader" });
const data = new Uint8Array([1]);

describe("Proposals", () => {
  it("submits at once when a leader is known and resolves with the applied result", async () => {
    const { driver, proposed } = fakeDriver(appended);
    const proposals = new Proposals(() => driver, 100);
    const result = proposals.add("r1", data, 5000);
    assert.deepEqual(proposed, ["r1"]);
    assert.equal(proposals.has("r1"), true);
    proposals.applied("r1", "old-value");
    assert.equal(await result, "old-value");
    assert.equal(proposals.size, 0);
    proposals.applied("r1", "again"); // no longer pending: ignored
  });

  it("waits without a leader and submits everything when one becomes known", async () => {
    const { driver, proposed } = fakeDriver(forwarded);
    let leaderKnown = false;
    const proposals = new Proposals(() => (leaderKnown ? driver : undefined), 100);
    const a = proposals.add("a", data, 5000);
    const b = proposals.add("b", data, 5000);
    assert.deepEqual(proposed, []);
    leaderKnown = true;
    proposals.resubmitAll();
    assert.deepEqual(proposed, ["a", "b"]);
    proposals.applied("a", 1);
    proposals.applied("b", 2);
    assert.deepEqual(await Promise.all([a, b]), [1, 2]);
  });

  it("times out with HamokNoLeaderError when no leader ever took the proposal", async () => {
    const { driver } = fakeDriver(dropped);
    const proposals = new Proposals(() => driver, 100);
    await assert.rejects(proposals.add("r1", data, 5), (error: unknown) => {
      assert.ok(error instanceof HamokNoLeaderError);
      assert.match(error.message, /no leader accepted request r1 within 5 ms/);
      return true;
    });
    assert.equal(proposals.size, 0);
  });

  it("times out with HamokOutcomeUnknownError once a leader may have taken it", async () => {
    const { driver } = fakeDriver(forwarded);
    const proposals = new Proposals(() => driver, 100);
    await assert.rejects(proposals.add("r1", data, 5), (error: unknown) => {
      assert.ok(error instanceof HamokOutcomeUnknownError);
      assert.match(error.message, /may still be applied/);
      return true;
    });
  });

  it("retries only what is not in this peer's own log, and only after retryMs", async () => {
    let answer = forwarded;
    const { driver, proposed } = fakeDriver(() => answer());
    const proposals = new Proposals(() => driver, 100);
    const forwardedOne = proposals.add("fwd", data, 5000);
    answer = appended;
    const ownOne = proposals.add("own", data, 5000);
    assert.deepEqual(proposed, ["fwd", "own"]);
    const now = Date.now();
    proposals.retryLost(now); // too early
    assert.deepEqual(proposed, ["fwd", "own"]);
    proposals.retryLost(now + 1000);
    assert.deepEqual(proposed, ["fwd", "own", "fwd"]);
    proposals.close();
    await assert.rejects(forwardedOne, HamokClosedError);
    await assert.rejects(ownOne, HamokClosedError);
  });

  it("rejects everything pending with HamokClosedError on close", async () => {
    const proposals = new Proposals(() => undefined, 100);
    const a = proposals.add("a", data, 5000);
    proposals.close();
    await assert.rejects(a, (error: unknown) => {
      assert.ok(error instanceof HamokClosedError);
      assert.match(error.message, /while a proposal was pending/);
      assert.equal(error.requestId, "a"); // retryable by request id, like an outcome-unknown write
      return true;
    });
    assert.equal(proposals.size, 0);
  });
});
