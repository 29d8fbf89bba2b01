/**
 * Virtual time for the whole-peer simulator. One {@linkcode VirtualWorld} holds the virtual clock and
 * every timer of every peer in one agenda ordered by (due time, order of scheduling). The world runs
 * the agenda one timer at a time and, between two timers, lets the runtime drain its microtask queue
 * completely (one real macrotask turn), exactly as an event loop does after each timer callback.
 * Microtasks are the runtime's own (`queueMicrotask`): their order is FIFO and deterministic, and
 * nothing in a run touches real timers or I/O, so a seed replays the same history.
 *
 * Each peer sees the world through its own {@linkcode PeerClock} (a `Scheduler`): pausing the clock
 * freezes that peer's timers (they fire late, on resume, like after SIGSTOP) while the others run;
 * killing it discards its timers for good (a crash).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Scheduler, TimerHandle } from "../../src/cluster/scheduler.ts";
import { EventQueue } from "../sim/event_queue.ts";
import type { Prng } from "../sim/prng.ts";

interface VirtualTimer {
  due: number;
  readonly callback: () => void;
  /** 0: a timeout; else the period of an interval. */
  readonly period: number;
  cancelled: boolean;
  readonly clock: PeerClock | undefined;
}

/** Resolves after one real turn of the event loop: every pending microtask has run by then. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Wall-clock origin of virtual time (what `now()` answers at virtual 0). */
const EPOCH_MS = 1_700_000_000_000;

/**
 * The virtual clock and agenda of one simulation run.
 *
 * @example
 * ```ts ignore
 * const world = new VirtualWorld(new Prng(1));
 * const clock = world.clock(rng.fork());
 * clock.setTimeout(() => console.log(world.time), 50);
 * await world.runUntil(100); // prints 50
 * ```
 */
export class VirtualWorld implements Scheduler {
  /** Virtual milliseconds since the start of the run. */
  time = 0;
  /** Timer callbacks run so far. */
  steps = 0;
  readonly #agenda = new EventQueue<VirtualTimer>();
  readonly #random: Prng;
  /** Errors thrown by timer callbacks (they are bugs of the code under test or of the harness). */
  readonly thrown: unknown[] = [];

  constructor(random: Prng) {
    this.#random = random;
  }

  /** A clock for one peer (its own timers, pause and kill), drawing randomness from `random`. */
  clock(random: Prng): PeerClock {
    return new PeerClock(this, random);
  }

  /** @internal Schedules a timer; used by the clocks. */
  schedule(callback: () => void, ms: number, period: number, clock: PeerClock | undefined): VirtualTimer {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer: VirtualTimer = { due: this.time + delay, callback, period, cancelled: false, clock };
    this.#agenda.push(timer.due, timer);
    return timer;
  }

  /** @internal Puts a (held) timer back on the agenda at `due`. */
  reschedule(timer: VirtualTimer, due: number): void {
    timer.due = due;
    this.#agenda.push(due, timer);
  }

  /**
   * Runs timers in virtual-time order until the next one is due after `end` or `stop()` says so,
   * draining the microtask queue after each; then sets the clock to `end` (if it got there).
   */
  async runUntil(end: number, stop?: () => boolean): Promise<void> {
    await macrotask();
    for (;;) {
      if (stop?.()) return;
      let timer: VirtualTimer | undefined;
      while (this.#agenda.peekTime() <= end) {
        const next = this.#agenda.pop()!;
        if (next.cancelled) continue;
        if (next.clock !== undefined && next.clock.dead) continue;
        if (next.clock !== undefined && next.clock.paused) {
          next.clock.hold(next);
          continue;
        }
        timer = next;
        break;
      }
      if (timer === undefined) break;
      if (timer.due > this.time) this.time = timer.due;
      if (timer.period > 0) this.reschedule(timer, this.time + timer.period);
      else timer.cancelled = true;
      this.steps++;
      try {
        timer.callback();
      } catch (error) {
        this.thrown.push(error);
      }
      await macrotask();
    }
    if (end > this.time && end !== Infinity) this.time = end;
  }

  // The world is itself a Scheduler (for the bus and the harness): its timers never pause.
  /** See `Scheduler.now`. */
  now(): number {
    return EPOCH_MS + Math.floor(this.time);
  }
  /** See `Scheduler.monotonicNow`. */
  monotonicNow(): number {
    return this.time;
  }
  /** See `Scheduler.setTimeout`. */
  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.schedule(callback, ms, 0, undefined);
  }
  /** See `Scheduler.clearTimeout`. */
  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) (handle as VirtualTimer).cancelled = true;
  }
  /** See `Scheduler.setInterval`. */
  setInterval(callback: () => void, ms: number): TimerHandle {
    return this.schedule(callback, ms, Math.max(1, ms), undefined);
  }
  /** See `Scheduler.clearInterval`. */
  clearInterval(handle: TimerHandle | undefined): void {
    if (handle !== undefined) (handle as VirtualTimer).cancelled = true;
  }
  /** See `Scheduler.defer`. */
  defer(callback: () => void): void {
    queueMicrotask(callback);
  }
  /** See `Scheduler.yieldThen`. */
  yieldThen(callback: () => void): void {
    this.schedule(callback, 0, 0, undefined);
  }
  /** See `Scheduler.random`. */
  random(): number {
    return this.#random.next();
  }
}

/**
 * One peer's view of the world: a `Scheduler` whose timers can be frozen (pause) or discarded
 * (kill). Microtasks are never frozen: a pause happens between two timers, when none are pending.
 */
export class PeerClock implements Scheduler {
  readonly #world: VirtualWorld;
  readonly #random: Prng;
  #paused = false;
  #dead = false;
  #held: VirtualTimer[] = [];

  constructor(world: VirtualWorld, random: Prng) {
    this.#world = world;
    this.#random = random;
  }

  /** True while frozen. */
  get paused(): boolean {
    return this.#paused;
  }

  /** True once killed. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Freezes the peer's timers. */
  pause(): void {
    this.#paused = true;
  }

  /** Unfreezes them: every timer that came due meanwhile fires now, in its original order. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const held = this.#held;
    this.#held = [];
    for (const timer of held) if (!timer.cancelled) this.#world.reschedule(timer, this.#world.time);
  }

  /** Discards every timer of the peer, now and later (a crash). */
  kill(): void {
    this.#dead = true;
    this.#held = [];
  }

  /** @internal A due timer of a paused clock waits for the resume. */
  hold(timer: VirtualTimer): void {
    this.#held.push(timer);
  }

  /** Whole milliseconds, as `Date.now()` (the `Scheduler` contract): virtual time may be fractional. */
  now(): number {
    return EPOCH_MS + Math.floor(this.#world.time);
  }
  monotonicNow(): number {
    return this.#world.time;
  }
  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.#world.schedule(callback, ms, 0, this);
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) (handle as VirtualTimer).cancelled = true;
  }
  setInterval(callback: () => void, ms: number): TimerHandle {
    return this.#world.schedule(callback, ms, Math.max(1, ms), this);
  }
  clearInterval(handle: TimerHandle | undefined): void {
    if (handle !== undefined) (handle as VirtualTimer).cancelled = true;
  }
  defer(callback: () => void): void {
    queueMicrotask(callback);
  }
  yieldThen(callback: () => void): void {
    this.#world.schedule(callback, 0, 0, this);
  }
  random(): number {
    return this.#random.next();
  }
}
