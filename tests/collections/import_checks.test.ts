/**
 * What enters the log from a queue push or from an import is checked as a map write checks its
 * values, before anything is proposed:
 * - `queue.push` / `pushAll` with the default codec refuse exactly what a map's default value codec
 *   refuses (a `WeakMap` stored as `{}`, a function, a cycle, a lone UTF-16 surrogate...), with
 *   `HamokCodecError`, and nothing of the call enters the log;
 * - `hamok.import(snapshot)` checks every image (shapes: `HamokConfigError`; what the replicated form
 *   cannot carry: `HamokCodecError`) and proposes nothing of a snapshot that fails;
 * - `queue.import`, `map.import` and `record.import` check their snapshots the same way, and decode
 *   every entry with the view's codecs;
 * - record field names with a lone surrogate are refused (UTF-8 would merge them into one field).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { cborValueCodec, type ValueCodec } from "../../src/codec/value_codec.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { HamokCodecError, HamokConfigError, type HamokError } from "../../src/errors.ts";
import type { Hamok } from "../../src/hamok.ts";
import type { HamokSnapshot } from "../../src/collections/kinds.ts";
import { memoryTransports, startCluster, type TestCluster } from "../_helpers/cluster.ts";

let counter = 0;
const nextId = (prefix: string) => `${prefix}-${++counter}`;

type ErrorClass = typeof HamokCodecError | typeof HamokConfigError;

/** An assert.rejects validator: an instance of `type` with its stable code (and a cause for codec errors). */
function typed(type: ErrorClass, message?: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    const e = error as HamokError;
    assert.equal(e.code, type === HamokCodecError ? "HAMOK_CODEC" : "HAMOK_CONFIG");
    if (type === HamokCodecError) assert.ok(e.cause instanceof Error, `no cause: ${e.message}`);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

function cyclicObject(): unknown {
  const o: Record<string, unknown> = { name: "loop" };
  o.self = o;
  return o;
}

function cyclicArray(): unknown {
  const a: unknown[] = [1];
  a.push([a]);
  return a;
}

function nested(levels: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

class Point {
  constructor(readonly x: number, readonly y: number) {}
}

/** Values the default codec cannot carry unchanged: a map refuses them as values. */
function refused(): [string, unknown][] {
  return [
    ["a WeakMap", new WeakMap()],
    ["a nested WeakSet", { jobs: [new WeakSet()] }],
    ["a Promise", { p: Promise.resolve(1) }],
    ["a WeakRef", new WeakRef({})],
    ["a function", { run: () => 1 }],
    ["a symbol", [Symbol("s")]],
    ["a WeakMap in a Map", new Map([["k", new WeakMap()]])],
    ["a cyclic object", cyclicObject()],
    ["a cyclic array", cyclicArray()],
    ["300 levels", nested(300, 1)],
    ["a lone surrogate", "b\uD800"],
    ["a lone surrogate in a key", { ["k\uDC00"]: 1 }],
    ["a lone surrogate in a Set", new Set(["\uDBFF"])],
  ];
}

/** Values the default codec carries: a map takes them as values. */
function accepted(): unknown[] {
  const shared = { s: 1 };
  const bare = Object.create(null) as Record<string, unknown>;
  bare.k = "v";
  return [
    0,
    -1.5,
    12n,
    true,
    null,
    "caf\u00e9 \u{1F600}",
    { a: [1, { b: "c" }], shared, again: shared },
    new Map<unknown, unknown>([["k", new Set([1, 2])], [1, new Date(5)]]),
    Uint8Array.of(1, 2, 3),
    new Float64Array([1.5]),
    new Point(1, 2),
    bare,
    nested(200, "deep"),
  ];
}

/** A small deterministic generator (xorshift32). */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** A random value: mostly plain data, sometimes something the default codec cannot carry. */
function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth >= 4 ? 10 : 17));
  switch (pick) {
    case 0:
      return Math.floor(next() * 1000) - 500;
    case 1:
      return next();
    case 2:
      return `s${Math.floor(next() * 100)}`;
    case 3:
      return "\u00e9\u{1F600}";
    case 4:
      return next() < 0.3 ? "x\uD83D" : "ok";
    case 5:
      return null;
    case 6:
      return BigInt(Math.floor(next() * 1e6));
    case 7:
      return Uint8Array.of(Math.floor(next() * 256));
    case 8:
      return next() < 0.5 ? new Date(Math.floor(next() * 1e12)) : true;
    case 9:
      return next() < 0.15 ? (next() < 0.5 ? new WeakMap() : () => 0) : "leaf";
    case 10:
    case 11: {
      const n = Math.floor(next() * 4);
      return Array.from({ length: n }, () => randomValue(next, depth + 1));
    }
    case 12:
    case 13: {
      const o: Record<string, unknown> = {};
      const n = Math.floor(next() * 4);
      for (let i = 0; i < n; i++) o[next() < 0.05 ? `k\uDC00${i}` : `k${i}`] = randomValue(next, depth + 1);
      return o;
    }
    case 14:
      return new Map([[randomValue(next, depth + 1), randomValue(next, depth + 1)]]);
    case 15:
      return new Set([randomValue(next, depth + 1)]);
    default: {
      if (next() < 0.3) {
        const o: Record<string, unknown> = { v: randomValue(next, depth + 1) };
        o.loop = [o];
        return o;
      }
      return new Point(1, Math.floor(next() * 10));
    }
  }
}

/** Whether a map with the default value codec takes `value` (encoding it is the whole check). */
function mapTakes(value: unknown): boolean {
  try {
    cborValueCodec.encode(value);
    return true;
  } catch {
    return false;
  }
}

describe("queue items, imports and record fields are checked as map values are", () => {
  let cluster: TestCluster;
  let a: Hamok, b: Hamok;

  before(async () => {
    cluster = await startCluster(memoryTransports(), ["a", "b"]);
    [a, b] = cluster.peers as [Hamok, Hamok];
  });
  after(() => cluster.close());

  /** Runs `attempt` (which must fail) and checks that nothing entered the log meanwhile. */
  async function writesNothing(attempt: () => Promise<unknown>): Promise<void> {
    await a.waitUntilCommitHead();
    const before = a.appliedIndex;
    await attempt();
    await a.waitUntilCommitHead();
    assert.equal(a.appliedIndex, before, "nothing entered the log");
  }

  it("push and pushAll refuse what a map refuses as a value (HamokCodecError, nothing in the log), and take what it takes", async () => {
    const id = nextId("push");
    const qa = a.createQueue<unknown>({ queueId: id });
    const qb = b.createQueue<unknown>({ queueId: id });
    const map = a.createMap<string, unknown>({ mapId: nextId("parity") });
    for (const [name, bad] of refused()) {
      await writesNothing(async () => {
        await assert.rejects(map.set("k", bad), typed(HamokCodecError), `map.set: ${name}`);
        await assert.rejects(qa.push("fine", bad), typed(HamokCodecError, /queue '.*': item 1/), name);
        await assert.rejects(qa.pushAll([bad]), typed(HamokCodecError, /queue '.*': item 0/), name);
      });
    }
    assert.equal(qa.size, 0);
    // what the map takes, the queue takes too, and every peer gets it unchanged
    const good = accepted();
    for (const value of good) await map.set("k", value);
    await qa.pushAll(good);
    await b.waitUntilCommitHead();
    assert.equal(qb.size, good.length);
    assert.deepEqual([...qb].slice(0, 10), good.slice(0, 10));
    qa.close();
    qb.close();
    map.close();
  });

  it("push decides every generated value as the map's default codec does", async () => {
    const qa = a.createQueue<unknown>({ queueId: nextId("generated") });
    const next = random(0x5eed);
    const takes: unknown[] = [];
    let refusedCount = 0;
    for (let i = 0; i < 400; i++) {
      const value = randomValue(next, 0);
      if (value === undefined) continue;
      if (mapTakes(value)) {
        takes.push(value);
        continue;
      }
      refusedCount++;
      await assert.rejects(qa.push(value), typed(HamokCodecError), `generated value ${i}`);
    }
    assert.ok(refusedCount > 20 && takes.length > 100, `${refusedCount} refused, ${takes.length} taken`);
    await qa.pushAll(takes);
    assert.equal(qa.size, takes.length);
    qa.close();
  });

  /** A peer snapshot with a good map image (imported first) and the given images. */
  function snapshotWith(images: Partial<HamokSnapshot>, goodMapId: string): HamokSnapshot {
    return {
      version: 1,
      peerId: "x",
      appliedIndex: 0,
      emitters: [],
      ...images,
      maps: [
        { mapId: goodMapId, keys: [encodeCbor("k")], values: [encodeCbor(1)] },
        ...(images.maps ?? []),
      ],
    };
  }

  /** `hamok.import(snapshot)` rejects with `type` and proposes nothing, the good map included. */
  async function importRejects(images: Partial<HamokSnapshot>, type: ErrorClass, name: string) {
    const goodMapId = nextId("good");
    await writesNothing(() => assert.rejects(b.import(snapshotWith(images, goodMapId)), typed(type), name));
    const map = b.createMap({ mapId: goodMapId });
    assert.equal(map.size, 0, `${name}: the good map was not imported`);
    map.close();
  }

  it("hamok.import checks queue items before proposing anything", async () => {
    const queue = (items: unknown) => ({ queues: [{ queueId: nextId("q"), items }] as never });
    for (const [name, bad] of refused()) await importRejects(queue(["ok", bad]), HamokCodecError, name);
    await importRejects(queue(["ok", undefined]), HamokConfigError, "an undefined item");
    await importRejects(queue("abc"), HamokConfigError, "items not an array");
    await importRejects({ queues: [null] as never }, HamokConfigError, "a null image");
    await importRejects({ queues: [{ queueId: 7, items: [] }] as never }, HamokConfigError, "a numeric id");
    await importRejects({ queues: [{ queueId: "q\uD800", items: [] }] }, HamokConfigError, "an id");
    await importRejects({ queues: {} as never }, HamokConfigError, "queues not an array");
    // an export passes the checks and comes back whole
    const id = nextId("exported");
    const qa = a.createQueue<unknown>({ queueId: id });
    const items = accepted();
    await qa.pushAll(items);
    const exported = a.export();
    await qa.clear();
    await b.import({ ...exported, emitters: [], maps: [], records: [] });
    await a.waitUntilCommitHead();
    assert.equal(qa.size, items.length);
    assert.deepEqual([...qa].slice(0, 10), items.slice(0, 10));
    qa.close();
  });

  it("hamok.import checks map and record entries before proposing anything", async () => {
    const bytes = encodeCbor("v");
    const map = (keys: unknown, values: unknown, mapId: unknown = nextId("m")) => ({
      maps: [{ mapId, keys, values }] as never,
    });
    const record = (keys: unknown, values: unknown, recordId: unknown = nextId("r")) => ({
      records: [{ recordId, keys, values }] as never,
    });
    await importRejects(map(["k\uD800"], [bytes]), HamokCodecError, "a map key");
    await importRejects(map(["k", "j"], [bytes, "v\uDC00"]), HamokCodecError, "a map value");
    await importRejects(map([1], [bytes]), HamokConfigError, "a numeric key");
    await importRejects(map(["a", "b"], [bytes]), HamokConfigError, "lengths differ");
    await importRejects(map("ab", "cd"), HamokConfigError, "strings, not arrays");
    await importRejects(map([], [], ""), HamokConfigError, "an empty map id");
    await importRejects(map([], [], "m\uDBFF"), HamokConfigError, "a map id");
    await importRejects({ maps: [null] as never }, HamokConfigError, "a null map image");
    await importRejects(record(["f\uD800"], [bytes]), HamokCodecError, "a field name");
    await importRejects(record(["f"], ["\uD800"]), HamokCodecError, "a record value");
    await importRejects(record([bytes], [bytes]), HamokConfigError, "a binary field name");
    await importRejects(record([], [], null), HamokConfigError, "no record id");
    await importRejects({ records: "x" as never }, HamokConfigError, "records not an array");
  });

  it("hamok.import checks emitter images before proposing anything", async () => {
    const emitter = (subscriptions: unknown) => ({
      emitters: [{ emitterId: nextId("e"), subscriptions }] as never,
    });
    const one = (event: unknown, peerId: unknown, metadata: unknown = null) => [{
      event,
      subscribers: [{ peerId, metadata }],
    }];
    await importRejects(emitter("x"), HamokConfigError, "subscriptions not an array");
    await importRejects(emitter([{ event: "x" }]), HamokConfigError, "no subscribers");
    await importRejects(emitter(one("x\uD800", "a")), HamokConfigError, "an event name");
    await importRejects(emitter(one("", "a")), HamokConfigError, "an empty event name");
    await importRejects(emitter(one("x", 5)), HamokConfigError, "a numeric peer id");
    await importRejects(emitter(one("x", "a", new WeakMap())), HamokCodecError, "metadata");
    await importRejects(emitter(one("x", "a", { s: "\uDC00" })), HamokCodecError, "metadata string");
    await importRejects({ emitters: [null] as never }, HamokConfigError, "a null emitter image");
  });

  it("queue.import checks items as push does (default codec) and decodes them (a codec)", async () => {
    const id = nextId("view-queue");
    const qa = a.createQueue<unknown>({ queueId: id });
    await qa.push("kept");
    for (const [name, bad] of refused()) {
      await writesNothing(() =>
        assert.rejects(
          qa.import({ queueId: id, items: ["ok", bad] }),
          typed(HamokCodecError, /queue '.*': snapshot item 1/),
          name,
        )
      );
    }
    const json: ValueCodec<unknown> = {
      encode: (v) => JSON.stringify(v),
      decode: (d) => JSON.parse(d as string),
    };
    const qj = a.createQueue<unknown>({ queueId: nextId("view-json"), codec: json });
    for (const [name, bad] of [["a number", 5], ["not JSON", "{oops"], ["an object", { a: 1 }]] as const) {
      await writesNothing(() =>
        assert.rejects(
          qj.import({ queueId: qj.id, items: ['"ok"', bad] }),
          typed(HamokCodecError, /snapshot item 1/),
          name,
        )
      );
    }
    assert.deepEqual([...qa], ["kept"]);
    assert.equal(qj.size, 0);
    await qj.import({ queueId: qj.id, items: ['"ok"', "[1]"] });
    assert.deepEqual([...qj], ["ok", [1]]);
    qa.close();
    qj.close();
  });

  it("map.import and record.import refuse lone surrogates and entries their codecs cannot decode", async () => {
    const identity: ValueCodec<string> = { encode: (s) => s, decode: (d) => d as string };
    const ms = a.createMap<string, string>({
      mapId: nextId("view-map"),
      keyCodec: identity,
      valueCodec: identity,
    });
    const mc = a.createMap<string, unknown>({ mapId: nextId("view-cbor") });
    const good = encodeCbor("v");
    const cases: [string, () => Promise<void>][] = [
      ["a key", () => ms.import({ mapId: ms.id, keys: ["a", "k\uD800"], values: ["x", "y"] })],
      ["a value", () => ms.import({ mapId: ms.id, keys: ["a", "b"], values: ["x", "\uDC00"] })],
      ["truncated CBOR", () =>
        mc.import({
          mapId: mc.id,
          keys: [encodeCbor("a"), encodeCbor("b")],
          values: [good, Uint8Array.of(0x82, 1)],
        })],
      ["a string for CBOR", () => mc.import({ mapId: mc.id, keys: [encodeCbor("a")], values: ["v"] })],
      ["a string key for CBOR", () => mc.import({ mapId: mc.id, keys: ["a"], values: [good] })],
    ];
    for (const [name, attempt] of cases) {
      await writesNothing(() => assert.rejects(attempt, typed(HamokCodecError, /snapshot entry/), name));
    }
    assert.equal(ms.size, 0);
    assert.equal(mc.size, 0);
    const json: ValueCodec<unknown> = {
      encode: (v) => JSON.stringify(v),
      decode: (d) => JSON.parse(d as string),
    };
    const rec = a.createRecord<Record<string, unknown>>({
      recordId: nextId("view-record"),
      payloadCodecs: new Map([["j", json]]),
    });
    const recordCases: [string, () => Promise<void>][] = [
      ["a field name", () => rec.import({ recordId: rec.id, keys: ["a", "f\uD800"], values: [good, good] })],
      ["a value", () => rec.import({ recordId: rec.id, keys: ["j"], values: ["\uD800"] })],
      ["not JSON", () => rec.import({ recordId: rec.id, keys: ["a", "j"], values: [good, "{oops"] })],
      ["a string for CBOR", () => rec.import({ recordId: rec.id, keys: ["a"], values: ["v"] })],
    ];
    for (const [name, attempt] of recordCases) {
      await writesNothing(() => assert.rejects(attempt, typed(HamokCodecError, /snapshot entry/), name));
    }
    assert.deepEqual(rec.instance, {});
    await rec.import({ recordId: rec.id, keys: ["a", "j"], values: [good, "[1]"] });
    assert.deepEqual(rec.instance, { a: "v", j: [1] });
    ms.close();
    mc.close();
    rec.close();
  });

  it("record writes refuse field names with a lone surrogate (UTF-8 would merge them)", async () => {
    const rec = a.createRecord<Record<string, unknown>>({ recordId: nextId("fields") });
    const bad = "f\uD800";
    await writesNothing(async () => {
      await assert.rejects(rec.set(bad, 1), typed(HamokCodecError));
      await assert.rejects(rec.insert(bad, 1), typed(HamokCodecError));
      await assert.rejects(rec.delete(bad), typed(HamokCodecError));
      await assert.rejects(rec.updateIf(bad, 1, undefined), typed(HamokCodecError));
      await assert.rejects(rec.insertInstance({ ok: 1, [bad]: 2 }), typed(HamokCodecError));
      await assert.rejects(rec.updateInstanceIf({ [bad]: 2 }, {}), typed(HamokCodecError));
      await assert.rejects(rec.updateInstanceIf({ ok: 2 }, { [bad]: 1 }), typed(HamokCodecError));
    });
    assert.throws(() => rec.get(bad), typed(HamokCodecError));
    assert.throws(
      () => a.createRecord({ recordId: nextId("initial"), initialObject: { [bad]: 1 } }),
      typed(HamokCodecError),
    );
    assert.deepEqual(rec.instance, {});
    rec.close();
  });
});
