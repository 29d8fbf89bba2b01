import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Prng } from "./prng.ts";

describe("Prng", () => {
  it("produces the same sequence for the same seed and different ones for different seeds", () => {
    const a = new Prng(123);
    const b = new Prng(123);
    const c = new Prng(124);
    const sa = Array.from({ length: 16 }, () => a.nextU32());
    const sb = Array.from({ length: 16 }, () => b.nextU32());
    const sc = Array.from({ length: 16 }, () => c.nextU32());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
  });

  it("matches the reference xoshiro128** output", () => {
    const rng = Prng.fromState(1, 2, 3, 4);
    const got = Array.from({ length: 6 }, () => rng.nextU32());
    assert.deepEqual(got, [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it("stays in range and is roughly uniform", () => {
    const rng = new Prng(99);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) {
      const f = rng.next();
      assert.ok(f >= 0 && f < 1);
      buckets[rng.int(10)]++;
      const r = rng.range(3, 5);
      assert.ok(r >= 3 && r <= 5 && Number.isInteger(r));
    }
    for (const n of buckets) assert.ok(n > 1700 && n < 2300, `bucket ${n}`);
  });

  it("forks independent, reproducible streams", () => {
    const a = new Prng(5);
    const fa = a.fork();
    const b = new Prng(5);
    const fb = b.fork();
    assert.equal(fa.nextU32(), fb.nextU32());
    assert.equal(a.nextU32(), b.nextU32());
    assert.notEqual(new Prng(5).fork().nextU32(), new Prng(5).nextU32());
  });

  it("picks by weight and never picks a zero weight", () => {
    const rng = new Prng(3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[rng.weighted([1, 0, 3])]++;
    assert.equal(counts[1], 0);
    assert.ok(counts[2] > counts[0] * 2);
  });
});
