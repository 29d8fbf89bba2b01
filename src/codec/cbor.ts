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
import { cborHeadBytes, writeCborHead } from "./cbor_writer.ts";

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

/**
 * Encodes `value` as CBOR; the result is a plain `Uint8Array` view (no copy of the encoder output).
 * The small values of the hot paths (a command, a string key) take {@linkcode encodeSimpleCbor};
 * everything else is cbor-x's.
 */
export function encodeCbor(value: unknown): Uint8Array {
  return encodeSimpleCbor(value) ?? plainBytes(cborEncoder.encode(value));
}

// ------------------------------------------------------------------ the simple-value encoder

/** Longest string the simple encoder writes (char by char); longer ones go to cbor-x. */
const SIMPLE_MAX_STRING = 512;
/** Deepest array nesting the simple encoder writes. */
const SIMPLE_MAX_DEPTH = 8;
/** Bytes of each slab the simple encoder writes into (results are views of it, like cbor-x's). */
const SIMPLE_SLAB_BYTES = 8192;

let slab = new Uint8Array(SIMPLE_SLAB_BYTES);
let slabAt = 0;

/** Bytes `value` takes, or -1 if it is not a simple value. */
function simpleSize(value: unknown, depth: number): number {
  switch (typeof value) {
    case "string": {
      const n = value.length;
      if (n > SIMPLE_MAX_STRING) return -1;
      for (let i = 0; i < n; i++) if (value.charCodeAt(i) > 0x7f) return -1;
      return cborHeadBytes(n) + n;
    }
    case "number":
      if (value >>> 0 === value) return cborHeadBytes(value);
      if (value >> 0 === value) return cborHeadBytes(-1 - value);
      return -1;
    case "boolean":
      return 1;
    case "object": {
      if (value === null) return 1;
      const constructor = value.constructor;
      if (constructor === Uint8Array) {
        const n = (value as Uint8Array).length;
        return cborHeadBytes(n) + n;
      }
      if (constructor !== Array || depth >= SIMPLE_MAX_DEPTH) return -1;
      const items = value as unknown[];
      let size = cborHeadBytes(items.length);
      for (let i = 0; i < items.length; i++) {
        const item = simpleSize(items[i], depth + 1);
        if (item < 0) return -1;
        size += item;
      }
      return size;
    }
    default:
      return -1;
  }
}

/** Writes a value {@linkcode simpleSize} accepted at `at`; returns the position after it. */
function writeSimple(out: Uint8Array, at: number, value: unknown): number {
  switch (typeof value) {
    case "string": {
      const n = value.length;
      at = writeCborHead(out, at, 0x60, n);
      for (let i = 0; i < n; i++) out[at++] = value.charCodeAt(i);
      return at;
    }
    case "number":
      return value >>> 0 === value
        ? writeCborHead(out, at, 0x00, value)
        : writeCborHead(out, at, 0x20, -1 - value);
    case "boolean":
      out[at] = value ? 0xf5 : 0xf4;
      return at + 1;
    default: {
      if (value === null) {
        out[at] = 0xf6;
        return at + 1;
      }
      if ((value as object).constructor === Uint8Array) {
        const bytes = value as Uint8Array;
        at = writeCborHead(out, at, 0x40, bytes.length);
        out.set(bytes, at);
        return at + bytes.length;
      }
      const items = value as unknown[];
      at = writeCborHead(out, at, 0x80, items.length);
      for (let i = 0; i < items.length; i++) at = writeSimple(out, at, items[i]);
      return at;
    }
  }
}

/**
 * Encodes a simple value — ASCII strings of up to 512 characters, 32-bit integers, booleans,
 * `null`, plain `Uint8Array`s and arrays of simple values (8 levels deep at most) — into the very
 * bytes cbor-x writes for it (keys are compared by their encoding, so this must never differ), as a
 * view of a shared slab; `undefined` for any other value (the caller falls back to cbor-x).
 *
 * @example
 * ```ts ignore
 * encodeSimpleCbor(["map", "m", "set", [key, value], "peer-a"]); // a command's bytes
 * encodeSimpleCbor({ a: 1 }); // undefined: not a simple value
 * ```
 */
export function encodeSimpleCbor(value: unknown): Uint8Array | undefined {
  const size = simpleSize(value, 0);
  if (size < 0) return undefined;
  let out: Uint8Array;
  if (size > SIMPLE_SLAB_BYTES / 4) out = new Uint8Array(size);
  else {
    if (slabAt + size > SIMPLE_SLAB_BYTES) {
      slab = new Uint8Array(SIMPLE_SLAB_BYTES);
      slabAt = 0;
    }
    out = slab.subarray(slabAt, slabAt + size);
    slabAt += size;
  }
  writeSimple(out, 0, value);
  return out;
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
