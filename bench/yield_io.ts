/**
 * How long the callbacks of completed file-system calls wait while long jobs yield to the event loop:
 * three WAL-like loops (an asynchronous 150-byte write, then an `fdatasync`, again) beside three jobs
 * of 4 ms busy slices, each yielding either with `setImmediate` or with the real scheduler's
 * `yieldThen` (a 0 ms timer). Prints, per way of yielding and per round, the longest and the p99 time
 * from an `fdatasync` call to its callback, and the longest gap of a 1 ms timer.
 *
 * On Deno 2.9.6 the immediates let callbacks wait up to 300-400 ms in some rounds (docs/decisions.md,
 * "Long jobs yield through a 0 ms timer"); on Bun they do not. Deno: `deno run -A bench/yield_io.ts
 * [rounds]`; Bun: `bun bench/yield_io.ts [rounds]`. The files go to a temporary directory.
 *
 * @module
 */

import * as fs from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import { REAL_SCHEDULER } from "../src/cluster/scheduler.ts";

const rounds = Number(process.argv[2] ?? 3);
const WRITERS = 3;
const JOBS = 3;
const SLICE_MS = 4;
const SLICES = 150;

interface RoundResult {
  maxMs: number;
  p99Ms: number;
  syncs: number;
  maxTickGapMs: number;
}

async function round(dir: string, yieldThen: (callback: () => void) => void): Promise<RoundResult> {
  const fds = Array.from({ length: WRITERS }, (_, i) => fs.openSync(join(dir, `w${i}.wal`), "w"));
  const record = new Uint8Array(150);
  const delays: number[] = [];
  let measuring = false;
  let running = true;
  let inFlight = 0;
  const loop = (fd: number): void => {
    if (!running) return;
    inFlight++;
    fs.write(fd, record, 0, record.length, null, () => {
      const t0 = performance.now();
      fs.fdatasync(fd, () => {
        inFlight--;
        if (measuring) delays.push(performance.now() - t0);
        loop(fd);
      });
    });
  };
  fds.forEach(loop);
  let lastTick = performance.now();
  let maxTickGapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    if (measuring) maxTickGapMs = Math.max(maxTickGapMs, now - lastTick);
    lastTick = now;
  }, 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  measuring = true;
  await Promise.all(
    Array.from({ length: JOBS }, () =>
      new Promise<void>((resolve) => {
        let n = 0;
        const slice = (): void => {
          const started = performance.now();
          while (performance.now() - started < SLICE_MS) { /* a slice of work */ }
          if (++n < SLICES) yieldThen(slice);
          else resolve();
        };
        slice();
      })),
  );
  measuring = false;
  running = false;
  clearInterval(ticker);
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  for (const fd of fds) fs.closeSync(fd);
  delays.sort((a, b) => a - b);
  return {
    maxMs: delays[delays.length - 1] ?? 0,
    p99Ms: delays[Math.min(delays.length - 1, Math.floor(delays.length * 0.99))] ?? 0,
    syncs: delays.length,
    maxTickGapMs,
  };
}

const dir = mkdtempSync(join(tmpdir(), "hamok-yield-io-"));
try {
  const ways: [string, (callback: () => void) => void][] = [
    ["setImmediate", (callback) => setImmediate(callback)],
    ["REAL_SCHEDULER.yieldThen", (callback) => REAL_SCHEDULER.yieldThen(callback)],
  ];
  for (let r = 1; r <= rounds; r++) {
    for (const [name, yieldThen] of ways) {
      const result = await round(dir, yieldThen);
      console.log(
        `round ${r}, ${name}: fdatasync to callback max ${result.maxMs.toFixed(1)} ms, p99 ${
          result.p99Ms.toFixed(1)
        } ms over ${result.syncs} syncs; longest 1 ms timer gap ${result.maxTickGapMs.toFixed(1)} ms`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
