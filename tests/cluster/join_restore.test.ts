import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

const ENTRIES = 120_000;

describe("a joiner restoring a large state", () => {
  it("goes on answering its leader, holds back later entries, and never shows a part of the state", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"], {
      snapshotThreshold: 50,
      peerTimeoutMs: 60_000,
    });
    try {
      const leader = await cluster.settled();
      const map = leader.createMap<string, string>({ mapId: "big" });
      await map.ready;
      for (let i = 0; i < ENTRIES; i += 2000) {
        const batch: [string, string][] = [];
        for (let j = i; j < i + 2000; j++) batch.push([`k${j}`, `value-${j}`]);
        await map.setAll(batch);
      }
      await waitFor(() => leader.status().snapshotIndex > 0, { timeoutMs: 10_000, message: "a compaction" });
      const joiner = await cluster.add("d");
      const joinerMap = joiner.createMap<string, string>({ mapId: "big" }); // observed while it restores
      const samples: { restoring: boolean; size: number; commit: number; applied: number; snap: number }[] =
        [];
      let sampling = true;
      const sample = () => {
        if (!sampling) return;
        const s = joiner.status();
        samples.push({
          restoring: s.snapshotIndex > s.appliedIndex,
          size: joinerMap.size,
          commit: s.commitIndex,
          applied: s.appliedIndex,
          snap: s.snapshotIndex,
        });
        setTimeout(sample, 0);
      };
      sample();
      // writes go on meanwhile: the joiner acknowledges them while it restores
      let writing = true;
      const writer = (async () => {
        for (let n = 0; writing; n++) await map.set(`w${n % 50}`, `${n}`);
      })();
      await joiner.join({ timeoutMs: 60_000 });
      writing = false;
      await writer;
      sampling = false;
      const restoring = samples.filter((s) => s.restoring);
      assert.ok(
        restoring.length >= 2,
        `the restore spanned turns of the event loop (${restoring.length} samples)`,
      );
      // per restore (one snapshot index): the state before the swap, then the whole image (its events are
      // told meanwhile); a restore written into the live state would show a new size at every slice
      const sizes = new Map<number, Set<number>>();
      for (const s of restoring) sizes.set(s.snap, (sizes.get(s.snap) ?? new Set()).add(s.size));
      for (const [snap, seen] of sizes) {
        assert.ok(
          seen.size <= 2,
          `restore of ${snap}: a collection showed parts of the image (${[...seen]})`,
        );
      }
      assert.ok(
        restoring.some((s) => s.commit > s.snap),
        "the joiner took in later entries (their commit) while it restored, without applying them",
      );
      assert.ok(restoring.every((s) => s.applied < s.snap), "nothing applied until the restore was complete");
      await joiner.waitUntilCommitHead(10_000);
      assert.equal(joinerMap.size, map.size);
      assert.equal(joinerMap.get("k119999"), "value-119999");
      const last = await map.set("final", "x");
      void last;
      await waitFor(() => joinerMap.get("final") === "x", { timeoutMs: 5000 });
    } finally {
      await cluster.close();
    }
  });
});
