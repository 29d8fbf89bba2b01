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
import { crc32c } from "../../src/storage/crc32c.ts";
import { membershipWireBytes } from "../../src/raft/membership.ts";

const chunks = (ms: RaftMessage[]) => ms.filter((m): m is SnapshotChunkMessage => m.type === "snapshot");
const compactAll = (h: RaftHarness, id: string, withDigest = false) => {
  const node = h.node(id);
  const data = encodeState(h.record(id).state);
  node.compact(node.appliedIndex, data, withDigest ? crc32c(data) : undefined);
  h.drain(id);
};

/** Leader a with c cut off while `n` entries commit, then a compacts everything. */
function lagging(n: number, options = {}, withDigest = false): RaftHarness {
  const h = RaftHarness.bootstrap(["a", "b", "c"], options);
  h.elect("a");
  h.tickAll(1);
  h.isolate("c");
  for (let i = 0; i < n; i++) h.propose("a", `v${i}`);
  h.stabilize();
  h.tick("a");
  h.stabilize();
  compactAll(h, "a", withDigest);
  return h;
}

/** `lagging`, healed, with `a` sending its snapshot to `c`: returns the first window of chunks (taken). */
function transferring(n: number, options = {}, withDigest = false): [RaftHarness, SnapshotChunkMessage[]] {
  const h = lagging(n, options, withDigest);
  h.heal();
  h.tick("a");
  for (let i = 0; i < 2; i++) {
    h.deliverAll(to("c"));
    h.deliverAll(from("c"));
  }
  const window = chunks(h.take(to("c")));
  assert.ok(window.length > 0 && window[0]!.offset === 0, "a transfer started");
  return [h, window];
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

  it("cuts chunks so that a chunk and the membership its message carries fit snapshotMessageBytes", () => {
    // framing (4096) + this membership + 1500 bytes of image: the old code sent 8 KiB chunks
    const messageBytes = 4096 + membershipWireBytes({ voters: ["a", "b", "c"], learners: [], removed: [] }) +
      1500;
    const h = lagging(1500, {
      snapshotChunkBytes: 8192,
      snapshotMessageBytes: messageBytes,
      maxInflightAppends: 2,
    });
    const size = encodeState(h.record("a").state).byteLength;
    assert.ok(size > 3 * 1500, `an image of several chunks (${size} bytes)`);
    h.heal();
    for (let i = 0; i < 3 && h.record("c").restored.length === 0; i++) {
      h.tick("a");
      h.stabilize();
    }
    const all = chunks(h.sent.filter(to("c")));
    assert.deepEqual(all.map((m) => m.data.byteLength).slice(0, -1), Array(all.length - 1).fill(1500));
    assert.equal(all.length, Math.ceil(size / 1500));
    assert.deepEqual(h.record("c").state, h.record("a").state);
    assert.throws(() => h.node("a").setMessageLimits(1024, 8192, 0), RaftError);
  });

  it("never cuts a chunk below 1 KiB of image, however large the membership", () => {
    const h = lagging(1500, { snapshotChunkBytes: 8192, snapshotMessageBytes: 64, maxInflightAppends: 2 });
    const size = encodeState(h.record("a").state).byteLength;
    h.heal();
    for (let i = 0; i < 3 && h.record("c").restored.length === 0; i++) {
      h.tick("a");
      h.stabilize();
    }
    const all = chunks(h.sent.filter(to("c")));
    assert.equal(all.length, Math.ceil(size / 1024));
    assert.ok(all.slice(0, -1).every((m) => m.data.byteLength === 1024));
    assert.deepEqual(h.record("c").state, h.record("a").state);
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
      total: 64,
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
    assert.deepEqual(resent.map((m) => m.offset), [0], "one chunk probes the follower again");
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
      total: encodeState([]).length,
      data: encodeState([]),
      done: true,
    });
    const [answer] = h.take(from("b")) as SnapshotResponseMessage[];
    assert.deepEqual([answer.done, answer.index], [true, 2]);
    assert.equal(h.record("b").restored.length, 0);
    assert.equal(b.lastIndex, 2);
  });

  it("a follower that holds the snapshot's last entry only moves its commit index", () => {
    // five voters: a follower and the leader are no majority, so b does not commit on the append
    const h = RaftHarness.bootstrap(["a", "b", "c", "d", "e"]);
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
      total: encodeState(["x"]).length,
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

describe("snapshot chunk protocol", () => {
  it("every chunk announces the snapshot's size and digest", () => {
    const [h, window] = transferring(10, { snapshotChunkBytes: 8, maxInflightAppends: 3 }, true);
    const data = h.node("a").snapshotIndex > 0 ? encodeState(h.record("a").state) : new Uint8Array();
    for (const m of window) {
      assert.equal(m.total, data.length);
      assert.equal(m.digest, crc32c(data));
    }
  });

  it("a duplicate chunk is acknowledged again and written once", () => {
    const [h, window] = transferring(10, { snapshotChunkBytes: 8, maxInflightAppends: 3 }, true);
    h.deliver(window[0]!);
    h.deliver(window[0]!); // duplicated on the way
    h.deliver(window[1]!);
    const answers = h.take(from("c")) as SnapshotResponseMessage[];
    assert.deepEqual(answers.map((m) => [m.offset, m.reject]), [[8, false], [8, false], [16, false]]);
    assert.equal(h.node("c").snapshotReceived, 16);
    for (const m of answers) h.deliver(m);
    h.deliver(window[2]!);
    h.stabilize();
    assert.deepEqual(h.record("c").state, h.record("a").state);
    assert.deepEqual(h.node("c").snapshotReceiveStats, {
      oversize: 0,
      mismatched: 0,
      digestMismatches: 0,
      resumed: 0,
    });
  });

  it("after a leader change, the same snapshot (index, term, size, digest) goes on from the received offset", () => {
    const h = lagging(12, { snapshotChunkBytes: 8, maxInflightAppends: 2 }, true);
    compactAll(h, "b", true); // b holds the same image: same index, term and bytes
    const image = encodeState(h.record("a").state);
    assert.equal(h.node("b").snapshotIndex, h.node("a").snapshotIndex);
    h.heal();
    h.tick("a");
    for (let round = 0; round < 2; round++) {
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    // a sends a few windows, then is cut off
    for (let round = 0; round < 3; round++) {
      h.deliverAll((m) => m.to === "c" && m.type === "snapshot");
      h.deliverAll((m) => m.from === "c" && m.type === "snapshot-response");
    }
    const received = h.node("c").snapshotReceived;
    assert.ok(received > 0 && received < image.length, `c holds part of it (${received} of ${image.length})`);
    h.take();
    h.isolate("a");
    h.tick("c", 20); // past the leader lease of a (c may campaign meanwhile, and lose: its log is behind)
    h.take();
    h.elect("b");
    // b's first window starts at 0; c tells it where it is, and b goes on from there
    h.stabilize();
    const allByB = chunks(h.sent.filter((m) => m.from === "b" && m.to === "c"));
    const fresh = allByB.filter((m) => m.offset >= received);
    assert.ok(fresh.length > 0, "b sent the rest");
    assert.ok(
      allByB.every((m) => m.offset === 0 || m.offset >= received || m.offset < 2 * 8),
      "b never resent the middle of what c held",
    );
    assert.equal(h.node("c").snapshotReceiveStats.resumed, 1);
    assert.deepEqual(h.record("c").state, h.record("b").state);
    assert.equal(h.node("c").snapshotIndex, h.node("b").snapshotIndex);
  });

  it("after a leader change to another snapshot, the transfer starts over", () => {
    const h = lagging(12, { snapshotChunkBytes: 8, maxInflightAppends: 2 }, true);
    const b = h.node("b");
    // b's snapshot is another one: one entry earlier than a's
    const older = encodeState(h.record("b").state.slice(0, -1));
    b.compact(b.appliedIndex - 1, older, crc32c(older));
    h.drain("b");
    assert.equal(b.snapshotIndex, h.node("a").snapshotIndex - 1);
    h.heal();
    h.tick("a");
    for (let round = 0; round < 3; round++) {
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    assert.ok(h.node("c").snapshotReceived > 0);
    h.take();
    h.isolate("a");
    h.tick("c", 20); // past the leader lease of a
    h.take();
    h.elect("b");
    h.stabilize();
    const byB = chunks(h.sent.filter((m) => m.from === "b" && m.to === "c"));
    assert.ok(byB.length > 0, "b sent its snapshot");
    assert.equal(byB[0]!.offset, 0);
    assert.equal(byB[0]!.meta.index, b.snapshotIndex);
    assert.equal(h.node("c").snapshotReceiveStats.resumed, 0);
    assert.equal(h.node("c").snapshotIndex, b.snapshotIndex);
    assert.deepEqual(h.record("c").state, h.record("b").state);
  });

  it("a chunk past the announced size, or done where the data does not end, is dropped and counted", () => {
    const [h, window] = transferring(10, { snapshotChunkBytes: 8, maxInflightAppends: 3 }, true);
    const c = h.node("c");
    const first = window[0]!;
    c.step({ ...first, offset: first.total - 4, data: new Uint8Array(8), done: true }); // 4 bytes past the end
    c.step({ ...first, done: true }); // done after 8 of `total` bytes
    c.step({ ...first, total: 4 }); // a chunk larger than the whole
    assert.equal(h.take(from("c")).length, 0, "no answer to a malformed chunk");
    assert.equal(c.snapshotReceiveStats.mismatched, 3);
    h.deliver(first);
    c.step({ ...window[1]!, total: first.total + 8 }); // the same snapshot with another size: a new one
    assert.equal(c.snapshotReceiveStats.mismatched, 4);
    const answers = h.take(from("c")) as SnapshotResponseMessage[];
    assert.deepEqual(answers.map((m) => [m.offset, m.reject]), [[8, false], [0, true]]);
    for (const m of window) h.deliver(m);
    h.stabilize();
    assert.deepEqual(h.record("c").state, h.record("a").state, "the real transfer still completes");
  });

  it("a snapshot above maxSnapshotBytes is refused, counted, and never allocated", () => {
    const h = lagging(10, { snapshotChunkBytes: 8, maxInflightAppends: 3, maxSnapshotBytes: 16 }, true);
    h.heal();
    for (let round = 0; round < 5; round++) {
      h.tick("a");
      h.deliverAll();
    }
    const c = h.node("c");
    assert.ok(c.snapshotReceiveStats.oversize > 0);
    assert.equal(c.snapshotReceived, 0);
    assert.equal(h.record("c").restored.length, 0);
    const later = chunks(h.sent.filter(to("c")));
    // after the first window, the leader probes with one chunk a heartbeat round, not a window
    assert.ok(later.length <= 3 + 5, `${later.length} chunks sent to a follower that refuses them`);
    c.step({ ...later[0]!, total: 2 ** 60 });
    assert.equal(c.snapshotReceiveStats.mismatched, 1, "an unsafe size is malformed");
  });

  it("bytes that do not match the announced digest are dropped, counted, and asked for again", () => {
    const [h, window] = transferring(10, { snapshotChunkBytes: 8, maxInflightAppends: 64 }, true);
    const c = h.node("c");
    const last = window.at(-1)!;
    assert.ok(last.done);
    for (const m of window.slice(0, -1)) c.step(m);
    const flipped = Uint8Array.from(last.data);
    flipped[0] = flipped[0]! ^ 0xff;
    c.step({ ...last, data: flipped });
    assert.equal(c.snapshotReceiveStats.digestMismatches, 1);
    const answers = h.take(from("c")) as SnapshotResponseMessage[];
    assert.deepEqual([answers.at(-1)!.offset, answers.at(-1)!.reject, answers.at(-1)!.done], [
      0,
      true,
      false,
    ]);
    assert.equal(h.record("c").restored.length, 0, "nothing installed");
    for (const m of window) h.deliver(m);
    h.stabilize();
    assert.deepEqual(h.record("c").state, h.record("a").state);
  });

  it("a leader ignores an acknowledgement beyond its snapshot or its log", () => {
    const [h, window] = transferring(10, { snapshotChunkBytes: 8, maxInflightAppends: 3 }, true);
    const a = h.node("a");
    const total = window[0]!.total;
    const base = {
      type: "snapshot-response",
      from: "c",
      to: "a",
      term: a.term,
      index: a.snapshotIndex,
    } as const;
    a.step({ ...base, offset: total + 100, reject: false, done: false });
    a.step({ ...base, index: a.lastIndex + 100, offset: total, reject: false, done: true });
    assert.equal(a.progress.get("c")?.state, "snapshot", "still sending");
    assert.ok((a.progress.get("c")?.match ?? 0) <= a.lastIndex);
  });
});
