/**
 * Transport benchmarks: the round trip (ping -> pong published back by another endpoint) on the
 * memory transport and on NATS through {@linkcode NatsTransport}, with the raw `nats`
 * request/reply round trip and a raw `nats` pub/sub ping-pong in the same run as the floor; plus
 * the memory bus's fan-out throughput.
 *
 * Deno: `node_modules/.bin/deno bench -A bench/transport.bench.ts`.
 * Bun: `node_modules/.bin/bun bench/transport.bench.ts`.
 * Starts a private nats-server (see tests/_helpers/nats_server.ts).
 *
 * @module
 */

import { connect, type Msg } from "nats";
import { MemoryBus } from "../src/transport/memory_bus.ts";
import { MemoryTransport } from "../src/transport/memory_transport.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import type { Transport } from "../src/transport/transport.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { bench, onBenchEnd } from "./_harness.ts";

const PAYLOAD = new Uint8Array(64).fill(7);

/**
 * Returns a function that publishes a ping from `a` to `b`'s subject and resolves when `b`'s
 * pong (published back on `a`'s subject) arrives.
 */
function pingPong(a: Transport, b: Transport, prefix: string): () => Promise<void> {
  const pingSubject = `${prefix}.peer.b`;
  const pongSubject = `${prefix}.peer.a`;
  let pending: (() => void) | undefined;
  b.subscribe(pingSubject, (msg) => b.publish(pongSubject, msg.data));
  a.subscribe(pongSubject, () => {
    const resolve = pending;
    pending = undefined;
    resolve?.();
  });
  return async () => {
    await new Promise<void>((resolve) => {
      pending = resolve;
      a.publish(pingSubject, PAYLOAD);
    });
  };
}

// --- set-up (module level: Deno.bench has no async before-all) -----------------------------------

const server = await startNatsServer();
onBenchEnd(() => server.killSync());

const bus = new MemoryBus();
const memA = new MemoryTransport({ bus, id: "a" });
const memB = new MemoryTransport({ bus, id: "b" });
const memoryRoundTrip = pingPong(memA, memB, "bench.mem");

const natsA = await NatsTransport.connect({ servers: server.url });
const natsB = await NatsTransport.connect({ servers: server.url });
const natsRoundTrip = pingPong(natsA, natsB, "bench.nats");
await Promise.all([natsA.flush(), natsB.flush()]);

const rawRequester = await connect({ servers: server.url });
const rawResponder = await connect({ servers: server.url });
rawResponder.subscribe("bench.raw.echo", { callback: (_err, msg: Msg) => msg.respond(msg.data) });
let rawPending: (() => void) | undefined;
rawResponder.subscribe("bench.raw.ping", {
  callback: (_err, msg: Msg) => rawResponder.publish("bench.raw.pong", msg.data),
});
rawRequester.subscribe("bench.raw.pong", {
  callback: () => {
    const resolve = rawPending;
    rawPending = undefined;
    resolve?.();
  },
});
await Promise.all([rawRequester.flush(), rawResponder.flush()]);

const fanBus = new MemoryBus();
const fanPublisher = new MemoryTransport({ bus: fanBus });
const fanSubscribers = [0, 1, 2, 3].map(() => new MemoryTransport({ bus: fanBus }));
let fanDelivered = 0;
for (const sub of fanSubscribers) sub.subscribe("bench.fan", () => fanDelivered++);

onBenchEnd(async () => {
  const quietly = (p: Promise<unknown>) => p.catch(() => undefined);
  await Promise.all([
    memA.close(),
    memB.close(),
    fanPublisher.close(),
    ...fanSubscribers.map((t) => t.close()),
  ]);
  await Promise.all([
    natsA.close(),
    natsB.close(),
    quietly(rawRequester.close()),
    quietly(rawResponder.close()),
  ]);
});

// --- benches --------------------------------------------------------------------------------------

bench("raw nats request/reply (floor)", async () => {
  await rawRequester.request("bench.raw.echo", PAYLOAD, { timeout: 5000 });
}, { group: "round trip, 64 B", baseline: true, samples: true });

bench("raw nats pub/sub ping-pong", async () => {
  await new Promise<void>((resolve) => {
    rawPending = resolve;
    rawRequester.publish("bench.raw.ping", PAYLOAD);
  });
}, { group: "round trip, 64 B", samples: true });

bench("NatsTransport ping-pong", natsRoundTrip, { group: "round trip, 64 B", samples: true });

bench("MemoryTransport ping-pong", memoryRoundTrip, { group: "round trip, 64 B", samples: true });

bench("MemoryTransport fan-out: 10k publishes x 4 subscribers", async () => {
  const target = fanDelivered + 40_000;
  for (let i = 0; i < 10_000; i++) fanPublisher.publish("bench.fan", PAYLOAD);
  await fanPublisher.flush();
  if (fanDelivered !== target) throw new Error(`fan-out lost messages: ${fanDelivered} != ${target}`);
}, { group: "memory throughput" });
