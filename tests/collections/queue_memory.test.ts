import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokOutcomeUnknownError } from "../../src/errors.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { queueSuite } from "./queue_suite.ts";

describe("queue on the memory transport", () => {
  queueSuite(() => Promise.resolve(memoryTransports()));

  it("a write whose outcome is unknown can be retried with its request id and applies once", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { peerTimeoutMs: 60_000 });
    try {
      const leader = cluster.leader()!;
      const follower = cluster.peers.find((p) => p !== leader)!;
      const other = cluster.peers.find((p) => p !== leader && p !== follower)!;
      const qf = follower.createQueue<string>({ queueId: "retry" });
      const qo = other.createQueue<string>({ queueId: "retry" });
      await qf.push("first");
      await follower.waitUntilCommitHead();
      // the follower's proposals reach the leader, but nothing comes back to it
      const fault = factory.bus.drop({ to: follower.localPeerId });
      // both are submitted at once, before the follower notices that the leader went silent
      const [pushError, popError] = await Promise.all([
        qf.pushAll(["x"], { requestId: "push-1", timeoutMs: 300 }).then(() => undefined, (e) => e),
        qf.pop({ requestId: "pop-1", timeoutMs: 300 }).then(() => undefined, (e) => e),
      ]);
      assert.ok(pushError instanceof HamokOutcomeUnknownError, String(pushError));
      assert.equal(pushError.requestId, "push-1");
      assert.ok(popError instanceof HamokOutcomeUnknownError, String(popError));
      assert.equal(popError.requestId, "pop-1");
      // meanwhile the cluster did apply both
      await waitFor(() => [...qo].join() === "x", { timeoutMs: 3000, message: "the first attempts applied" });
      fault.remove();
      // the retries apply nothing new and resolve with the first results
      await qf.pushAll(["x"], { requestId: "push-1" });
      assert.equal(await qf.pop({ requestId: "pop-1" }), "first");
      await Promise.all(cluster.peers.map((p) => p.waitUntilCommitHead()));
      assert.deepEqual([...qf], ["x"]);
      assert.deepEqual([...qo], ["x"]);
      qf.close();
      qo.close();
    } finally {
      await cluster.close();
    }
  });
});
