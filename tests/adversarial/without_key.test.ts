/**
 * The same rogue against a cluster WITHOUT a `clusterKey`. The membership rules must stop what
 * needs no secret: Raft messages, proposals, acks and events from ids that are not members, other
 * clusters' messages, terms the codec cannot carry, leaves asked by anyone but the member leaving,
 * floods. What a rogue that impersonates a real member id can still do is pinned in the last tests
 * (README, "Security", lists the same): set a key to stop it.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeCbor } from "../../src/codec/cbor.ts";
import type { PeerProcess } from "../_helpers/peer_process.ts";
import { waitFor } from "../_helpers/wait.ts";
import {
  type Cluster,
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
const GHOST = "ghost/00000000";

type Outcome = { ok: boolean; code?: string; missing?: string[]; peers?: string[] };

describe("adversarial, without a cluster key", () => {
  let server: Awaited<ReturnType<typeof startBigPayloadServer>>;
  let cluster: Cluster;
  let leader: PeerProcess;
  let f1: PeerProcess;
  let f2: PeerProcess;
  let members: string[];

  before(async () => {
    server = await startBigPayloadServer();
    cluster = await startCluster(server);
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

  it("forgeries from non-members, other clusters and at unstorable terms are dropped and counted while writes run", async () => {
    const rogue = cluster.rogue;
    const before = await countersOf(cluster);
    const start = await leader.status();
    await f1.request("load.start", { mapId: "m", prefix: "f1-" });
    await leader.request("load.start", { mapId: "m", prefix: "ld-" });
    const watch = new LeaderWatch(cluster);
    const L = rogue.memberOf(leader.peerId);
    const F1 = rogue.memberOf(f1.peerId);
    const F2 = rogue.memberOf(f2.peerId);
    const ROUNDS = 20;
    for (let round = 0; round < ROUNDS; round++) {
      // the halting heartbeat: term 2^53-1 "from" a real follower (bad-term)
      rogue.raft({ type: "heartbeat", from: F1, to: L, term: MAX, commit: 0 });
      rogue.raft({ type: "heartbeat", from: F1, to: F2, term: MAX, commit: 0 });
      // Raft from a non-member: heartbeat, snapshot, proposal (non-member)
      rogue.raft({ type: "heartbeat", from: GHOST, to: L, term: start.term + 1000, commit: 0 });
      rogue.raft({
        type: "snapshot",
        from: GHOST,
        to: F2,
        term: start.term + 1000,
        meta: {
          index: 1_000_000,
          term: start.term + 1000,
          membership: { voters: [GHOST], learners: [], removed: [] },
        },
        offset: 0,
        data: encodeCbor({ states: [], applied: [] }),
        total: encodeCbor({ states: [], applied: [] }).length,
        done: true,
      });
      rogue.raft({
        type: "propose",
        from: GHOST,
        to: L,
        term: start.term,
        entries: [{
          data: encodeCbor(["map", "m", "set", [encodeCbor(`forged-${round}`), encodeCbor("x")], "ghost"]),
        }],
      });
      // a Raft message whose envelope sender is not the peer its body names (forged-sender)
      rogue.send(rogue.inbox(leader.peerId), {
        type: "raft",
        from: "ghost",
        body: { type: "heartbeat", from: F1, to: L, term: start.term, commit: 0 },
      });
      // a non-member asks to remove a member; a member asks to remove another one
      rogue.request(leader.peerId, "ghost", "leave", F2);
      rogue.request(leader.peerId, f1.peerId, "leave", F2);
      // shared appends (one publish for several followers) "from" a follower, and "from" the leader at a
      // term it does not hold: the followers take them from the leader they follow in its term only
      rogue.send(rogue.shared, {
        type: "raft-shared",
        from: f1.peerId,
        body: {
          recipients: [F2],
          message: { type: "heartbeat", from: F1, to: "", term: start.term, commit: 0 },
        },
      });
      rogue.send(rogue.shared, {
        type: "raft-shared",
        from: leader.peerId,
        body: {
          recipients: [F1, F2],
          message: {
            type: "append",
            from: L,
            to: "",
            term: start.term + 1000,
            prevIndex: 0,
            prevTerm: 0,
            commit: 0,
            entries: [],
          },
        },
      });
      // other cluster, unbound
      rogue.raft({ type: "heartbeat", from: F1, to: L, term: start.term, commit: 0 }, { cluster: "another" });
      rogue.raft({ type: "heartbeat", from: F1, to: L, term: start.term, commit: 0 }, { cluster: null });
      await rogue.flush();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    rogue.nc.publish(rogue.inbox(leader.peerId), new Uint8Array(9 * 1024 * 1024));
    await rogue.flush();
    const atLeader = before.get(leader.peerId)!;
    await waitForDrops(leader, atLeader, "bad-term", ROUNDS);
    await waitForDrops(leader, atLeader, "non-member", 3 * ROUNDS);
    await waitForDrops(leader, atLeader, "forged-sender", ROUNDS);
    await waitForDrops(leader, atLeader, "other-cluster", 2 * ROUNDS);
    await waitForDrops(leader, atLeader, "oversized", 1);
    await waitForDrops(f2, before.get(f2.peerId)!, "bad-term", ROUNDS);
    await waitForDrops(f2, before.get(f2.peerId)!, "non-member", ROUNDS);
    await waitForDrops(f2, before.get(f2.peerId)!, "not-leader", 2 * ROUNDS);
    await waitForDrops(f1, before.get(f1.peerId)!, "not-leader", ROUNDS);

    const f1Load = await f1.request<{ acked: [string, number][] }>("load.stop", { prefix: "f1-" });
    const ldLoad = await leader.request<{ acked: [string, number][] }>("load.stop", { prefix: "ld-" });
    const samples = await watch.stop();
    report(
      `without key: acked writes ${f1Load.acked.length} + ${ldLoad.acked.length}, ${samples.length} samples`,
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
      assert.ok((await p.status()).term < start.term + 1000, `${p.peerId}: no forged term adopted`);
    }
    assert.deepEqual(leaderThroughout(samples, start, await leader.status()), [], "a leader throughout");
  });

  it("acks and events from non-members are dropped; a non-member cannot poison a sequence", async () => {
    const rogue = cluster.rogue;
    const before = await countersOf(cluster);
    let forged = 0;
    rogue.onEvent = (seen) => {
      if (seen.body.ackRequestId === undefined) return;
      forged++;
      rogue.send(rogue.inbox(f1.peerId), {
        type: "ack",
        from: GHOST,
        body: { emitterId: "adv", ackRequestId: seen.body.ackRequestId, peerId: "ghost", ok: true },
      });
      // a member's peer id in the body, a non-member as the sender
      rogue.send(rogue.inbox(f1.peerId), {
        type: "acks",
        from: GHOST,
        body: { peerId: f2.peerId, acks: [["adv", seen.body.ackRequestId]] },
      });
    };
    f2.kill("SIGSTOP");
    let outcomes: Outcome[];
    try {
      outcomes = await f1.request<Outcome[]>("emitter.publishMany", {
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
    assert.equal(forged, 5);
    for (const o of outcomes) {
      assert.deepEqual([o.ok, o.code, o.missing], [false, "HAMOK_TIMEOUT", [f2.peerId]]);
    }
    const atF1 = before.get(f1.peerId)!;
    await waitForDrops(f1, atF1, "non-member", 5);
    await waitForDrops(f1, atF1, "forged-sender", 5);

    const subject = rogue.emitSubject("adv", "ev");
    for (const from of [GHOST, "nobody"]) {
      rogue.send(subject, {
        type: "event",
        from,
        body: { emitterId: "adv", event: "ev", payload: encodeCbor(["forged-event"]), seq: MAX },
      });
    }
    await rogue.flush();
    await waitForDrops(f2, before.get(f2.peerId)!, "non-member", 2);
    const genuine = await f1.request<Outcome[]>("emitter.publishMany", {
      emitterId: "adv",
      event: "ev",
      prefix: "genuine-",
      count: 20,
      timeoutMs: 5000,
    });
    assert.ok(genuine.every((o) => o.ok), "every genuine publish acknowledged");
    const received = await f2.request<string[]>("emitter.received", { emitterId: "adv", event: "ev" });
    assert.equal(received.includes("forged-event"), false, "no forged event delivered");
    for (let i = 0; i < 20; i++) assert.ok(received.includes(`genuine-${i}`), `genuine-${i} delivered`);
  });

  it(`floods (${HELLO_FLOOD} hellos and events from distinct ids, garbage) keep heaps bounded and a leader`, async () => {
    const rogue = cluster.rogue;
    const before = await countersOf(cluster);
    const heapBefore = await heapOf(cluster);
    const start = await leader.status();
    const watch = new LeaderWatch(cluster);
    const subject = rogue.emitSubject("adv", "ev");
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
      // events "from" distinct incarnations of a real peer id, and from distinct strangers
      rogue.send(subject, {
        type: "event",
        from: i % 2 === 0 ? `${f1.peerId}/x${i}` : `e${i}/00000000`,
        body: { emitterId: "adv", event: "ev", payload: encodeCbor(["flood"]), seq: 1 },
      });
      if (i % 5000 === 4999) await rogue.flush();
    }
    for (const bytes of garbage(GARBAGE_FLOOD, 256)) {
      rogue.nc.publish(rogue.broadcast, bytes);
      rogue.nc.publish(rogue.inbox(leader.peerId), bytes);
    }
    await rogue.flush();
    for (const p of cluster.peers) {
      const expected = GARBAGE_FLOOD + (p === leader ? GARBAGE_FLOOD : 0);
      await waitForDrops(p, before.get(p.peerId)!, "undecodable", expected, 40_000);
    }
    // every event of the flood was dropped or delivered by now (same connection, in order)
    await waitForDrops(f2, before.get(f2.peerId)!, "non-member", HELLO_FLOOD, 40_000);
    const samples = await watch.stop();
    const heapAfter = await heapOf(cluster);
    for (const p of cluster.peers) {
      const delta = heapAfter.get(p.peerId)! - heapBefore.get(p.peerId)!;
      report(
        `without key: ${p.peerId} heap delta after ${HELLO_FLOOD} hellos + events + garbage: ${
          (delta / 1048576).toFixed(2)
        } MB`,
      );
      assert.ok(delta < HEAP_GROWTH_BOUND, `${p.peerId}: heap grew ${(delta / 1048576).toFixed(2)} MB`);
    }
    const received = await f2.request<string[]>("emitter.received", { emitterId: "adv", event: "ev" });
    assert.equal(
      received.includes("flood"),
      false,
      "no event of the flood delivered (not even from a member's peer id)",
    );
    assert.deepEqual(leaderThroughout(samples, start, await leader.status()), [], "a leader throughout");
    assert.deepEqual(await memberIdsOf(leader), members, "membership unchanged");
    assert.equal(await leader.mapSet("m", "after-flood", 1, 5000), null, "a write after the flood");
  });
  // ---- what remains without a key: a rogue that impersonates a REAL member id (README, "Security")

  it("residual: a proposal forged with a member's id is applied", async () => {
    const rogue = cluster.rogue;
    rogue.raft({
      type: "propose",
      from: rogue.memberOf(f1.peerId),
      to: rogue.memberOf(leader.peerId),
      term: (await leader.status()).term,
      entries: [{
        data: encodeCbor(["map", "m", "set", [encodeCbor("forged-by-member"), encodeCbor("x")], f1.peerId]),
      }],
    });
    await rogue.flush();
    await waitFor(async () => (await leader.mapGet("m", "forged-by-member")) === "x", {
      timeoutMs: 10_000,
      message: "the forged entry applied",
    });
  });

  it("residual: acks forged with a member's id resolve a publish its subscriber never got", async () => {
    const rogue = cluster.rogue;
    const F2 = rogue.memberOf(f2.peerId);
    rogue.onEvent = (seen) => {
      if (seen.body.ackRequestId === undefined) return;
      rogue.send(rogue.inbox(f1.peerId), {
        type: "ack",
        from: F2,
        body: { emitterId: "adv", ackRequestId: seen.body.ackRequestId, peerId: f2.peerId, ok: true },
      });
    };
    f2.kill("SIGSTOP");
    let outcome: Outcome;
    try {
      outcome = await f1.request<Outcome>("emitter.publish", {
        emitterId: "adv",
        event: "ev",
        args: ["never-delivered-in-time"],
        timeoutMs: 1000,
      });
    } finally {
      f2.kill("SIGCONT");
      rogue.onEvent = undefined;
    }
    assert.deepEqual(outcome, { ok: true, peers: [f2.peerId] }, "resolved while the subscriber was stopped");
  });

  it("residual: an event forged with a member's id reaches listeners; a sequence far ahead is refused, a near one holds the member's events back only until its clock passes it", async () => {
    const rogue = cluster.rogue;
    const subject = rogue.emitSubject("adv", "ev");
    const from = rogue.memberOf(f1.peerId);
    rogue.send(subject, {
      type: "event",
      from,
      body: { emitterId: "adv", event: "ev", payload: encodeCbor(["forged-far"]), seq: MAX },
    });
    // half a second ahead of the clock (sequences are the publisher's milliseconds times 1000)
    const near = (Date.now() + 500) * 1000;
    rogue.send(subject, {
      type: "event",
      from,
      body: { emitterId: "adv", event: "ev", payload: encodeCbor(["forged-near"]), seq: near },
    });
    await rogue.flush();
    await waitFor(
      async () =>
        (await f2.request<string[]>("emitter.received", { emitterId: "adv", event: "ev" })).includes(
          "forged-near",
        ),
      { timeoutMs: 10_000, message: "the forged event with a plausible sequence delivered" },
    );
    let received = await f2.request<string[]>("emitter.received", { emitterId: "adv", event: "ev" });
    assert.equal(received.includes("forged-far"), false, "a sequence far beyond the clock is refused");
    // the member's own events flow again once its clock passes the forged sequence
    let k = 0;
    await waitFor(async () => {
      const [outcome] = await f1.request<Outcome[]>("emitter.publishMany", {
        emitterId: "adv",
        event: "ev",
        prefix: `after-poison-${k++}-`,
        count: 1,
        timeoutMs: 1000,
      });
      return outcome?.ok === true;
    }, { timeoutMs: 15_000, message: "a genuine event delivered after the forged sequence" });
    received = await f2.request<string[]>("emitter.received", { emitterId: "adv", event: "ev" });
    assert.ok(received.includes(`after-poison-${k - 1}-0`), "the acknowledged genuine event was delivered");
    report(`without key: genuine events delivered again after ${k} attempt(s) past a forged sequence`);
  });

  it("residual: a heartbeat forged with a member's id at a storable term forces an election (the cluster recovers)", async () => {
    const rogue = cluster.rogue;
    const start = await leader.status();
    const forgedTerm = start.term + 1000;
    rogue.raft({
      type: "heartbeat",
      from: rogue.memberOf(f1.peerId),
      to: rogue.memberOf(leader.peerId),
      term: forgedTerm,
      commit: 0,
    });
    await rogue.flush();
    await waitFor(async () => {
      const all = await Promise.all(cluster.peers.map((p) => p.status()));
      return all.some((s) => s.state === "leader" && s.term > forgedTerm) &&
        all.every((s) => s.leaderId !== null && s.leaderId === all[0]!.leaderId);
    }, { timeoutMs: 20_000, intervalMs: 100, message: "a new leader above the forged term" });
    ({ leader, f1, f2 } = await roles(cluster));
  });

  it("residual: anyone may join as a new member (that is what a join is); a silent one is removed", async () => {
    const rogue = cluster.rogue;
    const ghost = "ghost/11111111";
    rogue.request(leader.peerId, "ghost", "join", ghost);
    await rogue.flush();
    await waitFor(async () => (await memberIdsOf(leader)).includes(ghost), {
      timeoutMs: 10_000,
      message: "the ghost added",
    });
    await waitFor(async () => !(await memberIdsOf(leader)).includes(ghost), {
      timeoutMs: 20_000,
      intervalMs: 200,
      message: "the silent ghost removed after peerTimeoutMs",
    });
  });

  it("residual: a leave forged with a member's id removes it; it learns it, emits left and rejoins", async () => {
    const rogue = cluster.rogue;
    const victim = f2;
    const old = rogue.memberOf(victim.peerId);
    rogue.request(leader.peerId, victim.peerId, "leave", old);
    await rogue.flush();
    await victim.waitForEvent("left", 20_000);
    await waitFor(async () => {
      const ids = await memberIdsOf(leader);
      return ids.length === 3 && !ids.includes(old) && ids.some((id) => id.startsWith(`${victim.peerId}/`));
    }, { timeoutMs: 30_000, intervalMs: 200, message: "the victim back under a new member id" });
    members = await memberIdsOf(leader);
  });

  it("residual: a snapshot forged with the leader's id replaces a follower's state", async () => {
    const rogue = cluster.rogue;
    ({ leader, f1, f2 } = await roles(cluster));
    await f1.request("sync");
    const L = rogue.memberOf(leader.peerId);
    const F1 = rogue.memberOf(f1.peerId);
    const status = await leader.status();
    assert.ok((await entriesAfterSync(f1, "m")).size > 10, "the follower holds data");
    rogue.raft({
      type: "snapshot",
      from: L,
      to: F1,
      term: status.term,
      meta: {
        index: status.appliedIndex + 1_000_000,
        term: status.term,
        membership: { voters: members, learners: [], removed: [] },
      },
      offset: 0,
      data: encodeCbor({ states: [], applied: [] }),
      total: encodeCbor({ states: [], applied: [] }).length,
      done: true,
    });
    await rogue.flush();
    await waitFor(async () => (await f1.mapEntries("m")).length === 0, {
      timeoutMs: 10_000,
      message: "the follower's map wiped by the forged snapshot",
    });
  });
});
