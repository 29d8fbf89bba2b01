/**
 * Taking a snapshot without stopping the peer: the image of the state machine is fixed at one applied
 * index ({@linkcode StateMachine.snapshotParts}, O(1) for maps and records) and then written out as
 * CBOR a slice at a time, each slice bounded in entries and in milliseconds, yielding to the event
 * loop between slices (the scheduler's `yieldThen`) while commands, heartbeats and publishes go on.
 * The bytes are those `encodeCbor(stateMachine.snapshot())` would have produced at that index, up to
 * the choice of integer widths, and decode to the same {@linkcode StateMachineImage}.
 *
 * @module
 */

import { encodeCbor } from "../codec/cbor.ts";
import { CborChunkWriter, type CborJoiner } from "../codec/cbor_writer.ts";
import type { Scheduler } from "./scheduler.ts";
import {
  appliedImage,
  type RestoreJob,
  type StateMachine,
  type StateMachineImageParts,
} from "./state_machine.ts";
import { crc32c } from "../storage/crc32c.ts";

/** Entries one `writeTo` call may write before the time budget is looked at again. */
const ENTRIES_PER_STEP = 2048;
/** Pairs of the dedup window one step encodes (each `[requestId, result]`: ~60 bytes, ~1 µs). */
const APPLIED_PER_STEP = 512;
/** Bytes the joiner copies per step. */
const JOIN_BYTES_PER_STEP = 4 * 1024 * 1024;
/** Bytes of the image a step checksums (CRC-32C in JavaScript: about 6 ms per MiB here). */
const CRC_BYTES_PER_STEP = 256 * 1024;

/**
 * Writes out the image of a state machine fixed at construction, step by step.
 *
 * @example
 * ```ts ignore
 * const job = new SnapshotJob(stateMachine.snapshotParts());
 * while (!job.step()) await yieldToTheEventLoop();
 * node.compact(index, job.result());
 * ```
 */
export class SnapshotJob {
  readonly #parts: StateMachineImageParts;
  #out: CborChunkWriter | undefined = undefined;
  #state = -1;
  #joiner: CborJoiner | undefined = undefined;
  #result: Uint8Array | undefined = undefined;
  /** CRC-32C of the result, computed a slice at a time once it is written out. */
  #crc = 0;
  #crcAt = -1;
  #released = false;
  #viewStarted = false;
  /** The dedup window is encoded first, in steps, into its own writer (its size is not known before). */
  #appliedOut: CborChunkWriter | undefined = undefined;
  #appliedAt = 0;
  #applied: Uint8Array | undefined = undefined;

  /** Fixes nothing itself: `parts` were fixed by {@linkcode StateMachine.snapshotParts}. */
  constructor(parts: StateMachineImageParts) {
    this.#parts = parts;
  }

  /** Encodes up to {@linkcode APPLIED_PER_STEP} pairs of the dedup window; true once it is all encoded. */
  #stepApplied(): boolean {
    const applied = this.#parts.applied;
    let w = this.#appliedOut;
    if (w === undefined) {
      w = this.#appliedOut = new CborChunkWriter(64 * 1024);
      w.arrayHeader(applied.length);
    }
    const stop = Math.min(applied.length, this.#appliedAt + APPLIED_PER_STEP);
    for (; this.#appliedAt < stop; this.#appliedAt++) {
      const [requestId, result, mark] = applied[this.#appliedAt]!;
      w.raw(encodeCbor(appliedImage(requestId, result, mark)));
    }
    if (this.#appliedAt < applied.length) return false;
    const joiner = w.joiner();
    while (!joiner.step(Number.MAX_SAFE_INTEGER)) { /* one step copies everything */ }
    this.#applied = joiner.result();
    this.#appliedOut = undefined;
    // the whole image in one buffer when every view knows its size (no chunks joined, no second copy)
    const parts = this.#parts;
    let expected = 64 + this.#applied.length + 3 * (parts.uid?.length ?? 0);
    for (const [kind, id, image] of parts.states) {
      expected += 16 + 3 * (kind.length + id.length);
      expected += image instanceof Uint8Array ? image.length : image.byteLength ?? 0;
    }
    this.#out = new CborChunkWriter(expected);
    return true;
  }

  /** Does a bounded amount of work; true once {@linkcode result} is ready. */
  step(): boolean {
    if (this.#result !== undefined) return true;
    if (this.#applied === undefined) {
      this.#stepApplied();
      return false;
    }
    const out = this.#out!;
    const parts = this.#parts;
    if (this.#joiner === undefined) {
      if (this.#state < 0) {
        out.mapHeader(parts.uid === undefined ? 2 : 3);
        out.text("states");
        out.arrayHeader(parts.states.length);
        this.#state = 0;
      }
      while (this.#state < parts.states.length) {
        const [kind, id, image] = parts.states[this.#state]!;
        if (image instanceof Uint8Array) {
          out.arrayHeader(3);
          out.text(kind);
          out.text(id);
          out.raw(image);
          this.#state++;
          continue;
        }
        if (!this.#viewStarted) {
          this.#viewStarted = true;
          out.arrayHeader(3);
          out.text(kind);
          out.text(id);
        }
        if (!image.writeTo(out, ENTRIES_PER_STEP)) return false;
        this.#viewStarted = false;
        this.#state++;
        return false;
      }
      out.text("applied");
      out.raw(this.#applied);
      if (parts.uid !== undefined) {
        out.text("uid");
        out.text(parts.uid);
      }
      this.#joiner = out.joiner();
      return false;
    }
    if (this.#crcAt < 0) {
      if (!this.#joiner.step(JOIN_BYTES_PER_STEP)) return false;
      this.#crcAt = 0;
      return false;
    }
    const bytes = this.#joiner.result();
    const end = Math.min(bytes.length, this.#crcAt + CRC_BYTES_PER_STEP);
    this.#crc = crc32c(bytes, this.#crcAt, end, this.#crc);
    this.#crcAt = end;
    if (end < bytes.length) return false;
    this.#result = bytes;
    this.#released = true;
    return true;
  }

  /** The CRC-32C of {@linkcode result} (once {@linkcode step} returned true). */
  digest(): number {
    if (this.#result === undefined) throw new Error("the snapshot is not written out yet");
    return this.#crc;
  }

  /** The CBOR image (once {@linkcode step} returned true). */
  result(): Uint8Array {
    if (this.#result === undefined) throw new Error("the snapshot is not written out yet");
    return this.#result;
  }

  /** Abandons the job: the states stop keeping anything for it. */
  cancel(): void {
    if (this.#released) return;
    this.#released = true;
    for (const [, , image] of this.#parts.states) if (!(image instanceof Uint8Array)) image.release();
  }
}

/** How {@linkcode runSnapshotJob} reports. */
export interface SnapshotJobHandlers {
  /** Whether the job should go on (false: it is cancelled, e.g. the peer closed). */
  alive(): boolean;
  /** The image is written out; `digest` is its CRC-32C. */
  done(data: Uint8Array, digest: number): void;
  /** Writing it out failed (a bug): the job is abandoned. */
  failed(error: unknown): void;
}

/**
 * Runs a {@linkcode SnapshotJob} in slices of at most `sliceMs` milliseconds (and at most
 * `maxStepsPerSlice` steps, which bounds a slice where the clock does not move, as on virtual time),
 * yielding to the event loop between slices.
 *
 * @example
 * ```ts ignore
 * runSnapshotJob(scheduler, new SnapshotJob(sm.snapshotParts()), 4, {
 *   alive: () => !closed,
 *   done: (data) => node.compact(index, data),
 *   failed: (error) => logger.error(error),
 * });
 * ```
 */
export function runSnapshotJob(
  scheduler: Scheduler,
  job: SnapshotJob,
  sliceMs: number,
  handlers: SnapshotJobHandlers,
  maxStepsPerSlice = 64,
): void {
  const slice = (): void => {
    if (!handlers.alive()) {
      job.cancel();
      return;
    }
    const started = scheduler.monotonicNow();
    try {
      for (let steps = 0; steps < maxStepsPerSlice; steps++) {
        if (job.step()) {
          handlers.done(job.result(), job.digest());
          return;
        }
        if (scheduler.monotonicNow() - started >= sliceMs) break;
      }
    } catch (error) {
      job.cancel();
      handlers.failed(error);
      return;
    }
    scheduler.yieldThen(slice);
  };
  slice();
}

/** How {@linkcode runRestoreJob} reports. */
export interface RestoreJobHandlers {
  /** Whether the job should go on (false: it is abandoned, e.g. a newer snapshot arrived or the peer closed). */
  alive(): boolean;
  /** The restore is complete: the states hold the image. */
  done(): void;
  /** The bytes are not an image: the states are as they were. */
  failed(error: unknown): void;
}

/**
 * Runs a {@linkcode RestoreJob} (a state machine restore from snapshot bytes) in slices of at most
 * `sliceMs` milliseconds and `maxStepsPerSlice` steps, yielding to the event loop between slices:
 * the peer goes on answering its leader while it restores.
 *
 * @example
 * ```ts ignore
 * runRestoreJob(scheduler, stateMachine.restoreJob(snapshot.data), 4, {
 *   alive: () => !closed,
 *   done: () => driver.restored(),
 *   failed: (error) => logger.error(error),
 * });
 * ```
 */
export function runRestoreJob(
  scheduler: Scheduler,
  job: RestoreJob,
  sliceMs: number,
  handlers: RestoreJobHandlers,
  maxStepsPerSlice = 64,
): void {
  const slice = (): void => {
    if (!handlers.alive()) return;
    const started = scheduler.monotonicNow();
    try {
      for (let steps = 0; steps < maxStepsPerSlice; steps++) {
        if (job.step()) {
          handlers.done();
          return;
        }
        if (scheduler.monotonicNow() - started >= sliceMs) break;
      }
    } catch (error) {
      handlers.failed(error);
      return;
    }
    scheduler.yieldThen(slice);
  };
  slice();
}

/**
 * Restores `stateMachine` from the snapshot bytes `data` in slices ({@linkcode runRestoreJob}); the
 * promise resolves once the states hold the image, or once the restore is abandoned (`alive()` turned
 * false: a newer snapshot or a closed peer), and rejects if the bytes are not an image (the states
 * are then as they were).
 *
 * @example
 * ```ts ignore
 * await restoreInSlices(scheduler, stateMachine, snapshot.data, 4, () => !closed);
 * ```
 */
export function restoreInSlices(
  scheduler: Scheduler,
  stateMachine: StateMachine,
  data: Uint8Array,
  sliceMs: number,
  alive: () => boolean,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let job: RestoreJob;
    try {
      job = stateMachine.restoreJob(data);
    } catch (error) {
      reject(error);
      return;
    }
    runRestoreJob(scheduler, job, sliceMs, {
      alive: () => {
        if (alive()) return true;
        resolve();
        return false;
      },
      done: resolve,
      failed: reject,
    });
  });
}
