/**
 * HamokMap benchmarks, with the raw NATS request/reply round trip on the same nats-server as the
 * floor (every `set` is at least one Raft commit: a round trip to a majority, plus the forward to
 * the leader when called on a follower):
 *
 * - `set` latency (64-byte value, 100 keys) from the leader and from a follower, on NATS and on the
 *   memory transport; reads: local `get` and linearizable `get` (ReadIndex) from a follower;
 * - `set` throughput with 64 in flight, beside 64 raw requests in flight.
 *
 * Deno: `deno bench -A bench/map.bench.ts` (per-call median/p99 are printed at the end; throughput
 * in sets per second is 64 / the average time of a "64 in flight" iteration). Bun:
 * `bun bench/map.bench.ts` (through mitata).
 *
 * @module
 */

import type { HamokMap } from "../src/collections/map.ts";
import type { ValueCodec } from "../src/codec/value_codec.ts";
import { type BenchCluster, startBenchCluster, startRawEcho } from "./_fixtures.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { bench, onBenchEnd } from "./_harness.ts";

// --- set-up (module level: Deno.bench has no async before-all) -----------------------------------

const server = await startNatsServer();
onBenchEnd(() => server.killSync());

const raw = await startRawEcho(server.url);
const nats = await startBenchCluster({ kind: "nats", peers: 3, natsUrl: server.url, subscribe: false });
const memory = await startBenchCluster({ kind: "memory", peers: 3, subscribe: false });
onBenchEnd(async () => {
  await Promise.all([nats.close(), memory.close()]);
  await raw.close();
});

const stringKeys: ValueCodec<string> = { encode: (k) => k, decode: (s) => s as string };
const VALUE = new Uint8Array(64).fill(1);
const KEYS = Array.from({ length: 100 }, (_, i) => `k${i}`);

interface Roles {
  readonly leader: HamokMap<string, Uint8Array>;
  readonly follower: HamokMap<string, Uint8Array>;
}

async function openMaps(cluster: BenchCluster): Promise<Roles> {
  const maps = cluster.peers.map((p) =>
    p.createMap<string, Uint8Array>({ mapId: "map-bench", keyCodec: stringKeys })
  );
  await Promise.all(maps.map((m) => m.ready));
  const leader = cluster.peers.findIndex((p) => p.leader);
  if (leader < 0) throw new Error("the bench cluster has no leader");
  await maps[leader].setAll(KEYS.map((k) => [k, VALUE]));
  await Promise.all(cluster.peers.map((p) => p.waitUntilCommitHead()));
  return { leader: maps[leader], follower: maps[(leader + 1) % maps.length] };
}

const onNats = await openMaps(nats);
const onMemory = await openMaps(memory);

let n = 0;
const nextKey = () => KEYS[++n % KEYS.length];

// --- latency --------------------------------------------------------------------------------------

bench("raw nats request/reply (floor)", async () => {
  await raw.request();
}, { group: "map.set latency, NATS", baseline: true, samples: true });

bench("map.set from the leader (NATS)", async () => {
  await onNats.leader.set(nextKey(), VALUE);
}, { group: "map.set latency, NATS", samples: true });

bench("map.set from a follower (NATS)", async () => {
  await onNats.follower.set(nextKey(), VALUE);
}, { group: "map.set latency, NATS", samples: true });

bench("map.get linearizable from a follower (NATS)", async () => {
  await onNats.follower.get(nextKey(), { consistency: "linearizable" });
}, { group: "map.set latency, NATS", samples: true });

bench("map.set from the leader (memory)", async () => {
  await onMemory.leader.set(nextKey(), VALUE);
}, { group: "map.set latency, memory", baseline: true, samples: true });

bench("map.set from a follower (memory)", async () => {
  await onMemory.follower.set(nextKey(), VALUE);
}, { group: "map.set latency, memory", samples: true });

bench("map.get, local read", () => {
  onNats.follower.get(nextKey());
}, { group: "local reads" });

bench("map.getEntry, local read", () => {
  onNats.follower.getEntry(nextKey());
}, { group: "local reads" });

// --- throughput -----------------------------------------------------------------------------------

const IN_FLIGHT = 64;

bench(`raw nats request/reply, ${IN_FLIGHT} in flight`, async () => {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(raw.request());
  await Promise.all(all);
}, { group: `${IN_FLIGHT} in flight, NATS`, baseline: true });

bench(`map.set, ${IN_FLIGHT} in flight from the leader (NATS)`, async () => {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(onNats.leader.set(nextKey(), VALUE));
  await Promise.all(all);
}, { group: `${IN_FLIGHT} in flight, NATS` });

bench(`map.set, ${IN_FLIGHT} in flight from a follower (NATS)`, async () => {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(onNats.follower.set(nextKey(), VALUE));
  await Promise.all(all);
}, { group: `${IN_FLIGHT} in flight, NATS` });
