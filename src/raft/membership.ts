/**
 * Pure functions over {@linkcode Membership}: apply a single-server change, check whether a change
 * may be proposed, and ask who votes. Every node applies changes with the same function, so the
 * memberships derived from the same log agree.
 *
 * @module
 */

import type { Membership, MembershipChange, ProposeDropReason } from "./types.ts";

/**
 * Most tombstones a membership keeps: a removal beyond it forgets the oldest. Every node applies
 * the same changes in the same order, so every node forgets the same ids. Without a bound a stream
 * of joiners that go silent (each removed after the peer timeout) grew the list, and every snapshot
 * message with it, for good. A forgotten id could be added again, but member ids carry an
 * incarnation tag and a removed peer never asks to join with its old one.
 */
export const MAX_TOMBSTONES = 1024;

/**
 * Most characters the tombstones' ids take together (beyond it the oldest are forgotten too), so
 * that the membership every snapshot message carries stays a bounded part of a message.
 */
export const MAX_TOMBSTONE_CHARS = 65536;

/**
 * An upper bound of the bytes `membership` takes in a message, whatever the codec: each id at most
 * three bytes of UTF-8 per UTF-16 unit, plus a few bytes of framing.
 *
 * @example
 * ```ts
 * import { membershipWireBytes } from "./membership.ts";
 * console.log(membershipWireBytes({ voters: ["a"], learners: [], removed: [] })); // 24
 * ```
 */
export function membershipWireBytes(membership: Membership): number {
  let bytes = 16;
  for (const list of [membership.voters, membership.learners, membership.removed]) {
    for (const id of list) bytes += 5 + 3 * id.length;
  }
  return bytes;
}

/**
 * `removed` with `id` added, the oldest forgotten beyond the tombstone bounds (a new array).
 *
 * @example
 * ```ts
 * import { tombstoned } from "./membership.ts";
 * console.log(tombstoned(["a"], "b")); // ["a", "b"]
 * ```
 */
export function tombstoned(removed: readonly string[], id: string): readonly string[] {
  let chars = id.length;
  let from = removed.length;
  // keep the newest that fit both bounds (with `id` itself)
  while (from > 0 && removed.length - from < MAX_TOMBSTONES - 1) {
    const next = chars + removed[from - 1]!.length;
    if (next > MAX_TOMBSTONE_CHARS) break;
    chars = next;
    from--;
  }
  return from === 0 ? [...removed, id] : [...removed.slice(from), id];
}

/** The membership of a node that knows nothing yet (a member joining an existing cluster). */
export const EMPTY_MEMBERSHIP: Membership = Object.freeze({
  voters: Object.freeze([]) as readonly string[],
  learners: Object.freeze([]) as readonly string[],
  removed: Object.freeze([]) as readonly string[],
});

/**
 * True if `id` is a voter of `membership`.
 *
 * @example
 * ```ts
 * import { isVoter } from "./membership.ts";
 * console.log(isVoter({ voters: ["a"], learners: ["b"], removed: [] }, "b")); // false
 * ```
 */
export function isVoter(membership: Membership, id: string): boolean {
  return membership.voters.includes(id);
}

/**
 * True if `id` is a voter or a learner of `membership`.
 *
 * @example
 * ```ts
 * import { isMember } from "./membership.ts";
 * console.log(isMember({ voters: ["a"], learners: ["b"], removed: [] }, "b")); // true
 * ```
 */
export function isMember(membership: Membership, id: string): boolean {
  return membership.voters.includes(id) || membership.learners.includes(id);
}

/**
 * Why `change` may not be applied to `membership`, or undefined if it may: removed ids never come
 * back, an existing member is not added twice, only learners are promoted, only members are removed,
 * and the last voter is never removed.
 *
 * @example
 * ```ts
 * import { checkMembershipChange } from "./membership.ts";
 * const m = { voters: ["a"], learners: [], removed: ["x"] };
 * console.log(checkMembershipChange(m, { type: "add-learner", memberId: "x" })); // "removed"
 * console.log(checkMembershipChange(m, { type: "remove", memberId: "a" })); // "last-voter"
 * ```
 */
export function checkMembershipChange(
  membership: Membership,
  change: MembershipChange,
): ProposeDropReason | undefined {
  const id = change.memberId;
  if (membership.removed.includes(id)) return "removed";
  switch (change.type) {
    case "add-learner":
      return isMember(membership, id) ? "already-member" : undefined;
    case "promote":
      return membership.learners.includes(id) ? undefined : "not-learner";
    case "remove":
      if (!isMember(membership, id)) return "not-member";
      if (membership.voters.length === 1 && membership.voters[0] === id) return "last-voter";
      return undefined;
  }
}

/**
 * The membership after `change`. A change that does not fit (see {@linkcode checkMembershipChange})
 * leaves the membership as it is, except that `remove` always tombstones the id (the oldest
 * tombstones beyond {@linkcode MAX_TOMBSTONES} or {@linkcode MAX_TOMBSTONE_CHARS} are forgotten).
 * Returns the same object if nothing changed.
 *
 * @example
 * ```ts
 * import { applyMembershipChange } from "./membership.ts";
 * const m = applyMembershipChange({ voters: ["a"], learners: [], removed: [] }, { type: "add-learner", memberId: "b" });
 * console.log(m.learners); // ["b"]
 * ```
 */
export function applyMembershipChange(membership: Membership, change: MembershipChange): Membership {
  const id = change.memberId;
  const { voters, learners, removed } = membership;
  switch (change.type) {
    case "add-learner":
      if (removed.includes(id) || isMember(membership, id)) return membership;
      return { voters, learners: [...learners, id], removed };
    case "promote":
      if (!learners.includes(id)) return membership;
      return { voters: [...voters, id], learners: learners.filter((x) => x !== id), removed };
    case "remove":
      if (removed.includes(id)) return membership;
      return {
        voters: voters.includes(id) ? voters.filter((x) => x !== id) : voters,
        learners: learners.includes(id) ? learners.filter((x) => x !== id) : learners,
        removed: tombstoned(removed, id),
      };
  }
}
