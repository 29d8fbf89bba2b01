/**
 * Own sample loops for `bench/report.ts` (and any bench that wants exact percentiles): a latency
 * loop (warm-up, then N sequential samples, p50/p99 from the sorted samples), a closed loop with a
 * fixed number of operations in flight (per-operation latency and operations per second), bounded
 * waiting, and a description of the machine the numbers come from.
 *
 * Runs unchanged under Deno and Bun (only `node:*` modules and web APIs).
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

/** Percentiles of a set of samples, in microseconds. */
export interface LatencyStats {
  /** Number of samples. */
  readonly n: number;
  /** Median, µs. */
  readonly p50Us: number;
  /** 99th percentile, µs. */
  readonly p99Us: number;
  /** Mean, µs. */
  readonly meanUs: number;
}

/** {@linkcode LatencyStats} of a closed loop, plus its rate. */
export interface ThroughputStats extends LatencyStats {
  /** Completed operations per second over the measured phase. */
  readonly opsPerSec: number;
  /** Operations in flight. */
  readonly concurrency: number;
}

/** Nearest-rank percentile (`q` in (0, 1]) of ascending `sorted`. */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Summarises samples given in milliseconds. */
export function summarize(samplesMs: Float64Array): LatencyStats {
  const sorted = samplesMs.slice().sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i];
  return {
    n: sorted.length,
    p50Us: percentile(sorted, 0.5) * 1000,
    p99Us: percentile(sorted, 0.99) * 1000,
    meanUs: sorted.length === 0 ? Number.NaN : (sum / sorted.length) * 1000,
  };
}

/** Options of {@linkcode sampleLatency}. */
export interface SampleOptions {
  /** Calls made before measuring (not recorded). */
  warmup: number;
  /** Calls measured. */
  samples: number;
  /** Stop early (with fewer samples) once this much time went into the measured calls. */
  maxMs?: number;
}

/**
 * Calls `op` `warmup` times, then `samples` times one after the other, timing each call.
 *
 * @example
 * ```ts
 * const stats = await sampleLatency(() => nc.request("echo", data), { warmup: 200, samples: 2000 });
 * console.log(stats.p50Us, stats.p99Us);
 * ```
 */
export async function sampleLatency(
  op: (i: number) => Promise<unknown>,
  options: SampleOptions,
): Promise<LatencyStats> {
  for (let i = 0; i < options.warmup; i++) await op(i);
  const values = new Float64Array(options.samples);
  const deadline = options.maxMs === undefined ? Infinity : performance.now() + options.maxMs;
  let n = 0;
  for (; n < options.samples; n++) {
    const start = performance.now();
    await op(options.warmup + n);
    const end = performance.now();
    values[n] = end - start;
    if (end > deadline) {
      n++;
      break;
    }
  }
  return summarize(values.subarray(0, n));
}

/** One operation of {@linkcode sampleInterleaved}: `run` is timed, `reset` (if any) runs untimed after it. */
export interface InterleavedOp {
  /** The timed call. */
  run(i: number): Promise<unknown>;
  /** Untimed clean-up after each call (for example unsubscribing what `run` subscribed). */
  reset?(i: number): Promise<unknown>;
}

/**
 * Samples several operations in one loop, one call of each per round (the starting operation
 * rotates), so that every operation sees the same machine conditions and their ratios are fair.
 *
 * @example
 * ```ts
 * const [floor, publish] = await sampleInterleaved([
 *   { run: () => raw.request() },
 *   { run: () => emitter.publish("s2", 1, "x") },
 * ], { warmup: 200, samples: 2000 });
 * ```
 */
export async function sampleInterleaved(
  ops: readonly InterleavedOp[],
  options: SampleOptions,
): Promise<LatencyStats[]> {
  const values = ops.map(() => new Float64Array(options.samples));
  const deadline = options.maxMs === undefined ? Infinity : performance.now() + options.maxMs;
  let n = 0;
  for (let round = 0; round < options.warmup + options.samples; round++) {
    const measuring = round >= options.warmup;
    for (let k = 0; k < ops.length; k++) {
      const which = (round + k) % ops.length;
      const op = ops[which];
      const start = performance.now();
      await op.run(round);
      const elapsed = performance.now() - start;
      if (measuring) values[which][n] = elapsed;
      if (op.reset !== undefined) await op.reset(round);
    }
    if (measuring) {
      n++;
      if (performance.now() > deadline) break;
    }
  }
  return values.map((v) => summarize(v.subarray(0, n)));
}

/** Options of {@linkcode closedLoop}. */
export interface ClosedLoopOptions {
  /** Operations in flight at any time. */
  concurrency: number;
  /** Operations measured. */
  ops: number;
  /** Operations run (with the same concurrency) before measuring. */
  warmupOps: number;
}

async function runClosedLoop(
  op: (i: number) => Promise<unknown>,
  concurrency: number,
  ops: number,
  offset: number,
  latencies: Float64Array | undefined,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= ops) return;
      const start = performance.now();
      await op(offset + i);
      if (latencies !== undefined) latencies[i] = performance.now() - start;
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < concurrency; w++) workers.push(worker());
  await Promise.all(workers);
}

/**
 * Keeps `concurrency` calls of `op` in flight until `ops` completed (after `warmupOps` unmeasured
 * ones); reports the latency of each call and the completed calls per second.
 *
 * @example
 * ```ts
 * const stats = await closedLoop(() => emitter.publish("tick", 1), { concurrency: 64, ops: 20_000, warmupOps: 2000 });
 * console.log(stats.opsPerSec);
 * ```
 */
export async function closedLoop(
  op: (i: number) => Promise<unknown>,
  options: ClosedLoopOptions,
): Promise<ThroughputStats> {
  await runClosedLoop(op, options.concurrency, options.warmupOps, 0, undefined);
  const latencies = new Float64Array(options.ops);
  const start = performance.now();
  await runClosedLoop(op, options.concurrency, options.ops, options.warmupOps, latencies);
  const elapsedMs = performance.now() - start;
  return {
    ...summarize(latencies),
    opsPerSec: options.ops / (elapsedMs / 1000),
    concurrency: options.concurrency,
  };
}

/**
 * Resolves when `check()` is true (polled every `intervalMs`), rejects after `timeoutMs`; the
 * timer is always cleared.
 *
 * @example
 * ```ts
 * await until(() => peers.some((p) => p.leader), { timeoutMs: 5000, what: "a leader" });
 * ```
 */
export function until(
  check: () => boolean,
  options: { timeoutMs: number; intervalMs?: number; what: string },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 2;
  return new Promise<void>((resolve, reject) => {
    const poll = (): void => {
      let ok: boolean;
      try {
        ok = check();
      } catch (error) {
        reject(error);
        return;
      }
      if (ok) resolve();
      else if (performance.now() >= deadline) {
        reject(new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`));
      } else setTimeout(poll, interval);
    };
    poll();
  });
}

/** What the numbers were measured on. */
export interface MachineInfo {
  /** CPU model (from /proc/cpuinfo when readable). */
  readonly cpu: string;
  /** Logical cores. */
  readonly cores: number;
  /** Total memory in GiB. */
  readonly memoryGiB: number;
  /** OS and kernel. */
  readonly os: string;
  /** Runtime name and version (and its JS engine). */
  readonly runtime: string;
  /** `nats-server --version`, if the binary was given. */
  readonly natsServer: string | undefined;
  /** Version of the `nats` client package. */
  readonly natsClient: string | undefined;
  /** 1-minute load average when measured (other work on the machine skews the numbers). */
  readonly loadAverage: number;
}

function cpuModel(): string {
  try {
    const text = readFileSync("/proc/cpuinfo", "utf8");
    const line = text.split("\n").find((l) => l.startsWith("model name"));
    if (line !== undefined) return line.slice(line.indexOf(":") + 1).trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? "unknown CPU";
}

function runtimeName(): string {
  const g = globalThis as {
    Deno?: { version: { deno: string; v8: string } };
    Bun?: { version: string; revision?: string };
  };
  if (g.Deno !== undefined) return `Deno ${g.Deno.version.deno} (V8 ${g.Deno.version.v8})`;
  if (g.Bun !== undefined) return `Bun ${g.Bun.version} (JavaScriptCore)`;
  const p = (globalThis as { process?: { version?: string } }).process;
  return `Node ${p?.version ?? "?"}`;
}

function natsClientVersion(): string | undefined {
  try {
    const url = new URL("../node_modules/nats/package.json", import.meta.url);
    return (JSON.parse(readFileSync(url, "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Describes this machine and runtime; `natsServerBin` adds the server's version.
 *
 * @example
 * ```ts
 * console.log(formatMachine(machineInfo("/usr/sbin/nats-server")));
 * ```
 */
export function machineInfo(natsServerBin?: string): MachineInfo {
  let natsServer: string | undefined;
  if (natsServerBin !== undefined) {
    try {
      natsServer = execFileSync(natsServerBin, ["--version"], { encoding: "utf8" }).trim();
    } catch {
      natsServer = undefined;
    }
  }
  return {
    cpu: cpuModel(),
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    runtime: runtimeName(),
    natsServer,
    natsClient: natsClientVersion(),
    loadAverage: os.loadavg()[0],
  };
}

/** One line describing the machine. */
export function formatMachine(m: MachineInfo): string {
  const parts = [`${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB`, m.os, m.runtime];
  if (m.natsServer !== undefined) parts.push(m.natsServer);
  if (m.natsClient !== undefined) parts.push(`nats.js ${m.natsClient}`);
  parts.push(`load average ${m.loadAverage.toFixed(2)} at start`);
  return parts.join("; ");
}

/** Formats microseconds as µs or ms with three significant digits. */
export function formatUs(us: number): string {
  if (!Number.isFinite(us)) return "—";
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (us >= 1000) return `${(us / 1000).toPrecision(3)} ms`;
  return `${us.toPrecision(3)} µs`;
}

/** Formats a rate with thousands separators. */
export function formatRate(perSec: number): string {
  if (!Number.isFinite(perSec)) return "—";
  return Math.round(perSec).toLocaleString("en-US");
}
