/**
 * The leader's replication state for one follower: where their logs match, what to send next,
 * flow control (probe / pipelined replicate with a bounded window / snapshot), and the state of a
 * chunked snapshot transfer.
 *
 * @module
 */

import type { ProgressState, Snapshot } from "./types.ts";

/**
 * A bounded FIFO of the last indices of unacknowledged appends (a ring buffer, no allocation
 * after construction).
 */
class Inflights {
  private readonly buffer: number[];
  private start = 0;
  count = 0;

  constructor(readonly capacity: number) {
    this.buffer = new Array<number>(capacity).fill(0);
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  add(lastIndex: number): void {
    this.buffer[(this.start + this.count) % this.capacity] = lastIndex;
    this.count++;
  }

  /** Frees every append whose last index is at or below `index`. */
  freeTo(index: number): void {
    while (this.count > 0 && this.buffer[this.start]! <= index) { // count > 0: the slot is set
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  freeFirst(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}

/** A snapshot being sent in chunks (go-back-N over a window of chunks). */
export interface SnapshotTransfer {
  /** The snapshot being sent (kept even if the leader compacts further meanwhile). */
  readonly snapshot: Snapshot;
  /** Offset of the next chunk to send. */
  sent: number;
  /** Bytes the follower has acknowledged. */
  acked: number;
  /** True once the chunk with `done` went out (and no rewind happened since). */
  doneSent: boolean;
  /** `acked` as of the previous heartbeat response, to detect a stalled transfer. */
  ackedAtLastHeartbeat: number;
  /** Heartbeat rounds in a row without progress (0: it moved in the last one, or just started). */
  stalledRounds: number;
}

/**
 * The leader's view of one follower.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const pr = new Progress(11, 4);
 * pr.sentEntries(15, 5); // probe: one append at a time
 * console.log(pr.isPaused()); // true
 * pr.maybeUpdate(15);
 * pr.becomeReplicate();
 * console.log(pr.next); // 16
 * ```
 */
export class Progress {
  /** Highest index known to match the leader's log. */
  match = 0;
  /** Next index to send. */
  next: number;
  /** Flow-control state. */
  state: ProgressState = "probe";
  /** In probe state: an append is out and the next waits for its answer (or a heartbeat answer). */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** The commit index last sent to this follower (to skip needless commit notifications). */
  sentCommit = 0;
  /** The snapshot transfer, in snapshot state. */
  transfer: SnapshotTransfer | undefined = undefined;
  private readonly inflights: Inflights;

  /** Creates the progress of a follower in probe state. */
  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  /** Unacknowledged appends in flight. */
  get inflight(): number {
    return this.inflights.count;
  }

  /** True if no append may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full;
      default:
        return true;
    }
  }

  /** Falls back to probing from `match + 1`. */
  becomeProbe(): void {
    this.state = "probe";
    this.next = this.match + 1;
    this.probeSent = false;
    this.transfer = undefined;
    this.inflights.reset();
  }

  /** Starts pipelining from `match + 1`. */
  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.probeSent = false;
    this.transfer = undefined;
    this.inflights.reset();
  }

  /** Starts sending `snapshot`. */
  becomeSnapshot(snapshot: Snapshot): void {
    this.state = "snapshot";
    this.probeSent = false;
    this.inflights.reset();
    this.transfer = {
      snapshot,
      sent: 0,
      acked: 0,
      doneSent: false,
      ackedAtLastHeartbeat: -1,
      stalledRounds: 0,
    };
  }

  /** Records that an append ending at `lastIndex` with `count` entries went out. */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else {
      this.probeSent = true;
    }
  }

  /** A successful append response up to `index`; returns true if `match` moved. */
  maybeUpdate(index: number): boolean {
    if (index <= this.match) return false;
    this.probeSent = false;
    this.match = index;
    if (this.next <= index) this.next = index + 1;
    this.inflights.freeTo(index);
    return true;
  }

  /**
   * A rejected append of `rejected` (its prevIndex), with the leader's computed probe hint.
   * Returns false for a stale rejection. Falls back to probe state.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.becomeProbe();
      this.next = Math.max(this.match + 1, Math.min(rejected, hint + 1));
      return true;
    }
    if (this.state !== "probe" || this.next - 1 !== rejected) return false;
    this.next = Math.max(this.match + 1, Math.min(rejected, hint + 1));
    this.probeSent = false;
    return true;
  }

  /** A heartbeat response: resumes a paused probe and unblocks a full window after a lost answer. */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    if (this.state === "replicate" && this.inflights.full) this.inflights.freeFirst();
  }
}
