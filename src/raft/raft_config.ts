/**
 * Defaults and validation of {@linkcode RaftConfig}: turns the user's partial configuration into a
 * complete one, once, so the hot paths read plain fields.
 *
 * @module
 */

import { RaftError } from "./raft_error.ts";
import type { RaftConfig } from "./types.ts";

/** A {@linkcode RaftConfig} with every default filled in and the testing bugs as booleans. */
export interface ResolvedRaftConfig {
  /** This node's member id. */
  readonly id: string;
  /** Base election timeout in ticks. */
  readonly electionTicks: number;
  /** Heartbeat interval in ticks. */
  readonly heartbeatTicks: number;
  /** Random source in [0, 1). */
  readonly random: () => number;
  /** Pre-vote enabled. */
  readonly preVote: boolean;
  /** Check-quorum and leader lease enabled. */
  readonly checkQuorum: boolean;
  /** Maximum entries per append (at least 1). */
  readonly maxEntriesPerAppend: number;
  /** Maximum payload bytes per append (at least one entry is always sent). */
  readonly maxBytesPerAppend: number;
  /** Maximum unacknowledged appends per follower (at least 1). */
  readonly maxInflightAppends: number;
  /** Snapshot chunk size in bytes (at least 1). */
  readonly snapshotChunkBytes: number;
  /** Most bytes of one snapshot message: a chunk leaves room for the membership it carries. */
  readonly snapshotMessageBytes: number;
  /** Largest snapshot accepted from a leader, in bytes. */
  readonly maxSnapshotBytes: number;
  /** Automatic promotion of caught-up learners. */
  readonly autoPromoteLearners: boolean;
  /** Learners are promoted only while there are fewer voters than this (at least 1). */
  readonly maxVoters: number;
  /** Testing bug: followers skip the prevIndex/prevTerm check. */
  readonly bugSkipPrevLogCheck: boolean;
  /** Testing bug: votes are granted even after voting for another candidate in the term. */
  readonly bugDoubleVote: boolean;
  /** Testing bug: the leader commits entries of older terms by counting replicas. */
  readonly bugCommitOldTerm: boolean;
  /** Testing bug: no check-quorum step-down and no leader lease. */
  readonly bugIgnoreCheckQuorum: boolean;
  /** The leader counts its own entries only once reported durable (`RaftNode.persisted`). */
  readonly asyncPersistence: boolean;
  /** Testing bug: with `asyncPersistence`, the leader still counts its own entries on append. */
  readonly bugSelfAckOnAppend: boolean;
  /**
   * Testing bug: a ReadIndex is the commit index alone, though a follower may have committed (and
   * answered a proposal) up to the `leaderMatch` it was sent.
   */
  readonly bugReadIgnoresFollowerCommit: boolean;
}

/** Default base election timeout, in ticks. */
export const DEFAULT_ELECTION_TICKS = 10;
/** Default heartbeat interval, in ticks. */
export const DEFAULT_HEARTBEAT_TICKS = 1;
/** Default maximum entries per append. */
export const DEFAULT_MAX_ENTRIES_PER_APPEND = 256;
/** Default maximum payload bytes per append. */
export const DEFAULT_MAX_BYTES_PER_APPEND = 1024 * 1024;
/** Default maximum unacknowledged appends per follower. */
export const DEFAULT_MAX_INFLIGHT_APPENDS = 16;
/** Default snapshot chunk size in bytes. */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/** Default largest snapshot accepted from a leader, in bytes (1 GiB). */
export const DEFAULT_MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RaftError(`RaftConfig.${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/**
 * Fills in the defaults of a {@linkcode RaftConfig} and checks it; throws {@linkcode RaftError}
 * on an invalid value (an empty id, a non-positive count, a heartbeat interval that is not
 * shorter than the election timeout).
 *
 * @example
 * ```ts
 * import { resolveRaftConfig } from "./raft_config.ts";
 * const config = resolveRaftConfig({ id: "a", random: () => 0.5 });
 * console.log(config.electionTicks, config.preVote); // 10 true
 * ```
 */
export function resolveRaftConfig(config: RaftConfig): ResolvedRaftConfig {
  if (typeof config.id !== "string" || config.id.length === 0) {
    throw new RaftError("RaftConfig.id must be a non-empty string");
  }
  if (typeof config.random !== "function") {
    throw new RaftError("RaftConfig.random must be a function returning a number in [0, 1)");
  }
  const electionTicks = positiveInteger("electionTicks", config.electionTicks, DEFAULT_ELECTION_TICKS);
  const heartbeatTicks = positiveInteger("heartbeatTicks", config.heartbeatTicks, DEFAULT_HEARTBEAT_TICKS);
  if (heartbeatTicks >= electionTicks) {
    throw new RaftError(
      `RaftConfig.heartbeatTicks (${heartbeatTicks}) must be smaller than electionTicks (${electionTicks})`,
    );
  }
  const bugs = config.testingBugs ?? [];
  return {
    id: config.id,
    electionTicks,
    heartbeatTicks,
    random: config.random,
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    maxEntriesPerAppend: positiveInteger(
      "maxEntriesPerAppend",
      config.maxEntriesPerAppend,
      DEFAULT_MAX_ENTRIES_PER_APPEND,
    ),
    maxBytesPerAppend: positiveInteger(
      "maxBytesPerAppend",
      config.maxBytesPerAppend,
      DEFAULT_MAX_BYTES_PER_APPEND,
    ),
    maxInflightAppends: positiveInteger(
      "maxInflightAppends",
      config.maxInflightAppends,
      DEFAULT_MAX_INFLIGHT_APPENDS,
    ),
    snapshotChunkBytes: positiveInteger(
      "snapshotChunkBytes",
      config.snapshotChunkBytes,
      DEFAULT_SNAPSHOT_CHUNK_BYTES,
    ),
    snapshotMessageBytes: config.snapshotMessageBytes === undefined
      ? Number.POSITIVE_INFINITY
      : positiveInteger("snapshotMessageBytes", config.snapshotMessageBytes, 1),
    maxSnapshotBytes: positiveInteger(
      "maxSnapshotBytes",
      config.maxSnapshotBytes,
      DEFAULT_MAX_SNAPSHOT_BYTES,
    ),
    autoPromoteLearners: config.autoPromoteLearners ?? true,
    maxVoters: config.maxVoters === undefined
      ? Number.POSITIVE_INFINITY
      : positiveInteger("maxVoters", config.maxVoters, 1),
    bugSkipPrevLogCheck: bugs.includes("skip-prev-log-check"),
    bugDoubleVote: bugs.includes("double-vote"),
    bugCommitOldTerm: bugs.includes("commit-old-term"),
    bugIgnoreCheckQuorum: bugs.includes("ignore-check-quorum"),
    asyncPersistence: config.asyncPersistence ?? false,
    bugSelfAckOnAppend: bugs.includes("self-ack-on-append"),
    bugReadIgnoresFollowerCommit: bugs.includes("read-ignores-follower-commit"),
  };
}
