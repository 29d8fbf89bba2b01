/**
 * Runs many simulation seeds against the real {@linkcode RaftNode} and aggregates the results
 * (seeds, steps, faults per kind, operations checked, violations), with the one-line command that
 * replays any failing seed exactly.
 *
 * @module
 */

import { RaftNode } from "../../src/raft/raft_node.ts";
import type { RaftTestingBug } from "../../src/raft/types.ts";
import {
  FAULT_KINDS,
  type FaultKind,
  type RaftNodeFactory,
  type SimOptions,
  type SimResult,
  Simulation,
} from "./simulation.ts";

/** Builds real Raft nodes for the simulator. */
export const raftNodeFactory: RaftNodeFactory = (config, initial) => new RaftNode(config, initial);

/** Options shared by every seed of a batch (everything in {@linkcode SimOptions} but the seed). */
export type BatchOptions = Omit<SimOptions, "seed">;

/** Aggregated numbers of a batch of seeds. */
export interface BatchSummary {
  /** Seeds run. */
  seeds: number;
  /** Events processed, over all seeds. */
  steps: number;
  /** Virtual time simulated, ms, over all seeds. */
  virtualTimeMs: number;
  /** Faults injected per kind, over all seeds. */
  faults: Record<FaultKind, number>;
  /** Operations in the checked histories. */
  opsChecked: number;
  /** Operations that completed. */
  opsCompleted: number;
  /** Operations left open (unknown outcome). */
  opsUnknown: number;
  /** Seeds whose history the checker could not decide within its budget. */
  linearizabilityUnknown: number;
  /** Seeds with 3 and with 5 initial voters. */
  clusterSizes: Record<string, number>;
  /** Failing seeds with their first violation and the command that replays them. */
  failures: { seed: number; kind: string; message: string; replay: string }[];
  /** Wall-clock time, ms. */
  wallMs: number;
}

/** An empty summary. */
export function emptySummary(): BatchSummary {
  return {
    seeds: 0,
    steps: 0,
    virtualTimeMs: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    opsChecked: 0,
    opsCompleted: 0,
    opsUnknown: 0,
    linearizabilityUnknown: 0,
    clusterSizes: {},
    failures: [],
    wallMs: 0,
  };
}

/** The `deno task sim` command line that replays one seed with the same options. */
export function replayCommand(seed: number, opts: BatchOptions): string {
  const parts = ["deno task sim", `--seed ${seed}`];
  if (opts.nodes !== undefined) parts.push(`--nodes ${opts.nodes}`);
  parts.push(`--steps ${opts.steps ?? 10_000}`);
  if (opts.liveness === false) parts.push("--no-liveness");
  for (const bug of opts.bugs ?? []) parts.push(`--bug ${bug}`);
  if (opts.profile !== undefined) parts.push(`--profile ${opts.profile}`);
  if (opts.persistence !== undefined && opts.persistence !== "seed") {
    parts.push(`--persistence ${opts.persistence}`);
  }
  if (opts.imageless === true) parts.push("--imageless");
  return parts.join(" ");
}

/** Runs one seed. */
export function runSeed(
  seed: number,
  opts: BatchOptions,
  factory: RaftNodeFactory = raftNodeFactory,
): SimResult {
  return new Simulation({ ...opts, seed }, factory).run();
}

/** Adds one result to a summary. */
export function addResult(summary: BatchSummary, r: SimResult, opts: BatchOptions): void {
  summary.seeds++;
  summary.steps += r.steps;
  summary.virtualTimeMs += r.virtualTimeMs;
  for (const k of FAULT_KINDS) summary.faults[k] += r.faults[k];
  summary.opsChecked += r.opsChecked;
  summary.opsCompleted += r.opsCompleted;
  summary.opsUnknown += r.opsUnknown;
  if (r.linearizability === "unknown") summary.linearizabilityUnknown++;
  summary.clusterSizes[String(r.nodes)] = (summary.clusterSizes[String(r.nodes)] ?? 0) + 1;
  if (r.violations.length > 0) {
    const v = r.violations[0];
    summary.failures.push({
      seed: r.seed,
      kind: v.kind,
      message: v.message,
      replay: replayCommand(r.seed, opts),
    });
  }
}

/**
 * Runs seeds `from`, `from + 1`, ... until `count` seeds ran or `budgetMs` of wall time passed.
 *
 * @example
 * ```ts
 * const summary = runBatch({ from: 1, count: 100 }, { steps: 2000 });
 * console.log(formatSummary(summary));
 * ```
 */
export function runBatch(
  range: { from: number; count?: number; budgetMs?: number; stopOnFailure?: boolean },
  opts: BatchOptions,
  onResult?: (r: SimResult) => void,
  factory: RaftNodeFactory = raftNodeFactory,
): BatchSummary {
  const summary = emptySummary();
  const start = performance.now();
  const count = range.count ?? Infinity;
  const budget = range.budgetMs ?? Infinity;
  for (let i = 0; i < count; i++) {
    if (performance.now() - start >= budget) break;
    const r = runSeed(range.from + i, opts, factory);
    addResult(summary, r, opts);
    onResult?.(r);
    if (range.stopOnFailure && r.violations.length > 0) break;
  }
  summary.wallMs = performance.now() - start;
  return summary;
}

/** A human-readable multi-line summary. */
export function formatSummary(s: BatchSummary): string {
  const lines: string[] = [];
  const sizes = Object.entries(s.clusterSizes).map(([n, c]) => `${c}x${n}-node`).join(", ");
  lines.push(
    `seeds: ${s.seeds} (${sizes})  steps: ${s.steps}  virtual time: ${(s.virtualTimeMs / 1000).toFixed(1)} s`,
  );
  lines.push(
    `operations checked: ${s.opsChecked} (completed ${s.opsCompleted}, unknown outcome ${s.opsUnknown})` +
      (s.linearizabilityUnknown > 0 ? `  undecided histories: ${s.linearizabilityUnknown}` : ""),
  );
  lines.push("faults injected:");
  for (const k of FAULT_KINDS) lines.push(`  ${k.padEnd(24)} ${s.faults[k]}`);
  lines.push(`violations: ${s.failures.length}`);
  for (const f of s.failures.slice(0, 20)) {
    lines.push(`  seed ${f.seed}: ${f.kind}: ${f.message.split("\n")[0]}`);
    lines.push(`    replay: ${f.replay}`);
  }
  if (s.failures.length > 20) lines.push(`  ... and ${s.failures.length - 20} more`);
  lines.push(`wall time: ${(s.wallMs / 1000).toFixed(1)} s`);
  return lines.join("\n");
}

/** Named nemesis profiles (used by the broken-variant tests and `--profile`). */
export type ProfileName = "mixed" | "elections" | "leader-isolation" | "figure8";

/** Re-export for CLI use. */
export type { RaftTestingBug };
