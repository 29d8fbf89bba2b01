/**
 * Majority arithmetic over the voters of a membership.
 *
 * @module
 */

/**
 * The number of votes that form a majority of `voters` voters.
 *
 * @example
 * ```ts
 * import { majority } from "./quorum.ts";
 * console.log(majority(1), majority(3), majority(4)); // 1 2 3
 * ```
 */
export function majority(voters: number): number {
  return (voters >> 1) + 1;
}

/**
 * The highest index that a majority of `voters` has reached, given each voter's index; 0 if there
 * are no voters.
 *
 * @example
 * ```ts
 * import { quorumIndex } from "./quorum.ts";
 * const match = new Map([["a", 9], ["b", 7], ["c", 3]]);
 * console.log(quorumIndex(["a", "b", "c"], (id) => match.get(id) ?? 0)); // 7
 * ```
 */
export function quorumIndex(voters: readonly string[], indexOf: (id: string) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  if (n === 1) return indexOf(voters[0]!);
  const indices = new Array<number>(n);
  for (let i = 0; i < n; i++) indices[i] = indexOf(voters[i]!); // i < n
  indices.sort((a, b) => b - a);
  return indices[majority(n) - 1]!; // 1 <= majority(n) <= n
}
