/**
 * Hamok: one peer of a cluster. It discovers or bootstraps the cluster, becomes a member through
 * the replicated log, runs the Raft core on a clock and a transport, applies committed commands to
 * the collections' replicated states, and hosts the collections.
 *
 * @module
 */

import { EventEmitter } from "eventemitter3";
import { trace, type Tracer } from "@opentelemetry/api";
import { decodeCbor, encodeCbor } from "./codec/cbor.ts";
import { runSnapshotJob, SnapshotJob } from "./cluster/snapshot_job.ts";
import { DEFAULT_MAX_ENVELOPE_BYTES, type HelloBody, type WireEnvelope } from "./codec/envelope.ts";
import { PeerWire } from "./cluster/peer_wire.ts";
import { newMemberId, peerIdOfMember } from "./cluster/member_id.ts";
import { randomUuid, type Scheduler, type TimerHandle } from "./cluster/scheduler.ts";
import { RaftDriver, type RaftDriverHooks } from "./cluster/raft_driver.ts";
import { AckBatcher } from "./cluster/ack_batcher.ts";
import { asAbortError, asError, delay, throwIfAborted, withTimeout } from "./cluster/async.ts";
import { Discovery } from "./cluster/discovery.ts";
import { JOIN_OP, LEAVE_OP, MembershipManager } from "./cluster/membership_manager.ts";
import { Proposals } from "./cluster/proposals.ts";
import { RpcRouter } from "./cluster/rpc.ts";
import {
  type Command,
  type ReplicatedState,
  StateMachine,
  type StateMachineImage,
} from "./cluster/state_machine.ts";
import { ClusterSubjects } from "./cluster/subjects.ts";
import { Waiters } from "./cluster/waiters.ts";
import { PeerCounters } from "./cluster/peer_counters.ts";
import { CLIENT_LIMITS, CLIENT_OPS, CLIENT_STATUS_OP } from "./cluster/client_ops.ts";
import { ClientService } from "./cluster/client_service.ts";
import type { HamokMemberStatus, HamokStatus } from "./cluster/status.ts";
import { HamokMetrics } from "./telemetry/metrics.ts";
import type { AckHandler, CollectionHost, ProposeOptions } from "./collections/collection_host.ts";
import {
  EMITTER_KIND,
  HamokEmitter,
  type HamokEmitterConfig,
  type HamokEmitterEventMap,
} from "./collections/emitter.ts";
import { type HamokEmitterSnapshot, HamokSubscriptionTable } from "./collections/subscription_table.ts";
import { HamokQueue, type HamokQueueConfig } from "./collections/queue.ts";
import { type HamokQueueSnapshot, HamokQueueState, QUEUE_KIND } from "./collections/queue_state.ts";
import { HamokRemoteMap, type HamokRemoteMapConfig } from "./collections/remote_map.ts";
import { HamokRemoteMapState, REMOTE_MAP_KIND } from "./collections/remote_map_state.ts";
import {
  HamokMap,
  type HamokMapConfig,
  type HamokMapSnapshot,
  MAP_KIND,
  mapSnapshotOf,
  mapSnapshotParts,
} from "./collections/map.ts";
import { HamokMapState } from "./collections/map_state.ts";
import { importEntries } from "./collections/map_base.ts";
import {
  HamokRecord,
  type HamokRecordConfig,
  type HamokRecordSnapshot,
  RECORD_KIND,
  recordSnapshotOf,
  recordSnapshotParts,
} from "./collections/record.ts";
import {
  type HamokConfig,
  type HamokLogger,
  invalidTimeout,
  type ResolvedHamokConfig,
  resolveHamokConfig,
} from "./config.ts";
import {
  HamokAbortedError,
  HamokClosedError,
  HamokConfigError,
  HamokError,
  HamokListenerError,
  HamokNoLeaderError,
  HamokNotJoinedError,
  HamokPayloadTooLargeError,
  HamokRemovedError,
  HamokStorageError,
  HamokTimeoutError,
} from "./errors.ts";
import { RaftNode } from "./raft/raft_node.ts";
import type {
  Entry,
  Membership,
  MembershipChange,
  RaftMessage,
  RaftRole,
  Snapshot,
  SoftState,
} from "./raft/types.ts";
import { MemoryRaftStorage } from "./storage/memory_storage.ts";
import { FileRaftStorage } from "./storage/file_raft_storage.ts";
import type { RaftPersistentState, RaftStorage } from "./storage/raft_storage.ts";
import { MemoryTransport } from "./transport/memory_transport.ts";
import type {
  Transport,
  TransportHeaders,
  TransportMessage,
  TransportSubscription,
} from "./transport/transport.ts";

/** The state of a peer: `empty` before it joined (or after it left), else its Raft role. */
export type HamokState = "empty" | "follower" | "candidate" | "leader";

/** Events of a {@linkcode Hamok} peer. */
export interface HamokEvents {
  /** The leader changed (`undefined`: no leader known). */
  "leader-changed": (leaderId: string | undefined, previousLeaderId: string | undefined) => void;
  /** The state changed. */
  "state-changed": (state: HamokState, previous: HamokState) => void;
  /** A peer became a member of the cluster. */
  "remote-peer-joined": (peerId: string) => void;
  /** A peer was removed from the cluster (it left, or was silent for too long). Never fired by elections. */
  "remote-peer-left": (peerId: string) => void;
  /** Log entries up to `commitIndex` were applied on this peer. */
  commit: (commitIndex: number) => void;
  /** `join()` completed. */
  joined: () => void;
  /** `leave()` completed, or this peer was removed from the cluster. */
  left: () => void;
  /** A non-fatal error (a listener threw, a message could not be decoded, storage failed, ...). */
  error: (error: Error) => void;
  /** The peer closed. */
  close: () => void;
}

/**
 * Options of `join()`.
 *
 * @example
 * ```ts
 * import type { Hamok } from "@hamok/core";
 * declare const hamok: Hamok;
 * await hamok.join({ timeoutMs: 10_000 });
 * ```
 */
export interface HamokJoinOptions {
  /** Give up after this many ms with a `HamokTimeoutError`. Default: 3 x `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Abort the join. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Hamok.exportParts}. */
export interface HamokExportOptions {
  /** Most map entries or record fields in one part. Default 10000. */
  maxEntriesPerPart?: number;
}

/** One collection exported by {@linkcode Hamok.export}. */
export interface HamokSnapshot {
  /** Format version. */
  readonly version: 1;
  /** Peer that made the export. */
  readonly peerId: string;
  /** Log index the export reflects. */
  readonly appliedIndex: number;
  /** The emitters' subscription tables. */
  readonly emitters: readonly HamokEmitterSnapshot[];
  /** The queues (remote maps are not included: their data lives in the application's store). */
  readonly queues?: readonly HamokQueueSnapshot[];
  /** The maps. */
  readonly maps?: readonly HamokMapSnapshot[];
  /** The records. */
  readonly records?: readonly HamokRecordSnapshot[];
}

interface HostedCollection {
  readonly kind: string;
  readonly instance: unknown;
  closeByHost(): void;
}

/**
 * One peer of a Hamok cluster.
 *
 * @example
 * ```ts
 * import { Hamok } from "@hamok/core";
 * const a = new Hamok({ peerId: "a" });
 * const b = new Hamok({ peerId: "b" });
 * await Promise.all([a.join(), b.join()]);
 * console.log(a.leaderId === b.leaderId); // true: one cluster
 * await b.leave();
 * a.close();
 * ```
 */
export class Hamok extends EventEmitter<HamokEvents> implements CollectionHost {
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
  /** The OpenTelemetry tracer of this peer. */
  readonly tracer: Tracer;
  /** This peer's counters (dropped messages by reason, codec failures, elections, leader changes). */
  readonly counters: PeerCounters = new PeerCounters();
  /** This peer's OpenTelemetry instruments (`metrics.enabled` is false without an SDK). */
  readonly metrics: HamokMetrics;
  /** Leader with metrics: when the oldest unanswered append went to each member. */
  readonly #appendSentAt = new Map<string, number>();
  readonly #ownsTransport: boolean;
  readonly #ownsStorage: boolean;
  #storage: RaftStorage;
  /** Set once the storage failed: writes are refused from then on. */
  #storageFailure: Error | undefined;
  #memberId: string;
  readonly #stateMachine = new StateMachine();
  readonly #rpc: RpcRouter;
  #node: RaftNode | undefined;
  #driver: RaftDriver | undefined;
  #transportSubs: TransportSubscription[] = [];
  #joinPromise: Promise<void> | undefined;
  #nextJoin: Promise<void> | undefined;
  #joinAbort: AbortController | undefined;
  #joined = false;
  #leaving = false;
  #closed = false;
  #state: HamokState = "empty";
  #leaderMemberId: string | undefined;
  #term = 0;
  /** Committed membership: member id -> role. */
  readonly #members = new Map<string, "voter" | "learner">();
  // the jobs this peer delegates (src/cluster/)
  readonly #discovery: Discovery;
  readonly #membershipManager: MembershipManager;
  readonly #proposals: Proposals;
  readonly #acks: AckBatcher;
  readonly #waiters: Waiters;
  readonly #resolveBeforeApply: boolean;
  readonly #client: ClientService;
  #proposalCounter = 0;
  /**
   * Request ids are `<memberId>:<session><counter>`. A member restarted on its durable storage
   * keeps its id and its applied request ids, so each such start gets a new session tag: a
   * restarted counter must never repeat an id the state machine would skip as a duplicate.
   */
  #requestSession = "";
  readonly #collections = new Map<string, HostedCollection>();
  readonly #ackHandlers = new Map<string, AckHandler>();
  readonly #memberRemovedListeners = new Set<(peerId: string) => void>();
  #livenessTimer: TimerHandle | undefined;
  #lastCompacted = 0;
  #compactScheduled = false;
  /** Bytes of entry data applied since the peer started, and that many when the last snapshot was taken. */
  #appliedBytes = 0;
  #compactedBytes = 0;
  /** Encodes, binds, seals, opens and checks every message (the trust boundary for bytes). */
  readonly #wire: PeerWire;
  /** Member ids whose removal this peer has applied (committed tombstones). */
  readonly #removedMembers = new Set<string>();
  /** Removed member id -> when this peer last told it so (bounded, rate-limits the notices). */
  readonly #removalNotices = new Map<string, number>();
  /** When this peer last heard from its leader, and last announced itself for want of it. */
  #lastLeaderContact = 0;
  /** The next join is an automatic rejoin after a removal (it must not bootstrap). */
  #rejoining = false;
  /** While joining afresh: a member said this peer's member id was removed. */
  #identityLost = false;
  /** When this peer last accepted a Raft message from a member of its (latest known) membership. */
  #lastMemberContact = 0;
  #lastProbe = 0;

  /** Creates a peer; it does nothing on the network until {@linkcode join}. */
  constructor(config: HamokConfig = {}) {
    super();
    this.config = resolveHamokConfig(config);
    this.#waiters = new Waiters(() => this.#closed, this.config.scheduler);
    this.#resolveBeforeApply = this.config.testingBugs.includes("resolve-before-apply");
    this.localPeerId = this.config.peerId;
    this.logger = this.config.logger;
    this.subjects = new ClusterSubjects(this.config.subjectPrefix);
    this.#ownsTransport = this.config.transport === undefined;
    this.transport = this.config.transport ?? new MemoryTransport();
    this.#ownsStorage = this.config.storage === undefined;
    this.#memberId = newMemberId(this.localPeerId, this.config.scheduler);
    this.#storage = this.config.storage ?? this.#newOwnedStorage();
    if (!this.#ownsStorage) {
      const storageMember = (this.#storage as { memberId?: unknown }).memberId;
      if (typeof storageMember === "string") {
        if (peerIdOfMember(storageMember) !== this.localPeerId) {
          throw new HamokConfigError(
            `the storage belongs to member '${storageMember}', which is not of peer '${this.localPeerId}'`,
          );
        }
        this.#memberId = storageMember;
      }
    }
    const provider = this.config.tracerProvider ?? trace.getTracerProvider();
    this.tracer = provider.getTracer("@hamok/core");
    this.metrics = new HamokMetrics(this.config.meterProvider, this.localPeerId, {
      log: () => {
        const node = this.#node;
        return node === undefined
          ? { entries: 0, bytes: 0 }
          : { entries: node.lastIndex - node.snapshotIndex, bytes: node.logBytes };
      },
      followerLag: () => {
        const node = this.#node;
        const lags: [string, number][] = [];
        if (node === undefined || this.#state !== "leader") return lags;
        for (const [memberId, pr] of node.progress) {
          if (memberId !== this.#memberId) {
            lags.push([peerIdOfMember(memberId), Math.max(0, node.lastIndex - pr.match)]);
          }
        }
        return lags;
      },
    });
    if (this.metrics.enabled) this.counters.onDropped = (reason) => this.metrics.droppedOne(reason);
    this.#wire = new PeerWire({
      clusterId: this.config.clusterId,
      keys: this.config.clusterKeys,
      counters: this.counters,
      peerId: this.localPeerId,
      warn: (message, detail) => this.logger.warn(message, detail),
      scheduler: this.config.scheduler,
    });
    this.#stateMachine.registerKind(
      EMITTER_KIND,
      (id) =>
        new HamokSubscriptionTable(id, (error, event) =>
          this.reportError(
            new HamokListenerError(
              `a listener of the subscription table of emitter '${id}' threw on '${event}'`,
              {
                collectionId: id,
                event,
              },
              { cause: error },
            ),
          )),
    );
    this.registerCollectionKind(QUEUE_KIND, (id) => new HamokQueueState(id));
    this.registerCollectionKind(REMOTE_MAP_KIND, (id) => new HamokRemoteMapState(id));
    this.registerCollectionKind(MAP_KIND, (id) => new HamokMapState(id));
    this.registerCollectionKind(RECORD_KIND, (id) => new HamokMapState(id));
    this.#rpc = new RpcRouter(
      {
        sendRequest: (peerId, body) => this.#send(peerId, { type: "request", from: this.localPeerId, body }),
        sendResponse: (peerId, body) =>
          this.#send(peerId, { type: "response", from: this.localPeerId, body }),
      },
      this.localPeerId,
      this.config.scheduler,
    );
    this.#proposals = new Proposals(
      () => (this.#leaderMemberId === undefined ? undefined : this.#driver),
      this.config.electionTicks * this.config.tickMs,
      this.metrics.enabled
        ? (ms) => this.metrics.proposalDuration.record(ms / 1000, this.metrics.peerAttributes)
        : undefined,
      this.config.scheduler,
    );
    this.#acks = new AckBatcher({
      sendAck: (toPeerId, emitterId, ackRequestId, error) =>
        this.#send(toPeerId, {
          type: "ack",
          from: this.#memberId,
          body: error === undefined
            ? { emitterId, ackRequestId, peerId: this.localPeerId, ok: true }
            : { emitterId, ackRequestId, peerId: this.localPeerId, ok: false, error },
        }),
      sendAcks: (toPeerId, acks) =>
        this.#send(toPeerId, {
          type: "acks",
          from: this.#memberId,
          body: { peerId: this.localPeerId, acks },
        }),
    }, this.config.scheduler);
    this.#membershipManager = new MembershipManager({
      ...this.config,
      aliveMs: this.config.peerTimeoutMs,
      activeMs: this.config.electionTicks * this.config.tickMs,
    }, {
      isLeader: () => this.leader,
      localMemberId: () => this.#memberId,
      membership: () => this.#node?.membership,
      requireDriver: () => this.#requireDriver(),
    });
    const electionMs = this.config.electionTicks * this.config.tickMs;
    this.#discovery = new Discovery({
      ...this.config,
      // a cluster electing a new leader (up to two election timeouts) is never taken for no cluster
      memberWindowMs: Math.max(4 * this.config.discoveryMs, 6 * electionMs),
      trustWindowMs: this.config.peerTimeoutMs,
    }, {
      hello: (): HelloBody => {
        const joined = this.#members.has(this.#memberId);
        return {
          clusterId: this.config.clusterId,
          peerId: this.localPeerId,
          memberId: this.#memberId,
          leaderId: this.#leaderMemberId,
          term: this.#term,
          joined,
          clusterUid: joined ? this.#stateMachine.clusterUid : undefined,
        };
      },
      isMember: () => this.#members.has(this.#memberId),
      inCluster: () =>
        this.#node!.membership.voters.includes(this.#memberId) || this.#members.has(this.#memberId),
      publish: (hello, toPeerId) =>
        this.#publishEnvelope(
          toPeerId === undefined ? this.subjects.broadcast : this.subjects.inbox(toPeerId),
          { type: "hello", from: this.localPeerId, body: hello },
        ),
      reportError: (error) => this.reportError(error),
      requestJoin: (leaderMemberId, timeoutMs) =>
        this.#rpc.request(peerIdOfMember(leaderMemberId), JOIN_OP, encodeCbor(this.#memberId), timeoutMs),
      bootstrap: () => this.#bootstrap(),
    });
    this.#rpc.handle(
      JOIN_OP,
      (payload, fromPeerId) => this.#membershipManager.onJoinRequest(payload, fromPeerId),
    );
    this.#rpc.handle(
      LEAVE_OP,
      (payload, fromPeerId) => this.#membershipManager.onLeaveRequest(payload, fromPeerId),
    );
    this.#rpc.handle(REMOVED_OP, (payload, fromPeerId) => this.#onRemovedNotice(payload, fromPeerId));
    this.#client = new ClientService(
      {
        status: () => this.status(),
        findMapState: (mapId) => {
          for (const [kind, id, state] of this.#stateMachine.states()) {
            if (kind === MAP_KIND && id === mapId) return state as HamokMapState;
          }
          return undefined;
        },
        proposeMap: (mapId, op, args, timeoutMs) => this.propose(MAP_KIND, mapId, op, args, { timeoutMs }),
        publish: (emitterId, event, args, timeoutMs) =>
          this.#publishForClient(emitterId, event, args, timeoutMs),
        sendEvent: (toPeerId, body) => this.#send(toPeerId, { type: "event", from: this.#memberId, body }),
      },
      this.counters,
      this.config.requestTimeoutMs,
      CLIENT_LIMITS,
      this.config.scheduler,
    );
    for (const op of CLIENT_OPS) {
      this.#rpc.handle(op, (payload, fromPeerId) => this.#client.handle(op, payload, fromPeerId));
    }
  }

  // ------------------------------------------------------------------ properties

  /** This peer's Raft member id (peer id plus incarnation). */
  get localMemberId(): string {
    return this.#memberId;
  }

  /** Ids of the other members of the cluster (committed membership). */
  get remotePeerIds(): ReadonlySet<string> {
    const peers = new Set<string>();
    for (const memberId of this.#members.keys()) {
      const peerId = peerIdOfMember(memberId);
      if (peerId !== this.localPeerId) peers.add(peerId);
    }
    return peers;
  }

  /** The peer id of the current leader, if one is known. */
  get leaderId(): string | undefined {
    return this.#leaderMemberId === undefined ? undefined : peerIdOfMember(this.#leaderMemberId);
  }

  /** True if this peer is the leader. */
  get leader(): boolean {
    return this.#state === "leader";
  }

  /** `empty` before joining, else the Raft role. */
  get state(): HamokState {
    return this.#state;
  }

  /** The current Raft term. */
  get term(): number {
    return this.#term;
  }

  /** True once `join()` completed and until `leave()`/`close()`. */
  get joined(): boolean {
    return this.#joined;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Index of the last log entry applied on this peer. */
  get appliedIndex(): number {
    return this.#driver?.appliedIndex ?? 0;
  }

  /**
   * This peer's view of itself and of the cluster: role, term, leader, log positions and size, the
   * committed members with their roles (on the leader also each member's match index, lag and time
   * since last contact), pending proposals and counters. Any member also answers it to processes
   * outside the cluster (the `client.status` request; see `hamok status`).
   *
   * @example
   * ```ts
   * import { Hamok } from "@hamok/core";
   * const hamok = new Hamok();
   * await hamok.join();
   * const { role, term, leaderId, members } = hamok.status();
   * console.log(role, term, leaderId === hamok.localPeerId, members.length); // leader 1 true 1
   * hamok.close();
   * ```
   */
  status(): HamokStatus {
    const node = this.#node;
    const now = this.config.scheduler.now();
    const isLeader = this.#state === "leader" && node !== undefined;
    const progress = isLeader ? node.progress : undefined;
    const lastIndex = node?.lastIndex ?? 0;
    const members: HamokMemberStatus[] = [];
    for (const [memberId, role] of this.#members) {
      const member: {
        -readonly [K in keyof HamokMemberStatus]: HamokMemberStatus[K];
      } = { peerId: peerIdOfMember(memberId), memberId, role, leader: memberId === this.#leaderMemberId };
      if (progress !== undefined) {
        const self = memberId === this.#memberId;
        const pr = progress.get(memberId);
        const match = self ? lastIndex : pr?.match ?? 0;
        member.matchIndex = match;
        member.lag = Math.max(0, lastIndex - match);
        const heard = this.#membershipManager.lastHeard(memberId);
        if (self) member.lastContactMs = 0;
        else if (heard !== undefined) member.lastContactMs = Math.max(0, now - heard);
        const replication = self ? "leader" : pr?.state;
        if (replication !== undefined) member.replication = replication;
      }
      members.push(member);
    }
    const snapshotIndex = node?.snapshotIndex ?? 0;
    return {
      clusterId: this.config.clusterId,
      peerId: this.localPeerId,
      memberId: this.#memberId,
      role: this.#state,
      term: this.#term,
      leaderId: this.leaderId,
      commitIndex: node?.commitIndex ?? 0,
      appliedIndex: this.appliedIndex,
      snapshotIndex,
      lastIndex,
      logLength: lastIndex - snapshotIndex,
      logBytes: node?.logBytes ?? 0,
      pendingProposals: this.#proposals.size,
      members,
      counters: this.counters.values(),
      time: now,
    };
  }

  /** Resolves once this peer has joined (the running join, or the next one). */
  get ready(): Promise<void> {
    if (this.#joined) return Promise.resolve();
    if (this.#joinPromise !== undefined) return this.#joinPromise;
    if (this.#closed) return Promise.reject(new HamokClosedError("the peer is closed"));
    // one shared promise (and one pair of listeners) for every caller until the next join
    if (this.#nextJoin === undefined) {
      const onClose = () => {
        this.off("joined", onJoined);
        this.#nextJoin = undefined;
        reject(new HamokClosedError("the peer closed before it joined"));
      };
      const onJoined = () => {
        this.off("close", onClose);
        this.#nextJoin = undefined;
        resolve();
      };
      let resolve!: () => void;
      let reject!: (error: Error) => void;
      this.#nextJoin = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#nextJoin.catch(() => {});
      this.once("joined", onJoined);
      this.once("close", onClose);
    }
    return this.#nextJoin;
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Joins the cluster: finds it over the transport (or bootstraps a new one when nobody answers
   * within `discoveryMs`), becomes a member through a membership change in the log, and resolves once
   * caught up with the cluster's commit index.
   */
  join(options: HamokJoinOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new HamokClosedError("the peer is closed"));
    if (this.#joined) return Promise.resolve();
    if (this.#joinPromise !== undefined) return this.#joinPromise;
    const timeoutMs = options.timeoutMs ?? 3 * this.config.requestTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      return Promise.reject(
        new HamokConfigError(`join timeoutMs must be a positive integer, got ${timeoutMs}`),
      );
    }
    const abort = new AbortController();
    this.#joinAbort = abort;
    const onAbort = () => abort.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) abort.abort(options.signal.reason);
    const promise = this.#runJoin(this.config.scheduler.now() + timeoutMs, abort.signal).then(
      () => {
        this.#joined = true;
        this.#joinPromise = undefined;
        this.logger.info(`hamok ${this.localPeerId}: joined, leader ${this.leaderId}`);
        this.emit("joined");
      },
      (error) => {
        this.#joinPromise = undefined;
        if (!this.#closed) this.#stopRaft();
        throw error;
      },
    ).finally(() => {
      options.signal?.removeEventListener("abort", onAbort);
      if (this.#joinAbort === abort) this.#joinAbort = undefined;
    });
    this.#joinPromise = promise;
    return promise;
  }

  /**
   * Leaves the cluster: hands leadership over if this peer leads, is removed from the membership
   * through the log, and stops. The peer can `join()` again later (under a new member id).
   */
  async leave(timeoutMs: number = this.config.requestTimeoutMs): Promise<void> {
    if (this.#closed) throw new HamokClosedError("the peer is closed");
    if (this.#joinPromise !== undefined) {
      this.#joinAbort?.abort(new HamokAbortedError("join aborted by leave()"));
      await this.#joinPromise.catch(() => {});
    }
    if (!this.#joined || this.#driver === undefined) return;
    this.#leaving = true;
    let confirmed = true;
    try {
      const deadline = this.config.scheduler.now() + timeoutMs;
      const others = [...this.#members.keys()].filter((m) => m !== this.#memberId);
      if (others.length > 0) {
        if (this.leader) await this.#handOverLeadership(deadline);
        confirmed = await this.#requestRemoval(deadline);
      }
    } finally {
      this.#leaving = false;
      this.#becomeEmpty();
      this.emit("left");
    }
    if (!confirmed) {
      // stopped all the same; the cluster removes the silent member after peerTimeoutMs
      throw new HamokTimeoutError(
        `leave: the cluster did not confirm the removal within ${timeoutMs} ms; this peer stopped, and the leader removes its member once it has been silent for peerTimeoutMs`,
        { timeoutMs },
      );
    }
  }

  /** Releases everything this peer holds (timers, subscriptions, the transport it created). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#acks.close();
    this.#joined = false;
    this.#joinAbort?.abort(new HamokClosedError("the peer closed"));
    for (const collection of [...this.#collections.values()]) collection.closeByHost();
    this.#collections.clear();
    this.#stopRaft();
    this.#rpc.close();
    for (const sub of this.#transportSubs) sub.unsubscribe();
    this.#transportSubs = [];
    this.#proposals.close();
    this.#discovery.wake();
    if (this.#ownsTransport) {
      this.transport.close().catch((error) => this.logger.warn("closing the transport failed", error));
    }
    if (this.#ownsStorage) void Promise.resolve(this.#storage.close()).catch(() => {});
    this.#setState("empty");
    this.#waiters.close();
    this.emit("close");
    this.removeAllListeners();
  }

  /** Resolves once a leader is known; rejects with `HamokTimeoutError` after `timeoutMs`. */
  waitUntilLeader(timeoutMs: number = this.config.requestTimeoutMs): Promise<void> {
    const invalid = invalidTimeout("waitUntilLeader", timeoutMs);
    if (invalid !== undefined) return Promise.reject(invalid);
    return this.#waiters.waitFor(() => this.#leaderMemberId !== undefined, timeoutMs, "a leader");
  }

  /**
   * A read barrier: resolves once this peer has applied everything the cluster had committed when
   * it was called (ReadIndex through the leader). Rejects with `HamokTimeoutError` after `timeoutMs`.
   */
  async waitUntilCommitHead(timeoutMs: number = this.config.requestTimeoutMs): Promise<void> {
    const invalid = invalidTimeout("waitUntilCommitHead", timeoutMs);
    if (invalid !== undefined) throw invalid;
    const deadline = this.config.scheduler.now() + timeoutMs;
    for (;;) {
      const driver = this.#requireDriver();
      const remaining = deadline - this.config.scheduler.now();
      if (remaining <= 0) {
        throw new HamokTimeoutError(`the commit head was not reached within ${timeoutMs} ms`, { timeoutMs });
      }
      if (this.#leaderMemberId === undefined) await this.waitUntilLeader(remaining);
      const ctx = `${this.#memberId}:read:${this.#requestSession}${++this.#proposalCounter}`;
      let index: number;
      // one round at most two election timeouts: a read request or answer lost on the way is asked
      // again rather than waited for until the deadline
      const attemptMs = Math.min(
        deadline - this.config.scheduler.now(),
        2 * this.config.electionTicks * this.config.tickMs,
      );
      try {
        index = await withTimeout(
          driver.readIndex(ctx),
          Math.max(1, attemptMs),
          () => driver.cancelRead(ctx),
          this.config.scheduler,
        );
      } catch (error) {
        if (error instanceof HamokTimeoutError) {
          if (deadline - this.config.scheduler.now() > 0) continue;
          throw new HamokTimeoutError(`the commit head was not reached within ${timeoutMs} ms`, {
            timeoutMs,
          });
        }
        // dropped (no leader / leadership lost): wait for a leader and try again
        await delay(
          Math.min(this.config.tickMs, Math.max(0, deadline - this.config.scheduler.now())),
          this.config.scheduler,
        );
        continue;
      }
      await withTimeout(
        driver.waitApplied(index),
        deadline - this.config.scheduler.now(),
        () => {},
        this.config.scheduler,
      );
      return;
    }
  }

  // ------------------------------------------------------------------ collections

  /**
   * Creates an emitter. A second live emitter with the same id on this peer is a `HamokConfigError`.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const emitter = hamok.createEmitter<{ ping: [number] }>({ emitterId: "pings" });
   * ```
   */
  createEmitter<T extends HamokEmitterEventMap = HamokEmitterEventMap, M = unknown>(
    config: HamokEmitterConfig<T>,
  ): HamokEmitter<T, M> {
    return this.hostCollection(EMITTER_KIND, config?.emitterId, () => new HamokEmitter<T, M>(this, config));
  }

  /**
   * Returns the live emitter with `config.emitterId`, or creates it.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const emitter = hamok.getOrCreateEmitter<{ ping: [number] }>({ emitterId: "pings" });
   * ```
   */
  getOrCreateEmitter<T extends HamokEmitterEventMap = HamokEmitterEventMap, M = unknown>(
    config: HamokEmitterConfig<T>,
  ): HamokEmitter<T, M> {
    return this.hostedCollection<HamokEmitter<T, M>>(EMITTER_KIND, config?.emitterId) ??
      this.createEmitter<T, M>(config);
  }

  /**
   * Creates a queue. A second live queue with the same id on this peer is a `HamokConfigError`.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const queue = hamok.createQueue<string>({ queueId: "jobs" });
   * ```
   */
  createQueue<T>(config: HamokQueueConfig<T>): HamokQueue<T> {
    return this.hostCollection(QUEUE_KIND, config?.queueId, () => new HamokQueue<T>(this, config));
  }

  /**
   * Returns the live queue with `config.queueId`, or creates it.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const queue = hamok.getOrCreateQueue<string>({ queueId: "jobs" });
   * ```
   */
  getOrCreateQueue<T>(config: HamokQueueConfig<T>): HamokQueue<T> {
    return this.hostedCollection<HamokQueue<T>>(QUEUE_KIND, config?.queueId) ?? this.createQueue<T>(config);
  }

  /**
   * Creates a remote map over the application's store. A second live remote map with the same id
   * on this peer is a `HamokConfigError`.
   *
   * @example
   * ```ts
   * import { type Hamok, MemoryRemoteStore } from "@hamok/core";
   * declare const hamok: Hamok;
   * const map = hamok.createRemoteMap<string, number>({ mapId: "scores", store: new MemoryRemoteStore() });
   * ```
   */
  createRemoteMap<K, V>(config: HamokRemoteMapConfig<K, V>): HamokRemoteMap<K, V> {
    return this.hostCollection(REMOTE_MAP_KIND, config?.mapId, () =>
      new HamokRemoteMap<K, V>(this, config, {
        isLeader: () => this.leader,
        onLeaderChanged: (listener) => {
          this.on("leader-changed", listener);
          return () => this.off("leader-changed", listener);
        },
      }));
  }

  /**
   * Returns the live remote map with `config.mapId`, or creates it.
   *
   * @example
   * ```ts
   * import type { Hamok, HamokRemoteStore } from "@hamok/core";
   * declare const hamok: Hamok;
   * declare const store: HamokRemoteStore<string, number>;
   * const map = hamok.getOrCreateRemoteMap<string, number>({ mapId: "scores", store });
   * ```
   */
  getOrCreateRemoteMap<K, V>(config: HamokRemoteMapConfig<K, V>): HamokRemoteMap<K, V> {
    return this.hostedCollection<HamokRemoteMap<K, V>>(REMOTE_MAP_KIND, config?.mapId) ??
      this.createRemoteMap<K, V>(config);
  }

  /**
   * Creates a replicated map. A second live map with the same id on this peer is a
   * `HamokConfigError`.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const map = hamok.createMap<string, number>({ mapId: "stock" });
   * await map.set("apples", 10);
   * ```
   */
  createMap<K = unknown, V = unknown>(config: HamokMapConfig<K, V>): HamokMap<K, V> {
    return this.hostCollection(MAP_KIND, config?.mapId, () => new HamokMap<K, V>(this, config));
  }

  /**
   * Returns the live map with `config.mapId`, or creates it.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const map = hamok.getOrCreateMap<string, number>({ mapId: "stock" });
   * ```
   */
  getOrCreateMap<K = unknown, V = unknown>(config: HamokMapConfig<K, V>): HamokMap<K, V> {
    return this.hostedCollection<HamokMap<K, V>>(MAP_KIND, config?.mapId) ?? this.createMap<K, V>(config);
  }

  /**
   * Creates a replicated record (a typed object stored field by field). A second live record with
   * the same id on this peer is a `HamokConfigError`.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const settings = hamok.createRecord<{ mode: string; limit: number }>({
   *   recordId: "settings",
   *   initialObject: { mode: "normal", limit: 10 },
   * });
   * await settings.ready;
   * ```
   */
  createRecord<T extends Record<string, unknown> = Record<string, unknown>>(
    config: HamokRecordConfig<T>,
  ): HamokRecord<T> {
    return this.hostCollection(RECORD_KIND, config?.recordId, () => new HamokRecord<T>(this, config));
  }

  /**
   * Returns the live record with `config.recordId`, or creates it.
   *
   * @example
   * ```ts
   * import type { Hamok } from "@hamok/core";
   * declare const hamok: Hamok;
   * const settings = hamok.getOrCreateRecord<{ mode: string }>({ recordId: "settings" });
   * ```
   */
  getOrCreateRecord<T extends Record<string, unknown> = Record<string, unknown>>(
    config: HamokRecordConfig<T>,
  ): HamokRecord<T> {
    return this.hostedCollection<HamokRecord<T>>(RECORD_KIND, config?.recordId) ??
      this.createRecord<T>(config);
  }

  /**
   * @internal Registers a collection object created by `create` under (kind, id); a second live
   * collection of the same kind and id is a `HamokConfigError`. Collections of different kinds may
   * share an id.
   */
  hostCollection<C extends { closeByHost(): void }>(kind: string, id: unknown, create: () => C): C {
    if (this.#closed) throw new HamokClosedError("the peer is closed");
    const key = collectionKey(kind, id);
    if (this.#collections.has(key)) {
      throw new HamokConfigError(`a ${kind} with id '${String(id)}' already exists on this peer`);
    }
    const instance = create();
    this.#collections.set(key, { kind, instance, closeByHost: () => instance.closeByHost() });
    return instance;
  }

  /** @internal The live collection of (kind, id) on this peer, if any. */
  hostedCollection<C>(kind: string, id: unknown): C | undefined {
    return this.#collections.get(collectionKey(kind, id))?.instance as C | undefined;
  }

  /**
   * @internal Registers the replicated-state factory of a collection kind. Every kind must be
   * registered in the constructor, before any log entry is applied.
   */
  registerCollectionKind(kind: string, factory: (id: string) => ReplicatedState): void {
    this.#stateMachine.registerKind(kind, factory);
  }

  /**
   * Exports the replicated state of this peer's collections as one snapshot, made at once (on the
   * event loop: about 3.5 s for a 1,000,000-entry map). For large states use
   * {@linkcode exportParts}, which yields between parts.
   */
  export(): HamokSnapshot {
    const emitters: HamokEmitterSnapshot[] = [];
    const queues: HamokQueueSnapshot[] = [];
    const maps: HamokMapSnapshot[] = [];
    const records: HamokRecordSnapshot[] = [];
    for (const [kind, , state] of this.#stateMachine.states()) {
      if (kind === MAP_KIND) maps.push(mapSnapshotOf(state as HamokMapState));
      else if (kind === RECORD_KIND) records.push(recordSnapshotOf(state as HamokMapState));
      else if (kind === QUEUE_KIND) queues.push((state as HamokQueueState).toSnapshot());
      else if (kind === EMITTER_KIND) emitters.push((state as HamokSubscriptionTable).toSnapshot());
    }
    return {
      version: 1,
      peerId: this.localPeerId,
      appliedIndex: this.appliedIndex,
      emitters,
      queues,
      maps,
      records,
    };
  }

  /**
   * Exports the same content as {@linkcode export} as an async iterable of snapshots, each a valid
   * `HamokSnapshot` for {@linkcode import}: first the emitters and queues, then every map and record
   * in parts of at most `maxEntriesPerPart` entries (insertion order), yielding to the event loop
   * between parts, so no part holds it for long. Each part is taken when it is asked for and carries
   * the `appliedIndex` of that moment: the parts of a state that changes meanwhile are not one
   * point-in-time image (an entry written after its part was taken shows in no part or with its old
   * value; one inserted later comes in a later part). Stops with `HamokClosedError` if the peer closes.
   *
   * @example
   * ```ts
   * import { Hamok } from "@hamok/core";
   * const source = new Hamok({ clusterId: "source" });
   * const copy = new Hamok({ clusterId: "copy" });
   * await Promise.all([source.join(), copy.join()]);
   * await source.createMap<string, number>({ mapId: "m" }).set("a", 1);
   * await copy.importParts(source.exportParts({ maxEntriesPerPart: 5000 }));
   * source.close();
   * copy.close();
   * ```
   */
  async *exportParts(options?: HamokExportOptions): AsyncGenerator<HamokSnapshot, void, undefined> {
    const max = options?.maxEntriesPerPart ?? 10_000;
    if (!Number.isInteger(max) || max < 1) {
      throw new HamokConfigError(`maxEntriesPerPart must be a positive integer, got ${String(max)}`);
    }
    const part = (fields: Partial<HamokSnapshot>): HamokSnapshot => ({
      version: 1,
      peerId: this.localPeerId,
      appliedIndex: this.appliedIndex,
      emitters: [],
      ...fields,
    });
    const pause = async (): Promise<void> => {
      await new Promise<void>((resolve) => this.config.scheduler.yieldThen(resolve));
      if (this.#closed) throw new HamokClosedError("the peer closed during an export");
    };
    const emitters: HamokEmitterSnapshot[] = [];
    const queues: HamokQueueSnapshot[] = [];
    for (const [kind, , state] of this.#stateMachine.states()) {
      if (kind === QUEUE_KIND) queues.push((state as HamokQueueState).toSnapshot());
      else if (kind === EMITTER_KIND) emitters.push((state as HamokSubscriptionTable).toSnapshot());
    }
    yield part({ emitters, queues });
    for (const [kind, , state] of this.#stateMachine.states()) {
      if (kind !== MAP_KIND && kind !== RECORD_KIND) continue;
      const parts = kind === MAP_KIND
        ? mapSnapshotParts(state as HamokMapState, max)
        : recordSnapshotParts(state as HamokMapState, max);
      for (;;) {
        await pause();
        const next = parts.next();
        if (next.done === true) break;
        yield kind === MAP_KIND
          ? part({ maps: [next.value as HamokMapSnapshot] })
          : part({ records: [next.value as HamokRecordSnapshot] });
      }
    }
  }

  /**
   * Imports every part of an export ({@linkcode exportParts}, or snapshots from anywhere), one after
   * the other, each through {@linkcode import}. It holds the event loop only while one part is
   * checked and split into commands.
   *
   * @example
   * ```ts
   * import { Hamok, type HamokSnapshot } from "@hamok/core";
   * const hamok = new Hamok();
   * await hamok.join();
   * const parts: HamokSnapshot[] = [hamok.export()];
   * await hamok.importParts(parts);
   * hamok.close();
   * ```
   */
  async importParts(parts: AsyncIterable<HamokSnapshot> | Iterable<HamokSnapshot>): Promise<void> {
    for await (const snapshot of parts) await this.import(snapshot);
  }

  /**
   * Imports a snapshot made by {@linkcode export} into the cluster, through consensus (merge). A map
   * or record of more than 1000 entries (or 256 KiB) goes in several commands, each awaited in turn,
   * so the event loop is free between them.
   */
  async import(snapshot: HamokSnapshot): Promise<void> {
    if (snapshot === null || typeof snapshot !== "object" || snapshot.version !== 1) {
      throw new HamokConfigError("not a Hamok snapshot (version 1)");
    }
    for (const emitter of snapshot.emitters ?? []) {
      const entries = emitter.subscriptions.map((
        s,
      ) => [s.event, s.subscribers.map((x) => [x.peerId, x.metadata])]);
      await this.propose(EMITTER_KIND, emitter.emitterId, "import", { entries }, {
        timeoutMs: this.config.requestTimeoutMs,
      });
    }
    const timeoutMs = this.config.requestTimeoutMs;
    for (const map of snapshot.maps ?? []) {
      await importEntries(this, MAP_KIND, map.mapId, map.keys, map.values, timeoutMs);
    }
    for (const record of snapshot.records ?? []) {
      await importEntries(this, RECORD_KIND, record.recordId, record.keys, record.values, timeoutMs, true);
    }
    for (const queue of snapshot.queues ?? []) {
      await this.propose(QUEUE_KIND, queue.queueId, "import", queue.items, {
        timeoutMs: this.config.requestTimeoutMs,
      });
    }
  }

  // ------------------------------------------------------------------ CollectionHost

  /** @internal The peer's timers and clocks (`config.scheduler`), for its collections. */
  get scheduler(): Scheduler {
    return this.config.scheduler;
  }

  /** @internal */
  isRemoteMember(peerId: string): boolean {
    if (peerId === this.localPeerId) return false;
    for (const memberId of this.#members.keys()) if (peerIdOfMember(memberId) === peerId) return true;
    return false;
  }

  /** @internal */
  isRemoteMemberId(memberId: string): boolean {
    return memberId !== this.#memberId && this.#members.has(memberId);
  }

  /** @internal Proposes a command and resolves with its result once applied on this peer. */
  propose(kind: string, id: string, op: string, args: unknown, options: ProposeOptions): Promise<unknown> {
    if (this.#closed) return Promise.reject(new HamokClosedError("the peer is closed"));
    const timeoutMs = options.timeoutMs;
    const invalid = invalidTimeout(op, timeoutMs);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (this.#driver === undefined && this.#joinPromise === undefined) {
      return Promise.reject(new HamokNotJoinedError(`cannot ${op} on ${kind} '${id}': call join() first`));
    }
    if (this.#storageFailure !== undefined) return Promise.reject(this.#storageFailure);
    const requestId = options.requestId ??
      `${this.#memberId}:${this.#requestSession}${++this.#proposalCounter}`;
    if (this.#proposals.has(requestId)) {
      return Promise.reject(new HamokConfigError(`request '${requestId}' is already in flight`));
    }
    let data: Uint8Array;
    try {
      data = encodeCbor([kind, id, op, args, this.localPeerId]);
    } catch (error) {
      return Promise.reject(
        new HamokError(`cannot encode the ${op} command`, "HAMOK_CODEC", { cause: error }),
      );
    }
    const limit = this.maxEntryBytes;
    if (data.byteLength + requestId.length > limit) {
      return Promise.reject(
        new HamokPayloadTooLargeError(
          `the ${op} command on ${kind} '${id}' takes ${data.byteLength} bytes; the largest entry this peer can replicate is ${limit} bytes`,
          { size: data.byteLength + requestId.length, limit },
        ),
      );
    }
    if (this.#resolveBeforeApply) return this.#speculate(kind, id, op, args, requestId, data, timeoutMs);
    return this.#proposals.add(requestId, data, timeoutMs);
  }

  /** Testing bug `resolve-before-apply`: the result of a dry run on local state, at once. */
  #speculate(
    kind: string,
    id: string,
    op: string,
    args: unknown,
    requestId: string,
    data: Uint8Array,
    timeoutMs: number,
  ): Promise<unknown> {
    this.#proposals.add(requestId, data, timeoutMs).catch(() => {});
    const state = this.#stateMachine.state(kind, id);
    const image = state.snapshot();
    try {
      return Promise.resolve(
        state.apply(op, args, { index: this.appliedIndex + 1, requestId, proposerPeerId: this.localPeerId }),
      );
    } catch (error) {
      return Promise.reject(error);
    } finally {
      state.restore(image);
    }
  }

  /**
   * The largest message this peer may send, in bytes: the transport's limit (a NATS server's
   * `max_payload`) or the envelope limit, whichever is smaller, less the authentication tag.
   */
  get maxMessageBytes(): number {
    const transportLimit = this.transport.maxPayload ?? Number.POSITIVE_INFINITY;
    return Math.min(transportLimit, DEFAULT_MAX_ENVELOPE_BYTES) - this.#wire.overhead;
  }

  /**
   * The largest log entry (command and request id) this peer accepts, in bytes: one entry must fit
   * in one append message with its framing and trace headers.
   */
  get maxEntryBytes(): number {
    return this.maxMessageBytes - ENTRY_FRAMING_BYTES;
  }

  /** @internal Encodes, binds and seals an envelope for the transport (see the trust boundary). */
  encodeEnvelope(envelope: WireEnvelope): Uint8Array {
    return this.#wire.encode(envelope);
  }

  /** @internal The envelope of received bytes, or `undefined` (dropped and counted). */
  decodeEnvelope(data: Uint8Array): WireEnvelope | undefined {
    return this.#wire.decode(data);
  }

  /** @internal Counts a message a collection dropped (a stale sequence, a non-member sender). */
  dropMessage(reason: "non-member" | "forged-sender" | "stale-sequence" | "unexpected"): void {
    this.#wire.drop(reason);
  }

  /** @internal */
  whenReady(timeoutMs: number): Promise<void> {
    const deadline = this.config.scheduler.now() + timeoutMs;
    return withTimeout(this.ready, timeoutMs, () => {}, this.config.scheduler).then(() =>
      this.waitUntilCommitHead(Math.max(1, deadline - this.config.scheduler.now()))
    );
  }

  /** @internal */
  replicatedState<S extends ReplicatedState>(kind: string, id: string): S {
    return this.#stateMachine.state(kind, id) as S;
  }

  /** @internal */
  publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    this.#publishBytes(subject, data, headers);
  }

  /** @internal */
  acknowledge(
    toPeerId: string,
    emitterId: string,
    ackRequestId: string,
    error?: { readonly code: string; readonly message: string },
  ): void {
    this.#acks.acknowledge(toPeerId, emitterId, ackRequestId, error);
  }

  /** @internal */
  onAck(emitterId: string, handler: AckHandler): () => void {
    this.#ackHandlers.set(emitterId, handler);
    return () => {
      if (this.#ackHandlers.get(emitterId) === handler) this.#ackHandlers.delete(emitterId);
    };
  }

  /** @internal */
  onMemberRemoved(listener: (peerId: string) => void): () => void {
    this.#memberRemovedListeners.add(listener);
    return () => this.#memberRemovedListeners.delete(listener);
  }

  /** @internal */
  reportError(error: Error): void {
    if (this.listenerCount("error") > 0) this.emit("error", error);
    else this.logger.error(error.message, error);
  }

  /** @internal */
  detach(kind: string, id: string): void {
    this.#collections.delete(collectionKey(kind, id));
  }

  // ------------------------------------------------------------------ join internals

  async #runJoin(deadline: number, signal: AbortSignal): Promise<void> {
    this.#openTransport();
    const persisted = await this.#storage.load();
    throwIfAborted(signal);
    const hasState = persisted.snapshot !== undefined || persisted.entries.length > 0 ||
      persisted.hardState.term > 0;
    if (hasState) this.#requestSession = `${randomUuid(this.config.scheduler).slice(0, 8)}.`;
    this.#startRaft(persisted);
    if (!hasState) {
      // a peer rejoining after its removal knows a cluster exists: it never starts another one
      let allowBootstrap = !this.#rejoining;
      this.#rejoining = false;
      for (;;) {
        const removed = await this.#discovery.discover(deadline, signal, allowBootstrap).then(
          () => false,
          (error) => {
            if (error instanceof HamokRemovedError && this.#ownsStorage) return true;
            throw error;
          },
        );
        allowBootstrap = false; // found or started a cluster: from now on only join it
        this.#identityLost = removed;
        // The leader said yes, but its change may still be lost (it was appended, not yet committed,
        // when the leadership moved) or this member removed before it caught up: ask again then.
        const admitted = removed ? false : await this.#waiters.waitFor(
          () => this.#members.has(this.#memberId) || this.#identityLost,
          Math.max(1, Math.min(deadline - this.config.scheduler.now(), 2 * this.config.requestTimeoutMs)),
          "membership",
          signal,
        ).then(
          () => !this.#identityLost,
          (error) => {
            if (error instanceof HamokTimeoutError && deadline - this.config.scheduler.now() > 0) {
              return false;
            }
            throw error;
          },
        );
        if (admitted) break;
        if (this.#identityLost && this.#ownsStorage) {
          // removed before it ever joined: start over under a new member id
          this.#stopRaft();
          this.#memberId = newMemberId(this.localPeerId, this.config.scheduler);
          this.#storage = this.#newOwnedStorage();
          this.#startRaft(await this.#storage.load());
        }
      }
    }
    await this.#waiters.waitFor(
      () => this.#members.has(this.#memberId) || this.#removedMembers.has(this.#memberId),
      deadline - this.config.scheduler.now(),
      "membership",
      signal,
    );
    if (!this.#members.has(this.#memberId)) {
      // its own log says it was removed (a restart on the storage of a member that left or was
      // removed): it can never be a member again under this id
      throw new HamokRemovedError(
        `member ${this.#memberId} was removed from the cluster; its storage belongs to the removed member: join again with a new storage`,
      );
    }
    const remaining = deadline - this.config.scheduler.now();
    if (remaining <= 0) throw new HamokTimeoutError("join timed out", { timeoutMs: remaining });
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(asAbortError(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      this.waitUntilCommitHead(remaining).then(resolve, reject).finally(() =>
        signal.removeEventListener("abort", onAbort)
      );
    });
  }

  #bootstrap(): void {
    this.logger.info(`hamok ${this.localPeerId}: no cluster found, bootstrapping one`);
    this.#stateMachine.clusterUid = randomUuid(this.config.scheduler);
    const snapshot: Snapshot = {
      meta: { index: 0, term: 0, membership: { voters: [this.#memberId], learners: [], removed: [] } },
      data: encodeCbor(this.#stateMachine.snapshot()),
    };
    void Promise.resolve(this.#storage.saveSnapshot(snapshot)).catch((error) =>
      this.reportError(asError(error))
    );
    this.#stopRaft();
    this.#startRaft({ hardState: { term: 0, vote: undefined, commit: 0 }, snapshot, entries: [] });
    this.#driver!.run((node) => node.campaign());
  }

  async #handOverLeadership(deadline: number): Promise<void> {
    const node = this.#node!;
    const voters = node.membership.voters.filter((m) => m !== this.#memberId);
    if (voters.length === 0) return;
    const progress = node.progress;
    voters.sort((a, b) => (progress.get(b)?.match ?? 0) - (progress.get(a)?.match ?? 0));
    const target = voters[0];
    if (target === undefined) return;
    this.#driver!.run((n) => n.transferLeadership(target));
    await this.#waiters.waitFor(
      () => this.#leaderMemberId !== undefined && this.#leaderMemberId !== this.#memberId,
      Math.max(1, deadline - this.config.scheduler.now()),
      "the leadership hand-over",
    ).catch((error) => this.logger.warn(`hamok ${this.localPeerId}: leadership transfer failed`, error));
  }

  /** Asks to be removed until `deadline`; true once the removal is confirmed (or applied here). */
  async #requestRemoval(deadline: number): Promise<boolean> {
    while (this.config.scheduler.now() < deadline && this.#members.has(this.#memberId)) {
      const leader = this.#leaderMemberId;
      if (leader === undefined || leader === this.#memberId) {
        if (leader === this.#memberId) {
          const removed = await this.#membershipManager.remove(this.#memberId).then(() => true, (error) => {
            this.logger.debug("self removal failed", error);
            return false;
          });
          if (removed) return true;
          continue;
        }
        await this.waitUntilLeader(Math.max(1, deadline - this.config.scheduler.now())).catch(() => {});
        continue;
      }
      try {
        await this.#rpc.request(
          peerIdOfMember(leader),
          LEAVE_OP,
          encodeCbor(this.#memberId),
          Math.max(1, deadline - this.config.scheduler.now()),
        );
        // The leader answers once it applied the removal; this peer may never learn that commit
        // itself (the leader stops replicating to removed members), so the answer is the proof.
        return true;
      } catch (error) {
        this.logger.debug(`hamok ${this.localPeerId}: leave request failed`, error);
        await delay(this.config.tickMs, this.config.scheduler);
      }
    }
    return !this.#members.has(this.#memberId);
  }

  // ------------------------------------------------------------------ raft plumbing

  #openTransport(): void {
    if (this.#transportSubs.length > 0) return;
    this.#transportSubs.push(
      this.transport.subscribe(this.subjects.inbox(this.localPeerId), (message) => this.#onInbox(message)),
      this.transport.subscribe(this.subjects.broadcast, (message) => this.#onBroadcast(message)),
    );
  }

  #startRaft(persisted: RaftPersistentState): void {
    const scheduler = this.config.scheduler;
    const random = (): number => scheduler.random();
    const node = new RaftNode({
      id: this.#memberId,
      electionTicks: this.config.electionTicks,
      heartbeatTicks: this.config.heartbeatTicks,
      // every append fits in one message (an entry alone is admitted only if it fits: see propose)
      maxBytesPerAppend: Math.max(1, Math.min(1024 * 1024, this.maxMessageBytes - ENTRY_FRAMING_BYTES)),
      snapshotChunkBytes: Math.max(1, Math.min(256 * 1024, this.maxMessageBytes - ENTRY_FRAMING_BYTES)),
      maxVoters: this.config.voters,
      random,
    }, persisted);
    this.#node = node;
    this.#members.clear();
    const base = persisted.snapshot;
    if (base !== undefined) {
      this.#setMembers(base.meta.membership, false);
      if (base.data.length > 0) this.#restoreState(base.data);
    }
    this.#lastCompacted = base?.meta.index ?? 0;
    this.#compactedBytes = this.#appliedBytes;
    const hooks: RaftDriverHooks = {
      send: (message) => this.#sendRaft(message),
      apply: (entry) => this.#apply(entry),
      restore: (snapshot) => this.#onSnapshotRestored(snapshot),
      softStateChanged: (state) => this.#onSoftState(state),
      membershipChanged: (membership) => this.#onMembershipAppended(membership),
      error: (error) => this.#onDriverError(error),
    };
    if (this.metrics.enabled) {
      hooks.appliedBatch = (count) => this.metrics.applyBatchSize.record(count, this.metrics.peerAttributes);
    }
    this.#driver = new RaftDriver(node, this.#storage, hooks, this.config.tickMs, scheduler);
    this.#driver.start();
    this.#lastLeaderContact = this.config.scheduler.now();
    this.#lastMemberContact = this.#lastLeaderContact;
    const period = Math.max(this.config.tickMs, Math.floor(Math.min(this.config.peerTimeoutMs / 4, 500)));
    this.#livenessTimer = scheduler.setInterval(() => this.#livenessTick(), period);
  }

  #stopRaft(): void {
    this.#driver?.stop();
    this.#driver = undefined;
    this.#node = undefined;
    this.config.scheduler.clearInterval(this.#livenessTimer);
    this.#livenessTimer = undefined;
    if (this.#leaderMemberId !== undefined) {
      const previous = this.leaderId;
      this.#leaderMemberId = undefined;
      this.emit("leader-changed", undefined, previous);
    }
  }

  #becomeEmpty(): void {
    this.#stopRaft();
    this.#joined = false;
    this.#members.clear();
    this.#removedMembers.clear();
    this.#removalNotices.clear();
    this.#discovery.reset();
    this.#setState("empty");
    // a later join() must come back under a new member id (the old one is tombstoned)
    if (this.#ownsStorage) {
      if (this.#storage instanceof FileRaftStorage) this.#storage.discard();
      else void Promise.resolve(this.#storage.close()).catch(() => {});
      this.#memberId = newMemberId(this.localPeerId, this.config.scheduler);
      this.#storage = this.#newOwnedStorage();
    }
  }

  /** The storage this peer makes itself: a file storage in `dataDir` (whose member id it takes), else memory. */
  #newOwnedStorage(): RaftStorage {
    const dataDir = this.config.dataDir;
    if (dataDir === undefined) return new MemoryRaftStorage(this.#memberId);
    const storage = new FileRaftStorage({
      dataDir,
      peerId: this.localPeerId,
      clusterId: this.config.clusterId,
      sync: this.config.sync,
      syncIntervalMs: this.config.syncIntervalMs,
    });
    this.#memberId = storage.memberId;
    return storage;
  }

  /** A driver failure: a storage failure also stops this peer from accepting writes. */
  #onDriverError(error: unknown): void {
    const failure = asError(error);
    if (failure instanceof HamokStorageError && this.#storageFailure === undefined) {
      this.#storageFailure = failure;
      this.logger.error(`hamok ${this.localPeerId}: storage failed, no longer accepting writes`, failure);
    }
    this.reportError(failure);
  }

  #requireDriver(): RaftDriver {
    if (this.#closed) throw new HamokClosedError("the peer is closed");
    if (this.#driver === undefined) throw new HamokNoLeaderError("the peer has not joined a cluster");
    return this.#driver;
  }

  #send(peerId: string, envelope: WireEnvelope): void {
    this.#publishEnvelope(this.subjects.inbox(peerId), envelope);
  }

  /**
   * Encodes, binds and seals `envelope` and publishes it. A publish the transport refuses (too
   * large, closed) is counted and reported, never thrown: the Raft driver must keep running.
   */
  #publishEnvelope(subject: string, envelope: WireEnvelope, headers?: TransportHeaders): void {
    if (this.#closed) return;
    let data: Uint8Array;
    try {
      data = this.#wire.encode(envelope);
    } catch (error) {
      this.counters.sendFailures++;
      this.reportError(asError(error));
      return;
    }
    this.#publishBytes(subject, data, headers);
  }

  #publishBytes(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    if (this.#closed) return;
    try {
      this.transport.publish(subject, data, headers);
    } catch (error) {
      this.counters.sendFailures++;
      if (this.transport.state !== "closed") this.#wire.drop("rate-limited", error);
    }
  }

  #sendRaft(message: RaftMessage): void {
    if (message.type === "append" && this.metrics.enabled && !this.#appendSentAt.has(message.to)) {
      this.#appendSentAt.set(message.to, this.config.scheduler.monotonicNow());
    }
    this.#send(peerIdOfMember(message.to), { type: "raft", from: this.localPeerId, body: message });
  }

  #onInbox(message: TransportMessage): void {
    if (this.#closed) return;
    const envelope = this.#wire.decode(message.data);
    if (envelope === undefined) return;
    switch (envelope.type) {
      case "raft":
        this.#onRaft(envelope.from, envelope.body);
        return;
      case "ack": {
        const body = envelope.body;
        if (!this.#fromMemberPeer(envelope.from, body.peerId)) return;
        const handler = this.#ackHandlers.get(body.emitterId);
        if (handler === undefined) this.#wire.drop("unexpected");
        else handler(body);
        return;
      }
      case "acks": {
        const peerId = envelope.body.peerId;
        if (!this.#fromMemberPeer(envelope.from, peerId)) return;
        for (const [emitterId, ackRequestId] of envelope.body.acks) {
          this.#ackHandlers.get(emitterId)?.({ ackRequestId, peerId, ok: true });
        }
        return;
      }
      case "request": {
        const op = envelope.body.op;
        // newcomers ask to join, outsiders may use the client ops; everything else is for members
        if (op !== JOIN_OP && !CLIENT_OPS.has(op) && !this.isRemoteMember(envelope.from)) {
          this.#wire.drop("non-member");
          return;
        }
        this.#rpc.onRequest(envelope.from, envelope.body);
        return;
      }
      case "response":
        if (!this.#rpc.onResponse(envelope.from, envelope.body)) this.#wire.drop("unexpected");
        return;
      case "hello":
        this.#onHello(envelope.body);
        return;
      default:
        this.#wire.drop("unexpected");
        return;
    }
  }

  /**
   * The trust checks of a Raft message: addressed to this member, sent by the peer it names, at a
   * term this peer can store, from a member (or, while joining, from a member that answered this
   * peer's hellos). A removed member is told so.
   */
  #onRaft(fromPeerId: string, body: RaftMessage): void {
    const driver = this.#driver;
    if (driver === undefined || body.to !== this.#memberId) {
      this.#wire.drop("unexpected");
      return;
    }
    if (peerIdOfMember(body.from) !== fromPeerId) {
      this.#wire.drop("forged-sender");
      return;
    }
    if (body.term > MAX_RAFT_TERM) {
      this.#wire.drop("bad-term");
      return;
    }
    const membership = driver.node.membership;
    const now = this.config.scheduler.now();
    if (membership.voters.includes(body.from) || membership.learners.includes(body.from)) {
      this.#lastMemberContact = now;
    } else if (this.#removedMembers.has(body.from)) {
      this.#tellRemoved(body.from);
      this.#wire.drop("non-member");
      return;
    } else if (
      // A member this peer does not know of yet: a peer catching up (a joiner, or one restored from an
      // old snapshot) learns of newer members only from the leader it cannot yet place. It accepts
      // members that answered its hellos, and anyone once no known member has reached it for a while.
      !this.#discovery.heardOf(body.from) &&
      now - this.#lastMemberContact <= 4 * this.config.electionTicks * this.config.tickMs
    ) {
      this.#wire.drop("non-member");
      return;
    }
    if (this.#state === "leader") {
      this.#membershipManager.heard(body.from, this.config.scheduler.now());
      if (body.type === "append-response" && this.metrics.enabled) this.#appendAnswered(body.from);
    } else if (body.from === this.#leaderMemberId) this.#lastLeaderContact = this.config.scheduler.now();
    driver.step(body);
  }

  /** True if `fromMemberId` is a current remote member whose peer is `peerId`; else drops. */
  #fromMemberPeer(fromMemberId: string, peerId: string): boolean {
    if (peerIdOfMember(fromMemberId) !== peerId) {
      this.#wire.drop("forged-sender");
      return false;
    }
    if (!this.#members.has(fromMemberId)) {
      this.#wire.drop("non-member");
      return false;
    }
    return true;
  }

  #onHello(body: HelloBody): void {
    if (this.#removedMembers.has(body.memberId)) this.#tellRemoved(body.memberId);
    this.#discovery.onHello(body);
  }

  /**
   * Tells a removed member (that still talks to the cluster: it was paused or cut off) that it was
   * removed, at most once a second per member id, so it stops campaigning and joins anew.
   */
  #tellRemoved(memberId: string): void {
    if (!this.#joined) return;
    const now = this.config.scheduler.now();
    const last = this.#removalNotices.get(memberId);
    if (last !== undefined && now - last < 1000) return;
    if (this.#removalNotices.size >= 256) this.#removalNotices.clear();
    this.#removalNotices.set(memberId, now);
    this.#send(peerIdOfMember(memberId), {
      type: "request",
      from: this.localPeerId,
      body: { requestId: `${this.#memberId}:removed`, op: REMOVED_OP, payload: encodeCbor(memberId) },
    });
  }

  /** A member says this peer's member id was removed from the cluster. */
  #onRemovedNotice(payload: Uint8Array, fromPeerId: string): Promise<undefined> {
    const memberId = decodeCbor(payload);
    if (memberId !== this.#memberId || this.#leaving) return Promise.resolve(undefined);
    if (!this.isRemoteMember(fromPeerId)) return Promise.resolve(undefined);
    if (!this.#joined && this.#ownsStorage && !this.#members.has(this.#memberId)) {
      // joining afresh and removed before it caught up (silent too long): the join starts over
      this.#identityLost = true;
      this.#waiters.check();
      return Promise.resolve(undefined);
    }
    if (!this.#joined) {
      // Restarted from storage after its member was removed while it was away: that join can never
      // complete (found by the whole-peer simulator; it used to campaign forever), so it fails.
      this.#joinAbort?.abort(
        new HamokRemovedError(
          `member ${fromPeerId} says this member (${memberId}) was removed while it was away; its storage belongs to the removed member: join again with a new storage`,
        ),
      );
      return Promise.resolve(undefined);
    }
    this.#removedFromCluster(`member ${fromPeerId} says this member was removed`);
    return Promise.resolve(undefined);
  }

  #onBroadcast(message: TransportMessage): void {
    if (this.#closed) return;
    const envelope = this.#wire.decode(message.data);
    if (envelope === undefined) return;
    if (envelope.type === "hello") this.#onHello(envelope.body);
    // the one client op answered on the broadcast subject: a client that knows no member asks all
    else if (envelope.type === "request" && envelope.body.op === CLIENT_STATUS_OP && this.#joined) {
      this.#rpc.onRequest(envelope.from, envelope.body);
    }
  }

  async #publishForClient(
    emitterId: string,
    event: string,
    args: unknown[],
    timeoutMs: number,
  ): Promise<string[]> {
    const hosted = this.hostedCollection<HamokEmitter>(EMITTER_KIND, emitterId);
    if (hosted !== undefined) return await hosted.publish(event, ...args);
    // no emitter object here: a short-lived one publishes with acknowledgements, then goes
    const emitter = this.createEmitter({ emitterId, requestTimeoutInMs: timeoutMs });
    try {
      return await emitter.publish(event, ...args);
    } finally {
      emitter.close();
    }
  }

  #appendAnswered(memberId: string): void {
    const sentAt = this.#appendSentAt.get(memberId);
    if (sentAt === undefined) return;
    this.#appendSentAt.delete(memberId);
    this.metrics.appendRoundTrip.record(
      (this.config.scheduler.monotonicNow() - sentAt) / 1000,
      this.metrics.follower(peerIdOfMember(memberId)),
    );
  }

  #onSoftState(state: SoftState): void {
    this.#term = state.term;
    const previousLeader = this.#leaderMemberId;
    this.#leaderMemberId = state.leaderId;
    const next = roleToState(state.role);
    // an election this peer started (a lone voter goes from follower to leader in one step)
    if (
      next !== this.#state && (next === "candidate" || (next === "leader" && this.#state !== "candidate"))
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
    if (next === "leader" && this.#state !== "leader") {
      this.#appendSentAt.clear();
      const now = this.config.scheduler.now();
      for (const memberId of this.#members.keys()) this.#membershipManager.heard(memberId, now);
    }
    this.#setState(next);
    if (previousLeader !== state.leaderId) {
      this.emit(
        "leader-changed",
        state.leaderId === undefined ? undefined : peerIdOfMember(state.leaderId),
        previousLeader === undefined ? undefined : peerIdOfMember(previousLeader),
      );
      if (state.leaderId !== undefined) this.#proposals.resubmitAll();
    }
    this.#waiters.check();
  }

  #setState(next: HamokState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.emit("state-changed", next, previous);
  }

  #onMembershipAppended(_membership: Membership): void {
    // The committed view (#members) changes when config entries are applied; nothing to do here.
  }

  #apply(entry: Entry): void {
    if (entry.type === "normal") this.#applyCommand(entry);
    else if (entry.type === "config" && entry.change !== undefined) {
      this.#applyChange(entry.change, entry.index);
    }
    if (this.listenerCount("commit") > 0) this.emit("commit", entry.index);
    this.#waiters.check();
    this.#appliedBytes += entry.data.length;
    if (this.#compactionDue(entry.index)) this.#scheduleCompaction();
  }

  #compactionDue(index: number): boolean {
    return index - this.#lastCompacted >= this.config.snapshotThreshold ||
      (index > this.#lastCompacted &&
        this.#appliedBytes - this.#compactedBytes >= this.config.snapshotThresholdBytes);
  }

  #applyCommand(entry: Entry): void {
    let command: Command;
    try {
      const raw = decodeCbor(entry.data) as [string, string, string, unknown, string];
      command = { kind: raw[0], id: raw[1], op: raw[2], args: raw[3], peerId: raw[4] };
    } catch (error) {
      this.counters.codecFailures++;
      this.reportError(
        new HamokError(`entry ${entry.index} is not a valid command`, "HAMOK_CODEC", { cause: error }),
      );
      return;
    }
    const outcome = this.#stateMachine.apply(command, {
      index: entry.index,
      requestId: entry.requestId,
      proposerPeerId: command.peerId,
    });
    if (entry.requestId !== undefined) this.#proposals.applied(entry.requestId, outcome.result);
    if (this.#client.watching) {
      this.#client.applied(command.kind, command.id, command.op, command.args, entry.index);
    }
  }

  #applyChange(change: MembershipChange, index: number): void {
    const memberId = change.memberId;
    const peerId = peerIdOfMember(memberId);
    if (change.type === "add-learner") {
      const isNewPeer = !this.#hasPeer(peerId);
      this.#members.set(memberId, "learner");
      if (isNewPeer && peerId !== this.localPeerId) {
        this.logger.info(
          `hamok ${this.localPeerId}: ${peerId} joined the cluster (as learner, index ${index})`,
        );
        this.emit("remote-peer-joined", peerId);
      }
      if (this.#state === "leader") this.#membershipManager.heard(memberId, this.config.scheduler.now());
    } else if (change.type === "promote") {
      if (this.#members.has(memberId)) this.#members.set(memberId, "voter");
    } else if (change.type === "remove") {
      this.#removedMembers.add(memberId);
      if (!this.#members.delete(memberId)) return;
      this.#membershipManager.forget(memberId);
      if (memberId === this.#memberId) {
        this.#onSelfRemoved();
        return;
      }
      if (!this.#hasPeer(peerId)) {
        this.#stateMachine.memberRemoved(peerId, { index, requestId: undefined, proposerPeerId: peerId });
        for (const listener of this.#memberRemovedListeners) listener(peerId);
        if (peerId !== this.localPeerId) {
          this.logger.info(`hamok ${this.localPeerId}: ${peerId} left the cluster (index ${index})`);
          this.emit("remote-peer-left", peerId);
        }
      }
    }
  }

  #hasPeer(peerId: string): boolean {
    for (const memberId of this.#members.keys()) if (peerIdOfMember(memberId) === peerId) return true;
    return false;
  }

  #setMembers(membership: Membership, emitEvents: boolean): void {
    const before = new Set([...this.#members.keys()].map(peerIdOfMember));
    this.#members.clear();
    for (const removed of membership.removed) this.#removedMembers.add(removed);
    for (const voter of membership.voters) this.#members.set(voter, "voter");
    for (const learner of membership.learners) this.#members.set(learner, "learner");
    if (!emitEvents) return;
    const after = new Set([...this.#members.keys()].map(peerIdOfMember));
    for (const peerId of after) {
      if (!before.has(peerId) && peerId !== this.localPeerId) this.emit("remote-peer-joined", peerId);
    }
    for (const peerId of before) {
      if (!after.has(peerId) && peerId !== this.localPeerId) {
        for (const listener of this.#memberRemovedListeners) listener(peerId);
        this.emit("remote-peer-left", peerId);
      }
    }
  }

  #onSelfRemoved(): void {
    if (this.#leaving) return;
    this.config.scheduler.defer(() => this.#removedFromCluster("the leader removed this member"));
  }

  /**
   * This member was removed (it learnt it from the log or from a member): it stops, rejects its
   * pending writes with `HamokRemovedError`, emits `left`, and with `autoRejoin` joins again as a
   * new member.
   */
  #removedFromCluster(why: string): void {
    if (this.#closed || !this.#joined || this.#leaving) return;
    this.logger.warn(`hamok ${this.localPeerId}: removed from the cluster (${why})`);
    this.#proposals.failAll((requestId) =>
      new HamokRemovedError(
        `this peer was removed from the cluster while request ${requestId} was pending; it may or may not have been applied`,
        { requestId },
      )
    );
    const canRejoin = this.#ownsStorage;
    this.#becomeEmpty();
    this.emit("left");
    if (!this.config.autoRejoin || this.#closed) return;
    if (!canRejoin) {
      this.reportError(
        new HamokRemovedError(
          "this peer was removed from the cluster; its storage belongs to the removed member, so it cannot join again with it: give it a new storage and call join()",
        ),
      );
      return;
    }
    this.#rejoining = true;
    this.join().catch((error) => {
      if (!this.#closed) this.reportError(asError(error));
    });
  }

  #onSnapshotRestored(snapshot: Snapshot): void {
    this.#restoreState(snapshot.data);
    this.#setMembers(snapshot.meta.membership, true);
    this.#lastCompacted = snapshot.meta.index;
    this.#compactedBytes = this.#appliedBytes;
    this.#waiters.check();
  }

  #restoreState(data: Uint8Array): void {
    try {
      this.#stateMachine.restore(decodeCbor(data) as StateMachineImage);
    } catch (error) {
      this.reportError(new HamokError("cannot restore a snapshot", "HAMOK_CODEC", { cause: error }));
    }
  }

  /**
   * Compacts the log without a pause: the image is fixed at the applied index now and written out in
   * slices of a few milliseconds (src/cluster/snapshot_job.ts) while the peer goes on; the core then
   * gets the bytes of the state at that index. One snapshot at a time.
   */
  #scheduleCompaction(): void {
    if (this.#compactScheduled) return;
    this.#compactScheduled = true;
    this.config.scheduler.defer(() => {
      const driver = this.#driver;
      if (driver === undefined || !this.#compactionDue(driver.appliedIndex)) {
        this.#compactScheduled = false;
        return;
      }
      const index = driver.appliedIndex;
      const bytes = this.#appliedBytes;
      const job = new SnapshotJob(this.#stateMachine.snapshotParts());
      runSnapshotJob(this.config.scheduler, job, SNAPSHOT_SLICE_MS, {
        alive: () => {
          if (this.#driver === driver && !this.#closed) return true;
          this.#compactScheduled = false;
          return false;
        },
        done: (data) => {
          this.#compactScheduled = false;
          driver.run((node) => node.compact(index, data));
          if (index > this.#lastCompacted) {
            this.#lastCompacted = index;
            this.#compactedBytes = bytes;
          }
        },
        failed: (error) => {
          this.#compactScheduled = false;
          this.reportError(new HamokError("cannot write a snapshot", "HAMOK_ERROR", { cause: error }));
        },
      });
    });
  }

  #livenessTick(): void {
    const now = this.config.scheduler.now();
    // proposals a lost message may have dropped: resubmit (idempotent by request id)
    this.#proposals.retryLost(now);
    // members silent for too long: remove (leader only)
    this.#membershipManager.removeSilent(now);
    // a member that has not heard its leader for a while (paused, cut off, or removed meanwhile)
    // announces itself: members tell it if it was removed, even a learner that never campaigns
    const electionMs = this.config.electionTicks * this.config.tickMs;
    if (
      (this.#joined || this.#joinPromise !== undefined) && this.#state !== "leader" &&
      now - this.#lastLeaderContact > 4 * electionMs &&
      now - this.#lastProbe > electionMs
    ) {
      this.#lastProbe = now;
      this.#discovery.sendHello(undefined);
    }
  }
}

/**
 * The highest Raft term a peer adopts from a message (2^48). A term above it could not be
 * incremented and encoded for long, so a forged huge term could halt the cluster; at one election
 * a millisecond it takes nine thousand years to reach.
 */
const MAX_RAFT_TERM = 2 ** 48;

/** Longest stretch, in ms, a snapshot being written out holds the event loop. */
const SNAPSHOT_SLICE_MS = 4;

/** Bytes reserved beside one entry in an append message: envelope, Raft fields, tag slack, headers. */
const ENTRY_FRAMING_BYTES = 1024;

/** Request op of a member telling a removed member that it was removed (payload: CBOR member id). */
const REMOVED_OP = "removed";

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

function collectionKey(kind: string, id: unknown): string {
  if (typeof id !== "string" || id.length === 0) {
    throw new HamokConfigError(`${kind} id must be a non-empty string`);
  }
  return `${kind}\u0000${id}`;
}
