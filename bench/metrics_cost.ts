/**
 * What metrics cost a publish: three clusters of three peers in one process, measured in
 * interleaved rounds of the same run — two without an OpenTelemetry SDK (the second shows the
 * noise floor) and one with an SDK `MeterProvider` and a reader — and the publish p50 of each.
 * The publisher is a follower with two remote subscribers.
 *
 *   deno run -A bench/metrics_cost.ts [--nats] [--rounds 10] [--per-round 2000]
 *
 * @module
 */

import process from "node:process";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { Hamok } from "../src/hamok.ts";
import type { HamokEmitter } from "../src/collections/emitter.ts";
import { MemoryBus } from "../src/transport/memory_bus.ts";
import { MemoryTransport } from "../src/transport/memory_transport.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import type { Transport } from "../src/transport/transport.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";

class CollectingReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const useNats = process.argv.includes("--nats");
const rounds = option("rounds", 10);
const perRound = option("per-round", 2000);
const server = useNats ? await startNatsServer() : undefined;

interface Arm {
  readonly name: string;
  readonly peers: Hamok[];
  readonly transports: Transport[];
  readonly emitter: HamokEmitter<{ e: [number] }>;
  readonly latencies: number[];
  readonly provider?: MeterProvider;
  readonly reader?: CollectingReader;
}

async function arm(name: string, withSdk: boolean): Promise<Arm> {
  const reader = withSdk ? new CollectingReader() : undefined;
  const provider = reader === undefined ? undefined : new MeterProvider({ readers: [reader] });
  const bus = new MemoryBus();
  const clusterId = `metrics-cost-${name}`;
  const transports: Transport[] = [];
  const peers: Hamok[] = [];
  for (const peerId of ["a", "b", "c"]) {
    const transport = server === undefined
      ? new MemoryTransport({ bus, id: peerId })
      : await NatsTransport.connect({ servers: server.url });
    transports.push(transport);
    peers.push(
      new Hamok({
        peerId,
        clusterId,
        transport,
        ...(provider === undefined ? {} : { meterProvider: provider }),
      }),
    );
  }
  await Promise.all(peers.map((p) => p.join()));
  const followers = peers.filter((p) => !p.leader);
  const publisher = followers[0]!;
  for (const peer of peers.filter((p) => p !== publisher)) {
    await peer.createEmitter<{ e: [number] }>({ emitterId: "bench" }).subscribe("e", () => {});
  }
  await publisher.waitUntilCommitHead();
  const emitter = publisher.createEmitter<{ e: [number] }>({ emitterId: "bench" });
  if (emitter.subscriptions.getPeerIds("e").length !== 2) {
    throw new Error("the publisher does not see 2 subscribers");
  }
  if (publisher.metrics.enabled !== withSdk) {
    throw new Error(`metrics.enabled is ${publisher.metrics.enabled}`);
  }
  return {
    name,
    peers,
    transports,
    emitter,
    latencies: [],
    ...(provider === undefined ? {} : { provider }),
    ...(reader === undefined ? {} : { reader }),
  };
}

const arms = [await arm("no-sdk-1", false), await arm("sdk", true), await arm("no-sdk-2", false)];
for (const a of arms) for (let i = 0; i < 500; i++) await a.emitter.publish("e", i); // warm-up
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? arms : [...arms].reverse();
  for (const a of order) {
    for (let i = 0; i < perRound; i++) {
      const t0 = performance.now();
      await a.emitter.publish("e", i);
      a.latencies.push(performance.now() - t0);
    }
    if (a.reader !== undefined) await a.reader.collect(); // a scrape per round, as Prometheus would
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
const base = arms[0]!.latencies.slice().sort((x, y) => x - y);
const baseP50 = percentile(base, 0.5);
console.log(
  `publish to 2 subscribers, ${
    server === undefined ? "memory transport" : "NATS"
  }, ${rounds} x ${perRound} per arm (interleaved)`,
);
console.log("arm        p50 µs   p99 µs   p50 vs no-sdk-1");
for (const a of arms) {
  const sorted = a.latencies.slice().sort((x, y) => x - y);
  const p50 = percentile(sorted, 0.5);
  const delta = ((p50 / baseP50 - 1) * 100).toFixed(1);
  console.log(
    `${a.name.padEnd(10)} ${(p50 * 1000).toFixed(1).padStart(7)}  ${
      (percentile(sorted, 0.99) * 1000).toFixed(1).padStart(7)
    }   ${delta}%`,
  );
}
for (const a of arms) {
  for (const p of a.peers) p.close();
  await Promise.all(a.transports.map((t) => t.close()));
  await a.provider?.shutdown();
}
await server?.stop();
