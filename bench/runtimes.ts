/**
 * The publish and map.set rows of the report (`bench/report.ts`), measured on whichever runtime runs
 * this file, so Deno, Bun and Node can be set side by side with the same code and the same sample
 * counts. One private nats-server on 127.0.0.1, stopped by PID at the end.
 *
 * Deno: `deno run -A bench/runtimes.ts`. Bun: `bun bench/runtimes.ts`. Node (against dist/):
 * `npm run bench:node` (the build, then this file compiled to JavaScript by `.ci/node_tests
 * --build-only`). Prints one markdown table; `--quick` takes fewer samples.
 *
 * @module
 */

import process from "node:process";
import { RAW_PAYLOAD, startBenchCluster, startRawEcho } from "./_fixtures.ts";
import {
  closedLoop,
  formatRate,
  formatUs,
  type LatencyStats,
  sampleInterleaved,
  type SampleOptions,
  type ThroughputStats,
} from "./_measure.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import type { HamokMap } from "../src/collections/map.ts";
import type { Hamok } from "../src/hamok.ts";

const quick = process.argv.includes("--quick");
const LATENCY: SampleOptions = quick ? { warmup: 50, samples: 300 } : { warmup: 500, samples: 3000 };
const COMMIT_LATENCY: SampleOptions = quick ? { warmup: 20, samples: 100 } : { warmup: 200, samples: 1500 };
const SET_THROUGHPUT_OPS = quick ? 2000 : 10_000;
const CONCURRENCY = 64;
const MAP_KEYS = Array.from({ length: 100 }, (_, i) => `key-${i}`);

function runtimeName(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  if (g.Deno !== undefined) return `Deno ${g.Deno.version.deno}`;
  if (g.Bun !== undefined) return `Bun ${g.Bun.version}`;
  return `Node ${process.versions.node}`;
}

function roles(peers: readonly Hamok[]): { leader: number; follower: number } {
  const leader = peers.findIndex((p) => p.leader);
  if (leader < 0) throw new Error("the bench cluster has no leader");
  return { leader, follower: leader === 0 ? 1 : 0 };
}

async function openMaps(peers: readonly Hamok[]): Promise<HamokMap<string, Uint8Array>[]> {
  const maps = peers.map((p) => p.createMap<string, Uint8Array>({ mapId: "bench" }));
  await Promise.all(maps.map((m) => m.ready));
  return maps;
}

const server = await startNatsServer();
const rows: { name: string; transport: string; stats: LatencyStats | ThroughputStats }[] = [];
try {
  const raw = await startRawEcho(server.url);
  const nats = await startBenchCluster({ kind: "nats", peers: 3, natsUrl: server.url });
  const memory = await startBenchCluster({ kind: "memory", peers: 3 });
  try {
    const [floor, natsPublish, memoryPublish] = await sampleInterleaved([
      { run: () => raw.request() },
      { run: (i) => nats.emitters[0]!.publish("s2", i, "payload") },
      { run: (i) => memory.emitters[0]!.publish("s2", i, "payload") },
    ], LATENCY);
    rows.push({ name: "raw NATS request/reply (floor)", transport: "NATS", stats: floor! });
    rows.push({ name: "publish, 2 remote subscribers", transport: "NATS", stats: natsPublish! });
    rows.push({ name: "publish, 2 remote subscribers", transport: "memory", stats: memoryPublish! });

    const natsMaps = await openMaps(nats.peers);
    const memoryMaps = await openMaps(memory.peers);
    const n = roles(nats.peers);
    const m = roles(memory.peers);
    const setter = (map: HamokMap<string, Uint8Array>) => ({
      run: (i: number) => map.set(MAP_KEYS[i % MAP_KEYS.length]!, RAW_PAYLOAD),
    });
    const [setFollower, setLeader, setMemory] = await sampleInterleaved([
      setter(natsMaps[n.follower]!),
      setter(natsMaps[n.leader]!),
      setter(memoryMaps[m.follower]!),
    ], COMMIT_LATENCY);
    rows.push({ name: "map.set from a follower, 3 peers", transport: "NATS", stats: setFollower! });
    rows.push({ name: "map.set from the leader, 3 peers", transport: "NATS", stats: setLeader! });
    rows.push({ name: "map.set from a follower, 3 peers", transport: "memory", stats: setMemory! });
    const map = natsMaps[n.leader]!;
    const rate = await closedLoop(
      (i) => map.set(MAP_KEYS[i % MAP_KEYS.length]!, RAW_PAYLOAD),
      { concurrency: CONCURRENCY, ops: SET_THROUGHPUT_OPS, warmupOps: Math.floor(SET_THROUGHPUT_OPS / 10) },
    );
    rows.push({ name: `map.set from the leader, ${CONCURRENCY} concurrent`, transport: "NATS", stats: rate });
  } finally {
    await Promise.all([nats.close(), memory.close(), raw.close()]);
  }
} finally {
  await server.stop();
}

console.log(`\n${runtimeName()}${quick ? " (--quick)" : ""}\n`);
console.log("| row | transport | n | p50 | p99 | ops/s |");
console.log("| --- | --- | --: | --: | --: | --: |");
for (const { name, transport, stats } of rows) {
  const ops = "opsPerSec" in stats ? formatRate(stats.opsPerSec) : "—";
  console.log(
    `| ${name} | ${transport} | ${stats.n} | ${formatUs(stats.p50Us)} | ${formatUs(stats.p99Us)} | ${ops} |`,
  );
}
