/**
 * Internal: the configured cbor-x encoder and decoder shared by the envelope and the CBOR payload
 * and value codecs, plus the byte-view normalisation both sides need. Not part of the public API.
 *
 * Facts about cbor-x 1.6.9 this module relies on (checked on Deno 2.9 and Bun 1.4):
 * - `encode` writes into a module-wide slab and returns a `subarray` of it; later encodes never
 *   overwrite an earlier result (they continue after it or start a new slab). Where `Buffer` exists
 *   (Node, Bun, and Deno's npm layer) the slab is a `Buffer`, so we re-view it as a plain
 *   `Uint8Array` (a view, no copy).
 * - A `Uint8Array` value is copied once into the output (the one unavoidable copy). With
 *   `tagUint8Array: false` it is written as a bare CBOR byte string (no tag 64, 2 bytes less).
 * - `decode` returns byte strings as `subarray` views of the input (no copy; `copyBuffers` is off).
 *   The view has the input's class, so the input is re-viewed as a plain `Uint8Array` first: decoded
 *   bytes are then plain `Uint8Array` views on every runtime.
 * - `decode` rejects trailing bytes ("Data read, but end of buffer not reached") and truncated input.
 * - With `useRecords: false` and `mapsAsObjects: true`, plain objects are CBOR maps (decoded as
 *   objects; a `__proto__` key is renamed by cbor-x) and `Map`s carry tag 259 (decoded as `Map`).
 *
 * @module
 */

// The `encode` / `decode` subpaths are cbor-x's pure-JavaScript build on every runtime. The main
// entry (`cbor-x`) also reads `process.env` at import (a permission error on Deno without
// --allow-env) and tries to load the optional native helper `cbor-extract`; we never need either:
// the pure-JS decoder is as fast or faster for Hamok's small messages (docs/decisions.md).
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";

const OPTIONS = { useRecords: false, mapsAsObjects: true, tagUint8Array: false } as const;

/** The encoder used for every CBOR value Hamok writes. */
export const cborEncoder: Encoder = new Encoder(OPTIONS);

/** The decoder used for every CBOR value Hamok reads. */
export const cborDecoder: Decoder = new Decoder(OPTIONS);

/** Returns `bytes` itself if it is a plain `Uint8Array`, else a plain `Uint8Array` view of the same memory. */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encodes `value` as CBOR; the result is a plain `Uint8Array` view (no copy of the encoder output). */
export function encodeCbor(value: unknown): Uint8Array {
  return plainBytes(cborEncoder.encode(value));
}

/** Decodes one CBOR value that must span all of `bytes`; byte strings in it are plain views of `bytes`. */
export function decodeCbor(bytes: Uint8Array): unknown {
  return cborDecoder.decode(plainBytes(bytes));
}

/** A short, safe description of a value's type for error messages (never prints the value). */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") {
    const proto: { constructor?: { name?: unknown } } | null = Object.getPrototypeOf(value);
    const name = proto?.constructor?.name;
    return typeof name === "string" && name !== "" ? name : "object";
  }
  return typeof value;
}

/** The message of a thrown value, whatever was thrown. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  try {
    return String(error);
  } catch {
    return describeType(error);
  }
}

/**
 * Built-in classes whose state is internal: CBOR would encode every instance as `{}` (so two of them
 * would even collide as map keys).
 */
const OPAQUE_CLASSES: readonly (abstract new (...args: never[]) => unknown)[] = [
  WeakMap,
  WeakSet,
  WeakRef,
  Promise,
  FinalizationRegistry,
];

/**
 * Throws a `TypeError` naming the path of the first part of `value` that CBOR cannot round-trip at
 * all: a function, a symbol, a `WeakMap`/`WeakSet`/`WeakRef`/`FinalizationRegistry`, a `Promise`,
 * or a cycle. (Instances of application classes pass: they arrive as plain objects, as documented.)
 */
export function assertRoundTrips(value: unknown, path = "value", depth = 0, seen?: Set<object>): void {
  if (value === null) return;
  const type = typeof value;
  if (type !== "object") {
    if (type === "function" || type === "symbol") {
      throw new TypeError(`${path} is a ${type}, which CBOR cannot encode`);
    }
    return;
  }
  const object = value as object;
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer || object instanceof Date) return;
  if (depth > 256) throw new TypeError(`${path} is nested more than 256 levels deep`);
  for (const opaque of OPAQUE_CLASSES) {
    if (object instanceof opaque) {
      throw new TypeError(`${path} is a ${opaque.name}, which CBOR would store as {}`);
    }
  }
  seen ??= new Set();
  if (seen.has(object)) throw new TypeError(`${path} refers back to itself (a cycle)`);
  seen.add(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) assertRoundTrips(object[i], `${path}[${i}]`, depth + 1, seen);
  } else if (object instanceof Map) {
    for (const [k, v] of object) {
      assertRoundTrips(k, `${path} key`, depth + 1, seen);
      assertRoundTrips(v, `${path}.get(...)`, depth + 1, seen);
    }
  } else if (object instanceof Set) {
    for (const v of object) assertRoundTrips(v, `${path} item`, depth + 1, seen);
  } else {
    for (const key of Object.keys(object)) {
      assertRoundTrips((object as Record<string, unknown>)[key], `${path}.${key}`, depth + 1, seen);
    }
  }
  seen.delete(object);
}
