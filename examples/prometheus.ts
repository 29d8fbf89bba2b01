/**
 * Hamok's metrics on a Prometheus endpoint: three peers (in this process, on the embedded bus or
 * over NATS) share one OpenTelemetry `MeterProvider` whose reader is the Prometheus exporter,
 * serving `http://127.0.0.1:<port>/metrics`. A small workload (map writes and publishes) keeps the
 * instruments moving.
 *
 *   deno run -A examples/prometheus.ts [--port 9464] [--nats nats://127.0.0.1:4222] [--seconds N]
 *   curl -s http://127.0.0.1:9464/metrics | grep hamok
 *
 * @module
 */

import process from "node:process";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { consoleLogger, Hamok, NatsTransport, type Transport } from "../mod.ts";

function option(name: string): string | undefined {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1] : undefined;
}

const port = Number(option("port") ?? 9464);
const natsUrl = option("nats");
const seconds = option("seconds") === undefined ? Infinity : Number(option("seconds"));

// the exporter is the reader; bind it to loopback only
const exporter = new PrometheusExporter({ host: "127.0.0.1", port, preventServerStart: true });
await exporter.startServer();
const meterProvider = new MeterProvider({ readers: [exporter] });

const clusterId = `prometheus-${crypto.randomUUID().slice(0, 8)}`;
const transports: Transport[] = [];
const peers: Hamok[] = [];
for (const peerId of ["alice", "bob", "carol"]) {
  const transport = natsUrl === undefined ? undefined : await NatsTransport.connect({ servers: natsUrl });
  if (transport !== undefined) transports.push(transport);
  peers.push(
    new Hamok({
      peerId,
      clusterId,
      meterProvider,
      logger: consoleLogger("info"),
      ...(transport === undefined ? {} : { transport }),
    }),
  );
}
await Promise.all(peers.map((peer) => peer.join()));

const maps = peers.map((peer) => peer.createMap<string, number>({ mapId: "counters" }));
const emitters = peers.map((peer) => peer.createEmitter<{ tick: [number] }>({ emitterId: "ticks" }));
await Promise.all(emitters.map((emitter) => emitter.subscribe("tick", () => {})));
console.log(`metrics at http://127.0.0.1:${port}/metrics`);

let n = 0;
let stopping = false;
const deadline = Date.now() + seconds * 1000;
while (!stopping && Date.now() < deadline) {
  const i = n++ % peers.length;
  await maps[i]!.set(`k${n % 10}`, n).catch(() => {});
  await emitters[i]!.publish("tick", n).catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 50));
}

async function stop(): Promise<void> {
  stopping = true;
  for (const peer of peers) peer.close();
  await Promise.all(transports.map((t) => t.close()));
  await meterProvider.shutdown();
}
process.once("SIGINT", () => void stop().then(() => process.exit(0)));
process.once("SIGTERM", () => void stop().then(() => process.exit(0)));
await stop();
