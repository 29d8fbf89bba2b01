/**
 * HMAC-SHA-256 (RFC 2104 over FIPS 180-4) for the short messages the wire authenticator tags:
 * plain JavaScript with the key's inner and outer hash states (and a fixed message prefix)
 * computed once, so tagging a message costs only its own blocks plus one. `node:crypto`'s
 * `createHmac` builds a keyed object per call, which on Deno costs ~9 µs per message; this costs
 * ~1 µs for a 150-byte envelope. Long messages go to `node:crypto` (native hashing is faster per
 * byte once the setup is amortized).
 *
 * @module
 */

import { createHmac } from "node:crypto";

/** Messages longer than this many bytes are tagged by `node:crypto`. */
const NATIVE_ABOVE_BYTES = 8192;

const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

const IV = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

/** Message schedule scratch (the module is single-threaded per isolate). */
const W = new Int32Array(64);

/** Runs the compression function on the 64 bytes of `bytes` at `offset`, updating `state`. */
function compress(state: Int32Array, bytes: Uint8Array, offset: number): void {
  const w = W;
  for (let t = 0; t < 16; t++) {
    const o = offset + 4 * t;
    w[t] = (bytes[o]! << 24) | (bytes[o + 1]! << 16) | (bytes[o + 2]! << 8) | bytes[o + 3]!;
  }
  for (let t = 16; t < 64; t++) {
    const x = w[t - 15]!;
    const y = w[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!;
  let e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[t]! + w[t]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

function writeState(state: Int32Array, out: Uint8Array, offset: number): void {
  for (let i = 0; i < 8; i++) {
    const v = state[i]!;
    out[offset + 4 * i] = v >>> 24;
    out[offset + 4 * i + 1] = (v >>> 16) & 0xff;
    out[offset + 4 * i + 2] = (v >>> 8) & 0xff;
    out[offset + 4 * i + 3] = v & 0xff;
  }
}

/** SHA-256 of `data` (used for keys longer than one block). */
function sha256(data: Uint8Array): Uint8Array {
  const state = Int32Array.from(IV);
  const block = new Uint8Array(64);
  const out = new Uint8Array(32);
  finish(state, block, 0, data, 0, data.byteLength);
  writeState(state, out, 0);
  return out;
}

/**
 * Absorbs `data` after `fill` pending bytes in `block`, pads, and leaves the digest in `state`.
 * `absorbed` counts every byte before `data` (those in `state` and the pending ones).
 */
function finish(
  state: Int32Array,
  block: Uint8Array,
  fill: number,
  data: Uint8Array,
  absorbed: number,
  length: number,
): void {
  let i = 0;
  if (fill > 0) {
    const take = Math.min(64 - fill, length);
    for (let j = 0; j < take; j++) block[fill + j] = data[j]!;
    fill += take;
    i = take;
    if (fill === 64) {
      compress(state, block, 0);
      fill = 0;
    }
  }
  if (fill === 0) {
    for (; i + 64 <= length; i += 64) compress(state, data, i);
    for (; i < length; i++) block[fill++] = data[i]!;
  }
  const bits = (absorbed + length) * 8;
  block[fill++] = 0x80;
  if (fill > 56) {
    block.fill(0, fill);
    compress(state, block, 0);
    fill = 0;
  }
  block.fill(0, fill, 56);
  const hi = Math.floor(bits / 0x100000000);
  const lo = bits >>> 0;
  block[56] = hi >>> 24;
  block[57] = (hi >>> 16) & 0xff;
  block[58] = (hi >>> 8) & 0xff;
  block[59] = hi & 0xff;
  block[60] = lo >>> 24;
  block[61] = (lo >>> 16) & 0xff;
  block[62] = (lo >>> 8) & 0xff;
  block[63] = lo & 0xff;
  compress(state, block, 0);
}

/**
 * HMAC-SHA-256 with one key and one fixed message prefix: `tag(data)` is
 * HMAC-SHA-256(key, prefix || data).
 *
 * @example
 * ```ts ignore
 * const mac = new PrefixedHmacSha256(key, binding);
 * const out = new Uint8Array(32);
 * mac.tagInto(envelope, out, 0);
 * ```
 */
export class PrefixedHmacSha256 {
  readonly #key: Uint8Array;
  readonly #prefix: Uint8Array;
  /** Inner hash state after the key block and the whole blocks of the prefix. */
  readonly #inner: Int32Array;
  /** The prefix bytes after its whole blocks (fewer than 64). */
  readonly #innerTail: Uint8Array;
  /** Bytes absorbed into `#inner` (the key block plus the prefix's whole blocks). */
  readonly #innerAbsorbed: number;
  /** Outer hash state after the key block. */
  readonly #outer: Int32Array;
  readonly #state = new Int32Array(8);
  readonly #block = new Uint8Array(64);

  /** Prepares the key (hashed first if longer than 64 bytes) and the prefix. */
  constructor(key: Uint8Array, prefix: Uint8Array) {
    this.#key = Uint8Array.from(key);
    this.#prefix = Uint8Array.from(prefix);
    const k = new Uint8Array(64);
    k.set(key.byteLength > 64 ? sha256(key) : key);
    const pad = new Uint8Array(64);
    for (let i = 0; i < 64; i++) pad[i] = k[i]! ^ 0x36;
    this.#inner = Int32Array.from(IV);
    compress(this.#inner, pad, 0);
    let i = 0;
    for (; i + 64 <= prefix.byteLength; i += 64) compress(this.#inner, prefix, i);
    this.#innerTail = prefix.slice(i);
    this.#innerAbsorbed = 64 + i;
    for (let j = 0; j < 64; j++) pad[j] = k[j]! ^ 0x5c;
    this.#outer = Int32Array.from(IV);
    compress(this.#outer, pad, 0);
  }

  /** Writes HMAC-SHA-256(key, prefix || data) (32 bytes) into `out` at `offset`. */
  tagInto(data: Uint8Array, out: Uint8Array, offset: number): void {
    if (data.byteLength > NATIVE_ABOVE_BYTES) {
      out.set(createHmac("sha256", this.#key).update(this.#prefix).update(data).digest(), offset);
      return;
    }
    const state = this.#state;
    const block = this.#block;
    state.set(this.#inner);
    const tail = this.#innerTail;
    block.set(tail);
    finish(state, block, tail.byteLength, data, this.#innerAbsorbed + tail.byteLength, data.byteLength);
    writeState(state, block, 0);
    // outer: the 32-byte inner digest in one block after the key block (96 bytes in all)
    block[32] = 0x80;
    block.fill(0, 33, 62);
    block[62] = (768 >>> 8) & 0xff;
    block[63] = 768 & 0xff;
    state.set(this.#outer);
    compress(state, block, 0);
    writeState(state, out, offset);
  }
}

/** Compares two byte ranges of equal length in time independent of where they differ. */
export function constantTimeEqual(
  a: Uint8Array,
  aOffset: number,
  b: Uint8Array,
  bOffset: number,
  length: number,
): boolean {
  let diff = 0;
  for (let i = 0; i < length; i++) diff |= a[aOffset + i]! ^ b[bOffset + i]!;
  return diff === 0;
}
