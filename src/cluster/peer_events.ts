/**
 * The events a peer emits and the states it goes through. The facade (`Hamok`) is the emitter; the
 * cluster peer emits on it.
 *
 * @module
 */

/** The state of a peer: `empty` before it joined (or after it left), else its Raft role. */
export type HamokState = "empty" | "follower" | "candidate" | "leader";

/** Events of a `Hamok` peer. */
export interface HamokEvents {
  /** The leader changed (`undefined`: no leader known). */
  "leader-changed": (leaderId: string | undefined, previousLeaderId: string | undefined) => void;
  /** The state changed. */
  "state-changed": (state: HamokState, previous: HamokState) => void;
  /** A peer became a member of the cluster. */
  "remote-peer-joined": (peerId: string) => void;
  /** A peer was removed from the cluster (it left, or was silent for too long). Never fired by elections. */
  "remote-peer-left": (peerId: string) => void;
  /** Log entries up to `commitIndex` were applied on this peer. */
  commit: (commitIndex: number) => void;
  /** `join()` completed. */
  joined: () => void;
  /** `leave()` completed, or this peer was removed from the cluster. */
  left: () => void;
  /**
   * A non-fatal error (a listener threw, a message could not be decoded, storage failed, ...). With
   * no `error` listener the error goes to the logger; an `error` listener that throws is logged too,
   * and never unwinds the peer.
   */
  error: (error: Error) => void;
  /** The peer closed. */
  close: () => void;
}

/**
 * Options of `join()`.
 *
 * @example
 * ```ts
 * import type { Hamok } from "@hamok/core";
 * declare const hamok: Hamok;
 * await hamok.join({ timeoutMs: 10_000 });
 * ```
 */
export interface HamokJoinOptions {
  /** Give up after this many ms with a `HamokTimeoutError`. Default: 3 x `requestTimeoutInMs`. */
  timeoutMs?: number;
  /** Abort the join. */
  signal?: AbortSignal;
}
