/**
 * The peer's metrics over `@opentelemetry/api` (no SDK dependency): publish duration (the
 * messaging semantic conventions' `messaging.client.operation.duration`), proposal-to-apply
 * latency, apply batch size, append round trip per follower, elections, leader changes, dropped
 * messages by reason, log size and follower lag.
 *
 * Without an SDK the meter is the API's no-op meter: {@linkcode HamokMetrics.enabled} is false and
 * the peer skips every clock read and record call, so metrics cost one boolean test per hot-path
 * event. With one, instruments and attribute sets are created once, never per call.
 *
 * @module
 */

import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
} from "@opentelemetry/api";
import { DROP_REASONS, type DropReason } from "../cluster/peer_counters.ts";

/** Boundaries (seconds) for latency histograms: 50 µs to 10 s. */
const LATENCY_BUCKETS_S = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.00075,
  0.001,
  0.0025,
  0.005,
  0.0075,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const NOOP_HISTOGRAM = createNoopMeter().createHistogram("noop");
const MAX_FOLLOWER_ATTRIBUTES = 256;

/**
 * The names of Hamok's instruments.
 *
 * @example
 * ```ts
 * import { HAMOK_METRIC_NAMES } from "@hamok/core";
 * console.log(HAMOK_METRIC_NAMES.publishDuration); // "messaging.client.operation.duration"
 * ```
 */
export const HAMOK_METRIC_NAMES = {
  publishDuration: "messaging.client.operation.duration",
  proposalDuration: "hamok.proposal.duration",
  applyBatchSize: "hamok.apply.batch.size",
  appendRoundTrip: "hamok.raft.append.duration",
  elections: "hamok.raft.elections",
  leaderChanges: "hamok.raft.leader.changes",
  dropped: "hamok.messages.dropped",
  logEntries: "hamok.raft.log.entries",
  logBytes: "hamok.raft.log.bytes",
  followerLag: "hamok.raft.follower.lag",
} as const;

/** What the observable instruments read from the peer at collection time. */
export interface HamokMetricsSource {
  /** Entries and bytes in the log after the snapshot. */
  log(): { entries: number; bytes: number };
  /** On the leader: each follower's peer id and lag in entries; empty elsewhere. */
  followerLag(): Iterable<readonly [peerId: string, lag: number]>;
}

/**
 * The instruments of one peer. Every attribute set carries `hamok.peer.id`, so several peers in
 * one process stay apart.
 *
 * @example
 * ```ts
 * import { HamokMetrics } from "@hamok/core/internal";
 * const m = new HamokMetrics(undefined, "a", { log: () => ({ entries: 0, bytes: 0 }), followerLag: () => [] });
 * console.log(m.enabled); // false without an SDK
 * ```
 */
export class HamokMetrics {
  /** False when the meter is the no-op meter (no SDK): callers then skip timing and recording. */
  readonly enabled: boolean;
  /** Attributes with only this peer's id. */
  readonly peerAttributes: Attributes;
  /** `messaging.client.operation.duration` (s) of emitter publishes. */
  readonly publishDuration: Histogram;
  /** Proposal to apply on the proposing peer (s). */
  readonly proposalDuration: Histogram;
  /** Committed entries applied per batch. */
  readonly applyBatchSize: Histogram;
  /** Leader: append sent to a follower until its response (s), by `hamok.follower.id`. */
  readonly appendRoundTrip: Histogram;
  /** Elections this peer started. */
  readonly elections: Counter;
  /** New leaders this peer saw. */
  readonly leaderChanges: Counter;
  /** Dropped inbound messages, by `hamok.drop.reason`. */
  readonly dropped: Counter;
  readonly #peerId: string;
  readonly #dropAttributes = new Map<DropReason, Attributes>();
  readonly #followerAttributes = new Map<string, Attributes>();

  /** Creates the instruments from `provider` (default: the global meter provider). */
  constructor(provider: MeterProvider | undefined, peerId: string, source: HamokMetricsSource) {
    const meter: Meter = (provider ?? metrics.getMeterProvider()).getMeter("@hamok/core");
    this.#peerId = peerId;
    this.peerAttributes = { "hamok.peer.id": peerId };
    const names = HAMOK_METRIC_NAMES;
    this.publishDuration = meter.createHistogram(names.publishDuration, {
      description: "Duration of emitter publish operations, until every subscriber acknowledged.",
      unit: "s",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    this.enabled = this.publishDuration !== NOOP_HISTOGRAM;
    this.proposalDuration = meter.createHistogram(names.proposalDuration, {
      description: "From proposing a command until it is applied on the proposing peer.",
      unit: "s",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    this.applyBatchSize = meter.createHistogram(names.applyBatchSize, {
      description: "Committed log entries applied in one batch.",
      unit: "{entry}",
      advice: { explicitBucketBoundaries: BATCH_BUCKETS },
    });
    this.appendRoundTrip = meter.createHistogram(names.appendRoundTrip, {
      description: "Leader only: from sending an append to a follower until its response.",
      unit: "s",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    this.elections = meter.createCounter(names.elections, {
      description: "Elections this peer started (pre-vote rounds included).",
      unit: "{election}",
    });
    this.leaderChanges = meter.createCounter(names.leaderChanges, {
      description: "Times this peer saw a new leader.",
      unit: "{change}",
    });
    this.dropped = meter.createCounter(names.dropped, {
      description: "Inbound messages dropped, by reason.",
      unit: "{message}",
    });
    if (!this.enabled) return;
    for (const reason of DROP_REASONS) {
      this.#dropAttributes.set(reason, { "hamok.peer.id": peerId, "hamok.drop.reason": reason });
    }
    const peerAttributes = this.peerAttributes;
    const entries = meter.createObservableGauge(names.logEntries, {
      description: "Entries in the Raft log after the latest snapshot.",
      unit: "{entry}",
    });
    const bytes = meter.createObservableGauge(names.logBytes, {
      description: "Bytes of command data in the Raft log after the latest snapshot.",
      unit: "By",
    });
    const lag = meter.createObservableGauge(names.followerLag, {
      description: "Leader only: entries each follower is behind the leader's last index.",
      unit: "{entry}",
    });
    meter.addBatchObservableCallback((result) => {
      const log = source.log();
      result.observe(entries, log.entries, peerAttributes);
      result.observe(bytes, log.bytes, peerAttributes);
      for (const [follower, behind] of source.followerLag()) {
        result.observe(lag, behind, this.follower(follower));
      }
    }, [entries, bytes, lag]);
  }

  /** Counts one dropped message (attribute sets are prepared per reason). */
  droppedOne(reason: DropReason): void {
    this.dropped.add(1, this.#dropAttributes.get(reason) ?? this.peerAttributes);
  }

  /** The (cached) attributes of one follower. */
  follower(peerId: string): Attributes {
    let attributes = this.#followerAttributes.get(peerId);
    if (attributes === undefined) {
      if (this.#followerAttributes.size >= MAX_FOLLOWER_ATTRIBUTES) this.#followerAttributes.clear();
      attributes = { "hamok.peer.id": this.#peerId, "hamok.follower.id": peerId };
      this.#followerAttributes.set(peerId, attributes);
    }
    return attributes;
  }
}

/**
 * The (cached) attribute sets of one emitter's publishes: success, and failure by error type.
 *
 * @example
 * ```ts ignore
 * const attrs = new PublishAttributes("a", "chat");
 * metrics.publishDuration.record(0.001, attrs.ok);
 * ```
 */
export class PublishAttributes {
  /** A publish that every subscriber acknowledged. */
  readonly ok: Attributes;
  readonly #base: Attributes;
  readonly #failed = new Map<string, Attributes>();

  /** Prepares the attributes of `emitterId` on peer `peerId`. */
  constructor(peerId: string, emitterId: string) {
    this.#base = {
      "messaging.system": "hamok",
      "messaging.operation.name": "publish",
      "messaging.operation.type": "send",
      "messaging.destination.name": emitterId,
      "hamok.peer.id": peerId,
    };
    this.ok = this.#base;
  }

  /** A failed publish, by error type (a `HamokError` code). */
  failed(errorType: string): Attributes {
    let attributes = this.#failed.get(errorType);
    if (attributes === undefined) {
      if (this.#failed.size >= 32) this.#failed.clear();
      attributes = { ...this.#base, "error.type": errorType };
      this.#failed.set(errorType, attributes);
    }
    return attributes;
  }
}
