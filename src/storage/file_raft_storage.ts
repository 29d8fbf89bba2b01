/**
 * A durable {@linkcode RaftStorage} in one directory per member, on `node:fs` only (Deno, Bun and
 * Node): a segmented write-ahead log of checksummed records (entries, hard state, log resets),
 * snapshot files written atomically, a lock file and the member's identity.
 *
 * ```
 * <dataDir>/meta.json                 {"format":1,"clusterId":...,"memberId":...,"loads":n}
 * <dataDir>/LOCK                      PID of the process using the directory
 * <dataDir>/DISCARDED                 only while discard() runs (or after it was interrupted)
 * <dataDir>/wal/<seq, 16 hex>.wal     records (see wal_record.ts), replayed in sequence order
 * <dataDir>/snap/<index, 16 hex>.snap the latest snapshot (see snapshot_file.ts)
 * ```
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import { packLogEntries, unpackLogEntries } from "../codec/raft_body.ts";
import {
  HamokClosedError,
  HamokConfigError,
  HamokStorageCorruptError,
  HamokStorageError,
  HamokStorageMismatchError,
} from "../errors.ts";
import type { Entry, HardState, Snapshot } from "../raft/types.ts";
import type { RaftPersistentState, RaftStorage } from "./raft_storage.ts";
import { type DirLock, lockDir } from "./dir_lock.ts";
import {
  listSnapshots,
  readSnapshotFile,
  snapshotDataOffset,
  snapshotPath,
  writeSnapshotFileAsync,
} from "./snapshot_file.ts";
import {
  fsAsync,
  NODE_FS,
  storageError,
  type StorageFs,
  syncDir,
  syncDirAsync,
  writeAll,
  writeFileAtomic,
} from "./storage_fs.ts";
import { FileRemover, REMOVED_SUFFIX } from "./file_remover.ts";
import { frameRecord, RecordType, scanRecords } from "./wal_record.ts";

/**
 * When the storage forces its writes to the disk:
 * - `"always"` (default): once per ready batch of the Raft core, before that batch's messages go
 *   out (one `fdatasync` for all its entries and hard state: group commit). Nothing acknowledged is
 *   lost on a process crash or a power loss.
 * - `"interval"`: every `syncIntervalMs`. A process crash loses nothing (the writes are in the OS);
 *   a power loss may lose the last interval's writes of this member.
 * - `"never"`: the OS decides (tests, caches). A power loss may lose anything not yet written back.
 */
export type FileSyncPolicy = "always" | "interval" | "never";

/** Options of {@linkcode FileRaftStorage}. */
export interface FileRaftStorageOptions {
  /** The member's directory (created if missing). One directory per member. */
  dataDir: string;
  /** The peer id: a new directory gets a member id `<peerId>/<random tag>`. */
  peerId: string;
  /** The cluster id; a directory made for another cluster id is refused. */
  clusterId: string;
  /** Sync policy. Default `"always"`. */
  sync?: FileSyncPolicy;
  /** Period of the `"interval"` policy, in ms. Default 100. */
  syncIntervalMs?: number;
  /** A segment is closed and a new one started once it holds this many bytes. Default 64 MiB. */
  segmentBytes?: number;
  /** The file-system functions (a seam for tests). Default: `node:fs`. */
  fs?: StorageFs;
}

const FORMAT = 1;
const NO_DATA = new Uint8Array(0);
const INITIAL_HARD_STATE: HardState = Object.freeze({ term: 0, vote: undefined, commit: 0 });

interface DirMeta {
  format: number;
  clusterId: string;
  memberId: string;
  /**
   * How many loads of the directory were made durable (the next load's `restarts`). Absent in
   * directories of earlier versions: 0.
   */
  loads?: number;
}

/**
 * The marker of a discard: written (atomically, synced) before anything of the member is deleted
 * and removed (synced) last, so a directory holding it is a discarded member whatever else is left.
 */
const DISCARD_MARKER = "DISCARDED";

/**
 * How many syncs a snapshot save waits for a moment with nothing written to the current segment
 * since its last sync before it switches to the new segment anyway, syncing the current one first
 * (see {@linkcode FileRaftStorage} `#restartLog`).
 */
const SWITCH_WAIT_SYNCS = 3;

/** True for a storage error that is an I/O failure (which stops the storage), not a verdict on the data. */
function isIoFailure(error: HamokStorageError): boolean {
  return error.code === "HAMOK_STORAGE" || error.code === "HAMOK_STORAGE_FULL";
}

function segmentName(seq: number): string {
  return `${seq.toString(16).padStart(16, "0")}.wal`;
}

function parseSegmentName(name: string): number | undefined {
  const match = /^([0-9a-f]{16})\.wal$/.exec(name);
  const hex = match?.[1];
  return hex === undefined ? undefined : parseInt(hex, 16);
}

function randomTag(): string {
  return crypto.randomUUID().slice(0, 8);
}

/**
 * Keeps one Raft member's state in a directory. Opening (the constructor) is synchronous: it
 * creates the directory on first use (with a new member id), takes its lock, and checks the
 * cluster id; {@linkcode FileRaftStorage.load} replays the log.
 *
 * Writes (`append`, `saveHardState`) go to the OS at once, so a process crash never loses them;
 * {@linkcode FileRaftStorage.sync} makes them durable according to the sync policy (the Raft
 * driver calls it once per ready batch). Snapshots are always synced. An I/O failure makes the
 * storage refuse every later write: `ENOSPC` as {@linkcode HamokStorageFullError}, others as
 * {@linkcode HamokStorageError}.
 *
 * @example
 * ```ts
 * import { FileRaftStorage } from "@hamok/core";
 * const storage = new FileRaftStorage({ dataDir: "./data/orders-1", peerId: "orders-1", clusterId: "orders" });
 * const state = await storage.load();
 * console.log(storage.memberId, state.entries.length);
 * storage.close();
 * ```
 */
export class FileRaftStorage implements RaftStorage {
  /** The member id kept in the directory (made at first start). */
  readonly memberId: string;
  /** The directory. */
  readonly dataDir: string;
  /** The sync policy. */
  readonly syncPolicy: FileSyncPolicy;
  /** True if this open created the directory's identity (a new member). */
  readonly created: boolean;
  readonly #fs: StorageFs;
  /** The directory's `meta.json`, as last written. */
  #meta: DirMeta;
  /** See {@linkcode restarts}. */
  #restarts: number | undefined;
  readonly #walDir: string;
  readonly #snapDir: string;
  readonly #segmentBytes: number;
  readonly #lock: DirLock;
  #loaded = false;
  #closed = false;
  #failure: HamokStorageError | undefined;
  #hardState: HardState = INITIAL_HARD_STATE;
  /** The stored snapshot; its `data` is empty unless {@linkcode #imageHeld} (between replay and load). */
  #snapshot: Snapshot | undefined;
  #imageHeld = false;
  /** Size of the stored snapshot's data, and where it starts in its file. */
  #snapshotSize = 0;
  #snapshotDataAt = 0;
  /** Index of the entry before `#entries[0]` (the snapshot's index, or a reset's). */
  #base = 0;
  #baseTerm = 0;
  #entries: Entry[] = [];
  #seq = 0;
  #fd: number | undefined;
  #segmentSize = 0;
  #dirty = false;
  /**
   * A segment was created by {@linkcode #roll} and `wal/` has not been synced since: the next
   * {@linkcode #flush} syncs the directory too (its new entry is not durable with the file's
   * `fdatasync`), once per segment, not per batch.
   */
  #walDirUnsynced = false;
  #syncing: Promise<void> | undefined;
  /** Per WAL descriptor: fdatasyncs queued or running on it. */
  readonly #syncsOn = new Map<number, number>();
  /** WAL descriptors closed while a sync on them was pending: closed once the last one calls back. */
  readonly #closeWhenSynced = new Set<number>();
  /** The snapshot saves under way, chained in call order. */
  #saving: Promise<void> | undefined;
  /** The segment number a snapshot save created ahead of restarting the log in it. */
  #reservedSeq: number | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Deletes the old segments and snapshots in steps, in the background. */
  readonly #remover: FileRemover;

  /** Opens (or creates) the directory; see the class documentation. */
  constructor(options: FileRaftStorageOptions) {
    const { dataDir, peerId, clusterId } = options;
    if (typeof dataDir !== "string" || dataDir.length === 0) {
      throw new HamokConfigError("dataDir must be a non-empty string");
    }
    if (typeof peerId !== "string" || peerId.length === 0) throw new HamokConfigError("peerId must be set");
    const policy = options.sync ?? "always";
    if (policy !== "always" && policy !== "interval" && policy !== "never") {
      throw new HamokConfigError(
        `sync must be "always", "interval" or "never", got ${JSON.stringify(policy)}`,
      );
    }
    const intervalMs = options.syncIntervalMs ?? 100;
    if (!Number.isInteger(intervalMs) || intervalMs <= 0) {
      throw new HamokConfigError(`syncIntervalMs must be a positive integer, got ${intervalMs}`);
    }
    this.dataDir = dataDir;
    this.syncPolicy = policy;
    this.#fs = options.fs ?? NODE_FS;
    this.#remover = new FileRemover(this.#fs);
    this.#segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.#walDir = join(dataDir, "wal");
    this.#snapDir = join(dataDir, "snap");
    const fs = this.#fs;
    this.#io(dataDir, () => fs.mkdirSync(dataDir, { recursive: true }));
    this.#lock = this.#io(dataDir, () => lockDir(fs, dataDir));
    try {
      const metaPath = join(dataDir, "meta.json");
      // a discard interrupted by a crash or an I/O error: it is finished before anything else
      if (fs.existsSync(join(dataDir, DISCARD_MARKER))) this.#read(dataDir, () => this.#deleteMember());
      let meta: DirMeta;
      if (fs.existsSync(metaPath)) {
        meta = this.#readMeta(metaPath);
        this.created = false;
      } else {
        this.#refuseOrphanedData(metaPath);
        meta = { format: FORMAT, clusterId, memberId: `${peerId}/${randomTag()}`, loads: 0 };
        this.#io(dataDir, () => {
          fs.mkdirSync(this.#walDir, { recursive: true });
          fs.mkdirSync(this.#snapDir, { recursive: true });
          syncDir(fs, dataDir);
          syncDir(fs, dirname(resolve(dataDir))); // the directory's own entry, if it was just made
          writeFileAtomic(fs, dataDir, "meta.json", new TextEncoder().encode(JSON.stringify(meta) + "\n"));
        });
        this.created = true;
      }
      if (meta.clusterId !== clusterId) {
        throw new HamokStorageMismatchError(
          `data directory ${dataDir} belongs to cluster '${meta.clusterId}', not '${clusterId}'`,
          { path: dataDir, expected: clusterId, found: meta.clusterId },
        );
      }
      const slash = meta.memberId.lastIndexOf("/");
      const owner = slash < 0 ? meta.memberId : meta.memberId.slice(0, slash);
      if (owner !== peerId) {
        throw new HamokStorageMismatchError(
          `data directory ${dataDir} belongs to peer '${owner}', not '${peerId}'`,
          { path: dataDir, expected: peerId, found: owner },
        );
      }
      this.memberId = meta.memberId;
      this.#meta = meta;
    } catch (error) {
      this.#lock.release();
      throw error;
    }
    if (policy === "interval") {
      this.#timer = setInterval(() => void this.#flush().catch(() => {}), intervalMs);
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * Old segment and snapshot files still being deleted. A file the storage no longer needs is
   * renamed out of the log's view at once and then shrunk in 4 MiB steps before it is unlinked, so
   * that freeing its blocks does not hold up the log's syncs (see the README on durability).
   */
  get removalsPending(): number {
    return this.#remover.pending;
  }

  /**
   * How many times this member's directory was loaded before the latest {@linkcode load} (0 for the
   * first load of a new member; see {@linkcode RaftStorage.restarts}); `undefined` until a load
   * succeeded. Every load counts, a second one of this object too: it writes the next count to
   * `meta.json` atomically (temporary file, fsync, rename, directory fsync) before it resolves, so a
   * later load, in this process or after any crash, always gets a greater number (one may be
   * skipped, never repeated). A directory of an earlier version (no count in `meta.json`) counts
   * from 0.
   */
  get restarts(): number | undefined {
    return this.#restarts;
  }

  /** Index of the latest snapshot (0 without one). */
  get snapshotIndex(): number {
    return this.#snapshot?.meta.index ?? 0;
  }

  /** Index of the last stored entry. */
  get lastIndex(): number {
    return this.#base + this.#entries.length;
  }

  /** Number of WAL segment files. */
  get segmentCount(): number {
    return this.#segments().length;
  }

  /**
   * Replays the directory: the latest snapshot, then every segment in order. A torn record at the
   * end of the last segment (a crash during a write) is cut off; damage anywhere else throws
   * {@linkcode HamokStorageCorruptError} naming the file and offset.
   */
  load(): Promise<RaftPersistentState> {
    try {
      return Promise.resolve(this.loadSync());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The synchronous body of {@linkcode load} (counts as a load: see {@linkcode restarts}). */
  loadSync(): RaftPersistentState {
    this.#checkOpen();
    if (!this.#loaded) this.#replay();
    const stored = this.#snapshot;
    let state: RaftPersistentState;
    if (stored === undefined) state = { hardState: this.#hardState, entries: this.#entries.slice() };
    else {
      // the image goes to the caller and is not kept here (it is read from the file again if asked for)
      const path = snapshotPath(this.#snapDir, stored.meta.index);
      const snapshot = this.#imageHeld ? stored : this.#read(path, () => readSnapshotFile(this.#fs, path));
      this.#keepMetaOnly(snapshot);
      state = { hardState: this.#hardState, snapshot, entries: this.#entries.slice() };
    }
    this.#countLoad();
    return state;
  }

  /**
   * Makes this load's count durable, then exposes it: `meta.json` with `loads` one higher is
   * renamed into place and the directory synced first. A crash before that is done leaves the old
   * count, which nobody got (this load did not resolve); after it, the next load gets more. A
   * failure rejects the load (retryable) and hands out nothing.
   */
  #countLoad(): void {
    const restarts = this.#meta.loads ?? 0;
    const next: DirMeta = { ...this.#meta, loads: restarts + 1 };
    const fs = this.#fs;
    this.#read(
      join(this.dataDir, "meta.json"),
      () =>
        writeFileAtomic(fs, this.dataDir, "meta.json", new TextEncoder().encode(JSON.stringify(next) + "\n")),
    );
    this.#meta = next;
    this.#restarts = restarts;
  }

  /**
   * Reads `length` bytes of the data of the stored snapshot at `index` from `offset` (off the event
   * loop); `undefined` if it is not the stored snapshot any more, the range is outside its data, or
   * the read fails (see {@linkcode RaftStorage.readSnapshot}).
   */
  async readSnapshot(index: number, offset: number, length: number): Promise<Uint8Array | undefined> {
    const stored = this.#snapshot;
    if (this.#closed || stored === undefined || stored.meta.index !== index) return undefined;
    if (offset < 0 || length < 0 || offset + length > this.#snapshotSize) return undefined;
    const fs = this.#fs;
    let fd: number;
    try {
      fd = await fsAsync.open(fs, snapshotPath(this.#snapDir, index), "r");
    } catch {
      return undefined; // replaced by a newer snapshot meanwhile
    }
    try {
      const bytes = await fsAsync.readAt(fs, fd, length, this.#snapshotDataAt + offset);
      return bytes.length === length ? bytes : undefined;
    } catch {
      return undefined;
    } finally {
      fs.close(fd, () => {});
    }
  }

  /** Keeps the meta, digest and size of the stored snapshot `snapshot`, not its bytes. */
  #keepMetaOnly(snapshot: Snapshot): void {
    this.#snapshotSize = snapshot.data.byteLength;
    this.#snapshotDataAt = snapshotDataOffset(snapshot.meta);
    this.#snapshot = snapshot.digest === undefined
      ? { meta: snapshot.meta, data: NO_DATA }
      : { meta: snapshot.meta, data: NO_DATA, digest: snapshot.digest };
    this.#imageHeld = false;
  }

  /** Persists term, vote and commit (written at once; durable after {@linkcode sync}). */
  saveHardState(hardState: HardState): void {
    this.#checkWritable();
    this.#hardState = hardState;
    this.#write(frameRecord(RecordType.hardState, encodeHardState(hardState)));
  }

  /** Appends entries, replacing any stored suffix from `entries[0].index` (durable after {@linkcode sync}). */
  append(entries: readonly Entry[]): void {
    this.#checkWritable();
    if (entries.length === 0) return;
    let from = 0;
    while (from < entries.length && entries[from]!.index <= this.#base) from++; // from < length
    const firstEntry = entries[from];
    if (firstEntry === undefined) return;
    const first = firstEntry.index;
    if (first > this.lastIndex + 1) {
      throw new HamokStorageError(
        `append at ${first} leaves a gap after the last stored index ${this.lastIndex}`,
        { path: this.dataDir },
      );
    }
    const batch = from === 0 ? entries : entries.slice(from);
    this.#write(frameRecord(RecordType.entries, encodeCbor(packLogEntries(batch))));
    this.#entries.length = first - this.#base - 1;
    for (let i = 0; i < batch.length; i++) this.#entries.push(batch[i]!); // i < length
  }

  /**
   * Makes what was written durable per the sync policy: `"always"` syncs the segment (one
   * `fdatasync`, off the event loop); the other policies return at once.
   */
  sync(): Promise<void> | void {
    if (this.syncPolicy !== "always" || !this.#dirty) return;
    return this.#flush();
  }

  /**
   * Persists a snapshot without holding the event loop: the file is written with asynchronous
   * writes, synced and renamed into place (see `writeSnapshotFileAsync`); only then is the log
   * restarted after it in a new segment (keeping the entries after it if the stored entry at its
   * index has its term, see {@linkcode RaftStorage.saveSnapshot}) and are the segments and
   * snapshots it covers deleted. Resolves once all that is durable. Appends and hard states may be
   * written while it runs (a local compaction does not hold up the log): they go to the current
   * segment and the entries after the snapshot's index are carried into the new one. Snapshots are
   * saved one after the other in call order; one not newer than the stored one is ignored.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    try {
      this.#checkWritable();
      if (!this.#loaded) this.#replay();
    } catch (error) {
      return Promise.reject(error);
    }
    const previous = this.#saving ?? Promise.resolve();
    const run = previous.then(() => this.#saveSnapshotNow(snapshot));
    this.#saving = run;
    void run.then(() => {
      if (this.#saving === run) this.#saving = undefined;
    }, () => {
      if (this.#saving === run) this.#saving = undefined;
    });
    return run;
  }

  async #saveSnapshotNow(snapshot: Snapshot): Promise<void> {
    this.#checkWritable();
    const { index } = snapshot.meta;
    if (this.#snapshot !== undefined && index <= this.snapshotIndex) return;
    const fs = this.#fs;
    let written: boolean;
    try {
      written = await writeSnapshotFileAsync(fs, this.#snapDir, snapshot, () => this.#closed);
    } catch (error) {
      throw this.#failure ?? this.#fail(this.#snapDir, error);
    }
    if (!written || this.#closed) return;
    try {
      await this.#restartLog(snapshot);
    } catch (error) {
      if (error instanceof HamokClosedError) throw error;
      if (error instanceof HamokStorageError && !isIoFailure(error)) throw error;
      throw this.#failure ?? this.#fail(this.#walDir, error);
    }
  }

  /**
   * Restarts the log after a durable snapshot file, holding the event loop only to write the new
   * segment's few records: (1) the new segment file is created and the directory synced, (2) the
   * current segment is synced until nothing written to it is left unsynced: for a moment with no
   * sync running and nothing written since the last, waiting at most {@linkcode SWITCH_WAIT_SYNCS}
   * syncs (a writer that writes its next batch as soon as each sync resolves, as the Raft driver
   * does under load, never leaves one; the save then syncs the current segment itself, once, at the
   * switch), (3) synchronously: the reset, hard state and kept entries go into the new segment,
   * which takes the later writes, (4) the new segment is synced (one sync, chained after the
   * driver's), (5) the old segments are deleted,
   * newest first (a crash half-way leaves a prefix of the old log, which replays up to the reset),
   * then the older snapshots, each directory synced. A crash anywhere leaves a directory that loads
   * (the replay takes a snapshot file that is newer than the log's last reset).
   */
  async #restartLog(snapshot: Snapshot): Promise<void> {
    const fs = this.#fs;
    const { index, term } = snapshot.meta;
    this.#checkWritable();
    // the next segment number is reserved (a segment that fills up meanwhile rolls past it)
    const seq = this.#seq + 1;
    this.#reservedSeq = seq;
    const reserved = join(this.#walDir, segmentName(seq));
    const fd = await fsAsync.open(fs, reserved, "a");
    const giveUp = () => {
      this.#reservedSeq = undefined;
      fs.close(fd, () => {});
    };
    let syncAtSwitch = false;
    try {
      await syncDirAsync(fs, this.#walDir);
      // nothing of the current segment is left unsynced once the new one takes over
      for (let round = 0;; round++) {
        if (this.#closed) return giveUp();
        this.#checkWritable();
        if (this.syncPolicy === "never" || this.#fd === undefined) break;
        if (this.#syncing === undefined && !this.#dirty) break;
        if (round === SWITCH_WAIT_SYNCS) {
          syncAtSwitch = true; // a busy writer: no quiet moment comes; the switch syncs it
          break;
        }
        await this.#flush().catch(() => {}); // a failure stops the storage: seen above
      }
    } catch (error) {
      giveUp();
      throw error;
    }
    if (this.#seq !== seq - 1) {
      // the log rolled past the reserved number: it is not the newest segment any more; again
      giveUp();
      fs.unlinkSync(reserved);
      return this.#restartLog(snapshot);
    }
    // from here to the switch synchronous: no write comes in between
    try {
      this.#checkWritable();
      const current = this.#fd;
      if (syncAtSwitch && current !== undefined) {
        // everything written to the current segment durable before the new one holds anything (a
        // sync running on it may not cover the last writes; it resolves on its own)
        this.#io(join(this.#walDir, segmentName(this.#seq)), () => fs.fsyncSync(current));
      }
    } catch (error) {
      giveUp();
      throw error;
    }
    this.#reservedSeq = undefined;
    const position = index - this.#base - 1;
    const stored = position >= 0 && position < this.#entries.length ? this.#entries[position] : undefined;
    const same = stored !== undefined
      ? stored.term === term
      : position === -1 && index === this.#base && term === this.#baseTerm;
    const kept = same ? this.#entries.slice(position + 1) : [];
    const old = this.#segments().filter((s) => s < seq);
    const records = [
      frameRecord(RecordType.reset, encodeCbor([index, term])),
      frameRecord(RecordType.hardState, encodeHardState(this.#hardState)),
      ...(kept.length > 0 ? [frameRecord(RecordType.entries, encodeCbor(packLogEntries(kept)))] : []),
    ];
    let size = 0;
    for (const r of records) size += r.length;
    const all = new Uint8Array(size);
    let at = 0;
    for (const r of records) {
      all.set(r, at);
      at += r.length;
    }
    const path = join(this.#walDir, segmentName(seq));
    this.#io(path, () => writeAll(fs, fd, all));
    const previousFd = this.#fd;
    this.#fd = fd;
    this.#seq = seq;
    this.#segmentSize = size;
    this.#dirty = true;
    this.#keepMetaOnly(snapshot);
    this.#base = index;
    this.#baseTerm = term;
    this.#entries = kept;
    if (previousFd !== undefined) this.#io(path, () => this.#closeFd(previousFd));
    // the new segment durable, then the old log goes: one sync issued now covers its records (it
    // runs after the syncs already queued; the driver's later ones need not be waited for)
    if (this.syncPolicy !== "never") await this.#flush();
    else await fsAsync.fsync(fs, fd);
    if (this.#closed) return;
    // out of the log's view at once (a rename frees nothing); the blocks are freed in steps later
    for (let i = old.length - 1; i >= 0; i--) this.#remove(join(this.#walDir, segmentName(old[i]!))); // i < length
    await syncDirAsync(fs, this.#walDir);
    for (const i of listSnapshots(fs, this.#snapDir)) {
      if (i < index) this.#remove(snapshotPath(this.#snapDir, i));
    }
    await syncDirAsync(fs, this.#snapDir);
  }

  /** Renames `path` to `<path>.del` and hands it to the remover. */
  #remove(path: string): void {
    const trash = path + REMOVED_SUFFIX;
    this.#fs.renameSync(path, trash);
    this.#remover.enqueue(trash);
  }

  /**
   * Syncs what is pending (unless the policy is `"never"`), closes the segment and releases the
   * lock, synchronously: the directory can be opened again right after.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
    this.#remover.close();
    try {
      if (
        this.#fd !== undefined && this.#failure === undefined && this.syncPolicy !== "never" && this.#dirty
      ) {
        this.#fs.fsyncSync(this.#fd);
        if (this.#walDirUnsynced) syncDir(this.#fs, this.#walDir);
      }
    } catch {
      // the directory stays consistent up to the last sync
    } finally {
      if (this.#fd !== undefined) {
        try {
          this.#closeFd(this.#fd);
        } catch {
          // best effort
        }
      }
      this.#fd = undefined;
      this.#lock.release();
    }
  }

  /**
   * Closes the storage and deletes the member's data and identity (log, snapshots, `meta.json`),
   * so that the next storage opened on the directory is a new member. For a peer that left the
   * cluster (its member id is tombstoned) and joins again.
   *
   * The discard is decided first: a `DISCARDED` marker is written atomically and synced, then the
   * log and snapshots are deleted, then `meta.json`, then the marker (each directory synced). A
   * crash or an I/O error before the marker is durable leaves the member as it was; after it, the
   * next open finishes the deletion before it makes the new member. So the new member never starts
   * with the old member's term, vote or log. An I/O failure throws {@linkcode HamokStorageError}
   * (the lock is released either way).
   */
  discard(): void {
    const fs = this.#fs;
    if (!this.#closed) {
      if (this.#timer !== undefined) clearInterval(this.#timer);
      this.#timer = undefined;
      this.#closed = true;
      this.#remover.close();
      if (this.#fd !== undefined) {
        try {
          this.#closeFd(this.#fd);
        } catch {
          // best effort
        }
      }
      this.#fd = undefined;
    }
    try {
      const marker = new TextEncoder().encode(`${this.memberId}\n`);
      this.#read(
        join(this.dataDir, DISCARD_MARKER),
        () => writeFileAtomic(fs, this.dataDir, DISCARD_MARKER, marker),
      );
      this.#read(this.dataDir, () => this.#deleteMember());
    } finally {
      this.#lock.release();
    }
  }

  /**
   * The deletion of a discard (or the rest of an interrupted one): the files of `wal/` and `snap/`,
   * then `meta.json`, then the {@linkcode DISCARD_MARKER}, each directory synced, the marker's
   * removal too (a marker that came back after a power loss would delete the next member's data).
   */
  #deleteMember(): void {
    const fs = this.#fs;
    for (const dir of [this.#walDir, this.#snapDir]) {
      if (!fs.existsSync(dir)) continue;
      for (const name of fs.readdirSync(dir)) fs.unlinkSync(join(dir, name));
      syncDir(fs, dir);
    }
    const meta = join(this.dataDir, "meta.json");
    if (fs.existsSync(meta)) fs.unlinkSync(meta);
    syncDir(fs, this.dataDir);
    fs.unlinkSync(join(this.dataDir, DISCARD_MARKER));
    syncDir(fs, this.dataDir);
  }

  /**
   * A directory without `meta.json` is a new member only if it holds no log and no snapshot:
   * otherwise its identity was lost (a discard by an earlier version interrupted after it deleted
   * `meta.json`, or damage) and its state belongs to a member id nobody knows any more; it must not
   * be loaded into a new one. Nothing is deleted: the operator decides.
   */
  #refuseOrphanedData(metaPath: string): void {
    const fs = this.#fs;
    const held = (dir: string, isData: (name: string) => boolean) =>
      this.#read(dir, () => fs.existsSync(dir) && fs.readdirSync(dir).some(isData));
    if (
      held(this.#walDir, (name) => parseSegmentName(name) !== undefined) ||
      held(this.#snapDir, (name) => name.endsWith(".snap"))
    ) {
      throw new HamokStorageCorruptError(
        `meta.json is missing but ${this.dataDir} holds a log or snapshots of a member whose identity ` +
          `is lost (a discard interrupted in an earlier version, or damage); nothing was loaded: remove ` +
          `the directory to start this peer as a new member`,
        { path: metaPath, offset: 0 },
      );
    }
  }

  // ------------------------------------------------------------------ internals

  #readMeta(path: string): DirMeta {
    // a read failure (EACCES, EIO) is an I/O error, not damage: only bytes that do not parse are
    const bytes = this.#read(path, () => this.#fs.readFileSync(path));
    let meta: DirMeta;
    try {
      meta = JSON.parse(new TextDecoder().decode(bytes)) as DirMeta;
    } catch (error) {
      throw new HamokStorageCorruptError("meta.json does not parse", { path, offset: 0 }, { cause: error });
    }
    if (
      meta === null || typeof meta !== "object" || typeof meta.memberId !== "string" ||
      (meta.loads !== undefined && (!Number.isSafeInteger(meta.loads) || meta.loads < 0))
    ) {
      throw new HamokStorageCorruptError("meta.json has the wrong shape", { path, offset: 0 });
    }
    if (meta.format !== FORMAT) {
      throw new HamokStorageMismatchError(`unsupported data directory format ${meta.format}`, {
        path,
        expected: String(FORMAT),
        found: String(meta.format),
      });
    }
    return meta;
  }

  #segments(): number[] {
    const out: number[] = [];
    for (const name of this.#fs.readdirSync(this.#walDir)) {
      const seq = parseSegmentName(name);
      if (seq !== undefined) out.push(seq);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * Replays the directory. Every I/O failure is a {@linkcode HamokStorageError} naming the path
   * (with the OS error as `cause`), damaged bytes a {@linkcode HamokStorageCorruptError}; neither
   * stops the storage, so `load()` may be called again.
   */
  #replay(): void {
    const fs = this.#fs;
    const walDir = this.#walDir;
    const snapDir = this.#snapDir;
    this.#read(walDir, () => fs.mkdirSync(walDir, { recursive: true }));
    this.#read(snapDir, () => fs.mkdirSync(snapDir, { recursive: true }));
    this.#read(snapDir, () => {
      for (const name of fs.readdirSync(snapDir)) {
        if (name.endsWith(".tmp")) fs.unlinkSync(join(snapDir, name)); // an unfinished snapshot
        else if (name.endsWith(REMOVED_SUFFIX)) this.#remover.enqueue(join(snapDir, name)); // left by a crash
      }
    });
    const segments = this.#read(walDir, () => {
      for (const name of fs.readdirSync(walDir)) {
        if (name.endsWith(REMOVED_SUFFIX)) this.#remover.enqueue(join(walDir, name));
      }
      return this.#segments();
    });
    const snapshots = this.#read(snapDir, () => listSnapshots(fs, snapDir));
    const newest = snapshots[snapshots.length - 1];
    const snapshotFile = newest === undefined ? undefined : snapshotPath(snapDir, newest);
    const snapshot = snapshotFile === undefined
      ? undefined
      : this.#read(snapshotFile, () => readSnapshotFile(fs, snapshotFile));
    const segmentPath = (s: number) => join(walDir, segmentName(segments[s]!)); // s < length
    /** True if every segment after the `s`-th is empty. */
    const onlyEmptyAfter = (s: number) => {
      for (let later = s + 1; later < segments.length; later++) {
        const path = segmentPath(later);
        if (this.#read(path, () => fs.readFileSync(path)).length > 0) return false;
      }
      return true;
    };
    let hardState = INITIAL_HARD_STATE;
    let base = 0;
    let baseTerm = 0;
    let entries: Entry[] = [];
    for (let s = 0; s < segments.length; s++) {
      const path = segmentPath(s);
      const bytes = this.#read(path, () => fs.readFileSync(path));
      const { records, stop } = scanRecords(bytes);
      if (stop !== undefined) {
        // A torn tail (a crash during the last write) is cut off in the last segment, and in a
        // segment followed only by empty ones: a snapshot save creates the next segment (empty,
        // its directory entry synced) before the current one's last writes are synced, and only
        // writes into it once they are. A torn record was never synced, so never acknowledged.
        if (!stop.torn || (s !== segments.length - 1 && !onlyEmptyAfter(s))) {
          throw new HamokStorageCorruptError(`damaged WAL record: ${stop.reason}`, {
            path,
            offset: stop.offset,
          });
        }
        this.#read(path, () => {
          const fd = fs.openSync(path, "r+");
          try {
            fs.ftruncateSync(fd, stop.offset);
            fs.fsyncSync(fd);
          } finally {
            fs.closeSync(fd);
          }
        });
      }
      for (const record of records) {
        let value: unknown;
        try {
          value = decodeCbor(record.payload, true);
          switch (record.type) {
            case RecordType.hardState:
              hardState = decodeHardState(value);
              break;
            case RecordType.reset: {
              const [i, t] = value as [number, number];
              if (!Number.isInteger(i) || !Number.isInteger(t)) throw new TypeError("bad reset record");
              // Replayed like a snapshot file without its reset (below): the entries after `i` are
              // kept if the replayed entry at `i` has term `t`, and dropped otherwise. This is the
              // decision #restartLog made when it wrote the record: it kept exactly the entries
              // after `i` when its stored entry at `i` had term `t`, and the segments before the
              // reset replay to that very log (they were synced before the switch, and a crash
              // while deleting them leaves a prefix of them, which yields a prefix of the kept
              // entries). So if the rest of the restart segment (the kept entries) is torn off by a
              // crash or a short write, the synced entries after `i` still come from the old
              // segments instead of being lost; if it is complete, its entries record replaces
              // them with the same entries. An installed snapshot whose term at `i` does not match
              // (or that lies beyond the log) drops the log, as it did at run time.
              const position = i - base - 1;
              const stored = position >= 0 && position < entries.length ? entries[position] : undefined;
              const same = stored !== undefined
                ? stored.term === t
                : position === -1 && i === base && t === baseTerm;
              entries = same ? entries.slice(position + 1) : [];
              base = i;
              baseTerm = t;
              break;
            }
            case RecordType.entries: {
              const batch = unpackLogEntries(value);
              let from = 0;
              while (from < batch.length && batch[from]!.index <= base) from++; // from < length
              const firstEntry = batch[from];
              if (firstEntry === undefined) break;
              const first = firstEntry.index;
              const last = base + entries.length;
              if (first > last + 1) throw new TypeError(`entries at ${first} leave a gap after ${last}`);
              entries.length = first - base - 1;
              for (let i = from; i < batch.length; i++) entries.push(batch[i]!); // i < length
              break;
            }
            default:
              throw new TypeError(`unknown record type ${record.type}`);
          }
        } catch (error) {
          throw new HamokStorageCorruptError(
            `WAL record does not decode: ${(error as Error).message}`,
            { path, offset: record.offset },
            { cause: error },
          );
        }
      }
    }
    if (snapshot !== undefined) {
      const { index, term } = snapshot.meta;
      if (index > base) {
        // the snapshot file was renamed into place but its reset record did not make it
        const position = index - base - 1;
        const stored = position < entries.length ? entries[position] : undefined;
        entries = stored !== undefined && stored.term === term ? entries.slice(position + 1) : [];
        base = index;
        baseTerm = term;
      } else if (index < base) {
        throw new HamokStorageCorruptError(`the log restarts after index ${base} but no snapshot covers it`, {
          path: this.#snapDir,
          offset: 0,
        });
      }
    } else if (base > 0) {
      throw new HamokStorageCorruptError(`the log restarts after index ${base} but the snapshot is missing`, {
        path: this.#snapDir,
        offset: 0,
      });
    }
    this.#snapshot = snapshot;
    this.#imageHeld = snapshot !== undefined;
    this.#hardState = hardState;
    this.#base = base;
    this.#baseTerm = baseTerm;
    this.#entries = entries;
    this.#seq = segments[segments.length - 1] ?? 0;
    if (segments.length > 0) {
      const path = join(this.#walDir, segmentName(this.#seq));
      this.#segmentSize = this.#read(path, () => fs.readFileSync(path)).length;
      this.#fd = this.#read(path, () => fs.openSync(path, "a"));
    }
    this.#loaded = true;
  }

  /**
   * Starts the next segment (past a number a snapshot save reserved) with `record`; syncs the
   * previous one first (unless "never").
   */
  #roll(record: Uint8Array): void {
    const fs = this.#fs;
    const seq = this.#seq + 1 === this.#reservedSeq ? this.#seq + 2 : this.#seq + 1;
    const path = join(this.#walDir, segmentName(seq));
    this.#io(path, () => {
      if (this.#fd !== undefined) {
        if (this.syncPolicy !== "never") fs.fsyncSync(this.#fd);
        this.#closeFd(this.#fd);
        this.#fd = undefined;
      }
      const fd = fs.openSync(path, "a");
      this.#fd = fd;
      this.#seq = seq;
      this.#walDirUnsynced = true;
      writeAll(fs, fd, record);
      this.#segmentSize = record.length;
      this.#dirty = true;
    });
  }

  #write(record: Uint8Array): void {
    if (!this.#loaded) this.#replay();
    if (this.#fd === undefined || this.#segmentSize >= this.#segmentBytes) {
      this.#roll(frameRecord(RecordType.hardState, encodeHardState(this.#hardState)));
    }
    const fd = this.#fd!;
    this.#io(join(this.#walDir, segmentName(this.#seq)), () => writeAll(this.#fs, fd, record));
    this.#segmentSize += record.length;
    this.#dirty = true;
  }

  /** One fdatasync of the current segment; concurrent callers share the running one and chain. */
  #flush(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const fd = this.#fd;
    if (fd === undefined || !this.#dirty) return this.#syncing ?? Promise.resolve();
    const previous = this.#syncing ?? Promise.resolve();
    this.#dirty = false;
    const path = join(this.#walDir, segmentName(this.#seq));
    const syncDirToo = this.#walDirUnsynced;
    this.#walDirUnsynced = false;
    this.#syncsOn.set(fd, (this.#syncsOn.get(fd) ?? 0) + 1);
    const run = previous.then(() => {
      const data = new Promise<void>((resolve, reject) => {
        this.#fs.fdatasync(fd, (error) => {
          if (error === null || error === undefined) resolve();
          else reject(this.#fail(path, error));
        });
      });
      if (!syncDirToo) return data;
      // a new segment's directory entry, synced alongside its data (both before the batch resolves)
      const dir = syncDirAsync(this.#fs, this.#walDir).catch((error) => {
        throw this.#fail(this.#walDir, error);
      });
      return Promise.all([data, dir]).then(() => {});
    });
    this.#syncing = run;
    const settled = () => {
      if (this.#syncing === run) this.#syncing = undefined;
      this.#syncSettled(fd);
    };
    void run.then(settled, settled);
    return run;
  }

  /**
   * Closes a WAL descriptor, or, while an fdatasync on it is queued or running, once the last one
   * calls back: closed under a running sync, its number could be reused by the next open (the sync
   * would then hit another file) or the sync could fail with EBADF and stop the storage.
   */
  #closeFd(fd: number): void {
    if ((this.#syncsOn.get(fd) ?? 0) > 0) {
      this.#closeWhenSynced.add(fd);
      return;
    }
    this.#fs.closeSync(fd);
  }

  #syncSettled(fd: number): void {
    const left = (this.#syncsOn.get(fd) ?? 1) - 1;
    if (left > 0) {
      this.#syncsOn.set(fd, left);
      return;
    }
    this.#syncsOn.delete(fd);
    if (!this.#closeWhenSynced.delete(fd)) return;
    try {
      this.#fs.closeSync(fd);
    } catch {
      // best effort: the segment was synced or abandoned already
    }
  }

  /** I/O of the write path: a failure stops the storage (see {@linkcode #fail}). */
  #io<T>(path: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof HamokConfigError) throw error;
      if (error instanceof HamokStorageError && !isIoFailure(error)) throw error;
      throw this.#fail(path, error);
    }
  }

  /**
   * I/O of a load (and of a discard): a failure becomes a {@linkcode HamokStorageError} (see
   * {@linkcode storageError}) without stopping the storage; storage errors (corruption) pass through.
   */
  #read<T>(path: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof HamokStorageError) throw error;
      throw storageError(path, error);
    }
  }

  #fail(path: string, error: unknown): HamokStorageError {
    const failure = storageError(path, error);
    this.#failure ??= failure;
    return failure;
  }

  #checkOpen(): void {
    if (this.#closed) throw new HamokClosedError(`storage of member ${this.memberId} is closed`);
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#failure !== undefined) throw this.#failure;
  }
}

function encodeHardState(hardState: HardState): Uint8Array {
  return encodeCbor([hardState.term, hardState.vote ?? null, hardState.commit]);
}

function decodeHardState(value: unknown): HardState {
  const a = value as [number, string | null, number];
  if (!Array.isArray(a) || a.length !== 3 || !Number.isInteger(a[0]) || !Number.isInteger(a[2])) {
    throw new TypeError("bad hard state record");
  }
  if (a[1] !== null && typeof a[1] !== "string") throw new TypeError("bad hard state vote");
  return { term: a[0], vote: a[1] ?? undefined, commit: a[2] };
}
