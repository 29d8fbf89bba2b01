import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokOutcomeUnknownError } from "../../src/errors.ts";
import { Hamok } from "../../src/hamok.ts";
import { type HamokRemoteStoreBatch, MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { FAST } from "../_helpers/cluster.ts";
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

  it("a store that refuses every write is asked again after a pause, never in a loop of microtasks", async () => {
    // its mark never moves, so each attempt finds the same state: the executor must wait between them
    class RefusingStore extends MemoryRemoteStore<string, number> {
      attempts = 0;
      override write(_batch: HamokRemoteStoreBatch<string, number>): Promise<boolean> {
        // past 500 attempts, throw: that makes the old code back off too, so a failing run ends
        if (++this.attempts > 500) return Promise.reject(new Error("spinning"));
        return Promise.resolve(false);
      }
    }
    const store = new RefusingStore();
    const hamok = new Hamok({ ...FAST, peerId: "solo", transport: new MemoryTransport() });
    try {
      await hamok.join({ timeoutMs: 5000 });
      const map = hamok.createRemoteMap<string, number>({ mapId: "refused", store });
      const error = await map.set("k", 1, { timeoutMs: 300 }).then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof HamokOutcomeUnknownError, String(error));
      assert.ok(store.attempts >= 2, `retried (${store.attempts} attempts)`);
      assert.ok(
        store.attempts <= 100,
        `${store.attempts} write attempts within 300 ms: no pause between them`,
      );
    } finally {
      hamok.close();
    }
  });

  it("a peer that bootstraps a new cluster on its old states executes the new log's writes once each", async () => {
    const db = new MemoryRemoteStore<string, number>();
    const hamok = new Hamok({ ...FAST, peerId: "solo", transport: new MemoryTransport() });
    try {
      await hamok.join({ timeoutMs: 5000 });
      const map = hamok.createRemoteMap<string, number>({
        mapId: "restart",
        store: db,
        requestTimeoutInMs: 2000,
      });
      for (let i = 0; i < 5; i++) await map.set(`k${i}`, i);
      assert.equal(db.executionLog.length, 5);
      await hamok.leave();
      // no cluster is left: this join bootstraps a new one, whose log starts at index 1 again
      await hamok.join({ timeoutMs: 5000 });
      assert.equal(await map.set("k0", 10), 0);
      assert.equal(await map.get("k0"), 10);
      // exactly one more execution: the old executed index did not make the new write repeat
      assert.equal(db.executionLog.length, 6);
    } finally {
      hamok.close();
    }
  });

  it("a new cluster takes over a store an earlier cluster wrote (every instance restarted without storage)", async () => {
    const db = new MemoryRemoteStore<string, number>();
    const first = new Hamok({ ...FAST, peerId: "one", transport: new MemoryTransport() });
    try {
      await first.join({ timeoutMs: 5000 });
      const map = first.createRemoteMap<string, number>({ mapId: "db", store: db, requestTimeoutInMs: 2000 });
      for (let i = 0; i < 5; i++) await map.set(`k${i}`, i);
    } finally {
      first.close();
    }
    const second = new Hamok({ ...FAST, peerId: "two", transport: new MemoryTransport() });
    try {
      await second.join({ timeoutMs: 5000 });
      const map = second.createRemoteMap<string, number>({
        mapId: "db",
        store: db,
        requestTimeoutInMs: 2000,
      });
      assert.equal(await map.get("k3"), 3);
      assert.equal(await map.set("k3", 30), 3);
      assert.equal(await map.insert("k9", 9), undefined);
      assert.equal(await map.get("k3"), 30);
      assert.equal(db.executionLog.length, 7);
    } finally {
      second.close();
    }
  });

  it("a new view of a closed remote map's id executes its writes (its request ids are not the old view's)", async () => {
    const db = new MemoryRemoteStore<string, number>();
    const hamok = new Hamok({ ...FAST, peerId: "solo", transport: new MemoryTransport() });
    try {
      await hamok.join({ timeoutMs: 5000 });
      const first = hamok.createRemoteMap<string, number>({ mapId: "views", store: db });
      assert.equal(await first.set("k", 1), undefined);
      first.close();
      const second = hamok.createRemoteMap<string, number>({ mapId: "views", store: db });
      assert.equal(await second.set("k", 2), 1, "the previous value: this write executed");
      assert.equal(await second.get("k"), 2);
      assert.equal(db.executionLog.length, 2);
    } finally {
      hamok.close();
    }
  });
});
