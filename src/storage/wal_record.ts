/**
 * Framing of the write-ahead log's records. A record is a 16-byte header followed by its payload:
 *
 * ```
 * u32 payload length | u8 type | 3 zero bytes | u32 CRC-32C(payload) | u32 CRC-32C(header bytes 0..11)
 * ```
 *
 * all little-endian. The header has its own checksum, so a damaged length is detected as damage
 * rather than read as a record that runs past the end of the file.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";

/** Bytes of a record header. */
export const RECORD_HEADER_BYTES = 16;
/** Largest payload accepted on load (a larger length is damage). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

/** Record types. */
export const RecordType = {
  /** A batch of log entries (CBOR array of packed entries); replaces the stored suffix from its first index. */
  entries: 1,
  /** Term, vote and commit (CBOR `[term, vote | null, commit]`). */
  hardState: 2,
  /** The log restarts after a snapshot (CBOR `[index, term]`): every earlier entry is dropped. */
  reset: 3,
} as const;

/** Frames `payload` as a record of `type`. */
export function frameRecord(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, payload.length, true);
  out[4] = type;
  view.setUint32(8, crc32c(payload), true);
  view.setUint32(12, crc32c(out, 0, 12), true);
  out.set(payload, RECORD_HEADER_BYTES);
  return out;
}

/** One record found by {@linkcode scanRecords}. */
export interface ScannedRecord {
  /** Offset of its header in the file. */
  readonly offset: number;
  /** Its type. */
  readonly type: number;
  /** Its payload (a view into the file's bytes). */
  readonly payload: Uint8Array;
}

/** Where and why a scan stopped before the end of the bytes. */
export interface ScanStop {
  /** Offset of the first byte that is not part of a valid record. */
  readonly offset: number;
  /** Why. */
  readonly reason: string;
  /**
   * True if the damage is what a crash during the last write leaves (an incomplete header, a
   * payload cut short by the end of the file, a last record whose payload does not match its
   * checksum, or zeros up to the end). Only the last segment may end like that.
   */
  readonly torn: boolean;
}

/** Reads the records of one segment's bytes, in order; stops at the first invalid byte. */
export function scanRecords(bytes: Uint8Array): { records: ScannedRecord[]; stop: ScanStop | undefined } {
  const records: ScannedRecord[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  const end = bytes.length;
  while (offset < end) {
    const left = end - offset;
    if (left < RECORD_HEADER_BYTES) {
      return { records, stop: { offset, reason: "incomplete record header", torn: true } };
    }
    if (view.getUint32(offset + 12, true) !== crc32c(bytes, offset, offset + 12)) {
      return {
        records,
        stop: { offset, reason: "record header checksum mismatch", torn: allZero(bytes, offset) },
      };
    }
    const length = view.getUint32(offset, true);
    const type = bytes[offset + 4]!; // inside the header, whose checksum matched above
    if (length > MAX_RECORD_BYTES) {
      return { records, stop: { offset, reason: `record length ${length} too large`, torn: false } };
    }
    const start = offset + RECORD_HEADER_BYTES;
    const recordEnd = start + length;
    if (recordEnd > end) {
      return { records, stop: { offset, reason: "record cut short by the end of the file", torn: true } };
    }
    if (view.getUint32(offset + 8, true) !== crc32c(bytes, start, recordEnd)) {
      return {
        records,
        stop: { offset, reason: "record payload checksum mismatch", torn: recordEnd === end },
      };
    }
    records.push({ offset, type, payload: bytes.subarray(start, recordEnd) });
    offset = recordEnd;
  }
  return { records, stop: undefined };
}

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}
