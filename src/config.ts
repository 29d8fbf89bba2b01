/**
 * Configuration of a Hamok peer: every option, its default, and its validation, in one place.
 *
 * @module
 */

import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import { HamokConfigError } from "./errors.ts";
import { DEFAULT_MAX_SNAPSHOT_BYTES } from "./raft/raft_config.ts";
import { type ClusterKey, clusterKeysOf } from "./codec/wire_auth.ts";
import { assertWellFormed } from "./codec/well_formed.ts";
import { ClusterSubjects } from "./cluster/subjects.ts";
import type { RaftStorage } from "./storage/raft_storage.ts";
import type { FileSyncPolicy } from "./storage/file_raft_storage.ts";
import type { Transport } from "./transport/transport.ts";
import { randomUuid, REAL_SCHEDULER, type Scheduler } from "./cluster/scheduler.ts";

/**
 * A minimal structured logger. Hamok never logs to the console; pass `console` or your own
 * logger to see what it does.
 *
 * @example
 * ```ts
 * import { Hamok, type HamokLogger } from "@hamok/core";
 * const logger: HamokLogger = { debug() {}, info: console.info, warn: console.warn, error: console.error };
 * const hamok = new Hamok({ logger });
 * ```
 */
export interface HamokLogger {
  /** Verbose diagnostics. */
  debug(message: string, ...details: unknown[]): void;
  /** Lifecycle information (joined, leader changed, ...). */
  info(message: string, ...details: unknown[]): void;
  /** Something unexpected that Hamok recovered from. */
  warn(message: string, ...details: unknown[]): void;
  /** A failure. */
  error(message: string, ...details: unknown[]): void;
}

/**
 * Options of `new Hamok(config)`. All are optional.
 *
 * @example
 * ```ts
 * import { Hamok } from "@hamok/core";
 * const hamok = new Hamok({ peerId: "orders-1", clusterId: "orders", requestTimeoutInMs: 3000 });
 * ```
 */
export interface HamokConfig {
  /** This peer's id, unique in the cluster (at most 253 characters: a DNS name fits). Default: a random UUID. */
  peerId?: string;
  /**
   * Peers with different cluster ids never interfere, even on one NATS server (at most 253
   * characters). Default `"default"`.
   */
  clusterId?: string;
  /** Subject prefix. Default `hamok.<clusterId>`. */
  subjectPrefix?: string;
  /**
   * The transport. Default: an endpoint on the process-wide in-memory bus, so peers created in one
   * process find each other without any set-up. A transport passed here is not closed by `close()`.
   */
  transport?: Transport;
  /** Raft storage. Default: a fresh in-memory storage (or a file storage in `dataDir`). */
  storage?: RaftStorage;
  /**
   * A directory for this peer's durable state (log, snapshots, member id). One directory per peer;
   * a peer restarted on its directory comes back as the same member with its data. Cannot be
   * combined with `storage`. Default: none (in memory).
   */
  dataDir?: string;
  /** Sync policy of the `dataDir` storage (see `FileSyncPolicy`). Default `"always"`. */
  sync?: FileSyncPolicy;
  /** Period of the `"interval"` sync policy, in ms. Default 100. */
  syncIntervalMs?: number;
  /** Period of the Raft clock in milliseconds; ticks only drive timeouts. Default 50. */
  tickMs?: number;
  /** Election timeout in ticks; the effective timeout is random in [n, 2n) ticks. Default 10. */
  electionTicks?: number;
  /** Leader heartbeat interval in ticks. Default 2. */
  heartbeatTicks?: number;
  /** How long discovery listens for an existing cluster before bootstrapping one, in ms. Default 300. */
  discoveryMs?: number;
  /** A member the leader has not heard from for this long is removed from the cluster. Default 5000. */
  peerTimeoutMs?: number;
  /**
   * Default timeout of operations that wait on the network, in ms (the name the collections use for
   * theirs too). Default 5000.
   */
  requestTimeoutInMs?: number;
  /**
   * The old name of {@linkcode HamokConfig.requestTimeoutInMs}, still accepted. Giving both with
   * different values is a `HamokConfigError`.
   *
   * @deprecated Use `requestTimeoutInMs`.
   */
  requestTimeoutMs?: number;
  /** Number of applied entries after which the peer compacts its log into a snapshot. Default 10000. */
  snapshotThreshold?: number;
  /**
   * Bytes of applied entries (their encoded commands) after which the peer compacts its log into a
   * snapshot, whichever of this and {@linkcode snapshotThreshold} comes first. Default 64 MiB.
   */
  snapshotThresholdBytes?: number;
  /**
   * Largest snapshot this peer takes from a leader, in bytes. A leader's InstallSnapshot announces the
   * image's size in every chunk; a larger one is refused before any buffer is reserved and counted in
   * `status().counters.snapshotReceive.oversize`, and this peer cannot catch up from that leader until its
   * snapshots fit (set it above the largest state you expect). Default 1 GiB.
   */
  maxSnapshotBytes?: number;
  /** Optional logger; nothing is logged without one. */
  logger?: HamokLogger;
  /** Tracer provider for OpenTelemetry spans. Default: the global provider of `@opentelemetry/api`. */
  tracerProvider?: TracerProvider;
  /**
   * Meter provider for OpenTelemetry metrics. Default: the global provider of `@opentelemetry/api`
   * as registered when the peer is created (without an SDK nothing is measured).
   */
  meterProvider?: MeterProvider;
  /**
   * A secret shared by every peer of the cluster (at least 32 bytes, or a string of at least 32
   * bytes): every message is authenticated with it (HMAC-SHA-256 over the cluster id and the
   * message), and messages without a valid tag are dropped. An array rotates keys: the first signs,
   * all verify. Default: none (messages are bound to the cluster id but not authenticated).
   */
  clusterKey?: ClusterKey | readonly ClusterKey[];
  /**
   * Whether `join()` may bootstrap a new cluster when it finds none: `"auto"` (default) lets the
   * newcomer with the smallest peer id bootstrap once no member has been heard for `discoveryMs`;
   * `"never"` only ever joins an existing cluster (for peers added to a running deployment).
   */
  bootstrap?: "auto" | "never";
  /**
   * With `bootstrap: "auto"`, nobody bootstraps until this many newcomers (this one included) have
   * been heard, like Consul's `bootstrap_expect`. Default 1.
   */
  expectedPeers?: number;
  /**
   * A peer that learns it was removed from the cluster (it was paused or cut off for longer than
   * `peerTimeoutMs`) emits `left` and, with `autoRejoin` (default true), joins again as a new member.
   */
  autoRejoin?: boolean;
  /**
   * With `autoMerge` (default true), a peer that is the only member of its cluster, which has no
   * application writes (a lone bootstrap, e.g. of a newcomer that did not hear the cluster in time),
   * dissolves it and joins another cluster it hears with the same `clusterId`: once that cluster's
   * leader has added it. Between two such lone clusters the one with the smaller identity stays. A
   * cluster with data never dissolves; it keeps reporting `HamokClusterConflictError`.
   */
  autoMerge?: boolean;
  /**
   * The most voters the cluster keeps. Further members stay learners: they replicate, serve local and
   * linearizable reads and forward writes, but a commit never waits for them; one is promoted when a
   * voter leaves or is removed. Default 5 (a commit waits for 3 acknowledgements at most).
   */
  voters?: number;
  /**
   * Advanced, for testing: the timers, clocks and randomness the peer uses (everything above the
   * pure Raft core takes them from here). Default: the runtime's own (`REAL_SCHEDULER`). The
   * whole-peer simulator passes a virtual scheduler so that a run replays by seed; applications
   * leave it unset. Every timeout and silence is measured on its `monotonicNow()`; its `now()` (the
   * wall clock) only stamps emitter sequences and `status().time`.
   */
  scheduler?: Scheduler;
  /**
   * Testing only: deliberately broken behaviours, so that the whole-peer simulator can prove it
   * catches them (like the core's `RaftTestingBug`). Never set it outside a test. Default: none.
   */
  testingBugs?: readonly HamokTestingBug[];
}

/**
 * A deliberate bug for the simulator's self-test (see {@linkcode HamokConfig.testingBugs}):
 * `"bootstrap-on-failed-join"` bootstraps a new cluster whenever a join request fails (the old split
 * brain); `"resolve-before-apply"` resolves a write with a speculative local result as soon as it is
 * proposed, before it is committed and applied.
 */
export type HamokTestingBug = "bootstrap-on-failed-join" | "resolve-before-apply";

/** A {@linkcode HamokConfig} with every default filled in. */
export interface ResolvedHamokConfig {
  /** See {@linkcode HamokConfig.peerId}. */
  readonly peerId: string;
  /** See {@linkcode HamokConfig.clusterId}. */
  readonly clusterId: string;
  /** See {@linkcode HamokConfig.subjectPrefix}. */
  readonly subjectPrefix: string;
  /** See {@linkcode HamokConfig.transport}; `undefined`: the peer creates a memory transport. */
  readonly transport: Transport | undefined;
  /** See {@linkcode HamokConfig.storage}; `undefined`: the peer creates a memory storage. */
  readonly storage: RaftStorage | undefined;
  /** See {@linkcode HamokConfig.dataDir}. */
  readonly dataDir: string | undefined;
  /** See {@linkcode HamokConfig.sync}. */
  readonly sync: FileSyncPolicy;
  /** See {@linkcode HamokConfig.syncIntervalMs}. */
  readonly syncIntervalMs: number;
  /** See {@linkcode HamokConfig.tickMs}. */
  readonly tickMs: number;
  /** See {@linkcode HamokConfig.electionTicks}. */
  readonly electionTicks: number;
  /** See {@linkcode HamokConfig.heartbeatTicks}. */
  readonly heartbeatTicks: number;
  /** See {@linkcode HamokConfig.discoveryMs}. */
  readonly discoveryMs: number;
  /** See {@linkcode HamokConfig.peerTimeoutMs}. */
  readonly peerTimeoutMs: number;
  /** See {@linkcode HamokConfig.requestTimeoutInMs}. */
  readonly requestTimeoutInMs: number;
  /**
   * The same value as {@linkcode ResolvedHamokConfig.requestTimeoutInMs}, under the old name.
   *
   * @deprecated Use `requestTimeoutInMs`.
   */
  readonly requestTimeoutMs: number;
  /** See {@linkcode HamokConfig.snapshotThreshold}. */
  readonly snapshotThreshold: number;
  /** See {@linkcode HamokConfig.snapshotThresholdBytes}. */
  readonly snapshotThresholdBytes: number;
  /** See {@linkcode HamokConfig.maxSnapshotBytes}. */
  readonly maxSnapshotBytes: number;
  /** See {@linkcode HamokConfig.logger}; a silent logger when none was given. */
  readonly logger: HamokLogger;
  /** See {@linkcode HamokConfig.tracerProvider}. */
  readonly tracerProvider: TracerProvider | undefined;
  /** See {@linkcode HamokConfig.meterProvider}. */
  readonly meterProvider: MeterProvider | undefined;
  /** The validated keys of {@linkcode HamokConfig.clusterKey} (first signs); `undefined`: no key. */
  readonly clusterKeys: readonly Uint8Array[] | undefined;
  /** See {@linkcode HamokConfig.bootstrap}. */
  readonly bootstrap: "auto" | "never";
  /** See {@linkcode HamokConfig.expectedPeers}. */
  readonly expectedPeers: number;
  /** See {@linkcode HamokConfig.autoRejoin}. */
  readonly autoRejoin: boolean;
  /** See {@linkcode HamokConfig.autoMerge}. */
  readonly autoMerge: boolean;
  /** See {@linkcode HamokConfig.voters}. */
  readonly voters: number;
  /** See {@linkcode HamokConfig.scheduler}; `REAL_SCHEDULER` when none was given. */
  readonly scheduler: Scheduler;
  /** See {@linkcode HamokConfig.testingBugs}; empty when none was given. */
  readonly testingBugs: readonly HamokTestingBug[];
}

const SILENT_LOGGER: HamokLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Default values of the options of {@linkcode HamokConfig}.
 *
 * @example
 * ```ts
 * import { HAMOK_DEFAULTS } from "@hamok/core";
 * console.log(HAMOK_DEFAULTS.requestTimeoutInMs); // 5000
 * ```
 */
export const HAMOK_DEFAULTS: Readonly<
  Required<
    Pick<
      HamokConfig,
      | "clusterId"
      | "tickMs"
      | "electionTicks"
      | "heartbeatTicks"
      | "discoveryMs"
      | "peerTimeoutMs"
      | "requestTimeoutInMs"
      | "snapshotThreshold"
      | "snapshotThresholdBytes"
    >
  >
> = {
  clusterId: "default",
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 2,
  discoveryMs: 300,
  peerTimeoutMs: 5000,
  requestTimeoutInMs: 5000,
  snapshotThreshold: 10000,
  snapshotThresholdBytes: 64 * 1024 * 1024,
};

/**
 * The longest timeout a timer can take, in ms (2^31 - 1; longer ones would fire at once).
 *
 * @example
 * ```ts
 * import { MAX_TIMEOUT_MS } from "./config.ts";
 * console.log(MAX_TIMEOUT_MS); // 2147483647
 * ```
 */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * Returns `value` (or `fallback` when undefined); throws a {@linkcode HamokConfigError} unless it is
 * a positive integer of at most {@linkcode MAX_TIMEOUT_MS} (a timer would fire at once above it).
 *
 * @example
 * ```ts ignore
 * timeoutMs("requestTimeoutInMs", undefined, 5000); // 5000
 * ```
 */
export function timeoutMs(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const invalid = invalidTimeout(name, value);
  if (invalid !== undefined) throw invalid;
  return value;
}

/**
 * A {@linkcode HamokConfigError} unless `value` is a timeout a timer can take: an integer in
 * [1, {@linkcode MAX_TIMEOUT_MS}]; `undefined` when it is one. The one check behind every timeout
 * of the config, the peer and the collections.
 *
 * @example
 * ```ts ignore
 * invalidTimeout("set", 2 ** 40); // HamokConfigError
 * invalidTimeout("set", 1000); // undefined
 * ```
 */
export function invalidTimeout(what: string, value: unknown): HamokConfigError | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value > 0 && value <= MAX_TIMEOUT_MS) {
    return undefined;
  }
  return new HamokConfigError(
    `${what}: timeoutMs must be an integer in [1, ${MAX_TIMEOUT_MS}], got ${String(value)}`,
  );
}

/**
 * Returns `value` (or `fallback` when undefined); throws a {@linkcode HamokConfigError} unless it is
 * a positive integer.
 *
 * @example
 * ```ts ignore
 * positiveInteger("tickMs", 20, 50); // 20
 * ```
 */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw new HamokConfigError(`${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** The longest `peerId` and `clusterId`, in UTF-16 units. */
export const MAX_ID_LENGTH = 253;

/**
 * Returns `value` (or `fallback()` when undefined); throws a {@linkcode HamokConfigError} unless it
 * is a non-empty, well-formed string (no lone UTF-16 surrogate: UTF-8 would carry it as U+FFFD, so
 * two different ids would become one on the wire).
 *
 * @example
 * ```ts ignore
 * nonEmptyString("peerId", undefined, () => "generated"); // "generated"
 * ```
 */
export function nonEmptyString(name: string, value: string | undefined, fallback: () => string): string {
  if (value === undefined) return fallback();
  if (typeof value !== "string" || value.length === 0) {
    throw new HamokConfigError(`${name} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  assertWellFormed(name, value, HamokConfigError);
  return value;
}

/** `requestTimeoutInMs`, or its deprecated alias `requestTimeoutMs`; both given must agree. */
function resolveRequestTimeout(config: HamokConfig, fallback: number): number {
  const value = config.requestTimeoutInMs;
  const alias = config.requestTimeoutMs;
  if (value !== undefined && alias !== undefined && value !== alias) {
    throw new HamokConfigError(
      `requestTimeoutInMs (${String(value)}) and its deprecated alias requestTimeoutMs (${String(alias)}) ` +
        "differ: give requestTimeoutInMs only",
    );
  }
  if (value === undefined && alias !== undefined) return timeoutMs("requestTimeoutMs", alias, fallback);
  return timeoutMs("requestTimeoutInMs", value, fallback);
}

/**
 * Validates a {@linkcode HamokConfig} and fills in the defaults.
 *
 * @example
 * ```ts
 * import { resolveHamokConfig } from "@hamok/core/internal";
 * resolveHamokConfig({ tickMs: 20 }).electionTicks; // 10
 * ```
 */
export function resolveHamokConfig(config: HamokConfig = {}): ResolvedHamokConfig {
  if (config === null || typeof config !== "object") {
    throw new HamokConfigError("the Hamok config must be an object");
  }
  const scheduler = config.scheduler ?? REAL_SCHEDULER;
  const peerId = nonEmptyString("peerId", config.peerId, () => randomUuid(scheduler));
  const clusterId = nonEmptyString("clusterId", config.clusterId, () => HAMOK_DEFAULTS.clusterId);
  // ids travel in most messages and in every request id: bounded, so that what a peer keeps per
  // remote id (and what it takes from the wire) is bounded too
  for (const [name, id] of [["peerId", peerId], ["clusterId", clusterId]] as const) {
    if (id.length > MAX_ID_LENGTH) {
      throw new HamokConfigError(`${name} takes at most ${MAX_ID_LENGTH} characters, got ${id.length}`);
    }
  }
  const subjectPrefix = nonEmptyString(
    "subjectPrefix",
    config.subjectPrefix,
    () => ClusterSubjects.prefixFor(clusterId),
  );
  if (/[\s*>]/.test(subjectPrefix) || subjectPrefix.startsWith(".") || subjectPrefix.endsWith(".")) {
    throw new HamokConfigError(`subjectPrefix ${JSON.stringify(subjectPrefix)} is not a valid subject`);
  }
  const d = HAMOK_DEFAULTS;
  const requestTimeoutInMs = resolveRequestTimeout(config, d.requestTimeoutInMs);
  const electionTicks = positiveInteger("electionTicks", config.electionTicks, d.electionTicks);
  const heartbeatTicks = positiveInteger("heartbeatTicks", config.heartbeatTicks, d.heartbeatTicks);
  if (heartbeatTicks >= electionTicks) {
    throw new HamokConfigError(
      `heartbeatTicks (${heartbeatTicks}) must be below electionTicks (${electionTicks})`,
    );
  }
  if (config.dataDir !== undefined) {
    if (typeof config.dataDir !== "string" || config.dataDir.length === 0) {
      throw new HamokConfigError(`dataDir must be a non-empty string, got ${JSON.stringify(config.dataDir)}`);
    }
    if (config.storage !== undefined) throw new HamokConfigError("give either storage or dataDir, not both");
  }
  if (
    config.sync !== undefined && config.sync !== "always" && config.sync !== "interval" &&
    config.sync !== "never"
  ) {
    throw new HamokConfigError(
      `sync must be "always", "interval" or "never", got ${JSON.stringify(config.sync)}`,
    );
  }
  return {
    peerId,
    clusterId,
    subjectPrefix,
    transport: withMethods("transport", config.transport, [
      "publish",
      "subscribe",
      "flush",
      "close",
      "on",
      "off",
    ]),
    storage: withMethods("storage", config.storage, [
      "load",
      "saveHardState",
      "append",
      "saveSnapshot",
      "close",
    ]),
    dataDir: config.dataDir,
    sync: config.sync ?? "always",
    syncIntervalMs: positiveInteger("syncIntervalMs", config.syncIntervalMs, 100),
    tickMs: timeoutMs("tickMs", config.tickMs, d.tickMs),
    electionTicks,
    heartbeatTicks,
    discoveryMs: timeoutMs("discoveryMs", config.discoveryMs, d.discoveryMs),
    peerTimeoutMs: timeoutMs("peerTimeoutMs", config.peerTimeoutMs, d.peerTimeoutMs),
    requestTimeoutInMs,
    requestTimeoutMs: requestTimeoutInMs,
    snapshotThreshold: positiveInteger("snapshotThreshold", config.snapshotThreshold, d.snapshotThreshold),
    snapshotThresholdBytes: positiveInteger(
      "snapshotThresholdBytes",
      config.snapshotThresholdBytes,
      d.snapshotThresholdBytes,
    ),
    maxSnapshotBytes: positiveInteger(
      "maxSnapshotBytes",
      config.maxSnapshotBytes,
      DEFAULT_MAX_SNAPSHOT_BYTES,
    ),
    logger: withMethods("logger", config.logger, ["debug", "info", "warn", "error"]) ?? SILENT_LOGGER,
    tracerProvider: config.tracerProvider,
    meterProvider: config.meterProvider,
    clusterKeys: config.clusterKey === undefined ? undefined : clusterKeysOf(config.clusterKey),
    bootstrap: bootstrapOf(config.bootstrap),
    expectedPeers: positiveInteger("expectedPeers", config.expectedPeers, 1),
    autoRejoin: booleanOf("autoRejoin", config.autoRejoin, true),
    autoMerge: booleanOf("autoMerge", config.autoMerge, true),
    voters: positiveInteger("voters", config.voters, 5),
    scheduler,
    testingBugs: config.testingBugs ?? [],
  };
}

/**
 * `value` if it is undefined or an object with every method in `methods`; else `HamokConfigError`
 * naming the first missing one (a `MemoryBus` given as the transport failed later, at `join()`,
 * with a bare `TypeError`).
 */
function withMethods<T>(name: string, value: T, methods: readonly string[]): T {
  if (value === undefined) return value;
  if (value === null || (typeof value !== "object" && typeof value !== "function")) {
    throw new HamokConfigError(`${name} must be an object, got ${value === null ? "null" : typeof value}`);
  }
  for (const method of methods) {
    if (typeof (value as Record<string, unknown>)[method] !== "function") {
      throw new HamokConfigError(`${name} has no ${method}() method: is it a ${name}?`);
    }
  }
  return value;
}

function bootstrapOf(value: unknown): "auto" | "never" {
  if (value === undefined) return "auto";
  if (value === "auto" || value === "never") return value;
  throw new HamokConfigError(`bootstrap must be "auto" or "never", got ${JSON.stringify(value)}`);
}

function booleanOf(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new HamokConfigError(`${name} must be a boolean, got ${String(value)}`);
  }
  return value;
}
