/**
 * One Hamok peer in its own OS process, for `bench/deploy.ts` (the bench in the shape of a deployment).
 * Runs under Deno (`deno run -A bench/_peer_process.ts '<json>'`) and Bun (`bun bench/_peer_process.ts
 * '<json>'`); the JSON in `argv[2]` is a {@linkcode PeerProcessStart}.
 *
 * The peer joins the cluster over NATS, opens the emitter `bench` (subscribing the events it is told to)
 * and the map `bench`, and answers a raw NATS echo on `deploy.echo.<peerId>` over a second connection
 * (the floor other processes request). The measuring loops run here, inside the process whose calls
 * they time, so the control channel never sits on a timed path.
 *
 * Control: newline-delimited JSON on stdin/stdout. First line out: `{"type":"ready", ...}` once joined
 * (or `{"type":"fatal","message"}`). In: `{"id","cmd","args"}`; out: `{"type":"reply","id","ok","result"}`
 * or `{"type":"reply","id","ok":false,"message"}`. Commands: `status`, `cpu`, `sync`, `sample`, `loop`,
 * `mark`, `close`. When stdin closes (the bench ended or died) the peer closes and the process exits.
 *
 * @module
 */

import process from "node:process";
import { createInterface } from "node:readline";
import { connect, type Msg, type NatsConnection, RequestStrategy } from "nats";
import type { HamokEmitter } from "../src/collections/emitter.ts";
import type { HamokMap } from "../src/collections/map.ts";
import { Hamok } from "../src/hamok.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import { closedLoop, type LatencyStats, sampleInterleaved, type ThroughputStats } from "./_measure.ts";

/** What the bench passes in `argv[2]`. */
export interface PeerProcessStart {
  /** NATS URL (loopback). */
  natsUrl: string;
  /** Peer id; also the NATS connection name (`/connz` tells the connections apart by it). */
  peerId: string;
  /** Cluster id. */
  clusterId: string;
  /** Events of the emitter `bench` to subscribe with a no-op listener once joined. */
  subscribe: string[];
  /** Bound of `join()`, in ms. */
  joinTimeoutMs: number;
  /** `"auto"` for the first peers of the cluster (with `expectedPeers`), `"never"` for peers added later. */
  bootstrap: "auto" | "never";
  /** With `bootstrap: "auto"`: how many newcomers must be heard before one bootstraps. */
  expectedPeers: number;
}

/**
 * A timed operation by name: `raw:<peerId>` (a raw NATS request to that peer's echo), `fanout:<event>:<n>`
 * (one raw request to the echoes of the processes subscribing `event`, until `n` replied), `publish:<event>`
 * (`emitter.publish(event, i, "payload")`) or `set` (`map.set` of one of 100 keys, a 64-byte value).
 */
export type OpName = string;

type Events = Record<string, [number, string]>;

const start = JSON.parse(process.argv[2] ?? "{}") as PeerProcessStart;
const PAYLOAD = new Uint8Array(64).fill(7);
const KEYS = Array.from({ length: 100 }, (_, i) => `k${i}`);

function write(message: unknown): void {
  process.stdout.write(JSON.stringify(message) + "\n");
}

let transport: NatsTransport | undefined;
let raw: NatsConnection | undefined;
let peer: Hamok | undefined;
let emitter: HamokEmitter<Events>;
let map: HamokMap<string, Uint8Array>;

async function shutdown(code: number): Promise<never> {
  try {
    peer?.close();
    await transport?.close().catch(() => {});
    await raw?.close().catch(() => {});
  } finally {
    process.exit(code);
  }
}

try {
  transport = await NatsTransport.connect({ servers: start.natsUrl, name: start.peerId });
  raw = await connect({ servers: start.natsUrl, name: `${start.peerId}.raw` });
  const echo = (_err: unknown, msg: Msg): void => void msg.respond(msg.data);
  raw.subscribe(`deploy.echo.${start.peerId}`, { callback: echo });
  // The raw counterpart of an event's subscribers: one request, every subscriber's process answers.
  for (const event of start.subscribe) raw.subscribe(`deploy.fanout.${event}`, { callback: echo });
  await raw.flush();
  peer = new Hamok({
    peerId: start.peerId,
    clusterId: start.clusterId,
    transport,
    bootstrap: start.bootstrap,
    expectedPeers: start.expectedPeers,
    // Up to 25 processes share two cores here: a busy moment must not remove a member as silent.
    peerTimeoutMs: 60_000,
  });
  await peer.join({ timeoutMs: start.joinTimeoutMs });
  emitter = peer.createEmitter<Events>({ emitterId: "bench" });
  for (const event of start.subscribe) await emitter.subscribe(event, () => {});
  map = peer.createMap<string, Uint8Array>({ mapId: "bench" });
  await map.ready;
  write({ type: "ready", pid: process.pid, leader: peer.leader });
} catch (error) {
  write({ type: "fatal", message: String((error as Error)?.stack ?? error) });
  await shutdown(3);
}

function op(name: OpName): (i: number) => Promise<unknown> {
  if (name === "set") return (i) => map.set(KEYS[i % KEYS.length], PAYLOAD);
  if (name.startsWith("publish:")) {
    const event = name.slice("publish:".length);
    return (i) => emitter.publish(event, i, "payload");
  }
  if (name.startsWith("fanout:")) {
    const [, event, count] = name.split(":");
    const replies = Number(count);
    return async () => {
      const answers = await raw!.requestMany(`deploy.fanout.${event}`, PAYLOAD, {
        strategy: RequestStrategy.Count,
        maxMessages: replies,
        maxWait: 5000,
      });
      let got = 0;
      for await (const _ of answers) got++;
      if (got < replies) throw new Error(`fan-out on ${event}: ${got} of ${replies} replies`);
    };
  }
  if (name.startsWith("raw:")) {
    const subject = `deploy.echo.${name.slice("raw:".length)}`;
    return () => raw!.request(subject, PAYLOAD, { timeout: 5000 });
  }
  throw new Error(`unknown op ${name}`);
}

/**
 * Spins for 20 ms so that a CPU profile of this process holds samples of this function: `bench/deploy.ts`
 * calls it right before and right after a measured loop and reads only the samples in between.
 */
function deployProfileMark(): number {
  const end = performance.now() + 20;
  let spins = 0;
  while (performance.now() < end) spins++;
  return spins;
}

// deno-lint-ignore no-explicit-any
type Args = any;

const COMMANDS: Record<string, (args: Args) => unknown> = {
  /** -> role, leader id, members, applied index. */
  status: () => {
    const s = peer!.status();
    return {
      leader: peer!.leader,
      role: s.role,
      leaderId: s.leaderId ?? null,
      members: s.members.length,
      voters: s.members.filter((m) => m.role === "voter").length,
      appliedIndex: s.appliedIndex,
      term: s.term,
      dropped: Object.values(s.counters.dropped).reduce((sum: number, n) => sum + (n ?? 0), 0),
    };
  },
  /** -> CPU time of this process so far (user + system), µs, and its RSS in bytes. */
  cpu: () => {
    const usage = process.cpuUsage();
    return { cpuUs: usage.user + usage.system, rss: process.memoryUsage().rss };
  },
  /** `{timeoutMs}` -> null once this peer applied everything committed. */
  sync: async (args) => {
    await peer!.waitUntilCommitHead(args.timeoutMs ?? 30_000);
    return null;
  },
  /** `{ops: OpName[], warmup, samples, maxMs?}` -> one LatencyStats per op, sampled interleaved. */
  sample: (args): Promise<LatencyStats[]> =>
    sampleInterleaved((args.ops as OpName[]).map((name) => ({ run: op(name) })), {
      warmup: args.warmup,
      samples: args.samples,
      maxMs: args.maxMs,
    }),
  /** `{op: OpName, concurrency, ops, warmupOps}` -> ThroughputStats of a closed loop. */
  loop: (args): Promise<ThroughputStats> =>
    closedLoop(op(args.op), { concurrency: args.concurrency, ops: args.ops, warmupOps: args.warmupOps }),
  /** -> null after 20 ms spent in {@linkcode deployProfileMark} (finds a window in a CPU profile). */
  mark: () => {
    deployProfileMark();
    return null;
  },
  /** -> null; the process exits right after the reply. */
  close: () => {
    setTimeout(() => void shutdown(0), 0);
    return null;
  },
};

async function handle(line: string): Promise<void> {
  let request: { id?: number; cmd?: string; args?: unknown };
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const command = COMMANDS[String(request.cmd)];
    if (command === undefined) throw new Error(`unknown command ${String(request.cmd)}`);
    const result = await command(request.args ?? {});
    write({ type: "reply", id: request.id, ok: true, result: result ?? null });
  } catch (error) {
    write({ type: "reply", id: request.id, ok: false, message: String((error as Error)?.stack ?? error) });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim().length > 0) void handle(line);
});
lines.on("close", () => void shutdown(0));
