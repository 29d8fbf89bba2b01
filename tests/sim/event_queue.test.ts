import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventQueue } from "./event_queue.ts";
import { Prng } from "./prng.ts";

describe("EventQueue", () => {
  it("pops in time order, ties in insertion order", () => {
    const q = new EventQueue<string>();
    q.push(5, "e");
    q.push(1, "a");
    q.push(3, "c1");
    q.push(3, "c2");
    q.push(0, "z");
    q.push(3, "c3");
    assert.equal(q.peekTime(), 0);
    const out: string[] = [];
    while (q.size > 0) out.push(q.pop()!);
    assert.deepEqual(out, ["z", "a", "c1", "c2", "c3", "e"]);
    assert.equal(q.pop(), undefined);
    assert.equal(q.peekTime(), Infinity);
  });

  it("agrees with a sorted reference on random input interleaved with pops", () => {
    const rng = new Prng(17);
    const q = new EventQueue<number>();
    const ref: { t: number; s: number }[] = [];
    let seq = 0;
    for (let round = 0; round < 2000; round++) {
      if (rng.chance(0.6) || ref.length === 0) {
        const t = rng.int(50);
        q.push(t, seq);
        ref.push({ t, s: seq++ });
      } else {
        ref.sort((a, b) => a.t - b.t || a.s - b.s);
        const want = ref.shift()!;
        assert.equal(q.pop(), want.s);
      }
      assert.equal(q.size, ref.length);
    }
  });
});
