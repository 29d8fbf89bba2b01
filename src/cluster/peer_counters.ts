/**
 * Integer counters of one peer: messages dropped at the trust boundary (by reason), codec failures,
 * elections and leader changes. Incrementing is a property write; reading copies them out.
 *
 * @module
 */

import type { SnapshotReceiveStats } from "../raft/raft_node.ts";

const NO_SNAPSHOTS: SnapshotReceiveStats = Object.freeze({
  oversize: 0,
  mismatched: 0,
  digestMismatches: 0,
  resumed: 0,
});

/**
 * Why an inbound message was dropped. Every message that is not acted on is counted under one.
 *
 * - `oversized`: larger than the largest message this peer accepts.
 * - `unauthenticated`: a cluster key is set and the tag is missing or wrong.
 * - `undecodable`: not a valid envelope.
 * - `other-cluster`: bound to another cluster id (or to none).
 * - `non-member`: the sender is not a member of this peer's cluster (or not the learner being added).
 * - `forged-sender`: the envelope's sender disagrees with the sender the body names.
 * - `bad-term`: a Raft term this peer could not encode or store safely.
 * - `stale-sequence`: an event older than one already delivered from its publisher, or claiming a
 *   sequence beyond this peer's clock.
 * - `unexpected`: a well-formed message nobody waits for (an ack nobody awaits, a reply to no request).
 * - `rate-limited`: a sender (or everyone) sent more of this kind than this peer answers.
 * - `not-leader`: a shared append or heartbeat (one publish for several followers) that is not from
 *   the leader this peer follows in its current term (another term, another member, no leader known).
 */
export type DropReason =
  | "oversized"
  | "unauthenticated"
  | "undecodable"
  | "other-cluster"
  | "non-member"
  | "forged-sender"
  | "bad-term"
  | "stale-sequence"
  | "unexpected"
  | "rate-limited"
  | "not-leader";

/** Every {@linkcode DropReason}, in a stable order. */
export const DROP_REASONS: readonly DropReason[] = [
  "oversized",
  "unauthenticated",
  "undecodable",
  "other-cluster",
  "non-member",
  "forged-sender",
  "bad-term",
  "stale-sequence",
  "unexpected",
  "rate-limited",
  "not-leader",
];

/** A copy of a peer's counters at one moment. */
export interface PeerCounterValues {
  /** Inbound messages dropped, by reason. */
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Messages that failed to decode (also counted in `dropped.undecodable`). */
  readonly codecFailures: number;
  /** Elections this peer started (pre-vote rounds included). */
  readonly elections: number;
  /** Times the known leader changed. */
  readonly leaderChanges: number;
  /** Outbound publishes the transport refused (too large, closed connection, ...). */
  readonly sendFailures: number;
  /**
   * Shared appends and heartbeats (a leader's one publish for several in-sync followers) that did not
   * name this peer: ignored, not a drop.
   */
  readonly notForMe: number;
  /**
   * Snapshots received from leaders (InstallSnapshot) by this member: transfers refused because the
   * announced size is above `maxSnapshotBytes` (`oversize`), chunks dropped for a size or offset that does
   * not hold (`mismatched`), images dropped for a digest mismatch, and transfers resumed under a new leader.
   */
  readonly snapshotReceive: SnapshotReceiveStats;
  /**
   * Log compactions this peer made (those below included). A peer on its own memory storage
   * compacts without making an image of its state; it makes one only when a follower needs it.
   */
  readonly snapshotsTaken: number;
  /**
   * Snapshot images made because a follower needed one and the latest snapshot had none (a peer on
   * its own memory storage keeps no snapshot image while nobody needs it).
   */
  readonly snapshotsForFollowers: number;
}

/**
 * The counters of one peer.
 *
 * @example
 * ```ts ignore
 * const counters = new PeerCounters();
 * counters.dropped("non-member");
 * console.log(counters.values().dropped["non-member"]); // 1
 * ```
 */
export class PeerCounters {
  readonly #dropped: Record<DropReason, number> = {
    oversized: 0,
    unauthenticated: 0,
    undecodable: 0,
    "other-cluster": 0,
    "non-member": 0,
    "forged-sender": 0,
    "bad-term": 0,
    "stale-sequence": 0,
    unexpected: 0,
    "rate-limited": 0,
    "not-leader": 0,
  };
  /** Messages that failed to decode. */
  codecFailures = 0;
  /** Elections started. */
  elections = 0;
  /** Leader changes seen. */
  leaderChanges = 0;
  /** Outbound publishes that threw. */
  sendFailures = 0;
  /** Shared appends and heartbeats that named other followers only. */
  notForMe = 0;
  /** Snapshots taken. */
  snapshotsTaken = 0;
  /** Snapshots taken because a follower needed one. */
  snapshotsForFollowers = 0;
  /** Called after every drop (for metrics); must not throw. */
  onDropped: ((reason: DropReason) => void) | undefined;

  /** Counts one dropped message. */
  dropped(reason: DropReason): void {
    this.#dropped[reason]++;
    if (reason === "undecodable") this.codecFailures++;
    this.onDropped?.(reason);
  }

  /** Total messages dropped, over all reasons. */
  get totalDropped(): number {
    let total = 0;
    for (const reason of DROP_REASONS) total += this.#dropped[reason];
    return total;
  }

  /** A copy of the counters, with the Raft node's snapshot receive counts (none: zeros). */
  values(snapshotReceive: SnapshotReceiveStats = NO_SNAPSHOTS): PeerCounterValues {
    return {
      dropped: { ...this.#dropped },
      codecFailures: this.codecFailures,
      elections: this.elections,
      leaderChanges: this.leaderChanges,
      sendFailures: this.sendFailures,
      notForMe: this.notForMe,
      snapshotReceive: { ...snapshotReceive },
      snapshotsTaken: this.snapshotsTaken,
      snapshotsForFollowers: this.snapshotsForFollowers,
    };
  }
}
