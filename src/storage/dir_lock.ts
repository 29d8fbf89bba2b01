/**
 * The lock file of a data directory: `LOCK` holds `<pid> <token>` of the process using the
 * directory (the token tells this process's own locks from those of an earlier process that had the
 * same PID). A lock of a process that no longer runs (a crash) is taken over; a live one is refused.
 *
 * The lock file appears with its content: it is written to a temporary file, synced and linked into
 * place (`link` fails if `LOCK` exists), so another process never sees a `LOCK` without a PID. On
 * a file system without hard links it is created with `O_EXCL` and written after; an empty or
 * partly written `LOCK` younger than {@linkcode FRESH_LOCK_MS} therefore counts as held.
 *
 * @module
 */

import process from "node:process";
import { join, resolve } from "node:path";
import { HamokStorageLockedError } from "../errors.ts";
import { type StorageFs, syncDir, writeAll, writeFileSynced } from "./storage_fs.ts";

/** An empty or unparsable `LOCK` younger than this (by its mtime) is taken to be in creation. */
export const FRESH_LOCK_MS = 10_000;

/** Directories locked by this process, by resolved path, with the token of their lock file. */
const lockedHere = new Map<string, string>();
/** Tokens of the lock files this process holds (a `LOCK` naming one is ours, whatever its path). */
const heldTokens = new Set<string>();

/** `link` errors that mean "no hard links on this file system": the lock falls back to `O_EXCL`. */
const NO_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EINVAL", "EMLINK"]);

const LEFTOVER = /^LOCK\.(\d+)\.[0-9a-f-]+\.(?:tmp|stale)$/;

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return codeOf(error) === "EPERM";
  }
}

/** The holder named by a lock file; `undefined` for an empty or partly written one. */
function parseLock(bytes: Uint8Array): { pid: number; token: string | undefined } | undefined {
  const text = new TextDecoder().decode(bytes);
  if (!text.endsWith("\n")) return undefined; // the newline is written last
  const [pidText, token] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, token };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The key of `dir` in {@linkcode lockedHere}: absolute, normalised, symbolic links resolved. */
function canonical(fs: StorageFs, dir: string): string {
  const absolute = resolve(dir);
  try {
    return fs.realpathSync?.(absolute) ?? absolute;
  } catch {
    return absolute;
  }
}

/** A held directory lock. */
export interface DirLock {
  /** Releases the lock (removes the file if it is still this lock's). Idempotent. */
  release(): void;
}

type Verdict =
  | { kind: "held"; pid: number }
  | { kind: "stale"; bytes: Uint8Array }
  | { kind: "gone" };

/**
 * Takes the lock of `dir`; throws {@linkcode HamokStorageLockedError} if a live process (or another
 * storage of this process, under any spelling of the path) holds it.
 */
export function lockDir(fs: StorageFs, dir: string): DirLock {
  const path = join(dir, "LOCK");
  const key = canonical(fs, dir);
  if (lockedHere.has(key)) {
    throw new HamokStorageLockedError(`data directory ${dir} is already open in this process`, {
      path: dir,
      pid: process.pid,
    });
  }
  const token = crypto.randomUUID();
  const content = new TextEncoder().encode(`${process.pid} ${token}\n`);
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createLock(fs, dir, path, token, content)) {
      try {
        syncDir(fs, dir);
      } catch (error) {
        // not durably held: the lock is given up again (typed error from syncDir)
        try {
          if (parseLock(fs.readFileSync(path))?.token === token) fs.unlinkSync(path);
        } catch {
          // taken over as stale by the next lock
        }
        throw error;
      }
      lockedHere.set(key, token);
      heldTokens.add(token);
      removeLeftovers(fs, dir);
      let released = false;
      return {
        release(): void {
          if (released) return;
          released = true;
          lockedHere.delete(key);
          heldTokens.delete(token);
          try {
            // only our own lock: never one another holder put there meanwhile
            if (parseLock(fs.readFileSync(path))?.token === token) fs.unlinkSync(path);
          } catch {
            // already gone
          }
        },
      };
    }
    const verdict = inspect(fs, path);
    if (verdict.kind === "held") {
      throw new HamokStorageLockedError(
        verdict.pid === process.pid
          ? `data directory ${dir} is already open in this process`
          : verdict.pid > 0
          ? `data directory ${dir} is in use by process ${verdict.pid}`
          : `data directory ${dir} is being locked by another process (or its LOCK file is damaged: ` +
            `remove it if no process uses the directory)`,
        { path: dir, pid: verdict.pid },
      );
    }
    if (verdict.kind === "stale") takeOver(fs, dir, path, token, verdict.bytes);
  }
  throw new HamokStorageLockedError(`data directory ${dir} is being locked by another process`, {
    path: dir,
    pid: -1,
  });
}

/** Creates `LOCK` with `content` at once; false if it exists. */
function createLock(fs: StorageFs, dir: string, path: string, token: string, content: Uint8Array): boolean {
  if (fs.linkSync !== undefined) {
    const tmp = join(dir, `LOCK.${process.pid}.${token}.tmp`);
    writeFileSynced(fs, tmp, content);
    let linked: boolean | undefined;
    try {
      fs.linkSync(tmp, path);
      linked = true;
    } catch (error) {
      const code = codeOf(error);
      if (code === "EEXIST") linked = false;
      else if (code === undefined || !NO_LINKS.has(code)) throw error;
    } finally {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // removed at the next lock
      }
    }
    if (linked !== undefined) return linked;
  }
  let fd: number;
  try {
    fd = fs.openSync(path, "wx");
  } catch (error) {
    if (codeOf(error) === "EEXIST") return false;
    throw error;
  }
  try {
    writeAll(fs, fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** Who holds an existing `LOCK`. */
function inspect(fs: StorageFs, path: string): Verdict {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return { kind: "gone" };
    throw error;
  }
  const holder = parseLock(bytes);
  if (holder === undefined) {
    // being created by a process on the O_EXCL path (its PID comes right after), or left by a crash
    let age: number | undefined;
    try {
      const stat = fs.statSync?.(path);
      if (stat !== undefined) age = Date.now() - stat.mtimeMs;
    } catch (error) {
      if (codeOf(error) === "ENOENT") return { kind: "gone" };
    }
    return age !== undefined && age >= FRESH_LOCK_MS ? { kind: "stale", bytes } : { kind: "held", pid: -1 };
  }
  if (holder.pid === process.pid) {
    // ours only if a live storage of this process holds it; else an earlier process with our PID
    // (a restarted container) left it
    return holder.token !== undefined && heldTokens.has(holder.token)
      ? { kind: "held", pid: holder.pid }
      : { kind: "stale", bytes };
  }
  return alive(holder.pid) ? { kind: "held", pid: holder.pid } : { kind: "stale", bytes };
}

/**
 * Removes the stale `LOCK` whose content was `stale`: it is renamed aside first (atomic, so of two
 * processes taking it over only one gets it) and removed only if it is still that stale lock; a
 * lock another process made in between is put back.
 */
function takeOver(fs: StorageFs, dir: string, path: string, token: string, stale: Uint8Array): void {
  const aside = join(dir, `LOCK.${process.pid}.${token}.stale`);
  try {
    fs.renameSync(path, aside);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return; // another process took it over first
    throw error;
  }
  let moved: Uint8Array | undefined;
  try {
    moved = fs.readFileSync(aside);
  } catch {
    moved = undefined;
  }
  if (moved === undefined || !sameBytes(moved, stale)) {
    // a live lock replaced the stale one between the read and the rename: back into place
    try {
      if (fs.linkSync !== undefined) fs.linkSync(aside, path);
      else if (!fs.existsSync(path)) fs.renameSync(aside, path);
    } catch {
      // a third process locked meanwhile: its lock stays
    }
  }
  try {
    fs.unlinkSync(aside);
  } catch {
    // renamed back into place
  }
}

/** Removes temporary and set-aside lock files of processes that no longer run. */
function removeLeftovers(fs: StorageFs, dir: string): void {
  try {
    for (const name of fs.readdirSync(dir)) {
      const match = LEFTOVER.exec(name);
      if (match === null) continue;
      const pid = Number(match[1]);
      if (pid === process.pid || alive(pid)) continue;
      fs.unlinkSync(join(dir, name));
    }
  } catch {
    // best effort: they are tiny
  }
}
