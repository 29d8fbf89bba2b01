/**
 * Internal: decoding the encoded keys and values a {@linkcode HamokMapState} stores, without ever
 * handing the application a view into the stored bytes, and with a cache of decoded immutable
 * values (primitives) that lives as long as the entry object a read got (entries are made per read). Not part of the public API.
 *
 * @module
 */

import { CborValueCodec, decodeValue, type ValueCodec } from "../codec/value_codec.ts";
import type { Encoded, MapStateEntry } from "./map_state.ts";
import { bytesOfLatin1, encodedOf, type Stored, VALUE_BYTES } from "./map_slots.ts";

/**
 * Decodes stored data. A codec may return byte arrays that are views into its input (the CBOR
 * codec does), and the application may mutate what it gets, so the codec is given a copy of the
 * stored bytes unless the result cannot contain a view: a string, or a CBOR item whose major type
 * is a number, a text string or a simple value. A CBOR byte string is decoded first and only its
 * bytes are copied. Failures are `HamokCodecError`s.
 */
export function decodeStored<T>(codec: ValueCodec<T>, data: Encoded): T {
  if (typeof data === "string") return decodeValue(codec, data);
  if (codec instanceof CborValueCodec) {
    const major = (data[0] ?? 0) >> 5;
    if (major === 0 || major === 1 || major === 3 || major === 7) return decodeValue(codec, data);
    if (major === 2) {
      // a byte string decodes to a view into `data`: copy just its bytes (one allocation, not two)
      const bytes = decodeValue(codec, data) as unknown;
      return (bytes instanceof Uint8Array ? bytes.slice() : bytes) as T;
    }
  }
  return decodeValue(codec, data.slice());
}

/**
 * Decodes a value as a slot keeps it ({@linkcode Stored} with its flags). Bytes kept as a string of
 * one char per byte that hold a CBOR byte string or an ASCII text string are read straight from
 * that string by the CBOR codec's rules (the bytes of a byte string go into one new array; a text
 * string is a slice), without first making the encoded bytes; everything else is
 * {@linkcode decodeStored} of the encoded value.
 */
export function decodeKept<T>(codec: ValueCodec<T>, stored: Stored, flags: number): T {
  if ((flags & VALUE_BYTES) === 0 || !(codec instanceof CborValueCodec)) {
    return decodeStored(codec, encodedOf(stored, flags));
  }
  const s = stored as string;
  const first = s.charCodeAt(0);
  const major = first >> 5;
  if (major === 2 || major === 3) {
    const info = first & 0x1f;
    let head = 1;
    let length = info;
    if (info === 24) {
      head = 2;
      length = s.charCodeAt(1);
    } else if (info === 25) {
      head = 3;
      length = (s.charCodeAt(1) << 8) | s.charCodeAt(2);
    } else if (info > 25) {
      length = -1; // longer than a slot keeps inline, or indefinite: not this path
    }
    if (length >= 0 && head + length === s.length) {
      if (major === 2) {
        const out = new Uint8Array(length);
        for (let i = 0; i < length; i++) out[i] = s.charCodeAt(head + i);
        return out as T;
      }
      let ascii = true;
      for (let i = head; i < s.length; i++) {
        if (s.charCodeAt(i) > 0x7f) {
          ascii = false;
          break;
        }
      }
      if (ascii) return s.slice(head) as T;
    }
  }
  return decodeValue(codec, bytesOfLatin1(s, 0)); // fresh bytes: nobody else holds them
}

/** Whether a decoded value is immutable (safe to cache and to hand out more than once). */
export function isImmutable(value: unknown): boolean {
  return value === null || (typeof value !== "object" && typeof value !== "function");
}

/** The decoded value of `entry`, cached in the entry for `owner` when immutable. */
export function entryValue<T>(entry: MapStateEntry, codec: ValueCodec<T>, owner: object): T {
  if (entry.valueOwner === owner) return entry.valueCache as T;
  const kept = entry.keptValue;
  const value = kept === undefined
    ? decodeStored(codec, entry.value)
    : decodeKept(codec, kept, entry.keptFlags);
  if (isImmutable(value)) {
    entry.valueOwner = owner;
    entry.valueCache = value;
  }
  return value;
}

/** The decoded key of `entry`, cached in the entry for `owner` when immutable. */
export function entryKey<K>(entry: MapStateEntry, codec: ValueCodec<K>, owner: object): K {
  if (entry.keyOwner === owner) return entry.keyCache as K;
  const key = decodeStored(codec, entry.key);
  if (isImmutable(key)) {
    entry.keyOwner = owner;
    entry.keyCache = key;
  }
  return key;
}

/** A previous value handed to an observer: decoded from its cache slot if `owner` filled it. */
export function previousValue<T>(
  codec: ValueCodec<T>,
  data: Encoded,
  cacheOwner: object | undefined,
  cache: unknown,
  owner: object,
): T {
  return cacheOwner === owner ? cache as T : decodeStored(codec, data);
}
