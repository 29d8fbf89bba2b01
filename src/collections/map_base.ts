/**
 * What {@linkcode HamokMap} and {@linkcode HamokRecord} share: both are views of a
 * {@linkcode HamokMapState} (a record is a map of field names). This module holds the one copy of
 * their observer (state changes to events), conflict handling, snapshot export and import.
 *
 * @module
 */

import { positiveInteger } from "../config.ts";
import { messageOf } from "../codec/cbor.ts";
import { assertWellFormed, isWellFormedString } from "../codec/well_formed.ts";
import {
  HamokCodecError,
  HamokConfigError,
  HamokConflictError,
  HamokPayloadTooLargeError,
} from "../errors.ts";
import type { CollectionHost } from "./collection_host.ts";
import {
  CollectionBase,
  type CollectionEvents,
  type CollectionIdentity,
  type HamokWriteOptions,
} from "./collection_base.ts";
import {
  type Encoded,
  type EncodedEntry,
  type HamokMapState,
  type MapCommands,
  type MapStateEntry,
  type MapStateObserver,
  type MapWriteResult,
  Replaced,
} from "./map_state.ts";
import { decodeValue, type ValueCodec } from "../codec/value_codec.ts";
import { encodeCommand } from "../cluster/command_codec.ts";
import { decodeKept, decodeStored } from "./entry_codec.ts";

/** Entries per command when a snapshot is imported. */
const IMPORT_CHUNK_ENTRIES = 1000;
/** Encoded bytes per command when a snapshot is imported (fewer when the peer's entries are smaller). */
const IMPORT_CHUNK_BYTES = 256 * 1024;
/** Room the CBOR heads of one pair take beside its key and value. */
const PAIR_ROOM = 16;

/**
 * @internal The bytes a `kind`/`id` command of `host` takes in an entry beside its content: its own
 * fields (kind, id, op, proposer) as encoded, CBOR heads, and a request id this peer makes (counted
 * as the entry-size check counts it, 3 bytes per UTF-16 unit), with room to spare for the counter.
 */
export function commandRoom(
  host: Pick<CollectionHost, "localPeerId" | "localMemberId">,
  kind: string,
  id: string,
): number {
  const fields = encodeCommand(kind, id, "setAll", [[]], host.localPeerId).byteLength;
  return fields + 3 * (host.localMemberId.length + 40) + 64;
}

/** At most the bytes an encoded key or value takes in a command (a string: up to 3 per UTF-16 unit). */
function encodedBytes(value: Encoded): number {
  return typeof value === "string" ? 3 * value.length : value.byteLength;
}

/**
 * @internal Throws `HamokPayloadTooLargeError` if a pair of `pairs` could not be written even alone in
 * an entry of at most `limit` bytes (a snapshot of a cluster whose entries could be larger): checked
 * before anything of an import is proposed, so an import is not left half done by its size.
 */
export function checkPairSizes(
  kind: string,
  id: string,
  pairs: readonly EncodedEntry[],
  limit: number,
  room: number,
): void {
  for (let i = 0; i < pairs.length; i++) {
    const [key, value] = pairs[i]!; // i < length
    const size = encodedBytes(key) + encodedBytes(value) + PAIR_ROOM + room;
    if (size > limit) {
      throw new HamokPayloadTooLargeError(
        `${kind} '${id}': entry ${i} of the snapshot takes up to ${size} bytes; the largest entry this peer can replicate is ${limit} bytes`,
        { size, limit },
      );
    }
  }
}

/** The events every view of a map state has (their payloads differ by kind). */
export interface MapStateViewEvents {
  /** A key was added. */
  insert: unknown[];
  /** A key got a new value. */
  update: unknown[];
  /** A key was removed. */
  remove: unknown[];
  /** Every key was removed. */
  clear: unknown[];
  /** The view was closed. */
  close: [];
}

/**
 * The base of the views of a {@linkcode HamokMapState}: it observes the state while open and turns
 * each change into the view's event (only when the event has listeners: nothing is decoded for
 * nobody), checks write results for conflicts and imports snapshots.
 */
export abstract class MapStateView<E extends CollectionEvents<E> & MapStateViewEvents>
  extends CollectionBase<E, MapCommands> {
  /** @internal The replicated state this view reads. */
  protected readonly state: HamokMapState;
  readonly #observer: MapStateObserver;

  /** @internal */
  protected constructor(host: CollectionHost, identity: CollectionIdentity) {
    super(host, identity);
    this.state = host.replicatedState<HamokMapState>(identity.kind, identity.id);
    this.#observer = {
      listens: (change) => this.hasListeners(change),
      inserted: (entry, revision) => {
        if (this.hasListeners("insert")) this.guarded("insert", () => this.onInserted(entry, revision));
      },
      updated: (entry, oldValue, oldOwner, oldCache, revision) => {
        if (!this.hasListeners("update")) return;
        this.guarded("update", () => this.onUpdated(entry, oldValue, oldOwner, oldCache, revision));
      },
      removed: (entry, revision) => {
        if (this.hasListeners("remove")) this.guarded("remove", () => this.onRemoved(entry, revision));
      },
      cleared: (revision) => {
        if (this.hasListeners("clear")) this.onCleared(revision);
      },
    };
    this.state.observer = this.#observer;
  }

  /** Number of entries on this peer. */
  get size(): number {
    this.assertOpen();
    return this.state.size;
  }

  /** Log index of the last command that changed this collection (0: never changed). */
  get revision(): number {
    this.assertOpen();
    return this.state.revision;
  }

  /** @internal Stops observing the state. */
  protected override onClose(): void {
    if (this.state.observer === this.#observer) this.state.observer = undefined;
  }

  /** @internal A key was added (there are `insert` listeners). */
  protected abstract onInserted(entry: MapStateEntry, revision: number): void;
  /** @internal A key got a new value (there are `update` listeners). */
  protected abstract onUpdated(
    entry: MapStateEntry,
    oldValue: Encoded,
    oldOwner: object | undefined,
    oldCache: unknown,
    revision: number,
  ): void;
  /** @internal A key was removed (there are `remove` listeners). */
  protected abstract onRemoved(entry: MapStateEntry, revision: number): void;
  /** @internal Every key was removed (there are `clear` listeners). */
  protected abstract onCleared(revision: number): void;
  /** @internal How a conflict message names `key` ("key \"k\"", "field 'f'"). */
  protected abstract describeKey(key: unknown): string;
  /** @internal The codec of the key of an imported entry (`undefined`: keys are field names). */
  protected abstract importKeyCodec(): ValueCodec<unknown> | undefined;
  /** @internal The codec of the value of an imported entry with the key `key`. */
  protected abstract importValueCodec(key: Encoded): ValueCodec<unknown>;

  /**
   * @internal The decoded previous value a write result carries (undefined: there was none), or a
   * {@linkcode HamokConflictError} if the write's `ifRevision` did not hold.
   */
  protected writtenValue<T>(
    result: MapWriteResult,
    ifRevision: number | undefined,
    key: unknown,
    codec: ValueCodec<T>,
  ): T | undefined {
    if (result instanceof Replaced) return decodeKept(codec, result.keptValue, result.keptFlags);
    const previous = this.written(result, ifRevision, key);
    return previous === null ? undefined : decodeStored(codec, previous);
  }

  /**
   * @internal The previous value a write result carries, or a {@linkcode HamokConflictError} if the
   * write's `ifRevision` did not hold.
   */
  protected written(result: MapWriteResult, ifRevision: number | undefined, key: unknown): Encoded | null {
    if (!result.conflict) return result.previous;
    throw new HamokConflictError(
      `${this.label} '${this.id}': ${
        this.describeKey(key)
      } is at revision ${result.revision}, not ${ifRevision}`,
      { expectedRevision: ifRevision ?? 0, actualRevision: result.revision },
    );
  }

  /**
   * @internal Sets the encoded entries of a snapshot through consensus. Every entry is checked first
   * (see {@linkcode checkEntries}), and then decoded with this view's codecs: an entry they cannot
   * decode is a `HamokCodecError` naming it. Nothing is proposed unless every entry passes.
   */
  protected async importSnapshot(
    keys: readonly Encoded[],
    values: readonly Encoded[],
    options: Pick<HamokWriteOptions, "timeoutMs"> | undefined,
    stringKeys: boolean,
  ): Promise<void> {
    this.assertOpen();
    const timeoutMs = positiveInteger("timeoutMs", options?.timeoutMs, this.requestTimeoutInMs);
    const pairs = checkEntries(this.kind, this.id, keys, values, stringKeys);
    const keyCodec = this.importKeyCodec();
    for (let i = 0; i < pairs.length; i++) {
      const [key, value] = pairs[i]!;
      if (keyCodec !== undefined) this.#decodes(keyCodec, key, `the key of snapshot entry ${i}`);
      this.#decodes(this.importValueCodec(key), value, `the value of snapshot entry ${i}`);
    }
    await proposeEntries(this.host, this.kind, this.id, pairs, timeoutMs);
  }

  /** Throws `HamokCodecError` unless `codec` decodes `data` (what the entry `what` holds). */
  #decodes(codec: ValueCodec<unknown>, data: Encoded, what: string): void {
    try {
      decodeValue(codec, data);
    } catch (error) {
      const message = `${this.label} '${this.id}': ${what} cannot be decoded: ${messageOf(error)}`;
      throw new HamokCodecError(message, { cause: error });
    }
  }
}

/** The encoded content of a map state in insertion order (copies of its bytes). */
export interface EncodedEntries {
  /** The encoded keys (field names for records). */
  keys: Encoded[];
  /** The encoded values, one per key. */
  values: Encoded[];
  /** The revision of each entry. */
  revisions: number[];
}

/**
 * The content of a map state in parts of at most `maxEntries` entries each, in insertion order
 * (copies of its bytes; with `stringKeys`, only the entries whose key is a string: record fields).
 * Each part is taken when it is asked for: held across writes, the iteration goes on with the entries
 * after the last one given.
 */
export function* entryParts(
  state: HamokMapState,
  maxEntries: number,
  stringKeys = false,
): IterableIterator<EncodedEntries> {
  let part: EncodedEntries = { keys: [], values: [], revisions: [] };
  for (const entry of state.entries()) {
    if (stringKeys && typeof entry.key !== "string") continue;
    part.keys.push(copyEncoded(entry.key));
    part.values.push(copyEncoded(entry.value));
    part.revisions.push(entry.revision);
    if (part.keys.length >= maxEntries) {
      yield part;
      part = { keys: [], values: [], revisions: [] };
    }
  }
  if (part.keys.length > 0) yield part;
}

/** The whole content of a map state (copies of its bytes; see {@linkcode entryParts}). */
export function allEntries(state: HamokMapState, stringKeys = false): EncodedEntries {
  for (const part of entryParts(state, Infinity, stringKeys)) return part;
  return { keys: [], values: [], revisions: [] };
}

/**
 * The entries of a map or record snapshot as pairs, checked as a write checks them (nothing is
 * proposed here): `id` must be a non-empty well-formed string and `keys` and `values` arrays of the
 * same length, every key and value a string or a `Uint8Array` (with `stringKeys`, every key a string:
 * record fields), else `HamokConfigError`; a string key or value that is not well formed (a lone
 * UTF-16 surrogate, which UTF-8 would carry as U+FFFD: two keys would become one, values would
 * change) is a `HamokCodecError`. Errors name the entry by its index.
 */
export function checkEntries(
  kind: string,
  id: unknown,
  keys: unknown,
  values: unknown,
  stringKeys = false,
): EncodedEntry[] {
  if (typeof id !== "string" || id.length === 0) throw new HamokConfigError(`a ${kind} snapshot needs an id`);
  assertWellFormed(`the id of a ${kind} snapshot`, id, HamokConfigError);
  if (!Array.isArray(keys) || !Array.isArray(values) || keys.length !== values.length) {
    throw new HamokConfigError(`a ${kind} snapshot needs keys and values arrays of the same length`);
  }
  const pairs: EncodedEntry[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const key: unknown = keys[i];
    const value: unknown = values[i];
    if (!(stringKeys ? typeof key === "string" : isEncodedValue(key)) || !isEncodedValue(value)) {
      throw new HamokConfigError(`${kind} snapshot entry ${i} has an invalid key or value`);
    }
    if (typeof key === "string" && !isWellFormedString(key)) {
      assertWellFormed(`${kind} '${id}': the key of snapshot entry ${i}`, key, HamokCodecError);
    }
    if (typeof value === "string" && !isWellFormedString(value)) {
      assertWellFormed(`${kind} '${id}': the value of snapshot entry ${i}`, value, HamokCodecError);
    }
    pairs[i] = [key as Encoded, value];
  }
  return pairs;
}

/**
 * Sets entries checked by {@linkcode checkEntries} through consensus, in commands of at most 1000
 * entries and 256 KiB, each awaited in turn.
 */
export async function proposeEntries(
  host: CollectionHost,
  kind: string,
  id: string,
  pairs: readonly EncodedEntry[],
  timeoutMs: number,
): Promise<void> {
  positiveInteger("timeoutMs", timeoutMs, timeoutMs);
  const limit = host.maxEntryBytes;
  const room = commandRoom(host, kind, id);
  checkPairSizes(kind, id, pairs, limit, room);
  // every part fits in one entry of this peer (a server with a small max_payload makes them smaller)
  const budget = Math.max(1, Math.min(IMPORT_CHUNK_BYTES, limit - room));
  const propose = (part: EncodedEntry[]) => {
    const args: MapCommands["setAll"]["args"] = [part];
    return host.propose(kind, id, "setAll" satisfies keyof MapCommands, args, { timeoutMs });
  };
  let part: EncodedEntry[] = [];
  let bytes = 0;
  for (const pair of pairs) {
    const size = encodedBytes(pair[0]) + encodedBytes(pair[1]) + PAIR_ROOM;
    if (part.length >= IMPORT_CHUNK_ENTRIES || (part.length > 0 && bytes + size > budget)) {
      await propose(part);
      part = [];
      bytes = 0;
    }
    part.push(pair);
    bytes += size;
  }
  if (part.length > 0) await propose(part);
}

function isEncodedValue(value: unknown): value is Encoded {
  return typeof value === "string" || value instanceof Uint8Array;
}

function copyEncoded(value: Encoded): Encoded {
  return typeof value === "string" ? value : value.slice();
}
