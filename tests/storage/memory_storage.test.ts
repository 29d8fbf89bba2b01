import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokClosedError, HamokError } from "../../src/errors.ts";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { MemoryRaftStorage } from "../../src/storage/memory_storage.ts";

const e = (index: number, term: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array([index]),
});
const snap = (index: number, term: number): Snapshot => ({
  meta: { index, term, membership: { voters: ["a"], learners: [], removed: [] } },
  data: new Uint8Array([9]),
});
const indexTerms = (entries: readonly Entry[]) => entries.map((x) => [x.index, x.term]);

describe("MemoryRaftStorage", () => {
  it("starts empty and belongs to one member id", async () => {
    const s = new MemoryRaftStorage("a");
    assert.equal(s.memberId, "a");
    const state = await s.load();
    assert.deepEqual(state, { hardState: { term: 0, vote: undefined, commit: 0 }, entries: [] });
    assert.throws(() => new MemoryRaftStorage(""), HamokError);
  });

  it("keeps the hard state, and appends replacing a conflicting suffix", async () => {
    const s = new MemoryRaftStorage("a");
    s.saveHardState({ term: 3, vote: "b", commit: 1 });
    s.append([e(1, 1), e(2, 1), e(3, 2)]);
    s.append([e(3, 3), e(4, 3)]);
    s.append([]);
    const state = await s.load();
    assert.deepEqual(state.hardState, { term: 3, vote: "b", commit: 1 });
    assert.deepEqual(indexTerms(state.entries), [[1, 1], [2, 1], [3, 3], [4, 3]]);
    assert.equal(s.lastIndex, 4);
    assert.throws(() => s.append([e(6, 3)]), /gap/);
  });

  it("loaded entries are a copy: later appends do not change an earlier load", () => {
    const s = new MemoryRaftStorage("a");
    s.append([e(1, 1)]);
    const first = s.loadSync();
    s.append([e(2, 1)]);
    assert.equal(first.entries.length, 1);
  });

  it("a local compaction keeps the entries after the snapshot", () => {
    const s = new MemoryRaftStorage("a");
    s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
    s.saveSnapshot(snap(2, 1));
    const state = s.loadSync();
    assert.equal(state.snapshot?.meta.index, 2);
    assert.deepEqual(indexTerms(state.entries), [[3, 2], [4, 2]]);
    assert.equal(s.snapshotIndex, 2);
    // Entries covered by the snapshot are skipped on append; later ones connect after it.
    s.append([e(2, 1), e(3, 2), e(4, 2), e(5, 2)]);
    assert.deepEqual(indexTerms(s.loadSync().entries), [[3, 2], [4, 2], [5, 2]]);
    s.append([e(1, 1)]);
    assert.equal(s.lastIndex, 5);
  });

  it("a snapshot from the leader that the stored log does not match discards the whole log", () => {
    const s = new MemoryRaftStorage("a");
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    s.saveSnapshot(snap(2, 5));
    assert.deepEqual(s.loadSync().entries, []);
    assert.equal(s.lastIndex, 2);
    const t = new MemoryRaftStorage("b");
    t.append([e(1, 1)]);
    t.saveSnapshot(snap(7, 2));
    assert.deepEqual(t.loadSync().entries, []);
    s.append([e(3, 5)]);
    assert.deepEqual(indexTerms(s.loadSync().entries), [[3, 5]]);
  });

  it("ignores a snapshot older than the stored one", () => {
    const s = new MemoryRaftStorage("a");
    s.saveSnapshot(snap(5, 2));
    s.append([e(6, 2)]);
    s.saveSnapshot(snap(3, 1));
    const state = s.loadSync();
    assert.equal(state.snapshot?.meta.index, 5);
    assert.deepEqual(indexTerms(state.entries), [[6, 2]]);
  });

  it("can be seeded with an initial state (a bootstrap snapshot) and validates it", () => {
    const s = new MemoryRaftStorage("a", {
      hardState: { term: 0, vote: undefined, commit: 0 },
      snapshot: snap(0, 0),
      entries: [e(1, 1)],
    });
    assert.equal(s.loadSync().snapshot?.meta.index, 0);
    assert.throws(
      () =>
        new MemoryRaftStorage("a", {
          hardState: { term: 0, vote: undefined, commit: 0 },
          entries: [e(2, 1)],
        }),
      HamokError,
    );
  });

  it("refuses every call after close", async () => {
    const s = new MemoryRaftStorage("a");
    s.close();
    assert.throws(() => s.saveHardState({ term: 1, vote: undefined, commit: 0 }), HamokClosedError);
    assert.throws(() => s.append([e(1, 1)]), HamokClosedError);
    assert.throws(() => s.saveSnapshot(snap(1, 1)), HamokClosedError);
    await assert.rejects(s.load(), HamokClosedError);
  });
  it("reads ranges of the stored snapshot's bytes, and nothing of another index", async () => {
    const s = new MemoryRaftStorage("a");
    const data = new Uint8Array(32).map((_, i) => i);
    s.saveSnapshot({ meta: snap(5, 2).meta, data });
    assert.deepEqual(await s.readSnapshot(5, 4, 3), new Uint8Array([4, 5, 6]));
    assert.equal(await s.readSnapshot(4, 0, 3), undefined, "another index");
    assert.equal(await s.readSnapshot(5, 30, 3), undefined, "beyond the end");
    assert.equal(await s.readSnapshot(5, -1, 3), undefined, "a negative offset");
  });

  it("keeps the snapshot's bytes unless made to release them", async () => {
    const kept = new MemoryRaftStorage("a");
    kept.saveSnapshot({ meta: snap(5, 2).meta, data: new Uint8Array(8) });
    assert.equal(kept.releaseSnapshotData(5), false);
    assert.equal((await kept.readSnapshot(5, 0, 8))?.byteLength, 8);
    assert.equal(kept.loadSync().snapshot?.data.byteLength, 8);

    const s = new MemoryRaftStorage("b", undefined, { releaseSnapshotData: true });
    s.saveSnapshot({ meta: snap(5, 2).meta, data: new Uint8Array(8), digest: 7 });
    s.append([e(6, 2)]);
    assert.equal(s.releaseSnapshotData(4), false, "not the stored snapshot");
    assert.equal(s.releaseSnapshotData(5), true);
    assert.equal(s.releaseSnapshotData(5), false, "already released");
    assert.equal(await s.readSnapshot(5, 0, 8), undefined, "released");
    assert.throws(
      () => s.loadSync(),
      (error: unknown) => error instanceof HamokError && error.code === "HAMOK_STORAGE",
    );
    // a newer snapshot is held again (and the storage can be loaded)
    s.saveSnapshot({ meta: snap(6, 2).meta, data: new Uint8Array(4) });
    assert.equal((await s.readSnapshot(6, 0, 4))?.byteLength, 4);
    const state = s.loadSync();
    assert.equal(state.snapshot?.meta.index, 6);
    assert.equal(state.snapshot?.data.byteLength, 4);
  });
  it("takes released bytes back only if they match the snapshot (size and digest)", async () => {
    const s = new MemoryRaftStorage("b", undefined, { releaseSnapshotData: true });
    const data = new Uint8Array([1, 2, 3, 4]);
    s.saveSnapshot({ meta: snap(5, 2).meta, data, digest: 99 });
    assert.equal(s.attachSnapshotData(5, data, 99), false, "nothing was released");
    assert.ok(s.releaseSnapshotData(5));
    assert.equal(s.attachSnapshotData(4, data, 99), false, "another index");
    assert.equal(s.attachSnapshotData(5, new Uint8Array(3), 99), false, "another size");
    assert.equal(s.attachSnapshotData(5, data, 98), false, "another digest");
    assert.equal(s.holdsSnapshotData, false);
    assert.equal(s.attachSnapshotData(5, data.slice(), 99), true);
    assert.equal(s.holdsSnapshotData, true);
    assert.deepEqual(await s.readSnapshot(5, 1, 2), new Uint8Array([2, 3]));
    assert.equal(s.loadSync().snapshot?.digest, 99, "loadable again");
  });
});
