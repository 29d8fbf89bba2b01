/**
 * A follower's own write that the cluster applied while the follower could not hear it, and that the
 * follower then learns from a snapshot (the log was compacted meanwhile): its promise resolves with
 * its result instead of timing out as of unknown outcome (its resubmission is applied as a duplicate).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

describe("a snapshot answers the proposals it covers", () => {
  it("a follower's write applied while it was deaf, learned from a snapshot, resolves with its result", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { snapshotThreshold: 20 });
    try {
      const leader = await cluster.settled();
      const follower = cluster.peers.find((p) => p !== leader)!;
      const fm = follower.createMap<string, number>({ mapId: "m" });
      const lm = leader.createMap<string, number>({ mapId: "m" });
      await lm.set("k", 1);
      await follower.waitUntilCommitHead();
      // the follower still reaches the leader (its write is forwarded) but hears nothing back
      const deaf = factory.bus.partitionOneWay([leader.localPeerId], [follower.localPeerId]);
      const write = fm.set("k", 2, { timeoutMs: 8000 }).then(
        (previous) => ({ previous }),
        (error) => ({ error }),
      );
      await waitFor(() => lm.get("k") === 2, { timeoutMs: 5000, message: "the leader applied the write" });
      // enough writes for the leader to compact past the follower's log: it catches up by snapshot
      for (let i = 0; i < 400; i++) await lm.set(`x${i}`, i);
      const sentBefore = leader.counters.values().snapshotsForFollowers;
      deaf.remove();
      await waitFor(() => fm.get("x399") === 399, { timeoutMs: 10_000, message: "the follower caught up" });
      const outcome = await write;
      // the old peer rejected it with HamokOutcomeUnknownError at its timeout
      assert.deepEqual(outcome, { previous: 1 });
      assert.ok(
        leader.counters.values().snapshotsForFollowers > sentBefore,
        "the follower caught up by snapshot",
      );
    } finally {
      await cluster.close();
    }
  });
});
