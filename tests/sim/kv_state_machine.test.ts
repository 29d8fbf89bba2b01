import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Entry } from "../../src/raft/types.ts";
import { encodeCommand, type KvCommand, KvStateMachine } from "./kv_state_machine.ts";

let index = 0;
const entry = (cmd: KvCommand): Entry => ({
  index: ++index,
  term: 1,
  type: "normal",
  data: encodeCommand(cmd),
});

describe("KvStateMachine", () => {
  it("applies put, get and compare-and-set", () => {
    index = 0;
    const kv = new KvStateMachine();
    assert.deepEqual(kv.apply(entry({ c: 1, s: 1, o: "put", k: "a", v: "x" })), {
      requestId: "1:1",
      result: null,
    });
    assert.deepEqual(kv.apply(entry({ c: 1, s: 2, o: "put", k: "a", v: "y" })).result, "x");
    assert.equal(kv.apply(entry({ c: 2, s: 1, o: "cas", k: "a", e: "x", v: "z" })).result, false);
    assert.equal(kv.apply(entry({ c: 2, s: 2, o: "cas", k: "a", e: "y", v: "z" })).result, true);
    assert.equal(kv.apply(entry({ c: 3, s: 1, o: "get", k: "a" })).result, "z");
    assert.equal(kv.get("a"), "z");
    assert.equal(kv.appliedIndex, 5);
  });

  it("answers a duplicate with the first result and ignores stale requests", () => {
    index = 0;
    const kv = new KvStateMachine();
    kv.apply(entry({ c: 1, s: 1, o: "put", k: "a", v: "x" }));
    kv.apply(entry({ c: 2, s: 1, o: "put", k: "a", v: "y" }));
    const dup = kv.apply(entry({ c: 2, s: 1, o: "put", k: "a", v: "y" }));
    assert.deepEqual(dup, { requestId: "2:1", result: "x" });
    kv.apply(entry({ c: 1, s: 2, o: "put", k: "b", v: "q" }));
    assert.deepEqual(kv.apply(entry({ c: 1, s: 1, o: "put", k: "a", v: "x" })), {
      requestId: "1:1",
      stale: true,
    });
    assert.equal(kv.get("a"), "y");
  });

  it("restores from a snapshot to the same contents, sessions and chain", () => {
    index = 0;
    const kv = new KvStateMachine();
    kv.apply(entry({ c: 1, s: 1, o: "put", k: "a", v: "x" }));
    kv.apply({ index: ++index, term: 2, type: "noop", data: new Uint8Array() });
    kv.apply(entry({ c: 2, s: 7, o: "put", k: "b", v: "y" }));
    const copy = new KvStateMachine();
    copy.restore(kv.snapshot(), kv.appliedIndex);
    assert.equal(copy.appliedIndex, 3);
    assert.equal(copy.chainValue, kv.chainValue);
    assert.equal(copy.contentsKey(), kv.contentsKey());
    const next = entry({ c: 2, s: 7, o: "put", k: "b", v: "y" });
    assert.deepEqual(copy.apply(next), kv.apply(next), "the session survives the snapshot");
    assert.equal(copy.chainValue, kv.chainValue);
    const empty = new KvStateMachine();
    empty.restore(new Uint8Array(), 0);
    assert.equal(empty.get("a"), null);
  });

  it("chains differ when the applied histories differ", () => {
    const a = new KvStateMachine();
    const b = new KvStateMachine();
    a.apply({ index: 1, term: 1, type: "noop", data: new Uint8Array() });
    b.apply({ index: 1, term: 2, type: "noop", data: new Uint8Array() });
    assert.notEqual(a.chainValue, b.chainValue);
  });
});
