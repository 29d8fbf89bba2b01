import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type Encoded,
  HamokMapState,
  keyIdOf,
  type MapStateEntry,
  type MapStateObserver,
  type MapWriteResult,
  sameEncoded,
} from "../../src/collections/map_state.ts";
import { StateMachine, type StateMachineImage } from "../../src/cluster/state_machine.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";

let index = 0;
const ctx = () => ({ index: ++index, requestId: `r${index}`, proposerPeerId: "a" });
const bytes = (...b: number[]) => new Uint8Array(b);
const text = (e: Encoded | undefined) =>
  typeof e === "string" ? e : e === undefined ? undefined : [...e].join(",");

/** A write result as a plain object (a `set` that replaced a value gives its previous value lazily). */
const plain = (r: unknown) => {
  const w = r as MapWriteResult;
  return w.conflict ? { conflict: true, revision: w.revision } : { conflict: false, previous: w.previous };
};

function recorder(): { log: string[]; observer: MapStateObserver } {
  const log: string[] = [];
  return {
    log,
    observer: {
      inserted: (e: MapStateEntry, r) => log.push(`+${text(e.key)}=${text(e.value)}@${r}`),
      updated: (e, old, _o, _c, r) => log.push(`~${text(e.key)}=${text(old)}>${text(e.value)}@${r}`),
      removed: (e, r) => log.push(`-${text(e.key)}=${text(e.value)}@${r}`),
      cleared: (r) => log.push(`clear@${r}`),
    },
  };
}

describe("HamokMapState", () => {
  it("set, insert and delete give the documented results and revisions", () => {
    const s = new HamokMapState("m");
    const c1 = ctx();
    assert.deepEqual(plain(s.apply("set", ["k", "v1"], c1)), { conflict: false, previous: null });
    assert.equal(s.lookup("k")?.revision, c1.index);
    assert.equal(s.revision, c1.index);
    assert.deepEqual(plain(s.apply("set", ["k", "v2"], ctx())), { conflict: false, previous: "v1" });
    assert.equal(s.apply("insert", ["k", "v3"], ctx()), "v2");
    assert.equal(s.lookup("k")?.value, "v2");
    const c4 = ctx();
    assert.equal(s.apply("insert", ["j", "w"], c4), null);
    assert.equal(s.lookup("j")?.revision, c4.index);
    assert.deepEqual(plain(s.apply("delete", ["k"], ctx())), { conflict: false, previous: "v2" });
    assert.deepEqual(plain(s.apply("delete", ["k"], ctx())), { conflict: false, previous: null });
    assert.equal(s.size, 1);
  });

  it("ifRevision: a mismatch writes nothing and reports the actual revision; 0 means absent", () => {
    const s = new HamokMapState("m");
    assert.deepEqual(plain(s.apply("set", ["k", "a", 5], ctx())), { conflict: true, revision: 0 });
    assert.equal(s.size, 0);
    const c = ctx();
    assert.deepEqual(plain(s.apply("set", ["k", "a", 0], c)), { conflict: false, previous: null });
    assert.deepEqual(plain(s.apply("set", ["k", "b", 0], ctx())), { conflict: true, revision: c.index });
    assert.deepEqual(plain(s.apply("delete", ["k", c.index + 100], ctx())), {
      conflict: true,
      revision: c.index,
    });
    assert.equal(s.lookup("k")?.value, "a");
    const c2 = ctx();
    assert.deepEqual(plain(s.apply("set", ["k", "b", c.index], c2)), { conflict: false, previous: "a" });
    assert.deepEqual(plain(s.apply("delete", ["k", c2.index], ctx())), { conflict: false, previous: "b" });
    assert.deepEqual(plain(s.apply("delete", ["k", 0], ctx())), { conflict: false, previous: null });
  });

  it("a set's previous value is the one it replaced, even read after later writes and through a snapshot", () => {
    const sm = new StateMachine(4);
    sm.registerKind("map", (id) => new HamokMapState(id));
    const command = (value: Encoded) => ({
      kind: "map",
      id: "m",
      op: "set",
      args: ["k", value],
      peerId: "a",
    });
    sm.apply(command(bytes(1, 2, 3)), ctx());
    const replaced = sm.apply(command(bytes(4, 5)), ctx()).result as MapWriteResult;
    const again = sm.apply(command("text"), ctx()).result as MapWriteResult;
    sm.apply(command(bytes(6)), ctx());
    assert.equal(replaced.conflict, false);
    if (replaced.conflict || again.conflict) return;
    assert.deepEqual(replaced.previous, bytes(1, 2, 3));
    assert.equal(replaced.previous, replaced.previous); // made once
    assert.deepEqual(again.previous, bytes(4, 5));
    const image = decodeCbor(encodeCbor(sm.snapshot(false))) as StateMachineImage;
    assert.deepEqual(
      image.applied.map(([, result]) => result),
      [
        { conflict: false, previous: null },
        { conflict: false, previous: bytes(1, 2, 3) },
        { conflict: false, previous: bytes(4, 5) },
        { conflict: false, previous: "text" },
      ],
    );
  });

  it("an observer that does not listen is not told of inserts and updates (nor sent the old value)", () => {
    const s = new HamokMapState("m");
    const { log, observer } = recorder();
    let listening = false;
    s.observer = { ...observer, listens: () => listening };
    s.apply("set", ["k", "a"], ctx());
    s.apply("set", ["k", "b"], ctx());
    assert.deepEqual(log, []);
    listening = true;
    const c = ctx();
    s.apply("set", ["k", "c"], c);
    const c2 = ctx();
    s.apply("set", ["j", "x"], c2);
    assert.deepEqual(log, [`~k=b>c@${c.index}`, `+j=x@${c2.index}`]);
  });

  it("bulk operations report the keys that existed", () => {
    const s = new HamokMapState("m");
    assert.deepEqual(s.apply("setAll", [[["a", "1"], ["b", "2"]]], ctx()), []);
    assert.deepEqual(s.apply("setAll", [[["a", "3"], ["c", "4"]]], ctx()), [["a", "1"]]);
    assert.deepEqual(s.apply("insertAll", [[["a", "x"], ["d", "5"]]], ctx()), [["a", "3"]]);
    assert.equal(s.lookup("a")?.value, "3");
    assert.deepEqual(s.apply("deleteAll", [["a", "zz", "d"]], ctx()), [["a", "3"], ["d", "5"]]);
    assert.deepEqual([...s.entries()].map((e) => e.key), ["b", "c"]);
    assert.equal(s.apply("clear", [], ctx()), 2);
    assert.equal(s.apply("clear", [], ctx()), 0);
    assert.equal(s.size, 0);
  });

  it("cas: every expectation must hold (null = absent); writes may delete", () => {
    const s = new HamokMapState("m");
    s.apply("setAll", [[["a", "1"], ["b", "2"]]], ctx());
    assert.equal(s.apply("cas", [[["a", "1"], ["c", null]], [["a", "9"], ["b", null]]], ctx()), true);
    assert.equal(s.lookup("a")?.value, "9");
    assert.equal(s.lookup("b"), undefined);
    // a stale expectation: nothing changes
    assert.equal(s.apply("cas", [[["a", "1"]], [["a", "0"]]], ctx()), false);
    // absent never matches a value; present never matches null
    assert.equal(s.apply("cas", [[["b", "2"]], [["b", "x"]]], ctx()), false);
    assert.equal(s.apply("cas", [[["a", null]], [["a", "x"]]], ctx()), false);
    assert.equal(s.lookup("a")?.value, "9");
    // an empty expectation always holds
    assert.equal(s.apply("cas", [[], [["z", "1"]]], ctx()), true);
  });

  it("falsy-looking encodings are values: an empty string value is present", () => {
    const s = new HamokMapState("m");
    s.apply("set", ["k", ""], ctx());
    assert.equal(s.apply("insert", ["k", "x"], ctx()), "");
    assert.equal(s.apply("cas", [[["k", ""]], [["k", null]]], ctx()), true);
    assert.equal(s.size, 0);
  });

  it("keys are identified by their encoding: bytes and strings never collide", () => {
    const s = new HamokMapState("m");
    s.apply("set", [bytes(0x61), "bytes"], ctx());
    s.apply("set", ["a", "string"], ctx());
    s.apply("set", [bytes(0x61, 0), "longer"], ctx());
    assert.equal(s.size, 3);
    assert.equal(s.lookup(bytes(0x61))?.value, "bytes");
    assert.equal(s.lookup("a")?.value, "string");
    assert.notEqual(keyIdOf(bytes(0x61)), keyIdOf("a"));
    const big = new Uint8Array(10_000).map((_, i) => i % 251);
    const big2 = big.slice();
    big2[9_999] = 7;
    assert.notEqual(keyIdOf(big), keyIdOf(big2));
    assert.equal(keyIdOf(big), keyIdOf(big.slice()));
  });

  it("stored bytes do not pin the buffer of the command they came from", () => {
    const s = new HamokMapState("m");
    const wire = new Uint8Array(1000);
    const key = wire.subarray(10, 12);
    key.set([1, 2]);
    const value = wire.subarray(20, 23);
    value.set([3, 4, 5]);
    s.apply("set", [key, value], ctx());
    const entry = s.lookup(bytes(1, 2))!;
    assert.equal((entry.key as Uint8Array).buffer.byteLength, 2);
    assert.equal((entry.value as Uint8Array).buffer.byteLength, 3);
    wire.fill(0);
    assert.ok(sameEncoded(entry.value, bytes(3, 4, 5)));
  });

  it("malformed commands are no-ops with an undefined result", () => {
    const s = new HamokMapState("m");
    assert.equal(s.apply("set", ["k"], ctx()), undefined);
    assert.equal(s.apply("set", [1, "v"], ctx()), undefined);
    assert.equal(s.apply("set", "nope", ctx()), undefined);
    assert.equal(s.apply("setAll", [[["a", null]]], ctx()), undefined);
    assert.equal(s.apply("cas", [[["a", 3]], []], ctx()), undefined);
    assert.equal(s.apply("unknown-op", [], ctx()), undefined);
    assert.equal(s.size, 0);
    assert.equal(s.revision, 0);
  });

  it("the observer hears every change in apply order", () => {
    const s = new HamokMapState("m");
    const { log, observer } = recorder();
    s.observer = observer;
    index = 0;
    s.apply("set", ["a", "1"], ctx());
    s.apply("set", ["a", "2"], ctx());
    s.apply("insert", ["a", "3"], ctx());
    s.apply("setAll", [[["b", "1"], ["c", "1"]]], ctx());
    s.apply("delete", ["b"], ctx());
    s.apply("cas", [[["a", "2"]], [["a", null], ["d", "4"]]], ctx());
    s.apply("clear", [], ctx());
    assert.deepEqual(log, [
      "+a=1@1",
      "~a=1>2@2",
      "+b=1@4",
      "+c=1@4",
      "-b=1@5",
      "-a=2@6",
      "+d=4@6",
      "clear@7",
    ]);
  });

  it("snapshot/restore reproduces entries, order and revisions, and reports the difference", () => {
    const source = new HamokMapState("m");
    source.apply("setAll", [[["a", "1"], ["b", bytes(1, 2)], ["c", "3"]]], ctx());
    source.apply("set", ["a", "1b"], ctx());
    source.apply("delete", ["c"], ctx());
    source.apply("set", ["d", ""], ctx());
    const image = source.snapshot();

    const target = new HamokMapState("m");
    target.apply("set", ["b", bytes(1, 2)], ctx()); // same value, other revision
    target.apply("set", ["z", "gone"], ctx());
    const { log, observer } = recorder();
    target.observer = observer;
    target.restore(structuredClone(image));
    const view = (s: HamokMapState) => [...s.entries()].map((e) => [text(e.key), text(e.value), e.revision]);
    assert.deepEqual(view(target), view(source));
    assert.equal(target.revision, source.revision);
    // insertions and updates in revision order (b@1, a@2, d@4), not in the image's key order
    assert.deepEqual(log.map((l) => l.replace(/@\d+$/, "")), ["-z=gone", "~b=1,2>1,2", "+a=1b", "+d="]);
    const revisions = log.slice(1).map((l) => Number(l.split("@")[1]));
    assert.deepEqual(revisions, [...revisions].sort((x, y) => x - y));
    // restoring the same image again changes nothing
    log.length = 0;
    target.restore(structuredClone(image));
    assert.deepEqual(log, []);
    // an empty image empties the state
    target.restore(new HamokMapState("m").snapshot());
    assert.equal(target.size, 0);
  });
});
