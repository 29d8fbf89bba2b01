/**
 * The leader's planning of one remote-map batch: it reads what the batch touches from the store, runs
 * the operations in log order on an overlay of those values, and builds the one store write (with the
 * mark that carries every operation's outcome). Kept apart from the view (`HamokRemoteMap`),
 * which drives it.
 *
 * @module
 */

import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import type { PendingRemoteOp, RemoteOpOutcome } from "./remote_map_state.ts";
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

/** Reads what the batch touches, runs it on an overlay, and builds the store write. */
export async function prepareRemoteBatch<K, V>(
  io: RemoteBatchIo<K, V>,
  batch: PendingRemoteOp[],
  markIndex: number,
  clusterUid: string | undefined,
): Promise<{ write: HamokRemoteStoreBatch<K, V> }> {
  const toRead = new Map<string, unknown>();
  for (const p of batch) {
    for (const wireKey of keysOf(p)) {
      const id = identityOf(wireKey);
      if (!toRead.has(id)) toRead.set(id, wireKey);
    }
  }
  const readIds = [...toRead.keys()];
  const values = readIds.length === 0
    ? []
    : await io.getMany(readIds.map((id) => io.decodeKey(toRead.get(id))));
  const base = new Map<string, unknown>();
  for (let i = 0; i < readIds.length; i++) {
    const value = values[i];
    base.set(readIds[i]!, value === undefined ? undefined : io.wireValue(value as V)); // i < length
  }
  let cleared = false;
  const overlay = new Map<string, Slot>();
  const read = (wireKey: unknown): unknown => {
    const id = identityOf(wireKey);
    const slot = overlay.get(id);
    if (slot !== undefined) return slot.value;
    return cleared ? undefined : base.get(id);
  };
  const put = (wireKey: unknown, value: unknown): void => {
    overlay.set(identityOf(wireKey), { wireKey, value });
  };
  const outcomes: [number, RemoteOpOutcome][] = [];
  for (const p of batch) {
    const args = p.args as unknown[];
    const olds: unknown[] = [];
    let applied: boolean | undefined;
    switch (p.op) {
      case "set":
      case "insert": {
        const old = read(args[0]);
        olds.push(old);
        if (p.op === "set" || old === undefined) put(args[0], args[1]);
        break;
      }
      case "setAll":
      case "insertAll":
        for (const [key, value] of args as [unknown, unknown][]) {
          const old = read(key);
          olds.push(old);
          if (p.op === "setAll" || old === undefined) put(key, value);
        }
        break;
      case "delete":
      case "remove":
      case "deleteAll":
      case "removeAll":
        for (const key of args) {
          const old = read(key);
          olds.push(old);
          if (old !== undefined) put(key, undefined);
        }
        break;
      case "updateIf":
      case "removeIf": {
        const old = read(args[0]);
        olds.push(old);
        const expected = p.op === "updateIf" ? args[2] : args[1];
        applied = old !== undefined && io.same(old, expected);
        if (applied) put(args[0], p.op === "updateIf" ? args[1] : undefined);
        break;
      }
      case "clear":
        cleared = true;
        overlay.clear();
        break;
    }
    outcomes.push([p.index, applied === undefined ? [olds] : [olds, applied]]);
  }
  const deletes: K[] = [];
  const sets: [K, V][] = [];
  for (const slot of overlay.values()) {
    const key = io.decodeKey(slot.wireKey);
    if (slot.value === undefined) deletes.push(key);
    else sets.push([key, io.decodeValue(slot.value)]);
  }
  const last = batch[batch.length - 1]!.index; // the caller never prepares an empty batch
  return {
    write: {
      expectedIndex: markIndex,
      mark: { index: last, data: encodeRemoteMark(clusterUid, outcomes) },
      clear: cleared,
      deletes,
      sets,
      ops: batch.map((p) => ({ index: p.index, op: p.op })),
    },
  };
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
