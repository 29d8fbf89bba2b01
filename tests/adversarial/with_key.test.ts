/**
 * A rogue raw NATS client attacks a three-peer cluster (separate processes, real nats-server) that
 * has a `clusterKey`, while a write workload runs. Every forgery is a well-formed envelope made
 * with the library's codec, with member ids the rogue read off the wire; only the authentication
 * tag is missing (or zero). Nothing may get through: no acknowledged write lost, no forged entry
 * applied, no membership change, no publish resolved for an undelivered event, a leader
 * throughout, and each forgery counted under `unauthenticated`.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeCbor } from "../../src/codec/cbor.ts";
import type { PeerProcess } from "../_helpers/peer_process.ts";
import {
  type Cluster,
  CLUSTER_KEY,
  countersOf,
  entriesAfterSync,
  garbage,
  GARBAGE_FLOOD,
  HEAP_GROWTH_BOUND,
  heapOf,
  HELLO_FLOOD,
  leaderThroughout,
  LeaderWatch,
  memberIdsOf,
  report,
  roles,
  startBigPayloadServer,
  startCluster,
  waitForDrops,
} from "./_scenario.ts";

const MAX = Number.MAX_SAFE_INTEGER;

describe("adversarial, with a cluster key", () => {
  let server: Awaited<ReturnType<typeof startBigPayloadServer>>;
  let cluster: Cluster;
  let leader: PeerProcess;
  let f1: PeerProcess;
  let f2: PeerProcess;
  let members: string[];

  before(async () => {
    server = await startBigPayloadServer();
    cluster = await startCluster(server, { clusterKey: CLUSTER_KEY });
    ({ leader, f1, f2 } = await roles(cluster));
    members = await memberIdsOf(leader);
    await f2.request("emitter.subscribe", { emitterId: "adv", event: "ev" });
    await f1.request("sync");
  });

  after(async () => {
    await cluster?.close();
    await server?.stop();
    server?.cleanup();
  });

  it("the rogue reads the member ids off sealed messages (the key authenticates, it does not hide)", async () => {
    for (const p of cluster.peers) {
      const status = await p.status();
      assert.equal(cluster.rogue.memberOf(p.peerId), status.memberId, `member id of ${p.peerId}`);
    }
  });

  it("forged Raft messages, proposals, joins, leaves, other-cluster and oversized messages change nothing while writes run", async () => {
    const rogue = cluster.rogue;
    const before = await countersOf(cluster);
    const start = await leader.status();
    const startTerm = start.term;
    await f1.request("load.start", { mapId: "m", prefix: "f1-" });
    await leader.request("load.start", { mapId: "m", prefix: "ld-" });
    const watch = new LeaderWatch(cluster);
    const L = rogue.memberOf(leader.peerId);
    const F1 = rogue.memberOf(f1.peerId);
    const F2 = rogue.memberOf(f2.peerId);
    const ROUNDS = 20;
    let toLeader = 0;
    let toF1 = 0;
    let toF2 = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // halting heartbeat at term 2^53-1 "from" a follower, and a storable one
      for (const term of [MAX, startTerm + 1000]) {
        rogue.raft({ type: "heartbeat", from: F1, to: L, term, commit: 0 });
        rogue.raft({ type: "heartbeat", from: F1, to: F2, term, commit: 0 });
        rogue.raft({ type: "heartbeat", from: F1, to: L, term, commit: 0 }, { tag: true });
        toLeader += 2;
        toF2 += 1;
      }
      // a snapshot "from the leader" that would wipe the followers' state
      for (const to of [F1, F2]) {
        rogue.raft({
          type: "snapshot",
          from: L,
          to,
          term: startTerm,
          meta: {
            index: 1_000_000,
            term: startTerm,
            membership: { voters: [L], learners: [], removed: [F1, F2] },
          },
          offset: 0,
          data: encodeCbor({ states: [], applied: [] }),
          total: encodeCbor({ states: [], applied: [] }).length,
          done: true,
        });
      }
      toF1++;
      toF2++;
      // a proposal "from" a follower, straight to the leader
      rogue.raft({
        type: "propose",
        from: F1,
        to: L,
        term: startTerm,
        entries: [{
          data: encodeCbor(["map", "m", "set", [encodeCbor(`forged-${round}`), encodeCbor("x")], f1.peerId]),
        }],
      });
      // a ghost joins; a real member "leaves"; a duplicate of f1 joins
      rogue.request(leader.peerId, "ghost", "join", `ghost/${round}0000000`);
      rogue.request(leader.peerId, f2.peerId, "leave", F2);
      rogue.request(leader.peerId, f1.peerId, "join", `${f1.peerId}/evil${round}`);
      toLeader += 4;
      // other cluster, unbound
      rogue.raft({ type: "heartbeat", from: F1, to: L, term: MAX, commit: 0 }, { cluster: "another" });
      rogue.raft({ type: "heartbeat", from: F1, to: L, term: MAX, commit: 0 }, { cluster: null });
      toLeader += 2;
      await rogue.flush();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // one oversized message (9 MiB, over the peers' 8 MiB limit; the server takes 16 MiB)
    rogue.nc.publish(rogue.inbox(leader.peerId), new Uint8Array(9 * 1024 * 1024));
    await rogue.flush();
    await waitForDrops(leader, before.get(leader.peerId)!, "unauthenticated", toLeader);
    await waitForDrops(f1, before.get(f1.peerId)!, "unauthenticated", toF1);
    await waitForDrops(f2, before.get(f2.peerId)!, "unauthenticated", toF2);
    await waitForDrops(leader, before.get(leader.peerId)!, "oversized", 1);

    const f1Load = await f1.request<{ acked: [string, number][] }>("load.stop", { prefix: "f1-" });
    const ldLoad = await leader.request<{ acked: [string, number][] }>("load.stop", { prefix: "ld-" });
    const samples = await watch.stop();
    report(
      `with key: acked writes ${f1Load.acked.length} + ${ldLoad.acked.length}, ${samples.length} leader samples`,
    );
    assert.ok(f1Load.acked.length > 10 && ldLoad.acked.length > 10, "the workload made progress");
    for (const p of cluster.peers) {
      const entries = await entriesAfterSync(p, "m");
      for (const [k, v] of [...f1Load.acked, ...ldLoad.acked]) {
        assert.equal(entries.get(k), v, `${p.peerId}: acknowledged write ${k} kept`);
      }
      assert.deepEqual(
        [...entries.keys()].filter((k) => k.startsWith("forged")),
        [],
        `${p.peerId}: no forged entry`,
      );
      assert.deepEqual(await memberIdsOf(p), members, `${p.peerId}: membership unchanged`);
      assert.equal(p.events.some((e) => e.event === "left"), false, `${p.peerId} never left`);
    }
    assert.ok(samples.length >= 5, `leadership sampled (${samples.length})`);
    assert.deepEqual(leaderThroughout(samples, start, await leader.status()), [], "a leader throughout");
    assert.ok(samples.every((s) => s.terms.every((t) => t < startTerm + 1000)), "no forged term adopted");
  });

  it("forged acknowledgements never resolve a publish for an undelivered event", async () => {
    const rogue = cluster.rogue;
    const F2 = rogue.memberOf(f2.peerId);
    let forged = 0;
    rogue.onEvent = (seen) => {
      if (seen.body.ackRequestId === undefined) return;
      forged++;
      rogue.send(rogue.inbox(f1.peerId), {
        type: "ack",
        from: F2,
        body: { emitterId: "adv", ackRequestId: seen.body.ackRequestId, peerId: f2.peerId, ok: true },
      });
      rogue.send(rogue.inbox(f1.peerId), {
        type: "acks",
        from: F2,
        body: { peerId: f2.peerId, acks: [["adv", seen.body.ackRequestId]] },
      });
    };
    f2.kill("SIGSTOP"); // the subscriber cannot deliver (well below peerTimeoutMs)
    let outcomes: { ok: boolean; code?: string; missing?: string[] }[];
    try {
      outcomes = await f1.request("emitter.publishMany", {
        emitterId: "adv",
        event: "ev",
        prefix: "undelivered-",
        count: 5,
        timeoutMs: 1000,
      });
    } finally {
      f2.kill("SIGCONT");
      rogue.onEvent = undefined;
    }
    assert.equal(forged, 5, "the rogue forged acks for every event");
    for (const o of outcomes) {
      assert.equal(o.ok, false, "no publish resolved while its subscriber was stopped");
      assert.equal(o.code, "HAMOK_TIMEOUT");
      assert.deepEqual(o.missing, [f2.peerId]);
    }
    // and the cluster is fine once the subscriber runs again
    const ok = await f1.request<{ ok: boolean; peers: string[] }>("emitter.publish", {
      emitterId: "adv",
      event: "ev",
      args: ["after-stop"],
      timeoutMs: 5000,
    });
    assert.deepEqual(ok, { ok: true, peers: [f2.peerId] });
  });

  it("forged events and sequence poisoning reach no listener", async () => {
    const rogue = cluster.rogue;
    const before = await countersOf(cluster);
    const subject = rogue.emitSubject("adv", "ev");
    for (const from of [rogue.memberOf(f1.peerId), rogue.memberOf(leader.peerId), `${f1.peerId}/fake0000`]) {
      rogue.send(subject, {
        type: "event",
        from,
        body: { emitterId: "adv", event: "ev", payload: encodeCbor(["forged-event"]), seq: MAX },
      });
    }
    await rogue.flush();
    await waitForDrops(f2, before.get(f2.peerId)!, "unauthenticated", 3);
    const outcomes = await f1.request<{ ok: boolean }[]>("emitter.publishMany", {
      emitterId: "adv",
      event: "ev",
      prefix: "genuine-",
      count: 20,
      timeoutMs: 5000,
    });
    assert.ok(outcomes.every((o) => o.ok), "every genuine publish acknowledged");
    const received = await f2.request<string[]>("emitter.received", { emitterId: "adv", event: "ev" });
    assert.equal(received.includes("forged-event"), false, "no forged event delivered");
    for (let i = 0; i < 20; i++) assert.ok(received.includes(`genuine-${i}`), `genuine-${i} delivered`);
  });

  it(`floods (${HELLO_FLOOD} hellos from distinct ids, garbage) keep heaps bounded and a leader`, async () => {
    const rogue = cluster.rogue;
    const before = await countersOf(cluster);
    const heapBefore = await heapOf(cluster);
    const start = await leader.status();
    const watch = new LeaderWatch(cluster);
    for (let i = 0; i < HELLO_FLOOD; i++) {
      rogue.send(rogue.broadcast, {
        type: "hello",
        from: `h${i}`,
        body: {
          clusterId: cluster.clusterId,
          peerId: `h${i}`,
          memberId: `h${i}/00000000`,
          term: 0,
          joined: false,
        },
      });
      if (i % 5000 === 4999) await rogue.flush();
    }
    const junk = garbage(GARBAGE_FLOOD, 256);
    for (const bytes of junk) {
      rogue.nc.publish(rogue.broadcast, bytes);
      rogue.nc.publish(rogue.inbox(leader.peerId), bytes);
    }
    await rogue.flush();
    for (const p of cluster.peers) {
      const expected = HELLO_FLOOD + GARBAGE_FLOOD + (p === leader ? GARBAGE_FLOOD : 0);
      await waitForDrops(p, before.get(p.peerId)!, "unauthenticated", expected, 40_000);
    }
    const samples = await watch.stop();
    const heapAfter = await heapOf(cluster);
    for (const p of cluster.peers) {
      const delta = heapAfter.get(p.peerId)! - heapBefore.get(p.peerId)!;
      report(
        `with key: ${p.peerId} heap delta after ${HELLO_FLOOD} hellos + garbage: ${
          (delta / 1048576).toFixed(2)
        } MB`,
      );
      assert.ok(delta < HEAP_GROWTH_BOUND, `${p.peerId}: heap grew ${(delta / 1048576).toFixed(2)} MB`);
    }
    assert.deepEqual(leaderThroughout(samples, start, await leader.status()), [], "a leader throughout");
    assert.deepEqual(await memberIdsOf(leader), members, "membership unchanged");
    assert.equal(await leader.mapSet("m", "after-flood", 1, 5000), null, "a write after the flood");
  });
});
