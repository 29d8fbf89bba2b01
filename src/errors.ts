/**
 * The error classes of Hamok. Every error the library throws or rejects with is a
 * {@linkcode HamokError} with a stable {@linkcode HamokError.code}; wrapped failures keep the
 * original error as `cause`.
 *
 * @module
 */

/** Stable machine-readable codes of {@linkcode HamokError}. */
export type HamokErrorCode =
  | "HAMOK_ERROR"
  | "HAMOK_TIMEOUT"
  | "HAMOK_CLOSED"
  | "HAMOK_NO_LEADER"
  | "HAMOK_NOT_LEADER"
  | "HAMOK_CODEC"
  | "HAMOK_CONFIG"
  | "HAMOK_ABORTED"
  | "HAMOK_OUTCOME_UNKNOWN"
  | "HAMOK_TRANSPORT"
  | "HAMOK_DELIVERY"
  | "HAMOK_LISTENER"
  | "HAMOK_CONFLICT"
  | "HAMOK_RATE_LIMITED"
  | "HAMOK_PAYLOAD_TOO_LARGE"
  | "HAMOK_REMOVED"
  | "HAMOK_DUPLICATE_PEER"
  | "HAMOK_CLUSTER_CONFLICT"
  | "HAMOK_NOT_JOINED"
  | "HAMOK_STORAGE"
  | "HAMOK_STORAGE_CORRUPT"
  | "HAMOK_STORAGE_FULL"
  | "HAMOK_STORAGE_LOCKED"
  | "HAMOK_STORAGE_MISMATCH";

/** Options accepted by every {@linkcode HamokError} constructor. */
export interface HamokErrorOptions {
  /** The underlying error, if this one wraps another. */
  cause?: unknown;
}

/**
 * Base class of every error thrown by Hamok.
 *
 * @example
 * ```ts
 * import { HamokError, type HamokEmitter } from "@hamok/core";
 * declare const emitter: HamokEmitter<{ event: [n: number] }>;
 * try {
 *   await emitter.publish("event", 1);
 * } catch (err) {
 *   if (err instanceof HamokError) console.log(err.code);
 * }
 * ```
 */
export class HamokError extends Error {
  /** A stable code that identifies the kind of failure. */
  readonly code: HamokErrorCode;

  /** Creates an error with a message, a code (default `HAMOK_ERROR`) and an optional cause. */
  constructor(message: string, code: HamokErrorCode = "HAMOK_ERROR", options?: HamokErrorOptions) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An operation that waits on the network did not complete in time.
 *
 * @example
 * ```ts
 * import { HamokTimeoutError } from "@hamok/core";
 * const err = new HamokTimeoutError("no answer within 5000 ms", { timeoutMs: 5000 });
 * console.log(err.code, err.timeoutMs); // HAMOK_TIMEOUT 5000
 * ```
 */
export class HamokTimeoutError extends HamokError {
  /** How long the operation waited, in milliseconds. */
  readonly timeoutMs: number;
  /** Peers that answered before the timeout (for fan-out operations). */
  readonly respondedPeerIds: readonly string[];
  /** Peers that were still awaited when the timeout fired (for fan-out operations). */
  readonly missingPeerIds: readonly string[];

  /** Creates a timeout error; `respondedPeerIds` and `missingPeerIds` default to empty. */
  constructor(
    message: string,
    details: { timeoutMs: number; respondedPeerIds?: readonly string[]; missingPeerIds?: readonly string[] },
    options?: HamokErrorOptions,
  ) {
    super(message, "HAMOK_TIMEOUT", options);
    this.timeoutMs = details.timeoutMs;
    this.respondedPeerIds = details.respondedPeerIds ?? [];
    this.missingPeerIds = details.missingPeerIds ?? [];
  }
}

/**
 * The object (peer, collection, transport, subscription) was closed before or during the call.
 *
 * @example
 * ```ts
 * import { HamokClosedError } from "@hamok/core";
 * throw new HamokClosedError("the emitter 'chat' is closed");
 * ```
 */
export class HamokClosedError extends HamokError {
  /**
   * The request id of a write that was pending when the peer closed, if any: it may or may not have
   * been applied, and retrying it with the same request id (on another peer) applies it at most once.
   */
  readonly requestId: string | undefined;

  /** Creates a closed error (with the request id of the write it interrupted, if any). */
  constructor(message: string, options?: HamokErrorOptions & { requestId?: string }) {
    super(message, "HAMOK_CLOSED", options);
    this.requestId = options?.requestId;
  }
}

/**
 * No leader is known, so an operation that needs one cannot proceed.
 *
 * @example
 * ```ts
 * import { HamokNoLeaderError } from "@hamok/core";
 * throw new HamokNoLeaderError("no leader known for cluster 'demo'");
 * ```
 */
export class HamokNoLeaderError extends HamokError {
  /** Creates a no-leader error. */
  constructor(message: string, options?: HamokErrorOptions) {
    super(message, "HAMOK_NO_LEADER", options);
  }
}

/**
 * The operation must run on the leader and this peer is not the leader.
 *
 * @example
 * ```ts
 * import { HamokNotLeaderError } from "@hamok/core";
 * throw new HamokNotLeaderError("peer b is not the leader", { leaderId: "a" });
 * ```
 */
export class HamokNotLeaderError extends HamokError {
  /** The leader this peer knows of, if any. */
  readonly leaderId: string | undefined;

  /** Creates a not-leader error naming the known leader, if any. */
  constructor(message: string, details: { leaderId?: string } = {}, options?: HamokErrorOptions) {
    super(message, "HAMOK_NOT_LEADER", options);
    this.leaderId = details.leaderId;
  }
}

/**
 * Bytes could not be decoded or a value could not be encoded.
 *
 * @example
 * ```ts
 * import { HamokCodecError } from "@hamok/core";
 * throw new HamokCodecError("unknown protocol version 9");
 * ```
 */
export class HamokCodecError extends HamokError {
  /** Creates a codec error. */
  constructor(message: string, options?: HamokErrorOptions) {
    super(message, "HAMOK_CODEC", options);
  }
}

/**
 * A configuration value or an argument is invalid, or the API was misused.
 *
 * @example
 * ```ts
 * import { HamokConfigError } from "@hamok/core";
 * throw new HamokConfigError("emitterId must be a non-empty string");
 * ```
 */
export class HamokConfigError extends HamokError {
  /** Creates a configuration error. */
  constructor(message: string, options?: HamokErrorOptions) {
    super(message, "HAMOK_CONFIG", options);
  }
}

/**
 * The operation was aborted (by an `AbortSignal`, by `leave()` or by `close()`).
 *
 * @example
 * ```ts
 * import { HamokAbortedError } from "@hamok/core";
 * throw new HamokAbortedError("join aborted by leave()");
 * ```
 */
export class HamokAbortedError extends HamokError {
  /** Creates an aborted error. */
  constructor(message: string, options?: HamokErrorOptions) {
    super(message, "HAMOK_ABORTED", options);
  }
}

/**
 * A write was sent but its outcome is unknown (a timeout or a leader change while it was in
 * flight): it may or may not have been applied. Retrying with the same request id applies it at
 * most once.
 *
 * @example
 * ```ts
 * import { HamokOutcomeUnknownError } from "@hamok/core";
 * throw new HamokOutcomeUnknownError("leader lost while set('k') was in flight", { requestId: "r1" });
 * ```
 */
export class HamokOutcomeUnknownError extends HamokError {
  /** The request id of the write whose outcome is unknown. */
  readonly requestId: string;

  /** Creates an outcome-unknown error for the given request id. */
  constructor(message: string, details: { requestId: string }, options?: HamokErrorOptions) {
    super(message, "HAMOK_OUTCOME_UNKNOWN", options);
    this.requestId = details.requestId;
  }
}

/**
 * The transport failed (connection refused, lost, or an operation on it failed).
 *
 * @example
 * ```ts
 * import { HamokTransportError } from "@hamok/core";
 * throw new HamokTransportError("cannot connect to nats://127.0.0.1:4222");
 * ```
 */
export class HamokTransportError extends HamokError {
  /** Creates a transport error. */
  constructor(message: string, options?: HamokErrorOptions) {
    super(message, "HAMOK_TRANSPORT", options);
  }
}

/** Why one peer failed to take a delivered message. */
export interface HamokDeliveryFailure {
  /** The peer that failed. */
  readonly peerId: string;
  /** The {@linkcode HamokErrorCode} it reported (for example `HAMOK_CODEC`). */
  readonly code: string;
  /** Its description of the failure. */
  readonly message: string;
}

/**
 * Some remote peers received a published event but could not process it (for example they could
 * not decode its payload). Names who acknowledged and who failed, and why.
 *
 * @example
 * ```ts
 * import { HamokDeliveryError, type HamokEmitter } from "@hamok/core";
 * declare const emitter: HamokEmitter<{ event: [n: number] }>;
 * try {
 *   await emitter.publish("event", 1);
 * } catch (err) {
 *   if (err instanceof HamokDeliveryError) console.log(err.failures.map((f) => f.peerId));
 * }
 * ```
 */
export class HamokDeliveryError extends HamokError {
  /** Peers that acknowledged the event. */
  readonly acknowledgedPeerIds: readonly string[];
  /** Peers that reported a failure. */
  readonly failures: readonly HamokDeliveryFailure[];

  /** Creates a delivery error. */
  constructor(
    message: string,
    details: { acknowledgedPeerIds: readonly string[]; failures: readonly HamokDeliveryFailure[] },
    options?: HamokErrorOptions,
  ) {
    super(message, "HAMOK_DELIVERY", options);
    this.acknowledgedPeerIds = details.acknowledgedPeerIds;
    this.failures = details.failures;
  }
}

/**
 * A listener of a collection (an emitter's event, a map's change event, ...) threw. The other
 * listeners still ran; the error is reported on the peer's `error` event with the thrown value as
 * `cause`.
 *
 * @example
 * ```ts
 * import { type Hamok, HamokListenerError } from "@hamok/core";
 * declare const hamok: Hamok;
 * hamok.on("error", (err) => {
 *   if (err instanceof HamokListenerError) console.log(err.collectionId, err.event, err.cause);
 * });
 * ```
 */
export class HamokListenerError extends HamokError {
  /** The id of the collection (emitter, map, ...) whose listener threw. */
  readonly collectionId: string;
  /** The event being delivered. */
  readonly event: string;

  /** Creates a listener error. */
  constructor(
    message: string,
    details: { collectionId: string; event: string },
    options?: HamokErrorOptions,
  ) {
    super(message, "HAMOK_LISTENER", options);
    this.collectionId = details.collectionId;
    this.event = details.event;
  }
}

/**
 * A compare-and-set by revision failed: the entry's revision (the log index of its last write) was
 * not the expected one, so nothing was written. Read the entry again and retry if it still applies.
 * `actualRevision` is 0 when the entry does not exist.
 *
 * @example
 * ```ts
 * import { HamokConflictError, type HamokMap } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * const entry = map.getEntry("stock");
 * try {
 *   await map.set("stock", entry!.value - 1, { ifRevision: entry!.revision });
 * } catch (err) {
 *   if (err instanceof HamokConflictError) console.log("changed meanwhile, now at", err.actualRevision);
 * }
 * ```
 */
export class HamokConflictError extends HamokError {
  /** The revision the write expected (0: expected the entry to be absent). */
  readonly expectedRevision: number;
  /** The revision the entry had when the write was applied (0: absent). */
  readonly actualRevision: number;

  /** Creates a conflict error naming the expected and the actual revision. */
  constructor(
    message: string,
    details: { expectedRevision: number; actualRevision: number },
    options?: HamokErrorOptions,
  ) {
    super(message, "HAMOK_CONFLICT", options);
    this.expectedRevision = details.expectedRevision;
    this.actualRevision = details.actualRevision;
  }
}

/**
 * A client request was refused because its sender sent too many in a short time.
 *
 * @example
 * ```ts
 * import { HamokRateLimitedError } from "@hamok/core";
 * const err = new HamokRateLimitedError("too many client requests from cli-1");
 * console.log(err.code); // HAMOK_RATE_LIMITED
 * ```
 */
export class HamokRateLimitedError extends HamokError {
  /** Creates the error. */
  constructor(message: string, options?: HamokErrorOptions) {
    super(message, "HAMOK_RATE_LIMITED", options);
  }
}

/**
 * A message this peer would have to send is larger than the largest one it may send (the NATS
 * server's `max_payload`, the memory bus's limit, or the envelope limit). Nothing was written: the
 * write never entered the log.
 *
 * @example
 * ```ts
 * import { HamokPayloadTooLargeError } from "@hamok/core";
 * const err = new HamokPayloadTooLargeError("set('k') is too large", { size: 2_000_000, limit: 1_048_576 });
 * console.log(err.code, err.size > err.limit); // HAMOK_PAYLOAD_TOO_LARGE true
 * ```
 */
export class HamokPayloadTooLargeError extends HamokError {
  /** The size of the message, in bytes (an estimate within a few bytes of framing). */
  readonly size: number;
  /** The largest message this peer may send, in bytes. */
  readonly limit: number;

  /** Creates a payload-too-large error naming the size and the limit. */
  constructor(message: string, details: { size: number; limit: number }, options?: HamokErrorOptions) {
    super(message, "HAMOK_PAYLOAD_TOO_LARGE", options);
    this.size = details.size;
    this.limit = details.limit;
  }
}

/**
 * This peer was removed from the cluster (it was silent for longer than `peerTimeoutMs`, for example
 * while its process was paused) while a write of its was pending. The write may or may not have been
 * applied: retry it with the same `requestId` once the peer joined again.
 *
 * @example
 * ```ts
 * import { HamokRemovedError } from "@hamok/core";
 * const err = new HamokRemovedError("removed from the cluster", { requestId: "m1:7" });
 * console.log(err.code, err.requestId); // HAMOK_REMOVED m1:7
 * ```
 */
export class HamokRemovedError extends HamokError {
  /** The request id of the interrupted write, if the error is about one. */
  readonly requestId: string | undefined;

  /** Creates a removed error. */
  constructor(message: string, details: { requestId?: string } = {}, options?: HamokErrorOptions) {
    super(message, "HAMOK_REMOVED", options);
    this.requestId = details.requestId;
  }
}

/**
 * `join()` found a live member of the cluster with this peer's id: two processes were started with
 * the same `peerId`. The running member is left alone; give this one another id.
 *
 * @example
 * ```ts
 * import { HamokDuplicatePeerError } from "@hamok/core";
 * const err = new HamokDuplicatePeerError("peer 'b' is already a live member", { peerId: "b" });
 * console.log(err.code, err.peerId); // HAMOK_DUPLICATE_PEER b
 * ```
 */
export class HamokDuplicatePeerError extends HamokError {
  /** The peer id in use. */
  readonly peerId: string;

  /** Creates a duplicate-peer error. */
  constructor(message: string, details: { peerId: string }, options?: HamokErrorOptions) {
    super(message, "HAMOK_DUPLICATE_PEER", options);
    this.peerId = details.peerId;
  }
}

/**
 * Two clusters with different identities were heard on one subject prefix and cluster id: a second
 * cluster was bootstrapped (for example by peers started with `bootstrap: "auto"` on both sides of a
 * partition). Reported on the peer's `error` event; an operator must decide which one to keep.
 *
 * @example
 * ```ts
 * import { HamokClusterConflictError } from "@hamok/core";
 * const err = new HamokClusterConflictError("two clusters named 'orders'", { identities: ["u1", "u2"] });
 * console.log(err.code, err.identities.length); // HAMOK_CLUSTER_CONFLICT 2
 * ```
 */
export class HamokClusterConflictError extends HamokError {
  /** The cluster identities heard (this peer's own first, when it has one). */
  readonly identities: readonly string[];

  /** Creates a cluster-conflict error. */
  constructor(message: string, details: { identities: readonly string[] }, options?: HamokErrorOptions) {
    super(message, "HAMOK_CLUSTER_CONFLICT", options);
    this.identities = details.identities;
  }
}

/**
 * The operation needs a member of a cluster, and this peer has not called `join()` (or left).
 *
 * @example
 * ```ts
 * import { HamokNotJoinedError } from "@hamok/core";
 * throw new HamokNotJoinedError("call join() before writing");
 * ```
 */
export class HamokNotJoinedError extends HamokError {
  /** Creates a not-joined error. */
  constructor(message: string, options?: HamokErrorOptions) {
    super(message, "HAMOK_NOT_JOINED", options);
  }
}

/** Codes of {@linkcode HamokStorageError} and its subclasses. */
export type HamokStorageErrorCode =
  | "HAMOK_STORAGE"
  | "HAMOK_STORAGE_CORRUPT"
  | "HAMOK_STORAGE_FULL"
  | "HAMOK_STORAGE_LOCKED"
  | "HAMOK_STORAGE_MISMATCH";

/**
 * The durable storage of this peer failed (an I/O error). The peer stops writing (and so stops
 * acknowledging anything) once it sees one; `path` names the file or directory concerned.
 *
 * @example
 * ```ts
 * import { HamokStorageError } from "@hamok/core";
 * const err = new HamokStorageError("fsync failed", { path: "./data/wal/1.wal" });
 * console.log(err.code, err.path); // HAMOK_STORAGE ./data/wal/1.wal
 * ```
 */
export class HamokStorageError extends HamokError {
  /** The file or directory concerned. */
  readonly path: string;

  /** Creates a storage error (subclasses pass their own code). */
  constructor(
    message: string,
    details: { path: string },
    options?: HamokErrorOptions,
    code: HamokStorageErrorCode = "HAMOK_STORAGE",
  ) {
    super(message, code, options);
    this.path = details.path;
  }
}

/**
 * A data directory holds a damaged record or file that a crash cannot explain (a flipped bit, a
 * truncated segment that is not the last one, a missing snapshot). Nothing was loaded.
 *
 * @example
 * ```ts
 * import { HamokStorageCorruptError } from "@hamok/core";
 * const err = new HamokStorageCorruptError("checksum mismatch", { path: "wal/1.wal", offset: 4096 });
 * console.log(err.code, err.offset); // HAMOK_STORAGE_CORRUPT 4096
 * ```
 */
export class HamokStorageCorruptError extends HamokStorageError {
  /** Byte offset of the damaged record in `path`. */
  readonly offset: number;

  /** Creates a corruption error naming the file and the offset. */
  constructor(message: string, details: { path: string; offset: number }, options?: HamokErrorOptions) {
    super(
      `${message} (${details.path} at offset ${details.offset})`,
      details,
      options,
      "HAMOK_STORAGE_CORRUPT",
    );
    this.offset = details.offset;
  }
}

/**
 * The disk is full (`ENOSPC`): a write could not be persisted, so the peer stopped accepting
 * writes instead of acknowledging data it does not hold. Free space and restart the peer.
 *
 * @example
 * ```ts
 * import { HamokStorageFullError } from "@hamok/core";
 * const err = new HamokStorageFullError("no space left", { path: "./data/wal/3.wal" });
 * console.log(err.code); // HAMOK_STORAGE_FULL
 * ```
 */
export class HamokStorageFullError extends HamokStorageError {
  /** Creates a disk-full error. */
  constructor(message: string, details: { path: string }, options?: HamokErrorOptions) {
    super(message, details, options, "HAMOK_STORAGE_FULL");
  }
}

/**
 * The data directory is in use by another live process (or another storage in this one).
 *
 * @example
 * ```ts
 * import { HamokStorageLockedError } from "@hamok/core";
 * const err = new HamokStorageLockedError("in use", { path: "./data/orders-1", pid: 4242 });
 * console.log(err.code, err.pid); // HAMOK_STORAGE_LOCKED 4242
 * ```
 */
export class HamokStorageLockedError extends HamokStorageError {
  /** The process holding the directory. */
  readonly pid: number;

  /** Creates a locked-directory error. */
  constructor(message: string, details: { path: string; pid: number }, options?: HamokErrorOptions) {
    super(message, details, options, "HAMOK_STORAGE_LOCKED");
    this.pid = details.pid;
  }
}

/**
 * The data directory belongs to another cluster id (or another peer id, or a newer format).
 *
 * @example
 * ```ts
 * import { HamokStorageMismatchError } from "@hamok/core";
 * const err = new HamokStorageMismatchError("other cluster", { path: "./data", expected: "a", found: "b" });
 * console.log(err.code, err.found); // HAMOK_STORAGE_MISMATCH b
 * ```
 */
export class HamokStorageMismatchError extends HamokStorageError {
  /** What this peer expected. */
  readonly expected: string;
  /** What the directory holds. */
  readonly found: string;

  /** Creates a mismatch error. */
  constructor(
    message: string,
    details: { path: string; expected: string; found: string },
    options?: HamokErrorOptions,
  ) {
    super(message, details, options, "HAMOK_STORAGE_MISMATCH");
    this.expected = details.expected;
    this.found = details.found;
  }
}

/**
 * An error a remote peer answered a request with, rebuilt on this side: `code` is the remote
 * error's code and {@linkcode HamokRemoteError.peerId} the peer that answered. A code whose class
 * needs nothing beyond a message is rebuilt as that class instead, with this error as its `cause`
 * (see {@linkcode errorFromWire}).
 *
 * @example
 * ```ts
 * import { HamokRemoteError } from "@hamok/core";
 * const err = new HamokRemoteError("HAMOK_OUTCOME_UNKNOWN", "map.set: no answer in time", "peer-2");
 * console.log(err.code, err.peerId); // HAMOK_OUTCOME_UNKNOWN peer-2
 * ```
 */
export class HamokRemoteError extends HamokError {
  /** The peer that answered with the error. */
  readonly peerId: string;

  /** Creates the local image of a remote error; a code this version does not know becomes `HAMOK_ERROR`. */
  constructor(code: string, message: string, peerId: string) {
    super(message, isHamokErrorCode(code) ? code : "HAMOK_ERROR");
    this.peerId = peerId;
  }
}

/** An error as it crosses the wire: its code and its message, nothing else. */
export interface HamokWireError {
  /** The {@linkcode HamokErrorCode} of the error (any string, as received). */
  readonly code: string;
  /** Its message. */
  readonly message: string;
}

type WireRebuild = (message: string, options: HamokErrorOptions) => HamokError;

/**
 * The one table from a wire code back to its class. A code maps to its class when that class needs
 * nothing but a message; a class that carries details the wire does not (a timeout's duration, a
 * conflict's revisions, the request id of an unknown outcome, a storage path, ...) maps to
 * `undefined`, and such an error stays a {@linkcode HamokRemoteError} with the code. Keyed by every
 * code, so a new code cannot be added without deciding here.
 */
const WIRE_ERRORS: Readonly<Record<HamokErrorCode, WireRebuild | undefined>> = {
  HAMOK_ERROR: undefined,
  HAMOK_TIMEOUT: undefined,
  HAMOK_CLOSED: (message, options) => new HamokClosedError(message, options),
  HAMOK_NO_LEADER: (message, options) => new HamokNoLeaderError(message, options),
  HAMOK_NOT_LEADER: (message, options) => new HamokNotLeaderError(message, {}, options),
  HAMOK_CODEC: (message, options) => new HamokCodecError(message, options),
  HAMOK_CONFIG: (message, options) => new HamokConfigError(message, options),
  HAMOK_ABORTED: (message, options) => new HamokAbortedError(message, options),
  HAMOK_OUTCOME_UNKNOWN: undefined,
  HAMOK_TRANSPORT: (message, options) => new HamokTransportError(message, options),
  HAMOK_DELIVERY: undefined,
  HAMOK_LISTENER: undefined,
  HAMOK_CONFLICT: undefined,
  HAMOK_RATE_LIMITED: (message, options) => new HamokRateLimitedError(message, options),
  HAMOK_PAYLOAD_TOO_LARGE: undefined,
  HAMOK_REMOVED: (message, options) => new HamokRemovedError(message, {}, options),
  HAMOK_DUPLICATE_PEER: undefined,
  HAMOK_CLUSTER_CONFLICT: undefined,
  HAMOK_NOT_JOINED: (message, options) => new HamokNotJoinedError(message, options),
  HAMOK_STORAGE: undefined,
  HAMOK_STORAGE_CORRUPT: undefined,
  HAMOK_STORAGE_FULL: undefined,
  HAMOK_STORAGE_LOCKED: undefined,
  HAMOK_STORAGE_MISMATCH: undefined,
};

/**
 * True if `code` is a {@linkcode HamokErrorCode} of this version.
 *
 * @example
 * ```ts
 * import { isHamokErrorCode } from "@hamok/core/internal";
 * console.log(isHamokErrorCode("HAMOK_TIMEOUT"), isHamokErrorCode("EPIPE")); // true false
 * ```
 */
export function isHamokErrorCode(code: string): code is HamokErrorCode {
  return Object.hasOwn(WIRE_ERRORS, code);
}

/**
 * The wire form of an error a handler threw: a {@linkcode HamokError} keeps its code, anything
 * else becomes `HAMOK_ERROR` with its message.
 *
 * @example
 * ```ts
 * import { HamokConfigError } from "@hamok/core";
 * import { errorToWire } from "@hamok/core/internal";
 * console.log(errorToWire(new HamokConfigError("bad map id")).code); // HAMOK_CONFIG
 * ```
 */
export function errorToWire(error: unknown): HamokWireError {
  if (error instanceof HamokError) return { code: error.code, message: error.message };
  return { code: "HAMOK_ERROR", message: error instanceof Error ? error.message : String(error) };
}

/**
 * Rebuilds an error that `peerId` answered with: the class of its code when
 * {@linkcode WIRE_ERRORS} has one (its `cause` is a {@linkcode HamokRemoteError} naming the peer),
 * otherwise a {@linkcode HamokRemoteError} with the code (`HAMOK_ERROR` for a code this version
 * does not know, which the message then names). The message is `"<what> at <peer>: <remote
 * message>"`, or `"<peer>: <remote message>"` without `what`. Every place that turns a wire error
 * back into an `Error` goes through here.
 *
 * @example
 * ```ts
 * import { HamokConfigError, HamokRemoteError } from "@hamok/core";
 * import { errorFromWire } from "@hamok/core/internal";
 * const error = errorFromWire({ code: "HAMOK_CONFIG", message: "unknown map 'x'" }, "peer-2", "client.map.read");
 * console.log(error instanceof HamokConfigError, (error.cause as HamokRemoteError).peerId); // true peer-2
 * console.log(error.message); // client.map.read at peer-2: unknown map 'x'
 * ```
 */
export function errorFromWire(wire: HamokWireError, peerId: string, what?: string): HamokError {
  const known = isHamokErrorCode(wire.code);
  const message = `${what === undefined ? peerId : `${what} at ${peerId}`}: ${wire.message}` +
    (known ? "" : ` (remote code ${JSON.stringify(wire.code.slice(0, 64))})`);
  const remote = new HamokRemoteError(wire.code, message, peerId);
  const rebuild = WIRE_ERRORS[remote.code];
  return rebuild === undefined ? remote : rebuild(message, { cause: remote });
}
