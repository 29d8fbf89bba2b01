/**
 * A client of a Hamok cluster that is NOT a member: it talks to members with the client ops of
 * `src/cluster/client_ops.ts` over any {@linkcode Transport}, from its own inbox. The `hamok` CLI
 * is built on it; so can a health check or an admin tool.
 *
 * @module
 */

import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import { decodeEnvelope, type EventBody, type ResponseBody, type WireEnvelope } from "../codec/envelope.ts";
import { type ClusterKey, clusterKeysOf } from "../codec/wire_auth.ts";
import { PeerCounters } from "../cluster/peer_counters.ts";
import { PeerWire } from "../cluster/peer_wire.ts";
import { cborPayloadCodec, decodePayload } from "../codec/payload_codec.ts";
import {
  CLIENT_MAP_READ_OP,
  CLIENT_MAP_WRITE_OP,
  CLIENT_PUBLISH_OP,
  CLIENT_STATUS_OP,
  CLIENT_UNWATCH_OP,
  CLIENT_WATCH_OP,
} from "../cluster/client_ops.ts";
import { ClusterSubjects } from "../cluster/subjects.ts";
import { peerIdOfMember } from "../cluster/member_id.ts";
import type { HamokStatus } from "../cluster/status.ts";
import type { Encoded } from "../collections/map_state.ts";
import {
  errorFromWire,
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokError,
  HamokNoLeaderError,
  HamokOutcomeUnknownError,
  HamokTimeoutError,
} from "../errors.ts";
import type { Transport, TransportSubscription } from "../transport/transport.ts";

/**
 * Options of a {@linkcode HamokClient}.
 *
 * @example
 * ```ts
 * import type { HamokClientOptions } from "@hamok/core";
 * const options: HamokClientOptions = { clusterId: "orders", timeoutMs: 2000 };
 * ```
 */
export interface HamokClientOptions {
  /** The cluster to talk to. Default `"default"`. */
  clusterId?: string;
  /** Subject prefix, when the cluster uses a custom one. Default `hamok.<clusterId>`. */
  subjectPrefix?: string;
  /**
   * Timeout of each request, in ms. Default {@linkcode HAMOK_CLIENT_DEFAULT_TIMEOUT_MS} (6000): longer
   * than a member's own default write timeout (`requestTimeoutInMs`, 5000), so a write the member is
   * still driving is not reported as failed first. Also the default window of `statusAll` when given;
   * without it that window is 3000 ms.
   */
  timeoutMs?: number;
  /** The client's id (its inbox). Default `hamok-cli-<random>`. */
  clientId?: string;
  /** The cluster key, when the cluster authenticates its messages (see `HamokConfig.clusterKey`). */
  clusterKey?: ClusterKey | readonly ClusterKey[];
}

/**
 * One entry read from a map: the encodings (as the map's codecs produced them) and the revision.
 *
 * @example
 * ```ts
 * import type { HamokClientMapEntry } from "@hamok/core";
 * const entry: HamokClientMapEntry = { key: "apples", value: "10", revision: 7 };
 * ```
 */
export interface HamokClientMapEntry {
  /** The encoded key. */
  readonly key: Encoded;
  /** The encoded value. */
  readonly value: Encoded;
  /** Log index that last wrote it. */
  readonly revision: number;
}

/**
 * A committed map command streamed by a watch.
 *
 * @example
 * ```ts
 * import type { HamokClientMapChange } from "@hamok/core";
 * const change: HamokClientMapChange = { index: 9, op: "set", args: ["apples", "11"] };
 * ```
 */
export interface HamokClientMapChange {
  /** Log index of the command. */
  readonly index: number;
  /** The map operation (`set`, `delete`, `insert`, `clear`, ...). */
  readonly op: string;
  /** Its positional arguments, keys and values encoded. */
  readonly args: unknown;
}

/**
 * A received emitter event.
 *
 * @example
 * ```ts
 * import type { HamokClientEvent } from "@hamok/core";
 * const ev: HamokClientEvent = { event: "greet", fromPeerId: "a", args: ["world"] };
 * ```
 */
export interface HamokClientEvent {
  /** The event name. */
  readonly event: string;
  /** The publishing peer. */
  readonly fromPeerId: string;
  /** The arguments, decoded with CBOR (or the raw payload when that fails). */
  readonly args: unknown[] | Uint8Array | string;
}

/**
 * A gap in a map watch: changes may have been applied that the watch did not deliver. The caller
 * should re-read the map (`mapRead`) and go on from the changes that follow.
 *
 * - `"snapshot"`: the member caught up by installing a snapshot (`index`: the snapshot's index);
 * - `"recreated"`: a renewal found no watch on the member (it restarted, or the lease ran out) and
 *   made a new one;
 * - `"sequence"`: an event's sequence number is not the one after the last (`expected`, `got`): an
 *   event was lost on the way, or the member's watch was remade.
 *
 * @example
 * ```ts
 * import type { HamokClientWatchGap } from "@hamok/core";
 * const gap: HamokClientWatchGap = { reason: "snapshot", index: 1200 };
 * ```
 */
export interface HamokClientWatchGap {
  /** Why the stream may have skipped changes. */
  readonly reason: "snapshot" | "recreated" | "sequence";
  /** The snapshot's log index, for `"snapshot"`. */
  readonly index?: number;
  /** The sequence number that was expected, for `"sequence"`. */
  readonly expected?: number;
  /** The sequence number that came, for `"sequence"`. */
  readonly got?: number;
}

/**
 * Options of {@linkcode HamokClient.watchMap}.
 *
 * @example
 * ```ts
 * import type { HamokClientWatchOptions } from "@hamok/core";
 * const options: HamokClientWatchOptions = { onGap: (gap) => console.log("re-read the map:", gap.reason) };
 * ```
 */
export interface HamokClientWatchOptions {
  /**
   * Hears gaps in the stream (see {@linkcode HamokClientWatchGap}). Without it, a gap goes to
   * `onError` as a `HamokError` whose message starts with `watch gap`.
   */
  onGap?: (gap: HamokClientWatchGap) => void;
}

/**
 * Options of {@linkcode HamokClient.mapWrite}.
 *
 * @example
 * ```ts
 * import type { HamokClientWriteOptions } from "@hamok/core";
 * const options: HamokClientWriteOptions = { requestId: "orders-import:42" };
 * ```
 */
export interface HamokClientWriteOptions {
  /**
   * The write's request id (at most 128 characters). The member proposes the write under it (within
   * this client's namespace), so sending the same write again with the same id, after a
   * `HamokOutcomeUnknownError`, applies it at most once and answers with the first application's
   * result. Default: a fresh random id.
   */
  requestId?: string;
}

/**
 * Default request timeout of a {@linkcode HamokClient}, in ms: above a member's default write
 * timeout (5000 ms), so the member gives up first and says so.
 *
 * @example
 * ```ts
 * import { HAMOK_CLIENT_DEFAULT_TIMEOUT_MS } from "@hamok/core";
 * console.log(HAMOK_CLIENT_DEFAULT_TIMEOUT_MS); // 6000
 * ```
 */
export const HAMOK_CLIENT_DEFAULT_TIMEOUT_MS = 6000;
/** Default window of `statusAll` when no timeout was given. */
const DEFAULT_STATUS_WINDOW_MS = 3000;
/** Views one `statusAll` round collects at most (answers beyond are ignored). */
const MAX_STATUS_VIEWS = 1024;
/** Bounds of the period of a watch's renewals, in ms. */
const MIN_RENEW_MS = 100;
const MAX_RENEW_MS = 60_000;
/** Longest request id a caller may give a write. */
const MAX_WRITE_REQUEST_ID = 128;

interface Pending {
  /** The peer the request went to: only its answer settles the request. */
  readonly peerId: string;
  readonly resolve: (payload: Uint8Array | undefined) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

interface Broadcast {
  readonly onAnswer: (from: string, payload: Uint8Array) => void;
  readonly end: () => void;
}

/**
 * A client of a cluster that is not a member of it.
 *
 * @example
 * ```ts
 * import { HamokClient, NatsTransport } from "@hamok/core";
 * const transport = await NatsTransport.connect({ servers: "nats://127.0.0.1:4222" });
 * const client = new HamokClient(transport, { clusterId: "orders" });
 * const views = await client.statusAll();
 * console.log(views.map((s) => `${s.peerId} ${s.role}`));
 * client.close();
 * await transport.close();
 * ```
 */
export class HamokClient {
  /** The transport the client talks through (not closed by {@linkcode close}). */
  readonly transport: Transport;
  /** The client's id: members answer to its inbox. */
  readonly clientId: string;
  /** The cluster's subjects. */
  readonly subjects: ClusterSubjects;
  /** Timeout of each request, in ms. */
  readonly timeoutMs: number;
  /** What the client dropped (messages that failed the wire checks: wrong key, other cluster, ...). */
  readonly counters: PeerCounters = new PeerCounters();
  /** The default window of {@linkcode statusAll}, in ms. */
  readonly statusWindowMs: number;
  readonly #wire: PeerWire;
  readonly #pending = new Map<string, Pending>();
  readonly #broadcasts = new Map<string, Broadcast>();
  readonly #watchers = new Map<string, (body: EventBody, from: string) => void>();
  /** The stop functions of the open watches and subscriptions ({@linkcode close} runs them). */
  readonly #stops = new Set<() => void>();
  readonly #inbox: TransportSubscription;
  #counter = 0;
  #closed = false;

  /** Creates a client and subscribes to its inbox. */
  constructor(transport: Transport, options: HamokClientOptions = {}) {
    this.transport = transport;
    this.clientId = options.clientId ?? `hamok-cli-${crypto.randomUUID().slice(0, 8)}`;
    const prefix = options.subjectPrefix ?? ClusterSubjects.prefixFor(options.clusterId ?? "default");
    this.subjects = new ClusterSubjects(prefix);
    this.timeoutMs = options.timeoutMs ?? HAMOK_CLIENT_DEFAULT_TIMEOUT_MS;
    this.statusWindowMs = options.timeoutMs ?? DEFAULT_STATUS_WINDOW_MS;
    this.#wire = new PeerWire({
      clusterId: options.clusterId ?? "default",
      keys: options.clusterKey === undefined ? undefined : clusterKeysOf(options.clusterKey),
      counters: this.counters,
      peerId: this.clientId,
      warn: () => {},
    });
    this.#inbox = transport.subscribe(this.subjects.inbox(this.clientId), (message) => {
      const envelope = this.#wire.decode(message.data);
      if (envelope === undefined) return;
      if (envelope.type === "response") this.#onResponse(envelope.from, envelope.body);
      else if (envelope.type === "event") {
        this.#watchers.get(envelope.body.emitterId)?.(envelope.body, envelope.from);
      }
    });
  }

  /** True once {@linkcode close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Asks every member for its status on the broadcast subject and collects the answers for
   * `windowMs` (or until every member named in an answer has answered). Resolves with the views,
   * leader first; an empty array means no member answered. An answer counts only when its sender
   * is the peer it describes; at most 1024 views are collected.
   */
  async statusAll(windowMs: number = this.statusWindowMs): Promise<HamokStatus[]> {
    this.#assertOpen();
    const requestId = this.#nextId();
    const views = new Map<string, HamokStatus>();
    /** Every peer id some answer names as a member, and how many of them have not answered. */
    const named = new Set<string>();
    let unanswered = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, windowMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      const onAnswer = (from: string, payload: Uint8Array) => {
        if (views.size >= MAX_STATUS_VIEWS) return done();
        let status: HamokStatus;
        try {
          status = decodeCbor(payload) as HamokStatus;
        } catch {
          return;
        }
        if (!isStatus(status) || status.peerId !== peerIdOfMember(from)) return;
        if (views.has(status.peerId)) {
          views.set(status.peerId, status);
          return;
        }
        views.set(status.peerId, status);
        if (named.has(status.peerId)) unanswered--;
        for (const member of status.members) {
          const peerId = (member as { peerId?: unknown } | null)?.peerId;
          if (typeof peerId !== "string" || named.has(peerId)) continue;
          named.add(peerId);
          if (!views.has(peerId)) unanswered++;
        }
        if (named.size > 0 && unanswered === 0) done();
      };
      this.#broadcasts.set(requestId, { onAnswer, end: done });
      this.#sendTo(this.subjects.broadcast, requestId, CLIENT_STATUS_OP, new Uint8Array(0));
    }).finally(() => this.#broadcasts.delete(requestId));
    return [...views.values()].sort((a, b) => rank(a) - rank(b) || a.peerId.localeCompare(b.peerId));
  }

  /** One member's status. */
  async status(peerId: string): Promise<HamokStatus> {
    const status = decodeAnswer(await this.request(peerId, CLIENT_STATUS_OP, {}), CLIENT_STATUS_OP, peerId);
    if (!isStatus(status) || status.peerId !== peerId) {
      throw new HamokCodecError(`the status ${peerId} answered is not its own`);
    }
    return status;
  }

  /**
   * The id of the leader, from the members' answers; rejects with `HamokNoLeaderError` without one.
   * Among answers that claim to lead, the one the most other answers name as their leader wins.
   */
  async findLeader(): Promise<string> {
    const views = await this.statusAll();
    if (views.length === 0) {
      throw new HamokNoLeaderError(`no member of the cluster answered (${this.subjects.prefix})`);
    }
    const leader = leaderOf(views);
    if (leader === undefined) throw new HamokNoLeaderError("the cluster has no leader");
    return leader;
  }

  /**
   * Reads entries of a map through `peerId` (all of them up to `limit`, or the given encoded keys).
   * The member answers from its own replica (`consistency: "local"`, the default: it may lag the
   * leader) or, with `consistency: "linearizable"`, after a read barrier through the leader (every
   * write acknowledged before the call is in the answer; bounded by the member's request timeout).
   */
  async mapRead(
    peerId: string,
    mapId: string,
    options: { keys?: Encoded[]; limit?: number; consistency?: "local" | "linearizable" } = {},
  ): Promise<{ size: number; revision: number; entries: HamokClientMapEntry[] }> {
    const answer = decodeAnswer(
      await this.request(peerId, CLIENT_MAP_READ_OP, { mapId, ...options }),
      CLIENT_MAP_READ_OP,
      peerId,
    ) as { mapId?: unknown; size?: unknown; revision?: unknown; entries?: unknown };
    // members before the answer carried `mapId` are accepted without it
    if (
      (answer.mapId !== undefined && answer.mapId !== mapId) || !isCount(answer.size) ||
      !isCount(answer.revision) || !Array.isArray(answer.entries) || !answer.entries.every(isEntry)
    ) {
      throw new HamokCodecError(`${peerId} answered a read of map '${mapId}' with something else`);
    }
    return {
      size: answer.size,
      revision: answer.revision,
      entries: (answer.entries as [Encoded, Encoded, number][]).map(([key, value, revision]) => ({
        key,
        value,
        revision,
      })),
    };
  }

  /**
   * Sets (`value` given) or deletes a key through `peerId`; resolves with the previous encoded value.
   * The write carries a request id (`options.requestId`, else a random one): a write whose answer
   * did not come in time rejects with `HamokOutcomeUnknownError` carrying it (the write may or may
   * not be applied), and the same write sent again with that id is applied at most once.
   */
  async mapWrite(
    peerId: string,
    mapId: string,
    key: Encoded,
    value?: Encoded,
    options: HamokClientWriteOptions = {},
  ): Promise<Encoded | null> {
    const requestId = options.requestId ?? `${this.clientId}:w:${crypto.randomUUID()}`;
    if (typeof requestId !== "string" || requestId.length === 0 || requestId.length > MAX_WRITE_REQUEST_ID) {
      throw new HamokConfigError(
        `a write's request id is a string of 1 to ${MAX_WRITE_REQUEST_ID} characters`,
      );
    }
    const args = value === undefined
      ? { mapId, op: "delete", key, requestId }
      : { mapId, op: "set", key, value, requestId };
    let payload: Uint8Array | undefined;
    try {
      payload = await this.request(peerId, CLIENT_MAP_WRITE_OP, args);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === "HAMOK_TIMEOUT" || code === "HAMOK_OUTCOME_UNKNOWN") {
        throw new HamokOutcomeUnknownError(
          `the ${args.op} on map '${mapId}' through ${peerId} got no answer in time; it may or may not be applied (send it again with request id '${requestId}' to apply it at most once)`,
          { requestId },
          { cause: error },
        );
      }
      if (error instanceof HamokClosedError) {
        throw new HamokClosedError(error.message, { requestId, cause: error });
      }
      throw error;
    }
    const answer = decodeAnswer(payload, CLIENT_MAP_WRITE_OP, peerId) as { previous?: unknown };
    if (answer.previous !== null && !isEncoded(answer.previous)) {
      throw new HamokCodecError(`${peerId} answered a write of map '${mapId}' with something else`);
    }
    return answer.previous;
  }

  /** Publishes an event through `peerId`; resolves with the peers that acknowledged it. */
  async publish(peerId: string, emitterId: string, event: string, args: unknown[]): Promise<string[]> {
    const answer = decodeAnswer(
      await this.request(peerId, CLIENT_PUBLISH_OP, { emitterId, event, args }),
      CLIENT_PUBLISH_OP,
      peerId,
    ) as { peerIds?: unknown };
    if (!Array.isArray(answer.peerIds) || !answer.peerIds.every((id) => typeof id === "string")) {
      throw new HamokCodecError(`${peerId} answered a publish with something else`);
    }
    return answer.peerIds;
  }

  /**
   * Streams the committed commands of a map from `peerId` until the returned function (or
   * {@linkcode close}) is called: only commands that changed the map, each once. The client renews
   * the watch's lease while it runs; `onError` hears failed renewals. The stream checks the
   * events' sequence numbers and hears the member's resets: when changes may have been skipped (the
   * member installed a snapshot, restarted, or lost the watch; an event was lost) it calls
   * `options.onGap` (else `onError`), and the caller should re-read the map.
   */
  async watchMap(
    peerId: string,
    mapId: string,
    onChange: (change: HamokClientMapChange) => void,
    onError: (error: Error) => void = () => {},
    options: HamokClientWatchOptions = {},
  ): Promise<() => void> {
    this.#assertOpen();
    const watchId = `${this.clientId}:watch:${this.#nextId()}`;
    let stopped = false;
    let lastSeq = 0;
    const gap = (found: HamokClientWatchGap) => {
      if (stopped) return;
      if (options.onGap !== undefined) return options.onGap(found);
      onError(
        new HamokError(
          `watch gap on map '${mapId}' through ${peerId} (${found.reason}): changes may have been skipped; re-read the map`,
        ),
      );
    };
    this.#watchers.set(watchId, (body, from) => {
      if (stopped || peerIdOfMember(from) !== peerId || !(body.payload instanceof Uint8Array)) return;
      if (typeof body.seq === "number") {
        if (body.seq !== lastSeq + 1) gap({ reason: "sequence", expected: lastSeq + 1, got: body.seq });
        lastSeq = body.seq;
      }
      try {
        const [index, args] = decodeCbor(body.payload) as [number, unknown];
        if (typeof index !== "number") throw new HamokCodecError("a watch event carries no log index");
        if (body.event === WATCH_RESET_EVENT) gap({ reason: "snapshot", index });
        else onChange({ index, op: body.event, args });
      } catch (error) {
        onError(error as Error);
      }
    });
    const renew = async (): Promise<boolean> => {
      const answer = decodeAnswer(
        await this.request(peerId, CLIENT_WATCH_OP, { mapId, watchId }),
        CLIENT_WATCH_OP,
        peerId,
      ) as { leaseMs?: unknown; created?: unknown };
      if (typeof answer.leaseMs !== "number" || !Number.isFinite(answer.leaseMs) || answer.leaseMs <= 0) {
        throw new HamokCodecError(`${peerId} answered a watch without a valid lease`);
      }
      leaseMs = answer.leaseMs;
      return answer.created === true;
    };
    let leaseMs = 0;
    try {
      await renew();
    } catch (error) {
      this.#watchers.delete(watchId);
      throw error;
    }
    const period = Math.min(MAX_RENEW_MS, Math.max(MIN_RENEW_MS, Math.floor(leaseMs / 3)));
    const timer = setInterval(() => {
      renew().then(
        (created) => {
          if (!created || stopped) return;
          // the member lost the watch (a restart, a lease that ran out): its sequence starts again
          lastSeq = 0;
          gap({ reason: "recreated" });
        },
        (error) => {
          if (!stopped) onError(error as Error);
        },
      );
    }, period);
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      this.#watchers.delete(watchId);
      this.#stops.delete(stop);
      // best effort, answered or not
      if (!this.#closed) {
        this.#sendTo(this.subjects.inbox(peerId), this.#nextId(), CLIENT_UNWATCH_OP, encodeCbor({ watchId }));
      }
    };
    if (this.#closed) {
      stop();
      throw new HamokClosedError("the client closed");
    }
    this.#stops.add(stop);
    return stop;
  }

  /**
   * Listens to the events of an emitter (or one event of it) directly on their subjects. Events
   * travel only while some member subscribes to them, so this hears what the members hear.
   */
  subscribe(
    emitterId: string,
    event: string | undefined,
    listener: (event: HamokClientEvent) => void,
  ): () => void {
    this.#assertOpen();
    const subject = event === undefined
      ? `${this.subjects.event(emitterId, "x").slice(0, -2)}.>`
      : this.subjects.event(emitterId, event);
    const sub = this.transport.subscribe(subject, (message) => {
      const envelope = this.#decodeEvent(message.data);
      if (envelope === undefined) return;
      if (envelope.type !== "event" || envelope.body.emitterId !== emitterId) return;
      let args: unknown[] | Uint8Array | string;
      try {
        args = decodePayload(cborPayloadCodec, envelope.body.payload);
      } catch {
        args = envelope.body.payload;
      }
      listener({ event: envelope.body.event, fromPeerId: peerIdOfMember(envelope.from), args });
    });
    const stop = () => {
      this.#stops.delete(stop);
      sub.unsubscribe();
    };
    this.#stops.add(stop);
    return stop;
  }

  /**
   * Sends one client request to a member and resolves with the answer's payload. Only an answer
   * from `peerId` settles it. Rejects with `HamokClosedError` once the client is closed.
   */
  request(peerId: string, op: string, args: unknown): Promise<Uint8Array | undefined> {
    if (this.#closed) return Promise.reject(new HamokClosedError("the client closed"));
    const requestId = this.#nextId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(
          new HamokTimeoutError(`'${op}' to ${peerId} got no answer within ${this.timeoutMs} ms`, {
            timeoutMs: this.timeoutMs,
            missingPeerIds: [peerId],
          }),
        );
      }, this.timeoutMs);
      this.#pending.set(requestId, { peerId, resolve, reject, timer });
      this.#sendTo(this.subjects.inbox(peerId), requestId, op, encodeCbor(args));
    });
  }

  /**
   * Stops every watch (telling the members, best effort) and subscription, ends `statusAll` rounds,
   * fails pending requests with `HamokClosedError` and unsubscribes the inbox; the transport stays
   * open. Later calls reject with `HamokClosedError`.
   */
  close(): void {
    if (this.#closed) return;
    for (const stop of [...this.#stops]) stop();
    this.#closed = true;
    this.#inbox.unsubscribe();
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new HamokClosedError("the client closed"));
    }
    this.#pending.clear();
    for (const broadcast of this.#broadcasts.values()) broadcast.end();
    this.#watchers.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new HamokClosedError("the client closed");
  }

  /** Events from emitters that do not bind their envelopes to the cluster yet are accepted without a key. */
  #decodeEvent(data: Uint8Array): WireEnvelope | undefined {
    const envelope = this.#wire.decode(data);
    if (envelope !== undefined || this.#wire.authenticated) return envelope;
    try {
      const plain = decodeEnvelope(data);
      return plain.cluster === undefined ? plain : undefined;
    } catch {
      return undefined;
    }
  }

  /** `<clientId>:<counter>.<64 random bits>`: unique, and not guessable from the ones before. */
  #nextId(): string {
    const random = crypto.getRandomValues(new Uint32Array(2));
    return `${this.clientId}:${++this.#counter}.${random[0]!.toString(36)}${random[1]!.toString(36)}`;
  }

  #sendTo(subject: string, requestId: string, op: string, payload: Uint8Array): void {
    this.transport.publish(
      subject,
      this.#wire.encode({ type: "request", from: this.clientId, body: { requestId, op, payload } }),
    );
  }

  #onResponse(from: string, body: ResponseBody): void {
    const broadcast = this.#broadcasts.get(body.requestId);
    if (broadcast !== undefined) {
      if (body.ok && body.payload !== undefined) broadcast.onAnswer(from, body.payload);
      return;
    }
    const pending = this.#pending.get(body.requestId);
    // an answer from anyone but the peer asked is not its answer (and leaves the request waiting)
    if (pending === undefined || peerIdOfMember(from) !== pending.peerId) return;
    this.#pending.delete(body.requestId);
    clearTimeout(pending.timer);
    if (body.ok) pending.resolve(body.payload);
    else {
      pending.reject(errorFromWire(body.error ?? { code: "HAMOK_ERROR", message: "request failed" }, from));
    }
  }
}

/** The event a member sends a watch when the map may have changed without it (a snapshot install). */
const WATCH_RESET_EVENT = "reset";

function decodeAnswer(payload: Uint8Array | undefined, op: string, peerId: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = payload === undefined ? undefined : decodeCbor(payload);
  } catch (error) {
    throw new HamokCodecError(`the answer of ${peerId} to '${op}' is not CBOR`, { cause: error });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HamokCodecError(`the answer of ${peerId} to '${op}' is not a CBOR map`);
  }
  return value as Record<string, unknown>;
}

function isStatus(value: unknown): value is HamokStatus {
  const status = value as Partial<HamokStatus> | null;
  return typeof status?.peerId === "string" && typeof status.role === "string" &&
    Array.isArray(status.members);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

function isEncoded(value: unknown): value is Encoded {
  return typeof value === "string" || value instanceof Uint8Array;
}

function isEntry(value: unknown): boolean {
  return Array.isArray(value) && value.length === 3 && isEncoded(value[0]) && isEncoded(value[1]) &&
    typeof value[2] === "number";
}

/**
 * The leader among `views`: of the views that claim to lead, the one the most other views name as
 * their `leaderId` (then the higher term, then the first); without one, the leader the views name.
 *
 * @example
 * ```ts ignore
 * const leader = leaderOf(await client.statusAll());
 * ```
 */
export function leaderOf(views: readonly HamokStatus[]): string | undefined {
  let best: HamokStatus | undefined;
  let bestVotes = -1;
  for (const view of views) {
    if (view.role !== "leader") continue;
    let votes = 0;
    for (const other of views) if (other !== view && other.leaderId === view.peerId) votes++;
    if (votes > bestVotes || (votes === bestVotes && view.term > best!.term)) {
      best = view;
      bestVotes = votes;
    }
  }
  return best?.peerId ?? views.find((v) => typeof v.leaderId === "string")?.leaderId;
}

function rank(status: HamokStatus): number {
  return status.role === "leader" ? 0 : status.role === "follower" ? 1 : 2;
}
