/**
 * The peer's trust boundary for bytes: every outbound envelope is bound to the cluster id and sealed
 * with the cluster key (when one is set); every inbound message is checked in this order before
 * anything acts on it: size, authentication tag, envelope shape, cluster binding. What fails is
 * dropped, counted by reason, and logged at most once per reason and period.
 *
 * @module
 */

import {
  decodeEnvelope,
  DEFAULT_MAX_ENVELOPE_BYTES,
  encodeEnvelope,
  type WireEnvelope,
} from "../codec/envelope.ts";
import { AUTH_TAG_BYTES, WireAuthenticator } from "../codec/wire_auth.ts";
import type { DropReason, PeerCounters } from "./peer_counters.ts";
import { REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";

/** Settings of a {@linkcode PeerWire}. */
export interface PeerWireOptions {
  /** The cluster every message is bound to. */
  readonly clusterId: string;
  /** Cluster keys (the first signs); none: messages are bound but not authenticated. */
  readonly keys: readonly Uint8Array[] | undefined;
  /** Where drops are counted. */
  readonly counters: PeerCounters;
  /** Rate-limited diagnostics. */
  readonly warn: (message: string, detail?: unknown) => void;
  /** This peer's id (for log lines). */
  readonly peerId: string;
  /** The clock of the rate-limited diagnostics. Default `REAL_SCHEDULER`. */
  readonly scheduler?: Scheduler;
}

/** How often, at most, one drop reason is logged (the counters count every drop). */
const WARN_EVERY_MS = 10_000;

/**
 * Encodes, seals, opens and decodes the envelopes of one peer.
 *
 * @example
 * ```ts ignore
 * const wire = new PeerWire({ clusterId: "orders", keys: undefined, counters, warn, peerId: "a" });
 * const bytes = wire.encode({ type: "hello", from: "a", body });
 * const envelope = wire.decode(bytes); // undefined (and counted) if it does not pass
 * ```
 */
export class PeerWire {
  readonly #clusterId: string;
  readonly #auth: WireAuthenticator | undefined;
  readonly #counters: PeerCounters;
  readonly #warn: (message: string, detail?: unknown) => void;
  readonly #peerId: string;
  readonly #maxInbound: number;
  readonly #lastWarned = new Map<DropReason, { at: number; suppressed: number }>();
  readonly #scheduler: Scheduler;

  /** Creates the wire of a peer. */
  constructor(options: PeerWireOptions) {
    this.#scheduler = options.scheduler ?? REAL_SCHEDULER;
    this.#clusterId = options.clusterId;
    this.#auth = options.keys === undefined || options.keys.length === 0
      ? undefined
      : new WireAuthenticator(options.clusterId, options.keys);
    this.#counters = options.counters;
    this.#warn = options.warn;
    this.#peerId = options.peerId;
    this.#maxInbound = DEFAULT_MAX_ENVELOPE_BYTES + (this.#auth === undefined ? 0 : AUTH_TAG_BYTES);
  }

  /** True if messages are authenticated with a cluster key. */
  get authenticated(): boolean {
    return this.#auth !== undefined;
  }

  /** Bytes a sealed message adds to its envelope (the tag; 0 without a key). */
  get overhead(): number {
    return this.#auth === undefined ? 0 : AUTH_TAG_BYTES;
  }

  /** The wire bytes of `envelope`, bound to this cluster and sealed. Throws `HamokCodecError`. */
  encode(envelope: WireEnvelope): Uint8Array {
    const bytes = encodeEnvelope(envelope, this.#clusterId);
    return this.#auth === undefined ? bytes : this.#auth.seal(bytes);
  }

  /** The envelope of inbound bytes, or `undefined` (dropped and counted) if they do not pass. */
  decode(data: Uint8Array): WireEnvelope | undefined {
    if (!(data instanceof Uint8Array) || data.byteLength > this.#maxInbound) {
      this.drop("oversized", `${data?.byteLength} bytes`);
      return undefined;
    }
    let bytes = data;
    if (this.#auth !== undefined) {
      const opened = this.#auth.open(data);
      if (opened === undefined) {
        this.drop("unauthenticated");
        return undefined;
      }
      bytes = opened;
    }
    let envelope: WireEnvelope;
    try {
      envelope = decodeEnvelope(bytes);
    } catch (error) {
      this.drop("undecodable", error);
      return undefined;
    }
    if (envelope.cluster !== this.#clusterId) {
      // the claim is the sender's: logged shortened (the message may be up to its size limit)
      const claimed = String(envelope.cluster);
      this.drop("other-cluster", claimed.length > 64 ? `${claimed.slice(0, 64)}…` : claimed);
      return undefined;
    }
    return envelope;
  }

  /** Counts a dropped message and logs the reason at most once per period. */
  drop(reason: DropReason, detail?: unknown): void {
    this.#counters.dropped(reason);
    const now = this.#scheduler.monotonicNow();
    const last = this.#lastWarned.get(reason);
    if (last !== undefined && now - last.at < WARN_EVERY_MS) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.#lastWarned.set(reason, { at: now, suppressed: 0 });
    const more = suppressed > 0 ? ` (${suppressed} more since the last report)` : "";
    this.#warn(`hamok ${this.#peerId}: dropped a message (${reason})${more}`, detail);
  }
}
