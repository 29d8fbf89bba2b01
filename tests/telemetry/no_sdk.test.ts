import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ProxyTracerProvider } from "@opentelemetry/api";
import type { TransportMessage } from "../../src/transport/transport.ts";
import { memoryTransports, startCluster, type TestCluster } from "../_helpers/cluster.ts";

type Events = { msg: [string] };

// @opentelemetry/api without an SDK (a fresh ProxyTracerProvider with no delegate is what the API's
// global provider is until an SDK registers; a fresh one keeps other tests' globals out): publishes
// must carry no trace headers, so the wire and the subscribers pay nothing for tracing.
describe("tracing without an SDK", () => {
  let cluster: TestCluster;
  const bus = memoryTransports();

  before(async () => {
    cluster = await startCluster(bus, ["a", "b", "c"], { tracerProvider: new ProxyTracerProvider() });
  });
  after(async () => {
    await cluster?.close();
  });

  it("publishes and notifies without trace headers", async () => {
    const [a, b, c] = cluster.peers as [
      typeof cluster.peers[0],
      typeof cluster.peers[0],
      typeof cluster.peers[0],
    ];
    const emitters = [a, b, c].map((p) => p.createEmitter<Events>({ emitterId: "plain" }));
    const seen: TransportMessage[] = [];
    const tap = cluster.transports.get("b")!.subscribe(
      emitters[0]!.connection.subjectOf("msg"),
      (msg) => void seen.push(msg),
    );
    try {
      await emitters[1]!.subscribe("msg", () => {});
      await emitters[2]!.subscribe("msg", () => {});
      await a.waitUntilCommitHead();
      const acked = await emitters[0]!.publish("msg", "hello");
      assert.deepEqual([...acked].sort(), ["b", "c"]);
      emitters[0]!.notify("msg", "fire");
      await emitters[0]!.publish("msg", "flush"); // the notify travels ahead of it
      assert.equal(seen.length, 3);
      for (const msg of seen) assert.equal(msg.headers, undefined);
    } finally {
      tap.unsubscribe();
    }
  });
});
