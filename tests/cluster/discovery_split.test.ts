/**
 * Discovery must not leave a cluster split (issue #14 runs): whole `Hamok` peers with their defaults
 * (`expectedPeers: 1`) on a memory bus and virtual time (`tests/sim_peer/virtual_scheduler.ts`), so a
 * stalled event loop (timers frozen, then all fired late, before the messages that waited) and
 * partitions at start replay exactly.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hamok } from "../../src/hamok.ts";
import type { HamokConfig } from "../../src/config.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { ClusterSubjects } from "../../src/cluster/subjects.ts";
import { PeerWire } from "../../src/cluster/peer_wire.ts";
import { PeerCounters } from "../../src/cluster/peer_counters.ts";
import { HamokClusterConflictError, HamokConfigError } from "../../src/errors.ts";
import { DISCOVERY_ROUNDS } from "../../src/cluster/discovery.ts";
import { Prng } from "../sim/prng.ts";
import { type PeerClock, VirtualWorld } from "../sim_peer/virtual_scheduler.ts";
import { SimTransport } from "../sim_peer/simulation.ts";

interface TestPeer {
  readonly hamok: Hamok;
  readonly clock: PeerClock;
  readonly transport: SimTransport;
  readonly infos: string[];
  readonly warns: string[];
  readonly errors: Error[];
}

/**
 * One world: a bus with a 2 ms latency, and peers made on it with the library's default discovery.
 * With `realIo` (peers on a real file storage) virtual time runs in steps of 10 ms with a real
 * millisecond between them: the storage's file I/O completes in real time, and a virtual clock that
 * raced ahead of it would time out what is only waiting on the disk (a loaded CI machine did).
 */
function world(seed: number, realIo = false) {
  const rng = new Prng(seed);
  const w = new VirtualWorld(rng.fork());
  const busRng = rng.fork();
  const bus = new MemoryBus({ random: () => busRng.next(), scheduler: w });
  bus.delay({ ms: 2 });
  const peer = (peerId: string, config: HamokConfig = {}): TestPeer => {
    const clock = w.clock(rng.fork());
    const transport = new SimTransport(new MemoryTransport({ bus, id: peerId }), w);
    const infos: string[] = [];
    const warns: string[] = [];
    const errors: Error[] = [];
    const hamok = new Hamok({
      peerId,
      clusterId: "split",
      transport,
      scheduler: clock,
      logger: {
        debug() {},
        info: (m: string) => infos.push(m),
        warn: (m: string) => warns.push(m),
        error() {},
      },
      ...config,
    });
    hamok.on("error", (error) => errors.push(error));
    return { hamok, clock, transport, infos, warns, errors };
  };
  /** Runs virtual time until `done()` or `ms` more virtual ms passed; true if `done()`. */
  const runUntil = async (done: () => boolean, ms: number): Promise<boolean> => {
    if (!realIo) {
      await w.runUntil(w.time + ms, done);
      return done();
    }
    const end = w.time + ms;
    while (w.time < end && !done()) {
      await w.runUntil(Math.min(end, w.time + 10), done);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return done();
  };
  return { world: w, bus, peer, runUntil };
}

const bootstrapped = (p: TestPeer) => p.infos.filter((m) => m.includes("bootstrapping")).length;
const dissolved = (p: TestPeer) => p.warns.filter((m) => m.includes("dissolves it")).length;
const memberIds = (p: TestPeer) => p.hamok.status().members.map((m) => m.peerId).sort();
const oneCluster = (peers: TestPeer[]) => {
  const all = peers.map((p) => p.hamok.status().peerId).sort().join();
  return peers.every((p) =>
    p.hamok.joined && p.hamok.leaderId !== undefined && memberIds(p).join() === all &&
    p.hamok.leaderId === peers[0]!.hamok.leaderId
  );
};

describe("discovery under load: no split", () => {
  it("a newcomer whose event loop stalls after its first hello joins the cluster instead of bootstrapping", async () => {
    const { world: w, peer, runUntil } = world(7);
    const a = peer("a");
    void a.hamok.join();
    assert.ok(await runUntil(() => a.hamok.leader, 5000), "a bootstraps and leads");
    const b = peer("b");
    const joined = b.hamok.join();
    joined.catch(() => {});
    // b's first hello is out (its join runs on microtasks); then its loop stalls for 3 s: timers
    // frozen, inbound held. On resume the timers fire late, all at once, before the held answers.
    await w.runUntil(w.time + 1);
    b.clock.pause();
    b.transport.pause();
    await w.runUntil(w.time + 3000);
    b.clock.resume();
    b.transport.resume();
    assert.ok(await runUntil(() => b.hamok.joined, 10_000), "b joins within 10 virtual s");
    assert.equal(bootstrapped(b), 0, "b never bootstraps");
    assert.ok(oneCluster([a, b]), `one cluster: ${memberIds(a)} / ${memberIds(b)}`);
    a.hamok.close();
    b.hamok.close();
  });

  it("a newcomer whose loop stalls in its last silent round before bootstrapping takes in the answer first", async () => {
    const { world: w, bus, peer, runUntil } = world(9);
    const a = peer("a");
    void a.hamok.join();
    assert.ok(await runUntil(() => a.hamok.leader, 5000), "a bootstraps and leads");
    // a is busy (paused): b's first hellos go unanswered, so b counts silent rounds
    a.clock.pause();
    a.transport.pause();
    let hellos = 0;
    const spy = new MemoryTransport({ bus, id: "spy" });
    spy.subscribe(new ClusterSubjects(ClusterSubjects.prefixFor("split")).broadcast, () => hellos++);
    const b = peer("b");
    b.hamok.join().catch(() => {});
    assert.ok(await runUntil(() => hellos >= DISCOVERY_ROUNDS, 5000));
    // b's last round before a bootstrap: its hello is out, then its loop stalls for 3 s; a wakes
    // up and answers, but b takes the answer in only after its late timers fired
    b.clock.pause();
    b.transport.pause();
    a.clock.resume();
    a.transport.resume();
    await w.runUntil(w.time + 3000);
    b.clock.resume();
    b.transport.resume();
    assert.ok(await runUntil(() => b.hamok.joined, 10_000), "b joins within 10 virtual s");
    assert.equal(bootstrapped(b), 0, "b never bootstraps");
    assert.ok(oneCluster([a, b]));
    a.hamok.close();
    b.hamok.close();
    void spy.close();
  });

  for (const storage of ["memory", "file"] as const) {
    it(`two peers that bootstrapped alone (partitioned at start) end in one cluster: the smaller identity stays (${storage} storage)`, async () => {
      const { bus, peer, runUntil } = world(11, storage === "file");
      const cut = bus.partition(["a"], ["b"]);
      const dirs = storage === "file"
        ? [mkdtempSync(join(tmpdir(), "hamok-split-")), mkdtempSync(join(tmpdir(), "hamok-split-"))]
        : [];
      const a = peer("a", dirs[0] === undefined ? {} : { dataDir: dirs[0], sync: "never" });
      const b = peer("b", dirs[1] === undefined ? {} : { dataDir: dirs[1], sync: "never" });
      void a.hamok.join();
      void b.hamok.join();
      assert.ok(await runUntil(() => a.hamok.leader && b.hamok.leader, 5000), "both bootstrap alone");
      assert.equal(bootstrapped(a) + bootstrapped(b), 2);
      cut.remove();
      assert.ok(
        await runUntil(() => oneCluster([a, b]), 20_000),
        `one cluster: ${memberIds(a)} / ${memberIds(b)}`,
      );
      const moves = [...a.warns, ...b.warns].filter((m) => m.includes("dissolves it"));
      assert.equal(moves.length, 1, moves.join("\n"));
      // "... the only member of cluster <own>, which has no writes, dissolves it and joins cluster <other> ..."
      const [, own, other] = /cluster (\S+), which .* joins cluster (\S+) /.exec(moves[0]!)!;
      assert.ok(other! < own!, `the cluster with the smaller identity stays: ${moves[0]}`);
      // the cluster works: a write through the peer that moved reaches the other
      const mover = dissolved(a) === 1 ? a : b;
      const stayer = mover === a ? b : a;
      await runWrite(runUntil, mover, stayer);
      a.hamok.close();
      b.hamok.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });
  }

  it("with autoMerge: false two lone bootstraps stay apart (nor do they announce themselves); a non-boolean is refused", async () => {
    assert.throws(() => new Hamok({ autoMerge: "yes" as unknown as boolean }), HamokConfigError);
    const { bus, peer, runUntil } = world(13);
    const cut = bus.partition(["a"], ["b"]);
    const a = peer("a", { autoMerge: false });
    const b = peer("b", { autoMerge: false });
    void a.hamok.join();
    void b.hamok.join();
    assert.ok(await runUntil(() => a.hamok.leader && b.hamok.leader, 5000));
    cut.remove();
    await runUntil(() => false, 10_000);
    assert.equal(dissolved(a) + dissolved(b), 0);
    assert.deepEqual([memberIds(a), memberIds(b)], [["a"], ["b"]]);
    a.hamok.close();
    b.hamok.close();
  });

  it("a lone fresh peer joins a cluster with data whatever the identities; the cluster with data stays", async () => {
    const orders = new Set<string>();
    for (let seed = 21; seed < 33 && orders.size < 2; seed++) {
      const { bus, peer, runUntil } = world(seed);
      const cut = bus.partition(["a"], ["b"]);
      const a = peer("a");
      const b = peer("b");
      void a.hamok.join();
      void b.hamok.join();
      assert.ok(await runUntil(() => a.hamok.leader && b.hamok.leader, 5000));
      const map = a.hamok.createMap<string, string>({ mapId: "m" });
      const write = map.set("k", "v");
      assert.ok(await runUntil(() => map.get("k") === "v", 2000));
      await write;
      cut.remove();
      assert.ok(await runUntil(() => oneCluster([a, b]), 20_000), `seed ${seed}: one cluster`);
      assert.equal(dissolved(a), 0, `seed ${seed}: the cluster with data never dissolves`);
      assert.equal(dissolved(b), 1);
      const [, own, other] = /cluster (\S+), which .* joins cluster (\S+) /.exec(b.warns.join("\n"))!;
      orders.add(own! < other! ? "moved to a larger identity" : "moved to a smaller identity");
      const bMap = b.hamok.createMap<string, string>({ mapId: "m" });
      assert.ok(await runUntil(() => bMap.get("k") === "v", 5000), `seed ${seed}: b has a's data`);
      a.hamok.close();
      b.hamok.close();
    }
    assert.equal(orders.size, 2, `both orders of identities seen: ${[...orders]}`);
  });

  it("two clusters of two formed apart during a partition at start hear each other's leader and report the conflict", async () => {
    const { bus, peer, runUntil } = world(41);
    const cut = bus.partition(["a1", "a2"], ["b1", "b2"]);
    const peers = ["a1", "a2", "b1", "b2"].map((id) => peer(id));
    const [a1, a2, b1, b2] = peers as [TestPeer, TestPeer, TestPeer, TestPeer];
    for (const p of peers) void p.hamok.join();
    assert.ok(await runUntil(() => oneCluster([a1, a2]) && oneCluster([b1, b2]), 10_000), "two clusters");
    cut.remove();
    // neither is lone, so neither merges: without the leaders' announcements the split was silent
    const reported = (p: TestPeer) => p.errors.some((e) => e instanceof HamokClusterConflictError);
    assert.ok(
      await runUntil(() => reported(a1) && reported(a2) && reported(b1) && reported(b2), 15_000),
      `every peer reports the conflict: ${peers.map(reported)}`,
    );
    assert.equal(peers.reduce((n, p) => n + dissolved(p), 0), 0);
    assert.ok(oneCluster([a1, a2]) && oneCluster([b1, b2]), "both clusters keep running");
    for (const p of peers) p.hamok.close();
  });

  it("two clusters with data never dissolve: both keep running and report the conflict", async () => {
    const { bus, peer, runUntil } = world(31);
    const cut = bus.partition(["a"], ["b1", "b2"]);
    const a = peer("a");
    const b1 = peer("b1");
    const b2 = peer("b2");
    for (const p of [a, b1, b2]) void p.hamok.join();
    assert.ok(await runUntil(() => a.hamok.leader && oneCluster([b1, b2]), 10_000), "two clusters");
    const aMap = a.hamok.createMap<string, string>({ mapId: "m" });
    const bMap = b1.hamok.createMap<string, string>({ mapId: "m" });
    const writes = Promise.all([aMap.set("a", "1"), bMap.set("b", "2")]);
    assert.ok(await runUntil(() => aMap.get("a") === "1" && bMap.get("b") === "2", 2000));
    await writes;
    cut.remove();
    // b2 loses its leader for a while and says hello on the broadcast subject: a hears cluster B
    b1.clock.pause();
    b1.transport.pause();
    assert.ok(
      await runUntil(() => a.errors.some((e) => e instanceof HamokClusterConflictError), 10_000),
      "a reports the conflict",
    );
    b1.clock.resume();
    b1.transport.resume();
    await runUntil(() => false, 10_000);
    assert.equal(dissolved(a) + dissolved(b1) + dissolved(b2), 0);
    assert.ok(a.hamok.leader, "a still leads its cluster");
    assert.deepEqual(memberIds(a), ["a"]);
    assert.ok(await runUntil(() => oneCluster([b1, b2]), 5000));
    assert.equal(aMap.get("a"), "1");
    for (const p of [a, b1, b2]) p.hamok.close();
  });

  for (const keyed of [false, true]) {
    it(`a forged hello naming another cluster does not make a lone peer dissolve (${keyed ? "with" : "without"} a cluster key)`, async () => {
      const { world: w, bus, peer, runUntil } = world(41);
      const key = keyed ? new Uint8Array(32).fill(7) : undefined;
      const a = peer("a", key === undefined ? {} : { clusterKey: key });
      void a.hamok.join();
      assert.ok(await runUntil(() => a.hamok.leader, 5000));
      const memberBefore = a.hamok.status().memberId;
      // the forger: publishes on the prefix, signs with a key of its own, and never answers a join
      const forger = new MemoryTransport({ bus, id: "evil" });
      const wire = new PeerWire({
        clusterId: "split",
        keys: keyed ? [new Uint8Array(32).fill(9)] : undefined,
        counters: new PeerCounters(),
        warn() {},
        peerId: "evil",
      });
      const subjects = new ClusterSubjects(ClusterSubjects.prefixFor("split"));
      const joinRequests: number[] = [];
      forger.subscribe(subjects.inbox("evil"), () => joinRequests.push(w.time));
      const hello = wire.encode({
        type: "hello",
        from: "evil",
        body: {
          clusterId: "split",
          peerId: "evil",
          memberId: "evil/1",
          leaderId: "evil/1",
          term: 9,
          joined: true,
          clusterUid: "00000000-0000-4000-8000-000000000000",
        },
      });
      const started = w.time;
      const flood = w.setInterval(() => forger.publish(subjects.broadcast, hello), 50);
      await runUntil(() => false, 30_000);
      w.clearInterval(flood);
      assert.equal(dissolved(a), 0, "no dissolve");
      assert.ok(a.hamok.leader);
      assert.equal(a.hamok.status().memberId, memberBefore, "same member, same cluster");
      if (keyed) assert.equal(joinRequests.length, 0, "a forged hello without the key is dropped");
      else {
        // at most one attempt per max(memberWindowMs, requestTimeoutMs) = 5 s (defaults)
        assert.ok(joinRequests.length >= 1, "the hello was taken in (the peer asked to join)");
        assert.ok(joinRequests.length <= Math.ceil((w.time - started) / 5000) + 1, `${joinRequests.length}`);
      }
      a.hamok.close();
      void forger.close();
    });
  }
});

async function runWrite(
  runUntil: (done: () => boolean, ms: number) => Promise<boolean>,
  from: TestPeer,
  to: TestPeer,
): Promise<void> {
  const fromMap = from.hamok.createMap<string, string>({ mapId: "w" });
  const toMap = to.hamok.createMap<string, string>({ mapId: "w" });
  let done = false;
  fromMap.set("x", "y").then(() => done = true, () => {});
  assert.ok(await runUntil(() => done && toMap.get("x") === "y", 10_000), "a write reaches both");
}
