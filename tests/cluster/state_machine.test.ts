import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ReplicatedState, StateMachine } from "../../src/cluster/state_machine.ts";

class Counter implements ReplicatedState {
  value = 0;
  removed: string[] = [];
  apply(op: string, args: unknown): unknown {
    if (op === "add") this.value += args as number;
    return this.value;
  }
  memberRemoved(peerId: string): void {
    this.removed.push(peerId);
  }
  snapshot(): unknown {
    return this.value;
  }
  restore(image: unknown): void {
    this.value = image as number;
  }
}

const cmd = (id: string, n: number) => ({ kind: "counter", id, op: "add", args: n, peerId: "p" });
const ctx = (index: number, requestId?: string) => ({ index, requestId, proposerPeerId: "p" });

describe("StateMachine", () => {
  it("applies commands to states created on demand and returns their results", () => {
    const sm = new StateMachine();
    sm.registerKind("counter", () => new Counter());
    assert.deepEqual(sm.apply(cmd("x", 2), ctx(1, "r1")), { result: 2, duplicate: false });
    assert.deepEqual(sm.apply(cmd("x", 3), ctx(2, "r2")), { result: 5, duplicate: false });
    assert.deepEqual(sm.apply(cmd("y", 1), ctx(3)), { result: 1, duplicate: false });
    assert.deepEqual([...sm.states()].map(([kind, id]) => `${kind}/${id}`), ["counter/x", "counter/y"]);
  });

  it("skips a request id it has applied and answers with the first result", () => {
    const sm = new StateMachine();
    sm.registerKind("counter", () => new Counter());
    sm.apply(cmd("x", 2), ctx(1, "r1"));
    assert.deepEqual(sm.apply(cmd("x", 2), ctx(2, "r1")), { result: 2, duplicate: true });
    assert.equal((sm.state("counter", "x") as Counter).value, 2);
  });

  it("a request id used again for another command applies neither and answers neither's result", () => {
    const sm = new StateMachine();
    sm.registerKind("counter", () => new Counter());
    sm.apply(cmd("x", 2), ctx(1, "r1"));
    // another collection, another operation: refused (the old code answered with the first result)
    assert.deepEqual(sm.apply(cmd("y", 5), ctx(2, "r1")), {
      result: undefined,
      duplicate: true,
      reused: true,
    });
    const sub = { kind: "counter", id: "x", op: "sub", args: 1, peerId: "p" };
    assert.deepEqual(sm.apply(sub, ctx(3, "r1")), { result: undefined, duplicate: true, reused: true });
    assert.equal((sm.state("counter", "x") as Counter).value, 2);
    assert.equal((sm.state("counter", "y") as Counter).value, 0);
    // a retry of the first command still answers with its result
    assert.deepEqual(sm.apply(cmd("x", 2), ctx(4, "r1")), { result: 2, duplicate: true });
    // a window restored from a snapshot keeps the fingerprints (the old image had none and answered 2)
    const other = new StateMachine();
    other.registerKind("counter", () => new Counter());
    other.restore(sm.snapshot());
    assert.deepEqual(other.apply(cmd("y", 5), ctx(5, "r1")), {
      result: undefined,
      duplicate: true,
      reused: true,
    });
    assert.deepEqual(other.apply(cmd("x", 2), ctx(6, "r1")), { result: 2, duplicate: true });
    // a made-up fingerprint in an image is taken as not known, never as another command's
    const forged = new StateMachine();
    forged.registerKind("counter", () => new Counter());
    const image = sm.snapshot();
    forged.restore({ ...image, applied: image.applied.map(([id, result]) => [id, result, -7]) });
    assert.deepEqual(forged.apply(cmd("x", 2), ctx(7, "r1")), { result: 2, duplicate: true });
  });

  it("forgets the oldest request ids beyond its window", () => {
    const sm = new StateMachine(2);
    sm.registerKind("counter", () => new Counter());
    sm.apply(cmd("x", 1), ctx(1, "r1"));
    sm.apply(cmd("x", 1), ctx(2, "r2"));
    sm.apply(cmd("x", 1), ctx(3, "r3"));
    assert.deepEqual(sm.snapshot().applied.map(([id]) => id), ["r2", "r3"]);
    assert.equal(sm.apply(cmd("x", 1), ctx(4, "r3")).duplicate, true);
    assert.equal(sm.apply(cmd("x", 1), ctx(5, "r1")).duplicate, false);
  });

  it("keeps the newest ids in apply order across wrap-around, snapshot and restore", () => {
    const sm = new StateMachine(3);
    sm.registerKind("counter", () => new Counter());
    for (let i = 1; i <= 5; i++) sm.apply(cmd("x", 1), ctx(i, `r${i}`));
    assert.deepEqual(sm.snapshot().applied.map(([id]) => id), ["r3", "r4", "r5"]);
    const other = new StateMachine(2);
    other.registerKind("counter", () => new Counter());
    other.restore(sm.snapshot());
    assert.deepEqual(other.snapshot().applied.map(([id]) => id), ["r4", "r5"]);
    other.apply(cmd("x", 1), ctx(6, "r6"));
    assert.deepEqual(other.snapshot().applied.map(([id]) => id), ["r5", "r6"]);
  });

  it("snapshots and restores every state and the dedup window", () => {
    const sm = new StateMachine();
    sm.registerKind("counter", () => new Counter());
    sm.apply(cmd("x", 4), ctx(1, "r1"));
    const image = sm.snapshot();
    const other = new StateMachine();
    other.registerKind("counter", () => new Counter());
    other.apply(cmd("z", 9), ctx(1));
    other.restore(image);
    assert.equal((other.state("counter", "x") as Counter).value, 4);
    assert.equal(
      (other.state("counter", "z") as Counter).value,
      0,
      "states absent from the image are emptied",
    );
    assert.equal(other.apply(cmd("x", 4), ctx(2, "r1")).duplicate, true);
  });

  it("tells every state about a removed member", () => {
    const sm = new StateMachine();
    sm.registerKind("counter", () => new Counter());
    sm.apply(cmd("x", 1), ctx(1));
    sm.apply(cmd("y", 1), ctx(2));
    sm.memberRemoved("gone", ctx(3));
    assert.deepEqual((sm.state("counter", "x") as Counter).removed, ["gone"]);
    assert.deepEqual((sm.state("counter", "y") as Counter).removed, ["gone"]);
  });

  it("ignores commands of unknown kinds and refuses to create them", () => {
    const sm = new StateMachine();
    assert.deepEqual(sm.apply({ ...cmd("x", 1), kind: "nope" }, ctx(1, "r")), {
      result: undefined,
      duplicate: false,
    });
    assert.throws(() => sm.state("nope", "x"), /no replicated state kind/);
  });
});
