/**
 * A remote map operation whose own keys or values the leader's codecs cannot decode: `import()`
 * refuses such entries before proposing anything, and one that reaches the log anyway fails on its
 * own (its caller gets `HamokCodecError`) instead of blocking every later operation of the map.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { decodeValue, type ValueCodec } from "../../src/codec/value_codec.ts";
import type { ApplyContext } from "../../src/cluster/state_machine.ts";
import { HamokCodecError, HamokRemoteError } from "../../src/errors.ts";
import { Hamok } from "../../src/hamok.ts";
import type { HamokRemoteMap } from "../../src/collections/remote_map.ts";
import {
  decodeRemoteMark,
  encodeRemoteMark,
  prepareRemoteBatch,
  type RemoteBatchIo,
} from "../../src/collections/remote_map_batch.ts";
import {
  HamokRemoteMapState,
  type PendingRemoteOp,
  type RemoteOpFailure,
} from "../../src/collections/remote_map_state.ts";
import { MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { FAST, memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { GatedStore } from "./remote_map_gated_store.ts";
import { recordEvents } from "./remote_map_suite.ts";

/** Refuses (throws on decoding) every string that starts with "bad". */
const strict: ValueCodec<string> = {
  encode: (value) => value,
  decode: (data) => {
    const text = String(data);
    if (text.startsWith("bad")) throw new SyntaxError(`strict codec refuses ${JSON.stringify(text)}`);
    return text;
  },
};
/** Decodes anything (a peer configured with other codecs than the leader). */
const lenient: ValueCodec<string> = { encode: (value) => value, decode: (data) => String(data) };
const json: ValueCodec<{ n: number }> = {
  encode: (value) => JSON.stringify(value),
  decode: (data) => JSON.parse(data as string),
};

/** The error `promise` rejects with; fails the test if it resolves. */
function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then((value) => assert.fail(`resolved with ${JSON.stringify(value)}`), (error) => error);
}

/** The log index a "was not executed" error names. */
function indexIn(error: Error): number {
  const match = /log entry (\d+)/.exec(error.message);
  assert.ok(match, `no log entry in: ${error.message}`);
  return Number(match[1]);
}

describe("remote map: an operation the leader cannot decode", () => {
  it("import refuses an entry the value codec cannot decode before proposing anything; the map keeps working", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"], { peerTimeoutMs: 60_000 });
    try {
      const leader = cluster.leader()!;
      const follower = cluster.peers.find((p) => p !== leader)!;
      const db = new MemoryRemoteStore<string, { n: number }>();
      const mapId = "import-value";
      const maps = cluster.peers.map((p) =>
        p.createRemoteMap<string, { n: number }>({
          mapId,
          store: new GatedStore(db),
          valueCodec: json,
          requestTimeoutInMs: 3000,
        })
      );
      const ml = maps[cluster.peers.indexOf(leader)];
      const mf = maps[cluster.peers.indexOf(follower)];
      assert.equal(await ml.set("ok", { n: 1 }), undefined);
      const markBefore = db.currentMark?.index;
      for (const map of [ml, mf]) {
        const snapshot = { mapId, entries: [["a", '{"n":2}'], ["k", "not json"]] as const };
        const error = await rejection(map.import(snapshot, { timeoutMs: 1500 }));
        assert.ok(error instanceof HamokCodecError, String(error));
        assert.match(error.message, /snapshot entry 1\b/);
        assert.ok(error.cause instanceof Error, "the codec's error is the cause");
      }
      // nothing was proposed: no operation waits anywhere, and the store's mark did not move
      await Promise.all(cluster.peers.map((p) => p.waitUntilCommitHead()));
      assert.deepEqual(maps.map((m) => m.pendingOperations), [0, 0, 0]);
      assert.equal(db.currentMark?.index, markBefore);
      // the map keeps working: a later set resolves and executes once
      const executed = db.executionLog.length;
      assert.equal(await mf.set("after", { n: 2 }), undefined);
      assert.equal(db.executionLog.length, executed + 1);
      await mf.import({ mapId, entries: [["a", '{"n":3}']] });
      assert.deepEqual(
        db.toMap(),
        new Map([["ok", { n: 1 }], ["after", { n: 2 }], ["a", { n: 3 }]]),
      );
      for (const m of maps) m.close();
    } finally {
      await cluster.close();
    }
  });

  it("import checks keys, wants a codec's output where a codec is set, and values CBOR can carry otherwise", async () => {
    const hamok = new Hamok({ ...FAST, peerId: "solo", transport: new MemoryTransport() });
    try {
      await hamok.join({ timeoutMs: 5000 });
      const db = new MemoryRemoteStore<string, string>();
      const keyed = hamok.createRemoteMap<string, string>({
        mapId: "keyed",
        store: db,
        keyCodec: strict,
        valueCodec: lenient,
        requestTimeoutInMs: 1500,
      });
      const badKey = await rejection(
        keyed.import({ mapId: "keyed", entries: [["k1", "v"], ["k2", "v"], ["bad", "v"]] }),
      );
      assert.ok(badKey instanceof HamokCodecError, String(badKey));
      assert.match(badKey.message, /the key of snapshot entry 2\b/);
      // a number is not what a codec produces, even if this codec would turn it into a string
      const notWire = await rejection(keyed.import({ mapId: "keyed", entries: [["k1", 7]] }));
      assert.ok(notWire instanceof HamokCodecError, String(notWire));
      assert.match(notWire.message, /the value of snapshot entry 0\b/);
      const plainDb = new MemoryRemoteStore<string, unknown>();
      const plain = hamok.createRemoteMap<string, unknown>({
        mapId: "plain",
        store: plainDb,
        requestTimeoutInMs: 1500,
      });
      const notCbor = await rejection(plain.import({ mapId: "plain", entries: [["x", 1], ["y", () => 1]] }));
      assert.ok(notCbor instanceof HamokCodecError, String(notCbor));
      assert.match(notCbor.message, /snapshot entry 1\b/);
      await hamok.waitUntilCommitHead();
      assert.equal(keyed.pendingOperations + plain.pendingOperations, 0);
      assert.equal(db.currentMark, undefined, "nothing was written");
      assert.equal(plainDb.currentMark, undefined, "nothing was written");
      assert.equal(await keyed.set("k1", "v"), undefined);
      assert.equal(await plain.set("x", { deep: [1] }), undefined);
      assert.deepEqual([db.executionLog.length, plainDb.executionLog.length], [1, 1]);
    } finally {
      hamok.close();
    }
  });

  it("an operation in the log that the leader's codec refuses fails for its caller; the operations after it execute", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"], { peerTimeoutMs: 60_000 });
    try {
      const leader = cluster.leader()!;
      const proposer = cluster.peers.find((p) => p !== leader)!;
      const reported: Error[] = [];
      leader.on("error", (error) => reported.push(error));
      const db = new MemoryRemoteStore<string, string>();
      // only the proposer's codec takes "bad..." values: its writes of them reach the log unchecked
      const maps: HamokRemoteMap<string, string>[] = cluster.peers.map((p) =>
        p.createRemoteMap<string, string>({
          mapId: "poison",
          store: new GatedStore(db),
          valueCodec: p === proposer ? lenient : strict,
          requestTimeoutInMs: 3000,
        })
      );
      const logs = maps.map((m) => recordEvents(m));
      const mp = maps[cluster.peers.indexOf(proposer)];
      assert.equal(await mp.set("x", "1"), undefined);
      const executed = db.executionLog.length;
      // alone in the log: it fails, and does not hold up the set after it
      const error = await rejection(mp.set("k", "bad-1", { requestId: "poison-1" }));
      assert.ok(error instanceof HamokCodecError, String(error));
      assert.ok(error.cause instanceof HamokRemoteError, "the cause names the leader that refused it");
      assert.equal(error.cause.peerId, leader.localPeerId);
      assert.match(error.message, /strict codec refuses "bad-1"/);
      const failedIndex = indexIn(error);
      assert.equal(await mp.set("k2", "good"), undefined);
      // concurrent: a bad one among others (its key written again after it) fails the same way
      const bad = rejection(mp.set("k", "bad-2"));
      const after = [mp.set("k", "fine"), mp.set("x", "2")];
      const error2 = await bad;
      assert.ok(error2 instanceof HamokCodecError, String(error2));
      // the bad sets wrote nothing, so "k" was absent for the next set of it
      assert.deepEqual(await Promise.all(after), [undefined, "1"]);
      assert.equal(db.executionLog.length, executed + 3, "the other operations executed once each");
      for (const index of [failedIndex, indexIn(error2)]) {
        assert.ok(!db.executionLog.includes(index), `the failed operation ${index} was not executed`);
      }
      assert.deepEqual(db.toMap(), new Map([["x", "2"], ["k2", "good"], ["k", "fine"]]));
      // a retry with its request id gets the same failure, and executes nothing
      const retried = await rejection(mp.set("k", "bad-1", { requestId: "poison-1" }));
      assert.ok(retried instanceof HamokCodecError, String(retried));
      assert.equal(indexIn(retried), failedIndex);
      // every peer settled it the same way: nothing pending, no event of it, the same events
      await waitFor(() => maps.every((m) => m.pendingOperations === 0) && logs.every((l) => l.length === 4), {
        timeoutMs: 5000,
        message: "every peer executed the operations",
      });
      assert.deepEqual(
        [...logs[0]].sort(),
        ['insert "k"="fine"', 'insert "k2"="good"', 'insert "x"="1"', 'update "x" "1"->"2"'],
      );
      for (const log of logs) {
        assert.deepEqual(log, logs[0], "every peer saw the same events in the same order");
      }
      // the leader reported it once (the caller may be gone)
      const about = reported.filter((e) =>
        e instanceof HamokCodecError && e.message.includes(`log entry ${failedIndex}`)
      );
      assert.equal(about.length, 1, reported.map((e) => e.message).join("; "));
      assert.equal(db.executionLog.length, executed + 3);
      for (const m of maps) m.close();
    } finally {
      await cluster.close();
    }
  });

  it("the failure is decided once: a new leader whose codec could decode the operation reports the old leader's failure", async () => {
    const cluster = await startCluster(memoryTransports(), ["h1", "h2", "h3"], { requestTimeoutInMs: 8000 });
    try {
      const leader = cluster.leader()!;
      const proposer = cluster.peers.find((p) => p !== leader)!;
      const db = new MemoryRemoteStore<string, string>();
      const stores = cluster.peers.map(() => new GatedStore<string, string>(db));
      // only the leader is strict: whoever leads next would execute the bad value
      const maps = cluster.peers.map((p, i) =>
        p.createRemoteMap<string, string>({
          mapId: "decided",
          store: stores[i],
          valueCodec: p === leader ? strict : lenient,
          requestTimeoutInMs: 8000,
        })
      );
      const mp = maps[cluster.peers.indexOf(proposer)];
      assert.equal(await mp.set("x", "1"), undefined);
      // the leader writes the failure into the store's mark, then dies before confirming it
      stores[cluster.peers.indexOf(leader)].hangAfterWrite = true;
      const bad = rejection(mp.set("k", "bad-1"));
      await waitFor(() => db.acceptedWrites === 2, { timeoutMs: 5000, message: "the leader's write" });
      await cluster.crash(leader);
      const error = await bad;
      assert.ok(error instanceof HamokCodecError, String(error));
      assert.ok(error.cause instanceof HamokRemoteError);
      assert.equal(error.cause.peerId, leader.localPeerId, "the outcome the old leader recorded");
      assert.ok(!db.executionLog.includes(indexIn(error)));
      assert.equal(await mp.set("k", "fine"), undefined, "the failed set wrote nothing");
      assert.equal(await mp.get("k"), "fine");
      for (const m of maps) m.close();
    } finally {
      await cluster.close();
    }
  });

  it("the planner fails only the operations whose own data is undecodable, and still throws a store failure", async () => {
    const stored = new Map<string, string>([["a", "good-1"]]);
    const asked: string[] = [];
    let storeDown = false;
    const io: RemoteBatchIo<string, string> = {
      getMany: (keys) => {
        if (storeDown) return Promise.reject(new Error("the database is unavailable"));
        asked.push(...keys);
        return Promise.resolve(keys.map((k) => stored.get(k)));
      },
      decodeKey: (wire) => decodeValue(strict, wire as string),
      decodeValue: (wire) => decodeValue(strict, wire as string),
      wireValue: (value) => value,
      same: (a, b) => a === b,
      localPeerId: () => "leader-1",
    };
    const batch: PendingRemoteOp[] = [
      { index: 11, op: "set", args: ["n", "good-2"] },
      { index: 12, op: "set", args: ["b", "bad-2"] },
      { index: 13, op: "setAll", args: [["c", "x"], ["d", "bad-3"]] },
      { index: 14, op: "updateIf", args: ["a", "new", "good-1"] },
      { index: 15, op: "delete", args: ["e"] },
      { index: 16, op: "removeIf", args: ["a", "bad-4"] },
      { index: 17, op: "deleteAll", args: ["bad-key"] },
      { index: 18, op: "set", args: "not an array" },
    ];
    const plan = await prepareRemoteBatch(io, batch, 10, "uid");
    assert.deepEqual(plan.failed.map(([p]) => p.index), [12, 13, 16, 17, 18]);
    for (const [, error] of plan.failed) {
      assert.ok(error instanceof HamokCodecError);
      assert.ok(error.cause instanceof Error, "the decoding error is the cause");
    }
    assert.deepEqual(asked, ["n", "a", "e"], "nothing is read for a failed operation");
    assert.deepEqual(plan.write.ops.map((o) => o.index), [11, 14, 15]);
    assert.deepEqual(plan.write.sets, [["n", "good-2"], ["a", "new"]]);
    assert.deepEqual(plan.write.deletes, []);
    assert.equal(plan.write.mark.index, 18, "the mark moves past the failed operations");
    const outcomes = new Map(decodeRemoteMark(plan.write.mark.data).outcomes);
    assert.deepEqual(outcomes.get(11), [[undefined]]);
    assert.deepEqual(outcomes.get(14), [["good-1"], true]);
    assert.deepEqual(outcomes.get(15), [[undefined]]);
    const failure = (i: number) => outcomes.get(i)![2] as RemoteOpFailure;
    assert.deepEqual([failure(12)[0], failure(12)[2]], ["HAMOK_CODEC", "leader-1"]);
    assert.match(failure(12)[1], /^its value cannot be decoded: .*strict codec refuses "bad-2"/);
    assert.match(failure(13)[1], /^the value of entry 1 cannot be decoded/);
    assert.match(failure(16)[1], /^its expected value cannot be decoded/);
    assert.match(failure(17)[1], /^key 0 cannot be decoded/);
    assert.match(failure(18)[1], /^its arguments cannot be decoded/);
    // a store failure is no operation's fault: it is thrown (and the executor retries it)
    storeDown = true;
    await assert.rejects(prepareRemoteBatch(io, batch.slice(0, 1), 10, "uid"), /the database is unavailable/);
  });

  it("every peer's state settles a failed outcome with no events, keeps the failure, and snapshots it", () => {
    let logIndex = 0;
    const ctx = (): ApplyContext => ({ index: ++logIndex, requestId: undefined, proposerPeerId: "p" });
    const state = new HamokRemoteMapState("m");
    const events: string[] = [];
    const executed: unknown[] = [];
    state.observer = {
      inserted: (k, v) => events.push(`insert ${String(k)}=${String(v)}`),
      updated: (k) => events.push(`update ${String(k)}`),
      removed: (k) => events.push(`remove ${String(k)}`),
      cleared: () => events.push("clear"),
      enqueued() {},
      executed: (...args) => executed.push(args),
      restored() {},
      failed: (error) => assert.fail(error.message),
    };
    const i1 = state.apply("set", ["k", "bad"], ctx()) as number;
    const i2 = state.apply("set", ["k2", "v"], ctx()) as number;
    const failure: RemoteOpFailure = ["HAMOK_CODEC", "its value cannot be decoded: refused", "leader-1"];
    const data = encodeRemoteMark("uid", [[i1, [[], false, failure]], [i2, [[undefined]]]]);
    assert.equal(state.apply("executed", { upTo: i2, data }, ctx()), true);
    assert.deepEqual(events, ["insert k2=v"], "no event for the failed operation");
    assert.deepEqual(executed, [[i1, undefined, failure], [i2, undefined]]);
    assert.equal(state.executedIndex, i2);
    assert.deepEqual(state.resultOf(i1), { known: true, result: undefined });
    assert.deepEqual(state.failureOf(i1), failure);
    assert.equal(state.failureOf(i2), undefined);
    // a peer that installs a snapshot knows the failure too (and the image of a success is unchanged)
    const target = new HamokRemoteMapState("m");
    target.restore(decodeCbor(encodeCbor(state.snapshot())));
    assert.deepEqual(target.failureOf(i1), failure);
    assert.deepEqual(target.resultOf(i2), { known: true, result: undefined });
    assert.equal(target.failureOf(i2), undefined);
    // an image made before failures existed still restores
    const old = new HamokRemoteMapState("m");
    old.restore([7, [], [[6, "prev"]]]);
    assert.deepEqual(old.resultOf(6), { known: true, result: "prev" });
    assert.equal(old.failureOf(6), undefined);
  });
});
