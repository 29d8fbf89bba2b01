import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { IsolatedEventEmitter } from "../../src/collections/isolated_emitter.ts";

type Events = { e: (n: number) => void; f: () => void };

describe("IsolatedEventEmitter", () => {
  it("a throwing listener is reported and the others still run", () => {
    const failures: [unknown, string][] = [];
    const emitter = new IsolatedEventEmitter<Events>((error, event) => failures.push([error, event]));
    const got: string[] = [];
    emitter.on("e", (n) => got.push(`1:${n}`));
    emitter.on("e", () => {
      throw new Error("boom");
    });
    emitter.on("e", (n) => got.push(`3:${n}`));
    assert.doesNotThrow(() => emitter.emit("e", 7));
    assert.deepEqual(got, ["1:7", "3:7"]);
    assert.equal(failures.length, 1);
    assert.equal((failures[0][0] as Error).message, "boom");
    assert.equal(failures[0][1], "e");
  });

  it("off() removes the listener it was given; once() fires once and can be removed before", () => {
    const emitter = new IsolatedEventEmitter<Events>();
    let a = 0, b = 0, c = 0;
    const fa = () => a++;
    const fb = () => b++;
    const fc = () => c++;
    emitter.on("f", fa);
    emitter.once("f", fb);
    emitter.once("f", fc);
    emitter.off("f", fc);
    emitter.emit("f");
    emitter.emit("f");
    assert.deepEqual([a, b, c], [2, 1, 0]);
    emitter.off("f", fa);
    emitter.emit("f");
    assert.equal(a, 2);
    assert.equal(emitter.listenerCount("f"), 0);
  });

  it("removeAllListeners() and removeListener() work like EventEmitter3", () => {
    const emitter = new IsolatedEventEmitter<Events>();
    let n = 0;
    const f = () => n++;
    emitter.addListener("e", f);
    emitter.addListener("f", f);
    emitter.removeListener("e", f);
    emitter.emit("e", 1);
    emitter.emit("f");
    assert.equal(n, 1);
    emitter.removeAllListeners();
    emitter.emit("f");
    assert.equal(n, 1);
  });
});
