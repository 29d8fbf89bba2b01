import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ReadyGate } from "../../src/collections/ready_gate.ts";

describe("ReadyGate", () => {
  it("shares one barrier, and starts a new one after a failure", async () => {
    let calls = 0;
    let fail = true;
    const host = {
      whenReady: (timeoutMs: number) => {
        calls++;
        assert.equal(timeoutMs, 100);
        return fail ? Promise.reject(new Error("not yet")) : Promise.resolve();
      },
    };
    const gate = new ReadyGate();
    const first = gate.get(host, 100);
    assert.equal(gate.get(host, 100), first);
    await assert.rejects(first, /not yet/);
    assert.equal(calls, 1);
    fail = false;
    const second = gate.get(host, 100);
    assert.notEqual(second, first);
    await second;
    assert.equal(gate.get(host, 100), second);
    assert.equal(calls, 2);
  });
});
