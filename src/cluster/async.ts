/**
 * Small promise, timeout and abort helpers shared by the peer and its cluster pieces.
 *
 * @module
 */

import { HamokAbortedError, HamokError, HamokTimeoutError } from "../errors.ts";
import { REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";

/**
 * Resolves after `ms` milliseconds of the scheduler's time.
 *
 * @example
 * ```ts ignore
 * await delay(50, scheduler);
 * ```
 */
export function delay(ms: number, scheduler: Scheduler = REAL_SCHEDULER): Promise<void> {
  return new Promise((resolve) => scheduler.setTimeout(resolve, ms));
}

/**
 * Races `promise` against a timeout; on timeout runs `onTimeout` and rejects with `HamokTimeoutError`.
 *
 * @example
 * ```ts ignore
 * const index = await withTimeout(driver.readIndex(ctx), 1000, () => driver.cancelRead(ctx), scheduler);
 * ```
 */
export function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  onTimeout: () => void,
  scheduler: Scheduler = REAL_SCHEDULER,
): Promise<T> {
  if (timeoutMs <= 0) {
    onTimeout();
    return Promise.reject(new HamokTimeoutError(`timed out`, { timeoutMs: 0 }));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = scheduler.setTimeout(() => {
      onTimeout();
      reject(new HamokTimeoutError(`timed out after ${timeoutMs} ms`, { timeoutMs }));
    }, timeoutMs);
    promise.then(
      (value) => {
        scheduler.clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        scheduler.clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Throws the abort reason (as a `HamokError`) if `signal` is aborted.
 *
 * @example
 * ```ts ignore
 * throwIfAborted(signal);
 * ```
 */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw asAbortError(signal.reason);
}

/**
 * The error to reject with for an abort `reason`: the reason itself if it is a `HamokError`, else a
 * `HamokAbortedError` caused by it.
 *
 * @example
 * ```ts ignore
 * reject(asAbortError(signal.reason));
 * ```
 */
export function asAbortError(reason: unknown): Error {
  if (reason instanceof HamokError) return reason;
  return new HamokAbortedError("the operation was aborted", { cause: reason });
}

/**
 * `error` if it is an `Error`, else a `HamokError` carrying it as its cause.
 *
 * @example
 * ```ts ignore
 * host.reportError(asError(thrown));
 * ```
 */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new HamokError(String(error), "HAMOK_ERROR", { cause: error });
}
