/**
 * Internal: deletion of the file storage's large files (old WAL segments and snapshots) without
 * stalling the disk for the log's syncs. Not part of the public API.
 *
 * @module
 */

import { fsAsync, type StorageFs } from "./storage_fs.ts";

/** What a large file is shrunk by per step before it is deleted. */
export const REMOVE_STEP_BYTES: number = 4 * 1024 * 1024;
/** The pause between two steps, in ms. */
export const REMOVE_PAUSE_MS = 10;
/** The suffix a file gets when it is handed over for removal (no segment or snapshot name ends so). */
export const REMOVED_SUFFIX = ".del";

/**
 * Removes files in the background, in the order given, one at a time: each is shrunk by
 * {@linkcode REMOVE_STEP_BYTES} per step (`ftruncate`, then `fsync`, then a pause of
 * {@linkcode REMOVE_PAUSE_MS}) and then unlinked.
 *
 * Why: on ext4 (and file systems like it) the blocks of a deleted file are freed, and with online
 * discard trimmed, inside the journal commit that the next `fdatasync` of any file waits for.
 * Unlinking a 48 MB snapshot file at once held every WAL sync of the machine for about 30 ms
 * (measured here: ext4 with `discard` on a virtio disk); in 4 MiB steps each sync waited at most
 * about 7 ms. The `fsync` per step puts each step's freed blocks in a commit of their own, so how
 * much a WAL sync can find in its commit does not depend on how often the log syncs.
 *
 * The caller renames a file to `<name>.del` (atomic, frees nothing) before handing it over, so a
 * crash at any point leaves the file out of the log's view; {@linkcode FileRemover.enqueue} is
 * also how leftover `.del` files are removed after a restart. Without `ftruncate` and `fstat` in
 * the file-system seam, files are unlinked at once. Errors are ignored (a file left behind is
 * removed at the next start); nothing more happens once {@linkcode FileRemover.close} is called.
 *
 * @example
 * ```ts ignore
 * const remover = new FileRemover(NODE_FS);
 * fs.renameSync(path, path + REMOVED_SUFFIX);
 * remover.enqueue(path + REMOVED_SUFFIX);
 * await remover.idle();
 * ```
 */
export class FileRemover {
  readonly #fs: StorageFs;
  readonly #queue: string[] = [];
  #running: Promise<void> | undefined;
  #closed = false;

  /** Creates a remover working through `fs`. */
  constructor(fs: StorageFs) {
    this.#fs = fs;
  }

  /** Files queued or being removed. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Queues `path` for removal (ignored once closed). */
  enqueue(path: string): void {
    if (this.#closed) return;
    this.#queue.push(path);
    this.#running ??= this.#run();
  }

  /** Resolves once nothing is queued (or the remover closed). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** Stops after the current step; what is left stays on disk (a later start removes it). */
  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
  }

  async #run(): Promise<void> {
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const path = this.#queue[0]!; // length > 0
        try {
          await this.#remove(path);
        } catch {
          // best effort: a file left behind is queued again at the next start
        }
        if (!this.#closed) this.#queue.shift();
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #remove(path: string): Promise<void> {
    const fs = this.#fs;
    const { ftruncate, fstat } = fs;
    if (ftruncate !== undefined && fstat !== undefined) {
      const fd = await fsAsync.open(fs, path, "r+");
      try {
        let size = await new Promise<number>((resolve, reject) =>
          fstat.call(fs, fd, (error, stats) => error ? reject(error) : resolve(stats.size))
        );
        while (size > REMOVE_STEP_BYTES && !this.#closed) {
          size -= REMOVE_STEP_BYTES;
          await new Promise<void>((resolve, reject) =>
            ftruncate.call(fs, fd, size, (error) => error ? reject(error) : resolve())
          );
          await fsAsync.fsync(fs, fd);
          await new Promise<void>((resolve) => setTimeout(resolve, REMOVE_PAUSE_MS));
        }
      } finally {
        fs.close(fd, () => {});
      }
      if (this.#closed) return;
    }
    await fsAsync.unlink(fs, path);
  }
}
