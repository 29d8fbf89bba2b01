/**
 * The replicated subscription table of one emitter: event -> subscribing peer -> metadata. It is a
 * {@linkcode ReplicatedState}: it changes only by committed commands, in log order, identically on
 * every peer.
 *
 * @module
 */

import type { ApplyContext, ReplicatedState } from "../cluster/state_machine.ts";
import { checkListener } from "./collection_base.ts";
import { assertRoundTrips } from "../codec/cbor.ts";
import { assertWellFormed } from "../codec/well_formed.ts";
import { HamokCodecError, HamokConfigError } from "../errors.ts";
import { applyCommand, type CommandSpec, type CommandTable, commandTable } from "./command_spec.ts";
import { LocalListeners } from "./local_listeners.ts";

/**
 * Events of a {@linkcode HamokSubscriptionTable}: argument tuples of the listeners.
 *
 * @example
 * ```ts
 * import type { HamokEmitter } from "@hamok/core";
 * declare const emitter: HamokEmitter<{ chat: [text: string] }>;
 * emitter.subscriptions.on("updated", (event, peerId, metadata, previous) => console.log(event, peerId, previous, "->", metadata));
 * ```
 */
export interface HamokSubscriptionTableEvents<M> {
  /** `peerId` subscribed to `event`. */
  added: [event: string, peerId: string, metadata: M | null];
  /** `peerId` no longer subscribes to `event`. */
  removed: [event: string, peerId: string, metadata: M | null];
  /** `peerId` re-subscribed to `event` with different metadata. */
  updated: [event: string, peerId: string, metadata: M | null, previous: M | null];
}

/**
 * The commands of an emitter's subscription table, declared once (the emitter proposes them, the
 * table applies them). The subscriber is always the proposer.
 */
export interface EmitterCommands {
  /** The proposer subscribes to `event` (with metadata); whether the table changed. */
  subscribe: CommandSpec<{ readonly event: string; readonly metadata: unknown }, boolean>;
  /** The proposer no longer subscribes to `event`; whether it did. */
  unsubscribe: CommandSpec<{ readonly event: string }, boolean>;
  /** The proposer no longer subscribes to anything; how many subscriptions it had. */
  "clear-peer": CommandSpec<null, number>;
  /** Adds the subscriptions of an image; how many changed. */
  import: CommandSpec<{ readonly entries: TableImage }, number>;
}

/** One event's subscribers in an emitter snapshot. */
export interface HamokEmitterSnapshotEntry<M = unknown> {
  /** The event name. */
  readonly event: string;
  /** Its subscribers and their metadata. */
  readonly subscribers: readonly { readonly peerId: string; readonly metadata: M | null }[];
}

/** The exported state of an emitter: its id and its subscription table. */
export interface HamokEmitterSnapshot<M = unknown> {
  /** The emitter id. */
  readonly emitterId: string;
  /** Every event with subscribers. */
  readonly subscriptions: readonly HamokEmitterSnapshotEntry<M>[];
}

/** `[event, [peerId, metadata][]][]`: the table as an image (and the argument of `import`). */
export type TableImage = [event: string, subscribers: [peerId: string, metadata: unknown][]][];

/** `value` if it is a non-empty well-formed string, else a `HamokConfigError` naming it `what`. */
function imageName(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new HamokConfigError(`${what} must be a non-empty string`);
  }
  assertWellFormed(what, value, HamokConfigError);
  return value;
}

/**
 * @internal The `subscriptions` of an emitter snapshot, checked, as the `import` command takes them:
 * shapes (`HamokConfigError`), event names and peer ids (non-empty, well formed), and metadata the
 * default codec carries unchanged (`HamokCodecError`). Used by `hamok.import` and `emitter.import`.
 */
export function checkSubscriptionsImage(emitterId: string, subscriptions: unknown): TableImage {
  if (!Array.isArray(subscriptions)) {
    throw new HamokConfigError(`emitter '${emitterId}': the snapshot's subscriptions must be an array`);
  }
  const entries: TableImage = [];
  for (let i = 0; i < subscriptions.length; i++) {
    const what = `emitter '${emitterId}': snapshot subscription ${i}`;
    const entry: unknown = subscriptions[i];
    if (
      entry === null || typeof entry !== "object" ||
      !Array.isArray((entry as Record<string, unknown>).subscribers)
    ) {
      throw new HamokConfigError(`${what} must be an object with a subscribers array`);
    }
    const { event, subscribers } = entry as { event: unknown; subscribers: unknown[] };
    const name = imageName(event, `the event of ${what}`);
    const peers: [string, unknown][] = [];
    for (let j = 0; j < subscribers.length; j++) {
      const subscriber: unknown = subscribers[j];
      if (subscriber === null || typeof subscriber !== "object") {
        throw new HamokConfigError(`${what}: subscriber ${j} is not an object`);
      }
      const { peerId, metadata } = subscriber as { peerId: unknown; metadata: unknown };
      peers.push([imageName(peerId, `the peerId of ${what}, subscriber ${j}`), metadata]);
      try {
        assertRoundTrips(metadata, `${what}: the metadata of subscriber ${j}`);
      } catch (error) {
        if (error instanceof HamokCodecError) throw error;
        throw new HamokCodecError(error instanceof Error ? error.message : String(error), { cause: error });
      }
    }
    entries.push([name, peers]);
  }
  return entries;
}

/**
 * A read-only view of who subscribes to what, with `added`, `removed` and `updated` events. It is
 * the same on every peer once they have applied the same log.
 *
 * @example
 * ```ts
 * import type { HamokEmitter } from "@hamok/core";
 * declare const emitter: HamokEmitter<{ chat: [text: string] }>;
 * const table = emitter.subscriptions;
 * table.on("added", (event, peerId) => console.log(`${peerId} now listens to ${event}`));
 * console.log(table.getPeerIds("chat"));
 * ```
 */
export class HamokSubscriptionTable<M = unknown> implements ReplicatedState {
  /** The emitter id this table belongs to. */
  readonly emitterId: string;
  readonly #table = new Map<string, Map<string, M | null>>();
  readonly #listeners = new LocalListeners();
  readonly #onListenerFailure: (error: unknown, event: string) => void;

  /** Creates an empty table; a listener that throws goes to `onListenerFailure`. */
  constructor(emitterId: string, onListenerFailure?: (error: unknown, event: string) => void) {
    this.emitterId = emitterId;
    this.#onListenerFailure = onListenerFailure ?? (() => {});
  }

  /** Adds a listener of a table event. */
  on<N extends keyof HamokSubscriptionTableEvents<M>>(
    event: N,
    listener: (...args: HamokSubscriptionTableEvents<M>[N]) => void,
  ): this {
    this.#listeners.add(event, checkListener(listener), false);
    return this;
  }

  /** Adds a listener that is removed before its first call. */
  once<N extends keyof HamokSubscriptionTableEvents<M>>(
    event: N,
    listener: (...args: HamokSubscriptionTableEvents<M>[N]) => void,
  ): this {
    this.#listeners.add(event, checkListener(listener), true);
    return this;
  }

  /** Removes a listener. */
  off<N extends keyof HamokSubscriptionTableEvents<M>>(
    event: N,
    listener: (...args: HamokSubscriptionTableEvents<M>[N]) => void,
  ): this {
    this.#listeners.remove(event, listener as (...args: unknown[]) => void);
    return this;
  }

  #emit<N extends keyof HamokSubscriptionTableEvents<M>>(
    event: N,
    args: HamokSubscriptionTableEvents<M>[N],
  ): void {
    this.#listeners.deliver(event, args, this.#onListenerFailure);
  }

  /** Number of events that have at least one subscriber. */
  get size(): number {
    return this.#table.size;
  }

  /** Events that have at least one subscriber. */
  events(): string[] {
    return [...this.#table.keys()];
  }

  /** Whether `event` has subscribers. */
  hasEvent(event: string): boolean {
    return this.#table.has(event);
  }

  /** Whether `peerId` subscribes to `event`. */
  hasPeerOnEvent(event: string, peerId: string): boolean {
    return this.#table.get(event)?.has(peerId) ?? false;
  }

  /** The subscribers of `event` (empty if none). */
  getPeerIds(event: string): string[] {
    const peers = this.#table.get(event);
    return peers === undefined ? [] : [...peers.keys()];
  }

  /** The live subscriber map of `event` (read it, never mutate it). */
  peersOf(event: string): ReadonlyMap<string, M | null> | undefined {
    return this.#table.get(event);
  }

  /** Every peer that subscribes to at least one event. */
  getAllPeerIds(): string[] {
    const all = new Set<string>();
    for (const peers of this.#table.values()) for (const peerId of peers.keys()) all.add(peerId);
    return [...all];
  }

  /** The metadata `peerId` subscribed to `event` with (`undefined` if it does not subscribe). */
  getMetadata(event: string, peerId: string): M | null | undefined {
    return this.#table.get(event)?.get(peerId);
  }

  /** `[event, Map<peerId, metadata>]` pairs (copies). */
  entries(): [string, Map<string, M | null>][] {
    return [...this.#table].map(([event, peers]) => [event, new Map(peers)]);
  }

  /** The table as an emitter snapshot. */
  toSnapshot(): HamokEmitterSnapshot<M> {
    return {
      emitterId: this.emitterId,
      subscriptions: [...this.#table].map(([event, peers]) => ({
        event,
        subscribers: [...peers].map(([peerId, metadata]) => ({ peerId, metadata })),
      })),
    };
  }

  /** The applying side of {@linkcode EmitterCommands}. */
  static readonly #commands: CommandTable<HamokSubscriptionTable> = commandTable<
    EmitterCommands,
    HamokSubscriptionTable
  >({
    subscribe: (s, args, ctx) => {
      const a = args as Record<string, unknown>;
      return s.#add(a.event as string, ctx.proposerPeerId, a.metadata ?? null);
    },
    unsubscribe: (s, args, ctx) =>
      s.#remove((args as Record<string, unknown>).event as string, ctx.proposerPeerId),
    "clear-peer": (s, _args, ctx) => s.#removePeer(ctx.proposerPeerId),
    import: (s, args) => {
      let changed = 0;
      for (const [event, subscribers] of (args as Record<string, unknown>).entries as TableImage) {
        for (const [peerId, metadata] of subscribers) {
          if (s.#add(event, peerId, metadata)) changed++;
        }
      }
      return changed;
    },
  });

  /** @internal Applies a committed command (see {@linkcode EmitterCommands}). */
  apply(op: string, args: unknown, ctx: ApplyContext): unknown {
    return applyCommand(HamokSubscriptionTable.#commands, this as HamokSubscriptionTable, op, args, ctx);
  }

  /** @internal A member left the cluster: it no longer subscribes to anything. */
  memberRemoved(peerId: string): void {
    this.#removePeer(peerId);
  }

  /** @internal */
  snapshot(): unknown {
    const image: TableImage = [];
    for (const [event, peers] of this.#table) image.push([event, [...peers]]);
    return image;
  }

  /** @internal */
  restore(image: unknown): void {
    const next = new Map<string, Map<string, M | null>>();
    for (const [event, subscribers] of image as TableImage) {
      next.set(event, new Map(subscribers as [string, M | null][]));
    }
    for (const [event, peers] of this.#table) {
      for (const [peerId, metadata] of peers) {
        if (!next.get(event)?.has(peerId)) {
          peers.delete(peerId);
          if (this.#listeners.has("removed")) this.#emit("removed", [event, peerId, metadata]);
        }
      }
      if (peers.size === 0) this.#table.delete(event);
    }
    for (const [event, peers] of next) {
      for (const [peerId, metadata] of peers) this.#add(event, peerId, metadata);
    }
    // the content is the image's now; so is the order (a kept subscriber would otherwise stay where
    // it was here, and this replica would list the subscribers unlike the ones that applied the log)
    this.#table.clear();
    for (const [event, peers] of next) this.#table.set(event, peers);
  }

  #add(event: string, peerId: string, metadata: M | null): boolean {
    let peers = this.#table.get(event);
    if (peers === undefined) {
      peers = new Map();
      this.#table.set(event, peers);
    }
    if (!peers.has(peerId)) {
      peers.set(peerId, metadata);
      if (this.#listeners.has("added")) this.#emit("added", [event, peerId, metadata]);
      return true;
    }
    const previous = peers.get(peerId) ?? null;
    if (sameValue(previous, metadata)) return false;
    peers.set(peerId, metadata);
    if (this.#listeners.has("updated")) this.#emit("updated", [event, peerId, metadata, previous]);
    return true;
  }

  #remove(event: string, peerId: string): boolean {
    const peers = this.#table.get(event);
    if (peers === undefined || !peers.has(peerId)) return false;
    const metadata = peers.get(peerId) ?? null;
    peers.delete(peerId);
    if (peers.size === 0) this.#table.delete(event);
    if (this.#listeners.has("removed")) this.#emit("removed", [event, peerId, metadata]);
    return true;
  }

  #removePeer(peerId: string): number {
    let removed = 0;
    for (const event of [...this.#table.keys()]) if (this.#remove(event, peerId)) removed++;
    return removed;
  }
}

/** Structural equality for metadata values (plain data: primitives, arrays, objects, Maps, bytes). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) if (!b.has(k) || !sameValue(v, b.get(k))) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
