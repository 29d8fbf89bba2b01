import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokConfigError } from "../../src/errors.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { waitFor } from "../_helpers/wait.ts";

const TEST_TIMEOUT = { timeout: 20_000 };

function seqOf(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
}

function payload(seq: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, seq);
  return bytes;
}

describe("MemoryBus", () => {
  const open: MemoryTransport[] = [];

  /** A bus with endpoints a, b, c; each records what reaches its inbox `inbox.<id>` and `all`. */
  function network(options: ConstructorParameters<typeof MemoryBus>[0] = {}) {
    const bus = new MemoryBus(options);
    const ids = ["a", "b", "c"] as const;
    const t = {} as Record<(typeof ids)[number], MemoryTransport>;
    const got = {} as Record<(typeof ids)[number], number[]>;
    for (const id of ids) {
      t[id] = new MemoryTransport({ bus, id });
      open.push(t[id]);
      got[id] = [];
      t[id].subscribe(`inbox.${id}`, (msg) => got[id].push(seqOf(msg.data)));
      t[id].subscribe("all", (msg) => got[id].push(seqOf(msg.data)));
    }
    return { bus, t, got };
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it(
    "without faults, flush() resolves after everything published so far was delivered",
    TEST_TIMEOUT,
    async () => {
      const { t, got } = network();
      for (let i = 0; i < 10; i++) t.a.publish("inbox.b", payload(i));
      assert.deepEqual(got.b, []);
      await t.a.flush();
      assert.deepEqual(got.b, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    },
  );

  it("drop: drops matching deliveries only (by from, to and subject)", TEST_TIMEOUT, async () => {
    const { bus, t, got } = network();
    const fault = bus.drop({ from: "a", to: [t.b], subject: "inbox.*" });
    assert.equal(fault.kind, "drop");
    t.a.publish("inbox.b", payload(1)); // dropped
    t.a.publish("all", payload(2)); // subject does not match: delivered to a, b, c
    t.c.publish("inbox.b", payload(3)); // other publisher: delivered
    t.a.publish("inbox.c", payload(4)); // other receiver: delivered
    await t.a.flush();
    assert.deepEqual(got.b, [2, 3]);
    assert.deepEqual(got.c, [2, 4]);
    assert.deepEqual(got.a, [2]);
    fault.remove();
    assert.equal(fault.active, false);
    t.a.publish("inbox.b", payload(5));
    await t.a.flush();
    assert.deepEqual(got.b, [2, 3, 5]);
  });

  it("drop with `times` removes itself after that many deliveries", TEST_TIMEOUT, async () => {
    const { bus, t, got } = network();
    const fault = bus.drop({ to: "b", times: 3 });
    for (let i = 0; i < 5; i++) t.a.publish("inbox.b", payload(i));
    await t.a.flush();
    assert.deepEqual(got.b, [3, 4]);
    assert.equal(fault.active, false);
    assert.deepEqual(bus.faults, []);
  });

  it("probabilistic drop is reproducible with a seed", TEST_TIMEOUT, async () => {
    const runs: number[][] = [];
    for (let run = 0; run < 3; run++) {
      const { bus, t, got } = network({ seed: run < 2 ? 1234 : 99 });
      bus.drop({ to: "b", probability: 0.5 });
      for (let i = 0; i < 1000; i++) t.a.publish("inbox.b", payload(i));
      await t.a.flush();
      runs.push(got.b);
      await Promise.all(open.splice(0).map((x) => x.close()));
    }
    assert.ok(runs[0].length > 350 && runs[0].length < 650, `about half delivered, got ${runs[0].length}`);
    assert.deepEqual(runs[0], runs[1], "same seed, same losses");
    assert.notDeepEqual(runs[0], runs[2], "another seed, other losses");
    // An injected random source is used as is.
    const { bus, t, got } = network({ random: () => 0.99 });
    bus.drop({ probability: 0.5 });
    t.a.publish("inbox.b", payload(1));
    await t.a.flush();
    assert.deepEqual(got.b, [1]);
  });

  it(
    "delay: holds back matching deliveries; unaffected paths keep per-publisher order",
    TEST_TIMEOUT,
    async () => {
      const { bus, t, got } = network();
      bus.delay({ to: "b", ms: 40 });
      for (let i = 0; i < 5; i++) t.a.publish("all", payload(i));
      await t.a.flush();
      assert.deepEqual(got.c, [0, 1, 2, 3, 4], "c is not delayed");
      assert.deepEqual(got.a, [0, 1, 2, 3, 4], "a (loopback) is not delayed");
      assert.deepEqual(got.b, [], "b is delayed");
      assert.equal(bus.delayedCount, 5);
      await waitFor(() => got.b.length === 5, { timeoutMs: 5000, message: "delayed deliveries" });
      assert.deepEqual(got.b, [0, 1, 2, 3, 4], "a constant delay keeps the order on the delayed path");
      assert.equal(bus.delayedCount, 0);
    },
  );

  it("delay with jitter reorders, and every message still arrives", TEST_TIMEOUT, async () => {
    const { bus, t, got } = network({ seed: 7 });
    bus.delay({ to: "b", ms: 1, jitterMs: 40 });
    const n = 50;
    for (let i = 0; i < n; i++) t.a.publish("inbox.b", payload(i));
    await waitFor(() => got.b.length === n, { timeoutMs: 5000, message: "all jittered deliveries" });
    assert.deepEqual([...got.b].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
    assert.notDeepEqual(got.b, Array.from({ length: n }, (_, i) => i), "jitter reorders");
  });

  it("duplicate: delivers extra copies right after the original", TEST_TIMEOUT, async () => {
    const { bus, t, got } = network();
    bus.duplicate({ to: "b" });
    bus.duplicate({ to: "c", copies: 2, subject: "inbox.c" });
    t.a.publish("inbox.b", payload(1));
    t.a.publish("inbox.b", payload(2));
    t.a.publish("inbox.c", payload(3));
    t.a.publish("all", payload(4));
    await t.a.flush();
    assert.deepEqual(got.b, [1, 1, 2, 2, 4, 4]);
    assert.deepEqual(got.c, [3, 3, 3, 4]);
    assert.deepEqual(got.a, [4]);
  });

  it("partition: cuts both directions between the two sides only", TEST_TIMEOUT, async () => {
    const { bus, t, got } = network();
    const fault = bus.partition("a", ["b"]);
    assert.equal(fault.kind, "partition");
    t.a.publish("inbox.b", payload(1)); // cut
    t.b.publish("inbox.a", payload(2)); // cut
    t.a.publish("inbox.c", payload(3));
    t.c.publish("inbox.b", payload(4));
    t.a.publish("inbox.a", payload(5)); // same side
    await t.a.flush();
    assert.deepEqual(got.a, [5]);
    assert.deepEqual(got.b, [4]);
    assert.deepEqual(got.c, [3]);
  });

  it("one-way partition: from cannot reach to, the reverse still flows", TEST_TIMEOUT, async () => {
    const { bus, t, got } = network();
    bus.partitionOneWay(t.a, t.b);
    t.a.publish("inbox.b", payload(1)); // cut
    t.b.publish("inbox.a", payload(2));
    await t.a.flush();
    assert.deepEqual(got.b, []);
    assert.deepEqual(got.a, [2]);
  });

  it("heal: removes every fault; deliveries already delayed still arrive", TEST_TIMEOUT, async () => {
    const { bus, t, got } = network();
    const faults = [
      bus.partition("a", "c"),
      bus.drop({ to: "a" }),
      bus.duplicate({ to: "c" }),
      bus.delay({ to: "b", ms: 30 }),
    ];
    t.a.publish("inbox.b", payload(1)); // delayed
    await t.a.flush();
    assert.equal(bus.faults.length, 4);
    bus.heal();
    assert.deepEqual(bus.faults, []);
    for (const fault of faults) assert.equal(fault.active, false);
    t.a.publish("inbox.c", payload(2));
    t.b.publish("inbox.a", payload(3));
    t.a.publish("inbox.b", payload(4)); // overtakes the delayed one: the documented exception
    await t.a.flush();
    assert.deepEqual(got.c, [2]);
    assert.deepEqual(got.a, [3]);
    assert.deepEqual(got.b, [4]);
    await waitFor(() => got.b.length === 2, { timeoutMs: 5000, message: "the delayed message" });
    assert.deepEqual(got.b, [4, 1]);
  });

  it("closing an endpoint drops the deliveries held back for it", TEST_TIMEOUT, async () => {
    const { bus, t } = network();
    bus.delay({ to: "b", ms: 60_000 });
    t.a.publish("inbox.b", payload(1));
    t.a.publish("all", payload(2));
    await t.a.flush();
    assert.equal(bus.delayedCount, 2);
    await t.b.close();
    assert.equal(bus.delayedCount, 0);
    assert.deepEqual(bus.endpointIds.sort(), ["a", "c"]);
  });

  it(
    "the drain never recurses and yields to the event loop during long publish chains",
    TEST_TIMEOUT,
    async () => {
      const bus = new MemoryBus();
      const t = new MemoryTransport({ bus });
      open.push(t);
      const total = 20_000;
      let count = 0;
      let depth = 0;
      let maxDepth = 0;
      t.subscribe("chain", () => {
        depth++;
        maxDepth = Math.max(maxDepth, depth);
        if (++count < total) t.publish("chain", new Uint8Array(0));
        depth--;
      });
      let countWhenTimerFired = -1;
      const timer = setTimeout(() => (countWhenTimerFired = count), 0);
      t.publish("chain", new Uint8Array(0));
      await waitFor(() => count === total && countWhenTimerFired >= 0, {
        timeoutMs: 10_000,
        message: "chain",
      });
      clearTimeout(timer);
      assert.equal(maxDepth, 1);
      assert.ok(
        countWhenTimerFired < total,
        `a timer ran while the chain was going (at ${countWhenTimerFired})`,
      );
    },
  );

  it("a subscription made after publish does not receive that message", TEST_TIMEOUT, async () => {
    const bus = new MemoryBus();
    const t = new MemoryTransport({ bus });
    open.push(t);
    let early = 0;
    let late = 0;
    t.subscribe("s", () => early++);
    t.publish("s", new Uint8Array(0));
    t.subscribe("s", () => late++);
    await t.flush();
    assert.equal(early, 1);
    assert.equal(late, 0);
  });

  it("validates fault options", () => {
    const bus = new MemoryBus();
    assert.throws(() => bus.drop({ probability: 1.5 }), HamokConfigError);
    assert.throws(() => bus.drop({ subject: "a.>.b" }), HamokConfigError);
    assert.throws(() => bus.drop({ times: 0 }), HamokConfigError);
    assert.throws(() => bus.delay({ ms: -1 }), HamokConfigError);
    assert.throws(() => bus.duplicate({ copies: 0 }), HamokConfigError);
    assert.deepEqual(bus.faults, []);
  });
});
