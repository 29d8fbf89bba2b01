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
import { CborReader } from "../codec/cbor_reader.ts";
import { DedupWindow, fingerprintWithOp, targetFingerprint } from "./dedup_window.ts";

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
  /**
   * The log beneath the state starts over at index 1 (this peer bootstraps a new cluster with its
   * states as the new cluster's base): a state that keeps log indices forgets the old log's.
   */
  logRestarted?(): void;
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

/**
 * @internal Builds the content of a state from its snapshot image read a slice at a time (a state
 * that offers `restoreBuilder()` has one; see {@linkcode StateMachine.restoreJob}). The state is
 * unchanged until {@linkcode commit}.
 */
export interface RestoreBuilder {
  /** Reads up to about `maxEntries` more entries of the state's image item; true once it is read whole. */
  readFrom(reader: CborReader, maxEntries: number): boolean;
  /** Swaps the built content in (O(1) or close). */
  commit(): void;
  /** After the commit: tells the state's observer of up to about `maxEntries` changes; true once done. */
  notify(maxEntries: number): boolean;
}

/** @internal The parts of a {@linkcode StateMachineImage} fixed at one moment, to be written out later. */
export interface StateMachineImageParts {
  /** `[kind, id, view or CBOR of the image]` of every collection state. */
  readonly states: readonly (readonly [kind: string, id: string, image: SnapshotView | Uint8Array])[];
  /**
   * The `applied` list as the window holds it: the results themselves, not their images
   * ({@linkcode imageOfResult}), which the writer makes as it encodes them. A result never changes
   * after it is applied, so both can wait; taking the list costs only copying 16,384 references
   * (making the images of a full window of map results took 10-25 ms at once). `mark`: the
   * command's fingerprint (0: not known).
   */
  readonly applied: readonly (readonly [requestId: string, result: unknown, mark: number])[];
  /** The cluster's identity. */
  readonly uid: string | undefined;
}

/** Creates an empty state for a collection id. */
export type ReplicatedStateFactory = (id: string) => ReplicatedState;

/** Image of the whole state machine (the data of a Raft snapshot). */
export interface StateMachineImage {
  /** `[kind, id, image]` of every collection state. */
  readonly states: readonly (readonly [kind: string, id: string, image: unknown])[];
  /**
   * `[requestId, result]` of the most recently applied requests (the dedup window), each with the
   * fingerprint of its command as a third element when known (an image of an older version has none).
   */
  readonly applied: readonly AppliedImage[];
  /** The cluster's identity, made when it was bootstrapped. */
  readonly uid?: string;
}

/**
 * One request of the dedup window in an image: its id, its result and, when known (not 0), the
 * fingerprint of its command ({@linkcode fingerprintWithOp}), so that a request id used again for
 * another command is refused after a restore too. A reader that knows no fingerprints ignores it.
 */
export type AppliedImage = readonly [requestId: string, result: unknown, mark?: number];

/** The fingerprint an image names for a request, if it is one (else 0: not known). */
export function markOfImage(mark: unknown): number {
  return typeof mark === "number" && Number.isInteger(mark) && mark > 0 && mark <= 0x3fffffff ? mark : 0;
}

/** The image of one request of the dedup window (its fingerprint only when known). */
export function appliedImage(requestId: string, result: unknown, mark: number): AppliedImage {
  return mark === 0 ? [requestId, imageOfResult(result)] : [requestId, imageOfResult(result), mark];
}

/** Outcome of applying one command. */
export interface ApplyOutcome {
  /** The result of the command (or of its first application, for a duplicate). */
  readonly result: unknown;
  /** True if the request id had already been applied and the command was skipped. */
  readonly duplicate: boolean;
  /** True when the request id was applied before for another command (kind, id or op): not applied. */
  readonly reused?: boolean;
}

const DEFAULT_DEDUP_WINDOW = 16384;

/**
 * @internal The key of the method by which a result that is not a plain value (one whose parts are
 * made when first read, say) gives the plain, CBOR-encodable value it stands for. The dedup window
 * is written into snapshots through it; a result without it is written as it is.
 */
export const RESULT_IMAGE: unique symbol = Symbol("hamok.resultImage");

/** @internal A result as it is written into a snapshot (see {@linkcode RESULT_IMAGE}). */
export function imageOfResult(result: unknown): unknown {
  if (typeof result !== "object" || result === null) return result;
  const image = (result as { [RESULT_IMAGE]?: () => unknown })[RESULT_IMAGE];
  return typeof image === "function" ? image.call(result) : result;
}

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
  /** The state the last command went to (states are never replaced): most commands go to the same. */
  #lastKind = "";
  #lastId = "";
  #lastState: ReplicatedState | undefined = undefined;
  /** The request ids last applied, with their results. */
  readonly #applied: DedupWindow;
  /** The target of the last fingerprint and its (kind, id) part (see `apply`). */
  #markKind: string | undefined;
  #markId: string | undefined;
  #markTarget = 0;

  /** Creates an empty state machine remembering the last `dedupWindow` request ids. */
  constructor(dedupWindow: number = DEFAULT_DEDUP_WINDOW) {
    this.#applied = new DedupWindow(dedupWindow);
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

  /** The state of (kind, id) if it exists (never creates one). */
  existing(kind: string, id: string): ReplicatedState | undefined {
    return this.#states.get(kind)?.get(id);
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
    let mark = 0;
    if (requestId !== undefined) {
      // the (kind, id) part is kept for the last target, as the state is: runs of one collection's
      // commands hash only their op
      if (command.id !== this.#markId || command.kind !== this.#markKind) {
        this.#markKind = command.kind;
        this.#markId = command.id;
        this.#markTarget = targetFingerprint(command.kind, command.id);
      }
      mark = fingerprintWithOp(this.#markTarget, command.op);
      const seen = this.#applied.find(requestId);
      if (seen >= 0) {
        const known = this.#applied.markAt(seen);
        // the same id for another command (another collection or operation): neither applied nor
        // answered with the other command's result. A window restored from an image of an older
        // version knows no marks.
        if (known !== 0 && known !== mark) return { result: undefined, duplicate: true, reused: true };
        return { result: this.#applied.resultAt(seen), duplicate: true };
      }
    }
    let result: unknown;
    let state = this.#lastState;
    if (command.id !== this.#lastId || command.kind !== this.#lastKind || state === undefined) {
      state = this.#factories.has(command.kind) ? this.state(command.kind, command.id) : undefined;
      if (state !== undefined) {
        this.#lastKind = command.kind;
        this.#lastId = command.id;
        this.#lastState = state;
      }
    }
    if (state !== undefined) result = state.apply(command.op, command.args, ctx);
    if (requestId !== undefined) this.#applied.remember(requestId, result, mark);
    return { result, duplicate: false };
  }

  /** Tells every state that a member left, in log order. */
  memberRemoved(peerId: string, ctx: ApplyContext): void {
    for (const byId of this.#states.values()) {
      for (const state of byId.values()) state.memberRemoved(peerId, ctx);
    }
  }

  /** Tells every state that the log beneath it starts over (see {@linkcode ReplicatedState.logRestarted}). */
  logRestarted(): void {
    for (const byId of this.#states.values()) {
      for (const state of byId.values()) state.logRestarted?.();
    }
  }

  /** An image of every state and of the dedup window (`withStates: false`: of the window only). */
  snapshot(withStates = true): StateMachineImage {
    const states: [string, string, unknown][] = [];
    for (const [kind, byId] of withStates ? this.#states : []) {
      for (const [id, state] of byId) states.push([kind, id, state.snapshot()]);
    }
    const applied: AppliedImage[] = [];
    for (const [requestId, result, mark] of this.#applied.pairs()) {
      applied.push(appliedImage(requestId, result, mark));
    }
    return this.clusterUid === undefined ? { states, applied } : { states, applied, uid: this.clusterUid };
  }

  /**
   * The image of {@linkcode snapshot} fixed now and written out later (by a `SnapshotJob`): states
   * with a `snapshotView()` give a view (O(1) now, written out in slices), the others are encoded at
   * once; the dedup window's pairs are copied (its results never change) and their images are made
   * and encoded in slices.
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
    return { states, applied: this.#applied.pairs(), uid: this.clusterUid };
  }

  /**
   * A restore from the CBOR bytes of an image that does not pause the peer: {@linkcode RestoreJob.step}
   * decodes a bounded part of it per call (states with a `restoreBuilder()` entry by entry, the others
   * one state at a time), and the last step swaps everything in at once, so that nothing ever sees a
   * half-restored state; until then the states are as they were. Commands must not be applied
   * meanwhile. The outcome is that of {@linkcode restore} with the decoded image.
   */
  restoreJob(data: Uint8Array): RestoreJob {
    return new RestoreJob(data, {
      known: (kind) => this.#factories.has(kind),
      state: (kind, id) => this.state(kind, id),
      install: (present, applied, uid) => this.#install(present, applied, uid),
    });
  }

  /** Replaces every state with the ones in `image` (states not in it are emptied). */
  restore(image: StateMachineImage): void {
    const present = new Set<string>();
    for (const [kind, id, stateImage] of image.states) {
      if (!this.#factories.has(kind)) continue;
      this.state(kind, id).restore(stateImage);
      present.add(`${kind}\u0000${id}`);
    }
    this.#install(present, image.applied, typeof image.uid === "string" ? image.uid : undefined);
  }

  /**
   * The last step of a restore: empties the states the image did not hold (`present` names those it
   * did, as `kind\u0000id`) and takes its dedup window and cluster identity.
   */
  #install(
    present: ReadonlySet<string>,
    applied: Iterable<AppliedImage>,
    uid: string | undefined,
  ): void {
    for (const [kind, byId] of this.#states) {
      const empty = this.#factories.get(kind);
      if (empty === undefined) continue;
      for (const [id, state] of byId) {
        if (!present.has(`${kind}\u0000${id}`)) state.restore(empty(id).snapshot());
      }
    }
    this.#applied.clear();
    for (const [requestId, result, mark] of applied) {
      if (this.#applied.find(requestId) < 0) this.#applied.remember(requestId, result, markOfImage(mark));
    }
    if (uid !== undefined) this.clusterUid = uid;
  }
}

/** Entries a restore step reads (a map entry costs 1-3 µs: a step stays around a millisecond). */
const RESTORE_ENTRIES_PER_STEP = 512;
/** Pairs of the dedup window a restore step decodes. */
const RESTORE_APPLIED_PER_STEP = 512;

/** What a {@linkcode RestoreJob} needs of its state machine. */
interface RestoreTarget {
  known(kind: string): boolean;
  state(kind: string, id: string): ReplicatedState;
  install(present: Set<string>, applied: readonly AppliedImage[], uid: string | undefined): void;
}

/**
 * @internal A restore of a state machine from the CBOR bytes of its image, step by step (made by
 * {@linkcode StateMachine.restoreJob}). A step that throws (bytes that are not an image) leaves every
 * state as it was.
 */
export class RestoreJob {
  readonly #r: CborReader;
  readonly #target: RestoreTarget;
  /** Pairs of the top-level map still to read (-1: not started). */
  #pairs = -1;
  /** States of the `states` array still to read (-1: not in it). */
  #states = -1;
  #builder: RestoreBuilder | undefined = undefined;
  readonly #builders: RestoreBuilder[] = [];
  readonly #atOnce: [ReplicatedState, unknown][] = [];
  readonly #present = new Set<string>();
  /** Pairs of the `applied` array still to read (-1: not in it). */
  #appliedLeft = -1;
  readonly #applied: AppliedImage[] = [];
  #uid: string | undefined = undefined;
  #committed = false;
  #notified = 0;
  #done = false;

  /** Reads nothing yet. */
  constructor(data: Uint8Array, target: RestoreTarget) {
    this.#r = new CborReader(data);
    this.#target = target;
  }

  /** Does a bounded amount of work; true once the restore is complete (committed and told). */
  step(): boolean {
    if (this.#done) return true;
    if (this.#committed) return this.#notify();
    const r = this.#r;
    if (this.#pairs < 0) this.#pairs = r.mapLength();
    if (this.#builder !== undefined) {
      if (!this.#builder.readFrom(r, RESTORE_ENTRIES_PER_STEP)) return false;
      this.#builders.push(this.#builder);
      this.#builder = undefined;
      return false;
    }
    if (this.#states > 0) {
      this.#states--;
      if (r.arrayLength() !== 3) throw new TypeError("snapshot image: a state is not [kind, id, image]");
      const kind = r.text();
      const id = r.text();
      if (!this.#target.known(kind)) {
        r.skip();
        return false;
      }
      const state = this.#target.state(kind, id);
      this.#present.add(`${kind}\u0000${id}`);
      const buildable = state as ReplicatedState & { restoreBuilder?: () => RestoreBuilder };
      if (typeof buildable.restoreBuilder === "function") this.#builder = buildable.restoreBuilder();
      else this.#atOnce.push([state, r.value()]);
      return false;
    }
    this.#states = -1;
    if (this.#appliedLeft > 0) {
      const stop = Math.max(0, this.#appliedLeft - RESTORE_APPLIED_PER_STEP);
      for (; this.#appliedLeft > stop; this.#appliedLeft--) {
        const pair = r.value();
        if (Array.isArray(pair) && typeof pair[0] === "string") {
          this.#applied.push([pair[0], pair[1], markOfImage(pair[2])]);
        }
      }
      return false;
    }
    this.#appliedLeft = -1;
    if (this.#pairs > 0) {
      this.#pairs--;
      const major = r.peekMajor();
      const key = major === 3 ? r.text() : (r.skip(), "");
      if (key === "states") {
        if (r.peekMajor() === 4) this.#states = r.arrayLength();
        else r.skip();
      } else if (key === "applied") {
        if (r.peekMajor() === 4) this.#appliedLeft = r.arrayLength();
        else r.skip();
      } else if (key === "uid") {
        const uid = r.value();
        if (typeof uid === "string") this.#uid = uid;
      } else r.skip();
      return false;
    }
    if (!r.done) throw new TypeError("snapshot image: bytes after the image");
    // everything is read: swap it all in at once
    for (const builder of this.#builders) builder.commit();
    for (const [state, image] of this.#atOnce) state.restore(image);
    this.#target.install(this.#present, this.#applied, this.#uid);
    this.#committed = true;
    return this.#notify();
  }

  #notify(): boolean {
    const builders = this.#builders;
    while (this.#notified < builders.length) {
      if (!builders[this.#notified]!.notify(RESTORE_ENTRIES_PER_STEP)) return false;
      this.#notified++;
    }
    this.#done = true;
    return true;
  }
}
