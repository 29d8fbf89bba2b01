/**
 * Small non-cryptographic hashes for the simulator: 32-bit word mixing (murmur3 style), digests of
 * bytes and strings, 53-bit chain values (exact in a JS number) and the running trace hash that
 * proves a seed replays bit for bit.
 *
 * @module
 */

import type { Entry } from "../../src/raft/types.ts";

/** Mixes one 32-bit word into a 32-bit hash state. */
export function mixWord(h: number, x: number): number {
  let k = Math.imul(x | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Final avalanche of a 32-bit hash state; returns an unsigned 32-bit value. */
export function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Mixes the bytes of `data` into `h`. */
export function mixBytes(h: number, data: Uint8Array): number {
  const n = data.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    h = mixWord(h, data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
  }
  let tail = 0;
  for (let s = 0; i < n; i++, s += 8) tail |= data[i] << s;
  return mixWord(mixWord(h, tail), n);
}

/** Mixes the UTF-16 code units of `s` into `h`. */
export function mixString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = mixWord(h, s.charCodeAt(i));
  return mixWord(h, s.length);
}

const TWO32 = 0x100000000;

/** Mixes a non-negative integer below 2^53 into `h` (as two words). */
export function mixNumber(h: number, x: number): number {
  return mixWord(mixWord(h, x >>> 0), Math.floor(x / TWO32));
}

const ENTRY_TYPE: Record<Entry["type"], number> = { normal: 1, config: 2, noop: 3 };

/** A 32-bit digest of everything an entry carries (term, index, kind, data, request id, change). */
export function entryDigest(e: Entry): number {
  let h = mixWord(mixNumber(mixNumber(0x2545f491, e.index), e.term), ENTRY_TYPE[e.type] ?? 0);
  h = mixBytes(h, e.data);
  if (e.requestId !== undefined) h = mixString(h, e.requestId);
  if (e.change !== undefined) h = mixString(mixString(h, e.change.type), e.change.memberId);
  return finish(h);
}

/** Extends a 53-bit chain value by one 32-bit digest; the result is again an exact integer < 2^53. */
export function chain(prev: number, digest: number): number {
  const lo = prev >>> 0;
  const hi = Math.floor(prev / TWO32);
  const a = finish(mixWord(mixWord(mixWord(0x9e3779b9, lo), hi), digest));
  const b = finish(mixWord(mixWord(mixWord(0x7f4a7c15, digest), lo), hi ^ 0x5bd1e995));
  return (b & 0x1fffff) * TWO32 + a;
}

/**
 * A running 64-bit (two-lane) hash of a sequence of numbers and strings.
 *
 * @example
 * ```ts
 * const t = new TraceHash();
 * t.add(1).add(2).addString("deliver");
 * console.log(t.hex()); // the same on every run
 * ```
 */
export class TraceHash {
  #a = 0x6a09e667 | 0;
  #b = 0xbb67ae85 | 0;

  /** Adds an integer (any safe integer; negative values are folded). */
  add(x: number): this {
    const lo = x >>> 0;
    const hi = Math.floor(x / TWO32) | 0;
    this.#a = mixWord(mixWord(this.#a, lo), hi);
    this.#b = mixWord(mixWord(this.#b ^ 0x3c6ef372, hi), lo);
    return this;
  }

  /** Adds a string. */
  addString(s: string): this {
    this.#a = mixString(this.#a, s);
    this.#b = mixString(this.#b ^ 0x510e527f, s);
    return this;
  }

  /** The current value as 16 hex digits. */
  hex(): string {
    return finish(this.#a).toString(16).padStart(8, "0") + finish(this.#b).toString(16).padStart(8, "0");
  }
}
