/**
 * CRC-32C (Castagnoli), the checksum of the file storage's records: table driven, slicing by 8.
 *
 * @module
 */

const POLY = 0x82f63b78;

type Tables = [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

function makeTables(): Tables {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables: Uint32Array[] = [t0];
  let prev = t0;
  for (let t = 1; t < 8; t++) {
    const next = new Uint32Array(256);
    for (let n = 0; n < 256; n++) next[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!; // n < 256
    tables.push(next);
    prev = next;
  }
  return tables as Tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = makeTables();

/**
 * The CRC-32C of `bytes[start, end)`, continuing from `crc` (0 for a fresh checksum).
 *
 * @example
 * ```ts
 * import { crc32c } from "./crc32c.ts";
 * crc32c(new TextEncoder().encode("123456789")).toString(16); // "e3069283"
 * ```
 */
export function crc32c(bytes: Uint8Array, start = 0, end: number = bytes.length, crc = 0): number {
  let c = ~crc >>> 0;
  let i = start;
  // The hot loop reads without checks: table indices are bytes (0..255) or masked to 0xff, and
  // `bytes` is read below `end` (a caller's `end` past the data reads undefined, as before: 0 in `|`).
  while (end - i >= 8) {
    const lo = (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0;
    c = T7[lo & 0xff]! ^ T6[(lo >>> 8) & 0xff]! ^ T5[(lo >>> 16) & 0xff]! ^ T4[lo >>> 24]! ^
      T3[bytes[i + 4]!]! ^ T2[bytes[i + 5]!]! ^ T1[bytes[i + 6]!]! ^ T0[bytes[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = T0[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
