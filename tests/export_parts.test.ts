import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokClosedError, HamokConfigError } from "../src/errors.ts";
import type { HamokSnapshot } from "../src/hamok.ts";
import { memoryTransports, startCluster } from "./_helpers/cluster.ts";
import { decodeCbor } from "../src/codec/cbor.ts";

describe("Hamok.exportParts / importParts", () => {
  it("export a large state in parts that yield, and import them into another cluster", async () => {
    const source = await startCluster(memoryTransports(), ["a"]);
    const target = await startCluster(memoryTransports(), ["b"]);
    try {
      const [a] = source.peers;
      const [b] = target.peers;
      const map = a.createMap<string, number>({ mapId: "big" });
      const entries: [string, number][] = Array.from({ length: 2500 }, (_, i) => [`k${i}`, i]);
      for (let i = 0; i < entries.length; i += 500) await map.setAll(entries.slice(i, i + 500));
      const record = a.createRecord<{ x: number; y: string }>({ recordId: "rec" });
      await record.set("x", 1);
      await record.set("y", "why");
      await a.createEmitter({ emitterId: "ev" }).subscribe("e", () => {});

      const parts: HamokSnapshot[] = [];
      let turns = 0;
      let counting = true;
      const tick = () => {
        turns++;
        if (counting) setImmediate(tick);
      };
      setImmediate(tick);
      for await (const part of a.exportParts({ maxEntriesPerPart: 1000 })) parts.push(part);
      counting = false;
      // emitters and queues, then the map in 1000-entry parts, then the record
      assert.deepEqual(
        parts.map((p) => [p.emitters.length > 0, p.maps?.[0]?.keys.length, p.records?.length]),
        [
          [true, undefined, undefined],
          [false, 1000, undefined],
          [false, 1000, undefined],
          [false, 500, undefined],
          [false, undefined, 1],
        ],
      );
      assert.ok(turns >= 4, `the event loop ran between parts (${turns} turns)`);

      await b.importParts(parts);
      const copy = b.createMap<string, number>({ mapId: "big" });
      assert.deepEqual([...copy.entries()], entries);
      assert.deepEqual(b.createRecord<{ x: number; y: string }>({ recordId: "rec" }).instance, {
        x: 1,
        y: "why",
      });
      assert.deepEqual(b.createEmitter({ emitterId: "ev" }).subscriptions.getPeerIds("e"), ["a"]);
    } finally {
      await source.close();
      await target.close();
    }
  });

  it("writes during an export do not break it; a bad option and a close are typed errors", async () => {
    const cluster = await startCluster(memoryTransports(), ["a"]);
    try {
      const [a] = cluster.peers;
      const map = a.createMap<string, number>({ mapId: "m" });
      await map.setAll(Array.from({ length: 30 }, (_, i) => [`k${i}`, i] as [string, number]));
      const seen: string[] = [];
      for await (const part of a.exportParts({ maxEntriesPerPart: 10 })) {
        for (const key of part.maps?.[0]?.keys ?? []) seen.push(decodeCbor(key as Uint8Array) as string);
        if (part.maps !== undefined && seen.length === 10) {
          await map.delete("k15"); // not exported yet: never shows
          await map.set("late", 99); // inserted after: comes in a later part
        }
      }
      assert.equal(seen.length, 30); // 29 of the first 30 keys and "late", each once
      assert.equal(new Set(seen).size, 30);
      assert.ok(!seen.includes("k15") && seen.includes("late") && seen.includes("k29"));

      await assert.rejects(async () => {
        for await (const _ of a.exportParts({ maxEntriesPerPart: 0 })) { /* nothing */ }
      }, HamokConfigError);
      await assert.rejects(async () => {
        for await (const part of a.exportParts({ maxEntriesPerPart: 5 })) {
          if (part.maps !== undefined) a.close();
        }
      }, HamokClosedError);
    } finally {
      await cluster.close();
    }
  });
});
