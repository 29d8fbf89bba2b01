/**
 * The file-system seam of the file storage: the few `node:fs` functions it uses (so Deno, Bun and
 * Node all run it), replaceable in tests to inject failures such as a full disk.
 *
 * @module
 */

import * as nodeFs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { HamokStorageError, HamokStorageFullError } from "../errors.ts";

/**
 * The subset of `node:fs` the file storage calls. Pass a wrapper as
 * `FileRaftStorageOptions.fs` to inject failures.
 *
 * @example
 * ```ts
 * import * as fs from "node:fs";
 * import type { StorageFs } from "./storage_fs.ts";
 * const full: StorageFs = {
 *   ...fs,
 *   writeSync: () => {
 *     throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
 *   },
 * };
 * ```
 */
export interface StorageFs {
  /** `fs.openSync`. */
  openSync(path: string, flags: string): number;
  /** `fs.writeSync` of a whole buffer at the current position (returns bytes written). */
  writeSync(fd: number, buffer: Uint8Array): number;
  /** `fs.fdatasync` (callback form: runs off the event loop). */
  fdatasync(fd: number, callback: (error: Error | null) => void): void;
  /** `fs.fsyncSync`. */
  fsyncSync(fd: number): void;
  /** `fs.closeSync`. */
  closeSync(fd: number): void;
  /** `fs.ftruncateSync`. */
  ftruncateSync(fd: number, length: number): void;
  /** `fs.readFileSync` without encoding. */
  readFileSync(path: string): Uint8Array;
  /** `fs.renameSync`. */
  renameSync(from: string, to: string): void;
  /** `fs.unlinkSync`. */
  unlinkSync(path: string): void;
  /** `fs.readdirSync` (names). */
  readdirSync(path: string): string[];
  /** `fs.mkdirSync` with `{ recursive: true }`. */
  mkdirSync(path: string, options: { recursive: true }): unknown;
  /** `fs.existsSync`. */
  existsSync(path: string): boolean;
  /** `fs.open` (callback form: runs off the event loop). */
  open(path: string, flags: string, callback: (error: Error | null, fd: number) => void): void;
  /**
   * `fs.write` of `buffer[offset, offset + length)` at `position` (callback form: runs off the event
   * loop; the callback gets the bytes written).
   */
  write(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
    callback: (error: Error | null, written: number) => void,
  ): void;
  /** `fs.read` into `buffer[offset, offset + length)` from `position` (callback form; gets the bytes read). */
  read(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
    callback: (error: Error | null, bytesRead: number) => void,
  ): void;
  /** `fs.unlink` (callback form: freeing a large file's blocks can take tens of ms). */
  unlink(path: string, callback: (error: Error | null) => void): void;
  /** `fs.fsync` (callback form). */
  fsync(fd: number, callback: (error: Error | null) => void): void;
  /** `fs.close` (callback form). */
  close(fd: number, callback: (error: Error | null) => void): void;
  /**
   * `fs.ftruncate` (callback form). Optional: with it and {@linkcode StorageFs.fstat}, a large file
   * the storage deletes is shrunk step by step first (see `FileRaftStorage`); without them it is
   * deleted at once.
   */
  ftruncate?(fd: number, length: number, callback: (error: Error | null) => void): void;
  /** `fs.fstat` (callback form; only `size` is read). Optional, see {@linkcode StorageFs.ftruncate}. */
  fstat?(fd: number, callback: (error: Error | null, stats: { size: number }) => void): void;
  /**
   * `fs.linkSync` (fails with `EEXIST` if `newPath` exists). Optional: the directory lock is then
   * created atomically with its content (written to a temporary file and linked into place);
   * without it the lock file is created with `O_EXCL` and written after.
   */
  linkSync?(existingPath: string, newPath: string): void;
  /** `fs.realpathSync`. Optional: the directory lock resolves symbolic links with it. */
  realpathSync?(path: string): string;
  /** `fs.statSync` (only `mtimeMs` is read). Optional: the directory lock tells a fresh lock file from a stale one by it. */
  statSync?(path: string): { mtimeMs: number };
}

/**
 * The real file system.
 *
 * @example
 * ```ts
 * import { NODE_FS } from "./storage_fs.ts";
 * NODE_FS.existsSync("/tmp"); // true
 * ```
 */
export const NODE_FS: StorageFs = {
  openSync: (path, flags) => nodeFs.openSync(path, flags),
  writeSync: (fd, buffer) => nodeFs.writeSync(fd, buffer),
  fdatasync: (fd, callback) => nodeFs.fdatasync(fd, callback),
  fsyncSync: (fd) => nodeFs.fsyncSync(fd),
  closeSync: (fd) => nodeFs.closeSync(fd),
  ftruncateSync: (fd, length) => nodeFs.ftruncateSync(fd, length),
  readFileSync: (path) => nodeFs.readFileSync(path),
  renameSync: (from, to) => nodeFs.renameSync(from, to),
  unlinkSync: (path) => nodeFs.unlinkSync(path),
  readdirSync: (path) => nodeFs.readdirSync(path),
  mkdirSync: (path, options) => nodeFs.mkdirSync(path, options),
  existsSync: (path) => nodeFs.existsSync(path),
  open: (path, flags, callback) => nodeFs.open(path, flags, callback),
  write: (fd, buffer, offset, length, position, callback) =>
    nodeFs.write(fd, buffer, offset, length, position, callback),
  read: (fd, buffer, offset, length, position, callback) =>
    nodeFs.read(fd, buffer, offset, length, position, callback),
  unlink: (path, callback) => nodeFs.unlink(path, callback),
  fsync: (fd, callback) => nodeFs.fsync(fd, callback),
  close: (fd, callback) => nodeFs.close(fd, callback),
  ftruncate: (fd, length, callback) => nodeFs.ftruncate(fd, length, callback),
  fstat: (fd, callback) => nodeFs.fstat(fd, callback),
  linkSync: (existingPath, newPath) => nodeFs.linkSync(existingPath, newPath),
  realpathSync: (path) => nodeFs.realpathSync(path),
  statSync: (path) => nodeFs.statSync(path),
};

/** Writes all of `buffer` (a short write is retried from where it stopped). */
export function writeAll(fs: StorageFs, fd: number, buffer: Uint8Array): void {
  let offset = 0;
  while (offset < buffer.length) {
    const written = fs.writeSync(fd, offset === 0 ? buffer : buffer.subarray(offset));
    if (written <= 0) throw new Error("write returned 0 bytes");
    offset += written;
  }
}

/**
 * An I/O failure on `path` as a typed error: `ENOSPC` as {@linkcode HamokStorageFullError}, any
 * other as {@linkcode HamokStorageError}, the OS error as `cause`; a storage error passes as it is.
 */
export function storageError(path: string, error: unknown): HamokStorageError {
  if (error instanceof HamokStorageError) return error;
  const code = (error as { code?: string } | null)?.code;
  return code === "ENOSPC"
    ? new HamokStorageFullError(`no space left on the device of ${path}`, { path }, { cause: error })
    : new HamokStorageError(`I/O error on ${path}: ${(error as Error)?.message ?? String(error)}`, { path }, {
      cause: error,
    });
}

/**
 * Errors opening a directory that mean "a directory cannot be opened to be synced here", not a
 * failure: `EISDIR` (Windows' answer to opening a directory as a file) and `EINVAL`, and on Windows
 * also `EPERM`/`EACCES` (it has no directory fsync; its file system journals the metadata).
 */
function cannotOpenDirHere(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  if (code === "EISDIR" || code === "EINVAL") return true;
  return process.platform === "win32" && (code === "EPERM" || code === "EACCES");
}

/** Errors of a directory's fsync that mean "directories cannot be synced here" (not a failure). */
function cannotSyncDirHere(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === "EISDIR" || code === "EINVAL" || code === "EBADF" || code === "EPERM";
}

/**
 * Syncs a directory (so renames and new files in it survive a power loss); a no-op only where
 * directories cannot be synced (see above). Any other failure, to open the directory too (`EMFILE`,
 * `EACCES`, `ENOENT`...), throws {@linkcode HamokStorageError} naming `dir`: the barrier did not
 * happen, so what depends on it is not durable.
 */
export function syncDir(fs: StorageFs, dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, "r");
  } catch (error) {
    if (cannotOpenDirHere(error)) return;
    throw storageError(dir, error);
  }
  try {
    fs.fsyncSync(fd);
  } catch (error) {
    if (!cannotSyncDirHere(error)) throw storageError(dir, error);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `data` to a new (or emptied) file at `path` and fsyncs it before closing it. */
export function writeFileSynced(fs: StorageFs, path: string, data: Uint8Array): void {
  const fd = fs.openSync(path, "w");
  try {
    writeAll(fs, fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `data` to `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory. */
export function writeFileAtomic(fs: StorageFs, dir: string, name: string, data: Uint8Array): void {
  const tmp = join(dir, `${name}.tmp`);
  writeFileSynced(fs, tmp, data);
  fs.renameSync(tmp, join(dir, name));
  syncDir(fs, dir);
}

/** Promise forms of the callback functions of a {@linkcode StorageFs} (all run off the event loop). */
export const fsAsync = {
  /** Opens `path`. */
  open(fs: StorageFs, path: string, flags: string): Promise<number> {
    return new Promise((resolve, reject) =>
      fs.open(path, flags, (error, fd) => error === null || error === undefined ? resolve(fd) : reject(error))
    );
  },
  /** Writes all of `buffer[offset, offset + length)` at `position` (short writes continue). */
  async writeAt(fs: StorageFs, fd: number, buffer: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const written = await new Promise<number>((resolve, reject) =>
        fs.write(
          fd,
          buffer,
          done,
          buffer.length - done,
          position + done,
          (error, n) => error === null || error === undefined ? resolve(n) : reject(error),
        )
      );
      if (written <= 0) throw new Error("write returned 0 bytes");
      done += written;
    }
  },
  /** Reads `length` bytes from `position` (fewer only at the end of the file). */
  async readAt(fs: StorageFs, fd: number, length: number, position: number): Promise<Uint8Array> {
    const buffer = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.read(
          fd,
          buffer,
          done,
          length - done,
          position + done,
          (error, bytesRead) => error === null || error === undefined ? resolve(bytesRead) : reject(error),
        )
      );
      if (n <= 0) return buffer.subarray(0, done);
      done += n;
    }
    return buffer;
  },
  /** Deletes `path`. */
  unlink(fs: StorageFs, path: string): Promise<void> {
    return new Promise((resolve, reject) =>
      fs.unlink(path, (error) => error === null || error === undefined ? resolve() : reject(error))
    );
  },
  /** `fsync` of `fd`. */
  fsync(fs: StorageFs, fd: number): Promise<void> {
    return new Promise((resolve, reject) =>
      fs.fsync(fd, (error) => error === null || error === undefined ? resolve() : reject(error))
    );
  },
  /** Closes `fd`. */
  close(fs: StorageFs, fd: number): Promise<void> {
    return new Promise((resolve, reject) =>
      fs.close(fd, (error) => error === null || error === undefined ? resolve() : reject(error))
    );
  },
};

/** {@linkcode syncDir} with the directory's fsync off the event loop (the same errors). */
export async function syncDirAsync(fs: StorageFs, dir: string): Promise<void> {
  let fd: number;
  try {
    fd = fs.openSync(dir, "r");
  } catch (error) {
    if (cannotOpenDirHere(error)) return;
    throw storageError(dir, error);
  }
  try {
    await fsAsync.fsync(fs, fd);
  } catch (error) {
    if (!cannotSyncDirHere(error)) throw storageError(dir, error);
  } finally {
    fs.closeSync(fd);
  }
}
