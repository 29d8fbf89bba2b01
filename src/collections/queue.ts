/**
 * HamokQueue: a FIFO replicated on every peer. Pushes and pops are commands in the replicated log,
 * so every item is popped exactly once across all peers, in push order.
 *
 * @module
 */

import { assertRoundTrips, copyDecoded, describeType, messageOf } from "../codec/cbor.ts";
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
  codec?: ValueCodec<T> | undefined;
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
   * With the default codec an item is checked exactly as a map checks a value with its default codec
   * (see {@linkcode checkQueueItem}): a function, a symbol, a `WeakMap`, a `Promise`, a cycle... is a
   * `HamokCodecError` too, and nothing of the call enters the log.
   */
  async pushAll(items: readonly T[], options?: HamokQueueWriteOptions): Promise<void> {
    this.assertOpen();
    if (!Array.isArray(items)) throw new HamokConfigError("pushAll takes an array of items");
    let wire: readonly unknown[] = items;
    if (this.#codec === undefined) {
      // the items go into the command as they are (it is CBOR-encoded once, with them)
      for (let i = 0; i < items.length; i++) checkQueueItem(items[i], this.id, "item", i);
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
   * Every item is checked before anything is proposed, as `push` checks its items: a malformed
   * snapshot (not an object, no items array, another queue id, an `undefined` item) rejects with
   * `HamokConfigError`; an item the queue's codec cannot carry rejects with `HamokCodecError` (with the
   * default codec: what `push` refuses, a lone UTF-16 surrogate in a string included; with a codec:
   * an item that is not a string or a `Uint8Array`, a string that is not well formed, or one the
   * codec cannot decode). Either way nothing of the snapshot enters the log.
   */
  async import(snapshot: HamokQueueSnapshot, options?: HamokQueueWriteOptions): Promise<void> {
    this.assertOpen();
    if (snapshot === null || typeof snapshot !== "object" || !Array.isArray(snapshot.items)) {
      throw new HamokConfigError("a queue snapshot must have an items array");
    }
    if (snapshot.queueId !== this.id) {
      throw new HamokConfigError(`the snapshot belongs to queue '${snapshot.queueId}', not '${this.id}'`);
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

  /** Rejects an imported item (replicated form) this queue's codec cannot carry (see {@linkcode import}). */
  #checkReplicated(item: unknown, i: number): void {
    const codec = this.#codec;
    if (codec === undefined) {
      checkQueueItem(item, this.id, "snapshot item", i);
      return;
    }
    if (item === undefined) throw new HamokConfigError("a queue item cannot be undefined");
    const what = `queue '${this.id}': snapshot item ${i}`;
    if (typeof item === "string") {
      if (!isWellFormedString(item)) assertWellFormed(what, item, HamokCodecError);
    } else if (!(item instanceof Uint8Array)) {
      const type = describeType(item);
      throw new HamokCodecError(`${what} is ${type}, not a codec's output (a string or a Uint8Array)`, {
        cause: new TypeError(`${what} is ${type}`),
      });
    }
    try {
      decodeValue(codec, item);
    } catch (error) {
      throw new HamokCodecError(`${what} cannot be decoded: ${messageOf(error)}`, { cause: error });
    }
  }
}

/** Deepest nesting {@linkcode carriedPlainly} walks; deeper values (and cycles) get the full check. */
const PLAIN_MAX_DEPTH = 64;

/**
 * @internal Throws unless `item` is a queue item the default codec carries unchanged, which is
 * exactly what a map's default value codec accepts (`CborValueCodec.encode`, through
 * `assertRoundTrips`): `HamokConfigError` for `undefined`; `HamokCodecError` for a function, a
 * symbol, a `WeakMap`/`WeakSet`/`WeakRef`/`FinalizationRegistry`, a `Promise` (CBOR would store
 * them as `{}`), a cycle, more than 256 levels of nesting, or a string (a value, an own key, a
 * `Map`'s key, at any depth) with a lone UTF-16 surrogate. A `HamokCodecError` names the item
 * (`queue '<id>': <what> <index>` and the path in it); its `cause` is the `TypeError` of the check.
 *
 * Nothing is encoded (the item goes into the command as it is, and the command is encoded once):
 * plain data (primitives, plain objects, arrays, `Map`s, `Set`s, `Date`s, typed arrays, up to 64
 * levels) is walked once without allocating; anything else gets `assertRoundTrips`.
 *
 * @example
 * ```ts ignore
 * checkQueueItem({ job: "a" }, "jobs", "item", 0); // passes
 * checkQueueItem(new WeakMap(), "jobs", "item", 1); // throws HamokCodecError: queue 'jobs': item 1 is a WeakMap...
 * ```
 */
export function checkQueueItem(item: unknown, queueId: string, what: string, index: number): void {
  if (item === undefined) throw new HamokConfigError("a queue item cannot be undefined");
  let plain: boolean;
  try {
    plain = carriedPlainly(item, 0);
  } catch {
    plain = false; // a getter threw: the full check reports it
  }
  if (plain) return;
  const label = `queue '${queueId}': ${what} ${index}`;
  try {
    assertRoundTrips(item, label);
  } catch (error) {
    if (error instanceof HamokCodecError) throw error;
    throw new HamokCodecError(messageOf(error), { cause: error });
  }
}

/**
 * Whether `value` is plain data that `assertRoundTrips` passes: a primitive CBOR carries (a string
 * only if well formed), a plain object (well-formed own keys), an array, a `Map` or a `Set` of such
 * values, a `Date`, a typed array or an `ArrayBuffer`, nested at most {@linkcode PLAIN_MAX_DEPTH}
 * levels. False means "not known to pass" (the full check decides), never "fails".
 */
function carriedPlainly(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "string":
      return isWellFormedString(value);
    case "number":
    case "boolean":
    case "bigint":
    case "undefined":
      return true;
    case "object": {
      if (value === null) return true;
      if (depth >= PLAIN_MAX_DEPTH) return false;
      const proto = Object.getPrototypeOf(value);
      if (proto === Object.prototype) {
        const object = value as Record<string, unknown>;
        for (const key in object) {
          if (!Object.hasOwn(object, key)) continue;
          if (!isWellFormedString(key) || !carriedPlainly(object[key], depth + 1)) return false;
        }
        return true;
      }
      if (proto === Array.prototype) {
        const items = value as unknown[];
        for (let i = 0; i < items.length; i++) if (!carriedPlainly(items[i], depth + 1)) return false;
        return true;
      }
      if (proto === Map.prototype) {
        for (const [k, v] of value as Map<unknown, unknown>) {
          if (!carriedPlainly(k, depth + 1) || !carriedPlainly(v, depth + 1)) return false;
        }
        return true;
      }
      if (proto === Set.prototype) {
        for (const v of value as Set<unknown>) if (!carriedPlainly(v, depth + 1)) return false;
        return true;
      }
      return ArrayBuffer.isView(value) || proto === Date.prototype || proto === ArrayBuffer.prototype;
    }
    default:
      return false; // a function or a symbol
  }
}
