import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { DataPoint, Histogram } from "@opentelemetry/sdk-metrics";
import { HAMOK_METRIC_NAMES, HamokMetrics } from "../../src/telemetry/metrics.ts";
import { FAST, memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { Hamok } from "../../src/hamok.ts";
import { waitFor } from "../_helpers/wait.ts";

/** A reader the test collects from on demand. */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

type Points = Map<string, DataPoint<unknown>[]>;

async function collect(reader: TestReader): Promise<Points> {
  const { resourceMetrics } = await reader.collect();
  const points: Points = new Map();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      points.set(metric.descriptor.name, [
        ...(points.get(metric.descriptor.name) ?? []),
        ...metric.dataPoints,
      ]);
    }
  }
  return points;
}

function histogramCount(points: Points, name: string, peerId?: string): number {
  let count = 0;
  for (const point of points.get(name) ?? []) {
    if (peerId !== undefined && point.attributes["hamok.peer.id"] !== peerId) continue;
    count += (point.value as Histogram).count;
  }
  return count;
}

function sum(points: Points, name: string, peerId?: string): number {
  let total = 0;
  for (const point of points.get(name) ?? []) {
    if (peerId !== undefined && point.attributes["hamok.peer.id"] !== peerId) continue;
    total += point.value as number;
  }
  return total;
}

describe("metrics", () => {
  it("are disabled (no-op) without an SDK", () => {
    const metrics = new HamokMetrics(undefined, "a", {
      log: () => ({ entries: 0, bytes: 0 }),
      followerLag: () => [],
    });
    assert.equal(metrics.enabled, false);
    const hamok = new Hamok({ ...FAST, clusterId: `m-${crypto.randomUUID()}` });
    assert.equal(hamok.metrics.enabled, false);
    hamok.close();
  });

  it("a three-peer cluster records publishes, proposals, applies, appends, elections and log size", async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"], { meterProvider });
    try {
      const leader = await cluster.settled();
      assert.equal(leader.metrics.enabled, true);
      const follower = cluster.peers.find((p) => !p.leader)!;
      const map = follower.createMap<string, number>({ mapId: "m" });
      for (let i = 0; i < 10; i++) await map.set(`k${i}`, i);
      const listener = leader.createEmitter<{ e: [number] }>({ emitterId: "em" });
      await listener.subscribe("e", () => {});
      await follower.waitUntilCommitHead();
      const emitter = follower.createEmitter<{ e: [number] }>({ emitterId: "em" });
      for (let i = 0; i < 5; i++) await emitter.publish("e", i);

      const points = await collect(reader);
      const fid = follower.localPeerId;
      const lid = leader.localPeerId;
      assert.equal(histogramCount(points, HAMOK_METRIC_NAMES.publishDuration, fid), 5);
      const publish = points.get(HAMOK_METRIC_NAMES.publishDuration)!.find((p) =>
        p.attributes["hamok.peer.id"] === fid
      )!;
      assert.equal(publish.attributes["messaging.system"], "hamok");
      assert.equal(publish.attributes["messaging.operation.name"], "publish");
      assert.equal(publish.attributes["messaging.destination.name"], "em");
      // ten sets plus the subscription on the follower, each timed from propose to apply
      assert.ok(histogramCount(points, HAMOK_METRIC_NAMES.proposalDuration, fid) >= 10);
      assert.ok(histogramCount(points, HAMOK_METRIC_NAMES.applyBatchSize, fid) >= 1);
      assert.ok(histogramCount(points, HAMOK_METRIC_NAMES.appendRoundTrip, lid) >= 1);
      const followers = new Set(
        (points.get(HAMOK_METRIC_NAMES.appendRoundTrip) ?? []).map((p) => p.attributes["hamok.follower.id"]),
      );
      assert.ok(followers.has(fid), `append round trips for ${[...followers]}`);
      assert.ok(sum(points, HAMOK_METRIC_NAMES.elections) >= 1);
      assert.ok(sum(points, HAMOK_METRIC_NAMES.leaderChanges, fid) >= 1);
      assert.ok(sum(points, HAMOK_METRIC_NAMES.logEntries, lid) >= 10);
      assert.ok(sum(points, HAMOK_METRIC_NAMES.logBytes, lid) > 0);
      const lags = (points.get(HAMOK_METRIC_NAMES.followerLag) ?? []).filter((p) =>
        p.attributes["hamok.peer.id"] === lid
      );
      assert.equal(lags.length, 2);

      // a dropped message is counted by reason
      leader.transport.publish(leader.subjects.inbox(fid), new Uint8Array([0xff]));
      let dropped = 0;
      await waitFor(async () => {
        const again = await collect(reader);
        dropped = (again.get(HAMOK_METRIC_NAMES.dropped) ?? [])
          .filter((p) => p.attributes["hamok.drop.reason"] === "undecodable")
          .reduce((n, p) => n + (p.value as number), 0);
        return dropped > 0;
      }, { timeoutMs: 2000, message: "the drop was counted" });
      assert.equal(dropped, 1);
    } finally {
      await cluster.close();
      await meterProvider.shutdown();
    }
  });
});
