/**
 * The slot storage of a `HamokMapState`: how an entry's key and value are kept in the
 * state's parallel tables (a key id string, a value as a string, a one-char-per-byte string or owned
 * bytes), the entry objects reads get, and the exact CBOR size and writing of one image entry.
 *
 * @module
 */

import { type CborChunkWriter, cborHeadBytes } from "../codec/cbor_writer.ts";
import { latin1String } from "../codec/latin1.ts";

/** A key or a value as its codec produced it. */
export type Encoded = string | Uint8Array;

/** A value as a slot keeps it: a string value, bytes as a one-char-per-byte string, or large bytes. */
export type Stored = string | Uint8Array;

/** Flag bit: the slot's value is a string of one char per byte, standing for bytes. */
export const VALUE_BYTES = 1;

/** Byte values up to this length are kept as strings of one char per byte (no `ArrayBuffer` each). */
export const INLINE_BYTES = 1024;

/**
 * One entry of a `HamokMapState`, as a read sees it: made on demand (the state keeps no
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

  /**
   * @internal The value as its slot keeps it (undefined: not kept, or already made into
   * {@linkcode value}), for a decode that does not make the encoded bytes first.
   */
  get keptValue(): Stored | undefined {
    return this.#value === undefined ? this.#stored : undefined;
  }

  /** @internal The flags of {@linkcode keptValue}. */
  get keptFlags(): number {
    return this.#flags;
  }
}

/** Bytes of a CBOR non-negative integer as {@linkcode CborChunkWriter.uint} writes it. */
export function uintBytes(n: number): number {
  return n <= 0xffffffff ? cborHeadBytes(n) : 9;
}

/** UTF-8 bytes of `s` from `from` on (a lone surrogate counts as the 3 bytes of U+FFFD). */
export function utf8Bytes(s: string, from: number): number {
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
export function itemBytes(id: string, value: Stored, flags: number, revision: number): number {
  const k = id.charCodeAt(0) === 0x62 ? id.length - 1 : utf8Bytes(id, 1);
  const v = typeof value !== "string" || (flags & VALUE_BYTES) !== 0 ? value.length : utf8Bytes(value, 0);
  return cborHeadBytes(k) + k + cborHeadBytes(v) + v + uintBytes(revision);
}

export function writeEntry(
  out: CborChunkWriter,
  id: string,
  value: Stored,
  revision: number,
  flags: number,
): void {
  if (id.charCodeAt(0) === 0x62) out.bytesFromLatin1(id, 1);
  else out.text(id, 1);
  if (typeof value !== "string") out.bytes(value);
  else if ((flags & VALUE_BYTES) !== 0) out.bytesFromLatin1(value, 0);
  else out.text(value, 0);
  out.uint(revision);
}

/**
 * The identity of an encoded key: `s` + the string, or `b` + one UTF-16 unit per byte, as one flat
 * string (it is what the state's index keeps). Two keys are the same key exactly when their encodings
 * are equal.
 */
export function keyIdOf(key: Encoded): string {
  if (typeof key === "string") return key.length < 12 ? "s" + key : ["s", key].join("");
  return latin1String(key, 0, key.length, 0x62); // "b"
}

/** The encoded key a key id stands for (a new `Uint8Array` for a byte key). */
export function keyOfId(id: string): Encoded {
  return id.charCodeAt(0) === 0x62 ? bytesOfLatin1(id, 1) : id.slice(1);
}

/** The encoded value a slot keeps (a new `Uint8Array` for bytes kept as a string). */
export function encodedOf(stored: Stored, flags: number): Encoded {
  return (flags & VALUE_BYTES) !== 0 ? bytesOfLatin1(stored as string, 0) : stored;
}

/** `bytes` as a string of one char per byte. */
export function latin1Of(bytes: Uint8Array, from: number): string {
  return latin1String(bytes, from, bytes.length - from);
}

/** The bytes of a one-char-per-byte string, from `from` on. */
export function bytesOfLatin1(s: string, from: number): Uint8Array {
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

/**
 * Bytes decoded from a log entry are views into the whole wire message; an entry that outlives the
 * message gets its own copy so that it does not pin the message's buffer.
 */
export function own(value: Encoded): Encoded {
  if (typeof value === "string") return value;
  return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : value.slice();
}

/** The slot tables of a `HamokMapState`. */
export interface MapTables {
  readonly index: Map<string, number>;
  readonly keys: (string | undefined)[];
  readonly values: (Stored | undefined)[];
  readonly revs: Float64Array;
  readonly flags: Uint8Array;
}
