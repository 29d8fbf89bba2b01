import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokListenerError } from "../../src/errors.ts";
import { MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import { GatedStore } from "./remote_map_gated_store.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

describe("a throwing application listener never breaks a replicated write", () => {
  it("on queues, maps, records, remote maps and subscription tables", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b"]);
    try {
      const [a, b] = cluster.peers;
      const errors: HamokListenerError[] = [];
      for (const p of [a, b]) {
        p.on("error", (e) => {
          if (e instanceof HamokListenerError) errors.push(e);
        });
      }
      const boom = () => {
        throw new Error("listener failure");
      };
      const store = new MemoryRemoteStore<string, number>();
      const queues = [a, b].map((p) => p.createQueue<number>({ queueId: "q" }));
      const maps = [a, b].map((p) => p.createMap<string, number>({ mapId: "m" }));
      const records = [a, b].map((p) => p.createRecord<{ x: number }>({ recordId: "r" }));
      const remotes = [a, b].map((p) => p.createRemoteMap<string, number>({ mapId: "rm", store }));
      const emitters = [a, b].map((p) => p.createEmitter({ emitterId: "e" }));
      const seen: string[] = [];
      for (const q of queues) q.on("add", boom).on("add", () => seen.push("queue"));
      for (const m of maps) {
        m.on("insert", boom);
        m.on("insert", () => seen.push("map"));
      }
      for (const r of records) {
        r.on("insert", boom);
        r.on("insert", () => seen.push("record"));
      }
      for (const rm of remotes) rm.on("insert", boom).on("insert", () => seen.push("remote"));
      for (const e of emitters) e.subscriptions.on("added", boom).on("added", () => seen.push("table"));

      await queues[1].push(1);
      assert.equal(await queues[0].pop(), 1);
      assert.equal(await maps[1].set("k", 1), undefined);
      await records[1].set("x", 1);
      assert.equal(await remotes[1].set("k", 2), undefined);
      await emitters[1].subscribe("ev", () => {});
      await a.waitUntilCommitHead();
      await waitFor(() => seen.length === 10, { timeoutMs: 3000, message: `seen ${seen}` });
      for (const what of ["queue", "map", "record", "remote", "table"]) {
        assert.equal(seen.filter((s) => s === what).length, 2, what);
      }
      assert.ok(errors.length >= 10, `${errors.length} listener errors reported`);
      assert.ok(errors.every((e) => (e.cause as Error).message === "listener failure"));
      assert.deepEqual(maps[0].get("k"), 1);
    } finally {
      await cluster.close();
    }
  });
});

describe("a throwing 'error' listener never breaks the peer", () => {
  it("a remote map whose store fails still retries, executes once, and the throw is logged", async () => {
    // the executor reports each failed write; a listener that threw used to unwind its retry
    // loop past the backoff and end in an unhandled rejection
    const logged: unknown[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      error: (_message: string, cause?: unknown) => logged.push(cause),
    };
    const cluster = await startCluster(memoryTransports(), ["a", "b"], { logger });
    try {
      const leader = await cluster.settled();
      const reported: Error[] = [];
      for (const p of cluster.peers) {
        p.on("error", (e) => {
          reported.push(e);
          throw new Error("error listener failure");
        });
      }
      const db = new MemoryRemoteStore<string, number>();
      const stores = cluster.peers.map(() => new GatedStore(db));
      for (const s of stores) s.failWrites = 3;
      const maps = cluster.peers.map((p, i) =>
        p.createRemoteMap<string, number>({ mapId: "rm", store: stores[i] })
      );
      const writer = maps[cluster.peers.indexOf(leader) === 0 ? 1 : 0];
      assert.equal(await writer.set("k", 1), undefined);
      assert.equal(db.executionLog.length, 1);
      const leaderStore = stores[cluster.peers.indexOf(leader)];
      assert.equal(leaderStore.failWrites, 0);
      assert.ok(reported.length >= 3, `${reported.length} reported`);
      assert.ok(
        logged.filter((e) => e instanceof Error && e.message === "error listener failure").length >= 3,
        `${logged.length} logged`,
      );
      for (const m of maps) m.close();
    } finally {
      await cluster.close();
    }
  });
});
