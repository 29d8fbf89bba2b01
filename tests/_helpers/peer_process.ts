/**
 * Runs ONE real `Hamok` peer in a separate OS process (same runtime as the test:
 * `process.execPath`, `deno run -A` under Deno, the script itself under Bun) and drives it over
 * stdin/stdout JSON lines. For tests that need real processes: crashes (SIGKILL), stalls
 * (SIGSTOP/SIGCONT), restarts on a data directory, CLI and adversarial tests.
 *
 * ```ts
 * const server = await startNatsServer();
 * const peer = await startPeerProcess({ natsUrl: server.url, peerId: "a", clusterId: "c1" });
 * await peer.join();                                           // -> PeerStatus
 * await peer.mapSet("m", "k", 1);                              // -> previous value or null
 * await peer.mapGet("m", "k");                                 // -> 1
 * const s = await peer.status();                               // state, leaderId, term, appliedIndex...
 * peer.kill("SIGKILL");                                        // or SIGSTOP / SIGCONT
 * await peer.waitForExit(5000);                                // -> { code, signal }
 * // or, for a clean end: await peer.close();                 // peer.close() + process exit
 * ```
 *
 * - Every config field other than `natsUrl` is passed to `new Hamok(...)` in the child (JSON
 *   only: `dataDir`, `tickMs`, `peerTimeoutMs`, ...). The child connects its own NATS transport.
 * - Every reply waits with a bound (`timeoutMs`, default 10 s) and rejects with a
 *   {@linkcode PeerCommandError} (the child's error name/code/message) or a timeout `Error`.
 *   Pending requests reject at once when the process exits.
 * - `peer.events` records the child's peer events (`error`, `leader-changed`, `joined`, `left`);
 *   `peer.waitForEvent(name, timeoutMs, filter?)` waits for one (past ones count).
 * - `peer.request(cmd, args, timeoutMs)` sends any command of the child's table
 *   (`tests/_helpers/peer_main.ts`, `COMMANDS`): add commands there.
 * - Processes still running when the test process exits are killed (SIGKILL).
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";

/** Configuration of {@linkcode startPeerProcess}. */
export interface PeerProcessConfig {
  /** NATS URL (loopback), e.g. `server.url` of `startNatsServer()`. */
  natsUrl: string;
  /** The peer id (required: tests identify peers by it). */
  peerId: string;
  /** Any other JSON `HamokConfig` field: clusterId, dataDir, tickMs, discoveryMs, ... */
  [field: string]: unknown;
}

/** Options of {@linkcode startPeerProcess}. */
export interface PeerProcessOptions {
  /** Bound on the child starting (runtime + module load + NATS connect), in ms. Default 20000. */
  startTimeoutMs?: number;
  /** Default bound of each command, in ms. Default 10000. */
  timeoutMs?: number;
}

/** What `status` (and `join`) reply. */
export interface PeerStatus {
  state: "empty" | "follower" | "candidate" | "leader";
  leaderId: string | null;
  term: number;
  appliedIndex: number;
  joined: boolean;
  memberId: string;
  remotePeerIds: string[];
}

/** An event the child's peer emitted. */
export interface PeerEvent {
  /** `error`, `leader-changed`, `joined` or `left`. */
  event: string;
  /** The event's data (for `error`: `{ name, code, message }`). */
  data: unknown;
}

/** How the child process ended. */
export interface PeerExit {
  code: number | null;
  signal: string | null;
}

/** A command the child answered with an error. */
export class PeerCommandError extends Error {
  /** The child's error class name. */
  readonly errorName: string;
  /** The child's error `code`, if any (`HAMOK_*`). */
  readonly code: string | undefined;
  /** Creates the error. */
  constructor(cmd: string, error: { name: string; code?: string; message: string }) {
    super(`${cmd}: ${error.name}${error.code ? ` (${error.code})` : ""}: ${error.message}`);
    this.name = "PeerCommandError";
    this.errorName = error.name;
    this.code = error.code;
  }
}

// CI's Node leg runs the suite compiled to JavaScript, where the child script is compiled too.
const MAIN_SCRIPT = join(
  dirname(fileURLToPath(import.meta.url)),
  import.meta.url.endsWith(".js") ? "peer_main.js" : "peer_main.ts",
);
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/** The command line that runs `script` with the current runtime. */
export function runtimeCommand(script: string): { command: string; args: string[] } {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  if (isDeno) {
    return { command: process.execPath, args: ["run", "-A", "--quiet", "--v8-flags=--expose-gc", script] };
  }
  // Node needs --expose-gc for the heap command's full collections (Bun has Bun.gc)
  const isBun = process.versions.bun !== undefined;
  return { command: process.execPath, args: isBun ? [script] : ["--expose-gc", script] };
}

interface Pending {
  cmd: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One peer in a child process. Make it with {@linkcode startPeerProcess}. */
export class PeerProcess {
  /** The peer id. */
  readonly peerId: string;
  /** The child's PID. */
  readonly pid: number;
  /** The child's peer events so far, oldest first. */
  readonly events: PeerEvent[] = [];
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  readonly #exited: Promise<PeerExit>;
  readonly #timeoutMs: number;
  readonly #eventWaiters = new Set<() => void>();
  #exit: PeerExit | undefined;
  #nextId = 1;
  #stderr = "";

  /** @internal Use {@linkcode startPeerProcess}. */
  constructor(peerId: string, child: ChildProcess, exited: Promise<PeerExit>, timeoutMs: number) {
    this.peerId = peerId;
    this.#child = child;
    this.pid = child.pid ?? -1;
    this.#timeoutMs = timeoutMs;
    this.#exited = exited.then((exit) => {
      this.#exit = exit;
      for (const [id, pending] of this.#pending) {
        clearTimeout(pending.timer);
        pending.reject(
          new Error(
            `peer ${peerId}: process exited (${describeExit(exit)}) before '${pending.cmd}' answered`,
          ),
        );
        this.#pending.delete(id);
      }
      for (const wake of this.#eventWaiters) wake();
      return exit;
    });
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exit !== undefined;
  }

  /** The last 8 KiB the child wrote to stderr (for failure messages). */
  get stderr(): string {
    return this.#stderr;
  }

  /** @internal */
  onLine(line: string): void {
    let message: {
      type?: string;
      id?: number;
      ok?: boolean;
      result?: unknown;
      error?: never;
      event?: string;
      data?: unknown;
    };
    try {
      message = JSON.parse(line);
    } catch {
      return; // not ours (a runtime warning on stdout)
    }
    if (message.type === "reply" && typeof message.id === "number") {
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.ok) pending.resolve(message.result);
      else {pending.reject(
          new PeerCommandError(pending.cmd, message.error ?? { name: "Error", message: "?" }),
        );}
    } else if (message.type === "event" && typeof message.event === "string") {
      this.events.push({ event: message.event, data: message.data });
      for (const wake of this.#eventWaiters) wake();
    }
  }

  /** @internal */
  onStderr(chunk: string): void {
    this.#stderr = (this.#stderr + chunk).slice(-8192);
  }

  /** Sends a command of the child's table and resolves with its result. */
  request<T = unknown>(
    cmd: string,
    args: Record<string, unknown> = {},
    timeoutMs = this.#timeoutMs,
  ): Promise<T> {
    if (this.#exit !== undefined) {
      return Promise.reject(
        new Error(`peer ${this.peerId}: process has exited (${describeExit(this.#exit)})`),
      );
    }
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`peer ${this.peerId}: '${cmd}' got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { cmd, resolve: resolve as (value: unknown) => void, reject, timer });
      this.#child.stdin!.write(JSON.stringify({ id, cmd, args }) + "\n");
    });
  }

  /** Joins the cluster; resolves with the status after the join. */
  join(options: { timeoutMs?: number } = {}): Promise<PeerStatus> {
    const timeoutMs = options.timeoutMs ?? 20_000;
    return this.request<PeerStatus>("join", { timeoutMs }, timeoutMs + 2000);
  }

  /** The peer's state, leader, term, applied index, membership. */
  status(timeoutMs?: number): Promise<PeerStatus> {
    return this.request<PeerStatus>("status", {}, timeoutMs);
  }

  /** `map(mapId).set(key, value)`; resolves with the previous value (null when absent). */
  mapSet(mapId: string, key: string, value: unknown, timeoutMs?: number): Promise<unknown> {
    const bound = timeoutMs ?? this.#timeoutMs;
    return this.request("map.set", { mapId, key, value, timeoutMs: bound }, bound + 2000);
  }

  /** `map(mapId).get(key)` (local read, or linearizable); null when absent. */
  mapGet(
    mapId: string,
    key: string,
    options: { linearizable?: boolean; timeoutMs?: number } = {},
  ): Promise<unknown> {
    const bound = options.timeoutMs ?? this.#timeoutMs;
    return this.request(
      "map.get",
      { mapId, key, linearizable: options.linearizable ?? false, timeoutMs: bound },
      bound + 2000,
    );
  }

  /** Every `[key, value]` of a map, read locally. */
  mapEntries(mapId: string, timeoutMs?: number): Promise<[string, unknown][]> {
    return this.request<[string, unknown][]>("map.entries", { mapId }, timeoutMs);
  }

  /** Leaves the cluster. */
  leave(timeoutMs = 10_000): Promise<void> {
    return this.request<void>("leave", { timeoutMs }, timeoutMs + 2000);
  }

  /** Closes the peer and waits for the process to exit (SIGKILL if it does not within the bound). */
  async close(timeoutMs = 10_000): Promise<PeerExit> {
    if (this.#exit !== undefined) return this.#exit;
    await this.request("close", {}, timeoutMs).catch(() => {});
    try {
      return await this.waitForExit(timeoutMs);
    } catch {
      this.kill("SIGKILL");
      return await this.#exited;
    }
  }

  /** Sends a signal to the process (no-op once exited). */
  kill(signal: "SIGKILL" | "SIGSTOP" | "SIGCONT" | "SIGTERM"): void {
    if (this.#exit !== undefined) return;
    try {
      // process.kill, not child.kill: Deno's ChildProcess ignores a kill after the first one
      // (SIGSTOP then SIGKILL must both arrive).
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** Resolves once the process has exited; rejects after `timeoutMs`. */
  waitForExit(timeoutMs = 10_000): Promise<PeerExit> {
    if (this.#exit !== undefined) return Promise.resolve(this.#exit);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`peer ${this.peerId}: did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([this.#exited, bound]).finally(() => clearTimeout(timer));
  }

  /**
   * Resolves with the first event named `event` (already recorded or coming) that passes `filter`;
   * rejects after `timeoutMs` or when the process exits first.
   */
  waitForEvent(event: string, timeoutMs: number, filter?: (data: unknown) => boolean): Promise<PeerEvent> {
    return new Promise<PeerEvent>((resolve, reject) => {
      let seen = 0;
      const check = (): void => {
        for (; seen < this.events.length; seen++) {
          const e = this.events[seen];
          if (e.event === event && (filter === undefined || filter(e.data))) {
            done();
            resolve(e);
            return;
          }
        }
        if (this.#exit !== undefined) {
          done();
          reject(new Error(`peer ${this.peerId}: exited before event '${event}'`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`peer ${this.peerId}: no event '${event}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#eventWaiters.delete(check);
      };
      this.#eventWaiters.add(check);
      check();
    });
  }
}

function describeExit(exit: PeerExit): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/**
 * Starts a peer process and resolves once its `Hamok` exists and its NATS connection is open
 * (not joined yet: call `join()`). Rejects if the child fails first (e.g. the constructor threw:
 * a refused data directory), with the child's error and stderr in the message.
 */
export function startPeerProcess(
  config: PeerProcessConfig,
  options: PeerProcessOptions = {},
): Promise<PeerProcess> {
  const { natsUrl, ...hamok } = config;
  const { command, args } = runtimeCommand(MAIN_SCRIPT);
  const child = spawn(command, [...args, JSON.stringify({ natsUrl, hamok })], {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  live.add(child);
  installExitHook();
  const exited = new Promise<PeerExit>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
    child.once("error", () => {
      live.delete(child);
      resolve({ code: -1, signal: null });
    });
  });
  const peer = new PeerProcess(config.peerId, child, exited, options.timeoutMs ?? 10_000);
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => peer.onStderr(chunk));
  child.stdin!.on("error", () => {}); // EPIPE after a kill
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  return new Promise<PeerProcess>((resolve, reject) => {
    let started = false;
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => {
      if (started) return;
      child.kill("SIGKILL");
      reject(
        new Error(`peer ${config.peerId}: not started within ${startTimeoutMs} ms; stderr: ${peer.stderr}`),
      );
    }, startTimeoutMs);
    lines.on("line", (line) => {
      if (started) {
        peer.onLine(line);
        return;
      }
      let message: { type?: string; error?: { name: string; code?: string; message: string } };
      try {
        message = JSON.parse(line);
      } catch {
        return;
      }
      if (message.type === "started") {
        started = true;
        clearTimeout(timer);
        resolve(peer);
      } else if (message.type === "fatal") {
        started = true;
        clearTimeout(timer);
        reject(new PeerCommandError("start", message.error ?? { name: "Error", message: "?" }));
      }
    });
    void exited.then((exit) => {
      if (started) return;
      started = true;
      clearTimeout(timer);
      reject(
        new Error(
          `peer ${config.peerId}: exited (${describeExit(exit)}) before starting; stderr: ${peer.stderr}`,
        ),
      );
    });
  });
}
