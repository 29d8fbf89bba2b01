/**
 * Test clusters: N Hamok peers on an isolated memory bus or on a real nats-server, with fast
 * timings, and a bounded wait for them to agree on one leader.
 *
 * @module
 */

import { Hamok } from "../../src/hamok.ts";
import type { HamokConfig } from "../../src/config.ts";
import type { HamokMap } from "../../src/collections/map.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { NatsTransport } from "../../src/transport/nats_transport.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { waitFor } from "./wait.ts";

/** Fast timings for tests (a leader in ~100-200 ms, a silent peer removed after 800 ms). */
export const FAST: HamokConfig = {
  tickMs: 10,
  electionTicks: 10,
  heartbeatTicks: 2,
  discoveryMs: 80,
  peerTimeoutMs: 800,
  requestTimeoutInMs: 3000,
};

/** Makes transports for the peers of one test cluster. */
export interface TransportFactory {
  /** A short name for test titles. */
  readonly name: string;
  /** A fresh transport for a peer. */
  create(peerId: string): Promise<Transport>;
  /** Releases what the factory holds. */
  close(): Promise<void>;
}

/** Transports on one private memory bus. */
export function memoryTransports(): TransportFactory & { readonly bus: MemoryBus } {
  const bus = new MemoryBus();
  return {
    name: "memory",
    bus,
    create: (peerId: string) => Promise.resolve(new MemoryTransport({ bus, id: peerId })),
    close: () => Promise.resolve(),
  };
}

/** Transports connected to a NATS server at `url`. */
export function natsTransports(url: string): TransportFactory {
  const made: Transport[] = [];
  return {
    name: "nats",
    async create(): Promise<Transport> {
      const transport = await NatsTransport.connect({ servers: url });
      made.push(transport);
      return transport;
    },
    async close(): Promise<void> {
      await Promise.all(made.map((t) => t.close().catch(() => {})));
    },
  };
}

/** A running test cluster. */
export interface TestCluster {
  readonly peers: Hamok[];
  readonly transports: Map<string, Transport>;
  /** Adds a peer (not joined). */
  add(peerId: string, config?: HamokConfig): Promise<Hamok>;
  /** Waits until every open, joined peer agrees on one leader. */
  settled(timeoutMs?: number): Promise<Hamok>;
  /** The current leader among the open peers. */
  leader(): Hamok | undefined;
  /** Closes a peer abruptly (no leave) and its transport. */
  crash(peer: Hamok): Promise<void>;
  /** Closes everything. */
  close(): Promise<void>;
}

/** Starts `ids.length` peers and joins them (all at once). */
export async function startCluster(
  factory: TransportFactory,
  ids: string[],
  config: HamokConfig = {},
): Promise<TestCluster> {
  const peers: Hamok[] = [];
  const transports = new Map<string, Transport>();
  const add = async (peerId: string, extra: HamokConfig = {}) => {
    const transport = await factory.create(peerId);
    transports.set(peerId, transport);
    const peer = new Hamok({ ...FAST, clusterId: "test", ...config, ...extra, peerId, transport });
    peers.push(peer);
    return peer;
  };
  const open = () => peers.filter((p) => !p.closed && p.joined);
  const cluster: TestCluster = {
    peers,
    transports,
    add,
    leader: () => open().find((p) => p.leader),
    async settled(timeoutMs = 5000) {
      await waitFor(() => {
        const live = open();
        const leader = live.find((p) => p.leader);
        return leader !== undefined && live.every((p) => p.leaderId === leader.localPeerId);
      }, { timeoutMs, message: "the peers did not agree on one leader" });
      return cluster.leader()!;
    },
    async crash(peer: Hamok) {
      peer.close();
      await transports.get(peer.localPeerId)?.close().catch(() => {});
    },
    async close() {
      for (const peer of peers) peer.close();
      await Promise.all([...transports.values()].map((t) => t.close().catch(() => {})));
      await factory.close();
    },
  };
  try {
    for (const id of ids) await add(id);
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 10_000 })));
    await cluster.settled();
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}

/** What {@linkcode laggingFollower} sets up. */
export interface LaggingFollower {
  readonly factory: ReturnType<typeof memoryTransports>;
  readonly cluster: TestCluster;
  readonly leader: Hamok;
  readonly follower: Hamok;
  /** Map `m` on the leader, where `k` is 1 (applied on the follower too before the lag began). */
  readonly writes: HamokMap<string, number>;
  /** Map `m` on the follower. */
  readonly reads: HamokMap<string, number>;
}

/**
 * Three peers on a memory bus of their own; `m.k = 1` written through the leader and applied on a
 * follower; from then on every message from the leader to that follower arrives `lagMs` late.
 * Close with `cluster.close()`.
 */
export async function laggingFollower(lagMs: number, config: HamokConfig = {}): Promise<LaggingFollower> {
  const factory = memoryTransports();
  const cluster = await startCluster(factory, ["a", "b", "c"], config);
  try {
    const leader = await cluster.settled();
    const follower = cluster.peers.find((p) => !p.leader)!;
    const writes = leader.createMap<string, number>({ mapId: "m" });
    const reads = follower.createMap<string, number>({ mapId: "m" });
    await writes.set("k", 1);
    await follower.waitUntilCommitHead();
    factory.bus.delay({ from: leader.localPeerId, to: follower.localPeerId, ms: lagMs });
    return { factory, cluster, leader, follower, writes, reads };
  } catch (error) {
    await cluster.close();
    throw error;
  }
}
