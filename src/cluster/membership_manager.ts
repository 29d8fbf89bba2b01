/**
 * The leader's side of membership: it serves join and leave requests, makes one membership change
 * at a time through the log, and removes members that stay silent for too long.
 *
 * @module
 */

import { decodeCbor } from "../codec/cbor.ts";
import {
  HamokConfigError,
  HamokDuplicatePeerError,
  HamokError,
  HamokNotLeaderError,
  HamokRemovedError,
  HamokTimeoutError,
} from "../errors.ts";

/** Join and leave requests waiting on the leader beyond which new ones are refused. */
const MAX_QUEUED_CHANGES = 32;
/**
 * Members (voters and learners) beyond which joins are refused: every member costs the leader a
 * progress, and made-up joiners (without a cluster key anyone on the server can ask) would
 * otherwise grow the membership, and every message and snapshot that carries it, without bound.
 */
export const MAX_MEMBERS = 1024;
/**
 * Most characters the members' ids take together (1024 members of 64), so that the membership
 * every snapshot message carries stays a bounded part of a message whatever the joiners call
 * themselves; joins beyond it are refused as beyond {@linkcode MAX_MEMBERS} are.
 */
export const MAX_MEMBER_CHARS = 65536;
/** The longest member id a join may name (a peer id of at most 253 characters and a tag). */
const MAX_MEMBER_ID = 320;
import type { Membership, MembershipChange } from "../raft/types.ts";
import { withTimeout } from "./async.ts";
import { peerIdOfMember } from "./member_id.ts";
import { REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";
import type { RaftDriver } from "./raft_driver.ts";

/** Request operation of a newcomer asking the leader to add it (payload: its CBOR member id). */
export const JOIN_OP = "join";
/** Request operation of a member asking the leader to remove it (payload: its CBOR member id). */
export const LEAVE_OP = "leave";

/** What the membership manager needs of its peer. */
export interface MembershipHost {
  /** True while this peer is the leader. */
  isLeader(): boolean;
  /** This peer's current member id. */
  localMemberId(): string;
  /** The Raft core's membership (as of the latest config entry), `undefined` when not running. */
  membership(): Membership | undefined;
  /** The running driver; throws `HamokClosedError` / `HamokNoLeaderError` when there is none. */
  requireDriver(): Pick<RaftDriver, "run" | "waitApplied" | "appliedIndex">;
}

/** Settings of a {@linkcode MembershipManager} (a subset of the peer's resolved configuration). */
export interface MembershipManagerOptions {
  /** This peer's id (for log lines). */
  readonly peerId: string;
  /** How long one membership change may take, in ms. */
  readonly requestTimeoutMs: number;
  /** The Raft tick, in ms (how long to wait before retrying a change the core refused for now). */
  readonly tickMs: number;
  /** A member the leader has not heard from for this long, in ms, is removed. */
  readonly peerTimeoutMs: number;
  /**
   * A member heard within this many ms is alive: a newcomer with its peer id is refused instead of
   * replacing it. Default 1000 (the peer passes two election timeouts).
   */
  readonly aliveMs?: number;
  /**
   * A voter heard within this many ms counts as active when the leader decides whether removing a
   * silent member leaves a configuration with an active majority. Default 1000 (the peer passes two
   * election timeouts; followers answer every heartbeat).
   */
  readonly activeMs?: number;
  /** Where diagnostics go. */
  readonly logger: {
    debug(message: string, ...details: unknown[]): void;
    info(message: string, ...details: unknown[]): void;
  };
  /** Timers and clock. Default `REAL_SCHEDULER`. */
  readonly scheduler?: Scheduler;
}

/**
 * Membership changes on the leader, serialized: at most one runs at a time, and each waits until it
 * is applied on this peer. Join requests add the newcomer as a learner (replacing an older
 * incarnation of the same peer; the core promotes it once caught up), leave requests remove the
 * member, and {@linkcode MembershipManager.removeSilent} removes members not heard from within
 * `peerTimeoutMs`.
 *
 * @example
 * ```ts ignore
 * const manager = new MembershipManager(config, host);
 * rpc.handle(JOIN_OP, (payload) => manager.onJoinRequest(payload));
 * rpc.handle(LEAVE_OP, (payload) => manager.onLeaveRequest(payload));
 * // on the leader, for every Raft message received: manager.heard(message.from, scheduler.monotonicNow());
 * setInterval(() => manager.removeSilent(scheduler.monotonicNow()), 500);
 * ```
 */
export class MembershipManager {
  readonly #options: MembershipManagerOptions;
  readonly #host: MembershipHost;
  /** Leader only: when each member was last heard from. */
  readonly #lastHeard = new Map<string, number>();
  /** Members whose removal for silence is under way. */
  readonly #removing = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();
  #queued = 0;
  readonly #aliveMs: number;
  readonly #scheduler: Scheduler;

  /** Creates the manager of a peer. */
  constructor(options: MembershipManagerOptions, host: MembershipHost) {
    this.#options = options;
    this.#scheduler = options.scheduler ?? REAL_SCHEDULER;
    this.#host = host;
    this.#aliveMs = options.aliveMs ?? 1000;
  }

  /**
   * Serves a join request: adds the member id in `payload` as a learner. The request must come from
   * that member's peer (`fromPeerId`). An older incarnation of the same peer is replaced, unless it
   * is alive (heard within two election timeouts): then two processes share one peer id, and the
   * newcomer is refused with `HamokDuplicatePeerError` while the running member stays.
   */
  async onJoinRequest(payload: Uint8Array, fromPeerId?: string): Promise<Uint8Array | undefined> {
    const memberId = decodeCbor(payload);
    if (typeof memberId !== "string" || memberId.length === 0 || memberId.length > MAX_MEMBER_ID) {
      throw new HamokConfigError(`a join request must carry a member id of 1-${MAX_MEMBER_ID} characters`);
    }
    const peerId = peerIdOfMember(memberId);
    if (fromPeerId !== undefined && peerId !== fromPeerId) {
      throw new HamokConfigError(`peer ${fromPeerId} cannot ask to add member ${memberId}`);
    }
    if (!this.#host.isLeader()) throw new HamokNotLeaderError(`${this.#options.peerId} is not the leader`);
    if (this.#queued >= MAX_QUEUED_CHANGES) {
      throw new HamokError("too many membership changes are waiting; try again later", "HAMOK_RATE_LIMITED");
    }
    await this.#enqueue(async () => {
      let membership = this.#host.membership()!;
      const size = membership.voters.length + membership.learners.length;
      // a member that replaces another of its peer (a restart) or is in already takes no new place
      const replaces = (m: string) => m === memberId || peerIdOfMember(m) === peerId;
      if (!membership.voters.some(replaces) && !membership.learners.some(replaces)) {
        let chars = memberId.length;
        for (const m of membership.voters) chars += m.length;
        for (const m of membership.learners) chars += m.length;
        if (size >= MAX_MEMBERS || chars > MAX_MEMBER_CHARS) {
          throw new HamokError(
            size >= MAX_MEMBERS
              ? `the cluster has ${size} members, the most it takes; refusing ${memberId}`
              : `the members' ids take ${
                chars - memberId.length
              } characters, the most the cluster takes is ${MAX_MEMBER_CHARS}; refusing ${memberId}`,
            "HAMOK_RATE_LIMITED",
          );
        }
      }
      if (membership.voters.includes(memberId) || membership.learners.includes(memberId)) {
        // Already in the configuration, but maybe only appended (a repeated request while the first
        // one's change is in flight): answer once it is applied, or add it again if it was lost.
        const driver = this.#host.requireDriver();
        const last = driver.run((node) => node.lastIndex);
        await withTimeout(
          driver.waitApplied(last),
          this.#options.requestTimeoutMs,
          () => {},
          this.#scheduler,
        );
        if (!this.#host.isLeader()) {
          throw new HamokNotLeaderError(`${this.#options.peerId} lost the leadership`);
        }
        membership = this.#host.membership()!;
        if (membership.voters.includes(memberId) || membership.learners.includes(memberId)) return;
      }
      const now = this.#scheduler.monotonicNow();
      const self = this.#host.localMemberId();
      for (const old of [...membership.voters, ...membership.learners]) {
        if (old === memberId || peerIdOfMember(old) !== peerId) continue;
        const heard = this.#lastHeard.get(old);
        if (old === self || (heard !== undefined && now - heard <= this.#aliveMs)) {
          throw new HamokDuplicatePeerError(
            `peer id '${peerId}' belongs to a live member (${old}); refusing ${memberId}`,
            { peerId },
          );
        }
      }
      for (const old of [...membership.voters, ...membership.learners]) {
        if (old !== memberId && peerIdOfMember(old) === peerId) {
          await this.#change({ type: "remove", memberId: old });
        }
      }
      await this.#change({ type: "add-learner", memberId });
      this.#lastHeard.set(memberId, this.#scheduler.monotonicNow());
    });
    return undefined;
  }

  /**
   * Serves a leave request: removes the member id in `payload`. Only the member leaving may ask
   * (`fromPeerId` must be its peer); anyone else is refused.
   */
  async onLeaveRequest(payload: Uint8Array, fromPeerId?: string): Promise<Uint8Array | undefined> {
    const memberId = decodeCbor(payload);
    if (typeof memberId !== "string") throw new HamokConfigError("a leave request must carry a member id");
    if (fromPeerId !== undefined && peerIdOfMember(memberId) !== fromPeerId) {
      throw new HamokConfigError(`peer ${fromPeerId} cannot ask to remove member ${memberId}`);
    }
    if (!this.#host.isLeader()) throw new HamokNotLeaderError(`${this.#options.peerId} is not the leader`);
    await this.#enqueue(async () => {
      const membership = this.#host.membership()!;
      if (!membership.voters.includes(memberId) && !membership.learners.includes(memberId)) return;
      await this.#change({ type: "remove", memberId });
    });
    return undefined;
  }

  /** Removes `memberId` (after the changes queued before), resolving once applied here. */
  remove(memberId: string): Promise<void> {
    return this.#enqueue(() => this.#change({ type: "remove", memberId }));
  }

  /** The leader heard from `memberId` at `now`. */
  heard(memberId: string, now: number): void {
    this.#lastHeard.set(memberId, now);
  }

  /** Leader only: when `memberId` was last heard from (`Scheduler.monotonicNow` ms), if known. */
  lastHeard(memberId: string): number | undefined {
    return this.#lastHeard.get(memberId);
  }

  /** `memberId` left the membership: forget about it. */
  forget(memberId: string): void {
    this.#lastHeard.delete(memberId);
    this.#removing.delete(memberId);
  }

  /** On the leader: starts removing every member silent for longer than `peerTimeoutMs` at `now`. */
  removeSilent(now: number): void {
    if (!this.#host.isLeader()) return;
    const membership = this.#host.membership();
    if (membership === undefined) return;
    const self = this.#host.localMemberId();
    for (const memberId of [...membership.voters, ...membership.learners]) {
      if (memberId === self || this.#removing.has(memberId)) continue;
      const last = this.#lastHeard.get(memberId);
      if (last === undefined) {
        this.#lastHeard.set(memberId, now);
        continue;
      }
      if (now - last <= this.#options.peerTimeoutMs) continue;
      if (
        membership.voters.includes(memberId) && !this.#liveQuorumWithout(memberId, membership.voters, now)
      ) {
        // The voters heard lately are no majority of the configuration without it: the cluster is
        // degraded (or this leader is the one cut off), and the appended change would leave the
        // survivors a configuration they cannot elect in once another voter is gone for good.
        continue;
      }
      this.#removing.add(memberId);
      const { logger, peerId } = this.#options;
      logger.info(`hamok ${peerId}: removing ${memberId}, silent for ${now - last} ms`);
      this.remove(memberId).catch((error) => {
        this.#removing.delete(memberId);
        logger.debug(`hamok ${peerId}: removing ${memberId} failed`, error);
      });
    }
  }

  /**
   * True if, in the configuration without `silent`, the voters heard within `activeMs` (this leader
   * too) are a majority: the change can commit and leaves a configuration that can elect.
   */
  #liveQuorumWithout(silent: string, voters: readonly string[], now: number): boolean {
    const self = this.#host.localMemberId();
    let live = 0;
    let remaining = 0;
    for (const voter of voters) {
      if (voter === silent) continue;
      remaining++;
      const heard = voter === self ? now : this.#lastHeard.get(voter);
      if (heard !== undefined && now - heard <= (this.#options.activeMs ?? 1000)) live++;
    }
    return live > remaining / 2;
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    this.#queued++;
    const run = this.#queue.catch(() => {}).then(task).finally(() => this.#queued--);
    this.#queue = run;
    return run;
  }

  /** Proposes one membership change on the leader and waits until it is applied here. */
  async #change(change: MembershipChange): Promise<void> {
    const { peerId, requestTimeoutMs, tickMs } = this.#options;
    const deadline = this.#scheduler.monotonicNow() + requestTimeoutMs;
    for (;;) {
      const driver = this.#host.requireDriver();
      if (!this.#host.isLeader()) throw new HamokNotLeaderError(`${peerId} lost the leadership`);
      const result = driver.run((node) => node.proposeMembership(change));
      if (result.status === "appended") {
        await withTimeout(
          driver.waitApplied(result.index),
          deadline - this.#scheduler.monotonicNow(),
          () => {},
          this.#scheduler,
        );
        return;
      }
      if (result.status === "forwarded") {
        throw new HamokNotLeaderError(`${peerId} is not the leader`);
      }
      switch (result.reason) {
        case "already-member":
        case "not-member":
        case "not-learner":
          return; // already in the wanted state
        case "removed":
          throw new HamokRemovedError(
            `member ${change.memberId} was removed before and cannot be added again`,
          );
        case "last-voter":
          throw new HamokConfigError(`removing ${change.memberId} would leave the cluster without voters`);
        case "no-leader":
        case "not-leader":
          throw new HamokNotLeaderError(`${peerId} is not the leader`);
        default:
          break; // config-pending, not-ready, transferring: retry shortly
      }
      if (this.#scheduler.monotonicNow() >= deadline) {
        throw new HamokTimeoutError(`membership change ${change.type} ${change.memberId} timed out`, {
          timeoutMs: requestTimeoutMs,
        });
      }
      // another change is pending: wait for the next apply and retry
      await withTimeout(
        driver.waitApplied(driver.appliedIndex + 1),
        Math.max(1, Math.min(deadline - this.#scheduler.monotonicNow(), 4 * tickMs)),
        () => {},
        this.#scheduler,
      ).catch(() => {});
    }
  }
}
