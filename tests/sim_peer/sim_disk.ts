/**
 * The whole-peer simulator's durable storage: a {@linkcode SimDisk} is one member's disk, and each
 * process incarnation of the peer opens it as a {@linkcode SimDiskStorage} (a `RaftStorage` with
 * `sync`, so its node runs with `RaftConfig.asyncPersistence`, as on a file storage). A write lands
 * in the page cache at once and becomes durable only when a later `sync` completes, a seeded delay
 * later on the peer's own virtual clock (paused with the peer, gone with a crash). A snapshot is
 * written in the background and lands a seeded delay later with everything written before it, as
 * the file storage's (synced and renamed into place, then a new log segment holding the hard
 * state and the entries it keeps); writes go on meanwhile. Snapshot chunks are read back from the
 * disk (`readSnapshot`) after a seeded delay, some reads failing, so the leader's node holds no image.
 *
 * Two ways to go down: a process crash ({@linkcode SimDisk.restart}: the page cache survives, the
 * next incarnation reads every write) and a power loss ({@linkcode SimDisk.crash}: the writes not
 * yet synced are lost, except a seeded prefix that the OS had written back; a write-ahead log
 * keeps record order, so what survives is always a prefix).
 *
 * @module
 */

import { HamokClosedError } from "../../src/errors.ts";
import type { Entry, HardState, Snapshot } from "../../src/raft/types.ts";
import { MemoryRaftStorage } from "../../src/storage/memory_storage.ts";
import type { RaftPersistentState, RaftStorage } from "../../src/storage/raft_storage.ts";
import type { Scheduler } from "../../src/cluster/scheduler.ts";
import type { Prng } from "../sim/prng.ts";

/** One write record, in write order. */
type DiskRecord =
  | { readonly seq: number; readonly hardState: HardState; readonly entries?: undefined }
  | { readonly seq: number; readonly entries: readonly Entry[]; readonly hardState?: undefined };

/**
 * One member's disk: the durable image, the records written since, and the storage handle of the
 * running incarnation.
 *
 * @example
 * ```ts ignore
 * const disk = new SimDisk("p1/abc", rng.fork());
 * const storage = disk.open(peerClock); // hand it to the peer as HamokConfig.storage
 * // ... the peer runs; power loss:
 * const lost = disk.crash();
 * const next = disk.open(newClock);     // the restarted peer sees only what was synced
 * ```
 */
export class SimDisk {
  /** The member id the disk belongs to. */
  readonly memberId: string;
  /** Syncs completed. */
  syncs = 0;
  /** Records lost to power losses so far. */
  lost = 0;
  /** Loads so far (durable, as a real storage's count: a power loss never takes it back). */
  loads = 0;
  #durable: MemoryRaftStorage;
  /** What the running incarnation reads and writes (durable image plus the page cache). */
  #working: MemoryRaftStorage;
  #pending: DiskRecord[] = [];
  #written = 0;
  /** When the last sync in flight completes (syncs complete in call order). */
  #lastSyncDue = 0;
  /** When the last snapshot save in flight completes. */
  #lastSnapshotDue = 0;
  readonly #rng: Prng;
  readonly #syncLies: boolean;
  #handle: SimDiskStorage | undefined;

  /**
   * Creates an empty disk for `memberId`; `rng` draws the sync delays and what a power loss keeps.
   * `syncLies` is a deliberate bug for the simulator's own tests: a sync returns at once and makes
   * nothing durable (a disk that acknowledges its cache).
   */
  constructor(memberId: string, rng: Prng, syncLies = false) {
    this.memberId = memberId;
    this.#rng = rng;
    this.#syncLies = syncLies;
    this.#durable = new MemoryRaftStorage(memberId);
    this.#working = new MemoryRaftStorage(memberId);
  }

  /** Records written and not yet durable. */
  get unsynced(): number {
    return this.#pending.length;
  }

  /** Opens the disk for a new incarnation whose timers run on `clock`; the previous handle goes dead. */
  open(clock: Scheduler): SimDiskStorage {
    this.#handle?.kill();
    this.#lastSyncDue = 0;
    this.#lastSnapshotDue = 0;
    const handle = new SimDiskStorage(this, clock);
    this.#handle = handle;
    return handle;
  }

  /** A process crash: the running handle goes dead; every write survives in the page cache. */
  restart(): void {
    this.#handle?.kill();
    this.#handle = undefined;
  }

  /**
   * A power loss: the running handle goes dead and the writes not yet synced are lost, but for a
   * seeded prefix (none half the time). Returns how many records were lost.
   */
  crash(): number {
    this.#handle?.kill();
    this.#handle = undefined;
    const n = this.#pending.length;
    const keep = n === 0 || this.#rng.chance(0.5) ? 0 : this.#rng.int(n + 1);
    for (let i = 0; i < keep; i++) apply(this.#durable, this.#pending[i]!);
    this.#pending = [];
    this.#working = copyOf(this.#durable);
    this.lost += n - keep;
    return n - keep;
  }

  /** @internal */
  load(): RaftPersistentState {
    return this.#working.loadSync();
  }

  /** @internal */
  write(record: { hardState: HardState } | { entries: readonly Entry[] }): void {
    const r = { seq: ++this.#written, ...record } as DiskRecord;
    apply(this.#working, r);
    this.#pending.push(r);
  }

  /**
   * @internal A snapshot is written in the background, as the file storage's: it lands, with
   * everything written before it completes, a seeded delay later on the peer's clock (in call
   * order); until then the log is as before it (a crash loses the snapshot, never an entry). The
   * bootstrap snapshot at index 0 is durable at once.
   */
  saveSnapshot(snapshot: Snapshot, clock: Scheduler, alive: () => boolean): Promise<void> | undefined {
    const land = () => {
      this.#working.saveSnapshot(snapshot);
      this.#pending = [];
      this.#durable = copyOf(this.#working);
    };
    if (snapshot.meta.index === 0) {
      land();
      return undefined;
    }
    const now = clock.monotonicNow();
    const delay = this.#rng.chance(0.2) ? 10 + this.#rng.int(60) : 0.5 + this.#rng.next() * 5;
    const due = Math.max(this.#lastSnapshotDue, now + delay);
    this.#lastSnapshotDue = due;
    return new Promise<void>((resolve) => {
      clock.setTimeout(() => {
        if (!alive()) return; // the process is gone: its save never completes
        land();
        resolve();
      }, due - now);
    });
  }

  /**
   * @internal Reads snapshot bytes as the file storage does: a seeded delay later (reads may
   * complete out of order), `undefined` if the stored snapshot is another one by then, and now and
   * then a failed read (the chunk is dropped).
   */
  readSnapshot(
    index: number,
    offset: number,
    length: number,
    clock: Scheduler,
    alive: () => boolean,
  ): Promise<Uint8Array | undefined> {
    const delay = this.#rng.chance(0.1) ? 2 + this.#rng.int(20) : this.#rng.next() * 2;
    const fails = this.#rng.chance(0.05);
    return new Promise((resolve) => {
      clock.setTimeout(() => {
        const snapshot = this.#working.loadSync().snapshot;
        if (!alive() || fails || snapshot === undefined || snapshot.meta.index !== index) {
          return resolve(undefined);
        }
        if (offset + length > snapshot.data.length) return resolve(undefined);
        resolve(snapshot.data.slice(offset, offset + length));
      }, delay);
    });
  }

  /** @internal */
  sync(clock: Scheduler, alive: () => boolean): Promise<void> | undefined {
    if (this.#pending.length === 0 || this.#syncLies) return undefined;
    const target = this.#written;
    const now = clock.monotonicNow();
    // mostly fast, sometimes a slow disk
    const delay = this.#rng.chance(0.1) ? 5 + this.#rng.int(40) : 0.2 + this.#rng.next() * 3;
    const due = Math.max(this.#lastSyncDue, now + delay);
    this.#lastSyncDue = due;
    return new Promise<void>((resolve) => {
      clock.setTimeout(() => {
        if (!alive()) return; // lost power meanwhile: this sync never returns
        let i = 0;
        while (i < this.#pending.length && this.#pending[i]!.seq <= target) {
          apply(this.#durable, this.#pending[i++]!);
        }
        if (i > 0) this.#pending = this.#pending.slice(i);
        this.syncs++;
        resolve();
      }, due - now);
    });
  }
}

/**
 * The storage one incarnation of a peer runs on: a view of its {@linkcode SimDisk} that goes dead
 * when the incarnation does (its later calls do nothing, as a dead process's).
 */
export class SimDiskStorage implements RaftStorage {
  readonly #disk: SimDisk;
  readonly #clock: Scheduler;
  #dead = false;

  /** @internal Use {@linkcode SimDisk.open}. */
  constructor(disk: SimDisk, clock: Scheduler) {
    this.#disk = disk;
    this.#clock = clock;
  }

  /** The disk's member id. */
  get memberId(): string {
    return this.#disk.memberId;
  }

  /** @internal */
  kill(): void {
    this.#dead = true;
  }

  /** How many loads of this disk came before this view's (see `RaftStorage.restarts`). */
  restarts: number | undefined = undefined;

  load(): Promise<RaftPersistentState> {
    if (this.#dead) return Promise.reject(new HamokClosedError(`storage of ${this.memberId} is gone`));
    const state = this.#disk.load();
    this.restarts = this.#disk.loads++;
    return Promise.resolve(state);
  }
  saveHardState(hardState: HardState): void {
    if (!this.#dead) this.#disk.write({ hardState });
  }
  append(entries: readonly Entry[]): void {
    if (!this.#dead && entries.length > 0) this.#disk.write({ entries: entries.slice() });
  }
  saveSnapshot(snapshot: Snapshot): Promise<void> | void {
    // a dead process's save never completes
    if (this.#dead) return new Promise<void>(() => {});
    return this.#disk.saveSnapshot(snapshot, this.#clock, () => !this.#dead);
  }
  readSnapshot(index: number, offset: number, length: number): Promise<Uint8Array | undefined> {
    if (this.#dead) return Promise.resolve(undefined);
    return this.#disk.readSnapshot(index, offset, length, this.#clock, () => !this.#dead);
  }
  sync(): Promise<void> | void {
    // a dead process's sync never returns
    if (this.#dead) return new Promise<void>(() => {});
    return this.#disk.sync(this.#clock, () => !this.#dead);
  }
  close(): void {}
}

function apply(storage: MemoryRaftStorage, record: DiskRecord): void {
  if (record.entries !== undefined) storage.append(record.entries);
  else storage.saveHardState(record.hardState);
}

function copyOf(storage: MemoryRaftStorage): MemoryRaftStorage {
  return new MemoryRaftStorage(storage.memberId, storage.loadSync());
}
