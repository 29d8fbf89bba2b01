/**
 * Snapshots of a {@linkcode HamokMapState} in slices: the view that writes the image out while
 * commands go on being applied, and the builder that reads an image back a bounded number of entries
 * at a time (and then tells the observer the difference, a slice at a time).
 *
 * @module
 */

import type { RestoreBuilder, SnapshotView } from "../cluster/state_machine.ts";
import { type CborChunkWriter, cborHeadBytes } from "../codec/cbor_writer.ts";
import type { CborReader } from "../codec/cbor_reader.ts";
import type { HamokMapState } from "./map_state.ts";
import {
  type Encoded,
  encodedOf,
  INLINE_BYTES,
  itemBytes,
  MapStateEntry,
  type MapTables,
  sameEncoded,
  type Stored,
  uintBytes,
  VALUE_BYTES,
  writeEntry,
} from "./map_slots.ts";

/**
 * The image of a {@linkcode HamokMapState} at the moment the view was taken, written out in slices.
 * It reads the state's tables as they were then: the state hands it a slot's content before changing
 * it ({@linkcode keep}), and after a clear or a restore the state works on new tables and leaves these
 * alone.
 */
export class MapSnapshotView implements SnapshotView {
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
    this.byteLength = cborHeadBytes(1 + 3 * count) + uintBytes(revision) + entryBytes;
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

/**
 * Builds the tables of a {@linkcode HamokMapState} from its image (`[revision, key0, value0,
 * revision0, ...]`) read straight from the snapshot's CBOR, a bounded number of entries per call, with
 * the same outcome as {@linkcode HamokMapState.restore} (entries that are not a key, a value and a
 * number are skipped; a key seen twice keeps its first slot and its last value). With an observer, the
 * changes against the current tables (which nothing changes meanwhile) are collected while reading,
 * and told after the commit, a slice at a time: removals, then insertions and updates in revision order.
 */
export class MapRestoreBuilder implements RestoreBuilder {
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
