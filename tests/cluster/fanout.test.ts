/**
 * The leader's shared appends (issue 14, point 5): with followers in sync one write costs the leader
 * one publish of its entries whatever the number of followers; a follower that is behind catches up
 * through its own inbox; a shared message that does not name a peer is ignored; a forged one is
 * dropped and counted. Plus the batching of one ready batch (sendRaftBatch) on its own.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hamok } from "../../src/hamok.ts";
import type { HamokMap } from "../../src/collections/map.ts";
import {
  decodeEnvelope,
  encodeEnvelope,
  MAX_SHARED_RECIPIENTS,
  type WireEnvelope,
} from "../../src/codec/envelope.ts";
import { WireAuthenticator } from "../../src/codec/wire_auth.ts";
import { sendRaftBatch } from "../../src/cluster/raft_fanout.ts";
import type { AppendMessage, Entry, HeartbeatMessage, RaftMessage } from "../../src/raft/types.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";
import { type CountingTransport, countingTransports } from "../_helpers/counting_transport.ts";

const KEY = "a cluster key of at least thirty-two bytes, for tests";
/** Slower heartbeats than FAST: a follower stays "in sync" (it answered within three heartbeats) through a busy machine's stalls. */
const CALM = { tickMs: 10, heartbeatTicks: 5, electionTicks: 30 };
const SHARED = "hamok.test.append";

/** The appends carrying entries among `published` (no key): shared ones and unicast ones, by recipient. */
function appendsIn(published: readonly { subject: string; data: Uint8Array }[], auth?: WireAuthenticator) {
  let shared = 0;
  const sharedTo = new Map<string, number>();
  const unicastTo = new Map<string, number>();
  for (const { data } of published) {
    const envelope = decodeEnvelope(auth === undefined ? data : auth.open(data)!);
    if (envelope.type === "raft-shared" && envelope.body.message.type === "append") {
      if (envelope.body.message.entries.length === 0) continue;
      shared++;
      for (const to of envelope.body.recipients) sharedTo.set(to, (sharedTo.get(to) ?? 0) + 1);
    } else if (
      envelope.type === "raft" && envelope.body.type === "append" && envelope.body.entries.length > 0
    ) {
      unicastTo.set(envelope.body.to, (unicastTo.get(envelope.body.to) ?? 0) + 1);
    }
  }
  return { shared, sharedTo, unicastTo };
}

const maps = new WeakMap<Hamok, Map<string, HamokMap<string, number>>>();

/** The map `mapId` of `peer`, made on first use. */
function mapOf(peer: Hamok, mapId: string): HamokMap<string, number> {
  let own = maps.get(peer);
  if (own === undefined) maps.set(peer, own = new Map());
  let map = own.get(mapId);
  if (map === undefined) own.set(mapId, map = peer.createMap<string, number>({ mapId }));
  return map;
}

function sum(counts: Map<string, number>): number {
  let total = 0;
  for (const n of counts.values()) total += n;
  return total;
}

/** Waits until the leader shares with every follower: a write whose entries go out in one shared publish naming all. */
async function untilShared(
  leader: Hamok,
  transport: CountingTransport,
  followers: number,
  auth?: WireAuthenticator,
): Promise<void> {
  const map = mapOf(leader, "warm");
  let n = 0;
  await waitFor(async () => {
    const from = transport.published.length;
    await map.set("w", n++);
    const { sharedTo } = appendsIn(transport.published.slice(from), auth);
    return sharedTo.size === followers;
  }, { timeoutMs: 15_000, message: "the leader shares its appends with every follower" });
}

describe("shared appends", () => {
  it("with 4 in-sync followers a write costs the leader one publish of its entries, not four", async () => {
    const factory = countingTransports();
    const cluster = await startCluster(factory, ["a", "b", "c", "d", "e"], CALM);
    try {
      const leader = await cluster.settled();
      const transport = factory.of.get(leader.localPeerId)!;
      await untilShared(leader, transport, 4);
      const map = mapOf(leader, "m");
      const from = transport.published.length;
      const writes = 40;
      for (let i = 0; i < writes; i++) await map.set(`k${i}`, i);
      const { shared, sharedTo, unicastTo } = appendsIn(transport.published.slice(from));
      // one publish per write where it was four (a follower that misses the in-sync window in a stall of
      // the machine may get its own now and then)
      assert.ok(shared >= writes * 0.75 && shared <= writes, `${shared} shared appends for ${writes} writes`);
      assert.ok(sum(unicastTo) <= writes, `unicast appends: ${JSON.stringify([...unicastTo])}`);
      assert.equal(sharedTo.size, 4);
      // every follower applied every write
      for (const peer of cluster.peers) {
        await peer.waitUntilCommitHead();
        assert.equal(mapOf(peer, "m").get(`k${writes - 1}`), writes - 1);
      }
      // and nobody dropped anything on the way
      for (const peer of cluster.peers) assert.equal(peer.status().counters.dropped["not-leader"], 0);
    } finally {
      await cluster.close();
    }
  });

  it("a follower that fell behind catches up through its own inbox, then is shared with again", async () => {
    const factory = countingTransports();
    const cluster = await startCluster(factory, ["a", "b", "c", "d"], CALM);
    try {
      const leader = await cluster.settled();
      const transport = factory.of.get(leader.localPeerId)!;
      await untilShared(leader, transport, 3);
      const lagging = cluster.peers.find((p) => p !== leader)!;
      const map = mapOf(leader, "m");
      const cut = factory.bus.partition(
        [lagging.localPeerId],
        cluster.peers.filter((p) => p !== lagging).map((p) => p.localPeerId),
      );
      for (let i = 0; i < 20; i++) await map.set(`k${i}`, i);
      const from = transport.published.length;
      cut.remove();
      const lm = mapOf(lagging, "m");
      await waitFor(() => lm.get("k19") === 19, {
        timeoutMs: 5000,
        message: "the lagging follower caught up",
      });
      const { unicastTo } = appendsIn(transport.published.slice(from));
      assert.ok((unicastTo.get(lagging.localMemberId) ?? 0) > 0, "it caught up through unicast appends");
      await untilShared(leader, transport, 3);
    } finally {
      await cluster.close();
    }
  });
});

describe("shared appends: a follower that lost track of the leader", () => {
  it("takes the shared appends of its term's leader after a pre-vote the leader outlived", async () => {
    const factory = countingTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    try {
      const leader = await cluster.settled();
      await untilShared(leader, factory.of.get(leader.localPeerId)!, 2);
      const follower = cluster.peers.find((p) => p !== leader)!;
      const dropped = (): number => follower.status().counters.dropped["not-leader"] ?? 0;
      const before = dropped();
      const term = leader.term;
      // from now on the leader's messages reach the follower 400 ms late: its election timer
      // (100-200 ms) fires in the gap, its pre-vote fails (the other follower hears the leader) and it
      // knows no leader in its term when the late messages, shared ones among them, arrive
      factory.bus.delay({ from: leader.localPeerId, to: follower.localPeerId, ms: 400 });
      const map = mapOf(leader, "m");
      for (let i = 0; i < 5; i++) await map.set(`k${i}`, i);
      await waitFor(() => mapOf(follower, "m").get("k4") === 4, {
        timeoutMs: 5000,
        message: "the follower applied the writes",
      });
      assert.equal(leader.term, term, "no election");
      assert.equal(follower.leaderId, leader.localPeerId);
      assert.equal(dropped(), before, "no shared message of the leader was dropped as not-leader");
    } finally {
      await cluster.close();
    }
  });
});

describe("shared appends: hostile input", () => {
  it("one not naming the peer is ignored; a forged one (term, sender, shape) is dropped and counted", async () => {
    const factory = countingTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], CALM);
    try {
      const leader = await cluster.settled();
      await untilShared(leader, factory.of.get(leader.localPeerId)!, 2);
      const [follower, other] = cluster.peers.filter((p) => p !== leader);
      const rogue = new MemoryTransport({ bus: factory.bus, id: "rogue" });
      const send = (envelope: WireEnvelope) => rogue.publish(SHARED, encodeEnvelope(envelope, "test"));
      const heartbeat = (from: string, term: number, recipients: string[]): WireEnvelope => ({
        type: "raft-shared",
        from: from.split("/")[0],
        body: { recipients, message: { type: "heartbeat", from, to: "", term, commit: 0 } },
      });
      const before = follower.status().counters;
      const term = follower.term;
      // not for this follower: ignored, counted apart, not a drop
      send(heartbeat(leader.localMemberId, term, [other.localMemberId]));
      await waitFor(() => follower.status().counters.notForMe === before.notForMe + 1, {
        timeoutMs: 2000,
        message: "counted as not for me",
      });
      assert.equal(follower.status().counters.dropped["not-leader"], before.dropped["not-leader"]);
      // a newer term "from" the leader, and the right term from a member that is not the leader
      send(heartbeat(leader.localMemberId, term + 5, [follower.localMemberId]));
      send(heartbeat(other.localMemberId, term, [follower.localMemberId, other.localMemberId]));
      await waitFor(
        () => follower.status().counters.dropped["not-leader"] === before.dropped["not-leader"] + 2,
        {
          timeoutMs: 2000,
          message: "dropped as not from the leader",
        },
      );
      // the envelope's sender is not the member the message names
      send({ ...heartbeat(leader.localMemberId, term, [follower.localMemberId]), from: other.localPeerId });
      await waitFor(
        () => follower.status().counters.dropped["forged-sender"] === before.dropped["forged-sender"] + 1,
        { timeoutMs: 2000, message: "forged sender" },
      );
      // 10,000 recipients, and a vote in a shared message: not a valid shared body
      const many = Array.from({ length: 10_000 }, (_, i) => `m${i}/00000000`);
      many[0] = follower.localMemberId;
      send(heartbeat(leader.localMemberId, term, many));
      const vote = {
        type: "vote",
        from: leader.localMemberId,
        to: "",
        term: term + 1,
        lastIndex: 1_000_000,
        lastTerm: term + 1,
      } as unknown as HeartbeatMessage;
      send({
        type: "raft-shared",
        from: leader.localPeerId,
        body: { recipients: [follower.localMemberId], message: vote },
      });
      await waitFor(() => follower.status().counters.dropped.undecodable === before.dropped.undecodable + 2, {
        timeoutMs: 2000,
        message: "undecodable",
      });
      // nothing changed: same term, same leader, and writes still go through
      assert.equal(follower.term, term);
      assert.equal(follower.leaderId, leader.localPeerId);
      await mapOf(leader, "m").set("k", 1);
      await rogue.close();
    } finally {
      await cluster.close();
    }
  });

  it("with a cluster key, a shared append sealed with another key is dropped as unauthenticated", async () => {
    const factory = countingTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { ...CALM, clusterKey: KEY });
    try {
      const leader = await cluster.settled();
      const auth = new WireAuthenticator("test", [new TextEncoder().encode(KEY)]);
      await untilShared(leader, factory.of.get(leader.localPeerId)!, 2, auth);
      // the leader's shared messages are sealed: a follower got them (else untilShared would not pass)
      const follower = cluster.peers.find((p) => p !== leader)!;
      const before = follower.status().counters.dropped.unauthenticated;
      const wrong = new WireAuthenticator("test", [
        new TextEncoder().encode("another key, also thirty-two bytes long!"),
      ]);
      const rogue = new MemoryTransport({ bus: factory.bus, id: "rogue" });
      rogue.publish(
        SHARED,
        wrong.seal(encodeEnvelope({
          type: "raft-shared",
          from: leader.localPeerId,
          body: {
            recipients: [follower.localMemberId],
            message: {
              type: "heartbeat",
              from: leader.localMemberId,
              to: "",
              term: follower.term + 1,
              commit: 0,
            },
          },
        }, "test")),
      );
      await waitFor(() => follower.status().counters.dropped.unauthenticated === before + 1, {
        timeoutMs: 2000,
        message: "unauthenticated",
      });
      assert.equal(follower.leaderId, leader.localPeerId);
      await rogue.close();
    } finally {
      await cluster.close();
    }
  });
});

describe("sendRaftBatch", () => {
  const entries: Entry[] = [{ index: 5, term: 2, type: "normal", data: new Uint8Array([1]) }];
  const append = (to: string, over: Partial<AppendMessage> = {}): AppendMessage => ({
    type: "append",
    from: "L",
    to,
    term: 2,
    prevIndex: 4,
    prevTerm: 2,
    commit: 4,
    entries,
    ...over,
  });
  const run = (messages: RaftMessage[], shareable = (_: string) => true) => {
    const out: (string | [string[], RaftMessage])[] = [];
    sendRaftBatch(messages, shareable, {
      unicast: (m) => out.push(`${m.type}>${m.to}`),
      shared: (recipients, m) => out.push([[...recipients], m]),
    });
    return out;
  };

  it("shares alike appends, keeps each recipient's order, and leaves unlike ones and laggards alone", () => {
    const next = [{ ...entries[0], index: 6 }];
    const out = run([
      append("a"),
      append("a", { prevIndex: 5, entries: next }),
      append("b"),
      append("b", { prevIndex: 5, entries: next }),
      append("c", { prevIndex: 1, prevTerm: 1 }), // behind: its own
      append("d"),
      { type: "timeout-now", from: "L", to: "b", term: 2 },
      append("d", { prevIndex: 5, entries: next }),
    ], (id) => id !== "d");
    assert.deepEqual(out.map((o) => typeof o === "string" ? o : o[0].join(",")), [
      "a,b",
      "a,b",
      "append>c",
      "append>d",
      "timeout-now>b",
      "append>d",
    ]);
  });

  it("equal but distinct entry arrays, other commits, terms or contexts are not shared", () => {
    const hb = (to: string, ctx?: string): HeartbeatMessage =>
      ctx === undefined
        ? { type: "heartbeat", from: "L", to, term: 2, commit: 4 }
        : { type: "heartbeat", from: "L", to, term: 2, commit: 4, ctx };
    const out = run([
      append("a"),
      append("b", { entries: [...entries] }),
      append("c", { commit: 5 }),
      append("e", { term: 3 }),
      hb("a"),
      hb("b"),
      hb("c", "r1"),
    ]);
    assert.deepEqual(out.map((o) => typeof o === "string" ? o : o[0].join(",")), [
      "append>a",
      "append>b",
      "append>c",
      "append>e",
      "a,b",
      "heartbeat>c",
    ]);
  });

  it(`names at most ${MAX_SHARED_RECIPIENTS} recipients per shared message`, () => {
    const ids = Array.from({ length: MAX_SHARED_RECIPIENTS + 3 }, (_, i) => `m${i}`);
    const out = run(ids.map((id) => append(id)));
    assert.deepEqual(out.map((o) => typeof o === "string" ? o : o[0].length), [MAX_SHARED_RECIPIENTS, 3]);
  });

  it("sends a follower's latest successful acknowledgement to a leader only, and every refusal", () => {
    const response = (index: number, reject = false, to = "L", term = 2): RaftMessage => ({
      type: "append-response",
      from: "f",
      to,
      term,
      index,
      reject,
      rejectHint: reject ? index : 0,
      hintTerm: 0,
    });
    const messages = [
      response(5),
      response(6),
      response(3, true),
      { type: "heartbeat-response", from: "f", to: "L", term: 2 } as RaftMessage,
      response(7),
      response(2, false, "L", 3),
      response(8, false, "M"),
    ];
    const sent: RaftMessage[] = [];
    sendRaftBatch(messages, () => false, {
      unicast: (m) => sent.push(m),
      shared: () => assert.fail("shared"),
    });
    assert.deepEqual(sent, [messages[2], messages[3], messages[4], messages[5], messages[6]]);
  });
});
