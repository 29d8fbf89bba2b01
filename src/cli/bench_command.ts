/**
 * `hamok bench publish|set`: load against a running cluster through one member, with a progress
 * bar on standard error and a p50/p99 summary on standard output.
 *
 * @module
 */

import { encodeCbor } from "../codec/cbor.ts";
import { type CliContext, CONNECTION_HELP, HamokCliError } from "./context.ts";

/** `hamok bench --help`. */
export const BENCH_HELP: string = `usage: hamok bench <publish|set> [options]

  hamok bench set --map bench [--count N] [--concurrency C] [--size BYTES]
  hamok bench publish --emitter bench --event e [--count N] [--concurrency C] [--size BYTES]

Sends N operations (default 1000), C at a time (default 16), through one member (the leader unless
--peer is given) and prints the latency percentiles and the throughput. Each operation is a client
request to that member, so the numbers include the client's round trip over NATS.

options:
  --json            print the summary as JSON
  --peer ID         the member to go through (default: the leader)
${CONNECTION_HELP}`;

/** The result of a bench run. */
export interface BenchSummary {
  /** `set` or `publish`. */
  readonly operation: string;
  /** Operations that succeeded. */
  readonly ok: number;
  /** Operations that failed. */
  readonly failed: number;
  /** Wall-clock duration, ms. */
  readonly durationMs: number;
  /** Operations per second. */
  readonly throughput: number;
  /** Median latency, ms. */
  readonly p50Ms: number;
  /** 99th percentile latency, ms. */
  readonly p99Ms: number;
  /** Largest latency, ms. */
  readonly maxMs: number;
}

/** Runs `hamok bench`. */
export async function benchCommand(ctx: CliContext): Promise<number> {
  const operation = ctx.args.positionals[1];
  if (operation !== "set" && operation !== "publish") {
    throw new HamokCliError(`bench needs 'set' or 'publish'\n\n${BENCH_HELP}`, 2);
  }
  const count = ctx.integer("count", 1000);
  const concurrency = ctx.integer("concurrency", 16);
  const size = ctx.integer("size", 64);
  const client = await ctx.client();
  const peer = await ctx.target();
  const payload = "x".repeat(size);
  let run: (i: number) => Promise<unknown>;
  if (operation === "set") {
    const mapId = ctx.option("map", "bench")!;
    const value = encodeCbor(payload);
    run = (i) => client.mapWrite(peer, mapId, encodeCbor(`k${i % 1000}`), value);
  } else {
    const emitterId = ctx.option("emitter", "bench")!;
    const event = ctx.option("event", "bench")!;
    run = () => client.publish(peer, emitterId, event, [payload]);
  }
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  let done = 0;
  let lastError: Error | undefined;
  const bar = progress(ctx, count);
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      try {
        await run(i);
        latencies.push(performance.now() - t0);
      } catch (error) {
        failed++;
        lastError = error as Error;
      }
      bar(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const durationMs = performance.now() - started;
  bar(count, true);
  latencies.sort((a, b) => a - b);
  const summary: BenchSummary = {
    operation,
    ok: latencies.length,
    failed,
    durationMs: round(durationMs),
    throughput: Math.round((latencies.length / durationMs) * 1000),
    p50Ms: round(percentile(latencies, 0.5)),
    p99Ms: round(percentile(latencies, 0.99)),
    maxMs: round(latencies[latencies.length - 1] ?? 0),
  };
  if (ctx.flag("json")) ctx.io.out(JSON.stringify(summary) + "\n");
  else {
    ctx.io.out(
      `${operation} through ${peer}: ${summary.ok} ok, ${failed} failed in ${summary.durationMs} ms ` +
        `(${summary.throughput}/s, ${concurrency} in flight)\n` +
        `latency p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms, max ${summary.maxMs} ms\n`,
    );
  }
  if (lastError !== undefined) ctx.io.err(`hamok: last failure: ${lastError.message}\n`);
  return failed === 0 ? 0 : 1;
}

function progress(ctx: CliContext, total: number): (done: number, final?: boolean) => void {
  const width = 30;
  let shown = -1;
  return (done, final = false) => {
    const pct = Math.floor((done / total) * 100);
    if (pct === shown && !final) return;
    shown = pct;
    const filled = Math.round((done / total) * width);
    const text = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${
      String(pct).padStart(3)
    }% ${done}/${total}`;
    if (ctx.io.errIsTty) ctx.io.err(`\r${text}${final ? "\n" : ""}`);
    else if (final || pct % 25 === 0) ctx.io.err(text + "\n");
  };
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
