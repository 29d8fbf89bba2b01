import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runPeerSeed } from "./simulation.ts";

describe("whole-peer simulator", () => {
  it("replays a seed: same seed, same history", { timeout: 60_000 }, async () => {
    const a = await runPeerSeed(4242, {});
    const b = await runPeerSeed(4242, {});
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.faults, b.faults);
    assert.equal(a.steps, b.steps);
    assert.equal(a.opsCompleted, b.opsCompleted);
    assert.ok(a.opsCompleted > 100, `too few operations: ${a.opsCompleted}`);
    const c = await runPeerSeed(4243, {});
    assert.notEqual(c.traceHash, a.traceHash);
  });

  it("regression seed 1: a peer restarted from storage after its member was removed fails its join", {
    timeout: 60_000,
  }, async () => {
    // It used to campaign forever at its old term (the removal notice was ignored while joining).
    const r = await runPeerSeed(1, { trace: true });
    assert.ok(
      r.trace.some((line) => line.includes("removed while it was away")),
      "the scenario did not occur",
    );
    assert.deepEqual(r.violations, []);
  });

  it(
    "catches the bug 'bootstrap whenever a join attempt fails' (a second cluster)",
    { timeout: 120_000 },
    async () => {
      let caught = 0;
      for (let seed = 1; seed <= 30; seed++) {
        const r = await runPeerSeed(seed, { bugs: ["bootstrap-on-failed-join"] });
        if (r.violations.some((v) => v.includes("bootstraps in one cluster"))) caught++;
      }
      // without the bug, at most one seed of 1-100 shows a second bootstrap (an open finding)
      assert.ok(caught >= 5, `the split brain was reported in only ${caught} of 30 seeds`);
    },
  );

  it("catches the bug 'resolve a write before it is applied'", { timeout: 60_000 }, async () => {
    let caught = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const r = await runPeerSeed(seed, { bugs: ["resolve-before-apply"] });
      if (r.violations.some((v) => v.includes("own write not visible") || v.includes("not linearizable"))) {
        caught++;
      }
    }
    assert.equal(caught, 5);
  });
});
