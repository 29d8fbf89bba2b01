import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokOutcomeUnknownError } from "../../src/errors.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { mapFaultSuite, mapSuite } from "./map_suite.ts";

describe("map on the memory transport", () => {
  mapSuite(() => Promise.resolve(memoryTransports()));
  mapFaultSuite(() => Promise.resolve(memoryTransports()));

  it("a write whose outcome is unknown can be retried with its request id and applies once", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { peerTimeoutMs: 60_000 });
    try {
      const leader = cluster.leader()!;
      const follower = cluster.peers.find((p) => p !== leader)!;
      const ml = leader.createMap<string, number>({ mapId: "retry" });
      const mf = follower.createMap<string, number>({ mapId: "retry" });
      await mf.set("k", 1);
      const updates: number[] = [];
      ml.on("update", (_k, _old, value) => updates.push(value));
      // the proposal reaches the leader and commits with the third peer, but the follower hears
      // nothing back, so it cannot know
      const fault = factory.bus.drop({ from: leader.localPeerId, to: follower.localPeerId });
      const error = await mf.set("k", 2, { timeoutMs: 300 }).then(() => undefined, (e) => e);
      assert.ok(error instanceof HamokOutcomeUnknownError, String(error));
      assert.equal(error.code, "HAMOK_OUTCOME_UNKNOWN");
      assert.equal(typeof error.requestId, "string");
      await waitFor(() => ml.get("k") === 2, { timeoutMs: 3000, message: "the write was applied" });
      const revision = ml.getEntry("k")!.revision;
      fault.remove();
      // the retry resolves with the result of the first application and changes nothing
      assert.equal(await mf.set("k", 2, { requestId: error.requestId }), 1);
      await leader.waitUntilCommitHead();
      assert.deepEqual(updates, [2]);
      assert.equal(ml.getEntry("k")!.revision, revision);
      assert.deepEqual(mf.getEntry("k"), { value: 2, revision });
      // a fresh write with another id applies normally
      assert.equal(await mf.set("k", 3), 2);
      await leader.waitUntilCommitHead();
      assert.deepEqual(updates, [2, 3]);
    } finally {
      await cluster.close();
    }
  });
});
