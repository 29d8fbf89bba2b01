import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type ReplicatedState,
  RESULT_IMAGE,
  StateMachine,
  type StateMachineImage,
} from "../../src/cluster/state_machine.ts";
import { runSnapshotJob, SnapshotJob } from "../../src/cluster/snapshot_job.ts";
import { REAL_SCHEDULER } from "../../src/cluster/scheduler.ts";
import { type Encoded, HamokMapState } from "../../src/collections/map_state.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { CborChunkWriter } from "../../src/codec/cbor_writer.ts";
import { seededRandom as prng } from "../_helpers/raft_harness.ts";

class Counter implements ReplicatedState {
  value = 0;
  apply(_op: string, args: unknown): unknown {
    return this.value += args as number;
  }
  memberRemoved(): void {}
  snapshot(): unknown {
    return this.value;
  }
  restore(image: unknown): void {
    this.value = image as number;
  }
}

/** Comparable form of an image: byte strings as "b:1,2,3", so string and bytes never compare equal. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return `b:${[...value].join(",")}`;
  if (typeof value === "string") return `s:${value}`;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function randomKey(next: () => number): Encoded {
  const n = Math.floor(next() * 300);
  return next() < 0.5 ? `key-${n}${n % 7 === 0 ? "-ünï" : ""}` : new Uint8Array([n & 0xff, n >> 8, 0x80]);
}

function randomValue(next: () => number, i: number): Encoded {
  const r = next();
  if (r < 0.4) return `v${i}${r < 0.05 ? "-€" : ""}`;
  if (r < 0.95) return new Uint8Array(Array.from({ length: 1 + (i % 40) }, (_, j) => (i + j) & 0xff));
  return new Uint8Array(1500).fill(i & 0xff); // above the inline limit: kept as bytes
}

/** One random command on a map state. */
function randomCommand(state: HamokMapState, next: () => number, index: number): void {
  const ctx = { index, requestId: undefined, proposerPeerId: "p" };
  const r = next();
  if (r < 0.45) state.apply("set", [randomKey(next), randomValue(next, index)], ctx);
  else if (r < 0.75) state.apply("delete", [randomKey(next)], ctx);
  else if (r < 0.85) {
    state.apply("setAll", [[[randomKey(next), randomValue(next, index)], [randomKey(next), "x"]]], ctx);
  } else if (r < 0.95) state.apply("deleteAll", [[randomKey(next), randomKey(next), randomKey(next)]], ctx);
  else if (r < 0.975) state.apply("cas", [[], [[randomKey(next), null], [randomKey(next), "c"]]], ctx);
  else state.apply("clear", [], ctx);
}

describe("map state snapshot views", () => {
  it("write the image of the moment they were taken while commands go on (random, 40 seeds)", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const next = prng(seed);
      const state = new HamokMapState("m");
      let index = 0;
      for (let i = 0; i < 400; i++) randomCommand(state, next, ++index);
      const expected = plain(state.snapshot());
      const view = state.snapshotView();
      const out = new CborChunkWriter();
      let done = false;
      while (!done) {
        done = view.writeTo(out, 1 + Math.floor(next() * 20));
        for (let i = 0, n = Math.floor(next() * 30); i < n; i++) randomCommand(state, next, ++index);
      }
      assert.equal(
        out.length,
        (view as { byteLength?: number }).byteLength,
        `seed ${seed}: the size is known`,
      );
      const joiner = out.joiner();
      while (!joiner.step(64)) { /* a few bytes a step, to exercise the joiner */ }
      assert.deepEqual(plain(decodeCbor(joiner.result())), expected, `seed ${seed}`);
      // the state itself went on: its own image restores into an equal state
      const copy = new HamokMapState("m");
      copy.restore(decodeCbor(encodeCbor(state.snapshot())));
      assert.deepEqual(plain(copy.snapshot()), plain(state.snapshot()), `seed ${seed}`);
    }
  });

  it("an iterator held across commands goes on after squeezing out holes, and ends after a clear", () => {
    const state = new HamokMapState("m");
    let index = 0;
    const set = (k: string) =>
      state.apply("set", [k, "v"], { index: ++index, requestId: undefined, proposerPeerId: "p" });
    const del = (k: string) =>
      state.apply("delete", [k], { index: ++index, requestId: undefined, proposerPeerId: "p" });
    for (let i = 0; i < 10_000; i++) set(`k${i}`);
    const it = state.entries();
    assert.equal(it.next().value?.key, "k0");
    assert.equal(it.next().value?.key, "k1");
    for (let i = 2; i < 9_000; i++) del(`k${i}`); // holes outnumber live slots: the tables are squeezed
    set("late");
    const rest = [...it].map((e) => e.key);
    assert.deepEqual(rest, [...Array.from({ length: 1000 }, (_, i) => `k${9000 + i}`), "late"]);
    const it2 = state.entries();
    it2.next();
    state.apply("clear", [], { index: ++index, requestId: undefined, proposerPeerId: "p" });
    assert.equal(it2.next().done, true);
  });

  it("a job writes the state machine's image at the moment it was made, in slices", async () => {
    const sm = new StateMachine(64);
    sm.registerKind("map", (id) => new HamokMapState(id));
    sm.registerKind("counter", () => new Counter());
    sm.clusterUid = "uid-1";
    const next = prng(7);
    let index = 0;
    const command = () => {
      index++;
      const key = randomKey(next);
      if (next() < 0.1) {
        sm.apply({ kind: "counter", id: "c", op: "add", args: 1, peerId: "p" }, {
          index,
          requestId: `r${index}`,
          proposerPeerId: "p",
        });
      } else {
        sm.apply({
          kind: "map",
          id: index % 2 === 0 ? "a" : "b",
          op: "set",
          args: [key, `v${index}`],
          peerId: "p",
        }, {
          index,
          requestId: `r${index}`,
          proposerPeerId: "p",
        });
      }
    };
    for (let i = 0; i < 30_000; i++) command();
    const expected = plain(sm.snapshot());
    const job = new SnapshotJob(sm.snapshotParts());
    let slices = 0;
    const data = await new Promise<Uint8Array>((resolve, reject) => {
      runSnapshotJob(REAL_SCHEDULER, job, 1, {
        alive: () => {
          slices++;
          for (let i = 0; i < 50; i++) command(); // commands applied between slices
          return true;
        },
        done: resolve,
        failed: reject,
      }, 1);
    });
    assert.ok(slices > 2, `written in ${slices} slices`);
    // one buffer reserved at the image's size (plus a little slack), not chunks joined into an exact copy
    const slack = data.buffer.byteLength - data.length;
    assert.ok(slack > 0 && slack < 4096, `slack ${slack}`);
    const image = decodeCbor(data) as StateMachineImage;
    assert.deepEqual(plain(image), expected);
    // it restores
    const copy = new StateMachine(64);
    copy.registerKind("map", (id) => new HamokMapState(id));
    copy.registerKind("counter", () => new Counter());
    copy.restore(image);
    assert.equal(copy.clusterUid, "uid-1");
  });

  it("taking the parts makes no image of a result: the job makes each one as it encodes it", () => {
    let images = 0;
    class Imaged {
      constructor(readonly n: number) {}
      [RESULT_IMAGE](): unknown {
        images++;
        return { n: this.n };
      }
    }
    const sm = new StateMachine(1000);
    sm.registerKind("imaged", () => ({
      apply: (_op: string, args: unknown) => new Imaged(args as number),
      memberRemoved() {},
      snapshot: () => 0,
      restore() {},
    }));
    for (let i = 1; i <= 1500; i++) {
      sm.apply({ kind: "imaged", id: "x", op: "make", args: i, peerId: "p" }, {
        index: i,
        requestId: `r${i}`,
        proposerPeerId: "p",
      });
    }
    const job = new SnapshotJob(sm.snapshotParts());
    assert.equal(images, 0, "the parts hold the results, not their images");
    job.step(); // the first slice encodes a part of the window only
    assert.ok(images > 0 && images < 1000, `${images} images after one step`);
    while (!job.step()) { /* until done */ }
    assert.equal(images, 1000, "one image per result in the window");
    const applied = (decodeCbor(job.result()) as StateMachineImage).applied;
    // the oldest still in the window first, each with its command's fingerprint
    assert.deepEqual(applied[0]!.slice(0, 2), ["r501", { n: 501 }]);
    assert.deepEqual(applied.at(-1)!.slice(0, 2), ["r1500", { n: 1500 }]);
    assert.ok(applied.every((pair) => typeof pair[2] === "number" && pair[2] > 0));
  });

  it("a window restored from a job's image (step by step) still refuses a request id used again", () => {
    const sm = new StateMachine(64);
    sm.registerKind("counter", () => new Counter());
    const add = (id: string, n: number) => ({ kind: "counter", id, op: "add", args: n, peerId: "p" });
    sm.apply(add("x", 2), { index: 1, requestId: "r1", proposerPeerId: "p" });
    const job = new SnapshotJob(sm.snapshotParts());
    while (!job.step()) { /* until done */ }
    const copy = new StateMachine(64);
    copy.registerKind("counter", () => new Counter());
    const restore = copy.restoreJob(job.result());
    while (!restore.step()) { /* until done */ }
    assert.equal((copy.state("counter", "x") as Counter).value, 2);
    // another collection under r1: refused (the old image had no fingerprints and answered 2)
    const ctx = { index: 2, requestId: "r1", proposerPeerId: "p" };
    assert.deepEqual(copy.apply(add("y", 5), ctx), { result: undefined, duplicate: true, reused: true });
    assert.equal((copy.state("counter", "y") as Counter).value, 0);
    // a retry of the first command is still answered with its result
    assert.deepEqual(copy.apply(add("x", 2), { ...ctx, index: 3 }), { result: 2, duplicate: true });
    // an image without fingerprints (an older version's) restores and answers as that version did
    const old = decodeCbor(job.result()) as { applied: unknown[][] };
    old.applied = old.applied.map((pair) => pair.slice(0, 2));
    const fromOld = new StateMachine(64);
    fromOld.registerKind("counter", () => new Counter());
    const restoreOld = fromOld.restoreJob(encodeCbor(old));
    while (!restoreOld.step()) { /* until done */ }
    assert.deepEqual(fromOld.apply(add("y", 5), ctx), { result: 2, duplicate: true });
  });

  it("a replaced value's image does not stay in the result after a snapshot", () => {
    const sm = new StateMachine(8);
    sm.registerKind("map", (id) => new HamokMapState(id));
    const set = (i: number, value: Encoded) =>
      sm.apply({ kind: "map", id: "m", op: "set", args: [Uint8Array.of(1), value], peerId: "p" }, {
        index: i,
        requestId: `r${i}`,
        proposerPeerId: "p",
      });
    set(1, Uint8Array.of(0x41, 1, 2, 3));
    const { result } = set(2, Uint8Array.of(0x41, 4, 5, 6));
    const first = (result as { [RESULT_IMAGE](): { previous: Uint8Array } })[RESULT_IMAGE]().previous;
    const second = (result as { [RESULT_IMAGE](): { previous: Uint8Array } })[RESULT_IMAGE]().previous;
    assert.deepEqual([...first], [0x41, 1, 2, 3]);
    assert.notEqual(first, second, "made afresh each time, not kept");
  });

  it("a cancelled job gives no result; a later job writes the state as it is then", () => {
    const sm = new StateMachine(8);
    sm.registerKind("map", (id) => new HamokMapState(id));
    const set = (i: number) =>
      sm.apply({ kind: "map", id: "m", op: "set", args: [`k${i}`, `v${i}`], peerId: "p" }, {
        index: i,
        requestId: undefined,
        proposerPeerId: "p",
      });
    for (let i = 1; i <= 100; i++) set(i);
    const job = new SnapshotJob(sm.snapshotParts());
    job.step();
    job.cancel();
    assert.throws(() => job.result());
    for (let i = 101; i <= 200; i++) set(i);
    const again = new SnapshotJob(sm.snapshotParts());
    while (!again.step()) { /* until done */ }
    assert.deepEqual(plain(decodeCbor(again.result())), plain(sm.snapshot()));
  });
});
