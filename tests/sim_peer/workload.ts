/**
 * The parts of the whole-peer simulator's workload that are not the map: one key-value interface
 * over the map, the record and the remote map (so one client loop and one linearizability model
 * serve all three), a value codec that refuses some values, and the checkers of the queue and the
 * emitter histories.
 *
 * @module
 */

import type { HamokMap } from "../../src/collections/map.ts";
import type { HamokRecord } from "../../src/collections/record.ts";
import type { HamokRemoteMap } from "../../src/collections/remote_map.ts";
import type { ValueCodec } from "../../src/codec/value_codec.ts";
import { HamokConflictError } from "../../src/errors.ts";

/** Options of a write attempt. */
export interface AttemptOptions {
  readonly requestId: string;
  readonly timeoutMs: number;
}

/** A key-value collection as the client loop sees it (keys and values are strings). */
export interface KvTarget {
  /** Prefix of the keys in the shared history (`m`, `r`, `x`). */
  readonly name: string;
  /** Whether local reads with revisions exist (map and record). */
  readonly local: boolean;
  /** The local entry (only if {@linkcode local}). */
  entry(key: string): { value: string | undefined; revision: number };
  /** A linearizable read (remote map: a read of the store, or after every committed op executed). */
  get(key: string, timeoutMs: number, barrier: boolean): Promise<string | undefined>;
  set(key: string, value: string, o: AttemptOptions): Promise<string | undefined>;
  insert(key: string, value: string, o: AttemptOptions): Promise<string | undefined>;
  updateIf(key: string, value: string, expected: string, o: AttemptOptions): Promise<boolean>;
  /** A compare-and-set by revision: true if written, false on a conflict (only if {@linkcode local}). */
  setIfRevision(key: string, value: string, revision: number, o: AttemptOptions): Promise<boolean>;
}

/** The map as a {@linkcode KvTarget}. */
export function mapTarget(map: HamokMap<string, string>): KvTarget {
  return {
    name: "m",
    local: true,
    entry: (key) => {
      const e = map.getEntry(key);
      return { value: e?.value, revision: e?.revision ?? 0 };
    },
    get: (key, timeoutMs) => map.get(key, { consistency: "linearizable", timeoutMs }),
    set: (key, value, o) => map.set(key, value, o),
    insert: (key, value, o) => map.insert(key, value, o),
    updateIf: (key, value, expected, o) => map.updateIf(key, value, expected, o),
    setIfRevision: (key, value, ifRevision, o) =>
      conflictAsFalse(map.set(key, value, { ...o, ifRevision }).then(() => true)),
  };
}

/** The record (fields `a`, `b`, `c`) as a {@linkcode KvTarget}. */
export function recordTarget(record: HamokRecord<Record<string, string>>): KvTarget {
  return {
    name: "r",
    local: true,
    entry: (key) => {
      const e = record.getEntry(key);
      return { value: e?.value, revision: e?.revision ?? 0 };
    },
    get: (key, timeoutMs) => record.get(key, { consistency: "linearizable", timeoutMs }),
    set: (key, value, o) => record.set(key, value, o),
    insert: (key, value, o) => record.insert(key, value, o),
    updateIf: (key, value, expected, o) => record.updateIf(key, value, expected, o),
    setIfRevision: (key, value, ifRevision, o) =>
      conflictAsFalse(record.set(key, value, { ...o, ifRevision }).then(() => true)),
  };
}

/** The remote map as a {@linkcode KvTarget} (no local reads, no revisions). */
export function remoteTarget(map: HamokRemoteMap<string, string>): KvTarget {
  return {
    name: "x",
    local: false,
    entry: () => {
      throw new Error("a remote map has no local entries");
    },
    get: (key, timeoutMs, barrier) =>
      map.get(key, barrier ? { consistency: "linearizable", timeoutMs } : { consistency: "store" }),
    set: (key, value, o) => map.set(key, value, o),
    insert: (key, value, o) => map.insert(key, value, o),
    updateIf: (key, value, expected, o) => map.updateIf(key, value, expected, o),
    setIfRevision: () => {
      throw new Error("a remote map has no revisions");
    },
  };
}

async function conflictAsFalse(p: Promise<boolean>): Promise<boolean> {
  try {
    return await p;
  } catch (error) {
    if (error instanceof HamokConflictError) return false;
    throw error;
  }
}

/** Suffix of the values that {@linkcode refusingCodec} refuses to encode. */
export const REFUSED = "!";

/** A string codec that throws on encoding a value ending in {@linkcode REFUSED} (a fault). */
export const refusingCodec: ValueCodec<string> = {
  encode(value: string): string {
    if (value.endsWith(REFUSED)) throw new Error(`the codec refuses '${value}'`);
    return value;
  },
  decode(data: string | Uint8Array): string {
    return typeof data === "string" ? data : new TextDecoder().decode(data);
  },
};

// ------------------------------------------------------------------ queue

/** One pop of the queue with a known outcome. */
export interface QueuePop {
  readonly item: string | undefined;
  readonly call: number;
  readonly ret: number;
}

/** What the queue workload saw. */
export interface QueueHistory {
  /** Pushed items in push order per pusher: `acked` (resolved) or `unknown` (may have applied). */
  readonly pushes: Map<string, { pusher: string; order: number; acked: boolean; call: number; ret: number }>;
  readonly pops: QueuePop[];
  /** Pops whose outcome stayed unknown (each may have taken one item). */
  unknownPops: number;
}

/** A new, empty queue history. */
export function newQueueHistory(): QueueHistory {
  return { pushes: new Map(), pops: [], unknownPops: 0 };
}

/**
 * Checks the queue: every acknowledged push popped exactly once overall or still in the queue
 * (`remaining`, head first, as every replica agrees), unless lost to a pop whose outcome is unknown;
 * an unknown push at most once; no item from nowhere; FIFO per pusher among acknowledged pushes.
 *
 * @example
 * ```ts ignore
 * violations.push(...checkQueue(history, finalItems));
 * ```
 */
export function checkQueue(h: QueueHistory, remaining: readonly string[]): string[] {
  const out: string[] = [];
  const taken = new Map<string, QueuePop>();
  for (const pop of h.pops) {
    if (pop.item === undefined) continue;
    if (!h.pushes.has(pop.item)) out.push(`queue: popped '${pop.item}', which nobody pushed`);
    if (taken.has(pop.item)) out.push(`queue: '${pop.item}' popped twice`);
    taken.set(pop.item, pop);
  }
  const left = new Map<string, number>();
  remaining.forEach((item, i) => {
    if (!h.pushes.has(item)) out.push(`queue: '${item}' is in the queue, but nobody pushed it`);
    if (taken.has(item)) out.push(`queue: '${item}' was popped, yet it is still in the queue`);
    if (left.has(item)) out.push(`queue: '${item}' is in the queue twice`);
    left.set(item, i);
  });
  let lost = 0;
  const byPusher = new Map<string, string[]>();
  for (const [item, push] of h.pushes) {
    if (!push.acked) continue;
    if (!taken.has(item) && !left.has(item)) lost++;
    let list = byPusher.get(push.pusher);
    if (list === undefined) byPusher.set(push.pusher, list = []);
    list.push(item);
  }
  if (lost > h.unknownPops) {
    out.push(
      `queue: ${lost} acknowledged pushes neither popped nor in the queue (${h.unknownPops} pops unknown)`,
    );
  }
  // FIFO per pusher: a later item is never out before an earlier one (popped before the earlier's
  // pop was called, or popped while the earlier one is still in the queue), nor ahead in the queue
  for (const [pusher, items] of byPusher) {
    items.sort((a, b) => h.pushes.get(a)!.order - h.pushes.get(b)!.order);
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        const early = items[i]!, late = items[j]!;
        const pe = taken.get(early), pl = taken.get(late);
        const bad = (pl !== undefined && pe !== undefined && pl.ret < pe.call) ||
          (pl !== undefined && left.has(early)) ||
          (left.has(early) && left.has(late) && left.get(late)! < left.get(early)!);
        if (bad) {
          out.push(`queue: FIFO broken for pusher ${pusher}: '${late}' left the queue before '${early}'`);
          return out;
        }
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ emitter

/** What the emitter workload saw. */
export interface EmitterHistory {
  /** Per message (`publisher#n`): the listener incarnations (`peer~inc`) that got it, with counts. */
  readonly deliveries: Map<string, Map<string, number>>;
  /** Per listener incarnation and publisher incarnation: the last `n` delivered. */
  readonly lastN: Map<string, number>;
  readonly violations: string[];
}

/** A new, empty emitter history. */
export function newEmitterHistory(): EmitterHistory {
  return { deliveries: new Map(), lastN: new Map(), violations: [] };
}

/**
 * Records a delivery of message `n` of `publisher` to the listener of incarnation `listener`; a
 * message at most once per listener and in per-publisher order (the sequence only grows).
 *
 * @example
 * ```ts ignore
 * recordDelivery(history, "p1~1", "p2~1", 7);
 * ```
 */
export function recordDelivery(h: EmitterHistory, listener: string, publisher: string, n: number): void {
  const tag = `${publisher}#${n}`;
  let at = h.deliveries.get(tag);
  if (at === undefined) h.deliveries.set(tag, at = new Map());
  at.set(listener, (at.get(listener) ?? 0) + 1);
  const pair = `${listener}<${publisher}`;
  const last = h.lastN.get(pair) ?? 0;
  if (n <= last && h.violations.length < 5) {
    h.violations.push(
      `emitter: ${listener} got ${tag} after ${publisher}#${last} (${n === last ? "twice" : "out of order"})`,
    );
  }
  h.lastN.set(pair, Math.max(last, n));
}

/**
 * Checks a `publish` that resolved naming `peers`: each named peer's listeners (some incarnation of
 * it) got the message.
 *
 * @example
 * ```ts ignore
 * checkPublished(history, "p1~1", 7, ["p2", "p3"]);
 * ```
 */
export function checkPublished(
  h: EmitterHistory,
  publisher: string,
  n: number,
  peers: readonly string[],
): void {
  const at = h.deliveries.get(`${publisher}#${n}`);
  for (const peer of peers) {
    const got = at !== undefined && [...at.keys()].some((listener) => listener.split("~")[0] === peer);
    if (!got && h.violations.length < 5) {
      h.violations.push(
        `emitter: publish ${publisher}#${n} resolved naming ${peer}, whose listeners never got it`,
      );
    }
  }
}
