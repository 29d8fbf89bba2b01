/**
 * A rogue NATS client for the adversarial tests: a raw `nats` connection to the cluster's server
 * that watches every subject of a cluster prefix like an eavesdropper (member ids, the leader,
 * event acknowledgement ids) and publishes well-formed forgeries built with the library's own
 * envelope codec, so only the peers' trust checks can stop them. It holds no cluster key.
 *
 * @module
 */

import { connect, type NatsConnection, type Subscription } from "nats";
import {
  decodeEnvelope,
  encodeEnvelope,
  type EventBody,
  type WireEnvelope,
} from "../../src/codec/envelope.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { AUTH_TAG_BYTES } from "../../src/codec/wire_auth.ts";
import type { RaftMessage } from "../../src/raft/types.ts";

/** An event envelope the rogue saw on an emit subject. */
export interface SeenEvent {
  readonly subject: string;
  readonly from: string;
  readonly body: EventBody;
}

/** The rogue client. */
export class Rogue {
  readonly nc: NatsConnection;
  /** `<prefix>` of the attacked cluster (`hamok.<clusterId>`). */
  readonly prefix: string;
  /** The cluster id forgeries are bound to by default. */
  readonly clusterId: string;
  /** Member id last seen per peer id (from hellos and Raft traffic). */
  readonly memberIds: Map<string, string> = new Map();
  /** Member id of the last sender of a heartbeat or append (the leader). */
  leaderMemberId: string | undefined;
  /** Highest Raft term seen on the wire. */
  maxTerm = 0;
  /** Called for every event envelope seen (to forge acknowledgements in time). */
  onEvent: ((event: SeenEvent) => void) | undefined;
  /** Messages seen that the rogue could decode (envelope with or without a tag). */
  decoded = 0;
  readonly #sub: Subscription;

  private constructor(nc: NatsConnection, clusterId: string) {
    this.nc = nc;
    this.clusterId = clusterId;
    this.prefix = `hamok.${clusterId}`;
    this.#sub = nc.subscribe(`${this.prefix}.>`, {
      callback: (_err, msg) => this.#watch(msg.subject, msg.data),
    });
  }

  /** Connects to `url` and starts watching `hamok.<clusterId>.>`. */
  static async connect(url: string, clusterId: string): Promise<Rogue> {
    // noEcho: the rogue does not watch its own floods
    const nc = await connect({ servers: url, noEcho: true, name: "rogue" });
    const rogue = new Rogue(nc, clusterId);
    await nc.flush();
    return rogue;
  }

  #watch(subject: string, data: Uint8Array): void {
    const envelope = openAny(data);
    if (envelope === undefined) return;
    this.decoded++;
    if (envelope.type === "hello") {
      this.memberIds.set(envelope.body.peerId, envelope.body.memberId);
    } else if (envelope.type === "raft") {
      const m = envelope.body;
      this.#learn(m.from);
      this.#learn(m.to);
      if (m.term > this.maxTerm) this.maxTerm = m.term;
      if (m.type === "heartbeat" || m.type === "append") this.leaderMemberId = m.from;
    } else if (envelope.type === "raft-shared") {
      // a leader's append or heartbeat for several followers at once
      const m = envelope.body.message;
      this.#learn(m.from);
      for (const to of envelope.body.recipients) this.#learn(to);
      if (m.term > this.maxTerm) this.maxTerm = m.term;
      this.leaderMemberId = m.from;
    } else if (envelope.type === "event") {
      this.onEvent?.({ subject, from: envelope.from, body: envelope.body });
    }
  }

  #learn(memberId: string): void {
    const slash = memberId.lastIndexOf("/");
    if (slash > 0) this.memberIds.set(memberId.slice(0, slash), memberId);
  }

  /** The member id of `peerId` the rogue has seen; throws if none. */
  memberOf(peerId: string): string {
    const id = this.memberIds.get(peerId);
    if (id === undefined) throw new Error(`the rogue has not seen a member id of ${peerId}`);
    return id;
  }

  /** Subject of a peer's inbox. */
  inbox(peerId: string): string {
    return `${this.prefix}.peer.${peerId}`;
  }

  /** The subject of the leader's shared appends and heartbeats. */
  get shared(): string {
    return `${this.prefix}.append`;
  }

  /** The broadcast subject. */
  get broadcast(): string {
    return `${this.prefix}.all`;
  }

  /** Subject of an emitter event (ids that are plain subject tokens). */
  emitSubject(emitterId: string, event: string): string {
    return `${this.prefix}.emit.${emitterId}.${event}`;
  }

  /**
   * Publishes a well-formed envelope. `cluster`: the binding (default this cluster's id;
   * `null`: unbound, as a pre-binding peer would send). `tag`: append 32 bytes of zeros where an
   * authentication tag would go.
   */
  send(
    subject: string,
    envelope: WireEnvelope,
    options: { cluster?: string | null; tag?: boolean } = {},
  ): void {
    const cluster = options.cluster === null ? undefined : options.cluster ?? this.clusterId;
    const bytes = encodeEnvelope(envelope, cluster);
    if (options.tag) {
      const sealed = new Uint8Array(bytes.byteLength + AUTH_TAG_BYTES);
      sealed.set(bytes);
      this.nc.publish(subject, sealed);
    } else {
      this.nc.publish(subject, bytes);
    }
  }

  /** Sends a Raft message to the peer of `message.to`, "from" the peer of `message.from`. */
  raft(message: RaftMessage, options: { cluster?: string | null; tag?: boolean } = {}): void {
    const toPeer = message.to.slice(0, message.to.lastIndexOf("/"));
    const fromPeer = message.from.slice(0, message.from.lastIndexOf("/"));
    this.send(this.inbox(toPeer), { type: "raft", from: fromPeer, body: message }, options);
  }

  /** Sends a request `op` with a CBOR payload to a peer's inbox, "from" `fromPeerId`. */
  request(toPeerId: string, fromPeerId: string, op: string, payload: unknown): void {
    this.send(this.inbox(toPeerId), {
      type: "request",
      from: fromPeerId,
      body: { requestId: `rogue-${crypto.randomUUID()}`, op, payload: encodeCbor(payload) },
    });
  }

  /** Flushes what was published to the server. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#sub.unsubscribe();
    await this.nc.close();
  }
}

/** Decodes a message as it is, or with its (unchecked) authentication tag cut off. */
function openAny(data: Uint8Array): WireEnvelope | undefined {
  try {
    return decodeEnvelope(data);
  } catch {
    // a sealed message: the tag authenticates, it does not hide anything
  }
  if (data.byteLength <= AUTH_TAG_BYTES) return undefined;
  try {
    return decodeEnvelope(data.subarray(0, data.byteLength - AUTH_TAG_BYTES));
  } catch {
    return undefined;
  }
}
