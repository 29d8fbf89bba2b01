/**
 * The Raft plumbing of a cluster peer: the wiring of its jobs, the driver and its hooks, sending,
 * the role and leader events, apply (commands and membership changes), snapshots and compaction,
 * and the liveness tick. {@linkcode PeerInbox} (`peer_inbox.ts`) adds the receiving side, and
 * {@linkcode ClusterPeer} (`peer.ts`) the propose path, the read barrier, the join, leave and
 * removal flows, and the collection host.
 *
 * @module
 */

import type { EventEmitter } from "eventemitter3";
import { encodeCbor } from "../codec/cbor.ts";
import { restoreInSlices, runSnapshotJob, SnapshotJob } from "./snapshot_job.ts";
import { DEFAULT_MAX_ENVELOPE_BYTES, type HelloBody, type WireEnvelope } from "../codec/envelope.ts";
import { PeerWire } from "./peer_wire.ts";
import { newMemberId, peerIdOfMember } from "./member_id.ts";
import type { TimerHandle } from "./scheduler.ts";
import { RaftDriver, type RaftDriverHooks } from "./raft_driver.ts";
import { RaftFanout } from "./raft_fanout.ts";
import { AckBatcher } from "./ack_batcher.ts";
import { asError } from "./async.ts";
import { Discovery } from "./discovery.ts";
import { JOIN_OP, LEAVE_OP, MembershipManager } from "./membership_manager.ts";
import { MembershipView } from "./membership_view.ts";
import { Proposals } from "./proposals.ts";
import { RpcRouter } from "./rpc.ts";
import { type Command, StateMachine, type StateMachineImageParts } from "./state_machine.ts";
import { ClusterSubjects } from "./subjects.ts";
import { Waiters } from "./waiters.ts";
import { PeerCounters } from "./peer_counters.ts";
import { CLIENT_LIMITS, CLIENT_OPS } from "./client_ops.ts";
import { ClientService, type ClientServiceHost } from "./client_service.ts";
import type { HamokStatus } from "./status.ts";
import { decodeCommand } from "./command_codec.ts";
import type { HamokEvents, HamokState } from "./peer_events.ts";
import { HamokMetrics } from "../telemetry/metrics.ts";
import type { AckHandler } from "../collections/collection_host.ts";
import type { HamokLogger, ResolvedHamokConfig } from "../config.ts";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokError,
  HamokNotJoinedError,
  HamokStorageError,
} from "../errors.ts";
import { RaftNode } from "../raft/raft_node.ts";
import type { Entry, RaftMessage, RaftRole, Snapshot, SoftState } from "../raft/types.ts";
import { MemoryRaftStorage } from "../storage/memory_storage.ts";
import { FileRaftStorage } from "../storage/file_raft_storage.ts";
import type { RaftPersistentState, RaftStorage } from "../storage/raft_storage.ts";
import { MemoryTransport } from "../transport/memory_transport.ts";
import type { Transport, TransportHeaders } from "../transport/transport.ts";

/** Longest stretch, in ms, a snapshot being written out holds the event loop. */
const SNAPSHOT_SLICE_MS = 4;
/**
 * Entries applied before a compaction held back by a snapshot transfer is looked at again (at most;
 * a sixteenth of `snapshotThreshold` if that is less).
 */
const COMPACTION_RECHECK_ENTRIES = 256;

/** Bytes reserved beside one entry in an append message: envelope, Raft fields, tag slack, headers. */
const ENTRY_FRAMING_BYTES = 1024;

/**
 * The Raft plumbing of a peer (see the module doc); {@linkcode PeerInbox} and
 * {@linkcode ClusterPeer} complete it.
 *
 * @example
 * ```ts ignore
 * class ClusterPeer extends PeerCore { ... }
 * ```
 */
export abstract class PeerCore {
  /** The resolved configuration. */
  readonly config: ResolvedHamokConfig;
  /** This peer's id. */
  readonly localPeerId: string;
  /** The cluster's subjects. */
  readonly subjects: ClusterSubjects;
  /** The transport this peer talks through. */
  readonly transport: Transport;
  /** The logger. */
  readonly logger: HamokLogger;
  /** This peer's counters (dropped messages by reason, codec failures, elections, leader changes). */
  readonly counters: PeerCounters = new PeerCounters();
  /** This peer's OpenTelemetry instruments (`metrics.enabled` is false without an SDK). */
  readonly metrics: HamokMetrics;
  protected readonly events: EventEmitter<HamokEvents>;
  protected readonly ownsTransport: boolean;
  protected readonly ownsStorage: boolean;
  protected storage: RaftStorage;
  /** Set once the storage failed: writes are refused from then on. */
  protected storageFailure: Error | undefined;
  protected memberId: string;
  protected readonly stateMachine: StateMachine = new StateMachine();
  protected readonly rpc: RpcRouter;
  protected node: RaftNode | undefined;
  protected driver: RaftDriver | undefined;
  protected joinPromise: Promise<void> | undefined;
  protected joinAbort: AbortController | undefined;
  protected isJoined = false;
  protected leaving = false;
  protected isClosed = false;
  protected peerState: HamokState = "empty";
  protected leaderMemberId: string | undefined;
  protected currentTerm = 0;
  /** The committed membership; {@linkcode members} is its table, read directly on hot paths. */
  protected readonly membership: MembershipView;
  protected readonly members: Map<string, "voter" | "learner">;
  // the jobs this peer delegates
  protected readonly discovery: Discovery;
  protected readonly membershipManager: MembershipManager;
  protected readonly proposals: Proposals;
  protected readonly acks: AckBatcher;
  protected readonly waiters: Waiters;
  /** Per emitter id, the handlers of its acknowledgements (an app's view and a client publisher's). */
  protected readonly ackHandlers: Map<string, AckHandler[]> = new Map();
  /** Encodes, binds, seals, opens and checks every message (the trust boundary for bytes). */
  protected readonly wire: PeerWire;
  /**
   * Request ids are `<memberId>:<session><counter>`. A member restarted on its durable storage
   * keeps its id and its applied request ids, so each such start gets a new session tag: a
   * restarted counter must never repeat an id the state machine would skip as a duplicate.
   */
  protected requestSession = "";
  /** The next join is an automatic rejoin after a removal (it must not bootstrap). */
  protected rejoining = false;
  /** While joining afresh: a member said this peer's member id was removed. */
  protected identityLost = false;
  readonly #client: ClientService;
  /** Leader with metrics: when the oldest unanswered append went to each member. */
  protected readonly appendSentAt: Map<string, number> = new Map();
  protected fanout: RaftFanout | undefined;
  /** Commands (application writes) this Raft node applied since it started from its storage or image. */
  protected commandsApplied = 0;
  #livenessTimer: TimerHandle | undefined;
  #lastCompacted = 0;
  #compactScheduled = false;
  /** Bytes of entry data applied since the peer started, and that many when the last snapshot was taken. */
  #appliedBytes = 0;
  #compactedBytes = 0;
  /** When this peer last heard from its leader (the inbox sets it; the liveness tick reads it). */
  protected lastLeaderContact = 0;
  /** When this peer last accepted a Raft message from a member of its (latest known) membership. */
  protected lastMemberContact = 0;
  /** When this peer last announced itself for want of a leader. */
  #lastProbe = 0;

  /** Wires the peer's jobs; nothing happens on the network until a join. */
  constructor(
    config: ResolvedHamokConfig,
    events: EventEmitter<HamokEvents>,
    client: Pick<ClientServiceHost, "findMapState" | "readBarrier" | "proposeMap" | "publish">,
  ) {
    this.config = config;
    this.events = events;
    this.waiters = new Waiters(() => this.isClosed, config.scheduler);
    this.localPeerId = config.peerId;
    this.logger = config.logger;
    this.subjects = new ClusterSubjects(config.subjectPrefix);
    this.ownsTransport = config.transport === undefined;
    this.transport = config.transport ?? new MemoryTransport();
    this.ownsStorage = config.storage === undefined;
    this.memberId = newMemberId(this.localPeerId, config.scheduler);
    this.storage = config.storage ?? this.newOwnedStorage();
    if (!this.ownsStorage) {
      const storageMember = (this.storage as { memberId?: unknown }).memberId;
      if (typeof storageMember === "string") {
        if (peerIdOfMember(storageMember) !== this.localPeerId) {
          throw new HamokConfigError(
            `the storage belongs to member '${storageMember}', which is not of peer '${this.localPeerId}'`,
          );
        }
        this.memberId = storageMember;
      }
    }
    this.metrics = new HamokMetrics(config.meterProvider, this.localPeerId, {
      log: () => {
        const node = this.node;
        return node === undefined
          ? { entries: 0, bytes: 0 }
          : { entries: node.lastIndex - node.snapshotIndex, bytes: node.logBytes };
      },
      followerLag: () => {
        const node = this.node;
        const lags: [string, number][] = [];
        if (node === undefined || this.peerState !== "leader") return lags;
        for (const [memberId, pr] of node.progress) {
          if (memberId !== this.memberId) {
            lags.push([peerIdOfMember(memberId), Math.max(0, node.lastIndex - pr.match)]);
          }
        }
        return lags;
      },
    });
    if (this.metrics.enabled) this.counters.onDropped = (reason) => this.metrics.droppedOne(reason);
    this.wire = new PeerWire({
      clusterId: config.clusterId,
      keys: config.clusterKeys,
      counters: this.counters,
      peerId: this.localPeerId,
      warn: (message, detail) => this.logger.warn(message, detail),
      scheduler: config.scheduler,
    });
    this.membership = new MembershipView({
      localPeerId: this.localPeerId,
      localMemberId: () => this.memberId,
      peerJoined: (peerId, index) => {
        if (index !== undefined) {
          this.logger.info(
            `hamok ${this.localPeerId}: ${peerId} joined the cluster (as learner, index ${index})`,
          );
        }
        this.events.emit("remote-peer-joined", peerId);
      },
      learnerAdded: (memberId) => {
        if (this.peerState === "leader") {
          this.membershipManager.heard(memberId, this.config.scheduler.monotonicNow());
        }
      },
      memberForgotten: (memberId) => this.membershipManager.forget(memberId),
      peerRemoved: (peerId, index) =>
        this.stateMachine.memberRemoved(peerId, { index, requestId: undefined, proposerPeerId: peerId }),
      peerLeft: (peerId, index) => {
        if (index !== undefined) {
          this.logger.info(`hamok ${this.localPeerId}: ${peerId} left the cluster (index ${index})`);
        }
        this.events.emit("remote-peer-left", peerId);
      },
      selfRemoved: () => this.selfRemoved(),
    });
    this.members = this.membership.members;
    this.rpc = new RpcRouter(
      {
        sendRequest: (peerId, body) => this.send(peerId, { type: "request", from: this.localPeerId, body }),
        sendResponse: (peerId, body) => this.send(peerId, { type: "response", from: this.localPeerId, body }),
      },
      this.localPeerId,
      config.scheduler,
    );
    this.proposals = new Proposals(
      () => (this.leaderMemberId === undefined ? undefined : this.driver),
      config.electionTicks * config.tickMs,
      this.metrics.enabled
        ? (ms) => this.metrics.proposalDuration.record(ms / 1000, this.metrics.peerAttributes)
        : undefined,
      config.scheduler,
    );
    this.acks = new AckBatcher({
      sendAck: (toPeerId, emitterId, ackRequestId, error) =>
        this.send(toPeerId, {
          type: "ack",
          from: this.memberId,
          body: error === undefined
            ? { emitterId, ackRequestId, peerId: this.localPeerId, ok: true }
            : { emitterId, ackRequestId, peerId: this.localPeerId, ok: false, error },
        }),
      sendAcks: (toPeerId, acks) =>
        this.send(toPeerId, { type: "acks", from: this.memberId, body: { peerId: this.localPeerId, acks } }),
    }, config.scheduler);
    this.membershipManager = new MembershipManager({
      ...config,
      aliveMs: config.peerTimeoutMs,
      activeMs: config.electionTicks * config.tickMs,
    }, {
      isLeader: () => this.peerState === "leader",
      localMemberId: () => this.memberId,
      membership: () => this.node?.membership,
      requireDriver: () => this.requireDriver(),
    });
    const electionMs = config.electionTicks * config.tickMs;
    this.discovery = new Discovery({
      ...config,
      // a cluster electing a new leader (up to two election timeouts) is never taken for no cluster
      memberWindowMs: Math.max(4 * config.discoveryMs, 6 * electionMs),
      trustWindowMs: config.peerTimeoutMs,
    }, {
      hello: () => this.hello(),
      isMember: () => this.members.has(this.memberId),
      inCluster: () =>
        this.node!.membership.voters.includes(this.memberId) || this.members.has(this.memberId),
      publish: (hello, toPeerId) =>
        this.publishEnvelope(
          toPeerId === undefined ? this.subjects.broadcast : this.subjects.inbox(toPeerId),
          { type: "hello", from: this.localPeerId, body: hello },
        ),
      reportError: (error) => this.reportError(error),
      requestJoin: (leaderMemberId, timeoutMs) =>
        this.rpc.request(peerIdOfMember(leaderMemberId), JOIN_OP, encodeCbor(this.memberId), timeoutMs),
      bootstrap: () => this.bootstrap(),
      lone: () => this.lone(),
      merge: (leaderMemberId, clusterUid) => this.mergeInto(leaderMemberId, clusterUid),
      knownMembers: () => {
        const membership = this.node?.membership;
        if (membership === undefined) return [];
        return [...membership.voters, ...membership.learners].filter((id) => id !== this.memberId);
      },
    });
    this.rpc.handle(
      JOIN_OP,
      (payload, fromPeerId) => this.membershipManager.onJoinRequest(payload, fromPeerId),
    );
    this.rpc.handle(
      LEAVE_OP,
      (payload, fromPeerId) => this.membershipManager.onLeaveRequest(payload, fromPeerId),
    );
    this.#client = new ClientService(
      {
        status: () => this.status(),
        findMapState: client.findMapState,
        readBarrier: client.readBarrier,
        proposeMap: client.proposeMap,
        publish: client.publish,
        sendEvent: (toPeerId, body) => this.send(toPeerId, { type: "event", from: this.memberId, body }),
      },
      this.counters,
      config.requestTimeoutMs,
      CLIENT_LIMITS,
      config.scheduler,
    );
    for (const op of CLIENT_OPS) {
      this.rpc.handle(op, (payload, fromPeerId) => this.#client.handle(op, payload, fromPeerId));
    }
  }

  /** This peer's status (the client service answers it to outsiders). */
  abstract status(): HamokStatus;
  /** The hello this peer announces itself with. */
  protected abstract hello(): HelloBody;
  /** Starts a new cluster with this member as its only voter. */
  protected abstract bootstrap(): void;
  /** True if this peer is the only member of a cluster without application writes (see `autoMerge`). */
  protected abstract lone(): boolean;
  /** Dissolves this lone peer's cluster into another one (see `Discovery`'s host `merge`). */
  protected abstract mergeInto(leaderMemberId: string, clusterUid: string): Promise<boolean>;
  /** Follows the shared append subject while subscribed and not the leader (see `PeerInbox`). */
  protected abstract followShared(): void;
  /** The config entry that removes this peer's own member was applied. */
  protected abstract selfRemoved(): void;

  /** `empty` before joining, else the Raft role. */
  get state(): HamokState {
    return this.peerState;
  }

  /** The current Raft term. */
  get term(): number {
    return this.currentTerm;
  }

  /** Index of the last log entry applied on this peer. */
  get appliedIndex(): number {
    return this.driver?.appliedIndex ?? 0;
  }

  /**
   * The largest message this peer may send, in bytes: the transport's limit (a NATS server's
   * `max_payload`) or the envelope limit, whichever is smaller, less the authentication tag.
   */
  get maxMessageBytes(): number {
    const transportLimit = this.transport.maxPayload ?? Number.POSITIVE_INFINITY;
    return Math.min(transportLimit, DEFAULT_MAX_ENVELOPE_BYTES) - this.wire.overhead;
  }

  /**
   * The largest log entry (command and request id) this peer accepts, in bytes: one entry must fit
   * in one append message with its framing and trace headers.
   */
  get maxEntryBytes(): number {
    return this.maxMessageBytes - ENTRY_FRAMING_BYTES;
  }

  /** Reports a non-fatal error on the peer's `error` event (or logs it when nobody listens). */
  reportError(error: Error): void {
    if (this.events.listenerCount("error") === 0) {
      this.logger.error(error.message, error);
      return;
    }
    try {
      this.events.emit("error", error);
    } catch (thrown) {
      // an application's error listener that throws must not unwind the peer's own code (a
      // retry loop that reports each failure would go round without its backoff): log it instead
      this.logger.error(`hamok: an 'error' listener threw while handling: ${error.message}`, thrown);
    }
  }

  // ------------------------------------------------------------------ raft plumbing

  /** The largest append and snapshot chunk for the transport's current message limit. */
  protected messageLimits(): {
    maxBytesPerAppend: number;
    snapshotChunkBytes: number;
    snapshotMessageBytes: number;
  } {
    const room = this.maxMessageBytes - ENTRY_FRAMING_BYTES;
    return {
      maxBytesPerAppend: Math.max(1, Math.min(1024 * 1024, room)),
      snapshotChunkBytes: Math.max(1, Math.min(256 * 1024, room)),
      // a chunk leaves room for the membership its message carries
      snapshotMessageBytes: Math.max(1, room),
    };
  }

  protected startRaft(persisted: RaftPersistentState): void {
    const scheduler = this.config.scheduler;
    const random = (): number => scheduler.random();
    const node = new RaftNode({
      id: this.memberId,
      electionTicks: this.config.electionTicks,
      heartbeatTicks: this.config.heartbeatTicks,
      // every append fits in one message (an entry alone is admitted only if it fits: see propose)
      ...this.messageLimits(),
      maxVoters: this.config.voters,
      maxSnapshotBytes: this.config.maxSnapshotBytes,
      // a storage that syncs (a file): the leader writes its own log while it replicates it
      asyncPersistence: this.storage.sync !== undefined,
      random,
    }, persisted);
    this.node = node;
    this.commandsApplied = 0;
    this.members.clear();
    const base = persisted.snapshot;
    let restoring: Promise<void> | undefined;
    if (base !== undefined) {
      this.membership.set(base.meta.membership, false);
      if (base.data.length > 0) restoring = this.#restoreState(base.data);
    }
    this.#lastCompacted = base?.meta.index ?? 0;
    this.#compactedBytes = this.#appliedBytes;
    // a leader's alike appends and heartbeats to followers in sync with it go out once (shared subject)
    const fanout = this.fanout = new RaftFanout({
      scheduler,
      inSyncMs: 3 * this.config.heartbeatTicks * this.config.tickMs,
      localPeerId: this.localPeerId,
      wire: this.wire,
      maxMessageBytes: () => this.maxMessageBytes,
      unicast: (message) => this.#sendRaft(message),
      publishShared: (data) => this.publishBytes(this.subjects.shared, data),
      encodeFailed: (error) => {
        this.counters.sendFailures++;
        this.reportError(asError(error));
      },
      appendSent: this.metrics.enabled ? (memberId) => this.#appendSent(memberId) : undefined,
      heartbeatMs: this.config.heartbeatTicks * this.config.tickMs,
      // a learner with no voter seat free: the leader needs its acknowledgements for bookkeeping only
      coalesceAcks: () => {
        const membership = node.membership;
        return this.peerState === "follower" && membership.learners.includes(this.memberId) &&
          membership.voters.length >= this.config.voters;
      },
    });
    const hooks: RaftDriverHooks = {
      send: (message) => this.#sendRaft(message),
      sendAll: (messages) => fanout.send(messages, this.peerState === "leader"),
      apply: (entry) => this.#apply(entry),
      restore: (snapshot) => this.#onSnapshotRestored(snapshot),
      softStateChanged: (state) => this.#onSoftState(state),
      error: (error) => this.#onDriverError(error),
      snapshotWanted: () => this.#scheduleCompaction(true),
    };
    if (this.metrics.enabled) {
      hooks.appliedBatch = (count) => this.metrics.applyBatchSize.record(count, this.metrics.peerAttributes);
    }
    this.driver = new RaftDriver(node, this.storage, hooks, this.config.tickMs, scheduler);
    // the state is restored in slices meanwhile: the driver applies nothing before it is complete
    if (restoring !== undefined) this.driver.holdUntil(restoring, base!.meta.index);
    this.driver.start();
    this.lastLeaderContact = scheduler.monotonicNow();
    this.lastMemberContact = this.lastLeaderContact;
    this.#lastLivenessTick = this.lastLeaderContact;
    const period = Math.max(this.config.tickMs, Math.floor(Math.min(this.config.peerTimeoutMs / 4, 500)));
    this.#livenessTimer = scheduler.setInterval(() => this.#livenessTick(), period);
  }

  protected stopRaft(): void {
    this.fanout?.close();
    this.driver?.stop();
    this.driver = undefined;
    this.node = undefined;
    this.config.scheduler.clearInterval(this.#livenessTimer);
    this.#livenessTimer = undefined;
    if (this.leaderMemberId !== undefined) {
      const previous = peerIdOfMember(this.leaderMemberId);
      this.leaderMemberId = undefined;
      this.events.emit("leader-changed", undefined, previous);
    }
  }

  /** Stops and forgets the cluster (left or removed); an owned storage is replaced under a new member id. */
  protected becomeEmpty(): void {
    this.stopRaft();
    this.isJoined = false;
    this.membership.clear();
    this.discovery.reset();
    this.setState("empty");
    // a later join() must come back under a new member id (the old one is tombstoned)
    if (this.ownsStorage) {
      if (this.storage instanceof FileRaftStorage) this.storage.discard();
      else void Promise.resolve(this.storage.close()).catch(() => {});
      this.memberId = newMemberId(this.localPeerId, this.config.scheduler);
      this.storage = this.newOwnedStorage();
    }
  }

  /** The storage this peer makes itself: a file storage in `dataDir` (whose member id it takes), else memory. */
  protected newOwnedStorage(): RaftStorage {
    const dataDir = this.config.dataDir;
    // its own storage lives and dies with one node: it keeps no snapshot images
    if (dataDir === undefined) {
      return new MemoryRaftStorage(this.memberId, undefined, { snapshotsOnDemand: true });
    }
    const storage = new FileRaftStorage({
      dataDir,
      peerId: this.localPeerId,
      clusterId: this.config.clusterId,
      sync: this.config.sync,
      syncIntervalMs: this.config.syncIntervalMs,
    });
    this.memberId = storage.memberId;
    return storage;
  }

  /** A driver failure: a storage failure also stops this peer from accepting writes. */
  #onDriverError(error: unknown): void {
    const failure = asError(error);
    if (failure instanceof HamokStorageError && this.storageFailure === undefined) {
      this.storageFailure = failure;
      this.logger.error(`hamok ${this.localPeerId}: storage failed, no longer accepting writes`, failure);
    }
    this.reportError(failure);
  }

  protected requireDriver(): RaftDriver {
    if (this.isClosed) throw new HamokClosedError("the peer is closed");
    if (this.driver === undefined) throw new HamokNotJoinedError("the peer has not joined a cluster");
    return this.driver;
  }

  protected send(peerId: string, envelope: WireEnvelope): void {
    this.publishEnvelope(this.subjects.inbox(peerId), envelope);
  }

  /**
   * Encodes, binds and seals `envelope` and publishes it. A publish the transport refuses (too
   * large, closed) is counted and reported, never thrown: the Raft driver must keep running.
   */
  protected publishEnvelope(subject: string, envelope: WireEnvelope, headers?: TransportHeaders): void {
    if (this.isClosed) return;
    let data: Uint8Array;
    try {
      data = this.wire.encode(envelope);
    } catch (error) {
      this.counters.sendFailures++;
      this.reportError(asError(error));
      return;
    }
    this.publishBytes(subject, data, headers);
  }

  protected publishBytes(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    if (this.isClosed) return;
    try {
      this.transport.publish(subject, data, headers);
    } catch (error) {
      this.counters.sendFailures++;
      if (this.transport.state !== "closed") this.wire.drop("rate-limited", error);
    }
  }

  #sendRaft(message: RaftMessage): void {
    if (message.type === "append" && this.metrics.enabled) this.#appendSent(message.to);
    this.send(peerIdOfMember(message.to), { type: "raft", from: this.localPeerId, body: message });
  }

  #appendSent(memberId: string): void {
    if (!this.appendSentAt.has(memberId)) {
      this.appendSentAt.set(memberId, this.config.scheduler.monotonicNow());
    }
  }

  // ------------------------------------------------------------------ role and leader

  /** The role, leader or term changed: the events, the counters, and proposals resubmitted to a new leader. */
  #onSoftState(state: SoftState): void {
    this.currentTerm = state.term;
    const previousLeader = this.leaderMemberId;
    this.leaderMemberId = state.leaderId;
    const next = roleToState(state.role);
    // an election this peer started (a lone voter goes from follower to leader in one step)
    if (
      next !== this.peerState &&
      (next === "candidate" || (next === "leader" && this.peerState !== "candidate"))
    ) {
      this.counters.elections++;
      if (this.metrics.enabled) this.metrics.elections.add(1, this.metrics.peerAttributes);
      this.logger.info(`hamok ${this.localPeerId}: started an election (term ${state.term})`);
    }
    if (state.leaderId !== undefined && previousLeader !== state.leaderId) {
      this.counters.leaderChanges++;
      if (this.metrics.enabled) this.metrics.leaderChanges.add(1, this.metrics.peerAttributes);
      this.logger.info(
        `hamok ${this.localPeerId}: leader is now ${peerIdOfMember(state.leaderId)} (term ${state.term})`,
      );
    } else if (state.leaderId === undefined && previousLeader !== undefined) {
      this.logger.info(
        `hamok ${this.localPeerId}: lost the leader ${peerIdOfMember(previousLeader)} (term ${state.term})`,
      );
    }
    if (next === "leader" && this.peerState !== "leader") {
      this.appendSentAt.clear();
      const now = this.config.scheduler.monotonicNow();
      for (const memberId of this.members.keys()) this.membershipManager.heard(memberId, now);
    }
    this.setState(next);
    if (previousLeader !== state.leaderId) {
      this.events.emit(
        "leader-changed",
        state.leaderId === undefined ? undefined : peerIdOfMember(state.leaderId),
        previousLeader === undefined ? undefined : peerIdOfMember(previousLeader),
      );
      if (state.leaderId !== undefined) this.proposals.resubmitAll();
    }
    this.waiters.check();
  }

  /** Moves to `next` and says so (`state-changed`). */
  protected setState(next: HamokState): void {
    const previous = this.peerState;
    if (previous === next) return;
    this.peerState = next;
    if (next === "leader" || previous === "leader") this.followShared();
    this.events.emit("state-changed", next, previous);
  }

  // ------------------------------------------------------------------ apply

  #apply(entry: Entry): void {
    if (entry.type === "normal") {
      this.commandsApplied++;
      this.#applyCommand(entry);
    } else if (entry.type === "config" && entry.change !== undefined) {
      this.membership.applyChange(entry.change, entry.index);
    }
    if (this.events.listenerCount("commit") > 0) this.events.emit("commit", entry.index);
    this.waiters.check();
    this.#appliedBytes += entry.data.length;
    if (entry.index >= this.#nextCompactionCheck && this.#compactionDue(entry.index)) {
      this.#scheduleCompaction();
    }
  }

  /** Applied index before which a compaction held back by a snapshot transfer is not looked at again. */
  #nextCompactionCheck = 0;

  /** A compaction held back at `applied` is looked at again after a few more entries, not at every one. */
  #recheckCompactionAfter(applied: number): void {
    this.#nextCompactionCheck = applied +
      Math.max(1, Math.min(COMPACTION_RECHECK_ENTRIES, Math.ceil(this.config.snapshotThreshold / 16)));
  }

  #applyCommand(entry: Entry): void {
    let command: Command;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      this.counters.codecFailures++;
      const failure = new HamokCodecError(`entry ${entry.index} is not a valid command`, { cause: error });
      this.reportError(failure);
      // every peer skips it alike; the proposer's caller learns it now rather than at its timeout
      if (entry.requestId !== undefined) this.proposals.refused(entry.requestId, failure);
      return;
    }
    const outcome = this.stateMachine.apply(command, {
      index: entry.index,
      requestId: entry.requestId,
      proposerPeerId: command.peerId,
    });
    if (entry.requestId !== undefined) {
      if (outcome.reused === true) {
        this.proposals.refused(
          entry.requestId,
          new HamokConfigError(
            `request id '${entry.requestId}' was used before for another command; the ${command.op} on ${command.kind} '${command.id}' was not applied`,
          ),
        );
      } else this.proposals.applied(entry.requestId, outcome.result);
    }
    // a duplicate (an entry whose request id was applied before) changed nothing: not streamed
    if (this.#client.watching && !outcome.duplicate) {
      this.#client.applied(command.kind, command.id, command.op, command.args, entry.index);
    }
  }

  // ------------------------------------------------------------------ snapshots and compaction

  #onSnapshotRestored(snapshot: Snapshot): Promise<void> {
    this.membership.set(snapshot.meta.membership, true);
    this.#lastCompacted = snapshot.meta.index;
    this.#compactedBytes = this.#appliedBytes;
    return this.#restoreState(snapshot.data).then(() => {
      // client watches may have missed changes: told once the state is the snapshot's, before any later apply
      this.#client.restored(snapshot.meta.index);
      this.waiters.check();
    });
  }

  /**
   * Restores the state machine from snapshot bytes in slices of a few milliseconds (the peer goes on
   * answering its leader meanwhile; the driver holds back applying until the promise settles). A newer
   * restore abandons an older one. Bytes that are not an image leave the states as they were.
   */
  #restoreState(data: Uint8Array): Promise<void> {
    const token = ++this.#restoreToken;
    return restoreInSlices(
      this.config.scheduler,
      this.stateMachine,
      data,
      SNAPSHOT_SLICE_MS,
      () => token === this.#restoreToken && !this.isClosed,
    ).catch((error) => {
      this.reportError(new HamokError("cannot restore a snapshot", "HAMOK_CODEC", { cause: error }));
    });
  }

  #restoreToken = 0;

  /** `times` times {@linkcode #compactionDue}'s thresholds: compacted even while a snapshot is sent. */
  #compactionOverdue(index: number, times: number): boolean {
    return index - this.#lastCompacted >= times * this.config.snapshotThreshold ||
      this.#appliedBytes - this.#compactedBytes >= times * this.config.snapshotThresholdBytes;
  }

  #compactionDue(index: number): boolean {
    return index - this.#lastCompacted >= this.config.snapshotThreshold ||
      (index > this.#lastCompacted &&
        this.#appliedBytes - this.#compactedBytes >= this.config.snapshotThresholdBytes);
  }

  /**
   * Compacts the log without a pause: the image is fixed at the applied index now and written out in
   * slices of a few milliseconds (src/cluster/snapshot_job.ts) while the peer goes on; the core then
   * gets the bytes of the state at that index. One snapshot at a time.
   */
  #scheduleCompaction(wanted = false): void {
    if (this.#compactScheduled) return;
    this.#compactScheduled = true;
    this.config.scheduler.defer(() => {
      const driver = this.driver;
      const applied = driver?.appliedIndex ?? 0;
      if (
        driver === undefined ||
        (wanted
          ? applied < driver.node.snapshotIndex ||
            (applied === driver.node.snapshotIndex && !driver.node.snapshotImageless)
          : !this.#compactionDue(applied))
      ) {
        this.#compactScheduled = false;
        return;
      }
      const node = driver.node;
      const onDemand = this.storage.snapshotsOnDemand === true;
      if (
        !wanted && !onDemand && node.snapshotTransfers > 0 &&
        (node.progressingSnapshotTransfers > 0
          ? !this.#compactionOverdue(applied, 16)
          : !this.#compactionOverdue(applied, 4))
      ) {
        // A follower is being sent the latest snapshot (or installs it): a compaction now would make
        // it need a newer one, and a file storage would delete the file under the transfer (etcd
        // holds compaction back while a snapshot is in flight too). A moving transfer holds it back
        // up to sixteen thresholds, a stalled one (a follower refusing the snapshot) up to four.
        this.#compactScheduled = false;
        this.#recheckCompactionAfter(applied);
        return;
      }
      const index = applied;
      const bytes = this.#appliedBytes;
      if (!wanted && onDemand) {
        // Nothing keeps an image: the log is compacted at once, and an image made when a follower
        // needs one. Free as it is, it stops at what the followers have: a follower that lags by up
        // to four thresholds catches up from the log, and one being sent a snapshot (or waiting for
        // its image) finds the entries after it when it has installed it.
        this.#compactScheduled = false;
        const upTo = node.followersMatchFloor(4 * this.config.snapshotThreshold);
        if (upTo <= node.snapshotIndex) {
          this.#recheckCompactionAfter(applied);
          return;
        }
        this.counters.snapshotsTaken++;
        driver.run((n) => n.compactWithoutImage(upTo));
        if (upTo > this.#lastCompacted) {
          this.#lastCompacted = upTo;
          this.#compactedBytes = bytes;
        }
        if (upTo < applied) this.#recheckCompactionAfter(applied); // held short by a follower
        return;
      }
      let parts: StateMachineImageParts;
      try {
        parts = this.stateMachine.snapshotParts();
      } catch (error) {
        // a state whose image cannot be made (it must not be: checked as it is written): reported,
        // and the next compaction check tries again, never an uncaught error in a microtask
        this.#compactScheduled = false;
        this.#recheckCompactionAfter(applied);
        this.reportError(new HamokError("cannot take a snapshot", "HAMOK_ERROR", { cause: error }));
        return;
      }
      const job = new SnapshotJob(parts);
      runSnapshotJob(this.config.scheduler, job, SNAPSHOT_SLICE_MS, {
        alive: () => {
          if (this.driver === driver && !this.isClosed) return true;
          this.#compactScheduled = false;
          return false;
        },
        done: (data, digest) => {
          this.#compactScheduled = false;
          if (wanted && index === driver.node.snapshotIndex) {
            // nothing applied since the snapshot was taken without an image: its image
            if (driver.run((node) => node.provideImage(index, data, digest))) {
              this.counters.snapshotsForFollowers++;
            }
            return;
          }
          if (index > driver.node.snapshotIndex) {
            this.counters.snapshotsTaken++;
            if (wanted) this.counters.snapshotsForFollowers++;
          }
          driver.run((node) => node.compact(index, data, digest));
          if (index > this.#lastCompacted) {
            this.#lastCompacted = index;
            this.#compactedBytes = bytes;
          }
          // entries applied while the image was written may be due already (nothing else looks again)
          if (this.driver === driver && this.#compactionDue(driver.appliedIndex)) this.#scheduleCompaction();
        },
        failed: (error) => {
          this.#compactScheduled = false;
          this.reportError(new HamokError("cannot write a snapshot", "HAMOK_ERROR", { cause: error }));
        },
      });
    });
  }

  // ------------------------------------------------------------------ liveness

  /** When the liveness timer last ran (monotonic ms): a long gap means this process was stalled. */
  #lastLivenessTick = 0;

  #livenessTick(): void {
    const now = this.config.scheduler.monotonicNow();
    const stalled = now - this.#lastLivenessTick > this.config.peerTimeoutMs / 2;
    this.#lastLivenessTick = now;
    if (stalled && this.peerState === "leader") {
      // this process did not run for half a peer timeout or more (paused, stopped, starved): what it
      // last heard from the others is that old through no fault of theirs, so each gets a whole
      // timeout again before it counts as silent (else a leader resumed after a long pause removed
      // every member it had not heard meanwhile: in a cluster of two, the other one for good)
      for (const memberId of this.members.keys()) this.membershipManager.heard(memberId, now);
    }
    // proposals a lost message may have dropped: resubmit (idempotent by request id)
    this.proposals.retryLost(now);
    // members silent for too long: remove (leader only)
    this.membershipManager.removeSilent(now);
    // a lone member announces itself, so that another cluster with its name can be heard (autoMerge)
    if (this.isJoined) this.discovery.tick(now);
    // a member that has not heard its leader for a while (paused, cut off, or removed meanwhile)
    // announces itself: members tell it if it was removed, even a learner that never campaigns
    const electionMs = this.config.electionTicks * this.config.tickMs;
    if (
      (this.isJoined || this.joinPromise !== undefined) && this.peerState !== "leader" &&
      now - this.lastLeaderContact > 4 * electionMs &&
      now - this.#lastProbe > electionMs
    ) {
      this.#lastProbe = now;
      this.discovery.sendHello(undefined);
    }
  }
}

function roleToState(role: RaftRole): HamokState {
  switch (role) {
    case "leader":
      return "leader";
    case "candidate":
    case "pre-candidate":
      return "candidate";
    default:
      return "follower";
  }
}
