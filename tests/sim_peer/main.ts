/**
 * `deno task sim:peer`: runs whole-peer simulator seeds and reports violations and fault counts.
 *
 *   deno task sim:peer --seed 42 [--trace]     replay one seed (prints its trace with --trace)
 *   deno task sim:peer --from 1 --seeds 200    a range of seeds
 *   options: --nodes 3|5, --bug NAME (repeatable), --fault-ms N, --kinds drop,delay,... (default all),
 *            --workload all|map (default all; map: the map-only workload that older seeds were found with),
 *            --storage memory|durable (default: the seed picks, half the seeds each),
 *            --discovery defaults (the discovery mode: default discovery, staggered starts, merges),
 *            --progress N (print the running totals every N seeds)
 *
 * @module
 */

import process from "node:process";
import type { HamokTestingBug } from "../../src/config.ts";
import { PEER_FAULT_KINDS, type PeerFaultKind, runPeerSeed } from "./simulation.ts";

const args = process.argv.slice(2);
const value = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const bugs: HamokTestingBug[] = [];
for (let i = 0; i < args.length; i++) if (args[i] === "--bug") bugs.push(args[i + 1] as HamokTestingBug);
const single = value("--seed");
const from = Number(single ?? value("--from") ?? 1);
const count = single !== undefined ? 1 : Number(value("--seeds") ?? 100);
const nodes = value("--nodes") === undefined ? undefined : Number(value("--nodes")) as 3 | 5;
const faultMs = value("--fault-ms") === undefined ? undefined : Number(value("--fault-ms"));
const traceOn = args.includes("--trace");
const kindsArg = value("--kinds");
const kinds = kindsArg === undefined ? undefined : kindsArg.split(",") as PeerFaultKind[];
const workload = value("--workload") as "all" | "map" | undefined;
const storage = value("--storage") as "memory" | "durable" | undefined;
const discovery = value("--discovery") as "expected" | "defaults" | undefined;
const progress = Number(value("--progress") ?? 0);

const totals = Object.fromEntries(PEER_FAULT_KINDS.map((k) => [k, 0])) as Record<PeerFaultKind, number>;
let failed = 0;
let ops = 0;
let unknown = 0;
let durableRuns = 0;
let lostRecords = 0;
let bootstraps = 0;
let merges = 0;
let snapshotsForFollowers = 0;
let conflicts = 0;
let splits = 0;
let delayed = 0;
const started = performance.now();
for (let seed = from; seed < from + count; seed++) {
  const r = await runPeerSeed(seed, {
    nodes,
    bugs,
    trace: traceOn,
    ...(faultMs ? { faultMs } : {}),
    ...(kinds ? { kinds } : {}),
    ...(workload ? { workload } : {}),
    ...(storage ? { storage } : {}),
    ...(discovery ? { discovery } : {}),
  });
  bootstraps += r.bootstraps;
  merges += r.merges;
  snapshotsForFollowers += r.snapshotsForFollowers;
  conflicts += r.conflicts;
  if (r.clusters > 1) splits++;
  if (r.delayedWrites) delayed++;
  if (r.durable) durableRuns++;
  lostRecords += r.unsyncedLost;
  for (const k of PEER_FAULT_KINDS) totals[k] += r.faults[k];
  ops += r.opsCompleted;
  unknown += r.opsUnknown;
  if (traceOn) console.log(r.trace.join("\n"));
  if (r.violations.length > 0) {
    failed++;
    const bugArgs = bugs.map((b) => ` --bug ${b}`).join("");
    console.log(`seed ${seed} (${r.nodes} nodes, ${mode(r.durable)}): ${r.violations.join("\n  ")}`);
    const more = `${nodes ? ` --nodes ${nodes}` : ""}${bugArgs}${workload ? ` --workload ${workload}` : ""}${
      storage ? ` --storage ${storage}` : ""
    }${discovery ? ` --discovery ${discovery}` : ""}`;
    console.log(`  replay: deno task sim:peer --seed ${seed}${more}`);
  } else if (single !== undefined) {
    console.log(
      `seed ${seed} (${r.nodes} nodes, ${mode(r.durable)}): ok, ${r.opsCompleted} ops, trace ${r.traceHash}`,
    );
  }
  if (progress > 0 && (seed - from + 1) % progress === 0 && seed - from + 1 < count) {
    summary(seed - from + 1);
  }
}
summary(count);
process.exit(failed > 0 ? 1 : 0);

function summary(done: number): void {
  const secs = (performance.now() - started) / 1000;
  console.log(
    `${done} seeds, ${failed} failed, ${durableRuns} durable (${lostRecords} unsynced records lost to crashes), ${ops} ops completed, ${unknown} unknown, ${
      secs.toFixed(1)
    } s; faults: ${PEER_FAULT_KINDS.map((k) => `${k} ${totals[k]}`).join(", ")}`,
  );
  if (discovery === "defaults") {
    console.log(
      `discovery: ${bootstraps} bootstraps, ${merges} merges, ${conflicts} peers reported a conflict, ${splits} runs ended split (conflict reported), ${delayed} runs with writes delayed until one cluster, ${snapshotsForFollowers} snapshots taken for a follower`,
    );
  }
}

function mode(durable: boolean): string {
  return durable ? "durable storage" : "memory storage";
}
