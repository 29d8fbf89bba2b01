/**
 * The HamokRemoteMap behaviour suite, run with three peers on the memory transport and on a real
 * nats-server (see remote_map_memory.test.ts and remote_map_nats.test.ts), under Deno and Bun. Each
 * peer has its own view ({@linkcode GatedStore}) of one shared {@linkcode MemoryRemoteStore}, which
 * stands for the application's database.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokError,
  HamokOutcomeUnknownError,
} from "../../src/errors.ts";
import type { Hamok } from "../../src/hamok.ts";
import type { HamokRemoteMap } from "../../src/collections/remote_map.ts";
import { MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import type { ValueCodec } from "../../src/codec/value_codec.ts";
import { startCluster, type TestCluster, type TransportFactory } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { GatedStore } from "./remote_map_gated_store.ts";

let counter = 0;
const nextId = (base: string) => `${base}-${++counter}`;

/** Records the events of a remote map as strings. */
export function recordEvents<K, V>(map: HamokRemoteMap<K, V>): string[] {
  const log: string[] = [];
  const s = (v: unknown) => JSON.stringify(v);
  map.on("insert", (k, v) => log.push(`insert ${s(k)}=${s(v)}`));
  map.on("update", (k, o, v) => log.push(`update ${s(k)} ${s(o)}->${s(v)}`));
  map.on("remove", (k, o) => log.push(`remove ${s(k)} (${s(o)})`));
  map.on("clear", () => log.push("clear"));
  return log;
}

/** One remote map per peer, each over its own view of one shared database. */
export function remoteMaps<K, V>(peers: Hamok[], mapId: string, db = new MemoryRemoteStore<K, V>()) {
  const stores = peers.map(() => new GatedStore<K, V>(db));
  const maps = peers.map((p, i) =>
    p.createRemoteMap<K, V>({ mapId, store: stores[i], requestTimeoutInMs: 8000 })
  );
  return { db, stores, maps };
}

function noDuplicates(log: readonly number[]): void {
  const seen = new Set<number>();
  for (const index of log) {
    assert.ok(!seen.has(index), `operation at log index ${index} was executed twice`);
    seen.add(index);
  }
}

export function remoteMapSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokRemoteMap", () => {
    let cluster: TestCluster;
    let a: Hamok, b: Hamok, c: Hamok;

    before(async () => {
      cluster = await startCluster(await makeFactory(), ["a", "b", "c"]);
      [a, b, c] = cluster.peers;
    });
    after(async () => {
      await cluster?.close();
    });

    it("every write resolves with its result once executed; insert never overwrites; falsy values are values", async () => {
      const { db, maps } = remoteMaps<string, unknown>([a, b, c], nextId("ops"));
      const [ma, mb, mc] = maps;
      assert.equal(await mb.set("a", 1), undefined);
      assert.equal(await mc.set("a", 0), 1);
      assert.equal(await ma.insert("a", 5), 0, "insert of an existing key resolves with its value");
      assert.equal(await ma.get("a"), 0, "and does not overwrite it");
      assert.equal(await mb.insert("f", false), undefined);
      assert.equal(await mb.insert("f", true), false);
      assert.equal(await mc.insert("e", ""), undefined);
      assert.equal(await mc.insert("n", null), undefined);
      assert.equal(await ma.insert("n", 1), null);
      assert.deepEqual(
        await mb.getAll(["a", "f", "e", "n", "missing"]),
        new Map<string, unknown>([["a", 0], ["f", false], ["e", ""], ["n", null]]),
      );
      assert.equal(await mb.has("n"), true);
      assert.equal(await mb.has("missing"), false);
      assert.equal(await ma.updateIf("a", 2, 1), false);
      assert.equal(await ma.updateIf("a", 2, 0), true, "updateIf with a falsy old value");
      assert.equal(await ma.updateIf("missing", 2, 0), false);
      assert.equal(await mb.removeIf("f", true), false, "removeIf on a mismatch resolves false");
      assert.equal(await mb.removeIf("f", false), true);
      assert.deepEqual(await mc.setAll([["a", 3], ["s", "x"]]), new Map([["a", 2]]));
      assert.deepEqual(
        await mc.insertAll(new Map<string, unknown>([["s", "y"], ["t", 0]])),
        new Map([["s", "x"]]),
      );
      assert.equal(await ma.delete("t"), true);
      assert.equal(await ma.delete("t"), false);
      assert.equal(await ma.remove("e"), true);
      assert.deepEqual(await mb.deleteAll(["s", "zz"]), new Set(["s"]));
      assert.deepEqual(await mb.removeAll(["n", "zz"]), new Map([["n", null]]));
      assert.equal(await mc.size(), 1);
      assert.deepEqual(db.toMap(), new Map([["a", 3]]));
      await mc.clear();
      assert.equal(await ma.isEmpty(), true);
      noDuplicates(db.executionLog);
      for (const m of maps) m.close();
    });

    it("every peer fires the same change events in the same order", async () => {
      const { maps } = remoteMaps<string, number>([a, b, c], nextId("events"));
      const logs = maps.map((m) => recordEvents(m));
      await maps[0].set("x", 1);
      await maps[1].set("x", 2);
      await maps[2].insert("y", 0);
      await maps[0].insert("y", 9);
      await maps[1].updateIf("y", 1, 0);
      await maps[2].delete("x");
      await maps[0].clear();
      await waitFor(() => logs.every((l) => l.length === 6), {
        timeoutMs: 3000,
        message: "events everywhere",
      });
      const expected = [
        `insert "x"=1`,
        `update "x" 1->2`,
        `insert "y"=0`,
        `update "y" 0->1`,
        `remove "x" (2)`,
        "clear",
      ];
      for (const log of logs) assert.deepEqual(log, expected);
      for (const m of maps) m.close();
    });

    it("concurrent insert of one key from every peer: one winner, the others get its value", async () => {
      for (let round = 0; round < 5; round++) {
        const { db, maps } = remoteMaps<string, string>([a, b, c], nextId("insert-race"));
        const results = await Promise.all(maps.map((m, i) => m.insert("key", `peer-${i}`)));
        const winners = results.filter((r) => r === undefined);
        assert.equal(winners.length, 1, `results: ${JSON.stringify(results)}`);
        const winner = `peer-${results.indexOf(undefined)}`;
        for (const r of results) if (r !== undefined) assert.equal(r, winner);
        assert.equal(db.toMap().get("key"), winner);
        for (const m of maps) m.close();
      }
    });

    it("concurrent updateIf from every peer: exactly one true", async () => {
      for (let round = 0; round < 5; round++) {
        const { maps } = remoteMaps<string, { owner: string | null }>([a, b, c], nextId("cas-race"));
        await maps[0].set("job", { owner: null });
        const results = await Promise.all(
          maps.map((m, i) => m.updateIf("job", { owner: `peer-${i}` }, { owner: null })),
        );
        assert.equal(results.filter((r) => r).length, 1, `results: ${JSON.stringify(results)}`);
        const owner = `peer-${results.indexOf(true)}`;
        assert.deepEqual(await maps[2].get("job"), { owner });
        for (const m of maps) m.close();
      }
    });

    it("a linearizable read sees every write that completed before it, on any peer", async () => {
      const { maps } = remoteMaps<string, number>([a, b, c], nextId("linear"));
      for (let i = 0; i < 20; i++) {
        await maps[i % 3].set("counter", i);
        assert.equal(await maps[(i + 1) % 3].get("counter", { consistency: "linearizable" }), i);
      }
      await assert.rejects(
        // deno-lint-ignore no-explicit-any
        maps[0].get("counter", { consistency: "sometimes" as any }),
        HamokConfigError,
      );
      for (const m of maps) m.close();
    });

    it("reads: get, getAll, has, size, keys, values, entries, async iteration; export and import", async () => {
      const id = nextId("reads");
      const { maps } = remoteMaps<number, string>([a, b, c], id);
      await maps[0].setAll([[1, "one"], [2, "two"], [3, "three"]]);
      const [, mb] = maps;
      const keys: number[] = [];
      for await (const k of mb.keys()) keys.push(k);
      const values: string[] = [];
      for await (const v of mb.values()) values.push(v);
      const entries: [number, string][] = [];
      for await (const e of mb) entries.push(e);
      assert.deepEqual(keys.sort(), [1, 2, 3]);
      assert.deepEqual(values.sort(), ["one", "three", "two"]);
      assert.deepEqual(new Map(entries), new Map([[1, "one"], [2, "two"], [3, "three"]]));
      const snapshot = await mb.export();
      assert.equal(snapshot.mapId, id);
      assert.deepEqual(new Map(snapshot.entries as [number, string][]), new Map(entries));
      // import into another map (a setAll: keys not in the snapshot stay)
      const target = remoteMaps<number, string>([a, b, c], nextId("import"));
      await target.maps[2].set(9, "nine");
      await assert.rejects(target.maps[0].import(snapshot), HamokConfigError, "another map id");
      await target.maps[0].import({ ...snapshot, mapId: target.maps[0].id });
      assert.equal(await target.maps[1].size(), 4);
      for (const m of [...maps, ...target.maps]) m.close();
    });

    it("key and value codecs are used on the log; the store gets decoded keys and values", async () => {
      type Key = { tenant: string; id: number };
      const keyCodec = {
        encode: (k: Key) => `${k.tenant}/${k.id}`,
        decode: (s: string | Uint8Array) => {
          const [tenant, id] = String(s).split("/");
          return { tenant, id: Number(id) };
        },
      };
      const valueCodec = {
        encode: (d: Date) => d.toISOString(),
        decode: (s: string | Uint8Array) => new Date(String(s)),
      };
      const db = new MemoryRemoteStore<Key, Date>({ keyOf: (k) => `${k.tenant}/${k.id}` });
      const id = nextId("codecs");
      const ma = a.createRemoteMap<Key, Date>({ mapId: id, store: new GatedStore(db), keyCodec, valueCodec });
      const mb = b.createRemoteMap<Key, Date>({ mapId: id, store: new GatedStore(db), keyCodec, valueCodec });
      const inserted: [Key, Date][] = [];
      mb.on("insert", (k, v) => inserted.push([k, v]));
      const when = new Date("2024-05-06T07:08:09.000Z");
      assert.equal(await ma.set({ tenant: "t", id: 1 }, when), undefined);
      const old = await mb.set({ tenant: "t", id: 1 }, new Date(0));
      assert.ok(old instanceof Date);
      assert.equal(old.getTime(), when.getTime());
      assert.equal(await ma.updateIf({ tenant: "t", id: 1 }, when, new Date(0)), true);
      const stored = db.toMap();
      assert.equal(stored.size, 1);
      const [[key, value]] = [...stored];
      assert.deepEqual(key, { tenant: "t", id: 1 });
      assert.ok(value instanceof Date);
      await waitFor(() => inserted.length === 1, { timeoutMs: 3000 });
      assert.deepEqual(inserted[0][0], { tenant: "t", id: 1 });
      assert.equal(inserted[0][1].getTime(), when.getTime());
      ma.close();
      mb.close();
    });

    it("custom equalValues decides updateIf and removeIf", async () => {
      const db = new MemoryRemoteStore<string, { v: number; at: number }>();
      const id = nextId("equal");
      const map = cluster.leader()!.createRemoteMap<string, { v: number; at: number }>({
        mapId: id,
        store: db,
        equalValues: (x, y) => x.v === y.v,
      });
      await map.set("k", { v: 1, at: 100 });
      assert.equal(await map.updateIf("k", { v: 2, at: 200 }, { v: 1, at: 0 }), true);
      assert.equal(await map.removeIf("k", { v: 1, at: 200 }), false);
      assert.equal(await map.removeIf("k", { v: 2, at: 0 }), true);
      map.close();
    });

    it("a remote map created late on a peer reads the store and hears later events", async () => {
      const id = nextId("late");
      const db = new MemoryRemoteStore<string, number>();
      // the late peer is a follower: only the leader executes, and it must have the map
      const leader = cluster.leader()!;
      const late = cluster.peers.find((p) => p !== leader)!;
      const other = cluster.peers.find((p) => p !== leader && p !== late)!;
      const ml = leader.createRemoteMap<string, number>({ mapId: id, store: new GatedStore(db) });
      const mo = other.createRemoteMap<string, number>({ mapId: id, store: new GatedStore(db) });
      await mo.set("zero", 0);
      const mlate = late.createRemoteMap<string, number>({ mapId: id, store: new GatedStore(db) });
      await mlate.ready;
      assert.equal(await mlate.get("zero"), 0);
      const log = recordEvents(mlate);
      await mo.set("zero", 1);
      await waitFor(() => log.length === 1, { timeoutMs: 3000 });
      assert.deepEqual(log, [`update "zero" 0->1`]);
      for (const m of [ml, mo, mlate]) m.close();
    });

    it("a store that fails is retried; the operation still executes once and errors are reported", async () => {
      const { db, stores, maps } = remoteMaps<string, number>([a, b, c], nextId("failing"));
      const errors: Error[] = [];
      const onError = (e: Error) => errors.push(e);
      for (const p of [a, b, c]) p.on("error", onError);
      for (const s of stores) s.failWrites = 2;
      try {
        assert.equal(await maps[1].insert("k", 1), undefined);
        assert.ok(errors.length >= 2, `${errors.length} errors reported`);
        assert.ok(errors[0] instanceof HamokError);
        assert.match((errors[0].cause as Error).message, /unavailable/);
        assert.deepEqual(db.executionLog.length, 1);
      } finally {
        for (const p of [a, b, c]) p.off("error", onError);
      }
      for (const m of maps) m.close();
    });

    it("an operation waits while the leader has no remote map, and runs once one is created", async () => {
      const leader = cluster.leader()!;
      const follower = cluster.peers.find((p) => p !== leader)!;
      const id = nextId("no-executor");
      const db = new MemoryRemoteStore<string, number>();
      const mf = follower.createRemoteMap<string, number>({ mapId: id, store: new GatedStore(db) });
      const error = await mf.set("k", 1, { requestId: `${id}-r1`, timeoutMs: 300 }).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(error instanceof HamokOutcomeUnknownError, String(error));
      assert.equal(error.requestId, `${id}-r1`);
      assert.match(error.message, /not executed/);
      assert.equal(mf.pendingOperations, 1);
      assert.equal(db.executionLog.length, 0);
      const ml = leader.createRemoteMap<string, number>({ mapId: id, store: new GatedStore(db) });
      // the retry resolves with the result of the one execution
      assert.equal(await mf.set("k", 1, { requestId: `${id}-r1` }), undefined);
      assert.equal(db.executionLog.length, 1);
      assert.equal(mf.pendingOperations, 0);
      ml.close();
      mf.close();
    });

    it("misuse gets typed errors", async () => {
      const id = nextId("misuse");
      const db = new MemoryRemoteStore<string, number>();
      const map = a.createRemoteMap<string, number>({ mapId: id, store: db });
      assert.throws(() => a.createRemoteMap<string, number>({ mapId: id, store: db }), HamokConfigError);
      assert.equal(a.getOrCreateRemoteMap<string, number>({ mapId: id, store: db }), map);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => a.createRemoteMap({ mapId: "x" } as any), HamokConfigError);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => a.createRemoteMap({ mapId: "x", store: {} as any }), HamokConfigError);
      assert.throws(() => a.createRemoteMap({ mapId: "", store: db }), HamokConfigError);
      assert.throws(
        () => a.createRemoteMap({ mapId: "x", store: db, keyCodec: {} as unknown as ValueCodec<string> }),
        HamokConfigError,
      );
      assert.throws(() => a.createRemoteMap({ mapId: "x", store: db, maxBatchSize: 0 }), HamokConfigError);
      await assert.rejects(map.set("k", undefined as unknown as number), HamokConfigError);
      await assert.rejects(map.set(undefined as unknown as string, 1), HamokConfigError);
      await assert.rejects(map.set("k", 1, { requestId: "" }), HamokConfigError);
      // deno-lint-ignore no-explicit-any
      await assert.rejects(map.set("k", (() => 1) as any), HamokCodecError);
      map.close();
      assert.equal(map.closed, true);
      await assert.rejects(map.set("k", 1), HamokClosedError);
      await assert.rejects(map.get("k"), HamokClosedError);
      const again = a.createRemoteMap<string, number>({ mapId: id, store: db });
      again.close();
    });
  });
}

/** Leader failures while the store is being written (each test runs its own cluster). */
export function remoteMapFaultSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokRemoteMap across leader changes", () => {
    it("a write held back by a dying leader is not executed twice, whichever write lands first", async () => {
      for (const zombieFirst of [false, true]) {
        const cluster = await startCluster(await makeFactory(), ["r1", "r2", "r3"], {
          clusterId: nextId("zombie"),
          requestTimeoutInMs: 8000,
        });
        try {
          const leader = cluster.leader()!;
          const survivors = cluster.peers.filter((p) => p !== leader);
          const { db, stores, maps } = remoteMaps<string, number>(cluster.peers, nextId("zombie-map"));
          const leaderStore = stores[cluster.peers.indexOf(leader)];
          const survivorMaps = survivors.map((p) => maps[cluster.peers.indexOf(p)]);
          const logs = survivorMaps.map((m) => recordEvents(m));
          await survivorMaps[0].set("before", 0);
          leaderStore.holdWrites = true;
          const results: Promise<unknown>[] = [];
          for (let i = 0; i < 30; i++) {
            const m = survivorMaps[i % 2];
            results.push(i % 3 === 0 ? m.insert(`k${i % 10}`, i) : m.set(`k${i % 10}`, i));
          }
          await waitFor(() => leaderStore.held.length === 1, {
            timeoutMs: 5000,
            message: "the leader's write",
          });
          await cluster.crash(leader);
          const zombie = leaderStore.held[0];
          if (zombieFirst) {
            assert.equal(await zombie.release(), true, "the dead leader's write landed first");
          } else {
            await waitFor(() => db.acceptedWrites >= 2, {
              timeoutMs: 8000,
              message: "the new leader's write",
            });
            assert.equal(await zombie.release(), false, "the dead leader's write is refused");
          }
          const settled = await Promise.all(results);
          assert.equal(settled.length, 30);
          noDuplicates(db.executionLog);
          assert.equal(db.executionLog.length, 31, "every committed operation executed");
          await Promise.all(survivors.map((p) => p.waitUntilCommitHead()));
          // the store holds, for every key, the value of the last write in log order
          const expected = new Map<string, number>([["before", 0]]);
          const events = logs[0];
          for (const line of events) {
            const m = /^(insert|update) "(\w+)"(?:=| \S+->)(\d+)$/.exec(line);
            if (m) expected.set(m[2], Number(m[3]));
          }
          assert.deepEqual(db.toMap(), expected);
          assert.deepEqual(logs[1], logs[0], "both survivors saw the same events");
          for (const m of maps) m.close();
        } finally {
          await cluster.close();
        }
      }
    });

    it("a leader that dies after writing, before confirming: the new leader reports the results", async () => {
      const cluster = await startCluster(await makeFactory(), ["h1", "h2", "h3"], {
        clusterId: nextId("hang"),
        requestTimeoutInMs: 8000,
      });
      try {
        const leader = cluster.leader()!;
        const follower = cluster.peers.find((p) => p !== leader)!;
        const { db, stores, maps } = remoteMaps<string, number>(cluster.peers, nextId("hang-map"));
        const mf = maps[cluster.peers.indexOf(follower)];
        await mf.set("x", 1);
        stores[cluster.peers.indexOf(leader)].hangAfterWrite = true;
        const pending = [mf.set("x", 2), mf.insert("x", 3), mf.updateIf("x", 4, 2), mf.delete("y")];
        await waitFor(() => db.acceptedWrites === 2, { timeoutMs: 5000, message: "the leader's write" });
        await cluster.crash(leader);
        assert.deepEqual(await Promise.all(pending), [1, 2, true, false]);
        noDuplicates(db.executionLog);
        assert.equal(db.executionLog.length, 5);
        assert.equal(await mf.get("x"), 4);
        for (const m of maps) m.close();
      } finally {
        await cluster.close();
      }
    });

    it("killing the leader during 300 concurrent sets loses no acknowledged write", async () => {
      const cluster = await startCluster(await makeFactory(), ["s1", "s2", "s3"], {
        clusterId: nextId("kill"),
        requestTimeoutInMs: 8000,
      });
      try {
        const leader = cluster.leader()!;
        const { db, maps } = remoteMaps<string, number>(cluster.peers, nextId("kill-map"));
        const writers = cluster.peers.filter((p) => p !== leader).map((p) => maps[cluster.peers.indexOf(p)]);
        const acknowledged = new Map<string, number>();
        const writes: Promise<void>[] = [];
        for (let i = 0; i < 300; i++) {
          const key = `k${i}`;
          writes.push(
            writers[i % 2].set(key, i).then(() => {
              acknowledged.set(key, i);
            }, () => {}),
          );
          if (i === 100) await cluster.crash(leader);
        }
        await Promise.all(writes);
        assert.ok(acknowledged.size >= 290, `only ${acknowledged.size} sets acknowledged`);
        noDuplicates(db.executionLog);
        const content = db.toMap();
        for (const [key, value] of acknowledged) {
          assert.equal(content.get(key), value, `acknowledged ${key} lost`);
        }
        for (const m of maps) m.close();
      } finally {
        await cluster.close();
      }
    });
  });
}
