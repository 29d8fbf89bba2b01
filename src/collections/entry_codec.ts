/**
 * Internal: decoding the encoded keys and values a {@linkcode HamokMapState} stores, without ever
 * handing the application a view into the stored bytes, and with a cache of decoded immutable
 * values (primitives) that lives as long as the entry object a read got (entries are made per read). Not part of the public API.
 *
 * @module
 */

import { CborValueCodec, decodeValue, type ValueCodec } from "../codec/value_codec.ts";
import type { Encoded, MapStateEntry } from "./map_state.ts";

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

/** Whether a decoded value is immutable (safe to cache and to hand out more than once). */
export function isImmutable(value: unknown): boolean {
  return value === null || (typeof value !== "object" && typeof value !== "function");
}

/** The decoded value of `entry`, cached in the entry for `owner` when immutable. */
export function entryValue<T>(entry: MapStateEntry, codec: ValueCodec<T>, owner: object): T {
  if (entry.valueOwner === owner) return entry.valueCache as T;
  const value = decodeStored(codec, entry.value);
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
