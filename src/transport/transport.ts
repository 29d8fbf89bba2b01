/**
 * The subject-based transport seam. Everything above `src/transport/` talks to the network only
 * through {@linkcode Transport}; which implementation it has (in-process memory or NATS) is
 * invisible to it.
 *
 * @module
 */

/** Message headers (for example the W3C `traceparent`). Keys are case-sensitive. */
export type TransportHeaders = Readonly<Record<string, string>>;

/** A message delivered to a subscription handler. */
export interface TransportMessage {
  /** The subject the message was published on. */
  readonly subject: string;
  /** The payload. Handlers must not mutate it (it may be shared between subscribers). */
  readonly data: Uint8Array;
  /** Headers, if the publisher sent any. */
  readonly headers?: TransportHeaders | undefined;
}

/** Receives messages of a subscription. Exceptions thrown by a handler are caught by the transport. */
export type TransportHandler = (message: TransportMessage) => void;

/** A live subscription; `unsubscribe()` stops delivery at once and is idempotent. */
export interface TransportSubscription {
  /** The subject (possibly with NATS wildcards `*` and `>`) this subscription listens to. */
  readonly subject: string;
  /** True once unsubscribed or once the transport closed. */
  readonly closed: boolean;
  /** Stops delivery to this subscription. */
  unsubscribe(): void;
}

/**
 * Connection state of a transport:
 * `connected` -> (`disconnected` -> `reconnecting` -> `connected`)* -> `closed`.
 */
export type TransportState = "connecting" | "connected" | "disconnected" | "reconnecting" | "closed";

/** Events a transport emits (EventEmitter3 style). */
export interface TransportEvents {
  /** The connection state changed. */
  "state-changed": (state: TransportState, previous: TransportState) => void;
  /** A non-fatal failure (a handler threw, a publish failed while disconnected, ...). */
  error: (error: Error) => void;
}

/**
 * A subject-based message transport with NATS semantics: a message published on a subject reaches
 * every current subscriber of that subject; messages from one publisher arrive in publish order;
 * delivery is asynchronous (never inside the publisher's call stack).
 *
 * @example
 * ```ts
 * import { MemoryTransport } from "@hamok/core";
 * const transport = new MemoryTransport();
 * const sub = transport.subscribe("hamok.demo.all", (msg) => console.log(msg.data.length));
 * transport.publish("hamok.demo.all", new Uint8Array([1, 2, 3]));
 * sub.unsubscribe();
 * await transport.close();
 * ```
 */
export interface Transport {
  /** Current connection state. */
  readonly state: TransportState;
  /**
   * The largest message (payload and headers) the transport carries, in bytes, if it has a limit
   * (a NATS server's `max_payload`); `undefined`: no limit of its own. Peers build every message
   * under it and refuse writes that could not fit.
   */
  readonly maxPayload?: number | undefined;
  /**
   * Publishes `data` on `subject`. Never throws for network conditions; see the `error` event.
   * Throws `HamokClosedError` once `close()` has been called, and `HamokConfigError` for an invalid
   * subject (empty, whitespace, an empty token, a wildcard) or header (key not printable ASCII or
   * with `:`, value with CR/LF). `data` may be shared with the receivers: do not mutate it later.
   */
  publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void;
  /**
   * Subscribes `handler` to `subject`. Throws `HamokClosedError` if the transport is closed and
   * `HamokConfigError` for an invalid subject (`>` is allowed only as the last token).
   */
  subscribe(subject: string, handler: TransportHandler): TransportSubscription;
  /**
   * Resolves once everything published so far has been handed to the network. Rejects with
   * `HamokClosedError` once `close()` has been called.
   */
  flush(): Promise<void>;
  /** Closes every subscription and releases every resource (a NATS transport drains first). */
  close(): Promise<void>;
  /** Adds a listener for a transport event. */
  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this;
  /** Removes a listener for a transport event. */
  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this;
}
