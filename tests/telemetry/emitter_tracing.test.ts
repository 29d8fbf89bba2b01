import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { HamokTimeoutError } from "../../src/errors.ts";
import { HAMOK_SPAN_ATTRIBUTES as A } from "../../src/telemetry/messaging_spans.ts";
import { spanContextFromHeaders, traceHeaders } from "../../src/telemetry/trace_context.ts";
import type { TransportHeaders } from "../../src/transport/transport.ts";
import { memoryTransports, natsTransports, startCluster, type TestCluster } from "../_helpers/cluster.ts";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { waitFor } from "../_helpers/wait.ts";
import { setupTracing } from "../../examples/jaeger.ts";

type Events = { msg: [string]; boom: [number] };

describe("emitter tracing on a real nats-server", () => {
  let server: NatsServer;
  let cluster: TestCluster;
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let counter = 0;

  before(async () => {
    server = await startNatsServer();
    cluster = await startCluster(natsTransports(server.url), ["a", "b", "c"], {
      tracerProvider: provider,
      peerTimeoutMs: 60_000,
    });
  });
  after(async () => {
    await cluster?.close();
    await provider.shutdown();
    await server?.stop();
  });

  const spansOf = (traceId: string) =>
    exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const producers = () => exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.PRODUCER);

  function emitters(extra: Partial<{ requestTimeoutInMs: number }> = {}) {
    const id = `traced-${++counter}`;
    const [a, b, c] = cluster.peers;
    const list = [a, b, c].map((p) => p.createEmitter<Events>({ emitterId: id, ...extra }));
    return { id, ea: list[0], eb: list[1], ec: list[2] };
  }

  it("one publish gives one PRODUCER and two CONSUMER children in one trace", async () => {
    const { id, ea, eb, ec } = await emitters();
    await eb.subscribe("msg", () => {});
    await ec.subscribe("msg", () => {});
    await cluster.peers[0].waitUntilCommitHead();
    exporter.reset();
    assert.deepEqual((await ea.publish("msg", "hi")).sort(), ["b", "c"]);
    await waitFor(() => exporter.getFinishedSpans().length >= 3, { timeoutMs: 2000 });
    const [producer] = producers();
    assert.ok(producer !== undefined, "a producer span");
    assert.equal(producer.name, `send ${id}`);
    assert.equal(producer.attributes[A.system], "hamok");
    assert.equal(producer.attributes[A.operationType], "send");
    assert.equal(producer.attributes[A.destination], id);
    assert.equal(producer.attributes[A.event], "msg");
    assert.equal(producer.attributes[A.peerId], "a");
    assert.equal(producer.attributes[A.targetPeers], 2);
    assert.deepEqual(
      producer.events.filter((e) => e.name === "ack").map((e) => e.attributes?.[A.peerId]).sort(),
      [
        "b",
        "c",
      ],
    );
    assert.equal(producer.status.code, SpanStatusCode.UNSET);
    const trace = spansOf(producer.spanContext().traceId);
    const consumers = trace.filter((s) => s.kind === SpanKind.CONSUMER);
    assert.equal(trace.length, 3);
    assert.equal(consumers.length, 2);
    for (const consumer of consumers) {
      assert.equal(consumer.name, `process ${id}`);
      assert.equal(consumer.parentSpanContext?.spanId, producer.spanContext().spanId);
      assert.equal(consumer.attributes[A.sourcePeerId], "a");
    }
    assert.deepEqual(consumers.map((s) => s.attributes[A.peerId]).sort(), ["b", "c"]);
    for (const e of [ea, eb, ec]) e.close();
  });

  it("notify has a PRODUCER span that ends when sent, and the same CONSUMER spans", async () => {
    const { ea, eb, ec } = await emitters();
    const got: string[] = [];
    await eb.subscribe("msg", (s) => got.push(s));
    await cluster.peers[0].waitUntilCommitHead();
    exporter.reset();
    ea.notify("msg", "fire");
    const [producer] = producers();
    assert.ok(producer !== undefined, "the producer span ended synchronously");
    assert.equal(producer.attributes[A.operationName], "notify");
    await waitFor(() => got.length === 1 && spansOf(producer.spanContext().traceId).length === 2, {
      timeoutMs: 2000,
    });
    const consumer = spansOf(producer.spanContext().traceId).find((s) => s.kind === SpanKind.CONSUMER)!;
    assert.equal(consumer.parentSpanContext?.spanId, producer.spanContext().spanId);
    for (const e of [ea, eb, ec]) e.close();
  });

  it("a listener that throws is recorded on its CONSUMER span", async () => {
    const { ea, eb, ec } = await emitters();
    const onError = () => {};
    cluster.peers[1].on("error", onError);
    await eb.subscribe("boom", () => {
      throw new Error("listener broke");
    });
    await cluster.peers[0].waitUntilCommitHead();
    exporter.reset();
    await ea.publish("boom", 1);
    await waitFor(() => exporter.getFinishedSpans().some((s) => s.kind === SpanKind.CONSUMER), {
      timeoutMs: 2000,
    });
    const consumer = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CONSUMER)!;
    assert.equal(consumer.status.code, SpanStatusCode.ERROR);
    assert.ok(consumer.events.some((e) => e.name === "exception"));
    cluster.peers[1].off("error", onError);
    for (const e of [ea, eb, ec]) e.close();
  });

  it("a timed-out publish has error status and names the missing peer", async () => {
    const { ea, eb, ec } = await emitters({ requestTimeoutInMs: 300 });
    await eb.subscribe("msg", () => {});
    await ec.subscribe("msg", () => {});
    await cluster.peers[0].waitUntilCommitHead();
    exporter.reset();
    // c dies without leaving; with a long peer timeout it stays a member and a subscriber
    await cluster.crash(cluster.peers[2]);
    const error = await ea.publish("msg", "anyone?").then(() => undefined, (e) => e);
    assert.ok(error instanceof HamokTimeoutError);
    assert.deepEqual(error.missingPeerIds, ["c"]);
    const [producer] = producers();
    assert.equal(producer.status.code, SpanStatusCode.ERROR);
    assert.match(producer.status.message ?? "", /missing: \[c\]/);
    assert.deepEqual(
      producer.events.filter((e) => e.name === "missing").map((e) => e.attributes?.[A.peerId]),
      ["c"],
    );
    assert.deepEqual(producer.events.filter((e) => e.name === "ack").map((e) => e.attributes?.[A.peerId]), [
      "b",
    ]);
    for (const e of [ea, eb]) e.close();
    void ec;
  });
});

describe("trace context headers", () => {
  it("round-trip traceparent and tracestate, and reject malformed ones", () => {
    const ctx = {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      traceFlags: 1,
    };
    const headers = traceHeaders(ctx)!;
    assert.equal(headers.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    const back = spanContextFromHeaders(headers)!;
    assert.equal(back.traceId, ctx.traceId);
    assert.equal(back.spanId, ctx.spanId);
    assert.equal(back.traceFlags, 1);
    assert.equal(back.isRemote, true);
    const withState = spanContextFromHeaders({ ...headers, tracestate: "vendor=abc" } as TransportHeaders)!;
    assert.equal(withState.traceState?.get("vendor"), "abc");
    assert.equal(traceHeaders({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 }), undefined);
    for (
      const bad of [
        "",
        "garbage",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        `00-${"0".repeat(32)}-00f067aa0ba902b7-01`,
      ]
    ) {
      assert.equal(spanContextFromHeaders({ traceparent: bad }), undefined, bad);
    }
    assert.equal(spanContextFromHeaders(undefined), undefined);
  });
});

describe("the Jaeger example's OTLP/HTTP set-up", () => {
  let receiver: Server;
  let endpoint: string;
  const posts: { path: string; type: string; body: string }[] = [];

  before(async () => {
    receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Uint8Array[] = [];
      req.on("data", (c: Uint8Array) => chunks.push(c));
      req.on("end", () => {
        posts.push({
          path: req.url ?? "",
          type: String(req.headers["content-type"]),
          body: Buffer.concat(chunks).toString("utf8"),
        });
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  it("posts the spans of a publish to <endpoint>/v1/traces", async () => {
    const tracing = setupTracing(endpoint, "hamok-test");
    assert.equal(tracing.url, `${endpoint}/v1/traces`);
    const cluster = await startCluster(memoryTransports(), ["a", "b"], { tracerProvider: tracing.provider });
    try {
      const [ea, eb] = cluster.peers.map((p) => p.createEmitter<Events>({ emitterId: "chat" }));
      await eb.subscribe("msg", () => {});
      await cluster.peers[0].waitUntilCommitHead();
      assert.deepEqual(await ea.publish("msg", "exported"), ["b"]);
    } finally {
      await cluster.close();
    }
    await tracing.shutdown();
    await waitFor(() => posts.some((p) => p.body.includes("process chat")), { timeoutMs: 3000 });
    assert.ok(posts.every((p) => p.path === "/v1/traces"));
    assert.match(posts[0].type, /application\/json/);
    const all = posts.map((p) => p.body).join("\n");
    assert.match(all, /send chat/);
    assert.match(all, /hamok-test/);
  });
});
