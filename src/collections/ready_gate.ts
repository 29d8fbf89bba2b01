/**
 * The `ready` promise of a collection: one shared read barrier through the host, forgotten when it
 * fails so that the next `ready` tries again.
 *
 * @module
 */

import type { CollectionHost } from "./collection_host.ts";

/**
 * Memoizes `host.whenReady(timeoutMs)` until it rejects.
 *
 * @example
 * ```ts ignore
 * readonly #ready = new ReadyGate();
 * get ready(): Promise<void> {
 *   return this.#ready.get(this.#host, this.requestTimeoutInMs);
 * }
 * ```
 */
export class ReadyGate {
  #promise: Promise<void> | undefined;

  /** The shared promise, started on the first call (and again after a failure). */
  get(host: Pick<CollectionHost, "whenReady">, timeoutMs: number): Promise<void> {
    if (this.#promise === undefined) {
      const promise = host.whenReady(timeoutMs);
      this.#promise = promise;
      promise.catch(() => {
        if (this.#promise === promise) this.#promise = undefined;
      });
    }
    return this.#promise;
  }
}
