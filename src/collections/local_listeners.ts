/**
 * The local listeners of an emitter: per event, an ordered list of functions, some of them
 * one-shot. Delivery isolates every listener: one that throws is reported and the others still run.
 *
 * @module
 */

type Listener = (...args: unknown[]) => void;

interface Registration {
  readonly fn: Listener;
  readonly once: boolean;
}

/**
 * Per-event listener lists with isolated delivery.
 *
 * @example
 * ```ts
 * import { LocalListeners } from "./local_listeners.ts";
 * const listeners = new LocalListeners();
 * listeners.add("tick", (n) => console.log(n), false);
 * listeners.deliver("tick", [1], (err) => console.error(err));
 * ```
 */
export class LocalListeners {
  readonly #byEvent = new Map<string, Registration[]>();

  /** Adds `fn` for `event`; a `once` listener is removed before its first call. */
  add(event: string, fn: Listener, once: boolean): void {
    const list = this.#byEvent.get(event);
    if (list === undefined) this.#byEvent.set(event, [{ fn, once }]);
    else this.#byEvent.set(event, [...list, { fn, once }]);
  }

  /** Removes the most recently added registration of `fn` for `event`; false if there was none. */
  remove(event: string, fn: Listener): boolean {
    const list = this.#byEvent.get(event);
    if (list === undefined) return false;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn !== fn) continue; // i < length
      if (list.length === 1) this.#byEvent.delete(event);
      else this.#byEvent.set(event, list.toSpliced(i, 1));
      return true;
    }
    return false;
  }

  /** Whether `event` has listeners. */
  has(event: string): boolean {
    return this.#byEvent.has(event);
  }

  /** Number of listeners of `event`. */
  count(event: string): number {
    return this.#byEvent.get(event)?.length ?? 0;
  }

  /** Removes every listener. */
  clear(): void {
    this.#byEvent.clear();
  }

  /** Calls every listener of `event` with `args`; a throw goes to `onError` and the rest still run. */
  deliver(event: string, args: readonly unknown[], onError: (error: unknown, event: string) => void): void {
    const list = this.#byEvent.get(event);
    if (list === undefined) return;
    // Lists are replaced, never mutated in place, so iterating `list` is safe while listeners change.
    for (const registration of list) {
      if (registration.once) this.remove(event, registration.fn);
    }
    for (const registration of list) {
      try {
        registration.fn(...args);
      } catch (error) {
        onError(error, event);
      }
    }
  }
}
