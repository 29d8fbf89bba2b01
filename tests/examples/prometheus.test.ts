import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import process from "node:process";
import { waitFor } from "../_helpers/wait.ts";

/** A free loopback port (bound and released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe("examples/prometheus.ts", () => {
  it("serves Hamok's metrics on 127.0.0.1, scraped over loopback", async () => {
    const port = await freePort();
    const isDeno = "Deno" in globalThis;
    const script = "examples/prometheus.ts";
    const argv = isDeno ? ["run", "-A", "--quiet", script] : [script];
    const child = spawn(process.execPath, [...argv, "--port", String(port), "--seconds", "60"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    try {
      await waitFor(() => output.includes("metrics at"), {
        timeoutMs: 30_000,
        message: `the example started: ${output}`,
      });
      let body = "";
      const wanted = [
        "messaging_client_operation_duration",
        "hamok_proposal_duration",
        "hamok_apply_batch_size",
        "hamok_raft_append_duration",
        "hamok_raft_elections",
        "hamok_raft_leader_changes",
        "hamok_raft_log_entries",
        "hamok_raft_log_bytes",
        "hamok_raft_follower_lag",
      ];
      await waitFor(async () => {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`);
        body = await response.text();
        return response.status === 200 && wanted.every((name) => body.includes(name));
      }, { timeoutMs: 20_000, intervalMs: 100, message: "every instrument was exported" });
      assert.match(
        body,
        /messaging_client_operation_duration_count\{[^}]*messaging_destination_name="ticks"[^}]*\} \d+/,
      );
      assert.match(body, /hamok_raft_follower_lag\{[^}]*hamok_follower_id="(alice|bob|carol)"/);
      assert.match(body, /# TYPE hamok_raft_elections_total counter/);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});
