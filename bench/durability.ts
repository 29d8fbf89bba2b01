/**
 * The cost of durability: `map.set` p50/p99 and 64-concurrent throughput on three peers over NATS
 * with data directories (`sync: "always"`: one fdatasync per ready batch on every peer), beside
 * the same cluster in memory and beside a three-member etcd cluster on loopback (fsync on, its
 * default), all measured in the same run from this JS process; plus the time a peer needs to
 * restart on a directory holding N small committed entries (default 1,000,000).
 *
 * Used by `bench/report.ts` (rows "…, file storage", "etcd put…", "restart …"); standalone:
 * `deno run -A bench/durability.ts [--quick] [--restart-entries N]` or `bun bench/durability.ts`.
 * etcd (`/usr/bin/etcd`, or `ETCD_BIN`) runs with its data directories in a temporary folder, on
 * 127.0.0.1 only, and is stopped by PID at the end.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Etcd3 } from "etcd3";
import type { HamokMap } from "../src/collections/map.ts";
import { Hamok } from "../src/hamok.ts";
import type { HamokConfig } from "../src/config.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import { MemoryBus } from "../src/transport/memory_bus.ts";
import { MemoryTransport } from "../src/transport/memory_transport.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { RAW_PAYLOAD } from "./_fixtures.ts";
import {
  closedLoop,
  formatRate,
  formatUs,
  type LatencyStats,
  sampleInterleaved,
  type SampleOptions,
  type ThroughputStats,
} from "./_measure.ts";

function log(message: string): void {
  process.stderr.write(`[bench:durability] ${message}\n`);
}

const KEYS = Array.from({ length: 100 }, (_, i) => `k${i}`);
const CONCURRENCY = 64;

/** What {@linkcode measureDurability} measured. */
export interface DurabilityStats {
  /** map.set from the leader, file storage ("always"), memory storage, and etcd put: latency. */
  readonly latency: {
    readonly file: LatencyStats;
    readonly memory: LatencyStats;
    readonly etcd: LatencyStats;
  };
  /** The same, 64 concurrent. */
  readonly throughput: {
    readonly file: ThroughputStats;
    readonly memory: ThroughputStats;
    readonly etcd: ThroughputStats;
  };
  /** Restart of a one-peer cluster whose directory holds `entries` entries: open + replay + apply + join. */
  readonly restart: { readonly entries: number; readonly ms: number; readonly bytes: number };
}

interface Cluster {
  readonly leaderMap: HamokMap<string, Uint8Array>;
  close(): Promise<void>;
}

async function startCluster(url: string, name: string, dataRoot: string | undefined): Promise<Cluster> {
  const transports = await Promise.all([0, 1, 2].map(() => NatsTransport.connect({ servers: url })));
  const peers = transports.map((transport, i) =>
    new Hamok({
      peerId: `${name}-${i}`,
      clusterId: name,
      transport,
      peerTimeoutMs: 60_000,
      ...(dataRoot === undefined ? {} : { dataDir: join(dataRoot, `${name}-${i}`), sync: "always" }),
    } as HamokConfig)
  );
  await Promise.all(peers.map((p) => p.join({ timeoutMs: 20_000 })));
  const maps = peers.map((p) => p.createMap<string, Uint8Array>({ mapId: "bench" }));
  await Promise.all(maps.map((m) => m.ready));
  const leader = peers.findIndex((p) => p.leader);
  if (leader < 0) throw new Error("no leader");
  return {
    leaderMap: maps[leader]!,
    close: async () => {
      for (const p of peers) p.close();
      await Promise.all(transports.map((t) => t.close().catch(() => {})));
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface EtcdCluster {
  readonly client: Etcd3;
  close(): Promise<void>;
}

/** Starts three etcd members on loopback with data directories under `root` (fsync on). */
export async function startEtcdCluster(root: string): Promise<EtcdCluster> {
  const bin = process.env.ETCD_BIN ?? "/usr/bin/etcd";
  const ports: number[] = [];
  for (let i = 0; i < 6; i++) ports.push(await freePort());
  const names = ["e0", "e1", "e2"];
  const peerUrl = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
  const clientUrl = (i: number) => `http://127.0.0.1:${ports[i]}`;
  const initial = names.map((n, i) => `${n}=${peerUrl(i)}`).join(",");
  const children: ChildProcess[] = names.map((name, i) =>
    spawn(bin, [
      "--name",
      name,
      "--data-dir",
      join(root, name),
      "--listen-client-urls",
      clientUrl(i),
      "--advertise-client-urls",
      clientUrl(i),
      "--listen-peer-urls",
      peerUrl(i),
      "--initial-advertise-peer-urls",
      peerUrl(i),
      "--initial-cluster",
      initial,
      "--initial-cluster-state",
      "new",
      "--initial-cluster-token",
      `bench-${process.pid}`,
      "--log-level",
      "error",
    ], { stdio: "ignore" })
  );
  const kill = () => {
    for (const c of children) {
      try {
        if (c.pid !== undefined) process.kill(c.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  };
  process.on("exit", kill);
  const client = new Etcd3({ hosts: names.map((_, i) => clientUrl(i)) });
  let closing: Promise<void> | undefined;
  const deadline = Date.now() + 20_000;
  while (true) {
    try {
      await client.put("ready").value("1");
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        kill();
        throw new Error(`etcd did not start: ${(error as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    client,
    close: () => {
      closing ??= (async () => {
        client.close();
        const exits = children.map((c) =>
          new Promise<void>((r) =>
            c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", () => r())
          )
        );
        kill();
        await Promise.all(exits);
        process.off("exit", kill);
      })();
      return closing;
    },
  };
}

/** Time to restart a one-peer cluster on a directory holding `entries` committed map sets. */
async function measureRestart(root: string, entries: number): Promise<{ ms: number; bytes: number }> {
  const dataDir = join(root, "restart");
  const clusterId = `restart-${process.pid}`;
  const config: HamokConfig = {
    peerId: "r",
    clusterId,
    dataDir,
    sync: "never", // filling only; the restart reads what the OS holds either way
    snapshotThreshold: entries * 2, // keep every entry in the log (no snapshot)
    discoveryMs: 50,
    transport: new MemoryTransport({ bus: new MemoryBus() }),
  };
  const filler = new Hamok(config);
  await filler.join();
  const map = filler.createMap<string, number>({ mapId: "restart" });
  let next = 0;
  await closedLoop(() => map.set(`k${next % 1000}`, next++), {
    concurrency: CONCURRENCY,
    ops: entries,
    warmupOps: 0,
  });
  filler.close();
  log("filled; restarting");
  let bytes = 0;
  for (const name of fs.readdirSync(join(dataDir, "wal"))) {
    bytes += fs.statSync(join(dataDir, "wal", name)).size;
  }
  const start = performance.now();
  const restarted = new Hamok({ ...config, transport: new MemoryTransport({ bus: new MemoryBus() }) });
  await restarted.join({ timeoutMs: 300_000 });
  const restoredMap = restarted.createMap<string, number>({ mapId: "restart" });
  await restoredMap.ready;
  const ms = performance.now() - start;
  if (restoredMap.size !== Math.min(1000, entries)) {
    throw new Error(`restart restored ${restoredMap.size} keys`);
  }
  restarted.close();
  return { ms, bytes };
}

function etcdPut(client: Etcd3, i: number): Promise<unknown> {
  return client.put(KEYS[i % KEYS.length]!).value(Buffer.from(RAW_PAYLOAD)).exec();
}

/** Measures every durability row on the nats-server at `url`. */
export async function measureDurability(
  url: string,
  latency: SampleOptions,
  throughputOps: number,
  restartEntries: number,
): Promise<DurabilityStats> {
  const root = fs.mkdtempSync(join(tmpdir(), "hamok-bench-dur-"));
  log("starting the file-storage cluster, the memory cluster and etcd");
  const file = await startCluster(url, `dur-file-${process.pid}`, root);
  const memory = await startCluster(url, `dur-mem-${process.pid}`, undefined);
  const etcd = await startEtcdCluster(join(root, "etcd"));
  try {
    const set = (map: HamokMap<string, Uint8Array>) => ({
      run: (i: number) => map.set(KEYS[i % KEYS.length]!, RAW_PAYLOAD),
    });
    log("latency (interleaved)");
    const [fileLat, memLat, etcdLat] = await sampleInterleaved([
      set(file.leaderMap),
      set(memory.leaderMap),
      { run: (i: number) => etcdPut(etcd.client, i) },
    ], latency);
    const loop = { concurrency: CONCURRENCY, ops: throughputOps, warmupOps: Math.floor(throughputOps / 10) };
    log(`throughput, ${CONCURRENCY} concurrent`);
    const fileRate = await closedLoop((i) => file.leaderMap.set(KEYS[i % KEYS.length]!, RAW_PAYLOAD), loop);
    const memRate = await closedLoop((i) => memory.leaderMap.set(KEYS[i % KEYS.length]!, RAW_PAYLOAD), loop);
    const etcdRate = await closedLoop(
      (i) => etcdPut(etcd.client, i),
      loop,
    );
    await Promise.all([file.close(), memory.close(), etcd.close()]);
    log(`restart on ${restartEntries} entries`);
    const restart = await measureRestart(root, restartEntries);
    return {
      latency: { file: fileLat, memory: memLat, etcd: etcdLat },
      throughput: { file: fileRate, memory: memRate, etcd: etcdRate },
      restart: { entries: restartEntries, ...restart },
    };
  } finally {
    await Promise.all([file.close(), memory.close(), etcd.close()]).catch(() => {});
    fs.rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  const at = args.indexOf("--restart-entries");
  const restartEntries = at >= 0 ? Number(args[at + 1]) : quick ? 100_000 : 1_000_000;
  const server = await startNatsServer();
  try {
    const stats = await measureDurability(
      server.url,
      quick ? { warmup: 50, samples: 300 } : { warmup: 200, samples: 1500 },
      quick ? 2000 : 10_000,
      restartEntries,
    );
    const { latency: l, throughput: t, restart: r } = stats;
    const line = (name: string, s: LatencyStats) =>
      `${name}: p50 ${formatUs(s.p50Us)}, p99 ${formatUs(s.p99Us)}`;
    console.log(line("map.set from the leader, file storage (always)", l.file));
    console.log(line("map.set from the leader, memory storage", l.memory));
    console.log(line("etcd put, 3 members, fsync", l.etcd));
    console.log(`file p50 / etcd p50: ${(l.file.p50Us / l.etcd.p50Us).toFixed(2)} (target ≤ 0.6)`);
    console.log(
      `64 concurrent: file ${formatRate(t.file.opsPerSec)}, memory ${formatRate(t.memory.opsPerSec)}, etcd ${
        formatRate(t.etcd.opsPerSec)
      } ops/s`,
    );
    console.log(`file / etcd throughput: ${(t.file.opsPerSec / t.etcd.opsPerSec).toFixed(2)} (target ≥ 4)`);
    console.log(
      `restart on ${r.entries.toLocaleString("en-US")} entries (${(r.bytes / 1e6).toFixed(1)} MB of WAL): ${
        r.ms.toFixed(0)
      } ms`,
    );
  } finally {
    await server.stop();
  }
  process.exit(0);
}
