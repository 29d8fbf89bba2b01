/**
 * The skeleton every collection view (emitter, map, record, queue, remote map) is built on: the
 * validation of its id and options, the default timeout, the `ready` gate, close and detach, the
 * local listeners (one mechanism for every kind: a listener that throws is reported as a
 * {@linkcode HamokListenerError} on the peer's `error` event and the others still run), and the
 * helpers that propose a typed command ({@linkcode CommandSpec}) and make a linearizable read.
 *
 * @module
 */

import type { ValueCodec } from "../codec/value_codec.ts";
import { positiveInteger } from "../config.ts";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokError,
  HamokListenerError,
} from "../errors.ts";
import type { CollectionHost, ProposeOptions } from "./collection_host.ts";
import type { ArgsOf, ResultOf } from "./command_spec.ts";
import { LocalListeners } from "./local_listeners.ts";
import { ReadyGate } from "./ready_gate.ts";
import { assertWellFormed } from "../codec/well_formed.ts";

/** Default `requestTimeoutInMs` of every collection: 5 s. */
export const DEFAULT_REQUEST_TIMEOUT_IN_MS = 5000;

/**
 * Options of a write. A write whose outcome is unknown rejects with `HamokOutcomeUnknownError`,
 * whose `requestId` can be passed here to retry it: the cluster applies one request id at most once
 * (within its window of the last 16384 request ids), and a retry of an applied write resolves with
 * the result of its first application.
 *
 * @example
 * ```ts
 * import { type HamokMap, HamokOutcomeUnknownError } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * try {
 *   await map.set("k", 1, { timeoutMs: 1000 });
 * } catch (err) {
 *   if (err instanceof HamokOutcomeUnknownError) await map.set("k", 1, { requestId: err.requestId });
 * }
 * ```
 */
export interface HamokWriteOptions {
  /** The request id of the write; give the id of a failed attempt to retry it. Default: a fresh id. */
  requestId?: string | undefined;
  /** How long to wait for the write to be applied on this peer, in ms. Default `requestTimeoutInMs`. */
  timeoutMs?: number | undefined;
}

/**
 * Options of `set` and `delete`: a compare-and-set by revision. With `ifRevision` the write is
 * applied only if the entry's revision equals it (0: only if the entry is absent); otherwise nothing
 * changes and the call rejects with `HamokConflictError`.
 *
 * @example
 * ```ts
 * import type { HamokMap } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * const entry = map.getEntry("counter");
 * await map.set("counter", (entry?.value ?? 0) + 1, { ifRevision: entry?.revision ?? 0 });
 * ```
 */
export interface HamokCasWriteOptions extends HamokWriteOptions {
  /** The revision the entry must have (0: the entry must be absent). */
  ifRevision?: number;
}

/**
 * A local read (the default): this peer's applied state, without any network round trip.
 *
 * @example
 * ```ts
 * import type { HamokMap } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * const value = map.get("k", { consistency: "local" }); // same as map.get("k")
 * ```
 */
export interface HamokLocalReadOptions {
  /** `local` (the default). */
  consistency?: "local";
}

/**
 * A linearizable read: a read barrier through the leader (ReadIndex) first, so the result reflects
 * every write that completed anywhere before the read started. It returns a promise.
 *
 * @example
 * ```ts
 * import type { HamokMap } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * const value = await map.get("k", { consistency: "linearizable" });
 * ```
 */
export interface HamokLinearizableReadOptions {
  /** `linearizable`. */
  consistency: "linearizable";
  /** How long the barrier may take, in ms. Default `requestTimeoutInMs`. */
  timeoutMs?: number | undefined;
}

/**
 * Options of a read.
 *
 * @example
 * ```ts
 * const options: HamokReadOptions = { consistency: "linearizable", timeoutMs: 1000 };
 * ```
 */
export type HamokReadOptions = HamokLocalReadOptions | HamokLinearizableReadOptions;

/** The events of a collection: event name -> the argument tuple of its listeners. */
export type CollectionEvents<E> = { [N in keyof E]: unknown[] };

/** What a collection view needs to know about itself to build on {@linkcode CollectionBase}. */
export interface CollectionIdentity {
  /** The replicated-state kind (the `kind` of its commands). */
  readonly kind: string;
  /** How messages name the kind (`map`, `remote map`, ...). */
  readonly label: string;
  /** The collection id. */
  readonly id: string;
  /** The default timeout of its requests, in ms. */
  readonly requestTimeoutInMs: number;
  /** Whether the view fires a `close` event when it closes (the emitter's events are the application's). */
  readonly closeEvent: boolean;
}

/** The longest collection id (in UTF-16 units): ids travel in every command and request id. */
export const MAX_COLLECTION_ID_LENGTH = 256;

/**
 * Validates the config object of a collection and its id field, and resolves its
 * `requestTimeoutInMs`: the common part of every collection's constructor.
 */

export function collectionIdentity(
  config: unknown,
  kind: string,
  label: string,
  idField: string,
  closeEvent = true,
): CollectionIdentity {
  if (config === null || typeof config !== "object") {
    throw new HamokConfigError(`${label} config must be an object`);
  }
  const fields = config as Record<string, unknown>;
  const id = fields[idField];
  if (typeof id !== "string" || id.length === 0) {
    throw new HamokConfigError(`${idField} must be a non-empty string`);
  }
  if (id.length > MAX_COLLECTION_ID_LENGTH) {
    throw new HamokConfigError(
      `${idField} takes at most ${MAX_COLLECTION_ID_LENGTH} characters, got ${id.length}`,
    );
  }
  assertWellFormed(idField, id, HamokConfigError);
  const requestTimeoutInMs = positiveInteger(
    "requestTimeoutInMs",
    fields.requestTimeoutInMs as number | undefined,
    DEFAULT_REQUEST_TIMEOUT_IN_MS,
  );
  return { kind, label, id, requestTimeoutInMs, closeEvent };
}

/**
 * The base of every collection view: id, default timeout, `ready`, close, local listeners, typed
 * proposals (`C` is the kind's command declaration) and linearizable reads.
 *
 * @example
 * ```ts
 * import type { HamokMap, HamokQueue } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * declare const queue: HamokQueue<string>;
 * map.once("close", () => console.log(map.id, "closed")); // the same listener API on every kind
 * queue.once("close", () => console.log(queue.id, "closed"));
 * ```
 */
export abstract class CollectionBase<E extends CollectionEvents<E>, C> {
  /** The collection id. */
  readonly id: string;
  /** Default timeout of writes, linearizable reads and `ready`, in ms. */
  readonly requestTimeoutInMs: number;
  /** @internal The peer hosting this collection. */
  protected readonly host: CollectionHost;
  readonly #kind: string;
  readonly #label: string;
  readonly #closeEvent: boolean;
  readonly #listeners = new LocalListeners();
  readonly #readyGate = new ReadyGate();
  #closed = false;

  /** @internal */
  protected constructor(host: CollectionHost, identity: CollectionIdentity) {
    this.host = host;
    this.id = identity.id;
    this.requestTimeoutInMs = identity.requestTimeoutInMs;
    this.#kind = identity.kind;
    this.#label = identity.label;
    this.#closeEvent = identity.closeEvent;
  }

  /** @internal The replicated-state kind (the `kind` of the commands). */
  protected get kind(): string {
    return this.#kind;
  }

  /** @internal How messages name the kind (`map`, `remote map`, ...). */
  protected get label(): string {
    return this.#label;
  }

  /** True once closed (by `close()` or because the peer closed). */
  get closed(): boolean {
    return this.#closed || this.host.closed;
  }

  /**
   * Resolves once the peer has joined and this collection is caught up with the cluster. Rejects
   * with `HamokTimeoutError` after `requestTimeoutInMs` (it can be awaited again) and with
   * `HamokClosedError` if the collection is closed, or closes before it is ready.
   */
  get ready(): Promise<void> {
    return this.untilClosed(this.#readyGate.get(this.host, this.requestTimeoutInMs));
  }

  /** Callbacks of {@linkcode untilClosed} waiting for this collection to close. */
  readonly #closeWaiters = new Set<() => void>();

  /**
   * @internal `promise`, unless this collection is closed, or closes first: then it rejects with
   * `HamokClosedError` and `onClose` runs (to release what the wait holds, a timer say).
   */
  protected untilClosed<T>(promise: Promise<T>, onClose?: () => void): Promise<T> {
    if (this.closed) {
      promise.catch(() => {});
      onClose?.();
      return Promise.reject(this.closedError());
    }
    return new Promise<T>((resolve, reject) => {
      const closed = () => {
        onClose?.();
        reject(this.closedError("was closed while waiting to be ready"));
      };
      this.#closeWaiters.add(closed);
      promise.then(
        (value) => {
          this.#closeWaiters.delete(closed);
          resolve(value);
        },
        (error) => {
          this.#closeWaiters.delete(closed);
          reject(error);
        },
      );
    });
  }

  // ------------------------------------------------------------------ listeners

  /** Adds a listener of an event. A listener that throws is reported on the peer's `error` event. */
  on<N extends keyof E & string>(event: N, listener: (...args: E[N]) => void): this {
    this.#listeners.add(event, checkListener(listener), false);
    return this;
  }

  /** Adds a listener that is removed before its first call. */
  once<N extends keyof E & string>(event: N, listener: (...args: E[N]) => void): this {
    this.#listeners.add(event, checkListener(listener), true);
    return this;
  }

  /** Removes a listener (the most recently added registration of it). */
  off<N extends keyof E & string>(event: N, listener: (...args: E[N]) => void): this {
    this.#listeners.remove(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** @internal Whether `event` has local listeners (to skip decoding what nobody hears). */
  protected hasListeners(event: keyof E & string): boolean {
    return this.#listeners.has(event);
  }

  /** @internal Drops every local listener. */
  protected clearListeners(): void {
    this.#listeners.clear();
  }

  /**
   * @internal Calls the listeners of `event`; each one that throws is reported as a
   * {@linkcode HamokListenerError} (after {@linkcode listenerFailed} saw it). Allocates nothing
   * beyond what the listeners do.
   */
  protected deliver<N extends keyof E & string>(event: N, args: E[N]): void {
    this.#listeners.deliver(event, args, this.#onListenerError);
  }

  /** @internal A listener of `event` threw: the subclass may add to the report (a span, ...). */
  protected listenerFailed(_failure: HamokListenerError, _error: unknown): void {}

  readonly #onListenerError = (error: unknown, event: string): void => {
    const failure = new HamokListenerError(
      `a listener of '${event}' on ${this.#label} '${this.id}' threw`,
      { collectionId: this.id, event },
      { cause: error },
    );
    this.listenerFailed(failure, error);
    this.host.reportError(failure);
  };

  /** @internal Adds a local listener (for kinds whose own methods add listeners, like `subscribe`). */
  protected addListener<N extends keyof E & string>(
    event: N,
    listener: (...args: E[N]) => void,
    once: boolean,
  ): void {
    this.#listeners.add(event, listener as (...args: unknown[]) => void, once);
  }

  /** @internal Removes a local listener added by {@linkcode addListener}. */
  protected removeListener<N extends keyof E & string>(event: N, listener: (...args: E[N]) => void): void {
    this.#listeners.remove(event, listener as (...args: unknown[]) => void);
  }

  /** @internal Runs `fn` (decoding and delivering one change); a throw is reported, not raised. */
  protected guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.host.reportError(
        error instanceof HamokError
          ? error
          : new HamokError(`${this.#label} '${this.id}': cannot deliver ${what}`, "HAMOK_ERROR", {
            cause: error,
          }),
      );
    }
  }

  // ------------------------------------------------------------------ lifecycle

  /**
   * Closes the collection object on this peer: its resources are released, `close` fires (on kinds
   * that have it), listeners are dropped and further calls reject with {@linkcode HamokClosedError}.
   * The replicated content stays in the cluster.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waiting = [...this.#closeWaiters];
    this.#closeWaiters.clear();
    for (const closed of waiting) closed();
    this.onClose();
    if (this.registered) this.host.detach(this.#kind, this.id);
    if (this.#closeEvent) this.deliver("close" as keyof E & string, [] as unknown as E[keyof E & string]);
    this.#listeners.clear();
  }

  /**
   * @internal Whether the peer knows this object as the live collection of its id (false for an
   * emitter the peer opens for client publishes: closing it must not detach the application's view).
   */
  protected get registered(): boolean {
    return true;
  }

  /** @internal Called by the peer when it closes. */
  closeByHost(): void {
    this.close();
  }

  /** @internal Releases what the subclass holds (called once, by {@linkcode close}, before detaching). */
  protected onClose(): void {}

  /** @internal Throws {@linkcode HamokClosedError} once closed. */
  protected assertOpen(): void {
    if (this.#closed || this.host.closed) throw new HamokClosedError(`${this.#label} '${this.id}' is closed`);
  }

  /** @internal The closed error of this collection, with a reason. */
  protected closedError(reason?: string): HamokClosedError {
    return new HamokClosedError(`${this.#label} '${this.id}' ${reason ?? "is closed"}`);
  }

  // ------------------------------------------------------------------ commands and reads

  /**
   * @internal Proposes operation `op` of the kind's declaration with the given write options
   * (validated; defaults from `requestTimeoutInMs`); resolves with its declared result once applied.
   */
  protected propose<O extends keyof C & string>(
    op: O,
    args: ArgsOf<C, O>,
    options?: HamokWriteOptions,
  ): Promise<ResultOf<C, O>> {
    return this.proposeWith(op, args, writeOptions(options, this.requestTimeoutInMs));
  }

  /** @internal {@linkcode propose} with proposal options already resolved. */
  protected proposeWith<O extends keyof C & string>(
    op: O,
    args: ArgsOf<C, O>,
    options: ProposeOptions,
  ): Promise<ResultOf<C, O>> {
    return this.host.propose(this.#kind, this.id, op, args, options) as Promise<ResultOf<C, O>>;
  }

  /**
   * @internal The error a proposal failed with, as the application should see it: a command that
   * could not be encoded (items or metadata the CBOR encoder refuses) becomes a `HamokCodecError`
   * naming this collection.
   */
  protected proposalError(error: unknown): unknown {
    if (error instanceof HamokError && error.code === "HAMOK_CODEC" && !(error instanceof HamokCodecError)) {
      return new HamokCodecError(`${this.#label} '${this.id}': ${error.message}`, {
        cause: error.cause ?? error,
      });
    }
    return error;
  }

  /** @internal Validated write options to proposal options. */
  protected writeOptions(options: HamokWriteOptions | undefined): ProposeOptions {
    return writeOptions(options, this.requestTimeoutInMs);
  }

  /** @internal A local read, or a linearizable one (a promise) if `options` ask for it. */
  protected read<T>(options: HamokReadOptions | undefined, read: () => T): T | Promise<T> {
    if (isLinearizable(options)) return this.barrier(options, read);
    this.assertOpen();
    return read();
  }

  /** @internal `read` after a read barrier through the leader. */
  protected barrier<T>(options: HamokLinearizableReadOptions, read: () => T): Promise<T> {
    try {
      this.assertOpen();
      const timeoutMs = positiveInteger("timeoutMs", options.timeoutMs, this.requestTimeoutInMs);
      return this.host.waitUntilCommitHead(timeoutMs).then(() => {
        this.assertOpen();
        return read();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

// ------------------------------------------------------------------ validators

/** The longest `requestId` an application may give a write, in UTF-16 code units. */
export const MAX_REQUEST_ID_LENGTH = 256;

/** Write options to proposal options, validated. */
export function writeOptions(
  options: HamokWriteOptions | undefined,
  defaultTimeoutMs: number,
): ProposeOptions {
  if (options === undefined) return { timeoutMs: defaultTimeoutMs };
  if (options === null || typeof options !== "object") {
    throw new HamokConfigError("write options must be an object");
  }
  const timeoutMs = positiveInteger("timeoutMs", options.timeoutMs, defaultTimeoutMs);
  const requestId = options.requestId;
  if (requestId === undefined) return { timeoutMs };
  if (typeof requestId !== "string" || requestId.length === 0) {
    throw new HamokConfigError("requestId must be a non-empty string");
  }
  if (requestId.length > MAX_REQUEST_ID_LENGTH) {
    // every request id stays in the cluster's dedup window (and its snapshots) for a while
    throw new HamokConfigError(
      `requestId takes at most ${MAX_REQUEST_ID_LENGTH} characters, got ${requestId.length}`,
    );
  }
  // two ids differing only in a lone surrogate would be two ids here and one on the wire
  assertWellFormed("requestId", requestId, HamokConfigError);
  return { timeoutMs, requestId };
}

/** Validates `ifRevision` (a non-negative integer, or undefined). */
export function checkRevision(revision: unknown): number | undefined {
  if (revision === undefined) return undefined;
  if (typeof revision !== "number" || !Number.isInteger(revision) || revision < 0) {
    throw new HamokConfigError(`ifRevision must be a non-negative integer, got ${String(revision)}`);
  }
  return revision;
}

/** Whether read options ask for a linearizable read (and are valid). */
export function isLinearizable(
  options: HamokReadOptions | undefined,
): options is HamokLinearizableReadOptions {
  if (options === undefined) return false;
  if (options === null || typeof options !== "object") {
    throw new HamokConfigError("read options must be an object");
  }
  const consistency = options.consistency;
  if (consistency === undefined || consistency === "local") return false;
  if (consistency === "linearizable") return true;
  throw new HamokConfigError(`consistency must be "local" or "linearizable", got ${String(consistency)}`);
}

/** Validates a codec option. */
export function checkCodec<T>(name: string, codec: ValueCodec<T> | undefined): ValueCodec<T> | undefined {
  if (codec === undefined) return undefined;
  if (typeof codec?.encode !== "function" || typeof codec?.decode !== "function") {
    throw new HamokConfigError(`${name} must have encode and decode functions`);
  }
  return codec;
}

/** Validates a listener. */
export function checkListener(listener: unknown): (...args: unknown[]) => void {
  if (typeof listener !== "function") {
    throw new HamokConfigError(
      `a listener must be a function, got ${listener === null ? "null" : typeof listener}`,
    );
  }
  return listener as (...args: unknown[]) => void;
}

/**
 * @internal `value` if it is an iterable of keys (an array, a `Set`, a map's `keys()`...), else
 * `HamokConfigError`: a string would be taken as its characters, and anything else would throw a
 * plain `TypeError` from inside the loop.
 */
export function checkKeys<K>(what: string, value: Iterable<K>): Iterable<K> {
  if (!isIterableObject(value)) {
    throw new HamokConfigError(
      `${what} takes an iterable of keys (an array, a Set...), got ${typeOf(value)}`,
    );
  }
  return value;
}

/**
 * @internal `value` if it is an iterable of entries (a `Map`, an array of `[key, value]` pairs...),
 * else `HamokConfigError` (see {@linkcode checkKeys}); the caller checks each entry with {@linkcode checkEntry}.
 */
export function checkEntries<E>(what: string, value: Iterable<E>): Iterable<E> {
  if (!isIterableObject(value)) {
    throw new HamokConfigError(
      `${what} takes a Map or an iterable of [key, value] pairs, got ${typeOf(value)}`,
    );
  }
  return value;
}

/** @internal `entry` if it is a `[key, value]` pair (an array), else `HamokConfigError`. */
export function checkEntry<E>(what: string, entry: E): E {
  if (!Array.isArray(entry)) {
    throw new HamokConfigError(`${what}: every entry must be a [key, value] pair, got ${typeOf(entry)}`);
  }
  return entry;
}

/** An object (not a string) with an iterator. */
function isIterableObject(value: unknown): boolean {
  return value !== null && typeof value === "object" &&
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function";
}

function typeOf(value: unknown): string {
  return value === null ? "null" : typeof value;
}
