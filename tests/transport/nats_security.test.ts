/**
 * The NATS-side protections the README's "Security" section documents, on a real nats-server:
 * the per-user subject permissions of `examples/nats-permissions.conf` (peer users run a cluster;
 * another application's user can neither publish nor subscribe under `hamok.orders.>`; a peer user
 * cannot read another peer's inbox), and TLS through the connection options (a throwaway CA and
 * server certificate made with `openssl` for 127.0.0.1).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "nats";
import { Hamok } from "../../src/hamok.ts";
import { NatsTransport } from "../../src/transport/nats_transport.ts";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { waitFor } from "../_helpers/wait.ts";

const CONF = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "examples", "nats-permissions.conf");
const TIMING = { tickMs: 50, electionTicks: 10, heartbeatTicks: 2, discoveryMs: 300 };

/** Three peers a, b, c of cluster `orders`, each on its own transport from `connectPeer`. */
async function runCluster(connectPeer: (peerId: string) => Promise<NatsTransport>): Promise<{
  peers: Hamok[];
  transports: NatsTransport[];
  close(): Promise<void>;
}> {
  const transports: NatsTransport[] = [];
  const peers: Hamok[] = [];
  for (const peerId of ["a", "b", "c"]) {
    const transport = await connectPeer(peerId);
    transports.push(transport);
    peers.push(new Hamok({ peerId, clusterId: "orders", transport, ...TIMING }));
  }
  return {
    peers,
    transports,
    close: async () => {
      for (const p of peers) p.close();
      await Promise.all(transports.map((t) => t.close()));
    },
  };
}

/** Whether the server refuses `subject` to `nc` for subscribing (the error reaches the subscription). */
async function subscribeRefused(nc: NatsConnection, subject: string): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    nc.subscribe(subject, {
      callback: (err) => {
        if (err !== null && /permissions/i.test(err.message)) {
          clearTimeout(timer);
          resolve(true);
        }
      },
    });
    void nc.flush();
  });
}

describe("nats-server with per-user subject permissions (examples/nats-permissions.conf)", () => {
  let server: NatsServer;
  before(async () => {
    server = await startNatsServer({ extraArgs: ["-c", CONF] });
  });
  after(async () => {
    await server?.stop();
  });

  it("peer users run a cluster; another user cannot publish or subscribe under hamok.orders.>", async () => {
    const url = server.url;
    const cluster = await runCluster((peerId) =>
      NatsTransport.connect({ servers: url, user: `orders-${peerId}`, pass: `change-me-${peerId}` })
    );
    let watcher: NatsConnection | undefined;
    let outsider: NatsConnection | undefined;
    try {
      await Promise.all(cluster.peers.map((p) => p.join({ timeoutMs: 20_000 })));
      const [a, b, c] = cluster.peers as [Hamok, Hamok, Hamok];
      await waitFor(
        () => cluster.peers.every((p) => p.remotePeerIds.size === 2 && p.leaderId === a.leaderId),
        {
          timeoutMs: 20_000,
          intervalMs: 20,
          message: "one cluster of three",
        },
      );
      const map = b.createMap<string, number>({ mapId: "m" });
      assert.equal(await map.set("k", 1), undefined);
      const got: number[] = [];
      await c.createEmitter<{ ev: [number] }>({ emitterId: "e" }).subscribe("ev", (n) => void got.push(n));
      await a.waitUntilCommitHead();
      assert.deepEqual(await a.createEmitter<{ ev: [number] }>({ emitterId: "e" }).publish("ev", 7), ["c"]);
      assert.deepEqual(got, [7]);

      // a peer's user cannot read another peer's inbox
      watcher = await connect({ servers: url, user: "orders-a", pass: "change-me-a" });
      assert.equal(await subscribeRefused(watcher, "hamok.orders.peer.b"), true, "peer a reading b's inbox");

      // another application's user: subscribing is refused, publishing never arrives
      outsider = await connect({ servers: url, user: "billing", pass: "change-me-billing" });
      assert.equal(await subscribeRefused(outsider, "hamok.orders.>"), true, "outsider subscribing");
      const seen: string[] = [];
      watcher.subscribe("hamok.orders.all", {
        callback: (_e, msg) => void seen.push(new TextDecoder().decode(msg.data)),
      });
      await watcher.flush();
      const droppedBefore = cluster.peers.map((p) => p.counters.totalDropped);
      for (let i = 0; i < 10; i++) {
        outsider.publish("hamok.orders.all", new TextEncoder().encode(`outsider-${i}`));
      }
      outsider.publish("hamok.orders.peer.a", new TextEncoder().encode("outsider-inbox"));
      await outsider.flush().catch(() => {});
      watcher.publish("hamok.orders.all", new TextEncoder().encode("marker"));
      await waitFor(() => seen.includes("marker"), {
        timeoutMs: 5000,
        message: "the marker after the outsider's messages",
      });
      assert.deepEqual(seen.filter((s) => s.startsWith("outsider")), [], "no outsider message delivered");
      // the peers never saw them either (the marker itself is one undecodable message each)
      await waitFor(
        () => cluster.peers.every((p, i) => p.counters.totalDropped - droppedBefore[i]! >= 1),
        { timeoutMs: 5000, message: "the marker reached the peers" },
      );
      assert.deepEqual(cluster.peers.map((p, i) => p.counters.totalDropped - droppedBefore[i]!), [1, 1, 1]);
      assert.equal(await map.set("k", 2), 1, "the cluster still works");
    } finally {
      await watcher?.close();
      await outsider?.close();
      await cluster.close();
    }
  });
});

describe("TLS through the connection options", () => {
  let dir: string;
  let server: NatsServer;
  let ca: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "hamok-tls-"));
    const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run([
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "1",
      "-subj",
      "/CN=hamok test CA",
    ]);
    run(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]);
    writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    run([
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "1",
      "-extfile",
      "san.ext",
    ]);
    writeFileSync(
      join(dir, "tls.conf"),
      `tls {\n  cert_file: "${join(dir, "server.pem")}"\n  key_file: "${join(dir, "server.key")}"\n}\n`,
    );
    ca = join(dir, "ca.pem");
    server = await startNatsServer({ extraArgs: ["-c", join(dir, "tls.conf")] });
  });
  after(async () => {
    await server?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("peers connect with tls: { ca } and form a cluster; a client that does not trust the CA is refused", async () => {
    const url = `tls://127.0.0.1:${server.port}`;
    const caPem = readFileSync(ca, "utf8");
    const cluster = await runCluster(() => NatsTransport.connect({ servers: url, tls: { ca: caPem } }));
    try {
      await Promise.all(cluster.peers.map((p) => p.join({ timeoutMs: 20_000 })));
      const [a, b] = cluster.peers as [Hamok, Hamok, Hamok];
      await waitFor(() => cluster.peers.every((p) => p.remotePeerIds.size === 2), {
        timeoutMs: 20_000,
        message: "one cluster of three over TLS",
      });
      const map = a.createMap<string, string>({ mapId: "m" });
      await map.set("k", "over tls");
      assert.equal(
        await b.createMap<string, string>({ mapId: "m" }).get("k", { consistency: "linearizable" }),
        "over tls",
      );
    } finally {
      await cluster.close();
    }
    await assert.rejects(
      NatsTransport.connect({ servers: url, tls: {}, maxReconnectAttempts: 0 }),
      (error: unknown) => /certificate|self.signed|verify/i.test(String((error as Error).cause ?? error)),
    );
  });
});
