import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokOutcomeUnknownError } from "../../src/errors.ts";
import { MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { remoteMapFaultSuite, remoteMaps, remoteMapSuite } from "./remote_map_suite.ts";

describe("remote map on the memory transport", () => {
  remoteMapSuite(() => Promise.resolve(memoryTransports()));
  remoteMapFaultSuite(() => Promise.resolve(memoryTransports()));

  it("a write whose outcome is unknown can be retried with its request id and executes once", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { peerTimeoutMs: 60_000 });
    try {
      const leader = cluster.leader()!;
      const follower = cluster.peers.find((p) => p !== leader)!;
      const db = new MemoryRemoteStore<string, number>();
      const { maps } = remoteMaps<string, number>(cluster.peers, "retry", db);
      const mf = maps[cluster.peers.indexOf(follower)];
      // the follower's proposal reaches the leader, but nothing comes back to the follower
      const fault = factory.bus.drop({ to: follower.localPeerId });
      const error = await mf.insert("k", 1, { requestId: "insert-1", timeoutMs: 300 }).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(error instanceof HamokOutcomeUnknownError, String(error));
      assert.equal(error.requestId, "insert-1");
      // meanwhile the leader executed it
      await waitFor(() => db.executionLog.length === 1, {
        timeoutMs: 3000,
        message: "the first attempt ran",
      });
      fault.remove();
      // the retry resolves with the first execution's result (inserted), not with a second insert's (1)
      assert.equal(await mf.insert("k", 1, { requestId: "insert-1" }), undefined);
      assert.equal(db.executionLog.length, 1);
      // a fresh request id is a new operation
      assert.equal(await mf.insert("k", 2), 1);
      assert.equal(db.executionLog.length, 2);
      for (const m of maps) m.close();
    } finally {
      await cluster.close();
    }
  });
});
