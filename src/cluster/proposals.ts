/**
 * The commands this peer proposed and still waits for: submission to the Raft core, resubmission
 * when a leader appears or a message may have been lost, timeouts, and resolution on apply.
 *
 * @module
 */

import { HamokClosedError, HamokNoLeaderError, HamokOutcomeUnknownError } from "../errors.ts";
import type { RaftDriver } from "./raft_driver.ts";
import { REAL_SCHEDULER, type Scheduler, type TimerHandle } from "./scheduler.ts";

interface PendingProposal {
  readonly data: Uint8Array;
  readonly requestId: string;
  /** `scheduler.monotonicNow()` after which it times out. */
  readonly deadline: number;
  readonly timeoutMs: number;
  /** True once a leader (this peer or a forward target) may have taken it. */
  submitted: boolean;
  /** True while this peer, as leader, holds it in its own log (lost only with the leadership). */
  appendedHere: boolean;
  lastSubmit: number;
  /** `scheduler.monotonicNow()` when added. */
  readonly started: number;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
}

/** What proposals are handed to: the part of the Raft driver they use. */
export type ProposalSubmitter = Pick<RaftDriver, "run">;

/**
 * The pending proposals of a peer, by request id. A proposal is handed to the Raft core at once if
 * a leader is known, else when one becomes known ({@linkcode Proposals.resubmitAll}); one that was
 * only forwarded (or dropped) is resubmitted after `retryMs` by {@linkcode Proposals.retryLost}
 * (the state machine deduplicates request ids). It resolves with the result of its own command
 * when applied on this peer, or rejects on timeout: `HamokOutcomeUnknownError` if a leader may have
 * taken it, `HamokNoLeaderError` if none did.
 *
 * Timeouts share one scheduler timer, armed for the earliest deadline and left to fire when the
 * proposal it was armed for is applied first (it then re-arms for the next deadline, or stops when
 * nothing is pending): a proposal costs no timer of its own, only a clock reading.
 *
 * @example
 * ```ts ignore
 * const proposals = new Proposals(() => (leaderKnown ? driver : undefined), 500);
 * const result = proposals.add("m1:1", encodeCbor(command), 5000);
 * // in apply, for each committed entry carrying a request id:
 * proposals.applied(entry.requestId, outcome.result);
 * ```
 */
export class Proposals {
  readonly #submitter: () => ProposalSubmitter | undefined;
  readonly #retryMs: number;
  readonly #pending = new Map<string, PendingProposal>();
  readonly #observe: ((elapsedMs: number) => void) | undefined;
  readonly #scheduler: Scheduler;
  /** The one timeout timer, armed for `#timerAt` (undefined: not armed). */
  #timer: TimerHandle | undefined;
  #timerAt = 0;
  /** The deadline of the proposal added last, and whether deadlines grew with every add since the
   * table was last empty (then the pending proposals are in deadline order and a sweep stops early). */
  #lastDeadline = -Infinity;
  #ordered = true;

  /**
   * Creates the table. `submitter` returns the driver to propose through while a leader is known
   * (else `undefined`: wait); `retryMs` is how long a proposal not in this peer's own log waits
   * before it is submitted again. Timers and clocks come from `scheduler`.
   */
  constructor(
    submitter: () => ProposalSubmitter | undefined,
    retryMs: number,
    observeLatency?: (elapsedMs: number) => void,
    scheduler: Scheduler = REAL_SCHEDULER,
  ) {
    this.#scheduler = scheduler;
    this.#submitter = submitter;
    this.#retryMs = retryMs;
    this.#observe = observeLatency;
  }

  /** How many proposals are pending. */
  get size(): number {
    return this.#pending.size;
  }

  /** True if `requestId` is pending. */
  has(requestId: string): boolean {
    return this.#pending.has(requestId);
  }

  /**
   * Adds a proposal of the encoded command `data` under `requestId` (which must not be pending),
   * submits it if it can, and resolves with its result once applied here.
   */
  add(requestId: string, data: Uint8Array, timeoutMs: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const started = this.#scheduler.monotonicNow();
      const deadline = started + timeoutMs;
      const pending: PendingProposal = {
        data,
        requestId,
        deadline,
        timeoutMs,
        submitted: false,
        appendedHere: false,
        lastSubmit: 0,
        started,
        resolve,
        reject,
      };
      if (this.#pending.size === 0) {
        this.#ordered = true;
        this.#lastDeadline = -Infinity;
      }
      if (deadline < this.#lastDeadline) this.#ordered = false;
      this.#lastDeadline = deadline;
      this.#pending.set(requestId, pending);
      if (this.#timer === undefined || deadline < this.#timerAt) this.#arm(deadline, started);
      this.#submit(pending);
    });
  }

  /** The command of `requestId` was applied here with `result`: resolves its proposal, if pending. */
  applied(requestId: string, result: unknown): void {
    if (this.#pending.size === 0) return; // most entries, on most peers: no lookup (no hash of the id)
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#pending.delete(requestId);
    if (this.#observe !== undefined) this.#observe(this.#scheduler.monotonicNow() - pending.started);
    pending.resolve(result);
  }

  /** The entry of `requestId` was applied without its command (see `ApplyOutcome.reused`): rejects it. */
  refused(requestId: string, error: Error): void {
    if (this.#pending.size === 0) return;
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#pending.delete(requestId);
    pending.reject(error);
  }

  /** Submits every pending proposal again (a leader became known). */
  resubmitAll(): void {
    for (const pending of this.#pending.values()) this.#submit(pending);
  }

  /**
   * Resubmits the proposals a lost message may have dropped: those not in this peer's own log that
   * were last submitted `retryMs` or more before `now`.
   */
  retryLost(now: number): void {
    const retryMs = this.#retryMs;
    for (const pending of this.#pending.values()) {
      // entries in this leader's own log need no retry; forwards and drops may have been lost
      if (!pending.appendedHere && now - pending.lastSubmit >= retryMs) this.#submit(pending);
    }
  }

  /** Rejects every pending proposal with `HamokClosedError` (the peer closed). */
  close(): void {
    this.failAll((requestId) =>
      new HamokClosedError(
        `the peer closed while a proposal was pending (request ${requestId}); it may or may not have been applied`,
        { requestId },
      )
    );
  }

  /** Rejects every pending proposal with the error `errorOf` makes for its request id. */
  failAll(errorOf: (requestId: string) => Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const proposal of pending) proposal.reject(errorOf(proposal.requestId));
  }

  /** (Re-)arms the one timer for `deadline`; `now` is the current monotonic time. */
  #arm(deadline: number, now: number): void {
    if (this.#timer !== undefined) this.#scheduler.clearTimeout(this.#timer);
    this.#timerAt = deadline;
    // A timer may fire a little before the monotonic clock reaches the deadline: the sweep re-arms.
    this.#timer = this.#scheduler.setTimeout(this.#sweep, Math.max(1, Math.ceil(deadline - now)));
  }

  /** The timer fired: times out every proposal past its deadline and re-arms for the next one. */
  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = this.#scheduler.monotonicNow();
    let expired: PendingProposal[] | undefined;
    let next = Infinity;
    for (const pending of this.#pending.values()) {
      if (pending.deadline <= now) (expired ??= []).push(pending);
      else {
        if (pending.deadline < next) next = pending.deadline;
        if (this.#ordered) break;
      }
    }
    if (expired !== undefined) { for (const pending of expired) this.#timedOut(pending); }
    if (next !== Infinity && this.#timer === undefined) this.#arm(next, now);
  };

  #submit(pending: PendingProposal): void {
    const driver = this.#submitter();
    if (driver === undefined) return; // resubmitted when a leader becomes known
    pending.lastSubmit = this.#scheduler.monotonicNow();
    const result = driver.run((node) => node.propose(pending.data, pending.requestId));
    if (result.status !== "dropped") pending.submitted = true;
    pending.appendedHere = result.status === "appended";
  }

  #timedOut(pending: PendingProposal): void {
    const requestId = pending.requestId;
    if (this.#pending.get(requestId) !== pending) return;
    this.#pending.delete(requestId);
    if (pending.submitted) {
      pending.reject(
        new HamokOutcomeUnknownError(
          `request ${requestId} was not applied within ${pending.timeoutMs} ms; it may still be applied`,
          { requestId },
        ),
      );
    } else {
      pending.reject(
        new HamokNoLeaderError(`no leader accepted request ${requestId} within ${pending.timeoutMs} ms`),
      );
    }
  }
}
