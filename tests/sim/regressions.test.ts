import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runSeed } from "./runner.ts";
import type { SimOptions } from "./simulation.ts";

/**
 * Seeds that once found a bug in the Raft core (or in the simulator), each replayed with the
 * options it failed with. The comment says what went wrong and which commit fixed it.
 */
const REGRESSIONS: readonly { readonly what: string; readonly opts: SimOptions }[] = [];

describe("simulator regressions", () => {
  for (const r of REGRESSIONS) {
    it(`seed ${r.opts.seed}: ${r.what}`, () => {
      const result = runSeed(r.opts.seed, r.opts);
      assert.deepEqual(result.violations, []);
    });
  }
});
