/**
 * {@linkcode MemoryTransport}: an in-process {@linkcode Transport}, one endpoint on a
 * {@linkcode MemoryBus}.
 *
 * @module
 */

import { EventEmitter } from "eventemitter3";
import { HamokClosedError, HamokConfigError, HamokTransportError } from "../errors.ts";
import { MemoryBus, type MemoryEndpoint, routerOf } from "./memory_bus.ts";
import type {
  Transport,
  TransportEvents,
  TransportHandler,
  TransportHeaders,
  TransportState,
  TransportSubscription,
} from "./transport.ts";

/** Options of the {@linkcode MemoryTransport} constructor. */
export interface MemoryTransportOptions {
  /** The bus to attach to. Default: {@linkcode MemoryBus.default}, shared by the whole process. */
  bus?: MemoryBus;
  /**
   * The endpoint id on the bus, used to address this transport in fault hooks. Must be unique on
   * the bus while attached. Default: a generated `memory-<n>`.
   */
  id?: string;
  /**
   * The largest message this endpoint publishes, in bytes, like a NATS server's `max_payload`: a
   * larger publish is dropped and reported on `error` (as NATS does). Default: no limit.
   */
  maxPayload?: number;
}

/**
 * An in-process {@linkcode Transport} with NATS semantics (see {@linkcode MemoryBus} for the
 * delivery and ordering rules). Transports created without a `bus` option join
 * {@linkcode MemoryBus.default}, so peers created in one process find each other with no set-up.
 *
 * The state is `connected` from construction until `close()`, then `closed`. After `close()`,
 * `publish`, `subscribe` and `flush` throw (or reject with) {@linkcode HamokClosedError}. A handler
 * that throws is reported as a {@linkcode HamokTransportError} (with the thrown value as `cause`)
 * on the `error` event; other subscriptions still receive the message. `publish` throws
 * {@linkcode HamokConfigError} for an invalid subject (empty, with whitespace, an empty token or a
 * wildcard). The payload is not copied: do not mutate it after publishing. Headers are copied.
 *
 * @example
 * ```ts
 * import { MemoryTransport } from "@hamok/core";
 * const a = new MemoryTransport();
 * const b = new MemoryTransport();
 * b.subscribe("hamok.demo.peer.b", (msg) => console.log(msg.subject, msg.data));
 * a.publish("hamok.demo.peer.b", new Uint8Array([1, 2, 3]), { traceparent: "00-..." });
 * await a.close();
 * await b.close();
 * ```
 */
export class MemoryTransport implements Transport {
  /** The bus this transport is attached to. */
  readonly bus: MemoryBus;
  readonly #endpoint: MemoryEndpoint;
  readonly #events = new EventEmitter();
  #state: TransportState = "connected";
  #closing: Promise<void> | undefined;
  readonly #maxPayload: number | undefined;

  /** Attaches a new endpoint to `options.bus` (default {@linkcode MemoryBus.default}). */
  constructor(options: MemoryTransportOptions = {}) {
    this.bus = options.bus ?? MemoryBus.default;
    const maxPayload = options.maxPayload;
    if (maxPayload !== undefined && (!Number.isInteger(maxPayload) || maxPayload <= 0)) {
      throw new HamokConfigError(`maxPayload must be a positive integer, got ${String(maxPayload)}`);
    }
    this.#maxPayload = maxPayload;
    this.#endpoint = routerOf(this.bus).attach(options.id, {
      handlerFailed: (subscription: TransportSubscription, error: unknown): void => {
        try {
          this.#events.emit(
            "error",
            new HamokTransportError(`a handler of subscription '${subscription.subject}' threw`, {
              cause: error,
            }),
          );
        } catch {
          // An `error` listener that throws must not break delivery to other subscriptions.
        }
      },
    });
  }

  /** The endpoint id on the bus (the `id` option or a generated one). */
  get id(): string {
    return this.#endpoint.id;
  }

  /** `connected` until closed, then `closed`. */
  get state(): TransportState {
    return this.#state;
  }

  /** See {@linkcode MemoryTransportOptions.maxPayload}. */
  get maxPayload(): number | undefined {
    return this.#maxPayload;
  }

  /** Publishes on the bus. Throws {@linkcode HamokClosedError} after `close()`. */
  publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    if (this.#state === "closed") {
      throw new HamokClosedError(`memory transport '${this.#endpoint.id}' is closed; cannot publish`);
    }
    if (this.#maxPayload !== undefined && data.byteLength > this.#maxPayload) {
      this.#events.emit(
        "error",
        new HamokTransportError(
          `a message of ${data.byteLength} bytes on '${subject}' exceeds maxPayload ${this.#maxPayload}; dropped`,
        ),
      );
      return;
    }
    this.#endpoint.publish(subject, data, headers);
  }

  /** Subscribes `handler` to `subject` (NATS wildcards allowed). */
  subscribe(subject: string, handler: TransportHandler): TransportSubscription {
    if (this.#state === "closed") {
      throw new HamokClosedError(`memory transport '${this.#endpoint.id}' is closed; cannot subscribe`);
    }
    return this.#endpoint.subscribe(subject, handler);
  }

  /**
   * Resolves once every message published on the bus so far (except those held back by a delay
   * fault) has been delivered.
   */
  flush(): Promise<void> {
    if (this.#state === "closed") {
      return Promise.reject(new HamokClosedError(`memory transport '${this.#endpoint.id}' is closed`));
    }
    return new Promise<void>((resolve) => this.#endpoint.router.enqueueCallback(resolve));
  }

  /**
   * Closes every subscription (messages already queued for them are not delivered), drops the
   * deliveries delay faults hold for this endpoint and detaches from the bus. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      const previous = this.#state;
      this.#state = "closed";
      this.#endpoint.detach();
      this.#events.emit("state-changed", "closed", previous);
      this.#closing = Promise.resolve();
    }
    return this.#closing;
  }

  /** Adds a listener for a transport event (`state-changed`, `error`). */
  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Removes a listener added with {@linkcode MemoryTransport.on}. */
  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    this.#events.off(event, listener);
    return this;
  }
}
