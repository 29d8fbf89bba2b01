import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { connect } from "nats";
import { findNatsServerBinary, startNatsServer } from "./nats_server.ts";

describe("startNatsServer (test helper)", () => {
  it(
    "starts on a random 127.0.0.1 port, restarts on the same port, and stops",
    { timeout: 30_000 },
    async () => {
      const server = await startNatsServer({ extraArgs: ["--server_name", "hamok-helper-test"] });
      try {
        assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
        assert.ok(server.port > 0);
        assert.equal(server.url, `nats://127.0.0.1:${server.port}`);
        assert.equal(server.running, true);
        const nc = await connect({ servers: server.url });
        assert.equal(nc.info?.server_name, "hamok-helper-test", "extraArgs reach the server");
        await nc.close();

        const firstPid = server.pid;
        await server.restart();
        assert.notEqual(server.pid, firstPid);
        assert.equal(server.running, true);
        const nc2 = await connect({ servers: server.url });
        assert.equal(nc2.info?.port, server.port);
        await nc2.close();
      } finally {
        await server.stop();
      }
      assert.equal(server.running, false);
      await server.stop(); // idempotent
      await assert.rejects(connect({ servers: server.url }));
    },
  );

  it("throws an Error that says how to install nats-server when the binary is missing", () => {
    const saved = process.env.NATS_SERVER_BIN;
    process.env.NATS_SERVER_BIN = "/nonexistent/nats-server";
    try {
      assert.throws(() => findNatsServerBinary(), /apt-get install nats-server.*NATS_SERVER_BIN/);
    } finally {
      if (saved === undefined) delete process.env.NATS_SERVER_BIN;
      else process.env.NATS_SERVER_BIN = saved;
    }
    assert.ok(findNatsServerBinary().endsWith("nats-server"));
  });
});
