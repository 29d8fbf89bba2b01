/**
 * HamokRecord: one typed object replicated on every peer, stored field by field (a map of field
 * names to encoded values, each with its revision) so that single fields change without rewriting
 * the whole object, and several fields can be compared and set atomically.
 *
 * @module
 */

import { cborValueCodec, encodeValue, type ValueCodec } from "../codec/value_codec.ts";
import { positiveInteger } from "../config.ts";
import {
  HamokClosedError,
  HamokConfigError,
  HamokConflictError,
  HamokError,
  HamokListenerError,
  HamokOutcomeUnknownError,
  HamokTimeoutError,
} from "../errors.ts";
import type { CollectionHost } from "./collection_host.ts";
import { decodeStored, entryValue, previousValue } from "./entry_codec.ts";
import { LocalListeners } from "./local_listeners.ts";
import {
  checkCodec,
  checkListener,
  checkRevision,
  type HamokCasWriteOptions,
  type HamokLinearizableReadOptions,
  type HamokLocalReadOptions,
  type HamokMapEntry,
  type HamokReadOptions,
  type HamokWriteOptions,
  importEntries,
  isLinearizable,
  writeOptions,
} from "./map.ts";
import type { Encoded, HamokMapState, MapStateEntry, MapStateObserver, MapWriteResult } from "./map_state.ts";

/**
 * The replicated-state kind of records (the `kind` of their commands in the log).
 *
 * @example
 * ```ts
 * import { RECORD_KIND } from "@hamok/core/internal";
 * console.log(RECORD_KIND); // "record"
 * ```
 */
export const RECORD_KIND = "record";

const DEFAULT_REQUEST_TIMEOUT = 5000;

/**
 * The field names of a record type.
 *
 * @example
 * ```ts
 * import type { HamokRecordField } from "@hamok/core";
 * const field: HamokRecordField<{ mode: string; limit: number }> = "limit";
 * ```
 */
export type HamokRecordField<T> = keyof T & string;

/**
 * Options of `hamok.createRecord(config)`.
 *
 * @example
 * ```ts
 * import type { Hamok } from "@hamok/core";
 * declare const hamok: Hamok;
 * type Config = { mode: "a" | "b"; limit: number; since?: Date };
 * const dateCodec = { encode: (d: Date) => d.toISOString(), decode: (s: string | Uint8Array) => new Date(s as string) };
 * const record = hamok.createRecord<Config>({
 *   recordId: "config",
 *   initialObject: { mode: "a", limit: 10 },
 *   payloadCodecs: new Map([["since", dateCodec]]),
 * });
 * ```
 */
export interface HamokRecordConfig<T extends Record<string, unknown>> {
  /** The record id; records with the same id on different peers share their content. Required. */
  recordId: string;
  /**
   * Fields written, once the record is ready, each only if the record has no value for it yet (one
   * command for all of them). Fields whose value is `undefined` are ignored.
   */
  initialObject?: Partial<T>;
  /** Per-field value codecs (field name to codec). Default: CBOR for every field. */
  payloadCodecs?: ReadonlyMap<string, ValueCodec<unknown>>;
  /** Default timeout of writes, of linearizable reads and of `ready`, in ms. Default 5000. */
  requestTimeoutInMs?: number;
}

/**
 * Payload of the record's `insert` event.
 *
 * @example
 * ```ts
 * import type { HamokRecord } from "@hamok/core";
 * declare const record: HamokRecord<{ mode: string; limit: number }>;
 * record.on("insert", ({ key, value, revision }) => console.log(key, value, revision));
 * ```
 */
export type HamokRecordInsertEvent<T> = {
  [F in HamokRecordField<T>]: { readonly key: F; readonly value: T[F]; readonly revision: number };
}[HamokRecordField<T>];

/**
 * Payload of the record's `update` event.
 *
 * @example
 * ```ts
 * import type { HamokRecord } from "@hamok/core";
 * declare const record: HamokRecord<{ mode: string; limit: number }>;
 * record.on("update", ({ key, oldValue, newValue }) => console.log(key, oldValue, "->", newValue));
 * ```
 */
export type HamokRecordUpdateEvent<T> = {
  [F in HamokRecordField<T>]: {
    readonly key: F;
    readonly oldValue: T[F];
    readonly newValue: T[F];
    readonly revision: number;
  };
}[HamokRecordField<T>];

/**
 * Payload of the record's `remove` event.
 *
 * @example
 * ```ts
 * import type { HamokRecord } from "@hamok/core";
 * declare const record: HamokRecord<{ mode: string; limit: number }>;
 * record.on("remove", ({ key, value }) => console.log(`${key} (was ${value}) removed`));
 * ```
 */
export type HamokRecordRemoveEvent<T> = {
  [F in HamokRecordField<T>]: { readonly key: F; readonly value: T[F]; readonly revision: number };
}[HamokRecordField<T>];

/**
 * Events of a {@linkcode HamokRecord}: argument tuples of the listeners. Every peer with the record
 * fires them for every committed change, in log order.
 *
 * @example
 * ```ts
 * import type { HamokRecord } from "@hamok/core";
 * declare const record: HamokRecord<{ mode: string; limit: number }>;
 * record.on("clear", ({ revision }) => console.log("cleared at", revision));
 * ```
 */
export interface HamokRecordEvents<T> {
  /** A field got a value. */
  insert: [event: HamokRecordInsertEvent<T>];
  /** A field got a new value. */
  update: [event: HamokRecordUpdateEvent<T>];
  /** A field was removed (not by `clear`). */
  remove: [event: HamokRecordRemoveEvent<T>];
  /** Every field was removed by `clear()`. */
  clear: [event: { readonly revision: number }];
  /** The record object was closed on this peer. */
  close: [];
}

/**
 * The content of a record: field names, encoded values and revisions, index by index.
 *
 * @example
 * ```ts
 * import type { HamokRecord, HamokRecordSnapshot } from "@hamok/core";
 * declare const record: HamokRecord<{ mode: string; limit: number }>;
 * const snapshot: HamokRecordSnapshot = record.export();
 * console.log(snapshot.keys); // the field names
 * ```
 */
export interface HamokRecordSnapshot {
  /** The record id. */
  readonly recordId: string;
  /** The field names. */
  readonly keys: readonly string[];
  /** The encoded values, one per field. */
  readonly values: readonly (string | Uint8Array)[];
  /** The revision of each field when exported (informative: an import writes new revisions). */
  readonly revisions?: readonly number[];
}

/**
 * A typed object replicated on every peer of the cluster, field by field.
 *
 * A field is either absent or has a value; `undefined` means absent: writing `undefined` removes the
 * field, and expecting `undefined` (in `updateIf`, `updateInstanceIf`) expects the field to be absent.
 * 0, "", false and null are values. Writes go through the Raft log and resolve once applied on this
 * peer; reads are local unless `{ consistency: "linearizable" }` is given. Values are compared by
 * their encoding.
 *
 * @example
 * ```ts
 * import { Hamok } from "@hamok/core";
 * type Job = { owner?: string; state: "idle" | "running"; runs: number };
 * const hamok = new Hamok();
 * await hamok.join();
 * const job = hamok.createRecord<Job>({ recordId: "nightly", initialObject: { state: "idle", runs: 0 } });
 * await job.ready; // the initial fields are in
 * // take the job: exactly one peer wins this multi-field compare-and-set
 * const mine = await job.updateInstanceIf(
 *   { owner: hamok.localPeerId, state: "running" },
 *   { owner: undefined, state: "idle" },
 * );
 * if (mine) await job.set("runs", (job.get("runs") ?? 0) + 1);
 * ```
 */
export class HamokRecord<T extends Record<string, unknown> = Record<string, unknown>> {
  /** The record id. */
  readonly id: string;
  /** The per-field codecs given in the config. */
  readonly payloadCodecs: ReadonlyMap<string, ValueCodec<unknown>>;
  /** Default timeout of writes, linearizable reads and `ready`, in ms. */
  readonly requestTimeoutInMs: number;
  readonly #host: CollectionHost;
  readonly #state: HamokMapState;
  readonly #listeners = new LocalListeners();
  readonly #observer: MapStateObserver;
  readonly #init: Promise<void>;
  #closed = false;
  #wake: (() => void) | undefined;

  /** @internal Use `hamok.createRecord(config)`. */
  constructor(host: CollectionHost, config: HamokRecordConfig<T>) {
    if (config === null || typeof config !== "object") {
      throw new HamokConfigError("record config must be an object");
    }
    if (typeof config.recordId !== "string" || config.recordId.length === 0) {
      throw new HamokConfigError("recordId must be a non-empty string");
    }
    this.id = config.recordId;
    this.requestTimeoutInMs = positiveInteger(
      "requestTimeoutInMs",
      config.requestTimeoutInMs,
      DEFAULT_REQUEST_TIMEOUT,
    );
    const codecs = config.payloadCodecs ?? new Map();
    if (!(codecs instanceof Map)) {
      throw new HamokConfigError("payloadCodecs must be a Map from field name to codec");
    }
    for (const [field, codec] of codecs) checkCodec(`payloadCodecs for '${String(field)}'`, codec);
    this.payloadCodecs = codecs;
    const initial = config.initialObject;
    if (initial !== undefined && (initial === null || typeof initial !== "object")) {
      throw new HamokConfigError("initialObject must be an object");
    }
    // encoded now, so that a codec error throws here and not in the background
    const initialPairs = initial === undefined
      ? []
      : this.#encodeFields(initial).filter((p) => p[1] !== null);
    this.#host = host;
    this.#state = host.replicatedState<HamokMapState>(RECORD_KIND, this.id);
    this.#observer = this.#makeObserver();
    this.#state.observer = this.#observer;
    this.#init = this.#initialize(initialPairs as [string, Encoded][]);
    this.#init.catch(() => {});
  }

  /** True once closed (by `close()` or because the peer closed). */
  get closed(): boolean {
    return this.#closed || this.#host.closed;
  }

  /**
   * Resolves once the peer has joined, the record is caught up with the cluster and the
   * `initialObject` fields are applied. Rejects with `HamokTimeoutError` after `requestTimeoutInMs`
   * (the initialization goes on; `ready` can be awaited again) and with `HamokClosedError` if closed.
   */
  get ready(): Promise<void> {
    if (this.closed) return Promise.reject(new HamokClosedError(`record '${this.id}' is closed`));
    const timeoutMs = this.requestTimeoutInMs;
    return new Promise<void>((resolve, reject) => {
      const timer = this.#host.scheduler.setTimeout(() => {
        reject(
          new HamokTimeoutError(`record '${this.id}' was not ready within ${timeoutMs} ms`, { timeoutMs }),
        );
      }, timeoutMs);
      this.#init.then(
        () => {
          this.#host.scheduler.clearTimeout(timer);
          resolve();
        },
        (error) => {
          this.#host.scheduler.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  /** Number of fields that have a value on this peer. */
  get size(): number {
    this.#assertOpen();
    return this.#state.size;
  }

  /** Log index of the last command that changed this record (0: never changed). */
  get revision(): number {
    this.#assertOpen();
    return this.#state.revision;
  }

  /** A new object with every field that has a value (a local read). */
  get instance(): Partial<T> {
    this.#assertOpen();
    return this.#instance();
  }

  // ------------------------------------------------------------------ reads

  /** A new object with every field that has a value (a local read, like `instance`). */
  getInstance(options?: HamokLocalReadOptions): Partial<T>;
  /** A new object with every field that has a value, after a read barrier (a linearizable read). */
  getInstance(options: HamokLinearizableReadOptions): Promise<Partial<T>>;
  getInstance(options?: HamokReadOptions): Partial<T> | Promise<Partial<T>> {
    return this.#read(options, () => this.#instance());
  }

  /** The value of `field`, or undefined if absent (a local read). */
  get<F extends HamokRecordField<T>>(field: F, options?: HamokLocalReadOptions): T[F] | undefined;
  /** The value of `field`, or undefined if absent, after a read barrier (a linearizable read). */
  get<F extends HamokRecordField<T>>(
    field: F,
    options: HamokLinearizableReadOptions,
  ): Promise<T[F] | undefined>;
  get<F extends HamokRecordField<T>>(
    field: F,
    options?: HamokReadOptions,
  ): T[F] | undefined | Promise<T[F] | undefined> {
    checkField(field);
    return this.#read(options, () => {
      const entry = this.#state.lookup(field);
      return entry === undefined ? undefined : entryValue(entry, this.#codecOf(field), this) as T[F];
    });
  }

  /** The value of `field` with its revision, or undefined if absent (a local read). */
  getEntry<F extends HamokRecordField<T>>(
    field: F,
    options?: HamokLocalReadOptions,
  ): HamokMapEntry<T[F]> | undefined;
  /** The value of `field` with its revision, or undefined if absent (a linearizable read). */
  getEntry<F extends HamokRecordField<T>>(
    field: F,
    options: HamokLinearizableReadOptions,
  ): Promise<HamokMapEntry<T[F]> | undefined>;
  getEntry<F extends HamokRecordField<T>>(
    field: F,
    options?: HamokReadOptions,
  ): HamokMapEntry<T[F]> | undefined | Promise<HamokMapEntry<T[F]> | undefined> {
    checkField(field);
    return this.#read(options, () => {
      const entry = this.#state.lookup(field);
      if (entry === undefined) return undefined;
      return { value: entryValue(entry, this.#codecOf(field), this) as T[F], revision: entry.revision };
    });
  }

  /** Whether `field` has a value (a local read). */
  has(field: HamokRecordField<T>, options?: HamokLocalReadOptions): boolean;
  /** Whether `field` has a value (a linearizable read). */
  has(field: HamokRecordField<T>, options: HamokLinearizableReadOptions): Promise<boolean>;
  has(field: HamokRecordField<T>, options?: HamokReadOptions): boolean | Promise<boolean> {
    checkField(field);
    return this.#read(options, () => this.#state.lookup(field) !== undefined);
  }

  // ------------------------------------------------------------------ writes

  /**
   * Sets `field` to `value` (`undefined` removes the field). Resolves with the previous value. With
   * `{ ifRevision }` it writes only if the field's revision matches (0: only if absent), else rejects
   * with {@linkcode HamokConflictError}.
   */
  async set<F extends HamokRecordField<T>>(
    field: F,
    value: T[F] | undefined,
    options?: HamokCasWriteOptions,
  ): Promise<T[F] | undefined> {
    this.#assertOpen();
    checkField(field);
    const ifRevision = checkRevision(options?.ifRevision);
    let result: MapWriteResult;
    if (value === undefined) {
      const args = ifRevision === undefined ? [field] : [field, ifRevision];
      result = await this.#propose("delete", args, options) as MapWriteResult;
    } else {
      const v = encodeValue(this.#codecOf(field), value);
      const args = ifRevision === undefined ? [field, v] : [field, v, ifRevision];
      result = await this.#propose("set", args, options) as MapWriteResult;
    }
    this.#checkConflict(result, ifRevision, field);
    const previous = result[1] as Encoded | null;
    return previous === null ? undefined : decodeStored(this.#codecOf(field), previous) as T[F];
  }

  /**
   * Sets `field` to `value` only if the field is absent. Resolves with the existing value (kept), or
   * undefined if `value` was inserted.
   */
  async insert<F extends HamokRecordField<T>>(
    field: F,
    value: T[F],
    options?: HamokWriteOptions,
  ): Promise<T[F] | undefined> {
    this.#assertOpen();
    checkField(field);
    if (value === undefined) throw new HamokConfigError(`cannot insert undefined into field '${field}'`);
    const args = [field, encodeValue(this.#codecOf(field), value)];
    const result = await this.#propose("insert", args, options) as Encoded | null;
    return result === null ? undefined : decodeStored(this.#codecOf(field), result) as T[F];
  }

  /**
   * Removes `field`. Resolves with true if it had a value. With `{ ifRevision }` it removes only if the
   * field's revision matches, else rejects with {@linkcode HamokConflictError}.
   */
  async delete(field: HamokRecordField<T>, options?: HamokCasWriteOptions): Promise<boolean> {
    this.#assertOpen();
    checkField(field);
    const ifRevision = checkRevision(options?.ifRevision);
    const args = ifRevision === undefined ? [field] : [field, ifRevision];
    const result = await this.#propose("delete", args, options) as MapWriteResult;
    this.#checkConflict(result, ifRevision, field);
    return result[1] !== null;
  }

  /** Removes every field; every peer fires `clear`. */
  async clear(options?: HamokWriteOptions): Promise<void> {
    this.#assertOpen();
    await this.#propose("clear", [], options);
  }

  /**
   * Sets `field` to `value` only if its current value equals `oldValue` (compared by encoding;
   * `undefined` = absent, so `updateIf(f, v, undefined)` inserts). `value` `undefined` removes the
   * field. Resolves with true if written.
   */
  async updateIf<F extends HamokRecordField<T>>(
    field: F,
    value: T[F] | undefined,
    oldValue: T[F] | undefined,
    options?: HamokWriteOptions,
  ): Promise<boolean> {
    this.#assertOpen();
    checkField(field);
    const codec = this.#codecOf(field);
    const expected = oldValue === undefined ? null : encodeValue(codec, oldValue);
    const next = value === undefined ? null : encodeValue(codec, value);
    return await this.#propose("cas", [[[field, expected]], [[field, next]]], options) === true;
  }

  /**
   * Inserts every field of `partial` that the record has no value for, in one command. Resolves with
   * the fields that already had a value (with those values, which are kept), or undefined if every
   * field was inserted.
   */
  async insertInstance(partial: Partial<T>, options?: HamokWriteOptions): Promise<Partial<T> | undefined> {
    this.#assertOpen();
    const pairs = this.#encodeFields(checkPartial(partial)).filter((p) => p[1] !== null);
    if (pairs.length === 0) return undefined;
    const existing = await this.#propose("insertAll", [pairs], options) as [string, Encoded][];
    if (existing.length === 0) return undefined;
    const out: Record<string, unknown> = {};
    for (const [field, value] of existing) {
      assignField(out, field, decodeStored(this.#codecOf(field as HamokRecordField<T>), value));
    }
    return out as Partial<T>;
  }

  /**
   * An atomic multi-field compare-and-set: if every field of `oldPartial` has the given value
   * (`undefined`: is absent), every field of `newPartial` is written (`undefined`: removed), all in
   * one command. Resolves with true if written. Among concurrent callers whose expectations overlap,
   * exactly one wins. An empty `oldPartial` always matches.
   */
  async updateInstanceIf(
    newPartial: Partial<T>,
    oldPartial: Partial<T>,
    options?: HamokWriteOptions,
  ): Promise<boolean> {
    this.#assertOpen();
    const writes = this.#encodeFields(checkPartial(newPartial));
    const expected = this.#encodeFields(checkPartial(oldPartial));
    return await this.#propose("cas", [expected, writes], options) === true;
  }

  // ------------------------------------------------------------------ events

  /** Adds a listener of a record event. A listener that throws is reported on the peer's `error` event. */
  on<E extends keyof HamokRecordEvents<T>>(
    event: E,
    listener: (...args: HamokRecordEvents<T>[E]) => void,
  ): this {
    this.#listeners.add(event, checkListener(listener), false);
    return this;
  }

  /** Adds a listener that is removed after its first call. */
  once<E extends keyof HamokRecordEvents<T>>(
    event: E,
    listener: (...args: HamokRecordEvents<T>[E]) => void,
  ): this {
    this.#listeners.add(event, checkListener(listener), true);
    return this;
  }

  /** Removes a listener. */
  off<E extends keyof HamokRecordEvents<T>>(
    event: E,
    listener: (...args: HamokRecordEvents<T>[E]) => void,
  ): this {
    this.#listeners.remove(event, listener as (...args: unknown[]) => void);
    return this;
  }

  // ------------------------------------------------------------------ snapshots and lifecycle

  /** The content of this peer's copy of the record (copies of the encoded values). */
  export(): HamokRecordSnapshot {
    this.#assertOpen();
    return recordSnapshotOf(this.#state);
  }

  /**
   * Merges a snapshot into the record through consensus: every field of the snapshot is set (fields
   * not in it are kept). Resolves once applied on this peer.
   */
  async import(snapshot: HamokRecordSnapshot, options?: Pick<HamokWriteOptions, "timeoutMs">): Promise<void> {
    this.#assertOpen();
    if (snapshot?.recordId !== this.id) {
      throw new HamokConfigError(
        `the snapshot is of record '${String(snapshot?.recordId)}', not of '${this.id}'`,
      );
    }
    const timeoutMs = positiveInteger("timeoutMs", options?.timeoutMs, this.requestTimeoutInMs);
    await importEntries(this.#host, RECORD_KIND, this.id, snapshot.keys, snapshot.values, timeoutMs, true);
  }

  /**
   * Closes the record object on this peer: listeners are dropped (after `close` fired), writes reject
   * with {@linkcode HamokClosedError}, and a pending initialization stops. The replicated content
   * stays in the cluster.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#state.observer === this.#observer) this.#state.observer = undefined;
    this.#host.detach(RECORD_KIND, this.id);
    this.#wake?.();
    this.#emit("close", []);
    this.#listeners.clear();
  }

  /** @internal Called by the peer when it closes. */
  closeByHost(): void {
    this.close();
  }

  // ------------------------------------------------------------------ internals

  #assertOpen(): void {
    if (this.#closed || this.#host.closed) throw new HamokClosedError(`record '${this.id}' is closed`);
  }

  #codecOf(field: HamokRecordField<T>): ValueCodec<unknown> {
    return this.payloadCodecs.get(field) ?? cborValueCodec;
  }

  #instance(): Partial<T> {
    const out: Record<string, unknown> = {};
    for (const entry of this.#state.entries()) {
      const field = entry.key as string;
      assignField(out, field, entryValue(entry, this.#codecOf(field as HamokRecordField<T>), this));
    }
    return out as Partial<T>;
  }

  #read<R>(options: HamokReadOptions | undefined, read: () => R): R | Promise<R> {
    if (!isLinearizable(options)) {
      this.#assertOpen();
      return read();
    }
    try {
      this.#assertOpen();
      const timeoutMs = positiveInteger("timeoutMs", options.timeoutMs, this.requestTimeoutInMs);
      return this.#host.waitUntilCommitHead(timeoutMs).then(() => {
        this.#assertOpen();
        return read();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `[field, encoded value or null (undefined)]` for every own enumerable field. */
  #encodeFields(partial: Partial<T>): [string, Encoded | null][] {
    const pairs: [string, Encoded | null][] = [];
    for (const field of Object.keys(partial)) {
      const value = partial[field];
      pairs.push([
        field,
        value === undefined ? null : encodeValue(this.#codecOf(field as HamokRecordField<T>), value),
      ]);
    }
    return pairs;
  }

  #propose(op: string, args: unknown, options: HamokWriteOptions | undefined): Promise<unknown> {
    return this.#host.propose(RECORD_KIND, this.id, op, args, writeOptions(options, this.requestTimeoutInMs));
  }

  #checkConflict(result: MapWriteResult, ifRevision: number | undefined, field: string): void {
    if (result[0] !== 1) return;
    throw new HamokConflictError(
      `record '${this.id}': field '${field}' is at revision ${result[1]}, not ${ifRevision}`,
      { expectedRevision: ifRevision ?? 0, actualRevision: result[1] },
    );
  }

  /** Waits for the peer, then inserts the initial fields; retries until done or closed. */
  async #initialize(pairs: [string, Encoded][]): Promise<void> {
    const timeoutMs = this.requestTimeoutInMs;
    for (;;) {
      this.#assertOpen();
      try {
        await this.#host.whenReady(timeoutMs);
        break;
      } catch (error) {
        this.#assertOpen();
        if (error instanceof HamokClosedError) throw error;
        if (!(error instanceof HamokTimeoutError)) await this.#pause(Math.min(200, timeoutMs));
      }
    }
    if (pairs.length === 0) return;
    let requestId: string | undefined;
    for (;;) {
      this.#assertOpen();
      try {
        await this.#host.propose(RECORD_KIND, this.id, "insertAll", [pairs], { timeoutMs, requestId });
        return;
      } catch (error) {
        this.#assertOpen();
        if (error instanceof HamokClosedError || error instanceof HamokConfigError) throw error;
        // the same request id again: the initial insert is applied at most once
        if (error instanceof HamokOutcomeUnknownError) requestId = error.requestId;
        this.#host.logger.debug(`record '${this.id}': inserting the initial object failed, retrying`, error);
        await this.#pause(Math.min(200, timeoutMs));
      }
    }
  }

  /** Sleeps `ms`, or less if the record closes meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#host.scheduler.clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = this.#host.scheduler.setTimeout(done, ms);
      this.#wake = done;
    });
  }

  #emit<E extends keyof HamokRecordEvents<T>>(event: E, args: HamokRecordEvents<T>[E]): void {
    this.#listeners.deliver(event, args, (error) =>
      this.#host.reportError(
        new HamokListenerError(`a listener of '${event}' on record '${this.id}' threw`, {
          collectionId: this.id,
          event,
        }, { cause: error }),
      ));
  }

  #makeObserver(): MapStateObserver {
    const listeners = this.#listeners;
    const guarded = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (error) {
        this.#host.reportError(
          error instanceof HamokError
            ? error
            : new HamokError(`record '${this.id}': cannot deliver ${what}`, "HAMOK_ERROR", { cause: error }),
        );
      }
    };
    const fieldOf = (entry: MapStateEntry) => entry.key as HamokRecordField<T>;
    return {
      inserted: (entry, revision) => {
        if (!listeners.has("insert")) return;
        guarded("insert", () => {
          const key = fieldOf(entry);
          const value = entryValue(entry, this.#codecOf(key), this);
          this.#emit("insert", [{ key, value, revision } as HamokRecordInsertEvent<T>]);
        });
      },
      updated: (entry, oldData, oldOwner, oldCache, revision) => {
        if (!listeners.has("update")) return;
        guarded("update", () => {
          const key = fieldOf(entry);
          const codec = this.#codecOf(key);
          const oldValue = previousValue(codec, oldData, oldOwner, oldCache, this);
          const newValue = entryValue(entry, codec, this);
          this.#emit("update", [{ key, oldValue, newValue, revision } as HamokRecordUpdateEvent<T>]);
        });
      },
      removed: (entry, revision) => {
        if (!listeners.has("remove")) return;
        guarded("remove", () => {
          const key = fieldOf(entry);
          const value = entryValue(entry, this.#codecOf(key), this);
          this.#emit("remove", [{ key, value, revision } as HamokRecordRemoveEvent<T>]);
        });
      },
      cleared: (revision) => {
        if (listeners.has("clear")) this.#emit("clear", [{ revision }]);
      },
    };
  }
}

/** @internal The snapshot of a record state in parts of at most `maxEntries` fields each (see map.ts). */
export function* recordSnapshotParts(
  state: HamokMapState,
  maxEntries: number,
): IterableIterator<HamokRecordSnapshot> {
  let keys: string[] = [];
  let values: Encoded[] = [];
  let revisions: number[] = [];
  for (const entry of state.entries()) {
    if (typeof entry.key !== "string") continue;
    keys.push(entry.key);
    values.push(typeof entry.value === "string" ? entry.value : entry.value.slice());
    revisions.push(entry.revision);
    if (keys.length >= maxEntries) {
      yield { recordId: state.id, keys, values, revisions };
      keys = [];
      values = [];
      revisions = [];
    }
  }
  if (keys.length > 0) yield { recordId: state.id, keys, values, revisions };
}

/** @internal The snapshot of a record state (copies of its bytes). */
export function recordSnapshotOf(state: HamokMapState): HamokRecordSnapshot {
  const keys: string[] = [];
  const values: Encoded[] = [];
  const revisions: number[] = [];
  for (const entry of state.entries()) {
    if (typeof entry.key !== "string") continue;
    keys.push(entry.key);
    values.push(typeof entry.value === "string" ? entry.value : entry.value.slice());
    revisions.push(entry.revision);
  }
  return { recordId: state.id, keys, values, revisions };
}

function checkField(field: unknown): void {
  if (typeof field !== "string") {
    throw new HamokConfigError(`a record field name must be a string, got ${typeof field}`);
  }
}

function checkPartial<P>(partial: P): P {
  if (partial === null || typeof partial !== "object" || Array.isArray(partial)) {
    throw new HamokConfigError("expected an object of record fields");
  }
  return partial;
}

/** Sets a field on a plain object, also a field named `__proto__` (as an own property). */
function assignField(target: Record<string, unknown>, field: string, value: unknown): void {
  if (field === "__proto__") {
    Object.defineProperty(target, field, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[field] = value;
  }
}
