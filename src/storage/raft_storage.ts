/**
 * The persistence seam of the Raft core: what a node must keep across restarts (term, vote,
 * commit, log entries, latest snapshot), and the interface a storage implements.
 *
 * @module
 */

import type { Entry, HardState, Snapshot } from "../raft/types.ts";

/**
 * Everything a Raft node persisted, as loaded on start.
 *
 * `entries` follow the snapshot contiguously: the first entry's index is `snapshot.meta.index + 1`,
 * or 1 without snapshot. The membership is derived from the snapshot's membership plus the config
 * entries in `entries`.
 *
 * @example
 * ```ts
 * // The persisted state of a member that bootstraps a new one-voter cluster.
 * const state: RaftPersistentState = {
 *   hardState: { term: 0, vote: undefined, commit: 0 },
 *   snapshot: { meta: { index: 0, term: 0, membership: { voters: ["a"], learners: [], removed: [] } }, data: new Uint8Array() },
 *   entries: [],
 * };
 * ```
 */
export interface RaftPersistentState {
  /** Term, vote and commit index. */
  readonly hardState: HardState;
  /** The latest snapshot, if any. A node without one and without entries is a joining member. */
  readonly snapshot?: Snapshot;
  /** Log entries after the snapshot. */
  readonly entries: readonly Entry[];
}

/**
 * Durable state of ONE Raft member.
 *
 * The member-id rule: a storage belongs to exactly one member id ({@linkcode RaftStorage.memberId}),
 * and a node must only ever run with the storage of its own id. A node that lost its storage must
 * come back under a NEW member id and join through membership changes: its old id may have voted
 * or acknowledged entries that the cluster counts on, so running it again with an empty log could
 * break safety. Since removed ids are tombstoned in the membership, the old id can never be reused.
 *
 * Methods may complete synchronously (return `void`) or asynchronously (return a promise); the
 * driver persists everything of one `RaftReady` before it sends that ready's acknowledgements (a
 * leader's appends may go out while it persists: see `RaftConfig.asyncPersistence`).
 *
 * @example
 * ```ts
 * import { MemoryRaftStorage } from "./memory_storage.ts";
 * const storage: RaftStorage = new MemoryRaftStorage("node-1");
 * const state = await storage.load();
 * console.log(storage.memberId, state.hardState.term); // node-1 0
 * ```
 */
export interface RaftStorage {
  /** The member id this storage belongs to (see the member-id rule above). */
  readonly memberId: string;
  /** Loads everything persisted so far (an empty state for a new storage). */
  load(): Promise<RaftPersistentState>;
  /** Persists term, vote and commit index. */
  saveHardState(hardState: HardState): Promise<void> | void;
  /**
   * Appends entries; any stored entries from `entries[0].index` on are replaced first (a
   * follower's conflicting suffix). Entries must connect to the stored log without a gap.
   */
  append(entries: readonly Entry[]): Promise<void> | void;
  /**
   * Persists a snapshot and discards the entries it covers (index at or below its index). Entries
   * after it are kept only if the stored entry at the snapshot's index has the snapshot's term
   * (a local compaction); otherwise (a snapshot installed from the leader) the whole log is
   * discarded. A snapshot older than the stored one is ignored.
   *
   * A promise resolves once the snapshot is durable. For a local compaction (a snapshot the node
   * made itself, whose entries are already stored) the driver does not wait for it: appends, hard
   * states and syncs of later batches may be called while it runs, and the storage must keep them
   * (the entries after the snapshot's index stay). A rejection stops the driver. A snapshot
   * received from the leader is waited for before anything of its batch is acknowledged.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void> | void;
  /**
   * Optional: reads `length` bytes of the data of the stored snapshot at `index`, from `offset`;
   * `undefined` if that snapshot is no longer the stored one (replaced by a newer one) or cannot be
   * read. A storage with it keeps snapshot images on disk only: once a save resolved (and after a
   * restart's restore) the node drops its copy of the bytes, and the chunks a leader sends are read
   * through this method (a chunk it cannot read is dropped; the transfer sends it again).
   */
  readSnapshot?(index: number, offset: number, length: number): Promise<Uint8Array | undefined>;
  /**
   * Optional: true for a storage that keeps no snapshot images and is never loaded again (the
   * memory storage a `Hamok` peer makes itself): it stores a snapshot's meta only, its peer compacts
   * the log without making an image (`RaftNode.compactWithoutImage`) and makes one only when a
   * follower needs a snapshot; the node holds that image while it is sent.
   */
  readonly snapshotsOnDemand?: boolean;
  /**
   * Optional: makes everything written so far durable (a file storage's fsync). The driver calls it
   * once per ready batch that carries entries, a snapshot or a new term or vote, after that batch's
   * writes and before its acknowledgements go out, so one sync covers all of them (group commit);
   * a batch that only moves the commit index is not synced (the next sync covers it). A storage
   * with `sync` runs its node with `RaftConfig.asyncPersistence`: the leader's appends leave while
   * it syncs, and its entries count toward a commit once the sync is done. Storages whose writes
   * are durable (or volatile) at once leave it out.
   */
  sync?(): Promise<void> | void;
  /**
   * Optional: how many times this member's storage was loaded before the latest `load()` of this
   * object (0 for the first load of a new member), counting every `load()` (a second one of the
   * same object too) of every process that ran the member. Valid once `load()` resolved
   * (`undefined` before, and for a storage that does not count). Strictly greater than the value
   * of every earlier load of this storage, in this process or an earlier one, and made durable
   * before `load()` resolves: a crash at any point never lets a later load get a number an
   * earlier one already got (numbers may be skipped). A peer orders the processes of one member by
   * it. It counts the loads of one member id: a storage discarded and made again for a new member
   * starts at 0.
   */
  readonly restarts?: number | undefined;
  /** Releases resources; no method may be called afterwards. */
  close(): Promise<void> | void;
}
