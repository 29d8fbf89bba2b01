/**
 * The in-memory Raft log of one node: the entries after the latest snapshot, kept in one array
 * with an index offset, plus the commit, applied and persisted positions. Entries are stored by
 * reference; the log never copies their data.
 *
 * @module
 */

import { RaftError } from "./raft_error.ts";
import type { Entry, SnapshotMeta } from "./types.ts";

const NO_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];

/**
 * The log of one Raft node.
 *
 * Positions: `snapshotIndex` (folded into the snapshot) < `firstIndex` ... `lastIndex` (entries in
 * the array). `committed` <= `lastIndex`; `applied` <= `committed` is what was handed out for
 * applying; entries from `stableIndex + 1` on were not handed out for persisting yet.
 *
 * @example
 * ```ts
 * import { RaftLog } from "./raft_log.ts";
 * const log = new RaftLog({ index: 0, term: 0, membership: { voters: ["a"], learners: [], removed: [] } }, [], 0);
 * log.append({ index: 1, term: 1, type: "noop", data: new Uint8Array() });
 * console.log(log.lastIndex, log.term(1)); // 1 1
 * ```
 */
export class RaftLog {
  /** Index of the last entry folded into the snapshot (0 without snapshot). */
  snapshotIndex: number;
  /** Term of the entry at `snapshotIndex` (0 without snapshot). */
  snapshotTerm: number;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index handed out for applying (or restored from a snapshot). */
  applied: number;
  /**
   * False for a node that has neither a snapshot nor entries: a member that joins an existing
   * cluster. It accepts no entries until it receives the leader's snapshot (the membership as of
   * the snapshot is in no entry).
   */
  hasBase: boolean;
  /**
   * Highest index reported durable (`markDurable`): every entry of this log up to it is on stable
   * storage (or folded into a stored snapshot). Only maintained for asynchronous persistence.
   */
  durable: number;
  private entries: Entry[];
  private stable: number;

  /**
   * Creates the log from persisted state. `entries` must follow the snapshot contiguously;
   * `commit` is clamped up to the snapshot index.
   */
  constructor(snapshot: SnapshotMeta | undefined, entries: readonly Entry[], commit: number) {
    this.snapshotIndex = snapshot?.index ?? 0;
    this.snapshotTerm = snapshot?.term ?? 0;
    let expected = this.snapshotIndex + 1;
    let lastTerm = this.snapshotTerm;
    for (const entry of entries) {
      if (entry.index !== expected) {
        throw new RaftError(`log entries are not contiguous: expected index ${expected}, got ${entry.index}`);
      }
      if (entry.term < lastTerm) {
        throw new RaftError(`log entry ${entry.index} has term ${entry.term} below the previous ${lastTerm}`);
      }
      lastTerm = entry.term;
      expected++;
    }
    this.entries = entries.slice();
    this.hasBase = snapshot !== undefined || entries.length > 0;
    const last = this.lastIndex;
    if (commit > last) throw new RaftError(`persisted commit ${commit} is beyond the last log index ${last}`);
    this.committed = Math.max(commit, this.snapshotIndex);
    this.applied = this.snapshotIndex;
    this.stable = last;
    this.durable = last;
  }

  /** Index of the first entry held in the array (snapshotIndex + 1). */
  get firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  /** Index of the last entry (the snapshot index when the array is empty). */
  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  /** Bytes of entry data held in the array (a diagnostic: walks the entries). */
  byteSize(): number {
    let bytes = 0;
    for (const entry of this.entries) bytes += entry.data.byteLength;
    return bytes;
  }

  /** Term of the last entry. */
  get lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? this.snapshotTerm : last.term;
  }

  /** Term of the entry at `index`, or undefined if it is compacted or beyond the end. */
  term(index: number): number | undefined {
    const offset = index - this.snapshotIndex;
    if (offset === 0) return this.snapshotTerm;
    if (offset < 0) return undefined;
    return this.entries[offset - 1]?.term; // undefined beyond the end
  }

  /** True if the log holds an entry (or the snapshot) at `index` with term `term`. */
  matchTerm(index: number, term: number): boolean {
    if (!this.hasBase) return false;
    return this.term(index) === term;
  }

  /** Appends one entry at `lastIndex + 1`. */
  append(entry: Entry): void {
    this.entries.push(entry);
    this.hasBase = true;
  }

  /**
   * Drops the entries from `index` on (a conflicting suffix on a follower). Never below the commit
   * index unless `force` (only used by the deliberately broken testing variants).
   */
  truncateFrom(index: number, force = false): void {
    if (index <= this.committed && !force) {
      throw new RaftError(
        `cannot truncate committed entries: truncate from ${index}, committed ${this.committed}`,
      );
    }
    const keep = index - this.snapshotIndex - 1;
    if (keep < 0) throw new RaftError(`cannot truncate compacted entries from ${index}`);
    if (keep >= this.entries.length) return;
    this.entries.length = keep;
    if (this.stable >= index) this.stable = index - 1;
    if (this.durable >= index) this.durable = index - 1;
    const last = this.lastIndex;
    if (this.committed > last) this.committed = last;
    if (this.applied > last) this.applied = last;
  }

  /**
   * Index of the first entry of `entries` that is not in the log (beyond the end, or a different
   * term at the same index), or 0 if all are present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (entry.index <= this.snapshotIndex) continue;
      if (this.term(entry.index) !== entry.term) return entry.index;
    }
    return 0;
  }

  /**
   * The largest index at or below `index` whose term is at most `term`, with that term; terms are
   * non-decreasing along a log, so this is a binary search. Returns term 0 when the answer lies in
   * the compacted part of the log (unknown).
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    const last = this.lastIndex;
    if (index > last) index = last;
    if (index < this.snapshotIndex) return [index, 0];
    if (this.snapshotTerm > term) return [Math.max(this.snapshotIndex - 1, 0), 0];
    // Invariant: term(lo) <= term; search the largest such position in [lo, index].
    let lo = this.snapshotIndex;
    let hi = index;
    while (lo < hi) {
      const mid = lo + Math.ceil((hi - lo) / 2);
      if ((this.term(mid) as number) <= term) lo = mid;
      else hi = mid - 1;
    }
    return [lo, this.term(lo) as number];
  }

  /** True if a log ending at (`lastIndex`, `lastTerm`) is at least as up to date as this one. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm;
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex);
  }

  /**
   * Entries from `from` on, at most `maxCount` of them and at most `maxBytes` of payload (but at
   * least one). Empty if `from` is beyond the end.
   */
  entriesFrom(from: number, maxCount: number, maxBytes: number): Entry[] {
    const start = from - this.snapshotIndex - 1;
    const entries = this.entries;
    if (start < 0) throw new RaftError(`entries from ${from} are compacted (first index ${this.firstIndex})`);
    if (start >= entries.length) return [];
    let end = Math.min(entries.length, start + maxCount);
    let bytes = entries[start]!.data.byteLength; // start < length
    for (let i = start + 1; i < end; i++) {
      bytes += entries[i]!.data.byteLength; // i < end <= length
      if (bytes > maxBytes) {
        end = i;
        break;
      }
    }
    return entries.slice(start, end);
  }

  /** Entries in [`from`, `to`] (both inclusive, must be in memory). */
  slice(from: number, to: number): Entry[] {
    if (to < from) return [];
    const start = from - this.snapshotIndex - 1;
    if (start < 0) throw new RaftError(`entries from ${from} are compacted (first index ${this.firstIndex})`);
    return this.entries.slice(start, to - this.snapshotIndex);
  }

  /** Moves the commit index forward to `index` (never backwards, never beyond the end). */
  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    const last = this.lastIndex;
    if (index > last) throw new RaftError(`commit ${index} is beyond the last log index ${last}`);
    this.committed = index;
    return true;
  }

  /**
   * Records that the log is durable up to entry (`index`, `term`): moves {@linkcode durable} there
   * if that entry is still in the log with that term (a report about an entry since overwritten
   * or truncated is ignored) and was handed out for persisting. Returns true if it moved.
   */
  markDurable(index: number, term: number): boolean {
    if (index <= this.durable || index > this.stable) return false;
    if (this.term(index) !== term) return false;
    this.durable = index;
    return true;
  }

  /** True if there are entries that were not handed out for persisting. */
  hasUnstable(): boolean {
    return this.stable < this.lastIndex;
  }

  /** Entries not yet handed out for persisting; marks them as handed out. */
  takeUnstable(): readonly Entry[] {
    const last = this.lastIndex;
    if (this.stable >= last) return NO_ENTRIES;
    const from = this.stable + 1;
    this.stable = last;
    if (from === this.firstIndex) return this.entries.slice();
    return this.slice(from, last);
  }

  /** True if committed entries wait to be handed out for applying. */
  hasUnapplied(): boolean {
    return this.applied < this.committed;
  }

  /** Committed entries not yet handed out for applying; marks them as applied. */
  takeCommitted(): readonly Entry[] {
    const from = Math.max(this.applied, this.snapshotIndex) + 1;
    const to = this.committed;
    this.applied = Math.max(this.applied, to);
    if (to < from) return NO_ENTRIES;
    return this.slice(from, to);
  }

  /** Discards the entries up to and including `index` (folded into a snapshot). */
  compact(index: number): void {
    if (index <= this.snapshotIndex) return;
    if (index > this.applied) throw new RaftError(`cannot compact to ${index}: applied is ${this.applied}`);
    const term = this.term(index) as number;
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /**
   * Resets the log to a snapshot received from the leader: no entries, commit at the snapshot.
   * `applied` moves when the snapshot is handed out.
   */
  restore(meta: SnapshotMeta): void {
    this.entries = [];
    this.snapshotIndex = meta.index;
    this.snapshotTerm = meta.term;
    this.committed = meta.index;
    this.stable = meta.index;
    // nothing of the new log is durable until the batch with the snapshot is reported persisted
    this.durable = 0;
    this.hasBase = true;
  }

  /** Marks the restored snapshot as handed out for applying. */
  markSnapshotApplied(): void {
    if (this.applied < this.snapshotIndex) this.applied = this.snapshotIndex;
  }
}
