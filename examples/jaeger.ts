/**
 * Three peers publishing over NATS, every publish traced into Jaeger (or any OTLP/HTTP collector).
 *
 *   docker run --rm -p 16686:16686 -p 4318:4318 jaegertracing/jaeger:latest   # Jaeger with OTLP
 *   nats-server -a 127.0.0.1 -p 4222 &
 *   deno run -A examples/jaeger.ts --nats nats://127.0.0.1:4222
 *
 * Spans go to `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4318`) as
 * `POST /v1/traces`. In Jaeger (http://localhost:16686) pick the service `hamok-example`: each
 * trace is one `send chat` PRODUCER span with one `process chat` CONSUMER child per remote
 * subscriber.
 *
 * @module
 */

import process from "node:process";
import type { TracerProvider } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Hamok, NatsTransport } from "../mod.ts";

/** A tracer provider that exports every span over OTLP/HTTP, and how to flush and stop it. */
export interface ExampleTracing {
  readonly provider: TracerProvider;
  readonly url: string;
  shutdown(): Promise<void>;
}

/**
 * The tracing set-up of this example: always-on sampling, spans exported one by one to
 * `<endpoint>/v1/traces` over OTLP/HTTP (JSON).
 */
export function setupTracing(
  endpoint: string = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://localhost:4318",
  serviceName = "hamok-example",
): ExampleTracing {
  const url = `${endpoint.replace(/\/+$/, "")}/v1/traces`;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": serviceName }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url }))],
  });
  return { provider, url, shutdown: () => provider.shutdown() };
}

async function main(): Promise<void> {
  const at = process.argv.indexOf("--nats");
  const servers = at >= 0 ? process.argv[at + 1] : "nats://127.0.0.1:4222";
  const tracing = setupTracing();
  console.log(`exporting spans to ${tracing.url}, NATS at ${servers}`);
  const transports = await Promise.all([0, 1, 2].map(() => NatsTransport.connect({ servers })));
  const peers = ["alice", "bob", "carol"].map((peerId, i) =>
    new Hamok({
      peerId,
      clusterId: "jaeger-example",
      transport: transports[i],
      tracerProvider: tracing.provider,
    })
  );
  try {
    await Promise.all(peers.map((p) => p.join()));
    const emitters = peers.map((p) => p.createEmitter<{ message: [string] }>({ emitterId: "chat" }));
    await emitters[1].subscribe("message", (text) => console.log(`bob got: ${text}`));
    await emitters[2].subscribe("message", (text) => console.log(`carol got: ${text}`));
    await peers[0].waitUntilCommitHead();
    for (let i = 1; i <= 5; i++) {
      const acked = await emitters[0].publish("message", `hello #${i}`);
      console.log(`publish #${i} acknowledged by ${acked.join(", ")}`);
    }
  } finally {
    for (const peer of peers) peer.close();
    await Promise.all(transports.map((t) => t.close()));
    await tracing.shutdown();
  }
}

if (import.meta.main) await main();
