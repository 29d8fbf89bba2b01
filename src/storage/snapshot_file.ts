/**
 * Snapshot files of the file storage: `snap/<index, 16 hex digits>.snap`, written to a temporary
 * file with asynchronous writes, synced, renamed into place, with the directory synced.
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
import { fsAsync, type StorageFs, syncDirAsync } from "./storage_fs.ts";

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

/** Where the data of the snapshot file of `meta` starts (its header and meta come first). */
export function snapshotDataOffset(meta: Snapshot["meta"]): number {
  const { index, term, membership } = meta;
  return HEADER_BYTES +
    encodeCbor([index, term, membership.voters, membership.learners, membership.removed]).length;
}

/** Bytes of the data written per asynchronous write, and checksummed per slice when the digest is unknown. */
const SLICE_BYTES = 1024 * 1024;
/**
 * The snapshot file is synced after every this many bytes of data: its dirty pages never pile up in
 * the page cache, so a WAL `fdatasync` meanwhile (which on ext4 may wait for the journal, and with it
 * for other files' dirty data) waits behind at most this much of it.
 */
const SYNC_EVERY_BYTES = 2 * SLICE_BYTES;

/** A turn of the event loop. */
function yieldLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** CRC-32C of `data`, a slice per event-loop turn (the same value as `crc32c(data)`). */
export async function crc32cSliced(data: Uint8Array): Promise<number> {
  let crc = 0;
  for (let at = 0; at < data.length; at += SLICE_BYTES) {
    if (at > 0) await yieldLoop();
    crc = crc32c(data, at, Math.min(data.length, at + SLICE_BYTES), crc);
  }
  return crc;
}

/**
 * Writes `snapshot` atomically into `dir` without holding the event loop: `<name>.tmp` is written
 * with asynchronous writes (the header and meta, then the data in slices, from the snapshot's own
 * buffer), synced, renamed into place, and the directory synced. The data's checksum is the
 * snapshot's `digest` when it has one (the snapshot job's CRC-32C of the same bytes), else computed
 * a slice per event-loop turn. `abandoned` is asked before the rename: if it returns true (the
 * storage closed meanwhile) the file is not renamed (a `.tmp` file is removed at the next load).
 */
export async function writeSnapshotFileAsync(
  fs: StorageFs,
  dir: string,
  snapshot: Snapshot,
  abandoned: () => boolean,
): Promise<boolean> {
  const { index, term, membership } = snapshot.meta;
  const data = snapshot.data;
  const meta = encodeCbor([index, term, membership.voters, membership.learners, membership.removed]);
  const dataCrc = snapshot.digest ?? await crc32cSliced(data);
  const head = new Uint8Array(HEADER_BYTES + meta.length);
  const view = new DataView(head.buffer);
  head.set(MAGIC, 0);
  view.setUint32(8, meta.length, true);
  view.setUint32(12, crc32c(meta), true);
  view.setUint32(16, data.length, true);
  view.setUint32(20, dataCrc, true);
  head.set(meta, HEADER_BYTES);
  const name = snapshotFileName(index);
  const tmp = join(dir, `${name}.tmp`);
  const fd = await fsAsync.open(fs, tmp, "w");
  try {
    await fsAsync.writeAt(fs, fd, head, 0);
    for (let at = 0; at < data.length; at += SLICE_BYTES) {
      if (abandoned()) return false;
      await fsAsync.writeAt(
        fs,
        fd,
        data.subarray(at, Math.min(data.length, at + SLICE_BYTES)),
        head.length + at,
      );
      const written = at + SLICE_BYTES;
      if (written % SYNC_EVERY_BYTES === 0 && written < data.length) await fsAsync.fsync(fs, fd);
    }
    await fsAsync.fsync(fs, fd);
  } finally {
    await fsAsync.close(fs, fd);
  }
  if (abandoned()) return false;
  fs.renameSync(tmp, join(dir, name));
  await syncDirAsync(fs, dir);
  return true;
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
