/**
 * HamokMap: a key-value map replicated on every peer through the Raft log. Writes are commands in
 * the log, applied in the same order on every peer; reads are local (or linearizable on request).
 * Every entry carries a revision: the log index of the command that last wrote it.
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
} from "../errors.ts";
import type { CollectionHost } from "./collection_host.ts";
import { ReadyGate } from "./ready_gate.ts";
import { decodeStored, entryKey, entryValue, previousValue } from "./entry_codec.ts";
import { LocalListeners } from "./local_listeners.ts";
import {
  type Encoded,
  type HamokMapState,
  keyIdOf,
  type MapStateEntry,
  type MapStateObserver,
  type MapWriteResult,
} from "./map_state.ts";

/**
 * The replicated-state kind of maps (the `kind` of their commands in the log).
 *
 * @example
 * ```ts
 * import { MAP_KIND } from "@hamok/core/internal";
 * console.log(MAP_KIND); // "map"
 * ```
 */
export const MAP_KIND = "map";

const DEFAULT_REQUEST_TIMEOUT = 5000;
/** Entries per command when a snapshot is imported. */
const IMPORT_CHUNK_ENTRIES = 1000;
/** Encoded bytes per command when a snapshot is imported. */
const IMPORT_CHUNK_BYTES = 256 * 1024;

/**
 * Options of `hamok.createMap(config)`.
 *
 * @example
 * ```ts
 * import { Hamok, type ValueCodec } from "@hamok/core";
 * const hamok = new Hamok();
 * const keyCodec: ValueCodec<string> = { encode: (k) => k, decode: (s) => s as string };
 * const map = hamok.createMap<string, number>({ mapId: "stock", keyCodec, requestTimeoutInMs: 3000 });
 * ```
 */
export interface HamokMapConfig<K, V> {
  /** The map id; maps with the same id on different peers share their content. Required. */
  mapId: string;
  /**
   * Codec of the keys. Default CBOR. Two keys are the same key exactly when their encodings are
   * equal, so objects as keys need a canonical codec (CBOR follows the insertion order of an object's
   * properties). A codec that returns strings is the fastest for string keys.
   */
  keyCodec?: ValueCodec<K>;
  /** Codec of the values. Default CBOR. */
  valueCodec?: ValueCodec<V>;
  /** Default timeout of writes and of linearizable reads, in ms. Default 5000. */
  requestTimeoutInMs?: number;
}

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

/**
 * A value with its revision (the log index of the command that last wrote it).
 *
 * @example
 * ```ts
 * import type { HamokMap } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * const entry = map.getEntry("k");
 * if (entry !== undefined) console.log(entry.value, entry.revision);
 * ```
 */
export interface HamokMapEntry<V> {
  /** The value. */
  readonly value: V;
  /** The revision of the value. */
  readonly revision: number;
}

/**
 * Events of a {@linkcode HamokMap}: argument tuples of the listeners. Every peer with the map fires
 * them for every committed change, in log order, with the change's revision.
 *
 * @example
 * ```ts
 * import type { HamokMap } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * map.on("update", (key, oldValue, newValue, revision) => console.log(key, oldValue, "->", newValue, revision));
 * ```
 */
export interface HamokMapEvents<K, V> {
  /** A key was added. */
  insert: [key: K, value: V, revision: number];
  /** A key got a new value (also when the new value equals the old one). */
  update: [key: K, oldValue: V, newValue: V, revision: number];
  /** A key was removed (`delete`, `remove`, `removeIf`, ...; not `clear`). */
  remove: [key: K, value: V, revision: number];
  /** Every key was removed by `clear()`. */
  clear: [revision: number];
  /** The map object was closed on this peer. */
  close: [];
}

/**
 * The content of a map: encoded keys and values (as the codecs produced them, so binary codecs
 * survive) and their revisions, index by index.
 *
 * @example
 * ```ts
 * import type { Hamok, HamokMap, HamokMapSnapshot } from "@hamok/core";
 * declare const map: HamokMap<string, number>;
 * declare const otherHamok: Hamok;
 * const snapshot: HamokMapSnapshot = map.export();
 * await otherHamok.getOrCreateMap({ mapId: snapshot.mapId }).import(snapshot);
 * ```
 */
export interface HamokMapSnapshot {
  /** The map id. */
  readonly mapId: string;
  /** The encoded keys. */
  readonly keys: readonly (string | Uint8Array)[];
  /** The encoded values, one per key. */
  readonly values: readonly (string | Uint8Array)[];
  /** The revision of each entry when exported (informative: an import writes new revisions). */
  readonly revisions?: readonly number[];
}

/**
 * A map replicated on every peer of the cluster.
 *
 * Writes (`set`, `insert`, `delete`, `updateIf`, ...) go through the Raft log and resolve once
 * applied on this peer, with the result of the command as it was applied (so a read on this peer
 * right after sees the write). Reads are local by default; pass `{ consistency: "linearizable" }`
 * for a read that sees every write completed before it started. 0, "", false and null are values like
 * any other. Values are compared by their encoding (`updateIf`, `removeIf`).
 *
 * @example
 * ```ts
 * import { Hamok } from "@hamok/core";
 * const hamok = new Hamok();
 * await hamok.join();
 * const map = hamok.createMap<string, number>({ mapId: "stock" });
 * map.on("update", (key, oldValue, newValue) => console.log(`${key}: ${oldValue} -> ${newValue}`));
 * await map.set("apples", 10); // undefined: there was no value
 * console.log(await map.insert("apples", 99)); // 10: already there, not overwritten
 * console.log(await map.updateIf("apples", 9, 10)); // true
 * console.log(map.get("apples"), map.getEntry("apples")?.revision); // 9 and its log index
 * ```
 */
export class HamokMap<K = unknown, V = unknown> {
  /** The map id. */
  readonly id: string;
  /** The key codec. */
  readonly keyCodec: ValueCodec<K>;
  /** The value codec. */
  readonly valueCodec: ValueCodec<V>;
  /** Default timeout of writes and linearizable reads, in ms. */
  readonly requestTimeoutInMs: number;
  readonly #host: CollectionHost;
  readonly #state: HamokMapState;
  readonly #listeners = new LocalListeners();
  readonly #observer: MapStateObserver;
  #closed = false;
  readonly #readyGate = new ReadyGate();

  /** @internal Use `hamok.createMap(config)`. */
  constructor(host: CollectionHost, config: HamokMapConfig<K, V>) {
    if (config === null || typeof config !== "object") {
      throw new HamokConfigError("map config must be an object");
    }
    if (typeof config.mapId !== "string" || config.mapId.length === 0) {
      throw new HamokConfigError("mapId must be a non-empty string");
    }
    this.id = config.mapId;
    this.keyCodec = checkCodec("keyCodec", config.keyCodec) ?? (cborValueCodec as ValueCodec<K>);
    this.valueCodec = checkCodec("valueCodec", config.valueCodec) ?? (cborValueCodec as ValueCodec<V>);
    this.requestTimeoutInMs = positiveInteger(
      "requestTimeoutInMs",
      config.requestTimeoutInMs,
      DEFAULT_REQUEST_TIMEOUT,
    );
    this.#host = host;
    this.#state = host.replicatedState<HamokMapState>(MAP_KIND, this.id);
    this.#observer = this.#makeObserver();
    this.#state.observer = this.#observer;
  }

  /** True once closed (by `close()` or because the peer closed). */
  get closed(): boolean {
    return this.#closed || this.#host.closed;
  }

  /** Resolves once the peer has joined and this map is caught up with the cluster. */
  get ready(): Promise<void> {
    return this.#readyGate.get(this.#host, this.requestTimeoutInMs);
  }

  /** Number of entries on this peer. */
  get size(): number {
    this.#assertOpen();
    return this.#state.size;
  }

  /** True if the map has no entries on this peer. */
  get isEmpty(): boolean {
    return this.size === 0;
  }

  /** Log index of the last command that changed this map (0: never changed). */
  get revision(): number {
    this.#assertOpen();
    return this.#state.revision;
  }

  // ------------------------------------------------------------------ reads

  /** The value of `key`, or undefined if absent (a local read). */
  get(key: K, options?: HamokLocalReadOptions): V | undefined;
  /** The value of `key`, or undefined if absent, after a read barrier (a linearizable read). */
  get(key: K, options: HamokLinearizableReadOptions): Promise<V | undefined>;
  get(key: K, options?: HamokReadOptions): V | undefined | Promise<V | undefined> {
    return this.#read(options, () => {
      const entry = this.#state.lookup(encodeValue(this.keyCodec, key));
      return entry === undefined ? undefined : entryValue(entry, this.valueCodec, this);
    });
  }

  /** The value of `key` with its revision, or undefined if absent (a local read). */
  getEntry(key: K, options?: HamokLocalReadOptions): HamokMapEntry<V> | undefined;
  /** The value of `key` with its revision, or undefined if absent (a linearizable read). */
  getEntry(key: K, options: HamokLinearizableReadOptions): Promise<HamokMapEntry<V> | undefined>;
  getEntry(
    key: K,
    options?: HamokReadOptions,
  ): HamokMapEntry<V> | undefined | Promise<HamokMapEntry<V> | undefined> {
    return this.#read(options, () => {
      const entry = this.#state.lookup(encodeValue(this.keyCodec, key));
      if (entry === undefined) return undefined;
      return { value: entryValue(entry, this.valueCodec, this), revision: entry.revision };
    });
  }

  /** Whether `key` has a value (any value, `undefined` and falsy ones included); a local read. */
  has(key: K, options?: HamokLocalReadOptions): boolean;
  /** Whether `key` has a value; a linearizable read. */
  has(key: K, options: HamokLinearizableReadOptions): Promise<boolean>;
  has(key: K, options?: HamokReadOptions): boolean | Promise<boolean> {
    return this.#read(options, () => this.#state.lookup(encodeValue(this.keyCodec, key)) !== undefined);
  }

  /** The entries of the given keys that have a value (a local read). */
  getAll(keys: Iterable<K>, options?: HamokLocalReadOptions): Map<K, V>;
  /** The entries of the given keys that have a value (a linearizable read). */
  getAll(keys: Iterable<K>, options: HamokLinearizableReadOptions): Promise<Map<K, V>>;
  getAll(keys: Iterable<K>, options?: HamokReadOptions): Map<K, V> | Promise<Map<K, V>> {
    return this.#read(options, () => {
      const found = new Map<K, V>();
      for (const key of keys) {
        const entry = this.#state.lookup(encodeValue(this.keyCodec, key));
        if (entry !== undefined) found.set(key, entryValue(entry, this.valueCodec, this));
      }
      return found;
    });
  }

  /** The keys, in insertion order (the same on every peer); a local read. */
  keys(options?: HamokLocalReadOptions): IterableIterator<K>;
  /** The keys, in insertion order, after a read barrier. */
  keys(options: HamokLinearizableReadOptions): Promise<K[]>;
  keys(options?: HamokReadOptions): IterableIterator<K> | Promise<K[]> {
    if (isLinearizable(options)) return this.#barrier(options, () => [...this.#keys()]);
    this.#assertOpen();
    return this.#keys();
  }

  /** The values, in key insertion order; a local read. */
  values(options?: HamokLocalReadOptions): IterableIterator<V>;
  /** The values, in key insertion order, after a read barrier. */
  values(options: HamokLinearizableReadOptions): Promise<V[]>;
  values(options?: HamokReadOptions): IterableIterator<V> | Promise<V[]> {
    if (isLinearizable(options)) return this.#barrier(options, () => [...this.#values()]);
    this.#assertOpen();
    return this.#values();
  }

  /** The `[key, value]` pairs, in insertion order; a local read. */
  entries(options?: HamokLocalReadOptions): IterableIterator<[K, V]>;
  /** The `[key, value]` pairs, in insertion order, after a read barrier. */
  entries(options: HamokLinearizableReadOptions): Promise<[K, V][]>;
  entries(options?: HamokReadOptions): IterableIterator<[K, V]> | Promise<[K, V][]> {
    if (isLinearizable(options)) return this.#barrier(options, () => [...this.#entries()]);
    this.#assertOpen();
    return this.#entries();
  }

  /** Iterates the `[key, value]` pairs (a local read). */
  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  // ------------------------------------------------------------------ writes

  /**
   * Sets `key` to `value`. Resolves with the previous value (undefined if there was none). With
   * `{ ifRevision }` it writes only if the entry's revision matches, else rejects with
   * {@linkcode HamokConflictError} and writes nothing.
   */
  async set(key: K, value: V, options?: HamokCasWriteOptions): Promise<V | undefined> {
    this.#assertOpen();
    const ifRevision = checkRevision(options?.ifRevision);
    const k = encodeValue(this.keyCodec, key);
    const v = encodeValue(this.valueCodec, value);
    const args = ifRevision === undefined ? [k, v] : [k, v, ifRevision];
    const result = await this.#propose("set", args, options) as MapWriteResult;
    return this.#writeOutcome(result, ifRevision, key);
  }

  /** Sets every given entry in one command. Resolves with the previous values of the keys that had one. */
  async setAll(
    entries: ReadonlyMap<K, V> | Iterable<readonly [K, V]>,
    options?: HamokWriteOptions,
  ): Promise<Map<K, V>> {
    this.#assertOpen();
    const { pairs, byId } = this.#encodePairs(entries);
    if (pairs.length === 0) return new Map();
    const result = await this.#propose("setAll", [pairs], options) as [Encoded, Encoded][];
    return this.#pairsToMap(result, byId);
  }

  /**
   * Sets `key` to `value` only if `key` has no value. Resolves with the existing value (which is
   * kept), or undefined if `value` was inserted.
   */
  async insert(key: K, value: V, options?: HamokWriteOptions): Promise<V | undefined> {
    this.#assertOpen();
    const args = [encodeValue(this.keyCodec, key), encodeValue(this.valueCodec, value)];
    const result = await this.#propose("insert", args, options) as Encoded | null;
    return result === null ? undefined : decodeStored(this.valueCodec, result);
  }

  /**
   * Inserts every given entry whose key has no value, in one command. Resolves with the existing
   * values of the keys that were not inserted.
   */
  async insertAll(
    entries: ReadonlyMap<K, V> | Iterable<readonly [K, V]>,
    options?: HamokWriteOptions,
  ): Promise<Map<K, V>> {
    this.#assertOpen();
    const { pairs, byId } = this.#encodePairs(entries);
    if (pairs.length === 0) return new Map();
    const result = await this.#propose("insertAll", [pairs], options) as [Encoded, Encoded][];
    return this.#pairsToMap(result, byId);
  }

  /**
   * Removes `key`. Resolves with true if it had a value. With `{ ifRevision }` it removes only if the
   * entry's revision matches, else rejects with {@linkcode HamokConflictError}.
   */
  async delete(key: K, options?: HamokCasWriteOptions): Promise<boolean> {
    this.#assertOpen();
    const ifRevision = checkRevision(options?.ifRevision);
    const k = encodeValue(this.keyCodec, key);
    const result = await this.#propose("delete", ifRevision === undefined ? [k] : [k, ifRevision], options);
    this.#checkConflict(result as MapWriteResult, ifRevision, key);
    return (result as MapWriteResult)[1] !== null;
  }

  /** Removes the given keys in one command. Resolves with the keys that had a value. */
  async deleteAll(keys: Iterable<K>, options?: HamokWriteOptions): Promise<Set<K>> {
    const removed = await this.removeAll(keys, options);
    return new Set(removed.keys());
  }

  /** Removes `key`. Resolves with true if it had a value. */
  async remove(key: K, options?: HamokWriteOptions): Promise<boolean> {
    this.#assertOpen();
    const result = await this.#propose("delete", [encodeValue(this.keyCodec, key)], options);
    return (result as MapWriteResult)[1] !== null;
  }

  /** Removes the given keys in one command. Resolves with the removed entries. */
  async removeAll(keys: Iterable<K>, options?: HamokWriteOptions): Promise<Map<K, V>> {
    this.#assertOpen();
    const encoded: Encoded[] = [];
    const byId = new Map<string, K>();
    for (const key of keys) {
      const k = encodeValue(this.keyCodec, key);
      encoded.push(k);
      byId.set(keyIdOf(k), key);
    }
    if (encoded.length === 0) return new Map();
    const result = await this.#propose("deleteAll", [encoded], options) as [Encoded, Encoded][];
    return this.#pairsToMap(result, byId);
  }

  /**
   * Replaces the value of `key` with `value` only if its current value equals `oldValue` (compared by
   * encoding). Resolves with true if replaced, false otherwise (also if `key` has no value).
   */
  async updateIf(key: K, value: V, oldValue: V, options?: HamokWriteOptions): Promise<boolean> {
    this.#assertOpen();
    const k = encodeValue(this.keyCodec, key);
    const expected = encodeValue(this.valueCodec, oldValue);
    const args = [[[k, expected]], [[k, encodeValue(this.valueCodec, value)]]];
    return await this.#propose("cas", args, options) === true;
  }

  /**
   * Removes `key` only if its current value equals `oldValue` (compared by encoding). Resolves with
   * true if removed, false otherwise.
   */
  async removeIf(key: K, oldValue: V, options?: HamokWriteOptions): Promise<boolean> {
    this.#assertOpen();
    const k = encodeValue(this.keyCodec, key);
    const args = [[[k, encodeValue(this.valueCodec, oldValue)]], [[k, null]]];
    return await this.#propose("cas", args, options) === true;
  }

  /** Removes every entry; every peer fires `clear`. */
  async clear(options?: HamokWriteOptions): Promise<void> {
    this.#assertOpen();
    await this.#propose("clear", [], options);
  }

  // ------------------------------------------------------------------ events

  /** Adds a listener of a map event. A listener that throws is reported on the peer's `error` event. */
  on<E extends keyof HamokMapEvents<K, V>>(
    event: E,
    listener: (...args: HamokMapEvents<K, V>[E]) => void,
  ): this {
    this.#listeners.add(event, checkListener(listener), false);
    return this;
  }

  /** Adds a listener that is removed after its first call. */
  once<E extends keyof HamokMapEvents<K, V>>(
    event: E,
    listener: (...args: HamokMapEvents<K, V>[E]) => void,
  ): this {
    this.#listeners.add(event, checkListener(listener), true);
    return this;
  }

  /** Removes a listener. */
  off<E extends keyof HamokMapEvents<K, V>>(
    event: E,
    listener: (...args: HamokMapEvents<K, V>[E]) => void,
  ): this {
    this.#listeners.remove(event, listener as (...args: unknown[]) => void);
    return this;
  }

  // ------------------------------------------------------------------ snapshots and lifecycle

  /** The content of this peer's copy of the map (copies of the encoded keys and values). */
  export(): HamokMapSnapshot {
    this.#assertOpen();
    return mapSnapshotOf(this.#state);
  }

  /**
   * Merges a snapshot into the map through consensus: every entry of the snapshot is set (keys not in
   * it are kept). Large snapshots are split into several commands, so an import is atomic only
   * when it fits one command (1000 entries, 256 KiB). Resolves once every part is applied here.
   */
  async import(snapshot: HamokMapSnapshot, options?: Pick<HamokWriteOptions, "timeoutMs">): Promise<void> {
    this.#assertOpen();
    if (snapshot?.mapId !== this.id) {
      throw new HamokConfigError(`the snapshot is of map '${String(snapshot?.mapId)}', not of '${this.id}'`);
    }
    const timeoutMs = positiveInteger("timeoutMs", options?.timeoutMs, this.requestTimeoutInMs);
    await importEntries(this.#host, MAP_KIND, this.id, snapshot.keys, snapshot.values, timeoutMs);
  }

  /**
   * Closes the map object on this peer: listeners are dropped (after `close` fired) and writes reject
   * with {@linkcode HamokClosedError}. The replicated content stays in the cluster (and on this peer:
   * creating the map again shows it at once).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#state.observer === this.#observer) this.#state.observer = undefined;
    this.#host.detach(MAP_KIND, this.id);
    this.#emit("close", []);
    this.#listeners.clear();
  }

  /** @internal Called by the peer when it closes. */
  closeByHost(): void {
    this.close();
  }

  // ------------------------------------------------------------------ internals

  #assertOpen(): void {
    if (this.#closed || this.#host.closed) throw new HamokClosedError(`map '${this.id}' is closed`);
  }

  #read<T>(options: HamokReadOptions | undefined, read: () => T): T | Promise<T> {
    if (isLinearizable(options)) return this.#barrier(options, read);
    this.#assertOpen();
    return read();
  }

  #barrier<T>(options: HamokLinearizableReadOptions, read: () => T): Promise<T> {
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

  *#keys(): IterableIterator<K> {
    for (const entry of this.#state.entries()) yield entryKey(entry, this.keyCodec, this);
  }

  *#values(): IterableIterator<V> {
    for (const entry of this.#state.entries()) yield entryValue(entry, this.valueCodec, this);
  }

  *#entries(): IterableIterator<[K, V]> {
    for (const entry of this.#state.entries()) {
      yield [entryKey(entry, this.keyCodec, this), entryValue(entry, this.valueCodec, this)];
    }
  }

  #propose(op: string, args: unknown, options: HamokWriteOptions | undefined): Promise<unknown> {
    return this.#host.propose(MAP_KIND, this.id, op, args, writeOptions(options, this.requestTimeoutInMs));
  }

  #writeOutcome(result: MapWriteResult, ifRevision: number | undefined, key: K): V | undefined {
    this.#checkConflict(result, ifRevision, key);
    const previous = result[1] as Encoded | null;
    return previous === null ? undefined : decodeStored(this.valueCodec, previous);
  }

  #checkConflict(result: MapWriteResult, ifRevision: number | undefined, key: K): void {
    if (result[0] !== 1) return;
    throw new HamokConflictError(
      `map '${this.id}': key ${describeKey(key)} is at revision ${result[1]}, not ${ifRevision}`,
      { expectedRevision: ifRevision ?? 0, actualRevision: result[1] },
    );
  }

  #encodePairs(entries: ReadonlyMap<K, V> | Iterable<readonly [K, V]>): {
    pairs: [Encoded, Encoded][];
    byId: Map<string, K>;
  } {
    const pairs: [Encoded, Encoded][] = [];
    const byId = new Map<string, K>();
    for (const [key, value] of entries) {
      const k = encodeValue(this.keyCodec, key);
      pairs.push([k, encodeValue(this.valueCodec, value)]);
      byId.set(keyIdOf(k), key);
    }
    return { pairs, byId };
  }

  /** Result pairs back to the application's keys (the ones it passed) and decoded values. */
  #pairsToMap(pairs: [Encoded, Encoded][], byId: Map<string, K>): Map<K, V> {
    const out = new Map<K, V>();
    for (const [k, v] of pairs) {
      const key = byId.get(keyIdOf(k)) ?? decodeStored(this.keyCodec, k);
      out.set(key, decodeStored(this.valueCodec, v));
    }
    return out;
  }

  #emit<E extends keyof HamokMapEvents<K, V>>(event: E, args: HamokMapEvents<K, V>[E]): void {
    this.#listeners.deliver(event, args, (error) =>
      this.#host.reportError(
        new HamokListenerError(`a listener of '${event}' on map '${this.id}' threw`, {
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
            : new HamokError(`map '${this.id}': cannot deliver ${what}`, "HAMOK_ERROR", { cause: error }),
        );
      }
    };
    return {
      inserted: (entry: MapStateEntry, revision: number) => {
        if (!listeners.has("insert")) return;
        guarded("insert", () =>
          this.#emit("insert", [
            entryKey(entry, this.keyCodec, this),
            entryValue(entry, this.valueCodec, this),
            revision,
          ]));
      },
      updated: (entry, oldValue, oldOwner, oldCache, revision) => {
        if (!listeners.has("update")) return;
        guarded("update", () =>
          this.#emit("update", [
            entryKey(entry, this.keyCodec, this),
            previousValue(this.valueCodec, oldValue, oldOwner, oldCache, this),
            entryValue(entry, this.valueCodec, this),
            revision,
          ]));
      },
      removed: (entry, revision) => {
        if (!listeners.has("remove")) return;
        guarded("remove", () =>
          this.#emit("remove", [
            entryKey(entry, this.keyCodec, this),
            entryValue(entry, this.valueCodec, this),
            revision,
          ]));
      },
      cleared: (revision) => {
        if (listeners.has("clear")) this.#emit("clear", [revision]);
      },
    };
  }
}

/**
 * @internal The snapshot of a map state in parts of at most `maxEntries` entries each, in insertion
 * order (copies of its bytes). Each part is taken when it is asked for: held across writes, the
 * iteration goes on with the entries after the last one given.
 */
export function* mapSnapshotParts(
  state: HamokMapState,
  maxEntries: number,
): IterableIterator<HamokMapSnapshot> {
  let keys: Encoded[] = [];
  let values: Encoded[] = [];
  let revisions: number[] = [];
  for (const entry of state.entries()) {
    keys.push(copyEncoded(entry.key));
    values.push(copyEncoded(entry.value));
    revisions.push(entry.revision);
    if (keys.length >= maxEntries) {
      yield { mapId: state.id, keys, values, revisions };
      keys = [];
      values = [];
      revisions = [];
    }
  }
  if (keys.length > 0) yield { mapId: state.id, keys, values, revisions };
}

/** @internal The snapshot of a map state (copies of its bytes). */
export function mapSnapshotOf(state: HamokMapState): HamokMapSnapshot {
  const keys: Encoded[] = [];
  const values: Encoded[] = [];
  const revisions: number[] = [];
  for (const entry of state.entries()) {
    keys.push(copyEncoded(entry.key));
    values.push(copyEncoded(entry.value));
    revisions.push(entry.revision);
  }
  return { mapId: state.id, keys, values, revisions };
}

/**
 * @internal Sets the given encoded entries of a map or record through consensus, in commands of at
 * most 1000 entries and 256 KiB. With `stringKeys`, every key must be a string (record fields).
 */
export async function importEntries(
  host: CollectionHost,
  kind: string,
  id: string,
  keys: readonly Encoded[],
  values: readonly Encoded[],
  timeoutMs: number,
  stringKeys = false,
): Promise<void> {
  if (typeof id !== "string" || id.length === 0) throw new HamokConfigError(`a ${kind} snapshot needs an id`);
  if (!Array.isArray(keys) || !Array.isArray(values) || keys.length !== values.length) {
    throw new HamokConfigError(`a ${kind} snapshot needs keys and values arrays of the same length`);
  }
  positiveInteger("timeoutMs", timeoutMs, timeoutMs);
  const pairs: [Encoded, Encoded][] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = values[i];
    if (!(stringKeys ? typeof key === "string" : isEncodedValue(key)) || !isEncodedValue(value)) {
      throw new HamokConfigError(`${kind} snapshot entry ${i} has an invalid key or value`);
    }
    pairs.push([key, value]);
  }
  let part: [Encoded, Encoded][] = [];
  let bytes = 0;
  for (const pair of pairs) {
    const size = pair[0].length + pair[1].length;
    if (part.length >= IMPORT_CHUNK_ENTRIES || (part.length > 0 && bytes + size > IMPORT_CHUNK_BYTES)) {
      await host.propose(kind, id, "setAll", [part], { timeoutMs });
      part = [];
      bytes = 0;
    }
    part.push(pair);
    bytes += size;
  }
  if (part.length > 0) await host.propose(kind, id, "setAll", [part], { timeoutMs });
}

/** @internal Write options to proposal options, validated. */
export function writeOptions(
  options: HamokWriteOptions | undefined,
  defaultTimeoutMs: number,
): { timeoutMs: number; requestId?: string } {
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
  return { timeoutMs, requestId };
}

/** @internal Validates `ifRevision` (a non-negative integer, or undefined). */
export function checkRevision(revision: unknown): number | undefined {
  if (revision === undefined) return undefined;
  if (typeof revision !== "number" || !Number.isInteger(revision) || revision < 0) {
    throw new HamokConfigError(`ifRevision must be a non-negative integer, got ${String(revision)}`);
  }
  return revision;
}

/** @internal Whether read options ask for a linearizable read (and are valid). */
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

/** @internal Validates a codec option. */
export function checkCodec<T>(name: string, codec: ValueCodec<T> | undefined): ValueCodec<T> | undefined {
  if (codec === undefined) return undefined;
  if (typeof codec?.encode !== "function" || typeof codec?.decode !== "function") {
    throw new HamokConfigError(`${name} must have encode and decode functions`);
  }
  return codec;
}

/** @internal Validates a listener. */
export function checkListener(listener: unknown): (...args: unknown[]) => void {
  if (typeof listener !== "function") {
    throw new HamokConfigError(
      `a listener must be a function, got ${listener === null ? "null" : typeof listener}`,
    );
  }
  return listener as (...args: unknown[]) => void;
}

function isEncodedValue(value: unknown): value is Encoded {
  return typeof value === "string" || value instanceof Uint8Array;
}

function copyEncoded(value: Encoded): Encoded {
  return typeof value === "string" ? value : value.slice();
}

function describeKey(key: unknown): string {
  if (typeof key === "string") return JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}...` : key);
  if (typeof key === "number" || typeof key === "bigint" || typeof key === "boolean") return String(key);
  return `(${key === null ? "null" : typeof key})`;
}
