import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftError } from "../../src/raft/raft_error.ts";
import type {
  AppendMessage,
  RaftMessage,
  SnapshotChunkMessage,
  SnapshotResponseMessage,
} from "../../src/raft/types.ts";
import { encodeState, from, ofType, RaftHarness, to } from "../_helpers/raft_harness.ts";

const chunks = (ms: RaftMessage[]) => ms.filter((m): m is SnapshotChunkMessage => m.type === "snapshot");
const compactAll = (h: RaftHarness, id: string) => {
  const node = h.node(id);
  node.compact(node.appliedIndex, encodeState(h.record(id).state));
  h.drain(id);
};

/** Leader a with c cut off while `n` entries commit, then a compacts everything. */
function lagging(n: number, options = {}): RaftHarness {
  const h = RaftHarness.bootstrap(["a", "b", "c"], options);
  h.elect("a");
  h.tickAll(1);
  h.isolate("c");
  for (let i = 0; i < n; i++) h.propose("a", `v${i}`);
  h.stabilize();
  h.tick("a");
  h.stabilize();
  compactAll(h, "a");
  return h;
}

describe("snapshots and compaction", () => {
  it("compact records the app's snapshot, drops covered entries, and hands it out to persist", () => {
    const h = RaftHarness.bootstrap(["a"]);
    h.elect("a");
    for (const v of ["x", "y", "z"]) h.propose("a", v);
    h.drain();
    const a = h.node("a");
    assert.equal(a.appliedIndex, 4);
    assert.throws(() => a.compact(5, new Uint8Array()), RaftError);
    a.compact(3, encodeState(["x", "y"]));
    assert.equal(a.firstIndex, 4);
    assert.equal(a.snapshotIndex, 3);
    const ready = a.ready();
    assert.equal(ready.snapshot?.meta.index, 3);
    assert.equal(ready.snapshot?.meta.term, 1);
    assert.deepEqual(ready.snapshot?.meta.membership.voters, ["a"]);
    assert.equal(ready.restoreSnapshot, false);
    h.storages.get("a")?.saveSnapshot(ready.snapshot!);
    const stored = h.storages.get("a")!.loadSync();
    assert.deepEqual(stored.entries.map((e) => e.index), [4], "storage kept only the entries after it");
    a.compact(2, new Uint8Array());
    assert.equal(a.snapshotIndex, 3, "an older compaction is a no-op");
    assert.equal(a.hasReady(), false);
  });

  it("installs a snapshot in several chunks on a lagging follower, then resumes appends after it", () => {
    const h = lagging(20, { snapshotChunkBytes: 16, maxInflightAppends: 4 });
    const a = h.node("a");
    const snapshotIndex = a.snapshotIndex;
    assert.equal(snapshotIndex, 21);
    const size = encodeState(h.record("a").state).byteLength;
    h.heal();
    h.tick("a");
    h.deliverAll(to("c"));
    h.deliverAll(from("c")); // heartbeat answer: c is behind; its next index is compacted away
    h.deliverAll(to("c"));
    h.deliverAll(from("c")); // the empty append is rejected; the probe point lies in the snapshot
    assert.equal(a.progress.get("c")?.state, "snapshot");
    const first = chunks(h.take(to("c")));
    assert.deepEqual(first.map((m) => m.offset), [0, 16, 32, 48], "a window of maxInflightAppends chunks");
    assert.ok(first.every((m) => !m.done && m.data.byteLength === 16));
    for (const m of first) h.deliver(m);
    const acks = h.take(from("c")) as SnapshotResponseMessage[];
    assert.deepEqual(acks.map((m) => m.offset), [16, 32, 48, 64]);
    for (const m of acks) h.deliver(m);
    h.stabilize();
    const all = chunks(h.sent.filter(to("c")));
    assert.equal(all.length, Math.ceil(size / 16));
    assert.deepEqual(all.map((m) => m.done), all.map((_, i) => i === all.length - 1));
    const c = h.record("c");
    assert.equal(c.restored.length, 1);
    assert.equal(c.restored[0].meta.index, snapshotIndex);
    assert.deepEqual(c.state, h.record("a").state);
    assert.equal(h.node("c").firstIndex, snapshotIndex + 1);
    assert.equal(a.progress.get("c")?.state, "replicate");
    assert.equal(a.progress.get("c")?.match, snapshotIndex);
    h.propose("a", "after");
    const [next] = h.take(to("c")).filter((m): m is AppendMessage => m.type === "append");
    assert.equal(next.prevIndex, snapshotIndex, "appends resume right after the snapshot");
    h.deliver(next);
    h.stabilize();
    h.tickAll(1);
    assert.deepEqual(h.record("c").state.at(-1), "after");
    assert.deepEqual(h.storages.get("c")!.loadSync().snapshot?.meta.index, snapshotIndex);
  });

  it("a lost chunk makes the follower ask to resend from its offset (go-back-N)", () => {
    const h = lagging(10, { snapshotChunkBytes: 8, maxInflightAppends: 3 });
    h.heal();
    h.tick("a");
    for (let i = 0; i < 2; i++) {
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    const window = chunks(h.take(to("c")));
    assert.deepEqual(window.map((m) => m.offset), [0, 8, 16]);
    h.deliver(window[0]);
    h.deliver(window[2]); // window[1] is lost
    const answers = h.take(from("c")) as SnapshotResponseMessage[];
    assert.deepEqual(answers.map((m) => [m.offset, m.reject]), [[8, false], [8, true]]);
    for (const m of answers) h.deliver(m);
    const resent = chunks(h.take(to("c")));
    // The acknowledgement of 8 slid the window (chunk 24); the rejection rewinds to 8 and resends.
    assert.deepEqual(resent.map((m) => m.offset), [24, 8, 16, 24]);
    for (const m of resent) h.deliver(m);
    h.stabilize();
    assert.deepEqual(h.record("c").state, h.record("a").state);
  });

  it("a chunk of a transfer the follower does not hold restarts the transfer from offset 0", () => {
    const h = lagging(10, { snapshotChunkBytes: 8 });
    const a = h.node("a");
    h.heal();
    h.node("c").step({
      type: "snapshot",
      from: "a",
      to: "c",
      term: a.term,
      meta: { index: a.snapshotIndex, term: a.term, membership: a.membership },
      offset: 24,
      data: new Uint8Array(8),
      done: false,
    });
    const [answer] = h.take(from("c")) as SnapshotResponseMessage[];
    assert.deepEqual([answer.offset, answer.reject], [0, true]);
  });

  it("a transfer that stalls (everything lost) is resent from the acknowledged offset on a heartbeat answer", () => {
    const h = lagging(10, { snapshotChunkBytes: 8, maxInflightAppends: 2 });
    h.heal();
    h.tick("a");
    for (let i = 0; i < 2; i++) {
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    assert.equal(chunks(h.take(to("c"))).length, 2, "lost");
    h.tick("a"); // heartbeat round 1 records the acknowledged offset
    h.deliverAll(to("c"));
    h.deliverAll(from("c"));
    h.take(to("c"));
    h.tick("a"); // heartbeat round 2: no progress since round 1
    h.deliverAll(ofType("heartbeat"));
    h.deliverAll(from("c"));
    const resent = chunks(h.take(to("c")));
    assert.deepEqual(resent.map((m) => m.offset), [0, 8]);
    for (const m of resent) h.deliver(m);
    h.stabilize();
    assert.deepEqual(h.record("c").state, h.record("a").state);
  });

  it("a snapshot at or below the follower's commit index is not restored", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.propose("a", "x");
    h.stabilize();
    h.tickAll(1);
    const b = h.node("b");
    assert.equal(b.commitIndex, 2);
    b.step({
      type: "snapshot",
      from: "a",
      to: "b",
      term: 1,
      meta: { index: 1, term: 1, membership: b.membership },
      offset: 0,
      data: encodeState([]),
      done: true,
    });
    const [answer] = h.take(from("b")) as SnapshotResponseMessage[];
    assert.deepEqual([answer.done, answer.index], [true, 2]);
    assert.equal(h.record("b").restored.length, 0);
    assert.equal(b.lastIndex, 2);
  });

  it("a follower that holds the snapshot's last entry only moves its commit index", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    h.propose("a", "x");
    h.deliverAll(ofType("append"));
    h.take();
    const b = h.node("b");
    assert.deepEqual([b.lastIndex, b.commitIndex], [2, 1]);
    b.step({
      type: "snapshot",
      from: "a",
      to: "b",
      term: 1,
      meta: { index: 2, term: 1, membership: b.membership },
      offset: 0,
      data: encodeState(["x"]),
      done: true,
    });
    h.drain("b");
    assert.equal(b.commitIndex, 2);
    assert.equal(h.record("b").restored.length, 0);
    assert.deepEqual(h.record("b").state, ["x"], "applied from its own log");
  });

  it("a restarted node starts applied at its snapshot and replays the committed entries after it", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"]);
    h.elect("a");
    for (const v of ["1", "2", "3"]) h.propose("a", v);
    h.stabilize();
    h.tickAll(1);
    compactAll(h, "b");
    h.propose("a", "4");
    h.stabilize();
    h.tickAll(1);
    const b = h.restart("b");
    assert.equal(b.appliedIndex, 4);
    assert.equal(b.firstIndex, 5);
    assert.equal(b.commitIndex, 5);
    assert.deepEqual(h.record("b").state, ["1", "2", "3"], "the driver restored the snapshot");
    h.drain("b");
    assert.deepEqual(h.record("b").state, ["1", "2", "3", "4"]);
    assert.equal(b.role, "follower");
    assert.equal(b.term, 1);
  });
});
