/**
 * HamokEmitter publish latency: three peers, the publisher and two remote subscribers, on NATS and
 * on the memory transport, beside the raw NATS request/reply round trip on the same server (the
 * floor). Run: `deno bench -A bench/emitter.bench.ts` or `bun bench/emitter.bench.ts`.
 *
 * @module
 */

import { connect, type Msg } from "nats";
import { Hamok } from "../src/hamok.ts";
import type { HamokEmitter } from "../src/collections/emitter.ts";
import { MemoryBus } from "../src/transport/memory_bus.ts";
import { MemoryTransport } from "../src/transport/memory_transport.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import type { Transport } from "../src/transport/transport.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { bench, onBenchEnd } from "./_harness.ts";

type Events = { tick: [number, string] };
const PAYLOAD = new Uint8Array(64);

const server = await startNatsServer();
onBenchEnd(() => server.killSync());

async function cluster(
  name: string,
  transports: Transport[],
): Promise<{ peers: Hamok[]; emitter: HamokEmitter<Events> }> {
  const peers = transports.map((transport, i) =>
    new Hamok({ peerId: `${name}-${i}`, clusterId: `bench-${name}`, transport, tickMs: 20 })
  );
  await Promise.all(peers.map((p) => p.join()));
  const emitters = peers.map((p) => p.createEmitter<Events>({ emitterId: "bench" }));
  await emitters[1].subscribe("tick", () => {});
  await emitters[2].subscribe("tick", () => {});
  await peers[0].waitUntilCommitHead();
  return { peers, emitter: emitters[0] };
}

const natsTransports = await Promise.all([0, 1, 2].map(() => NatsTransport.connect({ servers: server.url })));
const nats = await cluster("nats", natsTransports);
const bus = new MemoryBus();
const memory = await cluster("memory", [0, 1, 2].map(() => new MemoryTransport({ bus })));

const rawRequester = await connect({ servers: server.url });
const rawResponder = await connect({ servers: server.url });
rawResponder.subscribe("bench.raw.echo", { callback: (_err, msg: Msg) => msg.respond(msg.data) });
await Promise.all([rawRequester.flush(), rawResponder.flush()]);

onBenchEnd(async () => {
  for (const p of [...nats.peers, ...memory.peers]) p.close();
  await Promise.all(natsTransports.map((t) => t.close()));
  await rawRequester.close().catch(() => {});
  await rawResponder.close().catch(() => {});
});

let n = 0;
bench("raw nats request/reply (floor)", async () => {
  await rawRequester.request("bench.raw.echo", PAYLOAD, { timeout: 5000 });
}, { group: "publish, 2 remote subscribers", baseline: true, samples: true });

bench("emitter.publish over NATS", async () => {
  await nats.emitter.publish("tick", ++n, "payload");
}, { group: "publish, 2 remote subscribers", samples: true });

bench("emitter.publish over memory", async () => {
  await memory.emitter.publish("tick", ++n, "payload");
}, { group: "publish, 2 remote subscribers", samples: true });

bench("emitter.publish over NATS, 64 in flight", async () => {
  const all: Promise<string[]>[] = [];
  for (let i = 0; i < 64; i++) all.push(nats.emitter.publish("tick", ++n, "payload"));
  await Promise.all(all);
}, { group: "throughput" });

bench("raw nats request/reply, 64 in flight", async () => {
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < 64; i++) all.push(rawRequester.request("bench.raw.echo", PAYLOAD, { timeout: 5000 }));
  await Promise.all(all);
}, { group: "throughput", baseline: true });
