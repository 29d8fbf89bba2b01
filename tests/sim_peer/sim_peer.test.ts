import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runPeerSeed } from "./simulation.ts";
import {
  checkPublished,
  checkQueue,
  newEmitterHistory,
  newQueueHistory,
  recordDelivery,
} from "./workload.ts";

describe("whole-peer simulator", () => {
  it("a leader resumed after a pause past peerTimeoutMs removes no member it could not hear meanwhile (discovery seed 34106)", async () => {
    // p1 leads p2; p2 is paused 404 ms from 1,542, p1 for 2,776 ms from 1,851 (the peer timeout is
    // 3,000 ms). On its resume p1 had last heard p2 3,085 ms before and removed it (a cluster of two:
    // at once), though p2 had been up since 1,946; a stalled leader now gives every member a fresh
    // timeout
    const run = await runPeerSeed(34106, { discovery: "defaults", trace: true });
    assert.deepEqual(run.violations, []);
    assert.ok(run.trace.some((line) => /resume p1/.test(line)), "the seed still pauses p1");
    assert.deepEqual(run.trace.filter((line) => / removed /.test(line)), []);
  });

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
    // the faults of the workloads beyond the map happen, and are counted (within a few seeds: which
    // seed draws which fault depends on the runtime's scheduling of the workload)
    const kinds = ["codec-throws", "listener-throws", "publish-throws"] as const;
    const seen = new Map<string, number>(kinds.map((k) => [k, a.faults[k] + c.faults[k]]));
    for (let seed = 4244; seed < 4254 && [...seen.values()].some((n) => n === 0); seed++) {
      const run = await runPeerSeed(seed, {});
      for (const kind of kinds) seen.set(kind, seen.get(kind)! + run.faults[kind]);
    }
    for (const kind of kinds) assert.ok(seen.get(kind)! > 0, `no ${kind} fault in seeds 4242-4253`);
  });

  it("the queue check finds a lost, a doubled, an invented and a reordered item", () => {
    const h = newQueueHistory();
    const push = (item: string, pusher: string, order: number, acked = true) =>
      h.pushes.set(item, { pusher, order, acked, call: order * 10, ret: order * 10 + 1 });
    push("a1", "a", 1);
    push("a2", "a", 2);
    push("a3", "a", 3);
    push("b1", "b", 1, false); // unknown outcome: may be missing
    h.pops.push({ item: "a1", call: 100, ret: 101 });
    assert.deepEqual(checkQueue(h, ["a2", "a3"]), []);
    assert.match(checkQueue(h, ["a2"]).join(), /1 acknowledged pushes neither popped nor in the queue/);
    h.unknownPops = 1;
    assert.deepEqual(checkQueue(h, ["a2"]), [], "a pop of unknown outcome may have taken it");
    assert.match(checkQueue(h, ["a3", "a2"]).join(), /FIFO broken for pusher a/);
    assert.match(checkQueue(h, ["a2", "a3", "zz"]).join(), /'zz' is in the queue, but nobody pushed it/);
    h.pops.push({ item: "a1", call: 102, ret: 103 });
    assert.match(checkQueue(h, ["a2", "a3"]).join(), /'a1' popped twice/);
    h.pops.pop();
    h.pops.push({ item: "a3", call: 104, ret: 105 });
    assert.match(checkQueue(h, ["a2"]).join(), /FIFO broken/);
  });

  it("the emitter check finds a double delivery, a reordering and a publish that named a peer in vain", () => {
    const h = newEmitterHistory();
    recordDelivery(h, "p2~1", "p1~1", 1);
    recordDelivery(h, "p2~1", "p1~1", 3);
    checkPublished(h, "p1~1", 3, ["p2"]);
    assert.deepEqual(h.violations, []);
    recordDelivery(h, "p2~1", "p1~1", 3);
    assert.match(h.violations[0]!, /got p1~1#3 after p1~1#3 \(twice\)/);
    recordDelivery(h, "p2~1", "p1~1", 2);
    assert.match(h.violations[1]!, /out of order/);
    checkPublished(h, "p1~1", 4, ["p2"]);
    assert.match(h.violations[2]!, /resolved naming p2, whose listeners never got it/);
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

  it("runs half the seeds on durable storage, whose crashes lose unsynced writes", {
    timeout: 120_000,
  }, async () => {
    let durable = 0, lost = 0, seeds = 0;
    const kinds = new Set<string>();
    // within a few seeds: the durable seeds, a crash that lost unsynced records, each new fault kind
    for (let seed = 1; seed <= 40 && (seeds < 12 || lost === 0 || kinds.size < 2); seed++) {
      const r = await runPeerSeed(seed, {});
      seeds++;
      assert.deepEqual(r.violations, [], `seed ${seed}`);
      if (!r.durable) continue;
      durable++;
      lost += r.unsyncedLost;
      for (const kind of ["restart", "crash-all"] as const) if (r.faults[kind] > 0) kinds.add(kind);
    }
    assert.ok(durable >= seeds / 4 && durable <= (seeds * 3) / 4, `${durable} of ${seeds} seeds durable`);
    assert.ok(lost > 0, "no crash lost an unsynced write");
    assert.deepEqual([...kinds].sort(), ["crash-all", "restart"]);
    const memory = await runPeerSeed(3, { storage: "memory" });
    assert.equal(memory.durable, false);
    assert.equal(memory.faults["crash-all"] + memory.faults.restart, 0);
  });

  it("catches a disk whose sync makes nothing durable (acknowledged writes lost)", {
    timeout: 60_000,
  }, async () => {
    // four seeds that catch it within seeds 1-8 (which seeds do depends on the histories: since
    // discovery counts hello rounds, seed 3 happens to lose nothing acknowledged)
    let caught = 0;
    for (let seed = 1; seed <= 8 && caught < 4; seed++) {
      const r = await runPeerSeed(seed, { diskBug: "sync-lies" });
      if (
        r.violations.some((v) =>
          v.includes("not linearizable") || v.includes("acknowledged pushes neither popped") ||
          v.includes("a restart of all on their storage changed")
        )
      ) caught++;
    }
    assert.equal(caught, 4);
  });

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
