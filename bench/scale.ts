/**
 * Scale rows (issue 14): three peers in one process on the memory bus, one map of small entries
 * (key `k<i>` through the default CBOR key codec, a 32-character string value):
 *
 * - RSS and heap per entry per peer at each size (100,000 and 1,000,000 by default): the growth of
 *   the process's RSS and V8 heap from before the fill to after it (both after a full GC), divided
 *   by the entries and by the three peers;
 * - p50 / p99 / max of sequential `map.set` latency from the leader while the map holds that many
 *   entries, across at least three log compactions on every peer (counted from each peer's
 *   `status().snapshotIndex`), with the default `snapshotThreshold` (10,000).
 *
 * Targets: max `map.set` latency during compaction <= 50 ms; <= 250 bytes of RSS per entry per peer.
 * Not part of CI (a 1,000,000-entry run takes about a minute here).
 *
 * Deno: `deno run -A --v8-flags=--expose-gc bench/scale.ts [--sizes 100000,1000000] [--out file]`.
 * Bun: `bun bench/scale.ts`. Prints a markdown table (and writes it with `--out`).
 *
 * @module
 */

import process from "node:process";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Hamok } from "../src/hamok.ts";
import { MemoryBus } from "../src/transport/memory_bus.ts";
import { MemoryTransport } from "../src/transport/memory_transport.ts";
import type { HamokMap } from "../src/collections/map.ts";
import { formatUs, summarize } from "./_measure.ts";
import { StateMachine, type StateMachineImage } from "../src/cluster/state_machine.ts";
import { SnapshotJob } from "../src/cluster/snapshot_job.ts";
import { HamokMapState } from "../src/collections/map_state.ts";
import { decodeCbor, encodeCbor } from "../src/codec/cbor.ts";
import { setImmediate } from "node:timers";

const args = process.argv.slice(2);
const sizesAt = args.indexOf("--sizes");
const SIZES = (sizesAt >= 0 ? args[sizesAt + 1]! : "100000,1000000").split(",").map(Number);
const outAt = args.indexOf("--out");
const OUT = outAt >= 0 ? args[outAt + 1] : undefined;
const thresholdAt = args.indexOf("--threshold");
const THRESHOLD = thresholdAt >= 0 ? Number(args[thresholdAt + 1]) : undefined;
const COMPACTIONS = 3;
const FILL_BATCH = 1000;
const VALUE_PAD = "v".repeat(32);

function fullGc(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun !== undefined) g.Bun.gc(true);
  else if (g.gc !== undefined) {
    g.gc();
    g.gc();
  } else {throw new Error(
      "run with --v8-flags=--expose-gc (Deno) or on Bun, so the bench can collect garbage",
    );}
}

function memory(): { rss: number; heap: number } {
  fullGc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

function valueOf(i: number): string {
  const s = `${i}:`;
  return s + VALUE_PAD.slice(s.length); // 32 characters
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface ScaleRow {
  entries: number;
  rssPerEntry: number;
  rssAfterFill: number;
  heapPerEntry: number;
  fillMs: number;
  sets: number;
  compactions: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

async function run(entries: number): Promise<ScaleRow> {
  const bus = new MemoryBus();
  const peers = Array.from({ length: 3 }, (_, i) =>
    new Hamok({
      peerId: `scale-${entries}-${i}`,
      clusterId: `scale-${entries}`,
      transport: new MemoryTransport({ bus, id: `m${i}` }),
      peerTimeoutMs: 60_000,
      expectedPeers: 3,
      ...(THRESHOLD === undefined ? {} : { snapshotThreshold: THRESHOLD }),
    }));
  try {
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 30_000 })));
    const maps = peers.map((p) => p.createMap<string, string>({ mapId: "scale" }));
    await Promise.all(maps.map((m) => m.ready));
    const leaderAt = peers.findIndex((p) => p.leader);
    if (leaderAt < 0) throw new Error("no leader");
    const map: HamokMap<string, string> = maps[leaderAt]!;
    const before = memory();
    const fillStarted = performance.now();
    for (let i = 0; i < entries; i += FILL_BATCH) {
      const batch: [string, string][] = [];
      for (let j = i; j < Math.min(entries, i + FILL_BATCH); j++) batch.push([`k${j}`, valueOf(j)]);
      await map.setAll(batch);
    }
    const target = peers[leaderAt]!.appliedIndex;
    await until("every peer to apply the fill", () => peers.every((p) => p.appliedIndex >= target), 300_000);
    const fillMs = performance.now() - fillStarted;
    for (const m of maps) {
      if (m.size !== entries) throw new Error(`a peer has ${m.size} entries, not ${entries}`);
    }
    const after = memory();

    // sequential sets (updates of existing keys) across COMPACTIONS compactions on every peer
    const seen = peers.map((p) => new Set<number>([p.status().snapshotIndex]));
    const compactions = () => {
      peers.forEach((p, i) => seen[i]!.add(p.status().snapshotIndex));
      return Math.min(...seen.map((s) => s.size - 1));
    };
    const samples: number[] = [];
    const compactedAt: number[] = []; // sample numbers by which one more compaction had happened on every peer
    let n = 0;
    let done = 0;
    while (done < COMPACTIONS || n < 1000) {
      const key = `k${(n * 7919) % entries}`;
      const t0 = performance.now();
      await map.set(key, valueOf(n));
      samples.push(performance.now() - t0);
      n++;
      if (n % 100 === 0) {
        const before = done;
        done = compactions();
        if (done > before) compactedAt.push(n);
      }
      if (n >= 40_000 && THRESHOLD !== undefined && THRESHOLD > 1e6) break; // no-compaction baseline
      if (n > 20 * 10_000 * COMPACTIONS) throw new Error("no compactions seen");
    }
    const stats = summarize(Float64Array.from(samples));
    const worst = samples.map((ms, i) => [ms, i] as const).sort((x, y) => y[0] - x[0]).slice(0, 5);
    console.error(
      `${entries} entries: slowest sets ${
        worst.map(([ms, i]) => `#${i} ${ms.toFixed(1)} ms`).join(", ")
      }; every peer had compacted once more by sets ${compactedAt.join(", ")}`,
    );
    const steady = memory(); // the fill's log entries are compacted away by now
    const perPeer = (bytes: number) => bytes / entries / peers.length;
    return {
      entries,
      rssPerEntry: perPeer(steady.rss - before.rss),
      heapPerEntry: perPeer(steady.heap - before.heap),
      rssAfterFill: perPeer(after.rss - before.rss),
      fillMs,
      sets: samples.length,
      compactions: compactions(),
      p50Us: stats.p50Us,
      p99Us: stats.p99Us,
      maxUs: Math.max(...samples) * 1000,
    };
  } finally {
    for (const p of peers) p.close();
  }
}

interface SnapshotRow {
  entries: number;
  bytes: number;
  slices: number;
  longestSliceMs: number;
  totalMs: number;
  atOnceMs: number;
  restoreMs: number;
}

/**
 * The snapshot alone, on one state machine holding one map of `entries` entries (keys and values as
 * the map's CBOR codec writes them): written out by a SnapshotJob in 4 ms slices (the peer's
 * setting), against encoding the image at once (what compaction did before), and the restore of
 * the image on a new state machine (still done at once).
 */
async function snapshotRun(entries: number): Promise<SnapshotRow> {
  const sm = new StateMachine();
  sm.registerKind("map", (id) => new HamokMapState(id));
  for (let i = 0; i < entries; i += FILL_BATCH) {
    const pairs: [Uint8Array, Uint8Array][] = [];
    for (let j = i; j < Math.min(entries, i + FILL_BATCH); j++) {
      pairs.push([encodeCbor(`k${j}`), encodeCbor(valueOf(j))]);
    }
    sm.apply({ kind: "map", id: "scale", op: "setAll", args: [pairs], peerId: "p" }, {
      index: i / FILL_BATCH + 1,
      requestId: `r${i}`,
      proposerPeerId: "p",
    });
  }
  const job = new SnapshotJob(sm.snapshotParts());
  let slices = 0;
  let longest = 0;
  const started = performance.now();
  for (let finished = false; !finished;) {
    const t0 = performance.now();
    do finished = job.step(); while (!finished && performance.now() - t0 < 4);
    longest = Math.max(longest, performance.now() - t0);
    slices++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const totalMs = performance.now() - started;
  const data = job.result();
  const t1 = performance.now();
  encodeCbor(sm.snapshot());
  const atOnceMs = performance.now() - t1;
  const copy = new StateMachine();
  copy.registerKind("map", (id) => new HamokMapState(id));
  const t2 = performance.now();
  copy.restore(decodeCbor(data) as StateMachineImage);
  const restoreMs = performance.now() - t2;
  return { entries, bytes: data.length, slices, longestSliceMs: longest, totalMs, atOnceMs, restoreMs };
}

const runtime = (globalThis as { Bun?: unknown }).Bun !== undefined
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;
const lines = [
  `Scale rows (bench/scale.ts), ${runtime}, 3 peers in one process, memory bus; per-entry figures are per peer.`,
  "",
  "| entries | RSS / entry / peer | heap / entry / peer | RSS right after the fill | fill | sets | compactions (each peer) | set p50 | set p99 | set max | targets met |",
  "| ------: | -----------------: | ------------------: | -----------------------: | ---: | ---: | ----------------------: | ------: | ------: | ------: | ----------- |",
];
for (const size of SIZES) {
  const row = await run(size);
  const met = row.maxUs <= 50_000 && row.rssPerEntry <= 250;
  lines.push(
    `| ${row.entries.toLocaleString("en-US")} | ${row.rssPerEntry.toFixed(0)} B | ${
      row.heapPerEntry.toFixed(0)
    } B | ${row.rssAfterFill.toFixed(0)} B | ${
      (row.fillMs / 1000).toFixed(1)
    } s | ${row.sets} | ${row.compactions} | ${formatUs(row.p50Us)} | ${formatUs(row.p99Us)} | ${
      formatUs(row.maxUs)
    } | ${met ? "yes" : "**no**"} (max <= 50 ms, RSS <= 250 B) |`,
  );
  console.log(lines.at(-1));
}
lines.push(
  "",
  "Snapshot of one map state alone (no cluster): written out in 4 ms slices by SnapshotJob, vs encoded at once, and restored (at once).",
  "",
  "| entries | image | slices | longest slice | written out in | at once (before) | restore (decode + apply) |",
  "| ------: | ----: | -----: | ------------: | -------------: | ---------------: | -----------------------: |",
);
for (const size of SIZES) {
  const r = await snapshotRun(size);
  lines.push(
    `| ${r.entries.toLocaleString("en-US")} | ${(r.bytes / 1e6).toFixed(1)} MB | ${r.slices} | ${
      r.longestSliceMs.toFixed(1)
    } ms | ${r.totalMs.toFixed(0)} ms | ${r.atOnceMs.toFixed(0)} ms | ${r.restoreMs.toFixed(0)} ms |`,
  );
  console.log(lines.at(-1));
}
const table = lines.join("\n");
console.log(table);
if (OUT !== undefined) {
  writeFileSync(OUT, table + "\n");
  // the table as deno fmt wants it (CI checks the formatting of every markdown file)
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  const bin = deno?.execPath() ?? new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  try {
    execFileSync(bin, ["fmt", "--quiet", OUT], { stdio: "ignore" });
  } catch {
    console.error(`could not run deno fmt on ${OUT}`);
  }
}
