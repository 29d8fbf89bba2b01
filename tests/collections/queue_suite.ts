/**
 * The HamokQueue behaviour suite, run with three peers on the memory transport and on a real
 * nats-server (see queue_memory.test.ts and queue_nats.test.ts), under Deno and Bun.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokClosedError, HamokCodecError, HamokConfigError } from "../../src/errors.ts";
import type { Hamok } from "../../src/hamok.ts";
import type { HamokQueue } from "../../src/collections/queue.ts";
import { startCluster, type TestCluster, type TransportFactory } from "../_helpers/cluster.ts";

let counter = 0;
const nextId = (base: string) => `${base}-${++counter}`;

/** Records the events of a queue as strings. */
function recordEvents<T>(queue: HamokQueue<T>): string[] {
  const log: string[] = [];
  queue.on("add", (item) => log.push(`+${JSON.stringify(item)}`));
  queue.on("remove", (item) => log.push(`-${JSON.stringify(item)}`));
  queue.on("empty", () => log.push("empty"));
  queue.on("not-empty", () => log.push("not-empty"));
  return log;
}

/** Pops until the queue is empty; returns what this peer got. */
async function drain<T>(queue: HamokQueue<T>): Promise<T[]> {
  const got: T[] = [];
  for (;;) {
    const item = await queue.pop();
    if (item === undefined) return got;
    got.push(item);
  }
}

export function queueSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokQueue", () => {
    let cluster: TestCluster;
    let a: Hamok, b: Hamok, c: Hamok;

    before(async () => {
      cluster = await startCluster(await makeFactory(), ["a", "b", "c"], { snapshotThreshold: 50 });
      [a, b, c] = cluster.peers;
    });
    after(async () => {
      await cluster?.close();
    });

    it("push, peek, pop, size, empty and iteration, on every peer", async () => {
      const id = nextId("basic");
      const [qa, qb, qc] = [a, b, c].map((p) => p.createQueue<string>({ queueId: id }));
      assert.equal(qa.empty, true);
      assert.equal(await qa.pop(), undefined);
      await qa.push("x", "y");
      await qb.push("z");
      await Promise.all([b, c].map((p) => p.waitUntilCommitHead()));
      for (const q of [qa, qb, qc]) {
        assert.equal(q.size, 3);
        assert.equal(q.empty, false);
        assert.equal(q.peek(), "x");
        assert.deepEqual([...q], ["x", "y", "z"]);
      }
      assert.equal(await qc.pop(), "x");
      assert.equal(await qa.pop(), "y");
      assert.equal(await qb.pop(), "z");
      assert.equal(await qc.pop(), undefined);
      await Promise.all([a, b, c].map((p) => p.waitUntilCommitHead()));
      for (const q of [qa, qb, qc]) assert.equal(q.size, 0);
      for (const q of [qa, qb, qc]) q.close();
    });

    it("0, '', false and null are items, not 'empty'", async () => {
      const id = nextId("falsy");
      const qa = a.createQueue<unknown>({ queueId: id });
      const qb = b.createQueue<unknown>({ queueId: id });
      await qa.push(0, "", false, null);
      await b.waitUntilCommitHead();
      assert.equal(qb.size, 4);
      assert.equal(qb.peek(), 0);
      assert.deepEqual(await drain(qb), [0, "", false, null]);
      qa.close();
      qb.close();
    });

    it("concurrent pops from three peers return every pushed item exactly once, in FIFO order", async () => {
      const id = nextId("race");
      const queues = [a, b, c].map((p) => p.createQueue<number>({ queueId: id }));
      const removed = recordEvents(queues[0]);
      // pushes from every peer at once; the log decides the order
      await Promise.all(queues.map((q, p) =>
        Promise.all(
          Array.from({ length: 20 }, (_, i) => q.pushAll([p * 1000 + i * 2, p * 1000 + i * 2 + 1])),
        )
      ));
      await Promise.all([a, b, c].map((p) => p.waitUntilCommitHead()));
      const pushOrder = [...queues[0]];
      assert.equal(pushOrder.length, 120);
      for (const q of queues) assert.deepEqual([...q], pushOrder);
      const results = await Promise.all(queues.map((q) => drain(q)));
      const all = results.flat();
      assert.equal(all.length, 120, `popped ${all.length} items`);
      assert.deepEqual([...all].sort((x, y) => x - y), [...pushOrder].sort((x, y) => x - y));
      // each peer got its items in queue order
      const position = new Map(pushOrder.map((item, i) => [item, i]));
      for (const got of results) {
        for (let i = 1; i < got.length; i++) assert.ok(position.get(got[i])! > position.get(got[i - 1])!);
      }
      // and the items left the queue in push order (seen on one peer)
      await a.waitUntilCommitHead();
      const removals = removed.filter((e) => e.startsWith("-")).map((e) => Number(e.slice(1)));
      assert.deepEqual(removals, pushOrder);
      for (const q of queues) q.close();
    });

    it("every peer sees the same events in the same order", async () => {
      const id = nextId("events");
      const queues = [a, b, c].map((p) => p.createQueue<string>({ queueId: id }));
      const logs = queues.map((q) => recordEvents(q));
      await queues[1].push("one");
      await queues[2].push("two", "three");
      await queues[0].pop();
      await queues[1].clear();
      await queues[2].push("four");
      await queues[0].pop();
      await Promise.all([a, b, c].map((p) => p.waitUntilCommitHead()));
      const expected = [
        `+"one"`,
        "not-empty",
        `+"two"`,
        `+"three"`,
        `-"one"`,
        `-"two"`,
        `-"three"`,
        "empty",
        `+"four"`,
        "not-empty",
        `-"four"`,
        "empty",
      ];
      for (const log of logs) assert.deepEqual(log, expected);
      for (const q of queues) q.close();
    });

    it("a queue created late on a peer shows the full content after ready", async () => {
      const id = nextId("late");
      const qa = a.createQueue<{ n: number }>({ queueId: id });
      await qa.pushAll(Array.from({ length: 80 }, (_, n) => ({ n })));
      for (let i = 0; i < 5; i++) await qa.pop();
      const qc = c.createQueue<{ n: number }>({ queueId: id });
      await qc.ready;
      assert.equal(qc.size, 75);
      assert.deepEqual(qc.peek(), { n: 5 });
      assert.deepEqual(await qc.pop(), { n: 5 });
      qa.close();
      qc.close();
    });

    it("a peer that joins after log compaction gets the queue from the snapshot, FIFO continues", async () => {
      const id = nextId("compacted");
      const qa = a.createQueue<number>({ queueId: id });
      // one entry per push: well past the snapshot threshold, so the log is compacted
      for (let i = 0; i < 120; i++) await qa.push(i);
      for (let i = 0; i < 10; i++) assert.equal(await qa.pop(), i);
      const d = await cluster.add(nextId("d"));
      try {
        await d.join({ timeoutMs: 10_000 });
        const qd = d.createQueue<number>({ queueId: id });
        await qd.ready;
        assert.equal(qd.size, 110);
        assert.deepEqual([...qd], Array.from({ length: 110 }, (_, i) => 10 + i));
        // alternating pops from an old and the new peer keep the order
        const got: number[] = [];
        for (let i = 0; i < 6; i++) got.push((await (i % 2 === 0 ? qd : qa).pop())!);
        assert.deepEqual(got, [10, 11, 12, 13, 14, 15]);
        qd.close();
        await d.leave();
      } finally {
        d.close();
      }
      qa.close();
    });

    it("export and import: snapshots of any size, also through Hamok.export/import", async () => {
      for (const count of [0, 1, 2, 300]) {
        const id = nextId(`snap${count}`);
        const qa = a.createQueue<{ n: number }>({ queueId: id });
        const qb = b.createQueue<{ n: number }>({ queueId: id });
        const items = Array.from({ length: count }, (_, n) => ({ n }));
        if (count > 0) await qa.pushAll(items);
        const snapshot = qa.export();
        assert.deepEqual(snapshot, { queueId: id, items });
        await qa.clear();
        assert.equal(qa.size, 0);
        await qb.push({ n: -1 });
        await qb.import(snapshot);
        await a.waitUntilCommitHead();
        assert.equal(qa.size, count, `a snapshot of ${count} item(s) imported as ${qa.size}`);
        assert.deepEqual([...qa], items);
        qa.close();
        qb.close();
      }
      // the peer-level export carries queues, and its import restores them
      const id = nextId("peer-export");
      const qa = a.createQueue<string>({ queueId: id });
      await qa.push("only");
      const exported = a.export();
      const mine = exported.queues?.find((q) => q.queueId === id);
      assert.deepEqual(mine, { queueId: id, items: ["only"] });
      await qa.clear();
      await b.import({ ...exported, emitters: [], queues: [mine!] });
      await a.waitUntilCommitHead();
      assert.deepEqual([...qa], ["only"]);
      qa.close();
    });

    it("a custom item codec is used on the log and on every read", async () => {
      const id = nextId("codec");
      const dateCodec = {
        encode: (d: Date) => d.toISOString(),
        decode: (s: string | Uint8Array) => new Date(String(s)),
      };
      const qa = a.createQueue<Date>({ queueId: id, codec: dateCodec });
      const qb = b.createQueue<Date>({ queueId: id, codec: dateCodec });
      const added: Date[] = [];
      qb.on("add", (d) => added.push(d));
      const when = new Date("2024-01-02T03:04:05.000Z");
      await qa.push(when);
      await b.waitUntilCommitHead();
      assert.ok(qb.peek() instanceof Date);
      assert.equal(qb.peek()!.getTime(), when.getTime());
      assert.deepEqual(qb.export().items, [when.toISOString()]);
      assert.equal(added[0].getTime(), when.getTime());
      assert.equal((await qb.pop())!.getTime(), when.getTime());
      const failing = a.createQueue<number>({
        queueId: nextId("failing"),
        codec: {
          encode: () => {
            throw new Error("no");
          },
          decode: () => 0,
        },
      });
      await assert.rejects(failing.push(1), HamokCodecError);
      // an item CBOR cannot carry is a codec error too
      const plain = a.createQueue<unknown>({ queueId: nextId("plain") });
      await assert.rejects(plain.push(() => 1), HamokCodecError);
      for (const q of [qa, qb, failing, plain]) q.close();
    });

    it("misuse gets typed errors", async () => {
      const id = nextId("misuse");
      const qa = a.createQueue<number>({ queueId: id });
      assert.throws(() => a.createQueue<number>({ queueId: id }), HamokConfigError);
      assert.equal(a.getOrCreateQueue<number>({ queueId: id }), qa);
      assert.throws(() => a.createQueue({ queueId: "" }), HamokConfigError);
      assert.throws(() => a.createQueue({ queueId: "x", requestTimeoutInMs: 0 }), HamokConfigError);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => a.createQueue({ queueId: "x", codec: {} as any }), HamokConfigError);
      await assert.rejects(qa.push(undefined as unknown as number), HamokConfigError);
      await assert.rejects(qa.pop({ requestId: "" }), HamokConfigError);
      await assert.rejects(qa.pop({ timeoutMs: -5 }), HamokConfigError);
      await assert.rejects(qa.import({ queueId: "other", items: [] }), HamokConfigError);
      let closed = 0;
      qa.on("close", () => closed++);
      qa.close();
      qa.close();
      assert.equal(closed, 1);
      assert.equal(qa.closed, true);
      await assert.rejects(qa.push(1), HamokClosedError);
      await assert.rejects(qa.pop(), HamokClosedError);
      await assert.rejects(qa.clear(), HamokClosedError);
      assert.throws(() => qa.export(), HamokClosedError);
      // the id is free again once closed, and the replicated queue is still there
      const again = a.createQueue<number>({ queueId: id });
      assert.equal(again.size, 0);
      again.close();
    });

    it("a queue keeps working when the leader is killed; no acknowledged push is lost", async () => {
      const local = await startCluster(await makeFactory(), ["k1", "k2", "k3"], {
        clusterId: nextId("failover"),
      });
      try {
        const leader = local.leader()!;
        const [p1, p2] = local.peers.filter((p) => p !== leader);
        const id = nextId("failover");
        const q1 = p1.createQueue<number>({ queueId: id });
        const q2 = p2.createQueue<number>({ queueId: id });
        const acknowledged: number[] = [];
        const pushes: Promise<void>[] = [];
        for (let i = 0; i < 200; i++) {
          pushes.push(
            q1.push(i).then(() => {
              acknowledged.push(i);
            }, () => {}),
          );
          if (i === 50) await local.crash(leader);
        }
        await Promise.all(pushes);
        await local.settled(5000);
        await q1.push(-1); // a write after the failover
        await p2.waitUntilCommitHead();
        const content = [...q2];
        assert.equal(content.at(-1), -1);
        for (const n of acknowledged) assert.ok(content.includes(n), `acknowledged push ${n} is missing`);
        assert.equal(new Set(content).size, content.length, "an item was added twice");
        assert.deepEqual([...q1], content);
        q1.close();
        q2.close();
      } finally {
        await local.close();
      }
    });
  });
}
