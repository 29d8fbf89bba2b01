import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LocalListeners } from "../../src/collections/local_listeners.ts";

describe("LocalListeners", () => {
  it("delivers in registration order and isolates a throwing listener", () => {
    const l = new LocalListeners();
    const got: string[] = [];
    const errors: unknown[] = [];
    l.add("e", (x) => got.push(`1:${x}`), false);
    l.add("e", () => {
      throw new Error("boom");
    }, false);
    l.add("e", (x) => got.push(`3:${x}`), false);
    l.deliver("e", ["a"], (e) => errors.push(e));
    assert.deepEqual(got, ["1:a", "3:a"]);
    assert.equal(errors.length, 1);
    assert.equal(l.count("e"), 3);
  });

  it("removes once-listeners before calling them, and listeners added during delivery wait", () => {
    const l = new LocalListeners();
    const got: string[] = [];
    l.add("e", () => {
      got.push("once");
      l.add("e", () => got.push("late"), false);
    }, true);
    l.deliver("e", [], () => {});
    assert.deepEqual(got, ["once"]);
    l.deliver("e", [], () => {});
    assert.deepEqual(got, ["once", "late"]);
  });

  it("remove() takes one registration; clear() all", () => {
    const l = new LocalListeners();
    const f = () => {};
    l.add("e", f, false);
    l.add("e", f, false);
    assert.equal(l.remove("e", f), true);
    assert.equal(l.count("e"), 1);
    assert.equal(l.remove("x", f), false);
    l.clear();
    assert.equal(l.has("e"), false);
  });
});
