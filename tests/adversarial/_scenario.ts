/**
 * The shared setup of the adversarial tests: a private nats-server that admits 16 MiB messages (so
 * the peers' own 8 MiB inbound limit is what stops an oversized message), three peers in separate
 * processes, a rogue client that has learnt their member ids, and helpers to watch leadership and
 * counters while the attacks run.
 *
 * Sizes: the floods default to CI sizes; `HAMOK_ADV_HELLOS` (default 20000; the audit used
 * 200000) and `HAMOK_ADV_GARBAGE` (default 5000) set them.
 *
 * @module
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { type PeerProcess, type PeerStatus, startPeerProcess } from "../_helpers/peer_process.ts";
import { waitFor } from "../_helpers/wait.ts";
import type { DropReason, PeerCounterValues } from "../../src/cluster/peer_counters.ts";
import type { HamokStatus } from "../../src/cluster/status.ts";
import { Rogue } from "./_rogue.ts";

/** Hellos from distinct ids in the flood (`HAMOK_ADV_HELLOS`; the audit's 200000 is the full size). */
export const HELLO_FLOOD: number = Number(process.env.HAMOK_ADV_HELLOS ?? 20_000);
/** Undecodable messages per target in the garbage flood (`HAMOK_ADV_GARBAGE`). */
export const GARBAGE_FLOOD: number = Number(process.env.HAMOK_ADV_GARBAGE ?? 5_000);

/** Prints measured numbers when `HAMOK_ADV_VERBOSE` is set. */
export function report(line: string): void {
  if (process.env.HAMOK_ADV_VERBOSE) console.log(`[adversarial] ${line}`);
}

/** Timing of the peers: the defaults (elections in 0.5-1 s), a 5 s silent-member timeout. */
export const TIMING = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 2,
  discoveryMs: 300,
  peerTimeoutMs: 5000,
};

/** A 32-byte-plus cluster key for the keyed runs. */
export const CLUSTER_KEY = "adversarial-test-cluster-key-0123456789abcdef";

/** Starts a nats-server with `max_payload` 16 MiB. */
export async function startBigPayloadServer(): Promise<NatsServer & { cleanup(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "hamok-adv-"));
  const conf = join(dir, "nats.conf");
  writeFileSync(conf, "max_payload: 16777216\n");
  const server = await startNatsServer({ extraArgs: ["-c", conf] });
  return Object.assign(server, { cleanup: () => rmSync(dir, { recursive: true, force: true }) });
}

/** Three peers of one cluster, the rogue, and who leads. */
export interface Cluster {
  readonly clusterId: string;
  readonly peers: readonly PeerProcess[];
  readonly rogue: Rogue;
  /** Peer id -> process. */
  byId(peerId: string): PeerProcess;
  close(): Promise<void>;
}

/** Starts peers a, b, c (with `extra` config), joins them and connects a rogue that saw their member ids. */
export async function startCluster(
  server: NatsServer,
  extra: Record<string, unknown> = {},
): Promise<Cluster> {
  const clusterId = `adv-${crypto.randomUUID().slice(0, 8)}`;
  const peers: PeerProcess[] = [];
  let rogue: Rogue | undefined;
  const close = async (): Promise<void> => {
    await rogue?.close().catch(() => {});
    await Promise.all(peers.map((p) => p.close()));
  };
  try {
    for (const peerId of ["a", "b", "c"]) {
      peers.push(await startPeerProcess({ natsUrl: server.url, peerId, clusterId, ...TIMING, ...extra }));
    }
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 30_000 })));
    await waitFor(async () => {
      const all = await Promise.all(peers.map((p) => p.status()));
      return all.every((s) =>
        s.remotePeerIds.length === 2 && s.leaderId !== null && s.leaderId === all[0]!.leaderId
      );
    }, { timeoutMs: 20_000, intervalMs: 100, message: "one cluster of three with one leader" });
    rogue = await Rogue.connect(server.url, clusterId);
    const r = rogue;
    await waitFor(() => ["a", "b", "c"].every((p) => r.memberIds.has(p)) && r.leaderMemberId !== undefined, {
      timeoutMs: 10_000,
      intervalMs: 20,
      message: "the rogue sees the member ids and the leader on the wire",
    });
  } catch (error) {
    await close();
    throw error;
  }
  const r = rogue;
  return {
    clusterId,
    peers,
    rogue: r,
    byId: (peerId) => {
      const p = peers.find((x) => x.peerId === peerId);
      if (p === undefined) throw new Error(`no peer ${peerId}`);
      return p;
    },
    close,
  };
}

/** The leader and the two followers, by peer id, as the peers report them now. */
export async function roles(
  cluster: Cluster,
): Promise<{ leader: PeerProcess; f1: PeerProcess; f2: PeerProcess }> {
  let leaderId: string | undefined;
  await waitFor(async () => {
    const all = await Promise.all(cluster.peers.map((p) => p.status()));
    const leaders = all.filter((s) => s.state === "leader");
    if (leaders.length !== 1 || !all.every((s) => s.leaderId !== null && s.leaderId === all[0]!.leaderId)) {
      return false;
    }
    leaderId = all[0]!.leaderId!;
    return true;
  }, { timeoutMs: 20_000, intervalMs: 100, message: "one agreed leader" });
  const leader = cluster.byId(leaderId!);
  const [f1, f2] = cluster.peers.filter((p) => p !== leader) as [PeerProcess, PeerProcess];
  return { leader, f1, f2 };
}

/** Member ids of the committed membership as `peer` reports it, sorted. */
export async function memberIdsOf(peer: PeerProcess): Promise<string[]> {
  const status = await peer.request<HamokStatus>("hamok.status");
  return status.members.map((m) => m.memberId).sort();
}

/** The counters of every peer, by peer id. */
export async function countersOf(cluster: Cluster): Promise<Map<string, PeerCounterValues>> {
  const out = new Map<string, PeerCounterValues>();
  for (const p of cluster.peers) out.set(p.peerId, await p.request<PeerCounterValues>("counters"));
  return out;
}

/** Drops of `reason` counted on `peer` since `before`. */
export async function dropsSince(
  peer: PeerProcess,
  before: PeerCounterValues,
  reason: DropReason,
): Promise<number> {
  const now = await peer.request<PeerCounterValues>("counters");
  return now.dropped[reason] - before.dropped[reason];
}

/** Waits until `peer` counted at least `n` drops of `reason` since `before`. */
export async function waitForDrops(
  peer: PeerProcess,
  before: PeerCounterValues,
  reason: DropReason,
  n: number,
  timeoutMs = 20_000,
): Promise<number> {
  let seen = 0;
  await waitFor(async () => {
    seen = await dropsSince(peer, before, reason);
    return seen >= n;
  }, { timeoutMs, intervalMs: 100, message: `${peer.peerId}: ${n} drops of '${reason}' (saw ${seen})` })
    .catch(
      (error) => {
        throw new Error(`${(error as Error).message}; saw ${seen}`);
      },
    );
  return seen;
}

/** One poll of the cluster's leadership. */
export interface LeaderSample {
  readonly at: number;
  /** Peers that answered the status request in time. */
  readonly answered: number;
  readonly leaders: string[];
  readonly terms: number[];
}

/**
 * Leadership held throughout a watch: every sample in which all three peers answered shows exactly
 * one leader, and the leader and term at the end are those of the start (one leader per term, so
 * nobody was elected meanwhile). A peer that answers late (its event loop busy with a flood)
 * makes a sample incomplete, not leaderless.
 */
export function leaderThroughout(
  samples: readonly LeaderSample[],
  start: PeerStatus,
  end: PeerStatus,
): string[] {
  const problems: string[] = [];
  if (samples.filter((s) => s.answered === 3).length === 0) problems.push("no complete sample");
  for (const s of samples) {
    if (s.answered === 3 && s.leaders.length !== 1) {
      problems.push(`at ${s.at}: leaders ${JSON.stringify(s.leaders)}`);
    }
  }
  if (end.leaderId !== start.leaderId) problems.push(`leader ${start.leaderId} -> ${end.leaderId}`);
  if (end.term !== start.term) problems.push(`term ${start.term} -> ${end.term}`);
  return problems;
}

/**
 * Polls every peer's status every `intervalMs` until stopped and records who claims to lead. A
 * peer that does not answer within the bound counts as not leading.
 */
export class LeaderWatch {
  readonly samples: LeaderSample[] = [];
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(cluster: Cluster, intervalMs = 200) {
    this.#done = (async () => {
      while (!this.#stopped) {
        const started = Date.now();
        const all = await Promise.all(
          cluster.peers.map((p) => p.status(5000).catch((): PeerStatus | undefined => undefined)),
        );
        this.samples.push({
          at: started,
          answered: all.filter((x) => x !== undefined).length,
          leaders: cluster.peers.filter((_, i) => all[i]?.state === "leader").map((p) => p.peerId),
          terms: all.map((s) => s?.term ?? -1),
        });
        const wait = intervalMs - (Date.now() - started);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })();
  }

  /** Stops polling and returns the samples. */
  async stop(): Promise<LeaderSample[]> {
    this.#stopped = true;
    await this.#done;
    return this.samples;
  }
}

/** `count` random byte strings of 1..`maxBytes` bytes. */
export function garbage(count: number, maxBytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = new Uint8Array(1 + Math.floor(Math.random() * maxBytes));
    crypto.getRandomValues(bytes);
    // never a valid envelope: a CBOR array header with an impossible version first
    bytes[0] = 0x85;
    if (bytes.length > 1) bytes[1] = 0x19;
    out.push(bytes);
  }
  return out;
}

/** Heap used by each peer after a full collection, in bytes, by peer id. */
export async function heapOf(cluster: Cluster): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of cluster.peers) {
    const { heapUsed, gc } = await p.request<{ heapUsed: number; gc: boolean }>("heap", {}, 30_000);
    // without a forced collection the figure is mostly garbage (Node without --expose-gc: 0.1-8 MB)
    if (!gc) {
      throw new Error(`peer ${p.peerId} cannot force a garbage collection: its heap figure means little`);
    }
    out.set(p.peerId, heapUsed);
  }
  return out;
}

/**
 * Most a peer's heap may grow (after full collections) over a flood of 20,000 distinct ids. The floods
 * leave 0.2-0.3 MB on Deno and Node and 0.4-0.8 MB on Bun; the discovery table without its bound
 * (`DISCOVERY_TABLE_LIMIT`) grows it by 1.84 MB on Deno, which the 8 MB bound used before let pass.
 */
export const HEAP_GROWTH_BOUND: number = 1.5 * 1024 * 1024;

/** Every `[key, value]` of map `m` on `peer` after a read barrier. */
export async function entriesAfterSync(peer: PeerProcess, mapId: string): Promise<Map<string, unknown>> {
  await peer.request("sync", { timeoutMs: 10_000 }, 15_000);
  return new Map(await peer.mapEntries(mapId));
}
