/**
 * HamokEmitter benchmarks, with the raw NATS request/reply round trip on the same nats-server as
 * the floor:
 *
 * - publish latency with 1, 2 and 4 remote subscribers, on NATS and on the memory transport
 *   (3 peers for 1 and 2 subscribers, 5 peers for 4), and with tracing (OpenTelemetry SDK,
 *   always-on sampling);
 * - publish throughput with 64 in flight, beside 64 raw requests in flight;
 * - notify throughput: 1000 notifies until both subscribers got every one;
 * - subscribe latency: one Raft commit per call (a follower alternately subscribes and
 *   unsubscribes).
 *
 * Deno: `deno bench -A bench/emitter.bench.ts`. Bun: `bun bench/emitter.bench.ts` (through mitata).
 * `bench/report.ts` measures the same things with its own sample loops and prints the table.
 *
 * @module
 */

import { type BenchCluster, startBenchCluster, startBenchTracing, startRawEcho } from "./_fixtures.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { bench, onBenchEnd } from "./_harness.ts";
import { until } from "./_measure.ts";

// --- set-up (module level: Deno.bench has no async before-all) -----------------------------------

const server = await startNatsServer();
onBenchEnd(() => server.killSync());
const url = server.url;

const raw = await startRawEcho(url);
const nats3 = await startBenchCluster({ kind: "nats", peers: 3, natsUrl: url });
const nats5 = await startBenchCluster({ kind: "nats", peers: 5, natsUrl: url });
const memory3 = await startBenchCluster({ kind: "memory", peers: 3 });
const memory5 = await startBenchCluster({ kind: "memory", peers: 5 });
const tracing = startBenchTracing();
const traced = await startBenchCluster({
  kind: "nats",
  peers: 3,
  natsUrl: url,
  config: { tracerProvider: tracing.provider },
});

onBenchEnd(async () => {
  await Promise.all([nats3, nats5, memory3, memory5, traced].map((c) => c.close()));
  await tracing.shutdown();
  await raw.close();
});

let n = 0;

// --- publish latency ------------------------------------------------------------------------------

bench("raw nats request/reply (floor)", async () => {
  await raw.request();
}, { group: "publish latency, NATS", baseline: true, samples: true });

bench("publish, 1 remote subscriber (NATS)", async () => {
  await nats3.emitters[0].publish("s1", ++n, "payload");
}, { group: "publish latency, NATS", samples: true });

bench("publish, 2 remote subscribers (NATS)", async () => {
  await nats3.emitters[0].publish("s2", ++n, "payload");
}, { group: "publish latency, NATS", samples: true });

bench("publish, 4 remote subscribers (NATS)", async () => {
  await nats5.emitters[0].publish("s4", ++n, "payload");
}, { group: "publish latency, NATS", samples: true });

bench("publish, 2 remote subscribers, traced (NATS)", async () => {
  await traced.emitters[0].publish("s2", ++n, "payload");
}, { group: "publish latency, NATS", samples: true });

bench("publish, 1 remote subscriber (memory)", async () => {
  await memory3.emitters[0].publish("s1", ++n, "payload");
}, { group: "publish latency, memory", samples: true });

bench("publish, 2 remote subscribers (memory)", async () => {
  await memory3.emitters[0].publish("s2", ++n, "payload");
}, { group: "publish latency, memory", baseline: true, samples: true });

bench("publish, 4 remote subscribers (memory)", async () => {
  await memory5.emitters[0].publish("s4", ++n, "payload");
}, { group: "publish latency, memory", samples: true });

// --- throughput -----------------------------------------------------------------------------------

const IN_FLIGHT = 64;

bench(`raw nats request/reply, ${IN_FLIGHT} in flight`, async () => {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(raw.request());
  await Promise.all(all);
}, { group: `${IN_FLIGHT} in flight`, baseline: true });

bench(`publish, 2 remote subscribers, ${IN_FLIGHT} in flight (NATS)`, async () => {
  const all: Promise<string[]>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(nats3.emitters[0].publish("s2", ++n, "payload"));
  await Promise.all(all);
}, { group: `${IN_FLIGHT} in flight` });

bench(`publish, 2 remote subscribers, ${IN_FLIGHT} in flight (memory)`, async () => {
  const all: Promise<string[]>[] = [];
  for (let i = 0; i < IN_FLIGHT; i++) all.push(memory3.emitters[0].publish("s2", ++n, "payload"));
  await Promise.all(all);
}, { group: `${IN_FLIGHT} in flight` });

// --- notify throughput ----------------------------------------------------------------------------

const NOTIFIES = 1000;

async function notifyAll(cluster: BenchCluster): Promise<void> {
  const target = cluster.delivered.s2 + 2 * NOTIFIES;
  for (let i = 0; i < NOTIFIES; i++) cluster.emitters[0].notify("s2", ++n, "payload");
  await until(() => cluster.delivered.s2 >= target, { timeoutMs: 10_000, intervalMs: 1, what: "deliveries" });
}

bench(`notify x${NOTIFIES}, 2 remote subscribers, until all delivered (NATS)`, async () => {
  await notifyAll(nats3);
}, { group: "notify throughput" });

bench(`notify x${NOTIFIES}, 2 remote subscribers, until all delivered (memory)`, async () => {
  await notifyAll(memory3);
}, { group: "notify throughput" });

// --- subscribe latency ----------------------------------------------------------------------------

function toggler(cluster: BenchCluster): () => Promise<void> {
  const follower = cluster.emitters[cluster.peers.findIndex((p) => !p.leader)];
  const listener = () => {};
  let subscribed = false;
  return async () => {
    if (subscribed) await follower.unsubscribe("sub", listener);
    else await follower.subscribe("sub", listener);
    subscribed = !subscribed;
  };
}

const toggleNats = toggler(nats3);
const toggleMemory = toggler(memory3);

bench("subscribe or unsubscribe from a follower: one Raft commit (NATS)", toggleNats, {
  group: "subscribe latency",
  samples: true,
});

bench("subscribe or unsubscribe from a follower: one Raft commit (memory)", toggleMemory, {
  group: "subscribe latency",
  samples: true,
});

bench("raw nats request/reply (floor), beside the commits", async () => {
  await raw.request();
}, { group: "subscribe latency", baseline: true, samples: true });
