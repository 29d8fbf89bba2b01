/**
 * HamokRecord: one typed object replicated on every peer, stored field by field (a map of field
 * names to encoded values, each with its revision) so that single fields change without rewriting
 * the whole object, and several fields can be compared and set atomically.
 *
 * @module
 */

import { cborValueCodec, encodeValue, type ValueCodec } from "../codec/value_codec.ts";
import { assertWellFormed, isWellFormedString } from "../codec/well_formed.ts";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokOutcomeUnknownError,
  HamokTimeoutError,
} from "../errors.ts";
import type { TimerHandle } from "../cluster/scheduler.ts";
import type { CollectionHost } from "./collection_host.ts";
import {
  checkCodec,
  checkRevision,
  collectionIdentity,
  type HamokCasWriteOptions,
  type HamokLinearizableReadOptions,
  type HamokLocalReadOptions,
  type HamokReadOptions,
  type HamokWriteOptions,
} from "./collection_base.ts";
import { decodeStored, entryValue, previousValue } from "./entry_codec.ts";
import type { HamokMapEntry } from "./map.ts";
import { allEntries, entryParts, MapStateView } from "./map_base.ts";
import type { Encoded, HamokMapState, MapStateEntry, MapWriteResult } from "./map_state.ts";

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
 * Some fields of a record, each possibly `undefined` (in a write: removed; in an expectation: must be
 * absent), also under `exactOptionalPropertyTypes`.
 *
 * @example
 * ```ts
 * import type { HamokRecordPartial } from "@hamok/core";
 * type Job = { owner: string; state: string };
 * const release: HamokRecordPartial<Job> = { owner: undefined, state: "idle" };
 * console.log(release.state); // "idle"
 * ```
 */
export type HamokRecordPartial<T> = { [K in keyof T]?: T[K] | undefined };

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
  initialObject?: HamokRecordPartial<T>;
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
 * their encoding. A field name with a lone UTF-16 surrogate is refused with `HamokCodecError` (UTF-8
 * would carry it as U+FFFD, so two names would become one field).
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
export class HamokRecord<T extends Record<string, unknown> = Record<string, unknown>>
  extends MapStateView<HamokRecordEvents<T>> {
  /** The per-field codecs given in the config. */
  readonly payloadCodecs: ReadonlyMap<string, ValueCodec<unknown>>;
  readonly #init: Promise<void>;
  #wake: (() => void) | undefined;

  /** @internal Use `hamok.createRecord(config)`. */
  constructor(host: CollectionHost, config: HamokRecordConfig<T>) {
    const identity = collectionIdentity(config, RECORD_KIND, "record", "recordId");
    const codecs = config.payloadCodecs ?? new Map();
    if (!(codecs instanceof Map)) {
      throw new HamokConfigError("payloadCodecs must be a Map from field name to codec");
    }
    for (const [field, codec] of codecs) checkCodec(`payloadCodecs for '${String(field)}'`, codec);
    const initial = config.initialObject;
    if (initial !== undefined && (initial === null || typeof initial !== "object")) {
      throw new HamokConfigError("initialObject must be an object");
    }
    // encoded now, so that a codec error throws here and not in the background
    const initialPairs = initial === undefined
      ? []
      : encodeFields(initial, codecs).filter((p): p is [string, Encoded] => p[1] !== null);
    super(host, identity);
    this.payloadCodecs = codecs;
    this.#init = this.#initialize(initialPairs);
    this.#init.catch(() => {});
  }

  /**
   * Resolves once the peer has joined, the record is caught up with the cluster and the
   * `initialObject` fields are applied. Rejects with `HamokTimeoutError` after `requestTimeoutInMs`
   * (the initialization goes on; `ready` can be awaited again) and with `HamokClosedError` if closed.
   */
  override get ready(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    const timeoutMs = this.requestTimeoutInMs;
    let timer: TimerHandle | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      timer = this.host.scheduler.setTimeout(() => {
        reject(
          new HamokTimeoutError(`record '${this.id}' was not ready within ${timeoutMs} ms`, { timeoutMs }),
        );
      }, timeoutMs);
      this.#init.then(
        () => {
          this.host.scheduler.clearTimeout(timer);
          resolve();
        },
        (error) => {
          this.host.scheduler.clearTimeout(timer);
          reject(error);
        },
      );
    });
    // closing ends the wait at once (it waited for its timeout, and then rejected as a timeout)
    return this.untilClosed(ready, () => this.host.scheduler.clearTimeout(timer));
  }

  /** A new object with every field that has a value (a local read). */
  get instance(): Partial<T> {
    this.assertOpen();
    return this.#instance();
  }

  // ------------------------------------------------------------------ reads

  /** A new object with every field that has a value (a local read, like `instance`). */
  getInstance(options?: HamokLocalReadOptions): Partial<T>;
  /** A new object with every field that has a value, after a read barrier (a linearizable read). */
  getInstance(options: HamokLinearizableReadOptions): Promise<Partial<T>>;
  getInstance(options?: HamokReadOptions): Partial<T> | Promise<Partial<T>> {
    return this.read(options, () => this.#instance());
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
    return this.read(options, () => {
      const entry = this.state.lookup(field);
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
    return this.read(options, () => {
      const entry = this.state.lookup(field);
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
    return this.read(options, () => this.state.lookup(field) !== undefined);
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
    this.assertOpen();
    checkField(field);
    const ifRevision = checkRevision(options?.ifRevision);
    let result: MapWriteResult;
    if (value === undefined) {
      result = await this.propose(
        "delete",
        ifRevision === undefined ? [field] : [field, ifRevision],
        options,
      );
    } else {
      const v = encodeValue(this.#codecOf(field), value);
      result = await this.propose(
        "set",
        ifRevision === undefined ? [field, v] : [field, v, ifRevision],
        options,
      );
    }
    return this.writtenValue(result, ifRevision, field, this.#codecOf(field)) as T[F] | undefined;
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
    this.assertOpen();
    checkField(field);
    if (value === undefined) throw new HamokConfigError(`cannot insert undefined into field '${field}'`);
    const result = await this.propose("insert", [field, encodeValue(this.#codecOf(field), value)], options);
    return result === null ? undefined : decodeStored(this.#codecOf(field), result) as T[F];
  }

  /**
   * Removes `field`. Resolves with true if it had a value. With `{ ifRevision }` it removes only if the
   * field's revision matches, else rejects with {@linkcode HamokConflictError}.
   */
  async delete(field: HamokRecordField<T>, options?: HamokCasWriteOptions): Promise<boolean> {
    this.assertOpen();
    checkField(field);
    const ifRevision = checkRevision(options?.ifRevision);
    const result = await this.propose(
      "delete",
      ifRevision === undefined ? [field] : [field, ifRevision],
      options,
    );
    return this.written(result, ifRevision, field) !== null;
  }

  /** Removes every field; every peer fires `clear`. */
  async clear(options?: HamokWriteOptions): Promise<void> {
    this.assertOpen();
    await this.propose("clear", [], options);
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
    this.assertOpen();
    checkField(field);
    const codec = this.#codecOf(field);
    const expected = oldValue === undefined ? null : encodeValue(codec, oldValue);
    const next = value === undefined ? null : encodeValue(codec, value);
    return await this.propose("cas", [[[field, expected]], [[field, next]]], options) === true;
  }

  /**
   * Inserts every field of `partial` that the record has no value for, in one command. Resolves with
   * the fields that already had a value (with those values, which are kept), or undefined if every
   * field was inserted.
   */
  async insertInstance(
    partial: HamokRecordPartial<T>,
    options?: HamokWriteOptions,
  ): Promise<Partial<T> | undefined> {
    this.assertOpen();
    const pairs = this.#encodeFields(checkPartial(partial)).filter((p): p is [string, Encoded] =>
      p[1] !== null
    );
    if (pairs.length === 0) return undefined;
    const existing = await this.propose("insertAll", [pairs], options);
    if (existing.length === 0) return undefined;
    const out: Record<string, unknown> = {};
    for (const [field, value] of existing) {
      assignField(out, field as string, decodeStored(this.#codecOf(field as HamokRecordField<T>), value));
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
    newPartial: HamokRecordPartial<T>,
    oldPartial: HamokRecordPartial<T>,
    options?: HamokWriteOptions,
  ): Promise<boolean> {
    this.assertOpen();
    const writes = this.#encodeFields(checkPartial(newPartial));
    const expected = this.#encodeFields(checkPartial(oldPartial));
    return await this.propose("cas", [expected, writes], options) === true;
  }

  // ------------------------------------------------------------------ snapshots

  /** The content of this peer's copy of the record (copies of the encoded values). */
  export(): HamokRecordSnapshot {
    this.assertOpen();
    return recordSnapshotOf(this.state);
  }

  /**
   * Merges a snapshot into the record through consensus: every field of the snapshot is set (fields
   * not in it are kept). Resolves once applied on this peer.
   *
   * Every field is checked before anything is proposed, so a snapshot that fails a check writes
   * nothing: `HamokConfigError` if it is of another record, or its `keys` (field names: strings) and
   * `values` (strings or `Uint8Array`s) are not arrays of the same length; `HamokCodecError` (naming
   * the entry) for a field name or string value with a lone UTF-16 surrogate (UTF-8 would carry it as
   * U+FFFD), or a value the field's codec cannot decode.
   */
  async import(snapshot: HamokRecordSnapshot, options?: Pick<HamokWriteOptions, "timeoutMs">): Promise<void> {
    this.assertOpen();
    if (snapshot?.recordId !== this.id) {
      throw new HamokConfigError(
        `the snapshot is of record '${String(snapshot?.recordId)}', not of '${this.id}'`,
      );
    }
    await this.importSnapshot(snapshot.keys, snapshot.values, options, true);
  }

  // ------------------------------------------------------------------ internals

  /**
   * Closes the record object on this peer: listeners are dropped (after `close` fired), writes reject
   * with {@linkcode HamokClosedError}, and a pending initialization stops. The replicated content
   * stays in the cluster.
   */
  override close(): void {
    super.close();
  }

  /** @internal A pending initialization stops. */
  protected override onClose(): void {
    super.onClose();
    this.#wake?.();
  }

  /** @internal */
  protected onInserted(entry: MapStateEntry, revision: number): void {
    const key = entry.key as HamokRecordField<T>;
    const value = entryValue(entry, this.#codecOf(key), this);
    this.deliver("insert", [{ key, value, revision } as HamokRecordInsertEvent<T>]);
  }

  /** @internal */
  protected onUpdated(
    entry: MapStateEntry,
    oldData: Encoded,
    oldOwner: object | undefined,
    oldCache: unknown,
    revision: number,
  ): void {
    const key = entry.key as HamokRecordField<T>;
    const codec = this.#codecOf(key);
    const oldValue = previousValue(codec, oldData, oldOwner, oldCache, this);
    const newValue = entryValue(entry, codec, this);
    this.deliver("update", [{ key, oldValue, newValue, revision } as HamokRecordUpdateEvent<T>]);
  }

  /** @internal */
  protected onRemoved(entry: MapStateEntry, revision: number): void {
    const key = entry.key as HamokRecordField<T>;
    const value = entryValue(entry, this.#codecOf(key), this);
    this.deliver("remove", [{ key, value, revision } as HamokRecordRemoveEvent<T>]);
  }

  /** @internal */
  protected onCleared(revision: number): void {
    this.deliver("clear", [{ revision }]);
  }

  /** @internal */
  protected describeKey(field: unknown): string {
    return `field '${String(field)}'`;
  }

  /** @internal Field names are not encoded. */
  protected importKeyCodec(): undefined {
    return undefined;
  }

  /** @internal */
  protected importValueCodec(field: Encoded): ValueCodec<unknown> {
    return codecOf(this.payloadCodecs, field as string);
  }

  #codecOf(field: HamokRecordField<T>): ValueCodec<unknown> {
    return codecOf(this.payloadCodecs, field);
  }

  #instance(): Partial<T> {
    const out: Record<string, unknown> = {};
    for (const entry of this.state.entries()) {
      const field = entry.key as string;
      assignField(out, field, entryValue(entry, this.#codecOf(field as HamokRecordField<T>), this));
    }
    return out as Partial<T>;
  }

  #encodeFields(partial: HamokRecordPartial<T>): [string, Encoded | null][] {
    return encodeFields(partial, this.payloadCodecs);
  }

  /** Waits for the peer, then inserts the initial fields; retries until done or closed. */
  async #initialize(pairs: [string, Encoded][]): Promise<void> {
    const timeoutMs = this.requestTimeoutInMs;
    for (;;) {
      this.assertOpen();
      try {
        await this.host.whenReady(timeoutMs);
        break;
      } catch (error) {
        this.assertOpen();
        if (error instanceof HamokClosedError) throw error;
        if (!(error instanceof HamokTimeoutError)) await this.#pause(Math.min(200, timeoutMs));
      }
    }
    if (pairs.length === 0) return;
    let requestId: string | undefined;
    for (;;) {
      this.assertOpen();
      try {
        await this.proposeWith("insertAll", [pairs], { timeoutMs, requestId });
        return;
      } catch (error) {
        this.assertOpen();
        if (error instanceof HamokClosedError || error instanceof HamokConfigError) throw error;
        // the same request id again: the initial insert is applied at most once
        if (error instanceof HamokOutcomeUnknownError) requestId = error.requestId;
        this.host.logger.debug(`record '${this.id}': inserting the initial object failed, retrying`, error);
        await this.#pause(Math.min(200, timeoutMs));
      }
    }
  }

  /** Sleeps `ms`, or less if the record closes meanwhile. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.host.scheduler.clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = this.host.scheduler.setTimeout(done, ms);
      this.#wake = done;
    });
  }
}

/** @internal The snapshot of a record state in parts of at most `maxEntries` fields each (see map.ts). */
export function* recordSnapshotParts(
  state: HamokMapState,
  maxEntries: number,
): IterableIterator<HamokRecordSnapshot> {
  for (const part of entryParts(state, maxEntries, true)) {
    yield { recordId: state.id, ...part, keys: part.keys as string[] };
  }
}

/** @internal The snapshot of a record state (copies of its bytes). */
export function recordSnapshotOf(state: HamokMapState): HamokRecordSnapshot {
  const entries = allEntries(state, true);
  return { recordId: state.id, ...entries, keys: entries.keys as string[] };
}

function codecOf(codecs: ReadonlyMap<string, ValueCodec<unknown>>, field: string): ValueCodec<unknown> {
  return codecs.get(field) ?? cborValueCodec;
}

/** `[field, encoded value or null (undefined)]` for every own enumerable field. */
function encodeFields(
  partial: Record<string, unknown>,
  codecs: ReadonlyMap<string, ValueCodec<unknown>>,
): [string, Encoded | null][] {
  const pairs: [string, Encoded | null][] = [];
  for (const field of Object.keys(partial)) {
    if (!isWellFormedString(field)) assertWellFormed("a record field name", field, HamokCodecError);
    const value = partial[field];
    pairs.push([field, value === undefined ? null : encodeValue(codecOf(codecs, field), value)]);
  }
  return pairs;
}

function checkField(field: unknown): void {
  if (typeof field !== "string") {
    throw new HamokConfigError(`a record field name must be a string, got ${typeof field}`);
  }
  if (!isWellFormedString(field)) assertWellFormed("a record field name", field, HamokCodecError);
}

function checkPartial<P>(partial: P): P {
  if (
    partial === null || typeof partial !== "object" || Array.isArray(partial) ||
    partial instanceof Map || partial instanceof Set
  ) {
    // a Map's entries are not its fields: it wrote nothing, silently
    throw new HamokConfigError(
      "expected an object of record fields (a plain object, not an array, Map or Set)",
    );
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
