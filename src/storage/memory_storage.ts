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
 * const options: MemoryRaftStorageOptions = { releaseSnapshotData: true };
 * const storage = new MemoryRaftStorage("a/1", undefined, options);
 * console.log(storage.holdsSnapshotData); // false: no snapshot yet
 * ```
 */
export interface MemoryRaftStorageOptions {
  /**
   * Lets the driver drop the bytes of the stored snapshot once nothing reads them
   * ({@linkcode MemoryRaftStorage.releaseSnapshotData}); a leader makes a new snapshot when a
   * follower needs one. Such a storage cannot be loaded again after a release, so it suits a storage
   * that lives and dies with one Raft node (what `Hamok` makes when no `storage` is given).
   * Default false: the image is kept, and the storage can be handed to a new node.
   */
  readonly releaseSnapshotData?: boolean;
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
  readonly #mayRelease: boolean;
  /** Index of the snapshot whose bytes were released (0: none). */
  #released = 0;
  /** Size of the released bytes. */
  #releasedSize = 0;

  /**
   * Creates a storage for `memberId`, empty or seeded with `initial` (e.g. the bootstrap snapshot
   * of a new cluster).
   */
  constructor(memberId: string, initial?: RaftPersistentState, options?: MemoryRaftStorageOptions) {
    if (typeof memberId !== "string" || memberId.length === 0) {
      throw new HamokError("MemoryRaftStorage needs a non-empty member id", "HAMOK_CONFIG");
    }
    this.#mayRelease = options?.releaseSnapshotData === true;
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

  /** Whether the bytes of the stored snapshot are held (false without a snapshot or after a release). */
  get holdsSnapshotData(): boolean {
    return this.snapshot !== undefined && this.#released === 0;
  }

  /** Index of the last stored entry (the snapshot index if there are none). */
  get lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  /** Loads everything persisted so far. */
  load(): Promise<RaftPersistentState> {
    try {
      return Promise.resolve(this.loadSync());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Loads everything persisted so far, synchronously. The entries array is a copy. */
  loadSync(): RaftPersistentState {
    this.#checkOpen();
    if (this.#released !== 0) {
      throw new HamokError(
        `the bytes of snapshot ${this.#released} were released: this storage cannot be loaded again`,
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
    this.snapshot = snapshot;
    this.#released = 0;
  }

  /**
   * Reads `length` bytes of the stored snapshot's data from `offset`; `undefined` if the snapshot
   * at `index` is not the stored one or its bytes were released (see
   * {@linkcode RaftStorage.readSnapshot}). The bytes are a view, not a copy.
   */
  readSnapshot(index: number, offset: number, length: number): Promise<Uint8Array | undefined> {
    const snapshot = this.snapshot;
    if (
      this.closed || snapshot === undefined || snapshot.meta.index !== index || this.#released === index ||
      offset < 0 || length < 0 || offset + length > snapshot.data.byteLength
    ) return Promise.resolve(undefined);
    return Promise.resolve(snapshot.data.subarray(offset, offset + length));
  }

  /**
   * Drops the bytes of the stored snapshot if it is the one at `index` and the storage was made
   * with {@linkcode MemoryRaftStorageOptions.releaseSnapshotData} (its meta stays); returns true if
   * they were dropped. Reads of it find nothing afterwards, and {@linkcode loadSync} throws.
   */
  releaseSnapshotData(index: number): boolean {
    const snapshot = this.snapshot;
    if (
      !this.#mayRelease || snapshot === undefined || snapshot.meta.index !== index || this.#released === index
    ) {
      return false;
    }
    this.snapshot = snapshot.digest === undefined
      ? { meta: snapshot.meta, data: NO_DATA }
      : { meta: snapshot.meta, data: NO_DATA, digest: snapshot.digest };
    this.#released = index;
    this.#releasedSize = snapshot.data.byteLength;
    return true;
  }

  /**
   * Holds the bytes of the stored snapshot again after a release: `data` must be an image of the
   * same state (the same size, and the same CRC-32C if the snapshot has one). Returns true if they
   * were taken.
   */
  attachSnapshotData(index: number, data: Uint8Array, digest?: number): boolean {
    const snapshot = this.snapshot;
    if (
      this.closed || snapshot === undefined || snapshot.meta.index !== index || this.#released !== index ||
      data.byteLength !== this.#releasedSize || (snapshot.digest !== undefined && digest !== snapshot.digest)
    ) return false;
    this.snapshot = snapshot.digest === undefined
      ? { meta: snapshot.meta, data }
      : { meta: snapshot.meta, data, digest: snapshot.digest };
    this.#released = 0;
    return true;
  }

  /** Closes the storage; later calls throw {@linkcode HamokClosedError}. */
  close(): void {
    this.closed = true;
  }

  #checkOpen(): void {
    if (this.closed) throw new HamokClosedError(`storage of member ${this.memberId} is closed`);
  }
}
