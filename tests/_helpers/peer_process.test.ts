import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type NatsServer, startNatsServer } from "./nats_server.ts";
import { PeerCommandError, type PeerProcess, startPeerProcess } from "./peer_process.ts";
import { waitFor } from "./wait.ts";

/** Timing for peers in child processes on a busy 2-core machine. */
const TIMING = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2, discoveryMs: 300, peerTimeoutMs: 5000 };

describe("peer_process fixture", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("three peer processes form one cluster and replicate a set", async () => {
    const clusterId = `pp-${crypto.randomUUID().slice(0, 8)}`;
    const peers: PeerProcess[] = [];
    try {
      for (const peerId of ["a", "b", "c"]) {
        peers.push(await startPeerProcess({ natsUrl: server.url, peerId, clusterId, ...TIMING }));
      }
      assert.equal(new Set(peers.map((p) => p.pid)).size, 3, "three processes");
      await Promise.all(peers.map((p) => p.join({ timeoutMs: 30_000 })));
      await waitFor(async () => {
        const all = await Promise.all(peers.map((p) => p.status()));
        return all.every((s) => s.remotePeerIds.length === 2 && s.leaderId === all[0].leaderId);
      }, { timeoutMs: 20_000, intervalMs: 50, message: "one cluster of three" });

      assert.equal(await peers[1].mapSet("m", "k", { n: 1 }), null);
      assert.deepEqual(await peers[2].mapSet("m", "k", { n: 2 }), { n: 1 });
      for (const p of peers) {
        assert.deepEqual(await p.mapGet("m", "k", { linearizable: true }), { n: 2 });
      }
      assert.deepEqual(await peers[0].mapEntries("m"), [["k", { n: 2 }]]);
      await assert.rejects(peers[0].request("no-such-command"), PeerCommandError);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
    for (const p of peers) assert.equal(p.exited, true);
  });

  it("kill(SIGKILL) ends the process and rejects what was pending", async () => {
    const peer = await startPeerProcess({
      natsUrl: server.url,
      peerId: "lone",
      clusterId: `pp-${crypto.randomUUID().slice(0, 8)}`,
      ...TIMING,
    });
    try {
      await peer.join({ timeoutMs: 20_000 });
      peer.kill("SIGSTOP");
      const stalled = peer.status(60_000);
      peer.kill("SIGKILL");
      await assert.rejects(stalled, /exited/);
      const exit = await peer.waitForExit(10_000);
      assert.equal(exit.signal, "SIGKILL");
      await assert.rejects(peer.status(), /exited/);
    } finally {
      await peer.close();
    }
  });
});
