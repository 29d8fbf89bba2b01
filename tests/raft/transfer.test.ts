import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { VoteMessage } from "../../src/raft/types.ts";
import { cmd, from, ofType, RaftHarness, to } from "../_helpers/raft_harness.ts";

describe("leadership transfer", () => {
  it("to an up-to-date voter: timeout-now at once, a transfer election that ignores the lease", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.tickAll(1);
    const a = h.node("a");
    assert.deepEqual(a.transferLeadership("b"), { status: "transferring", to: "b" });
    const [now] = h.take(ofType("timeout-now"));
    assert.deepEqual([now.from, now.to, now.term], ["a", "b", 1]);
    h.deliver(now);
    const votes = h.take(ofType("vote")) as VoteMessage[];
    assert.equal(h.sent.filter(ofType("pre-vote")).filter(from("b")).length, 0, "no pre-vote");
    assert.deepEqual(votes.map((v) => [v.to, v.term, v.transfer]), [["a", 2, true], ["c", 2, true]]);
    for (const v of votes) h.deliver(v);
    h.stabilize();
    assert.equal(h.node("b").role, "leader");
    assert.equal(a.role, "follower");
    assert.equal(a.leaderId, "b");
    assert.equal(a.transferTarget, undefined);
  });

  it("to a lagging voter: catches it up first, then sends timeout-now", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.disconnect("a", "b");
    h.propose("a", "x");
    h.propose("a", "y");
    h.stabilize();
    h.heal();
    const a = h.node("a");
    a.transferLeadership("b");
    assert.equal(h.take(ofType("timeout-now")).length, 0, "b is behind");
    for (let i = 0; i < 5 && h.node("b").role !== "leader"; i++) {
      h.tick("a");
      h.stabilize();
    }
    assert.equal(h.node("b").role, "leader");
    assert.equal(h.node("b").term, 2);
    h.propose("b", "z");
    h.stabilize();
    h.tickAll(1);
    assert.deepEqual(h.record("c").state, ["x", "y", "z"]);
  });

  it("proposals are refused while transferring, and the transfer is abandoned after an election timeout", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { electionTicks: 10 });
    h.elect("a");
    h.isolate("b");
    const a = h.node("a");
    a.transferLeadership("b");
    assert.deepEqual(a.propose(cmd("x")), { status: "dropped", reason: "transferring" });
    assert.deepEqual(a.proposeMembership({ type: "add-learner", memberId: "z" }), {
      status: "dropped",
      reason: "transferring",
    });
    a.step({ type: "propose", from: "c", to: "a", term: 1, entries: [{ data: cmd("fwd") }] });
    const last = a.lastIndex;
    for (let i = 0; i < 9; i++) {
      h.tick("a");
      h.stabilize();
    }
    assert.equal(a.transferTarget, "b");
    h.tick("a");
    h.stabilize();
    assert.equal(a.transferTarget, undefined);
    assert.equal(a.role, "leader");
    assert.equal(a.lastIndex, last, "the forwarded proposal was dropped");
    assert.equal(a.propose(cmd("x")).status, "appended");
  });

  it("refuses transfers that cannot work", () => {
    const h = RaftHarness.bootstrap(["a", "b"], { autoPromoteLearners: false });
    h.elect("a");
    h.addJoiner("l", { autoPromoteLearners: false });
    h.node("a").proposeMembership({ type: "add-learner", memberId: "l" });
    h.stabilize();
    const a = h.node("a");
    const drop = (reason: string) => ({ status: "dropped", reason });
    assert.deepEqual(h.node("b").transferLeadership("a"), drop("not-leader"));
    assert.deepEqual(a.transferLeadership("a"), drop("already-leader"));
    assert.deepEqual(a.transferLeadership("l"), drop("not-voter"));
    assert.deepEqual(a.transferLeadership("zz"), drop("not-voter"));
    h.isolate("b");
    assert.deepEqual(a.transferLeadership("b"), { status: "transferring", to: "b" });
    assert.deepEqual(a.transferLeadership("b"), { status: "transferring", to: "b" });
    // A learner told to time out does not campaign.
    h.node("l").step({ type: "timeout-now", from: "a", to: "l", term: 1 });
    assert.equal(h.node("l").role, "follower");
    assert.equal(h.take(from("l")).length, 0);
  });

  it("a transfer to another target replaces the running one", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.isolate("b");
    const a = h.node("a");
    a.transferLeadership("b");
    assert.equal(a.transferTarget, "b");
    assert.deepEqual(a.transferLeadership("c"), { status: "transferring", to: "c" });
    assert.equal(a.transferTarget, "c");
    h.deliverAll(to("c"));
    assert.equal(h.node("c").role, "candidate");
  });
});
