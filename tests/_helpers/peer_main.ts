/**
 * The child side of `tests/_helpers/peer_process.ts`: ONE `Hamok` peer in this OS process,
 * configured by the JSON in `argv[2]` ({@linkcode PeerMainConfig}) and driven over stdin/stdout
 * with one JSON object per line.
 *
 * Protocol (newline-delimited JSON):
 * - stdout, first line: `{"type":"started","pid":N}` once the peer object exists (not yet joined).
 * - stdin: `{"id":N,"cmd":"<name>","args":{...}}`; stdout: `{"type":"reply","id":N,"ok":true,"result":...}`
 *   or `{"type":"reply","id":N,"ok":false,"error":{"name","code","message"}}`.
 * - stdout, unsolicited: `{"type":"event","event":"<name>","data":...}` for the peer's `error`,
 *   `leader-changed`, `joined` and `left` events.
 * - stdin closed (the parent died or closed it): the peer closes and the process exits.
 *
 * To add a command, add an entry to {@linkcode COMMANDS}: it gets the parsed `args` and returns a
 * JSON-serializable result (or a promise of one); a throw becomes an `ok: false` reply.
 *
 * @module
 */

import process from "node:process";
import { createInterface } from "node:readline";
import { Hamok } from "../../src/hamok.ts";
import type { HamokConfig } from "../../src/config.ts";
import type { HamokMap } from "../../src/collections/map.ts";
import type { HamokEmitter } from "../../src/collections/emitter.ts";
import { NatsTransport } from "../../src/transport/nats_transport.ts";

/** What the parent passes in `argv[2]`. */
export interface PeerMainConfig {
  /** NATS server URL (loopback). */
  natsUrl: string;
  /** Fields of `HamokConfig` that are plain JSON (peerId, clusterId, dataDir, tickMs, ...). */
  hamok: Record<string, unknown>;
}

// deno-lint-ignore no-explicit-any
type Args = any;
type Command = (args: Args) => unknown;

const config = JSON.parse(process.argv[2] ?? "{}") as PeerMainConfig;

function write(line: unknown): void {
  process.stdout.write(JSON.stringify(line) + "\n");
}

function describeError(error: unknown): { name: string; code?: string; message: string } {
  if (error instanceof Error) {
    return { name: error.name, code: (error as { code?: string }).code, message: error.message };
  }
  return { name: "Error", message: String(error) };
}

const transport = await NatsTransport.connect({ servers: config.natsUrl });
let peer: Hamok;
try {
  peer = new Hamok({ ...(config.hamok as HamokConfig), transport });
} catch (error) {
  write({ type: "fatal", error: describeError(error) });
  await transport.close().catch(() => {});
  process.exit(3);
}
peer.on("error", (error) => write({ type: "event", event: "error", data: describeError(error) }));
peer.on(
  "leader-changed",
  (leaderId) => write({ type: "event", event: "leader-changed", data: leaderId ?? null }),
);
peer.on("joined", () => write({ type: "event", event: "joined", data: null }));
peer.on("left", () => write({ type: "event", event: "left", data: null }));

function map(mapId: unknown): HamokMap<string, unknown> {
  if (typeof mapId !== "string") throw new TypeError("args.mapId must be a string");
  return peer.getOrCreateMap<string, unknown>({ mapId });
}

async function shutdown(code: number): Promise<never> {
  peer.close();
  await transport.close().catch(() => {});
  process.exit(code);
}

/** The commands the child understands. Add new ones here. */
const COMMANDS: Record<string, Command> = {
  /** `{timeoutMs?}` -> status after the join. */
  join: async (args) => {
    await peer.join({ timeoutMs: args?.timeoutMs });
    return status();
  },
  /** -> `{state, leaderId, term, appliedIndex, joined, memberId, remotePeerIds}`. */
  status: () => status(),
  /** `{mapId, key, value, timeoutMs?}` -> the previous value (null when absent). */
  "map.set": async (args) =>
    (await map(args.mapId).set(args.key, args.value, { timeoutMs: args.timeoutMs })) ?? null,
  /** `{mapId, key, value, timeoutMs?}` -> the existing value (null when absent, and then it wrote). */
  "map.insert": async (args) =>
    (await map(args.mapId).insert(args.key, args.value, { timeoutMs: args.timeoutMs })) ?? null,
  /** `{mapId, key, value, expected, timeoutMs?}` -> whether it replaced `expected` by `value`. */
  "map.updateIf": (args) =>
    map(args.mapId).updateIf(args.key, args.value, args.expected, { timeoutMs: args.timeoutMs }),
  /** `{mapId, key, timeoutMs?}` -> whether the key was there. */
  "map.delete": (args) => map(args.mapId).delete(args.key, { timeoutMs: args.timeoutMs }),
  /** `{mapId, key, linearizable?}` -> the value (null when absent). */
  "map.get": async (args) => {
    const m = map(args.mapId);
    await m.ready;
    const value = args.linearizable
      ? await m.get(args.key, { consistency: "linearizable", timeoutMs: args.timeoutMs })
      : m.get(args.key);
    return value ?? null;
  },
  /** `{mapId}` -> every `[key, value]` of the map, read locally. */
  "map.entries": async (args) => {
    const m = map(args.mapId);
    await m.ready;
    return [...m.entries()];
  },
  /** `{timeoutMs?}` -> null once left. */
  leave: async (args) => {
    await peer.leave(args?.timeoutMs);
    return null;
  },
  /** -> null; the process exits right after the reply. */
  close: () => {
    setTimeout(() => void shutdown(0), 0);
    return null;
  },
};

/** A write loop started by `load.start`: sequential `map.set`s, the acknowledged ones recorded. */
interface WriteLoad {
  stop: boolean;
  readonly acked: [string, number][];
  readonly failures: Record<string, number>;
  done: Promise<void>;
}
const loads = new Map<string, WriteLoad>();

/** Emitters created by `emitter.*` commands, with what their listeners received, by event. */
const emitters = new Map<string, { emitter: HamokEmitter; received: Map<string, unknown[]> }>();

function emitterOf(
  emitterId: unknown,
  timeoutMs = 5000,
): { emitter: HamokEmitter; received: Map<string, unknown[]> } {
  if (typeof emitterId !== "string") throw new TypeError("args.emitterId must be a string");
  let entry = emitters.get(emitterId);
  if (entry === undefined) {
    entry = {
      emitter: peer.createEmitter({ emitterId, requestTimeoutInMs: timeoutMs }),
      received: new Map(),
    };
    emitters.set(emitterId, entry);
  }
  return entry;
}

/** The outcome of a publish as JSON: the acknowledging peers, or the error with who was missing. */
async function publishOutcome(
  emitter: HamokEmitter,
  event: string,
  args: unknown[],
): Promise<Record<string, unknown>> {
  try {
    return { ok: true, peers: (await emitter.publish(event, ...args)).sort() };
  } catch (error) {
    const e = error as {
      name?: string;
      code?: string;
      missingPeerIds?: string[];
      respondedPeerIds?: string[];
    };
    return {
      ok: false,
      name: e.name,
      code: e.code,
      missing: e.missingPeerIds ?? [],
      responded: e.respondedPeerIds ?? [],
    };
  }
}

function collectGarbage(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun !== undefined) g.Bun.gc(true);
  else g.gc?.();
}

Object.assign(COMMANDS, {
  /** -> the peer's counters (`hamok.counters.values()`). */
  counters: () => peer.counters.values(),
  /** -> `hamok.status()` (role, term, members with member ids, log positions, counters). */
  "hamok.status": () => peer.status(),
  /** -> `{heapUsed, gc}`: heap bytes after a full collection (`gc`: whether one could be forced). */
  heap: () => {
    collectGarbage();
    collectGarbage();
    const g = globalThis as { gc?: unknown; Bun?: unknown };
    return {
      heapUsed: process.memoryUsage().heapUsed,
      gc: g.Bun !== undefined || typeof g.gc === "function",
    };
  },
  /** `{timeoutMs?}` -> null once this peer applied everything committed (a read barrier). */
  sync: async (args: Args) => {
    await peer.waitUntilCommitHead(args?.timeoutMs ?? 10_000);
    return null;
  },
  /** `{mapId, prefix, timeoutMs?}` -> null; starts a loop of `set(prefix + i, i)`, one at a time. */
  "load.start": (args: Args) => {
    const name = String(args.prefix);
    if (loads.has(name)) throw new Error(`load ${name} already runs`);
    const m = map(args.mapId);
    const timeoutMs = args.timeoutMs ?? 2000;
    const load: WriteLoad = { stop: false, acked: [], failures: {}, done: Promise.resolve() };
    load.done = (async () => {
      for (let i = 0; !load.stop; i++) {
        const key = `${name}${i}`;
        try {
          await m.set(key, i, { timeoutMs });
          load.acked.push([key, i]);
        } catch (error) {
          const code = (error as { code?: string }).code ?? String(error);
          load.failures[code] = (load.failures[code] ?? 0) + 1;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();
    loads.set(name, load);
    return null;
  },
  /** `{prefix}` -> `{acked: [key, value][], failures: {code: n}}` once the loop stopped. */
  "load.stop": async (args: Args) => {
    const load = loads.get(String(args.prefix));
    if (load === undefined) throw new Error(`no load ${args.prefix}`);
    load.stop = true;
    await load.done;
    loads.delete(String(args.prefix));
    return { acked: load.acked, failures: load.failures };
  },
  /** `{emitterId, event, timeoutMs?}` -> null once subscribed; the listener records its first argument. */
  "emitter.subscribe": async (args: Args) => {
    const entry = emitterOf(args.emitterId, args.timeoutMs);
    const event = String(args.event);
    const list: unknown[] = [];
    entry.received.set(event, list);
    await entry.emitter.subscribe(event, (first: unknown) => void list.push(first ?? null));
    return null;
  },
  /** `{emitterId, event}` -> the first arguments of the events received, in order. */
  "emitter.received": (args: Args) => emitterOf(args.emitterId).received.get(String(args.event)) ?? [],
  /** `{emitterId, event, args, timeoutMs?}` -> `{ok, peers}` or `{ok: false, name, code, missing, responded}`. */
  "emitter.publish": (args: Args) =>
    publishOutcome(emitterOf(args.emitterId, args.timeoutMs).emitter, String(args.event), args.args ?? []),
  /** `{emitterId, event, prefix, count, timeoutMs?}` -> the outcomes of `count` concurrent publishes of `prefix + i`. */
  "emitter.publishMany": (args: Args) => {
    const { emitter } = emitterOf(args.emitterId, args.timeoutMs);
    const all: Promise<Record<string, unknown>>[] = [];
    for (let i = 0; i < args.count; i++) {
      all.push(publishOutcome(emitter, String(args.event), [`${args.prefix}${i}`]));
    }
    return Promise.all(all);
  },
});

function status(): Record<string, unknown> {
  return {
    state: peer.state,
    leaderId: peer.leaderId ?? null,
    term: peer.term,
    appliedIndex: peer.appliedIndex,
    joined: peer.joined,
    memberId: peer.localMemberId,
    remotePeerIds: [...peer.remotePeerIds].sort(),
  };
}

async function handle(line: string): Promise<void> {
  let request: { id?: unknown; cmd?: unknown; args?: unknown };
  try {
    request = JSON.parse(line);
  } catch {
    write({
      type: "reply",
      id: null,
      ok: false,
      error: { name: "SyntaxError", message: "bad request line" },
    });
    return;
  }
  const command = typeof request.cmd === "string" ? COMMANDS[request.cmd] : undefined;
  try {
    if (command === undefined) throw new Error(`unknown command ${JSON.stringify(request.cmd)}`);
    const result = await command(request.args ?? {});
    write({ type: "reply", id: request.id, ok: true, result: result ?? null });
  } catch (error) {
    write({ type: "reply", id: request.id, ok: false, error: describeError(error) });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim().length > 0) void handle(line);
});
lines.on("close", () => void shutdown(0));
write({ type: "started", pid: process.pid });
