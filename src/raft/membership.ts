/**
 * Pure functions over {@linkcode Membership}: apply a single-server change, check whether a change
 * may be proposed, and ask who votes. Every node applies changes with the same function, so the
 * memberships derived from the same log agree.
 *
 * @module
 */

import type { Membership, MembershipChange, ProposeDropReason } from "./types.ts";

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
 * leaves the membership as it is, except that `remove` always tombstones the id. Returns the same
 * object if nothing changed.
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
        removed: [...removed, id],
      };
  }
}
