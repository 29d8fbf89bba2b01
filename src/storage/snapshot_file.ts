/**
 * Snapshot files of the file storage: `snap/<index, 16 hex digits>.snap`, written to a temporary
 * file, synced, renamed into place, with the directory synced.
 *
 * ```
 * "HMKSNAP1" | u32 meta length | u32 CRC-32C(meta) | u32 data length | u32 CRC-32C(data) | meta | data
 * ```
 *
 * `meta` is CBOR `[index, term, voters, learners, removed]`.
 *
 * @module
 */

import { join } from "node:path";
import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import { HamokStorageCorruptError } from "../errors.ts";
import type { Snapshot } from "../raft/types.ts";
import { crc32c } from "./crc32c.ts";
import { type StorageFs, writeFileAtomic } from "./storage_fs.ts";

const MAGIC = new TextEncoder().encode("HMKSNAP1");
const HEADER_BYTES = MAGIC.length + 16;

/** The file name of the snapshot at `index`. */
export function snapshotFileName(index: number): string {
  return `${index.toString(16).padStart(16, "0")}.snap`;
}

/** Parses a snapshot file name; `undefined` if it is not one. */
export function parseSnapshotFileName(name: string): number | undefined {
  const match = /^([0-9a-f]{16})\.snap$/.exec(name);
  const hex = match?.[1];
  return hex === undefined ? undefined : parseInt(hex, 16);
}

/** Writes `snapshot` atomically into `dir`. */
export function writeSnapshotFile(fs: StorageFs, dir: string, snapshot: Snapshot): void {
  const { index, term, membership } = snapshot.meta;
  const meta = encodeCbor([index, term, membership.voters, membership.learners, membership.removed]);
  const out = new Uint8Array(HEADER_BYTES + meta.length + snapshot.data.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(8, meta.length, true);
  view.setUint32(12, crc32c(meta), true);
  view.setUint32(16, snapshot.data.length, true);
  view.setUint32(20, crc32c(snapshot.data), true);
  out.set(meta, HEADER_BYTES);
  out.set(snapshot.data, HEADER_BYTES + meta.length);
  writeFileAtomic(fs, dir, snapshotFileName(index), out);
}

/** Reads and checks a snapshot file; throws {@linkcode HamokStorageCorruptError} on any damage. */
export function readSnapshotFile(fs: StorageFs, path: string): Snapshot {
  const bytes = fs.readFileSync(path);
  const corrupt = (why: string, offset: number) => new HamokStorageCorruptError(why, { path, offset });
  if (bytes.length < HEADER_BYTES) throw corrupt("snapshot file shorter than its header", 0);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) throw corrupt("not a snapshot file", 0);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const metaLength = view.getUint32(8, true);
  const dataLength = view.getUint32(16, true);
  if (HEADER_BYTES + metaLength + dataLength !== bytes.length) {
    throw corrupt(`snapshot file size ${bytes.length} does not match its header`, 8);
  }
  const metaEnd = HEADER_BYTES + metaLength;
  if (crc32c(bytes, HEADER_BYTES, metaEnd) !== view.getUint32(12, true)) {
    throw corrupt("snapshot meta checksum mismatch", HEADER_BYTES);
  }
  if (crc32c(bytes, metaEnd, bytes.length) !== view.getUint32(20, true)) {
    throw corrupt("snapshot data checksum mismatch", metaEnd);
  }
  let meta: unknown;
  try {
    meta = decodeCbor(bytes.subarray(HEADER_BYTES, metaEnd));
  } catch (error) {
    throw new HamokStorageCorruptError("snapshot meta does not decode", { path, offset: HEADER_BYTES }, {
      cause: error,
    });
  }
  const m = meta as [number, number, string[], string[], string[]];
  if (!Array.isArray(m) || m.length !== 5 || !Number.isInteger(m[0]) || !Number.isInteger(m[1])) {
    throw corrupt("snapshot meta has the wrong shape", HEADER_BYTES);
  }
  return {
    meta: { index: m[0], term: m[1], membership: { voters: m[2], learners: m[3], removed: m[4] } },
    data: bytes.slice(metaEnd),
  };
}

/** Snapshot indexes present in `dir`, ascending. */
export function listSnapshots(fs: StorageFs, dir: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync(dir)) {
    const index = parseSnapshotFileName(name);
    if (index !== undefined) out.push(index);
  }
  return out.sort((a, b) => a - b);
}

/** The path of the snapshot at `index` in `dir`. */
export function snapshotPath(dir: string, index: number): string {
  return join(dir, snapshotFileName(index));
}
