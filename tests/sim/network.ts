/**
 * The simulator's virtual network: decides, for every message a node sends, whether and when it
 * arrives. It drops, delays (latency jitter, which reorders, plus occasional long delays),
 * duplicates, and honours partitions — symmetric or one-way — expressed as blocked directed links.
 * All randomness comes from the {@linkcode Prng} it is given.
 *
 * @module
 */

import type { Prng } from "./prng.ts";

/** Message-level fault rates and latencies. */
export interface NetworkSettings {
  /** Probability a message is lost. */
  dropRate: number;
  /** Probability a message is delivered twice. */
  duplicateRate: number;
  /** Probability a message gets a long delay. */
  delayRate: number;
  /** Latency of a normal delivery, ms (uniform in [min, max]). */
  minLatency: number;
  /** See {@linkcode minLatency}. */
  maxLatency: number;
  /** Extra delay of a long-delayed message, ms (uniform in [0, longDelay]). */
  longDelay: number;
}

/** What {@linkcode VirtualNetwork.block} returns: the cut links, for a later unblock. */
export interface CutHandle {
  /** The blocked links as `from>to`. */
  readonly keys: readonly string[];
  /** Network generation at the time of the cut. */
  readonly generation: number;
}

/** Counts of message-level faults. */
export interface NetworkCounters {
  drop: number;
  delay: number;
  duplicate: number;
  reorder: number;
}

/**
 * Virtual network of the simulator.
 *
 * @example
 * ```ts
 * const net = new VirtualNetwork(rng, settings);
 * for (const at of net.plan(now, "n1", "n2")) schedule(at, msg);
 * const cut = net.block([["n1", "n2"], ["n2", "n1"]]);
 * net.unblock(cut);
 * ```
 */
export class VirtualNetwork {
  /** Current fault rates and latencies (mutable: storms change them). */
  settings: NetworkSettings;
  /** Fault counts so far. */
  readonly counters: NetworkCounters = { drop: 0, delay: 0, duplicate: 0, reorder: 0 };
  readonly #rng: Prng;
  /** `from>to` -> number of active cuts blocking the link. */
  readonly #blocked = new Map<string, number>();
  /** `from>to` -> latest planned delivery time on the link. */
  readonly #lastArrival = new Map<string, number>();
  readonly #planned: number[] = [];
  /** Bumped by {@linkcode unblockAll}: older cut handles no longer refer to anything. */
  #generation = 0;

  /** Creates a network drawing from `rng`. */
  constructor(rng: Prng, settings: NetworkSettings) {
    this.#rng = rng;
    this.settings = settings;
  }

  /** True when messages from `from` to `to` are currently cut. */
  isBlocked(from: string, to: string): boolean {
    return this.#blocked.size > 0 && (this.#blocked.get(from + ">" + to) ?? 0) > 0;
  }

  /** Number of blocked directed links. */
  get blockedLinks(): number {
    return this.#blocked.size;
  }

  /** Cuts the given directed links; returns a handle for {@linkcode unblock}. */
  block(links: readonly (readonly [string, string])[]): CutHandle {
    const keys = links.map(([a, b]) => a + ">" + b);
    for (const k of keys) this.#blocked.set(k, (this.#blocked.get(k) ?? 0) + 1);
    return { keys, generation: this.#generation };
  }

  /** Restores links cut by {@linkcode block} (a no-op for cuts already lifted by unblockAll). */
  unblock(cut: CutHandle): void {
    if (cut.generation !== this.#generation) return;
    for (const k of cut.keys) {
      const n = (this.#blocked.get(k) ?? 0) - 1;
      if (n <= 0) this.#blocked.delete(k);
      else this.#blocked.set(k, n);
    }
  }

  /** Removes every cut. */
  unblockAll(): void {
    this.#blocked.clear();
    this.#generation++;
  }

  /**
   * Plans the deliveries of one message sent at `now`: returns the arrival times (empty when the
   * message is lost or the link is cut; two when duplicated). The array is reused by the next call.
   */
  plan(now: number, from: string, to: string): readonly number[] {
    const out = this.#planned;
    out.length = 0;
    if (this.isBlocked(from, to)) return out;
    const s = this.settings;
    const rng = this.#rng;
    if (rng.chance(s.dropRate)) {
      this.counters.drop++;
      return out;
    }
    const copies = rng.chance(s.duplicateRate) ? 2 : 1;
    if (copies === 2) this.counters.duplicate++;
    const link = from + ">" + to;
    for (let c = 0; c < copies; c++) {
      let at = now + rng.range(s.minLatency, s.maxLatency);
      if (rng.chance(s.delayRate)) {
        this.counters.delay++;
        at += rng.int(s.longDelay + 1);
      }
      const last = this.#lastArrival.get(link) ?? 0;
      if (at < last) this.counters.reorder++;
      else this.#lastArrival.set(link, at);
      out.push(at);
    }
    return out;
  }
}
