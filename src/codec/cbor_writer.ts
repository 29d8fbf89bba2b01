/**
 * Internal: an incremental CBOR writer for large images (snapshots) that are produced a slice at a
 * time. It writes the few item kinds an image needs (array and map headers, unsigned integers, text,
 * byte strings, and bytes already encoded by cbor-x) into 1 MiB chunks, and joins the chunks into
 * one buffer on request, also a slice at a time. What it writes is plain CBOR that
 * {@linkcode decodeCbor} reads like cbor-x's own output. Not part of the public API.
 *
 * @module
 */

import { HamokCodecError } from "../errors.ts";
import { assertWellFormed, isWellFormedString } from "./well_formed.ts";

/**
 * Bytes of the CBOR head (major type and argument) for a length or value `n`, 0 <= n < 2^32: what
 * {@linkcode writeCborHead} writes.
 */
export function cborHeadBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

/**
 * Writes the shortest CBOR head of `major` (the type's high bits, e.g. 0x60 for text) with argument
 * `n` (0 <= n < 2^32) into `out` at `at`; returns the position after it. The caller makes room.
 */
export function writeCborHead(out: Uint8Array, at: number, major: number, n: number): number {
  if (n < 24) out[at++] = major | n;
  else if (n < 0x100) {
    out[at++] = major | 24;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = major | 25;
    out[at++] = n >>> 8;
    out[at++] = n & 0xff;
  } else {
    out[at++] = major | 26;
    out[at++] = n >>> 24;
    out[at++] = (n >>> 16) & 0xff;
    out[at++] = (n >>> 8) & 0xff;
    out[at++] = n & 0xff;
  }
  return at;
}

const CHUNK_BYTES = 1024 * 1024;
const UTF8 = new TextEncoder();

/**
 * Writes CBOR items into a list of chunks.
 *
 * @example
 * ```ts ignore
 * const w = new CborChunkWriter();
 * w.arrayHeader(2);
 * w.uint(7);
 * w.text("seven");
 * const joiner = w.joiner();
 * while (!joiner.step(1 << 20)) { /* yield to the event loop between steps *\/ }
 * decodeCbor(joiner.result()); // [7, "seven"]
 * ```
 */
export class CborChunkWriter {
  readonly #chunks: Uint8Array[] = [];
  #buf: Uint8Array;
  #pos = 0;
  #total = 0;

  /**
   * Creates a writer whose first chunk holds `firstChunkBytes` (default 1 MiB): give the expected size
   * of what will be written, and a result that fits is that chunk itself, never copied.
   */
  constructor(firstChunkBytes: number = CHUNK_BYTES) {
    this.#buf = new Uint8Array(Math.max(16, firstChunkBytes));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#total + this.#pos;
  }

  /** Writes the header of an array of `n` items. */
  arrayHeader(n: number): void {
    this.#head(0x80, n);
  }

  /** Writes the header of a map of `n` pairs. */
  mapHeader(n: number): void {
    this.#head(0xa0, n);
  }

  /** Writes a non-negative integer (a float64 above 2^32 - 1, as cbor-x decodes either to a number). */
  uint(n: number): void {
    if (n <= 0xffffffff) {
      this.#head(0x00, n);
      return;
    }
    this.#room(9);
    const buf = this.#buf;
    buf[this.#pos] = 0xfb;
    new DataView(buf.buffer, buf.byteOffset + this.#pos + 1, 8).setFloat64(0, n);
    this.#pos += 9;
  }

  /**
   * Writes a text string (UTF-8): `s` from `offset` on. Throws a {@linkcode HamokCodecError} if that
   * part is not well formed (a lone UTF-16 surrogate, which UTF-8 would carry as U+FFFD); an ASCII
   * string needs no check.
   */
  text(s: string, offset = 0): void {
    const n = s.length;
    for (let i = offset; i < n; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        const part = offset === 0 ? s : s.slice(offset);
        if (!isWellFormedString(part)) assertWellFormed("a CBOR text string", part, HamokCodecError);
        const bytes = UTF8.encode(part);
        this.#head(0x60, bytes.length);
        this.#put(bytes);
        return;
      }
    }
    this.#head(0x60, n - offset);
    this.#latin1(s, offset);
  }

  /** Writes a byte string whose bytes are the char codes (0-255) of `s` from `offset` on. */
  bytesFromLatin1(s: string, offset: number): void {
    this.#head(0x40, s.length - offset);
    this.#latin1(s, offset);
  }

  /** Writes a byte string. */
  bytes(bytes: Uint8Array): void {
    this.#head(0x40, bytes.length);
    this.#put(bytes);
  }

  /** Writes bytes that already are one or more complete CBOR items. */
  raw(bytes: Uint8Array): void {
    this.#put(bytes);
  }

  /** Ends writing: a {@linkcode CborJoiner} that joins the chunks into one buffer, a slice at a time. */
  joiner(): CborJoiner {
    if (this.#pos > 0) this.#chunks.push(this.#buf.subarray(0, this.#pos));
    this.#total += this.#pos;
    this.#pos = 0;
    this.#buf = new Uint8Array(0);
    return new CborJoiner(this.#chunks, this.#total);
  }

  #head(major: number, n: number): void {
    this.#room(5);
    this.#pos = writeCborHead(this.#buf, this.#pos, major, n);
  }

  #latin1(s: string, offset: number): void {
    let i = offset;
    const n = s.length;
    while (i < n) {
      this.#room(1);
      const buf = this.#buf;
      let p = this.#pos;
      const end = Math.min(n, i + (buf.length - p));
      while (i < end) buf[p++] = s.charCodeAt(i++);
      this.#pos = p;
    }
  }

  #put(bytes: Uint8Array): void {
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      this.#room(1);
      const take = Math.min(n - i, this.#buf.length - this.#pos);
      this.#buf.set(i === 0 && take === n ? bytes : bytes.subarray(i, i + take), this.#pos);
      this.#pos += take;
      i += take;
    }
  }

  /** Makes sure `n` (at most 9) bytes fit in the current chunk. */
  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    this.#chunks.push(this.#buf.subarray(0, this.#pos));
    this.#total += this.#pos;
    this.#buf = new Uint8Array(CHUNK_BYTES);
    this.#pos = 0;
  }
}

/** Joins the chunks of a {@linkcode CborChunkWriter} into one buffer, a bounded number of bytes per step. */
export class CborJoiner {
  readonly #chunks: Uint8Array[];
  readonly #out: Uint8Array;
  #next = 0;
  #at = 0;

  /** @internal Made by {@linkcode CborChunkWriter.joiner}. */
  constructor(chunks: Uint8Array[], total: number) {
    this.#chunks = chunks;
    this.#out = chunks.length === 1 ? chunks[0]! : new Uint8Array(total);
    if (chunks.length === 1) this.#next = 1;
  }

  /** Copies chunks until about `maxBytes` were copied; true once every chunk is in place. */
  step(maxBytes: number): boolean {
    let copied = 0;
    const chunks = this.#chunks;
    while (this.#next < chunks.length && copied < maxBytes) {
      const chunk = chunks[this.#next]!;
      this.#out.set(chunk, this.#at);
      this.#at += chunk.length;
      copied += chunk.length;
      chunks[this.#next++] = EMPTY;
    }
    return this.#next >= chunks.length;
  }

  /** The joined bytes (complete once {@linkcode step} returned true). */
  result(): Uint8Array {
    return this.#out;
  }
}

const EMPTY = new Uint8Array(0);
