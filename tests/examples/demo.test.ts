import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { startNatsServer } from "../_helpers/nats_server.ts";

/** Runs examples/demo.ts with the current runtime and returns its exit code and output. */
function runDemo(args: string[] = []): Promise<{ code: number | null; output: string }> {
  const isDeno = "Deno" in globalThis;
  const command = process.execPath;
  const argv = isDeno ? ["run", "-A", "examples/demo.ts", ...args] : ["examples/demo.ts", ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let output = "";
    child.stdout.on("data", (chunk) => output += String(chunk));
    child.stderr.on("data", (chunk) => output += String(chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("the demo", () => {
  it("elects, publishes, fails over and exits 0 on the embedded transport", async () => {
    const { code, output } = await runDemo();
    assert.equal(code, 0, output);
    assert.match(output, /all three joined one cluster/);
    assert.match(output, /acknowledged by: bob, carol/);
    assert.match(output, /took over in \d+ ms/);
    assert.match(output, /A publish after the failover\n(.|\n)*acknowledged by: /);
    assert.match(output, /done in \d+ ms/);
  });

  it("does the same over a real nats-server with --nats URL", async () => {
    const server = await startNatsServer();
    try {
      const { code, output } = await runDemo(["--nats", server.url]);
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`NATS at ${server.url.replaceAll(".", "\\.")}`));
      assert.match(output, /acknowledged by: bob, carol/);
      assert.match(output, /took over in \d+ ms/);
      assert.match(output, /done in \d+ ms/);
    } finally {
      await server.stop();
    }
  });

  it("explains its usage when --nats has no URL", async () => {
    const { code, output } = await runDemo(["--nats"]);
    assert.equal(code, 2);
    assert.match(output, /usage: deno task demo/);
  });
});
