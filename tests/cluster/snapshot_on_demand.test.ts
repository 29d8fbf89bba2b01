import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FAST, memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { Hamok } from "../../mod.ts";
import { MemoryRaftStorage } from "../../src/storage/memory_storage.ts";

describe("a memory storage that keeps no snapshot images (what a Hamok peer makes itself)", () => {
  it("compacts without an image; the leader makes one at its applied index for a joiner", async () => {
    const factory = memoryTransports();
    const storages = new Map<string, MemoryRaftStorage>();
    const peers: Hamok[] = [];
    const add = async (peerId: string, snapshotThreshold = 40) => {
      const storage = new MemoryRaftStorage(`${peerId}/m1`, undefined, { snapshotsOnDemand: true });
      storages.set(peerId, storage);
      const transport = await factory.create(peerId);
      const peer = new Hamok({
        ...FAST,
        clusterId: "test",
        snapshotThreshold,
        peerId,
        transport,
        storage,
      });
      peers.push(peer);
      return peer;
    };
    try {
      for (const id of ["a", "b", "c"]) await add(id);
      await Promise.all(peers.map((p) => p.join({ timeoutMs: 10_000 })));
      await waitFor(() => peers.some((p) => p.leader), { timeoutMs: 5000, message: "a leader" });
      const leader = peers.find((p) => p.leader)!;
      const map = leader.createMap<string, string>({ mapId: "m" });
      await map.ready;
      for (let i = 0; i < 200; i++) await map.set(`k${i}`, `v${i}`);
      await waitFor(() => leader.status().snapshotIndex > 0, { timeoutMs: 5000, message: "a compaction" });
      assert.ok(leader.status().counters.snapshotsTaken >= 1);
      // entries beyond the snapshot: a newer snapshot is made for a joiner
      for (let i = 0; i < 5; i++) await map.set(`w${i}`, `${i}`);
      assert.ok(
        [...storages.values()].every((s) => s.snapshotIndex > 0 && !s.holdsSnapshotData),
        "meta only",
      );
      const before = leader.status();
      assert.equal(before.counters.snapshotsForFollowers, 0);

      const joiner = await add("d");
      await joiner.join({ timeoutMs: 20_000 });
      const joinerMap = joiner.createMap<string, string>({ mapId: "m" });
      await joiner.waitUntilCommitHead(10_000);
      await waitFor(() => joinerMap.size === map.size, { timeoutMs: 5000, message: "the joiner's map" });
      for (let i = 0; i < 200; i++) assert.equal(joinerMap.get(`k${i}`), `v${i}`);
      const after = leader.status();
      assert.ok(
        after.counters.snapshotsForFollowers >= 1,
        `the leader made a snapshot for the joiner (${after.counters.snapshotsForFollowers})`,
      );
      assert.ok(joiner.status().snapshotIndex > before.snapshotIndex, "the joiner got the newer snapshot");
      await map.set("final", "x");
      await waitFor(() => joinerMap.get("final") === "x", { timeoutMs: 5000, message: "a later write" });
    } finally {
      for (const peer of peers) peer.close();
      await factory.close();
    }
  });

  it("makes an image for a follower that was cut off while the log was compacted past it", async () => {
    const factory = memoryTransports();
    const peers: Hamok[] = [];
    const storages: MemoryRaftStorage[] = [];
    for (const peerId of ["a", "b", "c"]) {
      const storage = new MemoryRaftStorage(`${peerId}/m1`, undefined, { snapshotsOnDemand: true });
      storages.push(storage);
      const transport = await factory.create(peerId);
      // a compaction at every entry; a member cut off for a while is not removed
      peers.push(
        new Hamok({
          ...FAST,
          clusterId: "test",
          snapshotThreshold: 1,
          peerTimeoutMs: 60_000,
          peerId,
          transport,
          storage,
        }),
      );
    }
    try {
      await Promise.all(peers.map((p) => p.join({ timeoutMs: 10_000 })));
      await waitFor(() => peers.some((p) => p.leader), { timeoutMs: 5000, message: "a leader" });
      const leader = peers.find((p) => p.leader)!;
      const behind = peers.find((p) => !p.leader)!;
      const map = leader.createMap<string, string>({ mapId: "m" });
      await map.ready;
      await waitFor(() => behind.status().appliedIndex === leader.status().appliedIndex, {
        timeoutMs: 5000,
        message: "in sync",
      });
      // cut off: the leader's window of appends to it fills (16), then it sends it nothing more
      const cut = factory.bus.partition(
        [behind.localPeerId],
        peers.filter((p) => p !== behind).map((p) => p.localPeerId),
      );
      for (let i = 0; i < 30; i++) await map.set(`k${i}`, `v${i}`);
      const others = peers.filter((p) => p !== behind);
      // the log is kept for the follower cut off up to four thresholds, then compacted past it
      await waitFor(
        () => others.every((p) => p.status().snapshotIndex >= p.status().appliedIndex - 4),
        { timeoutMs: 5000, message: "compacted past the follower cut off" },
      );
      const snapshotIndex = leader.status().snapshotIndex;
      cut.remove();
      const behindMap = behind.createMap<string, string>({ mapId: "m" });
      await waitFor(() => behind.status().appliedIndex >= snapshotIndex, {
        timeoutMs: 10_000,
        message: "the follower catches up through a snapshot",
      });
      await waitFor(() => behindMap.size === 30, { timeoutMs: 5000, message: "its map" });
      for (let i = 0; i < 30; i++) assert.equal(behindMap.get(`k${i}`), `v${i}`);
      const status = leader.status();
      assert.ok(status.counters.snapshotsForFollowers >= 1, `${status.counters.snapshotsForFollowers}`);
    } finally {
      for (const peer of peers) peer.close();
      await factory.close();
    }
  });

  it("is what a peer makes itself: it compacts without an image and makes one for a joiner", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"], { snapshotThreshold: 30 });
    try {
      const leader = await cluster.settled();
      const map = leader.createMap<string, string>({ mapId: "m" });
      await map.ready;
      for (let i = 0; i < 100; i++) await map.set(`k${i}`, `v${i}`);
      await waitFor(() => leader.status().snapshotIndex > 0, { timeoutMs: 5000, message: "a compaction" });
      assert.equal(leader.status().counters.snapshotsForFollowers, 0, "no image made yet");
      const joiner = await cluster.add("d");
      await joiner.join({ timeoutMs: 20_000 });
      const joinerMap = joiner.createMap<string, string>({ mapId: "m" });
      await joiner.waitUntilCommitHead(10_000);
      await waitFor(() => joinerMap.size === 100, { timeoutMs: 5000, message: "the joiner's map" });
      assert.equal(joinerMap.get("k99"), "v99");
      assert.ok(leader.status().counters.snapshotsForFollowers >= 1, "an image made for the joiner");
    } finally {
      await cluster.close();
    }
  });
});
