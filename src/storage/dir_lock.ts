/**
 * The lock file of a data directory: `LOCK` holds the PID of the process using the directory. A
 * lock of a process that no longer runs (a crash) is taken over; a live one is refused.
 *
 * @module
 */

import process from "node:process";
import { join } from "node:path";
import { HamokStorageLockedError } from "../errors.ts";
import { type StorageFs, syncDir, writeAll } from "./storage_fs.ts";

/** Directories locked by this process (another storage on the same directory is refused too). */
const lockedHere = new Set<string>();

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/** A held directory lock. */
export interface DirLock {
  /** Releases the lock (removes the file). Idempotent. */
  release(): void;
}

/** Takes the lock of `dir`; throws {@linkcode HamokStorageLockedError} if a live process holds it. */
export function lockDir(fs: StorageFs, dir: string): DirLock {
  const path = join(dir, "LOCK");
  const key = dir;
  if (lockedHere.has(key)) {
    throw new HamokStorageLockedError(`data directory ${dir} is already open in this process`, {
      path: dir,
      pid: process.pid,
    });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(path, "wx");
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error;
      let holder = NaN;
      try {
        holder = Number(new TextDecoder().decode(fs.readFileSync(path)).trim());
      } catch {
        // unreadable: treat as stale
      }
      if (holder !== process.pid && alive(holder)) {
        throw new HamokStorageLockedError(`data directory ${dir} is in use by process ${holder}`, {
          path: dir,
          pid: holder,
        });
      }
      try {
        fs.unlinkSync(path); // a crashed holder's lock
      } catch {
        // someone else took it over; the next open decides
      }
      continue;
    }
    try {
      writeAll(fs, fd, new TextEncoder().encode(`${process.pid}\n`));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    syncDir(fs, dir);
    lockedHere.add(key);
    let released = false;
    return {
      release(): void {
        if (released) return;
        released = true;
        lockedHere.delete(key);
        try {
          fs.unlinkSync(path);
        } catch {
          // already gone
        }
      },
    };
  }
  throw new HamokStorageLockedError(`data directory ${dir} is being locked by another process`, {
    path: dir,
    pid: -1,
  });
}
