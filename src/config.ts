/**
 * Configuration of a Hamok peer: every option, its default, and its validation, in one place.
 *
 * @module
 */

import type { TracerProvider } from "@opentelemetry/api";
import { HamokConfigError } from "./errors.ts";
import { ClusterSubjects } from "./cluster/subjects.ts";
import type { RaftStorage } from "./storage/raft_storage.ts";
import type { Transport } from "./transport/transport.ts";

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
 * const hamok = new Hamok({ peerId: "orders-1", clusterId: "orders", requestTimeoutMs: 3000 });
 * ```
 */
export interface HamokConfig {
  /** This peer's id, unique in the cluster. Default: a random UUID. */
  peerId?: string;
  /** Peers with different cluster ids never interfere, even on one NATS server. Default `"default"`. */
  clusterId?: string;
  /** Subject prefix. Default `hamok.<clusterId>`. */
  subjectPrefix?: string;
  /**
   * The transport. Default: an endpoint on the process-wide in-memory bus, so peers created in one
   * process find each other without any set-up. A transport passed here is not closed by `close()`.
   */
  transport?: Transport;
  /** Raft storage. Default: a fresh in-memory storage. */
  storage?: RaftStorage;
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
  /** Default timeout of operations that wait on the network, in ms. Default 5000. */
  requestTimeoutMs?: number;
  /** Number of applied entries after which the peer compacts its log into a snapshot. Default 10000. */
  snapshotThreshold?: number;
  /** Optional logger; nothing is logged without one. */
  logger?: HamokLogger;
  /** Tracer provider for OpenTelemetry spans. Default: the global provider of `@opentelemetry/api`. */
  tracerProvider?: TracerProvider;
}

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
  /** See {@linkcode HamokConfig.requestTimeoutMs}. */
  readonly requestTimeoutMs: number;
  /** See {@linkcode HamokConfig.snapshotThreshold}. */
  readonly snapshotThreshold: number;
  /** See {@linkcode HamokConfig.logger}; a silent logger when none was given. */
  readonly logger: HamokLogger;
  /** See {@linkcode HamokConfig.tracerProvider}. */
  readonly tracerProvider: TracerProvider | undefined;
}

const SILENT_LOGGER: HamokLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Default values of the options of {@linkcode HamokConfig}.
 *
 * @example
 * ```ts
 * import { HAMOK_DEFAULTS } from "@hamok/core";
 * console.log(HAMOK_DEFAULTS.requestTimeoutMs); // 5000
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
      | "requestTimeoutMs"
      | "snapshotThreshold"
    >
  >
> = {
  clusterId: "default",
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 2,
  discoveryMs: 300,
  peerTimeoutMs: 5000,
  requestTimeoutMs: 5000,
  snapshotThreshold: 10000,
};

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

/**
 * Returns `value` (or `fallback()` when undefined); throws a {@linkcode HamokConfigError} unless it
 * is a non-empty string.
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
  return value;
}

/**
 * Validates a {@linkcode HamokConfig} and fills in the defaults.
 *
 * @example
 * ```ts
 * import { resolveHamokConfig } from "@hamok/core";
 * resolveHamokConfig({ tickMs: 20 }).electionTicks; // 10
 * ```
 */
export function resolveHamokConfig(config: HamokConfig = {}): ResolvedHamokConfig {
  if (config === null || typeof config !== "object") {
    throw new HamokConfigError("the Hamok config must be an object");
  }
  const peerId = nonEmptyString("peerId", config.peerId, () => crypto.randomUUID());
  const clusterId = nonEmptyString("clusterId", config.clusterId, () => HAMOK_DEFAULTS.clusterId);
  const subjectPrefix = nonEmptyString(
    "subjectPrefix",
    config.subjectPrefix,
    () => ClusterSubjects.prefixFor(clusterId),
  );
  if (/[\s*>]/.test(subjectPrefix) || subjectPrefix.startsWith(".") || subjectPrefix.endsWith(".")) {
    throw new HamokConfigError(`subjectPrefix ${JSON.stringify(subjectPrefix)} is not a valid subject`);
  }
  const d = HAMOK_DEFAULTS;
  const electionTicks = positiveInteger("electionTicks", config.electionTicks, d.electionTicks);
  const heartbeatTicks = positiveInteger("heartbeatTicks", config.heartbeatTicks, d.heartbeatTicks);
  if (heartbeatTicks >= electionTicks) {
    throw new HamokConfigError(
      `heartbeatTicks (${heartbeatTicks}) must be below electionTicks (${electionTicks})`,
    );
  }
  return {
    peerId,
    clusterId,
    subjectPrefix,
    transport: config.transport,
    storage: config.storage,
    tickMs: positiveInteger("tickMs", config.tickMs, d.tickMs),
    electionTicks,
    heartbeatTicks,
    discoveryMs: positiveInteger("discoveryMs", config.discoveryMs, d.discoveryMs),
    peerTimeoutMs: positiveInteger("peerTimeoutMs", config.peerTimeoutMs, d.peerTimeoutMs),
    requestTimeoutMs: positiveInteger("requestTimeoutMs", config.requestTimeoutMs, d.requestTimeoutMs),
    snapshotThreshold: positiveInteger("snapshotThreshold", config.snapshotThreshold, d.snapshotThreshold),
    logger: config.logger ?? SILENT_LOGGER,
    tracerProvider: config.tracerProvider,
  };
}
