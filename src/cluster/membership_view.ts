/**
 * The committed membership as one peer sees it: member id -> role, the member ids whose removal it
 * applied (tombstones), and the rate limit of the notices it sends to removed members that still
 * talk. It changes only when a config entry is applied or a snapshot restored, and tells its host
 * which peers came and went.
 *
 * @module
 */

import { peerIdOfMember } from "./member_id.ts";
import { tombstoned } from "../raft/membership.ts";
import type { Membership, MembershipChange } from "../raft/types.ts";

/** What the membership view tells (and asks of) its peer. */
export interface MembershipViewHost {
  /** This peer's id. */
  readonly localPeerId: string;
  /** This peer's current member id. */
  localMemberId(): string;
  /** A peer became a member (`index`: of the config entry; `undefined`: from a snapshot). */
  peerJoined(peerId: string, index: number | undefined): void;
  /** A learner was added (the leader starts its silence clock). */
  learnerAdded(memberId: string): void;
  /** A member was removed (its silence clock can go). */
  memberForgotten(memberId: string): void;
  /** A remote peer's last member was removed by a config entry at `index`, before the listeners run. */
  peerRemoved(peerId: string, index: number): void;
  /** A remote peer is no longer a member (`index`: of the config entry; `undefined`: from a snapshot). */
  peerLeft(peerId: string, index: number | undefined): void;
  /** This peer's own member was removed by a config entry. */
  selfRemoved(): void;
}

/** Most removed member ids whose last notice time is kept. */
const MAX_REMOVAL_NOTICES = 256;

/** Least time, in ms, between two notices to one removed member. */
const REMOVAL_NOTICE_MS = 1000;

/**
 * The committed membership of one peer.
 *
 * @example
 * ```ts ignore
 * const view = new MembershipView(host);
 * view.applyChange({ type: "add-learner", memberId: "b/1" }, 7);
 * view.isRemoteMember("b"); // true
 * ```
 */
export class MembershipView {
  /** Committed membership: member id -> role (read directly by the peer's hot paths). */
  readonly members: Map<string, "voter" | "learner"> = new Map();
  /** Member ids whose removal this peer has applied (committed tombstones). */
  readonly removed: Set<string> = new Set();
  /** The same ids, oldest first (bounded as the core bounds its tombstones). */
  #tombstones: readonly string[] = [];
  readonly #host: MembershipViewHost;
  /** Removed member id -> when this peer last told it so (bounded, rate-limits the notices). */
  readonly #notices = new Map<string, number>();
  readonly #removedListeners = new Set<(peerId: string) => void>();

  /** Creates an empty view. */
  constructor(host: MembershipViewHost) {
    this.#host = host;
  }

  /** Whether `peerId` has a member. */
  hasPeer(peerId: string): boolean {
    for (const memberId of this.members.keys()) if (peerIdOfMember(memberId) === peerId) return true;
    return false;
  }

  /** Ids of the other members' peers. */
  remotePeerIds(): Set<string> {
    const peers = new Set<string>();
    const local = this.#host.localPeerId;
    for (const memberId of this.members.keys()) {
      const peerId = peerIdOfMember(memberId);
      if (peerId !== local) peers.add(peerId);
    }
    return peers;
  }

  /** Calls `listener` when a peer stops being a member; returns a function that removes it. */
  onPeerRemoved(listener: (peerId: string) => void): () => void {
    this.#removedListeners.add(listener);
    return () => this.#removedListeners.delete(listener);
  }

  /** True (and noted) if a removal notice to `memberId` is due at `now`. */
  noticeDue(memberId: string, now: number): boolean {
    const last = this.#notices.get(memberId);
    if (last !== undefined && now - last < REMOVAL_NOTICE_MS) return false;
    if (this.#notices.size >= MAX_REMOVAL_NOTICES) this.#notices.clear();
    this.#notices.set(memberId, now);
    return true;
  }

  /** Applies a committed membership change (a config entry at `index`). */
  applyChange(change: MembershipChange, index: number): void {
    const memberId = change.memberId;
    const peerId = peerIdOfMember(memberId);
    const host = this.#host;
    if (change.type === "add-learner") {
      const isNewPeer = !this.hasPeer(peerId);
      this.members.set(memberId, "learner");
      if (isNewPeer && peerId !== host.localPeerId) host.peerJoined(peerId, index);
      host.learnerAdded(memberId);
    } else if (change.type === "promote") {
      if (this.members.has(memberId)) this.members.set(memberId, "voter");
    } else if (change.type === "remove") {
      this.#tombstone(memberId);
      if (!this.members.delete(memberId)) return;
      host.memberForgotten(memberId);
      if (memberId === host.localMemberId()) {
        host.selfRemoved();
        return;
      }
      if (!this.hasPeer(peerId)) {
        host.peerRemoved(peerId, index);
        for (const listener of this.#removedListeners) listener(peerId);
        if (peerId !== host.localPeerId) host.peerLeft(peerId, index);
      }
    }
  }

  /** Replaces the view with a snapshot's membership; with `emitEvents`, reports who came and went. */
  set(membership: Membership, emitEvents: boolean): void {
    const before = new Set([...this.members.keys()].map(peerIdOfMember));
    this.members.clear();
    // the snapshot's tombstones are the committed ones, bounded by the core
    this.removed.clear();
    this.#tombstones = [...membership.removed];
    for (const removed of membership.removed) this.removed.add(removed);
    for (const voter of membership.voters) this.members.set(voter, "voter");
    for (const learner of membership.learners) this.members.set(learner, "learner");
    if (!emitEvents) return;
    const local = this.#host.localPeerId;
    const after = new Set([...this.members.keys()].map(peerIdOfMember));
    for (const peerId of after) {
      if (!before.has(peerId) && peerId !== local) this.#host.peerJoined(peerId, undefined);
    }
    for (const peerId of before) {
      if (!after.has(peerId) && peerId !== local) {
        for (const listener of this.#removedListeners) listener(peerId);
        this.#host.peerLeft(peerId, undefined);
      }
    }
  }

  /** Notes a removed member id, forgetting the oldest beyond the bounds as the Raft core does. */
  #tombstone(memberId: string): void {
    const removed = this.removed;
    if (removed.has(memberId)) return;
    const before = this.#tombstones;
    const after = tombstoned(before, memberId);
    const forgotten = before.length + 1 - after.length;
    for (let i = 0; i < forgotten; i++) removed.delete(before[i]!);
    this.#tombstones = after;
    removed.add(memberId);
  }

  /** Forgets everything (the peer left or was removed). */
  clear(): void {
    this.members.clear();
    this.removed.clear();
    this.#tombstones = [];
    this.#notices.clear();
  }
}
