import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { HeartbeatMessage } from "../../src/raft/types.ts";
import { from, ofType, RaftHarness } from "../_helpers/raft_harness.ts";

function steady(): RaftHarness {
  const h = RaftHarness.bootstrap(["a", "b", "c"]);
  h.elect("a");
  h.propose("a", "x");
  h.stabilize();
  return h;
}

describe("ReadIndex", () => {
  it("on the leader: records the commit index and confirms leadership with a heartbeat round", () => {
    const h = steady();
    const a = h.node("a");
    a.readIndex("r1");
    const beats = h.take(ofType("heartbeat")) as HeartbeatMessage[];
    assert.deepEqual(beats.map((m) => [m.to, m.ctx]), [["b", "r1"], ["c", "r1"]]);
    assert.deepEqual(h.record("a").readStates, []);
    h.deliver(beats[0]);
    h.deliverAll(from("b"));
    assert.deepEqual(h.record("a").readStates, [{ ctx: "r1", index: 2 }], "self + b is a majority");
    h.deliver(beats[1]);
    h.deliverAll(from("c"));
    assert.equal(h.record("a").readStates.length, 1, "answered once");
  });

  it("reads of one batch share one heartbeat round", () => {
    const h = steady();
    const a = h.node("a");
    a.readIndex("r1");
    a.readIndex("r2");
    a.readIndex("r1"); // duplicate context: ignored
    const beats = h.take(ofType("heartbeat")) as HeartbeatMessage[];
    assert.deepEqual(beats.map((m) => [m.to, m.ctx]), [["b", "r2"], ["c", "r2"]]);
    for (const m of beats) h.deliver(m);
    h.stabilize();
    assert.deepEqual(h.record("a").readStates.map((r) => r.ctx), ["r1", "r2"]);
  });

  it("on a follower: forwarded to the leader, answered after the leader's heartbeat round", () => {
    const h = steady();
    h.node("b").readIndex("rb");
    const [fwd] = h.take(ofType("read-index"));
    assert.deepEqual([fwd.from, fwd.to], ["b", "a"]);
    h.deliver(fwd);
    h.stabilize();
    assert.deepEqual(h.record("b").readStates, [{ ctx: "rb", index: 2 }]);
    assert.deepEqual(h.record("a").readStates, []);
  });

  it("on a follower: an answer from a member other than its leader, or of another term, serves no read", () => {
    const h = steady();
    const b = h.node("b");
    b.readIndex("rb");
    h.take(ofType("read-index")); // the real request to a is never answered here
    // c answers b's read with an index of its choosing (the old code took it: a stale read)
    b.step({ type: "read-index-response", from: "c", to: "b", term: b.term, ctx: "rb", index: 1 });
    b.step({ type: "read-index-response", from: "a", to: "b", term: b.term + 1, ctx: "rb", index: 1 });
    h.drain();
    assert.deepEqual(h.record("b").readStates, []);
    assert.deepEqual(h.record("b").droppedReads.map((d) => d.reason), ["not-leader", "not-leader"]);
    b.step({ type: "read-index-response", from: "a", to: "b", term: b.term, ctx: "rb", index: 2 });
    h.drain();
    assert.deepEqual(h.record("b").readStates, [{ ctx: "rb", index: 2 }]);
  });

  it("without a leader the read is dropped at once; a non-leader answers a forwarded read with -1", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.node("a").readIndex("r0");
    h.drain();
    assert.deepEqual(h.record("a").droppedReads, [{ ctx: "r0", reason: "no-leader" }]);
    h.node("b").step({ type: "read-index", from: "c", to: "b", term: 0, ctx: "rc" });
    const [answer] = h.take(from("b"));
    assert.deepEqual(answer.type === "read-index-response" && answer.index, -1);
    h.deliver(answer);
    assert.deepEqual(h.record("c").droppedReads, [{ ctx: "rc", reason: "not-leader" }]);
  });

  it("a new leader serves reads only once it has committed an entry of its term", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.node("a").campaign();
    h.deliverAll(ofType("pre-vote"));
    h.deliverAll(ofType("pre-vote-response"));
    h.deliverAll(ofType("vote"));
    h.deliverAll(ofType("vote-response"));
    const a = h.node("a");
    assert.equal(a.role, "leader");
    assert.equal(a.commitIndex, 0);
    a.readIndex("early");
    assert.equal(h.take(ofType("heartbeat")).length, 0, "waits for the noop to commit");
    h.stabilize();
    assert.deepEqual(h.record("a").readStates, [{ ctx: "early", index: 1 }]);
  });

  it("a single-voter leader answers at once without messages", () => {
    const h = RaftHarness.bootstrap(["a"]);
    h.elect("a");
    h.propose("a", "x");
    h.node("a").readIndex("solo");
    h.drain();
    assert.deepEqual(h.record("a").readStates, [{ ctx: "solo", index: 2 }]);
    assert.equal(h.sent.length, 0);
  });

  it("an isolated leader cannot confirm reads; they are dropped when it steps down", () => {
    const h = steady();
    h.node("b").readIndex("remote");
    h.deliverAll(ofType("read-index"));
    h.isolate("a");
    h.node("a").readIndex("local");
    for (let i = 0; i < 25 && h.node("a").role === "leader"; i++) {
      h.tick("a");
      h.stabilize();
    }
    assert.equal(h.node("a").role, "follower");
    assert.deepEqual(h.record("a").readStates, []);
    assert.deepEqual(h.record("a").droppedReads, [{ ctx: "local", reason: "leadership-lost" }]);
    // The refusal of b's forwarded read went out (and was lost on the cut link).
    const answers = h.sent.filter((m) => m.type === "read-index-response" && m.to === "b");
    assert.deepEqual(answers.map((m) => m.type === "read-index-response" && [m.ctx, m.index]), [[
      "remote",
      -1,
    ]]);
    assert.deepEqual(h.record("b").readStates, []);
  });

  it("a lost read heartbeat is retried by the next tick heartbeat", () => {
    const h = steady();
    h.node("a").readIndex("r");
    h.take(ofType("heartbeat")); // lost
    h.tick("a");
    const beats = h.take(ofType("heartbeat")) as HeartbeatMessage[];
    assert.deepEqual(beats.map((m) => m.ctx), ["r", "r"]);
    for (const m of beats) h.deliver(m);
    h.stabilize();
    assert.deepEqual(h.record("a").readStates.map((r) => r.ctx), ["r"]);
  });
});
