import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RaftNode } from "../../src/raft/raft_node.ts";
import type { AppendMessage, Entry, HeartbeatMessage, Membership } from "../../src/raft/types.ts";
import { cmd, ofType, RaftHarness, stateWithLog } from "../_helpers/raft_harness.ts";

/**
 * With at most three voters, a follower and the leader are a majority: an append carries the
 * leader's durable match index (`leaderMatch`), and a voting follower commits what both hold of the
 * current term on receipt, one round trip before the leader's commit index would tell it.
 */

const appendsTo = (h: RaftHarness, id: string): AppendMessage[] =>
  h.take(ofType("append")).filter((m): m is AppendMessage => m.type === "append" && m.to === id);

function entry(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: "normal", data: cmd(text) };
}

/** A follower `c` whose log holds one entry of term 1, in `membership`, at term 2. */
function follower(membership: Membership): { h: RaftHarness; c: RaftNode } {
  const h = new RaftHarness();
  const state = stateWithLog(membership.voters, [1], 2);
  const c = h.addNode("c", {
    ...state,
    snapshot: { ...state.snapshot!, meta: { ...state.snapshot!.meta, membership } },
  });
  return { h, c };
}

function append(entries: Entry[], prevIndex: number, prevTerm: number, leaderMatch?: number): AppendMessage {
  const base = {
    type: "append" as const,
    from: "a",
    to: "c",
    term: 2,
    prevIndex,
    prevTerm,
    entries,
    commit: 0,
  };
  return leaderMatch === undefined ? base : { ...base, leaderMatch };
}

const THREE: Membership = { voters: ["a", "b", "c"], learners: [], removed: [] };

describe("a follower's commit with the leader (at most three voters)", () => {
  it("commits and applies on the append, before the leader knows the entry committed", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.tickAll(1);
    const a = h.node("a");
    const index = (a.propose(cmd("x")) as { index: number }).index;
    const [toB] = appendsTo(h, "b");
    assert.equal(toB.leaderMatch, index, "the leader's own copy is durable (persisted before sending)");
    assert.equal(toB.commit, index - 1);
    h.deliver(toB);
    assert.equal(h.node("b").commitIndex, index);
    assert.equal(h.record("b").applied.at(-1)?.index, index, "applied once its own copy is persisted");
    assert.equal(a.commitIndex, index - 1, "the leader has not heard from anyone yet");
    h.take();
  });

  it("sends no commit news to followers that committed on the append", () => {
    for (const voters of [["a", "b", "c"], ["a", "b", "c", "d", "e"]]) {
      const h = RaftHarness.bootstrap(voters);
      h.elect("a");
      h.tickAll(1);
      const index = (h.node("a").propose(cmd("x")) as { index: number }).index;
      h.deliverAll(ofType("append"));
      h.deliverAll(ofType("append-response"));
      assert.equal(h.node("a").commitIndex, index);
      const news = h.take(ofType("append"));
      if (voters.length === 3) assert.deepEqual(news, [], "b and c committed x when they took it");
      else assert.deepEqual(news.map((m) => m.to).sort(), ["b", "c", "d", "e"]);
      for (const m of news) h.deliver(m);
      for (const id of voters) assert.equal(h.node(id).commitIndex, index);
    }
  });

  it("five voters: no leaderMatch is sent, and followers wait for the leader's commit index", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c", "d", "e"]);
    h.elect("a");
    h.tickAll(1);
    const index = (h.node("a").propose(cmd("x")) as { index: number }).index;
    const [toB] = appendsTo(h, "b");
    assert.equal(toB.leaderMatch, undefined);
    h.deliver(toB);
    assert.equal(h.node("b").commitIndex, index - 1);
  });

  it("commits up to leaderMatch only, never past what the message proved it holds", () => {
    const { c } = follower(THREE);
    c.step(append([entry(2, 2), entry(3, 2), entry(4, 2)], 1, 1, 3));
    assert.equal(c.commitIndex, 3, "the leader's durable copy ends at 3");
    c.step(append([entry(5, 2)], 4, 2, 9));
    assert.equal(c.commitIndex, 5, "it holds 5 (this message), not 9");
    c.step(append([], 5, 2, 9));
    assert.equal(c.commitIndex, 5, "an append without entries commits nothing new");
  });

  it("does not commit an entry of an earlier term by counting itself and the leader", () => {
    const { c } = follower(THREE);
    c.step(append([entry(2, 1)], 1, 1, 3));
    assert.equal(c.commitIndex, 0, "index 2 is of term 1, the leader's term is 2");
    c.step(append([entry(3, 2, "noop")], 2, 1, 3));
    assert.equal(c.commitIndex, 3, "an entry of the current term commits the ones before it");
  });

  it("counts only when both it and the leader are voters of its configuration", () => {
    const learner = follower({ voters: ["a", "b"], learners: ["c"], removed: [] }).c;
    learner.step(append([entry(2, 2)], 1, 1, 2));
    assert.equal(learner.commitIndex, 0, "a learner is no part of a majority");
    const leaderOut = follower({ voters: ["b", "c"], learners: [], removed: ["a"] }).c;
    leaderOut.step(append([entry(2, 2)], 1, 1, 2));
    assert.equal(leaderOut.commitIndex, 0, "a leader outside this follower's configuration does not count");
    const five = follower({ voters: ["a", "b", "c", "d", "e"], learners: [], removed: [] }).c;
    five.step(append([entry(2, 2)], 1, 1, 2));
    assert.equal(five.commitIndex, 0, "two of five are no majority");
    const two = follower({ voters: ["a", "c"], learners: [], removed: [] }).c;
    two.step(append([entry(2, 2)], 1, 1, 2));
    assert.equal(two.commitIndex, 2, "two of two are");
  });

  it("a ReadIndex covers what a follower may have committed and answered", () => {
    for (const bug of [false, true]) {
      const h = RaftHarness.bootstrap(
        ["a", "b", "c"],
        bug ? { testingBugs: ["read-ignores-follower-commit"] } : {},
      );
      h.elect("a");
      h.tickAll(1);
      const a = h.node("a");
      const index = (a.propose(cmd("x")) as { index: number }).index;
      const appends = h.take(ofType("append")) as AppendMessage[];
      h.deliver(appends.find((m) => m.to === "b")!);
      assert.equal(h.node("b").commitIndex, index, "b committed x and may have answered its client");
      h.take(); // b's acknowledgement is lost
      a.readIndex("r");
      const beats = h.take(ofType("heartbeat")) as HeartbeatMessage[];
      h.deliver(beats.find((m) => m.to === "c")!);
      h.deliverAll(ofType("heartbeat-response"));
      if (bug) {
        assert.deepEqual(h.record("a").readStates, [{ ctx: "r", index: index - 1 }], "below x: stale");
        continue;
      }
      assert.deepEqual(
        h.record("a").readStates,
        [],
        "a and c confirm the leadership, but x is not committed here",
      );
      h.deliver(appends.find((m) => m.to === "c")!);
      h.deliverAll(ofType("append-response"));
      assert.equal(a.commitIndex, index);
      assert.deepEqual(h.record("a").readStates, [{ ctx: "r", index }], "answered once x is committed");
    }
  });

  it("a confirmed read waiting for its index is dropped with the leadership", () => {
    // no leader lease, so that b can win while a still leads
    const h = RaftHarness.bootstrap(["a", "b", "c"], { preVote: false, checkQuorum: false });
    h.elect("a");
    h.tickAll(1);
    const a = h.node("a");
    a.propose(cmd("x"));
    h.take(ofType("append")); // nobody gets x
    a.readIndex("r");
    h.deliverAll(ofType("heartbeat"));
    h.deliverAll(ofType("heartbeat-response"));
    assert.deepEqual(h.record("a").readStates, []);
    h.elect("b");
    assert.notEqual(a.role, "leader");
    assert.deepEqual(h.record("a").droppedReads.map((d) => d.ctx), ["r"], "x may never be committed");
    assert.deepEqual(h.record("a").readStates, []);
  });
});
