/**
 * The replicated state of one remote map. The data lives in the application's store; what every
 * peer replicates is the queue of committed operations not yet executed against the store, the
 * log index up to which operations are executed, and the results of recent operations.
 *
 * Two kinds of commands change it, in log order on every peer:
 * - an operation (`set`, `insert`, `delete`, ...) is queued as pending under its log index;
 * - `executed { upTo, data }`, proposed by the leader after its store write succeeded, carries the
 *   outcome of every pending operation up to `upTo`; every peer then computes the operation's
 *   result and change events from it and drops it from the queue. An outcome can also say that the
 *   operation failed (see {@linkcode RemoteOpFailure}): it is dropped as executed, with no events,
 *   and its result is that failure.
 *
 * Keys and values are in their replicated form (the codec's output, or the value itself with the
 * default CBOR codec).
 *
 * @module
 */

import { decodeRemoteMark } from "./remote_map_batch.ts";
import type { ApplyContext, ReplicatedState } from "../cluster/state_machine.ts";
import { applyCommand, type CommandSpec, type CommandTable, commandTable } from "./command_spec.ts";
import { HamokError } from "../errors.ts";

/** The replicated-state kind of remote maps. */
export const REMOTE_MAP_KIND = "remote-map";

/** The operations of a remote map. */
export type RemoteMapOp = Exclude<keyof RemoteMapCommands, "executed">;

/** An operation with its arguments in replicated form; the result is its log index (its outcome comes once executed). */
type Queued<Args> = CommandSpec<Args, number>;

/**
 * The commands of a remote map state, declared once (the view proposes them, the state applies
 * them): the operations, queued until executed, and `executed`, the leader's report of a store write.
 */
export interface RemoteMapCommands {
  /** `[key, value]`. */
  set: Queued<readonly [key: unknown, value: unknown]>;
  /** `[[key, value], ...]`. */
  setAll: Queued<readonly (readonly [key: unknown, value: unknown])[]>;
  /** `[key, value]`. */
  insert: Queued<readonly [key: unknown, value: unknown]>;
  /** `[[key, value], ...]`. */
  insertAll: Queued<readonly (readonly [key: unknown, value: unknown])[]>;
  /** `[key]`. */
  delete: Queued<readonly [key: unknown]>;
  /** `[key, ...]`. */
  deleteAll: Queued<readonly unknown[]>;
  /** `[key]`. */
  remove: Queued<readonly [key: unknown]>;
  /** `[key, ...]`. */
  removeAll: Queued<readonly unknown[]>;
  /** `[key, value, expected]`. */
  updateIf: Queued<readonly [key: unknown, value: unknown, expected: unknown]>;
  /** `[key, expected]`. */
  removeIf: Queued<readonly [key: unknown, expected: unknown]>;
  /** `null`. */
  clear: Queued<null>;
  /** The outcomes (CBOR of `[index, RemoteOpOutcome][]`) of every operation up to `upTo`; whether it was new. */
  executed: CommandSpec<{ readonly upTo: number; readonly data: Uint8Array }, boolean>;
}

/** A committed operation waiting to be executed. */
export interface PendingRemoteOp {
  /** Its log index. */
  readonly index: number;
  /** The operation. */
  readonly op: RemoteMapOp;
  /** Its arguments (see {@linkcode RemoteMapArgs}). */
  readonly args: unknown;
}

/**
 * Arguments of each operation, in replicated form:
 * `set`/`insert`: `[key, value]`; `setAll`/`insertAll`: `[[key, value], ...]`;
 * `delete`/`remove`: `[key]`; `deleteAll`/`removeAll`: `[key, ...]`;
 * `updateIf`: `[key, value, expected]`; `removeIf`: `[key, expected]`; `clear`: `null`.
 */
export type RemoteMapArgs = unknown;

/**
 * Why the leader could not execute an operation, as an error crosses the wire: its code (so far
 * always `HAMOK_CODEC`: the operation's own keys or values cannot be decoded by the leader's codecs,
 * which no retry changes), its message, and the peer that found it.
 */
export type RemoteOpFailure = [code: string, message: string, peerId: string];

/**
 * What executing one operation found: the value of every key it touched just before it touched it
 * (`undefined`: absent), in argument order, and for `updateIf`/`removeIf` whether it applied. With
 * a third element, the operation failed instead: nothing was written for it (`olds` is empty).
 * Outcomes written before failures existed have at most two elements and read as they did.
 */
export type RemoteOpOutcome = [olds: unknown[], applied?: boolean, failure?: RemoteOpFailure];

/** The outcome of an operation that failed with `failure` (see {@linkcode RemoteOpOutcome}). */
export function failedOutcome(failure: RemoteOpFailure): RemoteOpOutcome {
  return [[], false, failure];
}

/** The failure an outcome (or a snapshot's result entry) carries at `at`, if it is a failure. */
function failureAt(tuple: readonly unknown[], at: number): RemoteOpFailure | undefined {
  const failure = tuple[at];
  if (failure === undefined || failure === null) return undefined;
  if (!Array.isArray(failure)) return ["HAMOK_ERROR", "the operation failed (unreadable failure)", ""];
  const [code, message, peerId] = failure as unknown[];
  return [
    typeof code === "string" ? code : "HAMOK_ERROR",
    typeof message === "string" ? message : "the operation failed",
    typeof peerId === "string" ? peerId : "",
  ];
}

/**
 * Hears every change of a {@linkcode HamokRemoteMapState} as it is applied (in log order), with keys
 * and values in replicated form. The remote map object on this peer sets one
 * ({@linkcode HamokRemoteMapState.observer}).
 */
export interface HamokRemoteMapStateObserver {
  /** A key was added. */
  inserted(key: unknown, value: unknown): void;
  /** A key's value was replaced. */
  updated(key: unknown, oldValue: unknown, newValue: unknown): void;
  /** A key was removed. */
  removed(key: unknown, oldValue: unknown): void;
  /** Every entry was removed. */
  cleared(): void;
  /** An operation was committed at `index` and waits for execution. */
  enqueued(index: number): void;
  /**
   * The operation at `index` was executed with `result`, or, with `failure`, could not be executed
   * (it counts as executed, no event fired for it, and `result` is `undefined`).
   */
  executed(index: number, result: unknown, failure?: RemoteOpFailure): void;
  /** The state was replaced by a snapshot. */
  restored(): void;
  /** A committed `executed` command could not be used. */
  failed(error: Error): void;
  /** The log beneath the state started over: operations of the old log will never be executed. */
  logRestarted?(dropped: number): void;
}

type StateImage = [
  executedIndex: number,
  pending: [index: number, op: RemoteMapOp, args: unknown][],
  // a failed operation's entry has the failure third (images made before failures have none)
  results: ([index: number, result: unknown] | [index: number, result: null, failure: RemoteOpFailure])[],
];

const DEFAULT_RESULT_WINDOW = 4096;

/**
 * The replicated part of a remote map (see the module documentation).
 *
 * @example
 * ```ts
 * const state = new HamokRemoteMapState("users");
 * state.observer = {
 *   inserted: (key, value) => console.log("inserted", key, value),
 *   updated: () => {},
 *   removed: () => {},
 *   cleared: () => {},
 *   enqueued: () => {},
 *   executed: () => {},
 *   restored: () => {},
 *   failed: (error) => console.error(error),
 * };
 * console.log(state.executedIndex, state.pendingCount);
 * ```
 */
export class HamokRemoteMapState implements ReplicatedState {
  /** The map id. */
  readonly mapId: string;
  /** The observer of changes (the remote map object on this peer), if any. */
  observer: HamokRemoteMapStateObserver | undefined = undefined;
  private pending: PendingRemoteOp[] = [];
  private pendingHead = 0;
  private executed = 0;
  private readonly results = new Map<number, unknown>();
  /** The failures among the remembered results (a subset of their indexes). */
  private readonly failures = new Map<number, RemoteOpFailure>();
  private readonly resultWindow: number;

  /** Creates an empty state remembering the results of the last `resultWindow` operations. */
  constructor(mapId: string, resultWindow: number = DEFAULT_RESULT_WINDOW) {
    this.mapId = mapId;
    this.resultWindow = resultWindow;
  }

  /** Log index up to which every operation has been executed against the store. */
  get executedIndex(): number {
    return this.executed;
  }

  /** Number of committed operations not executed yet. */
  get pendingCount(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Log index of the last pending operation, or `executedIndex` if none is pending. */
  get lastPendingIndex(): number {
    return this.pendingCount === 0 ? this.executed : this.pending[this.pending.length - 1]!.index;
  }

  /** Up to `max` pending operations, oldest first. */
  pendingBatch(max: number): PendingRemoteOp[] {
    const end = Math.min(this.pending.length, this.pendingHead + max);
    return this.pending.slice(this.pendingHead, end);
  }

  /**
   * Whether the result of the operation at `index` is known, and the result (`undefined` for an
   * operation that failed: see {@linkcode failureOf}).
   */
  resultOf(index: number): { readonly known: boolean; readonly result: unknown } {
    if (!this.results.has(index)) return { known: false, result: undefined };
    return { known: true, result: this.results.get(index) };
  }

  /** Why the operation at `index` failed, if its result is known and it failed. */
  failureOf(index: number): RemoteOpFailure | undefined {
    return this.failures.get(index);
  }

  /** The applying side of {@linkcode RemoteMapCommands}. */
  static readonly #commands: CommandTable<HamokRemoteMapState> = commandTable<
    RemoteMapCommands,
    HamokRemoteMapState
  >({
    set: (s, args, ctx) => s.#enqueue("set", args, ctx),
    setAll: (s, args, ctx) => s.#enqueue("setAll", args, ctx),
    insert: (s, args, ctx) => s.#enqueue("insert", args, ctx),
    insertAll: (s, args, ctx) => s.#enqueue("insertAll", args, ctx),
    delete: (s, args, ctx) => s.#enqueue("delete", args, ctx),
    deleteAll: (s, args, ctx) => s.#enqueue("deleteAll", args, ctx),
    remove: (s, args, ctx) => s.#enqueue("remove", args, ctx),
    removeAll: (s, args, ctx) => s.#enqueue("removeAll", args, ctx),
    updateIf: (s, args, ctx) => s.#enqueue("updateIf", args, ctx),
    removeIf: (s, args, ctx) => s.#enqueue("removeIf", args, ctx),
    clear: (s, args, ctx) => s.#enqueue("clear", args, ctx),
    executed: (s, args, ctx) => s.#applyExecuted(args as { upTo: number; data: Uint8Array }, ctx.index),
  });

  /** @internal Applies a committed command (see {@linkcode RemoteMapCommands}). */
  apply(op: string, args: unknown, ctx: ApplyContext): unknown {
    return applyCommand(HamokRemoteMapState.#commands, this, op, args, ctx);
  }

  #enqueue(op: RemoteMapOp, args: unknown, ctx: ApplyContext): number {
    this.pending.push({ index: ctx.index, op, args });
    this.observer?.enqueued(ctx.index);
    return ctx.index;
  }

  /** @internal Remote maps do not depend on members. */
  memberRemoved(): void {}

  /**
   * @internal The log starts over beneath this state (its peer bootstraps a new cluster on it): the
   * executed index and the pending operations belong to the old log, whose indices the new one reuses.
   * The pending operations are dropped (their proposers' cluster is gone); the store keeps its data
   * and its mark, which the new cluster's leader finds is not from its log.
   */
  logRestarted(): void {
    const dropped = this.pendingCount;
    this.pending = [];
    this.pendingHead = 0;
    this.executed = 0;
    this.results.clear();
    this.failures.clear();
    this.observer?.logRestarted?.(dropped);
  }

  /** @internal */
  snapshot(): unknown {
    const pending: StateImage[1] = [];
    for (let i = this.pendingHead; i < this.pending.length; i++) {
      const p = this.pending[i]!; // live slots from pendingHead on
      pending.push([p.index, p.op, p.args]);
    }
    const results: StateImage[2] = [];
    for (const [index, result] of this.results) {
      const failure = this.failures.get(index);
      results.push(failure === undefined ? [index, result] : [index, null, failure]);
    }
    const image: StateImage = [this.executed, pending, results];
    return image;
  }

  /** @internal */
  restore(image: unknown): void {
    const [executed, pending, results] = image as StateImage;
    this.executed = executed;
    this.pending = pending.map(([index, op, args]) => ({ index, op, args }));
    this.pendingHead = 0;
    this.results.clear();
    this.failures.clear();
    for (const entry of results) {
      const failure = failureAt(entry, 2);
      this.results.set(entry[0], failure === undefined ? entry[1] : undefined);
      if (failure !== undefined) this.failures.set(entry[0], failure);
    }
    this.observer?.restored();
  }

  #applyExecuted(args: { upTo: number; data: Uint8Array }, index: number): boolean {
    const upTo = args?.upTo;
    if (typeof upTo !== "number" || upTo <= this.executed) return false;
    if (upTo >= index) {
      // A mark can only name operations logged before the command that reports it: this one comes
      // from another log (a store shared with another cluster, or one that outlived the cluster's
      // storage). Taking it would skip this log's own operations up to it for good.
      this.observer?.failed(
        new HamokError(
          `remote map '${this.mapId}': the store's mark ${upTo} is not from this cluster's log (reported at ${index}); the store was written by another cluster`,
        ),
      );
      return false;
    }
    let outcomes: Map<number, RemoteOpOutcome>;
    try {
      outcomes = new Map(decodeRemoteMark(args.data).outcomes);
    } catch (error) {
      this.observer?.failed(
        new HamokError(`remote map '${this.mapId}': unreadable execution outcomes`, "HAMOK_CODEC", {
          cause: error,
        }),
      );
      return false;
    }
    // Slots from pendingHead on are live; the ones before it were released.
    while (this.pendingHead < this.pending.length && this.pending[this.pendingHead]!.index <= upTo) {
      const pending = this.pending[this.pendingHead]!;
      this.pending[this.pendingHead] = undefined as unknown as PendingRemoteOp;
      this.pendingHead++;
      const outcome = outcomes.get(pending.index);
      let result: unknown;
      let failure: RemoteOpFailure | undefined;
      if (outcome === undefined) {
        this.observer?.failed(
          new HamokError(
            `remote map '${this.mapId}': no outcome for operation ${pending.index}; its result is unknown`,
          ),
        );
      } else {
        failure = Array.isArray(outcome) ? failureAt(outcome, 2) : undefined;
        // a failed operation wrote nothing: no events, its failure is its result
        if (failure === undefined) result = this.#settle(pending, outcome);
      }
      this.#remember(pending.index, result, failure);
      if (failure === undefined) this.observer?.executed(pending.index, result);
      else this.observer?.executed(pending.index, undefined, failure);
    }
    if (this.pendingHead === this.pending.length) {
      this.pending = [];
      this.pendingHead = 0;
    } else if (this.pendingHead >= 1024 && this.pendingHead * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    this.executed = upTo;
    return true;
  }

  /** Emits the change events of one executed operation and returns its result (replicated form). */
  #settle(pending: PendingRemoteOp, outcome: RemoteOpOutcome): unknown {
    const [olds, applied] = outcome;
    const args = pending.args as unknown[];
    switch (pending.op) {
      case "set": {
        this.#changed(args[0], olds[0], args[1]);
        return olds[0];
      }
      case "setAll": {
        const updated: [unknown, unknown][] = [];
        const entries = args as [unknown, unknown][];
        let i = 0;
        for (const [key, value] of entries) {
          const old = olds[i++];
          this.#changed(key, old, value);
          if (old !== undefined) updated.push([key, old]);
        }
        return updated;
      }
      case "insert": {
        if (olds[0] === undefined) this.observer?.inserted(args[0], args[1]);
        return olds[0];
      }
      case "insertAll": {
        const existing: [unknown, unknown][] = [];
        const entries = args as [unknown, unknown][];
        let i = 0;
        for (const [key, value] of entries) {
          const old = olds[i++];
          if (old === undefined) this.observer?.inserted(key, value);
          else existing.push([key, old]);
        }
        return existing;
      }
      case "delete":
      case "remove": {
        if (olds[0] === undefined) return false;
        this.observer?.removed(args[0], olds[0]);
        return true;
      }
      case "deleteAll": {
        const deleted: unknown[] = [];
        for (let i = 0; i < args.length; i++) {
          if (olds[i] === undefined) continue;
          this.observer?.removed(args[i], olds[i]);
          deleted.push(args[i]);
        }
        return deleted;
      }
      case "removeAll": {
        const removed: [unknown, unknown][] = [];
        for (let i = 0; i < args.length; i++) {
          if (olds[i] === undefined) continue;
          this.observer?.removed(args[i], olds[i]);
          removed.push([args[i], olds[i]]);
        }
        return removed;
      }
      case "updateIf": {
        if (applied === true) this.observer?.updated(args[0], olds[0], args[1]);
        return applied === true;
      }
      case "removeIf": {
        if (applied === true) this.observer?.removed(args[0], olds[0]);
        return applied === true;
      }
      case "clear":
        this.observer?.cleared();
        return undefined;
    }
  }

  #changed(key: unknown, old: unknown, value: unknown): void {
    if (old === undefined) this.observer?.inserted(key, value);
    else this.observer?.updated(key, old, value);
  }

  #remember(index: number, result: unknown, failure: RemoteOpFailure | undefined): void {
    this.results.set(index, result);
    if (failure !== undefined) this.failures.set(index, failure);
    if (this.results.size > this.resultWindow) {
      const oldest = this.results.keys().next().value as number;
      this.results.delete(oldest);
      this.failures.delete(oldest);
    }
  }
}
