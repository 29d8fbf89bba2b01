/**
 * Request/response between peers over their inboxes, with a timeout on every request.
 *
 * @module
 */

import type { RequestBody, ResponseBody, WireError } from "../codec/envelope.ts";
import { errorFromWire, errorToWire, HamokClosedError, HamokTimeoutError } from "../errors.ts";
import { REAL_SCHEDULER, type Scheduler, type TimerHandle } from "./scheduler.ts";

/** Handles one request operation; throw a `HamokError` to answer with its code. */
export type RpcHandler = (payload: Uint8Array, fromPeerId: string) => Promise<Uint8Array | undefined>;

/** Sends a request or a response body to a peer's inbox. */
export interface RpcSender {
  /** Sends a request to `peerId`. */
  sendRequest(peerId: string, body: RequestBody): void;
  /** Sends a response to `peerId`. */
  sendResponse(peerId: string, body: ResponseBody): void;
}

interface Pending {
  readonly peerId: string;
  readonly op: string;
  readonly timer: TimerHandle;
  readonly resolve: (payload: Uint8Array | undefined) => void;
  readonly reject: (error: Error) => void;
}

/** Routers made by this process so far (part of their request ids). */
let routers = 0;

/**
 * Routes requests to handlers by operation name and responses to their waiting callers.
 *
 * @example
 * ```ts ignore
 * const rpc = new RpcRouter(sender, "peer-1");
 * rpc.handle("ping", async (payload) => payload);
 * const pong = await rpc.request("peer-2", "ping", new Uint8Array([1]), 1000);
 * ```
 */
export class RpcRouter {
  readonly #sender: RpcSender;
  readonly #prefix: string;
  readonly #handlers = new Map<string, RpcHandler>();
  readonly #pending = new Map<string, Pending>();
  #counter = 0;
  #closed = false;
  readonly #scheduler: Scheduler;

  /** Creates a router sending through `sender`; request timeouts run on `scheduler`. */
  constructor(sender: RpcSender, localPeerId: string, scheduler: Scheduler = REAL_SCHEDULER) {
    this.#scheduler = scheduler;
    this.#sender = sender;
    // the router's start on the wall clock: a process restarted under the same peer id counts its
    // requests from 1 again, and a late answer to its predecessor's request must not match one of its
    // own; and the routers this process made before (a peer closed and made again in one millisecond)
    this.#prefix = `${localPeerId}:${Math.floor(scheduler.now()).toString(36)}.${(++routers).toString(36)}.`;
  }

  /** Registers the handler of an operation. */
  handle(op: string, handler: RpcHandler): void {
    this.#handlers.set(op, handler);
  }

  /** Sends a request and resolves with the response payload; rejects on error answer or timeout. */
  request(
    peerId: string,
    op: string,
    payload: Uint8Array,
    timeoutMs: number,
  ): Promise<Uint8Array | undefined> {
    if (this.#closed) return Promise.reject(new HamokClosedError("the peer is closed"));
    const requestId = `${this.#prefix}${++this.#counter}`;
    return new Promise((resolve, reject) => {
      const timer = this.#scheduler.setTimeout(() => {
        this.#pending.delete(requestId);
        reject(
          new HamokTimeoutError(`request '${op}' to ${peerId} got no answer within ${timeoutMs} ms`, {
            timeoutMs,
            missingPeerIds: [peerId],
          }),
        );
      }, timeoutMs);
      this.#pending.set(requestId, { peerId, op, timer, resolve, reject });
      this.#sender.sendRequest(peerId, { requestId, op, payload });
    });
  }

  /** Serves an inbound request. */
  onRequest(fromPeerId: string, body: RequestBody): void {
    if (this.#closed) return;
    const handler = this.#handlers.get(body.op);
    if (handler === undefined) {
      this.#answer(fromPeerId, body.requestId, undefined, {
        code: "HAMOK_CONFIG",
        message: `unknown operation '${body.op}'`,
      });
      return;
    }
    handler(body.payload, fromPeerId).then(
      (payload) => this.#answer(fromPeerId, body.requestId, payload, undefined),
      (error) => this.#answer(fromPeerId, body.requestId, undefined, errorToWire(error)),
    );
  }

  /** Completes the request a response answers; false if no request of `fromPeerId` awaited it. */
  onResponse(fromPeerId: string, body: ResponseBody): boolean {
    const pending = this.#pending.get(body.requestId);
    if (pending === undefined || pending.peerId !== fromPeerId) return false;
    this.#pending.delete(body.requestId);
    this.#scheduler.clearTimeout(pending.timer);
    if (body.ok) pending.resolve(body.payload);
    else {
      pending.reject(
        errorFromWire(
          body.error ?? { code: "HAMOK_ERROR", message: "request failed" },
          fromPeerId,
          pending.op,
        ),
      );
    }
    return true;
  }

  /** Rejects every pending request and ignores later traffic. */
  close(): void {
    this.#closed = true;
    for (const pending of this.#pending.values()) {
      this.#scheduler.clearTimeout(pending.timer);
      pending.reject(
        new HamokClosedError(`the peer closed while '${pending.op}' to ${pending.peerId} was pending`),
      );
    }
    this.#pending.clear();
  }

  #answer(
    peerId: string,
    requestId: string,
    payload: Uint8Array | undefined,
    error: WireError | undefined,
  ) {
    if (this.#closed) return;
    this.#sender.sendResponse(
      peerId,
      error === undefined ? { requestId, ok: true, payload } : {
        requestId,
        ok: false,
        error,
      },
    );
  }
}
