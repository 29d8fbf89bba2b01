/**
 * A HamokQueue never hands the application the replicated state's own items (audit F5): what
 * `peek()`, iteration, `pop()`, the `add`/`remove` events and `export()` return are copies, so
 * changing them changes neither this peer's replica nor what it later exports or pops. Also: queue
 * items that hold a string UTF-8 cannot carry are rejected (audit F4).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokCodecError } from "../../src/errors.ts";
import type { Hamok } from "../../src/hamok.ts";
import type { ValueCodec } from "../../src/codec/value_codec.ts";
import { copyDecoded, decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { memoryTransports, startCluster, type TestCluster } from "../_helpers/cluster.ts";

type Job = { n: number; tags: string[]; meta: Map<string, Set<number>>; at: Date; bytes: Uint8Array };

let counter = 0;
const nextId = () => `copies-${++counter}`;

function job(n: number): Job {
  return {
    n,
    tags: ["t"],
    meta: new Map([["m", new Set([n])]]),
    at: new Date(1_700_000_000_000 + n),
    bytes: Uint8Array.of(n, n + 1, n + 2),
  };
}

/** Changes everything in a job in place, nested parts included. */
function scribble(item: Job): void {
  item.n += 100;
  item.tags.push("changed");
  item.meta.get("m")!.add(999);
  item.meta.set("new", new Set());
  item.at.setTime(0);
  item.bytes[0] = 0xff;
}

describe("HamokQueue hands out copies, never its replicated items", () => {
  let cluster: TestCluster;
  let a: Hamok, b: Hamok;

  before(async () => {
    cluster = await startCluster(memoryTransports(), ["a", "b"]);
    [a, b] = cluster.peers as [Hamok, Hamok];
  });
  after(() => cluster.close());

  /** Pushes `jobs` through peer a's queue and waits until b applied them too. */
  async function queues(count: number) {
    const id = nextId();
    const qa = a.createQueue<Job>({ queueId: id });
    const qb = b.createQueue<Job>({ queueId: id });
    await qa.pushAll(Array.from({ length: count }, (_, i) => job(i + 1)));
    await b.waitUntilCommitHead();
    return { qa, qb };
  }

  it("peek() and iteration", async () => {
    const { qa, qb } = await queues(2);
    scribble(qa.peek()!);
    for (const item of qa) scribble(item);
    assert.deepEqual([...qa], [job(1), job(2)]);
    assert.deepEqual([...qa], [...qb]);
    assert.notEqual(qa.peek(), qa.peek(), "every read gets its own copy");
    qa.close();
    qb.close();
  });

  it("'add' listeners, each event with a copy (also on the proposer)", async () => {
    const id = nextId();
    const qa = a.createQueue<Job>({ queueId: id });
    const qb = b.createQueue<Job>({ queueId: id });
    const heard: Job[] = [];
    qa.on("add", (item) => {
      heard.push(item);
      scribble(item);
    });
    qb.on("add", scribble);
    await qa.push(job(1), job(2));
    await b.waitUntilCommitHead();
    assert.equal(heard.length, 2);
    assert.deepEqual([...qa], [job(1), job(2)]);
    assert.deepEqual([...qb], [job(1), job(2)]);
    qa.close();
    qb.close();
  });

  it("pop() results, 'remove' listeners and the result a retry with the same request id gets", async () => {
    const { qa, qb } = await queues(2);
    const removed: Job[] = [];
    qa.on("remove", (item) => {
      removed.push(item);
      scribble(item);
    });
    const popped = (await qa.pop({ requestId: "copies-pop-1" }))!;
    assert.deepEqual(popped, job(1));
    assert.equal(removed.length, 1);
    assert.notEqual(popped, removed[0]);
    scribble(popped);
    // a retry is answered from the remembered result: it must be the item as it was popped
    assert.deepEqual(await qa.pop({ requestId: "copies-pop-1" }), job(1));
    assert.deepEqual([...qa], [job(2)]);
    await b.waitUntilCommitHead();
    assert.deepEqual([...qb], [job(2)]);
    qa.close();
    qb.close();
  });

  it("export(), the queue's and the peer's", async () => {
    const { qa, qb } = await queues(2);
    for (const item of qa.export().items) scribble(item as Job);
    const snapshot = (a.export().queues ?? []).find((q) => q.queueId === qa.id)!;
    for (const item of snapshot.items) scribble(item as Job);
    assert.deepEqual(qa.export().items, [job(1), job(2)]);
    assert.deepEqual([...qa], [job(1), job(2)]);
    // what this peer exports and pops stays the cluster's item
    assert.deepEqual(await qa.pop(), job(1));
    await b.waitUntilCommitHead();
    assert.deepEqual([...qb], [job(2)]);
    qa.close();
    qb.close();
  });

  it("byte items: copies of just their bytes, never views into the log entry", async () => {
    const id = nextId();
    const qa = a.createQueue<Uint8Array>({ queueId: id });
    await qa.push(Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5));
    const head = qa.peek()!;
    assert.equal(head.constructor, Uint8Array);
    assert.equal(
      head.buffer.byteLength,
      3,
      "a copy of the item's bytes, not of the buffer it was decoded from",
    );
    head[0] = 9;
    for (const item of qa) item.fill(0);
    assert.deepEqual([...qa], [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)]);
    qa.close();
  });

  it("with a codec that returns views of the bytes it gets, the stored bytes are never handed out", async () => {
    const id = nextId();
    const bytesCodec: ValueCodec<Uint8Array> = { encode: (v) => v, decode: (d) => d as Uint8Array };
    const qa = a.createQueue<Uint8Array>({ queueId: id, codec: bytesCodec });
    await qa.push(Uint8Array.of(1, 2, 3));
    qa.peek()!.fill(7);
    (qa.export().items[0] as Uint8Array).fill(8);
    assert.deepEqual(qa.peek(), Uint8Array.of(1, 2, 3));
    assert.deepEqual(await qa.pop(), Uint8Array.of(1, 2, 3));
    qa.close();
  });

  it("rejects items holding a string that is not well formed, with HamokCodecError", async () => {
    const id = nextId();
    const qa = a.createQueue<unknown>({ queueId: id });
    const qb = b.createQueue<unknown>({ queueId: id });
    for (const bad of ["\uD800", { name: "x\uDC00" }, [{ ["k\uD83D"]: 1 }], new Map([["k", "\uDBFF"]])]) {
      await assert.rejects(qa.push("fine", bad), (e: unknown) => {
        assert.ok(e instanceof HamokCodecError, String(e));
        assert.match(e.message, /queue '.*': item 1.* lone UTF-16 surrogate/);
        return true;
      });
      await assert.rejects(qa.import({ queueId: id, items: ["fine", bad] }), HamokCodecError);
    }
    const strings = { encode: (s: string) => s, decode: (d: string | Uint8Array) => d as string };
    const qs = a.createQueue<string>({ queueId: nextId(), codec: strings });
    await assert.rejects(qs.push("\uDC00"), HamokCodecError);
    await assert.rejects(qs.import({ queueId: qs.id, items: ["\uDC00"] }), HamokCodecError);
    // nothing reached the log; well-formed strings, surrogate pairs included, arrive unchanged
    await qa.push("\u{1F600}", { name: "caf\u00e9 \uD83D\uDE00" });
    await b.waitUntilCommitHead();
    assert.deepEqual([...qb], ["\u{1F600}", { name: "caf\u00e9 \uD83D\uDE00" }]);
    qa.close();
    qb.close();
    qs.close();
  });
});

describe("copyDecoded", () => {
  it("copies every shape the decoder makes, deeply, keeping types", () => {
    const value = {
      list: [1, "two", null, undefined, true, 3n, [{ x: 1 }]],
      map: new Map<unknown, unknown>([[1, { y: [2] }], ["k", new Set([new Uint8Array(2)])]]),
      date: new Date(5),
      f64: Float64Array.of(1.5),
      error: new Error("boom"),
      pattern: /a+/g,
    };
    const decoded = decodeCbor(encodeCbor(value)) as typeof value;
    const copy = copyDecoded(decoded);
    assert.deepEqual(copy, decoded);
    assert.notEqual(copy.list[6], decoded.list[6]);
    assert.notEqual(copy.map.get(1), decoded.map.get(1));
    assert.notEqual(copy.date, decoded.date);
    assert.notEqual(copy.error, decoded.error);
    assert.ok(copy.pattern instanceof RegExp && copy.pattern !== decoded.pattern);
    assert.equal(copy.f64.buffer.byteLength, 8);
    for (const primitive of [1, "s", null, undefined, 2n, false]) {
      assert.equal(copyDecoded(primitive), primitive);
    }
  });

  it("keeps the prototype of other instances, a __proto__ field as a field, and ends on cycles", () => {
    class Tagged {
      constructor(readonly value: unknown, readonly tag: number) {}
    }
    const tagged = copyDecoded(new Tagged({ v: 1 }, 7));
    assert.ok(tagged instanceof Tagged);
    assert.deepEqual({ ...tagged }, { value: { v: 1 }, tag: 7 });
    const withProto = JSON.parse('{"__proto__": {"polluted": true}}');
    const copy = copyDecoded(withProto);
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.deepEqual(Object.keys(copy), ["__proto__"]);
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
    const cyclic: { self?: unknown; n: number } = { n: 1 };
    cyclic.self = cyclic;
    const copied = copyDecoded(cyclic);
    assert.notEqual(copied, cyclic);
    assert.equal(copied.n, 1);
  });
});
