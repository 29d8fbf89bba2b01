import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DedupWindow, requestIdHash } from "../../src/cluster/dedup_window.ts";

/** Two groups of distinct ids whose hashes are equal (found by search: 30 bits collide often). */
function collidingIds(count: number): string[][] {
  const byHash = new Map<number, string[]>();
  const groups: string[][] = [];
  for (let i = 0; groups.length < count; i++) {
    const id = `peer/${i}:s${i * 7}`;
    const h = requestIdHash(id);
    const group = byHash.get(h);
    if (group === undefined) byHash.set(h, [id]);
    else {
      group.push(id);
      if (group.length === 2) groups.push(group);
    }
  }
  return groups;
}

describe("DedupWindow", () => {
  it("finds the ids of the window with their results and forgets the oldest when full", () => {
    const w = new DedupWindow(3);
    w.remember("a", 1);
    w.remember("b", { two: 2 });
    w.remember("c", undefined);
    assert.equal(w.resultAt(w.find("a")), 1);
    assert.deepEqual(w.resultAt(w.find("b")), { two: 2 });
    assert.ok(w.find("c") >= 0);
    w.remember("d", 4, 77);
    assert.equal(w.find("a"), -1);
    assert.equal(w.markAt(w.find("d")), 77);
    assert.deepEqual(w.pairs(), [["b", { two: 2 }, 0], ["c", undefined, 0], ["d", 4, 77]]);
    w.clear();
    assert.equal(w.find("b"), -1);
    assert.deepEqual(w.pairs(), []);
  });

  it("tells apart ids whose hashes collide, in any order of eviction", () => {
    const [[x, y], [p, q]] = collidingIds(2);
    assert.equal(requestIdHash(x!), requestIdHash(y!));
    const w = new DedupWindow(3);
    w.remember(x!, "x");
    w.remember(p!, "p");
    w.remember(y!, "y");
    assert.equal(w.resultAt(w.find(x!)), "x");
    assert.equal(w.resultAt(w.find(y!)), "y");
    w.remember(q!, "q"); // x leaves; y, probed past it, is still found
    assert.equal(w.find(x!), -1);
    assert.equal(w.resultAt(w.find(y!)), "y");
    w.remember("other", 0); // p leaves, q stays
    assert.equal(w.find(p!), -1);
    assert.equal(w.resultAt(w.find(q!)), "q");
    w.remember(x!, "x again"); // y leaves: x is found again, y no more
    assert.equal(w.find(y!), -1);
    assert.equal(w.resultAt(w.find(x!)), "x again");
  });

  it("agrees with a model over a long seeded run with colliding ids mixed in", () => {
    const groups = collidingIds(40).flat();
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const size = 16;
    const w = new DedupWindow(size);
    const model: [string, number][] = [];
    for (let step = 0; step < 20_000; step++) {
      const id = next() < 0.5 ? groups[Math.floor(next() * groups.length)]! : `id${Math.floor(next() * 64)}`;
      const inModel = model.find(([m]) => m === id);
      const slot = w.find(id);
      assert.equal(slot >= 0, inModel !== undefined, `step ${step}: ${id}`);
      if (inModel !== undefined) {
        assert.equal(w.resultAt(slot), inModel[1]);
        continue;
      }
      w.remember(id, step);
      model.push([id, step]);
      if (model.length > size) model.shift();
    }
    assert.deepEqual(w.pairs().map(([id, result]) => [id, result]), model);
  });
});
