import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "eventemitter3";
import { waitFor, waitForEvent, WaitTimeoutError } from "./wait.ts";

describe("waitFor / waitForEvent (test helpers)", () => {
  it("waitFor resolves once the condition holds, sync or async", async () => {
    let n = 0;
    const ticker = setInterval(() => n++, 1);
    try {
      await waitFor(() => n >= 3, { timeoutMs: 5000 });
      await waitFor(() => Promise.resolve(n >= 5), { timeoutMs: 5000, intervalMs: 1 });
    } finally {
      clearInterval(ticker);
    }
    assert.ok(n >= 5);
  });

  it("waitFor rejects with WaitTimeoutError naming what was awaited", async () => {
    await assert.rejects(
      waitFor(() => false, { timeoutMs: 20, message: "the impossible" }),
      (err: unknown) => {
        assert.ok(err instanceof WaitTimeoutError);
        assert.equal(err.timeoutMs, 20);
        assert.match(err.message, /20 ms: the impossible/);
        return true;
      },
    );
  });

  it("waitFor passes on the condition's own error", async () => {
    await assert.rejects(
      waitFor(() => {
        throw new Error("broken condition");
      }, { timeoutMs: 1000 }),
      /broken condition/,
    );
  });

  it("waitForEvent resolves with the arguments of the first emission that passes the filter", async () => {
    const emitter = new EventEmitter();
    const waiting = waitForEvent(emitter, "state", { timeoutMs: 5000, filter: (s) => s === "connected" });
    emitter.emit("state", "reconnecting", "disconnected");
    emitter.emit("state", "connected", "reconnecting");
    assert.deepEqual(await waiting, ["connected", "reconnecting"]);
    assert.equal(emitter.listenerCount("state"), 0, "listener removed");
  });

  it("waitForEvent rejects after the bound and removes its listener", async () => {
    const emitter = new EventEmitter();
    await assert.rejects(waitForEvent(emitter, "never", { timeoutMs: 20 }), WaitTimeoutError);
    assert.equal(emitter.listenerCount("never"), 0);
  });
});
