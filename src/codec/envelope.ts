/**
 * The wire envelope: every message Hamok peers exchange is one CBOR value
 * `[version, type, from, body, cluster?]`, where `version` is {@linkcode PROTOCOL_VERSION}, `type` a small
 * integer naming the {@linkcode WireMessageType}, `from` the sending peer id and `body` a positional
 * array whose layout the type defines. {@linkcode decodeEnvelope} checks all of it and throws
 * {@linkcode HamokCodecError} for anything that does not fit.
 *
 * Adding a message type: add its body type to {@linkcode WireBodies} and its codec to `BODY_CODECS`
 * below (the compiler insists on both); give it the next unused wire code.
 *
 * Every future protocol version must keep the version as the first element of a CBOR array, so an
 * old peer can always tell "unknown version" from garbage.
 *
 * @module
 */

import { HamokCodecError, HamokConfigError } from "../errors.ts";
import type { AppendMessage, HeartbeatMessage, RaftMessage } from "../raft/types.ts";
import { decodeCbor, describeType, encodeCbor, messageOf } from "./cbor.ts";
import { packRaftMessage, unpackRaftMessage } from "./raft_body.ts";
import {
  arrayAt,
  boolAt,
  bytesAt,
  errorAt,
  idAt,
  listAt,
  MAX_WIRE_ID,
  packError,
  stringAt,
  stringListAt,
  uintAt,
} from "./wire_shape.ts";

/** The longest publisher incarnation an event may carry (receivers keep it per member). */
const MAX_INCARNATION_CHARS = 16;

/**
 * The wire protocol version written into every envelope. A peer drops envelopes of any other version.
 *
 * @example
 * ```ts
 * import { PROTOCOL_VERSION } from "@hamok/core/internal";
 * console.log(PROTOCOL_VERSION); // 1
 * ```
 */
export const PROTOCOL_VERSION = 1;

/** The largest acks message a peer takes (a sender splits larger batches: `MAX_ACKS_PER_MESSAGE`). */
export const ACKS_MAX_BYTES = 1024 * 1024;
/** The largest hello a peer takes (five ids of at most 320 characters, a term and flags). */
export const HELLO_MAX_BYTES = 16 * 1024;
/** By type code (one CBOR byte in the envelope's head): the limit of types smaller than any message. */
const SMALL_TYPE_LIMITS: Readonly<Record<number, number>> = { 1: HELLO_MAX_BYTES, 6: ACKS_MAX_BYTES };

/**
 * Default upper bound, in bytes, of an envelope {@linkcode decodeEnvelope} accepts: 8 MiB.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_ENVELOPE_BYTES } from "@hamok/core/internal";
 * console.log(DEFAULT_MAX_ENVELOPE_BYTES); // 8388608
 * ```
 */
export const DEFAULT_MAX_ENVELOPE_BYTES: number = 8 * 1024 * 1024;

/**
 * A failure reported to a peer (in a response or an ack): a stable code and a message.
 *
 * @example
 * ```ts
 * import type { WireError } from "@hamok/core/internal";
 * const error: WireError = { code: "HAMOK_NOT_LEADER", message: "peer b is not the leader" };
 * ```
 */
export interface WireError {
  /** A stable machine-readable code (for example a `HamokErrorCode`). */
  readonly code: string;
  /** A human-readable message. */
  readonly message: string;
}

/**
 * Discovery broadcast: who I am, which cluster I belong to, whom I believe leads it.
 *
 * @example
 * ```ts
 * import type { HelloBody } from "@hamok/core/internal";
 * const hello: HelloBody = { clusterId: "demo", peerId: "p1", memberId: "m1", term: 3, joined: true };
 * ```
 */
export interface HelloBody {
  /** The cluster the sender belongs to (or wants to join). */
  readonly clusterId: string;
  /** The sender's peer id (its inbox). */
  readonly peerId: string;
  /** The sender's Raft member id. */
  readonly memberId: string;
  /** The leader the sender knows of, if any. */
  readonly leaderId?: string | undefined;
  /** The sender's current Raft term. */
  readonly term: number;
  /** True once the sender is a member of the cluster. */
  readonly joined: boolean;
  /** The identity of the sender's cluster, made when it was bootstrapped (members only). */
  readonly clusterUid?: string | undefined;
  /**
   * True if the sender is the only member of its cluster, which has no application writes: it
   * would dissolve that cluster to join another one with the same name (sent with `clusterUid` only).
   */
  readonly lone?: boolean | undefined;
}

/**
 * Peer-to-peer request (join, forwarded proposal, ...); answered by a {@linkcode ResponseBody}.
 *
 * @example
 * ```ts
 * import type { RequestBody } from "@hamok/core/internal";
 * const req: RequestBody = { requestId: "r1", op: "join", payload: new Uint8Array() };
 * ```
 */
export interface RequestBody {
  /** Correlates the response with this request. */
  readonly requestId: string;
  /** The operation asked for. */
  readonly op: string;
  /** Operation-specific bytes. */
  readonly payload: Uint8Array;
}

/**
 * The answer to a {@linkcode RequestBody}.
 *
 * @example
 * ```ts
 * import type { ResponseBody } from "@hamok/core/internal";
 * const ok: ResponseBody = { requestId: "r1", ok: true, payload: new Uint8Array([1]) };
 * const failed: ResponseBody = { requestId: "r2", ok: false, error: { code: "HAMOK_TIMEOUT", message: "late" } };
 * ```
 */
export interface ResponseBody {
  /** The request this answers. */
  readonly requestId: string;
  /** True if the operation succeeded. */
  readonly ok: boolean;
  /** Operation-specific result bytes. */
  readonly payload?: Uint8Array | undefined;
  /** Why the operation failed. */
  readonly error?: WireError;
}

/**
 * An emitted event, fanned out to the subscribers of `event` on `emitterId`.
 *
 * @example
 * ```ts
 * import type { EventBody } from "@hamok/core/internal";
 * const ev: EventBody = { emitterId: "chat", event: "message", payload: new Uint8Array([1]), seq: 1 };
 * ```
 */
export interface EventBody {
  /** The emitter the event belongs to. */
  readonly emitterId: string;
  /** The event name. */
  readonly event: string;
  /** The arguments, as encoded by the emitter's payload codec (bytes or a string). */
  readonly payload: Uint8Array | string;
  /** The publisher's sequence number for this emitter. */
  readonly seq: number;
  /** Set when the publisher awaits acks; echoed in each {@linkcode AckBody}. */
  readonly ackRequestId?: string | undefined;
  /**
   * The publisher's incarnation when its member id outlives a process (a restart on durable storage):
   * sequences are ordered within one incarnation, so a restarted publisher whose clock went back is
   * not taken for a stale one. Absent for a member's first process.
   */
  readonly incarnation?: string | undefined;
}

/**
 * A subscriber's acknowledgement of an {@linkcode EventBody} that asked for one.
 *
 * @example
 * ```ts
 * import type { AckBody } from "@hamok/core/internal";
 * const ack: AckBody = { emitterId: "chat", ackRequestId: "a1", peerId: "p2", ok: true };
 * ```
 */
export interface AckBody {
  /** The emitter of the acknowledged event. */
  readonly emitterId: string;
  /** The `ackRequestId` of the acknowledged event. */
  readonly ackRequestId: string;
  /** The acknowledging peer. */
  readonly peerId: string;
  /** False if a local listener failed (see `error`). */
  readonly ok: boolean;
  /** Why handling failed. */
  readonly error?: WireError;
}

/**
 * Several successful acknowledgements from one subscriber to one publisher, coalesced: a subscriber
 * that handles a burst of events answers them in one message.
 *
 * @example
 * ```ts
 * import type { AcksBody } from "@hamok/core/internal";
 * const acks: AcksBody = { peerId: "p2", acks: [["chat", "a1"], ["chat", "a2"]] };
 * ```
 */
export interface AcksBody {
  /** The acknowledging peer. */
  readonly peerId: string;
  /** `[emitterId, ackRequestId]` of every acknowledged event, in the order they were handled. */
  readonly acks: readonly (readonly [emitterId: string, ackRequestId: string])[];
}

/**
 * Most recipients one {@linkcode SharedRaftBody} names: the decoder refuses a longer list, and a
 * leader with more in-sync followers publishes one shared message per group of this many.
 *
 * @example
 * ```ts
 * import { MAX_SHARED_RECIPIENTS } from "@hamok/core/internal";
 * console.log(MAX_SHARED_RECIPIENTS); // 128
 * ```
 */
export const MAX_SHARED_RECIPIENTS = 128;

/**
 * One append or heartbeat a leader publishes once, on the subject every member subscribes to, for
 * several followers at once: the message is the same for each of them but for its recipient. On the
 * wire the message's `to` is empty (a decoded one has `to: ""`); each named follower handles it as
 * if it had been addressed to it alone, and everybody else ignores it.
 *
 * @example
 * ```ts
 * import type { SharedRaftBody } from "@hamok/core/internal";
 * const shared: SharedRaftBody = {
 *   recipients: ["b/1a2b3c4d", "c/5e6f7a8b"],
 *   message: { type: "heartbeat", from: "a/0f1e2d3c", to: "", term: 3, commit: 41 },
 * };
 * ```
 */
export interface SharedRaftBody {
  /** The member ids it is for: 1 to {@linkcode MAX_SHARED_RECIPIENTS}. */
  readonly recipients: readonly string[];
  /** The append or heartbeat (its `to` is not sent). */
  readonly message: AppendMessage | HeartbeatMessage;
}

/**
 * The body type of each wire message type. Extend this interface (and `BODY_CODECS`) to add one.
 *
 * @example
 * ```ts
 * import type { WireBodies } from "@hamok/core/internal";
 * type Hello = WireBodies["hello"]; // HelloBody
 * ```
 */
export interface WireBodies {
  /** A Raft protocol message. */
  raft: RaftMessage;
  /** Discovery broadcast. */
  hello: HelloBody;
  /** Peer-to-peer request. */
  request: RequestBody;
  /** Answer to a request. */
  response: ResponseBody;
  /** Emitter fan-out. */
  event: EventBody;
  /** Acknowledgement of an event. */
  ack: AckBody;
  /** Coalesced successful acknowledgements. */
  acks: AcksBody;
  /** A leader's append or heartbeat for several followers, published once. */
  "raft-shared": SharedRaftBody;
}

/**
 * The name of a wire message type.
 *
 * @example
 * ```ts
 * import type { WireMessageType } from "@hamok/core/internal";
 * const t: WireMessageType = "raft";
 * ```
 */
export type WireMessageType = keyof WireBodies;

/**
 * An envelope of one given message type.
 *
 * @example
 * ```ts
 * import type { WireEnvelopeOf } from "@hamok/core/internal";
 * const env: WireEnvelopeOf<"request"> = {
 *   type: "request",
 *   from: "p1",
 *   body: { requestId: "r1", op: "join", payload: new Uint8Array() },
 * };
 * ```
 */
export interface WireEnvelopeOf<K extends WireMessageType> {
  /** The message type; selects the body type. */
  readonly type: K;
  /** The sending peer id. */
  readonly from: string;
  /** The message. */
  readonly body: WireBodies[K];
  /**
   * The cluster id the message is bound to (peers drop messages of other clusters). Encoded as a
   * fifth element when present.
   */
  readonly cluster?: string;
}

/**
 * Any wire message: a discriminated union on `type`.
 *
 * @example
 * ```ts
 * import { decodeEnvelope, type WireEnvelope } from "@hamok/core/internal";
 * function handle(env: WireEnvelope): void {
 *   if (env.type === "event") console.log(env.body.event);
 * }
 * ```
 */
export type WireEnvelope = { [K in WireMessageType]: WireEnvelopeOf<K> }[WireMessageType];

/** How a body of type `B` is packed for the wire and checked when unpacked. */
interface BodyCodec<B> {
  /** The wire code of the type (unique, never reused). */
  readonly code: number;
  /** Turns the body into its wire value. */
  pack(body: B): unknown;
  /** Checks the wire value and turns it back into a body; throws `TypeError` if it does not fit. */
  unpack(value: unknown): B;
}

/** One codec per message type: the only place that knows the wire layout of the bodies. */
const BODY_CODECS: { readonly [K in WireMessageType]: BodyCodec<WireBodies[K]> } = {
  raft: { code: 0, pack: packRaftMessage, unpack: unpackRaftMessage },
  // [clusterId, peerId, memberId, term, joined, leaderId?] or [..., joined, leaderId | null, clusterUid,
  // lone?] (lone only when true)
  hello: {
    code: 1,
    pack: (b) =>
      b.clusterUid !== undefined
        ? b.lone === true
          ? [b.clusterId, b.peerId, b.memberId, b.term, b.joined, b.leaderId ?? null, b.clusterUid, true]
          : [b.clusterId, b.peerId, b.memberId, b.term, b.joined, b.leaderId ?? null, b.clusterUid]
        : b.leaderId !== undefined
        ? [b.clusterId, b.peerId, b.memberId, b.term, b.joined, b.leaderId]
        : [b.clusterId, b.peerId, b.memberId, b.term, b.joined],
    unpack: (v) => {
      const a = arrayAt(v, "hello", 5, 8);
      const clusterId = idAt(a[0], "hello.clusterId");
      const peerId = idAt(a[1], "hello.peerId");
      const memberId = idAt(a[2], "hello.memberId");
      const term = uintAt(a[3], "hello.term");
      const joined = boolAt(a[4], "hello.joined");
      if (a.length === 5) return { clusterId, peerId, memberId, term, joined };
      if (a.length === 6) {
        return { clusterId, peerId, memberId, term, joined, leaderId: idAt(a[5], "hello.leaderId") };
      }
      const clusterUid = idAt(a[6], "hello.clusterUid");
      const base = a[5] === null ? { clusterId, peerId, memberId, term, joined, clusterUid } : {
        clusterId,
        peerId,
        memberId,
        term,
        joined,
        leaderId: idAt(a[5], "hello.leaderId"),
        clusterUid,
      };
      return a.length === 8 ? { ...base, lone: boolAt(a[7], "hello.lone") } : base;
    },
  },
  // [requestId, op, payload]
  request: {
    code: 2,
    pack: (b) => [b.requestId, b.op, b.payload],
    unpack: (v) => {
      const a = arrayAt(v, "request", 3);
      return {
        requestId: stringAt(a[0], "request.requestId"),
        op: stringAt(a[1], "request.op"),
        payload: bytesAt(a[2], "request.payload"),
      };
    },
  },
  // [requestId, ok], [requestId, ok, payload] or [requestId, ok, payload | null, [code, message]]
  response: {
    code: 3,
    pack: (b) =>
      b.error !== undefined
        ? [b.requestId, b.ok, b.payload ?? null, packError(b.error)]
        : b.payload !== undefined
        ? [b.requestId, b.ok, b.payload]
        : [b.requestId, b.ok],
    unpack: (v) => {
      const a = arrayAt(v, "response", 2, 4);
      const requestId = stringAt(a[0], "response.requestId");
      const ok = boolAt(a[1], "response.ok");
      if (a.length === 2) return { requestId, ok };
      const payload = a.length === 4 && a[2] === null ? undefined : bytesAt(a[2], "response.payload");
      if (a.length === 3) return { requestId, ok, payload: payload as Uint8Array };
      const error = errorAt(a[3], "response.error");
      return payload === undefined ? { requestId, ok, error } : { requestId, ok, payload, error };
    },
  },
  // [emitterId, event, payload, seq, ackRequestId?] or [emitterId, event, payload, seq, ackRequestId | null, incarnation]
  event: {
    code: 4,
    pack: (b) =>
      b.incarnation !== undefined
        ? [b.emitterId, b.event, b.payload, b.seq, b.ackRequestId ?? null, b.incarnation]
        : b.ackRequestId !== undefined
        ? [b.emitterId, b.event, b.payload, b.seq, b.ackRequestId]
        : [b.emitterId, b.event, b.payload, b.seq],
    unpack: (v) => {
      const a = arrayAt(v, "event", 4, 6);
      const emitterId = stringAt(a[0], "event.emitterId");
      const event = stringAt(a[1], "event.event");
      const payload = typeof a[2] === "string" ? a[2] : bytesAt(a[2], "event.payload");
      const seq = uintAt(a[3], "event.seq");
      if (a.length === 4) return { emitterId, event, payload, seq };
      if (a.length === 5) {
        return { emitterId, event, payload, seq, ackRequestId: stringAt(a[4], "event.ackRequestId") };
      }
      const incarnation = stringAt(a[5], "event.incarnation");
      if (incarnation.length > MAX_INCARNATION_CHARS) {
        throw new HamokCodecError("event.incarnation is too long");
      }
      return a[4] === null
        ? { emitterId, event, payload, seq, incarnation }
        : { emitterId, event, payload, seq, ackRequestId: stringAt(a[4], "event.ackRequestId"), incarnation };
    },
  },
  // [emitterId, ackRequestId, peerId, ok, [code, message]?]
  ack: {
    code: 5,
    pack: (b) =>
      b.error !== undefined
        ? [b.emitterId, b.ackRequestId, b.peerId, b.ok, packError(b.error)]
        : [b.emitterId, b.ackRequestId, b.peerId, b.ok],
    unpack: (v) => {
      const a = arrayAt(v, "ack", 4, 5);
      const emitterId = stringAt(a[0], "ack.emitterId");
      const ackRequestId = stringAt(a[1], "ack.ackRequestId");
      const peerId = stringAt(a[2], "ack.peerId");
      const ok = boolAt(a[3], "ack.ok");
      return a.length === 4
        ? { emitterId, ackRequestId, peerId, ok }
        : { emitterId, ackRequestId, peerId, ok, error: errorAt(a[4], "ack.error") };
    },
  },
  // [peerId, [emitterId, ackRequestId, emitterId, ackRequestId, ...]]
  acks: {
    code: 6,
    pack: (b) => {
      const flat: string[] = new Array(b.acks.length * 2);
      for (let i = 0; i < b.acks.length; i++) {
        const ack = b.acks[i]!; // i < length
        flat[2 * i] = ack[0];
        flat[2 * i + 1] = ack[1];
      }
      return [b.peerId, flat];
    },
    unpack: (v) => {
      const a = arrayAt(v, "acks", 2);
      const peerId = stringAt(a[0], "acks.peerId");
      const flat = listAt(a[1], "acks.acks");
      if (flat.length === 0 || flat.length % 2 !== 0) {
        throw new TypeError(`acks.acks: expected a non-empty even number of strings, got ${flat.length}`);
      }
      const acks: [string, string][] = new Array(flat.length / 2);
      for (let i = 0; i < acks.length; i++) {
        acks[i] = [stringAt(flat[2 * i], "acks.acks[]"), stringAt(flat[2 * i + 1], "acks.acks[]")];
      }
      return { peerId, acks };
    },
  },
  // [[recipient, ...], raft message with an empty `to`]
  "raft-shared": {
    code: 7,
    pack: (b) => {
      const message = packRaftMessage(b.message);
      message[2] = "";
      return [b.recipients, message];
    },
    unpack: (v) => {
      const a = arrayAt(v, "raft-shared", 2);
      const list = listAt(a[0], "raft-shared.recipients");
      if (list.length === 0 || list.length > MAX_SHARED_RECIPIENTS) {
        throw new TypeError(
          `raft-shared.recipients: expected 1..${MAX_SHARED_RECIPIENTS} member ids, got ${list.length}`,
        );
      }
      const recipients = stringListAt(list, "raft-shared.recipients");
      const message = unpackRaftMessage(a[1]);
      if (message.type !== "append" && message.type !== "heartbeat") {
        throw new TypeError(`raft-shared.message: expected an append or a heartbeat, got ${message.type}`);
      }
      return { recipients, message };
    },
  },
};

/** Codec and type name by wire code. */
const BY_CODE: ReadonlyArray<{ type: WireMessageType; codec: BodyCodec<unknown> } | undefined> = (() => {
  const table: { type: WireMessageType; codec: BodyCodec<unknown> }[] = [];
  for (const type of Object.keys(BODY_CODECS) as WireMessageType[]) {
    const codec = BODY_CODECS[type] as BodyCodec<unknown>;
    if (table[codec.code] !== undefined) throw new Error(`duplicate wire code ${codec.code}`);
    table[codec.code] = { type, codec };
  }
  return table;
})();

/**
 * Encodes an envelope into its wire bytes.
 *
 * The result is a fresh view into cbor-x's output buffer (never overwritten by later encodes);
 * `Uint8Array` fields are copied into it once. Throws {@linkcode HamokCodecError} if the envelope
 * has an unknown type or holds a value CBOR cannot encode. The body is not validated here (it is
 * typed); a malformed body is rejected by the receiver's {@linkcode decodeEnvelope}. `cluster`
 * (default: `envelope.cluster`) binds the message to a cluster id.
 *
 * @example
 * ```ts
 * import { decodeEnvelope, encodeEnvelope } from "@hamok/core/internal";
 * const bytes = encodeEnvelope({
 *   type: "event",
 *   from: "peer-1",
 *   body: { emitterId: "chat", event: "message", payload: new Uint8Array([1, 2]), seq: 7 },
 * });
 * const env = decodeEnvelope(bytes);
 * if (env.type === "event") console.log(env.body.seq); // 7
 * ```
 */
export function encodeEnvelope(
  envelope: WireEnvelope,
  cluster: string | undefined = envelope.cluster,
): Uint8Array {
  const codec = BODY_CODECS[envelope.type] as BodyCodec<unknown> | undefined;
  if (codec === undefined || !Object.hasOwn(BODY_CODECS, envelope.type)) {
    const type: unknown = envelope.type;
    const shown = typeof type === "string" ? JSON.stringify(type) : describeType(type);
    throw new HamokCodecError(`cannot encode envelope: unknown message type ${shown}`, {
      cause: new TypeError(`message type ${shown}`),
    });
  }
  try {
    return cluster === undefined
      ? encodeCbor([PROTOCOL_VERSION, codec.code, envelope.from, codec.pack(envelope.body)])
      : encodeCbor([PROTOCOL_VERSION, codec.code, envelope.from, codec.pack(envelope.body), cluster]);
  } catch (error) {
    throw new HamokCodecError(
      `cannot encode ${envelope.type} envelope: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

/**
 * Options of {@linkcode decodeEnvelope}.
 *
 * @example
 * ```ts
 * import type { DecodeEnvelopeOptions } from "@hamok/core/internal";
 * const options: DecodeEnvelopeOptions = { maxBytes: 1024 * 1024 };
 * ```
 */
export interface DecodeEnvelopeOptions {
  /** Largest envelope accepted, in bytes. Default {@linkcode DEFAULT_MAX_ENVELOPE_BYTES} (8 MiB). */
  readonly maxBytes?: number;
}

function reject(reason: string, cause: unknown): never {
  throw new HamokCodecError(`cannot decode envelope: ${reason}`, { cause });
}

/**
 * Decodes and checks wire bytes.
 *
 * Throws {@linkcode HamokCodecError} (its `cause` says more) for: empty, truncated or trailing
 * bytes; bytes that are not CBOR; a CBOR value that is not an envelope; an unknown protocol version;
 * an unknown message type; a body that does not fit its type; more than `maxBytes` bytes. Throws
 * {@linkcode HamokConfigError} if `maxBytes` is not a positive number.
 *
 * Byte fields of the result (entry data, payloads) are views into `bytes`, not copies: do not
 * mutate `bytes` while they are in use. They are plain `Uint8Array`s on every runtime (also when
 * `bytes` is a Node `Buffer`).
 *
 * @example
 * ```ts
 * import { HamokCodecError } from "@hamok/core";
 * import { decodeEnvelope, encodeEnvelope } from "@hamok/core/internal";
 * const bytes = encodeEnvelope({
 *   type: "hello",
 *   from: "p1",
 *   body: { clusterId: "demo", peerId: "p1", memberId: "m1", term: 0, joined: false },
 * });
 * console.log(decodeEnvelope(bytes).type); // "hello"
 * try {
 *   decodeEnvelope(bytes.subarray(0, 5));
 * } catch (err) {
 *   console.log(err instanceof HamokCodecError); // true
 * }
 * ```
 */
export function decodeEnvelope(bytes: Uint8Array, options?: DecodeEnvelopeOptions): WireEnvelope {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
  if (typeof maxBytes !== "number" || !(maxBytes > 0)) {
    throw new HamokConfigError(`maxBytes must be a positive number, got ${String(maxBytes)}`);
  }
  if (!(bytes instanceof Uint8Array)) {
    reject(`expected a Uint8Array, got ${describeType(bytes)}`, new TypeError("not a Uint8Array"));
  }
  if (bytes.byteLength === 0) reject("empty message", new RangeError("0 bytes"));
  if (bytes.byteLength > maxBytes) {
    reject(
      `${bytes.byteLength} bytes exceed the limit of ${maxBytes}`,
      new RangeError(`${bytes.byteLength} > ${maxBytes}`),
    );
  }
  // Small message types have a smaller limit, read from the envelope's head before anything is
  // decoded: a list decodes to about 45 times its bytes in heap, so 8 MiB of acks took ~370 MB
  const head = bytes[0];
  if ((head === 0x84 || head === 0x85) && bytes[1] === PROTOCOL_VERSION) {
    const limit = SMALL_TYPE_LIMITS[bytes[2]!];
    if (limit !== undefined && bytes.byteLength > limit) {
      reject(
        `${bytes.byteLength} bytes exceed the limit of ${limit} for its message type`,
        new RangeError(`${bytes.byteLength} > ${limit}`),
      );
    }
  }
  let value: unknown;
  try {
    value = decodeCbor(bytes, true);
  } catch (error) {
    reject(`malformed CBOR: ${messageOf(error)}`, error);
  }
  if (!Array.isArray(value) || value.length === 0) {
    reject(`not an envelope (${describeType(value)})`, new TypeError("expected [version, type, from, body]"));
  }
  const version = value[0];
  if (version !== PROTOCOL_VERSION) {
    if (typeof version === "number" && Number.isInteger(version)) {
      reject(
        `unknown protocol version ${version}`,
        new RangeError(`version ${version} != ${PROTOCOL_VERSION}`),
      );
    }
    reject(
      `not an envelope (version is ${describeType(version)})`,
      new TypeError("expected an integer version"),
    );
  }
  if (value.length !== 4 && value.length !== 5) {
    reject(
      `not an envelope (${value.length} elements)`,
      new TypeError("expected [version, type, from, body, cluster?]"),
    );
  }
  const cluster = value[4];
  if (value.length === 5 && typeof cluster !== "string") {
    reject(
      `cluster is ${describeType(cluster)}, not a string`,
      new TypeError("expected a string cluster id"),
    );
  }
  const code = value[1];
  const entry = typeof code === "number" && Number.isInteger(code) && code >= 0 ? BY_CODE[code] : undefined;
  if (entry === undefined) {
    const shown = typeof code === "number" ? String(code) : describeType(code);
    reject(`unknown message type ${shown}`, new RangeError(`message type ${shown}`));
  }
  const from = value[2];
  if (typeof from !== "string") {
    reject(`sender is ${describeType(from)}, not a string`, new TypeError("expected a string sender"));
  }
  if (from.length > MAX_WIRE_ID) {
    // a peer id takes at most 253 characters: a sender no peer could be (and one a client's request
    // ids, which name it, could not carry)
    reject(`sender of ${from.length} characters`, new RangeError(`sender longer than ${MAX_WIRE_ID}`));
  }
  if (typeof cluster === "string" && cluster.length > MAX_WIRE_ID) {
    reject(
      `cluster id of ${cluster.length} characters`,
      new RangeError(`cluster longer than ${MAX_WIRE_ID}`),
    );
  }
  let body: unknown;
  try {
    body = entry.codec.unpack(value[3]);
  } catch (error) {
    reject(`malformed ${entry.type} body: ${messageOf(error)}`, error);
  }
  return (value.length === 5
    ? { type: entry.type, from, body, cluster }
    : { type: entry.type, from, body }) as WireEnvelope;
}
