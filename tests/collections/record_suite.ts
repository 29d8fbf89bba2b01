/**
 * The HamokRecord behaviour suite, run with three peers on the memory transport and on a real
 * nats-server (see record_memory.test.ts and record_nats.test.ts).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokConflictError,
  HamokTimeoutError,
} from "../../src/errors.ts";
import type { Hamok } from "../../src/hamok.ts";
import type { ValueCodec } from "../../src/codec/value_codec.ts";
import { startCluster, type TestCluster, type TransportFactory } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { allCaughtUp } from "./map_suite.ts";

type Job = {
  owner?: string;
  state: "idle" | "running" | "done";
  runs: number;
  note?: string | null;
  flag?: boolean;
  since?: Date;
};

let recordCounter = 0;
const nextId = (base: string) => `${base}-${++recordCounter}`;

const dateCodec: ValueCodec<Date> = {
  encode: (d) => d.toISOString(),
  decode: (s) => new Date(s as string),
};

export function recordSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokRecord", () => {
    let cluster: TestCluster;
    let a: Hamok, b: Hamok, c: Hamok;

    before(async () => {
      cluster = await startCluster(await makeFactory(), ["a", "b", "c"]);
      [a, b, c] = cluster.peers;
    });
    after(async () => {
      await cluster?.close();
    });

    it("initialObject is inserted field by field, only where absent", async () => {
      const id = nextId("initial");
      const ra = a.createRecord<Job>({ recordId: id, initialObject: { state: "idle", runs: 0 } });
      await ra.ready;
      assert.deepEqual(ra.instance, { state: "idle", runs: 0 });
      await ra.set("runs", 3);
      const rb = b.createRecord<Job>({
        recordId: id,
        initialObject: { state: "running", runs: 100, flag: false, note: undefined },
      });
      await rb.ready;
      assert.deepEqual(rb.instance, { state: "idle", runs: 3, flag: false });
      await allCaughtUp(cluster.peers);
      const rc = c.createRecord<Job>({ recordId: id });
      await rc.ready;
      assert.deepEqual(rc.instance, { state: "idle", runs: 3, flag: false });
      assert.equal(rc.size, 3);
      for (const r of [ra, rb, rc]) r.close();
    });

    it("field writes resolve with the documented results and fire the same events everywhere", async () => {
      const id = nextId("fields");
      const logs: string[][] = [];
      const records = [a, b, c].map((p) => {
        const r = p.createRecord<Job>({ recordId: id });
        const log: string[] = [];
        logs.push(log);
        r.on("insert", ({ key, value, revision }) => log.push(`insert ${key}=${value} @${revision}`));
        r.on("update", (e) => log.push(`update ${e.key}=${e.oldValue}>${e.newValue} @${e.revision}`));
        r.on("remove", ({ key, value, revision }) => log.push(`remove ${key}=${value} @${revision}`));
        r.on("clear", ({ revision }) => log.push(`clear @${revision}`));
        return r;
      });
      const [ra, rb, rc] = records;
      assert.equal(await ra.set("state", "idle"), undefined);
      assert.equal(await rb.set("state", "running"), "idle");
      assert.equal(await rc.insert("state", "done"), "running");
      assert.equal(await rc.insert("runs", 0), undefined);
      assert.equal(await ra.insert("runs", 5), 0);
      assert.equal(await rb.set("note", null), undefined);
      assert.equal(rb.get("note"), null);
      assert.equal(rb.has("note"), true);
      assert.equal(await rb.updateIf("runs", 1, 0), true);
      assert.equal(await rb.updateIf("runs", 2, 0), false);
      assert.equal(await ra.delete("note"), true);
      assert.equal(await ra.delete("note"), false);
      // undefined is absent: writing it removes the field
      await rc.set("owner", "c");
      assert.equal(await rc.set("owner", undefined), "c");
      assert.equal(rc.has("owner"), false);
      await allCaughtUp(cluster.peers);
      for (const r of records) assert.deepEqual(r.instance, { state: "running", runs: 1 });
      assert.deepEqual(await rc.getInstance({ consistency: "linearizable" }), { state: "running", runs: 1 });
      assert.deepEqual(rc.getInstance(), rc.instance);
      await rb.clear();
      await allCaughtUp(cluster.peers);
      for (const r of records) assert.deepEqual(r.instance, {});
      assert.ok(logs[0].length >= 9, logs[0].join("\n"));
      assert.deepEqual(logs[1], logs[0]);
      assert.deepEqual(logs[2], logs[0]);
      assert.match(logs[0][0], /^insert state=idle @\d+$/);
      assert.match(logs[0].at(-1)!, /^clear @\d+$/);
      for (const r of records) r.close();
    });

    it("concurrent updateInstanceIf from every peer has exactly one true", async () => {
      const id = nextId("take");
      const records = [a, b, c].map((p) => p.createRecord<Job>({ recordId: id }));
      await records[0].insertInstance({ state: "idle", runs: 0 });
      await allCaughtUp(cluster.peers);
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all(records.map((r, i) =>
          r.updateInstanceIf(
            { owner: `peer-${i}`, state: "running", runs: round + 1 },
            { owner: undefined, state: "idle", runs: round },
          )
        ));
        const winners = results.flatMap((ok, i) => ok ? [i] : []);
        assert.equal(winners.length, 1, `round ${round}: ${results}`);
        await allCaughtUp(cluster.peers);
        for (const r of records) {
          assert.deepEqual(r.instance, { owner: `peer-${winners[0]}`, state: "running", runs: round + 1 });
        }
        // the winner hands the job back, atomically
        const released = await records[winners[0]].updateInstanceIf(
          { owner: undefined, state: "idle" },
          { owner: `peer-${winners[0]}` },
        );
        assert.equal(released, true);
        await allCaughtUp(cluster.peers);
      }
      // an empty expectation always holds
      assert.equal(await records[1].updateInstanceIf({ note: "x" }, {}), true);
      for (const r of records) r.close();
    });

    it("concurrent updateIf of one field from every peer has exactly one true", async () => {
      const id = nextId("field-race");
      const records = [a, b, c].map((p) => p.createRecord<Job>({ recordId: id }));
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all(records.map((r, i) => r.updateIf("owner", `p${i}`, undefined)));
        assert.equal(results.filter((x) => x).length, 1, `round ${round}: ${results}`);
        const winner = results.indexOf(true);
        await allCaughtUp(cluster.peers);
        for (const r of records) assert.equal(r.get("owner"), `p${winner}`);
        assert.equal(await records[winner].updateIf("owner", undefined, `p${winner}`), true);
      }
      for (const r of records) r.close();
    });

    it("insertInstance resolves with the fields that already had a value", async () => {
      const id = nextId("insert-instance");
      const rb = b.createRecord<Job>({ recordId: id });
      assert.equal(await rb.insertInstance({ state: "idle", runs: 0 }), undefined);
      assert.deepEqual(await rb.insertInstance({ runs: 9, flag: false, note: undefined }), { runs: 0 });
      assert.deepEqual(rb.instance, { state: "idle", runs: 0, flag: false });
      assert.deepEqual(await rb.insertInstance({ state: "done", flag: true }), {
        state: "idle",
        flag: false,
      });
      assert.equal(await rb.insertInstance({}), undefined);
      rb.close();
    });

    it("per-field codecs decode to values, and codec failures write nothing", async () => {
      const id = nextId("codecs");
      const payloadCodecs = new Map([["since", dateCodec]]);
      const ra = a.createRecord<Job>({ recordId: id, payloadCodecs });
      const rc = c.createRecord<Job>({ recordId: id, payloadCodecs });
      const when = new Date("2024-05-06T07:08:09.000Z");
      await ra.set("since", when);
      await c.waitUntilCommitHead();
      const got = rc.get("since");
      assert.ok(got instanceof Date);
      assert.equal(got.getTime(), when.getTime());
      assert.equal(rc.export().values[0], when.toISOString());
      await assert.rejects(ra.set("since", "not a date" as unknown as Date), HamokCodecError);
      assert.equal(ra.get("since")!.getTime(), when.getTime());
      // objects come back as copies: mutating them changes nothing
      const rb = b.createRecord<{ tags: string[] }>({ recordId: nextId("copies") });
      await rb.set("tags", ["x"]);
      rb.get("tags")!.push("y");
      assert.deepEqual(rb.get("tags"), ["x"]);
      for (const r of [ra, rc, rb]) r.close();
    });

    it("set and delete with ifRevision are compare-and-set by revision", async () => {
      const id = nextId("revision");
      const ra = a.createRecord<Job>({ recordId: id });
      await ra.set("runs", 1, { ifRevision: 0 });
      const entry = ra.getEntry("runs")!;
      assert.equal(entry.value, 1);
      const err = await ra.set("runs", 2, { ifRevision: 0 }).then(() => undefined, (e) => e);
      assert.ok(err instanceof HamokConflictError);
      assert.equal(err.actualRevision, entry.revision);
      assert.equal(await ra.set("runs", 2, { ifRevision: entry.revision }), 1);
      await assert.rejects(ra.delete("runs", { ifRevision: entry.revision }), HamokConflictError);
      assert.deepEqual(
        await ra.getEntry("runs", { consistency: "linearizable" }),
        { value: 2, revision: ra.revision },
      );
      assert.equal(await ra.delete("runs", { ifRevision: ra.getEntry("runs")!.revision }), true);
      assert.equal(await ra.has("runs", { consistency: "linearizable" }), false);
      ra.close();
    });

    it("export and import, also through the peer snapshot", async () => {
      const id = nextId("export");
      const ra = a.createRecord<Job>({ recordId: id });
      await ra.insertInstance({ state: "done", runs: 7, flag: false });
      const snapshot = ra.export();
      assert.equal(snapshot.recordId, id);
      assert.deepEqual(snapshot.keys, ["state", "runs", "flag"]);
      const found = a.export().records!.find((r) => r.recordId === id)!;
      assert.deepEqual(found.keys, snapshot.keys);
      const target = nextId("import");
      await b.import({
        version: 1,
        peerId: "x",
        appliedIndex: 0,
        emitters: [],
        records: [{ ...found, recordId: target }],
      });
      const rb = b.createRecord<Job>({ recordId: target });
      assert.deepEqual(rb.instance, { state: "done", runs: 7, flag: false });
      await rb.set("owner", "b");
      await rb.import({ recordId: target, keys: ["runs"], values: [snapshot.values[0]] });
      assert.deepEqual(rb.instance, {
        state: "done",
        runs: "done" as unknown as number,
        flag: false,
        owner: "b",
      });
      await assert.rejects(rb.import(snapshot), HamokConfigError);
      await assert.rejects(
        rb.import({ recordId: target, keys: [new Uint8Array(1) as unknown as string], values: ["x"] }),
        HamokConfigError,
      );
      ra.close();
      rb.close();
    });

    it("misuse gets typed errors; getOrCreateRecord returns the live record", async () => {
      const id = nextId("misuse");
      assert.throws(() => a.createRecord({ recordId: "" }), HamokConfigError);
      assert.throws(
        () => a.createRecord({ recordId: id, initialObject: 3 as unknown as Job }),
        HamokConfigError,
      );
      assert.throws(
        () =>
          a.createRecord({ recordId: id, payloadCodecs: {} as unknown as Map<string, ValueCodec<unknown>> }),
        HamokConfigError,
      );
      const r = a.createRecord<Job>({ recordId: id, initialObject: { runs: 1 } });
      assert.throws(() => a.createRecord({ recordId: id }), HamokConfigError);
      assert.equal(a.getOrCreateRecord<Job>({ recordId: id }), r);
      await r.ready;
      await assert.rejects(r.insert("note", undefined), HamokConfigError);
      await assert.rejects(r.insertInstance(null as unknown as Job), HamokConfigError);
      assert.throws(() => r.get(1 as unknown as "runs"), HamokConfigError);
      r.close();
      await assert.rejects(r.set("runs", 2), HamokClosedError);
      await assert.rejects(r.updateInstanceIf({}, {}), HamokClosedError);
      assert.throws(() => r.instance, HamokClosedError);
      await assert.rejects(r.ready, HamokClosedError);
    });
  });
}

/** A record created on a peer that has not joined yet waits, then writes its initial object. */
export function recordLifecycleSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokRecord lifecycle", () => {
    it("a record created before its peer joins inserts the initial object once joined", async () => {
      const cluster = await startCluster(await makeFactory(), ["a", "b"]);
      try {
        const [a] = cluster.peers;
        const ra = a.createRecord<Job>({ recordId: "early", initialObject: { state: "idle" } });
        await ra.ready;
        const c = await cluster.add("c");
        const rc = c.createRecord<Job>({
          recordId: "early",
          initialObject: { state: "running", runs: 0 },
          requestTimeoutInMs: 200,
        });
        // not joined: ready times out, but the initialization goes on
        await assert.rejects(rc.ready, HamokTimeoutError);
        await c.join({ timeoutMs: 10_000 });
        await cluster.settled();
        await waitFor(() => rc.has("runs"), { timeoutMs: 5000, message: "the initial object" });
        await rc.ready;
        assert.deepEqual(rc.instance, { state: "idle", runs: 0 });
        await a.waitUntilCommitHead();
        assert.deepEqual(ra.instance, { state: "idle", runs: 0 });
        // closing stops a pending initialization
        const d = await cluster.add("d");
        const rd = d.createRecord<Job>({ recordId: "never", initialObject: { runs: 1 } });
        rd.close();
        await assert.rejects(rd.ready, HamokClosedError);
      } finally {
        await cluster.close();
      }
    });
  });
}
