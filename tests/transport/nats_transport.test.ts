import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, headers as natsHeaders, type NatsConnection } from "nats";
import { HamokClosedError, HamokTransportError } from "../../src/errors.ts";
import { NATS_TRANSPORT_DEFAULTS, NatsTransport } from "../../src/transport/nats_transport.ts";
import type { TransportMessage, TransportState } from "../../src/transport/transport.ts";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { waitFor } from "../_helpers/wait.ts";
import { transportContract, uniqueSubject } from "./contract.ts";

let server: NatsServer | undefined;

transportContract({
  name: "NatsTransport",
  async setup(): Promise<void> {
    server = await startNatsServer();
  },
  async teardown(): Promise<void> {
    await server?.stop();
    server = undefined;
  },
  create: () => NatsTransport.connect({ servers: server!.url }),
  exitFixtureArgs: () => ["nats", server!.url],
});

const TEST_TIMEOUT = { timeout: 30_000 };

describe("NatsTransport (NATS specifics)", () => {
  let nats: NatsServer;
  const cleanups: (() => Promise<unknown>)[] = [];

  before(async () => {
    nats = await startNatsServer();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });
  after(async () => {
    await nats.stop();
  });

  async function transport(): Promise<NatsTransport> {
    const t = await NatsTransport.connect({ servers: nats.url });
    cleanups.push(() => t.close());
    return t;
  }

  async function rawConnection(): Promise<NatsConnection> {
    const nc = await connect({ servers: nats.url });
    cleanups.push(() => (nc.isClosed() ? Promise.resolve() : nc.close()));
    return nc;
  }

  it("connect() applies the reconnect defaults and owns its connection", TEST_TIMEOUT, async () => {
    assert.deepEqual({ ...NATS_TRANSPORT_DEFAULTS }, { maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const t = await transport();
    assert.equal(t.ownsConnection, true);
    assert.equal(t.connection.isClosed(), false);
    await t.close();
    assert.equal(t.connection.isClosed(), true);
  });

  it("connect() rejects with HamokTransportError when no server listens", TEST_TIMEOUT, async () => {
    const gone = await startNatsServer();
    const url = gone.url;
    await gone.stop();
    await assert.rejects(NatsTransport.connect({ servers: url }), (err: unknown) => {
      assert.ok(err instanceof HamokTransportError);
      assert.ok(err.cause !== undefined);
      return true;
    });
  });

  it("maps headers to real NATS headers in both directions", TEST_TIMEOUT, async () => {
    const t = await transport();
    const nc = await rawConnection();
    const subject = uniqueSubject();
    const raw: string[] = [];
    nc.subscribe(`${subject}.to-raw`, {
      callback: (_err, msg) => {
        raw.push(msg.headers?.get("traceparent") ?? "none", msg.headers?.get("X-Mixed-Case") ?? "none");
      },
    });
    const fromRaw: TransportMessage[] = [];
    t.subscribe(`${subject}.from-raw`, (msg) => fromRaw.push(msg));
    await Promise.all([nc.flush(), t.flush()]);
    t.publish(`${subject}.to-raw`, new Uint8Array([1]), { traceparent: "00-aa-bb-01", "X-Mixed-Case": "v" });
    const h = natsHeaders();
    h.set("traceparent", "00-cc-dd-01");
    nc.publish(`${subject}.from-raw`, new Uint8Array([2]), { headers: h });
    nc.publish(`${subject}.from-raw`, new Uint8Array([3]));
    await waitFor(() => raw.length === 2 && fromRaw.length === 2, { timeoutMs: 5000, message: "both ways" });
    assert.deepEqual(raw, ["00-aa-bb-01", "v"]);
    assert.deepEqual({ ...fromRaw[0].headers }, { traceparent: "00-cc-dd-01" });
    assert.equal(fromRaw[1].headers, undefined);
  });

  it(
    "close() drains: messages the server already routed to the transport reach its handlers",
    TEST_TIMEOUT,
    async () => {
      const [publisher, t] = await Promise.all([transport(), transport()]);
      const subject = uniqueSubject();
      let received = 0;
      t.subscribe(subject, () => received++);
      await t.flush();
      for (let i = 0; i < 2000; i++) publisher.publish(subject, new Uint8Array(64));
      await publisher.flush();
      await t.close();
      assert.equal(received, 2000);
    },
  );

  it(
    "wrapping an application's connection: close() removes only this transport's subscriptions",
    TEST_TIMEOUT,
    async () => {
      const nc = await rawConnection();
      const t = new NatsTransport(nc);
      assert.equal(t.ownsConnection, false);
      const subject = uniqueSubject();
      let viaTransport = 0;
      let viaApp = 0;
      t.subscribe(subject, () => viaTransport++);
      t.subscribe(`${subject}.>`, () => viaTransport++);
      nc.subscribe(subject, { callback: () => viaApp++ });
      await t.flush();
      nc.publish(subject, new Uint8Array(1));
      await waitFor(() => viaTransport === 1 && viaApp === 1, { timeoutMs: 5000, message: "first message" });
      await t.close();
      assert.equal(t.state, "closed");
      assert.equal(nc.isClosed(), false, "the application's connection stays open");
      nc.publish(subject, new Uint8Array(1));
      nc.publish(`${subject}.x`, new Uint8Array(1));
      await waitFor(() => viaApp === 2, { timeoutMs: 5000, message: "second message to the app" });
      await nc.flush();
      assert.equal(viaTransport, 1);
      assert.throws(() => t.publish(subject, new Uint8Array(1)), HamokClosedError);
    },
  );

  it(
    "the application closing a wrapped connection surfaces as state-changed to closed",
    TEST_TIMEOUT,
    async () => {
      const nc = await connect({ servers: nats.url });
      const t = new NatsTransport(nc);
      const sub = t.subscribe(uniqueSubject(), () => {});
      const changes: TransportState[] = [];
      t.on("state-changed", (state) => changes.push(state));
      await nc.close();
      await waitFor(() => t.state === "closed", { timeoutMs: 5000, message: "closed state" });
      assert.deepEqual(changes, ["closed"]);
      assert.equal(sub.closed, true);
      assert.throws(() => t.publish("a.b", new Uint8Array(1)), HamokClosedError);
      await t.close(); // still resolves
    },
  );

  it(
    "close() while the server is gone resolves promptly and closes the connection",
    TEST_TIMEOUT,
    async () => {
      const server = await startNatsServer();
      cleanups.push(() => server.stop());
      const t = await NatsTransport.connect({ servers: server.url, closeTimeoutMs: 2000 });
      const sub = t.subscribe(uniqueSubject(), () => {});
      await server.stop();
      await waitFor(() => t.state === "reconnecting", { timeoutMs: 10_000, message: "reconnecting" });
      await t.close();
      assert.equal(t.state, "closed");
      assert.equal(t.connection.isClosed(), true);
      assert.equal(sub.closed, true);
    },
  );

  it(
    "survives a killed and restarted nats-server: state-changed events, then messages flow again",
    TEST_TIMEOUT,
    async () => {
      const server = await startNatsServer();
      cleanups.push(() => server.stop());
      const [a, b] = await Promise.all([
        NatsTransport.connect({ servers: server.url }),
        NatsTransport.connect({ servers: server.url }),
      ]);
      cleanups.push(() => a.close(), () => b.close());
      const changes: Record<string, TransportState[]> = { a: [], b: [] };
      a.on("state-changed", (state) => changes.a.push(state));
      b.on("state-changed", (state) => changes.b.push(state));
      const errorsA: Error[] = [];
      a.on("error", (err) => errorsA.push(err));
      const subject = uniqueSubject();
      const got: number[] = [];
      b.subscribe(subject, (msg) => got.push(msg.data[0]));
      await b.flush();
      a.publish(subject, new Uint8Array([1]));
      await waitFor(() => got.length === 1, { timeoutMs: 5000, message: "before restart" });

      await server.stop("SIGKILL");
      await waitFor(() => a.state !== "connected" && b.state !== "connected", {
        timeoutMs: 10_000,
        message: "both see the disconnect",
      });
      // Publishing while disconnected neither throws nor rejects; it is reported once on `error`.
      a.publish(subject, new Uint8Array([2]));
      a.publish(subject, new Uint8Array([3]));
      assert.equal(errorsA.length, 1);
      assert.ok(errorsA[0] instanceof HamokTransportError);

      await server.restart();
      await waitFor(() => a.state === "connected" && b.state === "connected", {
        timeoutMs: 15_000,
        message: "both reconnect",
      });
      for (const list of [changes.a, changes.b]) {
        assert.equal(list[0], "disconnected");
        assert.equal(list.at(-1), "connected");
        assert.ok(list.every((s) => s === "disconnected" || s === "reconnecting" || s === "connected"));
      }
      // b's subscription was re-sent by the client; a flush proves the server has it.
      await b.flush();
      const before = got.length;
      a.publish(subject, new Uint8Array([4]));
      await waitFor(() => got.includes(4), { timeoutMs: 5000, message: "message after reconnect" });
      assert.ok(got.length >= before + 1);
      assert.equal(errorsA.length, 1, "no new error once connected again");
    },
  );
});
