/**
 * The peer's replicated state machine: the states of every collection, keyed by kind and id,
 * advanced by committed commands in log order, plus the table of recently applied request ids that
 * makes retried proposals idempotent.
 *
 * @module
 */

import { HamokConfigError } from "../errors.ts";
import type { CborChunkWriter } from "../codec/cbor_writer.ts";
import { encodeCbor } from "../codec/cbor.ts";

/** Where a command stands in the log when it is applied. */
export interface ApplyContext {
  /** Log index of the entry. */
  readonly index: number;
  /** Request id of the entry (unique per proposal). */
  readonly requestId: string | undefined;
  /** Peer id of the proposer. */
  readonly proposerPeerId: string;
}

/** A command in the replicated log, addressed to one collection state. */
export interface Command {
  /** Collection kind (`emitter`, `map`, ...). */
  readonly kind: string;
  /** Collection id. */
  readonly id: string;
  /** Operation name, interpreted by the collection state. */
  readonly op: string;
  /** Operation arguments (CBOR-encodable). */
  readonly args: unknown;
  /** Peer id of the proposer. */
  readonly peerId: string;
}

/**
 * The replicated state of one collection. Every peer holds one per (kind, id) that appears in the
 * log, whether or not the application has created the collection object on that peer, so a
 * collection created late sees the full state at once.
 */
export interface ReplicatedState {
  /** Applies one committed command and returns the result the proposer receives. Must be deterministic. */
  apply(op: string, args: unknown, ctx: ApplyContext): unknown;
  /** Called, in log order on every peer, when a member leaves the cluster. */
  memberRemoved(peerId: string, ctx: ApplyContext): void;
  /** A CBOR-encodable image of the state. */
  snapshot(): unknown;
  /** Replaces the state with a snapshot image. */
  restore(image: unknown): void;
}

/**
 * @internal The image of a state as it was when the view was taken, written out a slice at a time
 * while the state goes on changing (a state that offers `snapshotView()` has one; see
 * {@linkcode StateMachine.snapshotParts}).
 */
export interface SnapshotView {
  /** Writes up to about `maxEntries` more entries of the image into `out`; true once it is complete. */
  writeTo(out: CborChunkWriter, maxEntries: number): boolean;
  /** Stops the view (it is complete, or no longer wanted): the state no longer keeps anything for it. */
  release(): void;
  /** The size of the image in bytes, if the state knows it (the writer then reserves it at once). */
  readonly byteLength?: number;
}

/** @internal The parts of a {@linkcode StateMachineImage} fixed at one moment, to be written out later. */
export interface StateMachineImageParts {
  /** `[kind, id, view or CBOR of the image]` of every collection state. */
  readonly states: readonly (readonly [kind: string, id: string, image: SnapshotView | Uint8Array])[];
  /** The `applied` list (results are never changed after they are applied, so it can be encoded later). */
  readonly applied: readonly (readonly [requestId: string, result: unknown])[];
  /** The cluster's identity. */
  readonly uid: string | undefined;
}

/** Creates an empty state for a collection id. */
export type ReplicatedStateFactory = (id: string) => ReplicatedState;

/** Image of the whole state machine (the data of a Raft snapshot). */
export interface StateMachineImage {
  /** `[kind, id, image]` of every collection state. */
  readonly states: readonly (readonly [kind: string, id: string, image: unknown])[];
  /** `[requestId, result]` of the most recently applied requests (the dedup window). */
  readonly applied: readonly (readonly [requestId: string, result: unknown])[];
  /** The cluster's identity, made when it was bootstrapped. */
  readonly uid?: string;
}

/** Outcome of applying one command. */
export interface ApplyOutcome {
  /** The result of the command (or of its first application, for a duplicate). */
  readonly result: unknown;
  /** True if the request id had already been applied and the command was skipped. */
  readonly duplicate: boolean;
}

const DEFAULT_DEDUP_WINDOW = 16384;

/**
 * Holds every collection state and applies committed commands to them.
 *
 * @example
 * ```ts
 * import { StateMachine } from "./state_machine.ts";
 * const sm = new StateMachine();
 * sm.registerKind("counter", () => {
 *   let n = 0;
 *   return { apply: () => ++n, memberRemoved() {}, snapshot: () => n, restore: (v) => { n = v as number; } };
 * });
 * sm.apply({ kind: "counter", id: "c", op: "inc", args: null, peerId: "p" }, { index: 1, requestId: "r1", proposerPeerId: "p" });
 * ```
 */
export class StateMachine {
  /** The cluster's identity (made at bootstrap, carried in every snapshot); `undefined` until known. */
  clusterUid: string | undefined;
  readonly #factories = new Map<string, ReplicatedStateFactory>();
  readonly #states = new Map<string, Map<string, ReplicatedState>>();
  readonly #applied = new Map<string, unknown>();
  readonly #dedupWindow: number;
  /** Request ids in the order they were applied: a ring buffer of `dedupWindow` slots. */
  readonly #order: (string | undefined)[];
  #next = 0;

  /** Creates an empty state machine remembering the last `dedupWindow` request ids. */
  constructor(dedupWindow: number = DEFAULT_DEDUP_WINDOW) {
    this.#dedupWindow = dedupWindow;
    this.#order = new Array(dedupWindow);
  }

  /** Registers the factory of a collection kind. */
  registerKind(kind: string, factory: ReplicatedStateFactory): void {
    this.#factories.set(kind, factory);
  }

  /** The state of (kind, id), created empty if it does not exist yet. */
  state(kind: string, id: string): ReplicatedState {
    let byId = this.#states.get(kind);
    if (byId === undefined) {
      byId = new Map();
      this.#states.set(kind, byId);
    }
    let state = byId.get(id);
    if (state === undefined) {
      const factory = this.#factories.get(kind);
      if (factory === undefined) {
        throw new HamokConfigError(`no replicated state kind '${kind}' is registered`);
      }
      state = factory(id);
      byId.set(id, state);
    }
    return state;
  }

  /** Every state, as `[kind, id, state]`. */
  *states(): IterableIterator<[kind: string, id: string, state: ReplicatedState]> {
    for (const [kind, byId] of this.#states) {
      for (const [id, state] of byId) yield [kind, id, state];
    }
  }

  /** Applies a committed command; a request id seen before is skipped and its first result returned. */
  apply(command: Command, ctx: ApplyContext): ApplyOutcome {
    const requestId = ctx.requestId;
    if (requestId !== undefined && this.#applied.has(requestId)) {
      return { result: this.#applied.get(requestId), duplicate: true };
    }
    let result: unknown;
    if (this.#factories.has(command.kind)) {
      result = this.state(command.kind, command.id).apply(command.op, command.args, ctx);
    }
    if (requestId !== undefined) this.#remember(requestId, result);
    return { result, duplicate: false };
  }

  /** Tells every state that a member left, in log order. */
  memberRemoved(peerId: string, ctx: ApplyContext): void {
    for (const byId of this.#states.values()) {
      for (const state of byId.values()) state.memberRemoved(peerId, ctx);
    }
  }

  /** An image of every state and of the dedup window (`withStates: false`: of the window only). */
  snapshot(withStates = true): StateMachineImage {
    const states: [string, string, unknown][] = [];
    for (const [kind, byId] of withStates ? this.#states : []) {
      for (const [id, state] of byId) states.push([kind, id, state.snapshot()]);
    }
    const applied: [string, unknown][] = [];
    const n = this.#dedupWindow;
    for (let i = 0; i < n; i++) {
      const requestId = this.#order[(this.#next + i) % n];
      if (requestId !== undefined) applied.push([requestId, this.#applied.get(requestId)]);
    }
    return this.clusterUid === undefined ? { states, applied } : { states, applied, uid: this.clusterUid };
  }

  /**
   * The image of {@linkcode snapshot} fixed now and written out later (by a `SnapshotJob`): states
   * with a `snapshotView()` give a view (O(1) now, written out in slices), the others are encoded at
   * once; the dedup window is copied (its results never change) and encoded in slices.
   */
  snapshotParts(): StateMachineImageParts {
    const states: [string, string, SnapshotView | Uint8Array][] = [];
    for (const [kind, byId] of this.#states) {
      for (const [id, state] of byId) {
        const viewable = state as ReplicatedState & { snapshotView?: () => SnapshotView };
        states.push([
          kind,
          id,
          typeof viewable.snapshotView === "function"
            ? viewable.snapshotView()
            : encodeCbor(state.snapshot()),
        ]);
      }
    }
    return { states, applied: this.snapshot(false).applied, uid: this.clusterUid };
  }

  /** Replaces every state with the ones in `image` (states not in it are emptied). */
  restore(image: StateMachineImage): void {
    const present = new Set<string>();
    for (const [kind, id, stateImage] of image.states) {
      if (!this.#factories.has(kind)) continue;
      this.state(kind, id).restore(stateImage);
      present.add(`${kind}\u0000${id}`);
    }
    for (const [kind, byId] of this.#states) {
      const empty = this.#factories.get(kind);
      if (empty === undefined) continue;
      for (const [id, state] of byId) {
        if (!present.has(`${kind}\u0000${id}`)) state.restore(empty(id).snapshot());
      }
    }
    this.#applied.clear();
    this.#order.fill(undefined);
    this.#next = 0;
    for (const [requestId, result] of image.applied) this.#remember(requestId, result);
    if (typeof image.uid === "string") this.clusterUid = image.uid;
  }

  #remember(requestId: string, result: unknown): void {
    const slot = this.#next;
    const evicted = this.#order[slot];
    if (evicted !== undefined) this.#applied.delete(evicted);
    this.#order[slot] = requestId;
    this.#next = (slot + 1) % this.#dedupWindow;
    this.#applied.set(requestId, result);
  }
}
