import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { simSeedRange } from "../_helpers/sim_seeds.ts";
import { type BatchSummary, formatSummary, runBatch, runSeed } from "./runner.ts";
import { FAULT_KINDS, type FaultKind } from "./simulation.ts";

/** Steps per seed: sized so that the whole file stays well within its CI budget. */
const STEPS = 10_000;
/** Counted only in runs with `imageless` compaction. */
const IMAGELESS_KINDS: readonly FaultKind[] = ["compaction-without-image", "image-given"];

function failureReport(summary: BatchSummary): string {
  return summary.failures.map((f) => `seed ${f.seed}: ${f.kind}: ${f.message}\n  replay: ${f.replay}`).join(
    "\n",
  );
}

describe("Raft simulator", () => {
  // Bun's default per-test timeout is 5 s; this test takes ~10 s on Deno on a 2-core machine.
  it("finds no safety, linearizability or liveness violation over many seeds", { timeout: 300_000 }, () => {
    const { base, count } = simSeedRange(1000);
    const summary = runBatch({ from: base, count }, { steps: STEPS });
    assert.equal(
      summary.failures.length,
      0,
      `violations found:\n${failureReport(summary)}\n${formatSummary(summary)}`,
    );
    assert.equal(summary.seeds, count);
    if (count >= 500) {
      // The run must really have exercised what it claims to.
      assert.ok((summary.clusterSizes["3"] ?? 0) > count / 4, "3-node clusters");
      assert.ok((summary.clusterSizes["5"] ?? 0) > count / 4, "5-node clusters");
      for (const kind of FAULT_KINDS) {
        if (IMAGELESS_KINDS.includes(kind)) continue; // the imageless run below
        assert.ok(summary.faults[kind] > 0, `no ${kind} fault was injected`);
      }
      assert.ok(summary.opsCompleted > count * 10, `too few operations completed: ${summary.opsCompleted}`);
      assert.equal(summary.linearizabilityUnknown, 0, "some histories were too large to decide");
    }
  });

  it(
    "compacting without images (given when a transfer asks) keeps every property",
    { timeout: 120_000 },
    () => {
      const { base, count } = simSeedRange(250, 200_001);
      const summary = runBatch({ from: base, count }, { steps: STEPS, imageless: true });
      assert.equal(
        summary.failures.length,
        0,
        `violations found:\n${failureReport(summary)}\n${formatSummary(summary)}`,
      );
      if (count >= 100) {
        for (const kind of IMAGELESS_KINDS) assert.ok(summary.faults[kind] > 0, `no ${kind}`);
        assert.ok(summary.faults["snapshot-install"] > 0, "no snapshot installed");
      }
    },
  );

  it("replays a seed bit for bit", { timeout: 60_000 }, () => {
    const a = runSeed(4242, { steps: STEPS });
    const b = runSeed(4242, { steps: STEPS });
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.faults, b.faults);
    assert.equal(a.steps, b.steps);
    assert.equal(a.opsChecked, b.opsChecked);
    const c = runSeed(4243, { steps: STEPS });
    assert.notEqual(c.traceHash, a.traceHash);
  });

  it("heals every fault and then elects a leader and completes a new operation (liveness)", {
    timeout: 60_000,
  }, () => {
    for (const nodes of [3, 5]) {
      for (let seed = 900; seed < 910; seed++) {
        const r = runSeed(seed, { nodes, steps: 2500, liveness: true, livenessBoundMs: 8000 });
        assert.deepEqual(r.violations, [], `seed ${seed}`);
        assert.equal(r.livenessOk, true, `seed ${seed} (${nodes} nodes) made no progress after healing`);
      }
    }
  });
});
