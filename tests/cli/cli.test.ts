import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { waitFor } from "../_helpers/wait.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
// CI's Node leg runs the suite compiled to JavaScript: the CLI and the child are compiled too.
const EXT = import.meta.url.endsWith(".js") ? "js" : "ts";
const CLI = fileURLToPath(new URL(`../../cli.${EXT}`, import.meta.url));
const CHILD = fileURLToPath(new URL(`./_peer_child.${EXT}`, import.meta.url));
const KEY = "a-cluster-key-of-at-least-32-bytes!!";

function runtime(script: string, args: string[]): { command: string; args: string[] } {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  return isDeno
    ? { command: process.execPath, args: ["run", "-A", "--quiet", script, ...args] }
    : { command: process.execPath, args: [script, ...args] };
}

/** Sends a signal by pid (Deno's ChildProcess.kill ignores SIGSTOP/SIGCONT). */
function signal(child: ChildProcess, name: "SIGSTOP" | "SIGCONT"): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(child.pid, name);
  } catch {
    // already gone
  }
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (bounded). */
function cli(args: string[], timeoutMs = 30_000): Promise<Result> {
  const { command, args: argv } = runtime(CLI, args);
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`hamok ${args.join(" ")} did not end within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts the CLI in the background; `started` resolves once it printed `marker` on stderr. */
function cliBackground(args: string[], marker?: string) {
  const { command, args: argv } = runtime(CLI, args);
  const child = spawn(command, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<Result>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  );
  return {
    child,
    done,
    output: () => stdout,
    started: marker === undefined ? Promise.resolve() : waitFor(() => stderr.includes(marker), {
      timeoutMs: 20_000,
      message: `the CLI printed '${marker}'`,
    }),
  };
}

describe("hamok CLI against three peers in separate processes on a real nats-server", () => {
  let server: NatsServer;
  const peers = new Map<string, ChildProcess>();
  const clusterId = `cli-${crypto.randomUUID().slice(0, 8)}`;
  let base: string[];

  before(async () => {
    server = await startNatsServer();
    base = ["--nats", server.url, "--cluster", clusterId, "--key", KEY, "--timeout", "2000"];
    const ready: Promise<void>[] = [];
    for (const peerId of ["p1", "p2", "p3"]) {
      const { command, args } = runtime(CHILD, [
        JSON.stringify({ natsUrl: server.url, peerId, clusterId, clusterKey: KEY }),
      ]);
      const child = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
      peers.set(peerId, child);
      let out = "";
      ready.push(
        new Promise<void>((resolve, reject) => {
          child.stdout!.on("data", (d) => {
            out += d;
            if (out.includes('"ready"')) resolve();
          });
          child.on("exit", (code) => reject(new Error(`peer ${peerId} exited with ${code}`)));
        }),
      );
    }
    await Promise.all(ready);
    await waitFor(async () => (await cli(["status", ...base])).code === 0, {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: "the cluster became healthy",
    });
  });

  after(async () => {
    for (const child of peers.values()) {
      signal(child, "SIGCONT");
      child.stdin!.end();
    }
    await Promise.all(
      [...peers.values()].map((child) =>
        child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          child.on("exit", () => resolve(clearTimeout(timer)));
        })
      ),
    );
    await server.stop();
  });

  it("status: a table and JSON of a healthy cluster, exit 0", async () => {
    const table = await cli(["status", ...base]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /healthy/);
    for (const peerId of ["p1", "p2", "p3"]) assert.match(table.stdout, new RegExp(`^${peerId}`, "m"));
    const json = await cli(["status", "--json", ...base]);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout);
    assert.equal(status.clusterId, clusterId);
    assert.ok(["p1", "p2", "p3"].includes(status.leader));
    assert.ok(status.term >= 1);
    assert.deepEqual(status.members.map((m: { peerId: string }) => m.peerId).sort(), ["p1", "p2", "p3"]);
    assert.ok(
      status.members.every((m: { role: string; current: boolean }) => m.role === "voter" && m.current),
    );
  });

  it("map set, get, list, delete and watch go through a member", async () => {
    const watch = cliBackground(["watch", "--map", "stock", "--count", "1", ...base], "watching map");
    await watch.started;
    const set = await cli(["map", "set", "--map", "stock", ...base, "apples", "10"]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /OK/);
    const watched = await watch.done;
    assert.equal(watched.code, 0, watched.stderr);
    assert.match(watched.stdout, /^rev \d+ set "apples" = 10$/m);
    const get = await cli(["map", "get", "--map", "stock", ...base, "apples"]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout.trim(), "10");
    // reads are linearizable by default; --local reads the member's replica (here the leader's,
    // which applied the write before it answered)
    const local = await cli(["map", "get", "--local", "--map", "stock", ...base, "apples"]);
    assert.equal(local.code, 0, local.stderr);
    assert.equal(local.stdout.trim(), "10");
    await cli(["map", "set", "--map", "stock", ...base, "pears", '{"n":2}']);
    const list = await cli(["map", "list", "--json", "--map", "stock", ...base]);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout);
    assert.deepEqual(listed.entries.map((e: { key: string; value: unknown }) => [e.key, e.value]), [
      ["apples", 10],
      ["pears", { n: 2 }],
    ]);
    const del = await cli(["map", "delete", "--map", "stock", ...base, "apples"]);
    assert.equal(del.code, 0, del.stderr);
    const missing = await cli(["map", "get", "--map", "stock", ...base, "apples"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not in map/);
  });

  it("publish is acknowledged by the subscribers; subscribe and watch --emitter hear it", async () => {
    const sub = cliBackground(["subscribe", "--emitter", "chat", "--event", "msg", "--count", "1", ...base]);
    const watch = cliBackground(["watch", "--emitter", "chat", "--count", "1", ...base]);
    // the listeners are subscribed once they hear an event: publish until both did (bounded)
    let published = 0;
    await waitFor(async () => {
      const result = await cli(["publish", "--emitter", "chat", "--event", "msg", ...base, "hello", "42"]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /acknowledged by (p\d, ){2}p\d/);
      published++;
      return sub.child.exitCode !== null && watch.child.exitCode !== null;
    }, { timeoutMs: 20_000, intervalMs: 50, message: "subscribe and watch heard an event" });
    assert.ok(published >= 1);
    assert.equal((await sub.done).stdout.trim(), '["hello",42]');
    assert.match((await watch.done).stdout, /msg from p\d: \["hello",42\]/);
  });

  it("bench set and publish print a p50/p99 summary", async () => {
    const set = await cli(["bench", "set", "--count", "200", "--concurrency", "8", ...base]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /200 ok, 0 failed/);
    assert.match(set.stdout, /p50 [\d.]+ ms, p99 [\d.]+ ms/);
    assert.match(set.stderr, /100% 200\/200/);
    const publish = await cli([
      "bench",
      "publish",
      "--emitter",
      "chat",
      "--event",
      "msg",
      "--count",
      "100",
      "--json",
      ...base,
    ]);
    assert.equal(publish.code, 0, publish.stderr);
    const summary = JSON.parse(publish.stdout);
    assert.equal(summary.ok, 100);
    assert.ok(summary.p99Ms >= summary.p50Ms);
  });

  it("status exits 1 with a lagging member, and without a leader", async () => {
    const status = JSON.parse((await cli(["status", "--json", ...base])).stdout);
    const followers = status.members.filter((m: { peerId: string }) => m.peerId !== status.leader)
      .map((m: { peerId: string }) => m.peerId);
    const lagging = peers.get(followers[0])!;
    signal(lagging, "SIGSTOP");
    try {
      for (let i = 0; i < 3; i++) await cli(["map", "set", "--map", "stock", ...base, `lag${i}`, String(i)]);
      const lag = await cli(["status", ...base, "--window", "1500"]);
      process.stderr.write(`--- hamok status, one member paused:\n${lag.stdout}`);
      assert.equal(lag.code, 1);
      assert.match(lag.stdout, new RegExp(`UNHEALTHY.*${followers[0]}`));
      assert.match(lag.stdout, new RegExp(`^${followers[0]}\\s+voter\\s+unreachable`, "m"));
      signal(peers.get(followers[1])!, "SIGSTOP");
      await waitFor(async () => {
        const r = await cli(["status", "--json", ...base, "--window", "1000"]);
        return r.code === 1 && JSON.parse(r.stdout).leader === null;
      }, { timeoutMs: 20_000, intervalMs: 100, message: "the lone member lost its leadership" });
      const none = await cli(["status", ...base, "--window", "1000"]);
      process.stderr.write(`--- hamok status, two members paused:\n${none.stdout}`);
      assert.equal(none.code, 1);
      assert.match(none.stdout, /NO LEADER/);
    } finally {
      for (const peerId of followers) signal(peers.get(peerId)!, "SIGCONT");
    }
    let last: Result | undefined;
    await waitFor(async () => (last = await cli(["status", ...base])).code === 0, {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: "the cluster healed",
    }).catch((error) => {
      const exits = [...peers].map(([id, c]) => `${id}: exit ${c.exitCode} signal ${c.signalCode}`).join(
        ", ",
      );
      throw new Error(`${error.message}; last status:\n${last?.stdout}${last?.stderr}\n${exits}`);
    });
  });

  it("clear errors: no server, no such cluster, wrong key; --help for every command", async () => {
    const noServer = await cli(["status", "--nats", "nats://127.0.0.1:1", "--cluster", clusterId]);
    assert.equal(noServer.code, 1);
    assert.match(noServer.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    const noCluster = await cli(["status", "--nats", server.url, "--cluster", "nope", "--timeout", "500"]);
    assert.equal(noCluster.code, 1);
    assert.match(noCluster.stderr, /no member of cluster 'nope' answered/);
    const wrongKey = await cli([
      "status",
      "--nats",
      server.url,
      "--cluster",
      clusterId,
      "--key",
      "another-key-that-is-also-32-bytes-long",
      "--timeout",
      "500",
    ]);
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /wrong --key/);
    const noKey = await cli(["status", "--nats", server.url, "--cluster", clusterId, "--timeout", "500"]);
    assert.equal(noKey.code, 1);
    for (const command of ["status", "watch", "map", "publish", "subscribe", "bench"]) {
      const help = await cli([command, "--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`^usage: hamok ${command}`));
    }
    const usage = await cli(["--help"]);
    assert.equal(usage.code, 0);
    assert.match(usage.stdout, /^usage: hamok <command>/);
    const unknown = await cli(["frobnicate"]);
    assert.equal(unknown.code, 2);
  });
});
