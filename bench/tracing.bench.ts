/**
 * What tracing costs, piece by piece, to explain the traced-publish row of the report: an SDK span
 * (always-on sampling, batch processor) of the kind a publish makes, the W3C header formatting and
 * parsing, the NATS header encoding (`MsgHdrs`), and a NATS ping-pong with and without the
 * `traceparent` header, on raw `nats` and through {@linkcode NatsTransport}.
 *
 * Deno: `deno bench -A bench/tracing.bench.ts`. Bun: `bun bench/tracing.bench.ts` (through mitata).
 *
 * @module
 */

import { trace } from "@opentelemetry/api";
import { connect, headers as natsHeaders, type Msg } from "nats";
import { MessagingSpans } from "../src/telemetry/messaging_spans.ts";
import { spanContextFromHeaders, traceHeaders } from "../src/telemetry/trace_context.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import type { TransportHeaders } from "../src/transport/transport.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { RAW_PAYLOAD, startBenchTracing } from "./_fixtures.ts";
import { bench, onBenchEnd } from "./_harness.ts";

const tracing = startBenchTracing();
const sdkSpans = new MessagingSpans(tracing.provider.getTracer("bench"), "bench", "peer-0");
const noopSpans = new MessagingSpans(trace.getTracerProvider().getTracer("bench"), "bench", "peer-0");
const sample = sdkSpans.startSend("publish", "s2", 2, "m:1");
const HEADERS: TransportHeaders = traceHeaders(sample.spanContext())!;
sample.end();

const server = await startNatsServer();
onBenchEnd(() => server.killSync());
const a = await connect({ servers: server.url });
const b = await connect({ servers: server.url });
b.subscribe("bench.trace.ping", {
  callback: (_e, m: Msg) => b.publish("bench.trace.pong", m.data, { headers: m.headers }),
});
let pending: (() => void) | undefined;
a.subscribe("bench.trace.pong", {
  callback: () => {
    const resolve = pending;
    pending = undefined;
    resolve?.();
  },
});
const ta = await NatsTransport.connect({ servers: server.url });
const tb = await NatsTransport.connect({ servers: server.url });
tb.subscribe("bench.tt.ping", (m) => tb.publish("bench.tt.pong", m.data, m.headers));
let tPending: (() => void) | undefined;
ta.subscribe("bench.tt.pong", () => {
  const resolve = tPending;
  tPending = undefined;
  resolve?.();
});
await Promise.all([a.flush(), b.flush(), ta.flush(), tb.flush()]);
onBenchEnd(async () => {
  await Promise.all([a.close(), b.close(), ta.close(), tb.close()].map((p) => p.catch(() => {})));
  await tracing.shutdown();
});

// --- spans (CPU only) -----------------------------------------------------------------------------

bench("PRODUCER span start + end, no SDK", () => {
  noopSpans.startSend("publish", "s2", 2, "m:1").end();
}, { group: "span", baseline: true });

bench("PRODUCER span start + end + 2 ack events, SDK", () => {
  const span = sdkSpans.startSend("publish", "s2", 2, "m:1");
  span.addEvent("ack", { "hamok.peer.id": "peer-1" });
  span.addEvent("ack", { "hamok.peer.id": "peer-2" });
  span.end();
}, { group: "span" });

bench("CONSUMER span from headers, start + end, SDK", () => {
  sdkSpans.startProcess("s2", "peer-0", HEADERS).end();
}, { group: "span" });

bench("traceHeaders (format traceparent)", () => {
  traceHeaders(sample.spanContext());
}, { group: "headers" });

bench("spanContextFromHeaders (parse traceparent)", () => {
  spanContextFromHeaders(HEADERS);
}, { group: "headers" });

bench("nats headers(): build MsgHdrs with traceparent", () => {
  const h = natsHeaders();
  h.set("traceparent", HEADERS.traceparent);
}, { group: "headers" });

// --- round trips -----------------------------------------------------------------------------------

const hdrs = natsHeaders();
hdrs.set("traceparent", HEADERS.traceparent);

bench("raw nats ping-pong, no headers", async () => {
  await new Promise<void>((resolve) => {
    pending = resolve;
    a.publish("bench.trace.ping", RAW_PAYLOAD);
  });
}, { group: "ping-pong", baseline: true, samples: true });

bench("raw nats ping-pong, traceparent header", async () => {
  await new Promise<void>((resolve) => {
    pending = resolve;
    a.publish("bench.trace.ping", RAW_PAYLOAD, { headers: hdrs });
  });
}, { group: "ping-pong", samples: true });

bench("NatsTransport ping-pong, no headers", async () => {
  await new Promise<void>((resolve) => {
    tPending = resolve;
    ta.publish("bench.tt.ping", RAW_PAYLOAD);
  });
}, { group: "ping-pong", samples: true });

bench("NatsTransport ping-pong, traceparent header", async () => {
  await new Promise<void>((resolve) => {
    tPending = resolve;
    ta.publish("bench.tt.ping", RAW_PAYLOAD, HEADERS);
  });
}, { group: "ping-pong", samples: true });
