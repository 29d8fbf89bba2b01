import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hamok } from "../../src/hamok.ts";
import { HamokClient } from "../../src/cli/client.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { CLIENT_LIMITS, CLIENT_OPS, CLIENT_STATUS_OP } from "../../src/cluster/client_ops.ts";
import { FAST, laggingFollower, memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { REAL_SCHEDULER, type Scheduler } from "../../src/cluster/scheduler.ts";

describe("hamok.status()", () => {
  it("a lone leader reports itself, its log and its counters", async () => {
    const hamok = new Hamok({ ...FAST, clusterId: `status-${crypto.randomUUID()}` });
    try {
      const before = hamok.status();
      assert.equal(before.role, "empty");
      assert.equal(before.members.length, 0);
      await hamok.join();
      const map = hamok.createMap<string, string>({ mapId: "m" });
      await map.set("k", "v".repeat(100));
      const status = hamok.status();
      assert.equal(status.role, "leader");
      assert.equal(status.leaderId, hamok.localPeerId);
      assert.ok(status.term >= 1);
      assert.equal(status.appliedIndex, status.commitIndex);
      assert.equal(status.lastIndex, status.commitIndex);
      assert.ok(status.logLength >= 1);
      assert.ok(status.logBytes >= 100, `log bytes ${status.logBytes}`);
      assert.equal(status.pendingProposals, 0);
      assert.deepEqual(status.members.map((m) => [m.peerId, m.role, m.leader, m.lag]), [
        [hamok.localPeerId, "voter", true, 0],
      ]);
      assert.equal(status.counters.elections, 1);
      assert.equal(status.counters.leaderChanges, 1);
    } finally {
      hamok.close();
    }
  });

  it("the leader reports each member's match index, lag and last contact; followers do not", async () => {
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"]);
    try {
      const leader = await cluster.settled();
      const map = leader.createMap<string, number>({ mapId: "m" });
      for (let i = 0; i < 5; i++) await map.set(`k${i}`, i);
      await waitFor(() => leader.status().members.every((m) => m.role === "voter" && m.lag === 0), {
        timeoutMs: 5000,
        message: "every member caught up",
      });
      const status = leader.status();
      assert.equal(status.members.length, 3);
      for (const member of status.members) {
        assert.equal(member.matchIndex, status.lastIndex);
        assert.ok(member.lastContactMs !== undefined && member.lastContactMs < 2000);
      }
      const follower = cluster.peers.find((p) => !p.leader)!;
      const view = follower.status();
      assert.equal(view.role, "follower");
      assert.equal(view.leaderId, leader.localPeerId);
      assert.equal(view.members.length, 3);
      assert.equal(view.members[0].matchIndex, undefined);
    } finally {
      await cluster.close();
    }
  });

  it("counts undecodable messages", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a"]);
    try {
      const outsider = await factory.create("outsider");
      outsider.publish(cluster.peers[0].subjects.inbox("a"), new Uint8Array([0xff, 0x00]));
      await waitFor(() => cluster.peers[0].status().counters.dropped.undecodable === 1, {
        timeoutMs: 2000,
        message: "the garbage was counted",
      });
      assert.equal(cluster.peers[0].status().counters.codecFailures, 1);
    } finally {
      await cluster.close();
    }
  });
});

describe("hamok.status().clusterUid", () => {
  it("is absent before the join, then one identity shared by every member; another bootstrap makes another", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    const other = new Hamok({ ...FAST, clusterId: `other-${crypto.randomUUID()}` });
    try {
      await cluster.settled();
      const uids = cluster.peers.map((p) => p.status().clusterUid);
      assert.equal(typeof uids[0], "string");
      assert.deepEqual(uids, [uids[0], uids[0], uids[0]]);
      assert.equal(other.status().clusterUid, undefined);
      await other.join();
      assert.equal(typeof other.status().clusterUid, "string");
      assert.notEqual(other.status().clusterUid, uids[0]);
    } finally {
      other.close();
      await cluster.close();
    }
  });
});

describe("client requests from outside the cluster", () => {
  it("every member answers a broadcast status request; the client never becomes a member", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    const client = new HamokClient(await factory.create("cli"), { clusterId: "test", timeoutMs: 2000 });
    try {
      const leader = await cluster.settled();
      const views = await client.statusAll();
      assert.deepEqual(views.map((v) => v.peerId).sort(), ["a", "b", "c"]);
      assert.equal(views[0].role, "leader");
      assert.equal(views[0].peerId, leader.localPeerId);
      assert.ok(views.every((v) => v.leaderId === leader.localPeerId));
      assert.equal(leader.remotePeerIds.has(client.clientId), false);
      const one = await client.status("b");
      assert.equal(one.peerId, "b");
      assert.ok(CLIENT_OPS.has(CLIENT_STATUS_OP));
    } finally {
      client.close();
      await cluster.close();
    }
  });

  it("map reads, writes and watches, and publishes, go through a member", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    const client = new HamokClient(await factory.create("cli"), { clusterId: "test", timeoutMs: 3000 });
    try {
      const leader = await cluster.settled();
      const follower = cluster.peers.find((p) => !p.leader)!;
      const appMap = leader.createMap<string, number>({ mapId: "stock" });
      await appMap.set("apples", 3);
      const changes: unknown[] = [];
      const stop = await client.watchMap(follower.localPeerId, "stock", (c) => changes.push([c.op, c.index]));
      const previous = await client.mapWrite(
        follower.localPeerId,
        "stock",
        encodeCbor("pears"),
        encodeCbor(7),
      );
      assert.equal(previous, null);
      await waitFor(() => appMap.get("pears") === 7, { timeoutMs: 3000, message: "the write replicated" });
      await waitFor(() => changes.length === 1, { timeoutMs: 3000, message: "the watch streamed the write" });
      assert.equal((changes[0] as unknown[])[0], "set");
      const read = await client.mapRead(leader.localPeerId, "stock");
      assert.equal(read.size, 2);
      assert.deepEqual(read.entries.map((e) => decodeCbor(e.key as Uint8Array)), ["apples", "pears"]);
      const old = await client.mapWrite(leader.localPeerId, "stock", encodeCbor("apples"));
      assert.equal(decodeCbor(old as Uint8Array), 3);
      await waitFor(() => !appMap.has("apples"), { timeoutMs: 3000, message: "the delete replicated" });
      stop();

      const heard: number[] = [];
      const emitter = follower.createEmitter<{ tick: [number] }>({ emitterId: "clock" });
      await emitter.subscribe("tick", (n) => heard.push(n));
      await leader.waitUntilCommitHead();
      const raw: unknown[] = [];
      const unsubscribe = client.subscribe("clock", undefined, (e) => raw.push([e.event, e.args]));
      const acked = await client.publish(leader.localPeerId, "clock", "tick", [42]);
      assert.deepEqual(acked, [follower.localPeerId]);
      assert.deepEqual(heard, [42]);
      await waitFor(() => raw.length === 1, { timeoutMs: 2000, message: "the client heard the event" });
      assert.deepEqual(raw[0], ["tick", [42]]);
      unsubscribe();
    } finally {
      client.close();
      await cluster.close();
    }
  });

  it("a client's linearizable map read through a lagging member sees the last acknowledged write; a local read does not", async () => {
    // the follower hears the leader 300 ms late: its replica lags the acknowledged write
    const { factory, cluster, follower, writes } = await laggingFollower(300);
    const client = new HamokClient(await factory.create("cli"), { clusterId: "test", timeoutMs: 3000 });
    try {
      const keys = [encodeCbor("k")];
      const valueOf = (read: { entries: { value: unknown }[] }): unknown =>
        decodeCbor(read.entries[0]!.value as Uint8Array);
      await writes.set("k", 2);
      assert.equal(valueOf(await client.mapRead(follower.localPeerId, "m", { keys })), 1);
      const read = await client.mapRead(follower.localPeerId, "m", { keys, consistency: "linearizable" });
      assert.equal(valueOf(read), 2);
      await assert.rejects(
        client.mapRead(follower.localPeerId, "m", { keys, consistency: "sometimes" as "local" }),
        (error: Error) => /consistency/.test(error.message),
      );
    } finally {
      client.close();
      await cluster.close();
    }
  });

  it("oversized and flooding client requests are refused and counted", async () => {
    const factory = memoryTransports();
    // the peer's monotonic clock stands still during the burst: no token comes back however slowly
    // the machine serves it (the rate limit refills by elapsed time)
    let frozenAt: number | undefined;
    const scheduler: Scheduler = {
      ...REAL_SCHEDULER,
      monotonicNow: () => frozenAt ?? REAL_SCHEDULER.monotonicNow(),
    };
    const cluster = await startCluster(factory, ["a"], { scheduler });
    const client = new HamokClient(await factory.create("cli"), { clusterId: "test", timeoutMs: 2000 });
    try {
      const peer = cluster.peers[0];
      await assert.rejects(
        client.request("a", CLIENT_STATUS_OP, { pad: "x".repeat(CLIENT_LIMITS.maxPayloadBytes + 1) }),
        (error: Error & { code?: string }) => error.code === "HAMOK_CONFIG",
      );
      assert.equal(peer.status().counters.dropped.oversized, 1);
      const burst = 2 * CLIENT_LIMITS.requestsPerSecond;
      frozenAt = REAL_SCHEDULER.monotonicNow();
      const results = await Promise.allSettled(
        Array.from({ length: burst }, () => client.request("a", CLIENT_STATUS_OP, {})),
      );
      const refused = results.filter((r) =>
        r.status === "rejected" &&
        (r.reason as { code?: string }).code === "HAMOK_RATE_LIMITED"
      ).length;
      frozenAt = undefined;
      // the first requestsPerSecond are admitted (a full bucket), every one after them refused
      assert.equal(refused, burst - CLIENT_LIMITS.requestsPerSecond, `refused ${refused}`);
      assert.equal(peer.status().counters.dropped["rate-limited"], refused);
    } finally {
      client.close();
      await cluster.close();
    }
  });
});
