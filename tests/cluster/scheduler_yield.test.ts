import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { REAL_SCHEDULER } from "../../src/cluster/scheduler.ts";

/** Resolves once `ok()` holds, checking on 0 ms timers; rejects after `ms`. */
async function until(ok: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

describe("REAL_SCHEDULER.yieldThen", () => {
  it("runs one yielded callback per turn: a timer armed in one runs before the next", async () => {
    const order: string[] = [];
    REAL_SCHEDULER.yieldThen(() => {
      order.push("a");
      setTimeout(() => order.push("timer armed in a"), 0);
    });
    REAL_SCHEDULER.yieldThen(() => order.push("b"));
    REAL_SCHEDULER.yieldThen(() => order.push("c"));
    await until(() => order.length === 4, 5000);
    assert.deepEqual(order, ["a", "timer armed in a", "b", "c"]);
  });

  it("jobs of several peers take turns, each in the order it yielded", async () => {
    const order: string[] = [];
    const job = (name: string, slices: number) => {
      let left = slices;
      const slice = () => {
        order.push(`${name}${slices - left}`);
        if (--left > 0) REAL_SCHEDULER.yieldThen(slice);
      };
      REAL_SCHEDULER.yieldThen(slice);
    };
    job("x", 3);
    job("y", 2);
    job("z", 1);
    await until(() => order.length === 6, 5000);
    assert.deepEqual(order, ["x0", "y0", "z0", "x1", "y1", "x2"]);
  });

  it("a callback that yields again while it is the last one still gets its turn", async () => {
    let runs = 0;
    const again = () => {
      if (++runs < 3) REAL_SCHEDULER.yieldThen(again);
    };
    REAL_SCHEDULER.yieldThen(again);
    await until(() => runs === 3, 5000);
    assert.equal(runs, 3);
  });
});
