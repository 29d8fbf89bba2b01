import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkLinearizability, type Model, type Operation } from "./linearizability.ts";
import { type KvInput, kvModel, type KvOperation, type KvOutput } from "./kv_model.ts";
import { Prng } from "./prng.ts";

const put = (c: number, key: string, value: string, prev: string | null, call: number, ret: number) =>
  ({ clientId: c, input: { op: "put", key, value }, output: prev, call, ret }) satisfies KvOperation;
const get = (c: number, key: string, value: string | null, call: number, ret: number) =>
  ({ clientId: c, input: { op: "get", key }, output: value, call, ret }) satisfies KvOperation;
const cas = (
  c: number,
  key: string,
  expected: string | null,
  value: string,
  wrote: boolean,
  call: number,
  ret: number,
) =>
  ({
    clientId: c,
    input: { op: "cas", key, expected, value },
    output: wrote,
    call,
    ret,
  }) satisfies KvOperation;
const open = (c: number, input: KvInput, call: number): KvOperation => ({
  clientId: c,
  input,
  call,
  ret: Infinity,
});

describe("checkLinearizability (key-value model)", () => {
  it("accepts a sequential history", () => {
    const r = checkLinearizability(kvModel, [
      put(1, "a", "x", null, 0, 1),
      get(2, "a", "x", 2, 3),
      put(1, "a", "y", "x", 4, 5),
      get(2, "a", "y", 6, 7),
    ]);
    assert.equal(r.verdict, "ok");
    assert.equal(r.partitions, 1);
  });

  it("rejects a stale read after a completed write", () => {
    const r = checkLinearizability(kvModel, [put(1, "a", "x", null, 0, 1), get(2, "a", null, 2, 3)]);
    assert.equal(r.verdict, "illegal");
    assert.equal(r.failedPartition?.length, 2);
  });

  it("accepts either value for a read concurrent with a write", () => {
    for (const seen of ["x", null]) {
      const r = checkLinearizability(kvModel, [put(1, "a", "x", null, 0, 10), get(2, "a", seen, 1, 2)]);
      assert.equal(r.verdict, "ok", `read of ${seen}`);
    }
  });

  it("rejects reads that observe two concurrent writes in both orders", () => {
    const r = checkLinearizability(kvModel, [
      put(1, "a", "x", null, 0, 100),
      put(2, "a", "y", null, 0, 100),
      get(3, "a", "x", 10, 11),
      get(3, "a", "y", 12, 13),
      get(3, "a", "x", 14, 15),
    ]);
    // Both puts answered "null" as previous value, which is itself impossible for two writes.
    assert.equal(r.verdict, "illegal");
    const r2 = checkLinearizability(kvModel, [
      put(1, "a", "x", null, 0, 100),
      put(2, "a", "y", "x", 0, 100),
      get(3, "a", "x", 10, 11),
      get(3, "a", "y", 12, 13),
      get(3, "a", "x", 14, 15),
    ]);
    assert.equal(r2.verdict, "illegal");
    const r3 = checkLinearizability(kvModel, [
      put(1, "a", "x", null, 0, 100),
      put(2, "a", "y", "x", 0, 100),
      get(3, "a", "x", 10, 11),
      get(3, "a", "y", 12, 13),
    ]);
    assert.equal(r3.verdict, "ok");
  });

  it("lets an operation of unknown outcome take effect late, or never", () => {
    const late = checkLinearizability(kvModel, [
      open(1, { op: "put", key: "a", value: "x" }, 0),
      get(2, "a", null, 10, 11),
      get(2, "a", "x", 50, 51),
    ]);
    assert.equal(late.verdict, "ok");
    const never = checkLinearizability(kvModel, [
      open(1, { op: "put", key: "a", value: "x" }, 0),
      get(2, "a", null, 10, 11),
      get(2, "a", null, 50, 51),
    ]);
    assert.equal(never.verdict, "ok");
  });

  it("does not let an effect of unknown outcome be undone", () => {
    const r = checkLinearizability(kvModel, [
      open(1, { op: "put", key: "a", value: "x" }, 0),
      get(2, "a", "x", 10, 11),
      get(2, "a", null, 50, 51),
    ]);
    assert.equal(r.verdict, "illegal");
  });

  it("does not let an operation take effect before it was invoked", () => {
    const r = checkLinearizability(kvModel, [
      get(2, "a", "x", 0, 1),
      put(1, "a", "x", null, 5, 6),
    ]);
    assert.equal(r.verdict, "illegal");
  });

  it("rejects two compare-and-sets that both won from the same value", () => {
    const r = checkLinearizability(kvModel, [
      put(1, "a", "x", null, 0, 1),
      cas(2, "a", "x", "y", true, 2, 10),
      cas(3, "a", "x", "z", true, 3, 11),
    ]);
    assert.equal(r.verdict, "illegal");
    const ok = checkLinearizability(kvModel, [
      put(1, "a", "x", null, 0, 1),
      cas(2, "a", "x", "y", true, 2, 10),
      cas(3, "a", "x", "z", false, 3, 11),
      get(1, "a", "y", 12, 13),
    ]);
    assert.equal(ok.verdict, "ok");
  });

  it("accepts a compare-and-set of unknown outcome either way", () => {
    for (const seen of ["y", "x"]) {
      const r = checkLinearizability(kvModel, [
        put(1, "a", "x", null, 0, 1),
        open(2, { op: "cas", key: "a", expected: "x", value: "y" }, 2),
        get(3, "a", seen, 5, 6),
      ]);
      assert.equal(r.verdict, "ok", `read of ${seen}`);
    }
  });

  it("treats equal times as concurrent", () => {
    const r = checkLinearizability(kvModel, [put(1, "a", "x", null, 0, 5), get(2, "a", null, 5, 6)]);
    assert.equal(r.verdict, "ok");
  });

  it("checks keys independently and reports the failing key's operations", () => {
    const r = checkLinearizability(kvModel, [
      put(1, "a", "x", null, 0, 1),
      get(2, "a", "x", 2, 3),
      put(1, "b", "u", null, 0, 1),
      get(2, "b", "v", 2, 3),
    ]);
    assert.equal(r.verdict, "illegal");
    assert.equal(r.partitions, 2);
    assert.ok(r.failedPartition?.every((op) => op.input.key === "b"));
    assert.ok(r.longestPrefix !== undefined && r.longestPrefix.length >= 1);
    assert.equal(kvModel.describe!(r.failedPartition![0]), "c1 put(b, u) -> null [0, 1]");
  });

  it("answers unknown when the search budget runs out", () => {
    const ops: KvOperation[] = [];
    for (let i = 0; i < 12; i++) ops.push(put(i, "a", `v${i}`, `never`, 0, 100));
    const r = checkLinearizability(kvModel, ops, { maxSteps: 5 });
    assert.equal(r.verdict, "unknown");
  });
});

/** Builds a random concurrent history that is linearizable by construction. */
function randomHistory(rng: Prng, clients: number, opsPerClient: number): KvOperation[] {
  // Each operation gets a call time, a linearization point after it and a return time after that;
  // outputs are computed by applying the operations in linearization-point order.
  interface Pending {
    input: KvInput;
    clientId: number;
    call: number;
    point: number;
    ret: number;
    output?: KvOutput;
  }
  const all: Pending[] = [];
  for (let c = 0; c < clients; c++) {
    let t = rng.int(5);
    for (let i = 0; i < opsPerClient; i++) {
      const call = t + rng.int(3);
      const point = call + 1 + rng.int(10);
      const ret = point + 1 + rng.int(10);
      t = ret + 1;
      const key = rng.pick(["a", "b"]);
      const kind = rng.int(3);
      const value = `c${c}-${i}`;
      const input: KvInput = kind === 0 ? { op: "put", key, value } : kind === 1 ? { op: "get", key } : {
        op: "cas",
        key,
        expected: rng.chance(0.5) ? null : `c${rng.int(clients)}-${rng.int(i + 1)}`,
        value,
      };
      all.push({ input, clientId: c, call: call * 2, point: point * 2 + 1, ret: ret * 2 });
    }
  }
  const state = new Map<string, string | null>();
  for (const p of [...all].sort((a, b) => a.point - b.point)) {
    const cur = state.get(p.input.key) ?? null;
    const res = kvModel.step(cur, p.input, undefined);
    p.output = p.input.op === "cas" ? cur === p.input.expected : cur;
    state.set(p.input.key, res.state);
  }
  return all.map((p) => ({
    clientId: p.clientId,
    input: p.input,
    output: p.output,
    call: p.call,
    ret: p.ret,
  }));
}

describe("checkLinearizability (random histories)", () => {
  it("accepts histories that are linearizable by construction", () => {
    const rng = new Prng(7);
    for (let round = 0; round < 40; round++) {
      const h = randomHistory(rng, 4, 25);
      assert.equal(checkLinearizability(kvModel, h).verdict, "ok", `round ${round}`);
    }
  });

  it("rejects the same histories with one read answer corrupted", () => {
    const rng = new Prng(11);
    let rejected = 0;
    for (let round = 0; round < 40; round++) {
      const h = randomHistory(rng, 4, 25);
      const reads = h.map((op, i) => [op, i] as const).filter(([op]) => op.input.op === "get");
      if (reads.length === 0) continue;
      const [op, i] = rng.pick(reads);
      h[i] = { ...op, output: "never-written" };
      assert.equal(checkLinearizability(kvModel, h).verdict, "illegal", `round ${round}`);
      rejected++;
    }
    assert.ok(rejected > 30);
  });

  it("works with a custom model without partitioning", () => {
    // A counter: inc answers the new value.
    const counter: Model<number, "inc" | "read", number> = {
      init: () => 0,
      step: (s, i, o) => {
        const next = i === "inc" ? s + 1 : s;
        return { ok: o === undefined || o === next, state: next };
      },
      key: (s) => String(s),
    };
    const h: Operation<"inc" | "read", number>[] = [
      { clientId: 1, input: "inc", output: 2, call: 0, ret: 10 },
      { clientId: 2, input: "inc", output: 1, call: 1, ret: 9 },
      { clientId: 3, input: "read", output: 2, call: 11, ret: 12 },
    ];
    assert.equal(checkLinearizability(counter, h).verdict, "ok");
    h.push({ clientId: 3, input: "read", output: 1, call: 13, ret: 14 });
    assert.equal(checkLinearizability(counter, h).verdict, "illegal");
  });
});
