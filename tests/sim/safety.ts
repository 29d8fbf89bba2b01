/**
 * The Raft safety properties, checked incrementally while a simulation runs:
 *
 * - **Election safety**: at most one leader per term, over the whole run.
 * - **Log matching**: two logs that hold an entry with the same index and term hold the same
 *   entry and the same prefix (every persisted entry's prefix-chain value is compared with the
 *   value any other log ever had for that (index, term)).
 * - **Leader completeness**: every entry known committed is in the log of every later leader.
 * - **State-machine safety**: a committed index never holds two different entries, and the hash
 *   chain each node keeps over what it applied (snapshot restores included) agrees, index by index,
 *   across nodes and over time.
 * - **Durable quorum** (checked by the simulation, which sees every node's storage): when a leader
 *   moves its commit index, a majority of its voters hold the entry on stable storage, the leader
 *   itself counted only once its own write is durable.
 *
 * @module
 */

import type { Entry } from "../../src/raft/types.ts";
import type { StorageObserver } from "./sim_storage.ts";
import type { SimStorage } from "./sim_storage.ts";
import { entryDigest } from "./hash.ts";

/** Kinds of violations the simulator reports. */
export type ViolationKind =
  | "election-safety"
  | "log-matching"
  | "leader-completeness"
  | "state-machine-safety"
  | "invariant"
  | "durable-quorum"
  | "exception"
  | "linearizability"
  | "liveness";

/** One detected violation. */
export interface Violation {
  /** Which property. */
  readonly kind: ViolationKind;
  /** What was seen. */
  readonly message: string;
  /** Virtual time (ms) when it was detected. */
  readonly time: number;
  /** Simulation step when it was detected. */
  readonly step: number;
}

/**
 * Incremental checker of the Raft safety properties.
 *
 * @example
 * ```ts
 * const safety = new SafetyChecker(() => ({ time: now, step }));
 * safety.onLeader("n1", 3, storage);
 * if (safety.violations.length > 0) console.log(safety.violations[0].message);
 * ```
 */
export class SafetyChecker implements StorageObserver {
  /** Everything found so far (a run normally stops at the first). */
  readonly violations: Violation[] = [];
  readonly #where: () => { time: number; step: number };
  /** term -> leader id. */
  readonly #leaders = new Map<number, string>();
  /** `${index}:${term}` -> chain value of the prefix ending with that entry. */
  readonly #logChains = new Map<string, number>();
  /** Committed entries: index -> term and digest. */
  readonly #committedTerm: number[] = [];
  readonly #committedDigest: number[] = [];
  #maxCommitted = 0;
  /** index -> chain value of the applied prefix. */
  readonly #appliedChains: number[] = [];

  /** Creates a checker; `where` tells the current virtual time and step for reports. */
  constructor(where: () => { time: number; step: number }) {
    this.#where = where;
  }

  /** Highest index known committed. */
  get maxCommitted(): number {
    return this.#maxCommitted;
  }

  /** Number of leaders seen (distinct terms). */
  get leadersSeen(): number {
    return this.#leaders.size;
  }

  /** Records a violation. */
  report(kind: ViolationKind, message: string): void {
    const { time, step } = this.#where();
    this.violations.push({ kind, message, time, step });
  }

  // StorageObserver

  /** @inheritdoc */
  chainAt(index: number, term: number): number | undefined {
    if (index === 0) return 0;
    return this.#logChains.get(`${index}:${term}`);
  }

  /** @inheritdoc */
  persisted(nodeId: string, entry: Entry, chainValue: number): void {
    const key = `${entry.index}:${entry.term}`;
    const known = this.#logChains.get(key);
    if (known === undefined) this.#logChains.set(key, chainValue);
    else if (known !== chainValue) {
      this.report(
        "log-matching",
        `${nodeId} persisted entry (index ${entry.index}, term ${entry.term}) whose log prefix differs from ` +
          `another log's entry with the same index and term`,
      );
    }
  }

  /** @inheritdoc */
  invariant(nodeId: string, message: string): void {
    this.report("invariant", `${nodeId}: ${message}`);
  }

  // Election safety and leader completeness

  /** A node was observed as leader of `term` (call once per node and term). */
  onLeader(nodeId: string, term: number, storage: SimStorage): void {
    const other = this.#leaders.get(term);
    if (other === undefined) this.#leaders.set(term, nodeId);
    else if (other !== nodeId) {
      this.report("election-safety", `two leaders in term ${term}: ${other} and ${nodeId}`);
      return;
    }
    const snap = storage.snapshotIndex;
    const snapTerm = storage.snapshot?.meta.term ?? 0;
    if (snap > 0 && snap <= this.#maxCommitted) {
      const t = this.#committedTerm[snap];
      if (t !== undefined && t !== snapTerm) {
        this.report(
          "leader-completeness",
          `leader ${nodeId} (term ${term}) has a snapshot at ${snap} of term ${snapTerm}, committed term is ${t}`,
        );
        return;
      }
    }
    if (storage.lastIndex < this.#maxCommitted) {
      this.report(
        "leader-completeness",
        `leader ${nodeId} (term ${term}) log ends at ${storage.lastIndex}, entries up to ${this.#maxCommitted} are committed`,
      );
      return;
    }
    for (let i = snap + 1; i <= this.#maxCommitted; i++) {
      const t = this.#committedTerm[i];
      if (t === undefined) continue;
      const e = storage.entryAt(i)!;
      if (e.term !== t || entryDigest(e) !== this.#committedDigest[i]) {
        this.report(
          "leader-completeness",
          `leader ${nodeId} (term ${term}) lacks committed entry ${i} (term ${t}); it has term ${e.term} there`,
        );
        return;
      }
    }
  }

  // State-machine safety

  /** Entry `e` was seen committed on `nodeId` (its commit index reached it). */
  onCommitted(nodeId: string, e: Entry): void {
    const i = e.index;
    const digest = entryDigest(e);
    const t = this.#committedTerm[i];
    if (t === undefined) {
      this.#committedTerm[i] = e.term;
      this.#committedDigest[i] = digest;
      if (i > this.#maxCommitted) this.#maxCommitted = i;
    } else if (t !== e.term || this.#committedDigest[i] !== digest) {
      this.report(
        "state-machine-safety",
        `${nodeId} committed entry ${i} of term ${e.term}, but a different entry (term ${t}) was committed there`,
      );
    }
  }

  /** `nodeId` applied (or restored a snapshot) up to `index`, with the given chain value. */
  onApplied(nodeId: string, index: number, chainValue: number, how: "apply" | "restore"): void {
    const known = this.#appliedChains[index];
    if (known === undefined) this.#appliedChains[index] = chainValue;
    else if (known !== chainValue) {
      this.report(
        "state-machine-safety",
        `${nodeId} ${how === "apply" ? "applied" : "restored a snapshot"} up to ${index} with a history ` +
          `that differs from what another node (or an earlier incarnation) applied up to ${index}`,
      );
    }
  }
}
