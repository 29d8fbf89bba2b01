/**
 * Coalesced acknowledgements (issue 14, point 5): a follower does not answer a leader twice with the
 * same index, and a learner with no voter seat free holds its acknowledgements back (latest wins) for
 * a fraction of the heartbeat interval, so the leader's inbound per write is set by its voters, not by
 * the number of learners. Learners still catch up, are promoted when a voter goes (also under writes),
 * and catch up through a snapshot after compaction.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hamok } from "../../src/hamok.ts";
import { decodeEnvelope } from "../../src/codec/envelope.ts";
import { AckCoalescer } from "../../src/cluster/raft_fanout.ts";
import type { Scheduler, TimerHandle } from "../../src/cluster/scheduler.ts";
import type { RaftMessage } from "../../src/raft/types.ts";
import { startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { type CountingTransport, countingTransports } from "../_helpers/counting_transport.ts";

/** A clock that moves only when told; timers fire as it passes them. */
class ManualScheduler implements Scheduler {
  #now = 1_000;
  #timers = new Map<number, { at: number; callback: () => void }>();
  #next = 1;
  now(): number {
    return this.#now;
  }
  monotonicNow(): number {
    return this.#now;
  }
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, callback });
    return id;
  }
  clearTimeout(handle: TimerHandle | undefined): void {
    if (typeof handle === "number") this.#timers.delete(handle);
  }
  setInterval(): TimerHandle {
    throw new Error("not used");
  }
  clearInterval(): void {}
  defer(callback: () => void): void {
    queueMicrotask(callback);
  }
  yieldThen(callback: () => void): void {
    queueMicrotask(callback);
  }
  random(): number {
    return 0.5;
  }
  get pending(): number {
    return this.#timers.size;
  }
  advance(ms: number): void {
    this.#now += ms;
    for (const [id, timer] of [...this.#timers]) {
      if (timer.at <= this.#now) {
        this.#timers.delete(id);
        timer.callback();
      }
    }
  }
}

const ack = (index: number, over: Partial<RaftMessage> = {}): RaftMessage =>
  ({
    type: "append-response",
    from: "f",
    to: "L",
    term: 3,
    index,
    reject: false,
    rejectHint: 0,
    hintTerm: 0,
    ...over,
  }) as RaftMessage;
const heartbeatAnswer = (ctx?: string): RaftMessage =>
  ctx === undefined
    ? { type: "heartbeat-response", from: "f", to: "L", term: 3 }
    : { type: "heartbeat-response", from: "f", to: "L", term: 3, ctx };

function coalescer() {
  const scheduler = new ManualScheduler();
  const sent: RaftMessage[] = [];
  const acks = new AckCoalescer({
    scheduler,
    holdMs: 25,
    holdAppends: 4,
    quietMs: 120,
    send: (m) => sent.push(m),
  });
  const indices = () =>
    sent.map((m) => m.type === "append-response" ? (m.reject ? `r${m.index}` : m.index) : m.type);
  return { scheduler, sent, acks, indices };
}

describe("AckCoalescer", () => {
  it("a voter answers every new index at once, and leaves out one repeat in a row, not two", () => {
    const { acks, indices } = coalescer();
    acks.send([ack(5)], false);
    acks.send([ack(5)], false); // the answer to a commit notice: said already
    acks.send([ack(6)], false);
    acks.send([ack(6)], false);
    acks.send([ack(6)], false); // a second repeat in a row goes (a probe must get its answer)
    assert.deepEqual(indices(), [5, 6, 6]);
    assert.equal(acks.stats.superseded, 2);
  });

  it("a learner holds its latest acknowledgement until the timer, the count, or another message", () => {
    const { scheduler, acks, indices } = coalescer();
    acks.send([ack(1)], true);
    acks.send([ack(2), ack(3)], true);
    assert.deepEqual(indices(), []);
    scheduler.advance(24);
    assert.deepEqual(indices(), []);
    scheduler.advance(1);
    assert.deepEqual(indices(), [3], "the timer sends the latest only");
    // the count: four appends acknowledged
    for (let i = 4; i <= 7; i++) acks.send([ack(i)], true);
    assert.deepEqual(indices(), [3, 7]);
    assert.equal(scheduler.pending, 0, "no timer left once sent");
    // a refusal goes at once, after the held acknowledgement (in order)
    acks.send([ack(8), ack(8, { reject: true, rejectHint: 7 } as Partial<RaftMessage>)], true);
    assert.deepEqual(indices(), [3, 7, 8, "r8"]);
    // a read-index answer goes at once too; a held one goes ahead of it
    acks.send([ack(9), heartbeatAnswer("read-1")], true);
    assert.deepEqual(indices(), [3, 7, 8, "r8", 9, "heartbeat-response"]);
    // promoted (coalesce false): a held acknowledgement goes with the next batch, at once
    acks.send([ack(10)], true);
    acks.send([], false);
    assert.deepEqual(indices().slice(-1), [10]);
  });

  it("a learner answers heartbeats only after a quiet spell, a voter always", () => {
    const { scheduler, acks, sent } = coalescer();
    acks.send([heartbeatAnswer()], true); // the first: nothing sent before
    scheduler.advance(100);
    acks.send([heartbeatAnswer()], true); // 100 ms after: left out
    scheduler.advance(100);
    acks.send([heartbeatAnswer()], true); // 200 ms after the last sent: goes
    assert.equal(sent.length, 2);
    assert.equal(acks.stats.quietHeartbeats, 1);
    scheduler.advance(10);
    acks.send([heartbeatAnswer()], false);
    assert.equal(sent.length, 3);
  });

  it("a new term or leader starts afresh; an older held acknowledgement is dropped, not sent", () => {
    const { acks, indices, scheduler } = coalescer();
    acks.send([ack(5)], false);
    acks.send([ack(6)], true); // held
    acks.send([ack(4, { term: 4, to: "M" })], true); // a new leader: index 4 is news to it
    scheduler.advance(100);
    assert.deepEqual(indices(), [5, 4]);
    acks.reset();
    acks.send([ack(4, { term: 4, to: "M" })], false);
    assert.deepEqual(indices(), [5, 4, 4], "after a reset nothing counts as said");
  });
});

/** The Raft messages to `memberId` each peer published from `marks` on, by type. */
function raftTo(
  factory: { of: Map<string, CountingTransport> },
  memberId: string,
  marks: Map<string, number>,
): Map<string, Map<string, number>> {
  const byPeer = new Map<string, Map<string, number>>();
  for (const [peerId, transport] of factory.of) {
    const counts = new Map<string, number>();
    for (const { data } of transport.published.slice(marks.get(peerId) ?? 0)) {
      const envelope = decodeEnvelope(data);
      if (envelope.type === "raft" && envelope.body.to === memberId) {
        counts.set(envelope.body.type, (counts.get(envelope.body.type) ?? 0) + 1);
      }
    }
    byPeer.set(peerId, counts);
  }
  return byPeer;
}

function marksOf(factory: { of: Map<string, CountingTransport> }): Map<string, number> {
  return new Map([...factory.of].map(([id, t]) => [id, t.published.length]));
}

function roles(peer: Hamok): { voters: string[]; learners: string[] } {
  const members = peer.status().members;
  return {
    voters: members.filter((m) => m.role === "voter").map((m) => m.peerId).sort(),
    learners: members.filter((m) => m.role === "learner").map((m) => m.peerId).sort(),
  };
}

/**
 * Slow heartbeats (200 ms; a learner holds an acknowledgement 50 ms, for up to 12 appends): the
 * writes of the test come faster than a hold, even on a busy machine.
 */
const SLOW_BEATS = { tickMs: 10, heartbeatTicks: 20, electionTicks: 60, voters: 3 };
const IDS = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];

async function untilRoles(leader: Hamok, voters: number, learners: number): Promise<void> {
  await waitFor(() => roles(leader).voters.length === voters && roles(leader).learners.length === learners, {
    timeoutMs: 10_000,
    message: `${voters} voters and ${learners} learners`,
  });
}

describe("coalesced acknowledgements in a cluster", () => {
  it("3 voters and 6 learners: K sequential writes cost the leader about one answer per voter, not per member", async () => {
    const factory = countingTransports();
    const cluster = await startCluster(factory, IDS, SLOW_BEATS);
    try {
      const leader = await cluster.settled();
      await untilRoles(leader, 3, 6);
      const map = leader.createMap<string, number>({ mapId: "m" });
      for (let i = 0; i < 20; i++) await map.set("warm", i);
      const marks = marksOf(factory);
      const writes = 48;
      for (let i = 0; i < writes; i++) await map.set(`k${i}`, i);
      const byPeer = raftTo(factory, leader.localMemberId, marks);
      const { voters, learners } = roles(leader);
      let voterAcks = 0;
      let learnerAcks = 0;
      let inbound = 0;
      for (const [peerId, counts] of byPeer) {
        const acks = counts.get("append-response") ?? 0;
        for (const n of counts.values()) inbound += n;
        if (voters.includes(peerId)) voterAcks += acks;
        else if (learners.includes(peerId)) learnerAcks += acks;
      }
      // every write asks each of the two other voters once (append) and tells it once (commit): one
      // answer each, where it was two
      assert.ok(voterAcks <= 2 * writes * 1.25 + 4, `${voterAcks} acknowledgements from 2 voters`);
      // each learner answers for up to 12 appends at once (or after 50 ms): 6 learners at once cost
      // less than one voter; unheld it was 2 per write per learner
      assert.ok(learnerAcks <= (6 * writes) / 4, `${learnerAcks} acknowledgements from 6 learners`);
      assert.ok(
        inbound <= 3.5 * writes,
        `the leader got ${inbound} messages for ${writes} writes: ${
          JSON.stringify([...byPeer].map(([p, c]) => [p, [...c]]))
        }`,
      );
      // the learners got every write
      for (const peer of cluster.peers) {
        await peer.waitUntilCommitHead();
        const own = peer === leader ? map : peer.createMap<string, number>({ mapId: "m" });
        assert.equal(own.get(`k${writes - 1}`), writes - 1);
      }
    } finally {
      await cluster.close();
    }
  });

  it("a learner is promoted when a voter goes, also while writes go on", async () => {
    const cluster = await startCluster(countingTransports(), IDS.slice(0, 6), {
      ...SLOW_BEATS,
      peerTimeoutMs: 1500,
    });
    try {
      const leader = await cluster.settled();
      await untilRoles(leader, 3, 3);
      const map = leader.createMap<string, number>({ mapId: "m" });
      let writing = true;
      let written = 0;
      const writer = (async () => {
        while (writing) await map.set("k", written++);
      })();
      const voterId = roles(leader).voters.find((id) => id !== leader.localPeerId)!;
      await cluster.crash(cluster.peers.find((p) => p.localPeerId === voterId)!);
      await waitFor(() => {
        const r = roles(leader);
        return !r.voters.includes(voterId) && r.voters.length === 3 && r.learners.length === 2;
      }, { timeoutMs: 15_000, message: "a learner was promoted in the removed voter's place under writes" });
      writing = false;
      await writer;
      assert.ok(written > 0);
    } finally {
      await cluster.close();
    }
  });

  it("a learner cut off while the leader compacts catches up through a snapshot, and the leader sees it", async () => {
    const factory = countingTransports();
    const cluster = await startCluster(factory, IDS.slice(0, 5), {
      ...SLOW_BEATS,
      snapshotThreshold: 20,
      peerTimeoutMs: 20_000,
    });
    try {
      const leader = await cluster.settled();
      await untilRoles(leader, 3, 2);
      const map = leader.createMap<string, number>({ mapId: "m" });
      const learner = cluster.peers.find((p) => p.localPeerId === roles(leader).learners[0])!;
      const learnerMap = learner.createMap<string, number>({ mapId: "m" });
      await map.set("k", -1);
      await learner.waitUntilCommitHead();
      const others = cluster.peers.filter((p) => p !== learner).map((p) => p.localPeerId);
      const cut = factory.bus.partition(learner.localPeerId, others);
      for (let i = 0; i < 100; i++) await map.set(`k${i}`, i);
      await waitFor(() => leader.status().snapshotIndex > learner.status().lastIndex, {
        timeoutMs: 5000,
        message: "the leader compacted past what the learner holds",
      });
      cut.remove();
      await waitFor(() => learnerMap.get("k99") === 99, {
        timeoutMs: 10_000,
        message: "the learner caught up",
      });
      // its acknowledgements, coalesced, bring the leader's view of it up to the leader's log
      await waitFor(() => {
        const status = leader.status();
        const member = status.members.find((m) => m.peerId === learner.localPeerId);
        return member?.matchIndex !== undefined && member.matchIndex >= status.commitIndex;
      }, { timeoutMs: 5000, message: "the leader saw the learner caught up" });
      assert.ok(learner.status().snapshotIndex > 0, "it installed a snapshot");
    } finally {
      await cluster.close();
    }
  });
});
