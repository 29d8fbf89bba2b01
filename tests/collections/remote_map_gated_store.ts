/**
 * A test view of one shared {@linkcode MemoryRemoteStore} (the "database") for one peer, with
 * switches to hold a write back, to hang after a write, or to fail writes.
 */

import type {
  HamokRemoteStore,
  HamokRemoteStoreBatch,
  HamokRemoteStoreMark,
  MemoryRemoteStore,
} from "../../src/collections/remote_store.ts";

/** A write held at the gate. */
export interface HeldWrite {
  /** The batch being written. */
  readonly batch: HamokRemoteStoreBatch<unknown, unknown>;
  /** Lets it go on to the database; resolves with what the database answered. */
  release(): Promise<boolean>;
}

export class GatedStore<K, V> implements HamokRemoteStore<K, V> {
  /** Writes this view attempted. */
  attempts = 0;
  /** While true, writes wait at the gate (see {@linkcode held}). */
  holdWrites = false;
  /** While true, writes reach the database but their answer never comes back. */
  hangAfterWrite = false;
  /** This many next writes throw before reaching the database. */
  failWrites = 0;
  /** Writes waiting at the gate. */
  readonly held: HeldWrite[] = [];
  private readonly hung: (() => void)[] = [];

  constructor(readonly db: MemoryRemoteStore<K, V>) {}

  readMark(): Promise<HamokRemoteStoreMark | undefined> {
    return this.db.readMark();
  }

  getMany(keys: readonly K[]): Promise<readonly (V | undefined)[]> {
    return this.db.getMany(keys);
  }

  size(): Promise<number> {
    return this.db.size();
  }

  entries(): AsyncIterable<readonly [K, V]> {
    return this.db.entries();
  }

  async write(batch: HamokRemoteStoreBatch<K, V>): Promise<boolean> {
    this.attempts++;
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new Error("the database is unavailable");
    }
    if (this.holdWrites) {
      // the database sees the write only when the test releases it; the writer then gets the answer
      return await new Promise<boolean>((resolve, reject) => {
        let result: Promise<boolean> | undefined;
        this.held.push({
          batch: batch as HamokRemoteStoreBatch<unknown, unknown>,
          release: () => {
            result ??= this.db.write(batch);
            result.then(resolve, reject);
            return result;
          },
        });
      });
    }
    const ok = await this.db.write(batch);
    if (this.hangAfterWrite) {
      return await new Promise<boolean>((resolve) => this.hung.push(() => resolve(ok)));
    }
    return ok;
  }

  /** Lets every hung answer come back. */
  unhang(): void {
    for (const resume of this.hung.splice(0)) resume();
  }
}
