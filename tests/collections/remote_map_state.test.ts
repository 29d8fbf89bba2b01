import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import type { ApplyContext } from "../../src/cluster/state_machine.ts";
import {
  HamokRemoteMapState,
  type HamokRemoteMapStateObserver,
  type RemoteOpOutcome,
} from "../../src/collections/remote_map_state.ts";
import { MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import {
  clusterOfRemoteMark,
  decodeRemoteMark,
  encodeRemoteMark,
} from "../../src/collections/remote_map_batch.ts";

let index = 0;
const ctx = (): ApplyContext => ({ index: ++index, requestId: undefined, proposerPeerId: "p" });

/** Adds `hooks` to the state's observer (the parts not given do nothing). */
function observe(state: HamokRemoteMapState, hooks: Partial<HamokRemoteMapStateObserver>): void {
  const base: HamokRemoteMapStateObserver = state.observer ?? {
    inserted() {},
    updated() {},
    removed() {},
    cleared() {},
    enqueued() {},
    executed() {},
    restored() {},
    failed() {},
  };
  state.observer = { ...base, ...hooks };
}

function recorder(state: HamokRemoteMapState): string[] {
  const log: string[] = [];
  const s = (v: unknown) => JSON.stringify(v);
  observe(state, { inserted: (k, v) => log.push(`insert ${s(k)}=${s(v)}`) });
  observe(state, { updated: (k, o, v) => log.push(`update ${s(k)} ${s(o)}->${s(v)}`) });
  observe(state, { removed: (k, o) => log.push(`remove ${s(k)} (${s(o)})`) });
  observe(state, { cleared: () => log.push("clear") });
  return log;
}

function executed(upTo: number, outcomes: [number, RemoteOpOutcome][]) {
  return { upTo, data: encodeCbor(outcomes) };
}

describe("HamokRemoteMapState", () => {
  it("queues committed operations and settles them from the executed outcomes, with events", () => {
    const state = new HamokRemoteMapState("m");
    const log = recorder(state);
    const results = new Map<number, unknown>();
    observe(state, { executed: (i, r) => results.set(i, r) });
    const pending: number[] = [];
    observe(state, { enqueued: (i) => pending.push(i) });
    const ops: [string, unknown][] = [
      ["set", ["a", 1]],
      ["set", ["a", 2]],
      ["insert", ["a", 9]],
      ["insert", ["b", 0]],
      ["setAll", [["c", false], ["a", 3]]],
      ["insertAll", [["c", 1], ["d", ""]]],
      ["updateIf", ["d", "x", ""]],
      ["updateIf", ["d", "y", "nope"]],
      ["removeIf", ["b", 1]],
      ["removeIf", ["b", 0]],
      ["delete", ["zz"]],
      ["remove", ["c"]],
      ["deleteAll", ["a", "zz"]],
      ["removeAll", ["d", "zz"]],
      ["clear", null],
    ];
    const indexes = ops.map(([op, args]) => state.apply(op, args, ctx()) as number);
    assert.deepEqual(pending, indexes);
    assert.equal(state.pendingCount, ops.length);
    assert.equal(state.lastPendingIndex, indexes.at(-1));
    assert.deepEqual(state.pendingBatch(2).map((p) => p.op), ["set", "set"]);
    // what an executor found, in order (undefined: absent)
    const outcomes: RemoteOpOutcome[] = [
      [[undefined]],
      [[1]],
      [[2]],
      [[undefined]],
      [[undefined, 2]],
      [[false, undefined]],
      [[""], true],
      [["x"], false],
      [[0], false],
      [[0], true],
      [[undefined]],
      [[false]],
      [[3, undefined]],
      [["x", undefined]],
      [[]],
    ];
    const first = state.apply(
      "executed",
      executed(indexes[6], indexes.slice(0, 7).map((i, n) => [i, outcomes[n]])),
      ctx(),
    );
    assert.equal(first, true);
    assert.equal(state.executedIndex, indexes[6]);
    assert.equal(state.pendingCount, ops.length - 7);
    const rest = indexes.slice(7).map((i, n): [number, RemoteOpOutcome] => [i, outcomes[7 + n]]);
    assert.equal(state.apply("executed", executed(indexes.at(-1)!, rest), ctx()), true);
    // a second confirmation of the same range changes nothing
    assert.equal(state.apply("executed", executed(indexes.at(-1)!, rest), ctx()), false);
    assert.equal(state.pendingCount, 0);
    assert.deepEqual(log, [
      `insert "a"=1`,
      `update "a" 1->2`,
      `insert "b"=0`,
      `insert "c"=false`,
      `update "a" 2->3`,
      `insert "d"=""`,
      `update "d" ""->"x"`,
      `remove "b" (0)`,
      `remove "c" (false)`,
      `remove "a" (3)`,
      `remove "d" ("x")`,
      "clear",
    ]);
    assert.deepEqual(indexes.map((i) => results.get(i)), [
      undefined,
      1,
      2,
      undefined,
      [["a", 2]],
      [["c", false]],
      true,
      false,
      false,
      true,
      false,
      true,
      ["a"],
      [["d", "x"]],
      undefined,
    ]);
    for (const i of indexes) assert.equal(state.resultOf(i).known, true);
    assert.equal(state.resultOf(-1).known, false);
  });

  it("snapshots pending operations, the executed index and the results, and restores them", () => {
    const source = new HamokRemoteMapState("m");
    const i1 = source.apply("set", ["k", { deep: [1] }], ctx()) as number;
    const i2 = source.apply("insert", ["k", 5], ctx()) as number;
    source.apply("executed", executed(i1, [[i1, [[undefined]]]]), ctx());
    const target = new HamokRemoteMapState("m");
    let restored = 0;
    observe(target, { restored: () => restored++ });
    target.restore(decodeCbor(encodeCbor(source.snapshot())));
    assert.equal(restored, 1);
    assert.equal(target.executedIndex, i1);
    assert.equal(target.pendingCount, 1);
    assert.deepEqual(target.pendingBatch(10), [{ index: i2, op: "insert", args: ["k", 5] }]);
    assert.deepEqual(target.resultOf(i1), { known: true, result: undefined });
    // it continues like the source
    const results: unknown[] = [];
    observe(target, { executed: (_i, r) => results.push(r) });
    target.apply("executed", executed(i2, [[i2, [[{ deep: [1] }]]]]), ctx());
    assert.deepEqual(results, [{ deep: [1] }]);
  });

  it("keeps a bounded window of results", () => {
    const state = new HamokRemoteMapState("m", 3);
    const indexes = Array.from({ length: 5 }, () => state.apply("delete", ["k"], ctx()) as number);
    state.apply("executed", executed(indexes.at(-1)!, indexes.map((i) => [i, [[undefined]]])), ctx());
    assert.deepEqual(indexes.map((i) => state.resultOf(i).known), [false, false, true, true, true]);
  });

  it("an executed command without an outcome for a pending operation reports an error", () => {
    const state = new HamokRemoteMapState("m");
    const errors: Error[] = [];
    observe(state, { failed: (e) => errors.push(e) });
    const i = state.apply("set", ["k", 1], ctx()) as number;
    state.apply("executed", executed(i, []), ctx());
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /no outcome/);
    assert.equal(state.pendingCount, 0);
    const j = state.apply("set", ["k", 1], ctx()) as number;
    state.apply("executed", { upTo: j, data: new Uint8Array([0xff]) }, ctx());
    assert.equal(errors.length, 2);
    assert.equal(state.pendingCount, 1, "an unreadable confirmation executes nothing");
    assert.equal(state.apply("unknown-op", null, ctx()), undefined);
  });

  it("refuses a mark that is not from its own log (at or after the command reporting it)", () => {
    // whole-peer simulator: a second cluster on the same store took the first cluster's mark,
    // then its own operations sat below the executed index and its leader rewrote them forever
    const state = new HamokRemoteMapState("m");
    const errors: Error[] = [];
    observe(state, { failed: (e) => errors.push(e) });
    const i = state.apply("set", ["k", 1], ctx()) as number;
    const at = index + 1;
    assert.equal(state.apply("executed", executed(at + 40, [[i, [[undefined]]]]), ctx()), false);
    assert.equal(state.apply("executed", executed(at + 1, []), { ...ctx(), index: at + 1 }), false);
    assert.equal(errors.length, 2);
    assert.match(errors[0]!.message, /not from this cluster's log/);
    assert.equal(state.executedIndex, 0);
    assert.deepEqual(state.pendingBatch(5).map((p) => p.index), [i]);
    // its own confirmation still settles it
    assert.equal(state.apply("executed", executed(i, [[i, [[undefined]]]]), ctx()), true);
    assert.equal(state.pendingCount, 0);
  });
});

describe("remote map marks", () => {
  it("name the cluster whose log counts their index, and older marks still read", () => {
    const outcomes: [number, RemoteOpOutcome][] = [[3, [[undefined]]], [4, [[1], true]]];
    const tagged = decodeRemoteMark(encodeRemoteMark("uid-1", outcomes));
    assert.equal(tagged.clusterUid, "uid-1");
    assert.deepEqual(tagged.outcomes, outcomes);
    // a mark written before the cluster was recorded: the outcomes alone
    const old = decodeRemoteMark(encodeCbor(outcomes));
    assert.equal(old.clusterUid, undefined);
    assert.deepEqual(old.outcomes, outcomes);
    assert.equal(clusterOfRemoteMark(encodeRemoteMark("uid-2", [])), "uid-2");
    assert.equal(clusterOfRemoteMark(encodeCbor({ c: 7, o: [] })), undefined);
    assert.equal(clusterOfRemoteMark(new Uint8Array([0xff, 0x00])), undefined);
    assert.throws(() => decodeRemoteMark(encodeCbor("nope")), TypeError);
  });

  it("a state whose log starts over forgets the old log's executed index, pending operations and results", () => {
    const state = new HamokRemoteMapState("m");
    let dropped = -1;
    observe(state, { logRestarted: (n) => (dropped = n) });
    const base = index;
    state.apply("set", ["a", 1], ctx());
    state.apply("set", ["b", 2], ctx());
    state.apply("executed", executed(base + 1, [[base + 1, [[undefined]]]]), ctx());
    assert.equal(state.executedIndex, base + 1);
    assert.equal(state.resultOf(base + 1).known, true);
    assert.equal(state.pendingCount, 1);
    state.logRestarted();
    assert.equal(dropped, 1);
    assert.equal(state.executedIndex, 0);
    assert.equal(state.pendingCount, 0);
    assert.equal(state.resultOf(base + 1).known, false);
    // the new log's first operation is pending above the executed index again
    state.apply("set", ["a", 5], { index: 1, requestId: undefined, proposerPeerId: "p" });
    assert.deepEqual(state.pendingBatch(8).map((p) => p.index), [1]);
  });
});

describe("MemoryRemoteStore", () => {
  it("writes atomically only at the expected mark, and logs what it executed", async () => {
    const store = new MemoryRemoteStore<string, number>();
    assert.equal(await store.readMark(), undefined);
    const mark = { index: 3, data: new Uint8Array([1]) };
    const ok = await store.write({
      expectedIndex: 0,
      mark,
      clear: false,
      deletes: [],
      sets: [["a", 0], ["b", 1]],
      ops: [{ index: 2, op: "set" }, { index: 3, op: "set" }],
    });
    assert.equal(ok, true);
    assert.deepEqual(await store.readMark(), mark);
    const stale = await store.write({
      expectedIndex: 0,
      mark: { index: 4, data: new Uint8Array() },
      clear: true,
      deletes: [],
      sets: [],
      ops: [{ index: 4, op: "clear" }],
    });
    assert.equal(stale, false);
    assert.deepEqual(await store.getMany(["a", "b", "c"]), [0, 1, undefined]);
    assert.equal(await store.size(), 2);
    const next = await store.write({
      expectedIndex: 3,
      mark: { index: 5, data: new Uint8Array() },
      clear: true,
      deletes: ["zz"],
      sets: [["c", 2]],
      ops: [{ index: 5, op: "clear" }],
    });
    assert.equal(next, true);
    const entries: (readonly [string, number])[] = [];
    for await (const entry of store.entries()) entries.push(entry);
    assert.deepEqual(entries, [["c", 2]]);
    assert.deepEqual(store.executionLog, [2, 3, 5]);
    assert.equal(store.acceptedWrites, 2);
    assert.equal(store.rejectedWrites, 1);
    assert.deepEqual(store.toMap(), new Map([["c", 2]]));
  });

  it("compares keys by content, and takes a custom key identity", async () => {
    const store = new MemoryRemoteStore<unknown, string>();
    await store.write({
      expectedIndex: 0,
      mark: { index: 1, data: new Uint8Array() },
      clear: false,
      deletes: [],
      sets: [[{ id: 1 }, "obj"], [1, "num"], ["1", "str"], [new Uint8Array([1]), "bytes"]],
      ops: [],
    });
    assert.deepEqual(await store.getMany([{ id: 1 }, 1, "1", new Uint8Array([1])]), [
      "obj",
      "num",
      "str",
      "bytes",
    ]);
    assert.equal(await store.size(), 4);
    const byId = new MemoryRemoteStore<{ id: number; name?: string }, number>({ keyOf: (k) => String(k.id) });
    await byId.write({
      expectedIndex: 0,
      mark: { index: 1, data: new Uint8Array() },
      clear: false,
      deletes: [],
      sets: [[{ id: 7, name: "x" }, 1]],
      ops: [],
    });
    assert.deepEqual(await byId.getMany([{ id: 7 }]), [1]);
  });
});
