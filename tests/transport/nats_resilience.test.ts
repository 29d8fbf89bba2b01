/**
 * NatsTransport across nats-server restarts: the server's `max_payload` while reconnecting and after
 * reconnecting to a server with another one, a flush pending when the transport closes, a client
 * that gives up reconnecting, and a Hamok cluster that must elect and commit again afterwards.
 *
 * The servers read a config file (`max_payload` is not a command-line option); `restart()` starts
 * the same command line, so rewriting the file between stop and start changes the server's limit.
 */

import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HamokClosedError, HamokPayloadTooLargeError, HamokTransportError } from "../../src/errors.ts";
import { NatsTransport } from "../../src/transport/nats_transport.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { startCluster, type TransportFactory } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { uniqueSubject } from "./contract.ts";

const TEST_TIMEOUT = { timeout: 60_000 };

describe("NatsTransport resilience (server restarts, max_payload)", () => {
  let dir: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "hamok-nats-resilience-"));
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  let configs = 0;
  /** A nats-server reading a config file with `max_payload`; `setMaxPayload` rewrites it for the next restart. */
  async function serverWithMaxPayload(
    maxPayload: number,
  ): Promise<{ server: NatsServer; setMaxPayload(bytes: number): void }> {
    const file = join(dir, `server-${++configs}.conf`);
    const setMaxPayload = (bytes: number): void => writeFileSync(file, `max_payload: ${bytes}\n`);
    setMaxPayload(maxPayload);
    const server = await startNatsServer({ extraArgs: ["-c", file] });
    cleanups.push(() => server.stop());
    return { server, setMaxPayload };
  }

  async function transport(server: NatsServer, extra: Record<string, unknown> = {}): Promise<NatsTransport> {
    const t = await NatsTransport.connect({ servers: server.url, ...extra });
    cleanups.push(() => t.close());
    return t;
  }

  function assertTooLarge(fn: () => void, size: number, limit: number): void {
    assert.throws(fn, (error: unknown) => {
      assert.ok(
        error instanceof HamokPayloadTooLargeError,
        `expected HamokPayloadTooLargeError, got ${error}`,
      );
      assert.equal(error.code, "HAMOK_PAYLOAD_TOO_LARGE");
      assert.equal(error.limit, limit);
      assert.ok(error.size >= size, `size ${error.size} >= ${size}`);
      return true;
    });
  }

  it(
    "while reconnecting, the last server's max_payload still holds and an oversized publish throws HamokPayloadTooLargeError",
    TEST_TIMEOUT,
    async () => {
      const { server } = await serverWithMaxPayload(64 * 1024);
      const t = await transport(server);
      assert.equal(t.maxPayload, 64 * 1024);
      const subject = uniqueSubject();
      assertTooLarge(() => t.publish(subject, new Uint8Array(70_000)), 70_000, 64 * 1024);
      // headers count toward the limit
      assertTooLarge(
        () => t.publish(subject, new Uint8Array(64 * 1024 - 8), { traceparent: "00-aa-bb-01" }),
        64 * 1024,
        64 * 1024,
      );
      t.publish(subject, new Uint8Array(60_000)); // under the limit: fine

      await server.stop("SIGKILL");
      // the nats client drops the server INFO on each reconnect attempt
      await waitFor(() => t.state === "reconnecting" && t.connection.info === undefined, {
        timeoutMs: 10_000,
        message: "reconnecting without a server INFO",
      });
      assert.equal(t.maxPayload, 64 * 1024, "the last server's max_payload, not the 1 MiB default");
      assertTooLarge(() => t.publish(subject, new Uint8Array(70_000)), 70_000, 64 * 1024);
      t.publish(subject, new Uint8Array(100)); // small: buffered as before, no throw
    },
  );

  it(
    "after reconnecting to a server with a smaller max_payload the new limit is read, enforced and reported",
    TEST_TIMEOUT,
    async () => {
      const { server, setMaxPayload } = await serverWithMaxPayload(64 * 1024);
      const t = await transport(server);
      const errors: Error[] = [];
      t.on("error", (error) => errors.push(error));
      const subject = uniqueSubject();
      const received: number[] = [];
      t.subscribe(subject, (msg) => received.push(msg.data.byteLength));
      await t.flush();
      t.publish(subject, new Uint8Array(40_000));
      await waitFor(() => received.length === 1, { timeoutMs: 5000, message: "40 kB before the restart" });

      await server.stop("SIGKILL");
      setMaxPayload(32 * 1024);
      await server.restart();
      await waitFor(() => t.state === "connected" && t.connection.info !== undefined, {
        timeoutMs: 15_000,
        message: "reconnected",
      });
      assert.equal(t.maxPayload, 32 * 1024);
      assertTooLarge(() => t.publish(subject, new Uint8Array(40_000)), 40_000, 32 * 1024);
      const shrunk = errors.filter((e) =>
        e instanceof HamokTransportError && /smaller max_payload/.test(e.message)
      );
      assert.equal(shrunk.length, 1, `one report of the smaller limit: ${errors.map((e) => e.message)}`);
      // the connection is healthy: the subscription is back and a message under the new limit flows
      await t.flush();
      t.publish(subject, new Uint8Array(30_000));
      await waitFor(() => received.length === 2, { timeoutMs: 5000, message: "30 kB after the restart" });
      assert.deepEqual(received, [40_000, 30_000]);
    },
  );

  it(
    "a flush still waiting when the transport closes rejects with HamokClosedError",
    TEST_TIMEOUT,
    async () => {
      const { server } = await serverWithMaxPayload(1024 * 1024);
      const t = await transport(server);
      await server.stop("SIGKILL");
      await waitFor(() => t.state === "reconnecting", { timeoutMs: 10_000, message: "reconnecting" });
      const flushed = t.flush().then(() => "resolved", (error: unknown) => error);
      await t.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        flushed,
        new Promise((resolve) => (timer = setTimeout(() => resolve("still pending after 5 s"), 5000))),
      ]);
      clearTimeout(timer);
      assert.ok(outcome instanceof HamokClosedError, `flush outcome: ${String(outcome)}`);
    },
  );

  it(
    "a connection that gives up reconnecting is reported as such, and the transport is closed for good",
    TEST_TIMEOUT,
    async () => {
      const { server } = await serverWithMaxPayload(1024 * 1024);
      const t = await transport(server, { maxReconnectAttempts: 2, reconnectTimeWait: 50 });
      const errors: Error[] = [];
      t.on("error", (error) => errors.push(error));
      await server.stop("SIGKILL");
      await waitFor(() => t.state === "closed", { timeoutMs: 15_000, message: "closed after giving up" });
      const gaveUp = errors.filter((e) =>
        e instanceof HamokTransportError && /gave up reconnecting/.test(e.message)
      );
      assert.equal(gaveUp.length, 1, `errors: ${errors.map((e) => e.message)}`);
      assert.ok(gaveUp[0]!.cause !== undefined, "the nats client's last error is the cause");
      assert.throws(() => t.publish(uniqueSubject(), new Uint8Array(1)), HamokClosedError);
      await assert.rejects(t.flush(), HamokClosedError);
    },
  );

  it(
    "a Hamok cluster over NATS: an oversized write while reconnecting rejects at once; after the restart it elects and commits again",
    TEST_TIMEOUT,
    async () => {
      const { server } = await serverWithMaxPayload(64 * 1024);
      const made: Transport[] = [];
      const factory: TransportFactory = {
        name: "nats",
        async create(): Promise<Transport> {
          const t = await NatsTransport.connect({ servers: server.url });
          made.push(t);
          return t;
        },
        async close(): Promise<void> {
          await Promise.all(made.map((t) => t.close()));
        },
      };
      const cluster = await startCluster(factory, ["a", "b", "c"]);
      cleanups.push(() => cluster.close());
      const leader = await cluster.settled();
      const maps = new Map(cluster.peers.map((p) => [p, p.createMap<string, string>({ mapId: "m" })]));
      await maps.get(leader)!.set("before", "1");
      const limit = leader.maxEntryBytes;
      assert.ok(limit < 64 * 1024, `maxEntryBytes ${limit} under the server's max_payload`);

      await server.stop("SIGKILL");
      const leaderTransport = cluster.transports.get(leader.localPeerId) as NatsTransport;
      await waitFor(() => leaderTransport.connection.info === undefined, {
        timeoutMs: 10_000,
        message: "the leader's transport reconnecting",
      });
      assert.equal(leader.maxEntryBytes, limit, "the peer's limit does not jump to the 1 MiB default");
      // with the 1 MiB default the write would enter the log and never replicate
      await assert.rejects(
        maps.get(leader)!.set("big", "x".repeat(200_000), { timeoutMs: 3000 }),
        HamokPayloadTooLargeError,
      );

      await server.restart();
      await waitFor(() => made.every((t) => t.state === "connected"), {
        timeoutMs: 15_000,
        message: "every peer reconnected",
      });
      const next = await cluster.settled(15_000);
      await maps.get(next)!.set("after", "2", { timeoutMs: 10_000 });
      for (const peer of cluster.peers) {
        await peer.waitUntilCommitHead();
        assert.equal(maps.get(peer)!.get("after"), "2", `peer ${peer.localPeerId} applied the write`);
        assert.equal(maps.get(peer)!.get("big"), undefined);
      }
    },
  );

  /** A factory of NATS transports for a test cluster, each made with `extra` connect options. */
  function natsFactory(
    server: NatsServer,
    extra: Record<string, unknown> = {},
  ): TransportFactory & { made: Transport[] } {
    const made: Transport[] = [];
    return {
      name: "nats",
      made,
      async create(): Promise<Transport> {
        const t = await NatsTransport.connect({ servers: server.url, ...extra });
        made.push(t);
        return t;
      },
      async close(): Promise<void> {
        await Promise.all(made.map((t) => t.close()));
      },
    };
  }

  it(
    "after a restart with a smaller max_payload, appends that grouped several entries are split to fit: writes commit again",
    TEST_TIMEOUT,
    async () => {
      const { server, setMaxPayload } = await serverWithMaxPayload(1024 * 1024);
      const factory = natsFactory(server);
      const cluster = await startCluster(factory, ["a", "b", "c"]);
      cleanups.push(() => cluster.close());
      await cluster.settled();
      const maps = new Map(cluster.peers.map((p) => [p, p.createMap<string, string>({ mapId: "m" })]));
      setMaxPayload(64 * 1024);
      await server.restart();
      await waitFor(() => factory.made.every((t) => t.state === "connected"), {
        timeoutMs: 15_000,
        message: "every peer reconnected",
      });
      const leader = await cluster.settled(15_000);
      assert.ok(leader.maxEntryBytes < 64 * 1024);
      // the appends were sized for 1 MiB when the peers joined: several of these in one message
      // were refused by the new server, resent and refused again, for good
      const writes = Array.from({ length: 8 }, (_, i) => maps.get(leader)!.set(`k${i}`, "x".repeat(40_000)));
      await Promise.all(writes);
      assert.equal(await maps.get(leader)!.set("small", "1"), undefined);
      for (const peer of cluster.peers) {
        await peer.waitUntilCommitHead(10_000);
        assert.equal(maps.get(peer)!.get("k7")?.length, 40_000, `peer ${peer.localPeerId}`);
      }
    },
  );

  it(
    "a peer whose transport gave up reconnecting says so on its error event",
    TEST_TIMEOUT,
    async () => {
      const { server } = await serverWithMaxPayload(1024 * 1024);
      const factory = natsFactory(server, { maxReconnectAttempts: 2, reconnectTimeWait: 50 });
      const cluster = await startCluster(factory, ["a", "b"]);
      cleanups.push(() => cluster.close());
      await cluster.settled();
      const errors: Error[] = [];
      for (const peer of cluster.peers) peer.on("error", (e) => errors.push(e));
      await server.stop("SIGKILL");
      // the old peer heard nothing: the transports closed for good and the cluster was silently dead
      await waitFor(
        () =>
          cluster.peers.every((p) =>
            errors.some((e) => e instanceof HamokTransportError && /closed for good/.test(e.message)) &&
            factory.made.every((t) => t.state === "closed") && !p.closed
          ),
        { timeoutMs: 20_000, message: "every peer reported its closed transport" },
      );
      assert.ok(errors.filter((e) => /can no longer reach the cluster/.test(e.message)).length >= 2);
    },
  );
});
