/**
 * Internal: an incremental CBOR reader for large images (snapshots) that are read a slice at a time.
 * It walks the structure item by item from a position in one buffer: heads of arrays and maps, text and
 * byte strings, numbers, and it can skip any item (or hand its bytes to cbor-x for a full decode), so
 * that a caller decodes a few thousand entries, yields to the event loop, and goes on from where it
 * stopped. It reads what {@linkcode CborChunkWriter} and cbor-x write (definite and indefinite lengths,
 * tags, floats). Not part of the public API.
 *
 * @module
 */

import { decodeCbor } from "./cbor.ts";
import { latin1String } from "./latin1.ts";

const UTF8 = new TextDecoder("utf-8", { fatal: false });

/** Nesting depth {@linkcode CborReader.skip} accepts (an image nested deeper is refused, not walked). */
const MAX_DEPTH = 512;

/** The head of one item: its major type (0-7) and its argument (a length, a value, or -1: indefinite). */
export interface CborHead {
  /** Major type. */
  readonly major: number;
  /** The argument: a length or a value; -1 for an indefinite length. */
  readonly arg: number;
  /** The additional information bits (0-31), for major 7 (floats and simple values). */
  readonly info: number;
}

/**
 * Reads CBOR items one at a time from `bytes`, from `pos` on. Every method throws `TypeError` on bytes
 * that are not the expected item or end too early.
 *
 * @example
 * ```ts ignore
 * const r = new CborReader(encodeCbor([1, "one"]));
 * r.arrayLength(); // 2
 * r.number(); // 1
 * r.text(); // "one"
 * ```
 */
export class CborReader {
  /** The bytes read. */
  readonly bytes: Uint8Array;
  /** Position of the next item. */
  pos: number;
  readonly #view: DataView;

  /** Reads `bytes` from `pos` on. */
  constructor(bytes: Uint8Array, pos = 0) {
    this.bytes = bytes;
    this.pos = pos;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** True once every byte was read. */
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  /** The major type of the next item (without reading it). */
  peekMajor(): number {
    this.#need(1);
    return this.bytes[this.pos]! >> 5;
  }

  /** Reads the head of the next item. */
  head(): CborHead {
    this.#need(1);
    const first = this.bytes[this.pos++]!;
    const major = first >> 5;
    const info = first & 0x1f;
    return { major, info, arg: this.#arg(major, info) };
  }

  /** Reads the head of a definite-length array and returns its length. */
  arrayLength(): number {
    const h = this.head();
    if (h.major !== 4 || h.arg < 0) throw new TypeError("snapshot image: expected an array of known length");
    return h.arg;
  }

  /** Reads the head of a definite-length map and returns its number of pairs. */
  mapLength(): number {
    const h = this.head();
    if (h.major !== 5 || h.arg < 0) throw new TypeError("snapshot image: expected a map of known length");
    return h.arg;
  }

  /** Reads a definite-length text string. */
  text(): string {
    const h = this.head();
    if (h.major !== 3 || h.arg < 0) throw new TypeError("snapshot image: expected a text string");
    return this.#utf8(h.arg);
  }

  /**
   * Reads a text or byte string: a text as a string; bytes up to `latin1Max` long as a string of one
   * char per byte (the map state keeps them so), longer bytes as a copy. `undefined` (the item
   * skipped) for any other item. {@linkcode lastText} tells which of the two it was.
   */
  encoded(latin1Max: number): string | Uint8Array | undefined {
    this.#need(1);
    const first = this.bytes[this.pos]!;
    const major = first >> 5;
    if ((major !== 2 && major !== 3) || (first & 0x1f) === 31) {
      this.skip();
      return undefined;
    }
    this.pos++;
    const n = this.#arg(major, first & 0x1f);
    this.lastText = major === 3;
    if (major === 3) return this.#utf8(n);
    this.#need(n);
    const start = this.pos;
    this.pos += n;
    if (n <= latin1Max) return latin1(this.bytes, start, start + n);
    return this.bytes.slice(start, start + n);
  }

  /** Whether the last string {@linkcode encoded} read was a text (else bytes). */
  lastText = false;

  /** Reads a number (an integer or a float); `undefined` (the item skipped) for any other item. */
  number(): number | undefined {
    this.#need(1);
    const first = this.bytes[this.pos]!;
    const major = first >> 5;
    const info = first & 0x1f;
    if (major === 0 && info < 28) {
      this.pos++;
      return this.#arg(0, info);
    }
    if (major === 1 && info < 28) {
      this.pos++;
      return -1 - this.#arg(1, info);
    }
    if (major === 7 && info >= 25 && info <= 27) {
      this.pos++;
      return this.#float(info);
    }
    this.skip();
    return undefined;
  }

  /** Decodes the next item whole (with cbor-x), whatever it is. */
  value(): unknown {
    const start = this.pos;
    this.skip();
    return decodeCbor(this.bytes.subarray(start, this.pos));
  }

  /** Skips the next item, whatever it is. */
  skip(depth = 0): void {
    if (depth > MAX_DEPTH) throw new TypeError("snapshot image: nested too deeply");
    const h = this.head();
    switch (h.major) {
      case 0:
      case 1:
        return;
      case 2:
      case 3:
        if (h.arg >= 0) {
          this.#need(h.arg);
          this.pos += h.arg;
          return;
        }
        while (!this.#isBreak()) this.skip(depth + 1);
        this.pos++;
        return;
      case 4:
      case 5: {
        const per = h.major === 5 ? 2 : 1;
        if (h.arg >= 0) {
          for (let i = 0; i < h.arg * per; i++) this.skip(depth + 1);
          return;
        }
        while (!this.#isBreak()) this.skip(depth + 1);
        this.pos++;
        return;
      }
      case 6:
        this.skip(depth + 1);
        return;
      default:
        return; // simple values and floats: the head was all of it
    }
  }

  #isBreak(): boolean {
    this.#need(1);
    return this.bytes[this.pos] === 0xff;
  }

  #arg(major: number, info: number): number {
    if (info < 24) return info;
    const v = this.#view;
    const p = this.pos;
    switch (info) {
      case 24:
        this.#need(1);
        this.pos += 1;
        return this.bytes[p]!;
      case 25:
        this.#need(2);
        this.pos += 2;
        return major === 7 ? 25 : v.getUint16(p);
      case 26:
        this.#need(4);
        this.pos += 4;
        return major === 7 ? 26 : v.getUint32(p);
      case 27: {
        this.#need(8);
        this.pos += 8;
        if (major === 7) return 27;
        const n = v.getUint32(p) * 2 ** 32 + v.getUint32(p + 4);
        if (!Number.isSafeInteger(n)) throw new TypeError("snapshot image: a length or integer beyond 2^53");
        return n;
      }
      case 31:
        if (major >= 2 && major <= 5) return -1;
        if (major === 7) return 31; // the break code, read as a simple value by the caller
        throw new TypeError("snapshot image: an indefinite length on a major type that has none");
      default:
        throw new TypeError("snapshot image: reserved additional information");
    }
  }

  /** Reads the float of a major-7 head whose info byte was just read (before its argument). */
  #float(info: number): number {
    const v = this.#view;
    const p = this.pos;
    if (info === 25) {
      this.#need(2);
      this.pos += 2;
      return half(v.getUint16(p));
    }
    if (info === 26) {
      this.#need(4);
      this.pos += 4;
      return v.getFloat32(p);
    }
    this.#need(8);
    this.pos += 8;
    return v.getFloat64(p);
  }

  #utf8(n: number): string {
    this.#need(n);
    const bytes = this.bytes;
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    for (let i = start; i < end; i++) {
      if (bytes[i]! > 0x7f) return UTF8.decode(bytes.subarray(start, end));
    }
    return latin1(bytes, start, end);
  }

  #need(n: number): void {
    if (this.pos + n > this.bytes.length) throw new TypeError("snapshot image: truncated");
  }
}

/** A string of one char per byte of `bytes[start, end)`. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  return latin1String(bytes, start, end - start);
}

/** An IEEE 754 half-precision float. */
function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac === 0 ? sign * Infinity : NaN;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}
