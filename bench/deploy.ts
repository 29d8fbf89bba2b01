/**
 * The bench in the shape of a deployment: every peer is its own OS process (`bench/_peer_process.ts`)
 * on one private nats-server on 127.0.0.1, as instances of a service would be. Measures, beside raw
 * NATS request/reply between two of the same processes in the same run (the floor):
 *
 * - publish to 2 subscribers (the subscribers in two other processes): p50/p99 and 64 in flight;
 * - `map.set` from the leader and from a follower: p50/p99 and 64 concurrent;
 * - CPU per replicated write, summed over the three peer processes (`process.cpuUsage()` deltas in each);
 * - `map.set` p50, 64-concurrent throughput from the leader and NATS messages per write (the server's
 *   `/varz` and `/connz` counters) at 3, 9 and 25 peers: the cluster of three grows by joins.
 *
 * Deno: `deno run -A bench/deploy.ts`. Bun: `bun bench/deploy.ts`. Flags: `--runtime deno|bun` (the
 * runtime of the peer processes; default: the one running this file), `--out <file>` (default
 * `bench/DEPLOY.md` for Deno peers, `bench/DEPLOY.bun.md` for Bun peers; `-` for stdout only),
 * `--quick` (fewer samples, about a minute), `--peers 3,9,25` (the cluster sizes of the scale rows),
 * `--profile` (also run a fresh three-peer cluster with `--cpu-prof` and report the leader's top
 * self-time items during the CPU-per-write loop), `--cpu-only <rounds>` (only the CPU-per-write loop from
 * the leader of three peers, that many rounds after a warm-up, each round's per-process figures and the
 * median on stdout; no report file; with `--profile` every peer runs under `--cpu-prof` and the profiles
 * are kept: the directory is logged; `--cpu-from follower` writes from a follower instead).
 *
 * Every child is stopped by PID at the end (SIGTERM, then SIGKILL), also when a step fails; the
 * nats-server too.
 *
 * @module
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { findNatsServerBinary, type NatsServer, startNatsServer } from "../tests/_helpers/nats_server.ts";
import { freePort } from "./_fixtures.ts";
import {
  formatMachine,
  formatRate,
  formatUs,
  type LatencyStats,
  machineInfo,
  type SampleOptions,
  type ThroughputStats,
} from "./_measure.ts";
import type { PeerProcessStart } from "./_peer_process.ts";

// ------------------------------------------------------------------ settings

type Runtime = "deno" | "bun";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..");
const CHILD_SCRIPT = join(HERE, "_peer_process.ts");
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const profile = args.includes("--profile");
const cpuOnly = flag("--cpu-only");
const thisRuntime: Runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" ? "bun" : "deno";
const runtime = parseRuntime(flag("--runtime") ?? thisRuntime);
const outFlag = flag("--out");
const outPath = outFlag ?? join(HERE, runtime === "bun" ? "DEPLOY.bun.md" : "DEPLOY.md");
const SIZES = (flag("--peers") ?? "3,9,25").split(",").map((s) => Number(s));
if (SIZES[0] !== 3 || SIZES.some((n) => !Number.isInteger(n) || n < 3)) {
  throw new Error("--peers: sizes of at least 3, the first one 3 (e.g. 3,9,25)");
}

const CONCURRENCY = 64;
const LATENCY: SampleOptions = quick ? { warmup: 50, samples: 300 } : { warmup: 500, samples: 3000 };
const SET_LATENCY: SampleOptions = quick ? { warmup: 30, samples: 200 } : { warmup: 200, samples: 1500 };
const PUBLISH_OPS = quick ? 3000 : 20_000;
const SET_OPS = quick ? 2000 : 10_000;
const SET_ROUNDS = quick ? 1 : 5;
/** Unmeasured 64-concurrent loops from each writer before the rounds (JIT and heap warm-up). */
const SET_WARMUPS = quick ? 1 : 4;
const CPU_OPS = quick ? 3000 : 20_000;
const SCALE_LATENCY: SampleOptions = quick ? { warmup: 20, samples: 100 } : { warmup: 100, samples: 1000 };
const SCALE_OPS = quick ? 1000 : 8000;
const IDLE_MS = quick ? 1000 : 2000;
const START_BATCH = 8;

function flag(name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

function parseRuntime(value: string): Runtime {
  if (value !== "deno" && value !== "bun") throw new Error(`--runtime must be deno or bun, not ${value}`);
  return value;
}

function log(message: string): void {
  process.stderr.write(`[bench:deploy] ${message}\n`);
}

/** The binary of `rt`: this process's own when it is that runtime, else node_modules/.bin, else PATH. */
function runtimeBinary(rt: Runtime): string {
  if (rt === thisRuntime) return process.execPath;
  const local = join(REPO, "node_modules", ".bin", rt);
  return existsSync(local) ? local : rt;
}

// ------------------------------------------------------------------ peer processes

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One peer process, driven over its stdin/stdout. */
class PeerChild {
  readonly peerId: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #stderr = "";
  #gone = false;

  constructor(peerId: string, child: ChildProcess) {
    this.peerId = peerId;
    this.child = child;
    this.pid = child.pid ?? -1;
    this.exited = new Promise<void>((resolve) => {
      const done = (): void => {
        this.#gone = true;
        live.delete(this);
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(new Error(`peer ${peerId} (pid ${this.pid}) exited; stderr: ${this.stderr}`));
        }
        this.#pending.clear();
        resolve();
      };
      child.once("exit", done);
      child.once("error", done);
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    child.stdin!.on("error", () => {}); // EPIPE once it is gone
  }

  get stderr(): string {
    return this.#stderr.trim();
  }

  onReply(message: { id: number; ok: boolean; result?: unknown; message?: string }): void {
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(new Error(`peer ${this.peerId}: ${message.message}`));
  }

  request<T>(cmd: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
    if (this.#gone) return Promise.reject(new Error(`peer ${this.peerId} is gone`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`peer ${this.peerId}: no reply to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.child.stdin!.write(JSON.stringify({ id, cmd, args }) + "\n");
    });
  }

  /** Asks the child to close; SIGTERM after 5 s, SIGKILL after 3 s more. */
  async stop(): Promise<void> {
    if (this.#gone) return;
    this.request("close", {}, 5000).catch(() => {});
    const wait = (ms: number) =>
      Promise.race([
        this.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
      ]);
    if (await wait(5000)) return;
    this.child.kill("SIGTERM");
    if (await wait(3000)) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

const live = new Set<PeerChild>();
process.on("exit", () => {
  for (const peer of live) {
    try {
      process.kill(peer.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  natsServer?.killSync();
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping`);
    process.exit(130);
  });
}

interface ReadyLine {
  type: "ready" | "fatal";
  pid?: number;
  leader?: boolean;
  message?: string;
}

/** Starts one peer process; resolves once it joined and opened the emitter and map. */
function startPeer(
  url: string,
  clusterId: string,
  peerId: string,
  subscribe: string[],
  cpuProfDir?: string,
): Promise<PeerChild> {
  // As a deployment would: the first three bootstrap together, later ones only join a running cluster
  // (with the defaults a peer that hears nobody within discoveryMs on a busy machine bootstraps its own).
  const first = Number(peerId.slice(1)) < 3;
  const start: PeerProcessStart = {
    natsUrl: url,
    peerId,
    clusterId,
    subscribe,
    joinTimeoutMs: 120_000,
    bootstrap: first ? "auto" : "never",
    expectedPeers: 3,
  };
  const prof = cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`];
  const argv = runtime === "deno"
    ? ["run", "-A", "--quiet", ...prof, CHILD_SCRIPT, JSON.stringify(start)]
    : [...prof, ...(prof.length > 0 ? ["--cpu-prof-interval=250"] : []), CHILD_SCRIPT, JSON.stringify(start)];
  const child = spawn(runtimeBinary(runtime), argv, {
    cwd: REPO,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const peer = new PeerChild(peerId, child);
  live.add(peer);
  return new Promise<PeerChild>((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => {
      if (ready) return;
      ready = true;
      reject(new Error(`peer ${peerId}: not ready within 150 s; stderr: ${peer.stderr}`));
    }, 150_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let message: ReadyLine & { id?: number; ok?: boolean };
      try {
        message = JSON.parse(line);
      } catch {
        return;
      }
      if (message.id !== undefined && (message as { type?: string }).type === "reply") {
        peer.onReply(message as { id: number; ok: boolean });
      } else if (!ready && message.type === "ready") {
        ready = true;
        clearTimeout(timer);
        resolve(peer);
      } else if (!ready && message.type === "fatal") {
        ready = true;
        clearTimeout(timer);
        reject(new Error(`peer ${peerId}: ${message.message}`));
      }
    });
    void peer.exited.then(() => {
      if (ready) return;
      ready = true;
      clearTimeout(timer);
      reject(new Error(`peer ${peerId} exited before ready; stderr: ${peer.stderr}`));
    });
  });
}

/** Starts peers `from`..`to-1` (ids `p<i>`), at most {@linkcode START_BATCH} starting at a time. */
async function startPeers(
  url: string,
  clusterId: string,
  from: number,
  to: number,
  subscribe: (i: number) => string[],
  cpuProfDir?: string,
): Promise<PeerChild[]> {
  const started: PeerChild[] = [];
  for (let i = from; i < to; i += START_BATCH) {
    const batch: Promise<PeerChild>[] = [];
    for (let k = i; k < Math.min(to, i + START_BATCH); k++) {
      batch.push(startPeer(url, clusterId, `p${k}`, subscribe(k), cpuProfDir));
    }
    started.push(...await Promise.all(batch));
  }
  return started;
}

interface PeerStatusReply {
  leader: boolean;
  role: string;
  leaderId: string | null;
  members: number;
  voters: number;
  appliedIndex: number;
  /** The peer's term. */
  term: number;
  /** Messages it dropped, all reasons. */
  dropped: number;
}

/** Waits until exactly one peer leads and every peer sees `size` members; returns the leader. */
async function settle(peers: PeerChild[], size: number): Promise<{ leader: PeerChild; voters: number }> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    const statuses = await Promise.all(peers.map((p) => p.request<PeerStatusReply>("status")));
    const leaders = statuses.filter((s) => s.leader);
    if (leaders.length === 1 && statuses.every((s) => s.members === size && s.leaderId !== null)) {
      const at = statuses.indexOf(leaders[0]);
      return { leader: peers[at], voters: leaders[0].voters };
    }
    if (performance.now() > deadline) {
      throw new Error(`cluster of ${size} did not settle: ${JSON.stringify(statuses)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ------------------------------------------------------------------ nats-server counters

let natsServer: NatsServer | undefined;
let monitorPort = 0;

interface Counters {
  inMsgs: number;
  outMsgs: number;
  byName: Map<string, { inMsgs: number; outMsgs: number }>;
}

async function counters(): Promise<Counters> {
  const base = `http://127.0.0.1:${monitorPort}`;
  const varz = await (await fetch(`${base}/varz`)).json() as { in_msgs: number; out_msgs: number };
  const connz = await (await fetch(`${base}/connz?limit=4096`)).json() as {
    connections?: { name?: string; in_msgs: number; out_msgs: number }[];
  };
  const byName = new Map<string, { inMsgs: number; outMsgs: number }>();
  for (const c of connz.connections ?? []) {
    if (c.name !== undefined) byName.set(c.name, { inMsgs: c.in_msgs, outMsgs: c.out_msgs });
  }
  return { inMsgs: varz.in_msgs, outMsgs: varz.out_msgs, byName };
}

/** Messages per write between two counter readings: all published, all delivered, the leader's published. */
interface MessageCost {
  inPerWrite: number;
  outPerWrite: number;
  leaderPerWrite: number;
  /** Messages delivered to the leader per write (its acknowledgements, forwarded proposals...). */
  leaderReceivedPerWrite: number;
}

function messageCost(before: Counters, after: Counters, leaderId: string, writes: number): MessageCost {
  const lb = before.byName.get(leaderId)?.inMsgs ?? NaN;
  const la = after.byName.get(leaderId)?.inMsgs ?? NaN;
  return {
    inPerWrite: (after.inMsgs - before.inMsgs) / writes,
    outPerWrite: (after.outMsgs - before.outMsgs) / writes,
    leaderPerWrite: (la - lb) / writes,
    leaderReceivedPerWrite: ((after.byName.get(leaderId)?.outMsgs ?? NaN) -
      (before.byName.get(leaderId)?.outMsgs ?? NaN)) / writes,
  };
}

/** The nats-server's CPU time so far (user + system), µs, from /proc (Linux); NaN elsewhere. */
function natsServerCpuUs(): number {
  try {
    const stat = readFileSync(`/proc/${natsServer!.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the command), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) * (1_000_000 / CLOCK_TICKS);
  } catch {
    return NaN;
  }
}

/** `getconf CLK_TCK` (100 on Linux almost everywhere). */
const CLOCK_TICKS: number = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// ------------------------------------------------------------------ rows

interface Row {
  name: string;
  stats?: LatencyStats;
  rate?: number;
  unit?: string;
  vsFloor?: string;
  target?: string;
  met?: boolean;
}

interface ScaleRow {
  peers: number;
  voters: number;
  seq: LatencyStats;
  loop: ThroughputStats;
  seqMessages: MessageCost;
  loopMessages: MessageCost;
  idleInPerSec: number;
  /** The leader's published and received messages per second while idle. */
  idleLeaderPerSec: { out: number; in: number };
  /** CPU of every peer process per second without writes, summed, ms/s. */
  idleCpuMsPerSec: number;
  startSeconds: number;
  /** CPU of every peer process per write in the closed loop, summed, µs. */
  cpuAllUs: number;
  /** The leader's share of it, µs. */
  cpuLeaderUs: number;
  /** The nats-server's CPU per write in the closed loop, µs (NaN where /proc is not readable). */
  cpuServerUs: number;
}

const rows: Row[] = [];
const scaleRows: ScaleRow[] = [];
const notes: string[] = [];

const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;

function latencyRow(name: string, stats: LatencyStats, floor?: LatencyStats): Row {
  return { name, stats, vsFloor: floor === undefined ? undefined : ratio(stats.p50Us, floor.p50Us) };
}

function rateRow(name: string, stats: ThroughputStats, floor?: ThroughputStats): Row {
  return {
    name,
    stats,
    rate: stats.opsPerSec,
    unit: "ops/s",
    vsFloor: floor === undefined ? undefined : `${ratio(stats.opsPerSec, floor.opsPerSec)} ops/s`,
  };
}

function loopArgs(op: string, ops: number): Record<string, unknown> {
  return { op, concurrency: CONCURRENCY, ops, warmupOps: Math.floor(ops / 10) };
}

async function cpuOf(peers: PeerChild[]): Promise<number[]> {
  return (await Promise.all(peers.map((p) => p.request<{ cpuUs: number }>("cpu")))).map((r) => r.cpuUs);
}

async function syncAll(peers: PeerChild[]): Promise<void> {
  await Promise.all(peers.map((p) => p.request("sync", { timeoutMs: 60_000 })));
}

/** A closed loop of `map.set` from `from`, with the CPU of `peers` around it: µs per write, summed. */
async function setLoopWithCpu(
  from: PeerChild,
  peers: PeerChild[],
  ops: number,
): Promise<
  { stats: ThroughputStats; cpuPerWriteUs: number; perPeerUs: number[]; serverUs: number; msgs: MessageCost }
> {
  await syncAll(peers);
  const before = await cpuOf(peers);
  const serverBefore = natsServerCpuUs();
  const countersBefore = await counters();
  const loop = loopArgs("set", ops);
  const stats = await from.request<ThroughputStats>("loop", loop);
  await syncAll(peers);
  const countersAfter = await counters();
  const after = await cpuOf(peers);
  const serverUs = natsServerCpuUs() - serverBefore;
  const writes = ops + (loop.warmupOps as number);
  const perPeerUs = after.map((a, i) => (a - before[i]) / writes);
  return {
    stats,
    cpuPerWriteUs: perPeerUs.reduce((s, v) => s + v, 0),
    perPeerUs,
    serverUs: serverUs / writes,
    msgs: messageCost(countersBefore, countersAfter, from.peerId, writes),
  };
}

/** The rows of the three-peer cluster: publish, map.set from the leader and a follower, CPU per write. */
async function threePeerRows(peers: PeerChild[], leader: PeerChild): Promise<void> {
  const [publisher, sub1] = peers;
  const follower = peers.find((p) => p !== leader)!;
  const leaderAt = peers.indexOf(leader);
  notes.push(
    `Three peers p0, p1, p2; the leader was ${leader.peerId}. p1 and p2 subscribe the event \`s2\`; p0 ` +
      `publishes it (p0 ${
        leaderAt === 0 ? "is" : "is not"
      } the leader; a publish does not go through Raft). ` +
      `The floor is a raw NATS request from the measuring process to an echo in another peer process (its ` +
      `own connections, 64-byte payload), sampled interleaved with the row it is beside. The reference row is the raw shape of a publish to two subscribers: ` +
      "one NATS request (`requestMany`) on a subject both subscribers' processes answer, done when both replied.",
  );

  log("publish to 2 subscribers beside the floor");
  const [floor, fanout, publish] = await publisher.request<LatencyStats[]>("sample", {
    ops: [`raw:${sub1.peerId}`, "fanout:s2:2", "publish:s2"],
    ...LATENCY,
  });
  rows.push(latencyRow("raw NATS request/reply (floor), from the publisher", floor, floor));
  rows.push(
    latencyRow("raw NATS request answered by both subscribers' processes (reference)", fanout, floor),
  );
  rows.push({
    ...latencyRow("publish, 2 subscribers in other processes", publish, floor),
    target: "p50 ≤ 1.1× floor",
    met: publish.p50Us <= 1.1 * floor.p50Us,
  });
  const floorLoop = await publisher.request<ThroughputStats>(
    "loop",
    loopArgs(`raw:${sub1.peerId}`, PUBLISH_OPS),
  );
  const fanoutLoop = await publisher.request<ThroughputStats>("loop", loopArgs("fanout:s2:2", PUBLISH_OPS));
  const publishLoop = await publisher.request<ThroughputStats>("loop", loopArgs("publish:s2", PUBLISH_OPS));
  rows.push(rateRow(`raw NATS request/reply (floor), ${CONCURRENCY} in flight`, floorLoop, floorLoop));
  rows.push(
    rateRow(`raw NATS request answered by both, ${CONCURRENCY} in flight (reference)`, fanoutLoop, floorLoop),
  );
  rows.push(rateRow(`publish, 2 subscribers, ${CONCURRENCY} in flight`, publishLoop, floorLoop));

  log("map.set from the leader and from a follower beside the floor");
  const [leaderFloor, leaderSet] = await leader.request<LatencyStats[]>("sample", {
    ops: [`raw:${follower.peerId}`, "set"],
    ...SET_LATENCY,
  });
  const [followerFloor, followerSet] = await follower.request<LatencyStats[]>("sample", {
    ops: [`raw:${leader.peerId}`, "set"],
    ...SET_LATENCY,
  });
  rows.push(latencyRow("raw NATS request/reply (floor), from the leader", leaderFloor, leaderFloor));
  rows.push(latencyRow("map.set from the leader", leaderSet, leaderFloor));
  rows.push(latencyRow("raw NATS request/reply (floor), from a follower", followerFloor, followerFloor));
  rows.push(latencyRow("map.set from a follower", followerSet, followerFloor));

  log(`map.set ${CONCURRENCY} concurrent from the leader and a follower, CPU of the three processes`);
  // Warm both paths up, then alternate leader and follower rounds; the median round of each counts.
  // (With one warm-up loop each, a follower's rounds still rose round after round: 37k, 41k, 47k ops/s.)
  for (let i = 0; i < SET_WARMUPS; i++) {
    await leader.request("loop", loopArgs("set", SET_OPS));
    await follower.request("loop", loopArgs("set", SET_OPS));
  }
  const leaderRounds: Awaited<ReturnType<typeof setLoopWithCpu>>[] = [];
  const followerRounds: Awaited<ReturnType<typeof setLoopWithCpu>>[] = [];
  for (let round = 0; round < SET_ROUNDS; round++) {
    leaderRounds.push(await setLoopWithCpu(leader, peers, SET_OPS));
    followerRounds.push(await setLoopWithCpu(follower, peers, SET_OPS));
  }
  const median = <T extends { stats: ThroughputStats }>(list: T[]): T =>
    list.slice().sort((a, b) => a.stats.opsPerSec - b.stats.opsPerSec)[Math.floor(list.length / 2)];
  const fromLeader = median(leaderRounds);
  const fromFollower = median(followerRounds);
  const roundRates = (list: { stats: ThroughputStats }[]) =>
    list.map((r) => r.stats.opsPerSec.toFixed(0)).join(", ");
  const msgs = (m: MessageCost) =>
    `${m.inPerWrite.toFixed(2)} published (${m.leaderPerWrite.toFixed(2)} by it)`;
  notes.push(
    `NATS messages per write in the ${CONCURRENCY}-concurrent loops (median rounds): from the leader ` +
      `${msgs(fromLeader.msgs)}, from a follower ${msgs(fromFollower.msgs)}.`,
  );
  notes.push(
    `${CONCURRENCY}-concurrent \`map.set\`: after ${SET_WARMUPS} unmeasured loop(s) from each, ${SET_ROUNDS} round(s) of ` +
      `${
        (SET_OPS * 1.1).toLocaleString("en-US")
      } sets, leader and follower alternating; the median round is ` +
      `shown (leader ops/s: ${roundRates(leaderRounds)}; follower: ${roundRates(followerRounds)}).`,
  );
  rows.push(rateRow(`map.set from the leader, ${CONCURRENCY} concurrent`, fromLeader.stats, floorLoop));
  const followerShare = fromFollower.stats.opsPerSec / fromLeader.stats.opsPerSec;
  rows.push({
    ...rateRow(`map.set from a follower, ${CONCURRENCY} concurrent`, fromFollower.stats, floorLoop),
    target: `ops/s ≥ 0.9× leader's (${followerShare.toFixed(2)}×)`,
    met: followerShare >= 0.9,
  });

  const cpu = await setLoopWithCpu(leader, peers, CPU_OPS);
  const perPeer = (r: { perPeerUs: number[] }) =>
    r.perPeerUs.map((us, i) => `${peers[i].peerId}${peers[i] === leader ? " (leader)" : ""} ${us.toFixed(1)}`)
      .join(", ");
  rows.push({
    name: `CPU per replicated write, 3 processes summed (map.set from the leader, ${CONCURRENCY} concurrent)`,
    rate: cpu.cpuPerWriteUs,
    unit: "µs/write",
    target: "≤ 25 µs/write",
    met: cpu.cpuPerWriteUs <= 25,
  });
  rows.push({
    name: `CPU per replicated write, 3 processes summed (map.set from a follower, ${CONCURRENCY} concurrent)`,
    rate: fromFollower.cpuPerWriteUs,
    unit: "µs/write",
  });
  notes.push(
    `CPU per write: \`process.cpuUsage()\` (user + system) of each peer process before and after a closed ` +
      `loop of ${(CPU_OPS * 1.1).toLocaleString("en-US")} sets (warm-up included) at ${
        cpu.stats.opsPerSec.toFixed(0)
      } ` +
      `ops/s and until every peer applied them, divided by the writes; per process, µs: ${perPeer(cpu)}. ` +
      `From a follower (${fromFollower.stats.opsPerSec.toFixed(0)} ops/s): ${perPeer(fromFollower)}. ` +
      `The nats-server's own CPU is not in these figures: ${cpu.serverUs.toFixed(1)} µs per write from the ` +
      `leader, ${fromFollower.serverUs.toFixed(1)} from a follower (utime + stime from /proc, 10 ms ticks).`,
  );
}

/** The scale row of the cluster as it is now: idle messages, sequential sets, a closed loop. */
async function scaleRow(peers: PeerChild[], startSeconds: number): Promise<void> {
  const { leader, voters } = await settle(peers, peers.length);
  log(`scale row at ${peers.length} peers (leader ${leader.peerId}, ${voters} voters)`);
  await syncAll(peers);
  const idleBefore = await counters();
  const idleCpuBefore = await cpuOf(peers);
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  const idleCpuAfter = await cpuOf(peers);
  const idleAfter = await counters();
  const idleCpuMsPerSec = idleCpuAfter.reduce((sum, v, i) => sum + v - idleCpuBefore[i], 0) / IDLE_MS;
  const idleInPerSec = (idleAfter.inMsgs - idleBefore.inMsgs) / (IDLE_MS / 1000);
  const idleLeader = messageCost(idleBefore, idleAfter, leader.peerId, IDLE_MS / 1000);

  const seqBefore = await counters();
  const [seq] = await leader.request<LatencyStats[]>("sample", { ops: ["set"], ...SCALE_LATENCY });
  const seqAfter = await counters();
  const seqWrites = SCALE_LATENCY.warmup + seq.n;
  const loop = loopArgs("set", SCALE_OPS);
  const cpuBefore = await cpuOf(peers);
  const serverBefore = natsServerCpuUs();
  const loopBefore = await counters();
  const stats = await leader.request<ThroughputStats>("loop", loop);
  const loopAfter = await counters();
  await syncAll(peers);
  const cpuAfter = await cpuOf(peers);
  const serverAfter = natsServerCpuUs();
  const loopWrites = SCALE_OPS + (loop.warmupOps as number);
  const leaderAt = peers.indexOf(leader);
  const cpuDeltas = cpuAfter.map((a, i) => a - cpuBefore[i]);
  scaleRows.push({
    peers: peers.length,
    voters,
    seq,
    loop: stats,
    seqMessages: messageCost(seqBefore, seqAfter, leader.peerId, seqWrites),
    loopMessages: messageCost(loopBefore, loopAfter, leader.peerId, loopWrites),
    idleInPerSec,
    idleLeaderPerSec: { out: idleLeader.leaderPerWrite, in: idleLeader.leaderReceivedPerWrite },
    idleCpuMsPerSec,
    startSeconds,
    cpuAllUs: cpuDeltas.reduce((sum, v) => sum + v, 0) / loopWrites,
    cpuLeaderUs: cpuDeltas[leaderAt] / loopWrites,
    cpuServerUs: (serverAfter - serverBefore) / loopWrites,
  });
}

// ------------------------------------------------------------------ CPU profile

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time by function in the window between the first and the last sample of `deployProfileMark`. */
function topSelfTime(path: string, top: number): { items: [string, number][]; windowMs: number } {
  const prof = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const times: number[] = [];
  let t = 0;
  for (const d of prof.timeDeltas) times.push(t += d);
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const marked = new Map<number, boolean>();
  const inMark = (id: number | undefined): boolean => {
    if (id === undefined) return false;
    let known = marked.get(id);
    if (known === undefined) {
      // The spin may be inlined into the command's arrow (`mark` in _peer_process.ts).
      const frame = nodes.get(id)?.callFrame;
      known = frame?.functionName === "deployProfileMark" ||
        (frame?.functionName === "mark" && frame.url.endsWith("_peer_process.ts")) || inMark(parent.get(id));
      marked.set(id, known);
    }
    return known;
  };
  const isMark = (i: number) => inMark(prof.samples[i]);
  // The window: from the end of the first run of mark samples to the start of the last run.
  let first = -1;
  let last = -1;
  for (let i = 0; i < prof.samples.length; i++) {
    if (!isMark(i)) continue;
    if (first < 0 || first === i - 1) first = i;
    else break;
  }
  for (let i = prof.samples.length - 1; i > first; i--) {
    if (!isMark(i)) continue;
    if (last < 0 || last === i + 1) last = i;
    else break;
  }
  if (first < 0 || last < 0) throw new Error(`not two sampled calls of deployProfileMark in ${path}`);
  const self = new Map<string, number>();
  let total = 0;
  for (let i = first; i < last; i++) {
    if (isMark(i)) continue;
    const frame = nodes.get(prof.samples[i])!.callFrame;
    const dt = times[i + 1] - times[i];
    const file = frame.url.split("/").slice(-2).join("/");
    const key = frame.url === ""
      ? frame.functionName || "(anonymous)"
      : `${frame.functionName || "(anonymous)"} (${file}:${frame.lineNumber + 1})`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const items = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, v]) => [k, v / total] as [string, number]);
  return { items, windowMs: total / 1000 };
}

async function profileRun(url: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "hamok-deploy-prof-"));
  log(`profile run: a fresh 3-peer cluster with --cpu-prof (${dir})`);
  const peers = await startPeers(url, `deploy-prof-${Date.now()}`, 0, 3, () => [], dir);
  try {
    const { leader } = await settle(peers, 3);
    await leader.request("loop", loopArgs("set", Math.floor(CPU_OPS / 4))); // warm-up
    await syncAll(peers);
    await Promise.all(peers.map((p) => p.request("mark")));
    const run = await setLoopWithCpu(leader, peers, CPU_OPS);
    await Promise.all(peers.map((p) => p.request("mark")));
    for (const p of peers) await p.stop();
    const file = readdirSync(dir).find((f) => f.includes(`.${leader.pid}.`) && f.endsWith(".cpuprofile"));
    if (file === undefined) throw new Error(`no profile of pid ${leader.pid} in ${dir}: ${readdirSync(dir)}`);
    const { items, windowMs } = topSelfTime(join(dir, file), 15);
    notes.push(
      `Profile (\`--cpu-prof\`, ${runtime}) of the leader during ${
        (CPU_OPS * 1.1).toLocaleString("en-US")
      } ` +
        `sets from it, ${CONCURRENCY} concurrent (${
          run.stats.opsPerSec.toFixed(0)
        } ops/s under the profiler, ` +
        `${run.cpuPerWriteUs.toFixed(1)} µs CPU per write over the three processes; ${
          windowMs.toFixed(0)
        } ms ` +
        `of samples in the window; the profiler samples wall time, so on an oversubscribed machine a thread ` +
        `preempted inside a syscall, e.g. right after its socket write woke the nats-server, is counted there). ` +
        `Top self time: ` +
        items.map(([name, share]) => `${name} ${(share * 100).toFixed(1)} %`).join("; ") + ".",
    );
    if (process.env.HAMOK_DEPLOY_KEEP_PROFILE === undefined) rmSync(dir, { recursive: true, force: true });
    else log(`profiles kept in ${dir}`);
  } finally {
    for (const p of peers) await p.stop();
  }
}

// ------------------------------------------------------------------ report

function renderMain(): string {
  const lines = [
    "| row | n | p50 | p99 | rate | vs floor | target | met |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | :---: |",
  ];
  for (const r of rows) {
    const rate = r.rate === undefined
      ? "—"
      : r.unit === "ops/s"
      ? formatRate(r.rate)
      : `${r.rate.toFixed(1)} ${r.unit}`;
    lines.push(
      `| ${r.name} | ${r.stats?.n ?? "—"} | ${formatUs(r.stats?.p50Us ?? NaN)} | ${
        formatUs(r.stats?.p99Us ?? NaN)
      } | ${rate} | ${r.vsFloor ?? "—"} | ${r.target ?? ""} | ${
        r.met === undefined ? "" : r.met ? "yes" : "**no**"
      } |`,
    );
  }
  return lines.join("\n");
}

function renderScale(): { table: string; targets: string } {
  const base = scaleRows[0];
  const cores = cpus().length;
  const lines = [
    "| peers | voters | set p50 | set p99 | 64 concurrent ops/s | vs 3 peers | msgs/write, sequential: all in / all out / leader's out / leader's in | msgs/write, 64 concurrent: all in / all out / leader's out / leader's in | idle: msgs/s in (leader's out / in), CPU ms/s of all peers | CPU µs/write, 64 concurrent: all peers / leader / nats-server |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const m = (c: MessageCost) =>
    `${c.inPerWrite.toFixed(2)} / ${c.outPerWrite.toFixed(2)} / ${c.leaderPerWrite.toFixed(2)} / ${
      c.leaderReceivedPerWrite.toFixed(2)
    }`;
  for (const r of scaleRows) {
    lines.push(
      `| ${r.peers} | ${r.voters} | ${formatUs(r.seq.p50Us)} | ${formatUs(r.seq.p99Us)} | ${
        formatRate(r.loop.opsPerSec)
      } | ${ratio(r.loop.opsPerSec, base.loop.opsPerSec)} | ${m(r.seqMessages)} | ${m(r.loopMessages)} | ${
        formatRate(r.idleInPerSec)
      } (${r.idleLeaderPerSec.out.toFixed(0)} / ${r.idleLeaderPerSec.in.toFixed(0)}), ${
        r.idleCpuMsPerSec.toFixed(0)
      } | ${r.cpuAllUs.toFixed(0)} / ${r.cpuLeaderUs.toFixed(0)} / ${r.cpuServerUs.toFixed(0)} |`,
    );
  }
  const largest = scaleRows[scaleRows.length - 1];
  const share = largest.loop.opsPerSec / base.loop.opsPerSec;
  // Compared at the same number of voters: with three, followers commit on the append and the leader
  // sends no commit news, so the 3-peer figure is lower than any five-voter one.
  const ref = scaleRows.find((r) => r.voters === largest.voters) ?? base;
  const growth = largest.seqMessages.leaderPerWrite / ref.seqMessages.leaderPerWrite;
  const targets = [
    `- At ${largest.peers} peers, ${CONCURRENCY}-concurrent \`map.set\` from the leader ≥ 0.7× the 3-peer ` +
    `figure: ${share.toFixed(2)}× — **${share >= 0.7 ? "met" : "not met"}**.`,
    `- The leader's messages per sequential write O(1) in N (taken as: at ${largest.peers} peers within 1.5× ` +
    `of ${ref.peers} peers, the smallest size with as many voters (${ref.voters}), where a cost linear in N ` +
    `would be ${
      ((largest.peers - 1) / (ref.peers - 1)).toFixed(1)
    }×; with three voters the followers commit ` +
    `on the append and the leader sends no commit news): ` +
    scaleRows.map((r) => `${r.seqMessages.leaderPerWrite.toFixed(2)} at ${r.peers}`).join(", ") +
    ` (${growth.toFixed(2)}×) — **${growth <= 1.5 ? "met" : "not met"}**.`,
    `- The machine's bound on the closed loops: ${cores} cores × 1 s / (CPU per write of all peer processes ` +
    `and the nats-server) = ` +
    scaleRows.map((r) =>
      `${
        formatRate((cores * 1e6) / (r.cpuAllUs + (Number.isNaN(r.cpuServerUs) ? 0 : r.cpuServerUs)))
      } ops/s ` +
      `at ${r.peers}`
    ).join(", ") +
    ` (measured: ${scaleRows.map((r) => formatRate(r.loop.opsPerSec)).join(", ")}); the leader's own ` +
    `bound, 1 s / its CPU per write, as if it had a core to itself: ` +
    scaleRows.map((r) => `${formatRate(1e6 / r.cpuLeaderUs)} ops/s at ${r.peers}`).join(", ") + ".",
  ].join("\n");
  return { table: lines.join("\n"), targets };
}

function runtimeVersion(rt: Runtime): string {
  try {
    const text = execFileSync(runtimeBinary(rt), ["--version"], { encoding: "utf8" }).trim().split("\n")[0];
    return rt === "bun" ? `Bun ${text}` : text.replace(/^deno/, "Deno");
  } catch {
    return rt;
  }
}

/** The commit measured: git's HEAD (and whether src/ has uncommitted changes), else `HAMOK_BENCH_COMMIT`. */
function codeVersion(): string {
  try {
    const head = execFileSync("git", ["-C", REPO, "rev-parse", "--short", "HEAD"], { encoding: "utf8" })
      .trim();
    const dirty = execFileSync("git", ["-C", REPO, "status", "--porcelain", "--", "src"], {
      encoding: "utf8",
    });
    return dirty.trim().length > 0 ? `${head} with uncommitted changes in src/` : head;
  } catch {
    return process.env.HAMOK_BENCH_COMMIT ?? "unknown";
  }
}

/** Runs `deno fmt` on the written report so that `deno fmt --check` stays clean (best effort). */
function formatMarkdown(path: string): void {
  const bin = runtimeBinary("deno");
  try {
    execFileSync(bin, ["fmt", "--quiet", path], { stdio: "ignore", env: { ...process.env, NO_COLOR: "1" } });
  } catch {
    log(`could not run deno fmt on ${path}`);
  }
}

// ------------------------------------------------------------------ main

/** `--cpu-only <rounds>`: only the CPU per write from the leader of three peers, round by round. */
async function cpuOnlyRun(url: string, rounds: number): Promise<void> {
  const dir = profile ? mkdtempSync(join(tmpdir(), "hamok-deploy-prof-")) : undefined;
  const peers = await startPeers(url, `deploy-cpu-${Date.now()}`, 0, 3, () => [], dir);
  const { leader: theLeader } = await settle(peers, 3);
  // --cpu-from follower: the writes come from a follower (they are forwarded to the leader)
  const leader = flag("--cpu-from") === "follower" ? peers.find((p) => p !== theLeader)! : theLeader;
  for (let i = 0; i < 5; i++) await leader.request("loop", loopArgs("set", CPU_OPS)); // warm-up (JIT, heap)
  const sums: number[] = [];
  if (dir !== undefined) await Promise.all(peers.map((p) => p.request("mark")));
  for (let round = 0; round < rounds; round++) {
    const run = await setLoopWithCpu(leader, peers, CPU_OPS);
    sums.push(run.cpuPerWriteUs);
    const each = run.perPeerUs.map((us, i) =>
      `${peers[i].peerId}${peers[i] === theLeader ? "*" : ""}${peers[i] === leader ? "w" : ""} ${
        us.toFixed(1)
      }`
    );
    log(
      `round ${round + 1}: ${run.cpuPerWriteUs.toFixed(1)} µs/write (${each.join(", ")}), ` +
        `${run.stats.opsPerSec.toFixed(0)} ops/s, nats-server ${
          run.serverUs.toFixed(1)
        } µs, NATS messages per write ` +
        `${run.msgs.inPerWrite.toFixed(2)} published (${
          run.msgs.leaderPerWrite.toFixed(2)
        } by the writer), ` +
        `${run.msgs.outPerWrite.toFixed(2)} delivered, load ${loadavg()[0].toFixed(2)}`,
    );
  }
  if (dir !== undefined) await Promise.all(peers.map((p) => p.request("mark")));
  const after = await Promise.all(peers.map((p) => p.request<PeerStatusReply>("status")));
  log(
    `terms ${after.map((s) => s.term).join(", ")}; messages dropped ${
      after.map((s) => s.dropped).join(", ")
    }`,
  );
  for (const p of peers) await p.stop();
  const sorted = sums.slice().sort((a, b) => a - b);
  log(`median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} µs/write over ${rounds} rounds`);
  if (dir !== undefined) log(`profiles in ${dir} (leader pid ${theLeader.pid}, writer pid ${leader.pid})`);
}

async function main(): Promise<void> {
  const started = performance.now();
  const bin = findNatsServerBinary();
  const machine = machineInfo(bin);
  log(formatMachine(machine));
  monitorPort = await freePort();
  natsServer = await startNatsServer({ extraArgs: ["-m", String(monitorPort)] });
  log(`nats-server pid ${natsServer.pid} at ${natsServer.url}, monitoring on 127.0.0.1:${monitorPort}`);
  const url = natsServer.url;
  const clusterId = `deploy-${Math.random().toString(36).slice(2, 8)}`;
  if (cpuOnly !== undefined) return await cpuOnlyRun(url, Math.max(1, Number(cpuOnly) || 1));

  log(`starting 3 ${runtime} peer processes`);
  let t0 = performance.now();
  const peers = await startPeers(url, clusterId, 0, 3, (i) => (i === 0 ? [] : ["s2"]));
  let startSeconds = (performance.now() - t0) / 1000;
  log(`pids ${peers.map((p) => p.pid).join(", ")}`);
  const { leader } = await settle(peers, 3);
  await threePeerRows(peers, leader);
  await scaleRow(peers, startSeconds);
  for (const size of SIZES.slice(1)) {
    if (size <= peers.length) continue;
    log(`growing to ${size} peers`);
    t0 = performance.now();
    peers.push(...await startPeers(url, clusterId, peers.length, size, () => []));
    startSeconds = (performance.now() - t0) / 1000;
    await scaleRow(peers, startSeconds);
  }
  for (const p of peers) await p.stop();
  if (profile) await profileRun(url);

  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  const date = new Date().toISOString().slice(0, 10);
  const scale = renderScale();
  const report = [
    `Machine: ${formatMachine(machine)}. Peer processes: ${runtimeVersion(runtime)}. Code: ${codeVersion()}.`,
    "",
    renderMain(),
    "",
    scale.table,
    "",
    scale.targets,
    "",
    `Measured ${date} in ${seconds} s by \`bench/deploy.ts --runtime ${runtime}${
      quick ? " --quick" : ""
    }\` (1-minute load average ${loadavg()[0].toFixed(2)} at the end). ` +
    "Method: every peer is its own OS process (`bench/_peer_process.ts`) with its own NATS connection, on one " +
    "private nats-server on 127.0.0.1 (monitoring on 127.0.0.1 too); the bench process only starts them and " +
    "sends commands over their stdin; the loops run inside the peer process whose calls they time, so no " +
    "control message is on a timed path. Latency rows: sequential calls after a warm-up, p50/p99 " +
    "nearest-rank, sampled interleaved (one call of each per round) with the raw NATS request/reply from " +
    "the same process to another peer process (the floor). Throughput rows: a closed loop with " +
    `${CONCURRENCY} calls in flight (a tenth more before, unmeasured). \`map.set\`: \`HamokMap<string, ` +
    'Uint8Array>`, 100 keys in turn, 64-byte values; peerTimeoutMs 60 s; p0-p2 `bootstrap: "auto"` ' +
    'with `expectedPeers: 3`, later peers `bootstrap: "never"`; other settings default. Scale ' +
    `rows: the cluster of three grows by joins (at most ${START_BATCH} processes starting at once) to each ` +
    "size; messages per write are the nats-server's `/varz` `in_msgs` (published by any client) and " +
    "`out_msgs` (delivered) deltas, and the leader connection's `in_msgs` from `/connz`, over the sequential " +
    "sets (warm-up included) and over the closed loop, divided by the writes; idle: `in_msgs` (heartbeats) and " +
    `the peer processes' CPU per second over ${
      IDLE_MS / 1000
    } s without writes, included in the per-write figures as they happen. ` +
    "CPU per write at each size: `process.cpuUsage()` deltas of every peer process over the closed loop " +
    "(until every peer applied it) and the nats-server's utime + stime from `/proc`, divided by the writes." +
    " The machine's cores are shared by every process and the nats-server.",
    "",
    ...notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
  process.stdout.write(`${report}\n`);
  if (outPath !== "-") {
    const title = `# Deployment-shaped bench (${runtime === "bun" ? "Bun" : "Deno"} peer processes)`;
    writeFileSync(outPath, `${title}\n\n${report}`);
    formatMarkdown(outPath);
    log(`written to ${outPath}`);
  }
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  exitCode = 1;
  console.error(error);
} finally {
  await Promise.all([...live].map((p) => p.stop()));
  if (natsServer !== undefined) await natsServer.stop();
}
process.exit(exitCode);
