/**
 * The store behind a {@linkcode HamokRemoteMap}: the interface the application implements over its
 * own database (Redis, SQL, ...), and {@linkcode MemoryRemoteStore}, an in-memory reference
 * implementation for tests and examples.
 *
 * @module
 */

import { encodeCbor } from "../codec/cbor.ts";

/**
 * What the store records atomically with every write: the log index of the last operation the
 * write executed, and opaque bytes (the outcomes of that write's operations, so that a new leader
 * can report them if the old one died before it could).
 *
 * @example
 * ```ts
 * const mark: HamokRemoteStoreMark = { index: 42, data: new Uint8Array([0x80]) };
 * ```
 */
export interface HamokRemoteStoreMark {
  /** Log index of the last operation executed by the write. Starts at 0 (nothing written). */
  readonly index: number;
  /** Opaque bytes to keep as they are and return from {@linkcode HamokRemoteStore.readMark}. */
  readonly data: Uint8Array;
}

/** One committed operation executed by a write (for auditing; the store need not use it). */
export interface HamokRemoteStoreOp {
  /** Log index of the operation. */
  readonly index: number;
  /** The operation (`set`, `insert`, `delete`, `updateIf`, `clear`, ...). */
  readonly op: string;
}

/**
 * One atomic, conditional write: the net effect of a batch of consecutive committed operations.
 * Apply it only if the store's current mark index equals `expectedIndex`: first `clear` (if true),
 * then `deletes`, then `sets`, then replace the mark with `mark` — all or nothing.
 *
 * @example
 * ```ts
 * const batch: HamokRemoteStoreBatch<string, number> = {
 *   expectedIndex: 0,
 *   mark: { index: 7, data: new Uint8Array() },
 *   clear: false,
 *   deletes: ["old"],
 *   sets: [["a", 1]],
 *   ops: [{ index: 7, op: "set" }],
 * };
 * ```
 */
export interface HamokRemoteStoreBatch<K, V> {
  /** The mark index the store must be at for the write to apply (0: never written). */
  readonly expectedIndex: number;
  /** The new mark, stored with the changes. */
  readonly mark: HamokRemoteStoreMark;
  /** Remove every entry first. */
  readonly clear: boolean;
  /** Keys to remove (after a `clear`, none are listed). */
  readonly deletes: readonly K[];
  /** Entries to write, each key at most once. */
  readonly sets: readonly (readonly [K, V])[];
  /** The operations this write executes, in log order. */
  readonly ops: readonly HamokRemoteStoreOp[];
}

/**
 * The async store that holds the data of a {@linkcode HamokRemoteMap}. Raft orders the operations;
 * the leader executes them against the store in batches, through {@linkcode write}, which must be
 * atomic and conditional on the stored mark (compare-and-set on the mark index). That is what makes
 * every committed operation execute exactly once, even when a leader dies mid-write and a new one
 * takes over: the new leader reads the mark, reports what the old leader's last write did, and
 * continues after it. All peers of a cluster must see the same backing data (one database).
 *
 * Values are never `undefined` (`undefined` means absent); `null`, `0`, `""` and `false` are values.
 *
 * @example
 * ```ts
 * import type { HamokRemoteStore } from "@hamok/core";
 * type Row = { k: string; v: string; idx: number; data: Uint8Array; n: number };
 * type Tx = { exec(sql: string, args?: unknown[]): Promise<{ rowCount: number }> };
 * declare const db: {
 *   one(sql: string, args?: unknown[]): Promise<Row | undefined>;
 *   all(sql: string, args?: unknown[]): Promise<Row[]>;
 *   tx<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
 * };
 * declare const mapId: string;
 * // A sketch over a SQL database (one transaction per write):
 * const store: HamokRemoteStore<string, string> = {
 *   async readMark() {
 *     const row = await db.one("SELECT idx, data FROM marks WHERE map = $1", [mapId]);
 *     return row && { index: row.idx, data: row.data };
 *   },
 *   async getMany(keys) {
 *     const rows = await db.all("SELECT k, v FROM entries WHERE k = ANY($1)", [keys]);
 *     const found = new Map(rows.map((r) => [r.k, r.v]));
 *     return keys.map((k) => found.get(k));
 *   },
 *   size: () => db.one("SELECT count(*) AS n FROM entries").then((r) => r?.n ?? 0),
 *   async *entries() {
 *     for (const r of await db.all("SELECT k, v FROM entries")) yield [r.k, r.v];
 *   },
 *   write: (batch) => db.tx(async (tx) => {
 *     const moved = await tx.exec(
 *       "UPDATE marks SET idx = $1, data = $2 WHERE map = $3 AND idx = $4",
 *       [batch.mark.index, batch.mark.data, mapId, batch.expectedIndex],
 *     );
 *     if (moved.rowCount === 0) return false; // someone else wrote first: nothing changes
 *     if (batch.clear) await tx.exec("DELETE FROM entries");
 *     for (const k of batch.deletes) await tx.exec("DELETE FROM entries WHERE k = $1", [k]);
 *     for (const [k, v] of batch.sets) await tx.exec("UPSERT INTO entries VALUES ($1, $2)", [k, v]);
 *     return true;
 *   }),
 * };
 * ```
 */
export interface HamokRemoteStore<K, V> {
  /** The mark of the last successful write, or `undefined` if nothing was written yet. */
  readMark(): Promise<HamokRemoteStoreMark | undefined>;
  /** The values of `keys`, in the same order (`undefined` for an absent key). */
  getMany(keys: readonly K[]): Promise<readonly (V | undefined)[]>;
  /** Number of entries. */
  size(): Promise<number>;
  /** Every entry (in any order). */
  entries(): AsyncIterable<readonly [K, V]>;
  /**
   * Applies `batch` atomically if the mark index is `batch.expectedIndex`, and resolves `true`;
   * otherwise changes nothing and resolves `false`.
   */
  write(batch: HamokRemoteStoreBatch<K, V>): Promise<boolean>;
}

/**
 * Options of {@linkcode MemoryRemoteStore}.
 *
 * @example
 * ```ts
 * const store = new MemoryRemoteStore<{ id: number }, string>({ keyOf: (k) => String(k.id) });
 * ```
 */
export interface MemoryRemoteStoreOptions<K, V> {
  /**
   * Key identity: two keys are the same entry if `keyOf` returns the same string. Default: strings
   * as they are, bytes by content, anything else by its CBOR encoding (so objects compare by
   * content in key insertion order).
   */
  keyOf?: (key: K) => string;
  /**
   * Called before every write is checked and applied (a test hook: await in it to hold the write
   * back, throw to make the write fail).
   */
  beforeWrite?: (batch: HamokRemoteStoreBatch<K, V>) => void | Promise<void>;
}

/**
 * An in-memory {@linkcode HamokRemoteStore}, for tests and examples. Share one instance between the
 * peers of a test cluster to stand for one database. It records which operations each accepted
 * write executed in {@linkcode executionLog}, so a test can check that none ran twice. Values are
 * stored by reference.
 *
 * @example
 * ```ts
 * import { type Hamok, MemoryRemoteStore } from "@hamok/core";
 * declare const hamok: Hamok;
 * const store = new MemoryRemoteStore<string, number>();
 * const map = hamok.createRemoteMap<string, number>({ mapId: "scores", store });
 * await map.set("a", 1);
 * console.log(store.toMap().get("a"), store.executionLog.length); // 1 1
 * ```
 */
export class MemoryRemoteStore<K = unknown, V = unknown> implements HamokRemoteStore<K, V> {
  /** Log indexes of the operations executed by accepted writes, in execution order. */
  readonly executionLog: number[] = [];
  /** Number of accepted writes. */
  acceptedWrites = 0;
  /** Number of writes refused because the mark had moved. */
  rejectedWrites = 0;
  private readonly data = new Map<string, [K, V]>();
  private mark: HamokRemoteStoreMark | undefined;
  private readonly keyOf: (key: K) => string;
  private readonly beforeWrite: ((batch: HamokRemoteStoreBatch<K, V>) => void | Promise<void>) | undefined;

  /** Creates an empty store. */
  constructor(options: MemoryRemoteStoreOptions<K, V> = {}) {
    this.keyOf = options.keyOf ?? identityOf;
    this.beforeWrite = options.beforeWrite;
  }

  /** The current mark (`undefined` before the first write). */
  get currentMark(): HamokRemoteStoreMark | undefined {
    return this.mark;
  }

  /** A copy of the content (synchronous; for tests). */
  toMap(): Map<K, V> {
    const copy = new Map<K, V>();
    for (const [key, value] of this.data.values()) copy.set(key, value);
    return copy;
  }

  /**
   * The mark of the last accepted write, or `undefined` if none was accepted yet. Resolves at once
   * (no {@linkcode MemoryRemoteStoreOptions.beforeWrite} hook applies to reads).
   */
  readMark(): Promise<HamokRemoteStoreMark | undefined> {
    return Promise.resolve(this.mark);
  }

  /**
   * The values of `keys` in the same order, `undefined` for an absent key. Keys are matched by
   * {@linkcode MemoryRemoteStoreOptions.keyOf}; the stored values are returned by reference.
   */
  getMany(keys: readonly K[]): Promise<readonly (V | undefined)[]> {
    return Promise.resolve(keys.map((key) => this.data.get(this.keyOf(key))?.[1]));
  }

  /** The number of entries (as of the last accepted write). */
  size(): Promise<number> {
    return Promise.resolve(this.data.size);
  }

  /**
   * Every entry as `[key, value]`, in insertion order of the keys. The entries are taken when
   * iteration starts, so writes during the iteration do not affect it.
   */
  async *entries(): AsyncIterableIterator<readonly [K, V]> {
    const copy = [...this.data.values()];
    for (const entry of copy) yield entry;
  }

  /**
   * Applies `batch` if the current mark index (0 before the first write) equals
   * `batch.expectedIndex`: clears, deletes, sets and moves the mark in one synchronous step, counts
   * it in {@linkcode acceptedWrites}, appends the operations' indexes to {@linkcode executionLog},
   * and resolves `true`. Otherwise changes nothing, counts {@linkcode rejectedWrites} and resolves
   * `false`. The {@linkcode MemoryRemoteStoreOptions.beforeWrite} hook runs first; if it throws,
   * the write rejects with that error and changes nothing.
   */
  async write(batch: HamokRemoteStoreBatch<K, V>): Promise<boolean> {
    if (this.beforeWrite !== undefined) await this.beforeWrite(batch);
    // from here on synchronous: the check and the changes are one atomic step
    if ((this.mark?.index ?? 0) !== batch.expectedIndex) {
      this.rejectedWrites++;
      return false;
    }
    if (batch.clear) this.data.clear();
    for (const key of batch.deletes) this.data.delete(this.keyOf(key));
    for (const [key, value] of batch.sets) this.data.set(this.keyOf(key), [key, value]);
    this.mark = batch.mark;
    this.acceptedWrites++;
    for (const op of batch.ops) this.executionLog.push(op.index);
    return true;
  }
}

/**
 * @internal The default key identity: strings as they are, bytes by content, anything else by its
 * CBOR encoding. The prefixes keep the three kinds apart.
 */
export function identityOf(key: unknown): string {
  if (typeof key === "string") return "s" + key;
  if (key instanceof Uint8Array) return "b" + latin1(key);
  return "c" + latin1(encodeCbor(key));
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode(...bytes.subarray(i, Math.min(bytes.length, i + 4096)));
  }
  return text;
}
