/**
 * Runs the pure Raft core: turns timer ticks into `tick()`, inbound messages into `step()`, and acts
 * on every {@linkcode RaftReady} in the documented order (send the early messages, persist and
 * sync, report the durable position, send the rest, restore/apply, serve reads).
 * Processing is event driven: any input schedules one drain on the microtask queue, so the inputs of
 * one macrotask are batched into one round of appends.
 *
 * @module
 */

import type { RaftNode } from "../raft/raft_node.ts";
import type {
  DroppedRead,
  Entry,
  Membership,
  RaftMessage,
  RaftReady,
  ReadState,
  Snapshot,
  SnapshotChunkMessage,
  SoftState,
} from "../raft/types.ts";
import type { RaftStorage } from "../storage/raft_storage.ts";
import { HamokNoLeaderError } from "../errors.ts";
import { REAL_SCHEDULER, type Scheduler, type TimerHandle } from "./scheduler.ts";

/** Longest stretch, in ms, that applying the entries held during a restore holds the event loop. */
const HELD_SLICE_MS = 4;
/** Held entries applied between two looks at the clock, and at most per slice (virtual clocks do not move). */
const HELD_PER_CHECK = 8;
const HELD_PER_SLICE = 256;

/** Drains in a row on microtasks before the driver yields to the event loop. */
const MICROTASK_DRAINS = 256;

/** What the driver calls back into (the peer). */
export interface RaftDriverHooks {
  /** Sends a Raft message to `message.to`. */
  send(message: RaftMessage): void;
  /**
   * Optional: sends the messages of one batch (in order) at once, so that the peer may share what
   * several followers get alike; without it each goes through {@linkcode RaftDriverHooks.send}.
   */
  sendAll?(messages: readonly RaftMessage[]): void;
  /** Applies one committed entry (any type) in log order. */
  apply(entry: Entry): void;
  /**
   * Restores the state machine from a snapshot received from the leader. A restore that takes a
   * while returns a promise: the driver goes on (persisting, sending, answering the leader) but
   * holds back applying committed entries until it settles; a newer snapshot supersedes it.
   */
  restore(snapshot: Snapshot): void | Promise<void>;
  /** The role, leader or term changed. */
  softStateChanged(state: SoftState): void;
  /** Optional: the membership (as of the latest config entry in the log) changed. */
  membershipChanged?(membership: Membership): void;
  /** A failure while persisting or applying (the driver stops processing after a storage failure). */
  error(error: unknown): void;
  /** Optional (metrics): `count` committed entries were applied in one batch. */
  appliedBatch?(count: number): void;
  /**
   * Optional: a follower needs the latest snapshot, which was taken without an image
   * (`RaftNode.compactWithoutImage`, {@linkcode RaftStorage.snapshotsOnDemand}): make a new one at
   * the applied index, or the image of this one if nothing was applied since
   * (`RaftNode.provideImage`); the transfer moves to it.
   */
  snapshotWanted?(): void;
}

interface PendingRead {
  resolve(index: number): void;
  reject(reason: DroppedRead["reason"]): void;
}

interface AppliedWaiter {
  index: number;
  resolve(): void;
}

/**
 * Drives a {@linkcode RaftNode}.
 *
 * @example
 * ```ts ignore
 * const driver = new RaftDriver(node, storage, hooks, 50);
 * driver.start();
 * driver.step(message);
 * ```
 */
export class RaftDriver {
  /** The Raft node this driver runs. */
  readonly node: RaftNode;
  readonly #storage: RaftStorage;
  readonly #hooks: RaftDriverHooks;
  readonly #tickMs: number;
  readonly #scheduler: Scheduler;
  #timer: TimerHandle | undefined;
  #scheduled = false;
  #draining = false;
  #stopped = false;
  #failed = false;
  readonly #reads = new Map<string, PendingRead>();
  #appliedWaiters: AppliedWaiter[] = [];
  #applied = 0;
  /** A restore is under way: committed entries wait in {@linkcode #held} (in log order). */
  #restoring = 0;
  #held: Entry[] = [];
  /** The first entry of {@linkcode #held} not applied yet. */
  #heldAt = 0;
  /** Drains run since the event loop last turned. */
  #microDrains = 0;
  /** Term and vote as last handed to the storage (a batch that changes them needs a sync). */
  #term: number;
  #vote: string | undefined;

  /** Creates a driver; nothing runs until {@linkcode start}. Timers come from `scheduler`. */
  constructor(
    node: RaftNode,
    storage: RaftStorage,
    hooks: RaftDriverHooks,
    tickMs: number,
    scheduler: Scheduler = REAL_SCHEDULER,
  ) {
    this.node = node;
    this.#scheduler = scheduler;
    this.#storage = storage;
    this.#hooks = hooks;
    this.#tickMs = tickMs;
    this.#applied = node.appliedIndex;
    this.#term = node.term;
    this.#vote = node.vote;
    // a snapshot loaded from such a storage is on its disk: the node need not hold its bytes (the
    // restore got them from the loaded state)
    if (storage.readSnapshot !== undefined && node.snapshotIndex > 0) {
      node.detachSnapshotData(node.snapshotIndex);
    }
  }

  /** Index of the last entry applied through this driver. */
  get appliedIndex(): number {
    return this.#applied;
  }

  /** Starts the Raft clock. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = this.#scheduler.setInterval(() => {
      this.node.tick();
      this.#maybeDropImage();
      this.schedule();
    }, this.#tickMs);
    this.schedule();
  }

  /** Stops the clock and fails every pending read; no input is processed afterwards. */
  stop(): void {
    this.#stopped = true;
    this.#scheduler.clearInterval(this.#timer);
    this.#timer = undefined;
    for (const read of this.#reads.values()) read.reject("leadership-lost");
    this.#reads.clear();
    this.#appliedWaiters = [];
  }

  /** Hands an inbound message to the core. */
  step(message: RaftMessage): void {
    if (this.#stopped) return;
    this.node.step(message);
    this.schedule();
  }

  /** Runs `fn` against the node (a proposal, a membership change, ...) and schedules processing. */
  run<T>(fn: (node: RaftNode) => T): T {
    const result = fn(this.node);
    this.schedule();
    return result;
  }

  /**
   * Starts a ReadIndex round; resolves with the read index once the leader confirmed it, rejects
   * with a `HamokNoLeaderError` naming the reason if it was dropped. Callers bound it with their
   * own timeout.
   */
  readIndex(ctx: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const dropped = (reason: DroppedRead["reason"]) =>
        reject(new HamokNoLeaderError(`read ${ctx} was dropped (${reason})`));
      if (this.#stopped) {
        dropped("leadership-lost");
        return;
      }
      this.#reads.set(ctx, { resolve, reject: dropped });
      this.node.readIndex(ctx);
      this.schedule();
    });
  }

  /** Forgets a pending read (after its caller timed out). */
  cancelRead(ctx: string): void {
    this.#reads.delete(ctx);
  }

  /** Resolves once the entry at `index` has been applied on this peer. */
  waitApplied(index: number): Promise<void> {
    if (index <= this.#applied) return Promise.resolve();
    return new Promise<void>((resolve) => this.#appliedWaiters.push({ index, resolve }));
  }

  /**
   * Schedules one drain of the core's output on the microtask queue. After
   * {@linkcode MICROTASK_DRAINS} drains without a turn of the event loop (a write loop on a
   * one-member cluster resolves on microtasks alone) the next drain waits for a macrotask, so
   * timers, I/O and signals are never starved.
   */
  schedule(): void {
    if (this.#scheduled || this.#stopped || this.#failed) return;
    this.#scheduled = true;
    const scheduler = this.#scheduler;
    if (this.#microDrains === 0) scheduler.setTimeout(this.#resetMicroDrains, 0);
    if (++this.#microDrains <= MICROTASK_DRAINS) scheduler.defer(this.#runDrain);
    else scheduler.setTimeout(this.#runDrain, 0);
  }

  readonly #runDrain = (): void => {
    this.#scheduled = false;
    void this.#drain();
  };

  readonly #resetMicroDrains = (): void => {
    this.#microDrains = 0;
  };

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      const node = this.node;
      while (!this.#stopped && node.hasReady()) {
        const ready = node.ready();
        // A leader's appends and heartbeats go out at once: the followers write while we sync.
        const early = ready.earlyMessages;
        if (early.length > 0) this.#sendAll(early);
        const persisted = this.#persist(ready);
        // Inputs that arrive while the sync runs are batched into the next ready (group commit).
        if (persisted !== undefined) await persisted;
        if (this.#stopped) break;
        // a snapshot from the leader is durable now: the node's copy of its bytes can go
        if (
          ready.snapshot !== undefined && ready.restoreSnapshot && this.#storage.readSnapshot !== undefined
        ) {
          node.detachSnapshotData(ready.snapshot.meta.index);
        }
        // Only now, synced: the leader may count these entries as its own toward a commit.
        const entries = ready.entries;
        const last = entries.length > 0 ? entries[entries.length - 1] : undefined;
        if (last !== undefined) node.persisted(last.index, last.term);
        else if (ready.snapshot !== undefined) {
          node.persisted(ready.snapshot.meta.index, ready.snapshot.meta.term);
        }
        this.#act(ready);
      }
      // a transfer waits for the image of a snapshot taken without one
      if (!this.#stopped && node.takeImageRequest() !== 0) this.#hooks.snapshotWanted?.();
    } catch (error) {
      this.#failed = true;
      this.#hooks.error(error);
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Persists a ready batch in order (snapshot, then entries, then hard state, then one `sync`); a
   * local compaction's snapshot save is not waited for (see {@linkcode RaftStorage.saveSnapshot}). Synchronous storages
   * (the memory one) finish without a promise; an asynchronous step makes the rest wait for it. A
   * failure rejects: the batch's acknowledgements never leave and the driver stops. The sync runs
   * for a batch with entries, a snapshot, or a new term or vote.
   */
  #persist(ready: RaftReady): Promise<void> | undefined {
    const storage = this.#storage;
    const { snapshot, entries, hardState } = ready;
    let pending: Promise<void> | undefined;
    if (snapshot !== undefined) {
      const saving = asPromise(storage.saveSnapshot(snapshot));
      // A local compaction's entries are already stored: the batches after it need not wait for
      // its file (the storage keeps what is appended meanwhile). A snapshot from the leader is
      // durable before anything of this batch is acknowledged.
      if (!ready.restoreSnapshot && saving !== undefined) this.#compacting(saving, snapshot.meta.index);
      else pending = saving;
    }
    if (entries.length > 0) {
      pending = pending === undefined
        ? asPromise(storage.append(entries))
        : pending.then(() => storage.append(entries));
    }
    if (hardState !== undefined) {
      pending = pending === undefined
        ? asPromise(storage.saveHardState(hardState))
        : pending.then(() => storage.saveHardState(hardState));
    }
    // One sync for the whole batch (group commit), before its acknowledgements leave. A batch that
    // only moves the commit index needs none: a commit index lost in a crash is learned again from
    // the leader, and the next sync covers it anyway (etcd's MustSync rule).
    let mustSync = snapshot !== undefined || entries.length > 0;
    if (hardState !== undefined && (hardState.term !== this.#term || hardState.vote !== this.#vote)) {
      this.#term = hardState.term;
      this.#vote = hardState.vote;
      mustSync = true;
    }
    if (storage.sync !== undefined && mustSync) {
      pending = pending === undefined ? asPromise(storage.sync()) : pending.then(() => storage.sync!());
    }
    return pending;
  }

  /** A local compaction's save runs on in the background; its failure stops the driver like any storage failure. */
  #compacting(saving: Promise<void>, index: number): void {
    saving.then(() => {
      // durable: a storage that reads snapshots back serves the chunks from its file
      if (this.#storage.readSnapshot !== undefined && !this.#stopped) this.node.detachSnapshotData(index);
    }, (error) => {
      if (this.#failed || this.#stopped) return;
      this.#failed = true;
      this.#hooks.error(error);
    });
  }

  /**
   * With a storage that keeps no images ({@linkcode RaftStorage.snapshotsOnDemand}), lets the node
   * drop the image it holds (one made for a follower) once no transfer or restore needs it; when a
   * follower needs one again, the node asks for it (`snapshotWanted`).
   */
  #maybeDropImage(): void {
    if (this.#storage.snapshotsOnDemand !== true) return;
    const node = this.node;
    const index = node.snapshotIndex;
    if (index === 0 || this.#restoring !== 0 || node.snapshotTransfers > 0 || node.snapshotImageless) return;
    node.dropImage(index);
  }

  #sendAll(messages: readonly RaftMessage[]): void {
    const hooks = this.#hooks;
    // chunks of a snapshot on disk are read first; the other messages go at once
    let rest: RaftMessage[] | undefined;
    for (let i = 0; i < messages.length; i++) { // i < length
      const m = messages[i]!;
      if (m.type === "snapshot" && m.fill !== undefined) {
        rest ??= messages.slice(0, i);
        this.#readChunk(m);
      } else rest?.push(m);
    }
    const out = rest ?? messages;
    if (out.length === 0) return;
    if (hooks.sendAll !== undefined) hooks.sendAll(out);
    else for (let i = 0; i < out.length; i++) hooks.send(out[i]!); // i < length
  }

  /**
   * Reads a chunk's bytes from the storage and sends it; chunks to one follower leave in the order
   * they were made. A chunk that cannot be read (its snapshot was replaced) is dropped: the
   * transfer sends it again, or restarts with the newer snapshot.
   */
  #readChunk(m: SnapshotChunkMessage): void {
    const storage = this.#storage;
    const { fill, ...chunk } = m;
    const read = storage.readSnapshot!(m.meta.index, m.offset, fill!);
    const previous = this.#chunkReads.get(m.to);
    const run = (previous === undefined ? read : previous.then(() => read)).then((data) => {
      if (data === undefined || this.#stopped) return;
      this.#hooks.send({ ...chunk, data });
    }, () => {});
    this.#chunkReads.set(m.to, run);
    void run.then(() => {
      if (this.#chunkReads.get(m.to) === run) this.#chunkReads.delete(m.to);
    });
  }

  #act(ready: RaftReady): void {
    const hooks = this.#hooks;
    if (ready.messages.length > 0) this.#sendAll(ready.messages);
    if (ready.softState !== undefined) hooks.softStateChanged(ready.softState);
    if (ready.membership !== undefined) hooks.membershipChanged?.(ready.membership);
    if (ready.snapshot !== undefined && ready.restoreSnapshot) {
      // entries held for an earlier restore are covered by this snapshot (it is beyond the commit index)
      this.#held = [];
      this.#heldAt = 0;
      const restoring = hooks.restore(ready.snapshot);
      if (restoring instanceof Promise) this.holdUntil(restoring, ready.snapshot.meta.index);
      else {
        this.#restoring = 0;
        this.#applied = Math.max(this.#applied, ready.snapshot.meta.index);
      }
    }
    if (this.#restoring !== 0) {
      for (const entry of ready.committed) this.#held.push(entry);
    } else this.#applyAll(ready.committed);
    for (const read of ready.readStates) this.#readDone(read);
    for (const dropped of ready.droppedReads) {
      const pending = this.#reads.get(dropped.ctx);
      if (pending === undefined) continue;
      this.#reads.delete(dropped.ctx);
      pending.reject(dropped.reason);
    }
    if (this.#appliedWaiters.length > 0) this.#releaseApplied();
  }

  /**
   * Holds back applying committed entries until `restore` settles (a state machine restore from a
   * snapshot at `index`, running in slices); the applied index is at `index` afterwards. Until then
   * the driver reports what it applied before (0 after a restart: nothing is applied yet).
   */
  holdUntil(restore: Promise<void>, index: number): void {
    const generation = ++this.#generation;
    this.#restoring = generation;
    if (this.#applied >= index) this.#applied = 0;
    const settled = () => {
      if (this.#restoring !== generation || this.#stopped) return;
      this.#applied = Math.max(this.#applied, index);
      this.#applyHeld(generation);
    };
    restore.then(settled, (error) => {
      this.#hooks.error(error);
      settled();
    });
  }

  /**
   * Applies the entries held during a restore, a slice of at most {@linkcode HELD_SLICE_MS} at a time
   * (they may be many, and large), yielding between slices; entries committed meanwhile queue up
   * behind them. The restore is over once none is left.
   */
  #applyHeld(generation: number): void {
    if (this.#restoring !== generation || this.#stopped) return;
    const scheduler = this.#scheduler;
    const started = scheduler.monotonicNow();
    const held = this.#held;
    // a cursor, not a copy of the rest per slice: a restart may hold a million entries
    let at = this.#heldAt;
    while (at < held.length) {
      const end = Math.min(held.length, at + HELD_PER_CHECK);
      this.#applyRange(held, at, end);
      at = end;
      if (scheduler.monotonicNow() - started >= HELD_SLICE_MS || at - this.#heldAt >= HELD_PER_SLICE) break;
    }
    if (at >= held.length) {
      this.#held = [];
      this.#heldAt = 0;
    } else this.#heldAt = at;
    if (this.#appliedWaiters.length > 0) this.#releaseApplied();
    if (this.#held.length > 0) {
      scheduler.yieldThen(() => this.#applyHeld(generation));
      return;
    }
    this.#restoring = 0;
    this.schedule();
  }

  /** True while a restore holds back applying. */
  get isRestoring(): boolean {
    return this.#restoring !== 0;
  }

  #generation = 0;
  /** The last chunk read under way per follower (chunks to one follower leave in order). */
  readonly #chunkReads = new Map<string, Promise<void>>();

  #applyAll(entries: readonly Entry[]): void {
    this.#applyRange(entries, 0, entries.length);
  }

  /** Applies `entries[from..to)` in order. */
  #applyRange(entries: readonly Entry[], from: number, to: number): void {
    const hooks = this.#hooks;
    for (let i = from; i < to; i++) {
      const entry = entries[i]!; // from <= i < to <= length
      try {
        hooks.apply(entry);
      } catch (error) {
        hooks.error(error);
      }
      this.#applied = entry.index;
    }
    if (to > from && hooks.appliedBatch !== undefined) hooks.appliedBatch(to - from);
  }

  #readDone(read: ReadState): void {
    const pending = this.#reads.get(read.ctx);
    if (pending === undefined) return;
    this.#reads.delete(read.ctx);
    pending.resolve(read.index);
  }

  #releaseApplied(): void {
    const applied = this.#applied;
    const waiting: AppliedWaiter[] = [];
    for (const waiter of this.#appliedWaiters) {
      if (waiter.index <= applied) waiter.resolve();
      else waiting.push(waiter);
    }
    this.#appliedWaiters = waiting;
  }
}

function asPromise(result: void | Promise<void>): Promise<void> | undefined {
  return result instanceof Promise ? result : undefined;
}
