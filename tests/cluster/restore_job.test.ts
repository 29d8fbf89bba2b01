import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  type ReplicatedState,
  StateMachine,
  type StateMachineImage,
} from "../../src/cluster/state_machine.ts";
import { restoreInSlices, runSnapshotJob, SnapshotJob } from "../../src/cluster/snapshot_job.ts";
import { REAL_SCHEDULER } from "../../src/cluster/scheduler.ts";
import {
  type Encoded,
  HamokMapState,
  type MapStateEntry,
  type MapStateObserver,
} from "../../src/collections/map_state.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { CborReader } from "../../src/codec/cbor_reader.ts";
import { crc32c } from "../../src/storage/crc32c.ts";
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

/** Comparable form: byte strings as "b:1,2,3", so string and bytes never compare equal. */
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

function machine(dedup = 64): StateMachine {
  const sm = new StateMachine(dedup);
  sm.registerKind("map", (id) => new HamokMapState(id));
  sm.registerKind("counter", () => new Counter());
  return sm;
}

function fill(sm: StateMachine, next: () => number, commands: number, from = 0): void {
  for (let index = from + 1; index <= from + commands; index++) {
    const ctx = { index, requestId: `r${index}`, proposerPeerId: "p" };
    const r = next();
    if (r < 0.1) sm.apply({ kind: "counter", id: "c", op: "add", args: 1, peerId: "p" }, ctx);
    else if (r < 0.7) {
      sm.apply({
        kind: "map",
        id: r < 0.4 ? "a" : "b",
        op: "set",
        args: [randomKey(next), randomValue(next, index)],
        peerId: "p",
      }, ctx);
    } else sm.apply({ kind: "map", id: "a", op: "delete", args: [randomKey(next)], peerId: "p" }, ctx);
  }
}

/** Runs a restore job step by step; returns how many steps it took. */
function runSteps(sm: StateMachine, data: Uint8Array, between?: () => void): number {
  const job = sm.restoreJob(data);
  let steps = 1;
  while (!job.step()) {
    between?.();
    steps++;
  }
  return steps;
}

/** Records what an observer hears. */
function recorder(): MapStateObserver & { log: string[] } {
  const log: string[] = [];
  const key = (e: MapStateEntry) => JSON.stringify(plain(e.key));
  return {
    log,
    inserted: (e, rev) => log.push(`+${key(e)}@${rev}`),
    updated: (e, old, _o, _c, rev) => log.push(`~${key(e)}:${JSON.stringify(plain(old))}@${rev}`),
    removed: (e) => log.push(`-${key(e)}`),
    cleared: (rev) => log.push(`clear@${rev}`),
  };
}

describe("restore in slices", () => {
  it("ends where a restore at once ends (random states, 30 seeds), and nothing changes before its last step", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const next = prng(seed);
      const source = machine();
      source.clusterUid = `uid-${seed}`;
      fill(source, next, 600);
      const data = encodeCbor(source.snapshot());
      const atOnce = machine();
      const sliced = machine();
      // both targets start from another state, with a collection only they have
      for (const target of [atOnce, sliced]) fill(target, prng(1000 + seed), 200);
      for (const target of [atOnce, sliced]) {
        target.apply({ kind: "map", id: "only-here", op: "set", args: ["k", "v"], peerId: "p" }, {
          index: 9999,
          requestId: "x",
          proposerPeerId: "p",
        });
      }
      const before = plain(sliced.snapshot());
      atOnce.restore(decodeCbor(data) as StateMachineImage);
      const job = sliced.restoreJob(data);
      let steps = 0;
      let last = false;
      while (!last) {
        const wasBefore = plain(sliced.snapshot());
        last = job.step();
        steps++;
        if (!last) {
          assert.deepEqual(wasBefore, before, `seed ${seed}: a step before the last changed the state`);
        }
      }
      assert.ok(steps > 3, `seed ${seed}: several steps (${steps})`);
      assert.deepEqual(plain(sliced.snapshot()), plain(atOnce.snapshot()), `seed ${seed}`);
      assert.equal(sliced.clusterUid, `uid-${seed}`);
      const window = sliced.snapshot(false).applied.map(([requestId]) => requestId);
      assert.ok(window.includes("r600") && !window.includes("x"), "the dedup window is the image's");
    }
  });

  it("reads the image a snapshot job writes (sized integers, byte keys, large values)", async () => {
    const source = machine();
    fill(source, prng(3), 3000);
    const data = await new Promise<Uint8Array>((resolve, reject) =>
      runSnapshotJob(REAL_SCHEDULER, new SnapshotJob(source.snapshotParts()), 4, {
        alive: () => true,
        done: (bytes, digest) => {
          assert.equal(digest, crc32c(bytes), "the job gives the image's CRC-32C");
          resolve(bytes);
        },
        failed: reject,
      })
    );
    const copy = machine();
    await restoreInSlices(REAL_SCHEDULER, copy, data, 1, () => true);
    assert.deepEqual(plain(copy.snapshot()), plain(source.snapshot()));
  });

  it("tells an observer the same changes, in revision order, after the swap", () => {
    for (let seed = 1; seed <= 10; seed++) {
      const source = new HamokMapState("m");
      const next = prng(seed);
      for (let index = 1; index <= 5000; index++) {
        const ctx = { index, requestId: undefined, proposerPeerId: "p" };
        if (next() < 0.8) source.apply("set", [randomKey(next), randomValue(next, index)], ctx);
        else source.apply("delete", [randomKey(next)], ctx);
      }
      const image = source.snapshot();
      const make = () => {
        const s = new HamokMapState("m");
        const n = prng(500 + seed);
        for (let index = 1; index <= 300; index++) {
          s.apply("set", [randomKey(n), randomValue(n, index)], {
            index,
            requestId: undefined,
            proposerPeerId: "p",
          });
        }
        return s;
      };
      const atOnce = make();
      const sliced = make();
      const heardAtOnce = recorder();
      const heardSliced = recorder();
      atOnce.observer = heardAtOnce;
      sliced.observer = heardSliced;
      atOnce.restore(decodeCbor(encodeCbor(image)));
      const builder = sliced.restoreBuilder();
      const reader = new CborReader(encodeCbor(image));
      while (!builder.readFrom(reader, 7)) { /* a few entries a call */ }
      assert.equal(heardSliced.log.length, 0, "nothing is told before the commit");
      builder.commit();
      assert.deepEqual(plain(sliced.snapshot()), plain(atOnce.snapshot()), "swapped in at once");
      while (!builder.notify(5)) { /* a few events a call */ }
      const sorted = (log: string[]) => [...log].sort();
      assert.deepEqual(sorted(heardSliced.log), sorted(heardAtOnce.log), `seed ${seed}: the same changes`);
      const revisions = heardSliced.log.filter((l) => !l.startsWith("-")).map((l) => Number(l.split("@")[1]));
      assert.deepEqual(revisions, [...revisions].sort((x, y) => x - y), `seed ${seed}: in revision order`);
      const firstInsert = heardSliced.log.findIndex((l) => !l.startsWith("-"));
      assert.ok(
        heardSliced.log.slice(firstInsert).every((l) => !l.startsWith("-")),
        "removals come first",
      );
    }
  });

  it("from an empty state, every entry is told as inserted, in revision order", () => {
    const source = new HamokMapState("m");
    const next = prng(77);
    for (let index = 1; index <= 3000; index++) {
      source.apply("set", [randomKey(next), randomValue(next, index)], {
        index,
        requestId: undefined,
        proposerPeerId: "p",
      });
    }
    const target = new HamokMapState("m");
    const heard = recorder();
    target.observer = heard;
    const builder = target.restoreBuilder();
    const reader = new CborReader(encodeCbor(source.snapshot()));
    while (!builder.readFrom(reader, 100)) { /* slices */ }
    builder.commit();
    while (!builder.notify(64)) { /* slices */ }
    assert.equal(heard.log.length, source.size);
    assert.ok(heard.log.every((l) => l.startsWith("+")));
    const revisions = heard.log.map((l) => Number(l.split("@")[1]));
    assert.deepEqual(revisions, [...revisions].sort((x, y) => x - y));
    assert.deepEqual(plain(target.snapshot()), plain(source.snapshot()));
  });

  it("bytes that are not an image fail the job and leave every state as it was", async () => {
    const target = machine();
    fill(target, prng(9), 300);
    const before = plain(target.snapshot());
    const good = encodeCbor(machine().snapshot());
    const cases: Uint8Array[] = [
      new Uint8Array([0xff]),
      encodeCbor([1, 2, 3]),
      good.subarray(0, good.length - 1), // truncated
      Uint8Array.from([...good, 0x00]), // trailing bytes
      encodeCbor({ states: [["map", "a"]], applied: [] }), // a state that is not [kind, id, image]
    ];
    for (const data of cases) {
      await assert.rejects(restoreInSlices(REAL_SCHEDULER, target, data, 1, () => true), TypeError);
      assert.deepEqual(plain(target.snapshot()), before);
    }
  });

  it("an abandoned restore (a newer one, or a closed peer) changes nothing and settles", async () => {
    const source = machine();
    fill(source, prng(4), 3000);
    const data = encodeCbor(source.snapshot());
    const target = machine();
    const before = plain(target.snapshot());
    let alive = true;
    const restoring = restoreInSlices(REAL_SCHEDULER, target, data, 0, () => alive);
    alive = false;
    await restoring;
    assert.deepEqual(plain(target.snapshot()), before);
  });

  it("a state without a builder is restored whole, at the commit", () => {
    const source = machine();
    source.apply({ kind: "counter", id: "c", op: "add", args: 41, peerId: "p" }, {
      index: 1,
      requestId: "r",
      proposerPeerId: "p",
    });
    const target = machine();
    let steps = 0;
    steps = runSteps(target, encodeCbor(source.snapshot()), () => {
      assert.equal((target.state("counter", "c") as Counter).value, 0, "not before the commit");
    });
    assert.ok(steps > 1);
    assert.equal((target.state("counter", "c") as Counter).value, 41);
  });
});
