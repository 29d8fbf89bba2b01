/**
 * Raft member ids. A member id is the peer id plus an incarnation tag (`<peerId>/<tag>`): a peer
 * that restarts without its Raft storage gets a new tag, so it can never reuse the identity (and the
 * votes) of its previous life. Removed member ids are tombstoned by the Raft core.
 *
 * @module
 */

import { randomHex, REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";

/**
 * Makes a new member id for a peer.
 *
 * @example
 * ```ts
 * import { newMemberId, peerIdOfMember } from "./member_id.ts";
 * const memberId = newMemberId("orders-1"); // "orders-1/5f0c..."
 * peerIdOfMember(memberId); // "orders-1"
 * ```
 */
export function newMemberId(peerId: string, scheduler: Scheduler = REAL_SCHEDULER): string {
  const tag = scheduler === REAL_SCHEDULER ? crypto.randomUUID().slice(0, 8) : randomHex(scheduler, 8);
  return `${peerId}/${tag}`;
}

/**
 * The peer id a member id belongs to.
 *
 * @example
 * ```ts
 * import { peerIdOfMember } from "./member_id.ts";
 * peerIdOfMember("a/b/1234abcd"); // "a/b"
 * ```
 */
export function peerIdOfMember(memberId: string): string {
  const slash = memberId.lastIndexOf("/");
  return slash < 0 ? memberId : memberId.slice(0, slash);
}
