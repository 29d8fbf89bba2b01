import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeEnvelope } from "../../src/codec/envelope.ts";
import { HamokTimeoutError } from "../../src/errors.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { emitterFaultSuite, emitterSuite } from "./emitter_suite.ts";

describe("emitter on the memory transport", () => {
  emitterSuite(() => Promise.resolve(memoryTransports()));
  emitterFaultSuite(() => Promise.resolve(memoryTransports()));

  it("one publish is one transport message, whatever the number of subscribers", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c", "d"]);
    try {
      const [a, ...others] = cluster.peers;
      const ea = a.createEmitter<{ e: [number] }>({ emitterId: "fanout" });
      for (const p of others) {
        await p.createEmitter<{ e: [number] }>({ emitterId: "fanout" }).subscribe("e", () => {});
      }
      await a.waitUntilCommitHead();
      const spy = cluster.transports.get("a")!;
      let onTheWire = 0;
      const sub = spy.subscribe(`${a.subjects.prefix}.emit.>`, () => onTheWire++);
      const acked = await ea.publish("e", 1);
      await spy.flush();
      await waitFor(() => onTheWire >= 1, { timeoutMs: 1000 });
      sub.unsubscribe();
      assert.deepEqual(acked.sort(), ["b", "c", "d"]);
      assert.equal(onTheWire, 1);
    } finally {
      await cluster.close();
    }
  });

  it("a burst of publishes is acknowledged in coalesced messages", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b"]);
    try {
      const [a, b] = cluster.peers;
      const ea = a.createEmitter<{ e: [number] }>({ emitterId: "burst" });
      const got: number[] = [];
      await b.createEmitter<{ e: [number] }>({ emitterId: "burst" }).subscribe("e", (n) => got.push(n));
      await a.waitUntilCommitHead();
      const spy = cluster.transports.get("a")!;
      const kinds: string[] = [];
      const sub = spy.subscribe(a.subjects.inbox("a"), (msg) => {
        const envelope = decodeEnvelope(msg.data);
        if (envelope.type === "ack" || envelope.type === "acks") kinds.push(envelope.type);
      });
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => ea.publish("e", i)));
      sub.unsubscribe();
      assert.ok(results.every((r) => r.length === 1 && r[0] === "b"));
      assert.deepEqual(got, Array.from({ length: 64 }, (_, i) => i));
      assert.ok(kinds.includes("acks"), `acknowledged by ${kinds.join(",")}`);
      assert.ok(kinds.length < 64, `${kinds.length} acknowledgement messages for 64 publishes`);
    } finally {
      await cluster.close();
    }
  });

  it("a publish that is not acknowledged in time names who acked and who did not", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { peerTimeoutMs: 60_000 });
    try {
      const [a, b, c] = cluster.peers;
      const ea = a.createEmitter<{ e: [number] }>({ emitterId: "timeouts", requestTimeoutInMs: 300 });
      const eb = b.createEmitter<{ e: [number] }>({ emitterId: "timeouts" });
      const ec = c.createEmitter<{ e: [number] }>({ emitterId: "timeouts" });
      let cGot = 0;
      await eb.subscribe("e", () => {});
      await ec.subscribe("e", () => cGot++);
      await a.waitUntilCommitHead();
      // c receives the event but its acknowledgement never reaches a
      const fault = factory.bus.drop({ from: "c", to: "a", subject: a.subjects.inbox("a") });
      const error = await ea.publish("e", 1).then(() => undefined, (e) => e);
      fault.remove();
      assert.ok(error instanceof HamokTimeoutError, String(error));
      assert.deepEqual(error.respondedPeerIds, ["b"]);
      assert.deepEqual(error.missingPeerIds, ["c"]);
      assert.match(error.message, /missing: \[c\]/);
      await waitFor(() => cGot === 1, { timeoutMs: 1000 });
    } finally {
      await cluster.close();
    }
  });

  it("publishes share one timeout timer: each times out on its own deadline, one acknowledged meanwhile resolves", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { peerTimeoutMs: 60_000 });
    try {
      const [a, b, c] = cluster.peers;
      const timeoutMs = 300;
      const ea = a.createEmitter<{ e: [number] }>({ emitterId: "deadlines", requestTimeoutInMs: timeoutMs });
      await b.createEmitter<{ e: [number] }>({ emitterId: "deadlines" }).subscribe("e", () => {});
      await a.waitUntilCommitHead();
      // b's acknowledgements are lost while the fault is in place
      const fault = factory.bus.drop({ from: "b", to: "a", subject: a.subjects.inbox("a") });
      const settled = (p: Promise<unknown>, started: number) =>
        p.then(
          () => ({ ok: true, ms: performance.now() - started }),
          () => ({ ok: false, ms: performance.now() - started }),
        );
      const t1 = performance.now();
      const first = settled(ea.publish("e", 1), t1);
      await new Promise((resolve) => setTimeout(resolve, timeoutMs / 2));
      const t2 = performance.now();
      const second = settled(ea.publish("e", 2), t2);
      const one = await first;
      fault.remove();
      // made after the first timed out and the fault was lifted: acknowledged, in time
      const t3 = performance.now();
      const third = settled(ea.publish("e", 3), t3);
      const [two, three] = await Promise.all([second, third]);
      assert.equal(one.ok, false);
      assert.equal(two.ok, false);
      assert.equal(three.ok, true);
      // not before its own deadline, whatever the first one's was (monotonic clock, 1 ms of rounding)
      assert.ok(one.ms >= timeoutMs - 1, `first timed out after ${one.ms} ms`);
      assert.ok(two.ms >= timeoutMs - 1, `second timed out after ${two.ms} ms`);
      await c.waitUntilCommitHead();
    } finally {
      await cluster.close();
    }
  });
});
