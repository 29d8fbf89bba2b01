import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AppendResponseMessage, Membership } from "../../src/raft/types.ts";
import { from, ofType, RaftHarness, to } from "../_helpers/raft_harness.ts";

const voters = (m: Membership) => [...m.voters].sort();

describe("membership changes", () => {
  it("a joining member gets the snapshot, catches up as a learner, and is promoted automatically", () => {
    const h = RaftHarness.bootstrap(["a"]);
    h.elect("a");
    h.propose("a", "before");
    h.drain();
    const j = h.addJoiner("j");
    assert.deepEqual(j.membership, { voters: [], learners: [], removed: [] });
    const result = h.node("a").proposeMembership({ type: "add-learner", memberId: "j" });
    assert.deepEqual(result, { status: "appended", index: 3, term: 1 });
    assert.deepEqual(h.node("a").membership.learners, ["j"], "effective when appended");
    h.deliverAll(to("j"));
    const [answer] = h.take(from("j")) as AppendResponseMessage[];
    assert.deepEqual([answer.reject, answer.rejectHint], [true, -1], "no log base: send me a snapshot");
    h.deliver(answer);
    const [chunk] = h.take(to("j"));
    assert.equal(chunk.type, "snapshot");
    h.deliver(chunk);
    assert.deepEqual(h.record("j").restored.map((s) => s.meta.index), [0]);
    h.stabilize();
    const a = h.node("a");
    assert.deepEqual(voters(a.membership), ["a", "j"]);
    assert.deepEqual(voters(j.membership), ["a", "j"]);
    assert.deepEqual(a.membership.learners, []);
    const changes = h.record("a").applied.filter((e) => e.type === "config").map((e) => e.change);
    assert.deepEqual(changes, [{ type: "add-learner", memberId: "j" }, { type: "promote", memberId: "j" }]);
    assert.deepEqual(h.record("j").state, ["before"]);
    assert.deepEqual(h.record("j").memberships.map(voters).at(-1), ["a", "j"]);
    // j is a voter now: with two voters, a commits only with j.
    h.isolate("j");
    h.propose("a", "needs-j");
    h.stabilize();
    assert.equal(a.commitIndex, a.lastIndex - 1);
    h.heal();
    h.tickAll(1);
    assert.equal(a.commitIndex, a.lastIndex);
  });

  it("a learner receives the log but neither votes nor campaigns", () => {
    const h = RaftHarness.bootstrap(["a"], { autoPromoteLearners: false });
    h.elect("a");
    h.addJoiner("l", { autoPromoteLearners: false });
    h.node("a").proposeMembership({ type: "add-learner", memberId: "l" });
    h.stabilize();
    h.propose("a", "x");
    h.stabilize();
    h.tickAll(1);
    const l = h.node("l");
    assert.deepEqual(h.record("l").state, ["x"]);
    assert.deepEqual(l.membership.learners, ["l"], "not promoted when autoPromoteLearners is off");
    h.isolate("l");
    h.propose("a", "y");
    h.drain();
    assert.equal(h.node("a").commitIndex, h.node("a").lastIndex, "commits without the learner");
    for (let i = 0; i < 50; i++) l.tick();
    assert.equal(l.role, "follower");
    h.drain("l");
    assert.equal(h.outbox.filter(from("l")).length, 0);
  });

  it("one change at a time, and only after the leader committed an entry of its term", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.node("a").campaign();
    h.deliverAll(ofType("pre-vote"));
    h.deliverAll(ofType("pre-vote-response"));
    h.deliverAll(ofType("vote"));
    h.deliverAll(ofType("vote-response"));
    const a = h.node("a");
    assert.equal(a.role, "leader");
    assert.deepEqual(a.proposeMembership({ type: "add-learner", memberId: "x" }), {
      status: "dropped",
      reason: "not-ready",
    });
    h.stabilize();
    assert.equal(a.proposeMembership({ type: "add-learner", memberId: "x" }).status, "appended");
    assert.deepEqual(a.proposeMembership({ type: "add-learner", memberId: "y" }), {
      status: "dropped",
      reason: "config-pending",
    });
    h.stabilize();
    assert.equal(a.proposeMembership({ type: "add-learner", memberId: "y" }).status, "appended");
  });

  it("refuses changes that do not fit, and changes on followers", () => {
    const h = RaftHarness.bootstrap(["a", "b"]);
    h.elect("a");
    const a = h.node("a");
    const drop = (reason: string) => ({ status: "dropped", reason });
    assert.deepEqual(
      h.node("b").proposeMembership({ type: "add-learner", memberId: "x" }),
      drop("not-leader"),
    );
    assert.deepEqual(a.proposeMembership({ type: "add-learner", memberId: "b" }), drop("already-member"));
    assert.deepEqual(a.proposeMembership({ type: "promote", memberId: "b" }), drop("not-learner"));
    assert.deepEqual(a.proposeMembership({ type: "remove", memberId: "q" }), drop("not-member"));
    assert.equal(a.proposeMembership({ type: "remove", memberId: "b" }).status, "appended");
    h.stabilize();
    assert.deepEqual(a.membership, { voters: ["a"], learners: [], removed: ["b"] });
    assert.deepEqual(a.proposeMembership({ type: "add-learner", memberId: "b" }), drop("removed"));
    assert.deepEqual(a.proposeMembership({ type: "remove", memberId: "a" }), drop("last-voter"));
  });

  it("a change takes effect when appended: removing a dead voter commits with the new majority", () => {
    const h = RaftHarness.bootstrap(["a", "b"]);
    h.elect("a");
    h.crash("b");
    const a = h.node("a");
    const result = a.proposeMembership({ type: "remove", memberId: "b" });
    assert.equal(result.status, "appended");
    h.drain();
    assert.equal(a.commitIndex, a.lastIndex, "the removal itself commits under {a}");
    h.propose("a", "alone");
    h.drain();
    assert.deepEqual(h.record("a").state, ["alone"]);
  });

  it("a removed follower stops receiving the log and never campaigns", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.node("a").proposeMembership({ type: "remove", memberId: "c" });
    h.stabilize();
    h.tickAll(1);
    const c = h.node("c");
    assert.deepEqual(c.membership.removed, ["c"]);
    assert.equal(c.promotable, false);
    assert.equal(h.node("a").progress.has("c"), false);
    const sentBefore = h.sent.filter(to("c")).length;
    h.propose("a", "x");
    h.stabilize();
    h.tickAll(30);
    assert.equal(h.sent.filter(to("c")).length, sentBefore, "nothing more goes to c");
    assert.equal(
      h.sent.filter((m) => m.from === "c" && (m.type === "pre-vote" || m.type === "vote")).length,
      0,
    );
    assert.equal(h.node("a").role, "leader");
  });

  it("a leader that removes itself leads until the removal commits, then steps down and hands over", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    const a = h.node("a");
    assert.equal(a.proposeMembership({ type: "remove", memberId: "a" }).status, "appended");
    assert.equal(a.role, "leader");
    assert.equal(a.promotable, false);
    h.deliverAll(ofType("append"));
    assert.equal(a.role, "leader", "not committed yet");
    h.deliverAll(ofType("append-response"));
    assert.equal(a.role, "follower");
    const handover = h.take();
    const timeoutNow = handover.filter(ofType("timeout-now"));
    assert.equal(timeoutNow.length, 1);
    const commitNews = handover.filter(ofType("append"));
    assert.deepEqual(commitNews.map((m) => m.type === "append" && m.commit), [2, 2]);
    for (const m of handover) h.deliver(m);
    h.stabilize();
    const successor = timeoutNow[0].to;
    assert.equal(h.node(successor).role, "leader");
    assert.deepEqual(voters(h.node(successor).membership), ["b", "c"]);
    for (let i = 0; i < 50; i++) a.tick();
    assert.equal(a.role, "follower");
    h.propose(successor, "after");
    h.stabilize();
    h.tickAll(1);
    assert.deepEqual(h.record("b").state, ["after"]);
    assert.deepEqual(h.record("c").state, ["after"]);
  });

  it("an uncommitted config entry overwritten by a new leader reverts the membership", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.isolate("a");
    assert.equal(h.node("a").proposeMembership({ type: "add-learner", memberId: "x" }).status, "appended");
    h.drain();
    assert.deepEqual(h.node("a").membership.learners, ["x"]);
    h.stabilize();
    for (let i = 0; i < 25; i++) {
      h.tick("b");
      h.tick("c");
      h.stabilize();
    }
    const leader = h.leaders().find((id) => id !== "a") as string;
    h.heal();
    h.tickAll(3);
    assert.equal(h.node("a").leaderId, leader);
    assert.deepEqual(h.node("a").membership.learners, []);
    assert.deepEqual(h.record("a").memberships.at(-1)?.learners, []);
  });
  it("a voter's uncommitted removal does not stop the others from electing it (peer sim seed 890768)", () => {
    // b, leader in term 2, appends the removal of a, which never commits; a and c go on in a later
    // term without it. Once a is no longer leader and c is gone, a needs b's vote, and b's own
    // configuration (its uncommitted entry) lists a as removed and c as the only other voter.
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("b");
    h.isolate("b");
    assert.equal(h.node("b").proposeMembership({ type: "remove", memberId: "a" }).status, "appended");
    h.drain("b");
    for (let i = 0; i < 40 && h.node("b").role === "leader"; i++) h.tick("b");
    assert.equal(h.node("b").role, "follower", "check quorum: b steps down alone");
    assert.deepEqual(h.node("b").membership.removed, ["a"], "effective on b when appended");
    // a and c wait out b's lease; a campaigns first (c's timer is behind) and wins with c's vote
    for (let i = 0; i < 100 && h.node("a").role !== "leader"; i++) {
      h.tick("a");
      if (i % 2 === 0) h.tick("c");
      h.stabilize();
    }
    assert.equal(h.node("a").role, "leader");
    h.propose("a", "after");
    h.stabilize();
    assert.equal(h.node("a").commitIndex, h.node("a").lastIndex);
    h.crash("c");
    h.isolate("a");
    for (let i = 0; i < 40 && h.node("a").role === "leader"; i++) h.tick("a");
    assert.notEqual(h.node("a").role, "leader", "check quorum: a steps down without a majority");
    h.heal();
    for (let i = 0; i < 100 && h.leaders().length === 0; i++) h.tickAll(1);
    assert.deepEqual(h.leaders(), ["a"], "b votes for a: its removal of a was never committed");
    h.tickAll(2);
    assert.deepEqual(h.node("b").membership.removed, [], "b's uncommitted removal is overwritten");
    assert.equal(h.node("b").commitIndex, h.node("a").commitIndex);
  });
});
