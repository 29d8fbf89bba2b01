/**
 * An in-memory {@linkcode RaftStorage}: state survives a restart of the Raft node that uses it
 * (the same object is handed to the new node), not a restart of the process.
 *
 * @module
 */

import { HamokClosedError, HamokError } from "../errors.ts";
import type { Entry, HardState, Snapshot } from "../raft/types.ts";
import type { RaftPersistentState, RaftStorage } from "./raft_storage.ts";

const INITIAL_HARD_STATE: HardState = Object.freeze({ term: 0, vote: undefined, commit: 0 });
const NO_DATA = new Uint8Array(0);

/**
 * Options of a {@linkcode MemoryRaftStorage}.
 *
 * @example
 * ```ts
 * import { MemoryRaftStorage, type MemoryRaftStorageOptions } from "./memory_storage.ts";
 * const options: MemoryRaftStorageOptions = { snapshotsOnDemand: true };
 * const storage = new MemoryRaftStorage("a/1", undefined, options);
 * console.log(storage.snapshotsOnDemand); // true
 * ```
 */
export interface MemoryRaftStorageOptions {
  /**
   * Keep no snapshot images ({@linkcode RaftStorage.snapshotsOnDemand}): a snapshot is stored as its
   * meta only, a peer on this storage compacts its log without making an image and makes one only
   * when a follower needs a snapshot. Such a storage cannot be loaded again once it holds a
   * snapshot, so it suits a storage that lives and dies with one Raft node (what `Hamok` makes when no
   * `storage` is given). Default false: images are kept, and the storage can be handed to a new node.
   */
  readonly snapshotsOnDemand?: boolean;
}

/**
 * Keeps the hard state, the log and the latest snapshot of one member in memory. All methods
 * complete synchronously; `load` also has a synchronous twin, {@linkcode MemoryRaftStorage.loadSync},
 * for deterministic simulations.
 *
 * @example
 * ```ts
 * import { MemoryRaftStorage } from "./memory_storage.ts";
 * const storage = new MemoryRaftStorage("a");
 * storage.saveHardState({ term: 2, vote: "a", commit: 0 });
 * storage.append([{ index: 1, term: 2, type: "noop", data: new Uint8Array() }]);
 * const state = await storage.load();
 * console.log(state.hardState.term, state.entries.length); // 2 1
 * ```
 */
export class MemoryRaftStorage implements RaftStorage {
  /** The member id this storage belongs to. */
  readonly memberId: string;
  private hardState: HardState;
  private snapshot: Snapshot | undefined;
  private entries: Entry[];
  private closed = false;
  readonly #onDemand: boolean;
  /** The `load()` calls that resolved so far. */
  #loads = 0;
  #restarts: number | undefined;

  /**
   * Creates a storage for `memberId`, empty or seeded with `initial` (e.g. the bootstrap snapshot
   * of a new cluster).
   */
  constructor(memberId: string, initial?: RaftPersistentState, options?: MemoryRaftStorageOptions) {
    if (typeof memberId !== "string" || memberId.length === 0) {
      throw new HamokError("MemoryRaftStorage needs a non-empty member id", "HAMOK_CONFIG");
    }
    this.#onDemand = options?.snapshotsOnDemand === true;
    this.memberId = memberId;
    this.hardState = initial?.hardState ?? INITIAL_HARD_STATE;
    this.snapshot = initial?.snapshot;
    this.entries = initial?.entries.slice() ?? [];
    const expected = (this.snapshot?.meta.index ?? 0) + 1;
    const head = this.entries[0];
    if (head !== undefined && head.index !== expected) {
      throw new HamokError(
        `initial entries must start at index ${expected}, got ${head.index}`,
        "HAMOK_CONFIG",
      );
    }
  }

  /** Index of the latest snapshot (0 without one). */
  get snapshotIndex(): number {
    return this.snapshot?.meta.index ?? 0;
  }

  /**
   * Whether this storage keeps no snapshot images ({@linkcode MemoryRaftStorageOptions.snapshotsOnDemand},
   * {@linkcode RaftStorage.snapshotsOnDemand}).
   */
  get snapshotsOnDemand(): boolean {
    return this.#onDemand;
  }

  /** Whether the bytes of a stored snapshot are held (false without a snapshot, or on demand). */
  get holdsSnapshotData(): boolean {
    return this.snapshot !== undefined && this.snapshot.data.byteLength > 0;
  }

  /** Index of the last stored entry (the snapshot index if there are none). */
  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  /**
   * How many times `load()` of this object resolved before the latest one (0 after the first;
   * `undefined` before it): a simulated restart that hands the same object to a new node gets a
   * greater number than every earlier one (see {@linkcode RaftStorage.restarts}). Held in memory,
   * like the rest of the state: a new object (a new member) starts at 0.
   */
  get restarts(): number | undefined {
    return this.#restarts;
  }

  /** Loads everything persisted so far; counts the load (see {@linkcode restarts}). */
  load(): Promise<RaftPersistentState> {
    try {
      const state = this.loadSync();
      this.#restarts = this.#loads++;
      return Promise.resolve(state);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Loads everything persisted so far, synchronously. The entries array is a copy. Not counted in
   * {@linkcode restarts} (a simulator reads the state through it without restarting a node).
   */
  loadSync(): RaftPersistentState {
    this.#checkOpen();
    if (this.#onDemand && this.snapshotIndex > 0) {
      throw new HamokError(
        `this storage keeps no snapshot images (snapshot ${this.snapshotIndex}): it cannot be loaded again`,
        "HAMOK_STORAGE",
      );
    }
    return this.snapshot === undefined
      ? { hardState: this.hardState, entries: this.entries.slice() }
      : { hardState: this.hardState, snapshot: this.snapshot, entries: this.entries.slice() };
  }

  /** Persists term, vote and commit index. */
  saveHardState(hardState: HardState): void {
    this.#checkOpen();
    this.hardState = hardState;
  }

  /** Appends entries, replacing any stored suffix from `entries[0].index` on. */
  append(entries: readonly Entry[]): void {
    this.#checkOpen();
    if (entries.length === 0) return;
    const base = this.snapshotIndex;
    let from = 0;
    // Entries at or below the snapshot are already folded into it.
    while (from < entries.length && entries[from]!.index <= base) from++; // from < length
    const firstEntry = entries[from];
    if (firstEntry === undefined) return;
    const first = firstEntry.index;
    if (first > this.lastIndex + 1) {
      throw new HamokError(`append at ${first} leaves a gap after the last stored index ${this.lastIndex}`);
    }
    this.entries.length = first - base - 1;
    for (let i = from; i < entries.length; i++) this.entries.push(entries[i]!); // i < length
  }

  /** Persists a snapshot and discards the entries it covers (see {@linkcode RaftStorage.saveSnapshot}). */
  saveSnapshot(snapshot: Snapshot): void {
    this.#checkOpen();
    const { index, term } = snapshot.meta;
    const base = this.snapshotIndex;
    if (this.snapshot !== undefined && index <= base) return;
    const position = index - base - 1;
    const stored = position >= 0 && position < this.entries.length ? this.entries[position] : undefined;
    this.entries = stored !== undefined && stored.term === term ? this.entries.slice(position + 1) : [];
    // on demand: the meta only, whatever bytes came with it (the node holds an image while it sends it)
    this.snapshot = this.#onDemand && index > 0 ? { meta: snapshot.meta, data: NO_DATA } : snapshot;
  }

  /** Closes the storage; later calls throw {@linkcode HamokClosedError}. */
  close(): void {
    this.closed = true;
  }

  #checkOpen(): void {
    if (this.closed) throw new HamokClosedError(`storage of member ${this.memberId} is closed`);
  }
}
