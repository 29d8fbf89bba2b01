/**
 * The whole-peer simulator: N real `Hamok` peers with their real map collection on one `MemoryBus`,
 * all on virtual time ({@linkcode VirtualWorld}) and one seeded PRNG, under a nemesis (bus faults,
 * crashes and restarts with and without storage, pauses, leaves, a duplicate peer id, oversized
 * writes) and a workload through the public API with retries by request id. The history is checked
 * for linearizability; local reads for monotonicity and read-your-writes; the run for one bootstrap,
 * equal replicas after the heal and liveness after the faults stop.
 *
 * @module
 */

import { Hamok } from "../../src/hamok.ts";
import type { HamokTestingBug } from "../../src/config.ts";
import type { HamokMap } from "../../src/collections/map.ts";
import type { HamokRecord } from "../../src/collections/record.ts";
import type { HamokRemoteMap } from "../../src/collections/remote_map.ts";
import type { HamokQueue } from "../../src/collections/queue.ts";
import type { HamokEmitter } from "../../src/collections/emitter.ts";
import { MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import type {
  Transport,
  TransportEvents,
  TransportHandler,
  TransportHeaders,
  TransportMessage,
  TransportState,
  TransportSubscription,
} from "../../src/transport/transport.ts";
import { MemoryRaftStorage } from "../../src/storage/memory_storage.ts";
import type { RaftStorage } from "../../src/storage/raft_storage.ts";
import { newMemberId } from "../../src/cluster/member_id.ts";
import { sleep } from "../../src/cluster/scheduler.ts";
import {
  HamokClosedError,
  HamokClusterConflictError,
  HamokCodecError,
  HamokListenerError,
  HamokNoLeaderError,
  HamokNotJoinedError,
  HamokOutcomeUnknownError,
  HamokPayloadTooLargeError,
  HamokRemovedError,
  HamokTimeoutError,
} from "../../src/errors.ts";
import { Prng } from "../sim/prng.ts";
import { TraceHash } from "../sim/hash.ts";
import { checkLinearizability, type Operation } from "../sim/linearizability.ts";
import { type MapInput, mapModel, type MapOutput } from "./map_model.ts";
import { type PeerClock, VirtualWorld } from "./virtual_scheduler.ts";
import { SimDisk } from "./sim_disk.ts";
import {
  type AttemptOptions,
  checkPublished,
  checkQueue,
  type KvTarget,
  mapTarget,
  newEmitterHistory,
  newQueueHistory,
  recordDelivery,
  recordTarget,
  REFUSED,
  refusingCodec,
  remoteTarget,
} from "./workload.ts";

/** Every fault the nemesis injects, as counted in {@linkcode PeerSimResult.faults}. */
export const PEER_FAULT_KINDS = [
  "drop",
  "delay",
  "reorder",
  "duplicate",
  "partition",
  "one-way",
  "crash",
  "crash-wipe",
  "pause",
  "leave",
  "duplicate-id",
  "oversized",
  "publish-throws",
  "codec-throws",
  "listener-throws",
  "restart",
  "crash-all",
] as const;

/** The fault kinds that need durable storage (`storage: "durable"`). */
const DURABLE_FAULT_KINDS: readonly PeerFaultKind[] = ["restart", "crash-all"];

/** The fault kinds of the map-only workload (`workload: "map"`). */
const MAP_ONLY_FAULT_KINDS: readonly PeerFaultKind[] = PEER_FAULT_KINDS.slice(0, 12);

/** One kind of fault. */
export type PeerFaultKind = typeof PEER_FAULT_KINDS[number];

/** Options of one run. */
export interface PeerSimOptions {
  /** Cluster size; default: the seed picks 3 or 5. */
  readonly nodes?: 3 | 5;
  /** Deliberate bugs switched on in every peer. */
  readonly bugs?: readonly HamokTestingBug[];
  /** Virtual ms of the fault phase. Default 12 000. */
  readonly faultMs?: number;
  /** Virtual ms after the heal within which a new write must succeed. Default 10 000. */
  readonly livenessBoundMs?: number;
  /**
   * Virtual ms after the clients stop within which every peer must be a member again (a peer whose
   * recovery began after the heal, such as one restarted after an unconfirmed leave). Default 15 000.
   */
  readonly rejoinBoundMs?: number;
  /**
   * `all` (default): map, record, remote map, queue and emitter. `map`: the map alone, with the
   * fault kinds of the map-only simulator, which replays the histories of seeds found before the
   * other workloads existed.
   */
  readonly workload?: "all" | "map";
  /**
   * The peers' storage. `memory`: a `MemoryRaftStorage` (durable at once; a crash loses nothing).
   * `durable`: a {@linkcode SimDisk} with `sync` (asynchronous persistence; a crash is a power loss
   * that loses what was not synced; the fault kinds `restart` and `crash-all`; the run ends with a
   * power loss of every peer and a restart of all, which must lose nothing acknowledged). Default:
   * the seed picks, half the seeds each (`memory` for the map-only workload).
   */
  readonly storage?: "memory" | "durable";
  /**
   * A deliberate bug of the simulated disk, to test the simulator's checks: `sync-lies` (a sync
   * returns at once and makes nothing durable). Implies `storage: "durable"`.
   */
  readonly diskBug?: "sync-lies";
  /** Keep a trace of the run (for replays). */
  readonly trace?: boolean;
  /** The fault kinds the nemesis may inject. Default: all of {@linkcode PEER_FAULT_KINDS}. */
  readonly kinds?: readonly PeerFaultKind[];
  /**
   * `expected` (default): every peer starts at once with `expectedPeers` set to the cluster size,
   * so exactly one bootstraps. `defaults`: the discovery mode. Peers start with the library's
   * discovery defaults (no `expectedPeers`, `autoMerge` on, their own storage) at seeded, staggered
   * times, with seeded pauses of single peers (the first one included) and a partition at the
   * start, so lone bootstraps, merges and conflicts happen; the map-only workload without the
   * nemesis; in some seeds the clients wait until the peers form one cluster (a split that remains
   * is then a violation). The run must end in one cluster, or in clusters of which some peer
   * reported a `HamokClusterConflictError`, each consistent on its own. Its randomness comes from a
   * PRNG stream of its own.
   */
  readonly discovery?: "expected" | "defaults";
}

/** What one run found. */
export interface PeerSimResult {
  readonly seed: number;
  readonly nodes: number;
  /** Whether the peers ran on durable storage ({@linkcode PeerSimOptions.storage}). */
  readonly durable: boolean;
  /** Durable storage: records written but lost to power losses (not yet synced when it struck). */
  readonly unsyncedLost: number;
  /** Every violated property, with details; empty when the run passed. */
  readonly violations: string[];
  readonly faults: Record<PeerFaultKind, number>;
  /** Operations completed with a known outcome (reads included). */
  readonly opsCompleted: number;
  /** Writes whose outcome stayed unknown. */
  readonly opsUnknown: number;
  readonly bootstraps: number;
  /** Discovery mode: lone peers that dissolved their cluster and joined another one. */
  readonly merges: number;
  /** Discovery mode: peers that reported a `HamokClusterConflictError`. */
  readonly conflicts: number;
  /** Discovery mode: clusters at the end (1 when the peers converged). */
  readonly clusters: number;
  /** Discovery mode: whether the clients waited for one cluster before their first operation. */
  readonly delayedWrites: boolean;
  /**
   * Snapshots the peers open at the end took because a follower needed one whose bytes were
   * released (peers on their own memory storage, the discovery mode); a coverage count.
   */
  readonly snapshotsForFollowers: number;
  readonly virtualMs: number;
  readonly steps: number;
  /** Digest of the run's history and faults: the same for the same seed and options. */
  readonly traceHash: string;
  readonly trace: string[];
}

const KEYS = ["a", "b", "c"];
const TICK_MS = 50;
const MAX_PAYLOAD = 16 * 1024;
const REQUEST_TIMEOUT_MS = 2000;

/** A transport over a memory endpoint that a crash makes deaf and mute and a pause makes deaf. */
export class SimTransport implements Transport {
  readonly #inner: MemoryTransport;
  readonly #world: VirtualWorld;
  #dead = false;
  #paused = false;
  /** `publish` throws (a fault: the transport refuses to send). */
  throwing = false;
  #held: [TransportHandler, TransportMessage][] = [];

  constructor(inner: MemoryTransport, world: VirtualWorld) {
    this.#inner = inner;
    this.#world = world;
  }
  get id(): string {
    return this.#inner.id;
  }
  get state(): TransportState {
    return this.#inner.state;
  }
  get maxPayload(): number | undefined {
    return this.#inner.maxPayload;
  }
  publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    if (this.#dead) return;
    if (this.throwing) throw new Error("simulated transport failure: publish refused");
    this.#inner.publish(subject, data, headers);
  }
  subscribe(subject: string, handler: TransportHandler): TransportSubscription {
    return this.#inner.subscribe(subject, (message) => {
      if (this.#dead) return;
      if (this.#paused) this.#held.push([handler, message]);
      else handler(message);
    });
  }
  flush(): Promise<void> {
    return this.#inner.flush();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
  on<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    this.#inner.on(event, listener);
    return this;
  }
  off<E extends keyof TransportEvents>(event: E, listener: TransportEvents[E]): this {
    this.#inner.off(event, listener);
    return this;
  }
  kill(): void {
    this.#dead = true;
    this.#held = [];
    void this.#inner.close().catch(() => {});
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    this.#paused = false;
    const held = this.#held;
    this.#held = [];
    if (held.length === 0) return;
    this.#world.setTimeout(() => {
      for (const [handler, message] of held) {
        if (this.#dead) return;
        try {
          handler(message);
        } catch { /* the peer reports its own handler errors */ }
      }
    }, 0);
  }
}

interface Slot {
  readonly peerId: string;
  inc: number;
  storage: RaftStorage | undefined;
  /** Durable storage: the member's disk ({@linkcode storage} is the running incarnation's handle). */
  disk: SimDisk | undefined;
  hamok: Hamok | undefined;
  clock: PeerClock | undefined;
  transport: SimTransport | undefined;
  map: HamokMap<string, string> | undefined;
  record: HamokRecord<Record<string, string>> | undefined;
  remote: HamokRemoteMap<string, string> | undefined;
  queue: HamokQueue<string> | undefined;
  emitter: HamokEmitter<SimEvents> | undefined;
  /** The peer is down, paused or has left (the nemesis disturbs one peer at a time). */
  disturbed: boolean;
  /** A leave() is under way (its `left` is expected). */
  leaving: boolean;
}

type MapOp = Operation<MapInput, MapOutput>;

/** The emitter's events: `ev(publisher incarnation, its message number)`. */
type SimEvents = { ev: [from: string, n: number] };

/** The collection kinds whose writes must succeed again after the heal. */
const LIVE_KINDS = ["m", "r", "x", "q", "e"] as const;

/**
 * Runs one seed.
 *
 * @example
 * ```ts ignore
 * const result = await runPeerSeed(42, {});
 * console.log(result.violations);
 * ```
 */
export async function runPeerSeed(seed: number, options: PeerSimOptions = {}): Promise<PeerSimResult> {
  const root = new Prng(seed);
  const world = new VirtualWorld(root.fork());
  const rng = root.fork();
  const nemesisRng = root.fork();
  const busRng = root.fork();
  const nodes = options.nodes ?? (rng.chance(0.5) ? 3 : 5);
  const faultMs = options.faultMs ?? (options.discovery === "defaults" ? 6000 : 12_000);
  const livenessBoundMs = options.livenessBoundMs ?? 10_000;
  const rejoinBoundMs = options.rejoinBoundMs ?? 15_000;
  const bugs = options.bugs ?? [];
  const violations: string[] = [];
  const trace: string[] = [];
  const hash = new TraceHash().add(seed).add(nodes);
  const faults = Object.fromEntries(PEER_FAULT_KINDS.map((k) => [k, 0])) as Record<PeerFaultKind, number>;
  const history: MapOp[] = [];
  let clock = 0; // event order: strictly increasing timestamps of calls and returns
  let bootstraps = 0;
  let unsyncedLost = 0;
  let opsUnknown = 0;
  /** Writes whose client is still waiting on them. */
  const pendingWrites = new Set<MapOp>();
  let stopped = false;
  let healedAt = Infinity;
  let firstWriteAfterHeal = Infinity;
  /** Per collection kind: when the first operation called after the heal succeeded. */
  const liveAt = Object.fromEntries(LIVE_KINDS.map((k) => [k, Infinity])) as Record<string, number>;
  const live = (kind: typeof LIVE_KINDS[number], callAt: number) => {
    if (liveAt[kind] === Infinity && callAt >= healedAt) liveAt[kind] = world.time;
  };
  const queueHistory = newQueueHistory();
  const emitterHistory = newEmitterHistory();
  /** Errors thrown by listeners (a fault) and not yet reported on the peer's `error` event. */
  const unreported = new Set<unknown>();
  /** The remote map's backing store: one database that every peer reaches. */
  const remoteStore = new MemoryRemoteStore<string, string>();
  // which messages and values the throwing listeners refuse (seeded)
  const throwSalt = root.fork().int(7);
  const discovery = options.discovery === "defaults";
  const mapOnly = options.workload === "map" || discovery;
  // the storage mode draws from a stream of its own: the memory-mode seeds replay as before
  const diskRng = root.fork();
  const durable = options.diskBug !== undefined
    ? true
    : options.storage !== undefined
    ? options.storage === "durable"
    : !mapOnly && diskRng.chance(0.5);
  // the discovery mode draws from a stream of its own (forked only in that mode)
  const discRng = discovery ? root.fork() : undefined;
  const delayedWrites = discRng?.chance(0.4) ?? false;
  let merges = 0;
  /** Peers (by id) that reported a cluster conflict. */
  const conflicted = new Set<string>();
  /** Discovery mode: the member id each recorded operation was called on. */
  const opMember = new Map<MapOp, string | undefined>();
  /** Discovery mode: the identity of the cluster its peer was a member of when it was called. */
  const opUid = new Map<MapOp, string>();
  const allowedKinds = discovery
    ? []
    : (options.kinds ?? (mapOnly ? MAP_ONLY_FAULT_KINDS : PEER_FAULT_KINDS)).filter((k) =>
      durable || !DURABLE_FAULT_KINDS.includes(k)
    );
  const liveKinds = mapOnly ? ["m"] : LIVE_KINDS;
  const codecFaults = allowedKinds.includes("codec-throws");
  const listenerFaults = allowedKinds.includes("listener-throws");
  const note = (line: string) => {
    hash.addString(line);
    if (options.trace) trace.push(`${world.time.toFixed(0).padStart(6)} ${line}`);
  };

  const bus = new MemoryBus({ random: () => busRng.next(), scheduler: world });
  bus.delay({ ms: 2 }); // a constant base latency keeps per-path order
  const slots: Slot[] = [];
  for (let i = 1; i <= nodes; i++) {
    slots.push({
      peerId: `p${i}`,
      inc: 0,
      storage: undefined,
      disk: undefined,
      hamok: undefined,
      clock: undefined,
      transport: undefined,
      map: undefined,
      record: undefined,
      remote: undefined,
      queue: undefined,
      emitter: undefined,
      disturbed: false,
      leaving: false,
    });
  }

  const makePeer = (peerId: string, inc: number, storage: RaftStorage, peerClock: PeerClock) => {
    const transport = new SimTransport(
      new MemoryTransport({ bus, id: `${peerId}~${inc}`, maxPayload: MAX_PAYLOAD }),
      world,
    );
    const info = (message: string) => {
      if (message.includes("bootstrapping")) {
        bootstraps++;
        note(`bootstrap ${peerId}~${inc}`);
      }
    };
    const warn = (message: string) => {
      if (message.includes("dissolves it")) {
        merges++;
        note(`merge ${peerId}~${inc}`);
      }
    };
    const hamok = new Hamok({
      peerId,
      clusterId: "sim",
      transport,
      // the discovery mode: the library's discovery defaults, and a storage of the peer's own (an
      // application's storage is never dissolved by a merge)
      ...(discovery ? {} : {
        storage,
        discoveryMs: 300,
        // the deployment setting that makes a second cluster impossible (a replacement peer cut off
        // from the cluster at its start would otherwise bootstrap one, as documented)
        expectedPeers: nodes,
      }),
      scheduler: peerClock,
      tickMs: TICK_MS,
      peerTimeoutMs: 3000,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      snapshotThreshold: 40 + rng.int(200),
      testingBugs: bugs,
      logger: { debug() {}, info, warn, error() {} },
    });
    hamok.on("error", (error) => {
      if (error instanceof HamokClusterConflictError && !conflicted.has(peerId)) {
        conflicted.add(peerId);
        note(`conflict reported by ${peerId}~${inc}`);
      }
      // a listener that threw is reported here, with what it threw as the cause
      if (error instanceof HamokListenerError) unreported.delete(error.cause);
    });
    return { hamok, transport };
  };

  const start = (slot: Slot, wipe: boolean) => {
    slot.inc++;
    const peerClock = world.clock(rng.fork());
    if (durable) {
      if (wipe || slot.disk === undefined) {
        slot.disk = new SimDisk(
          newMemberId(slot.peerId, peerClock),
          diskRng.fork(),
          options.diskBug === "sync-lies",
        );
      }
      slot.storage = slot.disk.open(peerClock);
    } else if (wipe || slot.storage === undefined) {
      slot.storage = new MemoryRaftStorage(newMemberId(slot.peerId, peerClock));
    }
    const { hamok, transport } = makePeer(slot.peerId, slot.inc, slot.storage, peerClock);
    slot.hamok = hamok;
    slot.clock = peerClock;
    slot.transport = transport;
    slot.map = hamok.createMap<string, string>({ mapId: "m" });
    if (!mapOnly) {
      slot.record = hamok.createRecord<Record<string, string>>({
        recordId: "r",
        payloadCodecs: new Map([["c", refusingCodec as never]]),
        requestTimeoutInMs: REQUEST_TIMEOUT_MS,
      });
      slot.remote = hamok.createRemoteMap<string, string>({
        mapId: "x",
        store: remoteStore,
        requestTimeoutInMs: REQUEST_TIMEOUT_MS,
      });
      slot.queue = hamok.createQueue<string>({
        queueId: "q",
        codec: refusingCodec,
        requestTimeoutInMs: REQUEST_TIMEOUT_MS,
      });
      slot.emitter = hamok.createEmitter<SimEvents>({
        emitterId: "e",
        requestTimeoutInMs: REQUEST_TIMEOUT_MS,
      });
    }
    // Removed for silence (paused or cut off too long): the storage is the application's and belongs
    // to the removed member, so the application comes back with a new peer object and a new storage.
    hamok.on("left", () => {
      if (slot.hamok !== hamok || slot.leaving) return;
      note(`removed ${slot.peerId}~${slot.inc}`);
      later(0, () => {
        if (slot.hamok !== hamok) return;
        crash(slot);
        start(slot, true);
      });
    });
    note(`start ${slot.peerId}~${slot.inc}${wipe ? " wiped" : ""}`);
    hamok.join({ timeoutMs: 60_000 }).catch((error) => {
      note(`join failed ${slot.peerId}: ${nameOf(error)}`);
      // removed while it was down: its storage belongs to the removed member; the operator wipes it
      if (error instanceof HamokRemovedError && slot.hamok === hamok) {
        crash(slot);
        start(slot, true);
      }
    });
    void runClient(slot, hamok, peerClock, rng.fork());
  };

  /**
   * Stops a peer's incarnation: on durable storage a power loss (what was not synced is lost) or,
   * with `processOnly`, a process crash (the page cache survives).
   */
  const crash = (slot: Slot, processOnly = false) => {
    const hamok = slot.hamok;
    if (hamok === undefined) return;
    slot.clock!.kill();
    slot.transport!.kill();
    if (slot.disk !== undefined) {
      if (processOnly) slot.disk.restart();
      else {
        const lost = slot.disk.crash();
        unsyncedLost += lost;
        if (lost > 0) note(`power loss ${slot.peerId}~${slot.inc}: ${lost} unsynced records lost`);
      }
    }
    slot.hamok = undefined;
    slot.map = undefined;
    slot.record = undefined;
    slot.remote = undefined;
    slot.queue = undefined;
    slot.emitter = undefined;
    note(`crash ${slot.peerId}~${slot.inc}`);
    try {
      hamok.close();
    } catch { /* already closed */ }
  };

  // ------------------------------------------------------------------ workload
  type Outcome<T> = { ok: true; value: T; ret: number } | { ok: false; unknown: boolean };

  /**
   * Runs a write as an application does: up to 5 attempts with the same request id; an attempt
   * that may have applied (outcome unknown, removed, closed, an unexpected error) makes the outcome
   * unknown unless a later attempt succeeds.
   */
  async function retrying<T>(
    clientId: string,
    requestId: string,
    what: string,
    attempt: (o: AttemptOptions) => Promise<T>,
    alive: () => boolean,
    c: PeerClock,
  ): Promise<Outcome<T>> {
    let mayHaveApplied = false;
    for (let tries = 0; tries < 5; tries++) {
      try {
        const value = await attempt({ requestId, timeoutMs: REQUEST_TIMEOUT_MS });
        return { ok: true, value, ret: ++clock };
      } catch (error) {
        if (error instanceof HamokOutcomeUnknownError || error instanceof HamokRemovedError) {
          mayHaveApplied = true;
        } else if (error instanceof HamokClosedError) {
          return { ok: false, unknown: true };
        } else if (
          error instanceof HamokNoLeaderError || error instanceof HamokNotJoinedError ||
          error instanceof HamokTimeoutError
        ) {
          // not taken by any leader on this attempt
        } else {
          note(`write error ${clientId}: ${nameOf(error)}`);
          return { ok: false, unknown: true };
        }
        note(`retry ${requestId} ${what} after ${(error as Error).name}`);
        if (!alive()) break;
        await sleep(c, 100);
        if (!alive()) break;
      }
    }
    return { ok: false, unknown: mayHaveApplied };
  }

  /** A write of a value the collection's codec refuses: it must fail with a codec error, at once. */
  async function refusedWrite(clientId: string, what: string, write: () => Promise<unknown>): Promise<void> {
    faults["codec-throws"]++;
    note(`codec-throws ${clientId} ${what}`);
    try {
      await write();
      violations.push(`${what}: a value the codec refuses was accepted (${clientId})`);
    } catch (error) {
      if (!(error instanceof HamokCodecError)) {
        violations.push(`${what}: a refused value failed with ${nameOf(error)}, not HamokCodecError`);
      }
    }
  }

  async function runClient(slot: Slot, hamok: Hamok, c: PeerClock, r: Prng) {
    const clientId = `${slot.peerId}~${slot.inc}`;
    const map = slot.map!, queue = slot.queue!, emitter = slot.emitter!;
    const targets = mapOnly
      ? [mapTarget(map)]
      : [mapTarget(map), recordTarget(slot.record!), remoteTarget(slot.remote!)];
    const seen = new Map<string, number>();
    let n = 0;
    let subscribed = false;
    const alive = () => slot.hamok === hamok && !stopped;
    const localRead = (
      t: KvTarget,
      key: string,
      what: string,
    ): { value: string | undefined; revision: number } => {
      const entry = t.entry(key);
      const revision = entry.revision;
      const name = `${t.name}.${key}`;
      const before = seen.get(name) ?? 0;
      if (revision < before) {
        violations.push(
          `local read went backwards: ${clientId} ${what} ${name} at revision ${revision} < ${before}`,
        );
      }
      seen.set(name, Math.max(before, revision));
      return { value: entry.value, revision };
    };
    // A listener that throws on some messages and values (a fault): reported on `error`, and the
    // other listeners still get them.
    const thrower = (what: string) => {
      faults["listener-throws"]++;
      const error = new Error(`simulated listener failure on ${what}`);
      unreported.add(error);
      throw error;
    };
    if (listenerFaults && !mapOnly) {
      emitter.on("ev", (from, k) => {
        if (k % 7 === throwSalt) thrower(`${from}#${k} at ${clientId}`);
      });
      map.on("update", (_key, _old, value) => {
        if (Number(value.slice(value.lastIndexOf(".") + 1)) % 7 === throwSalt) {
          thrower(`${value} at ${clientId}`);
        }
      });
    }
    const recorder = (from: string, k: number) => recordDelivery(emitterHistory, clientId, from, k);
    const subscribe = async () => {
      try {
        await emitter.subscribe("ev", recorder);
      } catch {
        subscribed = false; // the listener is removed again; subscribe later
      }
    };

    while (alive()) {
      await sleep(c, 10 + r.int(90));
      if (!alive()) return;
      if (!hamok.joined) continue;
      if (delayedWrites && !converged && !writesOpen) continue;
      if (!subscribed && !mapOnly) {
        subscribed = true;
        void subscribe();
      }
      const kind = mapOnly ? 0 : r.weighted([6, 2, 1.5, 1.5, 1.5]);
      const tag = `${clientId}.${++n}`;
      const requestId = `${clientId}:${n}`;
      const callAt = world.time;
      if (kind === 3) { // queue
        if (r.chance(0.5)) {
          if (codecFaults && r.chance(0.05)) {
            await refusedWrite(clientId, "queue push", () => queue.pushAll([tag + REFUSED], { requestId }));
            continue;
          }
          const push = { pusher: clientId, order: n, acked: false, call: ++clock, ret: Infinity };
          queueHistory.pushes.set(tag, push);
          const out = await retrying(clientId, requestId, "push", (o) => queue.pushAll([tag], o), alive, c);
          if (out.ok) {
            push.acked = true;
            push.ret = out.ret;
            live("q", callAt);
          } else if (!out.unknown) {
            queueHistory.pushes.delete(tag);
          }
        } else {
          const call = ++clock;
          // a pop whose client never returns (its peer crashed meanwhile) is unknown too
          queueHistory.unknownPops++;
          const out = await retrying(clientId, requestId, "pop", (o) => queue.pop(o), alive, c);
          queueHistory.unknownPops--;
          if (out.ok) {
            queueHistory.pops.push({ item: out.value, call, ret: out.ret });
            live("q", callAt);
          } else if (out.unknown) {
            queueHistory.unknownPops++;
          }
        }
        continue;
      }
      if (kind === 4) { // emitter
        if (r.chance(0.6)) {
          try {
            const peers = await emitter.publish("ev", clientId, n);
            checkPublished(emitterHistory, clientId, n, peers);
            live("e", callAt);
          } catch { /* not delivered everywhere: nothing to check */ }
        } else {
          try {
            emitter.notify("ev", clientId, n);
          } catch { /* closed */ }
        }
        continue;
      }
      const t = targets[kind]!;
      const uid = discovery ? hamok.status().clusterUid : undefined;
      await kvOp(t, clientId, tag, requestId, r, c, alive, localRead, callAt, hamok.localMemberId, uid);
    }
  }

  async function kvOp(
    t: KvTarget,
    clientId: string,
    tag: string,
    requestId: string,
    r: Prng,
    c: PeerClock,
    alive: () => boolean,
    localRead: (t: KvTarget, key: string, what: string) => { value: string | undefined; revision: number },
    callAt: number,
    member: string,
    uid: string | undefined,
  ): Promise<void> {
    const key = r.pick(KEYS);
    const name = `${t.name}.${key}`;
    const choice = r.weighted(
      t.local ? [3, 2, 2, 2, 3, 2, t.name === "m" ? oversizedWeight : 0] : [3, 2, 2, 0, 3, 0, 0],
    );
    if (choice === 4) { // linearizable get (remote map: a store read or after a barrier)
      const call = ++clock;
      try {
        const value = await t.get(key, REQUEST_TIMEOUT_MS, !t.local && r.chance(0.5));
        record(
          { clientId, input: { op: "get", key: name }, output: value ?? null, call, ret: ++clock },
          member,
          uid,
        );
        if (alive() && t.local) localRead(t, key, "after linearizable get");
      } catch { /* a failed read has no effect */ }
      return;
    }
    if (choice === 5) { // local get
      localRead(t, key, "local get");
      return;
    }
    if (choice === 6) { // oversized write
      faults.oversized++;
      note(`oversized ${clientId}`);
      try {
        await t.set(key, "x".repeat(MAX_PAYLOAD + 100), { requestId, timeoutMs: REQUEST_TIMEOUT_MS });
        violations.push(`an oversized write was accepted (${clientId})`);
      } catch (error) {
        if (!(error instanceof HamokPayloadTooLargeError)) {
          violations.push(`an oversized write failed with ${nameOf(error)}, not HamokPayloadTooLargeError`);
        }
      }
      return;
    }
    if (t.name === "r" && key === "c" && codecFaults && r.chance(0.1)) {
      await refusedWrite(
        clientId,
        "record set",
        () => t.set(key, tag + REFUSED, { requestId, timeoutMs: 1000 }),
      );
      return;
    }
    let before: { value: string | undefined; revision: number };
    if (t.local) {
      before = localRead(t, key, "before write");
    } else {
      // the remote map has no local copy: the application reads the store first
      const call = ++clock;
      try {
        const value = await t.get(key, REQUEST_TIMEOUT_MS, false);
        record(
          { clientId, input: { op: "get", key: name }, output: value ?? null, call, ret: ++clock },
          member,
          uid,
        );
        before = { value, revision: 0 };
      } catch {
        return;
      }
      if (!alive()) return;
    }
    let input: MapInput;
    let attempt: (o: AttemptOptions) => Promise<MapOutput>;
    if (choice === 0) {
      input = { op: "set", key: name, value: tag };
      attempt = async (o) => (await t.set(key, tag, o)) ?? null;
    } else if (choice === 1) {
      input = { op: "insert", key: name, value: tag };
      attempt = async (o) => (await t.insert(key, tag, o)) ?? null;
    } else if (choice === 2) {
      const expected = before.value;
      if (expected === undefined) return; // updateIf on an absent key is false at once
      input = { op: "updateIf", key: name, value: tag, expected };
      attempt = (o) => t.updateIf(key, tag, expected, o);
    } else {
      input = { op: "casRevision", key: name, value: tag, expected: before.value ?? null };
      attempt = (o) => t.setIfRevision(key, tag, before.revision, o);
    }
    const call = ++clock;
    // still in flight when the run ends: it may yet apply, so the history gets it as unknown
    const inFlight: MapOp = { clientId, input, call, ret: Infinity };
    if (discovery) opMember.set(inFlight, member);
    if (uid !== undefined) opUid.set(inFlight, uid);
    pendingWrites.add(inFlight);
    const out = await retrying(clientId, requestId, `${input.op}(${name})`, attempt, alive, c);
    pendingWrites.delete(inFlight);
    if (out.ok) {
      const output = out.value;
      record({ clientId, input, output, call, ret: out.ret }, member, uid);
      if (t.name === "m" && firstWriteAfterHeal === Infinity && callAt >= healedAt) {
        firstWriteAfterHeal = world.time;
      }
      live(t.name as "m" | "r" | "x", callAt);
      const changed = input.op === "set" || (input.op === "insert" ? output === null : output === true);
      if (alive() && changed && t.local) {
        const after = localRead(t, key, "after own write");
        if (after.revision <= before.revision) {
          violations.push(
            `own write not visible: ${clientId} ${input.op}(${name}, ${tag}) resolved but the local entry is at revision ${after.revision} (was ${before.revision})`,
          );
        }
      }
    } else if (out.unknown) {
      opsUnknown++;
      record({ clientId, input, call, ret: Infinity }, member, uid);
    }
  }

  function record(op: MapOp, member?: string, uid?: string): void {
    history.push(op);
    if (discovery && member !== undefined) opMember.set(op, member);
    if (discovery && uid !== undefined) opUid.set(op, uid);
    hash.addString(`${op.clientId}|${JSON.stringify(op.input)}|${JSON.stringify(op.output)}|${op.ret}`);
  }

  // ------------------------------------------------------------------ nemesis
  const endpoints = () => slots.flatMap((s) => (s.transport === undefined ? [] : [s.transport.id]));
  const later = (ms: number, fn: () => void) => world.setTimeout(fn, ms);

  const allowed = allowedKinds;
  // oversized writes, refusing codecs and throwing listeners come from the workload, not from here
  const weights = [3, 2, 1, 2, 2, 2, 2, 1, 2, 1, 1, 0, 1, 0, 0, 1.5, 1.5].map((
    w,
    i,
  ) => (allowed.includes(PEER_FAULT_KINDS[i]!) ? w : 0));
  const oversizedWeight = allowed.includes("oversized") ? 0.15 : 0;
  const nemesisStep = () => {
    if (weights.every((w) => w === 0)) return;
    if (stopped || world.time >= faultMs) return;
    const kind = PEER_FAULT_KINDS[nemesisRng.weighted(weights)]!;
    const duration = 300 + nemesisRng.int(3000);
    const all = endpoints();
    const allJoined = slots.every((s) => s.hamok?.joined === true && !s.disturbed);
    switch (kind) {
      case "drop": {
        const f = bus.drop({ probability: 0.05 + nemesisRng.next() * 0.4 });
        later(duration, () => f.remove());
        break;
      }
      case "delay": {
        const f = bus.delay({ to: nemesisRng.pick(all), ms: 20 + nemesisRng.int(300) });
        later(duration, () => f.remove());
        break;
      }
      case "reorder": {
        const f = bus.delay({ ms: 1, jitterMs: 5 + nemesisRng.int(60), probability: 0.5 });
        later(duration, () => f.remove());
        break;
      }
      case "duplicate": {
        const f = bus.duplicate({ probability: 0.05 + nemesisRng.next() * 0.3 });
        later(duration, () => f.remove());
        break;
      }
      case "partition": {
        const shuffled = [...all].sort(() => nemesisRng.next() - 0.5);
        const cut = 1 + nemesisRng.int(Math.max(1, shuffled.length - 1));
        const f = bus.partition(shuffled.slice(0, cut), shuffled.slice(cut));
        later(duration, () => f.remove());
        break;
      }
      case "one-way": {
        const a = nemesisRng.pick(all);
        const f = bus.partitionOneWay(nemesisRng.chance(0.5) ? a : all.filter((e) => e !== a), a);
        later(duration, () => f.remove());
        break;
      }
      case "crash":
      case "crash-wipe": {
        if (!allJoined) return schedule();
        // Losing a voter's storage for good while a member holds an uncommitted entry (perhaps a
        // membership change, which takes effect when appended) can leave no possible majority: the
        // core's documented limit (docs/decisions.md), so the wipe waits for a settled log, as the
        // core simulator's does.
        if (kind === "crash-wipe" && !(slots.every((x) => settled(x)) && inStep())) return schedule();
        const slot = nemesisRng.pick(slots);
        slot.disturbed = true;
        crash(slot);
        later(kind === "crash" ? duration : duration + 3000, () => {
          if (slot.hamok === undefined) start(slot, kind === "crash-wipe");
          later(4000, () => (slot.disturbed = false));
        });
        break;
      }
      case "pause": {
        if (!allJoined) return schedule();
        const slot = nemesisRng.pick(slots);
        slot.disturbed = true;
        slot.clock!.pause();
        slot.transport!.pause();
        note(`pause ${slot.peerId}~${slot.inc}`);
        const clockOf = slot.clock!, transportOf = slot.transport!;
        later(nemesisRng.chance(0.3) ? 4000 + nemesisRng.int(2000) : duration, () => {
          clockOf.resume();
          transportOf.resume();
          note(`resume ${slot.peerId}`);
          later(4000, () => (slot.disturbed = false));
        });
        break;
      }
      case "leave": {
        if (!allJoined) return schedule();
        const slot = nemesisRng.pick(slots);
        const hamok = slot.hamok!;
        slot.disturbed = true;
        slot.leaving = true;
        note(`leave ${slot.peerId}~${slot.inc}`);
        // The storage is the application's, and it belongs to the member that left: the application
        // comes back with a new peer object and a new storage (a join() on the same object would reuse
        // the tombstoned member id and never complete).
        // A leave the cluster did not confirm leaves the member in the configuration: the application
        // keeps its storage then (wiping a voter's storage could leave no majority) and comes back on it.
        let confirmed = true;
        hamok.leave().catch((e) => {
          confirmed = false;
          note(`leave failed ${slot.peerId}: ${nameOf(e)}`);
        }).finally(() => {
          later(duration, () => {
            slot.leaving = false;
            if (slot.hamok !== hamok) return;
            crash(slot);
            start(slot, confirmed);
            later(4000, () => (slot.disturbed = false));
          });
        });
        break;
      }
      case "duplicate-id": {
        if (!allJoined) return schedule();
        const victim = nemesisRng.pick(slots);
        const peerClock = world.clock(rng.fork());
        const { hamok, transport } = makePeer(
          victim.peerId,
          100 + faults["duplicate-id"],
          new MemoryRaftStorage(newMemberId(victim.peerId, peerClock)),
          peerClock,
        );
        note(`duplicate ${victim.peerId}`);
        const original = victim.hamok;
        hamok.join({ timeoutMs: 3000 }).then(
          () => {
            // admitted: a violation only if the original is still the live member it was (it may have
            // left, crashed or been removed meanwhile; then its id is free again)
            // and only if the leader still heard it within peerTimeoutMs (the issue's definition of live;
            // a member cut off for longer may be replaced)
            const leader = slots.find((x) => x.hamok?.leader)?.hamok;
            const seen = leader?.status().members.find((m) => m.memberId === original?.localMemberId);
            const live = seen !== undefined && (seen.lastContactMs ?? Infinity) < 3000;
            if (
              victim.hamok === original && original?.joined && !victim.leaving && !original.closed && live
            ) {
              violations.push(`a second peer with the live id ${victim.peerId} was admitted`);
            }
            // admitted legitimately, it is a member now: an application stopping it leaves (killed as a
            // member, it could leave a two-voter configuration without a quorum for good: seed 215714)
            return hamok.leave().catch(() => {});
          },
          () => {},
        ).finally(() => {
          peerClock.kill();
          transport.kill();
          try {
            hamok.close();
          } catch { /* closed */ }
        });
        break;
      }
      case "publish-throws": {
        // the transport's publish throws for a while (a broken connection that throws, not drops)
        const slot = nemesisRng.pick(slots);
        const transport = slot.transport;
        if (transport === undefined) return schedule();
        transport.throwing = true;
        note(`publish-throws ${slot.peerId}~${slot.inc}`);
        later(duration, () => (transport.throwing = false));
        break;
      }
      case "restart": {
        // the process dies and the application restarts it on its storage at once (the page cache
        // survived: nothing is lost, but what was written may still be lost to a later power loss)
        if (!allJoined) return schedule();
        const slot = nemesisRng.pick(slots);
        slot.disturbed = true;
        crash(slot, true);
        later(50 + nemesisRng.int(500), () => {
          if (slot.hamok === undefined) start(slot, false);
          later(4000, () => (slot.disturbed = false));
        });
        break;
      }
      case "crash-all": {
        // every peer loses power at once (what was not synced is lost), then all restart on storage
        if (!allJoined) return schedule();
        note("crash-all");
        for (const slot of slots) {
          slot.disturbed = true;
          crash(slot);
        }
        later(duration, () => {
          for (const slot of slots) if (slot.hamok === undefined) start(slot, false);
          later(4000, () => {
            for (const slot of slots) slot.disturbed = false;
          });
        });
        break;
      }
      case "oversized":
      case "codec-throws":
      case "listener-throws":
        break;
    }
    faults[kind]++;
    note(`fault ${kind}`);
    schedule();
  };
  /** A peer whose log holds nothing uncommitted (or that is not running). */
  const settled = (slot: Slot): boolean => {
    const hamok = slot.hamok;
    if (hamok === undefined || hamok.closed || !hamok.joined) return true;
    const status = hamok.status();
    return status.lastIndex === status.commitIndex;
  };
  /** Every running member at the same commit index (nobody cut off, no change pending anywhere). */
  const inStep = (): boolean => {
    const commits = new Set<number>();
    for (const slot of slots) {
      const hamok = slot.hamok;
      if (hamok !== undefined && !hamok.closed && hamok.joined) commits.add(hamok.status().commitIndex);
    }
    return commits.size <= 1;
  };
  const schedule = () => {
    later(200 + nemesisRng.int(1200), nemesisStep);
  };

  /** Discovery mode: every peer a member of one cluster of all of them (one membership, one leader). */
  const oneCluster = (): boolean => {
    let members: string | undefined;
    let leader: string | undefined;
    for (const slot of slots) {
      const hamok = slot.hamok;
      if (hamok === undefined || !hamok.joined || hamok.leaderId === undefined) return false;
      const ids = hamok.status().members.map((m) => m.memberId).sort();
      if (ids.length !== nodes) return false;
      const key = ids.join(" ");
      if ((members ??= key) !== key || (leader ??= hamok.leaderId) !== hamok.leaderId) return false;
    }
    return slots.every((slot) => members!.includes(slot.hamok!.localMemberId));
  };
  let converged = false;
  /** Discovery mode: the clients that wait for one cluster begin anyway (a split that stays). */
  let writesOpen = false;

  // ------------------------------------------------------------------ the run
  if (discovery) {
    const d = discRng!;
    hash.addString(`discovery ${delayedWrites}`);
    // staggered starts: the first peer at 0, the others within 2.5 s
    slots.forEach((slot, i) => later(i === 0 ? 0 : d.int(2500), () => start(slot, false)));
    if (d.chance(0.5)) {
      // a partition at the start, before most peers run (their first endpoints are known)
      const ids = slots.map((slot) => `${slot.peerId}~1`);
      for (let i = ids.length - 1; i > 0; i--) {
        const j = d.int(i + 1);
        [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      }
      const cut = 1 + d.int(ids.length - 1);
      const ms = 500 + d.int(4000);
      const f = bus.partition(ids.slice(0, cut), ids.slice(cut));
      faults.partition++;
      note(`fault partition ${ids.slice(0, cut)} | ${ids.slice(cut)} for ${ms} ms`);
      later(ms, () => f.remove());
    }
    // pauses of single peers (the first one in 40% of them) during the others' discovery
    for (let k = d.int(3); k > 0; k--) {
      const at = d.int(3000);
      const slot = d.chance(0.4) ? slots[0]! : d.pick(slots);
      const ms = 300 + d.int(2500);
      later(at, () => {
        const clockOf = slot.clock, transportOf = slot.transport;
        if (slot.hamok === undefined || clockOf === undefined || transportOf === undefined) return;
        if (clockOf.paused) return;
        clockOf.pause();
        transportOf.pause();
        faults.pause++;
        note(`fault pause ${slot.peerId}~${slot.inc} for ${ms} ms`);
        later(ms, () => {
          clockOf.resume();
          transportOf.resume();
          note(`resume ${slot.peerId}`);
        });
      });
    }
    const watch = () => {
      if (!converged && oneCluster()) {
        converged = true;
        note("one cluster");
      }
      if (!converged && !stopped) later(50, watch);
    };
    watch();
    await world.runUntil(faultMs);
  } else {
    for (const slot of slots) start(slot, false);
    await world.runUntil(8000, () => slots.every((s) => s.hamok?.joined));
    if (!slots.every((s) => s.hamok?.joined)) {
      violations.push(`the initial peers did not all join within 8 s (${slots.map((s) => s.hamok?.joined)})`);
    }
    schedule();
    await world.runUntil(world.time + faultMs);
  }

  // heal: no new faults, every fault removed, every peer back
  bus.heal();
  bus.delay({ ms: 2 });
  for (const slot of slots) {
    if (slot.transport !== undefined) slot.transport.throwing = false;
    if (slot.hamok === undefined) start(slot, false);
    else if (slot.clock!.paused) {
      slot.clock!.resume();
      slot.transport!.resume();
    }
  }
  healedAt = world.time;
  note("healed");
  if (discovery) {
    // a bounded wait for the peers to converge (merges), or for good with a conflict reported
    await world.runUntil(world.time + 10_000, () => converged);
    writesOpen = true;
  }
  await world.runUntil(
    world.time + livenessBoundMs,
    () => firstWriteAfterHeal < Infinity && liveKinds.every((k) => liveAt[k]! < Infinity),
  );
  if (firstWriteAfterHeal === Infinity) {
    violations.push(`liveness: no write succeeded within ${livenessBoundMs} ms after the heal`);
  }
  const stuck = liveKinds.filter((k) => liveAt[k] === Infinity);
  if (stuck.length > 0) {
    violations.push(
      `liveness: no operation on ${stuck.join(", ")} succeeded within ${livenessBoundMs} ms after the heal`,
    );
  }
  // let the last operations finish, then stop the clients and let the replicas settle
  await world.runUntil(world.time + 3000);
  stopped = true;
  await world.runUntil(world.time + 3000);
  // A peer whose own recovery began late (an unconfirmed leave whose application restarts it on
  // its storage after the heal, which then learns that its member was removed and starts over on a
  // new storage) gets a bounded time to become a member again.
  await world.runUntil(world.time + rejoinBoundMs, () => slots.every((s) => s.hamok?.joined));
  if (options.trace) {
    for (const slot of slots) {
      if (slot.hamok !== undefined) {
        trace.push(`status ${slot.peerId}: ${JSON.stringify(slot.hamok.status())}`);
      }
    }
  }
  /**
   * Every member's replicated state (hamok.export(): map, record, queue, emitter table) and the
   * membership, without what is each peer's own, once it caught up with its leader's commit; a
   * violation for a peer that is not a member, and for replicas that differ.
   */
  /** The replicas' state digests without the emitters' subscribers (see the restart of all below). */
  let plainDigests = new Map<string, string[]>();
  const replicaDigests = async (when: string): Promise<Map<string, string[]>> => {
    const digests = new Map<string, string[]>();
    plainDigests = new Map();
    for (const slot of slots) {
      const hamok = slot.hamok;
      if (hamok === undefined || !hamok.joined) {
        violations.push(
          `${slot.peerId} is not a member ${when} (${
            hamok === undefined
              ? "down"
              : `state ${hamok.state}, term ${hamok.term}, leader ${hamok.leaderId}, applied ${hamok.appliedIndex}, member ${hamok.localMemberId}`
          })`,
        );
        continue;
      }
      let synced = false;
      hamok.waitUntilCommitHead(5000).then(() => (synced = true), () => {});
      await world.runUntil(world.time + 5000, () => synced);
      const { peerId: _peer, appliedIndex: _applied, ...image } = hamok.export();
      const members = hamok.status().members.map((m) => m.memberId).sort();
      // the subscribers of an event are a set (a replica restored from a snapshot may list them in
      // another order than one that applied the log)
      const emitters = image.emitters.map((e) => ({
        ...e,
        subscriptions: e.subscriptions.map((s) => ({
          ...s,
          subscribers: [...s.subscribers].sort((a, b) => (a.peerId < b.peerId ? -1 : 1)),
        })),
      }));
      const digest = canonical({ image: { ...image, emitters }, members });
      digests.set(digest, [...(digests.get(digest) ?? []), slot.peerId]);
      const plain = canonical({ image: { ...image, emitters: emitters.map((e) => e.emitterId) }, members });
      plainDigests.set(plain, [...(plainDigests.get(plain) ?? []), slot.peerId]);
      if (discovery) {
        // a cluster of its own per leader: its replicas must agree
        const group = hamok.leaderId ?? `no leader at ${slot.peerId}`;
        if (!clusterOf.has(group)) clusterOf.set(group, { digests: new Set(), members, reader: slot });
        clusterOf.get(group)!.digests.add(digest);
      }
      if (finalQueue === undefined) {
        finalQueue = ((image.queues ?? []).find((q) => q.queueId === "q")?.items ?? []).map((i) =>
          refusingCodec.decode(i as string)
        );
      }
    }
    const differ = discovery ? [...clusterOf.values()].some((c) => c.digests.size > 1) : digests.size > 1;
    if (differ) {
      violations.push(
        `replicas differ ${when}: ${[...digests].map(([d, p]) => `${p}: ${d.slice(0, 2000)}`).join(" | ")}`,
      );
    }
    return digests;
  };
  let finalQueue: string[] | undefined;
  /** Discovery mode: the clusters at the end, by leader. */
  const clusterOf = new Map<string, { digests: Set<string>; members: string[]; reader: Slot }>();
  await replicaDigests("after the heal");
  const healed = plainDigests;
  if (discovery) {
    if (clusterOf.size > 1 || !oneCluster()) {
      // a split: never a silent one, and never one the clients waited out (those merges must happen)
      if (conflicted.size === 0) {
        violations.push(`a silent split: ${clusterOf.size} clusters and no peer reported a conflict`);
      }
      // A cluster of one without writes must move into the other (autoMerge); clusters of several
      // members formed apart (a partition at the start) never merge by design, and report it.
      if (delayedWrites && [...clusterOf.values()].some((c) => c.members.length === 1)) {
        violations.push(
          `no writes before one cluster, yet a lone cluster stayed apart: ${
            [...clusterOf].map(([leader, c]) => `${leader}: ${c.members.join(" ")}`).join(" | ")
          }`,
        );
      }
    }
  }
  if (durable) {
    // The end of a durable run: every peer loses power at once and all restart on their storage.
    // Everything was acknowledged and settled, so each replica must come back to the same state.
    note("final crash-all");
    for (const slot of slots) crash(slot);
    await world.runUntil(world.time + 100);
    for (const slot of slots) start(slot, false);
    stopped = true; // the restarted incarnations run no workload
    await world.runUntil(world.time + rejoinBoundMs, () => slots.every((s) => s.hamok?.joined));
    finalQueue = undefined;
    // Subscriptions belong to processes: the restarted incarnations subscribe to nothing, so each
    // withdraws its previous process's entries once joined, and every table ends empty.
    const listed = () =>
      slots.some((s) =>
        s.hamok?.joined === true &&
        s.hamok.export().emitters.some((e) => e.subscriptions.some((sub) => sub.subscribers.length > 0))
      );
    await world.runUntil(world.time + 10_000, () => !listed());
    if (listed()) violations.push("after a restart of all, a subscription of a previous process stayed");
    await replicaDigests("after a restart of all");
    const restarted = plainDigests;
    if (healed.size === 1 && restarted.size === 1 && [...healed.keys()][0] !== [...restarted.keys()][0]) {
      violations.push(
        `a restart of all on their storage changed the replicated state: before ${
          [...healed.keys()][0]!.slice(0, 1500)
        } | after ${[...restarted.keys()][0]!.slice(0, 1500)}`,
      );
    }
  }
  // Final linearizable reads of every key: an acknowledged write lost (to a restart of all, say)
  // makes the history non-linearizable.
  const readers = discovery
    ? [...clusterOf.values()].map((c) => c.reader).filter((s) => s.hamok?.joined === true)
    : [slots.find((s) => s.hamok?.joined === true)].filter((s) => s !== undefined);
  for (const reader of readers) {
    const member = reader.hamok!.localMemberId;
    const uid = discovery ? reader.hamok!.status().clusterUid : undefined;
    const targets = mapOnly
      ? [mapTarget(reader.map!)]
      : [mapTarget(reader.map!), recordTarget(reader.record!), remoteTarget(reader.remote!)];
    for (const t of targets) {
      for (const key of KEYS) {
        let done = false;
        for (let tries = 0; tries < 3 && !done; tries++) {
          const call = ++clock;
          let read: { value: string | undefined } | undefined;
          let failed = false;
          t.get(key, REQUEST_TIMEOUT_MS, true).then((value) => (read = { value }), () => (failed = true));
          await world.runUntil(world.time + REQUEST_TIMEOUT_MS + 500, () => read !== undefined || failed);
          if (read === undefined) continue;
          done = true;
          const input = { op: "get", key: `${t.name}.${key}` } as const;
          record({ clientId: "final", input, output: read.value ?? null, call, ret: ++clock }, member, uid);
        }
        if (!done) violations.push(`liveness: the final read of ${t.name}.${key} failed 3 times`);
      }
    }
  }
  violations.push(...checkQueue(queueHistory, finalQueue ?? []));
  violations.push(...emitterHistory.violations);
  const executed = new Set<number>();
  for (const index of remoteStore.executionLog) {
    if (executed.has(index)) {
      violations.push(`remote map: the operation at log index ${index} was executed twice on the store`);
      break;
    }
    executed.add(index);
  }
  if (unreported.size > 0) {
    violations.push(`${unreported.size} listener errors were never reported on the peer's error event`);
  }
  if (!discovery && bootstraps !== 1) violations.push(`${bootstraps} bootstraps in one cluster (expected 1)`);
  for (const error of world.thrown) violations.push(`a timer callback threw: ${nameOf(error)}`);

  for (const op of pendingWrites) {
    opsUnknown++;
    record(op);
  }
  pendingWrites.clear();
  // The discovery mode: one history per cluster (one Raft log: one cluster identity), by the
  // identity the operation's peer was a member of when it was called; an operation called before
  // its peer had joined goes by its member id to the cluster that member ends in (the member ids
  // of a cluster that dissolved into another, or of a member removed and gone, are in none: their
  // own history). Grouping by the final memberships alone split the history of a cluster one of
  // whose members was removed before the end (seed 32865 of the discovery mode).
  const histories = new Map<string, MapOp[]>();
  if (discovery) {
    const groupOf = new Map<string, string>();
    for (const [leader, c] of clusterOf) {
      const uid = c.reader.hamok?.status().clusterUid ?? `led by ${leader}`;
      for (const m of c.members) {
        const other = groupOf.get(m);
        // one member id voting in two clusters: each counts it towards its majority
        if (other !== undefined) {
          violations.push(`member ${m} is in two clusters (${other} and ${uid})`);
        }
        groupOf.set(m, uid);
      }
    }
    for (const op of history) {
      const member = opMember.get(op);
      const group = opUid.get(op) ??
        (member === undefined ? "?" : groupOf.get(member) ?? `dissolved ${member}`);
      histories.set(group, [...(histories.get(group) ?? []), op]);
    }
  } else histories.set("", history);
  for (const part of histories.values()) checkHistory(part);
  function checkHistory(history: MapOp[]): void {
    const check = checkLinearizability(mapModel, history);
    if (check.verdict === "illegal") {
      // the end of the longest linearizable prefix, then the earliest-called operations left out of it
      const prefix = check.longestPrefix ?? [];
      const placed = new Set(prefix);
      const left = (check.failedPartition ?? []).filter((op) => !placed.has(op)).sort((x, y) =>
        x.call - y.call
      );
      violations.push(
        `not linearizable: ...${
          prefix.slice(-6).map((op) => mapModel.describe!(op)).join("; ")
        } || cannot place: ${left.slice(0, 4).map((op) => mapModel.describe!(op)).join("; ")}`,
      );
    } else if (check.verdict === "unknown") {
      violations.push("linearizability undecided (history too large)");
    }
  }

  let snapshotsForFollowers = 0;
  for (const slot of slots) {
    if (slot.hamok !== undefined && !slot.hamok.closed) {
      snapshotsForFollowers += slot.hamok.status().counters.snapshotsForFollowers;
    }
  }
  for (const slot of slots) {
    slot.clock?.kill();
    slot.transport?.kill();
    try {
      slot.hamok?.close();
    } catch { /* closed */ }
  }
  hash.add(world.steps).add(Math.round(world.time)).add(bootstraps);
  return {
    seed,
    nodes,
    durable,
    unsyncedLost,
    violations,
    faults,
    opsCompleted: history.filter((op) => op.ret !== Infinity).length,
    opsUnknown,
    bootstraps,
    merges,
    conflicts: conflicted.size,
    clusters: discovery ? clusterOf.size : 1,
    delayedWrites,
    snapshotsForFollowers,
    virtualMs: world.time,
    steps: world.steps,
    traceHash: hash.hex(),
    trace,
  };
}

/** JSON with sorted object keys and bytes as hex: equal content, equal string. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v instanceof Uint8Array) return [...v].map((b) => b.toString(16).padStart(2, "0")).join("");
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

function nameOf(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
