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
import { errorFromWire, HamokClosedError, HamokNoLeaderError, HamokTimeoutError } from "../errors.ts";
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
  /** Timeout of each request, in ms. Default 3000. */
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

interface Pending {
  readonly resolve: (payload: Uint8Array | undefined) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
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
  readonly #wire: PeerWire;
  readonly #pending = new Map<string, Pending>();
  readonly #broadcasts = new Map<string, (from: string, payload: Uint8Array) => void>();
  readonly #watchers = new Map<string, (body: EventBody, from: string) => void>();
  readonly #inbox: TransportSubscription;
  #counter = 0;

  /** Creates a client and subscribes to its inbox. */
  constructor(transport: Transport, options: HamokClientOptions = {}) {
    this.transport = transport;
    this.clientId = options.clientId ?? `hamok-cli-${crypto.randomUUID().slice(0, 8)}`;
    const prefix = options.subjectPrefix ?? ClusterSubjects.prefixFor(options.clusterId ?? "default");
    this.subjects = new ClusterSubjects(prefix);
    this.timeoutMs = options.timeoutMs ?? 3000;
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

  /**
   * Asks every member for its status on the broadcast subject and collects the answers for
   * `windowMs` (or until every member named in an answer has answered). Resolves with the views,
   * leader first; an empty array means no member answered.
   */
  async statusAll(windowMs: number = this.timeoutMs): Promise<HamokStatus[]> {
    const requestId = this.#nextId();
    const views = new Map<string, HamokStatus>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, windowMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#broadcasts.set(requestId, (_from, payload) => {
        let status: HamokStatus;
        try {
          status = decodeCbor(payload) as HamokStatus;
        } catch {
          return;
        }
        if (typeof status?.peerId !== "string") return;
        views.set(status.peerId, status);
        const named = new Set<string>();
        for (const view of views.values()) for (const m of view.members ?? []) named.add(m.peerId);
        if (named.size > 0 && [...named].every((peerId) => views.has(peerId))) done();
      });
      this.#sendTo(this.subjects.broadcast, requestId, CLIENT_STATUS_OP, new Uint8Array(0));
    }).finally(() => this.#broadcasts.delete(requestId));
    return [...views.values()].sort((a, b) => rank(a) - rank(b) || a.peerId.localeCompare(b.peerId));
  }

  /** One member's status. */
  async status(peerId: string): Promise<HamokStatus> {
    return decodeCbor((await this.request(peerId, CLIENT_STATUS_OP, {}))!) as HamokStatus;
  }

  /** The id of the leader, from the members' answers; rejects with `HamokNoLeaderError` without one. */
  async findLeader(): Promise<string> {
    const views = await this.statusAll();
    if (views.length === 0) {
      throw new HamokNoLeaderError(`no member of the cluster answered (${this.subjects.prefix})`);
    }
    const leader = views.find((v) => v.role === "leader")?.peerId ?? views.find((v) => v.leaderId)?.leaderId;
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
    const answer = decodeCbor((await this.request(peerId, CLIENT_MAP_READ_OP, { mapId, ...options }))!) as {
      size: number;
      revision: number;
      entries: [Encoded, Encoded, number][];
    };
    return {
      size: answer.size,
      revision: answer.revision,
      entries: answer.entries.map(([key, value, revision]) => ({ key, value, revision })),
    };
  }

  /** Sets (`value` given) or deletes a key through `peerId`; resolves with the previous encoded value. */
  async mapWrite(peerId: string, mapId: string, key: Encoded, value?: Encoded): Promise<Encoded | null> {
    const args = value === undefined ? { mapId, op: "delete", key } : { mapId, op: "set", key, value };
    const answer = decodeCbor((await this.request(peerId, CLIENT_MAP_WRITE_OP, args))!) as {
      previous: Encoded | null;
    };
    return answer.previous;
  }

  /** Publishes an event through `peerId`; resolves with the peers that acknowledged it. */
  async publish(peerId: string, emitterId: string, event: string, args: unknown[]): Promise<string[]> {
    const answer = decodeCbor(
      (await this.request(peerId, CLIENT_PUBLISH_OP, { emitterId, event, args }))!,
    ) as {
      peerIds: string[];
    };
    return answer.peerIds;
  }

  /**
   * Streams the committed commands of a map from `peerId` until the returned function is called.
   * The client renews the watch's lease while it runs; `onError` hears failed renewals.
   */
  async watchMap(
    peerId: string,
    mapId: string,
    onChange: (change: HamokClientMapChange) => void,
    onError: (error: Error) => void = () => {},
  ): Promise<() => void> {
    const watchId = `${this.clientId}:watch:${this.#nextId()}`;
    this.#watchers.set(watchId, (body, from) => {
      if (peerIdOfMember(from) !== peerId || !(body.payload instanceof Uint8Array)) return;
      try {
        const [index, args] = decodeCbor(body.payload) as [number, unknown];
        onChange({ index, op: body.event, args });
      } catch (error) {
        onError(error as Error);
      }
    });
    const renew = () => this.request(peerId, CLIENT_WATCH_OP, { mapId, watchId });
    let leaseMs: number;
    try {
      leaseMs = (decodeCbor((await renew())!) as { leaseMs: number }).leaseMs;
    } catch (error) {
      this.#watchers.delete(watchId);
      throw error;
    }
    const timer = setInterval(() => renew().catch(onError), Math.max(100, Math.floor(leaseMs / 3)));
    return () => {
      clearInterval(timer);
      this.#watchers.delete(watchId);
      this.request(peerId, CLIENT_UNWATCH_OP, { watchId }).catch(() => {});
    };
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
    return () => sub.unsubscribe();
  }

  /** Sends one client request to a member and resolves with the answer's payload. */
  request(peerId: string, op: string, args: unknown): Promise<Uint8Array | undefined> {
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
      this.#pending.set(requestId, { resolve, reject, timer });
      this.#sendTo(this.subjects.inbox(peerId), requestId, op, encodeCbor(args));
    });
  }

  /** Unsubscribes the inbox and fails pending requests; the transport stays open. */
  close(): void {
    this.#inbox.unsubscribe();
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new HamokClosedError("the client closed"));
    }
    this.#pending.clear();
    this.#watchers.clear();
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

  #nextId(): string {
    return `${this.clientId}:${++this.#counter}`;
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
      if (body.ok && body.payload !== undefined) broadcast(from, body.payload);
      return;
    }
    const pending = this.#pending.get(body.requestId);
    if (pending === undefined) return;
    this.#pending.delete(body.requestId);
    clearTimeout(pending.timer);
    if (body.ok) pending.resolve(body.payload);
    else {
      pending.reject(errorFromWire(body.error ?? { code: "HAMOK_ERROR", message: "request failed" }, from));
    }
  }
}

function rank(status: HamokStatus): number {
  return status.role === "leader" ? 0 : status.role === "follower" ? 1 : 2;
}
