/**
 * The leader's planning of one remote-map batch: it reads what the batch touches from the store, runs
 * the operations in log order on an overlay of those values, and builds the one store write (with the
 * mark that carries every operation's outcome). Kept apart from the view (`HamokRemoteMap`),
 * which drives it.
 *
 * An operation whose own keys or values the leader's codecs cannot decode can never be executed (its
 * data is in the log for good): the planner fails it instead of throwing, so it does not hold up the
 * operations after it. Its outcome in the mark says so, and every peer settles it as failed.
 *
 * @module
 */

import { decodeCbor, encodeCbor, messageOf } from "../codec/cbor.ts";
import { HamokCodecError, HamokConfigError, type HamokError } from "../errors.ts";
import { failedOutcome, type PendingRemoteOp, type RemoteOpOutcome } from "./remote_map_state.ts";
import { type HamokRemoteStoreBatch, identityOf } from "./remote_store.ts";

/** What the planner needs of the view: the store read and the codecs (one object per view). */
export interface RemoteBatchIo<K, V> {
  /** The store's values of `keys` (undefined: absent), in order. */
  getMany(keys: readonly K[]): Promise<readonly (V | undefined)[]>;
  /** A wire key decoded. */
  decodeKey(wire: unknown): K;
  /** A wire value decoded. */
  decodeValue(wire: unknown): V;
  /** A value as it travels on the wire. */
  wireValue(value: V): unknown;
  /** Whether a current wire value equals an expected one (for updateIf and removeIf). */
  same(current: unknown, expected: unknown): boolean;
  /** This peer's id (named in the failures it records). */
  localPeerId(): string;
}

/** A planned batch: the store write, and the operations that failed (not part of the write's changes). */
export interface RemoteBatchPlan<K, V> {
  /** The write: the changes of the operations that could run, and the mark with every outcome. */
  readonly write: HamokRemoteStoreBatch<K, V>;
  /**
   * The operations that could not be executed, each with why (their outcome is failed): their own
   * data could not be decoded, the store's value of a key they touch could not be encoded, or the
   * map's `equalValues` threw on their values.
   */
  readonly failed: readonly (readonly [op: PendingRemoteOp, error: HamokError])[];
}

interface Slot {
  readonly wireKey: unknown;
  value: unknown;
}

/**
 * What a store mark's bytes hold: the outcomes of the operations the write executed, and the identity
 * of the cluster whose log the mark's index counts (absent in marks written before it was recorded).
 * A leader confirms only a mark of its own cluster; a mark of another (an earlier cluster on the same
 * database, every instance restarted without storage) is where its first write takes over the store.
 */
export interface RemoteMarkContent {
  readonly clusterUid: string | undefined;
  readonly outcomes: [number, RemoteOpOutcome][];
}

/** Encodes a mark's bytes (see {@linkcode RemoteMarkContent}). */
export function encodeRemoteMark(
  clusterUid: string | undefined,
  outcomes: [number, RemoteOpOutcome][],
): Uint8Array {
  return encodeCbor(clusterUid === undefined ? outcomes : { c: clusterUid, o: outcomes });
}

/** Decodes a mark's bytes; throws on bytes that are neither form. */
export function decodeRemoteMark(data: Uint8Array): RemoteMarkContent {
  const decoded = decodeCbor(data) as unknown;
  if (Array.isArray(decoded)) {
    return { clusterUid: undefined, outcomes: decoded as [number, RemoteOpOutcome][] };
  }
  const tagged = decoded as { c?: unknown; o?: unknown } | null;
  if (
    typeof tagged === "object" && tagged !== null && typeof tagged.c === "string" && Array.isArray(tagged.o)
  ) {
    return { clusterUid: tagged.c, outcomes: tagged.o as [number, RemoteOpOutcome][] };
  }
  throw new TypeError("not a remote map mark");
}

/** The cluster a mark names, or `undefined` (an older mark, or bytes that are not a mark). */
export function clusterOfRemoteMark(data: Uint8Array): string | undefined {
  try {
    return decodeRemoteMark(data).clusterUid;
  } catch {
    return undefined;
  }
}

/**
 * Reads what the batch touches, runs it on an overlay, and builds the store write. An operation whose
 * own data the codecs cannot decode fails (see the module documentation); a store failure throws.
 */
export async function prepareRemoteBatch<K, V>(
  io: RemoteBatchIo<K, V>,
  batch: PendingRemoteOp[],
  markIndex: number,
  clusterUid: string | undefined,
): Promise<RemoteBatchPlan<K, V>> {
  // every key and value of the batch decoded once: keys by identity, values by their wire form
  const keys = new Map<string, K>();
  const values = new Map<unknown, V>();
  const failures = new Map<number, HamokError>();
  for (const p of batch) {
    const error = checkOperation(io, p, keys, values);
    if (error !== undefined) failures.set(p.index, error);
  }
  const toRead = new Set<string>();
  for (const p of batch) {
    if (failures.has(p.index)) continue;
    for (const wireKey of keysOf(p)) toRead.add(identityOf(wireKey));
  }
  const readIds = [...toRead];
  const stored = readIds.length === 0 ? [] : await io.getMany(readIds.map((id) => keys.get(id)!)); // all decoded above
  const base = new Map<string, unknown>();
  for (let i = 0; i < readIds.length; i++) {
    const value = stored[i];
    let wire: unknown;
    try {
      wire = value === undefined ? undefined : io.wireValue(value as V);
    } catch (error) {
      // the store holds a value the codec cannot encode: the operations that read it fail (no retry
      // would change it), the others run
      wire = new Unusable(
        new HamokCodecError(`the store's value of a key it touches cannot be encoded: ${messageOf(error)}`, {
          cause: error,
        }),
      );
    }
    base.set(readIds[i]!, wire); // i < length
  }
  let cleared = false;
  const overlay = new Map<string, Slot>();
  /** The changes of the operation being planned, moved into `overlay` once it has run whole. */
  const pending = new Map<string, Slot>();
  const read = (wireKey: unknown): unknown => {
    const id = identityOf(wireKey);
    const slot = pending.get(id) ?? overlay.get(id);
    if (slot !== undefined) return slot.value;
    const value = cleared ? undefined : base.get(id);
    if (value instanceof Unusable) throw value;
    return value;
  };
  const put = (wireKey: unknown, value: unknown): void => {
    pending.set(identityOf(wireKey), { wireKey, value });
  };
  const same = (current: unknown, expected: unknown): boolean => {
    try {
      return io.same(current, expected);
    } catch (error) {
      throw new Unusable(
        new HamokConfigError(`the map's equalValues threw: ${messageOf(error)}`, { cause: error }),
      );
    }
  };
  const outcomes: [number, RemoteOpOutcome][] = [];
  const failed: [PendingRemoteOp, HamokError][] = [];
  const fail = (p: PendingRemoteOp, failure: HamokError): void => {
    // nothing is read or written for it: its outcome is the failure
    failed.push([p, failure]);
    outcomes.push([p.index, failedOutcome([failure.code, failure.message, io.localPeerId()])]);
  };
  for (const p of batch) {
    const failure = failures.get(p.index);
    if (failure !== undefined) {
      fail(p, failure);
      continue;
    }
    const args = p.args as unknown[];
    const olds: unknown[] = [];
    let applied: boolean | undefined;
    pending.clear();
    try {
      applied = planOne(p.op, args, olds, read, put, same);
    } catch (error) {
      if (!(error instanceof Unusable)) throw error;
      failures.set(p.index, error.error);
      fail(p, error.error);
      continue;
    }
    if (p.op === "clear") {
      cleared = true;
      overlay.clear();
    }
    for (const [id, slot] of pending) overlay.set(id, slot);
    outcomes.push([p.index, applied === undefined ? [olds] : [olds, applied]]);
  }
  const deletes: K[] = [];
  const sets: [K, V][] = [];
  for (const [id, slot] of overlay) {
    const key = keys.has(id) ? keys.get(id)! : io.decodeKey(slot.wireKey);
    if (slot.value === undefined) deletes.push(key);
    else sets.push([key, values.has(slot.value) ? values.get(slot.value)! : io.decodeValue(slot.value)]);
  }
  const last = batch[batch.length - 1]!.index; // the caller never prepares an empty batch
  return {
    write: {
      expectedIndex: markIndex,
      mark: { index: last, data: encodeRemoteMark(clusterUid, outcomes) },
      clear: cleared,
      deletes,
      sets,
      // the operations executed against the store (a failed one is not: it changed nothing)
      ops: batch.filter((p) => !failures.has(p.index)).map((p) => ({ index: p.index, op: p.op })),
    },
    failed,
  };
}

/** Why one operation cannot be executed: thrown while planning it, caught for that operation alone. */
class Unusable {
  constructor(readonly error: HamokError) {}
}

/**
 * Runs one operation on the batch's view of the store (`read` its current values, `put` its
 * changes, `same` for the comparisons of updateIf and removeIf), collecting the values it found in
 * `olds`; returns whether a conditional operation applied (undefined for the others).
 */
function planOne(
  op: string,
  args: unknown[],
  olds: unknown[],
  read: (wireKey: unknown) => unknown,
  put: (wireKey: unknown, value: unknown) => void,
  same: (current: unknown, expected: unknown) => boolean,
): boolean | undefined {
  switch (op) {
    case "set":
    case "insert": {
      const old = read(args[0]);
      olds.push(old);
      if (op === "set" || old === undefined) put(args[0], args[1]);
      return undefined;
    }
    case "setAll":
    case "insertAll":
      for (const [key, value] of args as [unknown, unknown][]) {
        const old = read(key);
        olds.push(old);
        if (op === "setAll" || old === undefined) put(key, value);
      }
      return undefined;
    case "delete":
    case "remove":
    case "deleteAll":
    case "removeAll":
      for (const key of args) {
        const old = read(key);
        olds.push(old);
        if (old !== undefined) put(key, undefined);
      }
      return undefined;
    case "updateIf":
    case "removeIf": {
      const old = read(args[0]);
      olds.push(old);
      const expected = op === "updateIf" ? args[2] : args[1];
      const applied = old !== undefined && same(old, expected);
      if (applied) put(args[0], op === "updateIf" ? args[1] : undefined);
      return applied;
    }
    default:
      return undefined; // clear: the caller empties the view
  }
}

/**
 * Decodes the keys and values an operation carries into `keys` (by identity) and `values` (by wire
 * form). Returns why it cannot be executed if its own data is unusable: arguments of the wrong shape,
 * or a key or value its codec cannot decode — deterministic, so no retry would change it. Any other
 * error is thrown.
 */
function checkOperation<K, V>(
  io: RemoteBatchIo<K, V>,
  p: PendingRemoteOp,
  keys: Map<string, K>,
  values: Map<unknown, V>,
): HamokCodecError | undefined {
  let what = "its arguments";
  const key = (wire: unknown, name: string): void => {
    what = name;
    if (wire === undefined) throw new HamokCodecError("it is missing");
    const id = identityOf(wire);
    if (!keys.has(id)) keys.set(id, io.decodeKey(wire));
  };
  const value = (wire: unknown, name: string): void => {
    what = name;
    if (wire === undefined) throw new HamokCodecError("it is missing");
    if (!values.has(wire)) values.set(wire, io.decodeValue(wire));
  };
  const args = p.args;
  try {
    if (p.op === "clear") return undefined;
    if (!Array.isArray(args)) throw new HamokCodecError("they are not an array");
    switch (p.op) {
      case "set":
      case "insert":
        key(args[0], "its key");
        value(args[1], "its value");
        break;
      case "setAll":
      case "insertAll":
        for (let i = 0; i < args.length; i++) {
          const entry: unknown = args[i];
          what = `entry ${i}`;
          if (!Array.isArray(entry)) throw new HamokCodecError("it is not a [key, value] pair");
          key(entry[0], `the key of entry ${i}`);
          value(entry[1], `the value of entry ${i}`);
        }
        break;
      case "delete":
      case "remove":
        key(args[0], "its key");
        break;
      case "deleteAll":
      case "removeAll":
        for (let i = 0; i < args.length; i++) key(args[i], `key ${i}`);
        break;
      case "updateIf":
        key(args[0], "its key");
        value(args[1], "its new value");
        value(args[2], "its expected value");
        break;
      case "removeIf":
        key(args[0], "its key");
        value(args[1], "its expected value");
        break;
      default:
        throw new HamokCodecError(`unknown operation ${JSON.stringify(String(p.op))}`);
    }
  } catch (error) {
    if (!(error instanceof HamokCodecError)) throw error;
    return new HamokCodecError(`${what} cannot be decoded: ${error.message}`, { cause: error });
  }
  return undefined;
}

/** The wire keys an operation touches, in argument order. */
function keysOf(p: PendingRemoteOp): unknown[] {
  const args = p.args as unknown[];
  switch (p.op) {
    case "set":
    case "insert":
    case "delete":
    case "remove":
    case "updateIf":
    case "removeIf":
      return [args[0]];
    case "setAll":
    case "insertAll":
      return (args as [unknown, unknown][]).map(([key]) => key);
    case "deleteAll":
    case "removeAll":
      return args;
    default:
      return [];
  }
}

/** Whether two wire values are the same bytes (or the same string). */
export function sameBytes(a: unknown, b: unknown): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
