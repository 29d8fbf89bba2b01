/**
 * `HamokClient` and `ClientService` against hostile or unlucky answers: forged responses and
 * statuses, watches left running by `close()`, bad leases, writes whose outcome is unknown, watches
 * that stream nothing-changes or skip changes, and per-sender limits.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokClient, type HamokClientMapChange, type HamokClientWatchGap } from "../../src/cli/client.ts";
import { ClientService, type ClientServiceHost } from "../../src/cluster/client_service.ts";
import {
  CLIENT_LIMITS,
  CLIENT_MAP_WRITE_OP,
  CLIENT_STATUS_OP,
  CLIENT_WATCH_OP,
} from "../../src/cluster/client_ops.ts";
import { PeerCounters } from "../../src/cluster/peer_counters.ts";
import { PeerWire } from "../../src/cluster/peer_wire.ts";
import { REAL_SCHEDULER } from "../../src/cluster/scheduler.ts";
import { ClusterSubjects } from "../../src/cluster/subjects.ts";
import type { HamokStatus } from "../../src/cluster/status.ts";
import type { RequestBody } from "../../src/codec/envelope.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import type { HamokMapState } from "../../src/collections/map_state.ts";
import {
  HamokClosedError,
  HamokCodecError,
  HamokConflictError,
  HamokOutcomeUnknownError,
  HamokRateLimitedError,
} from "../../src/errors.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

const SUBJECTS = new ClusterSubjects(ClusterSubjects.prefixFor("test"));

function wireFor(peerId: string): PeerWire {
  return new PeerWire({
    clusterId: "test",
    keys: undefined,
    counters: new PeerCounters(),
    peerId,
    warn: () => {},
  });
}

interface Seen {
  readonly from: string;
  readonly body: RequestBody;
  readonly args: Record<string, unknown>;
}

/**
 * An endpoint on `bus` that hears the requests sent to `subject` (a member's inbox by default) and
 * answers through `reply(seen, send)`; `send(from, payload)` answers as `from`.
 */
function endpoint(
  bus: MemoryBus,
  id: string,
  reply: (seen: Seen, send: (from: string, payload: Uint8Array) => void) => void,
  subject = SUBJECTS.inbox(id),
) {
  const transport = new MemoryTransport({ bus, id });
  const wire = wireFor(id);
  const seen: Seen[] = [];
  transport.subscribe(subject, (message) => {
    const env = wire.decode(message.data);
    if (env?.type !== "request") return;
    let args: Record<string, unknown> = {};
    try {
      args = (env.body.payload.byteLength === 0 ? {} : decodeCbor(env.body.payload)) as Record<
        string,
        unknown
      >;
    } catch {
      // not CBOR
    }
    const entry = { from: env.from, body: env.body, args };
    seen.push(entry);
    reply(entry, (from, payload) =>
      transport.publish(
        SUBJECTS.inbox(env.from),
        wire.encode({ type: "response", from, body: { requestId: env.body.requestId, ok: true, payload } }),
      ));
  });
  return {
    seen,
    event(to: string, body: { emitterId: string; event: string; payload: Uint8Array; seq: number }) {
      transport.publish(SUBJECTS.inbox(to), wire.encode({ type: "event", from: id, body }));
    },
    close: () => transport.close(),
  };
}

function clientOn(bus: MemoryBus, timeoutMs = 2000): HamokClient {
  return new HamokClient(new MemoryTransport({ bus, id: "victim" }), {
    clusterId: "test",
    clientId: "victim",
    timeoutMs,
  });
}

function statusOf(
  peerId: string,
  role: HamokStatus["role"],
  leaderId: string,
  members: string[],
): HamokStatus {
  return {
    peerId,
    role,
    leaderId,
    term: 1,
    members: members.map((m) => ({ peerId: m, memberId: m, role: "voter" })),
  } as unknown as HamokStatus;
}

describe("HamokClient answers (F1)", () => {
  it("settles a request only with the answer of the peer it asked, and its request ids are not guessable", async () => {
    const bus = new MemoryBus();
    const member = endpoint(bus, "a", (seen, send) => {
      if (seen.body.op !== "client.map.read") return;
      // a forged answer first, from a sender that is not the peer asked, then the real one
      send(
        "evil-not-a-member",
        encodeCbor({ mapId: "m", size: 1, revision: 1, entries: [["k", "FORGED", 1]] }),
      );
      send("a", encodeCbor({ mapId: "m", size: 1, revision: 3, entries: [["k", "real", 3]] }));
    });
    const client = clientOn(bus);
    try {
      const read = await client.mapRead("a", "m", { keys: ["k"] });
      assert.equal(read.entries[0]!.value, "real");
      const ids = member.seen.map((s) => s.body.requestId);
      assert.equal(ids.length, 1);
      assert.notEqual(ids[0], "victim:1", "the request id has a random part");
      assert.match(ids[0]!, /^victim:1\.[0-9a-z]{4,}$/);
    } finally {
      client.close();
      await member.close();
    }
  });

  it("refuses an answer of the wrong shape (a read of another map) with HamokCodecError", async () => {
    const bus = new MemoryBus();
    const member = endpoint(bus, "a", (_seen, send) => {
      send("a", encodeCbor({ mapId: "other", size: 0, revision: 0, entries: [] }));
    });
    const client = clientOn(bus);
    try {
      await assert.rejects(client.mapRead("a", "m"), HamokCodecError);
      await assert.rejects(client.publish("a", "e", "ev", []), HamokCodecError);
    } finally {
      client.close();
      await member.close();
    }
  });
});

describe("HamokClient.close (F2)", () => {
  it("stops every watch's renewals and tells the member; later requests reject with HamokClosedError", async () => {
    const bus = new MemoryBus();
    // a lease of 300 ms: renewals every 100 ms
    const made = new Set<unknown>();
    const member = endpoint(bus, "a", (seen, send) => {
      if (seen.body.op !== CLIENT_WATCH_OP) return;
      send("a", encodeCbor({ leaseMs: 300, created: !made.has(seen.args.watchId) }));
      made.add(seen.args.watchId);
    });
    const client = clientOn(bus);
    const other = new HamokClient(new MemoryTransport({ bus, id: "other" }), {
      clusterId: "test",
      clientId: "other",
      timeoutMs: 2000,
    });
    const errors: Error[] = [];
    try {
      await client.watchMap("a", "m", () => {}, (error) => errors.push(error));
      const renewals = (from: string) =>
        member.seen.filter((s) => s.from === from && s.body.op === CLIENT_WATCH_OP).length;
      await waitFor(() => renewals("victim") >= 2, { timeoutMs: 5000, message: "the watch renews" });
      client.close();
      await waitFor(() => member.seen.some((s) => s.from === "victim" && s.body.op === "client.unwatch"), {
        timeoutMs: 5000,
        message: "close() ended the watch on the member",
      });
      const atClose = renewals("victim");
      // another watch on the same period: three of its renewals take longer than two periods
      await other.watchMap("a", "m", () => {});
      const start = renewals("other");
      await waitFor(() => renewals("other") >= start + 3, {
        timeoutMs: 5000,
        message: "the other watch renews",
      });
      assert.equal(renewals("victim"), atClose, "no renewal after close()");
      assert.deepEqual(errors, [], "a closed watch reports nothing");
      await assert.rejects(client.request("a", CLIENT_STATUS_OP, {}), HamokClosedError);
      await assert.rejects(client.watchMap("a", "m", () => {}), HamokClosedError);
    } finally {
      client.close();
      other.close();
      await member.close();
    }
  });
});

describe("HamokClient.statusAll (F3)", () => {
  const members = ["a", "b", "c"];
  const honest = (bus: MemoryBus) =>
    members.map((id) =>
      endpoint(
        bus,
        id,
        (_seen, send) => send(id, encodeCbor(statusOf(id, id === "b" ? "leader" : "follower", "b", members))),
        SUBJECTS.broadcast,
      )
    );

  it("ignores an answer whose sender is not the peer it describes", async () => {
    const bus = new MemoryBus();
    const peers = honest(bus);
    const evil = endpoint(bus, "evil", (_seen, send) => {
      send("someone-else", encodeCbor(statusOf("0wned", "leader", "0wned", [...members, "0wned"])));
    }, SUBJECTS.broadcast);
    const client = clientOn(bus);
    try {
      const views = await client.statusAll(2000);
      assert.deepEqual(views.map((v) => v.peerId), ["b", "a", "c"]);
      assert.equal(await client.findLeader(), "b");
    } finally {
      client.close();
      await Promise.all([...peers, evil].map((p) => p.close()));
    }
  });

  it("prefers the leader the other members name over one that only names itself", async () => {
    const bus = new MemoryBus();
    const peers = honest(bus);
    // sender and peer id agree (impersonation without a key), but nobody else follows it
    const evil = endpoint(bus, "0wned", (_seen, send) => {
      send("0wned", encodeCbor(statusOf("0wned", "leader", "0wned", [...members, "0wned"])));
    }, SUBJECTS.broadcast);
    const client = clientOn(bus);
    try {
      assert.equal(await client.findLeader(), "b");
    } finally {
      client.close();
      await Promise.all([...peers, evil].map((p) => p.close()));
    }
  });

  it("collects at most 1024 views from a flood of answers", async () => {
    const bus = new MemoryBus();
    const names = Array.from({ length: 1500 }, (_, i) => `n${i}`);
    const evil = endpoint(bus, "evil", (_seen, send) => {
      // each names many members, none of which ends the round early
      for (const name of names) {
        send(name, encodeCbor(statusOf(name, "follower", "x", [...names.slice(0, 50), "x"])));
      }
    }, SUBJECTS.broadcast);
    const client = clientOn(bus);
    try {
      const views = await client.statusAll(3000);
      assert.ok(views.length > 0 && views.length <= 1024, `${views.length} views`);
    } finally {
      client.close();
      await evil.close();
    }
  });
});

describe("HamokClient.watchMap lease (F4)", () => {
  for (const answer of [{}, { leaseMs: "10000" }, { leaseMs: -1 }, { leaseMs: 0 }]) {
    it(`refuses a watch answer ${JSON.stringify(answer)} with HamokCodecError (no renewal flood)`, async () => {
      const bus = new MemoryBus();
      const member = endpoint(bus, "a", (seen, send) => {
        if (seen.body.op === CLIENT_WATCH_OP) send("a", encodeCbor(answer));
      });
      const client = clientOn(bus);
      try {
        await assert.rejects(client.watchMap("a", "m", () => {}), HamokCodecError);
      } finally {
        client.close();
        await member.close();
      }
    });
  }
});

describe("HamokClient writes (F7)", () => {
  it("waits at least as long as a member by default", () => {
    const client = new HamokClient(new MemoryTransport({ bus: new MemoryBus(), id: "c" }));
    try {
      assert.ok(client.timeoutMs > 5000, `${client.timeoutMs} ms`);
      assert.equal(client.statusWindowMs, 3000);
    } finally {
      client.close();
    }
  });

  it("reports a write without an answer as HamokOutcomeUnknownError with the request id it sent", async () => {
    const bus = new MemoryBus();
    const member = endpoint(bus, "a", () => {}); // never answers
    const client = clientOn(bus, 300);
    try {
      const error = await client.mapWrite("a", "m", "k", "v", { requestId: "import:7" }).then(
        () => assert.fail("resolved"),
        (e) => e,
      );
      assert.ok(error instanceof HamokOutcomeUnknownError, String(error));
      assert.equal(error.requestId, "import:7");
      const sent = member.seen.find((s) => s.body.op === CLIENT_MAP_WRITE_OP)!;
      assert.equal(sent.args.requestId, "import:7");
      // a generated one travels too
      const generated = await client.mapWrite("a", "m", "k").then(() => undefined, (e) => e);
      assert.ok(generated instanceof HamokOutcomeUnknownError);
      assert.equal(member.seen.at(-1)!.args.requestId, generated.requestId);
    } finally {
      client.close();
      await member.close();
    }
  });

  it("a write sent again with the same request id, through another member, is applied once", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    const client = new HamokClient(await factory.create("victim"), { clusterId: "test", clientId: "victim" });
    try {
      const leader = await cluster.settled();
      const follower = cluster.peers.find((p) => p !== leader)!;
      const map = leader.createMap<string, string>({ mapId: "m" });
      await map.set("k", "v0");
      const [key, v1] = [encodeCbor("k"), encodeCbor("v1")];
      const first = await client.mapWrite(follower.localPeerId, "m", key, v1, { requestId: "r-1" });
      const revision = map.getEntry("k")!.revision;
      const again = await client.mapWrite(leader.localPeerId, "m", key, v1, { requestId: "r-1" });
      assert.equal(decodeCbor(first as Uint8Array), "v0");
      assert.equal(decodeCbor(again as Uint8Array), "v0", "the retry answers with the first result");
      assert.equal(map.getEntry("k")!.revision, revision, "the retry was not applied again");
      const deleted = await client.mapWrite(leader.localPeerId, "m", key, undefined, { requestId: "r-2" });
      const deletedAgain = await client.mapWrite(follower.localPeerId, "m", key, undefined, {
        requestId: "r-2",
      });
      assert.equal(decodeCbor(deleted as Uint8Array), "v1");
      assert.equal(
        decodeCbor(deletedAgain as Uint8Array),
        "v1",
        "a retried delete still says what it deleted",
      );
    } finally {
      client.close();
      await cluster.close();
    }
  });
});

function serviceHost(overrides: Partial<ClientServiceHost> = {}) {
  const events: { to: string; event: string; seq?: number; payload: unknown }[] = [];
  const host: ClientServiceHost = {
    status: () => ({}) as HamokStatus,
    findMapState: () => undefined,
    readBarrier: () => Promise.resolve(),
    proposeMap: () => Promise.resolve({ conflict: false, previous: null }),
    publish: () => Promise.resolve([]),
    sendEvent: (to, body) =>
      events.push({ to, event: body.event, seq: body.seq, payload: decodeCbor(body.payload as Uint8Array) }),
    ...overrides,
  };
  return { host, events };
}

describe("ClientService client writes (F7)", () => {
  it("proposes a write under the client's namespaced request id; a resend in flight joins it", async () => {
    const calls: unknown[][] = [];
    let release!: () => void;
    const { host } = serviceHost({
      proposeMap: (...args: unknown[]) => {
        calls.push(args);
        return new Promise((resolve) => (release = () => resolve({ conflict: false, previous: "old" })));
      },
    });
    const service = new ClientService(host, new PeerCounters(), 5000);
    const write = encodeCbor({ mapId: "m", op: "set", key: "k", value: "v", requestId: "r1" });
    const first = service.handle(CLIENT_MAP_WRITE_OP, write, "cli-1");
    const second = service.handle(CLIENT_MAP_WRITE_OP, write, "cli-1");
    assert.equal(calls.length, 1, "one proposal for both");
    assert.deepEqual(calls[0], ["m", "set", ["k", "v"], 5000, "client:cli-1:r1"]);
    release();
    assert.deepEqual(decodeCbor((await first)!), { previous: "old" });
    assert.deepEqual(decodeCbor((await second)!), { previous: "old" });
    await assert.rejects(
      service.handle(
        CLIENT_MAP_WRITE_OP,
        encodeCbor({ mapId: "m", op: "set", key: "k", value: "v", requestId: 5 }),
        "x",
      ),
      /requestId/,
    );
  });
});

describe("ClientService watches (F5, F6, F8)", () => {
  const watch = (service: ClientService, from: string, watchId: string) =>
    service.handle(CLIENT_WATCH_OP, encodeCbor({ mapId: "m", watchId }), from).then((p) => decodeCbor(p!));

  it("streams only commands that changed the map", async () => {
    let revision = 0;
    const { host, events } = serviceHost({ findMapState: () => ({ revision }) as unknown as HamokMapState });
    const service = new ClientService(host, new PeerCounters(), 5000);
    await watch(service, "cli", "w1");
    revision = 5;
    service.applied("map", "m", "set", ["k", "v"], 5);
    // a duplicate, a conflicting ifRevision or an insert of a present key leave the revision as it was
    service.applied("map", "m", "set", ["k", "never", 1], 6);
    assert.deepEqual(events.map((e) => [e.event, e.seq, e.payload]), [["set", 1, [5, ["k", "v"]]]]);
  });

  it("answers whether a watch was made or renewed, and sends every watch a reset after a snapshot", async () => {
    const { host, events } = serviceHost();
    const service = new ClientService(host, new PeerCounters(), 5000);
    assert.deepEqual(await watch(service, "cli", "w1"), {
      leaseMs: CLIENT_LIMITS.watchLeaseMs,
      created: true,
    });
    assert.deepEqual(await watch(service, "cli", "w1"), {
      leaseMs: CLIENT_LIMITS.watchLeaseMs,
      created: false,
    });
    service.restored(120);
    assert.deepEqual(events, [{ to: "cli", event: "reset", seq: 1, payload: [120, null] }]);
  });

  it("serves at most maxWatchesPerSender watches to one sender", async () => {
    const { host } = serviceHost();
    const counters = new PeerCounters();
    const service = new ClientService(host, counters, 5000);
    for (let i = 0; i < CLIENT_LIMITS.maxWatchesPerSender; i++) await watch(service, "greedy", `w${i}`);
    await assert.rejects(watch(service, "greedy", "one-more"), HamokRateLimitedError);
    assert.equal(counters.values().dropped["rate-limited"], 1);
    assert.deepEqual(await watch(service, "someone", "w"), {
      leaseMs: CLIENT_LIMITS.watchLeaseMs,
      created: true,
    });
  });
});

describe("ClientService rate limits (F9)", () => {
  const frozen = { ...REAL_SCHEDULER, monotonicNow: () => 1000 };
  const status = new Uint8Array(0);

  it("bounds all senders together: rotating ids gets no more than the total", async () => {
    const { host } = serviceHost();
    const limits = { ...CLIENT_LIMITS, requestsPerSecond: 10, totalRequestsPerSecond: 30 };
    const service = new ClientService(host, new PeerCounters(), 5000, limits, frozen);
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      await service.handle(CLIENT_STATUS_OP, status, `rotating-${i}`).catch((error) => {
        assert.ok(error instanceof HamokRateLimitedError);
        refused++;
      });
    }
    assert.equal(refused, 70);
  });

  it("forgets the least recently seen sender, not the first one seen", async () => {
    const { host } = serviceHost();
    const limits = { ...CLIENT_LIMITS, requestsPerSecond: 2, maxSenders: 2 };
    const service = new ClientService(host, new PeerCounters(), 5000, limits, frozen);
    const ask = (from: string) =>
      service.handle(CLIENT_STATUS_OP, status, from).then(() => true, () => false);
    assert.equal(await ask("busy"), true);
    assert.equal(await ask("busy"), true);
    assert.equal(await ask("idle"), true);
    assert.equal(await ask("busy"), false, "busy spent its bucket");
    assert.equal(await ask("new"), true); // forgets "idle", the least recently seen
    assert.equal(await ask("busy"), false, "busy's empty bucket is remembered");
  });
});

describe("HamokClient watch gaps (F5)", () => {
  it("hears a sequence gap, a member reset and a renewal that made the watch anew", async () => {
    const bus = new MemoryBus();
    let created = true;
    const member = endpoint(bus, "a", (seen, send) => {
      if (seen.body.op !== CLIENT_WATCH_OP) return;
      send("a", encodeCbor({ leaseMs: 300, created }));
      created = false;
    });
    const client = clientOn(bus);
    const changes: HamokClientMapChange[] = [];
    const gaps: HamokClientWatchGap[] = [];
    try {
      await client.watchMap("a", "m", (c) => changes.push(c), () => {}, { onGap: (g) => gaps.push(g) });
      const watchId = member.seen[0]!.args.watchId as string;
      const send = (seq: number, event: string, payload: unknown) =>
        member.event("victim", { emitterId: watchId, event, payload: encodeCbor(payload), seq });
      send(1, "set", [5, ["k", "v"]]);
      send(3, "set", [9, ["k", "w"]]); // seq 2 was lost
      send(4, "reset", [40, null]);
      await waitFor(() => gaps.length >= 2, { timeoutMs: 5000, message: "the gaps were heard" });
      assert.deepEqual(changes.map((c) => c.index), [5, 9]);
      assert.deepEqual(gaps, [{ reason: "sequence", expected: 2, got: 3 }, {
        reason: "snapshot",
        index: 40,
      }]);
      created = true; // the member forgot the watch (a restart): the next renewal makes it again
      await waitFor(() => gaps.length >= 3, { timeoutMs: 5000, message: "the recreated watch was heard" });
      assert.deepEqual(gaps[2], { reason: "recreated" });
      send(1, "set", [50, ["k", "x"]]); // the new watch counts from 1 again: no gap
      await waitFor(() => changes.length === 3, { timeoutMs: 5000, message: "the new watch streams" });
      assert.equal(gaps.length, 3);
    } finally {
      client.close();
      await member.close();
    }
  });
});

describe("watches on a cluster (F6)", () => {
  it("do not stream a conflicting ifRevision write", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    const client = new HamokClient(await factory.create("victim"), { clusterId: "test", clientId: "victim" });
    try {
      const leader = await cluster.settled();
      const map = leader.createMap<string, string>({ mapId: "m" });
      await map.set("k", "once");
      const changes: HamokClientMapChange[] = [];
      const stop = await client.watchMap(leader.localPeerId, "m", (c) => changes.push(c));
      await assert.rejects(map.set("k", "never", { ifRevision: 1 }), HamokConflictError);
      await map.set("k", "twice");
      await waitFor(() => changes.length > 0, { timeoutMs: 5000, message: "the watch streamed the set" });
      assert.deepEqual(
        changes.map((c) => (c.args as unknown[])[2]),
        [undefined],
        "only the unconditional set",
      );
      assert.equal(changes[0]!.index, map.getEntry("k")!.revision);
      stop();
    } finally {
      client.close();
      await cluster.close();
    }
  });
});

describe("watches on a cluster (F5)", () => {
  it("a follower that catches up by snapshot tells its watch there is a gap", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"], { snapshotThreshold: 20 });
    const client = new HamokClient(await factory.create("victim"), { clusterId: "test", clientId: "victim" });
    try {
      const leader = await cluster.settled();
      const follower = cluster.peers.find((p) => !p.leader)!;
      const other = cluster.peers.find((p) => p !== leader && p !== follower)!;
      const map = leader.createMap<string, number>({ mapId: "m" });
      const seen: number[] = [];
      const gaps: HamokClientWatchGap[] = [];
      const stop = await client.watchMap(follower.localPeerId, "m", (c) => seen.push(c.index), () => {}, {
        onGap: (gap) => gaps.push(gap),
      });
      await map.set("k", 0);
      await waitFor(() => seen.length === 1, { timeoutMs: 5000, message: "the first change" });
      // the follower is cut off from the members (the client still reaches it) and falls behind a snapshot
      const cut = factory.bus.partition(follower.localPeerId, [leader.localPeerId, other.localPeerId]);
      for (let i = 1; i <= 100; i++) await map.set("k", i);
      assert.ok(leader.status().snapshotIndex > seen[0]!, "the leader compacted past the follower");
      cut.remove();
      await waitFor(() => gaps.length > 0, { timeoutMs: 10_000, message: "the watch heard the gap" });
      assert.equal(gaps[0]!.reason, "snapshot");
      assert.ok(gaps[0]!.index! > seen[0]!, `the snapshot index ${gaps[0]!.index}`);
      stop();
    } finally {
      client.close();
      await cluster.close();
    }
  });
});
