import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadOnly } from "../../src/raft/read_only.ts";

describe("ReadOnly", () => {
  it("queues requests in order, ignores duplicates, and releases up to an acknowledged context", () => {
    const ro = new ReadOnly();
    assert.equal(ro.lastCtx, undefined);
    assert.equal(ro.add("r1", 5, "a"), true);
    assert.equal(ro.add("r2", 6, "b"), true);
    assert.equal(ro.add("r1", 9, "a"), false);
    assert.equal(ro.add("r3", 6, "a"), true);
    assert.equal(ro.size, 3);
    assert.equal(ro.lastCtx, "r3");
    assert.equal(ro.ack("nope", "x"), undefined);
    const r2 = ro.ack("r2", "c");
    assert.deepEqual([...(r2?.acks ?? [])], ["c"]);
    assert.deepEqual(ro.advance("r2").map((r) => [r.ctx, r.index, r.from]), [["r1", 5, "a"], ["r2", 6, "b"]]);
    assert.deepEqual(ro.advance("r2"), []);
    assert.deepEqual(ro.drain().map((r) => r.ctx), ["r3"]);
    assert.equal(ro.size, 0);
  });
});
