/**
 * The one error the pure Raft core throws: a programming error (an invalid configuration, a call
 * that breaks the documented contract, or a broken internal invariant). Protocol outcomes are
 * reported as values, never thrown.
 *
 * @module
 */

/**
 * A misuse of the Raft core or a broken invariant. Never thrown for network or protocol events.
 *
 * @example
 * ```ts
 * import { RaftError } from "./raft_error.ts";
 * try {
 *   throw new RaftError("compact(12): index is beyond the applied index 10");
 * } catch (err) {
 *   console.log(err instanceof RaftError); // true
 * }
 * ```
 */
export class RaftError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "RaftError";
  }
}
