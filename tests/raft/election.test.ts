import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { RaftMessage, VoteMessage, VoteResponseMessage } from "../../src/raft/types.ts";
import { bootstrapSnapshot, ofType, RaftHarness, to } from "../_helpers/raft_harness.ts";

const summary = (ms: RaftMessage[]) => ms.map((m) => `${m.type} ${m.from}>${m.to} t${m.term}`);

describe("elections", () => {
  it("a single-voter cluster elects itself after its timeout and commits alone, without messages", () => {
    const h = RaftHarness.bootstrap(["a"]);
    h.tick("a", 9);
    assert.equal(h.node("a").role, "follower");
    h.tick("a", 11);
    const a = h.node("a");
    assert.equal(a.role, "leader");
    assert.equal(a.term, 1);
    assert.equal(a.commitIndex, 1, "the noop of term 1 commits at once");
    h.propose("a", "x");
    h.drain();
    assert.deepEqual(h.record("a").state, ["x"]);
    assert.equal(a.commitIndex, 2);
    assert.equal(h.sent.length, 0);
    assert.deepEqual(h.record("a").softStates.at(-1), { role: "leader", leaderId: "a", term: 1 });
  });

  it("the election timeout is random in [electionTicks, 2*electionTicks)", () => {
    for (const [random, fires] of [[0, 10], [0.999, 19], [0.5, 15]] as const) {
      const node = new RaftNode({ id: "a", random: () => random, electionTicks: 10 }, {
        hardState: { term: 0, vote: undefined, commit: 0 },
        snapshot: bootstrapSnapshot(["a", "b", "c"]),
        entries: [],
      });
      for (let i = 1; i < fires; i++) node.tick();
      assert.equal(node.role, "follower", `not yet after ${fires - 1} ticks (random ${random})`);
      node.tick();
      assert.equal(node.role, "pre-candidate", `after ${fires} ticks (random ${random})`);
    }
  });

  it("pre-vote, then vote, then a noop entry of the new term that commits by majority", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.node("a").campaign();
    const preVotes = h.take();
    assert.deepEqual(summary(preVotes), ["pre-vote a>b t1", "pre-vote a>c t1"]);
    assert.equal(h.node("a").term, 0, "pre-vote does not bump the term");
    assert.equal(h.node("a").role, "pre-candidate");
    for (const m of preVotes) h.deliver(m);
    assert.equal(h.node("b").term, 0, "granting a pre-vote does not bump the voter's term");
    const grants = h.take();
    assert.deepEqual(summary(grants), ["pre-vote-response b>a t1", "pre-vote-response c>a t1"]);
    h.deliver(grants[0]);
    assert.equal(h.node("a").role, "candidate");
    assert.equal(h.node("a").term, 1);
    assert.equal(h.node("a").vote, "a");
    const votes = h.take(ofType("vote"));
    assert.deepEqual(summary(votes), ["vote a>b t1", "vote a>c t1"]);
    h.deliver(votes[0]);
    assert.equal(h.node("b").vote, "a");
    h.deliverAll(ofType("vote-response"));
    assert.equal(h.node("a").role, "leader");
    const appends = h.take(ofType("append"));
    assert.equal(appends.length, 2);
    for (const m of appends) {
      assert.equal(m.type, "append");
      if (m.type !== "append") continue;
      assert.deepEqual(m.entries.map((e) => [e.index, e.term, e.type]), [[1, 1, "noop"]]);
      assert.equal(m.prevIndex, 0);
    }
    assert.equal(h.node("a").commitIndex, 0);
    // the leader's noop is durable on it: each follower and the leader are 2 of 3
    assert.deepEqual(appends.map((m) => m.type === "append" && m.leaderMatch), [1, 1]);
    for (const m of appends) h.deliver(m);
    assert.equal(h.node("b").commitIndex, 1, "a follower commits what it and the leader hold");
    assert.equal(h.node("c").commitIndex, 1);
    const [fromB] = h.take(ofType("append-response"));
    h.deliver(fromB);
    assert.equal(h.node("a").commitIndex, 1, "committed with a majority of 2 of 3");
    h.stabilize();
    assert.deepEqual(["a", "b", "c"].map((id) => h.record(id).applied.map((e) => e.type)), [["noop"], [
      "noop",
    ], [
      "noop",
    ]]);
  });

  it("rejects a candidate whose log is less up to date (last term first, then last index)", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { preVote: false, checkQuorum: false });
    h.elect("a");
    h.propose("a", "x");
    h.deliverAll(to("b"));
    h.take();
    // b has [noop, x]; c has [noop] only.
    assert.equal(h.node("b").lastIndex, 2);
    assert.equal(h.node("c").lastIndex, 1);
    h.node("c").campaign();
    const votes = h.take(ofType("vote"));
    for (const m of votes) h.deliver(m);
    const answers = h.take(ofType("vote-response")) as VoteResponseMessage[];
    const fromB = answers.find((m) => m.from === "b");
    const fromA = answers.find((m) => m.from === "a");
    assert.equal(fromB?.reject, true, "b's log is longer in the same term");
    assert.equal(fromA?.reject, true);
    for (const m of answers) h.deliver(m);
    assert.equal(h.node("c").role, "follower", "lost by a majority of rejections");
    h.node("b").campaign();
    h.stabilize();
    assert.equal(h.node("b").role, "leader", "the up-to-date log wins");
  });

  it("votes at most once per term, also across a restart from the persisted hard state", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { preVote: false });
    h.node("a").campaign();
    const [toB] = h.take(ofType("vote")).filter(to("b"));
    h.deliver(toB);
    h.take();
    assert.equal(h.node("b").vote, "a");
    h.restart("b");
    assert.equal(h.node("b").term, 1);
    assert.equal(h.node("b").vote, "a", "the vote survives the restart");
    // c campaigns in the same term 1 (it never heard of term 1): b must refuse.
    const vote: VoteMessage = { type: "vote", from: "c", to: "b", term: 1, lastIndex: 0, lastTerm: 0 };
    h.deliver(vote);
    const [answer] = h.take(ofType("vote-response"));
    assert.equal((answer as VoteResponseMessage).reject, true);
    // The same candidate asking again gets the same answer (idempotent).
    h.deliver({ ...vote, from: "a" });
    const [again] = h.take(ofType("vote-response"));
    assert.equal((again as VoteResponseMessage).reject, false);
  });

  it("a pre-candidate that a majority rejects goes back to follower in the same term", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.tickAll(1);
    h.node("c").campaign();
    assert.equal(h.node("c").role, "pre-candidate");
    h.deliverAll(ofType("pre-vote"));
    h.deliverAll(ofType("pre-vote-response"));
    assert.equal(h.node("c").role, "follower");
    assert.equal(h.node("c").term, 1);
    assert.equal(h.node("a").role, "leader");
  });

  it("a candidate that hears from a leader of its term becomes its follower", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { preVote: false });
    h.node("a").campaign();
    h.node("b").campaign();
    // Deliver a's request to c first: c votes for a, a wins; b is a candidate in term 1 too.
    h.deliverAll((m) => m.from === "a" && m.to === "c");
    h.deliverAll((m) => m.type === "vote-response" && m.to === "a");
    assert.equal(h.node("a").role, "leader");
    assert.equal(h.node("b").role, "candidate");
    h.stabilize();
    assert.equal(h.node("b").role, "follower");
    assert.equal(h.node("b").leaderId, "a");
    assert.equal(h.leaders().length, 1);
  });

  it("a node that is not a voter in its own view never campaigns", () => {
    const h = RaftHarness.bootstrap(["a"]);
    const j = h.addJoiner("j");
    j.campaign();
    for (let i = 0; i < 100; i++) j.tick();
    assert.equal(j.role, "follower");
    assert.equal(j.term, 0);
    h.drain();
    assert.equal(h.outbox.length, 0);
  });

  it("ignores vote requests from removed (tombstoned) ids", () => {
    const node = new RaftNode({ id: "b", random: () => 0 }, {
      hardState: { term: 3, vote: undefined, commit: 0 },
      snapshot: {
        meta: { index: 0, term: 0, membership: { voters: ["a", "b"], learners: [], removed: ["x"] } },
        data: new Uint8Array(),
      },
      entries: [],
    });
    node.step({ type: "vote", from: "x", to: "b", term: 9, lastIndex: 5, lastTerm: 5 });
    assert.equal(node.term, 3);
    assert.equal(node.ready().messages.length, 0);
  });

  it("ignores messages addressed to someone else", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.node("b").step({ type: "vote", from: "a", to: "c", term: 5, lastIndex: 0, lastTerm: 0 });
    assert.equal(h.node("b").term, 0);
  });
});

describe("pre-vote and check-quorum", () => {
  it("a partitioned node does not bump its term and does not disrupt the leader when it rejoins", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.isolate("c");
    for (let i = 0; i < 100; i++) {
      h.tick("c");
      h.stabilize();
    }
    assert.equal(h.node("c").term, 1, "pre-votes failed, the term stayed");
    assert.equal(h.node("c").role, "pre-candidate");
    h.heal();
    // c's next pre-vote reaches the others, who heard from the leader recently: rejected.
    h.tick("a");
    h.tick("b");
    h.node("c").campaign();
    h.stabilize();
    assert.equal(h.node("a").role, "leader");
    assert.equal(h.node("a").term, 1);
    h.tickAll(2);
    assert.equal(h.node("c").role, "follower");
    assert.equal(h.node("c").leaderId, "a");
    assert.equal(h.node("c").term, 1);
  });

  it("without pre-vote and check-quorum the same rejoin disrupts the leader (the scenario bites)", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { preVote: false, checkQuorum: false });
    h.elect("a");
    h.isolate("c");
    for (let i = 0; i < 100; i++) {
      h.tick("c");
      h.stabilize();
    }
    assert.ok(h.node("c").term > 2);
    h.heal();
    h.node("c").campaign();
    h.stabilize();
    assert.notEqual(h.node("a").term, 1, "the leader was forced to a new term");
  });

  it("a leader that hears from no majority for an election timeout steps down", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { electionTicks: 10 });
    h.elect("a");
    h.isolate("a");
    for (let i = 0; i < 10; i++) {
      h.tick("a");
      h.stabilize();
    }
    assert.equal(h.node("a").role, "leader", "the followers were heard from during the first round");
    for (let i = 0; i < 10; i++) {
      h.tick("a");
      h.stabilize();
    }
    assert.equal(h.node("a").role, "follower");
    assert.equal(h.node("a").leaderId, undefined);
    assert.equal(h.node("a").term, 1, "stepping down does not bump the term");
    assert.deepEqual(h.node("a").propose(new Uint8Array()), { status: "dropped", reason: "no-leader" });
  });

  it("a leader that hears from a majority stays leader", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { electionTicks: 10 });
    h.elect("a");
    h.disconnect("a", "c");
    for (let i = 0; i < 50; i++) {
      h.tick("a");
      h.stabilize();
    }
    assert.equal(h.node("a").role, "leader");
  });

  it("leader lease: a voter that heard from the leader within the timeout refuses votes and keeps its term", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { electionTicks: 10 });
    h.elect("a");
    const vote: VoteMessage = { type: "vote", from: "c", to: "b", term: 5, lastIndex: 100, lastTerm: 4 };
    h.deliver(vote);
    const [answer] = h.take(ofType("vote-response")) as VoteResponseMessage[];
    assert.equal(answer.reject, true);
    assert.equal(h.node("b").term, 1);
    assert.equal(h.node("b").vote, "a");
    // A transfer-triggered vote ignores the lease.
    h.deliver({ ...vote, transfer: true });
    const [granted] = h.take(ofType("vote-response")) as VoteResponseMessage[];
    assert.equal(granted.reject, false);
    assert.equal(h.node("b").term, 5);
  });

  it("the lease expires after an election timeout without the leader", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { electionTicks: 10 });
    h.elect("a");
    for (let i = 0; i < 10; i++) h.node("b").tick();
    h.deliver({ type: "pre-vote", from: "c", to: "b", term: 2, lastIndex: 1, lastTerm: 1 });
    const [answer] = h.take(ofType("pre-vote-response")) as VoteResponseMessage[];
    assert.equal(answer.reject, false);
    assert.equal(answer.term, 2, "a granted pre-vote echoes the proposed term");
    assert.equal(h.node("b").term, 1);
  });

  it("answers a pre-vote from a lower term with a rejection that carries the newer term", () => {
    const b = new RaftNode({ id: "b", random: () => 0 }, {
      hardState: { term: 2, vote: undefined, commit: 0 },
      snapshot: bootstrapSnapshot(["a", "b", "c"]),
      entries: [],
    });
    b.step({ type: "pre-vote", from: "c", to: "b", term: 1, lastIndex: 9, lastTerm: 9 });
    const [answer] = b.ready().messages as VoteResponseMessage[];
    assert.deepEqual([answer.reject, answer.term], [true, 2]);
  });

  it("a stale leader rejoining learns the new term, steps down, and loses its uncommitted entries", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.propose("a", "committed");
    h.stabilize();
    h.isolate("a");
    h.propose("a", "lost"); // appended on the isolated leader only
    h.stabilize();
    assert.equal(h.node("a").lastIndex, 3);
    // b and c elect b after their lease expired.
    for (let i = 0; i < 25; i++) {
      h.tick("b");
      h.tick("c");
      h.stabilize();
    }
    assert.equal(h.leaders().includes("b") || h.leaders().includes("c"), true);
    const newLeader = h.leaders().find((id) => id !== "a") as string;
    h.propose(newLeader, "new");
    h.stabilize();
    // a never ticked, so it still believes it leads term 1.
    assert.equal(h.node("a").role, "leader");
    h.heal();
    h.tick("a"); // its heartbeat meets a higher term
    h.stabilize();
    h.tickAll(3);
    assert.equal(h.node("a").role, "follower");
    assert.equal(h.node("a").leaderId, newLeader);
    for (const id of ["a", "b", "c"]) assert.deepEqual(h.record(id).state, ["committed", "new"], id);
  });
});
