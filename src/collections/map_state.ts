/**
 * The replicated state of a map (and of a record, which is a map of fields): encoded keys to
 * encoded values, each with a revision (the log index of the command that last wrote it). It is a
 * {@linkcode ReplicatedState}: it changes only by committed commands, in log order, identically on
 * every peer, and it never sees the codecs: keys are compared by their encoded form.
 *
 * The state is kept lean (docs/decisions.md, "A lean map entry"): no object per entry. Each entry
 * has a slot in parallel tables, in insertion order: its key id (the string the index is keyed by),
 * its value (a string value as is, bytes up to 1 KiB as a string of one char per byte, larger bytes
 * as an owned `Uint8Array`), its revision in a `Float64Array` and a flag byte. The
 * {@linkcode MapStateEntry} objects that reads get are made on demand.
 *
 * A snapshot is a view ({@linkcode HamokMapState.snapshotView}): it fixes the state as it is and is
 * written out a slice at a time while commands go on being applied; a slot changed after the view
 * was taken and before the view wrote it keeps its old content in the view's side table.
 *
 * @module
 */

import {
  type ApplyContext,
  type ReplicatedState,
  type RestoreBuilder,
  RESULT_IMAGE,
  type SnapshotView,
} from "../cluster/state_machine.ts";
import { applyCommand, type CommandSpec, type CommandTable, commandTable } from "./command_spec.ts";
import {
  type Encoded,
  encodedOf,
  INLINE_BYTES,
  isEncoded,
  itemBytes,
  keyIdOf,
  keyOfId,
  latin1Of,
  MapStateEntry,
  type MapTables,
  own,
  sameEncoded,
  type Stored,
  VALUE_BYTES,
} from "./map_slots.ts";
import { MapRestoreBuilder, MapSnapshotView } from "./map_snapshot.ts";

export { type Encoded, isEncoded, keyIdOf, keyOfId, MapStateEntry, sameEncoded } from "./map_slots.ts";

/** Holes are squeezed out of the slot tables once there are this many and more than live slots. */
const MIN_HOLES_TO_COMPACT = 4096;

/**
 * Hears every change of a {@linkcode HamokMapState} as it is applied (in log order). The collection
 * object on this peer installs one to turn changes into its events.
 */
export interface MapStateObserver {
  /**
   * Whether the observer does anything with changes of this kind now (false: the state skips
   * making what it would be told: an entry object, the old value). Absent: it always does.
   */
  listens?(change: "insert" | "update"): boolean;
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

/**
 * Result of `set` and `delete`: written (with the previous value, `null` if there was none), or a
 * conflict of `ifRevision` (with the entry's actual revision; nothing was written).
 */
export type MapWriteResult =
  | { readonly conflict: false; readonly previous: Encoded | null }
  | { readonly conflict: true; readonly revision: number };

/** The result of a write that found no previous value (shared: results are never changed). */
const WRITTEN_NEW: MapWriteResult = Object.freeze({ conflict: false, previous: null });

/**
 * The result of a `set` that replaced a value. Every peer applies the write and keeps the result
 * in its dedup window, but only the proposer reads the previous value, so it is made (decoded out
 * of the stored form it had) when first read; the stored form itself is never changed, only
 * replaced, so it can be held.
 */
export class Replaced {
  /** Not a conflict: the value was written. */
  readonly conflict = false as const;
  /** @internal The replaced value as its slot kept it. */
  readonly keptValue: Stored;
  /** @internal The flags of {@linkcode keptValue}. */
  readonly keptFlags: number;
  #previous: Encoded | undefined = undefined;

  /** @internal */
  constructor(stored: Stored, flags: number) {
    this.keptValue = stored;
    this.keptFlags = flags;
  }

  /** The value the write replaced. */
  get previous(): Encoded {
    return this.#previous ??= encodedOf(this.keptValue, this.keptFlags);
  }

  /** The plain form, for the dedup window of a snapshot (made afresh: a snapshot does not make the result keep its bytes). */
  [RESULT_IMAGE](): MapWriteResult {
    return { conflict: false, previous: this.#previous ?? encodedOf(this.keptValue, this.keptFlags) };
  }
}

/** `[key, value]` pairs in commands and results; `null` as a value means absent / delete. */
export type EncodedPair = readonly [Encoded, Encoded | null];

/** `[key, value]` pairs of present entries. */
export type EncodedEntry = readonly [key: Encoded, value: Encoded];

/**
 * The commands of a map state (maps and records), declared once: the views propose them and the
 * state applies them against this declaration. Arguments are positional arrays (compact in the log).
 * Malformed arguments make a command a no-op with an `undefined` result (deterministically).
 */
export interface MapCommands {
  /** Writes `value` under `key` (only if the entry's revision is `ifRevision`, when given). */
  set: CommandSpec<readonly [key: Encoded, value: Encoded, ifRevision?: number], MapWriteResult>;
  /** Writes `value` under `key` if absent; the existing value, or `null` when inserted. */
  insert: CommandSpec<readonly [key: Encoded, value: Encoded], Encoded | null>;
  /** Removes `key` (only at revision `ifRevision`, when given); `previous` `null`: it was absent. */
  delete: CommandSpec<readonly [key: Encoded, ifRevision?: number], MapWriteResult>;
  /** Writes every pair; the previous values of the keys that existed. */
  setAll: CommandSpec<readonly [pairs: readonly EncodedEntry[]], EncodedEntry[]>;
  /** Writes the pairs whose key is absent; the existing values of the others. */
  insertAll: CommandSpec<readonly [pairs: readonly EncodedEntry[]], EncodedEntry[]>;
  /** Removes the keys; the removed entries. */
  deleteAll: CommandSpec<readonly [keys: readonly Encoded[]], EncodedEntry[]>;
  /** If every expectation holds (`null`: absent), applies the writes (`null`: remove); whether it did. */
  cas: CommandSpec<readonly [expected: readonly EncodedPair[], writes: readonly EncodedPair[]], boolean>;
  /** Removes every key; how many there were. */
  clear: CommandSpec<readonly [], number>;
}

/** The operations of a map state. */
export type MapStateOp = keyof MapCommands;

/**
 * The replicated state of one map or record.
 *
 * @example
 * ```ts ignore
 * const state = new HamokMapState("users");
 * const ctx = { index: 7, requestId: "r1", proposerPeerId: "a" };
 * state.apply("set", ["alice", "admin"], ctx); // { conflict: false, previous: null }: inserted
 * console.log(state.lookup("alice")?.revision); // 7
 * ```
 */
export class HamokMapState implements ReplicatedState {
  /** The collection id. */
  readonly id: string;
  /** The observer of changes (the collection object on this peer), if any. */
  observer: MapStateObserver | undefined = undefined;
  /** Key id -> slot. */
  #index = new Map<string, number>();
  /** Per slot, in insertion order: the key id (undefined: a hole left by a removal). */
  #keys: (string | undefined)[] = [];
  /** Per slot: the stored value. */
  #values: (Stored | undefined)[] = [];
  /** Per slot: the revision. */
  #revs: Float64Array = new Float64Array(8);
  /** Per slot: flag bits ({@linkcode VALUE_BYTES}). */
  #flags: Uint8Array = new Uint8Array(8);
  /** Slots in use, holes included. */
  #slots = 0;
  #revision = 0;
  /** Bumped whenever slots are renumbered or dropped (clear, restore, squeezing out holes). */
  #epoch = 0;
  /** After the last squeeze (epoch {@linkcode #remapEpoch}): old slot -> new slot of the next live entry. */
  #remap: Int32Array | undefined = undefined;
  #remapEpoch = -1;
  /** Views being written out: they must hear of a slot before it changes. */
  #views: MapSnapshotView[] = [];
  /** CBOR bytes of every live entry's key, value and revision (the image's size, less its header). */
  #bytes = 0;

  /** Creates an empty state. */
  constructor(id: string) {
    this.id = id;
  }

  /** Number of entries. */
  get size(): number {
    return this.#index.size;
  }

  /** Log index of the last command that changed this state (0: never changed). */
  get revision(): number {
    return this.#revision;
  }

  /** The entry of an encoded key, if present. */
  lookup(key: Encoded): MapStateEntry | undefined {
    const id = keyIdOf(key);
    const slot = this.#index.get(id);
    if (slot === undefined) return undefined;
    return new MapStateEntry(key, undefined, this.#revs[slot]!, id, this.#values[slot], this.#flags[slot]!);
  }

  /**
   * The live entries, in insertion order (the same on every peer). Like a `Map` iterator it may be
   * held while commands are applied: it goes on with the entries after the last one it gave (after
   * a `clear` or a restore it ends).
   */
  *entries(): IterableIterator<MapStateEntry> {
    let epoch = this.#epoch;
    let slot = 0;
    for (;;) {
      if (epoch !== this.#epoch) {
        const remap = this.#remap;
        if (remap === undefined || this.#remapEpoch !== epoch + 1 || this.#epoch !== epoch + 1) return;
        slot = remap[Math.min(slot, remap.length - 1)]!;
        epoch = this.#epoch;
      }
      if (slot >= this.#slots) return;
      const s = slot++;
      const id = this.#keys[s];
      if (id !== undefined) yield this.#entryAt(s, id);
    }
  }

  /** The applying side of {@linkcode MapCommands}. */
  static readonly #commands: CommandTable<HamokMapState> = commandTable<MapCommands, HamokMapState>({
    set: (s, a, c) => Array.isArray(a) ? s.#set(a[0], a[1], a[2], c.index) : undefined,
    insert: (s, a, c) => Array.isArray(a) ? s.#insert(a[0], a[1], c.index) : undefined,
    delete: (s, a, c) => Array.isArray(a) ? s.#delete(a[0], a[1], c.index) : undefined,
    setAll: (s, a, c) => Array.isArray(a) ? s.#setAll(a[0], c.index) : undefined,
    insertAll: (s, a, c) => Array.isArray(a) ? s.#insertAll(a[0], c.index) : undefined,
    deleteAll: (s, a, c) => Array.isArray(a) ? s.#deleteAll(a[0], c.index) : undefined,
    cas: (s, a, c) => Array.isArray(a) ? s.#cas(a[0], a[1], c.index) : undefined,
    clear: (s, a, c) => Array.isArray(a) ? s.#clear(c.index) : undefined,
  });

  /** @internal Applies a committed command (see {@linkcode MapCommands}). */
  apply(op: string, args: unknown, ctx: ApplyContext): unknown {
    return applyCommand(HamokMapState.#commands, this, op, args, ctx);
  }

  /** @internal Maps do not depend on membership. */
  memberRemoved(): void {}

  /** @internal `[revision, key0, value0, revision0, key1, ...]`, made at once. */
  snapshot(): unknown {
    const image: unknown[] = [this.#revision];
    const keys = this.#keys;
    for (let s = 0; s < this.#slots; s++) {
      const id = keys[s];
      if (id === undefined) continue;
      image.push(keyOfId(id), encodedOf(this.#values[s]!, this.#flags[s]!), this.#revs[s]);
    }
    return image;
  }

  /**
   * @internal The image of {@linkcode snapshot} as it is now, written out later a slice at a time
   * (while commands go on being applied) by {@linkcode SnapshotView.writeTo}. Taking it costs O(1).
   */
  snapshotView(): SnapshotView {
    const view = new MapSnapshotView(
      this,
      this.#keys,
      this.#values,
      this.#revs,
      this.#flags,
      this.#slots,
      this.#index.size,
      this.#revision,
      this.#bytes,
    );
    this.#views.push(view);
    return view;
  }

  /** @internal A view is written out or abandoned: stop telling it about changes. */
  releaseView(view: MapSnapshotView): void {
    const at = this.#views.indexOf(view);
    if (at < 0) return;
    this.#views.splice(at, 1);
    this.#maybeSqueeze();
  }

  /**
   * @internal Replaces the state with an image, keeping the image's order. The observer hears the
   * difference: removals first, then insertions and updates in revision order.
   */
  restore(image: unknown): void {
    const flat = Array.isArray(image) ? image : [0];
    const revision = typeof flat[0] === "number" ? flat[0] : 0;
    const observer = this.observer;
    const oldIndex = this.#index;
    const oldValues = this.#values;
    const oldRevs = this.#revs;
    const oldFlags = this.#flags;
    this.#reset(Math.max(8, Math.floor((flat.length - 1) / 3)));
    const changes: [slot: number, previous: Encoded | undefined][] = [];
    const seen = observer === undefined ? undefined : new Set<string>();
    for (let i = 1; i + 2 < flat.length; i += 3) {
      const key = flat[i];
      const value = flat[i + 1];
      const entryRevision = flat[i + 2];
      if (!isEncoded(key) || !isEncoded(value) || typeof entryRevision !== "number") continue;
      const id = keyIdOf(key);
      const existing = this.#index.get(id);
      const slot = existing ?? this.#newSlot(id);
      this.#storeAt(slot, value, entryRevision);
      if (seen === undefined) continue;
      seen.add(id);
      const old = oldIndex.get(id);
      if (old === undefined) {
        if (existing === undefined) changes.push([slot, undefined]);
        continue;
      }
      const previous = encodedOf(oldValues[old]!, oldFlags[old]!);
      if (oldRevs[old] === entryRevision && sameEncoded(previous, value)) continue;
      changes.push([slot, previous]);
    }
    this.#revision = revision;
    if (observer === undefined || seen === undefined) return;
    for (const [id, old] of oldIndex) {
      if (!seen.has(id)) {
        observer.removed(
          new MapStateEntry(undefined, undefined, oldRevs[old]!, id, oldValues[old], oldFlags[old]!),
          revision,
        );
      }
    }
    // in revision order, so a listener never sees revisions go backwards (the image is in key order)
    const revs = this.#revs;
    changes.sort((x, y) => revs[x[0]]! - revs[y[0]]!);
    for (const [slot, previous] of changes) {
      const entry = this.#entryAt(slot, this.#keys[slot]!);
      if (previous === undefined) observer.inserted(entry, entry.revision);
      else observer.updated(entry, previous, undefined, undefined, entry.revision);
    }
  }

  /**
   * @internal A builder of this state's content from its snapshot image, read a slice at a time
   * (a restore that does not pause the peer): the state itself is untouched until
   * {@linkcode RestoreBuilder.commit} swaps the built tables in, in O(1). Commands must not be
   * applied to the state meanwhile (the driver holds them back until the restore is complete).
   */
  restoreBuilder(): RestoreBuilder {
    return new MapRestoreBuilder(
      this,
      this.observer === undefined ? undefined : {
        index: this.#index,
        keys: this.#keys,
        values: this.#values,
        revs: this.#revs,
        flags: this.#flags,
      },
    );
  }

  /** @internal Takes the tables a {@linkcode MapRestoreBuilder} built (its commit). */
  adoptTables(t: MapTables, slots: number, bytes: number, revision: number): void {
    this.#index = t.index;
    this.#keys = t.keys;
    this.#values = t.values;
    this.#revs = t.revs;
    this.#flags = t.flags;
    this.#slots = slots;
    this.#bytes = bytes;
    this.#revision = revision;
    this.#epoch++;
    this.#remap = undefined;
    this.#views = [];
  }

  // ------------------------------------------------------------------ slots

  #entryAt(slot: number, id: string): MapStateEntry {
    return new MapStateEntry(
      undefined,
      undefined,
      this.#revs[slot]!,
      id,
      this.#values[slot],
      this.#flags[slot]!,
    );
  }

  #valueAt(slot: number): Encoded {
    return encodedOf(this.#values[slot]!, this.#flags[slot]!);
  }

  /** Fresh, empty tables (views taken before keep the old ones, which nothing changes any more). */
  #reset(capacity: number): void {
    this.#index = new Map();
    this.#keys = [];
    this.#values = [];
    this.#revs = new Float64Array(capacity);
    this.#flags = new Uint8Array(capacity);
    this.#slots = 0;
    this.#epoch++;
    this.#remap = undefined;
    this.#views = [];
    this.#bytes = 0;
  }

  #newSlot(id: string): number {
    const slot = this.#slots++;
    if (slot >= this.#revs.length) {
      const capacity = Math.max(8, Math.ceil(this.#revs.length * 1.5));
      const revs = new Float64Array(capacity);
      revs.set(this.#revs);
      this.#revs = revs;
      const flags = new Uint8Array(capacity);
      flags.set(this.#flags);
      this.#flags = flags;
    }
    this.#keys[slot] = id;
    this.#values[slot] = undefined;
    this.#index.set(id, slot);
    return slot;
  }

  #storeAt(slot: number, value: Encoded, revision: number): void {
    const old = this.#values[slot];
    if (old !== undefined) {
      this.#bytes -= itemBytes(this.#keys[slot]!, old, this.#flags[slot]!, this.#revs[slot]!);
    }
    if (typeof value === "string") {
      this.#values[slot] = value;
      this.#flags[slot] = 0;
    } else if (value.length <= INLINE_BYTES) {
      this.#values[slot] = latin1Of(value, 0);
      this.#flags[slot] = VALUE_BYTES;
    } else {
      this.#values[slot] = own(value);
      this.#flags[slot] = 0;
    }
    this.#revs[slot] = revision;
    this.#bytes += itemBytes(this.#keys[slot]!, this.#values[slot]!, this.#flags[slot]!, revision);
  }

  /** Before slot `slot` changes: views that still have to write it keep its content. */
  #touch(slot: number): void {
    const views = this.#views;
    for (let i = 0; i < views.length; i++) views[i]!.keep(slot);
  }

  /** Squeezes out the holes once they outnumber the live slots (never while a view is written out). */
  #maybeSqueeze(): void {
    const n = this.#slots;
    const live = this.#index.size;
    if (this.#views.length > 0 || n - live < MIN_HOLES_TO_COMPACT || n - live <= live) return;
    const keys: (string | undefined)[] = [];
    const values: (Stored | undefined)[] = [];
    const revs = new Float64Array(Math.max(8, Math.ceil(live * 1.5)));
    const flags = new Uint8Array(revs.length);
    const remap = new Int32Array(n + 1);
    let j = 0;
    for (let s = 0; s < n; s++) {
      remap[s] = j;
      const id = this.#keys[s];
      if (id === undefined) continue;
      keys[j] = id;
      values[j] = this.#values[s];
      revs[j] = this.#revs[s]!;
      flags[j] = this.#flags[s]!;
      this.#index.set(id, j);
      j++;
    }
    remap[n] = j;
    this.#keys = keys;
    this.#values = values;
    this.#revs = revs;
    this.#flags = flags;
    this.#slots = j;
    this.#epoch++;
    this.#remap = remap;
    this.#remapEpoch = this.#epoch;
  }

  // ------------------------------------------------------------------ commands

  /** Writes `value` under `key` (id `id`, current slot `slot` if present, whose value is `previous`). */
  #write(
    id: string,
    slot: number | undefined,
    previous: Encoded | undefined,
    value: Encoded,
    index: number,
  ): void {
    this.#revision = index;
    const observer = this.observer;
    if (slot === undefined) {
      const created = this.#newSlot(id);
      this.#storeAt(created, value, index);
      if (observer !== undefined && observer.listens?.("insert") !== false) {
        observer.inserted(this.#entryAt(created, id), index);
      }
      return;
    }
    this.#touch(slot);
    const heard = observer !== undefined && observer.listens?.("update") !== false;
    const old = heard ? previous ?? this.#valueAt(slot) : undefined;
    this.#storeAt(slot, value, index);
    if (heard) observer.updated(this.#entryAt(slot, id), old!, undefined, undefined, index);
  }

  #remove(id: string, slot: number, index: number): Encoded {
    const removed = this.#valueAt(slot);
    const revision = this.#revs[slot]!;
    const stored = this.#values[slot];
    const flags = this.#flags[slot]!;
    this.#touch(slot);
    this.#bytes -= itemBytes(id, stored!, flags, revision);
    this.#index.delete(id);
    this.#keys[slot] = undefined;
    this.#values[slot] = undefined;
    this.#revision = index;
    this.observer?.removed(new MapStateEntry(undefined, removed, revision, id, stored, flags), index);
    this.#maybeSqueeze();
    return removed;
  }

  #set(key: unknown, value: unknown, ifRevision: unknown, index: number): MapWriteResult | undefined {
    if (!isEncoded(key) || !isEncoded(value)) return undefined;
    const id = keyIdOf(key);
    const slot = this.#index.get(id);
    if (typeof ifRevision === "number") {
      const actual = slot === undefined ? 0 : this.#revs[slot]!;
      if (actual !== ifRevision) return { conflict: true, revision: actual };
    }
    if (slot === undefined) {
      this.#write(id, undefined, undefined, value, index);
      return WRITTEN_NEW;
    }
    const written = new Replaced(this.#values[slot]!, this.#flags[slot]!);
    this.#write(id, slot, undefined, value, index);
    return written;
  }

  #insert(key: unknown, value: unknown, index: number): Encoded | null | undefined {
    if (!isEncoded(key) || !isEncoded(value)) return undefined;
    const id = keyIdOf(key);
    const slot = this.#index.get(id);
    if (slot !== undefined) return this.#valueAt(slot);
    this.#write(id, undefined, undefined, value, index);
    return null;
  }

  #delete(key: unknown, ifRevision: unknown, index: number): MapWriteResult | undefined {
    if (!isEncoded(key)) return undefined;
    const id = keyIdOf(key);
    const slot = this.#index.get(id);
    if (typeof ifRevision === "number") {
      const actual = slot === undefined ? 0 : this.#revs[slot]!;
      if (actual !== ifRevision) return { conflict: true, revision: actual };
    }
    if (slot === undefined) return WRITTEN_NEW;
    return { conflict: false, previous: this.#remove(id, slot, index) };
  }

  #setAll(pairs: unknown, index: number): [Encoded, Encoded][] | undefined {
    if (!isPairList(pairs, false)) return undefined;
    const previous: [Encoded, Encoded][] = [];
    for (const [key, value] of pairs) {
      const id = keyIdOf(key);
      const slot = this.#index.get(id);
      let old: Encoded | undefined;
      if (slot !== undefined) {
        old = this.#valueAt(slot);
        previous.push([keyOfId(id), old]);
      }
      this.#write(id, slot, old, value as Encoded, index);
    }
    return previous;
  }

  #insertAll(pairs: unknown, index: number): [Encoded, Encoded][] | undefined {
    if (!isPairList(pairs, false)) return undefined;
    const existing: [Encoded, Encoded][] = [];
    for (const [key, value] of pairs) {
      const id = keyIdOf(key);
      const slot = this.#index.get(id);
      if (slot !== undefined) existing.push([keyOfId(id), this.#valueAt(slot)]);
      else this.#write(id, undefined, undefined, value as Encoded, index);
    }
    return existing;
  }

  #deleteAll(keys: unknown, index: number): [Encoded, Encoded][] | undefined {
    if (!Array.isArray(keys) || !keys.every(isEncoded)) return undefined;
    const removed: [Encoded, Encoded][] = [];
    for (const key of keys as Encoded[]) {
      const id = keyIdOf(key);
      const slot = this.#index.get(id);
      if (slot === undefined) continue;
      removed.push([keyOfId(id), this.#remove(id, slot, index)]);
    }
    return removed;
  }

  #cas(expected: unknown, writes: unknown, index: number): boolean | undefined {
    if (!isPairList(expected, true) || !isPairList(writes, true)) return undefined;
    for (const [key, value] of expected) {
      const slot = this.#index.get(keyIdOf(key));
      if (
        value === null ? slot !== undefined : slot === undefined || !this.#storedEquals(slot, value)
      ) {
        return false;
      }
    }
    for (const [key, value] of writes) {
      const id = keyIdOf(key);
      const slot = this.#index.get(id);
      if (value !== null) this.#write(id, slot, undefined, value, index);
      else if (slot !== undefined) this.#remove(id, slot, index);
    }
    return true;
  }

  #clear(index: number): number {
    const removed = this.#index.size;
    if (removed === 0) return 0;
    this.#reset(8);
    this.#revision = index;
    this.observer?.cleared(index);
    return removed;
  }

  /** Whether slot `slot` holds exactly `value` (same type, same content). */
  #storedEquals(slot: number, value: Encoded): boolean {
    const stored = this.#values[slot]!;
    const bytes = (this.#flags[slot]! & VALUE_BYTES) !== 0;
    if (typeof value === "string") return !bytes && stored === value;
    if (typeof stored !== "string") return sameEncoded(stored, value);
    if (!bytes || stored.length !== value.length) return false;
    for (let i = 0; i < value.length; i++) if (stored.charCodeAt(i) !== value[i]) return false;
    return true;
  }
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
