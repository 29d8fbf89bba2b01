/**
 * HamokQueue: a FIFO replicated on every peer. Pushes and pops are commands in the replicated log,
 * so every item is popped exactly once across all peers, in push order.
 *
 * @module
 */

import { assertStringsWellFormed, copyDecoded, stringsWellFormed } from "../codec/cbor.ts";
import { decodeValue, encodeValue, type ValueCodec } from "../codec/value_codec.ts";
import { assertWellFormed, isWellFormedString } from "../codec/well_formed.ts";
import { HamokCodecError, HamokConfigError } from "../errors.ts";
import type { CollectionHost } from "./collection_host.ts";
import { checkCodec, CollectionBase, collectionIdentity, type HamokWriteOptions } from "./collection_base.ts";
import type { ArgsOf, ResultOf } from "./command_spec.ts";
import {
  type HamokQueueSnapshot,
  type HamokQueueState,
  type HamokQueueStateObserver,
  type PopResult,
  QUEUE_KIND,
  type QueueCommands,
} from "./queue_state.ts";

/**
 * Options of `hamok.createQueue(config)`.
 *
 * @example
 * ```ts
 * import type { Hamok } from "@hamok/core";
 * declare const hamok: Hamok;
 * const queue = hamok.createQueue<{ job: string }>({ queueId: "jobs", requestTimeoutInMs: 3000 });
 * ```
 */
export interface HamokQueueConfig<T> {
  /** The queue id; queues with the same id on different peers are one queue. Required. */
  queueId: string;
  /**
   * The item codec. Default: the items travel as CBOR inside the log entries (no extra encoding).
   * Every peer must use the same codec.
   */
  codec?: ValueCodec<T>;
  /** Default timeout of writes, in ms. Default 5000. */
  requestTimeoutInMs?: number;
}

/**
 * Options of a queue write: the same as every collection's {@linkcode HamokWriteOptions}. A write
 * retried with the request id of an earlier attempt is applied at most once, and resolves with the
 * first attempt's result.
 *
 * @example
 * ```ts
 * import type { HamokQueue } from "@hamok/core";
 * declare const queue: HamokQueue<string>;
 * const requestId = crypto.randomUUID();
 * await queue.pop({ requestId, timeoutMs: 2000 }).catch(() => queue.pop({ requestId })); // at most once
 * ```
 */
export type HamokQueueWriteOptions = HamokWriteOptions;

/**
 * Events of a {@linkcode HamokQueue}: argument tuples of the listeners. They fire on every peer in
 * log order.
 *
 * @example
 * ```ts
 * import type { HamokQueue } from "@hamok/core";
 * declare const queue: HamokQueue<string>;
 * queue.on("add", (item) => console.log("queued", item)).on("empty", () => console.log("drained"));
 * ```
 */
export interface HamokQueueEvents<T> {
  /** An item was appended (by any peer). */
  add: [item: T];
  /** An item left the queue (popped by any peer, cleared, or replaced by an import). */
  remove: [item: T];
  /** The queue became empty. */
  empty: [];
  /** The queue became non-empty. */
  "not-empty": [];
  /** This queue object was closed. */
  close: [];
}

/**
 * A FIFO queue shared by the peers of a cluster.
 *
 * `push` and `pop` go through the replicated log: every item is popped exactly once across all
 * peers, in push order, and `pop` resolves with the item this peer got. `peek`, `size`, `empty` and
 * iteration read this peer's copy (it may lag the leader by a heartbeat; await `ready` or a write
 * first for read-your-writes). Events fire on every peer in log order.
 *
 * @example
 * ```ts
 * import { Hamok } from "@hamok/core";
 * const hamok = new Hamok();
 * await hamok.join();
 * const queue = hamok.createQueue<string>({ queueId: "jobs" });
 * queue.on("add", (job) => console.log("queued", job));
 * await queue.push("a", "b");
 * console.log(await queue.pop()); // "a" (on exactly one peer)
 * console.log(queue.size, queue.peek()); // 1 "b"
 * ```
 */
export class HamokQueue<T> extends CollectionBase<HamokQueueEvents<T>, QueueCommands> {
  readonly #state: HamokQueueState;
  readonly #codec: ValueCodec<T> | undefined;
  readonly #observer: HamokQueueStateObserver;

  /** @internal Use `hamok.createQueue(config)`. */
  constructor(host: CollectionHost, config: HamokQueueConfig<T>) {
    const identity = collectionIdentity(config, QUEUE_KIND, "queue", "queueId");
    const codec = checkCodec("codec", config.codec);
    super(host, identity);
    this.#codec = codec;
    this.#state = host.replicatedState<HamokQueueState>(QUEUE_KIND, this.id);
    this.#observer = {
      added: (item) => this.#forward("add", item),
      removed: (item) => this.#forward("remove", item),
      emptied: () => this.deliver("empty", []),
      filled: () => this.deliver("not-empty", []),
    };
    this.#state.observer = this.#observer;
  }

  /** Number of items in this peer's copy. */
  get size(): number {
    return this.#state.size;
  }

  /** True if this peer's copy is empty. */
  get empty(): boolean {
    return this.#state.size === 0;
  }

  /**
   * The head item of this peer's copy, without removing it; `undefined` if empty. Every read (this,
   * iteration, `pop`, the `add` and `remove` events, `export`) gets a copy of its own: changing it
   * never changes the queue.
   */
  peek(): T | undefined {
    if (this.#state.size === 0) return undefined;
    return this.#decode(this.#state.peek());
  }

  /** The items of this peer's copy, head first. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (const item of this.#state) yield this.#decode(item);
  }

  /**
   * Appends `items` at the tail, in argument order, as one command. Resolves once committed and
   * applied on this peer. Use {@linkcode pushAll} to pass write options.
   */
  push(...items: T[]): Promise<void> {
    return this.pushAll(items);
  }

  /**
   * Appends `items` at the tail, in order, as one command. Resolves once committed and applied on
   * this peer. Rejects with `HamokOutcomeUnknownError` if the outcome is unknown (retry with its
   * `requestId`: the items are added at most once), `HamokNoLeaderError` if no leader took it,
   * `HamokCodecError` if an item cannot be encoded (or holds a string that is not well formed: a lone
   * UTF-16 surrogate, which UTF-8 would carry as U+FFFD), `HamokConfigError` for an `undefined` item.
   */
  async pushAll(items: readonly T[], options?: HamokQueueWriteOptions): Promise<void> {
    this.assertOpen();
    if (!Array.isArray(items)) throw new HamokConfigError("pushAll takes an array of items");
    let wire: readonly unknown[] = items;
    if (this.#codec === undefined) {
      // the items go into the command as they are (it is CBOR-encoded once, with them)
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item === undefined) throw new HamokConfigError("a queue item cannot be undefined");
        if (!stringsWellFormed(item)) assertStringsWellFormed(item, `queue '${this.id}': item ${i}`);
      }
    } else {
      const encoded: unknown[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (item === undefined) throw new HamokConfigError("a queue item cannot be undefined");
        encoded[i] = encodeValue(this.#codec, item);
      }
      wire = encoded;
    }
    if (wire.length === 0) return;
    await this.#propose("push", wire, options);
  }

  /**
   * Removes the head item and resolves with it, or with `undefined` if the queue is empty. Every
   * item is popped exactly once across all peers, in push order. If this peer's copy is empty it
   * first checks with the leader (a read barrier, no log entry), so polling an empty queue does not
   * grow the log.
   */
  async pop(options?: HamokQueueWriteOptions): Promise<T | undefined> {
    this.assertOpen();
    const { timeoutMs, requestId } = this.writeOptions(options);
    const deadline = this.host.scheduler.monotonicNow() + timeoutMs;
    if (this.#state.size === 0 && requestId === undefined) {
      await this.host.waitUntilCommitHead(timeoutMs);
      if (this.#state.size === 0) return undefined;
    }
    let result: PopResult;
    try {
      result = await this.proposeWith("pop", null, {
        requestId,
        timeoutMs: Math.max(1, Math.ceil(deadline - this.host.scheduler.monotonicNow())),
      });
    } catch (error) {
      throw this.proposalError(error);
    }
    return result === null ? undefined : this.#decode(result.item);
  }

  /** Removes every item, as one command (each fires `remove` on every peer, then `empty`). */
  async clear(options?: HamokQueueWriteOptions): Promise<void> {
    this.assertOpen();
    await this.#propose("clear", null, options);
  }

  /** The content of this peer's copy, items in their replicated form (see {@linkcode HamokQueueSnapshot}). */
  export(): HamokQueueSnapshot {
    this.assertOpen();
    return this.#state.toSnapshot();
  }

  /**
   * Replaces the content of the queue with a snapshot made by {@linkcode export}, as one command.
   * Throws `HamokConfigError` if the snapshot belongs to another queue id.
   */
  async import(snapshot: HamokQueueSnapshot, options?: HamokQueueWriteOptions): Promise<void> {
    this.assertOpen();
    if (snapshot === null || typeof snapshot !== "object" || !Array.isArray(snapshot.items)) {
      throw new HamokConfigError("a queue snapshot must have an items array");
    }
    if (snapshot.queueId !== this.id) {
      throw new HamokConfigError(`the snapshot belongs to queue '${snapshot.queueId}', not '${this.id}'`);
    }
    if (snapshot.items.some((item) => item === undefined)) {
      throw new HamokConfigError("a queue item cannot be undefined");
    }
    for (let i = 0; i < snapshot.items.length; i++) this.#checkReplicated(snapshot.items[i], i);
    await this.#propose("import", snapshot.items, options);
  }

  /** @internal Stops hearing the state (pending writes still settle). */
  protected override onClose(): void {
    if (this.#state.observer === this.#observer) this.#state.observer = undefined;
  }

  #forward(event: "add" | "remove", item: unknown): void {
    if (!this.hasListeners(event)) return;
    let decoded: T;
    try {
      decoded = this.#decode(item);
    } catch (error) {
      this.host.reportError(error as Error);
      return;
    }
    this.deliver(event, [decoded]);
  }

  /** Proposes `op`; an item that cannot be encoded rejects with a `HamokCodecError` naming the queue. */
  async #propose<O extends keyof QueueCommands & string>(
    op: O,
    args: ArgsOf<QueueCommands, O>,
    options: HamokQueueWriteOptions | undefined,
  ): Promise<ResultOf<QueueCommands, O>> {
    try {
      return await this.propose(op, args, options);
    } catch (error) {
      throw this.proposalError(error);
    }
  }

  /**
   * An item in its replicated form as the application gets it: a copy of its own, never the stored
   * item (with the default codec a decoded value; with a codec, the codec gets a copy of stored bytes,
   * as it may return views into them).
   */
  #decode(item: unknown): T {
    if (this.#codec === undefined) return copyDecoded(item) as T;
    return decodeValue(this.#codec, item instanceof Uint8Array ? item.slice() : item as string);
  }

  /** Rejects an imported item (replicated form) holding a string UTF-8 cannot carry. */
  #checkReplicated(item: unknown, i: number): void {
    if (this.#codec === undefined) {
      if (!stringsWellFormed(item)) assertStringsWellFormed(item, `queue '${this.id}': snapshot item ${i}`);
    } else if (typeof item === "string" && !isWellFormedString(item)) {
      assertWellFormed(`queue '${this.id}': snapshot item ${i}`, item, HamokCodecError);
    }
  }
}
