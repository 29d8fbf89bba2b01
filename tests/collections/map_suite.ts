/**
 * The HamokMap behaviour suite, run with three peers on the memory transport and on a real
 * nats-server (see map_memory.test.ts and map_nats.test.ts).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokConflictError,
  HamokError,
  HamokNoLeaderError,
  HamokOutcomeUnknownError,
} from "../../src/errors.ts";
import type { Hamok } from "../../src/hamok.ts";
import type { HamokMap } from "../../src/collections/map.ts";
import type { ValueCodec } from "../../src/codec/value_codec.ts";
import { startCluster, type TestCluster, type TransportFactory } from "../_helpers/cluster.ts";

let mapCounter = 0;
const nextId = (base: string) => `${base}-${++mapCounter}`;

/** Every peer's view of a map: [key, value, revision] in iteration order. */
export function viewOf<K, V>(map: HamokMap<K, V>): [K, V, number][] {
  return [...map.keys()].map((k) => [k, map.get(k) as V, map.getEntry(k)!.revision]);
}

/** Waits until every peer applied everything committed so far. */
export async function allCaughtUp(peers: Hamok[]): Promise<void> {
  await Promise.all(peers.filter((p) => !p.closed).map((p) => p.waitUntilCommitHead(5000)));
}

/** A key codec that maps strings to themselves (no CBOR for keys). */
export const stringKeys: ValueCodec<string> = {
  encode: (k) => k,
  decode: (s) => s as string,
};

export function mapSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokMap", () => {
    let cluster: TestCluster;
    let a: Hamok, b: Hamok, c: Hamok;

    before(async () => {
      cluster = await startCluster(await makeFactory(), ["a", "b", "c"]);
      [a, b, c] = cluster.peers;
    });
    after(async () => {
      await cluster?.close();
    });

    it("writes resolve with the documented results and every peer reads them", async () => {
      const id = nextId("basic");
      const [ma, mb, mc] = [a, b, c].map((p) => p.createMap<string, number>({ mapId: id }));
      assert.equal(await ma.set("x", 1), undefined);
      assert.equal(await mb.set("x", 2), 1);
      assert.equal(await mc.insert("x", 3), 2);
      assert.equal(await mc.insert("y", 4), undefined);
      assert.deepEqual(await ma.setAll(new Map([["x", 5], ["z", 6]])), new Map([["x", 2]]));
      assert.deepEqual(await mb.insertAll([["y", 7], ["w", 8]]), new Map([["y", 4]]));
      // the writer reads its own write at once
      assert.equal(mb.get("w"), 8);
      await allCaughtUp(cluster.peers);
      for (const m of [ma, mb, mc]) {
        assert.equal(m.size, 4);
        assert.deepEqual([...m.keys()], ["x", "y", "z", "w"]);
        assert.deepEqual([...m.values()], [5, 4, 6, 8]);
        assert.deepEqual([...m], [["x", 5], ["y", 4], ["z", 6], ["w", 8]]);
        assert.deepEqual(m.getAll(["x", "nope", "w"]), new Map([["x", 5], ["w", 8]]));
        assert.equal(m.has("z"), true);
        assert.equal(m.has("nope"), false);
        assert.equal(m.get("nope"), undefined);
      }
      assert.deepEqual(viewOf(ma), viewOf(mc));
      assert.equal(await mc.delete("z"), true);
      assert.equal(await mc.delete("z"), false);
      assert.equal(await ma.remove("w"), true);
      assert.equal(await ma.remove("w"), false);
      await mb.setAll([["p", 1], ["q", 2], ["r", 3]]);
      assert.deepEqual(await mb.deleteAll(["p", "nope"]), new Set(["p"]));
      assert.deepEqual(await mb.removeAll(["q", "r", "nope"]), new Map([["q", 2], ["r", 3]]));
      assert.deepEqual(await ma.setAll([]), new Map());
      await mc.clear();
      assert.equal(mc.size, 0);
      assert.equal(mc.isEmpty, true);
      await allCaughtUp(cluster.peers);
      assert.equal(ma.size, 0);
      for (const m of [ma, mb, mc]) m.close();
    });

    it("0, '', false and null are values, never absent, also for a map created late", async () => {
      const id = nextId("falsy");
      const ma = a.createMap<string, unknown>({ mapId: id });
      const falsy: [string, unknown][] = [["zero", 0], ["empty", ""], ["no", false], ["nil", null]];
      await ma.setAll(falsy);
      for (const [k, v] of falsy) {
        assert.equal(ma.has(k), true, k);
        assert.equal(ma.get(k), v, k);
        // insert keeps the falsy value and resolves with it
        assert.equal(await ma.insert(k, "other"), v, k);
        assert.equal(ma.get(k), v, k);
      }
      assert.deepEqual(ma.getAll(["zero", "empty", "no", "nil", "absent"]), new Map(falsy));
      assert.deepEqual(await ma.insertAll(falsy), new Map(falsy));
      // a map object created later on another peer shows them
      await allCaughtUp(cluster.peers);
      const mc = c.createMap<string, unknown>({ mapId: id });
      await mc.ready;
      assert.deepEqual([...mc], falsy);
      assert.deepEqual(mc.getAll(["zero", "empty", "no", "nil"]), new Map(falsy));
      // conditional writes work against falsy values
      assert.equal(await mc.updateIf("zero", 1, 0), true);
      assert.equal(await mc.updateIf("empty", "x", false), false);
      assert.equal(await mc.removeIf("no", false), true);
      assert.equal(await mc.removeIf("nil", 0), false);
      assert.equal(mc.has("nil"), true);
      assert.equal(await mc.set("nil", 0), null);
      assert.equal(await mc.set("nil", undefined), 0);
      assert.equal(mc.has("nil"), true);
      assert.equal(mc.get("nil"), undefined);
      ma.close();
      mc.close();
    });

    it("concurrent insert of one key from every peer has exactly one winner", async () => {
      const id = nextId("insert-race");
      const maps = [a, b, c].map((p) => p.createMap<string, string>({ mapId: id, keyCodec: stringKeys }));
      for (let round = 0; round < 10; round++) {
        const key = `k${round}`;
        const results = await Promise.all(maps.map((m, i) => m.insert(key, `from-${i}`)));
        const winners = results.map((r, i) => r === undefined ? i : -1).filter((i) => i >= 0);
        assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(results)}`);
        const value = `from-${winners[0]}`;
        results.forEach((r, i) => {
          if (i !== winners[0]) assert.equal(r, value, `round ${round}: loser ${i} got ${r}`);
        });
        await allCaughtUp(cluster.peers);
        for (const m of maps) assert.equal(m.get(key), value);
      }
      for (const m of maps) m.close();
    });

    it("concurrent updateIf from every peer has exactly one true", async () => {
      const id = nextId("cas-race");
      const maps = [a, b, c].map((p) => p.createMap<string, number>({ mapId: id }));
      await maps[0].set("counter", 0);
      await allCaughtUp(cluster.peers);
      for (let round = 0; round < 10; round++) {
        const current = maps[0].get("counter", { consistency: "linearizable" });
        const seen = await current;
        const results = await Promise.all(maps.map((m) => m.updateIf("counter", seen! + 1, seen!)));
        assert.equal(results.filter((r) => r).length, 1, `round ${round}: ${results}`);
        await allCaughtUp(cluster.peers);
        for (const m of maps) assert.equal(m.get("counter"), round + 1);
      }
      for (const m of maps) m.close();
    });

    it("updateIf and removeIf resolve false on a mismatch instead of timing out", async () => {
      const id = nextId("mismatch");
      const mb = b.createMap<string, number>({ mapId: id, requestTimeoutInMs: 2000 });
      await mb.set("k", 1);
      assert.equal(await mb.removeIf("k", 2), false);
      assert.equal(await mb.updateIf("k", 3, 2), false);
      assert.equal(await mb.updateIf("absent", 3, 2), false);
      assert.equal(await mb.removeIf("absent", 1), false);
      assert.equal(mb.has("absent"), false);
      assert.equal(mb.get("k"), 1);
      assert.equal(await mb.removeIf("k", 1), true);
      assert.equal(mb.has("k"), false);
      mb.close();
    });

    it("every peer sees the same events in the same order, with the same revisions", async () => {
      const id = nextId("events");
      const logs = new Map<string, string[]>();
      const maps = [a, b, c].map((p) => {
        const m = p.createMap<string, number>({ mapId: id });
        const log: string[] = [];
        logs.set(p.localPeerId, log);
        m.on("insert", (k, v, r) => log.push(`insert ${k}=${v} @${r}`));
        m.on("update", (k, o, n, r) => log.push(`update ${k}=${o}>${n} @${r}`));
        m.on("remove", (k, v, r) => log.push(`remove ${k}=${v} @${r}`));
        m.on("clear", (r) => log.push(`clear @${r}`));
        return m;
      });
      const [ma, mb, mc] = maps;
      await Promise.all([
        (async () => {
          for (let i = 0; i < 20; i++) await ma.set(`k${i % 5}`, i);
        })(),
        (async () => {
          for (let i = 0; i < 20; i++) await mb.insert(`k${i % 7}`, 100 + i);
        })(),
        (async () => {
          for (let i = 0; i < 10; i++) await mc.delete(`k${i % 5}`);
          await mc.setAll([["x", 1], ["y", 2]]);
        })(),
      ]);
      await mb.clear();
      await mb.set("after", 1);
      await allCaughtUp(cluster.peers);
      const [la, lb, lc] = [...logs.values()];
      assert.ok(la.length > 20, `only ${la.length} events`);
      assert.deepEqual(lb, la);
      assert.deepEqual(lc, la);
      // revisions grow with the log, and the last event's revision is the entry's revision
      const revisions = la.map((l) => Number(l.split("@")[1]));
      for (let i = 1; i < revisions.length; i++) assert.ok(revisions[i] >= revisions[i - 1]);
      assert.equal(revisions.at(-1), mc.getEntry("after")!.revision);
      assert.equal(ma.revision, mc.revision);
      for (const m of maps) m.close();
    });

    it("set and delete with ifRevision are compare-and-set by revision", async () => {
      const id = nextId("revision");
      const ma = a.createMap<string, string>({ mapId: id });
      const mb = b.createMap<string, string>({ mapId: id });
      // 0 = only if absent
      assert.equal(await ma.set("k", "v1", { ifRevision: 0 }), undefined);
      const first = ma.getEntry("k")!;
      assert.equal(first.value, "v1");
      assert.ok(first.revision > 0);
      const conflict = await ma.set("k", "again", { ifRevision: 0 }).then(() => undefined, (e) => e);
      assert.ok(conflict instanceof HamokConflictError, String(conflict));
      assert.equal(conflict.code, "HAMOK_CONFLICT");
      assert.equal(conflict.expectedRevision, 0);
      assert.equal(conflict.actualRevision, first.revision);
      // the right revision wins once; the stale one loses
      await b.waitUntilCommitHead();
      const [one, two] = await Promise.allSettled([
        ma.set("k", "from-a", { ifRevision: first.revision }),
        mb.set("k", "from-b", { ifRevision: first.revision }),
      ]);
      const outcomes = [one, two].map((r) => r.status);
      assert.deepEqual([...outcomes].sort(), ["fulfilled", "rejected"]);
      const won = one.status === "fulfilled" ? "from-a" : "from-b";
      const winner = (one.status === "fulfilled" ? one : two) as PromiseFulfilledResult<unknown>;
      const loser = (one.status === "rejected" ? one : two) as PromiseRejectedResult;
      assert.ok(loser.reason instanceof HamokConflictError);
      assert.equal(winner.value, "v1");
      await allCaughtUp(cluster.peers);
      const second = mb.getEntry("k")!;
      assert.equal(second.value, won);
      assert.ok(second.revision > first.revision);
      // delete by revision
      await assert.rejects(ma.delete("k", { ifRevision: first.revision }), HamokConflictError);
      assert.equal(ma.get("k"), won);
      assert.equal(await ma.delete("k", { ifRevision: second.revision }), true);
      assert.equal(await ma.delete("k", { ifRevision: 0 }), false);
      await assert.rejects(ma.delete("k", { ifRevision: second.revision }), HamokConflictError);
      await assert.rejects(ma.set("k", "x", { ifRevision: -1 }), HamokConfigError);
      await assert.rejects(ma.set("k", "x", { ifRevision: 1.5 }), HamokConfigError);
      ma.close();
      mb.close();
    });

    it("linearizable reads see writes completed on another peer", async () => {
      const id = nextId("linearizable");
      const ma = a.createMap<string, number>({ mapId: id });
      const mc = c.createMap<string, number>({ mapId: id });
      for (let i = 0; i < 20; i++) {
        await ma.set("k", i);
        assert.equal(await mc.get("k", { consistency: "linearizable" }), i);
        assert.deepEqual(await mc.getEntry("k", { consistency: "linearizable" }), ma.getEntry("k"));
      }
      await ma.set("j", 7);
      assert.equal(await mc.has("j", { consistency: "linearizable" }), true);
      assert.deepEqual(await mc.getAll(["j"], { consistency: "linearizable" }), new Map([["j", 7]]));
      assert.deepEqual(await mc.keys({ consistency: "linearizable" }), ["k", "j"]);
      assert.deepEqual(await mc.values({ consistency: "linearizable", timeoutMs: 2000 }), [19, 7]);
      assert.deepEqual(await mc.entries({ consistency: "linearizable" }), [["k", 19], ["j", 7]]);
      assert.equal(mc.get("k", { consistency: "local" }), 19);
      assert.throws(() => mc.get("k", { consistency: "eventual" as "local" }), HamokConfigError);
      ma.close();
      mc.close();
      await assert.rejects(mc.get("k", { consistency: "linearizable" }), HamokClosedError);
    });

    it("export and import carry binary keys and values intact", async () => {
      const id = nextId("export");
      const binary: ValueCodec<string> = {
        // deliberately not UTF-8: every byte inverted
        encode: (s) => new TextEncoder().encode(s).map((x) => 255 - x),
        decode: (d) => new TextDecoder().decode((d as Uint8Array).map((x) => 255 - x)),
      };
      const ma = a.createMap<string, Uint8Array>({ mapId: id, keyCodec: binary });
      await ma.set("one", new Uint8Array([0xff, 0x00, 0x80]));
      await ma.set("two", new Uint8Array([]));
      const snapshot = ma.export();
      assert.equal(snapshot.mapId, id);
      assert.equal(snapshot.keys.length, 2);
      assert.deepEqual(snapshot.revisions, [ma.getEntry("one")!.revision, ma.getEntry("two")!.revision]);
      // import into another map through the peer-level snapshot
      const target = nextId("import");
      const whole = a.export();
      const mine = whole.maps!.find((m) => m.mapId === id)!;
      assert.deepEqual(mine.keys, snapshot.keys);
      await b.import({ ...whole, emitters: [], queues: [], records: [], maps: [{ ...mine, mapId: target }] });
      const mb = b.createMap<string, Uint8Array>({ mapId: target, keyCodec: binary });
      assert.deepEqual([...mb], [["one", new Uint8Array([0xff, 0x00, 0x80])], ["two", new Uint8Array([])]]);
      // map.import merges: keeps keys it does not mention
      await mb.set("three", new Uint8Array([3]));
      await mb.import({ ...snapshot, mapId: target, keys: [snapshot.keys[0]], values: [snapshot.values[1]] });
      assert.deepEqual([...mb.keys()], ["one", "two", "three"]);
      assert.deepEqual(mb.get("one"), new Uint8Array([]));
      await assert.rejects(mb.import(snapshot), HamokConfigError); // other map id
      await assert.rejects(
        mb.import({ mapId: target, keys: ["a"], values: [] }),
        HamokConfigError,
      );
      // values read from the map are copies: mutating them changes nothing
      const got = mb.get("three")!;
      got[0] = 99;
      assert.deepEqual(mb.get("three"), new Uint8Array([3]));
      ma.close();
      mb.close();
    });

    it("codec failures reject with HamokCodecError and write nothing", async () => {
      const id = nextId("codec");
      const picky: ValueCodec<number> = {
        encode: (n) => {
          if (n < 0) throw new RangeError("negative");
          return String(n);
        },
        decode: (s) => Number(s),
      };
      const ma = a.createMap<string, number>({ mapId: id, valueCodec: picky, keyCodec: stringKeys });
      assert.equal(await ma.set("k", 1), undefined);
      const error = await ma.set("k", -1).then(() => undefined, (e) => e);
      assert.ok(error instanceof HamokCodecError, String(error));
      assert.ok(error.cause instanceof RangeError);
      await assert.rejects(ma.insert("j", -1), HamokCodecError);
      await assert.rejects(ma.updateIf("k", 2, -1), HamokCodecError);
      assert.throws(() => ma.get(Symbol("no") as unknown as string), HamokCodecError);
      await a.waitUntilCommitHead();
      assert.deepEqual([...ma], [["k", 1]]);
      assert.equal(ma.getEntry("k")!.value, 1);
      ma.close();
    });

    it("a listener that throws is reported; the other listeners still run", async () => {
      const id = nextId("listener");
      const mb = b.createMap<string, number>({ mapId: id });
      const errors: Error[] = [];
      const onError = (e: Error) => errors.push(e);
      b.on("error", onError);
      const got: string[] = [];
      mb.on("insert", () => {
        throw new Error("boom");
      });
      mb.on("insert", (k) => got.push(k));
      const once: string[] = [];
      mb.once("insert", (k) => once.push(k));
      await mb.set("k1", 1);
      await mb.set("k2", 2);
      b.off("error", onError);
      assert.deepEqual(got, ["k1", "k2"]);
      assert.deepEqual(once, ["k1"]);
      assert.equal(errors.length, 2);
      assert.ok(errors[0] instanceof HamokError);
      assert.equal((errors[0] as HamokError).code, "HAMOK_LISTENER");
      assert.equal((errors[0].cause as Error).message, "boom");
      const off = (k: string) => got.push(`off ${k}`);
      mb.on("insert", off).off("insert", off);
      await mb.set("k3", 3);
      assert.deepEqual(got, ["k1", "k2", "k3"]);
      mb.close();
    });

    it("misuse gets typed errors; getOrCreateMap returns the live map", async () => {
      const id = nextId("misuse");
      assert.throws(() => a.createMap({ mapId: "" }), HamokConfigError);
      assert.throws(() => a.createMap(null as unknown as { mapId: string }), HamokConfigError);
      assert.throws(() => a.createMap({ mapId: id, requestTimeoutInMs: 0 }), HamokConfigError);
      assert.throws(
        () => a.createMap({ mapId: id, keyCodec: {} as ValueCodec<unknown> }),
        HamokConfigError,
      );
      const m = a.createMap<string, number>({ mapId: id });
      assert.throws(() => a.createMap({ mapId: id }), HamokConfigError);
      assert.equal(a.getOrCreateMap({ mapId: id }), m);
      assert.throws(() => m.on("insert", "nope" as unknown as () => void), HamokConfigError);
      await assert.rejects(m.set("k", 1, { timeoutMs: -5 }), HamokConfigError);
      await assert.rejects(m.set("k", 1, { requestId: "" }), HamokConfigError);
      await m.set("k", 1);
      const closes: number[] = [];
      m.on("close", () => closes.push(1));
      m.close();
      m.close();
      assert.deepEqual(closes, [1]);
      assert.equal(m.closed, true);
      await assert.rejects(m.set("k", 2), HamokClosedError);
      await assert.rejects(m.clear(), HamokClosedError);
      assert.throws(() => m.get("k"), HamokClosedError);
      assert.throws(() => m.size, HamokClosedError);
      // the id is free again, and the content is still there
      const again = a.getOrCreateMap<string, number>({ mapId: id });
      assert.notEqual(again, m);
      assert.equal(again.get("k"), 1);
      again.close();
    });
  });
}

/** Scenarios with their own clusters: a peer joining after compaction, a leader killed under load. */
export function mapFaultSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokMap under faults", () => {
    it("a peer that joins after log compaction sees the whole map after ready", async () => {
      const cluster = await startCluster(await makeFactory(), ["a", "b", "c"], { snapshotThreshold: 20 });
      try {
        const [a, b] = cluster.peers;
        const ma = a.createMap<string, unknown>({ mapId: "compacted", keyCodec: stringKeys });
        const mb = b.createMap<string, unknown>({ mapId: "compacted", keyCodec: stringKeys });
        for (let i = 0; i < 60; i++) await (i % 2 === 0 ? ma : mb).set(`k${i % 25}`, i % 4 === 0 ? 0 : i);
        await ma.setAll([["k0", 0], ["empty", ""], ["no", false], ["nil", null]]);
        await mb.delete("k3");
        await allCaughtUp(cluster.peers);
        const d = await cluster.add("d");
        await d.join({ timeoutMs: 10_000 });
        const md = d.createMap<string, unknown>({ mapId: "compacted", keyCodec: stringKeys });
        await md.ready;
        assert.equal(md.size, 27);
        assert.deepEqual(viewOf(md), viewOf(ma));
        assert.equal(md.get("empty"), "");
        assert.equal(md.get("no"), false);
        assert.equal(md.get("nil"), null);
        assert.equal(md.get("k0"), 0);
        // and it follows new writes with events
        const inserted: string[] = [];
        md.on("insert", (k) => inserted.push(k));
        await ma.set("late", 1);
        await d.waitUntilCommitHead();
        assert.deepEqual(inserted, ["late"]);
      } finally {
        await cluster.close();
      }
    });

    it("killing the leader during 1,000 sets (64 in flight) loses no acknowledged write", async () => {
      await failover(await makeFactory(), { inFlight: 64, crashAfterAcks: 300 });
    });

    it("killing the leader as the first of 1,000 sets in flight at once is acknowledged loses none", async () => {
      // followers of three voters commit on the append: at the first acknowledgement the leader
      // itself may not know yet that anything is committed
      await failover(await makeFactory(), { inFlight: 1000, crashAfterAcks: 1 });
    });
  });
}

/**
 * 1,000 sets of distinct keys from the two followers, `inFlight` at any time; the leader is killed
 * once `crashAfterAcks` sets were acknowledged. Every acknowledged write must be on every surviving
 * peer; writes whose outcome is unknown are retried with their request id; in the end both
 * survivors hold exactly the 1,000 entries, identically (keys, values, revisions, order).
 */
async function failover(
  factory: TransportFactory,
  options: { inFlight: number; crashAfterAcks: number },
): Promise<void> {
  const cluster = await startCluster(factory, ["a", "b", "c"]);
  try {
    const leader = cluster.leader()!;
    const writers = cluster.peers.filter((p) => p !== leader);
    const mapId = "failover";
    const maps = writers.map((p) => p.createMap<string, number>({ mapId, keyCodec: stringKeys }));
    const results: PromiseSettledResult<number | undefined>[] = [];
    const writerOf: HamokMap<string, number>[] = [];
    let next = 0;
    let acknowledged = 0;
    let inFlight = 0;
    let inFlightAtCrash = -1;
    let crashed = false;
    let acknowledgedAtCrash = -1;
    const crash = () => {
      if (crashed) return;
      crashed = true;
      inFlightAtCrash = inFlight;
      acknowledgedAtCrash = acknowledged;
      void cluster.crash(leader);
    };
    const worker = async (m: HamokMap<string, number>) => {
      while (next < 1000) {
        const i = next++;
        writerOf[i] = m;
        inFlight++;
        try {
          results[i] = { status: "fulfilled", value: await m.set(`k${i}`, i, { timeoutMs: 15_000 }) };
          acknowledged++;
        } catch (reason) {
          results[i] = { status: "rejected", reason };
        } finally {
          inFlight--;
        }
        if (acknowledged >= options.crashAfterAcks) crash();
      }
    };
    const workers = maps.flatMap((m) => Array.from({ length: options.inFlight / 2 }, () => worker(m)));
    await Promise.all(workers);
    assert.ok(crashed, "the leader was not killed");
    assert.ok(inFlightAtCrash > 0, "no write was in flight when the leader died");
    assert.ok(acknowledged > acknowledgedAtCrash, "no write was acknowledged after the leader died");
    const survivors = cluster.peers.filter((p) => !p.closed);
    await cluster.settled(10_000);
    // retry the writes whose outcome is unknown with their request id: each applies at most once
    let retried = 0;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.status === "fulfilled") {
        assert.equal(r.value, undefined, `k${i} had a value before its first write`);
        continue;
      }
      assert.ok(
        r.reason instanceof HamokOutcomeUnknownError || r.reason instanceof HamokNoLeaderError,
        `k${i}: ${r.reason}`,
      );
      const requestId = r.reason instanceof HamokOutcomeUnknownError ? r.reason.requestId : undefined;
      await writerOf[i].set(`k${i}`, i, { requestId, timeoutMs: 15_000 });
      retried++;
    }
    await allCaughtUp(survivors);
    const views = maps.map((m) => viewOf(m));
    assert.equal(views[0].length, 1000, `${retried} retried`);
    assert.deepEqual(views[1], views[0]);
    const final = new Map(views[0].map(([k, v]) => [k, v]));
    for (let i = 0; i < 1000; i++) assert.equal(final.get(`k${i}`), i, `k${i}`);
  } finally {
    await cluster.close();
  }
}
