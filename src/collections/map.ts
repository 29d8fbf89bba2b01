/**
 * HamokMap: a key-value map replicated on every peer through the Raft log. Writes are commands in
 * the log, applied in the same order on every peer; reads are local (or linearizable on request).
 * Every entry carries a revision: the log index of the command that last wrote it.
 *
 * @module
 */

import { cborValueCodec, encodeValue, type ValueCodec } from "../codec/value_codec.ts";
import { HamokConfigError } from "../errors.ts";
import type { CollectionHost } from "./collection_host.ts";
import {
  checkCodec,
  checkEntries,
  checkEntry,
  checkKeys,
  checkRevision,
  collectionIdentity,
  type HamokCasWriteOptions,
  type HamokLinearizableReadOptions,
  type HamokLocalReadOptions,
  type HamokReadOptions,
  type HamokWriteOptions,
  isLinearizable,
} from "./collection_base.ts";
import { decodeStored, entryKey, entryValue, previousValue } from "./entry_codec.ts";
import { allEntries, entryParts, MapStateView } from "./map_base.ts";
import {
  type Encoded,
  type EncodedEntry,
  type HamokMapState,
  keyIdOf,
  type MapStateEntry,
} from "./map_state.ts";

export type {
  HamokCasWriteOptions,
  HamokLinearizableReadOptions,
  HamokLocalReadOptions,
  HamokReadOptions,
  HamokWriteOptions,
} from "./collection_base.ts";

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
  keyCodec?: ValueCodec<K> | undefined;
  /** Codec of the values. Default CBOR. */
  valueCodec?: ValueCodec<V> | undefined;
  /** Default timeout of writes and of linearizable reads, in ms. Default 5000. */
  requestTimeoutInMs?: number;
}

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
export class HamokMap<K = unknown, V = unknown> extends MapStateView<HamokMapEvents<K, V>> {
  /** The key codec. */
  readonly keyCodec: ValueCodec<K>;
  /** The value codec. */
  readonly valueCodec: ValueCodec<V>;

  /** @internal Use `hamok.createMap(config)`. */
  constructor(host: CollectionHost, config: HamokMapConfig<K, V>) {
    const identity = collectionIdentity(config, MAP_KIND, "map", "mapId");
    const keyCodec = checkCodec("keyCodec", config.keyCodec) ?? (cborValueCodec as ValueCodec<K>);
    const valueCodec = checkCodec("valueCodec", config.valueCodec) ?? (cborValueCodec as ValueCodec<V>);
    super(host, identity);
    this.keyCodec = keyCodec;
    this.valueCodec = valueCodec;
  }

  /** True if the map has no entries on this peer. */
  get isEmpty(): boolean {
    return this.size === 0;
  }

  // ------------------------------------------------------------------ reads

  /** The value of `key`, or undefined if absent (a local read). */
  get(key: K, options?: HamokLocalReadOptions): V | undefined;
  /** The value of `key`, or undefined if absent, after a read barrier (a linearizable read). */
  get(key: K, options: HamokLinearizableReadOptions): Promise<V | undefined>;
  get(key: K, options?: HamokReadOptions): V | undefined | Promise<V | undefined> {
    return this.read(options, () => {
      const entry = this.state.lookup(encodeValue(this.keyCodec, key));
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
    return this.read(options, () => {
      const entry = this.state.lookup(encodeValue(this.keyCodec, key));
      if (entry === undefined) return undefined;
      return { value: entryValue(entry, this.valueCodec, this), revision: entry.revision };
    });
  }

  /** Whether `key` has a value (any value, `undefined` and falsy ones included); a local read. */
  has(key: K, options?: HamokLocalReadOptions): boolean;
  /** Whether `key` has a value; a linearizable read. */
  has(key: K, options: HamokLinearizableReadOptions): Promise<boolean>;
  has(key: K, options?: HamokReadOptions): boolean | Promise<boolean> {
    return this.read(options, () => this.state.lookup(encodeValue(this.keyCodec, key)) !== undefined);
  }

  /** The entries of the given keys that have a value (a local read). */
  getAll(keys: Iterable<K>, options?: HamokLocalReadOptions): Map<K, V>;
  /** The entries of the given keys that have a value (a linearizable read). */
  getAll(keys: Iterable<K>, options: HamokLinearizableReadOptions): Promise<Map<K, V>>;
  getAll(keys: Iterable<K>, options?: HamokReadOptions): Map<K, V> | Promise<Map<K, V>> {
    return this.read(options, () => {
      const found = new Map<K, V>();
      for (const key of checkKeys("getAll", keys)) {
        const entry = this.state.lookup(encodeValue(this.keyCodec, key));
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
    if (isLinearizable(options)) return this.barrier(options, () => [...this.#keys()]);
    this.assertOpen();
    return this.#keys();
  }

  /** The values, in key insertion order; a local read. */
  values(options?: HamokLocalReadOptions): IterableIterator<V>;
  /** The values, in key insertion order, after a read barrier. */
  values(options: HamokLinearizableReadOptions): Promise<V[]>;
  values(options?: HamokReadOptions): IterableIterator<V> | Promise<V[]> {
    if (isLinearizable(options)) return this.barrier(options, () => [...this.#values()]);
    this.assertOpen();
    return this.#values();
  }

  /** The `[key, value]` pairs, in insertion order; a local read. */
  entries(options?: HamokLocalReadOptions): IterableIterator<[K, V]>;
  /** The `[key, value]` pairs, in insertion order, after a read barrier. */
  entries(options: HamokLinearizableReadOptions): Promise<[K, V][]>;
  entries(options?: HamokReadOptions): IterableIterator<[K, V]> | Promise<[K, V][]> {
    if (isLinearizable(options)) return this.barrier(options, () => [...this.#entries()]);
    this.assertOpen();
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
    this.assertOpen();
    const ifRevision = checkRevision(options?.ifRevision);
    const k = encodeValue(this.keyCodec, key);
    const v = encodeValue(this.valueCodec, value);
    const result = await this.propose("set", ifRevision === undefined ? [k, v] : [k, v, ifRevision], options);
    return this.writtenValue(result, ifRevision, key, this.valueCodec);
  }

  /** Sets every given entry in one command. Resolves with the previous values of the keys that had one. */
  async setAll(
    entries: ReadonlyMap<K, V> | Iterable<readonly [K, V]>,
    options?: HamokWriteOptions,
  ): Promise<Map<K, V>> {
    this.assertOpen();
    const { pairs, byId } = this.#encodePairs(entries);
    if (pairs.length === 0) return new Map();
    return this.#pairsToMap(await this.propose("setAll", [pairs], options), byId);
  }

  /**
   * Sets `key` to `value` only if `key` has no value. Resolves with the existing value (which is
   * kept), or undefined if `value` was inserted.
   */
  async insert(key: K, value: V, options?: HamokWriteOptions): Promise<V | undefined> {
    this.assertOpen();
    const args = [encodeValue(this.keyCodec, key), encodeValue(this.valueCodec, value)] as const;
    return this.#decodeValue(await this.propose("insert", args, options));
  }

  /**
   * Inserts every given entry whose key has no value, in one command. Resolves with the existing
   * values of the keys that were not inserted.
   */
  async insertAll(
    entries: ReadonlyMap<K, V> | Iterable<readonly [K, V]>,
    options?: HamokWriteOptions,
  ): Promise<Map<K, V>> {
    this.assertOpen();
    const { pairs, byId } = this.#encodePairs(entries);
    if (pairs.length === 0) return new Map();
    return this.#pairsToMap(await this.propose("insertAll", [pairs], options), byId);
  }

  /**
   * Removes `key`. Resolves with true if it had a value. With `{ ifRevision }` it removes only if the
   * entry's revision matches, else rejects with {@linkcode HamokConflictError}.
   */
  async delete(key: K, options?: HamokCasWriteOptions): Promise<boolean> {
    this.assertOpen();
    const ifRevision = checkRevision(options?.ifRevision);
    const k = encodeValue(this.keyCodec, key);
    const result = await this.propose("delete", ifRevision === undefined ? [k] : [k, ifRevision], options);
    return this.written(result, ifRevision, key) !== null;
  }

  /** Removes the given keys in one command. Resolves with the keys that had a value. */
  async deleteAll(keys: Iterable<K>, options?: HamokWriteOptions): Promise<Set<K>> {
    const removed = await this.removeAll(keys, options);
    return new Set(removed.keys());
  }

  /** Removes `key`. Resolves with true if it had a value. */
  async remove(key: K, options?: HamokWriteOptions): Promise<boolean> {
    this.assertOpen();
    const result = await this.propose("delete", [encodeValue(this.keyCodec, key)], options);
    return this.written(result, undefined, key) !== null;
  }

  /** Removes the given keys in one command. Resolves with the removed entries. */
  async removeAll(keys: Iterable<K>, options?: HamokWriteOptions): Promise<Map<K, V>> {
    this.assertOpen();
    const encoded: Encoded[] = [];
    const byId = new Map<string, K>();
    for (const key of checkKeys("removeAll", keys)) {
      const k = encodeValue(this.keyCodec, key);
      encoded.push(k);
      byId.set(keyIdOf(k), key);
    }
    if (encoded.length === 0) return new Map();
    return this.#pairsToMap(await this.propose("deleteAll", [encoded], options), byId);
  }

  /**
   * Replaces the value of `key` with `value` only if its current value equals `oldValue` (compared by
   * encoding). Resolves with true if replaced, false otherwise (also if `key` has no value).
   */
  async updateIf(key: K, value: V, oldValue: V, options?: HamokWriteOptions): Promise<boolean> {
    this.assertOpen();
    const k = encodeValue(this.keyCodec, key);
    const expected = encodeValue(this.valueCodec, oldValue);
    const args = [[[k, expected]], [[k, encodeValue(this.valueCodec, value)]]] as const;
    return await this.propose("cas", args, options) === true;
  }

  /**
   * Removes `key` only if its current value equals `oldValue` (compared by encoding). Resolves with
   * true if removed, false otherwise.
   */
  async removeIf(key: K, oldValue: V, options?: HamokWriteOptions): Promise<boolean> {
    this.assertOpen();
    const k = encodeValue(this.keyCodec, key);
    const args = [[[k, encodeValue(this.valueCodec, oldValue)]], [[k, null]]] as const;
    return await this.propose("cas", args, options) === true;
  }

  /** Removes every entry; every peer fires `clear`. */
  async clear(options?: HamokWriteOptions): Promise<void> {
    this.assertOpen();
    await this.propose("clear", [], options);
  }

  // ------------------------------------------------------------------ snapshots

  /** The content of this peer's copy of the map (copies of the encoded keys and values). */
  export(): HamokMapSnapshot {
    this.assertOpen();
    return mapSnapshotOf(this.state);
  }

  /**
   * Merges a snapshot into the map through consensus: every entry of the snapshot is set (keys not in
   * it are kept). Large snapshots are split into several commands, so an import is atomic only
   * when it fits one command (1000 entries, 256 KiB). Resolves once every part is applied here.
   *
   * Every entry is checked before anything is proposed, so a snapshot that fails a check writes
   * nothing: `HamokConfigError` if it is of another map, or its `keys` and `values` are not arrays of
   * the same length of strings and `Uint8Array`s; `HamokCodecError` (naming the entry) for a string
   * key or value with a lone UTF-16 surrogate (UTF-8 would carry it as U+FFFD), or a key or value this
   * map's `keyCodec` / `valueCodec` cannot decode.
   */
  async import(snapshot: HamokMapSnapshot, options?: Pick<HamokWriteOptions, "timeoutMs">): Promise<void> {
    this.assertOpen();
    if (snapshot?.mapId !== this.id) {
      throw new HamokConfigError(`the snapshot is of map '${String(snapshot?.mapId)}', not of '${this.id}'`);
    }
    await this.importSnapshot(snapshot.keys, snapshot.values, options, false);
  }

  // ------------------------------------------------------------------ internals

  /** @internal */
  protected onInserted(entry: MapStateEntry, revision: number): void {
    this.deliver("insert", [
      entryKey(entry, this.keyCodec, this),
      entryValue(entry, this.valueCodec, this),
      revision,
    ]);
  }

  /** @internal */
  protected onUpdated(
    entry: MapStateEntry,
    oldValue: Encoded,
    oldOwner: object | undefined,
    oldCache: unknown,
    revision: number,
  ): void {
    this.deliver("update", [
      entryKey(entry, this.keyCodec, this),
      previousValue(this.valueCodec, oldValue, oldOwner, oldCache, this),
      entryValue(entry, this.valueCodec, this),
      revision,
    ]);
  }

  /** @internal */
  protected onRemoved(entry: MapStateEntry, revision: number): void {
    this.deliver("remove", [
      entryKey(entry, this.keyCodec, this),
      entryValue(entry, this.valueCodec, this),
      revision,
    ]);
  }

  /** @internal */
  protected onCleared(revision: number): void {
    this.deliver("clear", [revision]);
  }

  /** @internal */
  protected describeKey(key: unknown): string {
    if (typeof key === "string") {
      return `key ${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}...` : key)}`;
    }
    if (typeof key === "number" || typeof key === "bigint" || typeof key === "boolean") {
      return `key ${String(key)}`;
    }
    return `key (${key === null ? "null" : typeof key})`;
  }

  /** @internal */
  protected importKeyCodec(): ValueCodec<unknown> {
    return this.keyCodec;
  }

  /** @internal */
  protected importValueCodec(): ValueCodec<unknown> {
    return this.valueCodec;
  }

  *#keys(): IterableIterator<K> {
    for (const entry of this.state.entries()) yield entryKey(entry, this.keyCodec, this);
  }

  *#values(): IterableIterator<V> {
    for (const entry of this.state.entries()) yield entryValue(entry, this.valueCodec, this);
  }

  *#entries(): IterableIterator<[K, V]> {
    for (const entry of this.state.entries()) {
      yield [entryKey(entry, this.keyCodec, this), entryValue(entry, this.valueCodec, this)];
    }
  }

  #decodeValue(value: Encoded | null): V | undefined {
    return value === null ? undefined : decodeStored(this.valueCodec, value);
  }

  #encodePairs(entries: ReadonlyMap<K, V> | Iterable<readonly [K, V]>): {
    pairs: EncodedEntry[];
    byId: Map<string, K>;
  } {
    const pairs: EncodedEntry[] = [];
    const byId = new Map<string, K>();
    for (const entry of checkEntries(`map '${this.id}'`, entries)) {
      const [key, value] = checkEntry(`map '${this.id}'`, entry);
      const k = encodeValue(this.keyCodec, key);
      pairs.push([k, encodeValue(this.valueCodec, value)]);
      byId.set(keyIdOf(k), key);
    }
    return { pairs, byId };
  }

  /** Result pairs back to the application's keys (the ones it passed) and decoded values. */
  #pairsToMap(pairs: readonly EncodedEntry[], byId: Map<string, K>): Map<K, V> {
    const out = new Map<K, V>();
    for (const [k, v] of pairs) {
      const key = byId.get(keyIdOf(k)) ?? decodeStored(this.keyCodec, k);
      out.set(key, decodeStored(this.valueCodec, v));
    }
    return out;
  }
}

/**
 * @internal The snapshot of a map state in parts of at most `maxEntries` entries each, in insertion
 * order (copies of its bytes), taken lazily (see `entryParts`).
 */
export function* mapSnapshotParts(
  state: HamokMapState,
  maxEntries: number,
): IterableIterator<HamokMapSnapshot> {
  for (const part of entryParts(state, maxEntries)) yield { mapId: state.id, ...part };
}

/** @internal The snapshot of a map state (copies of its bytes). */
export function mapSnapshotOf(state: HamokMapState): HamokMapSnapshot {
  return { mapId: state.id, ...allEntries(state) };
}
