/**
 * A step of the wall clock (an NTP correction, a resumed VM) changes no timeout: every silence,
 * deadline and rate the peer measures is on `Scheduler.monotonicNow`, and `Scheduler.now` is read
 * only for what is compared across processes or shown. Here the wall clock of every peer (one
 * scheduler for the whole process, as a host's clock) jumps an hour forward or back.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hamok } from "../../src/hamok.ts";
import { REAL_SCHEDULER, type Scheduler } from "../../src/cluster/scheduler.ts";
import {
  FAST,
  laggingFollower,
  memoryTransports,
  startCluster,
  type TestCluster,
} from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

const HOUR = 3_600_000;

/** The runtime's scheduler with a wall clock that can be stepped. */
function steppedClock(): { scheduler: Scheduler; step(ms: number): void } {
  let offset = 0;
  return {
    scheduler: { ...REAL_SCHEDULER, now: () => REAL_SCHEDULER.now() + offset },
    step: (ms) => void (offset += ms),
  };
}

/** Four peers on the memory bus with `voters: 3`: three voters and a learner, all members. */
async function threeVotersAndALearner(
  scheduler: Scheduler,
): Promise<{ cluster: TestCluster; leader: Hamok }> {
  const cluster = await startCluster(memoryTransports(), ["a", "b", "c", "d"], { scheduler, voters: 3 });
  try {
    const leader = await cluster.settled();
    await waitFor(() => leader.status().members.length === 4, { timeoutMs: 5000, message: "four members" });
    return { cluster, leader };
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

function memberIds(peer: Hamok): string[] {
  return peer.status().members.map((m) => m.memberId).sort();
}

describe("a step of the wall clock", () => {
  it("an hour forward removes no member: voters and the learner stay through three peer timeouts of writes", async () => {
    const clock = steppedClock();
    const { cluster, leader } = await threeVotersAndALearner(clock.scheduler);
    try {
      assert.equal(leader.status().members.filter((m) => m.role === "learner").length, 1);
      const before = memberIds(leader);
      const left: string[] = [];
      for (const peer of cluster.peers) peer.on("left", () => left.push(peer.localPeerId));
      const map = leader.createMap<string, number>({ mapId: "m" });
      clock.step(HOUR);
      // writes for three peer timeouts (FAST: 800 ms) of monotonic time: a silence measured on the
      // wall clock would have made every member look an hour silent at the first liveness tick
      const until = performance.now() + 3 * FAST.peerTimeoutMs!;
      for (let i = 0; performance.now() < until; i++) await map.set(`k${i}`, i);
      assert.deepEqual(memberIds(leader), before);
      assert.deepEqual(left, []);
      assert.equal(cluster.leader(), leader);
    } finally {
      await cluster.close();
    }
  });

  it("an hour forward during a read barrier does not expire it", async () => {
    const clock = steppedClock();
    // the follower hears the leader 300 ms late: its first ReadIndex round (200 ms) is asked again,
    // and the barrier looks at its deadline then
    const { cluster, writes, reads } = await laggingFollower(300, { scheduler: clock.scheduler });
    try {
      await writes.set("k", 2);
      const read = reads.get("k", { consistency: "linearizable", timeoutMs: 3000 });
      clock.step(HOUR);
      assert.equal(await read, 2);
    } finally {
      await cluster.close();
    }
  });

  it("an hour back still removes a member that went silent, after peerTimeoutMs", async () => {
    const clock = steppedClock();
    const { cluster, leader } = await threeVotersAndALearner(clock.scheduler);
    try {
      const learnerId = leader.status().members.find((m) => m.role === "learner")!.peerId;
      const learner = cluster.peers.find((p) => p.localPeerId === learnerId)!;
      clock.step(-HOUR);
      await cluster.crash(learner);
      // on the wall clock it was last heard an hour in the future: it would stay for an hour
      await waitFor(() => leader.status().members.length === 3, {
        timeoutMs: 10 * FAST.peerTimeoutMs!,
        message: "the silent learner was removed",
      });
      assert.ok(!leader.status().members.some((m) => m.peerId === learnerId));
    } finally {
      await cluster.close();
    }
  });
});
