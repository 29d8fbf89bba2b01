/**
 * The shape of `hamok.status()`: one peer's view of itself and of the cluster.
 *
 * @module
 */

import type { PeerCounterValues } from "./peer_counters.ts";

/**
 * One member as a peer sees it. The replication fields are known on the leader only.
 *
 * @example
 * ```ts
 * import type { HamokMemberStatus } from "@hamok/core";
 * const member: HamokMemberStatus = { peerId: "b", memberId: "b/1a2b3c4d", role: "voter", leader: false };
 * ```
 */
export interface HamokMemberStatus {
  /** The member's peer id. */
  readonly peerId: string;
  /** The member's Raft member id (peer id plus incarnation). */
  readonly memberId: string;
  /** Voting member, or learner (receives the log, does not vote). */
  readonly role: "voter" | "learner";
  /** True for the member this peer believes leads. */
  readonly leader: boolean;
  /** Leader only: highest log index known to be replicated on the member. */
  readonly matchIndex?: number;
  /** Leader only: entries the member is behind the leader's last index. */
  readonly lag?: number;
  /** Leader only: whole ms since the leader last heard from the member (0 for the leader itself). */
  readonly lastContactMs?: number;
  /** Leader only: replication state (`probe`, `replicate` or `snapshot`). */
  readonly replication?: string;
}

/**
 * The status of one peer, as returned by `hamok.status()` and by the `client.status` request.
 *
 * @example
 * ```ts
 * import { Hamok, type HamokStatus } from "@hamok/core";
 * const hamok = new Hamok();
 * await hamok.join();
 * const status: HamokStatus = hamok.status();
 * console.log(status.role, status.term, status.members.length); // "leader" 1 1
 * hamok.close();
 * ```
 */
export interface HamokStatus {
  /** The cluster id. */
  readonly clusterId: string;
  /** This peer's id. */
  readonly peerId: string;
  /** This peer's member id. */
  readonly memberId: string;
  /**
   * The identity of the cluster this peer is a member of (made when the cluster was bootstrapped,
   * the same on every member; absent until this peer has joined). Two identities under one cluster
   * id are two clusters: see `HamokClusterConflictError`.
   */
  readonly clusterUid?: string;
  /** `empty` (not joined), `follower`, `candidate` or `leader`. */
  readonly role: "empty" | "follower" | "candidate" | "leader";
  /** The current term. */
  readonly term: number;
  /** Peer id of the leader, if one is known. */
  readonly leaderId: string | undefined;
  /** Highest log index known to be committed. */
  readonly commitIndex: number;
  /** Highest log index applied on this peer. */
  readonly appliedIndex: number;
  /** Index the latest snapshot covers (0: none). */
  readonly snapshotIndex: number;
  /** Index of the last entry in this peer's log. */
  readonly lastIndex: number;
  /** Entries in the log after the snapshot. */
  readonly logLength: number;
  /** Bytes of command data in those entries. */
  readonly logBytes: number;
  /** Proposals of this peer waiting to be applied. */
  readonly pendingProposals: number;
  /** The committed membership (on the leader with replication details). */
  readonly members: readonly HamokMemberStatus[];
  /** Counters since the peer was created. */
  readonly counters: PeerCounterValues;
  /** When the status was taken (ms since the epoch). */
  readonly time: number;
}
