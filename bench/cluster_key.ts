/**
 * The cost of `clusterKey`: publish (2 remote subscribers) and `map.set` from the leader and from
 * a follower, each on a three-peer NATS cluster without a key and on one with a key, sampled
 * interleaved in the same run on the same nats-server. Used by `bench/report.ts` (rows "…, cluster
 * key"); standalone: `deno run -A bench/cluster_key.ts [--quick]` or `bun bench/cluster_key.ts`.
 *
 * @module
 */

import process from "node:process";
import type { HamokMap } from "../src/collections/map.ts";
import { type BenchCluster, RAW_PAYLOAD, startBenchCluster } from "./_fixtures.ts";
import { formatUs, type LatencyStats, sampleInterleaved, type SampleOptions } from "./_measure.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";

/** The key of the keyed cluster (any 32+ bytes). */
const BENCH_KEY = "bench-cluster-key-0123456789abcdef-0123456789";
const KEYS = Array.from({ length: 100 }, (_, i) => `k${i}`);

/** p50/p99 of each operation without and with a key. */
export interface ClusterKeyStats {
  readonly publish: { readonly plain: LatencyStats; readonly keyed: LatencyStats };
  readonly setLeader: { readonly plain: LatencyStats; readonly keyed: LatencyStats };
  readonly setFollower: { readonly plain: LatencyStats; readonly keyed: LatencyStats };
}

async function maps(
  cluster: BenchCluster,
): Promise<{ leader: HamokMap<string, Uint8Array>; follower: HamokMap<string, Uint8Array> }> {
  const all = cluster.peers.map((p) => p.createMap<string, Uint8Array>({ mapId: "bench-key" }));
  await Promise.all(all.map((m) => m.ready));
  const leader = cluster.peers.findIndex((p) => p.leader);
  if (leader < 0) throw new Error("the bench cluster has no leader");
  return { leader: all[leader]!, follower: all[leader === 0 ? 1 : 0]! };
}

/** Measures the six rows on the nats-server at `url`. */
export async function measureClusterKey(url: string, options: SampleOptions): Promise<ClusterKeyStats> {
  const plain = await startBenchCluster({ kind: "nats", peers: 3, natsUrl: url });
  const keyed = await startBenchCluster({
    kind: "nats",
    peers: 3,
    natsUrl: url,
    config: { clusterKey: BENCH_KEY },
  });
  try {
    const p = await maps(plain);
    const k = await maps(keyed);
    // untimed after each call: until every peer of both clusters applied everything, so a call never
    // pays for the replication tail of the one before it (the other cluster's, in this thread)
    const reset = async (): Promise<void> => {
      for (const cluster of [plain, keyed]) {
        const target = Math.max(...cluster.peers.map((peer) => peer.appliedIndex));
        while (cluster.peers.some((peer) => peer.appliedIndex < target)) {
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }
    };
    const set = (map: HamokMap<string, Uint8Array>) => ({
      run: (i: number) => map.set(KEYS[i % KEYS.length]!, RAW_PAYLOAD),
      reset,
    });
    // plain ops, then the same ops keyed: each keyed op follows the same kind of op as its plain twin
    // (sampleInterleaved rotates the order, so each op always has the same predecessor)
    const [pubPlain, slPlain, sfPlain, pubKeyed, slKeyed, sfKeyed] = await sampleInterleaved([
      { run: (i) => plain.emitters[0]!.publish("s2", i, "payload"), reset },
      set(p.leader),
      set(p.follower),
      { run: (i) => keyed.emitters[0]!.publish("s2", i, "payload"), reset },
      set(k.leader),
      set(k.follower),
    ], options);
    return {
      publish: { plain: pubPlain!, keyed: pubKeyed! },
      setLeader: { plain: slPlain!, keyed: slKeyed! },
      setFollower: { plain: sfPlain!, keyed: sfKeyed! },
    };
  } finally {
    await Promise.all([plain.close(), keyed.close()]);
  }
}

if (import.meta.main) {
  const quick = process.argv.includes("--quick");
  const server = await startNatsServer();
  try {
    const stats = await measureClusterKey(
      server.url,
      quick ? { warmup: 50, samples: 300 } : { warmup: 300, samples: 2000 },
    );
    for (
      const [name, pair] of Object.entries(stats) as [string, { plain: LatencyStats; keyed: LatencyStats }][]
    ) {
      console.log(
        `${name}: p50 ${formatUs(pair.plain.p50Us)} -> ${formatUs(pair.keyed.p50Us)} with key (${
          (pair.keyed.p50Us / pair.plain.p50Us).toFixed(3)
        }x), p99 ${formatUs(pair.plain.p99Us)} -> ${formatUs(pair.keyed.p99Us)}`,
      );
    }
  } finally {
    await server.stop();
  }
}
