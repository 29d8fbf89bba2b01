/**
 * `deno task sim`: runs simulator seeds against the Raft core and prints a summary (seeds, steps,
 * faults per kind, operations checked, violations) with a replay command for every failure.
 *
 * ```
 * deno task sim                          # about two minutes of seeds (3- and 5-node, mixed faults)
 * deno task sim --seeds 1000             # exactly 1000 seeds (no time budget)
 * deno task sim --seed 4711 --verbose    # replay one seed, print its trace and violation
 * options: --from S (first seed, default 1), --nodes 3|5, --steps N (default 10000),
 *          --time-budget SECONDS (default 120), --no-liveness, --bug NAME (repeatable),
 *          --profile mixed|elections|leader-isolation|figure8, --trace N (trace lines kept),
 *          --persistence seed|sync|async (how nodes persist, default: the seed chooses),
 *          --imageless (every other compaction without an image, given when a transfer asks),
 *          --stop-on-failure, --quiet
 * ```
 *
 * Exit code 1 when any seed found a violation.
 *
 * @module
 */

import process from "node:process";
import type { RaftTestingBug } from "../../src/raft/types.ts";
import { type BatchOptions, formatSummary, replayCommand, runBatch, runSeed } from "./runner.ts";
import type { SimProfile } from "./simulation.ts";

interface Cli {
  from: number;
  seeds?: number;
  seed?: number;
  budgetS: number;
  opts: BatchOptions;
  verbose: boolean;
  quiet: boolean;
  stopOnFailure: boolean;
  trace: number;
}

function usage(message: string): never {
  console.error(`sim: ${message}`);
  console.error(
    "usage: deno task sim [--seeds N | --seed S] [--from S] [--nodes 3|5] [--steps N] [--time-budget SECONDS]\n" +
      "                     [--no-liveness] [--bug NAME]... [--profile NAME] [--persistence seed|sync|async]\n" +
      "                     [--imageless]\n" +
      "                     [--trace N] [--verbose] [--quiet]\n" +
      "                     [--stop-on-failure]",
  );
  process.exit(2);
}

function parse(argv: string[]): Cli {
  const cli: Cli = {
    from: 1,
    budgetS: 120,
    opts: {},
    verbose: false,
    quiet: false,
    stopOnFailure: false,
    trace: 0,
  };
  const bugs: RaftTestingBug[] = [];
  let nodes: number | undefined;
  let steps: number | undefined;
  let liveness: boolean | undefined;
  let profile: SimProfile | undefined;
  let persistence: "seed" | "sync" | "async" | undefined;
  let imageless = false;
  let budgetGiven = false;
  const num = (i: number): number => {
    const v = Number(argv[i]);
    if (argv[i] === undefined || !Number.isFinite(v)) usage(`${argv[i - 1]} needs a number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--seeds":
        cli.seeds = num(++i);
        break;
      case "--seed":
        cli.seed = num(++i);
        break;
      case "--from":
        cli.from = num(++i);
        break;
      case "--nodes":
        nodes = num(++i);
        if (nodes !== 3 && nodes !== 5) usage("--nodes must be 3 or 5");
        break;
      case "--steps":
        steps = num(++i);
        break;
      case "--time-budget":
        cli.budgetS = num(++i);
        budgetGiven = true;
        break;
      case "--no-liveness":
        liveness = false;
        break;
      case "--bug":
        bugs.push(argv[++i] as RaftTestingBug);
        break;
      case "--profile":
        profile = argv[++i] as SimProfile;
        break;
      case "--persistence": {
        const v = argv[++i];
        if (v !== "seed" && v !== "sync" && v !== "async") usage("--persistence must be seed, sync or async");
        persistence = v;
        break;
      }
      case "--imageless":
        imageless = true;
        break;
      case "--trace":
        cli.trace = num(++i);
        break;
      case "--verbose":
        cli.verbose = true;
        break;
      case "--quiet":
        cli.quiet = true;
        break;
      case "--stop-on-failure":
        cli.stopOnFailure = true;
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  if (cli.seeds !== undefined && !budgetGiven) cli.budgetS = Infinity;
  cli.opts = {
    ...(nodes !== undefined ? { nodes } : {}),
    ...(steps !== undefined ? { steps } : {}),
    ...(liveness !== undefined ? { liveness } : {}),
    ...(bugs.length > 0 ? { bugs } : {}),
    ...(profile !== undefined ? { profile } : {}),
    ...(persistence !== undefined ? { persistence } : {}),
    ...(imageless ? { imageless } : {}),
  };
  return cli;
}

function main(): void {
  const cli = parse(process.argv.slice(2));
  if (cli.seed !== undefined) {
    const traceLines = cli.trace > 0 ? cli.trace : cli.verbose ? 400 : 0;
    const r = runSeed(cli.seed, { ...cli.opts, traceLines });
    if (traceLines > 0) { for (const line of r.trace) console.log(line); }
    console.log(
      `seed ${r.seed}: ${r.nodes} nodes, ${r.steps} steps, ${r.virtualTimeMs} virtual ms, ` +
        `${r.opsChecked} ops checked (${r.opsCompleted} completed, ${r.opsUnknown} unknown), ` +
        `${r.leaders} leaders, commit ${r.commitIndex}, linearizability ${r.linearizability}, ` +
        `liveness ${
          r.livenessOk === undefined ? "not run" : r.livenessOk ? "ok" : "FAILED"
        }, trace ${r.traceHash}`,
    );
    console.log(
      "faults: " + Object.entries(r.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(" "),
    );
    for (const v of r.violations) {
      console.log(`VIOLATION ${v.kind} at step ${v.step}, ${v.time} ms: ${v.message}`);
    }
    if (r.violations.length > 0) {
      console.log(`replay: ${replayCommand(r.seed, cli.opts)}`);
      process.exit(1);
    }
    return;
  }
  const budgetMs = cli.budgetS * 1000;
  if (!cli.quiet) {
    console.log(
      `sim: seeds from ${cli.from}` + (cli.seeds !== undefined ? `, ${cli.seeds} seeds` : "") +
        (Number.isFinite(budgetMs) ? `, time budget ${cli.budgetS} s` : "") +
        `, options ${JSON.stringify(cli.opts)}`,
    );
  }
  let done = 0;
  const summary = runBatch(
    { from: cli.from, count: cli.seeds, budgetMs, stopOnFailure: cli.stopOnFailure },
    cli.opts,
    (r) => {
      done++;
      if (r.violations.length > 0) {
        console.log(`seed ${r.seed}: ${r.violations[0].kind}: ${r.violations[0].message.split("\n")[0]}`);
        console.log(`  replay: ${replayCommand(r.seed, cli.opts)}`);
      } else if (!cli.quiet && done % 1000 === 0) {
        console.log(`... ${done} seeds`);
      }
    },
  );
  console.log(formatSummary(summary));
  if (summary.failures.length > 0) process.exit(1);
}

main();
