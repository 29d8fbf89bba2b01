/**
 * The replicated state of one queue: a FIFO of items, changed only by committed commands, in log
 * order, identically on every peer. Items are kept in their replicated form (the item codec's output,
 * or the item itself with the default CBOR codec); the {@linkcode HamokQueue} object decodes them.
 *
 * @module
 */

import type { ApplyContext, ReplicatedState } from "../cluster/state_machine.ts";
import { copyDecoded } from "../codec/cbor.ts";
import { applyCommand, type CommandSpec, type CommandTable, commandTable } from "./command_spec.ts";

/** The replicated-state kind of queues. */
export const QUEUE_KIND = "queue";

/**
 * Hears every change of a {@linkcode HamokQueueState} as it is applied (in log order), with items in
 * their replicated form. The queue object on this peer sets one ({@linkcode HamokQueueState.observer}).
 */
export interface HamokQueueStateObserver {
  /** An item was appended at the tail. */
  added(item: unknown): void;
  /** An item left the queue (popped, cleared, or replaced by an import). */
  removed(item: unknown): void;
  /** The queue became empty. */
  emptied(): void;
  /** The queue became non-empty. */
  filled(): void;
}

/**
 * The exported content of a queue: its id and its items, head first, in their replicated form
 * (the item codec's output, or the items themselves with the default CBOR codec).
 *
 * @example
 * ```ts
 * import type { HamokQueue, HamokQueueSnapshot } from "@hamok/core";
 * declare const queue: HamokQueue<string>;
 * const snapshot: HamokQueueSnapshot = { queueId: "jobs", items: ["a", "b"] };
 * await queue.import(snapshot);
 * ```
 */
export interface HamokQueueSnapshot {
  /** The queue id. */
  readonly queueId: string;
  /** The items, head first. */
  readonly items: readonly unknown[];
}

/** Snapshot image: `[head sequence number, items head first]`. */
type QueueImage = [head: number, items: unknown[]];

/** The result of a committed pop: the item (in replicated form), or `null` if the queue was empty. */
export type PopResult = { readonly item: unknown } | null;

/** The commands of a queue state, declared once (the view proposes them, the state applies them). */
export interface QueueCommands {
  /** Appends the items (replicated form) at the tail; the size after. */
  push: CommandSpec<readonly unknown[], number>;
  /** Removes the head item. */
  pop: CommandSpec<null, PopResult>;
  /** Removes every item; how many there were. */
  clear: CommandSpec<null, number>;
  /** Replaces the content with the items; how many items were removed. */
  import: CommandSpec<readonly unknown[], number>;
}

const COMPACT_MIN = 1024;

/**
 * A FIFO of replicated items with O(1) push and pop (an array with a moving head, compacted when
 * the dead prefix outgrows the live part). Every item has a sequence number: the number of items
 * pushed before it. Sequence numbers are the same on every peer, which lets a snapshot install
 * report exactly which items left and which arrived.
 *
 * @example
 * ```ts
 * const state = new HamokQueueState("jobs");
 * state.observer = {
 *   added: (item) => console.log("added", item),
 *   removed: () => {},
 *   emptied: () => {},
 *   filled: () => {},
 * };
 * console.log(state.size, [...state]);
 * ```
 */
export class HamokQueueState implements ReplicatedState {
  /** The queue id. */
  readonly queueId: string;
  /** The observer of changes (the queue object on this peer), if any. */
  observer: HamokQueueStateObserver | undefined = undefined;
  private items: unknown[] = [];
  /** Index in `items` of the head item. */
  private offset = 0;
  /** Sequence number of the head item (= number of items that ever left the queue). */
  private headSeq = 0;

  /** Creates an empty queue state. */
  constructor(queueId: string) {
    this.queueId = queueId;
  }

  /** Number of items. */
  get size(): number {
    return this.items.length - this.offset;
  }

  /** Sequence number of the head item. */
  get head(): number {
    return this.headSeq;
  }

  /** The head item, or `undefined` if empty. */
  peek(): unknown {
    return this.offset < this.items.length ? this.items[this.offset] : undefined;
  }

  /** The items, head first. */
  *[Symbol.iterator](): IterableIterator<unknown> {
    const items = this.items;
    for (let i = this.offset; i < items.length; i++) yield items[i];
  }

  /** A copy of the list of items, head first (the items themselves, not copies of them). */
  toArray(): unknown[] {
    return this.items.slice(this.offset);
  }

  /**
   * The content as a queue snapshot, for the application: its items are deep copies (see
   * `copyDecoded`), so changing them never changes this state.
   */
  toSnapshot(): HamokQueueSnapshot {
    const items = this.items;
    const out: unknown[] = new Array(items.length - this.offset);
    for (let i = this.offset; i < items.length; i++) out[i - this.offset] = copyDecoded(items[i]);
    return { queueId: this.queueId, items: out };
  }

  /** The applying side of {@linkcode QueueCommands}. */
  static readonly #commands: CommandTable<HamokQueueState> = commandTable<QueueCommands, HamokQueueState>({
    push: (s, args) => {
      s.#pushAll(args as unknown[], true);
      return s.size;
    },
    pop: (s) => s.#popOne(),
    clear: (s) => s.#removeAll(),
    import: (s, args) => {
      // one change: `emptied`/`filled` only if the queue's emptiness changed (an import over a
      // non-empty queue is never observably empty)
      const items = args as unknown[];
      const wasEmpty = s.size === 0;
      const removed = s.#removeAll(false);
      s.#pushAll(items, false);
      const observer = s.observer;
      if (!wasEmpty && items.length === 0) observer?.emptied();
      else if (wasEmpty && items.length > 0) observer?.filled();
      return removed;
    },
  });

  /** @internal Applies a committed command (see {@linkcode QueueCommands}). */
  apply(op: string, args: unknown, ctx: ApplyContext): unknown {
    return applyCommand(HamokQueueState.#commands, this, op, args, ctx);
  }

  /** @internal Queues do not depend on members. */
  memberRemoved(): void {}

  /** @internal */
  snapshot(): unknown {
    const image: QueueImage = [this.headSeq, this.toArray()];
    return image;
  }

  /**
   * @internal Replaces the content with a snapshot image. The observer hears the items that are gone
   * (head first), the new items (in order), then `emptied` / `filled` if that changed.
   */
  restore(image: unknown): void {
    const [nextHead, nextItems] = image as QueueImage;
    const wasEmpty = this.size === 0;
    const oldHead = this.headSeq;
    const oldTail = oldHead + this.size;
    const nextTail = nextHead + nextItems.length;
    const old = this.items;
    const oldOffset = this.offset;
    this.items = nextItems;
    this.offset = 0;
    this.headSeq = nextHead;
    const observer = this.observer;
    if (observer === undefined) return;
    // old items outside [nextHead, nextTail) are gone
    for (let seq = oldHead; seq < oldTail; seq++) {
      if (seq < nextHead || seq >= nextTail) observer.removed(old[oldOffset + seq - oldHead]);
    }
    for (let seq = nextHead; seq < nextTail; seq++) {
      if (seq < oldHead || seq >= oldTail) observer.added(nextItems[seq - nextHead]);
    }
    const isEmpty = nextItems.length === 0;
    if (isEmpty && !wasEmpty) observer.emptied();
    else if (!isEmpty && wasEmpty) observer.filled();
  }

  #pushAll(items: unknown[], announce = true): void {
    if (items.length === 0) return;
    const wasEmpty = this.size === 0;
    const observer = this.observer;
    for (let i = 0; i < items.length; i++) {
      this.items.push(items[i]);
      observer?.added(items[i]);
    }
    if (wasEmpty && announce) observer?.filled();
  }

  #popOne(): PopResult {
    if (this.offset >= this.items.length) return null;
    const item = this.items[this.offset];
    this.items[this.offset] = undefined; // let it be collected
    this.offset++;
    this.headSeq++;
    this.#compact();
    const observer = this.observer;
    if (observer !== undefined) {
      observer.removed(item);
      if (this.offset === this.items.length) observer.emptied();
    }
    return { item };
  }

  #removeAll(announce = true): number {
    const removed = this.size;
    if (removed === 0) return 0;
    const old = this.items;
    const oldOffset = this.offset;
    this.items = [];
    this.offset = 0;
    this.headSeq += removed;
    const observer = this.observer;
    if (observer !== undefined) {
      for (let i = oldOffset; i < old.length; i++) observer.removed(old[i]);
      if (announce) observer.emptied();
    }
    return removed;
  }

  /** Drops the dead prefix once it is both large and at least half of the array (amortized O(1)). */
  #compact(): void {
    const offset = this.offset;
    if (offset === this.items.length) {
      this.items = [];
      this.offset = 0;
    } else if (offset >= COMPACT_MIN && offset * 2 >= this.items.length) {
      this.items = this.items.slice(offset);
      this.offset = 0;
    }
  }
}
