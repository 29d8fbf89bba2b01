/**
 * The in-process message bus behind {@linkcode MemoryTransport}: subject routing with NATS
 * semantics, a batched asynchronous delivery queue, and fault injection for tests (drop, delay,
 * duplicate, partition).
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { HamokConfigError } from "../errors.ts";
import type { TransportHeaders, TransportMessage, TransportSubscription } from "./transport.ts";
import {
  hasWildcard,
  isValidHeaderKey,
  isValidHeaderValue,
  isValidPublishSubject,
  isValidSubscribeSubject,
  subjectMatches,
} from "./subject.ts";

/** An endpoint of a bus, named by its id or given as the transport itself. */
export type MemoryEndpointRef = string | { readonly id: string };

/** One endpoint or several. */
export type MemoryEndpoints = MemoryEndpointRef | readonly MemoryEndpointRef[];

/**
 * Which deliveries a fault applies to. A delivery is one message travelling from the publishing
 * endpoint to one subscription of a receiving endpoint. Omitted fields match everything.
 */
export interface MemoryFaultOptions {
  /** Publishing endpoints the fault applies to. Default: all. */
  from?: MemoryEndpoints;
  /** Receiving endpoints the fault applies to. Default: all. */
  to?: MemoryEndpoints;
  /** Subject pattern (NATS wildcards allowed) of the messages the fault applies to. Default: all. */
  subject?: string;
  /** Chance (0..1) that a matching delivery is affected, drawn from the bus's random source. Default 1. */
  probability?: number;
  /** The fault removes itself after affecting this many deliveries. Default: unlimited. */
  times?: number;
}

/** Options of {@linkcode MemoryBus.delay}. */
export interface MemoryDelayOptions extends MemoryFaultOptions {
  /** Delay of each affected delivery, in milliseconds. */
  ms: number;
  /**
   * A random extra delay in `[0, jitterMs)` per delivery. Any jitter lets messages on the affected
   * path overtake one another (this is how to inject reordering). Default 0.
   */
  jitterMs?: number;
}

/** Options of {@linkcode MemoryBus.duplicate}. */
export interface MemoryDuplicateOptions extends MemoryFaultOptions {
  /** Extra copies delivered for each affected delivery. Default 1. */
  copies?: number;
}

/** The kind of a {@linkcode MemoryFault}. */
export type MemoryFaultKind = "drop" | "delay" | "duplicate" | "partition";

/**
 * A fault installed on a {@linkcode MemoryBus}; `remove()` takes it away again.
 *
 * @example
 * ```ts
 * import { MemoryBus } from "@hamok/core";
 * const bus = new MemoryBus();
 * const fault = bus.drop({ subject: "hamok.demo.>" });
 * fault.remove();
 * console.log(fault.active); // false
 * ```
 */
export interface MemoryFault {
  /** What the fault does. */
  readonly kind: MemoryFaultKind;
  /** False once removed, used up (`times`) or healed. */
  readonly active: boolean;
  /** Removes the fault; messages already delayed by it are still delivered. Idempotent. */
  remove(): void;
}

/**
 * The timers and clock a {@linkcode MemoryBus} runs on: a structural subset of the peer's
 * `Scheduler` (src/cluster/scheduler.ts), declared here so that the transport layer depends on
 * nothing above it. Any `Scheduler` is one.
 */
export interface MemoryBusScheduler {
  /** A monotonic clock in milliseconds (delay faults). */
  monotonicNow(): number;
  /** Runs `callback` once after `ms` milliseconds (release of delayed deliveries). */
  setTimeout(callback: () => void, ms: number): number | object;
  /** Cancels a timeout; `undefined` is ignored. */
  clearTimeout(handle: number | object | undefined): void;
  /** Runs `callback` on the microtask queue (delivery batches). */
  defer(callback: () => void): void;
  /** Runs `callback` in a later turn of the event loop (a long drain yields). */
  yieldThen(callback: () => void): void;
}

const REAL_BUS_SCHEDULER: MemoryBusScheduler = {
  monotonicNow: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => {
    if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  defer: (callback) => queueMicrotask(callback),
  yieldThen: (callback) => {
    setImmediate(callback);
  },
};

/** Options of the {@linkcode MemoryBus} constructor. */
export interface MemoryBusOptions {
  /** Random source in [0, 1) for probabilistic faults and jitter. Takes precedence over `seed`. */
  random?: () => number;
  /** Seed of the built-in deterministic random source. Default: `Math.random` is used. */
  seed?: number;
  /**
   * Advanced, for testing: the timers and clock deliveries run on (a peer's `Scheduler` fits).
   * Default: the runtime's microtasks, `setImmediate`, `setTimeout` and `performance.now`.
   */
  scheduler?: MemoryBusScheduler;
}

/** The delivery sink of a transport attached to a bus. */
export interface MemoryEndpointSink {
  /** Called when a subscription handler of this endpoint throws. Must not throw. */
  handlerFailed(subscription: TransportSubscription, error: unknown): void;
}

/**
 * The in-process message bus that {@linkcode MemoryTransport} endpoints attach to.
 *
 * Semantics (the same as NATS): a message published on a subject reaches every subscription that
 * matches the subject at the moment of publishing (wildcards `*` and `>` included, the
 * publisher's own subscriptions too); delivery is asynchronous, never inside the publisher's call
 * stack; all deliveries go through one FIFO queue, so messages of one publisher arrive in publish
 * order. The queue is drained in batches on microtasks; after 64 consecutive batches (handlers
 * that keep publishing) the drain yields to the event loop once, so timers and I/O still run.
 * The payload is not copied: neither the publisher nor any handler may mutate it. Headers are
 * copied and checked like NATS does (key: printable ASCII without `:`; value: no CR/LF; values
 * trimmed); a message published with an empty headers object arrives without headers.
 *
 * Faults for tests: {@linkcode MemoryBus.drop}, {@linkcode MemoryBus.delay},
 * {@linkcode MemoryBus.duplicate}, {@linkcode MemoryBus.partition} and
 * {@linkcode MemoryBus.partitionOneWay}; {@linkcode MemoryBus.heal} removes them all.
 * Ordering under faults: paths (publisher -> receiving endpoint) that no delay fault affects keep
 * per-publisher order, whatever happens on other paths. Messages on a delayed path arrive after
 * the delay, so later messages on other paths may overtake them; among themselves they keep
 * their order as long as the delay is constant (`jitterMs` 0) and the fault stays in place. With
 * jitter, or once the delay fault is removed or healed (messages already delayed are still
 * delivered), later messages on that path may overtake earlier ones. A duplicate copy arrives
 * right after its original.
 *
 * @example
 * ```ts
 * import { MemoryBus, MemoryTransport } from "@hamok/core";
 * const bus = new MemoryBus({ seed: 42 });
 * const a = new MemoryTransport({ bus, id: "a" });
 * const b = new MemoryTransport({ bus, id: "b" });
 * b.subscribe("hamok.demo.peer.b", (msg) => console.log(msg.data));
 * bus.partitionOneWay("a", "b"); // a can no longer reach b; b still reaches a
 * a.publish("hamok.demo.peer.b", new Uint8Array([1])); // lost
 * bus.heal();
 * await a.close();
 * await b.close();
 * ```
 */
export class MemoryBus {
  static #default: MemoryBus | undefined;

  /** The process-wide bus that a `new MemoryTransport()` without a `bus` option joins. */
  static get default(): MemoryBus {
    return (MemoryBus.#default ??= new MemoryBus());
  }

  readonly #router: MemoryRouter;

  /** Creates an empty bus with no endpoints and no faults. */
  constructor(options: MemoryBusOptions = {}) {
    const random = options.random ??
      (options.seed !== undefined ? seededRandom(options.seed) : Math.random);
    this.#router = new MemoryRouter(random, options.scheduler ?? REAL_BUS_SCHEDULER);
    routers.set(this, this.#router);
  }

  /** Ids of the endpoints currently attached. */
  get endpointIds(): string[] {
    return [...this.#router.endpoints.keys()];
  }

  /** Number of deliveries currently held back by delay faults. */
  get delayedCount(): number {
    return this.#router.delayed.length;
  }

  /** Faults currently installed. */
  get faults(): MemoryFault[] {
    return [...new Set(this.#router.faults.map((rule) => rule.handle))];
  }

  /**
   * Drops matching deliveries.
   *
   * @example
   * ```ts
   * import { MemoryBus } from "@hamok/core";
   * const bus = new MemoryBus();
   * bus.drop({ from: "a", probability: 0.1 }); // lose 10% of what a sends
   * ```
   */
  drop(options: MemoryFaultOptions = {}): MemoryFault {
    const handle = new FaultHandle("drop", this.#router);
    this.#router.addRule(new FaultRule(handle, options));
    return handle;
  }

  /**
   * Delays matching deliveries by `ms` (+ up to `jitterMs`). See the class documentation for
   * the ordering that still holds.
   *
   * @example
   * ```ts
   * import { MemoryBus } from "@hamok/core";
   * const bus = new MemoryBus();
   * bus.delay({ to: "b", ms: 50, jitterMs: 20 });
   * ```
   */
  delay(options: MemoryDelayOptions): MemoryFault {
    if (!(options.ms >= 0) || !((options.jitterMs ?? 0) >= 0)) {
      throw new HamokConfigError("delay ms and jitterMs must be non-negative numbers");
    }
    const handle = new FaultHandle("delay", this.#router);
    const rule = new FaultRule(handle, options);
    rule.delayMs = options.ms;
    rule.jitterMs = options.jitterMs ?? 0;
    this.#router.addRule(rule);
    return handle;
  }

  /**
   * Delivers matching deliveries more than once (the copies arrive right after the original).
   *
   * @example
   * ```ts
   * import { MemoryBus } from "@hamok/core";
   * const bus = new MemoryBus();
   * bus.duplicate({ subject: "hamok.demo.all", copies: 2 });
   * ```
   */
  duplicate(options: MemoryDuplicateOptions = {}): MemoryFault {
    const copies = options.copies ?? 1;
    if (!Number.isInteger(copies) || copies < 1) {
      throw new HamokConfigError("duplicate copies must be a positive integer");
    }
    const handle = new FaultHandle("duplicate", this.#router);
    const rule = new FaultRule(handle, options);
    rule.copies = copies;
    this.#router.addRule(rule);
    return handle;
  }

  /**
   * Cuts both directions between the endpoints of `a` and those of `b`. Traffic inside each side
   * and to third endpoints is unaffected.
   *
   * @example
   * ```ts
   * import { MemoryBus } from "@hamok/core";
   * const bus = new MemoryBus();
   * bus.partition(["a", "b"], ["c"]); // {a, b} | {c}
   * ```
   */
  partition(a: MemoryEndpoints, b: MemoryEndpoints): MemoryFault {
    const handle = new FaultHandle("partition", this.#router);
    this.#router.addRule(new FaultRule(handle, { from: a, to: b }));
    this.#router.addRule(new FaultRule(handle, { from: b, to: a }));
    return handle;
  }

  /**
   * Cuts one direction: messages from `from` no longer reach `to`; the reverse still flows.
   *
   * @example
   * ```ts
   * import { MemoryBus } from "@hamok/core";
   * const bus = new MemoryBus();
   * bus.partitionOneWay("a", "b");
   * ```
   */
  partitionOneWay(from: MemoryEndpoints, to: MemoryEndpoints): MemoryFault {
    const handle = new FaultHandle("partition", this.#router);
    this.#router.addRule(new FaultRule(handle, { from, to }));
    return handle;
  }

  /**
   * Removes every fault. Messages already held back by a delay are still delivered.
   *
   * @example
   * ```ts
   * import { MemoryBus } from "@hamok/core";
   * const bus = new MemoryBus();
   * bus.heal();
   * ```
   */
  heal(): void {
    this.#router.removeAllRules();
  }
}

// ---------------------------------------------------------------------------------------------
// Internals (not part of the public API: mod.ts exports only MemoryBus and the option types).

const routers = new WeakMap<MemoryBus, MemoryRouter>();

/** The routing engine of a bus. Internal: used by MemoryTransport. */
export function routerOf(bus: MemoryBus): MemoryRouter {
  const router = routers.get(bus);
  if (router === undefined) throw new HamokConfigError("not a MemoryBus");
  return router;
}

/** mulberry32: a small, fast, deterministic PRNG. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function idSet(endpoints: MemoryEndpoints | undefined): Set<string> | undefined {
  if (endpoints === undefined) return undefined;
  const list = (Array.isArray(endpoints) ? endpoints : [endpoints]) as readonly MemoryEndpointRef[];
  return new Set(list.map((ref) => (typeof ref === "string" ? ref : ref.id)));
}

class FaultHandle implements MemoryFault {
  readonly kind: MemoryFaultKind;
  active = true;
  readonly #router: MemoryRouter;
  constructor(kind: MemoryFaultKind, router: MemoryRouter) {
    this.kind = kind;
    this.#router = router;
  }
  remove(): void {
    if (!this.active) return;
    this.active = false;
    this.#router.removeRulesOf(this);
  }
}

class FaultRule {
  readonly handle: FaultHandle;
  readonly kind: MemoryFaultKind;
  readonly from: Set<string> | undefined;
  readonly to: Set<string> | undefined;
  readonly pattern: string[] | undefined;
  readonly probability: number;
  remaining: number;
  delayMs = 0;
  jitterMs = 0;
  copies = 0;

  constructor(handle: FaultHandle, options: MemoryFaultOptions) {
    if (options.subject !== undefined && !isValidSubscribeSubject(options.subject)) {
      throw new HamokConfigError(`invalid fault subject pattern '${options.subject}'`);
    }
    const probability = options.probability ?? 1;
    if (!(probability >= 0 && probability <= 1)) {
      throw new HamokConfigError("fault probability must be within [0, 1]");
    }
    const times = options.times ?? Infinity;
    if (!(times > 0)) throw new HamokConfigError("fault times must be positive");
    this.handle = handle;
    this.kind = handle.kind;
    this.from = idSet(options.from);
    this.to = idSet(options.to);
    this.pattern = options.subject?.split(".");
    this.probability = probability;
    this.remaining = times;
  }

  matches(fromId: string, toId: string, subjectTokens: () => string[]): boolean {
    if (this.from !== undefined && !this.from.has(fromId)) return false;
    if (this.to !== undefined && !this.to.has(toId)) return false;
    return this.pattern === undefined || subjectMatches(this.pattern, subjectTokens());
  }
}

/** A subscription on a bus. */
export class MemorySubscription implements TransportSubscription {
  readonly subject: string;
  readonly handler: (message: TransportMessage) => void;
  readonly endpoint: MemoryEndpoint;
  /** Pattern tokens if the subject has wildcards, else undefined. */
  readonly pattern: string[] | undefined;
  closed = false;

  constructor(endpoint: MemoryEndpoint, subject: string, handler: (message: TransportMessage) => void) {
    this.endpoint = endpoint;
    this.subject = subject;
    this.handler = handler;
    this.pattern = hasWildcard(subject) ? subject.split(".") : undefined;
  }

  unsubscribe(): void {
    if (this.closed) return;
    this.closed = true;
    this.endpoint.removeSubscription(this);
  }
}

/** One transport's attachment to a bus. */
export class MemoryEndpoint {
  readonly id: string;
  readonly router: MemoryRouter;
  readonly sink: MemoryEndpointSink;
  readonly subscriptions: Set<MemorySubscription> = new Set();
  detached = false;

  constructor(router: MemoryRouter, id: string, sink: MemoryEndpointSink) {
    this.router = router;
    this.id = id;
    this.sink = sink;
  }

  subscribe(subject: string, handler: (message: TransportMessage) => void): MemorySubscription {
    if (!isValidSubscribeSubject(subject)) {
      throw new HamokConfigError(`invalid subscription subject '${subject}'`);
    }
    const sub = new MemorySubscription(this, subject, handler);
    this.subscriptions.add(sub);
    this.router.addSubscription(sub);
    return sub;
  }

  removeSubscription(sub: MemorySubscription): void {
    if (this.subscriptions.delete(sub)) this.router.removeSubscription(sub);
  }

  publish(subject: string, data: Uint8Array, headers: TransportHeaders | undefined): void {
    this.router.publish(this, subject, data, headers);
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    for (const sub of this.subscriptions) {
      sub.closed = true;
      this.router.removeSubscription(sub);
    }
    this.subscriptions.clear();
    this.router.detach(this);
  }
}

interface Delayed {
  due: number;
  sub: MemorySubscription;
  msg: TransportMessage;
}

const EMPTY: readonly MemorySubscription[] = [];
/** Queue marker: the next queue slot holds a callback to run in order (flush). */
const CALLBACK = Symbol("callback");
/** Consecutive microtask drains before one yield to the event loop. */
const MAX_CHAINED_DRAINS = 64;
/** Bound of the subject resolution cache. */
const MAX_RESOLVED = 10_000;

/**
 * Copies headers the way they arrive over NATS: validated (HamokConfigError otherwise), values
 * trimmed, and `undefined` when there are none.
 */
function copyHeaders(headers: TransportHeaders): TransportHeaders | undefined {
  let copy: Record<string, string> | undefined;
  for (const key in headers) {
    const value = headers[key];
    if (!isValidHeaderKey(key)) throw new HamokConfigError(`invalid header key '${key}'`);
    if (typeof value !== "string" || !isValidHeaderValue(value)) {
      throw new HamokConfigError(`invalid value of header '${key}'`);
    }
    (copy ??= {})[key] = value.trim();
  }
  return copy;
}

/** The routing engine of a {@linkcode MemoryBus}. */
export class MemoryRouter {
  readonly random: () => number;
  readonly endpoints: Map<string, MemoryEndpoint> = new Map();
  faults: FaultRule[] = [];
  /** Deliveries held back by delay faults, sorted by due time (stable). */
  delayed: Delayed[] = [];

  readonly #exact = new Map<string, MemorySubscription[]>();
  #wildcards: MemorySubscription[] = [];
  readonly #resolved = new Map<string, readonly MemorySubscription[]>();
  /** Flat FIFO of (subscription | CALLBACK, message | callback) pairs. */
  #queue: unknown[] = [];
  #spare: unknown[] = [];
  #scheduled = false;
  #chained = 0;
  #delayTimer: number | object | undefined;
  #delayTimerDue = Infinity;
  #nextId = 1;

  readonly #scheduler: MemoryBusScheduler;

  constructor(random: () => number, scheduler: MemoryBusScheduler) {
    this.random = random;
    this.#scheduler = scheduler;
  }

  attach(id: string | undefined, sink: MemoryEndpointSink): MemoryEndpoint {
    if (id === undefined) {
      do id = `memory-${this.#nextId++}`; while (this.endpoints.has(id));
    } else if (id.length === 0) {
      throw new HamokConfigError("a memory transport id must be a non-empty string");
    } else if (this.endpoints.has(id)) {
      throw new HamokConfigError(`a memory transport with id '${id}' is already attached to this bus`);
    }
    const endpoint = new MemoryEndpoint(this, id, sink);
    this.endpoints.set(id, endpoint);
    return endpoint;
  }

  detach(endpoint: MemoryEndpoint): void {
    if (this.endpoints.get(endpoint.id) === endpoint) this.endpoints.delete(endpoint.id);
    if (this.delayed.length > 0) {
      this.delayed = this.delayed.filter((d) => !d.sub.closed);
      if (this.delayed.length === 0) this.#disarm();
    }
  }

  addSubscription(sub: MemorySubscription): void {
    if (sub.pattern !== undefined) {
      this.#wildcards = [...this.#wildcards, sub];
    } else {
      const list = this.#exact.get(sub.subject);
      this.#exact.set(sub.subject, list === undefined ? [sub] : [...list, sub]);
    }
    this.#resolved.clear();
  }

  removeSubscription(sub: MemorySubscription): void {
    if (sub.pattern !== undefined) {
      this.#wildcards = this.#wildcards.filter((s) => s !== sub);
    } else {
      const list = this.#exact.get(sub.subject);
      if (list === undefined) return;
      const rest = list.filter((s) => s !== sub);
      if (rest.length === 0) this.#exact.delete(sub.subject);
      else this.#exact.set(sub.subject, rest);
    }
    this.#resolved.clear();
  }

  #resolve(subject: string): readonly MemorySubscription[] {
    if (!isValidPublishSubject(subject)) {
      throw new HamokConfigError(`invalid publish subject '${subject}'`);
    }
    const exact = this.#exact.get(subject);
    let result: readonly MemorySubscription[];
    if (this.#wildcards.length === 0) {
      result = exact ?? EMPTY;
    } else {
      const tokens = subject.split(".");
      const list = exact === undefined ? [] : exact.slice();
      for (const sub of this.#wildcards) {
        if (subjectMatches(sub.pattern!, tokens)) list.push(sub);
      }
      result = list;
    }
    if (this.#resolved.size >= MAX_RESOLVED) this.#resolved.clear();
    this.#resolved.set(subject, result);
    return result;
  }

  publish(
    from: MemoryEndpoint,
    subject: string,
    data: Uint8Array,
    headers: TransportHeaders | undefined,
  ): void {
    const subs = this.#resolved.get(subject) ?? this.#resolve(subject);
    const copied = headers === undefined ? undefined : copyHeaders(headers);
    const n = subs.length;
    if (n === 0) return;
    const msg: TransportMessage = { subject, data, headers: copied };
    if (this.faults.length === 0) {
      const queue = this.#queue;
      for (let i = 0; i < n; i++) queue.push(subs[i]!, msg); // i < n
    } else {
      let tokens: string[] | undefined;
      const subjectTokens = (): string[] => (tokens ??= subject.split("."));
      for (let i = 0; i < n; i++) this.#routeWithFaults(from.id, subs[i]!, msg, subjectTokens);
    }
    this.#schedule();
  }

  #routeWithFaults(
    fromId: string,
    sub: MemorySubscription,
    msg: TransportMessage,
    subjectTokens: () => string[],
  ): void {
    const toId = sub.endpoint.id;
    // Blocking faults first (partition, drop), then the modifying ones (duplicate, delay).
    for (const rule of this.faults) {
      if (rule.kind !== "partition" && rule.kind !== "drop") continue;
      if (!rule.matches(fromId, toId, subjectTokens)) continue;
      if (rule.probability < 1 && this.random() >= rule.probability) continue;
      this.#consume(rule);
      return;
    }
    let copies = 1;
    let delayMs = -1;
    for (const rule of this.faults) {
      if (rule.kind === "duplicate") {
        if (!rule.matches(fromId, toId, subjectTokens)) continue;
        if (rule.probability < 1 && this.random() >= rule.probability) continue;
        this.#consume(rule);
        copies += rule.copies;
      } else if (rule.kind === "delay" && delayMs < 0) {
        if (!rule.matches(fromId, toId, subjectTokens)) continue;
        if (rule.probability < 1 && this.random() >= rule.probability) continue;
        this.#consume(rule);
        delayMs = rule.delayMs + (rule.jitterMs > 0 ? this.random() * rule.jitterMs : 0);
      }
    }
    if (delayMs < 0) {
      for (let c = 0; c < copies; c++) this.#queue.push(sub, msg);
    } else {
      const due = this.#scheduler.monotonicNow() + delayMs;
      for (let c = 0; c < copies; c++) this.#insertDelayed({ due, sub, msg });
    }
  }

  #consume(rule: FaultRule): void {
    if (--rule.remaining <= 0) rule.handle.remove();
  }

  addRule(rule: FaultRule): void {
    this.faults = [...this.faults, rule];
  }

  removeRulesOf(handle: FaultHandle): void {
    this.faults = this.faults.filter((rule) => rule.handle !== handle);
  }

  removeAllRules(): void {
    const rules = this.faults;
    this.faults = [];
    for (const rule of rules) rule.handle.active = false;
  }

  /** Runs `callback` once every delivery queued before it has been made. */
  enqueueCallback(callback: () => void): void {
    this.#queue.push(CALLBACK, callback);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#scheduler.defer(this.#drain);
  }

  readonly #drain = (): void => {
    const batch = this.#queue;
    this.#queue = this.#spare;
    const n = batch.length;
    for (let i = 0; i < n; i += 2) {
      const target = batch[i];
      if (target === CALLBACK) {
        (batch[i + 1] as () => void)();
        continue;
      }
      const sub = target as MemorySubscription;
      if (sub.closed) continue;
      try {
        sub.handler(batch[i + 1] as TransportMessage);
      } catch (error) {
        sub.endpoint.sink.handlerFailed(sub, error);
      }
    }
    batch.length = 0;
    this.#spare = batch;
    if (this.#queue.length === 0) {
      this.#scheduled = false;
      this.#chained = 0;
    } else if (++this.#chained < MAX_CHAINED_DRAINS) {
      this.#scheduler.defer(this.#drain);
    } else {
      this.#chained = 0;
      this.#scheduler.yieldThen(this.#drain);
    }
  };

  #insertDelayed(item: Delayed): void {
    const list = this.delayed;
    // Upper bound binary search keeps equal due times in insertion order.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.due <= item.due) lo = mid + 1; // lo <= mid < hi <= length
      else hi = mid;
    }
    if (lo === list.length) list.push(item);
    else list.splice(lo, 0, item);
    if (item.due < this.#delayTimerDue) this.#arm(item.due);
  }

  #arm(due: number): void {
    const scheduler = this.#scheduler;
    scheduler.clearTimeout(this.#delayTimer);
    this.#delayTimerDue = due;
    this.#delayTimer = scheduler.setTimeout(
      this.#releaseDelayed,
      Math.max(0, Math.ceil(due - scheduler.monotonicNow())),
    );
  }

  #disarm(): void {
    this.#scheduler.clearTimeout(this.#delayTimer);
    this.#delayTimer = undefined;
    this.#delayTimerDue = Infinity;
  }

  readonly #releaseDelayed = (): void => {
    this.#delayTimer = undefined;
    this.#delayTimerDue = Infinity;
    const now = this.#scheduler.monotonicNow();
    const list = this.delayed;
    let released = 0;
    let item: Delayed | undefined;
    while ((item = list[released]) !== undefined && item.due <= now) {
      released++;
      this.#queue.push(item.sub, item.msg);
    }
    if (released > 0) {
      list.splice(0, released);
      this.#schedule();
    }
    const next = list[0];
    if (next !== undefined) this.#arm(next.due);
  };
}
