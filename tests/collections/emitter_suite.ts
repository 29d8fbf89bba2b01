/**
 * The HamokEmitter behaviour suite, run with three peers on the memory transport and on a real
 * nats-server (see emitter_memory.test.ts and emitter_nats.test.ts).
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokDeliveryError,
  HamokListenerError,
} from "../../src/errors.ts";
import type { Hamok } from "../../src/hamok.ts";
import { startCluster, type TestCluster, type TransportFactory } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

type Events = {
  greet: [string, number];
  other: [string];
  seq: [number];
  "weird.name *>": [string];
  bad: [unknown];
  boom: [number];
};

let emitterCounter = 0;
const nextId = (base: string) => `${base}-${++emitterCounter}`;

export function emitterSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokEmitter", () => {
    let cluster: TestCluster;
    let a: Hamok, b: Hamok, c: Hamok;

    before(async () => {
      cluster = await startCluster(await makeFactory(), ["a", "b", "c"]);
      [a, b, c] = cluster.peers;
    });
    after(async () => {
      await cluster?.close();
    });

    it("forms one cluster of three peers", () => {
      const leaderIds = new Set(cluster.peers.map((p) => p.leaderId));
      assert.equal(leaderIds.size, 1);
      assert.equal(cluster.peers.filter((p) => p.leader).length, 1);
      for (const p of cluster.peers) assert.equal(p.remotePeerIds.size, 2);
    });

    it("publish resolves with the peers that acknowledged, after their listeners ran", async () => {
      const id = nextId("greet");
      const ea = a.createEmitter<Events>({ emitterId: id });
      const eb = b.createEmitter<Events>({ emitterId: id });
      const ec = c.createEmitter<Events>({ emitterId: id });
      const got: string[] = [];
      await eb.subscribe("greet", (s, n) => got.push(`b:${s}:${n}`));
      await ec.subscribe("greet", (s, n) => got.push(`c:${s}:${n}`));
      await waitFor(() => ea.subscriptions.getPeerIds("greet").length === 2, { timeoutMs: 3000 });
      const peers = await ea.publish("greet", "hi", 1);
      assert.deepEqual([...peers].sort(), ["b", "c"]);
      assert.deepEqual([...got].sort(), ["b:hi:1", "c:hi:1"]);
      // the publisher is included when it has listeners itself
      await ea.subscribe("greet", (s) => got.push(`a:${s}`));
      const withSelf = await ea.publish("greet", "yo", 2);
      assert.deepEqual([...withSelf].sort(), ["a", "b", "c"]);
      assert.ok(got.includes("a:yo"));
      // nobody subscribed: nothing to wait for
      assert.deepEqual(await ea.publish("other", "x"), []);
      for (const e of [ea, eb, ec]) e.close();
    });

    it("notify reaches every subscriber without acknowledgements", async () => {
      const id = nextId("notify");
      const ea = a.createEmitter<Events>({ emitterId: id });
      const eb = b.createEmitter<Events>({ emitterId: id });
      const ec = c.createEmitter<Events>({ emitterId: id });
      const got: string[] = [];
      await eb.subscribe("other", (s) => got.push(`b:${s}`));
      await ec.subscribe("other", (s) => got.push(`c:${s}`));
      await a.waitUntilCommitHead();
      assert.equal(ea.notify("other", "ping"), undefined);
      await waitFor(() => got.length === 2, { timeoutMs: 3000 });
      assert.deepEqual(got.sort(), ["b:ping", "c:ping"]);
      for (const e of [ea, eb, ec]) e.close();
    });

    it("unsubscribing one event leaves the others untouched", async () => {
      const id = nextId("unsub");
      const ea = a.createEmitter<Events>({ emitterId: id });
      const eb = b.createEmitter<Events>({ emitterId: id });
      const greet = () => {};
      const other: string[] = [];
      await eb.subscribe("greet", greet);
      await eb.subscribe("other", (s) => other.push(s));
      await eb.unsubscribe("greet", greet);
      await a.waitUntilCommitHead();
      assert.deepEqual(ea.subscriptions.getPeerIds("greet"), []);
      assert.deepEqual(ea.subscriptions.getPeerIds("other"), ["b"]);
      assert.deepEqual(await ea.publish("other", "still"), ["b"]);
      assert.deepEqual(other, ["still"]);
      assert.deepEqual(await ea.publish("greet", "gone", 0), []);
      ea.close();
      eb.close();
    });

    it("a late-created emitter sees the existing subscriptions, with metadata", async () => {
      const id = nextId("late");
      const eb = b.createEmitter<Events, { zone: string }>({ emitterId: id });
      await eb.subscribe("greet", () => {}, { zone: "eu" });
      const ec = c.createEmitter<Events, { zone: string }>({ emitterId: id });
      await ec.ready;
      assert.deepEqual(ec.subscriptions.getPeerIds("greet"), ["b"]);
      assert.deepEqual(ec.subscriptions.getMetadata("greet", "b"), { zone: "eu" });
      const snapshot = ec.export();
      assert.equal(snapshot.emitterId, id);
      assert.deepEqual(snapshot.subscriptions, [{
        event: "greet",
        subscribers: [{ peerId: "b", metadata: { zone: "eu" } }],
      }]);
      eb.close();
      ec.close();
    });

    it("table events fire on every peer, in the same order", async () => {
      const id = nextId("table");
      const seen = new Map<string, string[]>();
      const emitters = [a, b, c].map((p) => {
        const e = p.createEmitter<Events>({ emitterId: id });
        const log: string[] = [];
        seen.set(p.localPeerId, log);
        e.subscriptions.on("added", (ev, peer) => log.push(`+${ev}@${peer}`));
        e.subscriptions.on("removed", (ev, peer) => log.push(`-${ev}@${peer}`));
        return e;
      });
      const l = () => {};
      await emitters[1].subscribe("greet", l);
      await emitters[2].subscribe("other", l);
      await emitters[1].unsubscribe("greet", l);
      await Promise.all([a, b, c].map((p) => p.waitUntilCommitHead()));
      const expected = ["+greet@b", "+other@c", "-greet@b"];
      for (const log of seen.values()) assert.deepEqual(log, expected);
      for (const e of emitters) e.close();
    });

    it("1,000 publishes and notifies from one peer arrive in order", async () => {
      const id = nextId("order");
      const ea = a.createEmitter<Events>({ emitterId: id });
      const eb = b.createEmitter<Events>({ emitterId: id });
      const got: number[] = [];
      await eb.subscribe("seq", (n) => got.push(n));
      await a.waitUntilCommitHead();
      const acks: Promise<string[]>[] = [];
      for (let i = 0; i < 1000; i++) {
        if (i % 3 === 0) ea.notify("seq", i);
        else acks.push(ea.publish("seq", i));
      }
      const results = await Promise.all(acks);
      assert.ok(results.every((r) => r.length === 1 && r[0] === "b"));
      await waitFor(() => got.length === 1000, { timeoutMs: 5000 });
      assert.deepEqual(got, Array.from({ length: 1000 }, (_, i) => i));
      ea.close();
      eb.close();
    });

    it("event names that are not subject tokens are encoded and work", async () => {
      const id = nextId("weird.emitter id");
      const ea = a.createEmitter<Events>({ emitterId: id });
      const eb = b.createEmitter<Events>({ emitterId: id });
      const got: string[] = [];
      await eb.subscribe("weird.name *>", (s) => got.push(s));
      await a.waitUntilCommitHead();
      assert.deepEqual(await ea.publish("weird.name *>", "ok"), ["b"]);
      assert.deepEqual(got, ["ok"]);
      ea.close();
      eb.close();
    });

    it("a listener that throws is isolated and reported; the ack still goes back", async () => {
      const id = nextId("throw");
      const ea = a.createEmitter<Events>({ emitterId: id });
      const eb = b.createEmitter<Events>({ emitterId: id });
      const errors: Error[] = [];
      const onError = (e: Error) => errors.push(e);
      b.on("error", onError);
      const got: number[] = [];
      await eb.subscribe("boom", () => {
        throw new Error("listener failure");
      });
      await eb.subscribe("boom", (n) => got.push(n));
      await a.waitUntilCommitHead();
      assert.deepEqual(await ea.publish("boom", 7), ["b"]);
      assert.deepEqual(got, [7]);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof HamokListenerError);
      assert.equal((errors[0] as HamokListenerError).event, "boom");
      assert.equal((errors[0].cause as Error).message, "listener failure");
      b.off("error", onError);
      ea.close();
      eb.close();
    });

    it("arguments the codec cannot encode reject with HamokCodecError and send nothing", async () => {
      const id = nextId("codec");
      const failing = {
        encode: () => {
          throw new Error("cannot encode");
        },
        decode: (d: string | Uint8Array) => [d],
      };
      const ea = a.createEmitter<Events>({ emitterId: id, payloadsCodec: new Map([["bad", failing]]) });
      const eb = b.createEmitter<Events>({ emitterId: id });
      let received = 0;
      await eb.subscribe("bad", () => received++);
      await a.waitUntilCommitHead();
      await assert.rejects(ea.publish("bad", 1), HamokCodecError);
      assert.throws(() => ea.notify("bad", 1), HamokCodecError);
      assert.equal(received, 0);
      ea.close();
      eb.close();
    });

    it("a remote peer that cannot decode is named in a HamokDeliveryError", async () => {
      const id = nextId("decode");
      const ok = {
        encode: (...args: unknown[]) => JSON.stringify(args),
        decode: (d: string | Uint8Array) => JSON.parse(String(d)),
      };
      const broken = {
        encode: ok.encode,
        decode: () => {
          throw new Error("corrupt on b");
        },
      };
      const ea = a.createEmitter<Events>({ emitterId: id, payloadsCodec: new Map([["bad", ok]]) });
      const eb = b.createEmitter<Events>({ emitterId: id, payloadsCodec: new Map([["bad", broken]]) });
      const ec = c.createEmitter<Events>({ emitterId: id, payloadsCodec: new Map([["bad", ok]]) });
      const onError = () => {};
      b.on("error", onError);
      const got: unknown[] = [];
      await eb.subscribe("bad", () => {});
      await ec.subscribe("bad", (v) => got.push(v));
      await a.waitUntilCommitHead();
      const error = await ea.publish("bad", { x: 1 }).then(() => undefined, (e) => e);
      assert.ok(error instanceof HamokDeliveryError, String(error));
      assert.deepEqual(error.acknowledgedPeerIds, ["c"]);
      assert.equal(error.failures.length, 1);
      assert.equal(error.failures[0].peerId, "b");
      assert.equal(error.failures[0].code, "HAMOK_CODEC");
      assert.match(error.failures[0].message, /corrupt on b/);
      assert.deepEqual(got, [{ x: 1 }]);
      b.off("error", onError);
      for (const e of [ea, eb, ec]) e.close();
    });

    it("misuse gets typed errors", async () => {
      const id = nextId("misuse");
      const ea = a.createEmitter<Events>({ emitterId: id });
      assert.throws(() => a.createEmitter<Events>({ emitterId: id }), HamokConfigError);
      assert.equal(a.getOrCreateEmitter<Events>({ emitterId: id }), ea);
      assert.throws(() => a.createEmitter({ emitterId: "" }), HamokConfigError);
      assert.throws(() => a.createEmitter({ emitterId: "x", requestTimeoutInMs: -1 }), HamokConfigError);
      // deno-lint-ignore no-explicit-any
      await assert.rejects(ea.subscribe("greet", "not a function" as any), HamokConfigError);
      // deno-lint-ignore no-explicit-any
      assert.throws(() => ea.on("greet", 42 as any), HamokConfigError);
      ea.close();
      assert.equal(ea.closed, true);
      await assert.rejects(ea.publish("greet", "x", 1), HamokClosedError);
      await assert.rejects(ea.subscribe("greet", () => {}), HamokClosedError);
      assert.throws(() => ea.notify("greet", "x", 1), HamokClosedError);
      // the id is free again once closed
      const again = a.createEmitter<Events>({ emitterId: id });
      again.close();
    });

    it("clear() withdraws this peer's subscriptions everywhere", async () => {
      const id = nextId("clear");
      const ea = a.createEmitter<Events>({ emitterId: id });
      const eb = b.createEmitter<Events>({ emitterId: id });
      await eb.subscribe("greet", () => {});
      await eb.subscribe("other", () => {});
      await eb.clear();
      await a.waitUntilCommitHead();
      assert.equal(ea.subscriptions.size, 0);
      assert.deepEqual(await ea.publish("greet", "x", 1), []);
      ea.close();
      eb.close();
    });

    it("re-subscribing with other metadata fires 'updated' everywhere", async () => {
      const id = nextId("meta");
      const ea = a.createEmitter<Events, { v: number }>({ emitterId: id });
      const eb = b.createEmitter<Events, { v: number }>({ emitterId: id });
      const updates: unknown[] = [];
      ea.subscriptions.on(
        "updated",
        (event, peerId, metadata, previous) => updates.push([event, peerId, metadata, previous]),
      );
      await eb.subscribe("greet", () => {}, { v: 1 });
      await eb.subscribe("greet", () => {}, { v: 1 }); // same metadata: no change
      await eb.subscribe("greet", () => {}, { v: 2 });
      await a.waitUntilCommitHead();
      assert.deepEqual(updates, [["greet", "b", { v: 2 }, { v: 1 }]]);
      assert.deepEqual(ea.subscriptions.getMetadata("greet", "b"), { v: 2 });
      ea.close();
      eb.close();
    });

    it("publish on a closed peer rejects with HamokClosedError", async () => {
      const extra = await cluster.add(`closing-${++emitterCounter}`);
      await extra.join();
      const e = extra.createEmitter<Events>({ emitterId: nextId("closed-peer") });
      extra.close();
      assert.equal(e.closed, true);
      await assert.rejects(e.publish("greet", "x", 1), HamokClosedError);
      await assert.rejects(e.subscribe("greet", () => {}), HamokClosedError);
      await cluster.transports.get(extra.localPeerId)?.close();
      // the others remove the silent peer again
      await waitFor(() => !a.remotePeerIds.has(extra.localPeerId), { timeoutMs: 5000 });
    });

    it("import merges a snapshot through consensus, split by the outbound limits", async () => {
      const id = nextId("import");
      const ea = a.createEmitter<Events>({
        emitterId: id,
        maxOutboundMessageKeys: 1,
        maxOutboundMessageValues: 1,
      });
      const ec = c.createEmitter<Events>({ emitterId: id });
      await ea.import({
        emitterId: id,
        subscriptions: [
          { event: "greet", subscribers: [{ peerId: "b", metadata: null }, { peerId: "c", metadata: 1 }] },
          { event: "other", subscribers: [{ peerId: "b", metadata: null }] },
        ],
      });
      await c.waitUntilCommitHead();
      assert.deepEqual(ec.subscriptions.getPeerIds("greet").sort(), ["b", "c"]);
      assert.deepEqual(ec.subscriptions.getPeerIds("other"), ["b"]);
      ea.close();
      ec.close();
    });
  });
}

/** Fault scenarios on the memory transport (crash, leader loss, timeouts). */
export function emitterFaultSuite(makeFactory: () => Promise<TransportFactory>): void {
  describe("HamokEmitter under faults", () => {
    it("a crashed subscriber is removed and publish stops waiting for it", async () => {
      const cluster = await startCluster(await makeFactory(), ["a", "b", "c"], { requestTimeoutInMs: 8000 });
      try {
        const [a, b, c] = cluster.peers;
        const id = nextId("crash");
        const ea = a.createEmitter<Events>({ emitterId: id, requestTimeoutInMs: 8000 });
        const eb = b.createEmitter<Events>({ emitterId: id });
        const ec = c.createEmitter<Events>({ emitterId: id });
        await eb.subscribe("greet", () => {});
        await ec.subscribe("greet", () => {});
        await a.waitUntilCommitHead();
        const left: string[] = [];
        a.on("remote-peer-left", (p) => left.push(p));
        const victim = c.leader ? b : c; // keep the leader alive, so removal happens promptly
        const survivor = victim === c ? "b" : "c";
        await cluster.crash(victim);
        const peers = await ea.publish("greet", "after crash", 1);
        assert.deepEqual(peers, [survivor]);
        await waitFor(() => left.includes(victim.localPeerId), { timeoutMs: 5000 });
        assert.deepEqual(ea.subscriptions.getPeerIds("greet"), [survivor]);
        assert.equal(a.remotePeerIds.has(victim.localPeerId), false);
      } finally {
        await cluster.close();
      }
    });

    it("killing the leader during a stream of publishes loses no acknowledged publish", async () => {
      const cluster = await startCluster(await makeFactory(), ["a", "b", "c"]);
      try {
        const leader = cluster.leader()!;
        const [publisher, subscriber] = cluster.peers.filter((p) => p !== leader);
        const id = nextId("failover");
        const ep = publisher.createEmitter<Events>({ emitterId: id });
        const es = subscriber.createEmitter<Events>({ emitterId: id });
        const got = new Set<number>();
        await es.subscribe("seq", (n) => got.add(n));
        await publisher.waitUntilCommitHead();
        const acknowledged: number[] = [];
        const leftEvents: string[] = [];
        publisher.on("remote-peer-left", (p) => leftEvents.push(p));
        let i = 0;
        const stream = (async () => {
          while (i < 400) {
            const n = i++;
            const peers: string[] = await ep.publish("seq", n).catch(() => []);
            if (peers.includes(subscriber.localPeerId)) acknowledged.push(n);
            if (n === 100) await cluster.crash(leader);
          }
        })();
        await stream;
        await cluster.settled(5000);
        assert.ok(acknowledged.length >= 390, `only ${acknowledged.length} publishes acknowledged`);
        for (const n of acknowledged) assert.ok(got.has(n), `acknowledged publish ${n} was not received`);
        // a new leader is elected among the survivors and writes work again
        const newLeader = cluster.leader()!;
        assert.notEqual(newLeader, leader);
        await es.subscribe("other", () => {});
        await publisher.waitUntilCommitHead();
        assert.deepEqual(await ep.publish("other", "after failover"), [subscriber.localPeerId]);
      } finally {
        await cluster.close();
      }
    });

    it("an election alone never fires remote-peer-left; leave() hands leadership over", async () => {
      const cluster = await startCluster(await makeFactory(), ["a", "b", "c"]);
      try {
        const leader = cluster.leader()!;
        const others = cluster.peers.filter((p) => p !== leader);
        const left: string[] = [];
        const leaderChanges: (string | undefined)[] = [];
        for (const p of others) {
          p.on("remote-peer-left", (id) => left.push(`${p.localPeerId}:${id}`));
          p.on("leader-changed", (id) => leaderChanges.push(id));
        }
        await leader.leave();
        assert.equal(leader.joined, false);
        assert.equal(leader.state, "empty");
        await cluster.settled(5000);
        const newLeader = cluster.leader()!;
        assert.notEqual(newLeader.localPeerId, leader.localPeerId);
        await waitFor(() => left.length === 2, { timeoutMs: 3000 });
        assert.deepEqual(left.sort(), others.map((p) => `${p.localPeerId}:${leader.localPeerId}`).sort());
        assert.ok(leaderChanges.length > 0);
        for (const p of others) assert.equal(p.remotePeerIds.size, 1);
      } finally {
        await cluster.close();
      }
    });
  });
}
