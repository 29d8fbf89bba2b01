/**
 * The seeded Raft cluster simulator. One run = one seed: N pure Raft nodes driven exactly as the
 * {@linkcode RaftReady} contract says (persist, send, apply, reads), a virtual clock, a virtual
 * network that drops, delays, duplicates, reorders and partitions, a nemesis that crashes and
 * restarts nodes (with and without their storage), changes membership, transfers leadership and
 * forces compaction, and clients that run put / get / compare-and-set against a replicated
 * key-value store. Safety properties are checked after every step; the client history is checked
 * for linearizability at the end; a liveness phase heals every fault and requires progress.
 *
 * Every random choice comes from one {@linkcode Prng} seeded with the run's seed, so a seed replays
 * bit for bit (see {@linkcode SimResult.traceHash}).
 *
 * @module
 */

import type {
  Entry,
  HardState,
  Membership,
  MembershipChange,
  RaftConfig,
  RaftMessage,
  RaftReady,
  RaftRole,
  RaftTestingBug,
  Snapshot,
} from "../../src/raft/types.ts";
import { applyMembershipChange, EMPTY_MEMBERSHIP } from "../../src/raft/membership.ts";
import { Prng } from "./prng.ts";
import { EventQueue } from "./event_queue.ts";
import { type CutHandle, type NetworkSettings, VirtualNetwork } from "./network.ts";
import { type SimPersistentState, SimStorage } from "./sim_storage.ts";
import { SafetyChecker, type Violation } from "./safety.ts";
import { encodeCommand, type KvCommand, KvStateMachine, requestIdOf } from "./kv_state_machine.ts";
import { type KvInput, kvModel, type KvOperation, type KvOutput } from "./kv_model.ts";
import { checkLinearizability } from "./linearizability.ts";
import { TraceHash } from "./hash.ts";
import { crc32c } from "../../src/storage/crc32c.ts";

/** The part of a Raft node's API the simulator drives. */
export interface SimRaftNode {
  readonly id: string;
  readonly role: RaftRole;
  readonly term: number;
  readonly leaderId: string | undefined;
  readonly commitIndex: number;
  readonly membership: Membership;
  tick(): void;
  /** The driver reports the log durable up to (index, term) (`RaftConfig.asyncPersistence`). */
  persisted(index: number, term: number): void;
  /** Term of the entry at `index` in the node's (in-memory) log, if held. */
  termAt(index: number): number | undefined;
  step(msg: RaftMessage): void;
  propose(data: Uint8Array, requestId?: string): { status: string; leaderId?: string };
  proposeMembership(change: MembershipChange): { status: string; leaderId?: string };
  readIndex(ctx: string): void;
  transferLeadership(to: string): unknown;
  compact(index: number, data: Uint8Array, digest?: number): void;
  /** Compaction without an image (`RaftNode.compactWithoutImage`); absent in some variants. */
  compactWithoutImage?(index: number): void;
  /** Gives the image of an imageless latest snapshot (`RaftNode.provideImage`). */
  provideImage?(index: number, data: Uint8Array, digest?: number): boolean;
  /** An imageless snapshot a transfer asked an image of (`RaftNode.takeImageRequest`). */
  takeImageRequest?(): number;
  hasReady(): boolean;
  ready(): RaftReady;
}

/** Builds a Raft node (normally `new RaftNode(config, initial)`). */
export type RaftNodeFactory = (config: RaftConfig, initial: SimPersistentState) => SimRaftNode;

/** Kinds of injected faults, as counted in {@linkcode SimResult.faults}. */
export type FaultKind =
  | "drop"
  | "delay"
  | "duplicate"
  | "reorder"
  | "partition"
  | "one-way-partition"
  | "crash"
  | "crash-with-storage-loss"
  | "torn-crash"
  | "unsynced-loss"
  | "restart"
  | "member-add"
  | "member-remove"
  | "leadership-transfer"
  | "compaction"
  | "snapshot-install"
  | "compaction-without-image"
  | "image-given";

/** Every fault kind, in report order. */
export const FAULT_KINDS: readonly FaultKind[] = [
  "drop",
  "delay",
  "duplicate",
  "reorder",
  "partition",
  "one-way-partition",
  "crash",
  "crash-with-storage-loss",
  "torn-crash",
  "unsynced-loss",
  "restart",
  "member-add",
  "member-remove",
  "leadership-transfer",
  "compaction",
  "snapshot-install",
  "compaction-without-image",
  "image-given",
];

/** Relative weights of the nemesis actions (0 disables one). */
export interface NemesisWeights {
  /** Split the nodes into two sides. */
  partition: number;
  /** Cut the current leader off from everyone (a symmetric partition). */
  isolateLeader: number;
  /** Cut some links in one direction only. */
  oneWay: number;
  /** Crash a node (it restarts later with its storage). */
  crash: number;
  /** Crash the current leader. */
  crashLeader: number;
  /** Crash a node and lose its storage (it comes back under a new member id). */
  crashLoseStorage: number;
  /** Add a new member. */
  memberAdd: number;
  /** Remove a member. */
  memberRemove: number;
  /** Ask the leader to hand over to another voter. */
  transfer: number;
  /** Force a node to compact its log. */
  compact: number;
  /** A period of heavy message loss, duplication and delay. */
  storm: number;
  /** Heal every partition at once. */
  healAll: number;
}

/**
 * Named fault schedules. `mixed` (default) lets the seed choose; the others concentrate on what
 * makes particular protocol bugs observable:
 * - `elections`: many elections (leader crashes, partitions, transfers), no membership churn.
 * - `leader-isolation`: the leader is cut off (both ways or one way) over and over, reads heavy.
 * - `figure8`: three nodes, one entry per append, new leaders hit (crashed or cut off) before
 *   their first messages leave, leaders crash soon after appending: the Raft paper's figure 8
 *   scenario for committing entries of earlier terms.
 */
export type SimProfile = "mixed" | "elections" | "leader-isolation" | "figure8";

const NO_CHURN: Partial<NemesisWeights> = { memberAdd: 0, memberRemove: 0, crashLoseStorage: 0, compact: 0 };

const PROFILES: Record<SimProfile, {
  nemesis?: Partial<NemesisWeights>;
  interval?: readonly [number, number];
  raft?: Partial<RaftConfig>;
  nodes?: number;
  /** Probability that a crash happens inside a ready batch (default 0.25). */
  midReadyCrash?: number;
  /** Probability that the liveness phase keeps the leader deaf (default 0.3). */
  deafLeader?: number;
  /** How long a crashed node stays down, ms (default [20, 2000]). */
  downMs?: readonly [number, number];
  /**
   * Crash a leader inside the ready batch in which its commit index moves onto an entry of an
   * earlier term (before it sends anything). A correct core never does that, so this only fires
   * under the "commit-old-term" bug, at the moment that makes the bug visible.
   */
  crashOnOldTermCommit?: boolean;
  /**
   * Probability that a node that has just won an election is hit before its first messages go
   * out: crashed (after persisting its no-op) or cut off from everyone. Leaves entries of a term
   * that no other log holds (default 0.05).
   */
  hitNewLeader?: number;
}> = {
  mixed: {},
  elections: {
    nemesis: {
      ...NO_CHURN,
      partition: 3,
      isolateLeader: 2,
      oneWay: 1,
      crash: 2,
      crashLeader: 4,
      transfer: 3,
      storm: 1,
      healAll: 1,
    },
    interval: [100, 600],
    raft: { preVote: false },
  },
  "leader-isolation": {
    nemesis: {
      ...NO_CHURN,
      partition: 0,
      isolateLeader: 6,
      oneWay: 3,
      crash: 0,
      crashLeader: 0,
      transfer: 0,
      storm: 0,
      healAll: 1,
    },
    interval: [300, 900],
    deafLeader: 1,
  },
  figure8: {
    nemesis: {
      ...NO_CHURN,
      partition: 2,
      isolateLeader: 3,
      oneWay: 0,
      crash: 1,
      crashLeader: 5,
      transfer: 0,
      storm: 0,
      healAll: 1,
    },
    interval: [200, 1000],
    raft: { maxEntriesPerAppend: 1, maxInflightAppends: 1 },
    nodes: 3,
    midReadyCrash: 0.8,
    downMs: [20, 300],
    crashOnOldTermCommit: true,
    hitNewLeader: 0.6,
  },
};

/** Options of one simulation run. */
export interface SimOptions {
  /** Named fault schedule (default `mixed`). */
  readonly profile?: SimProfile;
  /** The seed: everything random in the run derives from it. */
  readonly seed: number;
  /** Initial number of voters (3 or 5). Default: 3 or 5, chosen by the seed. */
  readonly nodes?: number;
  /** Events processed in the fault phase. Default 10,000. */
  readonly steps?: number;
  /** Heal everything after the fault phase and require a leader and progress. Default true. */
  readonly liveness?: boolean;
  /** Virtual milliseconds allowed for the liveness phase. Default 10000. */
  readonly livenessBoundMs?: number;
  /**
   * In the liveness phase, keep the leader deaf (it can send but receives nothing), so that
   * progress needs it to notice the lost quorum and step down (check-quorum). Applied only when
   * the other voters still form a majority. Default: chosen by the seed (30% in `mixed`).
   */
  readonly deafLeader?: boolean;
  /** Deliberate protocol bugs to switch on in every node. */
  readonly bugs?: readonly RaftTestingBug[];
  /** Nemesis weights (merged over the seed's defaults). */
  readonly nemesis?: Partial<NemesisWeights>;
  /** Virtual ms between nemesis actions: uniform in [lo, hi]. Default: chosen by the seed. */
  readonly nemesisIntervalMs?: readonly [number, number];
  /** Overrides of the node configuration (merged over the seed's choices). */
  readonly raftConfig?: Partial<Omit<RaftConfig, "id" | "random">>;
  /** Message fault rates: "seed" (chosen by the seed, default), "none" or explicit values. */
  readonly network?: "seed" | "none" | Partial<NetworkSettings>;
  /** Number of clients. Default 4. */
  readonly clients?: number;
  /** Keep the last this many trace lines for the report. Default 0. */
  readonly traceLines?: number;
  /**
   * How nodes persist: `"sync"` (every ready batch is persisted at once, before anything is sent),
   * `"async"` (`RaftConfig.asyncPersistence`: a batch's early messages go at once, its writes
   * become durable after a seeded delay, a crash meanwhile loses them), or `"seed"` (default: the
   * seed chooses, async in three seeds out of four). Drawn from a stream of its own, so a seed in
   * `"sync"` runs exactly as before asynchronous persistence existed.
   */
  readonly persistence?: "seed" | "sync" | "async";
  /**
   * Compact every other time without an image (`RaftNode.compactWithoutImage`): the node serves
   * transfers of such a snapshot only once the harness gives it the image it asks for (its state at
   * that index, if nothing was applied since) or a newer snapshot. The storage still gets the image
   * for restarts. Default false.
   */
  readonly imageless?: boolean;
  /** Delay of an asynchronous sync, virtual ms, uniform in [lo, hi]. Default: chosen by the seed. */
  readonly syncDelayMs?: readonly [number, number];
}

/** The outcome of one run. */
export interface SimResult {
  /** The seed. */
  readonly seed: number;
  /** Initial voters. */
  readonly nodes: number;
  /** Events processed (fault phase and liveness phase). */
  readonly steps: number;
  /** Virtual time at the end, ms. */
  readonly virtualTimeMs: number;
  /** Faults injected, per kind. */
  readonly faults: Record<FaultKind, number>;
  /** Client operations in the checked history (completed plus open). */
  readonly opsChecked: number;
  /** Operations that completed. */
  readonly opsCompleted: number;
  /** Operations left open (unknown outcome). */
  readonly opsUnknown: number;
  /** Distinct leader terms seen. */
  readonly leaders: number;
  /** Highest committed index seen. */
  readonly commitIndex: number;
  /** Violations found (the run stops at the first safety violation). */
  readonly violations: readonly Violation[];
  /** The linearizability checker's verdict. */
  readonly linearizability: "ok" | "illegal" | "unknown" | "skipped";
  /** Whether the liveness phase made progress (undefined when not run). */
  readonly livenessOk?: boolean;
  /** Hash of every event of the run: equal for two runs of the same seed and options. */
  readonly traceHash: string;
  /** The last trace lines (when {@linkcode SimOptions.traceLines} > 0). */
  readonly trace: readonly string[];
}

const TICK_MS = 10;

interface Client {
  readonly id: number;
  seq: number;
  op: PendingOp | undefined;
  leaderHint: string | undefined;
}

interface PendingOp {
  readonly input: KvInput;
  readonly requestId: string;
  /** "write": put/cas through the log; "logread": get through the log; "read": ReadIndex get. */
  readonly kind: "write" | "logread" | "read";
  readonly call: number;
  readonly callTime: number;
  readonly deadline: number;
  readonly data: Uint8Array | undefined;
  attempt: number;
  mayHaveEffect: boolean;
  readonly afterHeal: boolean;
}

interface QueuedRead {
  readonly ctx: string;
  readonly index: number;
  readonly client: Client;
  readonly requestId: string;
}

interface SimNode {
  readonly id: string;
  readonly num: number;
  raft: SimRaftNode | undefined;
  storage: SimStorage;
  /** Images of snapshots taken without one, by index, until the storage got them. */
  readonly images: Map<number, Uint8Array>;
  kv: KvStateMachine;
  status: "up" | "down" | "gone";
  /** Bumped on every crash/restart, so that stale timer events are ignored. */
  incarnation: number;
  readonly tickMs: number;
  pendingWrites: Map<string, Client>;
  pendingReads: Map<string, Client>;
  readQueue: QueuedRead[];
  lastCommitSeen: number;
  leaderTerm: number;
  /** Armed crash inside the next ready batch ("entries": the next one that carries new entries). */
  crashMidReady: "no" | "next" | "entries";
  /** The ready batch whose writes are being synced (async persistence), if any. */
  syncing: RaftReady | undefined;
  /**
   * The stored hard state before a batch that only moved the commit index and was not synced
   * (async persistence: such a batch needs no sync); a crash may bring it back.
   */
  unsyncedHardState: HardState | undefined;
  /** Highest commit index checked for a durable quorum while this node led. */
  quorumChecked: number;
  /**
   * A follower: its commit index and voters the last time the commit index moved (no voters: the
   * commit index it restarted with, checked in its earlier life). Its commits are checked once its
   * sync is done, by when a newer configuration may have arrived.
   */
  commitMoved: { readonly ci: number; readonly voters: readonly string[] | undefined } | undefined;
  stopScheduled: boolean;
}

type SimEvent =
  | { readonly k: 0; readonly node: SimNode; readonly inc: number } // tick
  | { readonly k: 1; readonly msg: RaftMessage } // deliver
  | { readonly k: 2; readonly client: Client; readonly requestId: string; readonly attempt: number } // client timer
  | { readonly k: 3; readonly client: Client } // client starts next op
  | { readonly k: 4 } // nemesis
  | { readonly k: 5; readonly node: SimNode; readonly inc: number } // restart
  | { readonly k: 6; readonly cut: CutHandle } // heal partition
  | { readonly k: 7 } // operator
  | { readonly k: 8; readonly node: SimNode } // stop a removed node
  | { readonly k: 9 } // end of storm
  | { readonly k: 10; readonly node: SimNode; readonly inc: number }; // a sync completes

const MSG_CODE: Record<RaftMessage["type"], number> = {
  "append": 1,
  "append-response": 2,
  "heartbeat": 3,
  "heartbeat-response": 4,
  "vote": 5,
  "pre-vote": 6,
  "vote-response": 7,
  "pre-vote-response": 8,
  "snapshot": 9,
  "snapshot-response": 10,
  "timeout-now": 11,
  "propose": 12,
  "read-index": 13,
  "read-index-response": 14,
};

const KEYS = ["a", "b", "c"];

/** History timestamps per virtual millisecond (see `#nextStamp`). */
const STAMPS_PER_MS = 10_000;

class StopRun extends Error {}

/**
 * One simulation run.
 *
 * @example
 * ```ts
 * const result = new Simulation({ seed: 7, nodes: 3, steps: 2000 }, (c, s) => new RaftNode(c, s)).run();
 * if (result.violations.length > 0) console.log(result.violations[0]);
 * ```
 */
export class Simulation {
  readonly #opts: SimOptions;
  readonly #factory: RaftNodeFactory;
  readonly #rng: Prng;
  readonly #queue = new EventQueue<SimEvent>();
  readonly #net: VirtualNetwork;
  readonly #safety: SafetyChecker;
  readonly #nodes = new Map<string, SimNode>();
  /** The highest commit index checked on the leader of each term. */
  readonly #leaderChecked = new Map<number, number>();
  readonly #clients: Client[] = [];
  readonly #history: KvOperation[] = [];
  readonly #trace = new TraceHash();
  readonly #traceLines: string[] = [];
  readonly #faults: Record<FaultKind, number>;
  readonly #config: Omit<RaftConfig, "id" | "random">;
  readonly #weights: NemesisWeights;
  readonly #nemesisInterval: readonly [number, number];
  readonly #baseNet: NetworkSettings;
  readonly #initialVoters: number;
  readonly #goals: { change: MembershipChange; lastTry: number }[] = [];
  readonly #appliedChanges = new Set<string>();
  #now = 0;
  #step = 0;
  #stamp = 0;
  #nextNodeNum = 1;
  #healed = false;
  #livenessDone = false;
  #stormActive = false;
  #compactEvery: number;
  readonly #imageless: boolean;
  /** Compactions so far (imageless runs alternate the two kinds). */
  #compactions = 0;
  readonly #midReadyCrash: number;
  readonly #downMs: readonly [number, number];
  readonly #crashOnOldTermCommit: boolean;
  readonly #hitNewLeader: number;
  readonly #deafLeader: boolean;
  #opsCompleted = 0;
  /** Asynchronous persistence (see {@linkcode SimOptions.persistence}). */
  readonly #async: boolean;
  readonly #syncDelay: readonly [number, number];
  /** The storage's own stream (mode and sync delays), so that "sync" seeds replay as before. */
  readonly #storageRng: Prng;

  /** Prepares a run (nothing happens until {@linkcode run}). */
  constructor(options: SimOptions, factory: RaftNodeFactory) {
    this.#opts = options;
    this.#factory = factory;
    this.#rng = new Prng(options.seed);
    const rng = this.#rng;
    this.#safety = new SafetyChecker(() => ({ time: this.#now, step: this.#step }));
    this.#faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
    const profile = PROFILES[options.profile ?? "mixed"];
    if (profile === undefined) throw new Error(`unknown simulation profile ${options.profile}`);
    const seedNodes = rng.chance(0.5) ? 3 : 5;
    this.#initialVoters = options.nodes ?? profile.nodes ?? seedNodes;
    // Per-seed cluster configuration.
    this.#config = {
      electionTicks: 10,
      heartbeatTicks: rng.pick([1, 1, 2, 3]),
      preVote: rng.chance(0.85),
      checkQuorum: true,
      maxEntriesPerAppend: rng.pick([1, 3, 16, 256]),
      maxBytesPerAppend: rng.pick([64, 512, 1 << 20]),
      maxInflightAppends: rng.pick([1, 2, 4, 16]),
      snapshotChunkBytes: rng.pick([24, 100, 1024, 256 * 1024]),
      ...profile.raft,
      ...options.raftConfig,
      testingBugs: options.bugs ?? options.raftConfig?.testingBugs,
    };
    const netProfile = rng.int(4);
    const seedNet = {
      dropRate: [0, 0.01, 0.05, 0.12][netProfile],
      duplicateRate: [0, 0.01, 0.05, 0.08][rng.int(4)],
      delayRate: [0, 0.01, 0.05, 0.1][rng.int(4)],
      minLatency: 1,
      maxLatency: rng.pick([2, 5, 10, 25]),
      longDelay: rng.pick([50, 200, 600]),
    };
    const netOpt = options.network ?? "seed";
    this.#baseNet = netOpt === "seed"
      ? seedNet
      : netOpt === "none"
      ? { dropRate: 0, duplicateRate: 0, delayRate: 0, minLatency: 1, maxLatency: 5, longDelay: 0 }
      : { ...seedNet, ...netOpt };
    this.#net = new VirtualNetwork(rng.fork(), { ...this.#baseNet });
    const w = (base: number) => rng.chance(0.15) ? 0 : base;
    this.#weights = {
      partition: w(3),
      isolateLeader: w(2),
      oneWay: w(2),
      crash: w(3),
      crashLeader: w(2),
      crashLoseStorage: w(1),
      memberAdd: w(1),
      memberRemove: w(1),
      transfer: w(2),
      compact: w(1),
      storm: w(1),
      healAll: 1,
      ...profile.nemesis,
      ...options.nemesis,
    };
    const seedInterval = rng.pick([[30, 300], [100, 800], [300, 2000]] as const);
    this.#nemesisInterval = options.nemesisIntervalMs ?? profile.interval ?? seedInterval;
    this.#compactEvery = rng.pick([8, 25, 60, 200]);
    this.#imageless = options.imageless === true;
    this.#midReadyCrash = profile.midReadyCrash ?? 0.25;
    this.#downMs = profile.downMs ?? [20, 2000];
    this.#crashOnOldTermCommit = profile.crashOnOldTermCommit ?? false;
    this.#hitNewLeader = profile.hitNewLeader ?? 0.05;
    const seedDeaf = rng.chance(profile.deafLeader ?? 0.3);
    this.#deafLeader = options.deafLeader ?? seedDeaf;
    this.#storageRng = new Prng((options.seed ^ 0x5bd1e995) >>> 0);
    const seedAsync = this.#storageRng.chance(0.75);
    const seedDelay = this.#storageRng.pick([[0, 1], [0, 4], [1, 12], [2, 30]] as const);
    const persistence = options.persistence ?? "seed";
    this.#async = persistence === "seed" ? seedAsync : persistence === "async";
    this.#syncDelay = options.syncDelayMs ?? seedDelay;
    if (this.#async) this.#config = { ...this.#config, asyncPersistence: true };
  }

  // ---------------------------------------------------------------- run

  /** Runs the simulation to the end and returns what happened. */
  run(): SimResult {
    const steps = this.#opts.steps ?? 10_000;
    const liveness = this.#opts.liveness ?? true;
    this.#bootstrap();
    try {
      while (this.#step < steps && this.#queue.size > 0) this.#processNext();
      if (liveness && this.#safety.violations.length === 0) {
        this.#heal();
        const bound = this.#now + (this.#opts.livenessBoundMs ?? 10_000);
        while (!this.#livenessDone && this.#queue.peekTime() <= bound) this.#processNext();
        if (!this.#livenessDone && this.#safety.violations.length === 0) {
          this.#safety.report(
            "liveness",
            `no leader with a completed client operation within ${this.#opts.livenessBoundMs ?? 10_000} ms ` +
              `after healing (${this.#describeCluster()})`,
          );
        }
      }
    } catch (err) {
      if (!(err instanceof StopRun)) {
        this.#safety.report("exception", err instanceof Error ? `${err.stack ?? err.message}` : String(err));
      }
    }
    // Operations still in progress at the end have an unknown outcome.
    for (const client of this.#clients) {
      const op = client.op;
      if (op !== undefined && op.kind !== "read" && op.mayHaveEffect) {
        this.#history.push({ clientId: client.id, input: op.input, call: op.call, ret: Infinity });
      }
    }
    // Linearizability of the recorded history.
    let lin: SimResult["linearizability"] = "skipped";
    if (this.#safety.violations.length === 0 || this.#safety.violations.every((v) => v.kind === "liveness")) {
      const res = checkLinearizability(kvModel, this.#history, { maxSteps: 5_000_000 });
      lin = res.verdict;
      if (res.verdict === "illegal") {
        const ops = res.failedPartition!;
        const ms = (t: number) => t === Infinity ? "inf" : `${(t / STAMPS_PER_MS).toFixed(4)}ms`;
        const lines = [...ops].sort((x, y) => x.call - y.call).slice(0, 60).map((op) =>
          kvModel.describe!({ ...op, call: 0, ret: 0 }).replace(
            /\[0, 0\]$/,
            `[${ms(op.call)}, ${ms(op.ret)}]`,
          )
        );
        this.#safety.report(
          "linearizability",
          `history of key "${ops[0].input.key}" (${ops.length} ops) is not linearizable; ` +
            `longest linearizable prefix ${res.longestPrefix?.length ?? 0}:\n    ${lines.join("\n    ")}`,
        );
      }
    }
    let unknown = 0;
    for (const op of this.#history) if (op.ret === Infinity) unknown++;
    this.#trace.add(this.#history.length).add(this.#opsCompleted).add(this.#now);
    return {
      seed: this.#opts.seed,
      nodes: this.#initialVoters,
      steps: this.#step,
      virtualTimeMs: this.#now,
      faults: {
        ...this.#faults,
        drop: this.#net.counters.drop,
        delay: this.#net.counters.delay,
        duplicate: this.#net.counters.duplicate,
        reorder: this.#net.counters.reorder,
      },
      opsChecked: this.#history.length,
      opsCompleted: this.#opsCompleted,
      opsUnknown: unknown,
      leaders: this.#safety.leadersSeen,
      commitIndex: this.#safety.maxCommitted,
      violations: this.#safety.violations,
      linearizability: lin,
      livenessOk: liveness ? this.#livenessDone : undefined,
      traceHash: this.#trace.hex(),
      trace: this.#traceLines,
    };
  }

  #processNext(): void {
    const time = this.#queue.peekTime();
    const ev = this.#queue.pop()!;
    this.#now = time;
    this.#step++;
    this.#handle(ev);
    if (this.#safety.violations.length > 0) throw new StopRun();
  }

  #log(line: () => string): void {
    const max = this.#opts.traceLines ?? 0;
    if (max === 0) return;
    this.#traceLines.push(`${this.#now} #${this.#step} ${line()}`);
    if (this.#traceLines.length > max) this.#traceLines.splice(0, this.#traceLines.length - max);
  }

  #handle(ev: SimEvent): void {
    const t = this.#trace;
    t.add(this.#now).add(ev.k);
    switch (ev.k) {
      case 0: {
        const node = ev.node;
        if (node.status !== "up" || node.incarnation !== ev.inc) return;
        t.add(node.num);
        node.raft!.tick();
        this.#drive(node);
        if (node.status === "up" && node.incarnation === ev.inc) {
          this.#queue.push(this.#now + node.tickMs, ev);
        }
        return;
      }
      case 1: {
        const msg = ev.msg;
        const node = this.#nodes.get(msg.to);
        t.add(MSG_CODE[msg.type]).add(msg.term);
        if (node === undefined || node.status !== "up") return;
        t.add(node.num);
        if (this.#net.isBlocked(msg.from, msg.to)) return;
        this.#log(() => `deliver ${msg.type} ${msg.from}->${msg.to} t${msg.term}`);
        node.raft!.step(msg);
        this.#drive(node);
        return;
      }
      case 2:
        this.#clientTimer(ev.client, ev.requestId, ev.attempt);
        return;
      case 3:
        this.#clientStart(ev.client);
        return;
      case 4:
        if (!this.#healed) {
          this.#nemesis();
          this.#queue.push(this.#now + this.#rng.range(...this.#nemesisInterval), ev);
        }
        return;
      case 5: {
        const node = ev.node;
        if (node.status !== "down" || node.incarnation !== ev.inc) return;
        this.#restart(node);
        return;
      }
      case 6:
        this.#net.unblock(ev.cut);
        this.#log(() => `heal cut of ${ev.cut.keys.length} links`);
        return;
      case 7:
        this.#operator();
        this.#queue.push(this.#now + 50, ev);
        return;
      case 8: {
        const node = ev.node;
        if (node.status === "gone") return;
        this.#log(() => `stop removed ${node.id}`);
        this.#kill(node);
        node.status = "gone";
        return;
      }
      case 9:
        if (this.#healed || !this.#stormActive) return;
        this.#stormActive = false;
        this.#net.settings = { ...this.#baseNet };
        return;
      case 10: {
        const node = ev.node;
        const rd = node.syncing;
        if (node.status !== "up" || node.incarnation !== ev.inc || rd === undefined) return;
        t.add(node.num);
        node.syncing = undefined;
        if (this.#completeBatch(node, rd)) this.#drive(node);
        return;
      }
    }
  }

  // ---------------------------------------------------------------- nodes

  #bootstrap(): void {
    const ids: string[] = [];
    for (let i = 0; i < this.#initialVoters; i++) ids.push(`n${this.#nextNodeNum + i}`);
    const snapshot: Snapshot = {
      meta: { index: 0, term: 0, membership: { voters: ids, learners: [], removed: [] } },
      data: new Uint8Array(),
    };
    for (let i = 0; i < ids.length; i++) {
      const node = this.#newNode();
      node.storage.bootstrap(snapshot);
      this.#start(node, this.#rng.int(TICK_MS));
    }
    const clients = this.#opts.clients ?? 4;
    for (let c = 1; c <= clients; c++) {
      const client: Client = { id: c, seq: 0, op: undefined, leaderHint: undefined };
      this.#clients.push(client);
      this.#queue.push(this.#rng.range(50, 300), { k: 3, client });
    }
    this.#queue.push(this.#rng.range(100, 400), { k: 4 });
    this.#queue.push(50, { k: 7 });
  }

  #newNode(): SimNode {
    const num = this.#nextNodeNum++;
    const id = `n${num}`;
    const node: SimNode = {
      id,
      num,
      raft: undefined,
      storage: new SimStorage(id, this.#safety),
      images: new Map(),
      kv: new KvStateMachine(),
      status: "down",
      incarnation: 0,
      tickMs: TICK_MS + this.#rng.range(-1, 1),
      pendingWrites: new Map(),
      pendingReads: new Map(),
      readQueue: [],
      lastCommitSeen: 0,
      leaderTerm: -1,
      crashMidReady: "no",
      syncing: undefined,
      unsyncedHardState: undefined,
      quorumChecked: 0,
      commitMoved: undefined,
      stopScheduled: false,
    };
    this.#nodes.set(id, node);
    return node;
  }

  /** Constructs the Raft node from its storage and starts its clock. */
  #start(node: SimNode, firstTickIn: number): void {
    const initial = node.storage.load();
    const config: RaftConfig = { ...this.#config, id: node.id, random: this.#rng.fork().asRandom() };
    node.kv = new KvStateMachine();
    if (initial.snapshot !== undefined && initial.snapshot.meta.index > 0) {
      node.kv.restore(initial.snapshot.data, initial.snapshot.meta.index);
      this.#safety.onApplied(node.id, initial.snapshot.meta.index, node.kv.chainValue, "restore");
    }
    node.raft = this.#factory(config, initial);
    node.status = "up";
    node.incarnation++;
    node.lastCommitSeen = 0;
    node.leaderTerm = -1;
    node.quorumChecked = 0;
    // what it committed before the restart was checked then (it is not known durable anywhere now)
    node.commitMoved = { ci: node.raft.commitIndex, voters: undefined };
    this.#queue.push(this.#now + firstTickIn, { k: 0, node, inc: node.incarnation });
    this.#drive(node);
  }

  #kill(node: SimNode): void {
    const rd = node.syncing;
    let kept = 0;
    if (rd !== undefined) {
      // The process dies while the batch's writes are not synced: they are lost, but for a prefix
      // that reached the disk (never the last record, which is torn off).
      node.syncing = undefined;
      this.#faults["unsynced-loss"]++;
      const records = SimStorage.recordsOf(rd);
      kept = records > 1 && this.#storageRng.chance(0.5) ? this.#storageRng.int(records) : 0;
      node.storage.persistTorn(this.#stored(node, rd), kept);
      this.#log(() => `${node.id} loses a batch that was not synced (${kept} of ${records} records kept)`);
    }
    const unsynced = node.unsyncedHardState;
    node.unsyncedHardState = undefined;
    // A commit index written without a sync is lost too, unless a later record reached the disk.
    if (unsynced !== undefined && kept === 0 && this.#storageRng.chance(0.5)) {
      node.storage.hardState = unsynced;
      this.#faults["unsynced-loss"]++;
      this.#log(() => `${node.id} loses its unsynced commit index (back to ${unsynced.commit})`);
    }
    node.raft = undefined;
    node.status = "down";
    node.incarnation++;
    node.pendingWrites.clear();
    node.pendingReads.clear();
    node.readQueue.length = 0;
    node.crashMidReady = "no";
  }

  #crash(node: SimNode, downMs: number): void {
    this.#log(() => `crash ${node.id} for ${downMs} ms`);
    this.#kill(node);
    this.#faults.crash++;
    this.#queue.push(this.#now + downMs, { k: 5, node, inc: node.incarnation });
  }

  #restart(node: SimNode): void {
    this.#log(() => `restart ${node.id}`);
    this.#faults.restart++;
    this.#start(node, this.#rng.int(node.tickMs));
  }

  /**
   * Acts on every pending RaftReady of `node`, in the documented order. With asynchronous
   * persistence a batch's early messages leave at once and its writes become durable after a
   * seeded delay (event 10); the node's further batches wait for it, as in the real driver.
   */
  #drive(node: SimNode): void {
    let raft = node.raft;
    while (node.syncing === undefined && raft !== undefined && raft.hasReady()) {
      const rd = raft.ready();
      for (const msg of rd.earlyMessages) this.#send(msg);
      if (this.#async && this.#mustSync(node, rd)) {
        const delay = this.#storageRng.range(...this.#syncDelay);
        if (delay > 0) {
          node.syncing = rd;
          this.#queue.push(this.#now + delay, { k: 10, node, inc: node.incarnation });
          break;
        }
      }
      if (!this.#completeBatch(node, rd)) return;
      raft = node.raft;
    }
    this.#serveImage(node);
    raft = node.raft;
    if (raft !== undefined) this.#observe(node, raft);
  }

  /**
   * True if a batch's writes must be synced before it completes (async persistence): it has
   * entries, a snapshot, or a new term or vote; a batch that only moves the commit index needs no
   * sync (the driver's rule).
   */
  #mustSync(node: SimNode, rd: RaftReady): boolean {
    if (rd.entries.length > 0 || rd.snapshot !== undefined) return true;
    const hs = rd.hardState;
    const stored = node.storage.hardState;
    return hs !== undefined && (hs.term !== stored.term || hs.vote !== stored.vote);
  }

  /**
   * Finishes one ready batch whose early messages are out: persists it (an armed crash may strike
   * during its sync), reports it durable, sends the rest, applies, serves reads. Returns false if
   * the node crashed.
   */
  #completeBatch(node: SimNode, rd: RaftReady): boolean {
    const raft = node.raft!;
    {
      // 1. persist; an armed crash may strike during the batch's sync and tear its last write off
      const records = SimStorage.recordsOf(rd);
      if (
        records > 0 &&
        (node.crashMidReady === "next" || (node.crashMidReady === "entries" && rd.entries.length > 0)) &&
        this.#rng.chance(0.5)
      ) {
        const keep = this.#rng.int(records);
        node.storage.persistTorn(this.#stored(node, rd), keep);
        this.#log(() =>
          `${node.id} crashes during the sync of a ready batch (${keep} of ${records} records kept)`
        );
        this.#faults["torn-crash"]++;
        this.#crash(node, this.#rng.range(...this.#downMs));
        return false;
      }
      const synced = !this.#async || this.#mustSync(node, rd);
      const before = node.storage.hardState;
      node.storage.persist(this.#stored(node, rd));
      if (synced) node.unsyncedHardState = undefined;
      else if (rd.hardState !== undefined) node.unsyncedHardState ??= before;
      const last = rd.entries.length > 0 ? rd.entries[rd.entries.length - 1] : undefined;
      if (last !== undefined) raft.persisted(last.index, last.term);
      else if (rd.snapshot !== undefined) raft.persisted(rd.snapshot.meta.index, rd.snapshot.meta.term);
      const ss = rd.softState;
      if (ss !== undefined && ss.role === "leader" && node.leaderTerm !== ss.term) {
        this.#newLeader(node, ss.term);
      }
      if (
        node.crashMidReady === "next" || (node.crashMidReady === "entries" && rd.entries.length > 0) ||
        (this.#crashOnOldTermCommit && this.#oldTermCommit(raft, rd))
      ) {
        this.#log(() => `${node.id} crashes mid-ready (after persisting, before sending)`);
        // Crash after persisting, before sending or applying.
        this.#crash(node, this.#rng.range(...this.#downMs));
        return false;
      }
      if (rd.softState?.role === "leader" && !this.#healed && this.#rng.chance(this.#hitNewLeader)) {
        if (this.#rng.chance(0.5)) {
          this.#log(() => `new leader ${node.id} crashes before sending`);
          this.#crash(node, this.#rng.range(...this.#downMs));
          return false;
        }
        this.#isolate(node, this.#rng.range(100, 1500));
      }
      // 2. send
      for (const msg of rd.messages) this.#send(msg);
      // 3. apply
      if (rd.snapshot !== undefined && rd.restoreSnapshot) this.#restoreSnapshot(node, rd.snapshot);
      for (const e of rd.committed) this.#apply(node, e);
      // 4. reads
      for (const rs of rd.readStates) {
        const client = node.pendingReads.get(rs.ctx);
        if (client === undefined) continue;
        node.pendingReads.delete(rs.ctx);
        const requestId = rs.ctx.slice(0, rs.ctx.lastIndexOf("/"));
        node.readQueue.push({ ctx: rs.ctx, index: rs.index, client, requestId });
      }
      for (const dr of rd.droppedReads) {
        const client = node.pendingReads.get(dr.ctx);
        if (client === undefined) continue;
        node.pendingReads.delete(dr.ctx);
        this.#attemptFailed(client, dr.ctx.slice(0, dr.ctx.lastIndexOf("/")));
      }
      this.#serveReads(node);
      if (this.#safety.violations.length > 0) throw new StopRun();
      this.#maybeCompact(node);
    }
    return true;
  }

  /** `node` was seen leading `term` for the first time: election safety, leader completeness. */
  #newLeader(node: SimNode, term: number): void {
    node.leaderTerm = term;
    this.#trace.add(node.num).add(term);
    this.#log(() => `${node.id} leader of term ${term}`);
    this.#safety.onLeader(node.id, term, node.storage);
    if (this.#safety.violations.length > 0) throw new StopRun();
  }

  /** True when a leader's ready moves its commit index onto an entry of an earlier term. */
  #oldTermCommit(raft: SimRaftNode, rd: RaftReady): boolean {
    const hs = rd.hardState;
    if (hs === undefined || raft.role !== "leader") return false;
    const last = rd.committed.length > 0 ? rd.committed[rd.committed.length - 1] : undefined;
    return last !== undefined && last.index === hs.commit && last.term < hs.term;
  }

  /** Checks what changed on `node` after it was driven: leadership and commit index. */
  #observe(node: SimNode, raft: SimRaftNode): void {
    if (raft.role === "leader" && node.leaderTerm !== raft.term) this.#newLeader(node, raft.term);
    const ci = raft.commitIndex;
    if (raft.role === "leader" && ci > node.quorumChecked) {
      node.quorumChecked = ci;
      if (ci > (this.#leaderChecked.get(raft.term) ?? 0)) this.#leaderChecked.set(raft.term, ci);
      this.#checkDurableQuorum(node, raft, ci, raft.membership.voters);
    }
    if (raft.role !== "leader" && ci > (node.commitMoved?.ci ?? 0)) {
      node.commitMoved = { ci, voters: raft.membership.voters };
    }
    // While a batch is being synced the node's log runs ahead of its storage (a follower may even
    // have replaced a suffix there): its commits are taken from storage once the sync is done.
    if (node.syncing !== undefined) return;
    if (ci > node.lastCommitSeen) {
      const st = node.storage;
      if (ci > st.lastIndex) {
        this.#safety.invariant(node.id, `commit index ${ci} beyond its last log index ${st.lastIndex}`);
      } else {
        for (let i = Math.max(node.lastCommitSeen, st.snapshotIndex) + 1; i <= ci; i++) {
          this.#safety.onCommitted(node.id, st.entryAt(i)!);
        }
        // A follower's commit beyond any its leader made: it counted itself and the leader
        // (`leaderMatch`), and both must hold the entry durably now that its own sync is done.
        const voters = node.commitMoved?.voters;
        if (
          raft.role !== "leader" && voters !== undefined && ci > (this.#leaderChecked.get(raft.term) ?? 0)
        ) {
          this.#checkDurableQuorum(node, raft, ci, voters);
        }
      }
      node.lastCommitSeen = ci;
    }
    if (this.#safety.violations.length > 0) throw new StopRun();
  }

  /**
   * A leader moved its commit index to `ci` (or a follower did, past any commit index of its
   * term's leader): a majority of the voters it counts must hold that entry on stable storage
   * right now (the leader itself only once its write is durable), since a crash of every node can
   * lose nothing else.
   */
  #checkDurableQuorum(node: SimNode, raft: SimRaftNode, ci: number, voters: readonly string[]): void {
    const term = raft.termAt(ci);
    // A leader commits entries of its own term (an earlier term's commit index it inherited as a
    // follower was decided by an earlier leader); a compacted entry was checked when committed.
    if (term !== raft.term) return;
    const holders: string[] = [];
    for (const id of voters) {
      const st = this.#nodes.get(id)?.storage;
      if (st === undefined) continue;
      if (st.snapshotIndex >= ci || st.entryAt(ci)?.term === term) holders.push(id);
    }
    if (holders.length < Math.floor(voters.length / 2) + 1) {
      this.#safety.report(
        "durable-quorum",
        `${raft.role} ${node.id} (term ${raft.term}) committed ${ci} (term ${term}) while only [${
          holders.join(",")
        }] ` +
          `of voters [${voters.join(",")}] hold it on stable storage`,
      );
      throw new StopRun();
    }
  }

  #send(msg: RaftMessage): void {
    const dest = this.#nodes.get(msg.to);
    if (dest === undefined) return;
    for (const at of this.#net.plan(this.#now, msg.from, msg.to)) this.#queue.push(at, { k: 1, msg });
  }

  #restoreSnapshot(node: SimNode, snap: Snapshot): void {
    this.#faults["snapshot-install"]++;
    this.#log(() => `${node.id} restores snapshot at ${snap.meta.index}`);
    node.kv.restore(snap.data, snap.meta.index);
    if (node.kv.appliedIndex !== snap.meta.index) {
      this.#safety.invariant(
        node.id,
        `snapshot meta index ${snap.meta.index} but its data is as of ${node.kv.appliedIndex}`,
      );
      return;
    }
    this.#safety.onApplied(node.id, snap.meta.index, node.kv.chainValue, "restore");
    // Reads queued for indexes the snapshot covers can now be served.
  }

  #apply(node: SimNode, e: Entry): void {
    const kv = node.kv;
    if (e.index !== kv.appliedIndex + 1) {
      this.#safety.invariant(node.id, `applied entry ${e.index} after ${kv.appliedIndex}`);
      throw new StopRun();
    }
    const out = kv.apply(e);
    this.#safety.onApplied(node.id, e.index, kv.chainValue, "apply");
    if (e.type === "config" && e.change !== undefined) {
      const key = `${e.change.type}:${e.change.memberId}`;
      if (!this.#appliedChanges.has(key)) {
        this.#appliedChanges.add(key);
        this.#log(() => `config applied: ${key} (index ${e.index})`);
        if (e.change.type === "remove") this.#scheduleStop(e.change.memberId);
      }
      return;
    }
    if (out.requestId === undefined || out.stale) return;
    const client = node.pendingWrites.get(out.requestId);
    if (client === undefined) return;
    node.pendingWrites.delete(out.requestId);
    if (client.op?.requestId === out.requestId) this.#complete(client, out.result!, node.id);
  }

  #serveReads(node: SimNode): void {
    const q = node.readQueue;
    if (q.length === 0) return;
    const applied = node.kv.appliedIndex;
    let w = 0;
    for (let r = 0; r < q.length; r++) {
      const item = q[r];
      if (item.index <= applied) {
        const op = item.client.op;
        if (op !== undefined && op.requestId === item.requestId) {
          this.#complete(item.client, node.kv.get(op.input.key), node.id);
        }
      } else q[w++] = item;
    }
    q.length = w;
  }

  #maybeCompact(node: SimNode, force = false): void {
    const raft = node.raft;
    if (raft === undefined) return;
    const applied = node.kv.appliedIndex;
    const st = node.storage;
    if (applied <= st.snapshotIndex) return;
    if (!force && applied - st.snapshotIndex < this.#compactEvery) return;
    // The snapshot can only cover what is persisted and applied.
    if (applied > st.lastIndex) return;
    this.#faults.compaction++;
    const data = node.kv.snapshot();
    if (
      !force && this.#imageless && raft.compactWithoutImage !== undefined && this.#compactions++ % 2 === 0
    ) {
      this.#log(() => `${node.id} compacts at ${applied} without an image`);
      this.#faults["compaction-without-image"]++;
      node.images.set(applied, data); // what the storage is given in its place (restarts need it)
      raft.compactWithoutImage(applied);
      return;
    }
    this.#log(() => `${node.id} compacts at ${applied}`);
    // half the snapshots carry a digest (chunks can then be checked, and resumed under a new leader)
    raft.compact(applied, data, applied % 2 === 0 ? crc32c(data) : undefined);
  }

  /**
   * Answers a transfer waiting for the image of an imageless snapshot: its image if nothing was
   * applied since, else a newer snapshot (a compaction with an image at the applied index).
   */
  #serveImage(node: SimNode): void {
    const raft = node.raft;
    const index = raft?.takeImageRequest?.() ?? 0;
    if (raft === undefined || index === 0) return;
    if (node.kv.appliedIndex === index) {
      const data = node.kv.snapshot();
      const given = raft.provideImage!(index, data, index % 2 === 0 ? crc32c(data) : undefined);
      if (given) this.#faults["image-given"]++;
      this.#log(() => `${node.id} gives the image of ${index} (${given})`);
    } else this.#maybeCompact(node, true);
  }

  /** A ready batch as the storage takes it: an imageless snapshot with the image kept aside. */
  #stored(node: SimNode, rd: RaftReady): RaftReady {
    const snapshot = rd.snapshot;
    if (snapshot === undefined || snapshot.data.byteLength > 0 || snapshot.meta.index === 0) return rd;
    const image = node.images.get(snapshot.meta.index);
    if (image === undefined) return rd;
    node.images.clear();
    return { ...rd, snapshot: { meta: snapshot.meta, data: image } };
  }

  #scheduleStop(memberId: string): void {
    const node = this.#nodes.get(memberId);
    if (node === undefined || node.stopScheduled || node.status === "gone") return;
    node.stopScheduled = true;
    this.#queue.push(this.#now + this.#rng.range(0, 300), { k: 8, node });
  }

  #liveNodes(): SimNode[] {
    const out: SimNode[] = [];
    for (const n of this.#nodes.values()) if (n.status === "up") out.push(n);
    return out;
  }

  /** The up node that believes it leads the highest term. */
  #leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.#nodes.values()) {
      if (
        n.status === "up" && n.raft!.role === "leader" &&
        (best === undefined || n.raft!.term > best.raft!.term)
      ) {
        best = n;
      }
    }
    return best;
  }

  #describeCluster(): string {
    const parts: string[] = [];
    for (const n of this.#nodes.values()) {
      if (n.status === "gone") continue;
      const r = n.raft;
      parts.push(
        r === undefined
          ? `${n.id}:down`
          : `${n.id}:${r.role}/t${r.term}/c${r.commitIndex}/v[${r.membership.voters.join(",")}]`,
      );
    }
    return parts.join(" ") +
      (this.#goals.length > 0
        ? ` goals: ${this.#goals.map((g) => `${g.change.type}:${g.change.memberId}`).join(",")}`
        : "");
  }

  // ---------------------------------------------------------------- clients

  #clientStart(client: Client): void {
    if (client.op !== undefined) return;
    const rng = this.#rng;
    const key = rng.pick(KEYS);
    client.seq++;
    const seq = client.seq;
    const requestId = requestIdOf(client.id, seq);
    const value = `${client.id}.${seq}`;
    const r = rng.int(100);
    let input: KvInput;
    let kind: PendingOp["kind"];
    let cmd: KvCommand | undefined;
    if (r < 40) {
      input = { op: "get", key };
      kind = "read";
    } else if (r < 45) {
      input = { op: "get", key };
      kind = "logread";
      cmd = { c: client.id, s: seq, o: "get", k: key };
    } else if (r < 75) {
      input = { op: "put", key, value };
      kind = "write";
      cmd = { c: client.id, s: seq, o: "put", k: key, v: value };
    } else {
      // Expect a value some client may have written (or null).
      const expected = rng.chance(0.2) ? null : this.#guessValue(key);
      input = { op: "cas", key, expected, value };
      kind = "write";
      cmd = { c: client.id, s: seq, o: "cas", k: key, v: value, e: expected };
    }
    client.op = {
      input,
      requestId,
      kind,
      call: this.#nextStamp(),
      callTime: this.#now,
      deadline: this.#now + rng.range(1000, 4000),
      data: cmd === undefined ? undefined : encodeCommand(cmd),
      attempt: 0,
      mayHaveEffect: false,
      afterHeal: this.#healed,
    };
    this.#trace.add(client.id).add(seq).add(r);
    this.#attempt(client);
  }

  /** A value recently written to `key` (from the history), for compare-and-set. */
  #guessValue(key: string): string | null {
    for (let i = this.#history.length - 1, n = 0; i >= 0 && n < 20; i--, n++) {
      const op = this.#history[i];
      if (op.input.key !== key) continue;
      if (op.input.op === "get" && typeof op.output === "string") return op.output;
      if (op.input.op !== "get" && this.#rng.chance(0.5)) return op.input.value;
    }
    return null;
  }

  #pickTarget(client: Client): SimNode | undefined {
    const hint = client.leaderHint !== undefined ? this.#nodes.get(client.leaderHint) : undefined;
    if (hint !== undefined && hint.status === "up" && this.#rng.chance(0.8)) return hint;
    const live = this.#liveNodes();
    return live.length === 0 ? undefined : this.#rng.pick(live);
  }

  #attempt(client: Client): void {
    const op = client.op!;
    op.attempt++;
    const node = this.#pickTarget(client);
    const attempt = op.attempt;
    this.#queue.push(this.#now + this.#rng.range(150, 600), {
      k: 2,
      client,
      requestId: op.requestId,
      attempt,
    });
    if (node === undefined) return;
    const raft = node.raft!;
    this.#log(() =>
      `client ${client.id} ${op.requestId} ${
        kvModel.describe!({ ...op, clientId: client.id, ret: Infinity })
      } attempt ${attempt} at ${node.id}`
    );
    if (op.kind === "read") {
      const ctx = `${op.requestId}/${attempt}`;
      node.pendingReads.set(ctx, client);
      raft.readIndex(ctx);
      this.#drive(node);
      return;
    }
    const res = raft.propose(op.data!, op.requestId);
    this.#trace.addString(res.status);
    if (res.status === "dropped") {
      if (res.leaderId !== undefined) client.leaderHint = res.leaderId;
      this.#drive(node);
      this.#attemptFailed(client, op.requestId);
      return;
    }
    op.mayHaveEffect = true;
    if (res.status === "forwarded" && res.leaderId !== undefined) client.leaderHint = res.leaderId;
    node.pendingWrites.set(op.requestId, client);
    this.#drive(node);
  }

  /** The current attempt failed fast (dropped): retry soon. */
  #attemptFailed(client: Client, requestId: string): void {
    const op = client.op;
    if (op === undefined || op.requestId !== requestId) return;
    client.leaderHint = undefined;
    this.#queue.push(this.#now + this.#rng.range(5, 40), { k: 2, client, requestId, attempt: op.attempt });
  }

  #clientTimer(client: Client, requestId: string, attempt: number): void {
    const op = client.op;
    if (op === undefined || op.requestId !== requestId || op.attempt !== attempt) return;
    if (this.#now >= op.deadline) {
      // Give up: a write that may have reached the log stays open forever.
      if (op.kind !== "read" && op.mayHaveEffect) {
        this.#history.push({ clientId: client.id, input: op.input, call: op.call, ret: Infinity });
      }
      this.#log(() => `client ${client.id} gives up ${op.requestId}`);
      client.op = undefined;
      this.#queue.push(this.#now + this.#rng.range(0, 50), { k: 3, client });
      return;
    }
    client.leaderHint = undefined;
    this.#attempt(client);
  }

  /**
   * A history timestamp: the virtual time in ms times 10,000, plus the order of events within that
   * millisecond, so that an operation that returned before another was invoked (in the same
   * millisecond too) is ordered before it.
   */
  #nextStamp(): number {
    this.#stamp = Math.max(this.#stamp + 1, this.#now * STAMPS_PER_MS);
    return this.#stamp;
  }

  #complete(client: Client, output: KvOutput, via: string): void {
    const op = client.op!;
    this.#history.push({
      clientId: client.id,
      input: op.input,
      output,
      call: op.call,
      ret: this.#nextStamp(),
    });
    this.#opsCompleted++;
    this.#trace.add(client.id).addString(String(output));
    this.#log(() => `client ${client.id} ${op.requestId} -> ${JSON.stringify(output)} via ${via}`);
    client.op = undefined;
    client.leaderHint = via;
    if (op.afterHeal && this.#healed && !this.#livenessDone && this.#leader() !== undefined) {
      this.#livenessDone = true;
    }
    this.#queue.push(this.#now + this.#rng.range(0, 30), { k: 3, client });
  }

  // ---------------------------------------------------------------- nemesis

  #nemesis(): void {
    const w = this.#weights;
    const order: (keyof NemesisWeights)[] = [
      "partition",
      "isolateLeader",
      "oneWay",
      "crash",
      "crashLeader",
      "crashLoseStorage",
      "memberAdd",
      "memberRemove",
      "transfer",
      "compact",
      "storm",
      "healAll",
    ];
    const action = order[this.#rng.weighted(order.map((k) => w[k]))];
    this.#trace.addString(action);
    switch (action) {
      case "partition":
        return this.#partition();
      case "isolateLeader":
        return this.#isolateLeader();
      case "oneWay":
        return this.#oneWay();
      case "crash":
      case "crashLeader":
        return this.#crashSome(action === "crashLeader");
      case "crashLoseStorage":
        return this.#crashLoseStorage();
      case "memberAdd":
        return this.#memberAdd();
      case "memberRemove":
        return this.#memberRemove();
      case "transfer":
        return this.#transfer();
      case "compact": {
        const live = this.#liveNodes();
        if (live.length > 0) {
          const node = this.#rng.pick(live);
          this.#maybeCompact(node, true);
          this.#drive(node);
        }
        return;
      }
      case "storm":
        return this.#storm();
      case "healAll":
        this.#net.unblockAll();
        this.#log(() => "heal all partitions");
        return;
    }
  }

  #memberIds(): string[] {
    const out: string[] = [];
    for (const n of this.#nodes.values()) if (n.status !== "gone") out.push(n.id);
    return out;
  }

  #cutFor(ms: number, cut: CutHandle): void {
    this.#queue.push(this.#now + ms, { k: 6, cut });
  }

  #partition(): void {
    const ids = this.#memberIds();
    if (ids.length < 2) return;
    const side = new Set<string>();
    for (const id of ids) if (this.#rng.chance(0.5)) side.add(id);
    if (side.size === 0 || side.size === ids.length) side.add(ids[0]).delete(ids[ids.length - 1]);
    const links: [string, string][] = [];
    for (const a of ids) {
      for (const b of ids) if (side.has(a) !== side.has(b)) links.push([a, b]);
    }
    this.#faults.partition++;
    const ms = this.#rng.range(50, 3000);
    this.#log(() => `partition [${[...side].join(",")}] for ${ms} ms`);
    this.#cutFor(ms, this.#net.block(links));
  }

  #isolateLeader(): void {
    const leader = this.#leader();
    if (leader === undefined) return this.#partition();
    this.#isolate(leader, this.#rng.range(100, 3000));
  }

  /** Cuts `node` off from every other node, both ways, for `ms`. */
  #isolate(node: SimNode, ms: number): void {
    const links: [string, string][] = [];
    for (const id of this.#memberIds()) {
      if (id !== node.id) links.push([node.id, id], [id, node.id]);
    }
    this.#faults.partition++;
    this.#log(() => `isolate ${node.id} for ${ms} ms`);
    this.#cutFor(ms, this.#net.block(links));
  }

  #oneWay(): void {
    const ids = this.#memberIds();
    if (ids.length < 2) return;
    const rng = this.#rng;
    const links: [string, string][] = [];
    const pivot = rng.pick(ids);
    const mode = rng.int(3);
    for (const other of ids) {
      if (other === pivot) continue;
      if (mode === 0) links.push([pivot, other]); // pivot cannot send
      else if (mode === 1) links.push([other, pivot]); // pivot cannot receive
      else if (rng.chance(0.5)) links.push(rng.chance(0.5) ? [pivot, other] : [other, pivot]);
    }
    if (links.length === 0) return;
    this.#faults["one-way-partition"]++;
    const ms = rng.range(50, 3000);
    this.#log(() => `one-way cut ${links.map(([a, b]) => `${a}->${b}`).join(",")} for ${ms} ms`);
    this.#cutFor(ms, this.#net.block(links));
  }

  #crashSome(leaderOnly: boolean): void {
    const live = this.#liveNodes();
    const all = this.#memberIds().length;
    if (live.length === 0 || all - live.length >= Math.ceil(all / 2)) return;
    const leader = this.#leader();
    const node = leaderOnly && leader !== undefined ? leader : this.#rng.pick(live);
    const down = this.#rng.range(...this.#downMs);
    if (this.#rng.chance(this.#midReadyCrash)) {
      // Crash in the middle of a later ready batch: after persisting, before sending. Armed on
      // "entries", the node persists new entries (a new leader: its no-op) that nobody else gets.
      node.crashMidReady = this.#rng.chance(0.5) ? "next" : "entries";
      this.#log(() => `${node.id} will crash mid-ready (${node.crashMidReady})`);
      return;
    }
    this.#crash(node, down);
  }

  /**
   * Destroys the storage of one member; the operator then replaces it. Only with a settled
   * membership of at least three voters (see {@linkcode #membershipSettled}): with a change in
   * flight, losing one voter can leave no configuration that the survivors can elect a leader in
   * (seeds 1003767 and 1023452).
   */
  #crashLoseStorage(): void {
    const leader = this.#leader();
    if (leader === undefined || !this.#membershipSettled(leader)) return;
    const m = leader.raft!.membership;
    if (m.voters.length < 3) return;
    const candidates = [...m.voters, ...m.learners].filter((id) => {
      const n = this.#nodes.get(id);
      return n !== undefined && n.status !== "gone";
    });
    if (candidates.length === 0) return;
    const victim = this.#nodes.get(this.#rng.pick(candidates))!;
    this.#faults["crash-with-storage-loss"]++;
    if (victim.status === "up") this.#kill(victim);
    victim.status = "gone";
    victim.stopScheduled = true;
    const fresh = this.#newNode();
    this.#log(() => `${victim.id} crashes and loses its storage; comes back as ${fresh.id}`);
    const add = {
      change: { type: "add-learner", memberId: fresh.id } as MembershipChange,
      lastTry: -Infinity,
    };
    const remove = {
      change: { type: "remove", memberId: victim.id } as MembershipChange,
      lastTry: -Infinity,
    };
    if (this.#rng.chance(0.5)) this.#goals.push(add, remove);
    else this.#goals.push(remove, add);
    fresh.incarnation++;
    this.#queue.push(this.#now + this.#rng.range(20, 1000), { k: 5, node: fresh, inc: fresh.incarnation });
  }

  /**
   * True if no membership change is in flight anywhere: no operator goal, no learner (the leader
   * may promote one at any moment), and every member that is not gone, up or down, derives the
   * same voters from its log. A single-server change takes effect when appended, so an
   * uncommitted config entry (a promotion the leader appended just before a crash, say) gives the
   * nodes that hold it a voter set that the others do not share.
   */
  #membershipSettled(leader: SimNode): boolean {
    if (this.#goals.length > 0) return false;
    const m = leader.raft!.membership;
    if (m.learners.length > 0) return false;
    const key = [...m.voters].sort().join(",");
    for (const n of this.#nodes.values()) {
      if (n.status === "gone") continue;
      const v = n.raft?.membership ?? storedMembership(n.storage);
      if (v.learners.length > 0 || [...v.voters].sort().join(",") !== key) return false;
    }
    return true;
  }

  #memberAdd(): void {
    const leader = this.#leader();
    if (leader === undefined || this.#goals.length > 0) return;
    const m = leader.raft!.membership;
    if (m.voters.length + m.learners.length >= this.#initialVoters + 1) return;
    const fresh = this.#newNode();
    this.#faults["member-add"]++;
    this.#log(() => `add member ${fresh.id}`);
    this.#goals.push({ change: { type: "add-learner", memberId: fresh.id }, lastTry: -Infinity });
    this.#start(fresh, this.#rng.int(fresh.tickMs));
  }

  #memberRemove(): void {
    const leader = this.#leader();
    if (leader === undefined || this.#goals.length > 0) return;
    const m = leader.raft!.membership;
    const minVoters = Math.max(2, this.#initialVoters - 1);
    const candidates = [...m.learners, ...(m.voters.length > minVoters ? m.voters : [])];
    if (candidates.length === 0) return;
    const id = this.#rng.pick(candidates);
    this.#faults["member-remove"]++;
    this.#log(() => `remove member ${id}`);
    this.#goals.push({ change: { type: "remove", memberId: id }, lastTry: -Infinity });
  }

  #transfer(): void {
    const leader = this.#leader();
    if (leader === undefined) return;
    const others = leader.raft!.membership.voters.filter((id) => id !== leader.id);
    if (others.length === 0) return;
    const to = this.#rng.pick(others);
    this.#faults["leadership-transfer"]++;
    this.#log(() => `transfer leadership ${leader.id} -> ${to}`);
    leader.raft!.transferLeadership(to);
    this.#drive(leader);
  }

  #storm(): void {
    if (this.#stormActive) return;
    this.#stormActive = true;
    const rng = this.#rng;
    this.#net.settings = {
      ...this.#baseNet,
      dropRate: rng.pick([0.2, 0.4, 0.7]),
      duplicateRate: rng.pick([0.05, 0.2]),
      delayRate: rng.pick([0.1, 0.3]),
      maxLatency: rng.pick([10, 40]),
      longDelay: rng.pick([200, 1000]),
    };
    const ms = rng.range(100, 1500);
    this.#log(() => `network storm for ${ms} ms`);
    this.#queue.push(this.#now + ms, { k: 9 });
  }

  // ---------------------------------------------------------------- membership operator

  #operator(): void {
    while (this.#goals.length > 0) {
      const g = this.#goals[0];
      if (!this.#appliedChanges.has(`${g.change.type}:${g.change.memberId}`)) break;
      this.#goals.shift();
    }
    const g = this.#goals[0];
    if (g === undefined || this.#now - g.lastTry < 300) return;
    const leader = this.#leader();
    if (leader === undefined) return;
    g.lastTry = this.#now;
    const res = leader.raft!.proposeMembership(g.change);
    this.#trace.addString(res.status);
    this.#log(() => `operator proposes ${g.change.type}:${g.change.memberId} at ${leader.id}: ${res.status}`);
    this.#drive(leader);
  }

  // ---------------------------------------------------------------- liveness

  /**
   * Cuts every link into the current leader, if the other voters can still form a quorum: only
   * with a settled membership (no pending change, no learner waiting for promotion, every node's
   * view the same), since a configuration change in flight could need the deaf leader's vote.
   * Only with pre-vote: without it, a node that sends but never hears campaigns in ever higher
   * terms and can take the others' votes for ever (the disruptive server pre-vote exists for).
   */
  #deafenLeader(): void {
    const leader = this.#leader();
    if (leader === undefined || this.#goals.length > 0 || this.#config.preVote === false) return;
    const m = leader.raft!.membership;
    if (m.learners.length > 0) return;
    const voters = m.voters;
    const key = [...voters].sort().join(",");
    for (const n of this.#nodes.values()) {
      if (n.status !== "up") continue;
      const v = n.raft!.membership;
      if (v.learners.length > 0 || [...v.voters].sort().join(",") !== key) return;
    }
    let capable = 0;
    for (const id of voters) {
      const n = this.#nodes.get(id);
      if (id !== leader.id && n !== undefined && n.status !== "gone" && !n.stopScheduled) capable++;
    }
    if (voters.length < 3 || capable < Math.floor(voters.length / 2) + 1) return;
    const links: [string, string][] = [];
    for (const id of this.#memberIds()) if (id !== leader.id) links.push([id, leader.id]);
    this.#faults["one-way-partition"]++;
    this.#log(() => `liveness phase with a deaf leader ${leader.id}`);
    this.#net.block(links);
  }

  #heal(): void {
    this.#healed = true;
    this.#log(() => "heal: all partitions, network faults off, all nodes restarted");
    this.#net.unblockAll();
    this.#stormActive = false;
    this.#net.settings = { ...this.#baseNet, dropRate: 0, duplicateRate: 0, delayRate: 0 };
    for (const node of this.#nodes.values()) {
      node.crashMidReady = "no";
      if (node.status === "down" && !(node.stopScheduled)) this.#restart(node);
    }
    if (this.#deafLeader) this.#deafenLeader();
  }
}

/** The membership a stopped node will derive from its storage on restart (snapshot plus config entries). */
function storedMembership(storage: SimStorage): Membership {
  let m = storage.snapshot?.meta.membership ?? EMPTY_MEMBERSHIP;
  for (const e of storage.entries) {
    if (e.type === "config" && e.change !== undefined) m = applyMembershipChange(m, e.change);
  }
  return m;
}
