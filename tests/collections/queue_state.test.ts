import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import type { ApplyContext } from "../../src/cluster/state_machine.ts";
import { HamokQueueState } from "../../src/collections/queue_state.ts";

let index = 0;
const ctx = (): ApplyContext => ({ index: ++index, requestId: undefined, proposerPeerId: "p" });

function recorder(state: HamokQueueState): string[] {
  const log: string[] = [];
  state.observer = {
    added: (item) => log.push(`+${String(item)}`),
    removed: (item) => log.push(`-${String(item)}`),
    emptied: () => log.push("empty"),
    filled: () => log.push("not-empty"),
  };
  return log;
}

/** A snapshot image as it travels: through CBOR. */
function roundTrip(state: HamokQueueState): unknown {
  return decodeCbor(encodeCbor(state.snapshot()));
}

describe("HamokQueueState", () => {
  it("is a FIFO with events in order, and pop results say whether an item was there", () => {
    const state = new HamokQueueState("q");
    const log = recorder(state);
    assert.equal(state.apply("push", ["a", "b"], ctx()), 2);
    assert.equal(state.apply("push", ["c"], ctx()), 3);
    assert.deepEqual([...state], ["a", "b", "c"]);
    assert.equal(state.peek(), "a");
    assert.deepEqual(state.apply("pop", null, ctx()), { item: "a" });
    assert.deepEqual(state.apply("pop", null, ctx()), { item: "b" });
    assert.deepEqual(state.apply("pop", null, ctx()), { item: "c" });
    assert.equal(state.apply("pop", null, ctx()), null);
    assert.equal(state.size, 0);
    assert.equal(state.peek(), undefined);
    assert.deepEqual(log, ["+a", "+b", "not-empty", "+c", "-a", "-b", "-c", "empty"]);
  });

  it("falsy items are items", () => {
    const state = new HamokQueueState("q");
    state.apply("push", [0, "", false, null], ctx());
    assert.equal(state.size, 4);
    const popped = [];
    for (let i = 0; i < 4; i++) popped.push(state.apply("pop", null, ctx()));
    assert.deepEqual(popped, [{ item: 0 }, { item: "" }, { item: false }, { item: null }]);
    assert.equal(state.apply("pop", null, ctx()), null);
  });

  it("clear removes every item, in order, then fires empty; import replaces the content as one change", () => {
    const state = new HamokQueueState("q");
    state.apply("push", [1, 2, 3], ctx());
    const log = recorder(state);
    assert.equal(state.apply("clear", null, ctx()), 3);
    assert.equal(state.apply("clear", null, ctx()), 0);
    state.apply("push", [4], ctx());
    assert.equal(state.apply("import", [7, 8], ctx()), 1);
    assert.deepEqual([...state], [7, 8]);
    assert.deepEqual(log, [
      "-1",
      "-2",
      "-3",
      "empty",
      "+4",
      "not-empty",
      // an import over a non-empty queue is one change: the queue is never observably empty (the old
      // code fired empty, then not-empty)
      "-4",
      "+7",
      "+8",
    ]);
    log.length = 0;
    state.apply("import", [], ctx());
    state.apply("import", [9], ctx());
    state.apply("import", [], ctx());
    assert.deepEqual(log, ["-7", "-8", "empty", "+9", "not-empty", "-9", "empty"]);
  });

  it("keeps FIFO order across compactions: 200,000 items through a queue that never holds more than 1,000", () => {
    const state = new HamokQueueState("q");
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 200; round++) {
      const batch = Array.from({ length: 1000 }, () => next++);
      state.apply("push", batch, ctx());
      for (let i = 0; i < 1000; i++) {
        const popped = state.apply("pop", null, ctx()) as { item: number };
        assert.equal(popped.item, expected++);
      }
    }
    assert.equal(state.size, 0);
    assert.equal(state.head, 200_000);
    // a large backlog drained half-way keeps its order across compactions
    state.apply("push", Array.from({ length: 5000 }, (_, i) => i), ctx());
    for (let i = 0; i < 3000; i++) state.apply("pop", null, ctx());
    assert.deepEqual([...state], Array.from({ length: 2000 }, (_, i) => 3000 + i));
  });

  for (const count of [0, 1, 2, 1500]) {
    it(`a snapshot of ${count} item(s) restores exactly (through CBOR)`, () => {
      const source = new HamokQueueState("q");
      source.apply("push", Array.from({ length: count + 3 }, (_, i) => ({ n: i })), ctx());
      for (let i = 0; i < 3; i++) source.apply("pop", null, ctx());
      const target = new HamokQueueState("q");
      target.restore(roundTrip(source));
      assert.equal(target.size, count);
      assert.deepEqual([...target], [...source]);
      assert.equal(target.head, 3);
      assert.deepEqual(target.toSnapshot(), { queueId: "q", items: [...source] });
    });
  }

  it("a snapshot install reports which items left and which arrived", () => {
    const leader = new HamokQueueState("q");
    const follower = new HamokQueueState("q");
    const both = (op: string, args: unknown) => {
      const c = ctx();
      leader.apply(op, args, c);
      follower.apply(op, args, c);
    };
    both("push", ["a", "b", "c"]);
    both("pop", null);
    // the follower misses these, then installs the leader's snapshot
    leader.apply("pop", null, ctx());
    leader.apply("push", ["d", "e"], ctx());
    leader.apply("pop", null, ctx());
    const log = recorder(follower);
    follower.restore(roundTrip(leader));
    assert.deepEqual([...follower], ["d", "e"]);
    assert.deepEqual(log, ["-b", "-c", "+d", "+e"]);
    // restoring an empty image empties it and says so
    const emptied: string[] = recorder(leader);
    leader.restore(new HamokQueueState("q").snapshot());
    assert.equal(leader.size, 0);
    assert.deepEqual(emptied, ["-d", "-e", "empty"]);
    // and restoring into an empty state fires not-empty
    const fresh = new HamokQueueState("q");
    const freshLog = recorder(fresh);
    fresh.restore(roundTrip(follower));
    assert.deepEqual(freshLog, ["+d", "+e", "not-empty"]);
  });

  it("ignores unknown operations and member removals", () => {
    const state = new HamokQueueState("q");
    state.apply("push", [1], ctx());
    assert.equal(state.apply("nonsense", null, ctx()), undefined);
    state.memberRemoved();
    assert.deepEqual([...state], [1]);
  });
});
