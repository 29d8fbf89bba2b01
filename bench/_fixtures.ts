/**
 * What the benches and `bench/report.ts` measure against: Hamok clusters on the memory bus or on
 * NATS with an emitter whose events have 1, 2 or 4 remote subscribers, the raw `nats`
 * request/reply pair (the floor), a traced cluster (OpenTelemetry SDK, always-on sampling), and a
 * three-server NATS JetStream cluster on loopback with an R3 in-memory key-value bucket.
 *
 * Everything listens on 127.0.0.1 only; ports come from the OS.
 *
 * @module
 */

import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { connect, type KV, type Msg, type NatsConnection, StorageType } from "nats";
import type { HamokEmitter } from "../src/collections/emitter.ts";
import type { HamokMap } from "../src/collections/map.ts";
import type { HamokConfig } from "../src/config.ts";
import { Hamok } from "../src/hamok.ts";
import { MemoryBus } from "../src/transport/memory_bus.ts";
import { MemoryTransport } from "../src/transport/memory_transport.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import type { Transport } from "../src/transport/transport.ts";
import { type NatsServer, startNatsServer } from "../tests/_helpers/nats_server.ts";
import { until } from "./_measure.ts";
import type { PeerWorkerReply, PeerWorkerRequest } from "./_peer_worker.ts";

/** Events of the bench emitter: `s<k>` has k remote subscribers. */
export type BenchEvents = {
  s1: [number, string];
  s2: [number, string];
  s4: [number, string];
  /** Used for subscribe/unsubscribe timing; nobody publishes it. */
  sub: [];
};

/** Event names by number of remote subscribers. */
export const EVENT_BY_SUBSCRIBERS = { 1: "s1", 2: "s2", 4: "s4" } as const;

/** The transports a bench cluster runs on. */
export type TransportKind = "memory" | "nats";

/** A running bench cluster. */
export interface BenchCluster {
  /** The peers; `peers[0]` publishes. */
  readonly peers: Hamok[];
  /** One emitter per peer (same id); `emitters[0]` publishes. */
  readonly emitters: HamokEmitter<BenchEvents>[];
  /** Deliveries counted per event on the subscribing peers. */
  readonly delivered: Record<"s1" | "s2" | "s4", number>;
  /** The transports (one per peer). */
  readonly transports: Transport[];
  /** Closes the peers and their transports. */
  close(): Promise<void>;
}

let clusterCounter = 0;

/** Makes `n` transports of `kind` (NATS ones connect to `natsUrl`). */
export async function makeTransports(kind: TransportKind, n: number, natsUrl?: string): Promise<Transport[]> {
  if (kind === "memory") {
    const bus = new MemoryBus();
    return Array.from({ length: n }, (_, i) => new MemoryTransport({ bus, id: `m${i}` }));
  }
  if (natsUrl === undefined) throw new Error("a NATS cluster needs a server URL");
  return await Promise.all(Array.from({ length: n }, () => NatsTransport.connect({ servers: natsUrl })));
}

/** Options of {@linkcode startBenchCluster}. */
export interface BenchClusterOptions {
  /** Transport kind. */
  kind: TransportKind;
  /** Number of peers (at least 2; 5 for the 4-subscriber event). */
  peers: number;
  /** NATS server URL (NATS only). */
  natsUrl?: string;
  /** Extra peer config (for example a tracer provider). */
  config?: HamokConfig;
  /** Subscribe the events `s1`/`s2`/`s4` (as far as there are peers). Default true. */
  subscribe?: boolean;
}

/**
 * Starts `peers` peers, joins them, creates the emitter `bench` on each and, unless told not to,
 * subscribes event `s<k>` on peers 1..k for each k of 1, 2, 4 below the number of peers (3 peers:
 * `s1` and `s2`; 5 peers: also `s4`), then waits until the publisher has applied those subscriptions.
 *
 * @example
 * ```ts
 * const cluster = await startBenchCluster({ kind: "memory", peers: 3 });
 * await cluster.emitters[0].publish("s2", 1, "x"); // two remote subscribers ack
 * await cluster.close();
 * ```
 */
export async function startBenchCluster(options: BenchClusterOptions): Promise<BenchCluster> {
  const name = `bench${++clusterCounter}-${options.kind}`;
  const transports = await makeTransports(options.kind, options.peers, options.natsUrl);
  const peers = transports.map((transport, i) =>
    new Hamok({
      peerId: `${name}-${i}`,
      clusterId: name,
      transport,
      // the bench never wants a member removed because the event loop was busy measuring
      peerTimeoutMs: 60_000,
      ...options.config,
    })
  );
  const close = async (): Promise<void> => {
    for (const peer of peers) peer.close();
    await Promise.all(transports.map((t) => t.close().catch(() => {})));
  };
  const delivered = { s1: 0, s2: 0, s4: 0 };
  try {
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 20_000 })));
    const emitters = peers.map((p) => p.createEmitter<BenchEvents>({ emitterId: "bench" }));
    if (options.subscribe !== false) {
      for (const [k, event] of [[1, "s1"], [2, "s2"], [4, "s4"]] as const) {
        if (k >= peers.length) continue;
        for (let i = 1; i <= k; i++) {
          await emitters[i].subscribe(event, () => delivered[event]++);
        }
      }
      await peers[0].waitUntilCommitHead();
      // a bench of a publish nobody receives would measure nothing: check the fan-out first
      for (const [k, event] of [[1, "s1"], [2, "s2"], [4, "s4"]] as const) {
        if (k >= peers.length) continue;
        await expectAcks(emitters[0], event, k);
      }
    }
    return { peers, emitters, delivered, transports, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Publishes `event` once and throws unless exactly `count` remote peers acknowledged it. */
async function expectAcks(emitter: HamokEmitter<BenchEvents>, event: "s1" | "s2" | "s4", count: number) {
  const acked = await emitter.publish(event, 0, "check");
  if (acked.length !== count) {
    throw new Error(`bench set-up: '${event}' reached ${acked.length} peers, expected ${count}`);
  }
}

/** The raw `nats` request/reply pair: the floor every NATS row is compared to. */
export interface RawEcho {
  /** One request/reply round trip of `payload`. */
  request(): Promise<Msg>;
  /** Closes both connections. */
  close(): Promise<void>;
}

/** 64 bytes: the payload of the raw round trips. */
export const RAW_PAYLOAD: Uint8Array = new Uint8Array(64).fill(7);

/**
 * Connects a requester and a responder (two connections) to `url`; the responder echoes.
 *
 * @example
 * ```ts
 * const raw = await startRawEcho(server.url);
 * await raw.request();
 * ```
 */
export async function startRawEcho(url: string): Promise<RawEcho> {
  const requester = await connect({ servers: url });
  const responder = await connect({ servers: url });
  const subject = `bench.raw.echo.${++clusterCounter}`;
  responder.subscribe(subject, { callback: (_err, msg: Msg) => msg.respond(msg.data) });
  await Promise.all([requester.flush(), responder.flush()]);
  return {
    request: () => requester.request(subject, RAW_PAYLOAD, { timeout: 5000 }),
    async close() {
      await requester.close().catch(() => {});
      await responder.close().catch(() => {});
    },
  };
}

/** A span exporter that counts spans and drops them (the SDK does all its work; nothing is sent). */
export class CountingSpanExporter implements SpanExporter {
  /** Spans received so far. */
  count = 0;

  /** Counts and drops the batch. */
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.count += spans.length;
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  /** Nothing to release. */
  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  /** Nothing buffered. */
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** An SDK tracer provider with always-on sampling and a batch processor into a counting exporter. */
export interface BenchTracing {
  /** The provider to give to the peers. */
  readonly provider: BasicTracerProvider;
  /** The exporter (its `count` says how many spans finished). */
  readonly exporter: CountingSpanExporter;
  /** Flushes and stops the provider. */
  shutdown(): Promise<void>;
}

/**
 * Sets up tracing the way a production service would: `BasicTracerProvider`, `AlwaysOnSampler`,
 * `BatchSpanProcessor`; the exporter only counts.
 *
 * @example
 * ```ts
 * const tracing = startBenchTracing();
 * const traced = await startBenchCluster({ kind: "nats", peers: 3, natsUrl, config: { tracerProvider: tracing.provider } });
 * ```
 */
export function startBenchTracing(): BenchTracing {
  const exporter = new CountingSpanExporter();
  const provider = new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  return { provider, exporter, shutdown: () => provider.shutdown() };
}

/** Asks the OS for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port from the OS"))));
    });
  });
}

/** A NATS JetStream cluster of three servers on loopback. */
export interface JetStreamCluster {
  /** The servers. */
  readonly servers: NatsServer[];
  /** Client URLs of the servers. */
  readonly urls: string[];
  /** Stops every server (by PID) and removes their store directories. */
  stop(): Promise<void>;
  /** Synchronous best-effort stop (for exit handlers). */
  killSync(): void;
}

/**
 * Starts `size` (default 3) nats-servers with JetStream, clustered over routes on 127.0.0.1.
 *
 * @example
 * ```ts
 * const js = await startJetStreamCluster();
 * const nc = await connect({ servers: js.urls });
 * await js.stop();
 * ```
 */
export async function startJetStreamCluster(size = 3): Promise<JetStreamCluster> {
  const clusterPorts: number[] = [];
  while (clusterPorts.length < size) {
    const port = await freePort();
    if (!clusterPorts.includes(port)) clusterPorts.push(port);
  }
  const storeDir = mkdtempSync(join(tmpdir(), "hamok-js-"));
  const servers: NatsServer[] = [];
  const killSync = (): void => {
    for (const server of servers) server.killSync();
    rmSync(storeDir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < size; i++) {
      const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`).join(",");
      servers.push(
        await startNatsServer({
          extraArgs: [
            "-js",
            "--server_name",
            `hamok-bench-${i}`,
            "--cluster_name",
            "hamok-bench",
            "--cluster",
            `nats://127.0.0.1:${clusterPorts[i]}`,
            "--routes",
            routes,
            "-sd",
            join(storeDir, `s${i}`),
          ],
        }),
      );
    }
  } catch (error) {
    killSync();
    throw error;
  }
  return {
    servers,
    urls: servers.map((s) => s.url),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(storeDir, { recursive: true, force: true });
    },
    killSync,
  };
}

/** An R3 in-memory JetStream KV bucket and the connection it was opened on. */
export interface BenchKv {
  /** The connection (to the first server). */
  readonly connection: NatsConnection;
  /** The bucket. */
  readonly kv: KV;
}

/**
 * Opens (creating it) the bucket `name` with 3 replicas and memory storage, retrying while the
 * JetStream cluster is still electing its meta leader (up to `timeoutMs`).
 *
 * @example
 * ```ts
 * const { kv } = await openBenchKv(js.urls[0], "bench");
 * await kv.put("k", new Uint8Array(64));
 * ```
 */
export async function openBenchKv(url: string, name: string, timeoutMs = 30_000): Promise<BenchKv> {
  const connection = await connect({ servers: url });
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const kv = await connection.jetstream().views.kv(name, {
        replicas: 3,
        storage: StorageType.Memory,
        history: 1,
      });
      // the stream exists; wait until it accepts a write (its own leader elected)
      await kv.put("__warm__", RAW_PAYLOAD);
      return { connection, kv };
    } catch (error) {
      lastError = error;
      if (performance.now() > deadline) {
        await connection.close().catch(() => {});
        throw new Error(`the JetStream KV bucket was not ready within ${timeoutMs} ms`, { cause: lastError });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Waits until one of `peers` leads and every open, joined peer follows it. */
export async function settled(peers: Hamok[], timeoutMs = 10_000): Promise<Hamok> {
  await until(() => {
    const live = peers.filter((p) => !p.closed && p.joined);
    const leader = live.find((p) => p.leader);
    return leader !== undefined && live.every((p) => p.leaderId === leader.localPeerId);
  }, { timeoutMs, what: "the peers to agree on a leader" });
  return peers.find((p) => !p.closed && p.leader)!;
}

/** A cluster whose first peer runs in this thread and the others in worker threads (NATS only). */
export interface WorkerCluster {
  /** The peer in this thread. */
  readonly peer: Hamok;
  /** Its emitter `bench` (event `s2` has a subscriber on each worker peer). */
  readonly emitter: HamokEmitter<BenchEvents>;
  /** Its map `bench`. */
  readonly map: HamokMap<string, Uint8Array>;
  /** Closes the workers' peers, then this peer and its transport. */
  close(): Promise<void>;
}

function askWorker(
  worker: Worker,
  request: PeerWorkerRequest,
  expect: PeerWorkerReply["type"],
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (event: MessageEvent<PeerWorkerReply>) => {
      const reply = event.data;
      if (reply.type === "error") reject(new Error(`worker peer: ${reply.message}`));
      else if (reply.type === expect) resolve();
      else return;
      worker.removeEventListener("message", onMessage);
    };
    worker.addEventListener("message", onMessage);
    worker.postMessage(request);
  });
}

/**
 * Starts a cluster of `1 + workers` peers on NATS: one in this thread (id `<clusterId>-<localId>`)
 * and `workers` in worker threads (ids `<clusterId>-w<i>`), each subscribing `s2`. With `localId`
 * `"0"` this peer bootstraps and usually leads; with `"~"` (sorts last) a worker does.
 *
 * @example
 * ```ts
 * const cluster = await startWorkerCluster({ natsUrl: server.url, localId: "0", workers: 2 });
 * await cluster.map.set("k", new Uint8Array(64));
 * await cluster.close();
 * ```
 */
export async function startWorkerCluster(
  options: { natsUrl: string; localId: string; workers: number },
): Promise<WorkerCluster> {
  const clusterId = `bench${++clusterCounter}-workers`;
  const transport = await NatsTransport.connect({ servers: options.natsUrl });
  const peer = new Hamok({
    peerId: `${clusterId}-${options.localId}`,
    clusterId,
    transport,
    peerTimeoutMs: 60_000,
  });
  const workers = Array.from(
    { length: options.workers },
    () => new Worker(new URL("./_peer_worker.ts", import.meta.url).href, { type: "module" }),
  );
  const close = async (): Promise<void> => {
    await Promise.all(workers.map((w) => askWorker(w, { type: "close" }, "closed").catch(() => {})));
    for (const worker of workers) worker.terminate();
    peer.close();
    await transport.close().catch(() => {});
  };
  try {
    await Promise.all([
      peer.join({ timeoutMs: 20_000 }),
      ...workers.map((w, i) =>
        askWorker(w, {
          type: "start",
          url: options.natsUrl,
          clusterId,
          peerId: `${clusterId}-w${i}`,
          subscribe: ["s2"],
        }, "ready")
      ),
    ]);
    const emitter = peer.createEmitter<BenchEvents>({ emitterId: "bench" });
    const map = peer.createMap<string, Uint8Array>({ mapId: "bench" });
    await map.ready;
    await peer.waitUntilCommitHead();
    await expectAcks(emitter, "s2", options.workers);
    return { peer, emitter, map, close };
  } catch (error) {
    await close();
    throw error;
  }
}
