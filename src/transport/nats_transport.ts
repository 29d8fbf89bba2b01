/**
 * {@linkcode NatsTransport}: the {@linkcode Transport} over a NATS connection (`nats` v2).
 *
 * @module
 */

import { EventEmitter } from "eventemitter3";
import {
  connect,
  type ConnectionOptions,
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type NatsError,
  type QueuedIterator,
  type Status,
  type Subscription,
} from "nats";
import {
  HamokClosedError,
  HamokConfigError,
  HamokPayloadTooLargeError,
  HamokTransportError,
} from "../errors.ts";
import { isValidPublishSubject, isValidSubscribeSubject } from "./subject.ts";
import type {
  Transport,
  TransportEvents,
  TransportHandler,
  TransportHeaders,
  TransportMessage,
  TransportState,
  TransportSubscription,
} from "./transport.ts";

/** Options of the {@linkcode NatsTransport} constructor. */
export interface NatsTransportOptions {
  /**
   * Whether the transport owns the connection: if true, `close()` drains and closes it; if false,
   * `close()` drains only the subscriptions this transport made and leaves the connection open.
   * Default false (the constructor wraps a connection the application owns);
   * {@linkcode NatsTransport.connect} sets it to true.
   */
  ownsConnection?: boolean;
  /**
   * Upper bound of `close()`'s drain, in milliseconds; after it the connection (if owned) is
   * closed without waiting further. Default 5000.
   */
  closeTimeoutMs?: number | undefined;
}

/** Options of {@linkcode NatsTransport.connect}: `nats` connection options plus transport options. */
export interface NatsTransportConnectOptions extends ConnectionOptions {
  /** Upper bound of `close()`'s drain, in milliseconds. Default 5000. */
  closeTimeoutMs?: number | undefined;
}

/** Defaults applied by {@linkcode NatsTransport.connect} unless the caller sets them. */
export const NATS_TRANSPORT_DEFAULTS: Readonly<{ maxReconnectAttempts: number; reconnectTimeWait: number }> =
  Object.freeze({
    /** Reconnect forever. */
    maxReconnectAttempts: -1,
    /** Wait 250 ms between reconnect attempts to the same server. */
    reconnectTimeWait: 250,
  });

/** Bound of the cache of subjects already validated for publishing. */
const MAX_VALIDATED_SUBJECTS = 10_000;

/** The `max_payload` assumed until a server has said otherwise (the nats-server default). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** Error codes of `nats` that mean the caller passed something invalid. */
const CALLER_ERROR_CODES = new Set(["BAD_SUBJECT", "BAD_HEADER", "BAD_PAYLOAD"]);

function natsCode(error: unknown): string | undefined {
  const code = (error as Partial<NatsError> | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function toMsgHdrs(headers: TransportHeaders): MsgHdrs | undefined {
  let hdrs: MsgHdrs | undefined;
  for (const key in headers) {
    const value = headers[key];
    if (value !== undefined) (hdrs ??= natsHeaders()).set(key, value);
  }
  return hdrs;
}

/** Bytes the headers take on the wire (`nats` sends `MsgHdrs.toString()` UTF-8 encoded). */
function headerBytes(hdrs: MsgHdrs | undefined): number {
  return hdrs === undefined ? 0 : new TextEncoder().encode(hdrs.toString()).byteLength;
}

function fromMsgHdrs(hdrs: MsgHdrs): TransportHeaders | undefined {
  let out: Record<string, string> | undefined;
  for (const key of hdrs.keys()) {
    (out ??= {})[key] = hdrs.get(key);
  }
  return out;
}

/**
 * A received message as handlers see it. The subject is decoded from the wire bytes only when a
 * handler reads it (the peer's own handlers never do; nats.js decodes it anew for each message).
 */
class NatsTransportMessage implements TransportMessage {
  readonly data: Uint8Array;
  readonly headers: TransportHeaders | undefined;
  readonly #msg: Msg;

  constructor(msg: Msg) {
    this.#msg = msg;
    this.data = msg.data;
    const hdrs = msg.headers;
    this.headers = hdrs === undefined ? undefined : fromMsgHdrs(hdrs);
  }

  get subject(): string {
    return this.#msg.subject;
  }
}

class NatsTransportSubscription implements TransportSubscription {
  readonly subject: string;
  #closed = false;
  #sub: Subscription | undefined;
  readonly #owner: Set<NatsTransportSubscription>;

  constructor(subject: string, owner: Set<NatsTransportSubscription>) {
    this.subject = subject;
    this.#owner = owner;
  }

  get closed(): boolean {
    return this.#closed || (this.#sub !== undefined && this.#sub.isClosed());
  }

  attach(sub: Subscription): void {
    this.#sub = sub;
  }

  /** True while messages may still be handed to the handler. */
  get live(): boolean {
    return !this.#closed;
  }

  unsubscribe(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#owner.delete(this);
    try {
      this.#sub?.unsubscribe();
    } catch {
      // the connection is already closed: nothing left to undo
    }
  }

  /** Lets messages already on the way reach the handler, then closes. Never rejects. */
  async drain(): Promise<void> {
    const sub = this.#sub;
    if (!this.#closed && sub !== undefined && !sub.isClosed()) {
      try {
        await sub.drain();
      } catch {
        // connection closed or subscription gone: nothing to drain
      }
    }
    this.#closed = true;
    this.#owner.delete(this);
  }

  /** Marks closed without talking to the server (the connection is gone). */
  markClosed(): void {
    this.#closed = true;
    this.#owner.delete(this);
  }
}

/**
 * The {@linkcode Transport} over NATS. Subjects, payloads and headers map 1:1 onto NATS
 * subjects, payloads and NATS headers (a `MsgHdrs` is built only when headers are given).
 *
 * Create it from connection options with {@linkcode NatsTransport.connect} (it then owns the
 * connection and reconnects forever, 250 ms apart, unless told otherwise), or wrap a connection
 * the application already has with `new NatsTransport(nc)`: `close()` then drains and removes only
 * the subscriptions this transport made and leaves the connection open.
 *
 * Connection changes surface as `state-changed` events (`connected` -> `disconnected` ->
 * `reconnecting` -> `connected` ... -> `closed`), never as exceptions or unhandled rejections;
 * `nats` re-subscribes by itself after a reconnect. Publishing while disconnected does not throw:
 * the `nats` client buffers the message, but it discards that buffer on every reconnect attempt,
 * so such a message is usually lost (the transport is at-most-once; the protocol above retries).
 * The first publish of each disconnected period reports this once as a
 * {@linkcode HamokTransportError} on the `error` event.
 *
 * Errors: after `close()` has been called, `publish` and `subscribe` throw and `flush` rejects with
 * {@linkcode HamokClosedError}; an invalid subject or header throws {@linkcode HamokConfigError};
 * a message (payload and headers) over the server's `max_payload` throws
 * {@linkcode HamokPayloadTooLargeError} (while disconnected, against the `max_payload` of the server
 * it was last connected to); a handler that throws, a server error and a publish that fails for
 * network reasons are reported on the `error` event as {@linkcode HamokTransportError}. A
 * connection that closes by itself (reconnect attempts exhausted, when `maxReconnectAttempts` is
 * not -1) is reported as a {@linkcode HamokTransportError} and a `state-changed` to `closed`: the
 * transport is then closed for good.
 *
 * @example
 * ```ts
 * import { NatsTransport } from "@hamok/core";
 * const transport = await NatsTransport.connect({ servers: "nats://127.0.0.1:4222" });
 * transport.on("state-changed", (state, previous) => console.log(previous, "->", state));
 * transport.subscribe("hamok.demo.all", (msg) => console.log(msg.subject, msg.headers));
 * transport.publish("hamok.demo.all", new Uint8Array([1]), { traceparent: "00-..." });
 * await transport.close();
 * ```
 */
export class NatsTransport implements Transport {
  /**
   * Connects to NATS and returns a transport that owns the connection. Applies
   * {@linkcode NATS_TRANSPORT_DEFAULTS} for options the caller leaves out. Rejects with
   * {@linkcode HamokTransportError} if the connection cannot be made.
   *
   * @example
   * ```ts
   * const transport = await NatsTransport.connect({ servers: ["nats://127.0.0.1:4222"] });
   * ```
   */
  static async connect(options: NatsTransportConnectOptions = {}): Promise<NatsTransport> {
    const { closeTimeoutMs, ...connectionOptions } = options;
    let nc: NatsConnection;
    try {
      nc = await connect({ ...NATS_TRANSPORT_DEFAULTS, ...connectionOptions });
    } catch (error) {
      const servers = connectionOptions.servers ?? "the default server";
      throw new HamokTransportError(`cannot connect to NATS at ${String(servers)}`, { cause: error });
    }
    return new NatsTransport(nc, { ownsConnection: true, closeTimeoutMs });
  }

  /** The underlying NATS connection. */
  readonly connection: NatsConnection;
  /** Whether `close()` also closes the connection. */
  readonly ownsConnection: boolean;

  readonly #events = new EventEmitter();
  readonly #subs = new Set<NatsTransportSubscription>();
  readonly #validSubjects = new Set<string>();
  readonly #closeTimeoutMs: number;
  #state: TransportState;
  #closing: Promise<void> | undefined;
  #status: { stop?: () => void } | undefined;
  #warnedDisconnectedPublish = false;
  /** The `max_payload` of the server last connected to (the `nats` client forgets it while reconnecting). */
  #maxPayload = DEFAULT_MAX_PAYLOAD;
  /** Resolves when the state becomes `closed` (pending flushes then reject). */
  readonly #whenClosed: Promise<void>;
  #resolveClosed!: () => void;

  /** Wraps an open NATS connection. See {@linkcode NatsTransportOptions} for ownership. */
  constructor(connection: NatsConnection, options: NatsTransportOptions = {}) {
    this.connection = connection;
    this.ownsConnection = options.ownsConnection ?? false;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.#whenClosed = new Promise((resolve) => (this.#resolveClosed = resolve));
    if (connection.isClosed()) {
      this.#state = "closed";
      this.#closing = Promise.resolve();
      this.#resolveClosed();
      return;
    }
    this.#maxPayload = this.maxPayload;
    this.#state = "connected";
    this.#watch();
  }

  /** Current connection state. */
  get state(): TransportState {
    return this.#state;
  }

  /**
   * The server's `max_payload`: while disconnected, that of the server last connected to (1 MiB
   * if no server ever said).
   */
  get maxPayload(): number {
    const limit = this.connection.info?.max_payload;
    return typeof limit === "number" && limit > 0 ? limit : this.#maxPayload;
  }

  /**
   * Publishes `data` on `subject` (with NATS headers if `headers` has entries). Never throws for
   * network conditions; see the class documentation.
   */
  publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    if (this.#closing !== undefined) {
      throw new HamokClosedError("NATS transport is closed; cannot publish");
    }
    if (!this.#validSubjects.has(subject)) this.#validatePublishSubject(subject);
    let hdrs: MsgHdrs | undefined;
    try {
      hdrs = headers === undefined ? undefined : toMsgHdrs(headers);
    } catch (error) {
      this.#publishFailed(subject, data, undefined, error);
      return;
    }
    // While reconnecting the `nats` client has no server INFO and checks no size at all: check
    // against the last server's limit, so nothing the server would refuse is accepted meanwhile.
    if (this.connection.info === undefined) this.#checkSize(subject, data, hdrs);
    if (this.#state !== "connected") this.#warnDisconnectedPublish();
    try {
      if (hdrs === undefined) this.connection.publish(subject, data);
      else this.connection.publish(subject, data, { headers: hdrs });
    } catch (error) {
      this.#publishFailed(subject, data, hdrs, error);
    }
  }

  /** Subscribes `handler` to `subject` (NATS wildcards allowed). */
  subscribe(subject: string, handler: TransportHandler): TransportSubscription {
    if (this.#closing !== undefined) {
      throw new HamokClosedError("NATS transport is closed; cannot subscribe");
    }
    if (!isValidSubscribeSubject(subject)) {
      throw new HamokConfigError(`invalid subscription subject '${subject}'`);
    }
    const handle = new NatsTransportSubscription(subject, this.#subs);
    const callback = (error: NatsError | null, msg: Msg): void => {
      if (!handle.live) return;
      if (error !== null) {
        this.#emitError(new HamokTransportError(`subscription '${subject}' failed`, { cause: error }));
        return;
      }
      const message = new NatsTransportMessage(msg);
      try {
        handler(message);
      } catch (thrown) {
        this.#emitError(
          new HamokTransportError(`a handler of subscription '${subject}' threw`, { cause: thrown }),
        );
      }
    };
    try {
      handle.attach(this.connection.subscribe(subject, { callback }));
    } catch (error) {
      const code = natsCode(error);
      if (code === "CONNECTION_CLOSED" || code === "CONNECTION_DRAINING") {
        throw new HamokClosedError("the NATS connection is closed; cannot subscribe", { cause: error });
      }
      throw new HamokTransportError(`cannot subscribe to '${subject}'`, { cause: error });
    }
    this.#subs.add(handle);
    return handle;
  }

  /**
   * Resolves once the server has received everything published so far (a PING/PONG round trip).
   * Rejects with {@linkcode HamokTransportError} if the connection drops meanwhile, and with
   * {@linkcode HamokClosedError} if the transport closes first.
   */
  async flush(): Promise<void> {
    if (this.#closing !== undefined) throw new HamokClosedError("NATS transport is closed; cannot flush");
    // `nats` never settles a flush still waiting for its PONG when the connection closes.
    const outcome = await Promise.race([
      this.connection.flush().then(() => undefined, (error: unknown) => ({ error })),
      this.#whenClosed.then(() => "closed" as const),
    ]);
    if (outcome === "closed") {
      throw new HamokClosedError("NATS transport closed before the flush completed");
    }
    if (outcome !== undefined) {
      throw new HamokTransportError("NATS flush failed", { cause: outcome.error });
    }
  }

  /**
   * Drains and closes. An owned connection is drained (pending messages reach the handlers, then
   * the connection closes); otherwise only this transport's subscriptions are drained and the
   * connection is flushed. Bounded by `closeTimeoutMs`. Never rejects; idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Adds a listener for a transport event (`state-changed`, `error`). */
  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    this.#events.on(event, listener);
    return this;
  }

  /** Removes a listener added with {@linkcode NatsTransport.on}. */
  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    this.#events.off(event, listener);
    return this;
  }

  async #close(): Promise<void> {
    const nc = this.connection;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.#closeTimeoutMs);
    });
    try {
      const connected = this.#state === "connected" && !nc.isClosed();
      if (this.ownsConnection) {
        if (connected && !nc.isDraining()) {
          const drained = nc.drain().then(() => "drained" as const, (error: unknown) => error);
          const outcome = await Promise.race([drained, timeout]);
          if (outcome !== "drained" && outcome !== "timeout") {
            this.#emitError(
              new HamokTransportError("draining the NATS connection failed", { cause: outcome }),
            );
          }
        }
        if (!nc.isClosed()) await nc.close().catch(() => undefined);
      } else {
        const subs = [...this.#subs];
        if (connected) {
          const drained = Promise.all(subs.map((sub) => sub.drain()))
            .then(() => nc.flush())
            .catch(() => undefined);
          await Promise.race([drained, timeout]);
        }
        for (const sub of subs) sub.unsubscribe();
      }
    } finally {
      clearTimeout(timer);
      for (const sub of [...this.#subs]) sub.markClosed();
      this.#status?.stop?.();
      this.#status = undefined;
      this.#setState("closed");
    }
  }

  #watch(): void {
    const status = this.connection.status();
    // At run time this is a QueuedIterator; stop() ends the loop below and unregisters it.
    this.#status = status as Partial<QueuedIterator<Status>>;
    (async () => {
      try {
        for await (const s of status) this.#onStatus(s);
      } catch (error) {
        this.#emitError(new HamokTransportError("NATS status stream failed", { cause: error }));
      }
    })();
    this.connection.closed().then(
      (error) => this.#onConnectionClosed(error),
      (error: unknown) => this.#onConnectionClosed(error),
    );
  }

  #onStatus(s: Status): void {
    switch (s.type) {
      case "disconnect":
        this.#setState("disconnected");
        break;
      case "reconnecting":
        this.#setState("reconnecting");
        break;
      case "reconnect":
        this.#refreshMaxPayload();
        this.#setState("connected");
        break;
      case "update":
        // sent on (re)connecting when the server's INFO changes the server list
        this.#refreshMaxPayload();
        break;
      case "error":
        this.#emitError(new HamokTransportError(`NATS server reported an error: ${String(s.data)}`));
        break;
      default:
        // ldm, pingTimer, staleConnection: informational
        break;
    }
  }

  #onConnectionClosed(error: unknown): void {
    const gaveUp = error instanceof Error && this.#closing === undefined &&
      (this.#state === "disconnected" || this.#state === "reconnecting");
    if (gaveUp) {
      // closed by itself while reconnecting: the `nats` client gave up (maxReconnectAttempts)
      this.#emitError(
        new HamokTransportError(
          "the NATS connection gave up reconnecting and closed; this transport is closed for good " +
            "(connect with maxReconnectAttempts: -1 to reconnect forever)",
          { cause: error },
        ),
      );
    } else if (error instanceof Error) {
      this.#emitError(new HamokTransportError("the NATS connection closed with an error", { cause: error }));
    }
    if (this.#state === "closed") return;
    // Closed underneath us (by the application, or reconnect attempts exhausted).
    this.#closing ??= Promise.resolve();
    for (const sub of [...this.#subs]) sub.markClosed();
    this.#status?.stop?.();
    this.#status = undefined;
    this.#setState("closed");
  }

  #setState(state: TransportState): void {
    const previous = this.#state;
    if (previous === state || previous === "closed") return;
    this.#state = state;
    if (state === "connected") this.#warnedDisconnectedPublish = false;
    if (state === "closed") this.#resolveClosed();
    try {
      this.#events.emit("state-changed", state, previous);
    } catch (error) {
      this.#emitError(new HamokTransportError("a state-changed listener threw", { cause: error }));
    }
  }

  #emitError(error: Error): void {
    try {
      this.#events.emit("error", error);
    } catch {
      // an `error` listener that throws must not break the transport
    }
  }

  #validatePublishSubject(subject: string): void {
    if (!isValidPublishSubject(subject)) throw new HamokConfigError(`invalid publish subject '${subject}'`);
    if (this.#validSubjects.size >= MAX_VALIDATED_SUBJECTS) this.#validSubjects.clear();
    this.#validSubjects.add(subject);
  }

  #warnDisconnectedPublish(): void {
    if (this.#warnedDisconnectedPublish) return;
    this.#warnedDisconnectedPublish = true;
    this.#emitError(
      new HamokTransportError(
        `publishing while the NATS connection is ${this.#state}: messages are buffered by the nats ` +
          "client but that buffer is discarded on each reconnect attempt, so they may be lost",
      ),
    );
  }

  /**
   * Remembers the current server's `max_payload` (a server reconnected to may have another one);
   * a smaller one than before is reported.
   */
  #refreshMaxPayload(): void {
    const before = this.#maxPayload;
    const now = this.maxPayload;
    this.#maxPayload = now;
    if (now < before && this.#state !== "closed") {
      this.#emitError(
        new HamokTransportError(
          `the NATS server reconnected to has a smaller max_payload (${now} bytes, was ${before}): ` +
            "messages built for the old limit are refused",
        ),
      );
    }
  }

  #checkSize(subject: string, data: Uint8Array, hdrs: MsgHdrs | undefined): void {
    const limit = this.#maxPayload;
    if (data.byteLength <= limit && hdrs === undefined) return;
    const size = data.byteLength + headerBytes(hdrs);
    if (size > limit) throw this.#tooLarge(subject, size, limit);
  }

  #tooLarge(subject: string, size: number, limit: number, cause?: unknown): HamokPayloadTooLargeError {
    return new HamokPayloadTooLargeError(
      `a message of ${size} bytes on '${subject}' exceeds the NATS server's max_payload of ${limit} bytes`,
      { size, limit },
      cause === undefined ? undefined : { cause },
    );
  }

  #publishFailed(subject: string, data: Uint8Array, hdrs: MsgHdrs | undefined, error: unknown): void {
    const code = natsCode(error);
    if (code === "MAX_PAYLOAD_EXCEEDED") {
      const size = data.byteLength + headerBytes(hdrs);
      throw this.#tooLarge(subject, size, this.maxPayload, error);
    }
    if (code !== undefined && CALLER_ERROR_CODES.has(code)) {
      throw new HamokConfigError(`cannot publish on '${subject}': ${code}`, { cause: error });
    }
    this.#emitError(new HamokTransportError(`publishing on '${subject}' failed`, { cause: error }));
  }
}
