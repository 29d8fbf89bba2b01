/**
 * HamokEmitter: distributed events. The subscription table is replicated through Raft; events
 * travel directly: one transport publish per event on the event's subject reaches every subscriber,
 * and acknowledgements come back to the publisher's inbox.
 *
 * @module
 */

import { assertRoundTrips } from "../codec/cbor.ts";
import { cborPayloadCodec, decodePayload, encodePayload, type PayloadCodec } from "../codec/payload_codec.ts";
import { peerIdOfMember } from "../cluster/member_id.ts";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokDeliveryError,
  type HamokDeliveryFailure,
  HamokError,
  type HamokListenerError,
  HamokPayloadTooLargeError,
  HamokTimeoutError,
} from "../errors.ts";
import type { TransportHeaders, TransportMessage, TransportSubscription } from "../transport/transport.ts";
import { type Span, SpanStatusCode } from "@opentelemetry/api";
import { failSpan, HAMOK_SPAN_ATTRIBUTES, MessagingSpans } from "../telemetry/messaging_spans.ts";
import { type HamokMetrics, PublishAttributes } from "../telemetry/metrics.ts";
import { traceHeaders } from "../telemetry/trace_context.ts";
import { type CollectionHost, EVENT_SEQ_PER_MS as SEQ_PER_MS, incarnationOrder } from "./collection_host.ts";
import type { TimerHandle } from "../cluster/scheduler.ts";
import { checkListener, CollectionBase, collectionIdentity } from "./collection_base.ts";
import {
  checkSubscriptionsImage,
  type EmitterCommands,
  type HamokEmitterSnapshot,
  type HamokSubscriptionTable,
  sameValue,
} from "./subscription_table.ts";
import { assertWellFormed } from "../codec/well_formed.ts";

/** Event names mapped to the argument tuples of their listeners. */
export type HamokEmitterEventMap = Record<string, unknown[]>;

/** A listener of event `K` of event map `T`. */
export type HamokEmitterListener<T extends HamokEmitterEventMap, K extends keyof T> = (...args: T[K]) => void;

/**
 * Options of `hamok.createEmitter(config)`.
 *
 * @example
 * ```ts
 * import type { Hamok } from "@hamok/core";
 * declare const hamok: Hamok;
 * type Events = { message: [string, number] };
 * const emitter = hamok.createEmitter<Events>({ emitterId: "chat", requestTimeoutInMs: 3000 });
 * ```
 */
export interface HamokEmitterConfig<T extends HamokEmitterEventMap = HamokEmitterEventMap> {
  /** The emitter id; peers with emitters of the same id share events. Required. */
  emitterId: string;
  /** Timeout of `publish` acknowledgements and of subscription changes, in ms. Default 5000. */
  requestTimeoutInMs?: number;
  /** Maximum events per outbound command (0 = unlimited); larger ones are split. Default 0. */
  maxOutboundMessageKeys?: number;
  /** Maximum subscribers per outbound command (0 = unlimited); larger ones are split. Default 0. */
  maxOutboundMessageValues?: number;
  /** Per-event payload codecs. Default: CBOR of the argument array. */
  payloadsCodec?: Map<keyof T, PayloadCodec>;
}

/**
 * What an emitter is connected through: the peer, its cluster subjects and the emitter's id.
 */
export interface HamokEmitterConnection {
  /** The id of the peer this emitter lives on. */
  readonly localPeerId: string;
  /** The emitter id. */
  readonly emitterId: string;
  /** The subject prefix of the cluster. */
  readonly subjectPrefix: string;
  /** The subject events of `event` are published on. */
  subjectOf(event: string): string;
}

/** The replicated-state kind of emitters. */
export const EMITTER_KIND = "emitter";

/**
 * How far ahead of this peer's clock an event's sequence may claim to be, in ms: the clock skew
 * tolerated between peers, and the longest a forged sequence (possible only without a cluster key)
 * can hold back a publisher's events, since sequences move with the publisher's clock.
 */
const MAX_SEQ_AHEAD_MS = 10 * 60 * 1000;

/**
 * What a receiver remembers of one publishing member: the highest sequence delivered in the incarnation
 * heard last and in the one before (a late event of the previous process, which the new one overtook,
 * is still ordered and de-duplicated). An older incarnation than these two starts afresh.
 */
interface SeqTrack {
  incarnation: string;
  seq: number;
  previousIncarnation: string | undefined;
  previousSeq: number;
  /** Incarnations before those two, newest last (at most {@linkcode RETIRED_INCARNATIONS}): their events are stale. */
  retired: string[] | undefined;
}

/** Attempts a closed view makes to withdraw its subscriptions (see `#withdrawAfterClose`). */
const MAX_WITHDRAW_ATTEMPTS = 12;

/**
 * How many incarnations of a member before its last two a receiver still refuses events of: a replayed
 * (sealed) event of an older process is dropped unless it is more than this many restarts old.
 */
const RETIRED_INCARNATIONS = 8;

interface PendingPublish {
  readonly event: string;
  readonly awaiting: Set<string>;
  readonly acked: string[];
  readonly failures: HamokDeliveryFailure[];
  readonly local: boolean;
  readonly span: Span;
  /** `scheduler.monotonicNow()` at publish. */
  readonly started: number;
  readonly resolve: (peerIds: string[]) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Distributed events across the peers of a cluster.
 *
 * `subscribe` registers this peer for an event in the replicated subscription table (resolving once
 * committed); `publish` sends an event to every subscribing peer at once and resolves with the ids
 * of the peers that acknowledged it; `notify` is fire-and-forget. `on`/`off`/`once` add local
 * listeners only: they hear the events this peer receives or publishes, without registering with the
 * cluster.
 *
 * @example
 * ```ts
 * import { Hamok } from "@hamok/core";
 * type Events = { greet: [name: string] };
 * const hamok = new Hamok();
 * await hamok.join();
 * const emitter = hamok.createEmitter<Events>({ emitterId: "greetings" });
 * await emitter.subscribe("greet", (name) => console.log(`hello ${name}`));
 * const peers = await emitter.publish("greet", "world"); // ids of the peers that got it
 * emitter.notify("greet", "again"); // fire and forget
 * ```
 */
export class HamokEmitter<T extends HamokEmitterEventMap = HamokEmitterEventMap, M = unknown>
  extends CollectionBase<T, EmitterCommands> {
  /** Per-event payload codecs given in the config. */
  readonly payloadsCodec: Map<keyof T, PayloadCodec>;
  /** The connection this emitter uses. */
  readonly connection: HamokEmitterConnection;
  /** The replicated subscription table (read-only view with `added`/`removed`/`updated` events). */
  readonly subscriptions: HamokSubscriptionTable<M>;
  readonly #maxKeys: number;
  readonly #maxValues: number;
  readonly #spans: MessagingSpans;
  /** The peer's metrics when an SDK records them, else undefined (nothing is timed). */
  readonly #metrics: HamokMetrics | undefined;
  readonly #publishAttributes: PublishAttributes | undefined;
  readonly #subscribed = new Map<string, Set<AnyListener>>();
  readonly #transportSubs = new Map<string, TransportSubscription>();
  /** Publishes awaiting acknowledgements, in the order published (so in the order they time out). */
  readonly #pending = new Map<string, PendingPublish>();
  /** The one timeout timer of {@linkcode #pending}, armed for its oldest publish (undefined: off). */
  #timer: TimerHandle | undefined;
  /** Per publishing member: the highest sequence delivered, in its latest two incarnations. */
  readonly #lastSeq = new Map<string, SeqTrack>();
  readonly #eventQueues = new Map<string, Promise<void>>();
  /** Events whose subscribe failed here and may still commit (see the constructor's `onListed`). */
  readonly #failedSubscribes = new Set<string>();
  /** Per subscribed event, the metadata it was last subscribed with (to register it again). */
  readonly #metadata = new Map<string, M | null>();
  /**
   * Events this view registered in the table itself, in this process: a table entry of this peer
   * the view did not make (one of a process before a restart on the same storage) is not taken as
   * its registration, since it may be withdrawn under it.
   */
  readonly #confirmed = new Set<string>();
  /** The timer of the next {@linkcode #resync} round after a failed one (undefined: none due). */
  #resyncTimer: TimerHandle | undefined;
  /** Resync rounds that failed in a row (the backoff). */
  #resyncFailures = 0;
  /** Events being registered again (see {@linkcode #resubscribe}). */
  readonly #resubscribing = new Set<string>();
  readonly #disposers: (() => void)[] = [];
  #seq = 0;
  /** The span of the local delivery in progress (a listener that throws is recorded on it). */
  #deliverySpan: Span | undefined;

  /** Opened by the peer for client publishes, not registered as the application's view of the id. */
  readonly #forClients: boolean;

  /**
   * @internal Use `hamok.createEmitter(config)`. `forClients`: the peer's own publisher for client
   * publishes (it never subscribes, and closing it neither detaches nor withdraws anything).
   */
  constructor(host: CollectionHost, config: HamokEmitterConfig<T>, forClients: boolean = false) {
    const identity = collectionIdentity(config, EMITTER_KIND, "emitter", "emitterId", false);
    const maxKeys = nonNegativeInteger("maxOutboundMessageKeys", config.maxOutboundMessageKeys);
    const maxValues = nonNegativeInteger("maxOutboundMessageValues", config.maxOutboundMessageValues);
    super(host, identity);
    this.#forClients = forClients;
    this.#spans = new MessagingSpans(host.tracer, this.id, host.localPeerId);
    this.#metrics = host.metrics?.enabled ? host.metrics : undefined;
    this.#publishAttributes = this.#metrics === undefined
      ? undefined
      : new PublishAttributes(host.localPeerId, this.id);
    this.#maxKeys = maxKeys;
    this.#maxValues = maxValues;
    if (config.payloadsCodec !== undefined && !(config.payloadsCodec instanceof Map)) {
      throw new HamokConfigError("payloadsCodec must be a Map from event name to codec");
    }
    this.payloadsCodec = config.payloadsCodec ?? new Map();
    for (const [event, codec] of this.payloadsCodec) {
      if (typeof codec?.encode !== "function" || typeof codec?.decode !== "function") {
        throw new HamokConfigError(
          `payloadsCodec for '${String(event)}' must have encode and decode functions`,
        );
      }
    }
    const subjects = host.subjects;
    const emitterId = this.id;
    this.connection = {
      localPeerId: host.localPeerId,
      emitterId,
      subjectPrefix: subjects.prefix,
      subjectOf: (event: string) => subjects.event(emitterId, event),
    };
    this.subscriptions = host.replicatedState<HamokSubscriptionTable<M>>(EMITTER_KIND, this.id);
    const onRemoved = (event: string, peerId: string) => {
      this.#stopAwaiting(peerId, event);
      if (peerId !== host.localPeerId) return;
      this.#confirmed.delete(event);
      // this peer's entry went (its member was removed, a withdrawal of a previous process raced a
      // subscribe) while it still listens: register it again (once joined again, if it was removed)
      if (!this.closed && this.#subscribed.has(event)) void this.#resubscribe(event);
    };
    // A subscribe that failed (its listener was removed) may still commit later, and would then list
    // this peer for an event it no longer listens to: every publish of it would wait for this peer
    // until it timed out. Withdraw such an entry when it shows up (entries made otherwise, by an
    // import, are left alone).
    const onListed = (event: string, peerId: string) => {
      if (peerId !== host.localPeerId || !this.#failedSubscribes.has(event)) return;
      this.#failedSubscribes.delete(event);
      if (this.closed || this.#subscribed.has(event)) return;
      this.#reconcile(event, null).catch((error) =>
        host.logger.debug(`emitter '${this.id}': withdrawing '${event}' failed`, error)
      );
    };
    this.subscriptions.on("removed", onRemoved);
    this.subscriptions.on("added", onListed);
    this.subscriptions.on("updated", onListed);
    this.#disposers.push(
      () => this.subscriptions.off("removed", onRemoved),
      () => this.subscriptions.off("added", onListed),
      () => this.subscriptions.off("updated", onListed),
      host.onAck(this.id, (ack) => this.#onAck(ack.ackRequestId, ack.peerId, ack.ok, ack.error)),
      host.onJoined(() => void this.#resync()),
      host.onMemberRemoved((peerId) => {
        this.#stopAwaiting(peerId);
        for (const memberId of this.#lastSeq.keys()) {
          if (peerIdOfMember(memberId) === peerId) this.#lastSeq.delete(memberId);
        }
      }),
    );
    // entries of this peer a closed view of the id could not withdraw are this view's to withdraw
    if (!forClients) void Promise.resolve().then(() => this.#resync());
  }

  /**
   * Adds `listener` for `event` and registers this peer as a subscriber of `event` in the replicated
   * table. Resolves once the registration is committed (at once if this peer already subscribes with
   * the same metadata). If it fails, the listener is removed again and the promise rejects.
   */
  async subscribe<K extends keyof T & string>(
    event: K,
    listener: HamokEmitterListener<T, K>,
    metadata?: M,
  ): Promise<void> {
    this.assertOpen();
    checkEvent(event);
    checkListener(listener);
    // metadata goes into the replicated table: refused now, like a map value, if CBOR would change it
    // (a WeakMap stored as {}, a lone surrogate), never after the listener is added
    if (metadata !== undefined) {
      try {
        assertRoundTrips(metadata, "metadata");
      } catch (error) {
        throw new HamokCodecError(`emitter '${this.id}': the metadata of '${event}' cannot be replicated`, {
          cause: error,
        });
      }
    }
    let set = this.#subscribed.get(event);
    if (set === undefined) {
      set = new Set();
      this.#subscribed.set(event, set);
    }
    set.add(asAny(listener));
    this.addListener(event, listener, false);
    this.#listenOn(event);
    try {
      const wanted = metadata === undefined ? null : metadata;
      if (wanted !== null || !this.#metadata.has(event)) this.#metadata.set(event, wanted);
      await this.#reconcile(event, wanted);
    } catch (error) {
      set.delete(asAny(listener));
      this.removeListener(event, listener);
      if (set.size === 0) {
        this.#subscribed.delete(event);
        this.#metadata.delete(event);
        // bounded by the events this view subscribed to
        this.#failedSubscribes.add(event);
      }
      void this.#reconcile(event, null).catch(() => {});
      throw error;
    }
  }

  /**
   * Removes `listener` from `event`. When no subscribed listener of `event` remains on this peer, it
   * is removed from the replicated table; resolves once that is committed. Other events are untouched.
   */
  async unsubscribe<K extends keyof T & string>(
    event: K,
    listener: HamokEmitterListener<T, K>,
  ): Promise<void> {
    this.assertOpen();
    checkEvent(event);
    checkListener(listener);
    const set = this.#subscribed.get(event);
    if (set === undefined || !set.delete(asAny(listener))) return;
    this.removeListener(event, listener);
    if (set.size === 0) {
      this.#subscribed.delete(event);
      this.#metadata.delete(event);
    }
    try {
      await this.#reconcile(event, null);
    } catch (error) {
      if (!this.#subscribed.has(event)) {
        // not listening any more whatever the outcome: no acknowledgement without a listener
        this.#stopListening(event);
        // an unsubscribe whose outcome is unknown may have been lost: withdraw again, retried until
        // the table matches the listeners
        this.#scheduleResync();
      }
      throw error;
    }
  }

  /**
   * Publishes an event to every subscriber. Resolves, once every remote subscriber acknowledged,
   * with the ids of the peers whose listeners got it (this peer too, if it has listeners for the
   * event). Rejects with {@linkcode HamokTimeoutError} (naming who acknowledged and who did not)
   * after `requestTimeoutInMs`, with {@linkcode HamokDeliveryError} if a subscriber could not process
   * it, with {@linkcode HamokCodecError} if the arguments cannot be encoded, and with
   * {@linkcode HamokClosedError} if the emitter is closed. A subscriber that leaves the cluster
   * meanwhile is no longer awaited.
   */
  publish<K extends keyof T & string>(event: K, ...args: T[K]): Promise<string[]> {
    let span: Span | undefined;
    try {
      this.assertOpen();
      checkEvent(event);
      const targets = this.#remoteTargets(event);
      const ackRequestId = targets === undefined
        ? undefined
        : `${this.host.localMemberId}:${this.host.incarnation}${this.#nextSeq()}`;
      span = this.#spans.startSend("publish", event, targets?.size ?? 0, ackRequestId);
      const payload = encodePayload(this.#codecOf(event), args);
      this.#checkSize(event, payload);
      const self = this.host.localPeerId;
      const local = this.hasListeners(event);
      if (ackRequestId === undefined) {
        if (local) this.#deliverLocal(event, args, span);
        span.end();
        return Promise.resolve(local ? [self] : []);
      }
      const promise = new Promise<string[]>((resolve, reject) => {
        const started = this.host.scheduler.monotonicNow();
        this.#pending.set(ackRequestId, {
          event,
          awaiting: targets!,
          acked: [],
          failures: [],
          local,
          span: span!,
          started,
          resolve,
          reject,
        });
        if (this.#timer === undefined) this.#armTimeout(started + this.requestTimeoutInMs, started);
      });
      this.#send(event, payload, this.#seq, ackRequestId, traceHeaders(span.spanContext()));
      if (local) this.#deliverLocal(event, args, span);
      return promise;
    } catch (error) {
      if (span !== undefined) failSpan(span, error as Error);
      return Promise.reject(error);
    }
  }

  /**
   * Sends an event to every subscriber without waiting for acknowledgements. Throws
   * {@linkcode HamokCodecError} if the arguments cannot be encoded and {@linkcode HamokClosedError}
   * if the emitter is closed.
   */
  notify<K extends keyof T & string>(event: K, ...args: T[K]): void {
    this.assertOpen();
    checkEvent(event);
    const targets = this.#remoteTargets(event);
    const span = this.#spans.startSend("notify", event, targets?.size ?? 0);
    try {
      const payload = encodePayload(this.#codecOf(event), args);
      this.#checkSize(event, payload);
      if (targets !== undefined) {
        this.#send(event, payload, this.#nextSeq(), undefined, traceHeaders(span.spanContext()));
      }
      if (this.hasListeners(event)) this.#deliverLocal(event, args, span);
      span.end();
    } catch (error) {
      failSpan(span, error as Error);
      throw error;
    }
  }

  /** Adds a local listener (no cluster registration; see {@linkcode subscribe}). */
  override on<K extends keyof T & string>(event: K, listener: HamokEmitterListener<T, K>): this {
    return super.on(event, listener);
  }

  /** Adds a local listener that is removed after its first call. */
  override once<K extends keyof T & string>(event: K, listener: HamokEmitterListener<T, K>): this {
    return super.once(event, listener);
  }

  /** Removes a local listener added with `on` or `once`. */
  override off<K extends keyof T & string>(event: K, listener: HamokEmitterListener<T, K>): this {
    return super.off(event, listener);
  }

  /**
   * Removes every listener of this emitter on this peer and, through consensus, every subscription
   * of this peer; resolves once committed.
   */
  async clear(): Promise<void> {
    this.assertOpen();
    this.#subscribed.clear();
    this.#metadata.clear();
    this.clearListeners();
    // no listener is left: no acknowledgement either, whatever the outcome below
    for (const sub of this.#transportSubs.values()) sub.unsubscribe();
    this.#transportSubs.clear();
    try {
      await this.proposeWith("clear-peer", null, { timeoutMs: this.requestTimeoutInMs });
      this.#confirmed.clear();
    } catch (error) {
      // the withdrawal may have been lost: withdraw what the table still lists and nobody here
      // listens to, retried until the table matches
      this.#scheduleResync();
      throw error;
    }
  }

  /** The replicated subscription table as a snapshot. */
  export(): HamokEmitterSnapshot<M> {
    return this.subscriptions.toSnapshot();
  }

  /**
   * Merges a snapshot into the replicated subscription table through consensus (split into several
   * commands when `maxOutboundMessageKeys`/`maxOutboundMessageValues` are set). Resolves once
   * every part is committed.
   */
  async import(snapshot: HamokEmitterSnapshot<M>): Promise<void> {
    this.assertOpen();
    if (snapshot === null || typeof snapshot !== "object" || !Array.isArray(snapshot.subscriptions)) {
      throw new HamokConfigError("an emitter snapshot must have a subscriptions array");
    }
    // every part checked before anything is proposed: shapes, names, metadata CBOR would change
    checkSubscriptionsImage(this.id, snapshot.subscriptions);
    for (const part of splitImport(snapshot, this.#maxKeys, this.#maxValues)) {
      await this.proposeWith("import", { entries: part }, { timeoutMs: this.requestTimeoutInMs });
    }
  }

  /**
   * Closes the emitter: local listeners are dropped, pending publishes reject with
   * {@linkcode HamokClosedError}, and this peer's subscriptions are withdrawn from the cluster (best
   * effort, in the background).
   */
  override close(): void {
    super.close();
  }

  /** @internal */
  protected override get registered(): boolean {
    return !this.#forClients;
  }

  /** @internal */
  protected override onClose(): void {
    const hadSubscriptions = !this.#forClients && (this.#subscribed.size > 0 ||
      this.subscriptions.getAllPeerIds().includes(this.host.localPeerId));
    this.#subscribed.clear();
    this.clearListeners();
    for (const sub of this.#transportSubs.values()) sub.unsubscribe();
    this.#transportSubs.clear();
    for (const dispose of this.#disposers) dispose();
    this.host.scheduler.clearTimeout(this.#timer);
    this.host.scheduler.clearTimeout(this.#resyncTimer);
    this.#resyncTimer = undefined;
    this.#timer = undefined;
    for (const [id, pending] of this.#pending) {
      pending.reject(
        new HamokClosedError(`emitter '${this.id}' was closed while publishing '${pending.event}'`),
      );
      this.#pending.delete(id);
    }
    if (hadSubscriptions && !this.host.closed) void this.#withdrawAfterClose();
  }

  /**
   * Withdraws this peer's subscriptions after the view closed, retried (same request id, backing off)
   * while the table still lists the peer: one attempt lost to a partition or a leader change left the
   * peer listed for good, and every publish of its events waited for it until it timed out. Ends when
   * the peer closes, a new view of the id takes over its entries, or after a bounded number of
   * attempts (the peer's next join withdraws what is left).
   */
  async #withdrawAfterClose(): Promise<void> {
    const host = this.host;
    const requestId = host.newRequestId();
    for (let attempt = 0; attempt < MAX_WITHDRAW_ATTEMPTS; attempt++) {
      if (host.closed) return;
      const hosted = host.hostedCollection(EMITTER_KIND, this.id);
      if (hosted !== undefined && hosted !== this) return; // a new view owns the entries now
      if (!this.subscriptions.getAllPeerIds().includes(host.localPeerId)) return;
      try {
        await this.proposeWith("clear-peer", null, { timeoutMs: this.requestTimeoutInMs, requestId });
        return;
      } catch (error) {
        host.logger.debug(`emitter '${this.id}': withdrawing subscriptions failed`, error);
        const backoffMs = Math.min(this.requestTimeoutInMs, 100 * 2 ** attempt);
        // the wait ends early when the peer closes: its timer must not keep the process alive
        await new Promise<void>((resolve) => {
          const timer = host.scheduler.setTimeout(() => {
            stop();
            resolve();
          }, backoffMs);
          const stop = host.onClosed(() => {
            host.scheduler.clearTimeout(timer);
            resolve();
          });
        });
      }
    }
  }

  #codecOf(event: string): PayloadCodec {
    return this.payloadsCodec.get(event) ?? cborPayloadCodec;
  }

  /** Remote members subscribed to `event`, or undefined if none. */
  #remoteTargets(event: string): Set<string> | undefined {
    const peers = this.subscriptions.peersOf(event);
    if (peers === undefined) return undefined;
    let targets: Set<string> | undefined;
    const self = this.host.localPeerId;
    for (const peerId of peers.keys()) {
      if (peerId === self || !this.host.isRemoteMember(peerId)) continue;
      (targets ??= new Set()).add(peerId);
    }
    return targets;
  }

  /** Throws `HamokPayloadTooLargeError` if an event with `payload` could not be sent. */
  #checkSize(event: string, payload: string | Uint8Array): void {
    const size = typeof payload === "string" ? 3 * payload.length : payload.byteLength;
    const limit = this.host.maxEntryBytes;
    if (size + event.length <= limit) return;
    const exact = typeof payload === "string" ? new TextEncoder().encode(payload).byteLength : size;
    if (exact + event.length <= limit) return;
    throw new HamokPayloadTooLargeError(
      `event '${event}' of emitter '${this.id}' takes ${exact} bytes; the largest this peer can send is ${limit}`,
      { size: exact + event.length, limit },
    );
  }

  #send(
    event: string,
    payload: string | Uint8Array,
    seq: number,
    ackRequestId: string | undefined,
    headers: TransportHeaders | undefined,
  ): void {
    const incarnation = this.host.incarnation;
    const data = this.host.encodeEnvelope({
      type: "event",
      from: this.host.localMemberId,
      body: incarnation === ""
        ? { emitterId: this.id, event, payload, seq, ackRequestId }
        : { emitterId: this.id, event, payload, seq, ackRequestId, incarnation },
    });
    this.host.publish(this.connection.subjectOf(event), data, headers);
  }

  /** Serializes the subscription changes of one event and makes the table match the local listeners. */
  #reconcile(event: string, metadata: M | null): Promise<void> {
    const previous = this.#eventQueues.get(event) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(async () => {
      const self = this.host.localPeerId;
      const wanted = (this.#subscribed.get(event)?.size ?? 0) > 0;
      const listed = this.subscriptions.hasPeerOnEvent(event, self);
      const timeoutMs = this.requestTimeoutInMs;
      if (
        wanted &&
        (!listed || !this.#confirmed.has(event) ||
          (metadata !== null && !sameValue(this.subscriptions.getMetadata(event, self), metadata)))
      ) {
        await this.proposeWith("subscribe", { event, metadata }, { timeoutMs });
        if ((this.#subscribed.get(event)?.size ?? 0) > 0) this.#confirmed.add(event);
      } else if (!wanted && listed) {
        await this.proposeWith("unsubscribe", { event }, { timeoutMs });
        this.#confirmed.delete(event);
      }
      if (!wanted && !this.#subscribed.has(event)) this.#stopListening(event);
    });
    this.#eventQueues.set(event, next);
    const cleanup = () => {
      if (this.#eventQueues.get(event) === next) this.#eventQueues.delete(event);
    };
    next.then(cleanup, cleanup);
    return next;
  }

  /** Registers `event` again with its last metadata (failures are logged: the next join retries). */
  #resubscribe(event: string): Promise<boolean> {
    // one at a time per event: a registration whose own effects remove the entry again (a testing
    // bug's dry runs do) must not turn into a loop. A removal applied while one is in flight (in the
    // same batch, right behind its registration) is not dropped though: a later round, on the
    // backing-off resync timer, registers the event again if it is still unlisted.
    if (this.#resubscribing.has(event)) {
      this.#scheduleResync();
      return Promise.resolve(true);
    }
    this.#resubscribing.add(event);
    return this.#reconcile(event, this.#metadata.get(event) ?? null).then(() => true, (error) => {
      this.host.logger.debug(`emitter '${this.id}': registering '${event}' again failed`, error);
      this.#scheduleResync();
      return false;
    }).finally(() => this.#resubscribing.delete(event));
  }

  /**
   * Runs {@linkcode #resync} again later (backing off, at most one timer per view) until a round
   * succeeds: a withdrawal or registration that failed (cut off, no leader) is retried for as long as
   * the view is open, since the cluster would otherwise keep waiting for, or never reach, this peer.
   */
  #scheduleResync(): void {
    if (this.closed || this.#forClients || this.#resyncTimer !== undefined) return;
    const delayMs = Math.min(this.requestTimeoutInMs, 100 * 2 ** Math.min(this.#resyncFailures, 10));
    this.#resyncTimer = this.host.scheduler.setTimeout(() => {
      this.#resyncTimer = undefined;
      this.#resyncFailures++;
      void this.#resync();
    }, delayMs);
  }

  /**
   * The peer (re)joined: make its entries in the table match this view's listeners. After a removal
   * the cluster dropped them; after a restart on durable storage the table holds the previous
   * process's entries, which nobody listens to here unless this process subscribes again.
   */
  async #resync(): Promise<void> {
    if (this.closed || this.#forClients) return;
    const self = this.host.localPeerId;
    const rounds: Promise<boolean>[] = [];
    for (const event of this.#subscribed.keys()) rounds.push(this.#resubscribe(event));
    for (const event of this.subscriptions.events()) {
      if (this.#subscribed.has(event) || !this.subscriptions.hasPeerOnEvent(event, self)) continue;
      rounds.push(
        this.#reconcile(event, null).then(() => true, (error) => {
          this.host.logger.debug(`emitter '${this.id}': withdrawing '${event}' failed`, error);
          return false;
        }),
      );
    }
    const done = await Promise.all(rounds);
    if (done.every((ok) => ok)) this.#resyncFailures = 0;
    else this.#scheduleResync();
  }

  #listenOn(event: string): void {
    if (this.#transportSubs.has(event)) return;
    const sub = this.host.transport.subscribe(
      this.connection.subjectOf(event),
      (message) => this.#receive(message, event),
    );
    this.#transportSubs.set(event, sub);
  }

  #stopListening(event: string): void {
    const sub = this.#transportSubs.get(event);
    if (sub === undefined) return;
    sub.unsubscribe();
    this.#transportSubs.delete(event);
  }

  #receive(message: TransportMessage, subscribed: string): void {
    if (this.closed) return;
    const envelope = this.host.decodeEnvelope(message.data);
    if (envelope === undefined) return;
    // the body names the event and emitter of the subject it came on, or it is not for this listener
    // (a forged or misrouted event must not reach the listeners of another event)
    if (
      envelope.type !== "event" || envelope.body.event !== subscribed || envelope.body.emitterId !== this.id
    ) {
      this.host.dropMessage("unexpected");
      return;
    }
    const from = envelope.from;
    if (from === this.host.localMemberId) return;
    // the exact member id: another incarnation of a member's peer id is not a member
    if (!this.host.isRemoteMemberId(from)) {
      this.host.dropMessage("non-member");
      return;
    }
    const body = envelope.body;
    if (!this.#inSequence(from, body.seq, body.incarnation ?? "")) {
      this.host.dropMessage("stale-sequence");
      return;
    }
    const fromPeerId = peerIdOfMember(from);
    const span = this.#spans.startProcess(body.event, fromPeerId, message.headers);
    let args: unknown[];
    try {
      args = decodePayload(this.#codecOf(body.event), body.payload);
    } catch (error) {
      const err = error instanceof HamokError
        ? error
        : new HamokError(String(error), "HAMOK_CODEC", { cause: error });
      this.host.reportError(err);
      this.#ack(fromPeerId, body.ackRequestId, { code: err.code, message: err.message });
      failSpan(span, err);
      return;
    }
    this.#deliverLocal(body.event, args, span);
    this.#ack(fromPeerId, body.ackRequestId, undefined);
    span.end();
  }

  /**
   * Per-publisher order and de-duplication: an event is delivered if its sequence is above the
   * highest delivered from that member. A sequence starts at the publisher's clock (see
   * {@linkcode SEQ_PER_MS}), so a restarted publisher is not mistaken for a stale one, and a claim
   * beyond this peer's clock plus {@linkcode MAX_SEQ_AHEAD_MS} is refused: one forged event with a
   * huge sequence cannot silence a publisher.
   */
  /** The next sequence: the peer's, shared by its emitters (so a view opened again never repeats one). */
  #nextSeq(): number {
    this.#seq = this.host.nextEventSeq();
    return this.#seq;
  }

  #inSequence(from: string, seq: number, incarnation: string): boolean {
    if (seq > (this.host.scheduler.now() + MAX_SEQ_AHEAD_MS) * SEQ_PER_MS) return false;
    const track = this.#lastSeq.get(from);
    if (track === undefined) {
      this.#lastSeq.set(from, {
        incarnation,
        seq,
        previousIncarnation: undefined,
        previousSeq: 0,
        retired: undefined,
      });
      return true;
    }
    if (track.incarnation === incarnation) {
      if (seq <= track.seq) return false;
      track.seq = seq;
      return true;
    }
    if (track.previousIncarnation === incarnation) {
      if (seq <= track.previousSeq) return false;
      track.previousSeq = seq;
      return true;
    }
    if (track.retired?.includes(incarnation)) return false;
    // A member's processes never overlap (one holds its storage at a time), so with authenticated
    // envelopes an ordered incarnation below the current one that is not the previous one is a dead
    // process: a replay of its events (even to a subscriber that never saw it) is refused. Without a
    // key anyone can claim any incarnation, and refusing would let a forged high one silence the member.
    if (this.host.authenticated) {
      const order = incarnationOrder(incarnation);
      const current = incarnationOrder(track.incarnation);
      if (order >= 0 && current >= 0 && order < current) return false;
    }
    // another process of the member (restarted on its storage): its sequence may be below the last
    // one's if its clock went back, so it is ordered on its own
    // Retired incarnations are refused only when envelopes are authenticated: there a new incarnation
    // is a real restart, and refusing older ones stops replays; without a key three forged events of
    // made-up incarnations would otherwise retire the member's real one and silence it for good.
    if (track.previousIncarnation !== undefined && this.host.authenticated) {
      const retired = track.retired ??= [];
      retired.push(track.previousIncarnation);
      if (retired.length > RETIRED_INCARNATIONS) retired.shift();
    }
    track.previousIncarnation = track.incarnation;
    track.previousSeq = track.seq;
    track.incarnation = incarnation;
    track.seq = seq;
    return true;
  }

  #ack(
    toPeerId: string,
    ackRequestId: string | undefined,
    error: { code: string; message: string } | undefined,
  ): void {
    if (ackRequestId === undefined) return;
    this.host.acknowledge(toPeerId, this.id, ackRequestId, error);
  }

  #deliverLocal(event: string, args: readonly unknown[], span: Span): void {
    this.#deliverySpan = span;
    try {
      this.deliver(event, args as T[string]);
    } finally {
      this.#deliverySpan = undefined;
    }
  }

  /** @internal A local listener threw: the failure is recorded on the delivery's span too. */
  protected override listenerFailed(failure: HamokListenerError, error: unknown): void {
    const span = this.#deliverySpan;
    if (span === undefined || !span.isRecording()) return;
    span.recordException(error instanceof Error ? error : failure);
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
  }

  #onAck(
    ackRequestId: string,
    peerId: string,
    ok: boolean,
    error?: { code: string; message: string },
  ): void {
    const pending = this.#pending.get(ackRequestId);
    if (pending === undefined || !pending.awaiting.delete(peerId)) return;
    if (pending.span.isRecording()) {
      pending.span.addEvent(ok ? "ack" : "nack", { [HAMOK_SPAN_ATTRIBUTES.peerId]: peerId });
    }
    if (ok) pending.acked.push(peerId);
    else pending.failures.push({ peerId, code: error?.code ?? "HAMOK_ERROR", message: error?.message ?? "" });
    if (pending.awaiting.size === 0) this.#settle(ackRequestId, pending);
  }

  #stopAwaiting(peerId: string, event?: string): void {
    for (const [id, pending] of this.#pending) {
      if (event !== undefined && pending.event !== event) continue;
      if (pending.awaiting.delete(peerId) && pending.awaiting.size === 0) this.#settle(id, pending);
    }
  }

  #settle(ackRequestId: string, pending: PendingPublish): void {
    this.#pending.delete(ackRequestId);
    const peerIds = pending.local ? [...pending.acked, this.host.localPeerId] : pending.acked;
    if (this.#metrics !== undefined) {
      this.#metrics.publishDuration.record(
        (this.host.scheduler.monotonicNow() - pending.started) / 1000,
        pending.failures.length === 0
          ? this.#publishAttributes!.ok
          : this.#publishAttributes!.failed("HAMOK_DELIVERY"),
      );
    }
    if (pending.failures.length === 0) {
      pending.span.end();
      pending.resolve(peerIds);
      return;
    }
    const names = pending.failures.map((f) => `${f.peerId} (${f.code}: ${f.message})`).join(", ");
    const error = new HamokDeliveryError(
      `event '${pending.event}' of emitter '${this.id}' failed on ${names}`,
      {
        acknowledgedPeerIds: peerIds,
        failures: pending.failures,
      },
    );
    failSpan(pending.span, error);
    pending.reject(error);
  }

  /** (Re-)arms the one timeout timer for `deadline`; `now` is the current monotonic time. */
  #armTimeout(deadline: number, now: number): void {
    // A timer may fire a little before the monotonic clock reaches the deadline: the sweep re-arms.
    this.#timer = this.host.scheduler.setTimeout(this.#sweep, Math.max(1, Math.ceil(deadline - now)));
  }

  /**
   * The timeout timer fired: every publish older than `requestTimeoutInMs` times out, and the timer
   * is armed for the oldest one left, or stays off. Publishes time out in the order they were made
   * (they all wait the same time), so the sweep stops at the first one still in time. A publish that
   * settles first cancels nothing: the timer finds it gone.
   */
  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = this.host.scheduler.monotonicNow();
    for (const [ackRequestId, pending] of this.#pending) {
      const deadline = pending.started + this.requestTimeoutInMs;
      if (deadline > now) {
        this.#armTimeout(deadline, now);
        return;
      }
      this.#timeout(ackRequestId, pending);
    }
  };

  #timeout(ackRequestId: string, pending: PendingPublish): void {
    this.#pending.delete(ackRequestId);
    const responded = pending.local ? [...pending.acked, this.host.localPeerId] : pending.acked;
    const missing = [...pending.awaiting];
    if (this.#metrics !== undefined) {
      this.#metrics.publishDuration.record(
        (this.host.scheduler.monotonicNow() - pending.started) / 1000,
        this.#publishAttributes!.failed("HAMOK_TIMEOUT"),
      );
    }
    const error = new HamokTimeoutError(
      `publish of '${pending.event}' on emitter '${this.id}' timed out after ${this.requestTimeoutInMs} ms; ` +
        `acknowledged: [${responded.join(", ")}], missing: [${missing.join(", ")}]`,
      { timeoutMs: this.requestTimeoutInMs, respondedPeerIds: responded, missingPeerIds: missing },
    );
    if (pending.span.isRecording()) {
      for (const peerId of missing) {
        pending.span.addEvent("missing", { [HAMOK_SPAN_ATTRIBUTES.peerId]: peerId });
      }
    }
    failSpan(pending.span, error);
    pending.reject(error);
  }
}

type AnyListener = (...args: unknown[]) => void;

function asAny(listener: unknown): AnyListener {
  return listener as AnyListener;
}

function checkEvent(event: unknown): void {
  if (typeof event !== "string" || event.length === 0) {
    throw new HamokConfigError(`an event name must be a non-empty string, got ${typeof event}`);
  }
  assertWellFormed("an event name", event, HamokConfigError);
}

function nonNegativeInteger(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0) {
    throw new HamokConfigError(
      `${name} must be a non-negative integer (0 = unlimited), got ${String(value)}`,
    );
  }
  return value;
}

type ImportPart = [string, [string, unknown][]][];

/** Splits a snapshot into parts of at most `maxKeys` events and `maxValues` subscribers (0 = unlimited). */
function splitImport<M>(snapshot: HamokEmitterSnapshot<M>, maxKeys: number, maxValues: number): ImportPart[] {
  const keys = maxKeys === 0 ? Infinity : maxKeys;
  const values = maxValues === 0 ? Infinity : maxValues;
  const parts: ImportPart[] = [];
  let part: ImportPart = [];
  let count = 0;
  const flush = () => {
    if (part.length > 0) parts.push(part);
    part = [];
    count = 0;
  };
  for (const entry of snapshot.subscriptions) {
    if (typeof entry?.event !== "string" || !Array.isArray(entry.subscribers)) {
      throw new HamokConfigError("every snapshot entry needs an event name and a subscribers array");
    }
    let subscribers: [string, unknown][] = [];
    for (const { peerId, metadata } of entry.subscribers) {
      if (count >= values) {
        part.push([entry.event, subscribers]);
        flush();
        subscribers = [];
      }
      if (subscribers.length === 0 && part.length >= keys) flush();
      subscribers.push([peerId, metadata ?? null]);
      count++;
    }
    if (subscribers.length > 0) {
      if (part.length >= keys) flush();
      part.push([entry.event, subscribers]);
    }
  }
  flush();
  return parts;
}
