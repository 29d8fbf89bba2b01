/**
 * The Raft consensus state machine of one member: pure and deterministic. Inputs are ticks,
 * messages, proposals and read requests; outputs are collected into a {@linkcode RaftReady} batch
 * that a driver persists, sends and applies. No timers, clocks, I/O or promises.
 *
 * @module
 */

import type { RaftPersistentState } from "../storage/raft_storage.ts";
import {
  checkMembershipChange,
  EMPTY_MEMBERSHIP,
  isMember,
  isVoter,
  membershipWireBytes,
} from "./membership.ts";
import { MembershipTracker } from "./membership_tracker.ts";
import { Progress, type SnapshotTransfer } from "./progress.ts";
import { majority, quorumIndex } from "./quorum.ts";
import { type ResolvedRaftConfig, resolveRaftConfig } from "./raft_config.ts";
import { RaftError } from "./raft_error.ts";
import { crc32c } from "../storage/crc32c.ts";
import { RaftLog } from "./raft_log.ts";
import { ReadOnly } from "./read_only.ts";
import type {
  AppendMessage,
  AppendResponseMessage,
  DroppedRead,
  Entry,
  EntryType,
  HardState,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Membership,
  MembershipChange,
  ProgressView,
  ProposeMessage,
  ProposeResult,
  RaftConfig,
  RaftMessage,
  RaftReady,
  RaftRole,
  ReadState,
  Snapshot,
  SnapshotChunkMessage,
  SnapshotMeta,
  SnapshotResponseMessage,
  SoftState,
  TransferResult,
  VoteMessage,
  VoteResponseMessage,
} from "./types.ts";

const EMPTY_DATA = new Uint8Array(0);
/**
 * Bytes of a snapshot message besides its image bytes and membership: sender and receiver ids (up
 * to 320 characters each), term, offsets and digest.
 */
const SNAPSHOT_MESSAGE_FRAMING = 4096;
/** Fewest image bytes a chunk carries however large the membership (a transfer always advances). */
const MIN_CHUNK_DATA_BYTES = 1024;
const NO_MESSAGES: readonly RaftMessage[] = Object.freeze([]) as readonly RaftMessage[];
const NO_READS: readonly ReadState[] = Object.freeze([]) as readonly ReadState[];
const NO_DROPPED: readonly DroppedRead[] = Object.freeze([]) as readonly DroppedRead[];
/**
 * Messages that acknowledge nothing and depend on no unpersisted state of their sender (other than
 * term and vote, see `ready()`): a leader's replication and a follower's forwarded requests. With
 * asynchronous persistence they may leave before their batch is durable.
 */
const EARLY_TYPES: ReadonlySet<RaftMessage["type"]> = new Set<RaftMessage["type"]>([
  "append",
  "heartbeat",
  "snapshot",
  "propose",
  "read-index",
]);

/** A snapshot being received in chunks, written into one buffer reserved at its announced size. */
/**
 * Heartbeat rounds without progress after which a snapshot transfer no longer holds back an imageless
 * compaction ({@linkcode RaftNode.followersMatchFloor}): its follower refuses it or is gone.
 */
export const STALLED_TRANSFER_ROUNDS = 20;

/** One command of a forwarded proposal. */
type ProposedEntry = { readonly data: Uint8Array; readonly requestId?: string };

interface IncomingSnapshot {
  /** The leader that started (or last continued) the transfer, and its term. */
  from: string;
  term: number;
  readonly meta: SnapshotMeta;
  readonly total: number;
  readonly digest: number | undefined;
  readonly data: Uint8Array;
  received: number;
  /** CRC-32C of `data[0, received)`. */
  crc: number;
}

/**
 * What a follower refused of the snapshot transfers it received (every count is of a claim the
 * leader made that did not hold or that this node does not accept).
 */
export interface SnapshotReceiveStats {
  /** Transfers refused: the announced size is above {@linkcode RaftConfig.maxSnapshotBytes}. */
  readonly oversize: number;
  /** Chunks dropped: past the announced size, `done` before it (or not on it), a size that changed. */
  readonly mismatched: number;
  /** Received snapshots dropped because their bytes did not match the announced digest. */
  readonly digestMismatches: number;
  /** Transfers continued from the received offset under a new leader (same snapshot). */
  readonly resumed: number;
}

/** A ReadIndex request that waits for the leader's first commit in its term. */
interface WaitingRead {
  readonly ctx: string;
  readonly from: string;
}

/** A read confirmed by a quorum, waiting for its index to be committed. */
interface ConfirmedRead extends WaitingRead {
  readonly index: number;
}

/**
 * True when `a` and `b` are two voters of `membership` that together are a majority of its voters
 * (at most three): what both hold of the current term is committed.
 */
function pairIsMajority(membership: Membership, a: string, b: string): boolean {
  const voters = membership.voters;
  return majority(voters.length) <= 2 && voters.includes(a) && voters.includes(b);
}

/**
 * One Raft member.
 *
 * Create it from the persisted state, then feed it: {@linkcode RaftNode.tick} on a timer,
 * {@linkcode RaftNode.step} for every inbound message, {@linkcode RaftNode.propose} and friends for
 * client requests. After inputs, drain {@linkcode RaftNode.ready} while
 * {@linkcode RaftNode.hasReady} and act on each batch in the order {@linkcode RaftReady} documents.
 *
 * Bootstrapping a new cluster: construct every initial voter with the snapshot
 * `{ meta: { index: 0, term: 0, membership: { voters, learners: [], removed: [] } }, data }`.
 * A member that joins an existing cluster starts without snapshot and entries: it never campaigns
 * until it is a voter in its own view, and learns everything from the leader.
 *
 * On restart the driver restores its state machine from `initial.snapshot` itself; the node starts
 * with `appliedIndex` at the snapshot index and hands out the committed entries after it.
 *
 * @example
 * ```ts
 * import { RaftNode } from "./raft_node.ts";
 * const node = new RaftNode({ id: "a", random: () => 0.5 }, {
 *   hardState: { term: 0, vote: undefined, commit: 0 },
 *   snapshot: { meta: { index: 0, term: 0, membership: { voters: ["a"], learners: [], removed: [] } }, data: new Uint8Array() },
 *   entries: [],
 * });
 * node.campaign(); // a single voter elects itself at once
 * const result = node.propose(new TextEncoder().encode("x"));
 * const ready = node.ready(); // persist ready.entries, then apply ready.committed
 * console.log(node.role, result.status, ready.committed.length); // leader appended 2
 * ```
 */
export class RaftNode {
  private cfg: ResolvedRaftConfig;
  private readonly selfId: string;
  private currentTerm: number;
  private votedFor: string | undefined;
  private currentRole: RaftRole = "follower";
  private leader: string | undefined = undefined;
  private readonly log: RaftLog;
  private readonly members: MembershipTracker;
  private latestSnapshot: Snapshot | undefined;
  /** Sizes of snapshots whose bytes were detached (their `data` is empty; the storage holds them). */
  private readonly detachedSizes = new WeakMap<Snapshot, number>();
  /** Snapshots made by `compactWithoutImage`: meta only, never sent until an image is given. */
  private readonly imageless = new WeakSet<Snapshot>();
  /** Index of an imageless snapshot a transfer waits for an image of (0: none asked). */
  private imageRequest = 0;
  private readonly progresses = new Map<string, Progress>();
  private readonly votes = new Map<string, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private transferee: string | undefined = undefined;
  /**
   * Leader: the highest `leaderMatch` sent in this term. A follower may have committed up to it,
   * and answered a proposal, before this leader knows: a ReadIndex is never below it.
   */
  private leaderMatchSent = 0;
  private readonly readOnly = new ReadOnly();
  private waitingReads: WaitingRead[] = [];
  /**
   * Leader: reads confirmed by a quorum whose index (a `leaderMatch` sent) is not committed yet.
   * Answered once it is, dropped with the leadership: a reader never waits for an index that may
   * never be committed (entries sent but held by no follower are lost with this leader).
   */
  private readsAwaitingCommit: ConfirmedRead[] = [];
  private incoming: IncomingSnapshot | undefined = undefined;
  private readonly receiveStats = { oversize: 0, mismatched: 0, digestMismatches: 0, resumed: 0 };
  // The last batch of entries built for an append, shared by followers at the same position.
  private batchFrom = 0;
  private batchLast = 0;
  private batch: Entry[] = [];

  // Output collected until the next ready().
  private messages: RaftMessage[] = [];
  /** Messages that may leave before their batch is persisted (asyncPersistence only). */
  private earlyMessages: RaftMessage[] = [];
  /** The forwarded-proposal message not yet handed out by `ready()`, which later proposals join. */
  private forwarding:
    | { readonly to: string; readonly term: number; readonly entries: ProposedEntry[]; bytes: number }
    | undefined = undefined;
  private readStates: ReadState[] = [];
  private droppedReads: DroppedRead[] = [];
  private snapshotToPersist: Snapshot | undefined = undefined;
  private restorePending = false;
  private bcastPending = false;
  private bcastCommit = false;
  private readBcastPending = false;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private prevMembership: Membership;

  /** Creates a node from its configuration and persisted state. */
  constructor(config: RaftConfig, initial: RaftPersistentState) {
    this.cfg = resolveRaftConfig(config);
    this.selfId = this.cfg.id;
    const hs = initial.hardState;
    const snapshot = initial.snapshot;
    this.log = new RaftLog(snapshot?.meta, initial.entries, hs.commit);
    this.members = new MembershipTracker(
      snapshot?.meta.membership ?? EMPTY_MEMBERSHIP,
      snapshot?.meta.index ?? 0,
    );
    for (const entry of initial.entries) this.members.append(entry);
    this.latestSnapshot = snapshot;
    this.currentTerm = hs.term;
    this.votedFor = hs.vote;
    this.resetTimers();
    this.prevHardState = { term: hs.term, vote: hs.vote, commit: this.log.committed };
    this.prevSoftState = this.makeSoftState();
    this.prevMembership = this.members.current;
  }

  // ---------------------------------------------------------------------------------------------
  // Read-only state

  /** This node's member id. */
  get id(): string {
    return this.selfId;
  }

  /** The role this node plays now. */
  get role(): RaftRole {
    return this.currentRole;
  }

  /** The current term. */
  get term(): number {
    return this.currentTerm;
  }

  /** The member this node voted for in the current term, if any. */
  get vote(): string | undefined {
    return this.votedFor;
  }

  /** The leader known in the current term, if any. */
  get leaderId(): string | undefined {
    return this.leader;
  }

  /** Highest index known to be committed. */
  get commitIndex(): number {
    return this.log.committed;
  }

  /** Highest index handed out for applying (by `ready()`), or restored from a snapshot. */
  get appliedIndex(): number {
    return this.log.applied;
  }

  /** Index of the last log entry. */
  get lastIndex(): number {
    return this.log.lastIndex;
  }

  /** Term of the last log entry. */
  get lastTerm(): number {
    return this.log.lastTerm;
  }

  /** Index of the first entry still in the log (the snapshot index + 1). */
  get firstIndex(): number {
    return this.log.firstIndex;
  }

  /**
   * Highest log index reported durable through {@linkcode RaftNode.persisted} (or loaded from
   * storage); only moves with {@linkcode RaftConfig.asyncPersistence}.
   */
  get persistedIndex(): number {
    return this.log.durable;
  }

  /** Term of the log entry at `index` (the snapshot's term at its index); undefined if compacted or beyond the end. */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  /** Bytes of entry data in the log after the snapshot (walks the entries: a diagnostic). */
  get logBytes(): number {
    return this.log.byteSize();
  }

  /** Index of the latest snapshot (0 without one). */
  get snapshotIndex(): number {
    return this.log.snapshotIndex;
  }

  /** Followers this leader is sending a snapshot to (0 on a follower or candidate). */
  get snapshotTransfers(): number {
    if (this.currentRole !== "leader") return 0;
    let count = 0;
    for (const pr of this.progresses.values()) if (pr.state === "snapshot") count++;
    return count;
  }

  /**
   * On a leader, how far the log can be compacted without making a follower that keeps up need a
   * snapshot: the lowest match index of the followers in probe or replicate state that are at most
   * `lagLimit` entries behind the applied index, and the index of the snapshot being sent to each
   * follower in snapshot state (or of the one it waits an image of) unless that transfer has not
   * moved for {@linkcode STALLED_TRANSFER_ROUNDS} heartbeat rounds. On others, the applied index.
   */
  followersMatchFloor(lagLimit: number): number {
    const applied = this.log.applied;
    let floor = applied;
    if (this.currentRole !== "leader") return floor;
    for (const [id, pr] of this.progresses) {
      if (id === this.selfId) continue;
      const transfer = pr.transfer;
      if (pr.state === "snapshot") {
        if (transfer !== undefined && transfer.stalledRounds < STALLED_TRANSFER_ROUNDS) {
          floor = Math.min(floor, transfer.snapshot.meta.index);
        }
      } else if (pr.match >= applied - lagLimit) floor = Math.min(floor, pr.match);
    }
    return floor;
  }

  /**
   * Of {@linkcode snapshotTransfers}, those that moved in their last heartbeat rounds (or just
   * started), or whose every chunk is out (the follower is installing it): a compaction now would
   * only make them start over.
   */
  get progressingSnapshotTransfers(): number {
    if (this.currentRole !== "leader") return 0;
    let count = 0;
    for (const pr of this.progresses.values()) {
      const transfer = pr.transfer;
      if (
        pr.state === "snapshot" && transfer !== undefined &&
        (transfer.stalledRounds < 2 || transfer.doneSent) && !this.imageless.has(transfer.snapshot)
      ) count++;
    }
    return count;
  }

  /** What this node refused of the snapshot transfers it received (a copy). */
  get snapshotReceiveStats(): SnapshotReceiveStats {
    return { ...this.receiveStats };
  }

  /** Bytes of the snapshot being received so far (0 when none is). */
  get snapshotReceived(): number {
    return this.incoming?.received ?? 0;
  }

  /** The membership as of the latest config entry in the log (committed or not). */
  get membership(): Membership {
    return this.members.current;
  }

  /** The target of a running leadership transfer, if any (leader only). */
  get transferTarget(): string | undefined {
    return this.transferee;
  }

  /** The current soft state (role, leader, term). */
  get softState(): SoftState {
    return this.makeSoftState();
  }

  /** The current hard state. */
  get hardState(): HardState {
    return { term: this.currentTerm, vote: this.votedFor, commit: this.log.committed };
  }

  /**
   * The leader's replication state per member (this node included), for diagnostics; empty on a
   * non-leader. Built on each call.
   */
  get progress(): ReadonlyMap<string, ProgressView> {
    const view = new Map<string, ProgressView>();
    const learners = this.members.current.learners;
    for (const [id, pr] of this.progresses) {
      view.set(id, {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        recentActive: pr.recentActive,
        inflight: pr.inflight,
        learner: learners.includes(id),
      });
    }
    return view;
  }

  /** True if this node may campaign: it is a voter in its own view of the membership. */
  get promotable(): boolean {
    return isVoter(this.members.current, this.selfId);
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  /** Advances the logical clock by one tick: elections, heartbeats, check-quorum, transfer timeout. */
  tick(): void {
    if (this.currentRole === "leader") this.tickLeader();
    else this.tickElection();
  }

  /**
   * Changes the largest append message and snapshot chunk this node sends from now on (the message
   * limit of the transport can change: a reconnect to a server with another maximum payload). An
   * entry larger than `maxBytesPerAppend` is still sent alone.
   */
  setMessageLimits(
    maxBytesPerAppend: number,
    snapshotChunkBytes: number,
    snapshotMessageBytes: number = this.cfg.snapshotMessageBytes,
  ): void {
    // snapshotMessageBytes may also be unbounded (Infinity), as it is by default
    for (
      const [name, value] of [
        ["maxBytesPerAppend", maxBytesPerAppend],
        ["snapshotChunkBytes", snapshotChunkBytes],
        [
          "snapshotMessageBytes",
          snapshotMessageBytes === Number.POSITIVE_INFINITY ? 1 : snapshotMessageBytes,
        ],
      ] as const
    ) {
      if (!Number.isInteger(value) || value <= 0) {
        throw new RaftError(`${name} must be a positive integer, got ${String(value)}`);
      }
    }
    this.cfg = { ...this.cfg, maxBytesPerAppend, snapshotChunkBytes, snapshotMessageBytes };
  }

  /** Starts an election now (with pre-vote if enabled), if this node is a voter and not the leader. */
  campaign(): void {
    this.hup(false);
  }

  /**
   * Proposes an application command. The leader appends it at once (replication goes out with the
   * next `ready()`); a follower that knows the leader forwards it; otherwise it is dropped.
   */
  propose(data: Uint8Array, requestId?: string): ProposeResult {
    if (this.currentRole === "leader") {
      if (this.transferee !== undefined) return { status: "dropped", reason: "transferring" };
      const entry = this.appendEntry("normal", data, requestId, undefined);
      return { status: "appended", index: entry.index, term: entry.term };
    }
    const leader = this.leader;
    if (leader === undefined) return { status: "dropped", reason: "no-leader" };
    const entry = requestId === undefined ? { data } : { data, requestId };
    const bytes = data.byteLength + (requestId?.length ?? 0);
    const batch = this.forwarding;
    if (
      batch !== undefined && batch.to === leader && batch.term === this.currentTerm &&
      batch.entries.length < this.cfg.maxEntriesPerAppend && batch.bytes + bytes <= this.cfg.maxBytesPerAppend
    ) {
      // proposals forwarded before the next ready() travel in one message (they only move earlier)
      batch.entries.push(entry);
      batch.bytes += bytes;
      return { status: "forwarded", leaderId: leader };
    }
    const entries = [entry];
    this.forwarding = { to: leader, term: this.currentTerm, entries, bytes };
    this.send({ type: "propose", from: this.selfId, to: leader, term: this.currentTerm, entries });
    return { status: "forwarded", leaderId: leader };
  }

  /**
   * Proposes a single-server membership change (leader only). Refused while another change is
   * uncommitted, before the leader committed an entry of its term, during a transfer, and for
   * changes that do not fit the membership (see {@linkcode ProposeResult}).
   */
  proposeMembership(change: MembershipChange): ProposeResult {
    if (this.currentRole !== "leader") return { status: "dropped", reason: "not-leader" };
    if (this.transferee !== undefined) return { status: "dropped", reason: "transferring" };
    if (!this.committedInTerm()) return { status: "dropped", reason: "not-ready" };
    if (this.members.lastConfigIndex > this.log.committed) {
      return { status: "dropped", reason: "config-pending" };
    }
    const reason = checkMembershipChange(this.members.current, change);
    if (reason !== undefined) return { status: "dropped", reason };
    const entry = this.appendEntry("config", EMPTY_DATA, undefined, change);
    return { status: "appended", index: entry.index, term: entry.term };
  }

  /**
   * Requests a linearizable read. The result arrives in `ready().readStates` (serve the read once
   * that index is applied) or `ready().droppedReads`.
   */
  readIndex(ctx: string): void {
    if (this.currentRole === "leader") {
      this.leaderReadIndex(ctx, this.selfId);
      return;
    }
    const leader = this.leader;
    if (leader === undefined) {
      this.droppedReads.push({ ctx, reason: "no-leader" });
      return;
    }
    this.send({ type: "read-index", from: this.selfId, to: leader, term: this.currentTerm, ctx });
  }

  /**
   * Hands leadership to the voter `to` (leader only): brings it up to date, then tells it to
   * campaign at once. Proposals are refused meanwhile; the transfer is abandoned after one election
   * timeout.
   */
  transferLeadership(to: string): TransferResult {
    if (this.currentRole !== "leader") return { status: "dropped", reason: "not-leader" };
    if (to === this.selfId) return { status: "dropped", reason: "already-leader" };
    if (!isVoter(this.members.current, to)) return { status: "dropped", reason: "not-voter" };
    if (this.transferee === to) return { status: "transferring", to };
    this.transferee = to;
    this.electionElapsed = 0;
    const pr = this.progresses.get(to);
    if (pr !== undefined) {
      if (pr.match === this.log.lastIndex) this.sendTimeoutNow(to);
      else this.sendAppend(to, pr, false);
    }
    return { status: "transferring", to };
  }

  /**
   * Records the application's snapshot of its state machine as of applied index `index` and drops
   * the log entries it covers. A no-op if `index` is not beyond the current snapshot; throws
   * {@linkcode RaftError} if `index` is beyond the applied index. `digest` is the CRC-32C of
   * `data`, if the caller computed it (followers check received snapshots against it).
   */
  compact(index: number, data: Uint8Array, digest?: number): void {
    if (index <= this.log.snapshotIndex) return;
    if (index > this.log.applied) {
      throw new RaftError(`compact(${index}): beyond the applied index ${this.log.applied}`);
    }
    const term = this.log.term(index) as number;
    const meta = { index, term, membership: this.members.at(index) };
    const snapshot: Snapshot = digest === undefined ? { meta, data } : { meta, data, digest };
    this.log.compact(index);
    this.members.compact(index);
    this.latestSnapshot = snapshot;
    this.snapshotToPersist = snapshot;
    // transfers waiting for the image of an older snapshot take this one at once
    this.restartImagelessTransfers();
  }

  /**
   * Drops the log entries up to applied index `index` like {@linkcode compact}, without an image of
   * the state: for a storage that never needs one (it is not loaded again) and a leader that can
   * make one when a follower needs it. A transfer of such a snapshot sends nothing and asks for an
   * image ({@linkcode takeImageRequest}); it goes on once {@linkcode provideImage} gives one or a
   * newer snapshot is taken. A no-op if `index` is not beyond the current snapshot.
   */
  compactWithoutImage(index: number): void {
    if (index <= this.log.snapshotIndex) return;
    if (index > this.log.applied) {
      throw new RaftError(`compactWithoutImage(${index}): beyond the applied index ${this.log.applied}`);
    }
    const term = this.log.term(index) as number;
    const snapshot: Snapshot = {
      meta: { index, term, membership: this.members.at(index) },
      data: EMPTY_DATA,
    };
    this.log.compact(index);
    this.members.compact(index);
    this.imageless.add(snapshot);
    this.latestSnapshot = snapshot;
    this.snapshotToPersist = snapshot;
  }

  /** Whether the latest snapshot was taken without an image (and none was given since). */
  get snapshotImageless(): boolean {
    return this.latestSnapshot !== undefined && this.imageless.has(this.latestSnapshot);
  }

  /**
   * Gives the image of the latest snapshot, if it is the imageless one at `index`: `data` is the
   * state as of `index` (`digest` its CRC-32C). The node holds it (it is not persisted: the storage
   * has the snapshot's meta already) until {@linkcode dropImage}, and transfers waiting for it send
   * it. Returns false (and takes nothing) otherwise.
   */
  provideImage(index: number, data: Uint8Array, digest?: number): boolean {
    const latest = this.latestSnapshot;
    if (latest === undefined || latest.meta.index !== index || !this.imageless.has(latest)) return false;
    const snapshot: Snapshot = digest === undefined
      ? { meta: latest.meta, data }
      : { meta: latest.meta, data, digest };
    this.latestSnapshot = snapshot;
    // transfers waiting for it start at once
    this.restartImagelessTransfers();
    return true;
  }

  /**
   * Makes the latest snapshot imageless if it is the one at `index` and has an image (held or
   * detached): for a storage that keeps none, once no transfer needs it. Transfers already running
   * keep what they started with. Returns true if it did.
   */
  dropImage(index: number): boolean {
    const latest = this.latestSnapshot;
    if (latest === undefined || latest.meta.index !== index || this.imageless.has(latest)) return false;
    const snapshot: Snapshot = { meta: latest.meta, data: EMPTY_DATA };
    this.imageless.add(snapshot);
    this.latestSnapshot = snapshot;
    return true;
  }

  /**
   * The index of the imageless snapshot a transfer asked an image of since the last call (0: none);
   * the driver passes it on, and the application answers with {@linkcode provideImage} or a newer
   * {@linkcode compact}.
   */
  takeImageRequest(): number {
    const index = this.imageRequest;
    this.imageRequest = 0;
    return index;
  }

  /**
   * Drops this node's reference to the bytes of its latest snapshot if it is the one at `index`,
   * keeping its meta, digest and size: the driver calls it once the storage holds the snapshot
   * durably and can read it back (`RaftStorage.readSnapshot`). Chunks of transfers started later
   * carry `fill` instead of bytes, and the driver reads them from the storage; a transfer already
   * running keeps the bytes it started with. Returns true if the bytes were dropped.
   */
  detachSnapshotData(index: number): boolean {
    const snapshot = this.latestSnapshot;
    if (
      snapshot === undefined || snapshot.meta.index !== index || this.detachedSizes.has(snapshot) ||
      this.imageless.has(snapshot)
    ) {
      return false;
    }
    const detached: Snapshot = snapshot.digest === undefined
      ? { meta: snapshot.meta, data: EMPTY_DATA }
      : { meta: snapshot.meta, data: EMPTY_DATA, digest: snapshot.digest };
    this.detachedSizes.set(detached, snapshot.data.byteLength);
    this.latestSnapshot = detached;
    return true;
  }

  /** Size of a snapshot's data (also of one whose bytes were detached). */
  private snapshotSize(snapshot: Snapshot): number {
    return this.detachedSizes.get(snapshot) ?? snapshot.data.byteLength;
  }

  /**
   * Reports that this node's log is durable up to the entry (`index`, `term`): the driver calls it
   * after a ready batch's writes are synced, with the batch's last entry (or, without entries, its
   * snapshot's index and term). With {@linkcode RaftConfig.asyncPersistence} the leader counts its
   * own entries toward a commit only from here on. A report about an entry that is no longer in
   * the log (overwritten or truncated since) is ignored; a report must never name an entry that is
   * not durable.
   */
  persisted(index: number, term: number): void {
    const log = this.log;
    if (!log.markDurable(index, term) || this.currentRole !== "leader") return;
    const self = this.progresses.get(this.selfId);
    if (self === undefined || log.durable <= self.match) return;
    self.match = log.durable;
    if (self.next <= self.match) self.next = self.match + 1;
    if (this.maybeCommit()) this.afterCommit();
  }

  /** Handles one inbound message. Messages not addressed to this node are ignored. */
  step(m: RaftMessage): void {
    if (m.to !== this.selfId || m.from === this.selfId) return;
    switch (m.type) {
      // Requests between a follower and its leader that do not take part in term agreement.
      case "propose":
        this.onPropose(m);
        return;
      case "read-index":
        // Not the leader (any more): refuse at once, so the follower drops the read quickly.
        if (this.currentRole === "leader") this.leaderReadIndex(m.ctx, m.from);
        else this.dropRead(m.ctx, m.from);
        return;
      case "read-index-response":
        // only the leader this node asks (the one of its current term) serves its reads: a member
        // answering another's read with an index of its choosing would make that read stale. A
        // refusal (-1) from anyone only makes the read fail sooner.
        // An answer that is late (the term or leader moved on) or not the leader's fails the read
        // as a refusal does: it is asked again, now.
        if (m.index >= 0 && m.from === this.leader && m.term === this.currentTerm) {
          this.readStates.push({ ctx: m.ctx, index: m.index });
        } else this.droppedReads.push({ ctx: m.ctx, reason: "not-leader" });
        return;
    }
    const isVoteRequest = m.type === "vote" || m.type === "pre-vote";
    // A member removed by a committed entry gets no answer. A removal still uncommitted here may
    // never commit (its leader lost the term): the member it names may be the only candidate a
    // majority can elect, so its requests are weighed as anyone's (found by the peer simulator).
    if (isVoteRequest && this.members.at(this.log.committed).removed.includes(m.from)) return;

    if (m.term > this.currentTerm) {
      if (isVoteRequest) {
        const inLease = this.cfg.checkQuorum && !this.cfg.bugIgnoreCheckQuorum &&
          this.leader !== undefined && this.electionElapsed < this.cfg.electionTicks;
        if (inLease && !(m as VoteMessage).transfer) {
          // Leader lease: a leader was heard from recently; neither adopt the term nor vote.
          this.sendVoteResponse(m as VoteMessage, true);
          return;
        }
      }
      if (m.type === "pre-vote" || (m.type === "pre-vote-response" && !m.reject)) {
        // A pre-vote (or a granted answer to ours) carries a future term: do not adopt it.
      } else {
        const fromLeader = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot";
        this.becomeFollower(m.term, fromLeader ? m.from : undefined);
      }
    } else if (m.term < this.currentTerm) {
      if (
        (this.cfg.checkQuorum || this.cfg.preVote) &&
        (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot")
      ) {
        // A stale leader (e.g. back from a partition): tell it the newer term so it steps down.
        this.send({
          type: "append-response",
          from: this.selfId,
          to: m.from,
          term: this.currentTerm,
          index: 0,
          reject: true,
          rejectHint: 0,
          hintTerm: 0,
        });
      } else if (m.type === "pre-vote" || m.type === "vote") {
        // Reject with our term. For a vote this is what lets a candidate that lags in term catch
        // up: a voter whose configuration does not list that candidate never sends it anything
        // else, and a candidate that only bumps its term one election at a time could stay behind
        // for ever (found by the simulator, see tests/sim/regressions.test.ts).
        this.sendVoteResponse(m, true);
      }
      return;
    }

    if (isVoteRequest) {
      this.onVoteRequest(m as VoteMessage);
      return;
    }
    switch (this.currentRole) {
      case "leader":
        this.stepLeader(m);
        return;
      case "follower":
        this.stepFollower(m);
        return;
      default:
        this.stepCandidate(m);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Output

  /** True if `ready()` would return anything to persist, send, apply or report. */
  hasReady(): boolean {
    this.flush();
    if (this.messages.length > 0 || this.readStates.length > 0 || this.droppedReads.length > 0) return true;
    if (this.earlyMessages.length > 0) return true;
    if (this.snapshotToPersist !== undefined) return true;
    if (this.log.hasUnstable() || this.log.hasUnapplied()) return true;
    if (this.members.current !== this.prevMembership) return true;
    const hs = this.prevHardState;
    if (hs.term !== this.currentTerm || hs.vote !== this.votedFor || hs.commit !== this.log.committed) {
      return true;
    }
    const ss = this.prevSoftState;
    return ss.role !== this.currentRole || ss.leaderId !== this.leader || ss.term !== this.currentTerm;
  }

  /**
   * Drains everything produced since the last call. Entries in `committed` (and a restored
   * snapshot) count as applied once this returns.
   */
  ready(): RaftReady {
    this.flush();
    const log = this.log;
    let hardState: HardState | undefined;
    const hs = this.prevHardState;
    if (hs.term !== this.currentTerm || hs.vote !== this.votedFor || hs.commit !== log.committed) {
      hardState = { term: this.currentTerm, vote: this.votedFor, commit: log.committed };
      this.prevHardState = hardState;
    }
    let softState: SoftState | undefined;
    const ss = this.prevSoftState;
    if (ss.role !== this.currentRole || ss.leaderId !== this.leader || ss.term !== this.currentTerm) {
      softState = this.makeSoftState();
      this.prevSoftState = softState;
    }
    let membership: Membership | undefined;
    if (this.members.current !== this.prevMembership) {
      membership = this.members.current;
      this.prevMembership = membership;
    }
    const snapshot = this.snapshotToPersist;
    const restoreSnapshot = this.restorePending;
    if (restoreSnapshot) log.markSnapshotApplied();
    const entries = log.takeUnstable();
    const committed = log.takeCommitted();
    let messages = this.messages.length > 0 ? this.messages : NO_MESSAGES;
    let earlyMessages = this.earlyMessages.length > 0 ? this.earlyMessages : NO_MESSAGES;
    const readStates = this.readStates.length > 0 ? this.readStates : NO_READS;
    const droppedReads = this.droppedReads.length > 0 ? this.droppedReads : NO_DROPPED;
    this.forwarding = undefined;
    if (messages !== NO_MESSAGES) this.messages = [];
    if (earlyMessages !== NO_MESSAGES) {
      this.earlyMessages = [];
      if (hardState !== undefined && (hardState.term !== hs.term || hardState.vote !== hs.vote)) {
        // A new term or vote must be durable before anything sent in it leaves: all wait.
        messages = messages === NO_MESSAGES ? earlyMessages : earlyMessages.concat(messages);
        earlyMessages = NO_MESSAGES;
      }
    }
    if (readStates !== NO_READS) this.readStates = [];
    if (droppedReads !== NO_DROPPED) this.droppedReads = [];
    this.snapshotToPersist = undefined;
    this.restorePending = false;
    return {
      hardState,
      entries,
      snapshot,
      restoreSnapshot,
      committed,
      messages,
      earlyMessages,
      readStates,
      droppedReads,
      softState,
      membership,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Roles

  private makeSoftState(): SoftState {
    return { role: this.currentRole, leaderId: this.leader, term: this.currentTerm };
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    const base = this.cfg.electionTicks;
    let extra = Math.floor(this.cfg.random() * base);
    if (!(extra >= 0)) extra = 0;
    if (extra >= base) extra = base - 1;
    this.randomizedElectionTimeout = base + extra;
  }

  /** Common reset when the role changes; a new term clears the vote. */
  private reset(term: number): void {
    if (term !== this.currentTerm) {
      this.currentTerm = term;
      this.votedFor = undefined;
    }
    if (this.currentRole === "leader") this.leaveLeadership();
    this.leader = undefined;
    this.transferee = undefined;
    this.votes.clear();
    this.resetTimers();
    this.batchFrom = 0;
    this.batch = [];
  }

  private leaveLeadership(): void {
    this.progresses.clear();
    this.bcastPending = false;
    this.bcastCommit = false;
    this.readBcastPending = false;
    for (const request of this.readOnly.drain()) this.dropRead(request.ctx, request.from);
    const waiting = this.waitingReads;
    this.waitingReads = [];
    for (const read of waiting) this.dropRead(read.ctx, read.from);
    const confirmed = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const read of confirmed) this.dropRead(read.ctx, read.from);
  }

  /** Fails a read: locally (leadership lost), or by answering a follower's forwarded read with -1. */
  private dropRead(ctx: string, from: string): void {
    if (from === this.selfId) {
      this.droppedReads.push({ ctx, reason: "leadership-lost" });
      return;
    }
    this.sendReadIndexResponse(from, ctx, -1);
  }

  private sendReadIndexResponse(to: string, ctx: string, index: number): void {
    this.send({ type: "read-index-response", from: this.selfId, to, term: this.currentTerm, ctx, index });
  }

  private becomeFollower(term: number, leader: string | undefined): void {
    // A snapshot being received is kept: a new leader sending the same image continues it.
    this.reset(term);
    this.currentRole = "follower";
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    this.currentRole = "pre-candidate";
    this.leader = undefined;
    this.votes.clear();
    this.resetTimers();
  }

  private becomeCandidate(): void {
    this.reset(this.currentTerm + 1);
    this.votedFor = this.selfId;
    this.currentRole = "candidate";
  }

  private becomeLeader(): void {
    this.reset(this.currentTerm);
    this.incoming = undefined;
    this.currentRole = "leader";
    this.leader = this.selfId;
    const last = this.log.lastIndex;
    const membership = this.members.current;
    for (const id of membership.voters) this.addProgress(id, last + 1);
    for (const id of membership.learners) this.addProgress(id, last + 1);
    const self = this.progressOf(this.selfId);
    // With asynchronous persistence the leader counts only what is durable as its own.
    self.match = this.cfg.asyncPersistence && !this.cfg.bugSelfAckOnAppend
      ? Math.min(last, this.log.durable)
      : last;
    self.becomeReplicate();
    self.recentActive = true;
    this.leaderMatchSent = 0;
    this.appendEntry("noop", EMPTY_DATA, undefined, undefined);
  }

  private addProgress(id: string, next: number): Progress {
    let pr = this.progresses.get(id);
    if (pr === undefined) {
      pr = new Progress(next, this.cfg.maxInflightAppends);
      this.progresses.set(id, pr);
    }
    return pr;
  }

  private progressOf(id: string): Progress {
    return this.addProgress(id, this.log.lastIndex + 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Elections

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.cfg.bugIgnoreCheckQuorum && !this.quorumActive()) {
        this.becomeFollower(this.currentTerm, undefined);
        return;
      }
      this.transferee = undefined;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastCtx);
      this.readBcastPending = false;
      this.askImageForWaitingTransfers();
    }
  }

  /**
   * A transfer waiting for the image of the latest (imageless) snapshot asks again every heartbeat
   * interval, so a lost request or an answer that was dropped never leaves it waiting for good (its
   * follower's heartbeat responses need not arrive for that).
   */
  private askImageForWaitingTransfers(): void {
    const latest = this.latestSnapshot;
    if (latest === undefined) return;
    for (const [id, pr] of this.progresses) {
      const waiting = pr.transfer?.snapshot;
      if (pr.state !== "snapshot" || waiting === undefined || !this.imageless.has(waiting)) continue;
      if (waiting === latest) this.imageRequest = latest.meta.index;
      else this.sendSnapshot(id, pr); // replaced since: the latest (sent, or asked for)
    }
  }

  /** Starts over the transfers waiting for an image with the latest snapshot (it has one now). */
  private restartImagelessTransfers(): void {
    if (this.currentRole !== "leader") return;
    for (const [id, pr] of this.progresses) {
      if (pr.state === "snapshot" && pr.transfer !== undefined && this.imageless.has(pr.transfer.snapshot)) {
        this.sendSnapshot(id, pr);
      }
    }
  }

  /** True if a majority of voters was heard from since the last check; resets the marks. */
  private quorumActive(): boolean {
    const voters = this.members.current.voters;
    let active = 0;
    for (const id of voters) {
      if (id === this.selfId) {
        active++;
        continue;
      }
      const pr = this.progresses.get(id);
      if (pr !== undefined && pr.recentActive) active++;
    }
    for (const [id, pr] of this.progresses) pr.recentActive = id === this.selfId;
    return active >= majority(voters.length);
  }

  private hup(transfer: boolean): void {
    if (this.currentRole === "leader" || !this.promotable) return;
    if (this.cfg.preVote && !transfer) {
      this.becomePreCandidate();
      this.startElection("pre-vote", false);
    } else {
      this.becomeCandidate();
      this.startElection("vote", transfer);
    }
  }

  private startElection(type: "vote" | "pre-vote", transfer: boolean): void {
    const term = type === "pre-vote" ? this.currentTerm + 1 : this.currentTerm;
    if (this.poll(this.selfId, true) === "won") {
      this.electionWon(type);
      return;
    }
    const lastIndex = this.log.lastIndex;
    const lastTerm = this.log.lastTerm;
    for (const id of this.members.current.voters) {
      if (id === this.selfId) continue;
      const m: VoteMessage = transfer
        ? { type, from: this.selfId, to: id, term, lastIndex, lastTerm, transfer: true }
        : { type, from: this.selfId, to: id, term, lastIndex, lastTerm };
      this.send(m);
    }
  }

  private electionWon(type: "vote" | "pre-vote"): void {
    if (type === "pre-vote") {
      this.becomeCandidate();
      this.startElection("vote", false);
    } else {
      this.becomeLeader();
    }
  }

  /** Records a vote; returns the election outcome so far. */
  private poll(from: string, granted: boolean): "won" | "lost" | "pending" {
    const voters = this.members.current.voters;
    if (voters.includes(from) && !this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const id of voters) {
      const v = this.votes.get(id);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    const need = majority(voters.length);
    if (yes >= need) return "won";
    if (no > voters.length - need) return "lost";
    return "pending";
  }

  private onVoteRequest(m: VoteMessage): void {
    const pre = m.type === "pre-vote";
    const canVote = this.votedFor === m.from ||
      (this.votedFor === undefined && this.leader === undefined) ||
      (pre && m.term > this.currentTerm) ||
      this.cfg.bugDoubleVote;
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.sendVoteResponse(m, false);
      if (!pre) {
        this.electionElapsed = 0;
        this.votedFor = m.from;
      }
    } else {
      this.sendVoteResponse(m, true);
    }
  }

  private sendVoteResponse(m: VoteMessage, reject: boolean): void {
    const type = m.type === "vote" ? "vote-response" : "pre-vote-response";
    // A granted answer carries the term of the request; a rejection carries ours.
    const term = reject ? this.currentTerm : m.term;
    const response: VoteResponseMessage = { type, from: this.selfId, to: m.from, term, reject };
    this.send(response);
  }

  private stepCandidate(m: RaftMessage): void {
    switch (m.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        // A leader exists in our term (or a later one): give up the election.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case "vote-response":
      case "pre-vote-response": {
        const expected = this.currentRole === "candidate" ? "vote-response" : "pre-vote-response";
        if (m.type !== expected) return;
        const outcome = this.poll(m.from, !m.reject);
        if (outcome === "won") this.electionWon(m.type === "vote-response" ? "vote" : "pre-vote");
        else if (outcome === "lost") this.becomeFollower(this.currentTerm, undefined);
        return;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Follower

  private stepFollower(m: RaftMessage): void {
    switch (m.type) {
      case "append":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.onAppend(m);
        return;
      case "heartbeat":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.onHeartbeat(m);
        return;
      case "snapshot":
        this.electionElapsed = 0;
        this.leader = m.from;
        this.onSnapshotChunk(m);
        return;
      case "timeout-now":
        // Leadership transfer: campaign at once, skipping pre-vote and the voters' lease.
        this.hup(true);
        return;
    }
  }

  private onAppend(m: AppendMessage): void {
    const log = this.log;
    if (log.hasBase && m.prevIndex < log.committed) {
      this.sendAppendResponse(m.from, log.committed, false, 0, 0);
      return;
    }
    const matched = this.cfg.bugSkipPrevLogCheck
      ? log.hasBase && m.prevIndex <= log.lastIndex
      : log.matchTerm(m.prevIndex, m.prevTerm);
    if (!matched) {
      if (!log.hasBase) {
        this.sendAppendResponse(m.from, m.prevIndex, true, -1, 0);
        return;
      }
      const [hintIndex, hintTerm] = log.findConflictByTerm(Math.min(m.prevIndex, log.lastIndex), m.prevTerm);
      this.sendAppendResponse(m.from, m.prevIndex, true, hintIndex, hintTerm);
      return;
    }
    // the leader replicates by entries again: a snapshot half received is of no use any more
    this.incoming = undefined;
    const entries = m.entries;
    const lastNew = m.prevIndex + entries.length;
    const conflict = log.findConflict(entries);
    if (conflict > 0) {
      if (conflict <= log.lastIndex) {
        // Only the deliberately broken variants may get here with a committed conflict.
        log.truncateFrom(conflict, this.anyTestingBug());
        this.members.truncateFrom(conflict);
      }
      // conflict > 0 means findConflict found an entry: `entries` is not empty.
      for (let i = conflict - entries[0]!.index; i < entries.length; i++) {
        const entry = entries[i]!;
        log.append(entry);
        if (entry.type === "config") this.members.append(entry);
      }
    }
    let commit = Math.min(m.commit, lastNew);
    if (m.leaderMatch !== undefined) {
      // With at most three voters, this follower and the leader are a majority: what both hold of
      // the current term is committed. It is applied only after this batch is durable here. Any
      // configuration a later leader can be elected in is at most one change (one voter added or
      // removed) from this node's, and with single changes a majority of one configuration meets
      // every majority of the next: a later leader got a vote from one of the two.
      const q = Math.min(m.leaderMatch, lastNew);
      if (
        q > commit && log.term(q) === this.currentTerm &&
        pairIsMajority(this.members.current, this.selfId, m.from)
      ) commit = q;
    }
    if (commit > log.committed && commit <= log.lastIndex) log.commitTo(commit);
    this.sendAppendResponse(m.from, lastNew, false, 0, 0);
  }

  private anyTestingBug(): boolean {
    const c = this.cfg;
    return c.bugSkipPrevLogCheck || c.bugDoubleVote || c.bugCommitOldTerm || c.bugIgnoreCheckQuorum;
  }

  private sendAppendResponse(
    to: string,
    index: number,
    reject: boolean,
    rejectHint: number,
    hintTerm: number,
  ): void {
    const m: AppendResponseMessage = {
      type: "append-response",
      from: this.selfId,
      to,
      term: this.currentTerm,
      index,
      reject,
      rejectHint,
      hintTerm,
    };
    this.send(m);
  }

  private onHeartbeat(m: HeartbeatMessage): void {
    const log = this.log;
    if (log.hasBase) {
      const commit = Math.min(m.commit, log.lastIndex);
      if (commit > log.committed) log.commitTo(commit);
    }
    const response: HeartbeatResponseMessage = m.ctx === undefined
      ? { type: "heartbeat-response", from: this.selfId, to: m.from, term: this.currentTerm }
      : { type: "heartbeat-response", from: this.selfId, to: m.from, term: this.currentTerm, ctx: m.ctx };
    this.send(response);
  }

  private onSnapshotChunk(m: SnapshotChunkMessage): void {
    const meta = m.meta;
    const total = m.total;
    const length = m.data.byteLength;
    if (
      !Number.isSafeInteger(total) || total < 0 || m.offset + length > total ||
      m.done !== (m.offset + length === total)
    ) {
      // a chunk past the size it announces, or `done` where the data does not end (or not where it does)
      this.receiveStats.mismatched++;
      return;
    }
    if (total > this.cfg.maxSnapshotBytes) {
      this.receiveStats.oversize++;
      return;
    }
    let incoming = this.incoming;
    if (incoming !== undefined && !this.sameTransfer(incoming, m)) {
      if (
        incoming.meta.index === meta.index && incoming.meta.term === meta.term && incoming.total !== total
      ) {
        this.receiveStats.mismatched++; // the same snapshot announced with another size
      }
      incoming = undefined;
    }
    if (incoming === undefined) {
      if (m.offset !== 0) {
        // A chunk of a transfer we do not hold: restart it from the beginning.
        this.incoming = undefined;
        this.sendSnapshotResponse(m.from, meta.index, 0, true, false);
        return;
      }
      incoming = {
        from: m.from,
        term: m.term,
        meta,
        total,
        digest: m.digest,
        data: new Uint8Array(total),
        received: 0,
        crc: 0,
      };
      this.incoming = incoming;
    } else if (incoming.from !== m.from || incoming.term !== m.term) {
      // the same image (index, term, size and digest) from a new leader: go on from where we are
      incoming.from = m.from;
      incoming.term = m.term;
      if (incoming.received > 0) this.receiveStats.resumed++;
    }
    if (m.offset !== incoming.received) {
      // A duplicate (behind) is acknowledged again; a gap (ahead) asks for a resend from our offset.
      this.sendSnapshotResponse(m.from, meta.index, incoming.received, m.offset > incoming.received, false);
      return;
    }
    if (length > 0) {
      incoming.data.set(m.data, m.offset);
      if (incoming.digest !== undefined) incoming.crc = crc32c(m.data, 0, length, incoming.crc);
      incoming.received += length;
    }
    if (!m.done) {
      this.sendSnapshotResponse(m.from, meta.index, incoming.received, false, false);
      return;
    }
    this.incoming = undefined;
    if (incoming.digest !== undefined && incoming.crc !== incoming.digest) {
      // not the bytes the leader announced: drop them and start over
      this.receiveStats.digestMismatches++;
      this.sendSnapshotResponse(m.from, meta.index, 0, true, false);
      return;
    }
    const snapshot: Snapshot = incoming.digest === undefined
      ? { meta, data: incoming.data }
      : { meta, data: incoming.data, digest: incoming.digest };
    const index = this.installSnapshot(snapshot);
    this.sendSnapshotResponse(m.from, index, incoming.received, false, true);
  }

  /**
   * Whether chunk `m` belongs to the transfer being received: the same snapshot (index, term, size)
   * from the same leader, or, when both carry a digest, the same digest from any leader.
   */
  private sameTransfer(incoming: IncomingSnapshot, m: SnapshotChunkMessage): boolean {
    if (
      incoming.meta.index !== m.meta.index || incoming.meta.term !== m.meta.term || incoming.total !== m.total
    ) return false;
    if (incoming.digest !== undefined && m.digest !== undefined) return incoming.digest === m.digest;
    return incoming.digest === m.digest && incoming.from === m.from && incoming.term === m.term;
  }

  /** Installs a fully received snapshot; returns the index the follower now matches up to. */
  private installSnapshot(snapshot: Snapshot): number {
    const log = this.log;
    const { index, term } = snapshot.meta;
    if (log.hasBase && index <= log.committed) return log.committed;
    if (log.hasBase && log.matchTerm(index, term)) {
      // The log already holds the snapshot's last entry: just commit up to it.
      log.commitTo(index);
      return index;
    }
    log.restore(snapshot.meta);
    this.members.reset(snapshot.meta.membership, index);
    this.latestSnapshot = snapshot;
    this.snapshotToPersist = snapshot;
    this.restorePending = true;
    return index;
  }

  private sendSnapshotResponse(
    to: string,
    index: number,
    offset: number,
    reject: boolean,
    done: boolean,
  ): void {
    const m: SnapshotResponseMessage = {
      type: "snapshot-response",
      from: this.selfId,
      to,
      term: this.currentTerm,
      index,
      offset,
      reject,
      done,
    };
    this.send(m);
  }

  // ---------------------------------------------------------------------------------------------
  // Leader

  private stepLeader(m: RaftMessage): void {
    switch (m.type) {
      case "append-response":
        this.onAppendResponse(m);
        return;
      case "heartbeat-response":
        this.onHeartbeatResponse(m);
        return;
      case "snapshot-response":
        this.onSnapshotResponse(m);
        return;
    }
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.currentTerm;
  }

  private appendEntry(
    type: EntryType,
    data: Uint8Array,
    requestId: string | undefined,
    change: MembershipChange | undefined,
  ): Entry {
    const log = this.log;
    const index = log.lastIndex + 1;
    const term = this.currentTerm;
    let entry: Entry;
    if (change !== undefined) entry = { index, term, type, data, change };
    else if (requestId !== undefined) entry = { index, term, type, data, requestId };
    else entry = { index, term, type, data };
    log.append(entry);
    const self = this.progresses.get(this.selfId);
    if (self !== undefined) {
      // with asynchronous persistence, the entry counts as the leader's own once durable (persisted())
      if (!this.cfg.asyncPersistence || this.cfg.bugSelfAckOnAppend) self.match = index;
      self.next = index + 1;
    }
    this.bcastPending = true;
    if (type === "config" && this.members.append(entry)) {
      this.onLeaderMembershipChange();
      if (this.maybeCommit()) this.afterCommit();
    } else if (this.members.current.voters.length === 1) {
      // Only a lone voter's own append can move the commit index.
      if (this.maybeCommit()) this.afterCommit();
    }
    return entry;
  }

  private onPropose(m: ProposeMessage): void {
    if (this.currentRole !== "leader" || this.transferee !== undefined) return;
    for (const item of m.entries) this.appendEntry("normal", item.data, item.requestId, undefined);
  }

  /**
   * Adds progress for new members (membership changed on the leader). A removed member keeps its
   * progress until the removal commits, so that it receives the entry that removes it.
   */
  private onLeaderMembershipChange(): void {
    const membership = this.members.current;
    const last = this.log.lastIndex;
    for (const id of membership.voters) this.addProgress(id, last);
    for (const id of membership.learners) this.addProgress(id, last);
  }

  /** Drops the progress of removed members once their removal is committed. */
  private pruneRemovedProgress(): void {
    if (this.progresses.size <= this.members.current.voters.length + this.members.current.learners.length) {
      return;
    }
    if (this.members.lastConfigIndex > this.log.committed) return;
    const membership = this.members.current;
    for (const id of [...this.progresses.keys()]) {
      if (id !== this.selfId && !isMember(membership, id)) this.progresses.delete(id);
    }
  }

  /** Moves the commit index to what a majority of voters holds; only entries of the current term count. */
  private maybeCommit(): boolean {
    const progresses = this.progresses;
    const q = quorumIndex(this.members.current.voters, (id) => progresses.get(id)?.match ?? 0);
    if (q <= this.log.committed) return false;
    if (this.log.term(q) !== this.currentTerm && !this.cfg.bugCommitOldTerm) return false;
    this.log.commitTo(q);
    return true;
  }

  /** Everything that follows an advance of the commit index on the leader. */
  private afterCommit(): void {
    this.bcastPending = true;
    this.bcastCommit = true;
    if (this.waitingReads.length > 0 && this.committedInTerm()) {
      const waiting = this.waitingReads;
      this.waitingReads = [];
      for (const read of waiting) this.leaderReadIndex(read.ctx, read.from);
    }
    if (this.readsAwaitingCommit.length > 0) this.releaseCommittedReads();
    const membership = this.members.current;
    if (!isMember(membership, this.selfId) && this.members.lastConfigIndex <= this.log.committed) {
      this.stepDownRemoved();
      return;
    }
    this.pruneRemovedProgress();
    this.maybePromoteLearner();
  }

  /** This leader's removal committed: tell the followers, hand over to an up-to-date voter, step down. */
  private stepDownRemoved(): void {
    this.flush();
    const last = this.log.lastIndex;
    let successor: string | undefined;
    for (const id of this.members.current.voters) {
      if (this.progresses.get(id)?.match === last) {
        successor = id;
        break;
      }
    }
    if (successor !== undefined) this.sendTimeoutNow(successor);
    this.becomeFollower(this.currentTerm, undefined);
  }

  private maybePromoteLearner(): void {
    if (!this.cfg.autoPromoteLearners || this.currentRole !== "leader" || this.transferee !== undefined) {
      return;
    }
    const committed = this.log.committed;
    if (this.members.lastConfigIndex > committed || !this.committedInTerm()) return;
    if (this.members.current.voters.length >= this.cfg.maxVoters) return;
    for (const id of this.members.current.learners) {
      const pr = this.progresses.get(id);
      if (pr !== undefined && pr.match >= committed) {
        this.appendEntry("config", EMPTY_DATA, undefined, { type: "promote", memberId: id });
        return;
      }
    }
  }

  private onAppendResponse(m: AppendResponseMessage): void {
    const pr = this.progresses.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      if (m.rejectHint < 0) {
        // The follower has no log base: only a snapshot can bring it in.
        if (pr.state !== "snapshot") this.sendSnapshot(m.from, pr);
        return;
      }
      let hint = m.rejectHint;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.hintTerm)[0];
      if (pr.maybeDecrTo(m.index, hint)) this.sendAppend(m.from, pr, false);
      return;
    }
    // A stale or duplicate acknowledgement changes nothing.
    if (pr.maybeUpdate(m.index)) this.onMatchAdvanced(m.from, pr);
  }

  private onMatchAdvanced(id: string, pr: Progress): void {
    if (pr.state === "probe") pr.becomeReplicate();
    else if (
      pr.state === "snapshot" && pr.transfer !== undefined && pr.match >= pr.transfer.snapshot.meta.index
    ) {
      pr.becomeReplicate();
    }
    if (this.maybeCommit()) this.afterCommit();
    if (this.currentRole !== "leader") return;
    if (pr.state !== "snapshot" && pr.next <= this.log.lastIndex) this.sendAppend(id, pr, false);
    if (pr.sentCommit < this.log.committed) {
      // It has not heard of the current commit index yet: the next flush tells it.
      this.bcastPending = true;
      this.bcastCommit = true;
    }
    if (id === this.transferee && pr.match === this.log.lastIndex) this.sendTimeoutNow(id);
    if (this.members.current.learners.includes(id)) this.maybePromoteLearner();
  }

  private onHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.progresses.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.onHeartbeatResponse();
    if (pr.state === "snapshot") {
      const transfer = pr.transfer;
      if (transfer !== undefined) {
        const latest = this.latestSnapshot;
        if (
          transfer.acked === transfer.ackedAtLastHeartbeat && latest !== undefined &&
          latest !== transfer.snapshot &&
          (this.detachedSizes.has(transfer.snapshot) || this.imageless.has(transfer.snapshot))
        ) {
          // Stalled on a snapshot the storage replaced since (its chunks can no longer be read), or
          // waiting for the image of one a newer snapshot replaced: start over with the latest one.
          this.sendSnapshot(m.from, pr);
        } else if (this.imageless.has(transfer.snapshot)) {
          // still waiting for its image: ask again
          this.imageRequest = transfer.snapshot.meta.index;
        } else if (transfer.acked === transfer.ackedAtLastHeartbeat) {
          // No progress for a heartbeat round: something was lost (or the follower refuses the
          // snapshot); resend one chunk from the acknowledged offset, its answer reopens the window.
          transfer.sent = transfer.acked;
          transfer.doneSent = false;
          this.sendSnapshotChunk(m.from, transfer);
        }
        // waiting for an image is this leader's wait, not the follower's stall
        transfer.stalledRounds = this.imageless.has(transfer.snapshot) ||
            transfer.acked !== transfer.ackedAtLastHeartbeat
          ? 0
          : transfer.stalledRounds + 1;
        transfer.ackedAtLastHeartbeat = transfer.acked;
      }
    } else if (pr.match < this.log.lastIndex) {
      this.sendAppend(m.from, pr, true);
    }
    if (m.ctx !== undefined) this.onReadAck(m.ctx, m.from);
  }

  private onSnapshotResponse(m: SnapshotResponseMessage): void {
    const pr = this.progresses.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    const transfer = pr.transfer;
    if (pr.state !== "snapshot" || transfer === undefined) return;
    if (m.done && !m.reject) {
      // the follower's claim is checked: it cannot match beyond this leader's log
      if (m.index > this.log.lastIndex) return;
      pr.match = Math.max(pr.match, m.index);
      pr.becomeReplicate();
      this.onMatchAdvanced(m.from, pr);
      return;
    }
    if (m.index !== transfer.snapshot.meta.index) return;
    const total = this.snapshotSize(transfer.snapshot);
    if (m.offset > total) return; // a claim beyond the snapshot: dropped
    if (m.reject) {
      // the follower holds exactly `offset` bytes: go back there
      transfer.sent = m.offset;
      transfer.acked = m.offset;
      transfer.doneSent = false;
    } else if (m.offset > transfer.acked) {
      transfer.acked = m.offset;
      if (transfer.acked > transfer.sent) {
        // it already held more (a transfer of the same snapshot begun under an earlier leader)
        transfer.sent = transfer.acked;
        transfer.doneSent = false;
      }
    }
    this.sendSnapshotChunks(m.from, pr);
  }

  private sendTimeoutNow(to: string): void {
    this.send({ type: "timeout-now", from: this.selfId, to, term: this.currentTerm });
  }

  /**
   * Sends what `pr` may receive now: as many appends as the flow control allows (one in probe
   * state), or a snapshot if the entries it needs are compacted. With `sendIfEmpty`, an empty
   * append goes out when there is nothing new (to carry the commit index or probe the follower).
   */
  private sendAppend(to: string, pr: Progress, sendIfEmpty: boolean): void {
    const log = this.log;
    const cfg = this.cfg;
    while (!pr.isPaused()) {
      const prevIndex = pr.next - 1;
      const prevTerm = log.term(prevIndex);
      if (prevTerm === undefined) {
        this.sendSnapshot(to, pr);
        return;
      }
      let entries: Entry[];
      if (pr.next > log.lastIndex) {
        if (!sendIfEmpty) return;
        entries = [];
      } else if (this.batchFrom === pr.next && this.batchLast === log.lastIndex) {
        entries = this.batch;
      } else {
        entries = log.entriesFrom(pr.next, cfg.maxEntriesPerAppend, cfg.maxBytesPerAppend);
        this.batchFrom = pr.next;
        this.batchLast = log.lastIndex;
        this.batch = entries;
      }
      const commit = log.committed;
      const leaderMatch = entries.length > 0 ? this.leaderMatchFor(commit) : undefined;
      const m: AppendMessage = {
        type: "append",
        from: this.selfId,
        to,
        term: this.currentTerm,
        prevIndex,
        prevTerm,
        entries,
        commit,
        leaderMatch,
      };
      this.send(m);
      const lastNew = prevIndex + entries.length;
      pr.sentCommit = leaderMatch === undefined
        ? commit
        : this.commitOnAppend(to, commit, leaderMatch, lastNew);
      pr.sentEntries(lastNew, entries.length);
      if (entries.length === 0) return;
      sendIfEmpty = false;
    }
  }

  /**
   * The `leaderMatch` an append carries: this leader's durable match index, when its configuration
   * has at most three voters, itself among them, and it says more than the commit index does
   * (undefined otherwise). Remembered: a ReadIndex is never below what was sent.
   */
  private leaderMatchFor(commit: number): number | undefined {
    // (the pair of itself with itself: at most three voters, this leader among them)
    if (!pairIsMajority(this.members.current, this.selfId, this.selfId)) return undefined;
    const match = this.progresses.get(this.selfId)?.match ?? 0;
    if (match <= commit) return undefined;
    if (match > this.leaderMatchSent) this.leaderMatchSent = match;
    return match;
  }

  /**
   * What follower `to` commits when it takes an append carrying `commit` and `leaderMatch` up to
   * `lastNew`: also what it and this leader hold, when its configuration is this leader's (no
   * configuration entry after `lastNew`) and it votes there. Commit news for no more than that is
   * not sent (a lost append is made good by the next one or a heartbeat).
   */
  private commitOnAppend(to: string, commit: number, leaderMatch: number, lastNew: number): number {
    const q = Math.min(leaderMatch, lastNew);
    if (
      q <= commit || this.members.lastConfigIndex > lastNew ||
      !pairIsMajority(this.members.current, this.selfId, to)
    ) {
      return commit;
    }
    return this.log.term(q) === this.currentTerm ? q : commit;
  }

  private sendSnapshot(to: string, pr: Progress): void {
    let snapshot = this.latestSnapshot;
    if (snapshot === undefined) {
      // A leader restored from entries only: its base is the empty membership at index 0.
      snapshot = { meta: { index: 0, term: 0, membership: this.members.at(0) }, data: EMPTY_DATA };
    }
    pr.becomeSnapshot(snapshot);
    this.sendSnapshotChunks(to, pr);
  }

  /** Sends snapshot chunks within a window of `maxInflightAppends` chunks (go-back-N). */
  private sendSnapshotChunks(to: string, pr: Progress): void {
    const transfer = pr.transfer;
    if (transfer === undefined) return;
    if (this.imageless.has(transfer.snapshot)) {
      // nothing to send until an image is given (provideImage) or a newer snapshot is taken
      this.imageRequest = transfer.snapshot.meta.index;
      return;
    }
    const window = this.cfg.snapshotChunkBytes * this.cfg.maxInflightAppends;
    while (!transfer.doneSent && transfer.sent - transfer.acked < window) {
      this.sendSnapshotChunk(to, transfer);
    }
  }

  /**
   * The image bytes of one chunk of a snapshot with `meta`: the chunk size, cut where the message
   * with the membership it carries would be larger than `snapshotMessageBytes` (a membership of
   * many long ids left no room for 256 KiB behind a small message limit).
   */
  private chunkDataBytes(meta: SnapshotMeta): number {
    const { snapshotChunkBytes, snapshotMessageBytes } = this.cfg;
    if (snapshotMessageBytes === Number.POSITIVE_INFINITY) return snapshotChunkBytes;
    const room = snapshotMessageBytes - SNAPSHOT_MESSAGE_FRAMING - membershipWireBytes(meta.membership);
    return Math.min(snapshotChunkBytes, Math.max(MIN_CHUNK_DATA_BYTES, room));
  }

  /** Sends the chunk at `transfer.sent` and moves past it. */
  private sendSnapshotChunk(to: string, transfer: SnapshotTransfer): void {
    const { snapshot } = transfer;
    const total = this.snapshotSize(transfer.snapshot);
    const offset = transfer.sent;
    const end = Math.min(total, offset + this.chunkDataBytes(snapshot.meta));
    const done = end === total;
    const detached = this.detachedSizes.has(snapshot);
    const base = {
      type: "snapshot",
      from: this.selfId,
      to,
      term: this.currentTerm,
      meta: snapshot.meta,
      offset,
      total,
      data: detached ? EMPTY_DATA : snapshot.data.subarray(offset, end),
      done,
    } as const;
    const withDigest: SnapshotChunkMessage = snapshot.digest === undefined
      ? base
      : { ...base, digest: snapshot.digest };
    const m: SnapshotChunkMessage = detached && end > offset
      ? { ...withDigest, fill: end - offset }
      : withDigest;
    this.send(m);
    transfer.sent = end;
    if (done) transfer.doneSent = true;
  }

  private bcastHeartbeat(ctx: string | undefined): void {
    const committed = this.log.committed;
    for (const [id, pr] of this.progresses) {
      if (id === this.selfId) continue;
      const commit = Math.min(pr.match, committed);
      const m: HeartbeatMessage = ctx === undefined
        ? { type: "heartbeat", from: this.selfId, to: id, term: this.currentTerm, commit }
        : { type: "heartbeat", from: this.selfId, to: id, term: this.currentTerm, commit, ctx };
      this.send(m);
      if (commit > pr.sentCommit) pr.sentCommit = commit;
    }
  }

  /** Sends the replication that inputs since the last flush called for (one round per follower). */
  private flush(): void {
    if (this.currentRole !== "leader") {
      this.bcastPending = false;
      this.bcastCommit = false;
      this.readBcastPending = false;
      return;
    }
    if (this.bcastPending) {
      const commitNews = this.bcastCommit;
      this.bcastPending = false;
      this.bcastCommit = false;
      const committed = this.log.committed;
      for (const [id, pr] of this.progresses) {
        if (id === this.selfId) continue;
        this.sendAppend(id, pr, commitNews && pr.sentCommit < committed);
      }
    }
    if (this.readBcastPending) {
      this.readBcastPending = false;
      this.bcastHeartbeat(this.readOnly.lastCtx);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // ReadIndex

  private leaderReadIndex(ctx: string, from: string): void {
    if (!this.committedInTerm()) {
      // The commit index of a new leader may lag the cluster's; wait for its first commit.
      this.waitingReads.push({ ctx, from });
      return;
    }
    // A follower may have committed (and answered a proposal) up to a leaderMatch it was sent.
    const committed = this.log.committed;
    const index = this.cfg.bugReadIgnoresFollowerCommit
      ? committed
      : Math.max(committed, this.leaderMatchSent);
    const voters = this.members.current.voters;
    if (voters.length === 1 && voters[0] === this.selfId) {
      this.readConfirmed(ctx, index, from);
      return;
    }
    if (!this.readOnly.add(ctx, index, from)) return;
    if (isVoter(this.members.current, this.selfId)) this.readOnly.ack(ctx, this.selfId);
    this.readBcastPending = true;
  }

  private onReadAck(ctx: string, from: string): void {
    const request = this.readOnly.ack(ctx, from);
    if (request === undefined) return;
    const voters = this.members.current.voters;
    let acks = 0;
    for (const id of voters) if (request.acks.has(id)) acks++;
    if (acks < majority(voters.length)) return;
    for (const done of this.readOnly.advance(ctx)) this.readConfirmed(done.ctx, done.index, done.from);
  }

  /** A quorum confirmed this leadership for a read at `index`: answered now if `index` is committed. */
  private readConfirmed(ctx: string, index: number, from: string): void {
    if (index <= this.log.committed) this.readDone(ctx, index, from);
    else this.readsAwaitingCommit.push({ ctx, index, from });
  }

  /** Answers the confirmed reads whose index is committed now, in the order they were confirmed. */
  private releaseCommittedReads(): void {
    const committed = this.log.committed;
    const waiting: ConfirmedRead[] = [];
    for (const read of this.readsAwaitingCommit) {
      if (read.index <= committed) this.readDone(read.ctx, read.index, read.from);
      else waiting.push(read);
    }
    this.readsAwaitingCommit = waiting;
  }

  private readDone(ctx: string, index: number, from: string): void {
    if (from === this.selfId) this.readStates.push({ ctx, index });
    else this.sendReadIndexResponse(from, ctx, index);
  }

  private send(m: RaftMessage): void {
    if (this.cfg.asyncPersistence && EARLY_TYPES.has(m.type)) this.earlyMessages.push(m);
    else this.messages.push(m);
  }
}
