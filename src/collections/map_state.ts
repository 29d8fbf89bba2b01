/**
 * The replicated state of a map (and of a record, which is a map of fields): encoded keys to
 * encoded values, each with a revision (the log index of the command that last wrote it). It is a
 * {@linkcode ReplicatedState}: it changes only by committed commands, in log order, identically on
 * every peer, and it never sees the codecs: keys are compared by their encoded form.
 *
 * @module
 */

import type { ApplyContext, ReplicatedState } from "../cluster/state_machine.ts";

/** A key or a value as its codec produced it. */
export type Encoded = string | Uint8Array;

/**
 * One entry of a {@linkcode HamokMapState}. The decode slots let the one collection object that reads
 * the state keep an immutable decoded key or value next to the bytes (see `owner` checks in map.ts).
 */
export class MapStateEntry {
  /** The encoded key. */
  readonly key: Encoded;
  /** The encoded value. */
  value: Encoded;
  /** Log index of the command that last wrote the value. */
  revision: number;
  /** Who filled {@linkcode keyCache} (a collection object), if anyone. */
  keyOwner: object | undefined = undefined;
  /** A decoded, immutable key. */
  keyCache: unknown = undefined;
  /** Who filled {@linkcode valueCache}, if anyone; reset on every write. */
  valueOwner: object | undefined = undefined;
  /** A decoded, immutable value. */
  valueCache: unknown = undefined;

  /** Creates an entry. */
  constructor(key: Encoded, value: Encoded, revision: number) {
    this.key = key;
    this.value = value;
    this.revision = revision;
  }
}

/**
 * Hears every change of a {@linkcode HamokMapState} as it is applied (in log order). The collection
 * object on this peer installs one to turn changes into its events.
 */
export interface MapStateObserver {
  /** A key was added. */
  inserted(entry: MapStateEntry, revision: number): void;
  /** A key got a new value; the previous value (and its decode slot) is given. */
  updated(
    entry: MapStateEntry,
    oldValue: Encoded,
    oldOwner: object | undefined,
    oldCache: unknown,
    revision: number,
  ): void;
  /** A key was removed (not by a clear). */
  removed(entry: MapStateEntry, revision: number): void;
  /** Every key was removed at once. */
  cleared(revision: number): void;
}

/** Result of `set` and `delete`: `[0, previous value or null]`, or `[1, actual revision]` on conflict. */
export type MapWriteResult = readonly [0, Encoded | null] | readonly [1, number];

/** `[key, value]` pairs in commands and results; `null` as a value means absent / delete. */
export type EncodedPair = readonly [Encoded, Encoded | null];

/**
 * The commands of a map state. Arguments are positional arrays (compact in the log):
 *
 * | op | args | result |
 * | --- | --- | --- |
 * | `set` | `[key, value, ifRevision?]` | {@linkcode MapWriteResult} |
 * | `insert` | `[key, value]` | existing value, or `null` when inserted |
 * | `delete` | `[key, ifRevision?]` | {@linkcode MapWriteResult} (`null`: was absent) |
 * | `setAll` | `[[key, value][]]` | `[key, previous value][]` of the keys that existed |
 * | `insertAll` | `[[key, value][]]` | `[key, existing value][]` of the keys that existed |
 * | `deleteAll` | `[key[]]` | `[key, removed value][]` of the keys that existed |
 * | `cas` | `[[key, expected or null][], [key, value or null][]]` | `true` if every expectation held and the writes were applied |
 * | `clear` | `[]` | number of removed keys |
 *
 * Malformed arguments make a command a no-op with an `undefined` result (deterministically).
 */
export type MapStateOp = "set" | "insert" | "delete" | "setAll" | "insertAll" | "deleteAll" | "cas" | "clear";

/**
 * The replicated state of one map or record.
 *
 * @example
 * ```ts ignore
 * const state = new HamokMapState("users");
 * const ctx = { index: 7, requestId: "r1", proposerPeerId: "a" };
 * state.apply("set", ["alice", "admin"], ctx); // [0, null]: inserted
 * console.log(state.lookup("alice")?.revision); // 7
 * ```
 */
export class HamokMapState implements ReplicatedState {
  /** The collection id. */
  readonly id: string;
  /** The observer of changes (the collection object on this peer), if any. */
  observer: MapStateObserver | undefined = undefined;
  readonly #entries = new Map<string, MapStateEntry>();
  #revision = 0;

  /** Creates an empty state. */
  constructor(id: string) {
    this.id = id;
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Log index of the last command that changed this state (0: never changed). */
  get revision(): number {
    return this.#revision;
  }

  /** The entry of an encoded key, if present. */
  lookup(key: Encoded): MapStateEntry | undefined {
    return this.#entries.get(keyIdOf(key));
  }

  /** The live entries, in insertion order (the same on every peer). Read them, never mutate them. */
  entries(): IterableIterator<MapStateEntry> {
    return this.#entries.values();
  }

  /** @internal Applies a committed command. */
  apply(op: string, args: unknown, ctx: ApplyContext): unknown {
    if (!Array.isArray(args)) return undefined;
    const index = ctx.index;
    switch (op as MapStateOp) {
      case "set":
        return this.#set(args[0], args[1], args[2], index);
      case "insert":
        return this.#insert(args[0], args[1], index);
      case "delete":
        return this.#delete(args[0], args[1], index);
      case "setAll":
        return this.#setAll(args[0], index);
      case "insertAll":
        return this.#insertAll(args[0], index);
      case "deleteAll":
        return this.#deleteAll(args[0], index);
      case "cas":
        return this.#cas(args[0], args[1], index);
      case "clear":
        return this.#clear(index);
      default:
        return undefined;
    }
  }

  /** @internal Maps do not depend on membership. */
  memberRemoved(): void {}

  /** @internal `[revision, key0, value0, revision0, key1, ...]`. */
  snapshot(): unknown {
    const image: unknown[] = [this.#revision];
    for (const entry of this.#entries.values()) image.push(entry.key, entry.value, entry.revision);
    return image;
  }

  /**
   * @internal Replaces the state with an image, keeping the image's order. The observer hears the
   * difference: removals first, then insertions and updates in revision order.
   */
  restore(image: unknown): void {
    const flat = Array.isArray(image) ? image : [0];
    const revision = typeof flat[0] === "number" ? flat[0] : 0;
    const next = new Map<string, MapStateEntry>();
    const changes: [MapStateEntry, MapStateEntry | undefined][] = [];
    for (let i = 1; i + 2 < flat.length; i += 3) {
      const key = flat[i];
      const value = flat[i + 1];
      const entryRevision = flat[i + 2];
      if (!isEncoded(key) || !isEncoded(value) || typeof entryRevision !== "number") continue;
      const id = keyIdOf(key);
      const current = this.#entries.get(id);
      if (current !== undefined && current.revision === entryRevision && sameEncoded(current.value, value)) {
        next.set(id, current);
        continue;
      }
      const entry = new MapStateEntry(own(key), own(value), entryRevision);
      next.set(id, entry);
      changes.push([entry, current]);
    }
    const observer = this.observer;
    const removed: MapStateEntry[] = [];
    if (observer !== undefined) {
      for (const [id, entry] of this.#entries) if (!next.has(id)) removed.push(entry);
    }
    this.#entries.clear();
    for (const [id, entry] of next) this.#entries.set(id, entry);
    this.#revision = revision;
    if (observer === undefined) return;
    for (const entry of removed) observer.removed(entry, revision);
    // in revision order, so a listener never sees revisions go backwards (the image is in key order)
    changes.sort((x, y) => x[0].revision - y[0].revision);
    for (const [entry, previous] of changes) {
      if (previous === undefined) observer.inserted(entry, entry.revision);
      else observer.updated(entry, previous.value, previous.valueOwner, previous.valueCache, entry.revision);
    }
  }

  /** Writes `value` under `key` (whose id is `id` and whose current entry is `entry`, if any). */
  #write(id: string, entry: MapStateEntry | undefined, key: Encoded, value: Encoded, index: number): void {
    this.#revision = index;
    if (entry === undefined) {
      const created = new MapStateEntry(own(key), own(value), index);
      this.#entries.set(id, created);
      this.observer?.inserted(created, index);
      return;
    }
    const oldValue = entry.value;
    const oldOwner = entry.valueOwner;
    const oldCache = entry.valueCache;
    entry.value = own(value);
    entry.revision = index;
    entry.valueOwner = undefined;
    entry.valueCache = undefined;
    this.observer?.updated(entry, oldValue, oldOwner, oldCache, index);
  }

  #remove(id: string, entry: MapStateEntry, index: number): void {
    this.#entries.delete(id);
    this.#revision = index;
    this.observer?.removed(entry, index);
  }

  #set(key: unknown, value: unknown, ifRevision: unknown, index: number): MapWriteResult | undefined {
    if (!isEncoded(key) || !isEncoded(value)) return undefined;
    const id = keyIdOf(key);
    const current = this.#entries.get(id);
    if (typeof ifRevision === "number") {
      const actual = current?.revision ?? 0;
      if (actual !== ifRevision) return [1, actual];
    }
    const previous = current === undefined ? null : current.value;
    this.#write(id, current, key, value, index);
    return [0, previous];
  }

  #insert(key: unknown, value: unknown, index: number): Encoded | null | undefined {
    if (!isEncoded(key) || !isEncoded(value)) return undefined;
    const id = keyIdOf(key);
    const current = this.#entries.get(id);
    if (current !== undefined) return current.value;
    this.#write(id, undefined, key, value, index);
    return null;
  }

  #delete(key: unknown, ifRevision: unknown, index: number): MapWriteResult | undefined {
    if (!isEncoded(key)) return undefined;
    const id = keyIdOf(key);
    const current = this.#entries.get(id);
    if (typeof ifRevision === "number") {
      const actual = current?.revision ?? 0;
      if (actual !== ifRevision) return [1, actual];
    }
    if (current === undefined) return [0, null];
    this.#remove(id, current, index);
    return [0, current.value];
  }

  #setAll(pairs: unknown, index: number): [Encoded, Encoded][] | undefined {
    if (!isPairList(pairs, false)) return undefined;
    const previous: [Encoded, Encoded][] = [];
    for (const [key, value] of pairs) {
      const id = keyIdOf(key);
      const current = this.#entries.get(id);
      if (current !== undefined) previous.push([current.key, current.value]);
      this.#write(id, current, key, value as Encoded, index);
    }
    return previous;
  }

  #insertAll(pairs: unknown, index: number): [Encoded, Encoded][] | undefined {
    if (!isPairList(pairs, false)) return undefined;
    const existing: [Encoded, Encoded][] = [];
    for (const [key, value] of pairs) {
      const id = keyIdOf(key);
      const current = this.#entries.get(id);
      if (current !== undefined) existing.push([current.key, current.value]);
      else this.#write(id, undefined, key, value as Encoded, index);
    }
    return existing;
  }

  #deleteAll(keys: unknown, index: number): [Encoded, Encoded][] | undefined {
    if (!Array.isArray(keys) || !keys.every(isEncoded)) return undefined;
    const removed: [Encoded, Encoded][] = [];
    for (const key of keys as Encoded[]) {
      const id = keyIdOf(key);
      const current = this.#entries.get(id);
      if (current === undefined) continue;
      this.#remove(id, current, index);
      removed.push([current.key, current.value]);
    }
    return removed;
  }

  #cas(expected: unknown, writes: unknown, index: number): boolean | undefined {
    if (!isPairList(expected, true) || !isPairList(writes, true)) return undefined;
    for (const [key, value] of expected) {
      const current = this.#entries.get(keyIdOf(key));
      if (
        value === null ? current !== undefined : current === undefined || !sameEncoded(current.value, value)
      ) {
        return false;
      }
    }
    for (const [key, value] of writes) {
      const id = keyIdOf(key);
      const current = this.#entries.get(id);
      if (value !== null) this.#write(id, current, key, value, index);
      else if (current !== undefined) this.#remove(id, current, index);
    }
    return true;
  }

  #clear(index: number): number {
    const removed = this.#entries.size;
    if (removed === 0) return 0;
    this.#entries.clear();
    this.#revision = index;
    this.observer?.cleared(index);
    return removed;
  }
}

const CHUNK = 4096;

/**
 * The identity of an encoded key: `s` + the string, or `b` + one UTF-16 unit per byte. Two keys are
 * the same key exactly when their encodings are equal.
 */
export function keyIdOf(key: Encoded): string {
  if (typeof key === "string") return "s" + key;
  const n = key.length;
  if (n <= CHUNK) return "b" + String.fromCharCode.apply(null, key as unknown as number[]);
  let id = "b";
  for (let i = 0; i < n; i += CHUNK) {
    id += String.fromCharCode.apply(null, key.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return id;
}

/** Whether two encoded values are equal (same type and same content). */
export function sameEncoded(a: Encoded, b: Encoded): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether `value` is a string or a `Uint8Array`. */
export function isEncoded(value: unknown): value is Encoded {
  return typeof value === "string" || value instanceof Uint8Array;
}

function isPairList(value: unknown, nullable: boolean): value is EncodedPair[] {
  if (!Array.isArray(value)) return false;
  for (const pair of value) {
    if (!Array.isArray(pair) || !isEncoded(pair[0])) return false;
    const v = pair[1];
    if (!(isEncoded(v) || (nullable && v === null))) return false;
  }
  return true;
}

/**
 * Bytes decoded from a log entry are views into the whole wire message; an entry that outlives the
 * message gets its own copy so that it does not pin the message's buffer.
 */
function own(value: Encoded): Encoded {
  if (typeof value === "string") return value;
  return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : value.slice();
}
