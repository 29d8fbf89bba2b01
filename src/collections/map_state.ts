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

import type {
  ApplyContext,
  ReplicatedState,
  RestoreBuilder,
  SnapshotView,
} from "../cluster/state_machine.ts";
import type { CborChunkWriter } from "../codec/cbor_writer.ts";
import type { CborReader } from "../codec/cbor_reader.ts";
import { applyCommand, type CommandSpec, type CommandTable, commandTable } from "./command_spec.ts";

/** A key or a value as its codec produced it. */
export type Encoded = string | Uint8Array;

/** A value as a slot keeps it: a string value, bytes as a one-char-per-byte string, or large bytes. */
type Stored = string | Uint8Array;

/** Flag bit: the slot's value is a string of one char per byte, standing for bytes. */
const VALUE_BYTES = 1;

/** Byte values up to this length are kept as strings of one char per byte (no `ArrayBuffer` each). */
const INLINE_BYTES = 1024;

/** Holes are squeezed out of the slot tables once there are this many and more than live slots. */
const MIN_HOLES_TO_COMPACT = 4096;

/**
 * One entry of a {@linkcode HamokMapState}, as a read sees it: made on demand (the state keeps no
 * object per entry), with the key and value decoded from the slot on first access. The decode slots
 * let the collection object that reads it keep an immutable decoded key or value for as long as it
 * holds the entry object.
 */
export class MapStateEntry {
  /** Log index of the command that last wrote the value. */
  readonly revision: number;
  /** Who filled {@linkcode keyCache} (a collection object), if anyone. */
  keyOwner: object | undefined = undefined;
  /** A decoded, immutable key. */
  keyCache: unknown = undefined;
  /** Who filled {@linkcode valueCache}, if anyone. */
  valueOwner: object | undefined = undefined;
  /** A decoded, immutable value. */
  valueCache: unknown = undefined;
  #key: Encoded | undefined;
  #value: Encoded | undefined;
  readonly #keyId: string;
  readonly #stored: Stored | undefined;
  readonly #flags: number;

  /**
   * Creates an entry of `key` and `value`, or (with `key` or `value` undefined) one that decodes them
   * from a slot's key id, stored value and flags when first asked.
   */
  constructor(
    key: Encoded | undefined,
    value: Encoded | undefined,
    revision: number,
    keyId = "",
    stored: Stored | undefined = undefined,
    flags = 0,
  ) {
    this.#key = key;
    this.#value = value;
    this.revision = revision;
    this.#keyId = keyId;
    this.#stored = stored;
    this.#flags = flags;
  }

  /** The encoded key. */
  get key(): Encoded {
    return this.#key ??= keyOfId(this.#keyId);
  }

  /** The encoded value. */
  get value(): Encoded {
    return this.#value ??= encodedOf(this.#stored as Stored, this.#flags);
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

/**
 * Result of `set` and `delete`: written (with the previous value, `null` if there was none), or a
 * conflict of `ifRevision` (with the entry's actual revision; nothing was written).
 */
export type MapWriteResult =
  | { readonly conflict: false; readonly previous: Encoded | null }
  | { readonly conflict: true; readonly revision: number };

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
      observer?.inserted(this.#entryAt(created, id), index);
      return;
    }
    this.#touch(slot);
    const old = observer === undefined ? undefined : previous ?? this.#valueAt(slot);
    this.#storeAt(slot, value, index);
    if (observer !== undefined) observer.updated(this.#entryAt(slot, id), old!, undefined, undefined, index);
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
    const previous = slot === undefined ? null : this.#valueAt(slot);
    this.#write(id, slot, previous ?? undefined, value, index);
    return { conflict: false, previous };
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
    if (slot === undefined) return { conflict: false, previous: null };
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

/**
 * The image of a {@linkcode HamokMapState} at the moment the view was taken, written out in slices.
 * It reads the state's tables as they were then: the state hands it a slot's content before changing
 * it ({@linkcode keep}), and after a clear or a restore the state works on new tables and leaves these
 * alone.
 */
class MapSnapshotView implements SnapshotView {
  readonly #state: HamokMapState;
  readonly #keys: readonly (string | undefined)[];
  readonly #values: readonly (Stored | undefined)[];
  readonly #revs: Float64Array;
  readonly #flags: Uint8Array;
  readonly #end: number;
  readonly #count: number;
  readonly #revision: number;
  /** Slot -> its content when the view was taken, for slots changed since and not yet written. */
  readonly #kept = new Map<number, readonly [id: string, value: Stored, revision: number, flags: number]>();
  #cursor = -1;
  #written = 0;
  /** Bytes the image will take, exactly (what the writer reserves, so it never joins chunks). */
  readonly byteLength: number;

  constructor(
    state: HamokMapState,
    keys: (string | undefined)[],
    values: (Stored | undefined)[],
    revs: Float64Array,
    flags: Uint8Array,
    end: number,
    count: number,
    revision: number,
    entryBytes: number,
  ) {
    this.byteLength = headBytes(1 + 3 * count) + uintBytes(revision) + entryBytes;
    this.#state = state;
    this.#keys = keys;
    this.#values = values;
    this.#revs = revs;
    this.#flags = flags;
    this.#end = end;
    this.#count = count;
    this.#revision = revision;
  }

  /** Slot `slot` is about to change: keep its content if it is still to be written. */
  keep(slot: number): void {
    if (slot < this.#cursor || slot >= this.#end || this.#kept.has(slot)) return;
    const id = this.#keys[slot];
    if (id === undefined) return;
    this.#kept.set(slot, [id, this.#values[slot]!, this.#revs[slot]!, this.#flags[slot]!]);
  }

  writeTo(out: CborChunkWriter, maxEntries: number): boolean {
    if (this.#cursor < 0) {
      out.arrayHeader(1 + 3 * this.#count);
      out.uint(this.#revision);
      this.#cursor = 0;
    }
    const stop = Math.min(this.#end, this.#cursor + Math.max(1, maxEntries));
    const kept = this.#kept;
    const keys = this.#keys;
    let s = this.#cursor;
    for (; s < stop; s++) {
      if (kept.size > 0) {
        const old = kept.get(s);
        if (old !== undefined) {
          kept.delete(s);
          writeEntry(out, old[0], old[1], old[2], old[3]);
          this.#written++;
          continue;
        }
      }
      const id = keys[s];
      if (id === undefined) continue;
      writeEntry(out, id, this.#values[s]!, this.#revs[s]!, this.#flags[s]!);
      this.#written++;
    }
    this.#cursor = s;
    if (s < this.#end) return false;
    this.release();
    if (this.#written !== this.#count) {
      throw new Error(`map snapshot view wrote ${this.#written} entries, expected ${this.#count}`);
    }
    return true;
  }

  release(): void {
    this.#state.releaseView(this);
  }
}

/** Bytes of a CBOR head for length or value `n`. */
function headBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/** Bytes of a CBOR non-negative integer as {@linkcode CborChunkWriter.uint} writes it. */
function uintBytes(n: number): number {
  return n <= 0xffffffff ? headBytes(n) : 9;
}

/** UTF-8 bytes of `s` from `from` on (a lone surrogate counts as the 3 bytes of U+FFFD). */
function utf8Bytes(s: string, from: number): number {
  let n = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** CBOR bytes of one entry of the image: key, value, revision. */
function itemBytes(id: string, value: Stored, flags: number, revision: number): number {
  const k = id.charCodeAt(0) === 0x62 ? id.length - 1 : utf8Bytes(id, 1);
  const v = typeof value !== "string" || (flags & VALUE_BYTES) !== 0 ? value.length : utf8Bytes(value, 0);
  return headBytes(k) + k + headBytes(v) + v + uintBytes(revision);
}

function writeEntry(out: CborChunkWriter, id: string, value: Stored, revision: number, flags: number): void {
  if (id.charCodeAt(0) === 0x62) out.bytesFromLatin1(id, 1);
  else out.text(id, 1);
  if (typeof value !== "string") out.bytes(value);
  else if ((flags & VALUE_BYTES) !== 0) out.bytesFromLatin1(value, 0);
  else out.text(value, 0);
  out.uint(revision);
}

const CHUNK = 4096;
/** Scratch space of {@linkcode keyIdOf}: the tag byte and up to CHUNK - 1 key bytes. */
const SCRATCH = new Uint8Array(CHUNK);

/**
 * The identity of an encoded key: `s` + the string, or `b` + one UTF-16 unit per byte, as one flat
 * string (it is what the state's index keeps). Two keys are the same key exactly when their encodings
 * are equal.
 */
export function keyIdOf(key: Encoded): string {
  if (typeof key === "string") return key.length < 12 ? "s" + key : ["s", key].join("");
  const n = key.length;
  if (n < CHUNK) {
    SCRATCH[0] = 0x62; // "b"
    SCRATCH.set(key, 1);
    return String.fromCharCode.apply(null, SCRATCH.subarray(0, n + 1) as unknown as number[]);
  }
  return ["b", latin1Of(key, 0)].join("");
}

/** The encoded key a key id stands for (a new `Uint8Array` for a byte key). */
export function keyOfId(id: string): Encoded {
  return id.charCodeAt(0) === 0x62 ? bytesOfLatin1(id, 1) : id.slice(1);
}

/** The encoded value a slot keeps (a new `Uint8Array` for bytes kept as a string). */
function encodedOf(stored: Stored, flags: number): Encoded {
  return (flags & VALUE_BYTES) !== 0 ? bytesOfLatin1(stored as string, 0) : stored;
}

/** `bytes` as a string of one char per byte. */
function latin1Of(bytes: Uint8Array, from: number): string {
  const n = bytes.length;
  if (n - from <= CHUNK) {
    return String.fromCharCode.apply(null, bytes.subarray(from) as unknown as number[]);
  }
  const parts: string[] = [];
  for (let i = from; i < n; i += CHUNK) {
    parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]));
  }
  return parts.join("");
}

/** The bytes of a one-char-per-byte string, from `from` on. */
function bytesOfLatin1(s: string, from: number): Uint8Array {
  const n = s.length - from;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(from + i);
  return out;
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

/** The slot tables of a {@linkcode HamokMapState}. */
interface MapTables {
  readonly index: Map<string, number>;
  readonly keys: (string | undefined)[];
  readonly values: (Stored | undefined)[];
  readonly revs: Float64Array;
  readonly flags: Uint8Array;
}

/**
 * Builds the tables of a {@linkcode HamokMapState} from its image (`[revision, key0, value0,
 * revision0, ...]`) read straight from the snapshot's CBOR, a bounded number of entries per call, with
 * the same outcome as {@linkcode HamokMapState.restore} (entries that are not a key, a value and a
 * number are skipped; a key seen twice keeps its first slot and its last value). With an observer, the
 * changes against the current tables (which nothing changes meanwhile) are collected while reading,
 * and told after the commit, a slice at a time: removals, then insertions and updates in revision order.
 */
class MapRestoreBuilder implements RestoreBuilder {
  readonly #state: HamokMapState;
  readonly #old: MapTables | undefined;
  #index = new Map<string, number>();
  #keys: (string | undefined)[] = [];
  #values: (Stored | undefined)[] = [];
  #revs = new Float64Array(8);
  #flags = new Uint8Array(8);
  #slots = 0;
  #bytes = 0;
  #revision = 0;
  /** Items of the image array still to read (-1: the header is not read yet). */
  #items = -1;
  /** Slots inserted or updated (observer only), and the previous values of the updated ones. */
  #changed: number[] = [];
  readonly #previous = new Map<number, Encoded>();
  // telling the observer, after the commit
  #removals: IterableIterator<[string, number]> | undefined = undefined;
  #order: Int32Array | undefined = undefined;
  #sorter: SliceSorter | undefined = undefined;
  #told = 0;

  constructor(state: HamokMapState, old: MapTables | undefined) {
    this.#state = state;
    this.#old = old;
  }

  readFrom(r: CborReader, maxEntries: number): boolean {
    if (this.#items < 0) {
      if (r.peekMajor() !== 4) {
        r.skip(); // not an image: an empty state, as restore() makes of it
        this.#items = 0;
        return true;
      }
      const n = r.arrayLength();
      this.#items = n;
      if (n === 0) return true;
      const revision = r.number();
      this.#revision = revision ?? 0;
      this.#items--;
      const capacity = Math.max(8, Math.floor(n / 3));
      this.#revs = new Float64Array(capacity);
      this.#flags = new Uint8Array(capacity);
    }
    for (let e = 0; e < maxEntries && this.#items >= 3; e++) {
      this.#items -= 3;
      const key = r.encoded(Number.POSITIVE_INFINITY);
      const keyText = r.lastText;
      const value = r.encoded(INLINE_BYTES);
      const valueText = r.lastText;
      const revision = r.number();
      if (key === undefined || value === undefined || revision === undefined) continue;
      const id = keyText ? "s" + (key as string) : "b" + (key as string);
      const flags = valueText || typeof value !== "string" ? 0 : VALUE_BYTES;
      this.#put(id, value, flags, revision);
    }
    if (this.#items >= 3) return false;
    for (; this.#items > 0; this.#items--) r.skip(); // a trailing partial entry
    return true;
  }

  #put(id: string, value: Stored, flags: number, revision: number): void {
    let slot = this.#index.get(id);
    const existing = slot !== undefined;
    if (slot === undefined) {
      slot = this.#slots++;
      if (slot >= this.#revs.length) {
        const revs = new Float64Array(Math.ceil(this.#revs.length * 1.5));
        revs.set(this.#revs);
        this.#revs = revs;
        const grown = new Uint8Array(revs.length);
        grown.set(this.#flags);
        this.#flags = grown;
      }
      this.#keys[slot] = id;
      this.#index.set(id, slot);
    } else {
      this.#bytes -= itemBytes(id, this.#values[slot]!, this.#flags[slot]!, this.#revs[slot]!);
    }
    this.#values[slot] = value;
    this.#flags[slot] = flags;
    this.#revs[slot] = revision;
    this.#bytes += itemBytes(id, value, flags, revision);
    const old = this.#old;
    if (old === undefined || existing) return;
    if (old.index.size === 0) return; // every slot is an insertion: told from the slots themselves
    const at = old.index.get(id);
    if (at === undefined) {
      this.#changed.push(slot);
      return;
    }
    const previous = encodedOf(old.values[at]!, old.flags[at]!);
    if (old.revs[at] === revision && sameEncoded(previous, encodedOf(value, flags))) return;
    this.#changed.push(slot);
    this.#previous.set(slot, previous);
  }

  commit(): void {
    const tables = {
      index: this.#index,
      keys: this.#keys,
      values: this.#values,
      revs: this.#revs,
      flags: this.#flags,
    };
    this.#state.adoptTables(tables, this.#slots, this.#bytes, this.#revision);
    if (this.#old === undefined) return;
    this.#removals = this.#old.index.entries();
    // from an empty state every slot is an insertion (none was collected one by one)
    let order: Int32Array;
    if (this.#old.index.size === 0) {
      order = new Int32Array(this.#slots);
      for (let slot = 0; slot < order.length; slot++) order[slot] = slot;
    } else order = Int32Array.from(this.#changed);
    this.#order = order;
    this.#changed = [];
    this.#sorter = new SliceSorter(this.#order, this.#revs);
  }

  notify(maxEntries: number): boolean {
    const old = this.#old;
    const observer = this.#state.observer;
    if (old === undefined || observer === undefined) return true;
    let budget = maxEntries;
    const removals = this.#removals;
    if (removals !== undefined) {
      for (; budget > 0; budget--) {
        const next = removals.next();
        if (next.done) {
          this.#removals = undefined;
          break;
        }
        const [id, at] = next.value;
        if (this.#index.has(id)) continue;
        observer.removed(
          new MapStateEntry(undefined, undefined, old.revs[at]!, id, old.values[at], old.flags[at]!),
          this.#revision,
        );
      }
      if (this.#removals !== undefined) return false;
    }
    if (!this.#sorter!.step(budget * 8)) return false;
    const order = this.#sorter!.result();
    const stop = Math.min(order.length, this.#told + Math.max(1, budget));
    for (; this.#told < stop; this.#told++) {
      const slot = order[this.#told]!;
      const id = this.#keys[slot]!;
      const entry = new MapStateEntry(
        undefined,
        undefined,
        this.#revs[slot]!,
        id,
        this.#values[slot],
        this.#flags[slot]!,
      );
      const previous = this.#previous.get(slot);
      if (previous === undefined) observer.inserted(entry, entry.revision);
      else observer.updated(entry, previous, undefined, undefined, entry.revision);
    }
    return this.#told >= order.length;
  }
}

/**
 * Sorts slots by revision (stable), a bounded amount of work per step: a bottom-up merge sort whose
 * passes go on across steps.
 */
class SliceSorter {
  #a: Int32Array;
  #b: Int32Array;
  readonly #keys: Float64Array;
  #width = 1;
  #at = 0;

  constructor(slots: Int32Array, keys: Float64Array) {
    this.#a = slots;
    this.#b = new Int32Array(slots.length);
    this.#keys = keys;
  }

  /** Merges about `budget` elements; true once sorted. */
  step(budget: number): boolean {
    const n = this.#a.length;
    const keys = this.#keys;
    while (this.#width < n) {
      const a = this.#a;
      const b = this.#b;
      const w = this.#width;
      while (this.#at < n) {
        if (budget <= 0) return false;
        const lo = this.#at;
        const mid = Math.min(n, lo + w);
        const hi = Math.min(n, lo + 2 * w);
        let i = lo;
        let j = mid;
        let k = lo;
        while (i < mid && j < hi) b[k++] = keys[a[j]!]! < keys[a[i]!]! ? a[j++]! : a[i++]!;
        while (i < mid) b[k++] = a[i++]!;
        while (j < hi) b[k++] = a[j++]!;
        budget -= hi - lo;
        this.#at = hi;
      }
      this.#a = b;
      this.#b = a;
      this.#width *= 2;
      this.#at = 0;
    }
    return true;
  }

  /** The sorted slots (once {@linkcode step} returned true). */
  result(): Int32Array {
    return this.#a;
  }
}
