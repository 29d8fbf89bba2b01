/**
 * Tracks the membership a node derives from its log: the membership of the snapshot plus every
 * config entry after it, committed or not (single-server changes take effect when appended). It
 * keeps the history by index so a truncated suffix can be undone and a snapshot can record the
 * membership as of its index.
 *
 * @module
 */

import { applyMembershipChange } from "./membership.ts";
import type { Entry, Membership } from "./types.ts";

interface ConfigPoint {
  readonly index: number;
  readonly membership: Membership;
}

/**
 * The membership as of the latest config entry in the log, with history.
 *
 * @example
 * ```ts
 * import { MembershipTracker } from "./membership_tracker.ts";
 * const t = new MembershipTracker({ voters: ["a"], learners: [], removed: [] }, 0);
 * t.append({ index: 1, term: 1, type: "config", data: new Uint8Array(), change: { type: "add-learner", memberId: "b" } });
 * console.log(t.current.learners, t.lastConfigIndex); // ["b"] 1
 * t.truncateFrom(1);
 * console.log(t.current.learners); // []
 * ```
 */
export class MembershipTracker {
  private base: Membership;
  private baseIndex: number;
  private history: ConfigPoint[] = [];
  /** The membership as of the latest config entry (or the snapshot). */
  current: Membership;

  /** Starts from the membership `base` as of log index `baseIndex` (the snapshot). */
  constructor(base: Membership, baseIndex: number) {
    this.base = base;
    this.baseIndex = baseIndex;
    this.current = base;
  }

  /** Index of the latest config entry in the log (or of the snapshot, if none follows it). */
  get lastConfigIndex(): number {
    const last = this.history[this.history.length - 1];
    return last === undefined ? this.baseIndex : last.index;
  }

  /** Takes the entry into account if it is a config entry; returns true if the membership changed. */
  append(entry: Entry): boolean {
    if (entry.type !== "config" || entry.change === undefined) return false;
    const next = applyMembershipChange(this.current, entry.change);
    this.history.push({ index: entry.index, membership: next });
    if (next === this.current) return false;
    this.current = next;
    return true;
  }

  /** Forgets config entries from `index` on (a truncated log suffix); true if the membership changed. */
  truncateFrom(index: number): boolean {
    const history = this.history;
    let n = history.length;
    if ((history[n - 1]?.index ?? -Infinity) < index) return false;
    while (n > 0 && history[n - 1]!.index >= index) n--; // 0 < n <= length
    history.length = n;
    const previous = this.current;
    this.current = history[n - 1]?.membership ?? this.base;
    return previous !== this.current;
  }

  /** The membership as of log index `index` (at or after the snapshot). */
  at(index: number): Membership {
    let result = this.base;
    for (const point of this.history) {
      if (point.index > index) break;
      result = point.membership;
    }
    return result;
  }

  /** Folds the history up to `index` into the base (log compaction). */
  compact(index: number): void {
    if (index <= this.baseIndex) return;
    this.base = this.at(index);
    this.baseIndex = index;
    let drop = 0;
    while (drop < this.history.length && this.history[drop]!.index <= index) drop++; // drop < length
    if (drop > 0) this.history = this.history.slice(drop);
  }

  /** Resets to a snapshot's membership (snapshot installed from the leader). */
  reset(membership: Membership, index: number): boolean {
    const previous = this.current;
    this.base = membership;
    this.baseIndex = index;
    this.history = [];
    this.current = membership;
    return previous !== membership;
  }
}
