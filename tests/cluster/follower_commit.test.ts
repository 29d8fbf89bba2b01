/**
 * A follower's write in a cluster of three voters is done when the leader's append reaches it: the
 * follower and the leader are a majority, so it commits on the append, before any acknowledgement
 * reaches the leader (RaftNode, `leaderMatch`). With five voters it still waits for the leader.
 * Through the public API, with transports that can hold the followers' acknowledgements back.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeEnvelope } from "../../src/codec/envelope.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import type { TransportHeaders } from "../../src/transport/transport.ts";
import { startCluster, type TransportFactory } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { memoryTransports } from "../_helpers/counting_transport.ts";

/** A memory transport that drops the append acknowledgements its peer publishes while `holdAcks`. */
class AckHoldingTransport extends MemoryTransport {
  holdAcks = false;
  dropped = 0;
  override publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    if (this.holdAcks) {
      const envelope = decodeEnvelope(data);
      if (envelope.type === "raft" && envelope.body.type === "append-response") {
        this.dropped++;
        return;
      }
    }
    super.publish(subject, data, headers);
  }
}

function ackHolding(): TransportFactory & { of: Map<string, AckHoldingTransport> } {
  return memoryTransports("ack-holding memory", (options) => new AckHoldingTransport(options));
}

describe("a follower's write and the leader's acknowledgements", () => {
  it("three voters: a follower's set resolves while no acknowledgement reaches the leader", async () => {
    const factory = ackHolding();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    try {
      const leader = await cluster.settled();
      const followers = cluster.peers.filter((p) => p !== leader);
      const onLeader = leader.createMap<string, string>({ mapId: "m" });
      const onFollower = followers[0].createMap<string, string>({ mapId: "m" });
      await onFollower.set("warm", "up");
      await waitFor(() => onLeader.get("warm") === "up", { timeoutMs: 2000, message: "the leader applies" });
      for (const p of followers) factory.of.get(p.localPeerId)!.holdAcks = true;
      assert.equal(await onFollower.set("k", "v", { timeoutMs: 2000 }), undefined);
      assert.equal(onFollower.get("k"), "v");
      const dropped = followers.reduce((n, p) => n + factory.of.get(p.localPeerId)!.dropped, 0);
      assert.ok(dropped > 0, "no acknowledgement was held back");
      assert.equal(onLeader.get("k"), undefined, "the leader cannot know the entry committed yet");
      for (const p of followers) factory.of.get(p.localPeerId)!.holdAcks = false;
      await waitFor(() => onLeader.get("k") === "v", {
        timeoutMs: 2000,
        message: "the leader applies once acknowledgements flow again",
      });
    } finally {
      await cluster.close();
    }
  });

  it("five voters: a follower's set waits for the leader's commit index", async () => {
    const factory = ackHolding();
    const cluster = await startCluster(factory, ["a", "b", "c", "d", "e"]);
    try {
      const leader = await cluster.settled();
      await waitFor(() => leader.status().members.filter((m) => m.role === "voter").length === 5, {
        timeoutMs: 3000,
        message: "five voters",
      });
      const followers = cluster.peers.filter((p) => p !== leader);
      const onFollower = followers[0].createMap<string, string>({ mapId: "m" });
      await onFollower.set("warm", "up");
      const writer = factory.of.get(followers[0].localPeerId)!;
      for (const p of followers) factory.of.get(p.localPeerId)!.holdAcks = true;
      let done = false;
      const set = onFollower.set("k", "v", { timeoutMs: 3000 }).then((previous) => {
        done = true;
        return previous;
      });
      await waitFor(() => writer.dropped > 0, { timeoutMs: 2000, message: "the writer took the append" });
      // whatever taking the append set off has run by the next macrotask
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(done, false, "two of five committed the write");
      assert.equal(onFollower.get("k"), undefined);
      for (const p of followers) factory.of.get(p.localPeerId)!.holdAcks = false;
      assert.equal(await set, undefined);
      assert.equal(onFollower.get("k"), "v");
    } finally {
      await cluster.close();
    }
  });
});
