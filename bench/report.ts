/**
 * The benchmark report: measures every row itself (warm-up, then N samples; p50/p99 from the
 * sorted samples; ops/s for throughput rows), compares each with the raw NATS request/reply round
 * trip measured in the same run on the same nats-server (the floor), and with a key-value `put` on
 * an R3 in-memory bucket of a three-server NATS JetStream cluster on loopback (what users would
 * compare `map.set` with). Prints one markdown table and writes it to `bench/REPORT.md`.
 *
 * Deno: `deno task bench:report` (= `deno run -A bench/report.ts`). Bun: `bun bench/report.ts`.
 * Flags: `--out <file>` (default `bench/REPORT.md`; `-` for stdout only), `--quick` (fewer samples,
 * for trying it out), `--readme` (also put the machine line and the table into README.md, between
 * the `<!-- bench -->` and `<!-- /bench -->` markers), `--deploy` (then also run `bench/deploy.ts`, the
 * rows with every peer in its own process, on the same runtime: `bench/DEPLOY.md` or `bench/DEPLOY.bun.md`).
 *
 * All servers are private, listen on 127.0.0.1 only, and are stopped by PID at the end.
 *
 * @module
 */

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import type { HamokEmitter } from "../src/collections/emitter.ts";
import type { HamokMap } from "../src/collections/map.ts";
import { Hamok } from "../src/hamok.ts";
import { findNatsServerBinary, type NatsServer, startNatsServer } from "../tests/_helpers/nats_server.ts";
import {
  type BenchCluster,
  type BenchEvents,
  type BenchKv,
  type JetStreamCluster,
  makeTransports,
  openBenchKv,
  RAW_PAYLOAD,
  type RawEcho,
  settled,
  startBenchCluster,
  startBenchTracing,
  startJetStreamCluster,
  startRawEcho,
  startWorkerCluster,
  type TransportKind,
  type WorkerCluster,
} from "./_fixtures.ts";
import {
  closedLoop,
  formatMachine,
  formatRate,
  formatUs,
  type InterleavedOp,
  type LatencyStats,
  machineInfo,
  sampleInterleaved,
  type SampleOptions,
  summarize,
  type ThroughputStats,
  until,
} from "./_measure.ts";
import { measureClusterKey } from "./cluster_key.ts";
import { measureDurability } from "./durability.ts";

// ------------------------------------------------------------------ settings

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outAt = args.indexOf("--out");
const outPath = outAt >= 0 ? args[outAt + 1] : new URL("./REPORT.md", import.meta.url).pathname;
const updateReadme = args.includes("--readme");
const runDeploy = args.includes("--deploy");
const README = new URL("../README.md", import.meta.url).pathname;
const README_START = "<!-- bench -->";
const README_END = "<!-- /bench -->";

const LATENCY: SampleOptions = quick ? { warmup: 50, samples: 300 } : { warmup: 500, samples: 3000 };
const COMMIT_LATENCY: SampleOptions = quick ? { warmup: 20, samples: 100 } : { warmup: 200, samples: 1500 };
const THROUGHPUT_OPS = quick ? 3000 : 20_000;
const KV_THROUGHPUT_OPS = quick ? 1000 : 5000;
const SET_THROUGHPUT_OPS = quick ? 2000 : 10_000;
const NOTIFY_EVENTS = quick ? 5000 : 20_000;
const NOTIFY_RUNS = 3;
const JOIN_TRIALS = quick ? 3 : 10;
const FAILOVER_TRIALS = quick ? 2 : 10;
const CONCURRENCY = 64;

// ------------------------------------------------------------------ rows

interface Row {
  readonly name: string;
  readonly transport: string;
  readonly stats?: LatencyStats;
  readonly rate?: number;
  readonly rateUnit?: string;
  /** How the row relates to the floor: its p50, its rate, or not at all. */
  readonly vsFloor?: "latency" | "rate";
  readonly target?: string;
  readonly met?: boolean;
}

const rows: Row[] = [];
const notes: string[] = [];

function log(message: string): void {
  process.stderr.write(`[bench:report] ${message}\n`);
}

// ------------------------------------------------------------------ resources

const running: { close(): Promise<void> }[] = [];
let natsServer: NatsServer | undefined;
/** Clusters whose other two peers run in worker threads: `lead` (this thread's peer leads) and `follow`. */
let threads: { lead: WorkerCluster; follow: WorkerCluster } | undefined;
const THREADS = "NATS, 3 threads";

/** "the leader" or "a follower", for the row names of a worker cluster's peer in this thread. */
function roleOf(cluster: WorkerCluster): string {
  return cluster.peer.leader ? "the leader" : "a follower";
}
let jetStream: JetStreamCluster | undefined;

function track<T extends { close(): Promise<void> }>(resource: T): T {
  running.push(resource);
  return resource;
}

process.on("exit", () => {
  natsServer?.killSync();
  jetStream?.killSync();
});

// ------------------------------------------------------------------ measurements

async function publishLatency(
  raw: RawEcho,
  url: string,
): Promise<{ floor: LatencyStats; publish2: LatencyStats }> {
  log("publish latency on NATS (interleaved with the floor and the traced cluster)");
  const three = track(await startBenchCluster({ kind: "nats", peers: 3, natsUrl: url }));
  const five = track(await startBenchCluster({ kind: "nats", peers: 5, natsUrl: url }));
  const tracing = startBenchTracing();
  const traced = track(
    await startBenchCluster({
      kind: "nats",
      peers: 3,
      natsUrl: url,
      config: { tracerProvider: tracing.provider },
    }),
  );
  const spansBefore = tracing.exporter.count;
  const lead = threads!.lead;
  const [floor, p1, p2, p4, tp2, wp2] = await sampleInterleaved([
    { run: () => raw.request() },
    { run: (i) => three.emitters[0].publish("s1", i, "payload") },
    { run: (i) => three.emitters[0].publish("s2", i, "payload") },
    { run: (i) => five.emitters[0].publish("s4", i, "payload") },
    { run: (i) => traced.emitters[0].publish("s2", i, "payload") },
    { run: (i) => lead.emitter.publish("s2", i, "payload") },
  ], LATENCY);
  await tracing.provider.forceFlush();
  const spans = tracing.exporter.count - spansBefore;
  rows.push({ name: "raw NATS request/reply (floor)", transport: "NATS", stats: floor, vsFloor: "latency" });
  rows.push({ name: "publish, 1 remote subscriber", transport: "NATS", stats: p1, vsFloor: "latency" });
  rows.push({
    name: "publish, 2 remote subscribers",
    transport: "NATS",
    stats: p2,
    vsFloor: "latency",
    target: "p50 ≤ 1.2× floor",
    met: p2.p50Us <= 1.2 * floor.p50Us,
  });
  rows.push({ name: "publish, 4 remote subscribers", transport: "NATS", stats: p4, vsFloor: "latency" });
  rows.push({
    name: "publish, 2 remote subscribers",
    transport: THREADS,
    stats: wp2,
    vsFloor: "latency",
    target: "p50 ≤ 1.2× floor",
    met: wp2.p50Us <= 1.2 * floor.p50Us,
  });
  const overhead = tp2.p50Us / p2.p50Us;
  rows.push({
    name: "publish, 2 remote subscribers, traced (SDK, always-on)",
    transport: "NATS",
    stats: tp2,
    vsFloor: "latency",
    target: `p50 ≤ 1.2× untraced (${overhead.toFixed(2)}×)`,
    met: overhead <= 1.2,
  });
  notes.push(
    `Tracing: \`BasicTracerProvider\` + \`AlwaysOnSampler\` + \`BatchSpanProcessor\` into an exporter that counts ` +
      `and drops (${
        spans.toLocaleString("en-US")
      } spans exported during the traced samples: one PRODUCER per ` +
      `publish and one CONSUMER per delivery).`,
  );
  await tracing.shutdown();
  await Promise.all([three.close(), five.close(), traced.close()]);
  return { floor, publish2: p2 };
}

async function memoryPublishLatency(): Promise<void> {
  log("publish latency on memory");
  const three = track(await startBenchCluster({ kind: "memory", peers: 3 }));
  const five = track(await startBenchCluster({ kind: "memory", peers: 5 }));
  const [p1, p2, p4] = await sampleInterleaved([
    { run: (i) => three.emitters[0].publish("s1", i, "payload") },
    { run: (i) => three.emitters[0].publish("s2", i, "payload") },
    { run: (i) => five.emitters[0].publish("s4", i, "payload") },
  ], LATENCY);
  rows.push({ name: "publish, 1 remote subscriber", transport: "memory", stats: p1, vsFloor: "latency" });
  rows.push({ name: "publish, 2 remote subscribers", transport: "memory", stats: p2, vsFloor: "latency" });
  rows.push({ name: "publish, 4 remote subscribers", transport: "memory", stats: p4, vsFloor: "latency" });
  await Promise.all([three.close(), five.close()]);
}

async function throughput(raw: RawEcho, url: string): Promise<void> {
  log(`throughput, ${CONCURRENCY} in flight`);
  const loop = { concurrency: CONCURRENCY, ops: THROUGHPUT_OPS, warmupOps: Math.floor(THROUGHPUT_OPS / 10) };
  const floor = await closedLoop(() => raw.request(), loop);
  const nats = track(await startBenchCluster({ kind: "nats", peers: 3, natsUrl: url }));
  const natsPublish = await closedLoop((i) => nats.emitters[0].publish("s2", i, "payload"), loop);
  const memory = track(await startBenchCluster({ kind: "memory", peers: 3 }));
  const memoryPublish = await closedLoop((i) => memory.emitters[0].publish("s2", i, "payload"), loop);
  const lead = threads!.lead;
  const threadsPublish = await closedLoop((i) => lead.emitter.publish("s2", i, "payload"), loop);
  floorRate = floor.opsPerSec;
  const name = (what: string) => `${what}, ${CONCURRENCY} in flight`;
  rows.push(throughputRow(name("raw NATS request/reply (floor)"), "NATS", floor));
  rows.push({
    ...throughputRow(name("publish, 2 remote subscribers"), "NATS", natsPublish),
    target: "ops/s ≥ floor ops/s",
    met: natsPublish.opsPerSec >= floor.opsPerSec,
  });
  rows.push({
    ...throughputRow(name("publish, 2 remote subscribers"), THREADS, threadsPublish),
    target: "ops/s ≥ floor ops/s",
    met: threadsPublish.opsPerSec >= floor.opsPerSec,
  });
  rows.push(throughputRow(name("publish, 2 remote subscribers"), "memory", memoryPublish));
  await nats.close();
  await memory.close();
}

function throughputRow(name: string, transport: string, stats: ThroughputStats): Row {
  return { name, transport, stats, rate: stats.opsPerSec, rateUnit: "ops/s", vsFloor: "rate" };
}

/** Notifies `events` times to the two subscribers of `s2`; deliveries per second until the last arrived. */
async function notifyRun(cluster: BenchCluster, events: number): Promise<{ rate: number; lost: number }> {
  const emitter = cluster.emitters[0];
  const target = cluster.delivered.s2 + 2 * events;
  const start = performance.now();
  const chunk = 1000;
  for (let sent = 0; sent < events; sent += chunk) {
    const end = Math.min(events, sent + chunk);
    for (let i = sent; i < end; i++) emitter.notify("s2", i, "payload");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  let lost = 0;
  try {
    await until(() => cluster.delivered.s2 >= target, {
      timeoutMs: 20_000,
      intervalMs: 1,
      what: "deliveries",
    });
  } catch {
    lost = target - cluster.delivered.s2;
  }
  const elapsed = performance.now() - start;
  return { rate: (2 * events - lost) / (elapsed / 1000), lost };
}

async function notifyThroughput(url: string): Promise<void> {
  log("notify throughput");
  for (const kind of ["nats", "memory"] as const) {
    const cluster = track(await startBenchCluster({ kind, peers: 3, natsUrl: url }));
    await notifyRun(cluster, Math.floor(NOTIFY_EVENTS / 10)); // warm-up
    const runs: { rate: number; lost: number }[] = [];
    for (let r = 0; r < NOTIFY_RUNS; r++) runs.push(await notifyRun(cluster, NOTIFY_EVENTS));
    runs.sort((a, b) => a.rate - b.rate);
    const median = runs[Math.floor(runs.length / 2)];
    const lost = runs.reduce((sum, r) => sum + r.lost, 0);
    rows.push({
      name: `notify, 2 remote subscribers (${NOTIFY_EVENTS.toLocaleString("en-US")} events)`,
      transport: kind === "nats" ? "NATS" : "memory",
      rate: median.rate,
      rateUnit: "deliveries/s",
      target: "≥ 100,000 deliveries/s",
      met: median.rate >= 100_000 && lost === 0,
    });
    if (lost > 0) notes.push(`notify on ${kind}: ${lost} deliveries lost over ${NOTIFY_RUNS} runs.`);
    await cluster.close();
  }
  notes.push(
    `notify: median of ${NOTIFY_RUNS} runs; a run notifies in chunks of 1000 (yielding to the event loop ` +
      `between chunks) and ends when the last delivery arrived on both subscribers.`,
  );
}

/** Map ids and values of the `set` rows: 100 string keys, 64-byte values (like the KV puts). */
const MAP_KEYS = Array.from({ length: 100 }, (_, i) => `k${i}`);

async function openMaps(cluster: BenchCluster): Promise<HamokMap<string, Uint8Array>[]> {
  const maps = cluster.peers.map((p) => p.createMap<string, Uint8Array>({ mapId: "bench" }));
  await Promise.all(maps.map((m) => m.ready));
  return maps;
}

function roles(cluster: BenchCluster): { leader: number; follower: number } {
  const leader = cluster.peers.findIndex((p) => p.leader);
  if (leader < 0) throw new Error("the bench cluster has no leader");
  return { leader, follower: leader === 0 ? 1 : 0 };
}

async function commitRows(url: string, kv: BenchKv): Promise<void> {
  log("Raft commits (subscribe, map.set) beside the JetStream KV put");
  const nats = track(await startBenchCluster({ kind: "nats", peers: 3, natsUrl: url }));
  const memory = track(await startBenchCluster({ kind: "memory", peers: 3 }));
  const natsMaps = await openMaps(nats);
  const memoryMaps = await openMaps(memory);
  const n = roles(nats);
  const m = roles(memory);
  const toggler = (emitter: HamokEmitter<BenchEvents>): InterleavedOp => {
    const listener = () => {};
    return {
      run: () => emitter.subscribe("sub", listener),
      reset: () => emitter.unsubscribe("sub", listener),
    };
  };
  const setter = (map: HamokMap<string, Uint8Array>): InterleavedOp => ({
    run: (i) => map.set(MAP_KEYS[i % MAP_KEYS.length], RAW_PAYLOAD),
  });
  const { lead, follow } = threads!;
  const [kvPut, subFollower, subLeader, subMemory, setFollower, setLeader, setMemory, setLead, setFollow] =
    await sampleInterleaved([
      { run: (i) => kv.kv.put(MAP_KEYS[i % MAP_KEYS.length], RAW_PAYLOAD) },
      toggler(nats.emitters[n.follower]),
      toggler(nats.emitters[n.leader]),
      toggler(memory.emitters[m.follower]),
      setter(natsMaps[n.follower]),
      setter(natsMaps[n.leader]),
      setter(memoryMaps[m.follower]),
      setter(lead.map),
      setter(follow.map),
    ], COMMIT_LATENCY);
  const vsKv = (stats: LatencyStats, transport: string): Partial<Row> =>
    transport !== "memory" ? { target: "p50 ≤ KV put p50", met: stats.p50Us <= kvPut.p50Us } : {};
  rows.push({
    name: "JetStream KV put, R3 memory bucket",
    transport: "JetStream ×3",
    stats: kvPut,
    vsFloor: "latency",
  });
  for (
    const [name, stats, transport] of [
      ["subscribe from a follower", subFollower, "NATS"],
      ["subscribe from the leader", subLeader, "NATS"],
      ["subscribe from a follower", subMemory, "memory"],
      ["map.set from a follower", setFollower, "NATS"],
      ["map.set from the leader", setLeader, "NATS"],
      ["map.set from a follower", setMemory, "memory"],
      [`map.set from ${roleOf(lead)}`, setLead, THREADS],
      [`map.set from ${roleOf(follow)}`, setFollow, THREADS],
    ] as const
  ) {
    rows.push({ name: `${name}, 3 peers`, transport, stats, vsFloor: "latency", ...vsKv(stats, transport) });
  }
  notes.push(
    "subscribe: a peer alternately subscribes and unsubscribes one event; only `subscribe` is timed. From a " +
      "follower a command takes four one-way hops (forward to the leader, append, ack, commit notice) before " +
      "it is applied there; from the leader two.",
    "map.set: `HamokMap<string, Uint8Array>` with the default CBOR codecs, 100 keys in turn, 64-byte values; " +
      "the KV puts use the same keys and values. The throughput loops run after the latency rows, so each " +
      "peer's request-id dedup window (16384 ids) is full by then, as in any long-running cluster.",
  );

  log(`throughput of commits, ${CONCURRENCY} concurrent`);
  const loop = (ops: number) => ({ concurrency: CONCURRENCY, ops, warmupOps: Math.floor(ops / 10) });
  const kvRate = await closedLoop(
    (i) => kv.kv.put(MAP_KEYS[i % MAP_KEYS.length], RAW_PAYLOAD),
    loop(KV_THROUGHPUT_OPS),
  );
  rows.push(
    throughputRow(`JetStream KV put, R3 memory bucket, ${CONCURRENCY} concurrent`, "JetStream ×3", kvRate),
  );
  for (
    const [name, map, transport] of [
      ["map.set from a follower", natsMaps[n.follower], "NATS"],
      ["map.set from the leader", natsMaps[n.leader], "NATS"],
      ["map.set from a follower", memoryMaps[m.follower], "memory"],
      [`map.set from ${roleOf(lead)}`, lead.map, THREADS],
      [`map.set from ${roleOf(follow)}`, follow.map, THREADS],
    ] as const
  ) {
    const stats = await closedLoop(
      (i) => map.set(MAP_KEYS[i % MAP_KEYS.length], RAW_PAYLOAD),
      loop(SET_THROUGHPUT_OPS),
    );
    rows.push({
      ...throughputRow(`${name}, ${CONCURRENCY} concurrent`, transport, stats),
      ...(transport !== "memory"
        ? { target: "ops/s ≥ 2× KV put ops/s", met: stats.opsPerSec >= 2 * kvRate.opsPerSec }
        : {}),
    });
  }
  await nats.close();
  await memory.close();
}

/** Time from `join()` to the first leader (and to every peer joined) of three fresh peers, default config. */
async function joinTrial(kind: TransportKind, url: string): Promise<{ leaderMs: number; joinedMs: number }> {
  const transports = await makeTransports(kind, 3, url);
  const clusterId = `join-${kind}-${Math.random().toString(36).slice(2, 8)}`;
  const peers = transports.map((transport, i) =>
    new Hamok({ peerId: `${clusterId}-${i}`, clusterId, transport })
  );
  let leaderAt: number | undefined;
  for (const peer of peers) {
    peer.on("state-changed", (state) => {
      if (state === "leader" && leaderAt === undefined) leaderAt = performance.now();
    });
  }
  try {
    const start = performance.now();
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 20_000 })));
    const joinedAt = performance.now();
    if (leaderAt === undefined) throw new Error("joined without a leader");
    return { leaderMs: leaderAt - start, joinedMs: joinedAt - start };
  } finally {
    for (const peer of peers) peer.close();
    await Promise.all(transports.map((t) => t.close().catch(() => {})));
  }
}

async function joinRows(url: string): Promise<void> {
  log("join() -> first leader");
  for (const kind of ["nats", "memory"] as const) {
    const leader = new Float64Array(JOIN_TRIALS);
    const joined = new Float64Array(JOIN_TRIALS);
    for (let t = 0; t < JOIN_TRIALS; t++) {
      const trial = await joinTrial(kind, url);
      leader[t] = trial.leaderMs;
      joined[t] = trial.joinedMs;
    }
    const transport = kind === "nats" ? "NATS" : "memory";
    const leaderStats = summarize(leader);
    rows.push({
      name: "join() → first leader, 3 fresh peers",
      transport,
      stats: leaderStats,
      target: "≤ 1 s",
      met: leaderStats.p99Us <= 1_000_000,
    });
    rows.push({ name: "join() → all 3 peers joined", transport, stats: summarize(joined) });
  }
  notes.push(
    `join: ${JOIN_TRIALS} trials per transport, default timings (discoveryMs 300, tickMs 50, electionTicks 10); ` +
      "three peers call `join()` at once; with so few trials p99 is the maximum.",
  );
}

/** Kills the leader of a fresh 3-peer cluster and times until a survivor's `subscribe` resolves. */
async function failoverTrial(kind: TransportKind, url: string, trial: number): Promise<number> {
  const transports = await makeTransports(kind, 3, url);
  const clusterId = `failover-${kind}-${trial}-${Math.random().toString(36).slice(2, 8)}`;
  const peers = transports.map((transport, i) =>
    new Hamok({ peerId: `${clusterId}-${i}`, clusterId, transport })
  );
  try {
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 20_000 })));
    const leader = await settled(peers);
    const survivor = peers.find((p) => p !== leader)!;
    const emitter: HamokEmitter<BenchEvents> = survivor.createEmitter<BenchEvents>({
      emitterId: "failover",
      requestTimeoutInMs: 10_000,
    });
    await emitter.subscribe("s1", () => {}); // the write path works before the kill
    const start = performance.now();
    leader.close(); // abrupt: no leave, no hand-over
    void transports[peers.indexOf(leader)].close().catch(() => {});
    const deadline = start + 20_000;
    for (;;) {
      try {
        await emitter.subscribe("s2", () => {});
        return performance.now() - start;
      } catch (error) {
        if (performance.now() > deadline) throw error;
      }
    }
  } finally {
    for (const peer of peers) peer.close();
    await Promise.all(transports.map((t) => t.close().catch(() => {})));
  }
}

async function failoverRows(url: string): Promise<void> {
  log("leader killed -> writes accepted again");
  for (const kind of ["nats", "memory"] as const) {
    const samples = new Float64Array(FAILOVER_TRIALS);
    for (let t = 0; t < FAILOVER_TRIALS; t++) samples[t] = await failoverTrial(kind, url, t);
    const stats = summarize(samples);
    rows.push({
      name: "leader killed → a survivor's subscribe commits",
      transport: kind === "nats" ? "NATS" : "memory",
      stats,
      target: "≤ 1.5 s",
      met: stats.p99Us <= 1_500_000,
    });
  }
  notes.push(
    `failover: ${FAILOVER_TRIALS} trials per transport, default timings (election timeout 500–1000 ms); the ` +
      "leader is closed without leaving and a follower's `subscribe` is issued at once; the time is until it " +
      "resolves (it is retried if it fails); p99 is the maximum.",
  );
}

let floorRate: number | undefined;

// ------------------------------------------------------------------ table

function ratio(row: Row, floor: LatencyStats): string {
  if (row.vsFloor === "latency" && row.stats !== undefined) {
    return `${(row.stats.p50Us / floor.p50Us).toFixed(2)}×`;
  }
  if (row.vsFloor === "rate" && row.rate !== undefined && floorRate !== undefined) {
    return `${(row.rate / floorRate).toFixed(2)}× ops/s`;
  }
  return "—";
}

function renderTable(floor: LatencyStats): string {
  const lines = [
    "| row | transport | n | p50 | p99 | ops/s | vs floor | target | met |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | :---: |",
  ];
  for (const row of rows) {
    const rate = row.rate === undefined
      ? "—"
      : row.rateUnit === "ops/s"
      ? formatRate(row.rate)
      : `${formatRate(row.rate)} ${row.rateUnit}`;
    lines.push(
      `| ${row.name} | ${row.transport} | ${row.stats?.n ?? "—"} | ${formatUs(row.stats?.p50Us ?? NaN)} | ${
        formatUs(row.stats?.p99Us ?? NaN)
      } | ${rate} | ${ratio(row, floor)} | ${row.target ?? ""} | ${
        row.met === undefined ? "" : row.met ? "yes" : "**no**"
      } |`,
    );
  }
  return lines.join("\n");
}

/** Replaces what lies between the README's bench markers (adding the end marker if missing). */
function writeReadmeSection(section: string): void {
  const text = readFileSync(README, "utf8");
  const start = text.indexOf(README_START);
  if (start < 0) {
    log(`README.md has no ${README_START} marker; not updated`);
    return;
  }
  const from = start + README_START.length;
  const endAt = text.indexOf(README_END, from);
  const rest = endAt < 0 ? text.slice(from) : text.slice(endAt + README_END.length);
  writeFileSync(README, `${text.slice(0, from)}\n\n${section}\n\n${README_END}${rest}`);
  formatMarkdown(README);
  log("README.md updated");
}

/** Runs `deno fmt` on the written report so that `deno fmt --check` stays clean (best effort). */
function formatMarkdown(path: string): void {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  const bin = deno?.execPath() ?? new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  try {
    execFileSync(bin, ["fmt", "--quiet", path], { stdio: "ignore", env: { ...process.env, NO_COLOR: "1" } });
  } catch {
    log(`could not run deno fmt on ${path}; run \`deno fmt ${path}\` before committing it`);
  }
}

async function clusterKeyRows(url: string): Promise<void> {
  log("publish and map.set with and without a cluster key (interleaved)");
  const stats = await measureClusterKey(url, COMMIT_LATENCY);
  for (
    const [name, pair] of [
      ["publish, 2 remote subscribers", stats.publish],
      ["map.set from the leader, 3 peers", stats.setLeader],
      ["map.set from a follower, 3 peers", stats.setFollower],
    ] as const
  ) {
    const ratio = pair.keyed.p50Us / pair.plain.p50Us;
    rows.push({ name: `${name}, no cluster key`, transport: "NATS", stats: pair.plain, vsFloor: "latency" });
    rows.push({
      name: `${name}, cluster key`,
      transport: "NATS",
      stats: pair.keyed,
      vsFloor: "latency",
      target: `p50 ≤ 1.1× no key (${ratio.toFixed(2)}×)`,
      met: ratio <= 1.1,
    });
  }
  notes.push(
    "Cluster key rows: two three-peer clusters on the same nats-server, one with `clusterKey` (every " +
      "message sealed with HMAC-SHA-256 and checked on receipt), sampled interleaved in the same run.",
  );
}

async function durabilityRows(url: string): Promise<void> {
  log("durability: map.set with file storage beside memory and a three-member etcd (fsync), restart time");
  const restartEntries = quick ? 100_000 : 1_000_000;
  const d = await measureDurability(url, COMMIT_LATENCY, SET_THROUGHPUT_OPS, restartEntries);
  const ratio = d.latency.file.p50Us / d.latency.etcd.p50Us;
  rows.push({
    name: "etcd put, 3 members, fsync",
    transport: "etcd ×3",
    stats: d.latency.etcd,
    vsFloor: "latency",
  });
  rows.push({
    name: "map.set from the leader, 3 peers, file storage (always)",
    transport: "NATS",
    stats: d.latency.file,
    vsFloor: "latency",
    target: `p50 ≤ 0.6× etcd put p50 (${ratio.toFixed(2)}×)`,
    met: ratio <= 0.6,
  });
  rows.push({
    name: "map.set from the leader, 3 peers, memory storage (same run)",
    transport: "NATS",
    stats: d.latency.memory,
    vsFloor: "latency",
  });
  rows.push(
    throughputRow(`etcd put, 3 members, fsync, ${CONCURRENCY} concurrent`, "etcd ×3", d.throughput.etcd),
  );
  rows.push({
    ...throughputRow(
      `map.set from the leader, file storage (always), ${CONCURRENCY} concurrent`,
      "NATS",
      d.throughput.file,
    ),
    target: "ops/s ≥ 4× etcd put ops/s",
    met: d.throughput.file.opsPerSec >= 4 * d.throughput.etcd.opsPerSec,
  });
  rows.push(
    throughputRow(
      `map.set from the leader, memory storage, ${CONCURRENCY} concurrent`,
      "NATS",
      d.throughput.memory,
    ),
  );
  rows.push({
    name: `restart of a peer on ${
      restartEntries.toLocaleString("en-US")
    } entries (open, replay, apply, join)`,
    transport: "memory",
    rate: d.restart.ms,
    rateUnit: "ms",
  });
  notes.push(
    'Durability rows: three peers over NATS with data directories (`sync: "always"`, one fdatasync per ready ' +
      "batch on each peer), the same cluster in memory, and a three-member etcd 3.4 (its default fsync) on " +
      "loopback with data directories in a temporary folder, driven by the `etcd3` client from this process; " +
      "all sampled in the same run. The restart row times a one-peer cluster's new `Hamok` on a directory " +
      "filled with map sets (no snapshot) until `join()` resolved and the map was ready.",
  );
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = performance.now();
  const bin = findNatsServerBinary();
  const machine = machineInfo(bin);
  log(formatMachine(machine));
  natsServer = await startNatsServer();
  log(`nats-server pid ${natsServer.pid} at ${natsServer.url}`);
  const url = natsServer.url;
  const raw = track(await startRawEcho(url));
  jetStream = await startJetStreamCluster(3);
  log(`JetStream cluster pids ${jetStream.servers.map((s) => s.pid).join(", ")}`);
  const kv = await openBenchKv(jetStream.urls[0], "hamok_bench");
  running.push({ close: () => kv.connection.close() });
  log("clusters with two peers in worker threads");
  threads = {
    lead: track(await startWorkerCluster({ natsUrl: url, localId: "0", workers: 2 })),
    follow: track(await startWorkerCluster({ natsUrl: url, localId: "~", workers: 2 })),
  };

  const { floor } = await publishLatency(raw, url);
  await memoryPublishLatency();
  await throughput(raw, url);
  await notifyThroughput(url);
  await commitRows(url, kv);
  await clusterKeyRows(url);
  await durabilityRows(url);
  await joinRows(url);
  await failoverRows(url);

  const table = renderTable(floor);
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  const date = new Date().toISOString().slice(0, 10);
  const report = [
    `Machine: ${formatMachine(machine)}.`,
    "",
    table,
    "",
    `Measured ${date} in ${seconds} s by \`bench/report.ts\`${quick ? " (--quick)" : ""}. ` +
    'Transport "NATS" and "memory": all peers of a cluster run in this one JS thread (each NATS peer with ' +
    'its own connection); "NATS, 3 threads": the peer measured runs in this thread and the other two in ' +
    "worker threads, as three instances of a service would (the machine's cores are shared by them, the " +
    "nats-server and anything else running). One private nats-server on 127.0.0.1 carries every NATS row; " +
    "the floor's requester and responder are two connections in this thread. Latency rows: sequential calls after a warm-up, p50/p99 nearest-rank; rows of one group " +
    "are sampled interleaved (one call of each per round) so their ratios share machine conditions. " +
    `Throughput rows: a closed loop with ${CONCURRENCY} calls in flight; p50/p99 are per-call latencies under ` +
    'that load. "vs floor": p50 / floor p50 for latency rows, ops/s / floor ops/s for throughput rows. ' +
    'Events carry `(number, "payload")`; the raw and KV payload is 64 bytes.',
    "",
    ...notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
  process.stdout.write(`${report}\n`);
  if (outPath !== "-") {
    writeFileSync(outPath, `# Benchmark report\n\n${report}`);
    formatMarkdown(outPath);
    log(`written to ${outPath}`);
  }
  if (updateReadme) {
    const section = [
      `Latest \`deno task bench:report\` run (${date}${quick ? ", --quick" : ""}) on: ${
        formatMachine(machine)
      }.`,
      "",
      table,
      "",
      "Regenerate with `deno task bench:report --readme`. How each row is measured, and the notes of this run: " +
      "`bench/REPORT.md`; what bounds the rows that miss " +
      "their targets, with profiles and suggestions: `bench/ANALYSIS.md`.",
    ].join("\n");
    writeReadmeSection(section);
  }
}

/** Runs `bench/deploy.ts` (peers in separate processes) in a child of the same runtime; it writes its own file. */
function deployRows(): void {
  log("bench/deploy.ts: peers in separate processes");
  const script = new URL("./deploy.ts", import.meta.url).pathname;
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  const argv = [...(isDeno ? ["run", "-A", script] : [script]), ...(quick ? ["--quick"] : [])];
  const result = spawnSync(process.execPath, argv, { stdio: ["ignore", "ignore", "inherit"] });
  if (result.status !== 0) throw new Error(`bench/deploy.ts failed (status ${result.status})`);
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  exitCode = 1;
  console.error(error);
} finally {
  for (const resource of running.reverse()) await resource.close().catch(() => {});
  if (jetStream !== undefined) await jetStream.stop();
  if (natsServer !== undefined) await natsServer.stop();
}
if (runDeploy && exitCode === 0) {
  try {
    deployRows(); // after the clusters above are stopped: its peers get the machine to themselves
  } catch (error) {
    exitCode = 1;
    console.error(error);
  }
}
process.exit(exitCode);
