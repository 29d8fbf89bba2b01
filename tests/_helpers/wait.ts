/**
 * Bounded waiting helpers for tests: wait on a condition or an event, never on a bare sleep.
 * Every timer started here is cleared before the returned promise settles, so a test runner is
 * never kept alive by a helper.
 *
 * @module
 */

/** Options of {@linkcode waitFor}. */
export interface WaitForOptions {
  /** Give up (reject) after this many milliseconds. */
  timeoutMs: number;
  /** How often the condition is polled, in milliseconds. Default 5. */
  intervalMs?: number;
  /** Text put into the timeout error, to say what was awaited. */
  message?: string;
}

/** The error {@linkcode waitFor} and {@linkcode waitForEvent} reject with when the bound passes. */
export class WaitTimeoutError extends Error {
  /** The bound that passed, in milliseconds. */
  readonly timeoutMs: number;
  /** Creates the error. */
  constructor(message: string, timeoutMs: number) {
    super(message);
    this.name = "WaitTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Resolves as soon as `condition()` returns (or resolves to) a truthy value; it is checked at once,
 * then every `intervalMs`. Rejects with {@linkcode WaitTimeoutError} after `timeoutMs`, or with the
 * error the condition throws.
 *
 * @example
 * ```ts
 * const got: number[] = [];
 * transport.subscribe("a", () => got.push(1));
 * transport.publish("a", new Uint8Array(1));
 * await waitFor(() => got.length === 1, { timeoutMs: 1000, message: "delivery" });
 * ```
 */
export function waitFor(
  condition: () => boolean | Promise<boolean>,
  options: WaitForOptions,
): Promise<void> {
  const { timeoutMs, intervalMs = 5, message } = options;
  const deadline = Date.now() + timeoutMs;
  return new Promise<void>((resolve, reject) => {
    const check = async (): Promise<void> => {
      let ok: boolean;
      try {
        ok = await condition();
      } catch (err) {
        reject(err);
        return;
      }
      if (ok) {
        resolve();
        return;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        reject(
          new WaitTimeoutError(
            `waitFor timed out after ${timeoutMs} ms${message ? `: ${message}` : ""}`,
            timeoutMs,
          ),
        );
        return;
      }
      setTimeout(check, Math.min(intervalMs, left));
    };
    void check();
  });
}

/** Anything with EventEmitter-style `on`/`off` (EventEmitter3, node:events, a Transport). */
export interface EventSource {
  // deno-lint-ignore no-explicit-any
  on(event: any, listener: (...args: any[]) => void): unknown;
  // deno-lint-ignore no-explicit-any
  off(event: any, listener: (...args: any[]) => void): unknown;
}

/** Options of {@linkcode waitForEvent}. */
export interface WaitForEventOptions {
  /** Give up (reject) after this many milliseconds. */
  timeoutMs: number;
  /** Only an emission whose arguments pass this filter resolves the wait. */
  filter?: (...args: unknown[]) => boolean;
  /** Text put into the timeout error, to say what was awaited. */
  message?: string;
}

/**
 * Resolves with the arguments of the next emission of `event` on `emitter` (that passes
 * `filter`, if given); rejects with {@linkcode WaitTimeoutError} after `timeoutMs`. The listener
 * is removed either way.
 *
 * @example
 * ```ts
 * const [state] = await waitForEvent(transport, "state-changed", {
 *   timeoutMs: 5000,
 *   filter: (s) => s === "connected",
 * });
 * ```
 */
export function waitForEvent(
  emitter: EventSource,
  event: string,
  options: WaitForEventOptions,
): Promise<unknown[]> {
  const { timeoutMs, filter, message } = options;
  return new Promise<unknown[]>((resolve, reject) => {
    const listener = (...args: unknown[]): void => {
      if (filter !== undefined) {
        let pass: boolean;
        try {
          pass = filter(...args);
        } catch (err) {
          done();
          reject(err);
          return;
        }
        if (!pass) return;
      }
      done();
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(
        new WaitTimeoutError(
          `waitForEvent("${event}") timed out after ${timeoutMs} ms${message ? `: ${message}` : ""}`,
          timeoutMs,
        ),
      );
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      emitter.off(event, listener);
    };
    emitter.on(event, listener);
  });
}
