/**
 * The peer's view of time (and of chance): every timer, clock reading, deferred call and random
 * draw above the pure core goes through one {@linkcode Scheduler}. The default,
 * {@linkcode REAL_SCHEDULER}, is the runtime's own timers and clocks; the whole-peer simulator
 * passes a virtual one, so the same code runs on virtual time and replays by seed.
 *
 * @module
 */

/**
 * A handle returned by {@linkcode Scheduler.setTimeout} and {@linkcode Scheduler.setInterval}; pass it
 * back to the matching `clear` method. Its shape is the scheduler's business (a number on Deno, an
 * object on Bun and Node, a record of the virtual scheduler).
 */
export type TimerHandle = number | object;

/**
 * Timers, clocks, deferred work and randomness for everything above `src/raft/`.
 *
 * @example
 * ```ts
 * import type { Scheduler } from "@hamok/core";
 * import { REAL_SCHEDULER } from "@hamok/core/internal";
 * const scheduler: Scheduler = REAL_SCHEDULER;
 * const started = scheduler.monotonicNow();
 * const timer = scheduler.setTimeout(() => console.log(scheduler.monotonicNow() - started), 10);
 * scheduler.clearTimeout(timer);
 * ```
 */
export interface Scheduler {
  /**
   * Wall-clock time in milliseconds since the epoch (what `Date.now()` answers). Hamok reads it
   * only where a time is compared across processes or shown: an emitter's event sequences and
   * `status().time`. It may jump (an NTP step, a resumed VM).
   */
  now(): number;
  /**
   * A monotonic clock in milliseconds, possibly fractional (what `performance.now()` answers): every
   * timeout, deadline, silence and rate Hamok measures, so that a step of the wall clock neither
   * expires them early nor holds them open.
   */
  monotonicNow(): number;
  /** Runs `callback` once after `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancels a timeout; `undefined` and handles already fired are ignored. */
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Runs `callback` every `ms` milliseconds until cleared. */
  setInterval(callback: () => void, ms: number): TimerHandle;
  /** Cancels an interval; `undefined` is ignored. */
  clearInterval(handle: TimerHandle | undefined): void;
  /** Runs `callback` on the microtask queue, after the current task (like `queueMicrotask`). */
  defer(callback: () => void): void;
  /**
   * Runs `callback` in a later turn of the event loop, after pending I/O and timers had their chance:
   * the way a long job (a snapshot, a restore, an export) yields without starving the rest of the
   * process. The real scheduler uses a 0 ms timer rather than `setImmediate`, which on Deno 2.9 held
   * back file-system callbacks for up to 280 ms while chains of immediates ran; a yield then costs
   * about 1 ms on Node and Bun and 2 ms on Deno (docs/decisions.md). The real scheduler runs one
   * yielded callback per turn for the whole process, in the order they were yielded: the jobs of
   * several peers in one process take turns instead of running one slice each back to back.
   */
  yieldThen(callback: () => void): void;
  /** A uniformly distributed number in [0, 1) (election jitter, incarnation ids). */
  random(): number;
}

/** Callbacks yielded through {@linkcode REAL_SCHEDULER}, waiting for their turn, oldest first. */
const yielded: ((() => void) | undefined)[] = [];
/** Index of the oldest callback in {@linkcode yielded}. */
let yieldedHead = 0;
/** True while a timer for the next yielded callback is armed. */
let yieldArmed = false;

/**
 * One turn of the yielded work of the whole process: the oldest callback runs, and the next one
 * waits for another turn. With the jobs of three peers in one process (tests, the demo, an
 * application that embeds several), each turn runs one slice of at most a few milliseconds instead
 * of one slice per job back to back (12 ms and more with three compactions at once, which every
 * write, heartbeat and file-system callback of the process waited for).
 */
function runYielded(): void {
  yieldArmed = false;
  const callback = yielded[yieldedHead]!;
  yielded[yieldedHead++] = undefined; // let it go
  if (yieldedHead === yielded.length) {
    yielded.length = 0;
    yieldedHead = 0;
  }
  try {
    callback();
  } finally {
    if (yielded.length > yieldedHead && !yieldArmed) {
      yieldArmed = true;
      setTimeout(runYielded, 0);
    }
  }
}

/**
 * The runtime's timers and clocks, and `Math.random`: the default of every Hamok peer.
 *
 * @example
 * ```ts
 * import { REAL_SCHEDULER } from "@hamok/core/internal";
 * REAL_SCHEDULER.defer(() => console.log("after the current task"));
 * ```
 */
export const REAL_SCHEDULER: Scheduler = Object.freeze({
  now: (): number => Date.now(),
  monotonicNow: (): number => performance.now(),
  setTimeout: (callback: () => void, ms: number): TimerHandle => setTimeout(callback, ms),
  clearTimeout: (handle: TimerHandle | undefined): void => {
    if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  setInterval: (callback: () => void, ms: number): TimerHandle => setInterval(callback, ms),
  clearInterval: (handle: TimerHandle | undefined): void => {
    if (handle !== undefined) clearInterval(handle as ReturnType<typeof setInterval>);
  },
  defer: (callback: () => void): void => queueMicrotask(callback),
  yieldThen: (callback: () => void): void => {
    yielded.push(callback);
    if (!yieldArmed) {
      yieldArmed = true;
      setTimeout(runYielded, 0);
    }
  },
  random: (): number => Math.random(),
});

/**
 * Resolves after `ms` milliseconds of the scheduler's time.
 *
 * @example
 * ```ts
 * import { REAL_SCHEDULER, sleep } from "./scheduler.ts";
 * await sleep(REAL_SCHEDULER, 1);
 * ```
 */
export function sleep(scheduler: Scheduler, ms: number): Promise<void> {
  return new Promise((resolve) => scheduler.setTimeout(resolve, ms));
}

/**
 * `length` lowercase hexadecimal digits drawn from the scheduler's randomness.
 *
 * @example
 * ```ts
 * import { randomHex, REAL_SCHEDULER } from "./scheduler.ts";
 * const incarnation = randomHex(REAL_SCHEDULER, 8); // e.g. "3fa92c07"
 * ```
 */
export function randomHex(scheduler: Scheduler, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += Math.floor(scheduler.random() * 16).toString(16);
  return out;
}

/**
 * A version-4-shaped UUID drawn from the scheduler's randomness (deterministic under a seeded
 * scheduler; from `crypto.randomUUID` under the real one).
 *
 * @example
 * ```ts
 * import { randomUuid, REAL_SCHEDULER } from "./scheduler.ts";
 * const id = randomUuid(REAL_SCHEDULER);
 * ```
 */
export function randomUuid(scheduler: Scheduler): string {
  if (scheduler === REAL_SCHEDULER) return crypto.randomUUID();
  const hex = randomHex(scheduler, 32);
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16); // hex has 32 digits
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${
    hex.slice(20, 32)
  }`;
}
