/** The `voters` bound: further members stay learners, and a learner is promoted when a voter goes. */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hamok } from "../../src/hamok.ts";
import { HamokConfigError } from "../../src/errors.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

function roles(peer: Hamok): { voters: string[]; learners: string[] } {
  const members = peer.status().members;
  return {
    voters: members.filter((m) => m.role === "voter").map((m) => m.peerId).sort(),
    learners: members.filter((m) => m.role === "learner").map((m) => m.peerId).sort(),
  };
}

describe("voters", () => {
  it("keeps at most `voters` voters; the others stay learners that replicate and forward writes", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c", "d", "e"], { voters: 3 });
    try {
      const leader = await cluster.settled();
      await waitFor(() => roles(leader).voters.length === 3 && roles(leader).learners.length === 2, {
        timeoutMs: 5000,
        message: "3 voters and 2 learners",
      });
      const learnerId = roles(leader).learners[0];
      const learner = cluster.peers.find((p) => p.localPeerId === learnerId)!;
      const lm = learner.createMap<string, number>({ mapId: "m" });
      await lm.set("k", 1); // forwarded to the leader
      const leaderMap = leader.createMap<string, number>({ mapId: "m" });
      assert.equal(leaderMap.get("k"), 1);
      await leaderMap.set("k", 2);
      await learner.waitUntilCommitHead();
      assert.equal(lm.get("k"), 2);
      // a voter goes: after its removal a learner takes its place
      const voterId = roles(leader).voters.find((id) => id !== leader.localPeerId)!;
      await cluster.crash(cluster.peers.find((p) => p.localPeerId === voterId)!);
      await waitFor(() => {
        const r = roles(leader);
        return !r.voters.includes(voterId) && r.voters.length === 3 && r.learners.length === 1;
      }, { timeoutMs: 8000, message: "a learner was promoted in the removed voter's place" });
    } finally {
      await cluster.close();
    }
  });

  it("rejects a voters bound that is not a positive integer", () => {
    assert.throws(() => new Hamok({ voters: 0 }), HamokConfigError);
    assert.throws(() => new Hamok({ voters: 2.5 }), HamokConfigError);
  });
});
