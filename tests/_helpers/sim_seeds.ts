/**
 * Which simulator seeds the test suite runs. CI runs a fixed range by default (so a red run is
 * reproducible from its log alone); `HAMOK_SIM_SEED_BASE` shifts the range and `HAMOK_SIM_SEEDS`
 * changes its size, e.g. to sweep new seeds on a developer machine or in a scheduled job. Every
 * failure message carries the one-line `deno task sim --seed ...` command that replays it.
 *
 * @module
 */

import process from "node:process";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return v;
}

/**
 * The first seed and the number of seeds of the simulator's CI run.
 *
 * @example
 * ```ts
 * const { base, count } = simSeedRange(520);
 * for (let s = base; s < base + count; s++) runSeed(s, {});
 * ```
 */
export function simSeedRange(defaultCount: number, defaultBase = 1): { base: number; count: number } {
  return { base: envInt("HAMOK_SIM_SEED_BASE", defaultBase), count: envInt("HAMOK_SIM_SEEDS", defaultCount) };
}
