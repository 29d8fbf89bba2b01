import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { VirtualNetwork } from "./network.ts";
import { Prng } from "./prng.ts";

const calm = { dropRate: 0, duplicateRate: 0, delayRate: 0, minLatency: 1, maxLatency: 1, longDelay: 0 };

describe("VirtualNetwork", () => {
  it("delivers once after the latency when nothing is wrong", () => {
    const net = new VirtualNetwork(new Prng(1), { ...calm });
    assert.deepEqual([...net.plan(100, "a", "b")], [101]);
    assert.deepEqual(net.counters, { drop: 0, delay: 0, duplicate: 0, reorder: 0 });
  });

  it("drops, duplicates and delays at the configured rates and counts them", () => {
    const net = new VirtualNetwork(new Prng(2), {
      dropRate: 0.2,
      duplicateRate: 0.1,
      delayRate: 0.1,
      minLatency: 1,
      maxLatency: 20,
      longDelay: 500,
    });
    let delivered = 0;
    for (let i = 0; i < 10_000; i++) delivered += net.plan(i, "a", "b").length;
    const c = net.counters;
    assert.ok(c.drop > 1700 && c.drop < 2300, `drops ${c.drop}`);
    assert.ok(c.duplicate > 600 && c.duplicate < 1000, `dups ${c.duplicate}`);
    assert.ok(c.delay > 700, `delays ${c.delay}`);
    assert.ok(c.reorder > 0, "jitter reorders");
    assert.equal(delivered, 10_000 - c.drop + c.duplicate);
  });

  it("honours one-way and symmetric cuts, counted per cut", () => {
    const net = new VirtualNetwork(new Prng(3), { ...calm });
    const oneWay = net.block([["a", "b"]]);
    assert.equal(net.plan(0, "a", "b").length, 0);
    assert.equal(net.plan(0, "b", "a").length, 1);
    const both = net.block([["a", "b"], ["b", "a"]]);
    net.unblock(oneWay);
    assert.ok(net.isBlocked("a", "b"), "still cut by the second partition");
    assert.ok(net.isBlocked("b", "a"));
    net.unblock(both);
    assert.ok(!net.isBlocked("a", "b"));
    const stale = net.block([["c", "d"]]);
    net.unblockAll();
    assert.equal(net.blockedLinks, 0);
    // A cut lifted by unblockAll must not lift a newer cut of the same link later.
    net.block([["c", "d"]]);
    net.unblock(stale);
    assert.ok(net.isBlocked("c", "d"));
  });
});
