import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RaftTestingBug } from "../../src/raft/types.ts";
import { type BatchOptions, runBatch } from "./runner.ts";
import type { ViolationKind } from "./safety.ts";

/**
 * Each deliberate protocol bug must be caught by the simulator within a bounded number of seeds,
 * with a fault schedule that makes it observable. This is the simulator's own test: a checker
 * that never fires would pass the main suite too.
 */
interface Variant {
  readonly bug: RaftTestingBug;
  readonly opts: BatchOptions;
  /** Which checkers may legitimately report this bug. */
  readonly expected: readonly ViolationKind[];
}

// The first four predate asynchronous persistence and run with the driver that persists every
// batch before sending (as when they were written); the last needs the asynchronous one.
const VARIANTS: readonly Variant[] = [
  {
    // A follower that accepts appends without checking prevIndex/prevTerm keeps a stale entry
    // under the leader's suffix: caught when logs diverge under leaders that die young.
    bug: "skip-prev-log-check",
    opts: { profile: "figure8", steps: 10_000, liveness: false, persistence: "sync" },
    expected: ["log-matching", "invariant", "state-machine-safety", "leader-completeness", "linearizability"],
  },
  {
    // A voter that votes twice in a term lets two candidates win it: many concurrent elections.
    bug: "double-vote",
    opts: { profile: "elections", steps: 5000, liveness: false, persistence: "sync" },
    expected: ["election-safety", "log-matching", "state-machine-safety", "leader-completeness"],
  },
  {
    // Committing an entry of an earlier term by counting replicas: the Raft paper's figure 8.
    bug: "commit-old-term",
    opts: { profile: "figure8", steps: 15_000, liveness: false, persistence: "sync" },
    expected: ["leader-completeness", "state-machine-safety", "log-matching", "linearizability"],
  },
  {
    // Without check-quorum a leader that can send but not receive never steps down, and its
    // heartbeats keep the others from electing a new leader. (The core's ReadIndex always
    // confirms leadership with a quorum round and there are no lease reads, so the bug cannot
    // produce a stale read; it shows as lost liveness with a deaf leader.)
    bug: "ignore-check-quorum",
    opts: { profile: "leader-isolation", steps: 1000, liveness: true, persistence: "sync" },
    expected: ["liveness"],
  },
  {
    // With asynchronous persistence, a leader that counts its own entry when it appends it, not
    // when its write is durable, commits on one follower's acknowledgement in a three-node
    // cluster: a crash of the leader before its sync (and of that follower) loses a committed
    // entry. The durable-quorum check sees it at the moment of the commit.
    bug: "self-ack-on-append",
    opts: { steps: 3000, liveness: false, persistence: "async" },
    expected: ["durable-quorum", "leader-completeness", "state-machine-safety", "linearizability"],
  },
  {
    // A follower of a three-voter cluster commits what it and the leader hold (`leaderMatch`) and
    // answers its client before the leader knows the entry committed. A ReadIndex that is only the
    // leader's commit index then misses that acknowledged write: a stale read.
    bug: "read-ignores-follower-commit",
    opts: { steps: 3000, liveness: false, persistence: "sync" },
    expected: ["linearizability"],
  },
];

const MAX_SEEDS = 300;

describe("simulator against deliberately broken Raft variants", () => {
  for (const v of VARIANTS) {
    it(`catches "${v.bug}" within ${MAX_SEEDS} seeds`, { timeout: 120_000 }, () => {
      const opts: BatchOptions = { ...v.opts, bugs: [v.bug] };
      const summary = runBatch({ from: 1, count: MAX_SEEDS, stopOnFailure: true }, opts);
      assert.equal(summary.failures.length, 1, `"${v.bug}" went unnoticed over ${summary.seeds} seeds`);
      const f = summary.failures[0];
      assert.ok(
        v.expected.includes(f.kind as ViolationKind),
        `"${v.bug}" reported as ${f.kind} (seed ${f.seed}): ${f.message}`,
      );
    });
  }
});

describe("the targeted fault profiles against the correct core (control)", () => {
  const seen = new Set<string>();
  for (const v of VARIANTS) {
    const key = JSON.stringify(v.opts);
    if (seen.has(key)) continue;
    seen.add(key);
    it(`report nothing without a bug: ${key}`, { timeout: 120_000 }, () => {
      const summary = runBatch({ from: 1, count: 150 }, v.opts);
      assert.deepEqual(
        summary.failures.map((f) => `${f.kind}: ${f.message} (${f.replay})`),
        [],
        "a fault profile that flags the correct core would make the broken-variant tests meaningless",
      );
      assert.ok(summary.opsCompleted > 0);
    });
  }
});
