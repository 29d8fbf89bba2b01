/**
 * An EventEmitter3 whose listeners cannot break the code that emits: a listener that throws is
 * reported and the other listeners still run. Collections emit their change events while a
 * committed entry is applied; a throwing application listener must never interrupt that.
 *
 * @module
 */

import { EventEmitter } from "eventemitter3";

type Fn = (...args: unknown[]) => void;

/**
 * EventEmitter3 with isolated listeners: the base of {@linkcode HamokQueue},
 * {@linkcode HamokRemoteMap} and {@linkcode HamokSubscriptionTable}. Each listener added with
 * `on`, `addListener` or `once` runs inside its own try/catch: if it throws, the failure goes to
 * the subclass's `listenerFailed` (the collections report a `HamokListenerError` on the peer's
 * `error` event, or log it when nobody listens there) and the remaining listeners still run.
 * `off`/`removeListener` take the function that was added, as with a plain EventEmitter3.
 *
 * Exported from the package as a type only: it documents the listener behaviour of the
 * collections; applications do not construct or extend it.
 *
 * @example
 * ```ts ignore
 * import type { HamokQueueEvents, IsolatedEventEmitter } from "@hamok/core";
 * const queue = hamok.createQueue<string>({ queueId: "jobs" });
 * const events: IsolatedEventEmitter<HamokQueueEvents<string>> = queue;
 * events.on("add", () => {
 *   throw new Error("bug in a listener"); // reported as a HamokListenerError on hamok's "error"
 * });
 * events.on("add", (item) => console.log("added", item)); // still called
 * ```
 */
export class IsolatedEventEmitter<Events extends EventEmitter.ValidEventTypes> extends EventEmitter<Events> {
  readonly #wrappers = new Map<Fn, Map<unknown, Fn[]>>();
  readonly #safe = new WeakSet<Fn>();
  readonly #onFailure: ((error: unknown, event: string) => void) | undefined;

  /** Creates an emitter reporting listener failures to `onFailure` (default: dropped). */
  constructor(onFailure?: (error: unknown, event: string) => void) {
    super();
    this.#onFailure = onFailure;
  }

  /** Where a listener failure goes; override, or pass `onFailure` to the constructor. */
  protected listenerFailed(error: unknown, event: string): void {
    this.#onFailure?.(error, event);
  }

  #wrap(event: unknown, fn: Fn, once: boolean): Fn {
    const safe: Fn = (...args) => {
      if (once) this.#forget(event, fn, safe);
      try {
        fn(...args);
      } catch (error) {
        this.listenerFailed(error, String(event));
      }
    };
    this.#safe.add(safe);
    let byEvent = this.#wrappers.get(fn);
    if (byEvent === undefined) this.#wrappers.set(fn, byEvent = new Map());
    const list = byEvent.get(event);
    if (list === undefined) byEvent.set(event, [safe]);
    else list.push(safe);
    return safe;
  }

  #forget(event: unknown, fn: Fn, safe: Fn): void {
    const byEvent = this.#wrappers.get(fn);
    const list = byEvent?.get(event);
    if (list === undefined) return;
    const at = list.indexOf(safe);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) byEvent!.delete(event);
    if (byEvent!.size === 0) this.#wrappers.delete(fn);
  }

  #unwrap(event: unknown, fn: Fn): Fn | undefined {
    const byEvent = this.#wrappers.get(fn);
    const list = byEvent?.get(event);
    if (list === undefined || list.length === 0) return undefined;
    const safe = list.pop()!;
    if (list.length === 0) byEvent!.delete(event);
    if (byEvent!.size === 0) this.#wrappers.delete(fn);
    return safe;
  }

  /** Adds an isolated listener. */
  override on<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn: EventEmitter.EventListener<Events, T>,
    context?: unknown,
  ): this {
    return super.on(
      event,
      this.#wrap(event, fn as Fn, false) as EventEmitter.EventListener<Events, T>,
      context,
    );
  }

  /** Adds an isolated listener (alias of {@linkcode on}). */
  override addListener<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn: EventEmitter.EventListener<Events, T>,
    context?: unknown,
  ): this {
    return this.on(event, fn, context);
  }

  /** Adds an isolated listener that is removed after its first call. */
  override once<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn: EventEmitter.EventListener<Events, T>,
    context?: unknown,
  ): this {
    return super.once(
      event,
      this.#wrap(event, fn as Fn, true) as EventEmitter.EventListener<Events, T>,
      context,
    );
  }

  /** Removes a listener added with `on`, `addListener` or `once`. */
  override off<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn?: EventEmitter.EventListener<Events, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    // EventEmitter3 removes a fired `once` listener by its wrapper: pass that straight through
    if (fn === undefined || this.#safe.has(fn as Fn)) return super.off(event, fn, context, once);
    const safe = this.#unwrap(event, fn as Fn);
    if (safe === undefined) return this;
    return super.off(event, safe as EventEmitter.EventListener<Events, T>, context, once);
  }

  /** Removes a listener (alias of {@linkcode off}). */
  override removeListener<T extends EventEmitter.EventNames<Events>>(
    event: T,
    fn?: EventEmitter.EventListener<Events, T>,
    context?: unknown,
    once?: boolean,
  ): this {
    return this.off(event, fn, context, once);
  }

  /** Removes every listener (of `event`, or of all events). */
  override removeAllListeners(event?: EventEmitter.EventNames<Events>): this {
    if (event === undefined) this.#wrappers.clear();
    else for (const byEvent of this.#wrappers.values()) byEvent.delete(event);
    return super.removeAllListeners(event);
  }
}
