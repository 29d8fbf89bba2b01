/**
 * The vocabulary of the pure Raft core: entries, messages, membership, and the output batch
 * ({@linkcode RaftReady}) that a driver acts upon. Nothing here does I/O.
 *
 * @module
 */

/** The role a Raft node currently plays. */
export type RaftRole = "follower" | "pre-candidate" | "candidate" | "leader";

/**
 * Kind of a log entry.
 * - `normal`: an application command (opaque bytes).
 * - `config`: a membership change ({@linkcode MembershipChange}, stored in `change`).
 * - `noop`: the empty entry a new leader appends to commit entries of earlier terms.
 */
export type EntryType = "normal" | "config" | "noop";

/** One entry of the replicated log. */
export interface Entry {
  /** Position in the log, starting at 1. */
  readonly index: number;
  /** Term of the leader that created the entry. */
  readonly term: number;
  /** What the entry carries. */
  readonly type: EntryType;
  /** The application command (for `normal`), empty otherwise. Never copied by the core. */
  readonly data: Uint8Array;
  /** Optional client request id, carried for deduplication by the state machine. */
  readonly requestId?: string;
  /** The membership change, for `config` entries. */
  readonly change?: MembershipChange;
}

/** A membership change proposed through the log. One may be pending (uncommitted) at a time. */
export interface MembershipChange {
  /**
   * - `add-learner`: the member receives the log but does not vote.
   * - `promote`: a learner becomes a voter.
   * - `remove`: the member (voter or learner) leaves; its id can never be added again.
   */
  readonly type: "add-learner" | "promote" | "remove";
  /** The member id the change is about. */
  readonly memberId: string;
}

/** The membership of the cluster. */
export interface Membership {
  /** Members that vote and count towards quorums. */
  readonly voters: readonly string[];
  /** Members that receive the log but do not vote. */
  readonly learners: readonly string[];
  /** Member ids that were removed; they are never accepted again (tombstones). */
  readonly removed: readonly string[];
}

/** State that must be persisted before any message produced with it is sent. */
export interface HardState {
  /** Latest term this node has seen. */
  readonly term: number;
  /** Candidate this node voted for in `term`, if any. */
  readonly vote: string | undefined;
  /** Highest log index known to be committed. */
  readonly commit: number;
}

/** Metadata of a snapshot: everything in the log up to `index` is folded into its data. */
export interface SnapshotMeta {
  /** Index of the last entry folded into the snapshot. */
  readonly index: number;
  /** Term of that entry. */
  readonly term: number;
  /** Membership as of `index`. */
  readonly membership: Membership;
}

/** A snapshot of the application state machine as of {@linkcode SnapshotMeta.index}. */
export interface Snapshot {
  /** Where the snapshot stands in the log. */
  readonly meta: SnapshotMeta;
  /** The application's serialized state (opaque to the core). */
  readonly data: Uint8Array;
  /**
   * CRC-32C of `data`, if known (the peer's snapshot job computes it; a received snapshot keeps the
   * one it was checked against). It goes out with every chunk, so that a follower can check the
   * bytes it received and continue a transfer begun by an earlier leader of the same image.
   */
  readonly digest?: number;
}

/** The result of a linearizable read request: reads are safe once `index` has been applied. */
export interface ReadState {
  /** The context the caller passed to `readIndex` (a request id). */
  readonly ctx: string;
  /** The commit index at which the read may be served. */
  readonly index: number;
}

/** A read request that could not be served (no leader, leadership lost, ...). */
export interface DroppedRead {
  /** The context the caller passed to `readIndex`. */
  readonly ctx: string;
  /** Why it was dropped. */
  readonly reason: "no-leader" | "not-leader" | "leadership-lost";
}

/** Volatile state that the driver exposes (role, leader, term). */
export interface SoftState {
  /** This node's role. */
  readonly role: RaftRole;
  /** The leader this node knows of in the current term. */
  readonly leaderId: string | undefined;
  /** The current term. */
  readonly term: number;
}

/**
 * Fields every Raft message carries ({@linkcode RaftMessage} members extend it). The core ignores a
 * message whose `to` is not its own id or whose `from` is its own id.
 *
 * @example
 * ```ts
 * import type { RaftMessageBase } from "@hamok/core/internal";
 * const route = (m: RaftMessageBase): string => `${m.from} -> ${m.to} (term ${m.term})`;
 * ```
 */
export interface RaftMessageBase {
  /** Sender member id. */
  readonly from: string;
  /** Recipient member id. */
  readonly to: string;
  /**
   * Sender's term. For pre-vote requests: the term the sender would campaign in (its current term
   * + 1), which the recipient does not adopt. `propose`, `read-index` and `read-index-response`
   * carry it for information only: they take no part in term agreement.
   */
  readonly term: number;
}

/** Leader -> follower: replicate entries (or, with none, a heartbeat carrying the commit index). */
export interface AppendMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "append";
  /**
   * Index of the log entry just before `entries` (0 when they start the log). The follower accepts
   * the append only if its own entry at `prevIndex` has term `prevTerm`.
   */
  readonly prevIndex: number;
  /** Term of the entry at `prevIndex` (0 for index 0, or the term of the snapshot that covers it). */
  readonly prevTerm: number;
  /**
   * Entries `prevIndex + 1 ...`, in log order; empty for a probe or a commit-index update. Bounded
   * by {@linkcode RaftConfig.maxEntriesPerAppend} and {@linkcode RaftConfig.maxBytesPerAppend}.
   * The array may be shared between the messages of one round: never mutate it.
   */
  readonly entries: readonly Entry[];
  /**
   * The leader's commit index when the message was built. The follower commits up to
   * `min(commit, prevIndex + entries.length)`, never beyond what this message proved it holds.
   */
  readonly commit: number;
  /**
   * How far the leader's own log is durable (its own match index), sent only while its
   * configuration has at most three voters, itself among them. A voting follower whose own
   * configuration also has at most three voters, the leader among them, then commits up to
   * `min(leaderMatch, prevIndex + entries.length)` when that entry is of the current term: it and
   * the leader are a majority holding it, so it is committed (it applies it only once its own copy
   * is durable). A follower's proposal is then done one round trip sooner, without waiting for the
   * leader's next commit index. Undefined (or absent) when not sent.
   */
  readonly leaderMatch?: number | undefined;
}

/** Follower -> leader: outcome of an append. */
export interface AppendResponseMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "append-response";
  /**
   * On success: the highest index now matching the leader (`prevIndex + entries.length`, or the
   * follower's commit index when the append was entirely behind it). On reject: the rejected
   * `prevIndex`. A node answering a leader of an older term rejects with `index` 0 only to tell it
   * the newer `term`.
   */
  readonly index: number;
  /** True when the follower's log did not match at `prevIndex` (or the sender's term was stale). */
  readonly reject: boolean;
  /**
   * On reject: a hint for fast back-off (the follower's guess of the conflict point: the largest
   * index in its log whose term is at most the rejected `prevTerm`). `-1` means the follower has no
   * log base at all (a joining member that never received a snapshot): the leader must send its
   * snapshot, since the membership as of the snapshot is not in any log entry. 0 on success.
   */
  readonly rejectHint: number;
  /** On reject: the term of the follower's entry at `rejectHint` (0 if none, and on success). */
  readonly hintTerm: number;
}

/** Leader -> follower heartbeat. `ctx` is set when the heartbeat confirms a ReadIndex round. */
export interface HeartbeatMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "heartbeat";
  /**
   * Commit index the follower may adopt: the leader's commit index capped at the follower's known
   * match index, so that a follower with a divergent tail is never told to commit it. The follower
   * also caps it at its own last index.
   */
  readonly commit: number;
  /**
   * The ReadIndex request context this heartbeat round confirms leadership for; the follower echoes
   * it in its {@linkcode HeartbeatResponseMessage}. Absent on plain heartbeats.
   */
  readonly ctx?: string;
}

/** Follower -> leader heartbeat acknowledgement (echoes `ctx`). */
export interface HeartbeatResponseMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "heartbeat-response";
  /** The `ctx` of the heartbeat being answered, if it had one (counts as a ReadIndex ack). */
  readonly ctx?: string;
}

/** Candidate (or pre-candidate) -> voter. */
export interface VoteMessage extends RaftMessageBase {
  /**
   * `vote`: a real election in `term` (the candidate has already adopted it). `pre-vote`: asks
   * whether the voter would grant a vote in `term` (= candidate's term + 1) without anyone
   * changing term; enabled by {@linkcode RaftConfig.preVote}.
   */
  readonly type: "vote" | "pre-vote";
  /** Index of the candidate's last log entry (0 for an empty log). */
  readonly lastIndex: number;
  /**
   * Term of the candidate's last log entry. A voter grants only if the candidate's log is at least
   * as up to date as its own: higher `lastTerm`, or equal `lastTerm` and `lastIndex` not lower.
   */
  readonly lastTerm: number;
  /** True when the election was triggered by a leadership transfer (voters ignore their lease). */
  readonly transfer?: boolean;
}

/** Voter -> candidate (or pre-candidate). */
export interface VoteResponseMessage extends RaftMessageBase {
  /** Answers a `vote` or a `pre-vote` request, respectively. */
  readonly type: "vote-response" | "pre-vote-response";
  /**
   * False: the vote is granted (and the message carries the request's term). True: refused (and
   * the message carries the voter's own term, so a lagging candidate can catch up).
   */
  readonly reject: boolean;
}

/** Leader -> follower: one chunk of a snapshot (InstallSnapshot). */
export interface SnapshotChunkMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "snapshot";
  /**
   * The snapshot being transferred (the same on every chunk). A chunk whose `meta` differs from
   * the transfer the follower holds starts a new transfer (at offset 0) or is rejected.
   */
  readonly meta: SnapshotMeta;
  /** Byte offset of this chunk in the snapshot data. */
  readonly offset: number;
  /**
   * Size of the whole snapshot data in bytes (the same on every chunk). The follower refuses a
   * transfer above its {@linkcode RaftConfig.maxSnapshotBytes}, reserves one buffer of this size and
   * writes every chunk into it (the image is never held twice); a chunk that does not fit is dropped.
   */
  readonly total: number;
  /**
   * CRC-32C of the whole snapshot data, when the leader knows it (the same on every chunk). The
   * follower checks the received bytes against it, and continues a transfer of the same snapshot
   * (same index, term, size and digest) from its received offset after a leader change.
   */
  readonly digest?: number;
  /**
   * This chunk's bytes, at most {@linkcode RaftConfig.snapshotChunkBytes} long; may be empty (an
   * empty snapshot is sent as one empty chunk with `done`). A view into the leader's snapshot: not
   * copied, never mutate it.
   */
  readonly data: Uint8Array;
  /**
   * Set (never on the wire) when the leader's snapshot image is on disk only (see
   * `RaftNode.detachSnapshotData`): `data` is empty and the driver reads these bytes of the
   * snapshot at `meta.index`, from `offset`, from its storage into `data` before the chunk leaves
   * (a chunk it cannot read is dropped; the transfer resends it).
   */
  readonly fill?: number;
  /** True on the last chunk. */
  readonly done: boolean;
}

/** Follower -> leader: acknowledges a snapshot chunk (or rejects the transfer). */
export interface SnapshotResponseMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "snapshot-response";
  /**
   * While the transfer runs: the `meta.index` of the snapshot being received (the leader ignores
   * responses about another snapshot). With `done`: the index the follower's log now matches the
   * leader up to (at least the snapshot index, more if it already held later committed entries).
   */
  readonly index: number;
  /** Bytes received so far (the next expected offset). */
  readonly offset: number;
  /**
   * True when the chunk did not fit (a gap, or a chunk of a transfer the follower does not hold):
   * the leader resends from `offset`.
   */
  readonly reject: boolean;
  /** True once the whole snapshot was received and installed (the transfer is over). */
  readonly done: boolean;
}

/** Leader -> transfer target: start an election now. */
export interface TimeoutNowMessage extends RaftMessageBase {
  /** Discriminant. The recipient campaigns at once, skipping pre-vote and the voters' lease. */
  readonly type: "timeout-now";
}

/** Follower -> leader: a proposal forwarded to the leader. */
export interface ProposeMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "propose";
  /**
   * The commands to append, in order, each with its optional request id for deduplication. The
   * leader appends them as `normal` entries, or silently drops the message if it is no longer the
   * leader or is transferring leadership (the proposer's wait then times out).
   */
  readonly entries: readonly { readonly data: Uint8Array; readonly requestId?: string }[];
}

/** Follower -> leader: a ReadIndex request forwarded to the leader. */
export interface ReadIndexMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "read-index";
  /** The caller's read context (a request id), echoed in the {@linkcode ReadIndexResponseMessage}. */
  readonly ctx: string;
}

/** Leader -> follower: the index at which a forwarded read may be served (`index` -1: dropped). */
export interface ReadIndexResponseMessage extends RaftMessageBase {
  /** Discriminant. */
  readonly type: "read-index-response";
  /** The `ctx` of the {@linkcode ReadIndexMessage} being answered. */
  readonly ctx: string;
  /**
   * The leader's confirmed commit index: the follower serves the read once it has applied this
   * index. `-1` when the recipient was not (or stopped being) the leader: the read is dropped with
   * reason `not-leader`.
   */
  readonly index: number;
}

/** Any message exchanged between Raft nodes. */
export type RaftMessage =
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | SnapshotChunkMessage
  | SnapshotResponseMessage
  | TimeoutNowMessage
  | ProposeMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

/**
 * Everything one batch of inputs produced. The driver must, in this order:
 * 1. send `earlyMessages` (they may go before, or while, the batch is persisted; always empty
 *    unless {@linkcode RaftConfig.asyncPersistence} is on);
 * 2. persist `hardState`, `snapshot` and `entries` (entries may overwrite the log from
 *    `entries[0].index` on), and make them durable;
 * 3. with {@linkcode RaftConfig.asyncPersistence}: report the durable position with
 *    `RaftNode.persisted(index, term)` (the last entry of `entries`, else the snapshot's index and
 *    term); never before the writes are durable;
 * 4. send `messages`;
 * 5. restore the state machine from `snapshot` if set, then apply `committed` in order;
 * 6. serve `readStates` once their index is applied.
 *
 * Batches are handled one at a time: the next `ready()` is taken once this one is done.
 */
export interface RaftReady {
  /** Changed hard state, if it changed. */
  readonly hardState?: HardState | undefined;
  /** Entries to append to stable storage. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader (or created by `compact`) to persist. */
  readonly snapshot?: Snapshot | undefined;
  /** True if `snapshot` was received from the leader and the state machine must be restored from it. */
  readonly restoreSnapshot: boolean;
  /** Newly committed entries to apply, in log order. */
  readonly committed: readonly Entry[];
  /** Messages to send once this batch is persisted (acknowledgements, votes, everything else). */
  readonly messages: readonly RaftMessage[];
  /**
   * Messages that may be sent before this batch is persisted: a leader's appends, heartbeats and
   * snapshot chunks, and a follower's forwarded proposals and read requests, when the batch changes
   * neither term nor vote. Empty unless {@linkcode RaftConfig.asyncPersistence} is on.
   */
  readonly earlyMessages: readonly RaftMessage[];
  /** Completed ReadIndex requests. */
  readonly readStates: readonly ReadState[];
  /** ReadIndex requests that failed. */
  readonly droppedReads: readonly DroppedRead[];
  /** Changed soft state, if it changed. */
  readonly softState?: SoftState | undefined;
  /** Changed membership (as of the latest config entry in the log), if it changed. */
  readonly membership?: Membership | undefined;
}

/** Deliberate protocol bugs, for tests that prove the simulator and checkers catch them. */
export type RaftTestingBug =
  | "skip-prev-log-check"
  | "double-vote"
  | "commit-old-term"
  | "ignore-check-quorum"
  | "self-ack-on-append"
  | "read-ignores-follower-commit";

/** Configuration of a {@linkcode RaftNode}. Times are counted in ticks. */
export interface RaftConfig {
  /** This node's member id (unique per storage incarnation; see docs/decisions.md). */
  readonly id: string;
  /** Base election timeout in ticks; the effective timeout is random in [base, 2*base). Default 10. */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks. Default 1. */
  readonly heartbeatTicks?: number;
  /** Random source in [0, 1) for election timeouts. Injected so the core stays deterministic. */
  readonly random: () => number;
  /** Pre-vote before incrementing the term. Default true. */
  readonly preVote?: boolean;
  /** Leader steps down without a quorum of recent contact; voters honour a leader lease. Default true. */
  readonly checkQuorum?: boolean;
  /** Maximum entries in one append. Default 256. */
  readonly maxEntriesPerAppend?: number;
  /** Maximum payload bytes in one append (at least one entry is always sent). Default 1 MiB. */
  readonly maxBytesPerAppend?: number;
  /** Maximum unacknowledged appends per follower. Default 16. */
  readonly maxInflightAppends?: number;
  /** Snapshot chunk size in bytes. Default 256 KiB. */
  readonly snapshotChunkBytes?: number;
  /**
   * Most bytes of one snapshot message: a chunk is cut shorter where the membership it carries
   * would make it larger (at least 1 KiB of image per chunk). Default: no bound beyond
   * `snapshotChunkBytes`.
   */
  readonly snapshotMessageBytes?: number;
  /**
   * Largest snapshot this node accepts from a leader, in bytes: a transfer announcing more is
   * refused (and counted). Default 1 GiB.
   */
  readonly maxSnapshotBytes?: number;
  /** The leader promotes a learner to voter once its log matches the leader's commit. Default true. */
  readonly autoPromoteLearners?: boolean;
  /**
   * Caught-up learners are promoted only while the cluster has fewer voters than this; the others
   * stay learners (they replicate and serve reads) until a voter leaves. Default: unlimited.
   */
  readonly maxVoters?: number;
  /**
   * The leader writes its own log in parallel with replicating it (Raft thesis section 10.2.1):
   * `ready().earlyMessages` may go out before the batch is persisted, and the leader counts its own
   * entries toward a commit only once the driver reports them durable with `RaftNode.persisted`.
   * Default false: the leader counts an entry as its own on append (right for a driver that
   * persists every batch before it sends anything, as with a memory storage).
   */
  readonly asyncPersistence?: boolean;
  /** For tests only: deliberately break the protocol. */
  readonly testingBugs?: readonly RaftTestingBug[];
}

/**
 * Why a proposal, membership change or leadership transfer was not taken.
 * - `no-leader`: this node knows no leader to forward to.
 * - `not-leader`: the operation is for the leader only, and this node is not it.
 * - `transferring`: the leader is handing leadership over and accepts no proposals meanwhile.
 * - `not-ready`: the leader has not committed an entry of its own term yet (membership changes wait
 *   for it, as the single-server change rule requires).
 * - `config-pending`: an earlier membership change is not committed yet.
 * - `removed`: the member id was removed before; removed ids are tombstones and never come back.
 * - `already-member`: `add-learner` of an id that is already a voter or learner.
 * - `not-learner`: `promote` of an id that is not a learner.
 * - `not-member`: `remove` of an id that is neither voter nor learner.
 * - `last-voter`: the change would leave the cluster without voters.
 * - `not-voter`: the leadership transfer target is not a voter.
 * - `already-leader`: the leadership transfer target is this node, which already leads.
 */
export type ProposeDropReason =
  | "no-leader"
  | "not-leader"
  | "transferring"
  | "not-ready"
  | "config-pending"
  | "removed"
  | "already-member"
  | "not-learner"
  | "not-member"
  | "last-voter"
  | "not-voter"
  | "already-leader";

/**
 * Outcome of `RaftNode.propose` / `RaftNode.proposeMembership`: appended to the leader's log at
 * `index` in `term` (committed later, or lost if leadership is lost first), forwarded to the known
 * leader (no further news from the core: the caller waits for the entry to be applied, with a
 * timeout), or dropped.
 */
export type ProposeResult =
  | { readonly status: "appended"; readonly index: number; readonly term: number }
  | { readonly status: "forwarded"; readonly leaderId: string }
  | { readonly status: "dropped"; readonly reason: ProposeDropReason };

/**
 * Outcome of `RaftNode.transferLeadership`: the transfer started (or was already running towards
 * `to`), or it was refused. A started transfer succeeds when `to` wins an election, and is aborted
 * silently after one election timeout.
 */
export type TransferResult =
  | { readonly status: "transferring"; readonly to: string }
  | { readonly status: "dropped"; readonly reason: ProposeDropReason };

/**
 * Replication state of one follower, as the leader tracks it.
 * - `probe`: the leader does not know where the follower's log matches; one append at a time.
 * - `replicate`: appends are pipelined (at most `maxInflightAppends` unacknowledged).
 * - `snapshot`: the follower needs entries the leader has compacted; a snapshot is being sent.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** A read-only view of the leader's replication state for one member (diagnostics). */
export interface ProgressView {
  /** Highest index known to match the leader's log. */
  readonly match: number;
  /** Next index the leader will send. */
  readonly next: number;
  /** Replication state. */
  readonly state: ProgressState;
  /** Whether the member was heard from since the last check-quorum round. */
  readonly recentActive: boolean;
  /** Unacknowledged appends in flight. */
  readonly inflight: number;
  /** True for learners (non-voting members). */
  readonly learner: boolean;
}
