/**
 * The cluster peer: what turns the pure Raft core into a running member behind the `Hamok` facade.
 * On the Raft plumbing of its base classes ({@linkcode PeerCore}, `peer_core.ts`: wiring, driver,
 * role and leader, apply, compaction, liveness; {@linkcode PeerInbox}, `peer_inbox.ts`: the
 * subscriptions and the inbox dispatch with its trust checks) it builds the propose path, the read
 * barrier, the join, leave and removal flows, and the table of live collections; it is the
 * collections' private host (`CollectionHost`), so they never see `Hamok`.
 *
 * @module
 */

import type { EventEmitter } from "eventemitter3";
import { trace, type Tracer } from "@opentelemetry/api";
import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import type { HelloBody, WireEnvelope } from "../codec/envelope.ts";
import { newMemberId, peerIdOfMember } from "./member_id.ts";
import { randomUuid, type Scheduler } from "./scheduler.ts";
import { asAbortError, asError, delay, throwIfAborted, withTimeout } from "./async.ts";
import { JOIN_OP, LEAVE_OP } from "./membership_manager.ts";
import type { ReplicatedState } from "./state_machine.ts";
import type { ClientServiceHost } from "./client_service.ts";
import type { HamokMemberStatus, HamokStatus } from "./status.ts";
import { encodeCommand } from "./command_codec.ts";
import type { HamokEvents, HamokJoinOptions } from "./peer_events.ts";
import { PeerInbox, REMOVED_OP } from "./peer_inbox.ts";
import type { RaftDriver } from "./raft_driver.ts";
import {
  type AckHandler,
  type CollectionHost,
  EVENT_SEQ_PER_MS,
  type ProposeOptions,
} from "../collections/collection_host.ts";
import { invalidTimeout, type ResolvedHamokConfig } from "../config.ts";
import { isWellFormedString } from "../codec/well_formed.ts";
import {
  HamokAbortedError,
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokNotJoinedError,
  HamokPayloadTooLargeError,
  HamokRemovedError,
  HamokTimeoutError,
} from "../errors.ts";
import type { Snapshot } from "../raft/types.ts";
import { FileRaftStorage } from "../storage/file_raft_storage.ts";
import type { TransportHeaders } from "../transport/transport.ts";

/**
 * ReadIndex rounds one read barrier keeps open at once: a round unanswered after two election
 * timeouts is asked again, and the oldest open one is given up beyond this many.
 */
const MAX_OPEN_READ_ROUNDS = 8;

/** The replicated-state factory of one collection kind, as the peer registers it. */
export type PeerStateKind = readonly [
  kind: string,
  factory: (id: string, host: CollectionHost) => ReplicatedState,
];

/** What the facade gives the cluster peer besides the configuration. */
export interface ClusterPeerOptions {
  /** The emitter of the peer's events (the facade). */
  readonly events: EventEmitter<HamokEvents>;
  /** The collection kinds' state factories, registered before any entry is applied. */
  readonly stateKinds: readonly PeerStateKind[];
  /** What the client service needs of the collections. */
  readonly client: Pick<ClientServiceHost, "findMapState" | "readBarrier" | "proposeMap" | "publish">;
}

interface HostedCollection {
  readonly instance: unknown;
  closeByHost(): void;
}

/**
 * One member of a cluster, without its public face.
 *
 * @example
 * ```ts ignore
 * const peer = new ClusterPeer(resolveHamokConfig({}), { events, stateKinds, client });
 * await peer.join({});
 * ```
 */
export class ClusterPeer extends PeerInbox implements CollectionHost {
  /** The OpenTelemetry tracer of this peer. */
  readonly tracer: Tracer;
  /** The peer's timers and clocks (`config.scheduler`), for its collections. */
  readonly scheduler: Scheduler;
  #nextJoin: Promise<void> | undefined;
  #proposalCounter = 0;
  /** Called once when the peer closes (see {@linkcode onClosed}). */
  readonly #closedListeners = new Set<() => void>();
  /** Called on every join before the `joined` event (see {@linkcode onJoined}). */
  readonly #joinedListeners = new Set<() => void>();
  /** This process's incarnation of its member (see `CollectionHost.incarnation`). */
  #incarnation = "";
  /** The last event sequence handed out ({@linkcode nextEventSeq}). */
  #eventSeq = 0;
  readonly #resolveBeforeApply: boolean;
  readonly #collections = new Map<string, HostedCollection>();

  /** Creates a peer; it does nothing on the network until {@linkcode join}. */
  constructor(config: ResolvedHamokConfig, options: ClusterPeerOptions) {
    super(config, options.events, options.client);
    this.scheduler = config.scheduler;
    this.#resolveBeforeApply = config.testingBugs.includes("resolve-before-apply");
    const provider = config.tracerProvider ?? trace.getTracerProvider();
    this.tracer = provider.getTracer("@hamok/core");
    this.rpc.handle(REMOVED_OP, (payload, fromPeerId) => this.#onRemovedNotice(payload, fromPeerId));
    for (const [kind, factory] of options.stateKinds) {
      this.stateMachine.registerKind(kind, (id) => factory(id, this));
    }
  }

  // ------------------------------------------------------------------ views of the peer

  /** Ids of the other members of the cluster (committed membership). */
  get remotePeerIds(): ReadonlySet<string> {
    return this.membership.remotePeerIds();
  }

  /** The peer id of the current leader, if one is known. */
  get leaderId(): string | undefined {
    return this.leaderMemberId === undefined ? undefined : peerIdOfMember(this.leaderMemberId);
  }

  /** True if this peer is the leader. */
  get leader(): boolean {
    return this.peerState === "leader";
  }

  /** True once `join()` completed and until `leave()`/`close()`. */
  get joined(): boolean {
    return this.isJoined;
  }

  /** Whether every envelope is authenticated by a cluster key. */
  get authenticated(): boolean {
    return this.wire.authenticated;
  }

  /** This process's incarnation of its member (`""`: the member's first process; see CollectionHost). */
  get incarnation(): string {
    return this.#incarnation;
  }

  /** The identity of the cluster whose log this peer holds (made when it was bootstrapped), if known. */
  get clusterUid(): string | undefined {
    return this.stateMachine.clusterUid;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** This peer's status (see `Hamok.status`). */
  status(): HamokStatus {
    const node = this.node;
    const now = this.config.scheduler.monotonicNow();
    const isLeader = this.peerState === "leader" && node !== undefined;
    const progress = isLeader ? node.progress : undefined;
    const lastIndex = node?.lastIndex ?? 0;
    const members: HamokMemberStatus[] = [];
    for (const [memberId, role] of this.members) {
      const member: {
        -readonly [K in keyof HamokMemberStatus]: HamokMemberStatus[K];
      } = { peerId: peerIdOfMember(memberId), memberId, role, leader: memberId === this.leaderMemberId };
      if (progress !== undefined) {
        const self = memberId === this.memberId;
        const pr = progress.get(memberId);
        const match = self ? lastIndex : pr?.match ?? 0;
        member.matchIndex = match;
        member.lag = Math.max(0, lastIndex - match);
        const heard = this.membershipManager.lastHeard(memberId);
        if (self) member.lastContactMs = 0;
        else if (heard !== undefined) member.lastContactMs = Math.max(0, Math.round(now - heard));
        const replication = self ? "leader" : pr?.state;
        if (replication !== undefined) member.replication = replication;
      }
      members.push(member);
    }
    const snapshotIndex = node?.snapshotIndex ?? 0;
    const clusterUid = this.isJoined ? this.stateMachine.clusterUid : undefined;
    return {
      clusterId: this.config.clusterId,
      peerId: this.localPeerId,
      memberId: this.memberId,
      ...(clusterUid === undefined ? {} : { clusterUid }),
      role: this.peerState,
      term: this.term,
      leaderId: this.leaderId,
      commitIndex: node?.commitIndex ?? 0,
      appliedIndex: this.appliedIndex,
      snapshotIndex,
      lastIndex,
      logLength: lastIndex - snapshotIndex,
      logBytes: node?.logBytes ?? 0,
      pendingProposals: this.proposals.size,
      members,
      counters: this.counters.values(node?.snapshotReceiveStats),
      time: this.config.scheduler.now(),
    };
  }

  /** Resolves once this peer has joined (the running join, or the next one). */
  get ready(): Promise<void> {
    if (this.isJoined) return Promise.resolve();
    if (this.joinPromise !== undefined) return this.joinPromise;
    if (this.isClosed) return Promise.reject(new HamokClosedError("the peer is closed"));
    // one shared promise (and one pair of listeners) for every caller until the next join
    if (this.#nextJoin === undefined) {
      const events = this.events;
      const onClose = () => {
        events.off("joined", onJoined);
        this.#nextJoin = undefined;
        reject(new HamokClosedError("the peer closed before it joined"));
      };
      const onJoined = () => {
        events.off("close", onClose);
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
      events.once("joined", onJoined);
      events.once("close", onClose);
    }
    return this.#nextJoin;
  }

  // ------------------------------------------------------------------ lifecycle

  /** Joins the cluster (see `Hamok.join`). */
  join(options: HamokJoinOptions = {}): Promise<void> {
    if (this.isClosed) return Promise.reject(new HamokClosedError("the peer is closed"));
    if (this.isJoined) return Promise.resolve();
    if (this.joinPromise !== undefined) return this.joinPromise;
    if (options === null || typeof options !== "object") {
      return Promise.reject(new HamokConfigError("join options must be an object"));
    }
    const timeoutMs = options.timeoutMs ?? 3 * this.config.requestTimeoutInMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      return Promise.reject(
        new HamokConfigError(`join timeoutMs must be a positive integer, got ${timeoutMs}`),
      );
    }
    const abort = new AbortController();
    this.joinAbort = abort;
    const onAbort = () => abort.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) abort.abort(options.signal.reason);
    const promise = this.#runJoin(this.config.scheduler.monotonicNow() + timeoutMs, abort.signal).then(
      () => {
        this.isJoined = true;
        this.joinPromise = undefined;
        this.logger.info(`hamok ${this.localPeerId}: joined, leader ${this.leaderId}`);
        for (const listener of [...this.#joinedListeners]) {
          try {
            listener();
          } catch (error) {
            this.reportError(asError(error));
          }
        }
        this.events.emit("joined");
      },
      (error) => {
        this.joinPromise = undefined;
        if (!this.isClosed) this.stopRaft();
        throw error;
      },
    ).finally(() => {
      options.signal?.removeEventListener("abort", onAbort);
      if (this.joinAbort === abort) this.joinAbort = undefined;
    });
    this.joinPromise = promise;
    return promise;
  }

  /** Leaves the cluster (see `Hamok.leave`). */
  async leave(timeoutMs: number = this.config.requestTimeoutInMs): Promise<void> {
    if (this.isClosed) throw new HamokClosedError("the peer is closed");
    // before anything stops: a NaN or negative deadline used to stop the peer without asking
    const invalid = invalidTimeout("leave", timeoutMs);
    if (invalid !== undefined) throw invalid;
    if (this.joinPromise !== undefined) {
      this.joinAbort?.abort(new HamokAbortedError("join aborted by leave()"));
      await this.joinPromise.catch(() => {});
    }
    if (!this.isJoined || this.driver === undefined) return;
    this.leaving = true;
    let confirmed = true;
    try {
      const deadline = this.config.scheduler.monotonicNow() + timeoutMs;
      const others = [...this.members.keys()].filter((m) => m !== this.memberId);
      if (others.length > 0) {
        if (this.leader) await this.#handOverLeadership(deadline);
        confirmed = await this.#requestRemoval(deadline);
      }
    } finally {
      this.leaving = false;
      this.becomeEmpty();
      this.events.emit("left");
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
    if (this.isClosed) return;
    this.isClosed = true;
    for (const listener of [...this.#closedListeners]) {
      try {
        listener();
      } catch (error) {
        this.logger.debug("a close listener threw", error);
      }
    }
    this.#closedListeners.clear();
    this.acks.close();
    this.isJoined = false;
    this.joinAbort?.abort(new HamokClosedError("the peer closed"));
    for (const collection of [...this.#collections.values()]) collection.closeByHost();
    this.#collections.clear();
    this.stopRaft();
    this.rpc.close();
    this.closeTransport();
    this.proposals.close();
    this.discovery.wake();
    if (this.ownsTransport) {
      this.transport.close().catch((error) => this.logger.warn("closing the transport failed", error));
    }
    if (this.ownsStorage) void Promise.resolve(this.storage.close()).catch(() => {});
    this.setState("empty");
    this.waiters.close();
    this.events.emit("close");
    this.events.removeAllListeners();
  }

  /** Resolves once a leader is known; rejects with `HamokTimeoutError` after `timeoutMs`. */
  waitUntilLeader(timeoutMs: number = this.config.requestTimeoutInMs): Promise<void> {
    const invalid = invalidTimeout("waitUntilLeader", timeoutMs);
    if (invalid !== undefined) return Promise.reject(invalid);
    return this.waiters.waitFor(() => this.leaderMemberId !== undefined, timeoutMs, "a leader");
  }

  /**
   * A read barrier through the leader (see `Hamok.waitUntilCommitHead`). One ReadIndex round is
   * given two election timeouts; a round not answered by then is asked again, but stays open: on a
   * link slower than that (the answer is late, not lost) the first answer of any round ends the
   * wait. Every round was asked after the call, so any of their read indexes is a valid barrier.
   */
  async waitUntilCommitHead(timeoutMs: number = this.config.requestTimeoutInMs): Promise<void> {
    const invalid = invalidTimeout("waitUntilCommitHead", timeoutMs);
    if (invalid !== undefined) throw invalid;
    const scheduler = this.config.scheduler;
    const deadline = scheduler.monotonicNow() + timeoutMs;
    const timedOut = (): HamokTimeoutError =>
      new HamokTimeoutError(`the commit head was not reached within ${timeoutMs} ms`, { timeoutMs });
    const open: [RaftDriver, string][] = [];
    // the first answer of any round (a holder: the rounds' callbacks set it)
    const got: { answer?: { readonly driver: RaftDriver; readonly index: number } } = {};
    let wake: ((outcome: "answered" | "dropped" | "late") => void) | undefined;
    try {
      for (;;) {
        this.requireDriver(); // not joined (or closed): a typed error at once, not a wait
        const remaining = deadline - scheduler.monotonicNow();
        if (remaining <= 0) throw timedOut();
        if (this.leaderMemberId === undefined) await this.waitUntilLeader(Math.ceil(remaining));
        if (got.answer === undefined) {
          const driver = this.requireDriver();
          const ctx = `${this.memberId}:read:${this.requestSession}${++this.#proposalCounter}`;
          if (open.length >= MAX_OPEN_READ_ROUNDS) {
            const [oldDriver, oldCtx] = open.shift()!;
            oldDriver.cancelRead(oldCtx);
          }
          open.push([driver, ctx]);
          const attemptMs = Math.max(
            1,
            Math.min(deadline - scheduler.monotonicNow(), 2 * this.config.electionTicks * this.config.tickMs),
          );
          const outcome = await new Promise<"answered" | "dropped" | "late">((resolve) => {
            const timer = scheduler.setTimeout(() => resolve("late"), attemptMs);
            wake = (outcome) => {
              scheduler.clearTimeout(timer);
              resolve(outcome);
            };
            driver.readIndex(ctx).then(
              (index) => {
                got.answer ??= { driver, index };
                wake?.("answered");
              },
              // only the newest round's drop ends the wait: an older round's is superseded anyway
              () => open.at(-1)?.[1] === ctx && wake?.("dropped"),
            );
          });
          wake = undefined;
          if (outcome === "late") continue;
          if (outcome === "dropped") {
            // no leader / leadership lost: wait for a leader and ask again
            await delay(
              Math.min(this.config.tickMs, Math.max(0, deadline - scheduler.monotonicNow())),
              scheduler,
            );
            continue;
          }
        }
        const answer = got.answer;
        if (answer === undefined) continue;
        const { driver, index } = answer;
        if (driver !== this.requireDriver()) {
          // answered by the node this peer had before it rejoined: that log is not this state's
          delete got.answer;
          continue;
        }
        await withTimeout(
          driver.waitApplied(index),
          deadline - scheduler.monotonicNow(),
          () => {},
          scheduler,
        ).catch((error) => {
          throw error instanceof HamokTimeoutError ? timedOut() : error;
        });
        return;
      }
    } finally {
      wake = undefined;
      for (const [driver, ctx] of open) driver.cancelRead(ctx);
    }
  }

  // ------------------------------------------------------------------ the live collections

  /**
   * Registers a collection object created by `create` under (kind, id); a second live collection of
   * the same kind and id is a `HamokConfigError`. Collections of different kinds may share an id.
   */
  hostCollection<C extends { closeByHost(): void }>(kind: string, id: unknown, create: () => C): C {
    if (this.isClosed) throw new HamokClosedError("the peer is closed");
    const key = collectionKey(kind, id);
    if (this.#collections.has(key)) {
      throw new HamokConfigError(`a ${kind} with id '${String(id)}' already exists on this peer`);
    }
    const instance = create();
    this.#collections.set(key, { instance, closeByHost: () => instance.closeByHost() });
    return instance;
  }

  /** The live collection of (kind, id) on this peer, if any. */
  hostedCollection<C>(kind: string, id: unknown): C | undefined {
    return this.#collections.get(collectionKey(kind, id))?.instance as C | undefined;
  }

  /** Every replicated state on this peer, as `[kind, id, state]` (for exports). */
  replicatedStates(): IterableIterator<[kind: string, id: string, state: ReplicatedState]> {
    return this.stateMachine.states();
  }

  /** The replicated state of (kind, id), if the log ever mentioned it (never created here). */
  existingState(kind: string, id: string): ReplicatedState | undefined {
    return this.stateMachine.existing(kind, id);
  }

  // ------------------------------------------------------------------ CollectionHost

  /** This peer's Raft member id (peer id plus incarnation). */
  get localMemberId(): string {
    return this.memberId;
  }

  /** Whether `memberId` is a current member of the cluster other than this peer. */
  isRemoteMemberId(memberId: string): boolean {
    return memberId !== this.memberId && this.members.has(memberId);
  }

  /** A request id no other proposal of this member has used (see CollectionHost). */
  newRequestId(): string {
    return `${this.memberId}:${this.requestSession}${++this.#proposalCounter}`;
  }

  nextEventSeq(): number {
    const clock = Math.floor(this.config.scheduler.now()) * EVENT_SEQ_PER_MS;
    this.#eventSeq = this.#eventSeq >= clock ? this.#eventSeq + 1 : clock;
    return this.#eventSeq;
  }

  /** Proposes a command and resolves with its result once applied on this peer. */
  propose(kind: string, id: string, op: string, args: unknown, options: ProposeOptions): Promise<unknown> {
    if (this.isClosed) return Promise.reject(new HamokClosedError("the peer is closed"));
    const timeoutMs = options.timeoutMs;
    const invalid = invalidTimeout(op, timeoutMs);
    if (invalid !== undefined) return Promise.reject(invalid);
    if (this.driver === undefined && this.joinPromise === undefined) {
      return Promise.reject(new HamokNotJoinedError(`cannot ${op} on ${kind} '${id}': call join() first`));
    }
    if (this.storageFailure !== undefined) return Promise.reject(this.storageFailure);
    const requestId = options.requestId ?? this.newRequestId();
    if (!isWellFormedString(requestId)) {
      // the leader would tell it apart from another id that followers decode to the same string
      return Promise.reject(
        new HamokConfigError("a request id must be a well-formed string (no lone surrogate)"),
      );
    }
    if (this.proposals.has(requestId)) {
      return Promise.reject(new HamokConfigError(`request '${requestId}' is already in flight`));
    }
    let data: Uint8Array;
    try {
      data = encodeCommand(kind, id, op, args, this.localPeerId);
    } catch (error) {
      return Promise.reject(
        error instanceof HamokCodecError
          ? error
          : new HamokCodecError(`cannot encode the ${op} command`, { cause: error }),
      );
    }
    const limit = this.maxEntryBytes;
    // the request id goes in the entry as UTF-8: up to three bytes per UTF-16 unit (a pair takes four
    // for two). Counting units let an entry too large to send into the log, where it stalled commits
    const size = data.byteLength + 3 * requestId.length;
    if (size > limit) {
      return Promise.reject(
        new HamokPayloadTooLargeError(
          `the ${op} command on ${kind} '${id}' takes ${data.byteLength} bytes with a request id of ${requestId.length} characters; the largest entry this peer can replicate is ${limit} bytes`,
          { size, limit },
        ),
      );
    }
    if (this.#resolveBeforeApply) return this.#speculate(kind, id, op, args, requestId, data, timeoutMs);
    return this.proposals.add(requestId, data, timeoutMs);
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
    this.proposals.add(requestId, data, timeoutMs).catch(() => {});
    const state = this.stateMachine.state(kind, id);
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

  /** Encodes, binds and seals an envelope for the transport (see the trust boundary). */
  encodeEnvelope(envelope: WireEnvelope): Uint8Array {
    return this.wire.encode(envelope);
  }

  /** The envelope of received bytes, or `undefined` (dropped and counted). */
  decodeEnvelope(data: Uint8Array): WireEnvelope | undefined {
    return this.wire.decode(data);
  }

  /** Counts a message a collection dropped (a stale sequence, a non-member sender). */
  dropMessage(reason: "non-member" | "forged-sender" | "stale-sequence" | "unexpected"): void {
    this.wire.drop(reason);
  }

  /** Resolves once this peer has joined and applied everything committed when it was called. */
  whenReady(timeoutMs: number): Promise<void> {
    const deadline = this.config.scheduler.monotonicNow() + timeoutMs;
    return withTimeout(this.ready, timeoutMs, () => {}, this.config.scheduler).then(() =>
      this.waitUntilCommitHead(Math.max(1, Math.ceil(deadline - this.config.scheduler.monotonicNow())))
    );
  }

  /** The replicated state of (kind, id) on this peer, created empty if needed. */
  replicatedState<S extends ReplicatedState>(kind: string, id: string): S {
    return this.stateMachine.state(kind, id) as S;
  }

  /** Publishes a wire message on a subject. */
  publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    this.publishBytes(subject, data, headers);
  }

  /** Acknowledges an event to its publisher (coalesced per peer and microtask). */
  acknowledge(
    toPeerId: string,
    emitterId: string,
    ackRequestId: string,
    error?: { readonly code: string; readonly message: string },
  ): void {
    this.acks.acknowledge(toPeerId, emitterId, ackRequestId, error);
  }

  /** Routes acknowledgements for `emitterId` arriving in this peer's inbox to `handler`. */
  onAck(emitterId: string, handler: AckHandler): () => void {
    const handlers = this.ackHandlers;
    const list = handlers.get(emitterId);
    if (list === undefined) handlers.set(emitterId, [handler]);
    else list.push(handler);
    return () => {
      const now = handlers.get(emitterId);
      const at = now?.indexOf(handler) ?? -1;
      if (at < 0) return;
      if (now!.length === 1) handlers.delete(emitterId);
      else now!.splice(at, 1);
    };
  }

  /** Calls `listener` once when the peer closes (see `CollectionHost.onClosed`). */
  onClosed(listener: () => void): () => void {
    if (this.isClosed) {
      listener();
      return () => {};
    }
    this.#closedListeners.add(listener);
    return () => this.#closedListeners.delete(listener);
  }

  /** Calls `listener` each time this peer has joined (see `CollectionHost.onJoined`). */
  onJoined(listener: () => void): () => void {
    // internal listeners, not the application's `joined` event (its listener count stays its own)
    this.#joinedListeners.add(listener);
    return () => this.#joinedListeners.delete(listener);
  }

  /** Calls `listener` when a member leaves the cluster (after the removal is applied). */
  onMemberRemoved(listener: (peerId: string) => void): () => void {
    return this.membership.onPeerRemoved(listener);
  }

  /** Forgets a closed collection so that its id can be used again. */
  detach(kind: string, id: string): void {
    this.#collections.delete(collectionKey(kind, id));
  }

  // ------------------------------------------------------------------ removal, join and leave

  /** The config entry that removes this member was applied: it stops (after the apply). */
  protected override selfRemoved(): void {
    if (this.leaving) return;
    this.config.scheduler.defer(() => this.#removedFromCluster("the leader removed this member"));
  }

  /**
   * This member was removed (it learnt it from the log or from a member): it stops, rejects its
   * pending writes with `HamokRemovedError`, emits `left`, and with `autoRejoin` joins again as a
   * new member.
   */
  #removedFromCluster(why: string): void {
    if (this.isClosed || !this.isJoined || this.leaving) return;
    this.logger.warn(`hamok ${this.localPeerId}: removed from the cluster (${why})`);
    this.proposals.failAll((requestId) =>
      new HamokRemovedError(
        `this peer was removed from the cluster while request ${requestId} was pending; it may or may not have been applied`,
        { requestId },
      )
    );
    const canRejoin = this.ownsStorage;
    this.becomeEmpty();
    this.events.emit("left");
    if (!this.config.autoRejoin || this.isClosed) return;
    if (!canRejoin) {
      this.reportError(
        new HamokRemovedError(
          "this peer was removed from the cluster; its storage belongs to the removed member, so it cannot join again with it: give it a new storage and call join()",
        ),
      );
      return;
    }
    this.rejoining = true;
    this.join().catch((error) => {
      if (!this.isClosed) this.reportError(asError(error));
    });
  }

  /** A member says this peer's member id was removed from the cluster. */
  #onRemovedNotice(payload: Uint8Array, fromPeerId: string): Promise<undefined> {
    const memberId = decodeCbor(payload);
    if (memberId !== this.memberId || this.leaving) return Promise.resolve(undefined);
    if (!this.isRemoteMember(fromPeerId)) return Promise.resolve(undefined);
    if (!this.isJoined && this.ownsStorage && !this.members.has(this.memberId)) {
      // joining afresh and removed before it caught up (silent too long): the join starts over
      this.identityLost = true;
      this.waiters.check();
      return Promise.resolve(undefined);
    }
    if (!this.isJoined) {
      // Restarted from storage after its member was removed while it was away: that join can never
      // complete (found by the whole-peer simulator; it used to campaign forever), so it fails.
      this.joinAbort?.abort(
        new HamokRemovedError(
          `member ${fromPeerId} says this member (${memberId}) was removed while it was away; its storage belongs to the removed member: join again with a new storage`,
        ),
      );
      return Promise.resolve(undefined);
    }
    this.#removedFromCluster(`member ${fromPeerId} says this member was removed`);
    return Promise.resolve(undefined);
  }

  async #runJoin(deadline: number, signal: AbortSignal): Promise<void> {
    const scheduler = this.config.scheduler;
    this.openTransport();
    const persisted = await this.storage.load();
    throwIfAborted(signal);
    const hasState = persisted.snapshot !== undefined || persisted.entries.length > 0 ||
      persisted.hardState.term > 0;
    if (hasState) {
      const nonce = randomUuid(scheduler).slice(0, 8);
      this.requestSession = `${nonce}.`;
      // ordered by the storage's durable restart count where it keeps one: a subscriber then tells an
      // older process of the member from a newer one (and refuses a replay of an older one's events)
      const restarts = this.storage.restarts;
      const ordered = restarts === undefined ? undefined : `${restarts.toString(36)}.${nonce}`;
      this.#incarnation = ordered !== undefined && ordered.length <= 16 ? ordered : this.requestSession;
    }
    // a member's first process (also after a rejoin under a new member id): its incarnation counts 0
    if (!hasState) this.#incarnation = "";
    this.startRaft(persisted);
    if (!hasState) {
      // a peer rejoining after its removal knows a cluster exists: it never starts another one
      let allowBootstrap = !this.rejoining;
      this.rejoining = false;
      for (;;) {
        const removed = await this.discovery.discover(deadline, signal, allowBootstrap).then(
          () => false,
          (error) => {
            if (error instanceof HamokRemovedError && this.ownsStorage) return true;
            throw error;
          },
        );
        allowBootstrap = false; // found or started a cluster: from now on only join it
        this.identityLost = removed;
        // The leader said yes, but its change may still be lost (it was appended, not yet committed,
        // when the leadership moved) or this member removed before it caught up: ask again then.
        const admitted = removed ? false : await this.waiters.waitFor(
          () => this.members.has(this.memberId) || this.identityLost,
          Math.max(1, Math.min(deadline - scheduler.monotonicNow(), 2 * this.config.requestTimeoutInMs)),
          "membership",
          signal,
        ).then(
          () => !this.identityLost,
          (error) => {
            if (error instanceof HamokTimeoutError && deadline - scheduler.monotonicNow() > 0) return false;
            throw error;
          },
        );
        if (admitted) break;
        if (this.identityLost && this.ownsStorage) {
          // removed before it ever joined: start over under a new member id
          this.stopRaft();
          this.memberId = newMemberId(this.localPeerId, scheduler);
          this.storage = this.newOwnedStorage();
          this.startRaft(await this.storage.load());
        }
      }
    }
    await this.waiters.waitFor(
      () => this.members.has(this.memberId) || this.membership.removed.has(this.memberId),
      deadline - scheduler.monotonicNow(),
      "membership",
      signal,
    );
    if (!this.members.has(this.memberId)) {
      // its own log says it was removed (a restart on the storage of a member that left or was
      // removed): it can never be a member again under this id
      throw new HamokRemovedError(
        `member ${this.memberId} was removed from the cluster; its storage belongs to the removed member: join again with a new storage`,
      );
    }
    // whole ms: a scheduler whose now() has a fraction must not make the read barrier refuse its timeout
    const remaining = Math.ceil(deadline - scheduler.monotonicNow());
    if (remaining <= 0) throw new HamokTimeoutError("join timed out", { timeoutMs: remaining });
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(asAbortError(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      this.waitUntilCommitHead(remaining).then(resolve, reject).finally(() =>
        signal.removeEventListener("abort", onAbort)
      );
    });
  }

  /** The hello this peer announces itself with. */
  protected override hello(): HelloBody {
    const joined = this.members.has(this.memberId);
    return {
      clusterId: this.config.clusterId,
      peerId: this.localPeerId,
      memberId: this.memberId,
      leaderId: this.leaderMemberId,
      term: this.term,
      joined,
      clusterUid: joined ? this.stateMachine.clusterUid : undefined,
      lone: joined && this.lone() ? true : undefined,
    };
  }

  /**
   * True if this peer is the only member of a cluster without application writes and may dissolve
   * it (`autoMerge`): one voter (itself), no learners, nothing compacted, no
   * command applied, nothing pending, its storage its own (the application's is never replaced), and
   * not joining, leaving or closed.
   */
  protected override lone(): boolean {
    const node = this.node;
    if (
      !this.config.autoMerge || node === undefined || !this.isJoined || this.joinPromise !== undefined ||
      this.leaving || this.isClosed || !this.ownsStorage || this.stateMachine.clusterUid === undefined
    ) return false;
    // Members removed since do not matter: nothing they could have written was ever applied here.
    // (A lone peer that admitted another lone one, which then went elsewhere, is lone again once
    // that member is removed: whole-peer simulator, discovery mode, seed 502.)
    const { voters, learners } = node.membership;
    if (voters.length !== 1 || voters[0] !== this.memberId || learners.length > 0) return false;
    return node.snapshotIndex === 0 && this.commandsApplied === 0 && this.proposals.size === 0 &&
      node.commitIndex === node.lastIndex && this.appliedIndex === node.lastIndex;
  }

  /**
   * Moves this lone peer into the cluster `clusterUid` led by `leaderMemberId` (`autoMerge`). First
   * that leader must add a new member id of this peer (so the other cluster is really there and
   * answers); only then, if this peer is still lone, it dissolves its own cluster: a new storage, and
   * the join of a newcomer that never bootstraps. Should that join fail, it joins afresh (and may
   * bootstrap again). Resolves true once dissolved.
   */
  protected override async mergeInto(leaderMemberId: string, clusterUid: string): Promise<boolean> {
    const leaderPeerId = peerIdOfMember(leaderMemberId);
    if (!this.lone() || leaderPeerId === this.localPeerId) return false;
    const scheduler = this.config.scheduler;
    const own = this.stateMachine.clusterUid;
    const next = newMemberId(this.localPeerId, scheduler);
    const timeoutMs = this.config.requestTimeoutMs;
    try {
      await this.rpc.request(leaderPeerId, JOIN_OP, encodeCbor(next), timeoutMs);
    } catch (error) {
      this.logger.debug(`hamok ${this.localPeerId}: ${leaderMemberId} did not add ${next}`, error);
      return false;
    }
    if (!this.lone()) {
      // a write or a newcomer meanwhile: this cluster stays, and the member added there goes
      this.rpc.request(leaderPeerId, LEAVE_OP, encodeCbor(next), timeoutMs).catch(() => {});
      return false;
    }
    this.logger.warn(
      `hamok ${this.localPeerId}: the only member of cluster ${own}, which has no writes, dissolves it and joins cluster ${clusterUid} (leader ${leaderMemberId})`,
    );
    const abort = new AbortController();
    this.joinAbort = abort;
    // the old cluster ends here: its storage goes, the peer starts afresh under the id just added
    this.stopRaft();
    this.membership.clear();
    this.stateMachine.clusterUid = undefined;
    if (this.storage instanceof FileRaftStorage) this.storage.discard(); // its directory is reused
    else void Promise.resolve(this.storage.close()).catch(() => {});
    this.memberId = next;
    this.storage = this.newOwnedStorage();
    if (this.memberId !== next) {
      // a file storage names its member itself: the one added there is taken back out
      this.rpc.request(leaderPeerId, LEAVE_OP, encodeCbor(next), timeoutMs).catch(() => {});
    }
    this.rejoining = true; // a cluster exists: this join never bootstraps
    const switched = this.#runJoin(scheduler.monotonicNow() + 3 * timeoutMs, abort.signal);
    this.joinPromise = switched.then(
      () => {
        this.joinPromise = undefined;
        this.logger.info(`hamok ${this.localPeerId}: joined cluster ${clusterUid}, leader ${this.leaderId}`);
      },
      (error) => {
        this.joinPromise = undefined;
        if (this.isClosed || abort.signal.aborted) throw error;
        this.logger.warn(
          `hamok ${this.localPeerId}: joining cluster ${clusterUid} failed; joining afresh`,
          error,
        );
        this.becomeEmpty();
        this.events.emit("left");
        this.join().catch((joinError) => {
          if (!this.isClosed) this.reportError(asError(joinError));
        });
      },
    ).finally(() => {
      if (this.joinAbort === abort) this.joinAbort = undefined;
    });
    this.joinPromise.catch(() => {});
    return true;
  }

  /** Starts a new cluster with this member as its only voter. */
  protected override bootstrap(): void {
    this.logger.info(`hamok ${this.localPeerId}: no cluster found, bootstrapping one`);
    this.stateMachine.clusterUid = randomUuid(this.config.scheduler);
    // the states become the base of a new log at index 0: indices of the log they came from mean nothing now
    this.stateMachine.logRestarted();
    const snapshot: Snapshot = {
      meta: { index: 0, term: 0, membership: { voters: [this.memberId], learners: [], removed: [] } },
      data: encodeCbor(this.stateMachine.snapshot()),
    };
    this.stopRaft();
    const start = (): void => {
      this.startRaft({ hardState: { term: 0, vote: undefined, commit: 0 }, snapshot, entries: [] });
      this.driver!.run((node) => node.campaign());
    };
    const storage = this.storage;
    const saving = storage.saveSnapshot(snapshot);
    if (saving === undefined) {
      start(); // a synchronous storage: saved
      return;
    }
    // The snapshot holds the only record of the voter set: no vote, entry or acknowledged write
    // before it is durable, or a crash meanwhile leaves a member that knows no voters. Until then
    // there is no driver: writes wait for the join, which waits for the membership.
    const joining = this.joinPromise;
    saving.then(
      () => {
        if (this.isClosed || this.storage !== storage || this.driver !== undefined) return;
        if (this.joinPromise !== joining) return; // the join was aborted meanwhile
        start();
      },
      (error) => this.reportError(asError(error)),
    );
  }

  async #handOverLeadership(deadline: number): Promise<void> {
    const node = this.node!;
    const voters = node.membership.voters.filter((m) => m !== this.memberId);
    if (voters.length === 0) return;
    const progress = node.progress;
    voters.sort((a, b) => (progress.get(b)?.match ?? 0) - (progress.get(a)?.match ?? 0));
    const target = voters[0];
    if (target === undefined) return;
    this.driver!.run((n) => n.transferLeadership(target));
    await this.waiters.waitFor(
      () => this.leaderMemberId !== undefined && this.leaderMemberId !== this.memberId,
      Math.max(1, deadline - this.config.scheduler.monotonicNow()),
      "the leadership hand-over",
    ).catch((error) => this.logger.warn(`hamok ${this.localPeerId}: leadership transfer failed`, error));
  }

  /** Asks to be removed until `deadline`; true once the removal is confirmed (or applied here). */
  async #requestRemoval(deadline: number): Promise<boolean> {
    const scheduler = this.config.scheduler;
    while (scheduler.monotonicNow() < deadline && this.members.has(this.memberId)) {
      // close() during leave(): raft is stopped, no leader will be known again and every wait
      // rejects at once, so going round again would spin on microtasks until the deadline
      if (this.isClosed) throw new HamokClosedError("the peer closed while leaving");
      // the others left meanwhile (all members leaving at once, a scale-down to zero): the cluster
      // ends with this member, and there is nobody to confirm anything to
      if (this.members.size === 1) return true;
      const leader = this.leaderMemberId;
      if (leader === undefined || leader === this.memberId) {
        if (leader === this.memberId) {
          const outcome = await this.membershipManager.remove(this.memberId).then(
            () => "removed" as const,
            (error) => {
              this.logger.debug("self removal failed", error);
              // the last voter: the others left meanwhile (or are leaving); the cluster ends with it
              return error instanceof HamokConfigError ? "last" as const : "failed" as const;
            },
          );
          if (outcome !== "failed") return true;
          // not a hot loop of refusals: let timers and messages run before the next attempt
          await delay(this.config.tickMs, scheduler);
          continue;
        }
        const known = await this.waitUntilLeader(
          Math.max(1, Math.ceil(deadline - scheduler.monotonicNow())),
        ).then(() => true, () => false);
        // a wait that failed before its time (the waiters were closed) must not make this a hot loop
        if (!known) await delay(this.config.tickMs, scheduler);
        continue;
      }
      try {
        // one attempt is given two election timeouts, not the whole deadline: a leader that left
        // meanwhile (everyone leaving at once) never answers, and the next attempt asks the next one
        const attemptMs = Math.min(
          deadline - scheduler.monotonicNow(),
          2 * this.config.electionTicks * this.config.tickMs,
        );
        await this.rpc.request(
          peerIdOfMember(leader),
          LEAVE_OP,
          encodeCbor(this.memberId),
          Math.max(1, Math.ceil(attemptMs)),
        );
        // The leader answers once it applied the removal; this peer may never learn that commit
        // itself (the leader stops replicating to removed members), so the answer is the proof.
        return true;
      } catch (error) {
        this.logger.debug(`hamok ${this.localPeerId}: leave request failed`, error);
        await delay(this.config.tickMs, scheduler);
      }
    }
    return !this.members.has(this.memberId);
  }
}

function collectionKey(kind: string, id: unknown): string {
  if (typeof id !== "string" || id.length === 0) {
    throw new HamokConfigError(`${kind} id must be a non-empty string`);
  }
  return `${kind}\u0000${id}`;
}
