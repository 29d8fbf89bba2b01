/**
 * Hamok: one peer of a cluster, the application's face of it. It discovers or bootstraps the
 * cluster, becomes a member through the replicated log, and hosts the collections. The work behind
 * it is done by the cluster peer (`src/cluster/peer.ts`, which is also the collections' host) and
 * the registry of collection kinds (`src/collections/kinds.ts`).
 *
 * @module
 */

import { EventEmitter } from "eventemitter3";
import type { Tracer } from "@opentelemetry/api";
import { ClusterPeer } from "./cluster/peer.ts";
import type { HamokEvents, HamokJoinOptions, HamokState } from "./cluster/peer_events.ts";
import type { ClusterSubjects } from "./cluster/subjects.ts";
import type { PeerCounters } from "./cluster/peer_counters.ts";
import type { HamokStatus } from "./cluster/status.ts";
import type { HamokMetrics } from "./telemetry/metrics.ts";
import {
  EMITTER_KIND,
  HamokEmitter,
  type HamokEmitterConfig,
  type HamokEmitterEventMap,
} from "./collections/emitter.ts";
import type { HamokQueue, HamokQueueConfig } from "./collections/queue.ts";
import type { HamokSubscriptionTable } from "./collections/subscription_table.ts";
import type { HamokRemoteMap, HamokRemoteMapConfig } from "./collections/remote_map.ts";
import { type HamokMap, type HamokMapConfig, MAP_KIND } from "./collections/map.ts";
import type { HamokMapState } from "./collections/map_state.ts";
import type { HamokRecord, HamokRecordConfig } from "./collections/record.ts";
import {
  COLLECTION_KINDS,
  createView,
  EMITTER,
  exportSnapshot,
  exportSnapshotParts,
  getOrCreateView,
  type HamokExportOptions,
  type HamokSnapshot,
  importSnapshot,
  MAP,
  QUEUE,
  RECORD,
  REMOTE_MAP,
  type ViewContext,
} from "./collections/kinds.ts";
import {
  type HamokConfig,
  type HamokLogger,
  type ResolvedHamokConfig,
  resolveHamokConfig,
} from "./config.ts";
import { HamokClosedError, HamokConfigError } from "./errors.ts";
import type { Transport } from "./transport/transport.ts";

export type { HamokEvents, HamokJoinOptions, HamokState } from "./cluster/peer_events.ts";
export type { HamokExportOptions, HamokSnapshot } from "./collections/kinds.ts";

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
export class Hamok extends EventEmitter<HamokEvents> {
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
  readonly counters: PeerCounters;
  /** This peer's OpenTelemetry instruments (`metrics.enabled` is false without an SDK). */
  readonly metrics: HamokMetrics;
  /** The cluster peer: the Raft plumbing, and the private host of this peer's collections. */
  readonly #peer: ClusterPeer;
  /** What the collection views are made with. */
  readonly #views: ViewContext & { readonly host: ClusterPeer };
  /** The emitters this peer opened for client publishes (an id with no view here), with their uses. */
  readonly #clientEmitters = new Map<string, { readonly emitter: HamokEmitter; uses: number }>();

  /** Creates a peer; it does nothing on the network until {@linkcode join}. */
  constructor(config: HamokConfig = {}) {
    super();
    const peer: ClusterPeer = new ClusterPeer(resolveHamokConfig(config), {
      events: this,
      stateKinds: COLLECTION_KINDS.map((kind) => [kind.kind, kind.state]),
      client: {
        findMapState: (mapId) => peer.existingState(MAP_KIND, mapId) as HamokMapState | undefined,
        readBarrier: (timeoutMs) => peer.waitUntilCommitHead(timeoutMs),
        proposeMap: (mapId, op, args, timeoutMs, requestId) =>
          peer.propose(
            MAP_KIND,
            mapId,
            op,
            args,
            requestId === undefined ? { timeoutMs } : { timeoutMs, requestId },
          ),
        publish: (emitterId, event, args, timeoutMs) =>
          this.#publishForClient(emitterId, event, args, timeoutMs),
      },
    });
    this.#peer = peer;
    peer.onJoined(() => this.#withdrawUnheldSubscriptions());
    this.#views = {
      host: peer,
      leadership: {
        isLeader: () => peer.leader,
        onLeaderChanged: (listener) => {
          this.on("leader-changed", listener);
          return () => this.off("leader-changed", listener);
        },
      },
    };
    this.config = peer.config;
    this.localPeerId = peer.localPeerId;
    this.subjects = peer.subjects;
    this.transport = peer.transport;
    this.logger = peer.logger;
    this.tracer = peer.tracer;
    this.counters = peer.counters;
    this.metrics = peer.metrics;
  }

  // ------------------------------------------------------------------ properties

  /** This peer's Raft member id (peer id plus incarnation). */
  get localMemberId(): string {
    return this.#peer.localMemberId;
  }

  /** Ids of the other members of the cluster (committed membership). */
  get remotePeerIds(): ReadonlySet<string> {
    return this.#peer.remotePeerIds;
  }

  /** The peer id of the current leader, if one is known. */
  get leaderId(): string | undefined {
    return this.#peer.leaderId;
  }

  /** True if this peer is the leader. */
  get leader(): boolean {
    return this.#peer.leader;
  }

  /** `empty` before joining, else the Raft role. */
  get state(): HamokState {
    return this.#peer.state;
  }

  /** The current Raft term. */
  get term(): number {
    return this.#peer.term;
  }

  /** True once `join()` completed and until `leave()`/`close()`. */
  get joined(): boolean {
    return this.#peer.joined;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#peer.closed;
  }

  /** Index of the last log entry applied on this peer. */
  get appliedIndex(): number {
    return this.#peer.appliedIndex;
  }

  /**
   * The largest message this peer may send, in bytes: the transport's limit (a NATS server's
   * `max_payload`) or the envelope limit, whichever is smaller, less the authentication tag.
   */
  get maxMessageBytes(): number {
    return this.#peer.maxMessageBytes;
  }

  /**
   * The largest log entry (command and request id) this peer accepts, in bytes: one entry must fit
   * in one append message with its framing and trace headers.
   */
  get maxEntryBytes(): number {
    return this.#peer.maxEntryBytes;
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
    return this.#peer.status();
  }

  /** Resolves once this peer has joined (the running join, or the next one). */
  get ready(): Promise<void> {
    return this.#peer.ready;
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Joins the cluster: finds it over the transport (or bootstraps a new one when nobody answers
   * within `discoveryMs`), becomes a member through a membership change in the log, and resolves once
   * caught up with the cluster's commit index.
   */
  join(options: HamokJoinOptions = {}): Promise<void> {
    return this.#peer.join(options);
  }

  /**
   * Leaves the cluster: hands leadership over if this peer leads, is removed from the membership
   * through the log, and stops. The peer can `join()` again later (under a new member id).
   * Rejects with `HamokTimeoutError` when the removal is not confirmed within `timeoutMs` (the peer
   * has stopped all the same, and the leader removes the silent member after `peerTimeoutMs`), and
   * with `HamokClosedError` when the peer is closed before or while it leaves.
   */
  leave(timeoutMs: number = this.config.requestTimeoutInMs): Promise<void> {
    return this.#peer.leave(timeoutMs);
  }

  /** Releases everything this peer holds (timers, subscriptions, the transport it created). Idempotent. */
  close(): void {
    for (const { emitter } of this.#clientEmitters.values()) emitter.close();
    this.#clientEmitters.clear();
    this.#peer.close();
  }

  /** Resolves once a leader is known; rejects with `HamokTimeoutError` after `timeoutMs`. */
  waitUntilLeader(timeoutMs: number = this.config.requestTimeoutInMs): Promise<void> {
    return this.#peer.waitUntilLeader(timeoutMs);
  }

  /**
   * A read barrier: resolves once this peer has applied everything the cluster had committed when
   * it was called (ReadIndex through the leader). Rejects with `HamokTimeoutError` after `timeoutMs`.
   * A ReadIndex round not answered within two election timeouts is asked again; the earlier rounds
   * stay open, and the first answer of any of them ends the wait.
   */
  waitUntilCommitHead(timeoutMs: number = this.config.requestTimeoutInMs): Promise<void> {
    return this.#peer.waitUntilCommitHead(timeoutMs);
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
    return createView(this.#views, EMITTER, config as HamokEmitterConfig) as unknown as HamokEmitter<T, M>;
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
    return getOrCreateView(this.#views, EMITTER, config as HamokEmitterConfig) as unknown as HamokEmitter<
      T,
      M
    >;
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
    return createView(this.#views, QUEUE, config as HamokQueueConfig<unknown>) as HamokQueue<T>;
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
    return getOrCreateView(this.#views, QUEUE, config as HamokQueueConfig<unknown>) as HamokQueue<T>;
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
    return createView(
      this.#views,
      REMOTE_MAP,
      config as HamokRemoteMapConfig<unknown, unknown>,
    ) as HamokRemoteMap<
      K,
      V
    >;
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
    return getOrCreateView(
      this.#views,
      REMOTE_MAP,
      config as HamokRemoteMapConfig<unknown, unknown>,
    ) as HamokRemoteMap<K, V>;
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
    return createView(this.#views, MAP, config as HamokMapConfig<unknown, unknown>) as HamokMap<K, V>;
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
    return getOrCreateView(this.#views, MAP, config as HamokMapConfig<unknown, unknown>) as HamokMap<K, V>;
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
    return createView(
      this.#views,
      RECORD,
      config as HamokRecordConfig<Record<string, unknown>>,
    ) as unknown as HamokRecord<
      T
    >;
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
    return getOrCreateView(
      this.#views,
      RECORD,
      config as HamokRecordConfig<Record<string, unknown>>,
    ) as unknown as HamokRecord<T>;
  }

  // ------------------------------------------------------------------ export and import

  /**
   * Exports the replicated state of this peer's collections as one snapshot, made at once (on the
   * event loop: about 3.5 s for a 1,000,000-entry map). For large states use
   * {@linkcode exportParts}, which yields between parts.
   */
  export(): HamokSnapshot {
    return exportSnapshot(this.#peer);
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
    const peer = this.#peer;
    yield* exportSnapshotParts(peer, max, async () => {
      await new Promise<void>((resolve) => peer.scheduler.yieldThen(resolve));
      if (peer.closed) throw new HamokClosedError("the peer closed during an export");
    });
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
    const iterable = parts as unknown as Record<symbol, unknown> | null | undefined;
    if (
      iterable === null || typeof iterable !== "object" ||
      (typeof iterable[Symbol.asyncIterator] !== "function" &&
        typeof iterable[Symbol.iterator] !== "function")
    ) {
      throw new HamokConfigError("importParts: parts must be an iterable or an async iterable of snapshots");
    }
    for await (const snapshot of parts) await this.import(snapshot);
  }

  /**
   * Imports a snapshot made by {@linkcode export} into the cluster, through consensus (merge). A map
   * or record of more than 1000 entries (or 256 KiB) goes in several commands, each awaited in turn,
   * so the event loop is free between them, each small enough for one entry of this peer. Every
   * part is checked first (see `HamokSnapshot`): a snapshot that fails rejects with
   * `HamokConfigError` or `HamokCodecError`, or with `HamokPayloadTooLargeError` when a queue (one
   * command) or a single entry would not fit in an entry of this peer, and imports nothing.
   */
  import(snapshot: HamokSnapshot): Promise<void> {
    return importSnapshot(this.#peer, snapshot, this.config.requestTimeoutInMs);
  }

  /**
   * The peer joined: entries of this peer in the subscription tables of emitters it has no view of
   * were made by a process before a restart on its storage (nobody listens to them here), so every
   * publish of their events would wait for this peer until it timed out. Withdraws them (an emitter
   * with a view reconciles its own table, see `HamokEmitter`).
   */
  #withdrawUnheldSubscriptions(): void {
    const self = this.#peer.localPeerId;
    for (const [kind, id, state] of this.#peer.replicatedStates()) {
      if (kind !== EMITTER_KIND) continue;
      if (this.#peer.hostedCollection(EMITTER_KIND, id) !== undefined) continue;
      const table = state as HamokSubscriptionTable;
      if (!table.getAllPeerIds().includes(self)) continue;
      this.#peer.propose(EMITTER_KIND, id, "clear-peer", null, { timeoutMs: this.config.requestTimeoutInMs })
        .catch((error) =>
          this.config.logger?.debug?.(`withdrawing the subscriptions of '${id}' failed`, error)
        );
    }
  }

  /**
   * A client's publish: through the application's live emitter of the id, else through the peer's own
   * publisher of it (open while client publishes of the id are in flight, never registered: the
   * application can still create its view, and closing the publisher leaves that view alone).
   */
  async #publishForClient(
    emitterId: string,
    event: string,
    args: unknown[],
    timeoutMs: number,
  ): Promise<string[]> {
    const hosted = this.#peer.hostedCollection<HamokEmitter>(EMITTER_KIND, emitterId);
    if (hosted !== undefined) return await hosted.publish(event, ...args);
    // nobody ever subscribed to this emitter (its table is not in the log): nothing to deliver, and
    // no state is made for an id a client made up
    if (this.#peer.existingState(EMITTER_KIND, emitterId) === undefined) return [];
    let entry = this.#clientEmitters.get(emitterId);
    if (entry === undefined) {
      const emitter = new HamokEmitter(this.#peer, { emitterId, requestTimeoutInMs: timeoutMs }, true);
      entry = { emitter, uses: 0 };
      this.#clientEmitters.set(emitterId, entry);
    }
    entry.uses++;
    try {
      return await entry.emitter.publish(event, ...args);
    } finally {
      if (--entry.uses === 0 && this.#clientEmitters.get(emitterId) === entry) {
        this.#clientEmitters.delete(emitterId);
        entry.emitter.close();
      }
    }
  }
}
