/**
 * What a sender on the bus can put into a cluster without a cluster key, and what a member's
 * forwarded proposals may carry: every forged or malformed proposal is dropped or skipped alike on
 * every peer, never a stall, a crash or a state that differs between replicas.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Hamok } from "../../mod.ts";
import { encodeEnvelope, type WireEnvelope } from "../../src/codec/envelope.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import {
  memoryTransports,
  startCluster,
  type TestCluster,
  type TransportFactory,
} from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

/** A sender on the bus that is no peer (no cluster key is configured in these tests). */
function rogue(bus: MemoryBus): { send(to: Hamok, envelope: WireEnvelope): void; close(): Promise<void> } {
  const transport = new MemoryTransport({ bus, id: "rogue" });
  return {
    send: (to, envelope) =>
      transport.publish(`hamok.test.peer.${to.localPeerId}`, encodeEnvelope(envelope, "test")),
    close: () => transport.close(),
  };
}

function factoryOn(bus: MemoryBus, maxPayload?: number): TransportFactory {
  return {
    name: "memory",
    create: (peerId) => Promise.resolve(new MemoryTransport({ bus, id: peerId, maxPayload })),
    close: () => Promise.resolve(),
  };
}

/** A proposal forwarded to the leader in the name of `follower`. */
function forward(leader: Hamok, follower: Hamok, data: Uint8Array, requestId: string): WireEnvelope {
  return {
    type: "raft",
    from: follower.localPeerId,
    body: {
      type: "propose",
      from: follower.localMemberId,
      to: leader.localMemberId,
      term: leader.term,
      entries: [{ data, requestId }],
    },
  } as WireEnvelope;
}

/** Runs `body` on three memory peers (snapshots every 20 entries) with a rogue on their bus. */
async function withRogue(
  body: (
    ctx: { cluster: TestCluster; r: ReturnType<typeof rogue>; leader: Hamok; follower: Hamok },
  ) => Promise<void>,
): Promise<void> {
  const factory = memoryTransports();
  const cluster = await startCluster(factory, ["a", "b", "c"], { snapshotThreshold: 20 });
  const r = rogue(factory.bus);
  try {
    const leader = await cluster.settled();
    const follower = cluster.peers.find((p) => p !== leader)!;
    await body({ cluster, r, leader, follower });
  } finally {
    await r.close();
    await cluster.close();
  }
}

const dropped = (peer: Hamok, reason: string): number =>
  (peer.status().counters.dropped as Record<string, number>)[reason] ?? 0;

describe("forwarded proposals", () => {
  it("one larger than an entry the cluster can replicate is dropped; commits go on", async () => {
    const bus = new MemoryBus();
    const cluster = await startCluster(factoryOn(bus, 64 * 1024), ["a", "b", "c"], {
      requestTimeoutInMs: 3000,
    });
    const r = rogue(bus);
    try {
      const leader = await cluster.settled();
      const follower = cluster.peers.find((p) => p !== leader)!;
      const map = leader.createMap<string, string>({ mapId: "m" });
      await map.set("k", "before");
      const before = leader.status().lastIndex;
      // fits in the propose message, not in the append that would carry it to the followers
      r.send(leader, forward(leader, follower, new Uint8Array(leader.maxEntryBytes + 1), "big"));
      await waitFor(() => dropped(leader, "oversized") > 0, {
        timeoutMs: 5000,
        message: "dropped as oversized",
      });
      assert.equal(leader.status().lastIndex, before, "nothing entered the log");
      // the old code appended it: no append carrying it could be sent, and every later write timed out
      assert.equal(await map.set("k", "after"), "before");
      r.send(leader, forward(leader, follower, new Uint8Array(10), "x".repeat(600)));
      await waitFor(() => dropped(leader, "oversized") > 1, {
        timeoutMs: 5000,
        message: "a long request id dropped",
      });
    } finally {
      await r.close();
      await cluster.close();
    }
  });

  it("a command whose collection id is not a string is skipped alike by every peer", async () => {
    await withRogue(async ({ cluster, r, leader, follower }) => {
      const failures = () => cluster.peers.map((p) => p.status().counters.codecFailures);
      r.send(leader, forward(leader, follower, encodeCbor(["map", 12345, "set", ["k", "v"], "b"]), "n1"));
      await waitFor(() => failures().every((n) => n === 1), {
        timeoutMs: 5000,
        message: "every peer skipped it",
      });
      // the old code made a state under the number 12345, which a snapshot wrote as map ""
      for (const peer of cluster.peers) {
        assert.equal(peer.export().maps?.length ?? 0, 0, `${peer.localPeerId} holds no map`);
      }
    });
  });

  it("a value with shared (cyclic) CBOR references is skipped; snapshots and joins go on", async () => {
    await withRogue(async ({ cluster, r, leader, follower }) => {
      const text = (s: string) => [0x60 + s.length, ...new TextEncoder().encode(s)];
      // ["emitter", "e", "subscribe", {event: "x", metadata: tag28({a: tag29(0)})}, "b"]: a cycle
      const data = Uint8Array.from([
        0x85,
        ...text("emitter"),
        ...text("e"),
        ...text("subscribe"),
        0xa2,
        ...text("event"),
        ...text("x"),
        ...text("metadata"),
        0xd8,
        0x1c,
        0xa1,
        ...text("a"),
        0xd8,
        0x1d,
        0x00,
        ...text("b"),
      ]);
      r.send(leader, forward(leader, follower, data, "cycle"));
      await waitFor(() => cluster.peers.every((p) => p.status().counters.codecFailures === 1), {
        timeoutMs: 5000,
        message: "every peer skipped it",
      });
      const map = leader.createMap<string, number>({ mapId: "m" });
      for (let i = 0; i < 60; i++) await map.set(`k${i}`, i);
      await waitFor(() => leader.status().counters.snapshotsTaken > 0, { timeoutMs: 5000 });
      // the old code kept the cycle in the table: every snapshot overflowed the stack (uncaught) and
      // a joiner never caught up
      const d = await cluster.add("d");
      await d.join({ timeoutMs: 10_000 });
      const seen = d.createMap<string, number>({ mapId: "m" });
      await seen.ready;
      assert.equal(seen.size, 60);
    });
  });
});

describe("Raft messages from senders a leader does not know", () => {
  it("a lone leader drops them, keeps none of their ids and stays leader in its term", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a"]);
    const r = rogue(factory.bus);
    try {
      const leader = await cluster.settled();
      const term = leader.term;
      // a lone leader hears no member: after four election timeouts (400 ms here) a peer takes
      // messages from senders it does not know (a follower must, to catch up with newer members)
      const since = performance.now();
      await waitFor(() => performance.now() - since > 600, { timeoutMs: 5000 });
      for (let i = 0; i < 50; i++) {
        r.send(leader, {
          type: "raft",
          from: `ghost${i}`,
          body: {
            type: "vote",
            from: `ghost${i}/0000000${i % 10}`,
            to: leader.localMemberId,
            term: term + 100,
            lastIndex: 1_000_000,
            lastTerm: term + 99,
          },
        } as WireEnvelope);
      }
      await waitFor(() => dropped(leader, "non-member") >= 50, { timeoutMs: 5000, message: "all dropped" });
      // the old code took them (and kept every made-up id in its tables)
      assert.equal(leader.term, term);
      assert.ok(leader.leader);
      await leader.createMap<string, number>({ mapId: "m" }).set("k", 1);
    } finally {
      await r.close();
      await cluster.close();
    }
  });
});

describe("hellos from senders on the bus", () => {
  it("ids longer than any peer makes are dropped; each other cluster identity is reported once", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a"]);
    const transport = new MemoryTransport({ bus: factory.bus, id: "rogue" });
    try {
      const peer = await cluster.settled();
      const conflicts: string[][] = [];
      peer.on("error", (error) => {
        const identities = (error as { identities?: string[] }).identities;
        if (identities !== undefined) conflicts.push(identities);
      });
      const hello = (peerId: string, uid: string) =>
        transport.publish(
          "hamok.test.all",
          encodeEnvelope({
            type: "hello",
            from: peerId,
            body: {
              clusterId: "test",
              peerId,
              memberId: `${peerId}/1`,
              term: 1,
              joined: true,
              clusterUid: uid,
            },
          } as WireEnvelope, "test"),
        );
      const undecodable = () => dropped(peer, "undecodable");
      // the old code kept four such strings per hello, 256 hellos deep (hundreds of MB)
      hello(`p${"z".repeat(5000)}`, "u-long");
      await waitFor(() => undecodable() === 1, { timeoutMs: 5000, message: "the long hello dropped" });
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) hello(`ghost${i}`, `uid-${i}`);
      }
      await waitFor(() => conflicts.length >= 5, { timeoutMs: 5000, message: "five identities reported" });
      // one report per identity heard, however often it says hello
      const reported = new Set(conflicts.map((ids) => ids.at(-1)));
      assert.equal(conflicts.length, reported.size, JSON.stringify(conflicts));
    } finally {
      await transport.close();
      await cluster.close();
    }
  });
});
