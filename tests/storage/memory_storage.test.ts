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
  it("on demand: stores a snapshot's meta only, keeps the entries after it, and cannot be loaded again", () => {
    const s = new MemoryRaftStorage("b", undefined, { snapshotsOnDemand: true });
    assert.equal(s.snapshotsOnDemand, true);
    assert.equal(new MemoryRaftStorage("c").snapshotsOnDemand, false);
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    assert.equal(s.loadSync().entries.length, 3, "loadable before any snapshot");
    s.saveSnapshot({ meta: snap(2, 1).meta, data: new Uint8Array(16), digest: 5 });
    assert.equal(s.snapshotIndex, 2);
    assert.equal(s.holdsSnapshotData, false, "the bytes are not kept");
    assert.equal(s.lastIndex, 3, "the entries after it stay");
    assert.throws(
      () => s.loadSync(),
      (error: unknown) => error instanceof HamokError && error.code === "HAMOK_STORAGE",
    );
    const kept = new MemoryRaftStorage("d");
    kept.saveSnapshot({ meta: snap(2, 1).meta, data: new Uint8Array(16) });
    assert.equal(kept.holdsSnapshotData, true);
    assert.equal(kept.loadSync().snapshot?.data.byteLength, 16);
  });
});
