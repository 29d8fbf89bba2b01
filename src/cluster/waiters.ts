/**
 * Condition waiters of a peer: promises that resolve once a condition holds, re-checked whenever
 * the peer's state may have changed, bounded by a timeout and cancellable by an abort signal or by
 * the peer closing.
 *
 * @module
 */

import { HamokClosedError, HamokTimeoutError } from "../errors.ts";
import { asAbortError } from "./async.ts";
import { REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";

interface Waiter {
  readonly check: () => boolean;
  readonly resolve: () => void;
  readonly close: () => void;
}

/**
 * Waits on conditions of a peer's state. The owner calls {@linkcode Waiters.check} after every
 * change that may satisfy a condition (an applied entry, a new leader, ...) and
 * {@linkcode Waiters.close} when it closes.
 *
 * @example
 * ```ts ignore
 * let leader: string | undefined;
 * const waiters = new Waiters(() => closed);
 * const known = waiters.waitFor(() => leader !== undefined, 1000, "a leader");
 * leader = "peer-2";
 * waiters.check(); // `known` resolves
 * ```
 */
export class Waiters {
  readonly #isClosed: () => boolean;
  readonly #scheduler: Scheduler;
  #waiters: Waiter[] = [];

  /**
   * Creates the waiters of an owner; `isClosed` says whether the owner has closed (no new waits).
   * Timeouts run on `scheduler`.
   */
  constructor(isClosed: () => boolean, scheduler: Scheduler = REAL_SCHEDULER) {
    this.#isClosed = isClosed;
    this.#scheduler = scheduler;
  }

  /** How many waits are pending. */
  get size(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves once `check()` is true (checked now and on every {@linkcode check}); rejects with
   * `HamokTimeoutError` after `timeoutMs`, with the abort reason when `signal` aborts, and with
   * `HamokClosedError` when the owner is or becomes closed. `what` names the condition in errors.
   */
  waitFor(check: () => boolean, timeoutMs: number, what: string, signal?: AbortSignal): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.#isClosed()) return Promise.reject(new HamokClosedError("the peer is closed"));
    const scheduler = this.#scheduler;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve: () => {
          scheduler.clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        close: () => {
          scheduler.clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          reject(new HamokClosedError(`the peer closed while waiting for ${what}`));
        },
      };
      const remove = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        scheduler.clearTimeout(timer);
        remove();
        reject(asAbortError(signal?.reason));
      };
      const timer = scheduler.setTimeout(() => {
        remove();
        reject(new HamokTimeoutError(`waiting for ${what} timed out after ${timeoutMs} ms`, { timeoutMs }));
      }, Math.max(1, timeoutMs));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Re-checks every pending condition and resolves the waits whose condition now holds. */
  check(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.check()) waiter.resolve();
      else still.push(waiter);
    }
    this.#waiters = still;
  }

  /** Rejects every pending wait with `HamokClosedError` (the owner closed). */
  close(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.close();
  }
}
