/**
 * A deterministic in-test cluster of pure {@linkcode RaftNode}s for scenario tests that read like
 * protocol traces: it acts on every `ready()` like a driver (persist into a
 * {@linkcode MemoryRaftStorage}, queue messages, apply committed entries to a tiny string-list state
 * machine), and lets the test decide which messages are delivered, dropped or held, which node
 * ticks, and which links are cut. Randomness comes from one seeded generator.
 *
 * @module
 */

import { RaftNode } from "../../src/raft/raft_node.ts";
import type {
  DroppedRead,
  Entry,
  Membership,
  RaftConfig,
  RaftMessage,
  ReadState,
  Snapshot,
  SoftState,
} from "../../src/raft/types.ts";
import { MemoryRaftStorage } from "../../src/storage/memory_storage.ts";
import type { RaftPersistentState } from "../../src/storage/raft_storage.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a string command. */
export function cmd(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A small seeded PRNG (mulberry32) returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The bootstrap snapshot of a new cluster with `voters`. */
export function bootstrapSnapshot(voters: readonly string[]): Snapshot {
  return {
    meta: { index: 0, term: 0, membership: { voters, learners: [], removed: [] } },
    data: new Uint8Array(),
  };
}

/** Per-node options of the harness. */
export type NodeOptions = Partial<Omit<RaftConfig, "id" | "random">>;

/** What the harness recorded for one node. */
export interface NodeRecord {
  /** The application state: the commands of the applied `normal` entries, in order. */
  state: string[];
  /** Every committed entry handed out, in order (all types). */
  applied: Entry[];
  /** Completed reads. */
  readStates: ReadState[];
  /** Dropped reads. */
  droppedReads: DroppedRead[];
  /** Soft states reported, in order. */
  softStates: SoftState[];
  /** Memberships reported, in order. */
  memberships: Membership[];
  /** Snapshots restored from the leader. */
  restored: Snapshot[];
}

/**
 * A cluster of Raft nodes under the test's control.
 *
 * @example
 * ```ts
 * const h = RaftHarness.bootstrap(["a", "b", "c"]);
 * h.elect("a");
 * h.propose("a", "x");
 * h.stabilize();
 * assert.deepEqual(h.record("c").state, ["x"]);
 * ```
 */
export class RaftHarness {
  /** The live nodes by id. */
  readonly nodes: Map<string, RaftNode> = new Map();
  /** Storage per id (survives restarts). */
  readonly storages: Map<string, MemoryRaftStorage> = new Map();
  /** Records per id. */
  readonly records: Map<string, NodeRecord> = new Map();
  /** Messages produced and not yet delivered, in order. */
  outbox: RaftMessage[] = [];
  /** Every message ever produced, in order (for trace assertions). */
  readonly sent: RaftMessage[] = [];
  private readonly cut = new Set<string>();
  private readonly options = new Map<string, NodeOptions>();
  private readonly random: () => number;

  /** Creates an empty harness; `seed` drives every node's election-timeout randomness. */
  constructor(seed = 1) {
    this.random = seededRandom(seed);
  }

  /** A new cluster of `voters`, each bootstrapped with the same membership. */
  static bootstrap(voters: readonly string[], options: NodeOptions = {}, seed = 1): RaftHarness {
    const h = new RaftHarness(seed);
    for (const id of voters) {
      h.storages.set(
        id,
        new MemoryRaftStorage(id, {
          hardState: { term: 0, vote: undefined, commit: 0 },
          snapshot: bootstrapSnapshot(voters),
          entries: [],
        }),
      );
      h.options.set(id, options);
      h.start(id);
    }
    return h;
  }

  /** Adds a node with the given persisted state (for scenarios that start from crafted logs). */
  addNode(id: string, state: RaftPersistentState, options: NodeOptions = {}): RaftNode {
    this.storages.set(id, new MemoryRaftStorage(id, state));
    this.options.set(id, options);
    return this.start(id);
  }

  /** Adds a member that joins an existing cluster (no snapshot, no entries). */
  addJoiner(id: string, options: NodeOptions = {}): RaftNode {
    this.storages.set(id, new MemoryRaftStorage(id));
    this.options.set(id, options);
    return this.start(id);
  }

  /** The node `id`. */
  node(id: string): RaftNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no live node ${id}`);
    return node;
  }

  /** What was recorded for `id`. */
  record(id: string): NodeRecord {
    const record = this.records.get(id);
    if (record === undefined) throw new Error(`no record for ${id}`);
    return record;
  }

  /** (Re)starts `id` from its storage, like a driver after a crash: app state from the snapshot. */
  start(id: string, options?: NodeOptions): RaftNode {
    if (options !== undefined) this.options.set(id, options);
    const storage = this.storages.get(id);
    if (storage === undefined) throw new Error(`no storage for ${id}`);
    const persisted = storage.loadSync();
    const random = seededRandom(Math.floor(this.random() * 2 ** 32));
    const node = new RaftNode({ id, random, ...this.options.get(id) }, persisted);
    this.nodes.set(id, node);
    const record: NodeRecord = {
      state: persisted.snapshot !== undefined ? decodeState(persisted.snapshot.data) : [],
      applied: [],
      readStates: [],
      droppedReads: [],
      softStates: [],
      memberships: [],
      restored: [],
    };
    this.records.set(id, record);
    return node;
  }

  /**
   * Crashes `id`: it disappears with its unprocessed output; its storage stays. Queued messages
   * from and to it are dropped unless `keepMessages` (then the ones to it reach it after a restart).
   */
  crash(id: string, keepMessages = false): void {
    this.nodes.delete(id);
    if (!keepMessages) this.outbox = this.outbox.filter((m) => m.to !== id && m.from !== id);
  }

  /** Crash and restart from storage. */
  restart(id: string, options?: NodeOptions): RaftNode {
    this.crash(id);
    return this.start(id, options);
  }

  /** Cuts the links between `a` and `b` (both directions). */
  disconnect(a: string, b: string): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  /** Cuts one direction only. */
  disconnectOneWay(from: string, to: string): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Cuts every link of `id`. */
  isolate(id: string): void {
    for (const other of this.storages.keys()) if (other !== id) this.disconnect(id, other);
  }

  /** Restores every link. */
  heal(): void {
    this.cut.clear();
  }

  /** True if a message from `from` to `to` would be delivered. */
  connected(from: string, to: string): boolean {
    return !this.cut.has(`${from}>${to}`);
  }

  /** Acts on the ready output of `id` (or of every live node), like a driver. */
  drain(id?: string): void {
    const ids = id === undefined ? [...this.nodes.keys()] : [id];
    for (const nodeId of ids) {
      const node = this.nodes.get(nodeId);
      if (node === undefined) continue;
      while (node.hasReady()) this.handleReady(nodeId, node);
    }
  }

  private handleReady(id: string, node: RaftNode): void {
    const storage = this.storages.get(id) as MemoryRaftStorage;
    const record = this.record(id);
    const ready = node.ready();
    if (ready.snapshot !== undefined) storage.saveSnapshot(ready.snapshot);
    if (ready.entries.length > 0) storage.append(ready.entries);
    if (ready.hardState !== undefined) storage.saveHardState(ready.hardState);
    for (const m of ready.messages) {
      this.outbox.push(m);
      this.sent.push(m);
    }
    if (ready.softState !== undefined) record.softStates.push(ready.softState);
    if (ready.membership !== undefined) record.memberships.push(ready.membership);
    if (ready.snapshot !== undefined && ready.restoreSnapshot) {
      record.restored.push(ready.snapshot);
      record.state = decodeState(ready.snapshot.data);
    }
    for (const entry of ready.committed) {
      record.applied.push(entry);
      if (entry.type === "normal") record.state.push(decoder.decode(entry.data));
    }
    record.readStates.push(...ready.readStates);
    record.droppedReads.push(...ready.droppedReads);
  }

  /** Removes and returns the queued messages that match (after draining every node). */
  take(filter: (m: RaftMessage) => boolean = () => true): RaftMessage[] {
    this.drain();
    const taken: RaftMessage[] = [];
    const kept: RaftMessage[] = [];
    for (const m of this.outbox) (filter(m) ? taken : kept).push(m);
    this.outbox = kept;
    return taken;
  }

  /** Hands `m` to its recipient (if alive and connected) and drains it. */
  deliver(m: RaftMessage): void {
    const node = this.nodes.get(m.to);
    if (node === undefined || !this.connected(m.from, m.to)) return;
    node.step(m);
    this.drain(m.to);
  }

  /** Delivers (or drops, if the link is cut) the queued messages that match; returns how many were taken. */
  deliverAll(filter: (m: RaftMessage) => boolean = () => true): number {
    const batch = this.take(filter);
    for (const m of batch) this.deliver(m);
    return batch.length;
  }

  /**
   * Delivers messages until none is left (cut links drop them); throws if that does not end
   * within `maxRounds` rounds.
   */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      if (this.deliverAll() === 0) return;
    }
    throw new Error(`cluster did not stabilize within ${maxRounds} rounds`);
  }

  /** Ticks `id` `n` times, draining after each tick. */
  tick(id: string, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.node(id).tick();
      this.drain(id);
    }
  }

  /** Ticks every live node once per round, delivering all messages after each round. */
  tickAll(rounds = 1): void {
    for (let i = 0; i < rounds; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.stabilize();
    }
  }

  /** Makes `id` campaign and delivers until quiet; asserts it became the leader. */
  elect(id: string): void {
    this.node(id).campaign();
    this.stabilize();
    if (this.node(id).role !== "leader") {
      throw new Error(`${id} did not become leader (${this.node(id).role})`);
    }
  }

  /** Proposes `text` on `id` (must be accepted). */
  propose(id: string, text: string, requestId?: string): void {
    const result = this.node(id).propose(cmd(text), requestId);
    if (result.status === "dropped") throw new Error(`proposal dropped on ${id}: ${result.reason}`);
  }

  /** The node ids that currently consider themselves leader. */
  leaders(): string[] {
    return [...this.nodes.values()].filter((n) => n.role === "leader").map((n) => n.id);
  }
}

/** Encodes a string-list application state as a snapshot payload. */
export function encodeState(state: readonly string[]): Uint8Array {
  return encoder.encode(JSON.stringify(state));
}

/** Decodes a snapshot payload made by {@linkcode encodeState} (empty bytes = empty state). */
export function decodeState(data: Uint8Array): string[] {
  if (data.byteLength === 0) return [];
  return JSON.parse(decoder.decode(data)) as string[];
}

/** A persisted state with a bootstrap snapshot of `voters` and entries of the given terms from index 1. */
export function stateWithLog(
  voters: readonly string[],
  terms: readonly number[],
  term: number,
  commit = 0,
): RaftPersistentState {
  const entries: Entry[] = terms.map((t, i) => ({
    index: i + 1,
    term: t,
    type: "normal",
    data: cmd(`e${i + 1}t${t}`),
  }));
  return { hardState: { term, vote: undefined, commit }, snapshot: bootstrapSnapshot(voters), entries };
}

/** Message filter helpers. */
export const to = (id: string) => (m: RaftMessage): boolean => m.to === id;
/** Messages from `id`. */
export const from = (id: string) => (m: RaftMessage): boolean => m.from === id;
/** Messages of one of `types`. */
export const ofType = (...types: RaftMessage["type"][]) => (m: RaftMessage): boolean =>
  types.includes(m.type);

/**
 * Three members a, b, c with a leading; ten entries written and committed while c was cut off (c is
 * still cut off), chunks of 8 bytes, `inflight` chunks at a time: a compaction on a leaves c behind it.
 */
export function leaderWithFollowerBehind(inflight: number): { h: RaftHarness; a: RaftNode } {
  const h = RaftHarness.bootstrap(["a", "b", "c"], { snapshotChunkBytes: 8, maxInflightAppends: inflight });
  h.elect("a");
  h.tickAll(1);
  h.isolate("c");
  for (let i = 0; i < 10; i++) h.propose("a", `v${i}`);
  h.stabilize();
  h.tick("a");
  h.stabilize();
  return { h, a: h.node("a") };
}
