import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type {
  AppendMessage,
  AppendResponseMessage,
  ProposeMessage,
  RaftMessage,
} from "../../src/raft/types.ts";
import { cmd, from, ofType, RaftHarness, stateWithLog, to } from "../_helpers/raft_harness.ts";

const appendsTo = (ms: RaftMessage[], id: string) =>
  ms.filter((m): m is AppendMessage => m.type === "append" && m.to === id);
const indices = (m: AppendMessage) => m.entries.map((e) => e.index);

/** A 3-node cluster with leader a, all followers in replicate state and caught up. */
function steady(options = {}): RaftHarness {
  const h = RaftHarness.bootstrap(["a", "b", "c"], options);
  h.elect("a");
  h.tickAll(1);
  return h;
}

describe("replication", () => {
  it("a proposal goes to the followers at once (no tick), and one append per follower carries a batch", () => {
    const h = steady();
    for (const text of ["p1", "p2", "p3"]) h.propose("a", text);
    const out = h.take();
    assert.deepEqual(appendsTo(out, "b").map(indices), [[2, 3, 4]]);
    assert.deepEqual(appendsTo(out, "c").map(indices), [[2, 3, 4]]);
    assert.equal(appendsTo(out, "b")[0].entries, appendsTo(out, "c")[0].entries, "one batch array, shared");
    for (const m of out) h.deliver(m);
    h.stabilize();
    for (const id of ["a", "b", "c"]) assert.deepEqual(h.record(id).state, ["p1", "p2", "p3"]);
  });

  it("entries keep their terms and request ids, and the data is not copied", () => {
    const h = steady();
    const data = cmd("payload");
    const result = h.node("a").propose(data, "req-1");
    assert.deepEqual(result, { status: "appended", index: 2, term: 1 });
    const [m] = appendsTo(h.take(), "b");
    assert.equal(m.entries[0].data, data);
    assert.equal(m.entries[0].requestId, "req-1");
    assert.equal(m.entries[0].term, 1);
    assert.equal(m.prevIndex, 1);
    assert.equal(m.prevTerm, 1);
  });

  it("a follower forwards proposals to the leader; without a leader they are dropped", () => {
    const h = steady();
    const result = h.node("b").propose(cmd("via-b"), "r7");
    assert.deepEqual(result, { status: "forwarded", leaderId: "a" });
    const [fwd] = h.take(ofType("propose"));
    assert.deepEqual([fwd.from, fwd.to], ["b", "a"]);
    h.deliver(fwd);
    h.stabilize();
    assert.deepEqual(h.record("c").state, ["via-b"]);
    assert.equal(h.record("c").applied.at(-1)?.requestId, "r7");
    const lonely = RaftHarness.bootstrap(["x", "y", "z"]);
    assert.deepEqual(lonely.node("x").propose(cmd("q")), { status: "dropped", reason: "no-leader" });
    // A forwarded proposal that reaches a non-leader is dropped silently.
    lonely.node("y").step({ type: "propose", from: "x", to: "y", term: 0, entries: [{ data: cmd("q") }] });
    assert.equal(lonely.node("y").lastIndex, 0);
  });

  it("proposals a follower forwards before the next ready() share one message, bounded like appends", () => {
    const h = steady({ maxEntriesPerAppend: 3 });
    for (let i = 0; i < 5; i++) h.node("b").propose(cmd(`f${i}`), `r${i}`);
    const batches = h.take(ofType("propose")) as ProposeMessage[];
    assert.deepEqual(
      batches.map((m) => m.entries.map((e) => e.requestId)),
      [["r0", "r1", "r2"], ["r3", "r4"]],
    );
    for (const m of batches) h.deliver(m);
    h.node("b").propose(cmd("f5"), "r5"); // after ready(): a message of its own
    const [later] = h.take(ofType("propose")) as ProposeMessage[];
    assert.deepEqual(later.entries.map((e) => e.requestId), ["r5"]);
    h.deliver(later);
    h.stabilize();
    assert.deepEqual(h.record("c").state, ["f0", "f1", "f2", "f3", "f4", "f5"]);
    const hb = steady({ maxBytesPerAppend: 25 });
    for (const text of ["0123456789", "0123456789", "0123456789"]) hb.node("b").propose(cmd(text));
    const bounded = hb.take(ofType("propose")) as ProposeMessage[];
    assert.deepEqual(bounded.map((m) => m.entries.length), [2, 1]);
  });

  it("batches are bounded by maxEntriesPerAppend and maxBytesPerAppend (at least one entry)", () => {
    const h = steady({ maxEntriesPerAppend: 3 });
    for (let i = 0; i < 7; i++) h.propose("a", `p${i}`);
    assert.deepEqual(appendsTo(h.take(), "b").map(indices), [[2, 3, 4], [5, 6, 7], [8]]);
    const hb = steady({ maxBytesPerAppend: 25 });
    for (const text of ["0123456789", "0123456789", "0123456789", "0123456789012345678901234567890123"]) {
      hb.propose("a", text);
    }
    assert.deepEqual(appendsTo(hb.take(), "b").map(indices), [[2, 3], [4], [5]]);
  });

  it("at most maxInflightAppends unacknowledged appends per follower (pipelining)", () => {
    const h = steady({ maxEntriesPerAppend: 1, maxInflightAppends: 2 });
    for (let i = 0; i < 5; i++) h.propose("a", `p${i}`);
    const first = appendsTo(h.take(), "b");
    assert.deepEqual(first.map(indices), [[2], [3]], "two in flight, the rest waits");
    assert.equal(h.node("a").progress.get("b")?.inflight, 2);
    h.deliver(first[0]);
    h.deliverAll(ofType("append-response"));
    assert.deepEqual(appendsTo(h.take(), "b").map(indices), [[4]], "one acknowledgement frees one slot");
    h.stabilize();
    h.tickAll(2);
    assert.deepEqual(h.record("b").state, ["p0", "p1", "p2", "p3", "p4"]);
  });

  it("a follower in probe state gets one append at a time until it matches", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { maxEntriesPerAppend: 1 });
    h.elect("a");
    h.isolate("c");
    for (let i = 0; i < 4; i++) h.propose("a", `p${i}`);
    h.stabilize(); // the four appends to c are lost
    h.heal();
    assert.equal(h.node("a").progress.get("c")?.state, "replicate");
    h.tick("a"); // heartbeat; c answers; the leader probes the end of what it sent
    h.deliverAll(to("c"));
    h.deliverAll(from("c"));
    const [empty] = appendsTo(h.take(), "c");
    assert.deepEqual([empty.prevIndex, empty.entries.length], [5, 0]);
    h.deliver(empty);
    h.deliverAll(from("c")); // rejected: c has only index 1
    assert.equal(h.node("a").progress.get("c")?.state, "probe");
    const probe = appendsTo(h.take(), "c");
    assert.deepEqual(probe.map(indices), [[2]], "a single probe");
    h.node("a").propose(cmd("more"));
    assert.deepEqual(appendsTo(h.take(), "c"), [], "nothing more while the probe is unanswered");
    h.deliver(probe[0]);
    h.deliverAll(from("c"));
    assert.equal(h.node("a").progress.get("c")?.state, "replicate");
    assert.deepEqual(appendsTo(h.take(), "c").map(indices), [[3], [4], [5], [6]], "then pipelined");
  });

  it("repairs a divergent follower log, skipping whole conflicting terms (Raft paper fig. 7 f)", () => {
    const h = new RaftHarness(7);
    const voters = ["l", "f", "g"];
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    h.addNode("l", stateWithLog(voters, leaderLog, 7), { preVote: false });
    h.addNode("g", stateWithLog(voters, leaderLog, 7), { preVote: false });
    h.addNode("f", stateWithLog(voters, [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 7, 3), { preVote: false });
    h.elect("l");
    const rejects = h.sent.filter((m): m is AppendResponseMessage =>
      m.type === "append-response" && m.from === "f" && m.reject
    );
    assert.equal(rejects.length, 1, "one round trip finds the match point");
    assert.deepEqual([rejects[0].index, rejects[0].rejectHint, rejects[0].hintTerm], [10, 10, 3]);
    h.tickAll(2);
    const terms = (id: string) => h.record(id).applied.map((e) => e.term);
    assert.deepEqual(terms("f"), [...leaderLog, 8]);
    assert.deepEqual(terms("f"), terms("l"));
    assert.equal(h.node("f").lastIndex, 11);
  });

  it("brings a follower with a short log up to date from its last index", () => {
    const h = new RaftHarness(3);
    const voters = ["l", "f", "g"];
    h.addNode("l", stateWithLog(voters, [1, 1, 2, 2, 2, 2], 2), { preVote: false });
    h.addNode("g", stateWithLog(voters, [1, 1, 2, 2, 2, 2], 2), { preVote: false });
    h.addNode("f", stateWithLog(voters, [1, 1], 2), { preVote: false });
    h.elect("l");
    const [reject] = h.sent.filter((m): m is AppendResponseMessage =>
      m.type === "append-response" && m.from === "f" && m.reject
    );
    assert.deepEqual([reject.rejectHint, reject.hintTerm], [2, 1]);
    h.tickAll(1);
    assert.equal(h.node("f").lastIndex, 7);
    assert.equal(h.node("f").commitIndex, 7);
  });

  it("commits only by counting replicas of current-term entries (Raft paper fig. 8)", () => {
    const voters = ["a", "b", "c"];
    const build = (bugs: boolean) => {
      const h = new RaftHarness(5);
      const options = {
        preVote: false,
        maxEntriesPerAppend: 1,
        ...(bugs ? { testingBugs: ["commit-old-term" as const] } : {}),
      };
      h.addNode("a", stateWithLog(voters, [1, 2], 2, 1), options);
      h.addNode("b", stateWithLog(voters, [1], 2, 1), options);
      h.addNode("c", stateWithLog(voters, [1], 2, 1), options);
      h.node("a").campaign();
      h.deliverAll(ofType("vote"));
      h.deliverAll(ofType("vote-response"));
      assert.equal(h.node("a").role, "leader");
      assert.equal(h.node("a").term, 3);
      // Probe at prevIndex 2 is rejected; the leader then sends [2 (term 2)] alone to b.
      h.deliverAll(to("b"));
      h.deliverAll(from("b"));
      const [oldEntry] = appendsTo(h.take(), "b");
      assert.deepEqual(oldEntry.entries.map((e) => [e.index, e.term]), [[2, 2]]);
      h.deliver(oldEntry);
      h.deliverAll(from("b"));
      return h;
    };
    const h = build(false);
    assert.equal(h.node("a").progress.get("b")?.match, 2);
    assert.equal(h.node("a").commitIndex, 1, "index 2 is on a majority but of an older term");
    h.stabilize();
    assert.equal(h.node("a").commitIndex, 3, "committed together with the noop of term 3");
    const broken = build(true);
    assert.equal(broken.node("a").commitIndex, 2, "the commit-old-term bug commits it by counting");
  });

  it("a follower answers an append below its commit index with its commit index", () => {
    const h = steady();
    h.propose("a", "x");
    h.stabilize();
    h.tickAll(1);
    h.node("b").step({
      type: "append",
      from: "a",
      to: "b",
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      entries: [],
      commit: 0,
    });
    const [answer] = h.take(from("b")) as AppendResponseMessage[];
    assert.deepEqual([answer.reject, answer.index], [false, 2]);
    assert.equal(h.node("b").lastIndex, 2);
  });

  it("recovers lost appends in replicate state on the next heartbeat round", () => {
    const h = steady();
    h.disconnectOneWay("a", "b");
    h.propose("a", "lost");
    h.stabilize(); // b never got the entry nor the commit news
    h.heal();
    assert.equal(h.node("b").lastIndex, 1);
    assert.equal(h.node("a").progress.get("b")?.state, "replicate");
    h.tickAll(2);
    assert.deepEqual(h.record("b").state, ["lost"]);
  });

  it("ignores stale append responses", () => {
    const h = steady();
    h.propose("a", "x");
    h.stabilize();
    const before = h.node("a").progress.get("b");
    h.node("a").step({
      type: "append-response",
      from: "b",
      to: "a",
      term: 1,
      index: 1,
      reject: true,
      rejectHint: 0,
      hintTerm: 0,
    });
    h.node("a").step({
      type: "append-response",
      from: "b",
      to: "a",
      term: 1,
      index: 1,
      reject: false,
      rejectHint: 0,
      hintTerm: 0,
    });
    assert.deepEqual(h.node("a").progress.get("b"), before);
    assert.equal(h.take().length, 0);
  });
});
