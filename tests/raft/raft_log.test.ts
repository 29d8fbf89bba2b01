import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftLog } from "../../src/raft/raft_log.ts";
import { RaftError } from "../../src/raft/raft_error.ts";
import type { Entry } from "../../src/raft/types.ts";

const membership = { voters: ["a"], learners: [], removed: [] };
const e = (index: number, term: number, bytes = 0): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(bytes),
});
/** A log with entries of the given terms from index 1. */
function logOf(terms: number[], commit = 0): RaftLog {
  return new RaftLog({ index: 0, term: 0, membership }, terms.map((t, i) => e(i + 1, t)), commit);
}

describe("RaftLog", () => {
  it("answers terms for the snapshot, held entries, and nothing else", () => {
    const log = new RaftLog({ index: 5, term: 2, membership }, [e(6, 2), e(7, 3)], 6);
    assert.equal(log.firstIndex, 6);
    assert.equal(log.lastIndex, 7);
    assert.equal(log.lastTerm, 3);
    assert.equal(log.term(5), 2);
    assert.equal(log.term(7), 3);
    assert.equal(log.term(4), undefined);
    assert.equal(log.term(8), undefined);
    assert.equal(log.committed, 6);
    assert.equal(log.applied, 5);
    assert.equal(log.hasUnstable(), false, "loaded entries are already persisted");
  });

  it("rejects non-contiguous entries, decreasing terms and a commit beyond the end", () => {
    assert.throws(() => new RaftLog(undefined, [e(2, 1)], 0), RaftError);
    assert.throws(() => new RaftLog(undefined, [e(1, 2), e(2, 1)], 0), RaftError);
    assert.throws(() => new RaftLog(undefined, [e(1, 1)], 2), RaftError);
  });

  it("a log without snapshot and entries has no base and matches nothing, not even index 0", () => {
    const log = new RaftLog(undefined, [], 0);
    assert.equal(log.hasBase, false);
    assert.equal(log.matchTerm(0, 0), false);
    const bootstrapped = new RaftLog({ index: 0, term: 0, membership }, [], 0);
    assert.equal(bootstrapped.matchTerm(0, 0), true);
  });

  it("finds the first conflicting entry", () => {
    const log = logOf([1, 1, 2, 2]);
    assert.equal(log.findConflict([e(2, 1), e(3, 2)]), 0);
    assert.equal(log.findConflict([e(3, 2), e(4, 3), e(5, 3)]), 4);
    assert.equal(log.findConflict([e(4, 2), e(5, 2)]), 5);
  });

  it("findConflictByTerm skips whole terms (binary search over non-decreasing terms)", () => {
    const log = logOf([1, 1, 1, 4, 4, 5, 5, 5, 6]);
    assert.deepEqual(log.findConflictByTerm(9, 5), [8, 5]);
    assert.deepEqual(log.findConflictByTerm(9, 4), [5, 4]);
    assert.deepEqual(log.findConflictByTerm(9, 3), [3, 1]);
    assert.deepEqual(log.findConflictByTerm(9, 0), [0, 0]);
    assert.deepEqual(log.findConflictByTerm(20, 9), [9, 6], "clamped to the last index");
    const compacted = new RaftLog({ index: 10, term: 5, membership }, [e(11, 6)], 10);
    assert.deepEqual(compacted.findConflictByTerm(8, 6), [8, 0], "below the snapshot: unknown");
    assert.deepEqual(compacted.findConflictByTerm(11, 4), [9, 0], "snapshot term too new");
    assert.deepEqual(compacted.findConflictByTerm(11, 5), [10, 5]);
  });

  it("is up to date by last term first, then last index", () => {
    const log = logOf([1, 2, 2]);
    assert.equal(log.isUpToDate(3, 2), true);
    assert.equal(log.isUpToDate(2, 2), false);
    assert.equal(log.isUpToDate(1, 3), true);
    assert.equal(log.isUpToDate(10, 1), false);
  });

  it("batches by count and bytes, but always at least one entry", () => {
    const entries = [e(1, 1, 10), e(2, 1, 10), e(3, 1, 10), e(4, 1, 10)];
    const log = new RaftLog({ index: 0, term: 0, membership }, entries, 0);
    assert.deepEqual(log.entriesFrom(1, 3, 1000).map((x) => x.index), [1, 2, 3]);
    assert.deepEqual(log.entriesFrom(2, 10, 25).map((x) => x.index), [2, 3]);
    assert.deepEqual(log.entriesFrom(1, 10, 1).map((x) => x.index), [1]);
    assert.deepEqual(log.entriesFrom(5, 10, 1000), []);
    assert.equal(log.entriesFrom(1, 1, 1000)[0], entries[0], "entries are passed by reference");
  });

  it("truncates a conflicting suffix, never committed entries", () => {
    const log = logOf([1, 1, 2, 2], 2);
    assert.throws(() => log.truncateFrom(2), RaftError);
    log.truncateFrom(3);
    assert.equal(log.lastIndex, 2);
    log.append(e(3, 3));
    assert.deepEqual(log.takeUnstable().map((x) => [x.index, x.term]), [[3, 3]]);
  });

  it("hands out unstable and committed entries once", () => {
    const log = logOf([]);
    log.append(e(1, 1));
    log.append(e(2, 1));
    assert.deepEqual(log.takeUnstable().map((x) => x.index), [1, 2]);
    assert.deepEqual(log.takeUnstable(), []);
    log.commitTo(1);
    assert.deepEqual(log.takeCommitted().map((x) => x.index), [1]);
    assert.equal(log.applied, 1);
    assert.deepEqual(log.takeCommitted(), []);
    assert.throws(() => log.commitTo(3), RaftError);
    assert.equal(log.commitTo(1), false, "never backwards");
  });

  it("compacts up to the applied index and keeps the later entries", () => {
    const log = logOf([1, 1, 2, 2], 3);
    log.takeCommitted();
    assert.throws(() => log.compact(4), RaftError);
    log.compact(2);
    assert.equal(log.snapshotIndex, 2);
    assert.equal(log.snapshotTerm, 1);
    assert.equal(log.firstIndex, 3);
    assert.equal(log.term(3), 2);
    assert.throws(() => log.entriesFrom(2, 10, 100), RaftError);
    assert.throws(() => log.slice(1, 3), RaftError);
    log.compact(1);
    assert.equal(log.snapshotIndex, 2, "an older compaction is a no-op");
  });

  it("restores to a snapshot with nothing after it", () => {
    const log = logOf([1, 1]);
    log.restore({ index: 9, term: 3, membership });
    assert.equal(log.lastIndex, 9);
    assert.equal(log.committed, 9);
    assert.equal(log.applied, 0, "applied moves when the snapshot is handed out");
    log.markSnapshotApplied();
    assert.equal(log.applied, 9);
    assert.deepEqual(log.takeCommitted(), []);
    assert.deepEqual(log.slice(10, 9), []);
    assert.throws(() => log.slice(9, 9), RaftError, "index 9 is inside the snapshot");
  });

  it("only the broken testing variants may truncate committed entries; commit and applied follow", () => {
    const log = logOf([1, 1, 2, 2], 4);
    log.takeCommitted();
    log.truncateFrom(3, true);
    assert.deepEqual([log.lastIndex, log.committed, log.applied], [2, 2, 2]);
    log.truncateFrom(5, true);
    assert.equal(log.lastIndex, 2, "truncating beyond the end changes nothing");
    log.compact(1);
    assert.throws(() => log.truncateFrom(1, true), RaftError);
  });
});
