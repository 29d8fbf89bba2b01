/**
 * Starts a private `nats-server` for a test file or a bench, on a random 127.0.0.1 port.
 * Uses only node:child_process / node:fs / node:os / node:path, so it runs unchanged under Deno,
 * Bun and Node.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";

/** Options of {@linkcode startNatsServer}. */
export interface NatsServerOptions {
  /** Port to listen on. Default: a random free port chosen by the server (`-p -1`). */
  port?: number;
  /** Extra command-line arguments (for example `["-js"]`). */
  extraArgs?: string[];
  /** How long to wait for the server to listen, in milliseconds. Default 10000. */
  startTimeoutMs?: number;
}

/** A running private nats-server. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** The TCP port (stays the same across `restart()`). */
  readonly port: number;
  /** PID of the current server process (changes on `restart()`). */
  readonly pid: number;
  /** True while the server process runs. */
  readonly running: boolean;
  /**
   * Stops the server (SIGTERM, SIGKILL after 3 s) and removes its temporary directory.
   * Idempotent.
   */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port. */
  restart(): Promise<void>;
  /** Synchronous best-effort kill (for `unload` handlers); also removes the temporary directory. */
  killSync(): void;
}

const INSTALL_HINT = "install it with `apt-get install nats-server` (Debian/Ubuntu) or download it from " +
  "https://github.com/nats-io/nats-server/releases, or set NATS_SERVER_BIN to the binary's path";

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where the nats-server binary is: `NATS_SERVER_BIN`, else the first `nats-server` on `PATH`,
 * else `/usr/sbin/nats-server`. Throws an Error that says how to install it if none exists.
 */
export function findNatsServerBinary(): string {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv !== undefined && fromEnv.length > 0) {
    if (!isExecutable(fromEnv)) {
      throw new Error(`NATS_SERVER_BIN=${fromEnv} is not an executable file; ${INSTALL_HINT}`);
    }
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir.length === 0) continue;
    const candidate = join(dir, "nats-server");
    if (isExecutable(candidate)) return candidate;
  }
  if (isExecutable("/usr/sbin/nats-server")) return "/usr/sbin/nats-server";
  throw new Error(`nats-server not found (NATS_SERVER_BIN, PATH, /usr/sbin); ${INSTALL_HINT}`);
}

/**
 * Servers still running, killed on process exit so none outlives a test run that forgot to stop
 * it; their temporary directories are removed too. (A runtime that dies of an uncaught error may
 * skip `exit` handlers; then a server can be left behind.)
 */
const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
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
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Started {
  child: ChildProcess;
  port: number;
  exited: Promise<void>;
}

async function launch(
  bin: string,
  dir: string,
  port: number | undefined,
  extraArgs: readonly string[],
  timeoutMs: number,
): Promise<Started> {
  const args = ["-a", "127.0.0.1", "-p", String(port ?? -1), "--ports_file_dir", dir, ...extraArgs];
  const child = spawn(bin, args, { stdio: "ignore" });
  let exitInfo: string | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = `code ${code}, signal ${signal}`;
      live.delete(child);
      resolve();
    });
    child.once("error", (err) => {
      spawnError = err;
      exitInfo ??= `spawn error: ${err.message}`;
      live.delete(child);
      resolve();
    });
  });
  // The child must not keep the event loop alive on its own (benches end via `unload`); tests
  // stop it explicitly and the exit hook kills leftovers.
  child.unref();
  live.add(child);
  installExitHook();
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (spawnError !== undefined) {
      throw new Error(`cannot start ${bin}: ${spawnError.message}; ${INSTALL_HINT}`, { cause: spawnError });
    }
    if (exitInfo !== undefined) {
      throw new Error(`nats-server exited before listening (${exitInfo}); args: ${args.join(" ")}`);
    }
    if (child.pid !== undefined) {
      const file = join(dir, `nats-server_${child.pid}.ports`);
      if (existsSync(file)) {
        try {
          const ports = JSON.parse(readFileSync(file, "utf8")) as { nats?: string[] };
          const url = ports.nats?.[0];
          if (url !== undefined) {
            const listened = Number(new URL(url).port);
            if (listened > 0) return { child, port: listened, exited };
          }
        } catch {
          // partially written; read again
        }
      }
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      throw new Error(`nats-server did not start listening within ${timeoutMs} ms`);
    }
    await delay(10);
  }
}

async function terminate(started: Started, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
  const { child, exited } = started;
  if (child.exitCode !== null || child.signalCode !== null || !live.has(child)) {
    await exited;
    return;
  }
  child.kill(signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const escalate = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, 3000);
  });
  try {
    await Promise.race([exited, escalate]);
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a private `nats-server` listening on 127.0.0.1 (random port unless `port` is given) and
 * resolves once it accepts connections (its `.ports` file exists).
 *
 * @example
 * ```ts
 * const server = await startNatsServer();
 * const nc = await connect({ servers: server.url });
 * // ...
 * await nc.close();
 * await server.stop();
 * ```
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = findNatsServerBinary();
  const extraArgs = options.extraArgs ?? [];
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let dir = mkdtempSync(join(tmpdir(), "hamok-nats-"));
  liveDirs.add(dir);
  let current: Started;
  try {
    current = await launch(bin, dir, options.port, extraArgs, timeoutMs);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }
  const port = current.port;
  let dirRemoved = false;
  const removeDir = (): void => {
    if (dirRemoved) return;
    dirRemoved = true;
    liveDirs.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    get pid(): number {
      return current.child.pid ?? -1;
    },
    get running(): boolean {
      return live.has(current.child);
    },
    async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
      await terminate(current, signal);
      removeDir();
    },
    async restart(): Promise<void> {
      await terminate(current, "SIGTERM");
      if (dirRemoved) {
        dir = mkdtempSync(join(tmpdir(), "hamok-nats-"));
        liveDirs.add(dir);
        dirRemoved = false;
      } else {
        rmSync(join(dir, `nats-server_${current.child.pid}.ports`), { force: true });
      }
      // The port was just released; a few retries cover a slow release of the listening socket.
      let lastError: unknown;
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          current = await launch(bin, dir, port, extraArgs, timeoutMs);
          return;
        } catch (err) {
          lastError = err;
          await delay(100);
        }
      }
      throw lastError;
    },
    killSync(): void {
      try {
        if (live.has(current.child)) current.child.kill("SIGKILL");
      } catch {
        // already gone
      }
      try {
        removeDir();
      } catch {
        // best effort
      }
    },
  };
}
