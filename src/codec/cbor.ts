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
import { latin1String } from "./latin1.ts";
import { HamokCodecError } from "../errors.ts";
import { assertWellFormed, isWellFormedString } from "./well_formed.ts";

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
/** Deepest nesting of arrays and objects the simple encoder writes. */
const SIMPLE_MAX_DEPTH = 8;
/** Most keys of an object the simple encoder writes. */
const SIMPLE_MAX_KEYS = 64;
/** Bytes of each slab the simple encoder writes into (results are views of it, like cbor-x's). */
const SIMPLE_SLAB_BYTES = 8192;
/** A slab with less room than this left is replaced before a value is written. */
const SIMPLE_MIN_ROOM = 512;
/** {@linkcode writeSimple}: the value is not a simple value. */
const NOT_SIMPLE = -1;
/** {@linkcode writeSimple}: the value did not fit in the room given. */
const NO_ROOM = -2;

let slab = new Uint8Array(SIMPLE_SLAB_BYTES);
let slabAt = 0;
/**
 * Bytes of each slab of values too large for the room left in {@linkcode slab} (an append or a
 * forwarded proposal of many entries): measuring such a value and giving it a buffer of its own
 * cost two more passes and an allocation (on Deno 2.9 a fresh `ArrayBuffer` is 0.3-1.3 µs). A value
 * larger than {@linkcode SIMPLE_SLAB_BYTES} is written there and copied out.
 */
const BIG_SLAB_BYTES = 64 * 1024;
let bigSlab = new Uint8Array(0);
/** Where the next large value goes in {@linkcode bigSlab} (its size while there is none yet). */
let bigAt = BIG_SLAB_BYTES;

/** Scratch for float64s, read and written big-endian byte by byte. */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Writes `n` (0 <= n < 2^32) as 4 big-endian bytes at `at`; returns the position after them. */
function writeUint32(out: Uint8Array, at: number, n: number): number {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
  return at + 4;
}

/** Bytes `value` takes, or -1 if it is not a simple value (sizes a value too large for a slab). */
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
      if (value !== value) return -1; // NaN: its bits are cbor-x's to write
      return value < 0 && value >= -0x100000000 && Math.floor(value) === value ? 5 : 9;
    case "boolean":
    case "undefined":
      return 1;
    case "object": {
      if (value === null) return 1;
      const constructor = value.constructor;
      if (constructor === Uint8Array) {
        const n = (value as Uint8Array).length;
        return cborHeadBytes(n) + n;
      }
      if (depth >= SIMPLE_MAX_DEPTH) return -1;
      if (constructor === Object) {
        const object = value as Record<string, unknown>;
        let size = 3;
        let keys = 0;
        for (const key in object) {
          if (++keys > SIMPLE_MAX_KEYS || !simpleKey(object, key)) return -1;
          const item = simpleSize(object[key], depth + 1);
          if (item < 0) return -1;
          size += key.length + cborHeadBytes(key.length) + item;
        }
        return size;
      }
      if (constructor !== Array) return -1;
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

/**
 * Whether the key `for…in` gave is one cbor-x writes as the simple encoder does: an own property
 * (cbor-x skips inherited ones by asking `object.hasOwnProperty`, so an object with its own
 * `hasOwnProperty` is left to it) named by an ASCII string.
 */
function simpleKey(object: object, key: string): boolean {
  if (key.length > SIMPLE_MAX_STRING || key === "hasOwnProperty" || !Object.hasOwn(object, key)) return false;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Writes `value` into `out` from `at` to at most `out.length` in one pass; returns the position after
 * it, {@linkcode NOT_SIMPLE} at the first item that is not a simple value, or {@linkcode NO_ROOM}.
 */
function writeSimple(out: Uint8Array, at: number, value: unknown, depth: number): number {
  switch (typeof value) {
    case "string": {
      const n = value.length;
      if (n > SIMPLE_MAX_STRING) return NOT_SIMPLE;
      if (at + cborHeadBytes(n) + n > out.length) return NO_ROOM;
      at = writeCborHead(out, at, 0x60, n);
      for (let i = 0; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c > 0x7f) return NOT_SIMPLE;
        out[at++] = c;
      }
      return at;
    }
    case "number":
      if (value >>> 0 === value) {
        return at + cborHeadBytes(value) > out.length ? NO_ROOM : writeCborHead(out, at, 0x00, value);
      }
      if (value >> 0 === value) {
        return at + cborHeadBytes(-1 - value) > out.length
          ? NO_ROOM
          : writeCborHead(out, at, 0x20, -1 - value);
      }
      if (value !== value) return NOT_SIMPLE; // NaN: its bits are cbor-x's to write
      if (value < 0 && value >= -0x100000000 && Math.floor(value) === value) {
        // cbor-x: a negative integer of 32 bits that is not an int32
        if (at + 5 > out.length) return NO_ROOM;
        out[at] = 0x3a;
        return writeUint32(out, at + 1, -1 - value);
      }
      // cbor-x (no useFloat32): every other number, integers of more than 32 bits too, is a float64
      if (at + 9 > out.length) return NO_ROOM;
      out[at] = 0xfb;
      F64[0] = value;
      for (let i = 0; i < 8; i++) out[at + 1 + i] = F64_BYTES[LITTLE_ENDIAN ? 7 - i : i]!;
      return at + 9;
    case "boolean":
      if (at >= out.length) return NO_ROOM;
      out[at] = value ? 0xf5 : 0xf4;
      return at + 1;
    case "undefined":
      if (at >= out.length) return NO_ROOM;
      out[at] = 0xf7;
      return at + 1;
    case "object": {
      if (value === null) {
        if (at >= out.length) return NO_ROOM;
        out[at] = 0xf6;
        return at + 1;
      }
      const constructor = value.constructor;
      if (constructor === Uint8Array) {
        const bytes = value as Uint8Array;
        if (at + cborHeadBytes(bytes.length) + bytes.length > out.length) return NO_ROOM;
        at = writeCborHead(out, at, 0x40, bytes.length);
        out.set(bytes, at);
        return at + bytes.length;
      }
      if (depth >= SIMPLE_MAX_DEPTH) return NOT_SIMPLE;
      if (constructor === Object) {
        // cbor-x (useRecords: false) always writes a map with a 16-bit count, then the own keys in
        // for…in order, each followed by its value
        if (at + 3 > out.length) return NO_ROOM;
        const head = at;
        at += 3;
        let keys = 0;
        const object = value as Record<string, unknown>;
        for (const key in object) {
          if (++keys > SIMPLE_MAX_KEYS || !simpleKey(object, key)) return NOT_SIMPLE;
          at = writeSimple(out, at, key, depth + 1);
          if (at < 0) return at;
          at = writeSimple(out, at, object[key], depth + 1);
          if (at < 0) return at;
        }
        out[head] = 0xb9;
        out[head + 1] = 0;
        out[head + 2] = keys;
        return at;
      }
      if (constructor !== Array) return NOT_SIMPLE;
      const items = value as unknown[];
      const n = items.length;
      if (at + cborHeadBytes(n) > out.length) return NO_ROOM;
      at = writeCborHead(out, at, 0x80, n);
      for (let i = 0; i < n && at >= 0; i++) at = writeSimple(out, at, items[i], depth + 1);
      return at;
    }
    default:
      return NOT_SIMPLE;
  }
}

/**
 * Encodes a simple value — ASCII strings of up to 512 characters, numbers other than `NaN` (as
 * cbor-x writes them: integers of 32 bits as integers, everything else as a float64), booleans,
 * `null`, `undefined`, plain `Uint8Array`s, and arrays and plain objects (up to 64 own ASCII keys) of
 * simple values, 8 levels deep at most — into the very bytes cbor-x writes for it (keys are compared
 * by their encoding, so this must never differ), as a view of a shared slab; `undefined` for any
 * other value (the caller falls back to cbor-x).
 *
 * @example
 * ```ts ignore
 * encodeSimpleCbor(["map", "m", "set", [key, value], "peer-a"]); // a command's bytes
 * encodeSimpleCbor({ conflict: false, previous: null }); // a result: a map of two keys
 * encodeSimpleCbor(new Map()); // undefined: not a simple value
 * ```
 */
export function encodeSimpleCbor(value: unknown): Uint8Array | undefined {
  if (SIMPLE_SLAB_BYTES - slabAt < SIMPLE_MIN_ROOM) {
    slab = new Uint8Array(SIMPLE_SLAB_BYTES);
    slabAt = 0;
  }
  const start = slabAt;
  const end = writeSimple(slab, start, value, 0);
  if (end >= 0) {
    slabAt = end;
    return slab.subarray(start, end);
  }
  if (end === NOT_SIMPLE) return undefined;
  // Too large for the room left: the slab of large values (messages of many entries), replaced
  // first if less than half of it is left, so that anything up to half its size fits in one pass.
  if (BIG_SLAB_BYTES - bigAt < BIG_SLAB_BYTES / 2) {
    bigSlab = new Uint8Array(BIG_SLAB_BYTES);
    bigAt = 0;
  }
  const from = bigAt;
  const bigEnd = writeSimple(bigSlab, from, value, 0);
  if (bigEnd >= 0) {
    // a value larger than a small slab leaves as a copy of its own and its room is used again:
    // a long-lived view (an entry's data in a log) then never holds a large slab
    if (bigEnd - from > SIMPLE_SLAB_BYTES) return bigSlab.slice(from, bigEnd);
    bigAt = bigEnd;
    return bigSlab.subarray(from, bigEnd);
  }
  if (bigEnd === NOT_SIMPLE) return undefined;
  // Too large for a large slab: a buffer of its own, of the size the value takes. A value whose
  // getters answer differently the second time may not fit it: cbor-x then writes what it reads.
  const size = simpleSize(value, 0);
  if (size < 0) return undefined;
  const out = new Uint8Array(size);
  return writeSimple(out, 0, value, 0) === size ? out : undefined;
}

/**
 * Decodes one CBOR value that must span all of `bytes`; byte strings in it are plain views of `bytes`.
 * Throws if the value holds an object twice (see {@linkcode checkUnshared}), unless `structural` says
 * the caller only reads fixed fields of it and keeps none of its objects (envelopes, log records:
 * their entries' data are bytes, decoded again, and checked, when applied).
 */
export function decodeCbor(bytes: Uint8Array, structural = false): unknown {
  const plain = plainBytes(bytes);
  const value = decodeSimpleCbor(plain);
  if (value !== NOT_READ) return value;
  const decoded = cborDecoder.decode(plain);
  if (!structural && typeof decoded === "object" && decoded !== null && mayShare(plain)) {
    checkUnshared(decoded, 0, new Set());
  }
  return decoded;
}

/**
 * Whether `bytes` may hold a value-sharing tag (28 or 29) in any head length: a byte 0x1c or 0x1d
 * right after 0xd8, or after zeros behind 0xd9/0xda/0xdb. Two native scans; a payload byte that
 * looks like one only costs the walk. Most values hold neither byte pair, and skip the walk.
 */
function mayShare(bytes: Uint8Array): boolean {
  return hasTagHead(bytes, 0x1c) || hasTagHead(bytes, 0x1d);
}

/** Whether a byte `tag` in `bytes` ends what could be a tag head (see {@linkcode mayShare}). */
function hasTagHead(bytes: Uint8Array, tag: number): boolean {
  for (let at = bytes.indexOf(tag, 1); at > 0; at = bytes.indexOf(tag, at + 1)) {
    let head = at - 1;
    while (head > 0 && bytes[head] === 0 && at - head < 8) head--;
    const lead = bytes[head];
    if (lead === 0xd8 || lead === 0xd9 || lead === 0xda || lead === 0xdb) return true;
  }
  return false;
}

/**
 * Throws `TypeError` if an object occurs twice in a decoded value (cbor-x decodes the value-sharing
 * tags 28 and 29 into shared and even cyclic objects, which no encoder here writes: a cycle in a
 * replicated state made every later snapshot overflow the stack and crash the process) or if it is
 * nested more than {@linkcode WALK_MAX_DEPTH} levels deep. Linear in the value's objects.
 */
function checkUnshared(object: object, depth: number, seen: Set<object>): void {
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return;
  // a value nested as deep as a write allows, inside a command, entry or envelope, is still read
  if (depth > WALK_MAX_DEPTH + 64) {
    throw new TypeError(`a decoded value is nested more than ${WALK_MAX_DEPTH + 64} levels deep`);
  }
  if (seen.has(object)) throw new TypeError("a decoded value holds an object twice (CBOR value sharing)");
  seen.add(object);
  const items: Iterable<unknown> = Array.isArray(object)
    ? object
    : object instanceof Map
    ? [...object.keys(), ...object.values()]
    : object instanceof Set
    ? object
    : Object.values(object);
  for (const item of items) {
    if (typeof item === "object" && item !== null) checkUnshared(item, depth + 1, seen);
  }
}

// ------------------------------------------------------------------ the simple-value decoder

/** What {@linkcode decodeSimpleCbor} returns for bytes it leaves to cbor-x. */
export const NOT_READ: unique symbol = Symbol("not a simple CBOR value");

let src: Uint8Array = slab;
/** `src.buffer` and `src.byteOffset`, read once per decode (a getter call per byte string costs ~15 ns on JSC). */
let srcBuffer: ArrayBufferLike = slab.buffer;
let srcOffset = 0;
let srcAt = 0;
let srcEnd = 0;

/**
 * Decodes the bytes of a simple value (see {@linkcode encodeSimpleCbor}: the shapes it writes, with
 * heads of any length up to 32 bits, float64s, maps of up to 64 text keys as plain objects, byte
 * strings as views of `bytes`) into exactly what cbor-x decodes for them; {@linkcode NOT_READ} for
 * anything else — another type or tag, a float16 or float32, a 64-bit integer, a non-ASCII or long string, an indefinite length, a `__proto__`
 * key, truncated input or trailing bytes — which the caller hands to cbor-x whole (which then
 * decodes it or throws as it always did).
 *
 * @example
 * ```ts ignore
 * decodeSimpleCbor(encodeSimpleCbor(["map", "m", "set", [key, value], "peer-a"])!); // the command
 * decodeSimpleCbor(Uint8Array.of(0xfa, 0, 0, 0, 0)); // NOT_READ: a float32
 * ```
 */
export function decodeSimpleCbor(bytes: Uint8Array): unknown {
  src = bytes;
  srcBuffer = bytes.buffer;
  srcOffset = bytes.byteOffset;
  srcAt = 0;
  srcEnd = bytes.length;
  const value = readSimple(0);
  const whole = srcAt === srcEnd;
  src = slab; // holds no reference to the input
  srcBuffer = slab.buffer;
  return whole ? value : NOT_READ;
}

/** Reads one simple value at `srcAt`; {@linkcode NOT_READ} at the first thing it does not read. */
function readSimple(depth: number): unknown {
  if (srcAt >= srcEnd) return NOT_READ;
  const initial = src[srcAt++]!;
  const major = initial >> 5;
  if (major === 7) {
    switch (initial) {
      case 0xf4:
        return false;
      case 0xf5:
        return true;
      case 0xf6:
        return null;
      case 0xf7:
        return undefined;
      case 0xfb: {
        if (srcAt + 8 > srcEnd) return NOT_READ;
        for (let i = 0; i < 8; i++) F64_BYTES[LITTLE_ENDIAN ? 7 - i : i] = src[srcAt + i]!;
        srcAt += 8;
        return F64[0];
      }
      default:
        return NOT_READ; // float16 and float32 (cbor-x may round these), other simple values, breaks
    }
  }
  let n = initial & 0x1f;
  if (n >= 24) {
    if (n === 24) {
      if (srcAt + 1 > srcEnd) return NOT_READ;
      n = src[srcAt++]!;
    } else if (n === 25) {
      if (srcAt + 2 > srcEnd) return NOT_READ;
      n = (src[srcAt]! << 8) | src[srcAt + 1]!;
      srcAt += 2;
    } else if (n === 26) {
      if (srcAt + 4 > srcEnd) return NOT_READ;
      n = src[srcAt]! * 0x1000000 + ((src[srcAt + 1]! << 16) | (src[srcAt + 2]! << 8) | src[srcAt + 3]!);
      srcAt += 4;
    } else return NOT_READ; // 64-bit heads, indefinite lengths, reserved values
  }
  switch (major) {
    case 0:
      return n;
    case 1:
      return -1 - n;
    case 2: {
      if (n > srcEnd - srcAt) return NOT_READ;
      const start = srcAt;
      srcAt += n;
      return new Uint8Array(srcBuffer, srcOffset + start, n); // a view, as cbor-x's subarray
    }
    case 3:
      return readAscii(n);
    case 4: {
      if (depth >= SIMPLE_MAX_DEPTH || n > srcEnd - srcAt) return NOT_READ;
      const items = new Array(n);
      for (let i = 0; i < n; i++) {
        const item = readSimple(depth + 1);
        if (item === NOT_READ) return NOT_READ;
        items[i] = item;
      }
      return items;
    }
    case 5: {
      if (depth >= SIMPLE_MAX_DEPTH || n > SIMPLE_MAX_KEYS) return NOT_READ;
      const object: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        if (srcAt >= srcEnd || src[srcAt]! >> 5 !== 3) return NOT_READ;
        const key = readSimple(depth + 1);
        if (key === NOT_READ || key === "__proto__") return NOT_READ; // cbor-x renames that key
        const item = readSimple(depth + 1);
        if (item === NOT_READ) return NOT_READ;
        object[key as string] = item;
      }
      return object;
    }
    default:
      return NOT_READ; // tags
  }
}

/** Longest string {@linkcode readAscii} keeps in {@linkcode ASCII_CACHE}. */
const CACHED_MAX = 24;
/** Recently read short strings by a hash of their bytes: kinds, ops, ids, member ids, keys of results. */
const ASCII_CACHE: (string | undefined)[] = new Array(1024);

/**
 * Reads a text string of `n` bytes at `srcAt` if it is ASCII and at most 512 bytes long. A short
 * one is the very string read last time for the same bytes, if it is still in the cache: no
 * allocation, and its hash (for the maps it is looked up in) is already computed.
 */
function readAscii(n: number): string | typeof NOT_READ {
  if (n > SIMPLE_MAX_STRING || n > srcEnd - srcAt) return NOT_READ;
  const start = srcAt;
  const end = start + n;
  if (n > CACHED_MAX) {
    // not cached (a request id, a long key): only the ASCII check, no hash
    let bits = 0;
    for (let i = start; i < end; i++) bits |= src[i]!;
    if (bits > 0x7f) return NOT_READ;
    srcAt = end;
    return latin1String(src, start, n);
  }
  let hash = n;
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    if (c > 0x7f) return NOT_READ;
    hash = (Math.imul(hash, 31) + c) | 0;
  }
  srcAt = end;
  const at = (hash ^ (hash >>> 10)) & 1023;
  const cached = ASCII_CACHE[at];
  if (cached !== undefined && cached.length === n) {
    let same = true;
    for (let i = 0; i < n && same; i++) same = cached.charCodeAt(i) === src[start + i];
    if (same) return cached;
  }
  const s = latin1String(src, start, n);
  ASCII_CACHE[at] = s;
  return s;
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
 * or a cycle; and a {@linkcode HamokCodecError} for a string (a value, an object's key, a `Map`'s
 * key, at any depth) that is not well formed, which UTF-8 would carry as U+FFFD. (Instances of
 * application classes pass: they arrive as plain objects, as documented.)
 */
export function assertRoundTrips(value: unknown, path = "value", depth = 0, seen?: Set<object>): void {
  if (value === null) return;
  const type = typeof value;
  if (type !== "object") {
    if (type === "string") {
      if (!isWellFormedString(value as string)) assertWellFormed(path, value as string, HamokCodecError);
    } else if (type === "function" || type === "symbol") {
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
      if (!isWellFormedString(key)) assertWellFormed(`a key of ${path}`, key, HamokCodecError);
      assertRoundTrips((object as Record<string, unknown>)[key], `${path}.${key}`, depth + 1, seen);
    }
  }
  seen.delete(object);
}

/** How deep {@linkcode assertStringsWellFormed} and {@linkcode copyDecoded} walk plainly (as {@linkcode assertRoundTrips} allows). */
const WALK_MAX_DEPTH = 256;

/**
 * Throws a {@linkcode HamokCodecError} if a string in `value` (the value itself, an item, an own key
 * or value of an object, a `Map`'s key or value, a `Set`'s item, at any depth) is not well formed:
 * the part of {@linkcode assertRoundTrips} a value that goes into a command as it is (a queue item
 * with the default codec) needs, without its allocations (no paths, no set of the objects seen)
 * unless it fails. Deeper than 256 levels (a cycle) it stops: the encoder rejects those.
 *
 * @example
 * ```ts ignore
 * assertStringsWellFormed({ name: "ok" }, "item"); // passes
 * assertStringsWellFormed(["ok", { k: "b\uD800" }], "item"); // throws HamokCodecError: item[1].k is not ...
 * ```
 */
export function assertStringsWellFormed(value: unknown, label: string): void {
  if (typeof value === "string") {
    if (!isWellFormedString(value)) assertWellFormed(label, value, HamokCodecError);
  } else if (typeof value === "object" && value !== null && !objectStringsWellFormed(value, 0)) {
    // found one: the full check names where it is (unless it stops first at something else)
    try {
      assertRoundTrips(value, label);
    } catch (error) {
      if (error instanceof HamokCodecError) throw error;
    }
    throw new HamokCodecError(`${label} holds a string that is not well formed (a lone UTF-16 surrogate)`);
  }
}

/**
 * Whether every string in `value` is well formed (see {@linkcode assertStringsWellFormed}): the
 * check without a label, to build one only when it fails.
 */
export function stringsWellFormed(value: unknown): boolean {
  if (typeof value === "string") return isWellFormedString(value);
  return typeof value !== "object" || value === null || objectStringsWellFormed(value, 0);
}

/** Whether every string in `object` is well formed (walked to {@linkcode WALK_MAX_DEPTH} levels). */
function objectStringsWellFormed(object: object, depth: number): boolean {
  if (depth > WALK_MAX_DEPTH || ArrayBuffer.isView(object)) return true;
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) if (!itemWellFormed(object[i], depth)) return false;
  } else if (object instanceof Map) {
    for (const [k, v] of object) if (!itemWellFormed(k, depth) || !itemWellFormed(v, depth)) return false;
  } else if (object instanceof Set) {
    for (const v of object) if (!itemWellFormed(v, depth)) return false;
  } else {
    const record = object as Record<string, unknown>;
    for (const key in record) {
      if (!Object.hasOwn(record, key)) continue;
      if (!isWellFormedString(key) || !itemWellFormed(record[key], depth)) return false;
    }
  }
  return true;
}

function itemWellFormed(item: unknown, depth: number): boolean {
  if (typeof item === "string") return isWellFormedString(item);
  return typeof item !== "object" || item === null || objectStringsWellFormed(item, depth + 1);
}

/**
 * A deep copy of a value {@linkcode decodeCbor} returned, for an application that may change what it
 * gets while the original stays in a replicated state (a queue's items with the default codec).
 * Primitives are returned as they are; plain objects, arrays, `Map`s, `Set`s and `Date`s are
 * copied, typed arrays copy just their bytes (a decoded `Uint8Array` is a view into a larger
 * buffer, which `structuredClone` would copy whole), instances of other classes (a cbor-x `Tag`)
 * keep their prototype, and `Error`s, `RegExp`s and anything nested more than 256 levels deep (a
 * cycle cbor-x decoded from shared references) are `structuredClone`d.
 *
 * @example
 * ```ts ignore
 * const stored = decodeCbor(encodeCbor({ tags: ["a"] }));
 * const copy = copyDecoded(stored);
 * (copy as { tags: string[] }).tags.push("b"); // stored.tags is still ["a"]
 * ```
 */
export function copyDecoded<T>(value: T): T {
  return typeof value === "object" && value !== null ? copyObject(value, 0) as T : value;
}

function copyItem(value: unknown, depth: number): unknown {
  return typeof value === "object" && value !== null ? copyObject(value, depth + 1) : value;
}

function copyObject(object: object, depth: number): unknown {
  if (depth > WALK_MAX_DEPTH) return structuredClone(object);
  if (Array.isArray(object)) {
    const n = object.length;
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = copyItem(object[i], depth);
    return out;
  }
  if (ArrayBuffer.isView(object)) {
    if (object instanceof DataView) {
      return new DataView(object.buffer.slice(object.byteOffset, object.byteOffset + object.byteLength));
    }
    return (object as Uint8Array).slice();
  }
  const proto = Object.getPrototypeOf(object);
  if (proto === Object.prototype || proto === null) {
    return copyFields(object, proto === null ? Object.create(null) : {}, depth);
  }
  if (object instanceof Map) {
    const out = new Map();
    for (const [k, v] of object) out.set(copyItem(k, depth), copyItem(v, depth));
    return out;
  }
  if (object instanceof Set) {
    const out = new Set();
    for (const v of object) out.add(copyItem(v, depth));
    return out;
  }
  if (object instanceof Date) return new Date(object.getTime());
  if (object instanceof ArrayBuffer) return object.slice(0);
  if (object instanceof Error || object instanceof RegExp) return structuredClone(object);
  return copyFields(object, Object.create(proto), depth);
}

/** Copies the own enumerable fields of `from` into `to` (a `__proto__` field as a field). */
function copyFields(from: object, to: Record<string, unknown>, depth: number): object {
  const record = from as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = copyItem(record[key], depth);
    if (key === "__proto__") {
      Object.defineProperty(to, key, { value: item, writable: true, enumerable: true, configurable: true });
    } else to[key] = item;
  }
  return to;
}
