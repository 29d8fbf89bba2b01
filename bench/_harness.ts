/**
 * A tiny benchmark registration that runs one bench file unchanged under `deno bench` (through
 * `Deno.bench`) and under Bun (`bun bench/<file>.bench.ts`, through mitata, started on a
 * `setTimeout(0)` once the module has registered everything).
 *
 * Benches registered with `samples: true` also time every call themselves and print a summary
 * (median and p99 per call) when the run ends, because `deno bench` reports no median.
 *
 * @module
 */

import process from "node:process";

/** Options of {@linkcode bench}. */
export interface BenchOptions {
  /** Benches of one group are compared with each other. */
  group?: string;
  /** The bench the others of its group are compared to. */
  baseline?: boolean;
  /** Also time each call and print median / p99 at the end (for calls of a microsecond or more). */
  samples?: boolean;
  /**
   * Deno only: a fixed number of measured calls (for slow benches, e.g. a cluster join); mitata
   * decides on its own (at least 12 samples).
   */
  n?: number;
  /** Deno only: a fixed number of warm-up calls (with `n`). */
  warmup?: number;
}

type BenchFn = () => unknown;

interface DenoBenchApi {
  bench(definition: {
    name: string;
    group?: string;
    baseline?: boolean;
    n?: number;
    warmup?: number;
    fn: BenchFn;
  }): void;
}

const deno = (globalThis as { Deno?: DenoBenchApi }).Deno;

/** Most recent per-call samples kept for the summary (older ones, the warm-up, drop out). */
const SAMPLE_WINDOW = 200_000;

class Samples {
  readonly name: string;
  readonly #values = new Float64Array(SAMPLE_WINDOW);
  #count = 0;

  constructor(name: string) {
    this.name = name;
  }

  add(ms: number): void {
    this.#values[this.#count++ % SAMPLE_WINDOW] = ms;
  }

  summary(): { n: number; medianUs: number; p99Us: number } | undefined {
    const n = Math.min(this.#count, SAMPLE_WINDOW);
    if (n === 0) return undefined;
    const sorted = this.#values.slice(0, n).sort();
    const at = (q: number): number => sorted[Math.min(n - 1, Math.floor(q * n))] * 1000;
    return { n, medianUs: at(0.5), p99Us: at(0.99) };
  }
}

const sampled: Samples[] = [];
const cleanups: (() => void | Promise<void>)[] = [];
let mitataRunScheduled = false;
const mitataBenches: { name: string; group?: string; baseline?: boolean; fn: BenchFn }[] = [];

function isAsync(fn: BenchFn): boolean {
  return fn.constructor.name === "AsyncFunction";
}

function timed(fn: BenchFn, samples: Samples): BenchFn {
  if (isAsync(fn)) {
    return async () => {
      const start = performance.now();
      await fn();
      samples.add(performance.now() - start);
    };
  }
  return () => {
    const start = performance.now();
    const result = fn();
    samples.add(performance.now() - start);
    return result;
  };
}

function formatUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(2)} µs`;
}

/** Prints the median / p99 summary of the benches registered with `samples: true`. */
function printSamples(): void {
  const rows = sampled.map((s) => [s.name, s.summary()] as const).filter(([, s]) => s !== undefined);
  if (rows.length === 0) return;
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = ["", "per-call summary (own timing, most recent samples):"];
  for (const [name, s] of rows) {
    lines.push(
      `  ${name.padEnd(width)}  median ${formatUs(s!.medianUs).padStart(10)}  p99 ${
        formatUs(s!.p99Us).padStart(10)
      }  (n=${s!.n})`,
    );
  }
  console.log(lines.join("\n"));
}

async function runWithMitata(): Promise<void> {
  const mitata = await import("mitata");
  const byGroup = new Map<string | undefined, typeof mitataBenches>();
  for (const def of mitataBenches) {
    const list = byGroup.get(def.group) ?? [];
    list.push(def);
    byGroup.set(def.group, list);
  }
  for (const [group, defs] of byGroup) {
    const register = (): void => {
      for (const def of defs) {
        const b = mitata.bench(def.name, def.fn);
        if (def.baseline) b.baseline(true);
      }
    };
    if (group === undefined) register();
    else mitata.summary(() => mitata.group(group, register));
  }
  try {
    await mitata.run();
    printSamples();
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

/**
 * Registers a benchmark: `Deno.bench` under Deno, mitata under Bun. A bench that waits for
 * something must be an `async` function: `Deno.bench` awaits only those.
 *
 * @example
 * ```ts
 * bench("noop", () => {});
 * bench("round trip", () => pingPong(), { group: "rtt", samples: true });
 * ```
 */
export function bench(name: string, fn: BenchFn, options: BenchOptions = {}): void {
  let body = fn;
  if (options.samples) {
    const samples = new Samples(name);
    sampled.push(samples);
    body = timed(fn, samples);
  }
  if (deno !== undefined) {
    deno.bench({
      name,
      group: options.group,
      baseline: options.baseline,
      n: options.n,
      warmup: options.warmup,
      fn: body,
    });
    return;
  }
  mitataBenches.push({ name, group: options.group, baseline: options.baseline, fn: body });
  if (!mitataRunScheduled) {
    mitataRunScheduled = true;
    setTimeout(() => {
      runWithMitata().then(
        () => process.exit(0),
        (err) => {
          console.error(err);
          process.exit(1);
        },
      );
    }, 0);
  }
}

/**
 * Registers cleanup for the end of the run. Under Deno it runs on the `unload` event, where only
 * its synchronous part counts (kill processes there; sockets die with the process); under Bun it
 * is awaited after mitata finished.
 *
 * @example
 * ```ts
 * const server = await startNatsServer();
 * onBenchEnd(() => server.killSync());
 * ```
 */
export function onBenchEnd(cleanup: () => void | Promise<void>): void {
  cleanups.push(cleanup);
  if (deno !== undefined && cleanups.length === 1) {
    globalThis.addEventListener("unload", () => {
      printSamples();
      for (const fn of cleanups) void fn();
    });
  }
}

if (deno !== undefined) {
  // Print the summary even when no cleanup was registered.
  globalThis.addEventListener("unload", () => {
    if (cleanups.length === 0) printSamples();
  });
}
