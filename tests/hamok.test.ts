import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hamok } from "../src/hamok.ts";
import { HamokClosedError, HamokConfigError, HamokNotJoinedError, HamokTimeoutError } from "../src/errors.ts";
import { FAST, memoryTransports, startCluster } from "./_helpers/cluster.ts";
import { REAL_SCHEDULER } from "../src/cluster/scheduler.ts";
import { waitFor } from "./_helpers/wait.ts";

describe("Hamok peer", () => {
  it("validates its configuration with typed errors", () => {
    assert.throws(() => new Hamok({ peerId: "" }), HamokConfigError);
    assert.throws(() => new Hamok({ tickMs: 0 }), HamokConfigError);
    assert.throws(() => new Hamok({ electionTicks: 2, heartbeatTicks: 2 }), HamokConfigError);
    assert.throws(() => new Hamok({ subjectPrefix: "bad prefix" }), HamokConfigError);
    // deno-lint-ignore no-explicit-any
    assert.throws(() => new Hamok("nope" as any), HamokConfigError);
  });

  it("a lone peer bootstraps a one-member cluster and leads it", async () => {
    const hamok = new Hamok({ ...FAST, clusterId: `solo-${crypto.randomUUID()}` });
    try {
      const states: string[] = [];
      hamok.on("state-changed", (s) => states.push(s));
      let joined = 0;
      hamok.on("joined", () => joined++);
      await hamok.join();
      assert.equal(hamok.leader, true);
      assert.equal(hamok.leaderId, hamok.localPeerId);
      assert.equal(hamok.remotePeerIds.size, 0);
      assert.equal(joined, 1);
      assert.ok(states.includes("leader"));
      const emitter = hamok.createEmitter<{ e: [number] }>({ emitterId: "solo" });
      const got: number[] = [];
      await emitter.subscribe("e", (n) => got.push(n));
      assert.deepEqual(await emitter.publish("e", 5), [hamok.localPeerId]);
      assert.deepEqual(got, [5]);
      await hamok.waitUntilCommitHead();
    } finally {
      hamok.close();
    }
  });

  it("peers on the default in-process transport find each other with no set-up", async () => {
    const clusterId = `default-${crypto.randomUUID()}`;
    const a = new Hamok({ ...FAST, clusterId, peerId: "a" });
    const b = new Hamok({ ...FAST, clusterId, peerId: "b" });
    try {
      await Promise.all([a.join(), b.join()]);
      await waitFor(() => a.leaderId !== undefined && a.leaderId === b.leaderId, { timeoutMs: 3000 });
      assert.deepEqual([...a.remotePeerIds], ["b"]);
      assert.deepEqual([...b.remotePeerIds], ["a"]);
    } finally {
      a.close();
      b.close();
    }
  });

  it("join() and the read barriers take whole ms even from a scheduler whose clocks have fractions", async () => {
    const clusterId = `fraction-${crypto.randomUUID()}`;
    // clocks with sub-millisecond precision: the remaining times computed from them have fractions
    const scheduler = {
      ...REAL_SCHEDULER,
      now: () => performance.timeOrigin + performance.now(),
      monotonicNow: () => performance.now() + 0.25,
    };
    const a = new Hamok({ ...FAST, clusterId, peerId: "a", scheduler });
    const b = new Hamok({ ...FAST, clusterId, peerId: "b", scheduler });
    try {
      await a.join();
      await b.join(); // joins through a's leader: its last step is a read barrier on the remaining time
      await b.waitUntilCommitHead(1000);
      assert.deepEqual([...b.remotePeerIds], ["a"]);
    } finally {
      a.close();
      b.close();
    }
  });

  it("peers starting at once end in one cluster, never two", async () => {
    for (let round = 0; round < 3; round++) {
      const cluster = await startCluster(memoryTransports(), ["p1", "p2", "p3", "p4", "p5"]);
      try {
        const leaders = new Set(cluster.peers.map((p) => p.leaderId));
        assert.equal(leaders.size, 1);
        for (const p of cluster.peers) assert.equal(p.remotePeerIds.size, 4);
      } finally {
        await cluster.close();
      }
    }
  });

  it("a late joiner catches up and sees existing state after join()", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b"]);
    try {
      const [a] = cluster.peers;
      const ea = a.createEmitter<{ e: [string] }>({ emitterId: "late-join" });
      await ea.subscribe("e", () => {}, { role: "first" } as never);
      const joinedEvents: string[] = [];
      a.on("remote-peer-joined", (id) => joinedEvents.push(id));
      const d = await cluster.add("d");
      await d.join();
      assert.equal(d.leaderId, a.leaderId);
      const ed = d.createEmitter<{ e: [string] }>({ emitterId: "late-join" });
      assert.deepEqual(ed.subscriptions.getPeerIds("e"), ["a"]);
      assert.deepEqual(joinedEvents, ["d"]);
      await waitFor(() => a.remotePeerIds.has("d"), { timeoutMs: 1000 });
    } finally {
      await cluster.close();
    }
  });

  it("leave() then join() again works under a new member id", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"]);
    try {
      const follower = cluster.peers.find((p) => !p.leader)!;
      const firstMember = follower.localMemberId;
      const left: string[] = [];
      const others = cluster.peers.filter((p) => p !== follower);
      for (const p of others) p.on("remote-peer-left", (id) => left.push(id));
      await follower.leave();
      assert.equal(follower.joined, false);
      await waitFor(() => left.length === 2, { timeoutMs: 3000 });
      for (const p of others) assert.equal(p.remotePeerIds.has(follower.localPeerId), false);
      await follower.join();
      assert.notEqual(follower.localMemberId, firstMember);
      await waitFor(() => others.every((p) => p.remotePeerIds.has(follower.localPeerId)), {
        timeoutMs: 3000,
      });
    } finally {
      await cluster.close();
    }
  });

  it("waiting without a cluster fails with typed errors, and close() is final", async () => {
    const hamok = new Hamok({ ...FAST, clusterId: `lonely-${crypto.randomUUID()}` });
    await assert.rejects(hamok.waitUntilLeader(50), HamokTimeoutError);
    await assert.rejects(hamok.waitUntilCommitHead(50), HamokNotJoinedError);
    let closed = 0;
    hamok.on("close", () => closed++);
    hamok.close();
    hamok.close();
    assert.equal(closed, 1);
    assert.equal(hamok.closed, true);
    await assert.rejects(hamok.join(), HamokClosedError);
    assert.throws(() => hamok.createEmitter({ emitterId: "x" }), HamokClosedError);
  });

  it("ready is one shared promise before join(): no listener piles up", async () => {
    const hamok = new Hamok({ ...FAST, clusterId: `ready-${crypto.randomUUID()}` });
    try {
      const first = hamok.ready;
      for (let i = 0; i < 100; i++) assert.equal(hamok.ready, first);
      assert.equal(hamok.listenerCount("joined"), 1);
      assert.equal(hamok.listenerCount("close"), 1);
      await hamok.join();
      await first;
      assert.equal(hamok.listenerCount("joined"), 0);
    } finally {
      hamok.close();
    }
    await assert.rejects(hamok.ready, HamokClosedError);
  });

  it("close() during join() rejects the join", async () => {
    const hamok = new Hamok({ ...FAST, clusterId: `closing-${crypto.randomUUID()}`, discoveryMs: 5000 });
    const joining = hamok.join();
    hamok.close();
    await assert.rejects(joining, HamokClosedError);
  });

  it("export() and import() carry the collections' replicated state", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b"]);
    try {
      const [a, b] = cluster.peers;
      const ea = a.createEmitter({ emitterId: "exported" });
      await ea.subscribe("x", () => {});
      const snapshot = a.export();
      assert.equal(snapshot.version, 1);
      const exported = snapshot.emitters.find((e) => e.emitterId === "exported");
      assert.deepEqual(exported?.subscriptions, [{
        event: "x",
        subscribers: [{ peerId: "a", metadata: null }],
      }]);
      await b.import({
        ...snapshot,
        emitters: [{ emitterId: "imported", subscriptions: exported!.subscriptions }],
      });
      await a.waitUntilCommitHead();
      const ei = a.createEmitter({ emitterId: "imported" });
      assert.deepEqual(ei.subscriptions.getPeerIds("x"), ["a"]);
      await assert.rejects(b.import({ version: 2 } as never), HamokConfigError);
    } finally {
      await cluster.close();
    }
  });
});
