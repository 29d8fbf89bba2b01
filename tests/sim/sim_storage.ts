/**
 * The per-node stable storage of the simulator: what a driver persists from each
 * {@linkcode RaftReady} (hard state, snapshot, entries) and what a restarted node loads. It
 * survives crashes of its node (and is dropped on a crash with storage loss). Alongside every
 * entry it keeps the log-matching chain value (a hash of the entry and every entry before it), so
 * the safety checker can compare log prefixes in O(1).
 *
 * @module
 */

import type { Entry, HardState, RaftReady, Snapshot } from "../../src/raft/types.ts";
import { chain, entryDigest } from "./hash.ts";

/** What a Raft node is constructed from (the shape of `RaftPersistentState`). */
export interface SimPersistentState {
  /** Term, vote and commit. */
  hardState: HardState;
  /** The latest snapshot, if any. */
  snapshot?: Snapshot;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[];
}

/** Callbacks through which the storage reports to the safety checker. */
export interface StorageObserver {
  /** The chain value recorded for entry (index, term) anywhere, if known. */
  chainAt(index: number, term: number): number | undefined;
  /** An entry was persisted with this chain value. */
  persisted(nodeId: string, entry: Entry, chainValue: number): void;
  /** Something impossible happened (e.g. a gap in the log). */
  invariant(nodeId: string, message: string): void;
}

/**
 * Stable storage of one simulated node.
 *
 * @example
 * ```ts
 * const storage = new SimStorage("n1", observer);
 * storage.persist(ready);
 * const initial = storage.load();
 * ```
 */
export class SimStorage {
  /** Owner member id. */
  readonly nodeId: string;
  /** Persisted hard state. */
  hardState: HardState = { term: 0, vote: undefined, commit: 0 };
  /** Persisted snapshot. */
  snapshot: Snapshot | undefined;
  /** Entries after the snapshot. */
  entries: Entry[] = [];
  /** Chain value of each entry in {@linkcode entries}. */
  chains: number[] = [];
  /** Chain value at the snapshot index (undefined when unknown). */
  baseChain: number | undefined = 0;
  readonly #observer: StorageObserver;

  /** Creates empty storage. */
  constructor(nodeId: string, observer: StorageObserver) {
    this.nodeId = nodeId;
    this.#observer = observer;
  }

  /** Index of the snapshot (0 without one). */
  get snapshotIndex(): number {
    return this.snapshot?.meta.index ?? 0;
  }

  /** Index of the last entry (or of the snapshot). */
  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  /** The entry at `index`, if stored. */
  entryAt(index: number): Entry | undefined {
    return this.entries[index - this.snapshotIndex - 1];
  }

  /** The chain value at `index` (snapshot index included), if known. */
  chainAt(index: number): number | undefined {
    const s = this.snapshotIndex;
    if (index === s) return this.baseChain;
    return this.chains[index - s - 1];
  }

  /** Installs the initial snapshot of a bootstrapped cluster member. */
  bootstrap(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.baseChain = 0;
  }

  /** Persists the stable parts of a ready batch, in the documented order. */
  persist(rd: RaftReady): void {
    if (rd.hardState !== undefined) this.hardState = rd.hardState;
    if (rd.snapshot !== undefined) this.#saveSnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.#append(rd.entries);
  }

  /**
   * A crash during the sync of a ready batch (a power loss before the batch's `fdatasync` returned,
   * as the file storage would meet it): the snapshot (a file synced on its own) survives, then only
   * the first `keep` of the batch's log records in write order (entries, then hard state); the last
   * record is always lost (torn off). `keep` must be below the number of records; returns how many
   * records the batch had.
   */
  persistTorn(rd: RaftReady, keep: number): number {
    if (rd.snapshot !== undefined) this.#saveSnapshot(rd.snapshot);
    const records = (rd.entries.length > 0 ? 1 : 0) + (rd.hardState !== undefined ? 1 : 0);
    let left = Math.min(keep, records - 1);
    if (rd.entries.length > 0 && left-- > 0) this.#append(rd.entries);
    if (rd.hardState !== undefined && left-- > 0) this.hardState = rd.hardState;
    return records;
  }

  /** How many log records (entries, hard state) a ready batch writes. */
  static recordsOf(rd: RaftReady): number {
    return (rd.entries.length > 0 ? 1 : 0) + (rd.hardState !== undefined ? 1 : 0);
  }

  #saveSnapshot(snap: Snapshot): void {
    const { index, term } = snap.meta;
    const oldSnap = this.snapshotIndex;
    if (index < oldSnap) {
      this.#observer.invariant(this.nodeId, `snapshot at ${index} older than stored snapshot at ${oldSnap}`);
      return;
    }
    const local = this.entryAt(index);
    const base = this.#observer.chainAt(index, term);
    if (local !== undefined && local.term === term) {
      const keep = index - oldSnap;
      this.entries = this.entries.slice(keep);
      this.chains = this.chains.slice(keep);
    } else {
      this.entries = [];
      this.chains = [];
    }
    this.snapshot = snap;
    this.baseChain = base;
    if (base === undefined && index > 0) {
      this.#observer.invariant(this.nodeId, `snapshot (${index}, ${term}) of an entry no log ever held`);
    }
  }

  #append(entries: readonly Entry[]): void {
    const first = entries[0].index;
    const s = this.snapshotIndex;
    if (first > this.lastIndex + 1) {
      this.#observer.invariant(this.nodeId, `append at ${first} leaves a gap after ${this.lastIndex}`);
      return;
    }
    let from = 0;
    while (from < entries.length && entries[from].index <= s) from++;
    if (from === entries.length) return;
    const at = entries[from].index - s - 1;
    this.entries.length = at;
    this.chains.length = at;
    let prev = at === 0 ? this.baseChain : this.chains[at - 1];
    for (let i = from; i < entries.length; i++) {
      const e = entries[i];
      if (e.index !== s + 1 + this.entries.length) {
        this.#observer.invariant(this.nodeId, `non-consecutive entries in one append at ${e.index}`);
        return;
      }
      this.entries.push(e);
      if (prev === undefined) {
        this.chains.push(NaN);
        continue;
      }
      prev = chain(prev, entryDigest(e));
      this.chains.push(prev);
      this.#observer.persisted(this.nodeId, e, prev);
    }
  }

  /** The state a restarted node is constructed from (fresh arrays; entries are shared). */
  load(): SimPersistentState {
    const out: SimPersistentState = { hardState: this.hardState, entries: this.entries.slice() };
    if (this.snapshot !== undefined) out.snapshot = this.snapshot;
    return out;
  }
}
