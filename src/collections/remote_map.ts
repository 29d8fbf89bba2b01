/**
 * HamokRemoteMap: a key-value map whose data lives in an async store the application supplies
 * (see {@linkcode HamokRemoteStore}); Raft orders the operations, the leader executes them against
 * the store exactly once, and every peer gets the change events.
 *
 * @module
 */

import { assertRoundTrips, copyDecoded, describeType, encodeCbor, messageOf } from "../codec/cbor.ts";
import { decodeValue, encodeValue, type ValueCodec } from "../codec/value_codec.ts";
import { decodeStored } from "./entry_codec.ts";
import type { Encoded } from "./map_state.ts";
import { positiveInteger } from "../config.ts";
import {
  errorFromWire,
  HamokCodecError,
  HamokConfigError,
  HamokError,
  HamokOutcomeUnknownError,
  HamokTimeoutError,
} from "../errors.ts";
import type { CollectionHost } from "./collection_host.ts";
import type { TimerHandle } from "../cluster/scheduler.ts";
import { withTimeout } from "../cluster/async.ts";
import type { ArgsOf } from "./command_spec.ts";
import {
  checkCodec,
  checkEntries,
  checkEntry,
  checkKeys,
  CollectionBase,
  collectionIdentity,
} from "./collection_base.ts";
import {
  type HamokRemoteMapState,
  type HamokRemoteMapStateObserver,
  REMOTE_MAP_KIND,
  type RemoteMapCommands,
  type RemoteMapOp,
  type RemoteOpFailure,
} from "./remote_map_state.ts";
import {
  clusterOfRemoteMark,
  prepareRemoteBatch,
  type RemoteBatchIo,
  sameBytes,
} from "./remote_map_batch.ts";
import type { HamokRemoteStore, HamokRemoteStoreMark } from "./remote_store.ts";

/**
 * Options of `hamok.createRemoteMap(config)`.
 *
 * @example
 * ```ts
 * import { type Hamok, MemoryRemoteStore } from "@hamok/core";
 * declare const hamok: Hamok;
 * const map = hamok.createRemoteMap<string, number>({ mapId: "scores", store: new MemoryRemoteStore() });
 * ```
 */
export interface HamokRemoteMapConfig<K, V> {
  /** The map id; remote maps with the same id on different peers are one map. Required. */
  mapId: string;
  /** The store holding the data. Every peer's store must reach the same backing data. Required. */
  store: HamokRemoteStore<K, V>;
  /** Key codec for the replicated log. Default: keys travel as CBOR inside the log entries. */
  keyCodec?: ValueCodec<K> | undefined;
  /** Value codec for the replicated log. Default: values travel as CBOR inside the log entries. */
  valueCodec?: ValueCodec<V> | undefined;
  /**
   * Equality of `updateIf`/`removeIf`. Default: equal encodings (value codec output, or CBOR; note
   * that CBOR of an object follows its key insertion order).
   */
  equalValues?: ((a: V, b: V) => boolean) | undefined;
  /**
   * Default timeout of operations, in ms (commit plus execution). Default 5000. It also bounds each
   * call to the store: one that does not answer within it is given up (`HamokTimeoutError`; the
   * executor retries from the mark), so a store slower than that needs a larger value.
   */
  requestTimeoutInMs?: number;
  /** Most operations executed by one store write. Default 256. */
  maxBatchSize?: number;
}

/**
 * Options of a remote map write.
 *
 * @example
 * ```ts
 * import type { HamokRemoteMap } from "@hamok/core";
 * declare const map: HamokRemoteMap<string, number>;
 * const requestId = crypto.randomUUID();
 * const old = await map.set("k", 1, { requestId, timeoutMs: 2000 })
 *   .catch(() => map.set("k", 1, { requestId })); // executed at most once
 * ```
 */
export interface HamokRemoteMapWriteOptions {
  /**
   * Request id of the write. A write retried with the request id of an earlier attempt is executed
   * at most once and resolves with the first execution's result. Default: a fresh id.
   */
  requestId?: string;
  /** Timeout of this write (commit plus execution) in ms. Default: the map's `requestTimeoutInMs`. */
  timeoutMs?: number;
}

/**
 * Options of a remote map read.
 *
 * @example
 * ```ts
 * import type { HamokRemoteMap } from "@hamok/core";
 * declare const map: HamokRemoteMap<string, number>;
 * const value = await map.get("k", { consistency: "linearizable" });
 * ```
 */
export interface HamokRemoteMapReadOptions {
  /**
   * `"store"` (default; `"local"` is the same) reads the store as it is: it reflects every operation
   * executed so far.
   * `"linearizable"` first waits until every operation committed before the call is executed (a
   * ReadIndex round trip to the leader, then the execution), so the read sees every write that
   * completed before it on any peer.
   */
  consistency?: "store" | "local" | "linearizable";
  /** Timeout of the linearizable wait in ms. Default: the map's `requestTimeoutInMs`. */
  timeoutMs?: number;
}

/**
 * Events of a {@linkcode HamokRemoteMap}: argument tuples of the listeners. They fire on every
 * peer, in log order, once executed.
 *
 * @example
 * ```ts
 * import type { HamokRemoteMap } from "@hamok/core";
 * declare const map: HamokRemoteMap<string, number>;
 * map.on("update", (key, oldValue, newValue) => console.log(key, oldValue, "->", newValue));
 * ```
 */
export interface HamokRemoteMapEvents<K, V> {
  /** A key was added. */
  insert: [key: K, value: V];
  /** A key's value was replaced. */
  update: [key: K, oldValue: V, newValue: V];
  /** A key was removed. */
  remove: [key: K, oldValue: V];
  /** Every entry was removed. */
  clear: [];
  /** This map object was closed. */
  close: [];
}

/**
 * An exported remote map: its id and its entries in replicated form (codec output, or the keys and
 * values themselves with the default CBOR codecs).
 *
 * @example
 * ```ts
 * import type { HamokRemoteMap } from "@hamok/core";
 * declare const map: HamokRemoteMap<string, number>;
 * declare const otherMap: HamokRemoteMap<string, number>;
 * const snapshot = await map.export();
 * await otherMap.import(snapshot);
 * ```
 */
export interface HamokRemoteMapSnapshot {
  /** The map id. */
  readonly mapId: string;
  /** `[key, value]` pairs. */
  readonly entries: readonly (readonly [unknown, unknown])[];
}

/** @internal What a remote map needs to know about leadership (the peer provides it). */
export interface RemoteMapLeadership {
  /** True while this peer is the leader. */
  isLeader(): boolean;
  /** Calls `listener` when the leader changes; returns a function that removes it. */
  onLeaderChanged(listener: () => void): () => void;
}

interface Waiter {
  readonly op: RemoteMapOp;
  readonly requestId: string;
  readonly timeoutMs: number;
  readonly timer: TimerHandle;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
}

const DEFAULT_MAX_BATCH = 256;
const MIN_BACKOFF_MS = 20;

/**
 * A key-value map stored in the application's own database, with the cluster ordering the writes.
 *
 * Every write is a command in the replicated log. Once committed, the leader executes it against the
 * store — in batches, each an atomic write conditional on the log index recorded in the store — so
 * every committed operation is executed exactly once, even when the leader dies mid-write. Each
 * write resolves with its result (the old value, whether it applied, ...) once executed, and every
 * peer fires the change events in log order. Reads go to the store.
 *
 * Create the remote map on every peer that can become leader (only the leader executes), each with a
 * store that reaches the same data. `0`, `""`, `false` and `null` are values; `undefined` is not.
 *
 * @example
 * ```ts
 * import { Hamok, MemoryRemoteStore } from "@hamok/core";
 * const store = new MemoryRemoteStore<string, number>(); // stands for a shared database
 * const hamok = new Hamok();
 * await hamok.join();
 * const map = hamok.createRemoteMap<string, number>({ mapId: "scores", store });
 * map.on("insert", (key, value) => console.log(`${key} = ${value}`));
 * console.log(await map.insert("alice", 0)); // undefined: inserted
 * console.log(await map.insert("alice", 5)); // 0: already there, not overwritten
 * console.log(await map.updateIf("alice", 7, 0)); // true
 * console.log(await map.get("alice")); // 7
 * ```
 */
export class HamokRemoteMap<K, V> extends CollectionBase<HamokRemoteMapEvents<K, V>, RemoteMapCommands> {
  /** The store holding the data. */
  readonly store: HamokRemoteStore<K, V>;
  private readonly leadership: RemoteMapLeadership;
  private readonly state: HamokRemoteMapState;
  private readonly keyCodec: ValueCodec<K> | undefined;
  private readonly valueCodec: ValueCodec<V> | undefined;
  private readonly equalValues: ((a: V, b: V) => boolean) | undefined;
  private readonly maxBatchSize: number;
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly disposers: (() => void)[] = [];
  private executing = false;
  private failures = 0;
  private wake: (() => void) | undefined;
  private warnedBehind = -1;
  readonly #observer: HamokRemoteMapStateObserver;
  /** Linearizable reads waiting for the executed index to reach theirs (checked as it moves). */
  readonly #progress = new Set<() => void>();
  /** The batch planner's access to the store and the codecs (made once). */
  readonly #io: RemoteBatchIo<K, V> = {
    getMany: (keys) => this.#timed("getMany", () => this.store.getMany(keys)),
    decodeKey: (wire) => this.#decodeKey(wire),
    decodeValue: (wire) => this.#decodeValue(wire),
    wireValue: (value) => this.#wireValue(value),
    same: (current, expected) => this.#same(current, expected),
    localPeerId: () => this.host.localPeerId,
  };

  /** @internal Use `hamok.createRemoteMap(config)`. */
  constructor(host: CollectionHost, config: HamokRemoteMapConfig<K, V>, leadership: RemoteMapLeadership) {
    const identity = collectionIdentity(config, REMOTE_MAP_KIND, "remote map", "mapId");
    const store = config.store;
    if (
      store === null || typeof store !== "object" ||
      !["readMark", "getMany", "size", "entries", "write"].every((m) =>
        typeof (store as unknown as Record<string, unknown>)[m] === "function"
      )
    ) {
      throw new HamokConfigError(
        "store must implement HamokRemoteStore (readMark, getMany, size, entries, write)",
      );
    }
    checkCodec("keyCodec", config.keyCodec);
    checkCodec("valueCodec", config.valueCodec);
    if (config.equalValues !== undefined && typeof config.equalValues !== "function") {
      throw new HamokConfigError("equalValues must be a function");
    }
    const maxBatchSize = positiveInteger("maxBatchSize", config.maxBatchSize, DEFAULT_MAX_BATCH);
    super(host, identity);
    this.store = store;
    this.maxBatchSize = maxBatchSize;
    this.keyCodec = config.keyCodec;
    this.valueCodec = config.valueCodec;
    this.equalValues = config.equalValues;
    this.leadership = leadership;
    this.state = host.replicatedState<HamokRemoteMapState>(REMOTE_MAP_KIND, this.id);

    this.#observer = {
      inserted: (key, value) => {
        if (this.hasListeners("insert")) this.#emitDecoded("insert", key, value, undefined);
      },
      updated: (key, oldValue, newValue) => {
        if (this.hasListeners("update")) this.#emitDecoded("update", key, oldValue, newValue);
      },
      removed: (key, oldValue) => {
        if (this.hasListeners("remove")) this.#emitDecoded("remove", key, oldValue, undefined);
      },
      cleared: () => this.deliver("clear", []),
      enqueued: () => this.#kick(),
      executed: (index, result, failure) => {
        this.#settleWaiters(index, result, failure);
        if (this.#progress.size > 0) { for (const check of this.#progress) check(); }
      },
      restored: () => {
        this.#recheckWaiters();
        if (this.#progress.size > 0) { for (const check of this.#progress) check(); }
      },
      failed: (error) => this.host.reportError(error),
      logRestarted: () => this.#abandonWaiters(),
    };
    this.state.observer = this.#observer;
    this.disposers.push(
      () => {
        if (this.state.observer === this.#observer) this.state.observer = undefined;
      },
      leadership.onLeaderChanged(() => {
        this.wake?.();
        this.#kick();
      }),
    );
    this.host.scheduler.defer(() => this.#kick());
  }

  /** Number of committed operations this peer knows of that are not executed yet. */
  get pendingOperations(): number {
    return this.state.pendingCount;
  }

  // ------------------------------------------------------------------ reads

  /** The value of `key`, or `undefined` if absent. */
  async get(key: K, options?: HamokRemoteMapReadOptions): Promise<V | undefined> {
    await this.#beforeRead(options);
    const [value] = await this.#storeCall("getMany", () => this.store.getMany([key]));
    return value;
  }

  /** The entries of `keys` that exist. */
  async getAll(keys: Iterable<K>, options?: HamokRemoteMapReadOptions): Promise<Map<K, V>> {
    const list = [...checkKeys("getAll", keys)];
    await this.#beforeRead(options);
    const values = list.length === 0 ? [] : await this.#storeCall("getMany", () => this.store.getMany(list));
    const found = new Map<K, V>();
    for (let i = 0; i < list.length; i++) {
      const value = values[i];
      if (value !== undefined) found.set(list[i]!, value as V); // i < length
    }
    return found;
  }

  /** Whether `key` exists. */
  async has(key: K, options?: HamokRemoteMapReadOptions): Promise<boolean> {
    return (await this.get(key, options)) !== undefined;
  }

  /** Number of entries. */
  async size(options?: HamokRemoteMapReadOptions): Promise<number> {
    await this.#beforeRead(options);
    return await this.#storeCall("size", () => this.store.size());
  }

  /** True if the map has no entries. */
  async isEmpty(options?: HamokRemoteMapReadOptions): Promise<boolean> {
    return (await this.size(options)) === 0;
  }

  /** Every entry (as the store lists them). */
  async *entries(options?: HamokRemoteMapReadOptions): AsyncIterableIterator<[K, V]> {
    await this.#beforeRead(options);
    try {
      for await (const [key, value] of this.store.entries()) yield [key, value];
    } catch (error) {
      throw storeError(this.id, "entries", error);
    }
  }

  /** Every key. */
  async *keys(options?: HamokRemoteMapReadOptions): AsyncIterableIterator<K> {
    for await (const [key] of this.entries(options)) yield key;
  }

  /** Every value. */
  async *values(options?: HamokRemoteMapReadOptions): AsyncIterableIterator<V> {
    for await (const [, value] of this.entries(options)) yield value;
  }

  /** Every entry. */
  [Symbol.asyncIterator](): AsyncIterableIterator<[K, V]> {
    return this.entries();
  }

  // ------------------------------------------------------------------ writes

  /** Sets `key` to `value`; resolves with the old value (`undefined`: the key was added). */
  set(key: K, value: V, options?: HamokRemoteMapWriteOptions): Promise<V | undefined> {
    return this.#write("set", () => [this.#wireKey(key), this.#wireValue(value)], options);
  }

  /** Sets every entry; resolves with the old values of the keys that existed. */
  setAll(
    entries: Iterable<readonly [K, V]> | ReadonlyMap<K, V>,
    options?: HamokRemoteMapWriteOptions,
  ): Promise<Map<K, V>> {
    return this.#write("setAll", () => this.#wireEntries(entries), options);
  }

  /**
   * Adds `key` only if it is absent. Resolves with `undefined` if it was added, else with the
   * existing value (which stays).
   */
  insert(key: K, value: V, options?: HamokRemoteMapWriteOptions): Promise<V | undefined> {
    return this.#write("insert", () => [this.#wireKey(key), this.#wireValue(value)], options);
  }

  /** Adds the entries whose keys are absent; resolves with the existing entries (which stay). */
  insertAll(
    entries: Iterable<readonly [K, V]> | ReadonlyMap<K, V>,
    options?: HamokRemoteMapWriteOptions,
  ): Promise<Map<K, V>> {
    return this.#write("insertAll", () => this.#wireEntries(entries), options);
  }

  /** Removes `key`; resolves `true` if it existed. */
  delete(key: K, options?: HamokRemoteMapWriteOptions): Promise<boolean> {
    return this.#write("delete", () => [this.#wireKey(key)], options);
  }

  /** Removes `keys`; resolves with the keys that existed. */
  deleteAll(keys: Iterable<K>, options?: HamokRemoteMapWriteOptions): Promise<Set<K>> {
    return this.#write(
      "deleteAll",
      () => [...checkKeys("deleteAll", keys)].map((k) => this.#wireKey(k)),
      options,
    );
  }

  /** Removes `key`; resolves `true` if it existed (the same as {@linkcode delete}). */
  remove(key: K, options?: HamokRemoteMapWriteOptions): Promise<boolean> {
    return this.#write("remove", () => [this.#wireKey(key)], options);
  }

  /** Removes `keys`; resolves with the removed entries. */
  removeAll(keys: Iterable<K>, options?: HamokRemoteMapWriteOptions): Promise<Map<K, V>> {
    return this.#write(
      "removeAll",
      () => [...checkKeys("removeAll", keys)].map((k) => this.#wireKey(k)),
      options,
    );
  }

  /**
   * Replaces the value of `key` with `value` only if `key` exists and its value equals `oldValue`
   * (see `equalValues`); resolves `true` if replaced, `false` otherwise.
   */
  updateIf(key: K, value: V, oldValue: V, options?: HamokRemoteMapWriteOptions): Promise<boolean> {
    return this.#write(
      "updateIf",
      () => [this.#wireKey(key), this.#wireValue(value), this.#wireValue(oldValue)],
      options,
    );
  }

  /** Removes `key` only if its value equals `oldValue`; resolves `true` if removed, `false` otherwise. */
  removeIf(key: K, oldValue: V, options?: HamokRemoteMapWriteOptions): Promise<boolean> {
    return this.#write("removeIf", () => [this.#wireKey(key), this.#wireValue(oldValue)], options);
  }

  /** Removes every entry. */
  clear(options?: HamokRemoteMapWriteOptions): Promise<void> {
    return this.#write("clear", () => null, options);
  }

  /** Reads every entry from the store into a snapshot (replicated form). */
  async export(): Promise<HamokRemoteMapSnapshot> {
    this.assertOpen();
    const entries: [unknown, unknown][] = [];
    for await (const [key, value] of this.entries()) {
      entries.push([this.#wireKey(key), this.#wireValue(value)]);
    }
    return { mapId: this.id, entries };
  }

  /**
   * Writes every entry of a snapshot made by {@linkcode export} (a `setAll`: other keys stay).
   *
   * Every entry is checked before anything is proposed: with a key or value codec, the key or value
   * must be a string or a `Uint8Array` that this map's codec decodes; with the default codec, it must
   * be a value CBOR can carry. Otherwise the import rejects with `HamokCodecError` naming the entry's
   * index, and nothing is written. (Should an entry the leader's own codecs cannot decode still reach
   * the log, say from a peer configured with other codecs, the leader fails that one operation:
   * its caller gets `HamokCodecError`, it writes nothing, and the operations after it run.)
   *
   * Throws `HamokConfigError` if the snapshot belongs to another map id, or if an entry is not a
   * `[key, value]` pair or holds `undefined`.
   */
  async import(snapshot: HamokRemoteMapSnapshot, options?: HamokRemoteMapWriteOptions): Promise<void> {
    this.assertOpen();
    if (snapshot === null || typeof snapshot !== "object" || !Array.isArray(snapshot.entries)) {
      throw new HamokConfigError("a remote map snapshot must have an entries array");
    }
    if (snapshot.mapId !== this.id) {
      throw new HamokConfigError(`the snapshot belongs to map '${snapshot.mapId}', not '${this.id}'`);
    }
    const entries: [unknown, unknown][] = [];
    for (let i = 0; i < snapshot.entries.length; i++) {
      const entry: unknown = snapshot.entries[i];
      if (!Array.isArray(entry)) {
        throw new HamokConfigError(`remote map '${this.id}': snapshot entry ${i} is not a [key, value] pair`);
      }
      const [key, value] = entry as [unknown, unknown];
      if (key === undefined || value === undefined) {
        throw new HamokConfigError(
          `remote map '${this.id}': snapshot entry ${i} holds undefined (keys and values cannot be undefined)`,
        );
      }
      this.#checkReplicated(this.keyCodec, key, `the key of snapshot entry ${i}`);
      this.#checkReplicated(this.valueCodec, value, `the value of snapshot entry ${i}`);
      entries.push([key, value]);
    }
    if (entries.length === 0) return;
    await this.#write("setAll", () => entries, options);
  }

  /**
   * Throws `HamokCodecError` unless `wire` is in the replicated form the leader executes: the output
   * of `codec` that `codec` decodes, or (default codec) a value CBOR can carry.
   */
  #checkReplicated(codec: ValueCodec<unknown> | undefined, wire: unknown, what: string): void {
    if (codec === undefined) {
      try {
        assertRoundTrips(wire, what);
      } catch (error) {
        throw new HamokCodecError(`remote map '${this.id}': ${messageOf(error)}`, { cause: error });
      }
      return;
    }
    if (typeof wire !== "string" && !(wire instanceof Uint8Array)) {
      const type = describeType(wire);
      throw new HamokCodecError(
        `remote map '${this.id}': ${what} is ${type}, not a codec's output (a string or a Uint8Array)`,
        { cause: new TypeError(`${what} is ${type}`) },
      );
    }
    try {
      decodeValue(codec, wire);
    } catch (error) {
      throw new HamokCodecError(`remote map '${this.id}': ${what} cannot be decoded: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  /**
   * Closes this map object: pending operations reject with `HamokClosedError` (they stay committed
   * and another peer's leader executes them), and this peer stops executing.
   */
  override close(): void {
    super.close();
  }

  /** @internal Stops executing and rejects the waiting operations. */
  protected override onClose(): void {
    for (const dispose of this.disposers) dispose();
    this.disposers.length = 0;
    this.wake?.();
    for (const [, waiters] of this.waiters) {
      for (const waiter of waiters) {
        this.host.scheduler.clearTimeout(waiter.timer);
        waiter.reject(
          this.closedError(`was closed before ${waiter.op} was executed`),
        );
      }
    }
    this.waiters.clear();
  }

  // ------------------------------------------------------------------ write path

  async #write<R>(
    op: RemoteMapOp,
    makeArgs: () => unknown,
    options?: HamokRemoteMapWriteOptions,
  ): Promise<R> {
    this.assertOpen();
    const checked = this.writeOptions(options);
    const timeoutMs = checked.timeoutMs;
    // the peer's ids: a per-view counter started again in a new view of the id, or in a process
    // restarted on the member's storage, and its writes were taken for the old ones (not executed)
    const requestId = checked.requestId ?? this.host.newRequestId();
    const args = makeArgs() as ArgsOf<RemoteMapCommands, RemoteMapOp>;
    const deadline = this.host.scheduler.monotonicNow() + timeoutMs;
    let index: number;
    try {
      index = await this.proposeWith(op, args, { timeoutMs, requestId });
    } catch (error) {
      throw this.proposalError(error);
    }
    const result = await this.#whenExecuted(op, index, requestId, timeoutMs, deadline);
    return this.#decodeResult(op, result) as R;
  }

  #whenExecuted(
    op: RemoteMapOp,
    index: number,
    requestId: string,
    timeoutMs: number,
    deadline: number,
  ): Promise<unknown> {
    if (typeof index !== "number") {
      return Promise.reject(
        new HamokError(`remote map '${this.id}': ${op} was not accepted (${String(index)})`),
      );
    }
    const known = this.state.resultOf(index);
    if (known.known) {
      const failure = this.state.failureOf(index);
      if (failure !== undefined) return Promise.reject(this.#failedError(op, index, failure));
      return Promise.resolve(known.result);
    }
    if (index <= this.state.executedIndex) {
      return Promise.reject(this.#forgotten(op, index, requestId));
    }
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise<unknown>((resolve, reject) => {
      const timer = this.host.scheduler.setTimeout(() => {
        this.#dropWaiter(index, waiter);
        reject(
          new HamokOutcomeUnknownError(
            `remote map '${this.id}': ${op} was committed as log entry ${index} but not executed against ` +
              `the store within ${timeoutMs} ms; it will be executed exactly once. Retry with request id ` +
              `'${requestId}' to get its result.`,
            { requestId },
          ),
        );
      }, Math.max(1, deadline - this.host.scheduler.monotonicNow()));
      const waiter: Waiter = { op, requestId, timeoutMs, timer, resolve, reject };
      const list = this.waiters.get(index);
      if (list === undefined) this.waiters.set(index, [waiter]);
      else list.push(waiter);
    });
  }

  #settleWaiters(index: number, result: unknown, failure: RemoteOpFailure | undefined): void {
    const list = this.waiters.get(index);
    if (list === undefined) return;
    this.waiters.delete(index);
    for (const waiter of list) {
      this.host.scheduler.clearTimeout(waiter.timer);
      if (failure === undefined) waiter.resolve(result);
      else waiter.reject(this.#failedError(waiter.op, index, failure));
    }
  }

  /** The error of an operation the leader failed (its cause names the leader that found it). */
  #failedError(op: RemoteMapOp, index: number, failure: RemoteOpFailure): HamokError {
    const [code, message, peerId] = failure;
    return errorFromWire(
      { code, message },
      peerId === "" ? "the leader" : peerId,
      `remote map '${this.id}': ${op} (log entry ${index}) was not executed`,
    );
  }

  #recheckWaiters(): void {
    for (const [index, list] of [...this.waiters]) {
      const known = this.state.resultOf(index);
      if (known.known) {
        this.#settleWaiters(index, known.result, this.state.failureOf(index));
      } else if (index <= this.state.executedIndex) {
        this.waiters.delete(index);
        for (const waiter of list) {
          this.host.scheduler.clearTimeout(waiter.timer);
          waiter.reject(this.#forgotten(waiter.op, index, waiter.requestId));
        }
      }
    }
    this.#kick();
  }

  /** The log started over: no waiter's index means what it meant (the new log reuses the numbers). */
  #abandonWaiters(): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const list of all) {
      for (const waiter of list) {
        this.host.scheduler.clearTimeout(waiter.timer);
        waiter.reject(
          new HamokOutcomeUnknownError(
            `remote map '${this.id}': ${waiter.op} was committed in a cluster this peer no longer belongs to; whether the store executed it is unknown`,
            { requestId: waiter.requestId },
          ),
        );
      }
    }
  }

  #dropWaiter(index: number, waiter: Waiter): void {
    const list = this.waiters.get(index);
    if (list === undefined) return;
    const rest = list.filter((w) => w !== waiter);
    if (rest.length === 0) this.waiters.delete(index);
    else this.waiters.set(index, rest);
  }

  #forgotten(op: RemoteMapOp, index: number, requestId: string): Error {
    return new HamokOutcomeUnknownError(
      `remote map '${this.id}': ${op} (log entry ${index}) was executed, but its result is no longer retained`,
      { requestId },
    );
  }

  #decodeResult(op: RemoteMapOp, result: unknown): unknown {
    switch (op) {
      case "set":
      case "insert":
        return result === undefined ? undefined : this.#decodeValue(result);
      case "setAll":
      case "insertAll":
      case "removeAll": {
        const map = new Map<K, V>();
        for (const [key, value] of result as [unknown, unknown][]) {
          map.set(this.#decodeKey(key), this.#decodeValue(value));
        }
        return map;
      }
      case "deleteAll":
        return new Set((result as unknown[]).map((key) => this.#decodeKey(key)));
      case "clear":
        return undefined;
      default:
        return result === true;
    }
  }

  // ------------------------------------------------------------------ execution (leader)

  /** Starts the executor if this peer leads and operations wait. */
  #kick(): void {
    if (this.executing || this.closed || this.state.pendingCount === 0 || !this.leadership.isLeader()) return;
    this.executing = true;
    this.#execute().catch((error) => this.host.reportError(asError(error))).finally(() => {
      this.executing = false;
      if (!this.closed && this.state.pendingCount > 0 && this.leadership.isLeader()) this.#kick();
    });
  }

  #shouldExecute(): boolean {
    return !this.closed && this.leadership.isLeader();
  }

  /** Executes pending operations in batches until none is left or this peer stops leading. */
  async #execute(): Promise<void> {
    await Promise.resolve(); // never call the store inside the apply that woke us
    while (this.#shouldExecute() && this.state.pendingCount > 0) {
      try {
        const mark = await this.#timed("readMark", () => this.store.readMark());
        if (!this.#shouldExecute()) return;
        const markIndex = mark?.index ?? 0;
        const clusterUid = this.host.clusterUid;
        const markCluster = mark === undefined ? undefined : clusterOfRemoteMark(mark.data);
        // a mark of another cluster (an earlier one on this database): its index counts another log, so
        // it is neither confirmed nor "behind"; this cluster's next write takes the store over from it
        const foreign = markCluster !== undefined && clusterUid !== undefined && markCluster !== clusterUid;
        if (!foreign && mark !== undefined && markIndex > this.state.executedIndex) {
          // an earlier write (maybe of a dead leader) is not confirmed yet: confirm it first
          await this.#confirm(mark);
          if (this.state.executedIndex < markIndex && this.#shouldExecute()) {
            // committed, yet it did not move the executed index: the mark is unusable (reported by
            // the state); back off instead of proposing it again at once
            throw new HamokError(
              `remote map '${this.id}': the store's mark ${markIndex} could not be applied`,
            );
          }
          this.failures = 0;
          continue;
        }
        if (!foreign && markIndex < this.state.executedIndex && this.warnedBehind !== markIndex) {
          this.warnedBehind = markIndex;
          this.host.reportError(
            new HamokError(
              `remote map '${this.id}': the store's mark (${markIndex}) is behind the executed index ` +
                `(${this.state.executedIndex}); was the store reset?`,
            ),
          );
        }
        const batch = this.state.pendingBatch(this.maxBatchSize);
        if (batch.length === 0) return;
        if (batch[0]!.index <= this.state.executedIndex) {
          // cannot happen within one log (logRestarted drops the old log's operations); writing it
          // would put the store's mark back, so refuse it and back off rather than go round at once
          throw new HamokError(
            `remote map '${this.id}': operation ${
              batch[0]!.index
            } is pending below the executed index ${this.state.executedIndex}`,
          );
        }
        const executedBefore = this.state.executedIndex;
        const next = await prepareRemoteBatch(this.#io, batch, markIndex, clusterUid);
        if (!this.#shouldExecute()) return;
        // a write that does not answer in time is retried from the mark: the store's compare on the
        // mark index keeps a late one of the two from applying
        const written = await this.#timed("write", () => this.store.write(next.write));
        if (written) {
          // an operation that can never run (its own data undecodable, a store value the codec cannot
          // encode, equalValues throwing on it) was failed rather than retried forever
          for (const [p, error] of next.failed) {
            const message =
              `remote map '${this.id}': ${p.op} (log entry ${p.index}) was not executed: ${error.message}`;
            this.host.reportError(
              error instanceof HamokConfigError
                ? new HamokConfigError(message, { cause: error })
                : new HamokCodecError(message, { cause: error }),
            );
          }
          await this.#confirm(next.write.mark);
          if (this.state.executedIndex < next.write.mark.index && this.#shouldExecute()) {
            // the confirmation did not move the executed index: back off rather than write again
            throw new HamokError(
              `remote map '${this.id}': the write up to ${next.write.mark.index} could not be confirmed`,
            );
          }
        }
        this.failures = 0;
        if (this.state.executedIndex === executedBefore && this.#shouldExecute()) {
          // the store refused the write (its mark moved: another writer) and nothing was executed:
          // wait a moment before reading the mark again, so the loop always yields to timers
          await this.#backoff(MIN_BACKOFF_MS);
        }
      } catch (error) {
        if (!this.#shouldExecute()) return;
        this.failures++;
        this.host.reportError(storeError(this.id, "execution", error));
        await this.#backoff(
          Math.min(this.requestTimeoutInMs, MIN_BACKOFF_MS * 2 ** Math.min(this.failures, 8)),
        );
      }
    }
  }

  /** Proposes `executed` for a mark, and resolves once applied here. */
  async #confirm(mark: HamokRemoteStoreMark): Promise<void> {
    await this.proposeWith("executed", { upTo: mark.index, data: mark.data }, {
      timeoutMs: this.requestTimeoutInMs,
      // the cluster names the log the index counts: a cluster bootstrapped on this peer's old states
      // keeps their dedup window, where the old log's confirmations of the same index still are
      requestId: `${REMOTE_MAP_KIND}:${this.id}:executed:${
        this.host.clusterUid?.slice(0, 8) ?? ""
      }:${mark.index}`,
    });
  }

  #same(current: unknown, expected: unknown): boolean {
    if (this.equalValues !== undefined) {
      return this.equalValues(this.#decodeValue(current), this.#decodeValue(expected));
    }
    return sameBytes(
      this.valueCodec === undefined ? encodeCbor(current) : current,
      this.valueCodec === undefined ? encodeCbor(expected) : expected,
    );
  }

  #backoff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.host.scheduler.clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = this.host.scheduler.setTimeout(done, ms);
      this.wake = done;
    });
  }

  // ------------------------------------------------------------------ helpers

  async #beforeRead(options: HamokRemoteMapReadOptions | undefined): Promise<void> {
    this.assertOpen();
    const consistency = options?.consistency;
    if (consistency === undefined || consistency === "store" || consistency === "local") return;
    if (consistency !== "linearizable") {
      throw new HamokConfigError(
        `consistency must be "store", "local" or "linearizable", got ${String(consistency)}`,
      );
    }
    const timeoutMs = positiveInteger("timeoutMs", options!.timeoutMs, this.requestTimeoutInMs);
    const deadline = this.host.scheduler.monotonicNow() + timeoutMs;
    await this.host.waitUntilCommitHead(timeoutMs);
    const target = this.state.lastPendingIndex;
    if (this.state.executedIndex >= target) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.state.executedIndex < target && !this.closed) return;
        done();
        if (this.closed) reject(this.closedError());
        else resolve();
      };
      const done = () => {
        this.host.scheduler.clearTimeout(timer);
        this.#progress.delete(check);
        this.off("close", check);
      };
      const timer = this.host.scheduler.setTimeout(() => {
        done();
        reject(
          new HamokTimeoutError(
            `remote map '${this.id}': operations up to log entry ${target} were not executed within ${timeoutMs} ms`,
            { timeoutMs },
          ),
        );
      }, Math.max(1, deadline - this.host.scheduler.monotonicNow()));
      this.#progress.add(check);
      this.on("close", check);
    });
  }

  async #storeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await this.#timed(what, call);
    } catch (error) {
      throw storeError(this.id, what, error);
    }
  }

  /**
   * `call()`, or `HamokTimeoutError` once it has not answered within `requestTimeoutInMs`: a store
   * call that hangs (a lost connection without an error) held every operation of the map, silently.
   */
  #timed<T>(what: string, call: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = Promise.resolve(call());
    } catch (error) {
      return Promise.reject(error);
    }
    const timeoutMs = this.requestTimeoutInMs;
    let timedOut = false;
    return withTimeout(promise, timeoutMs, () => (timedOut = true), this.host.scheduler).catch((error) => {
      if (!timedOut) throw error;
      promise.catch(() => {}); // its late failure is nobody's now
      throw new HamokTimeoutError(
        `remote map '${this.id}': the store's ${what} did not answer within ${timeoutMs} ms`,
        { timeoutMs },
      );
    });
  }

  /** Delivers a change decoded: `update` gets both values, `insert` and `remove` the first. */
  #emitDecoded(
    event: "insert" | "update" | "remove",
    wireKey: unknown,
    first: unknown,
    second: unknown,
  ): void {
    let key: K;
    let a: V;
    let b: V | undefined;
    try {
      key = this.#decodeKey(wireKey);
      a = this.#decodeValue(first);
      if (event === "update") b = this.#decodeValue(second);
    } catch (error) {
      this.host.reportError(asError(error));
      return;
    }
    if (event === "update") this.deliver("update", [key, a, b as V]);
    else this.deliver(event, [key, a]);
  }

  #wireKey(key: K): unknown {
    if (key === undefined) throw new HamokConfigError("a key cannot be undefined");
    if (this.keyCodec !== undefined) return encodeValue(this.keyCodec, key);
    // refused now, as a map key is, if CBOR would change it: a lone surrogate written as U+FFFD made
    // a key that could not be read back under itself
    this.#checkReplicated(undefined, key, "the key");
    return key;
  }

  #wireValue(value: V): unknown {
    if (value === undefined) throw new HamokConfigError("a value cannot be undefined (use delete)");
    if (this.valueCodec !== undefined) return encodeValue(this.valueCodec, value);
    // a Promise or a WeakMap went to the store as {}: refused now, as the other collections do
    this.#checkReplicated(undefined, value, "the value");
    return value;
  }

  #wireEntries(entries: Iterable<readonly [K, V]> | ReadonlyMap<K, V>): [unknown, unknown][] {
    const out: [unknown, unknown][] = [];
    for (const entry of checkEntries(`remote map '${this.id}'`, entries as Iterable<readonly [K, V]>)) {
      const [key, value] = checkEntry(`remote map '${this.id}'`, entry);
      out.push([this.#wireKey(key), this.#wireValue(value)]);
    }
    return out;
  }

  /**
   * A key as the application (or the store) gets it: never the replicated object itself (nor a view
   * into its bytes), which the state keeps to answer retries and which every listener shares.
   */
  #decodeKey(wire: unknown): K {
    return this.keyCodec === undefined
      ? copyDecoded(wire) as K
      : decodeStored(this.keyCodec, wire as Encoded);
  }

  /** A value as the application (or the store) gets it: a copy, as {@linkcode #decodeKey}. */
  #decodeValue(wire: unknown): V {
    return this.valueCodec === undefined
      ? copyDecoded(wire) as V
      : decodeStored(this.valueCodec, wire as Encoded);
  }
}

function storeError(mapId: string, what: string, error: unknown): HamokError {
  if (error instanceof HamokError) return error;
  return new HamokError(`remote map '${mapId}': the store failed (${what})`, "HAMOK_ERROR", { cause: error });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new HamokError(String(error), "HAMOK_ERROR", { cause: error });
}
