import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hamok } from "../../src/hamok.ts";
import { HamokConfigError } from "../../src/errors.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

describe("maxSnapshotBytes", () => {
  it("is validated like every size option", () => {
    assert.throws(() => new Hamok({ maxSnapshotBytes: 0 }), HamokConfigError);
    assert.throws(() => new Hamok({ maxSnapshotBytes: 1.5 }), HamokConfigError);
  });

  it("a joiner refuses a leader's snapshot above it and counts the refusal; one with the default takes it", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"], { snapshotThreshold: 50 });
    try {
      const leader = await cluster.settled();
      const map = leader.createMap<string, string>({ mapId: "m" });
      await map.ready;
      const batch: [string, string][] = [];
      for (let i = 0; i < 300; i++) batch.push([`k${i}`, `value-${i}-${"x".repeat(64)}`]); // ~25 KB of state
      await map.setAll(batch);
      for (let i = 0; i < 60; i++) await map.set(`w${i}`, `${i}`); // past the threshold: a compaction
      await waitFor(() => leader.status().snapshotIndex > 0, { timeoutMs: 10_000, message: "a compaction" });

      const small = await cluster.add("d", { maxSnapshotBytes: 4096 });
      const joining = small.join({ timeoutMs: 3000 });
      joining.catch(() => {}); // judged below
      await waitFor(() => small.status().counters.snapshotReceive.oversize >= 1, {
        timeoutMs: 10_000,
        message: "the oversized snapshot refused and counted",
      });
      // it can never take that image, so it never reaches what the snapshot covers
      assert.ok(small.status().appliedIndex < leader.status().snapshotIndex);
      await cluster.crash(small);

      const full = await cluster.add("e");
      await full.join({ timeoutMs: 10_000 });
      const fullMap = full.createMap<string, string>({ mapId: "m" });
      await fullMap.ready;
      await waitFor(() => fullMap.size === 360, { timeoutMs: 10_000, message: "the whole state on e" });
      assert.equal(fullMap.get("k299"), `value-299-${"x".repeat(64)}`);
      assert.equal(full.status().counters.snapshotReceive.oversize, 0);
    } finally {
      await cluster.close();
    }
  });
});
