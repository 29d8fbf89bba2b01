/**
 * Internal: the wire form of a {@linkcode RaftMessage}, a positional CBOR array whose first element
 * is a small integer naming the variant (see `docs/decisions.md` for why arrays, with numbers).
 *
 * | variant | array |
 * | --- | --- |
 * | append | `[0, from, to, term, prevIndex, prevTerm, commit, entries, leaderMatch?]` |
 * | append-response | `[1, from, to, term, index, reject, rejectHint, hintTerm]` (`rejectHint` may be -1) |
 * | heartbeat | `[2, from, to, term, commit, ctx?]` |
 * | heartbeat-response | `[3, from, to, term, ctx?]` |
 * | vote / pre-vote | `[4 / 5, from, to, term, lastIndex, lastTerm, transfer?]` |
 * | vote-response / pre-vote-response | `[6 / 7, from, to, term, reject]` |
 * | snapshot | `[8, from, to, term, [index, term, voters, learners, removed], offset, data, done, total, digest?]` |
 * | snapshot-response | `[9, from, to, term, index, offset, reject, done]` |
 * | timeout-now | `[10, from, to, term]` |
 * | propose | `[11, from, to, term, [[data, requestId?], ...]]` |
 * | read-index | `[12, from, to, term, ctx]` |
 * | read-index-response | `[13, from, to, term, ctx, index]` (`index` may be -1) |
 *
 * An entry is `[index, term, type, data]`, `[..., requestId]` or `[..., requestId | null, change]`
 * with `type` 0 normal, 1 config, 2 noop and `change` = `[0 add-learner | 1 promote | 2 remove, memberId]`.
 * Codes are positions in the tables below: append new names at the end, never reorder.
 *
 * @module
 */

import type {
  Entry,
  EntryType,
  MembershipChange,
  ProposeMessage,
  RaftMessage,
  SnapshotMeta,
} from "../raft/types.ts";
import {
  arrayAt,
  boolAt,
  bytesAt,
  enumAt,
  intFromAt,
  listAt,
  stringAt,
  stringListAt,
  uintAt,
} from "./wire_shape.ts";

/** Wire codes of the Raft message variants (the code is the position). */
const RAFT_MESSAGE_TYPES: readonly RaftMessage["type"][] = [
  "append",
  "append-response",
  "heartbeat",
  "heartbeat-response",
  "vote",
  "pre-vote",
  "vote-response",
  "pre-vote-response",
  "snapshot",
  "snapshot-response",
  "timeout-now",
  "propose",
  "read-index",
  "read-index-response",
];

/** Wire codes of entry types. */
const ENTRY_TYPES: readonly EntryType[] = ["normal", "config", "noop"];

/** Wire codes of membership change types. */
const CHANGE_TYPES: readonly MembershipChange["type"][] = ["add-learner", "promote", "remove"];

function codeOf<T extends string>(names: readonly T[], name: T, what: string): number {
  // Hand-written loops beat Map/Record lookups on JSC for tables this small.
  for (let i = 0; i < names.length; i++) if (names[i] === name) return i;
  throw new TypeError(`unknown ${what} ${JSON.stringify(name)}`);
}

function packEntry(e: Entry): unknown[] {
  const type = codeOf(ENTRY_TYPES, e.type, "entry type");
  if (e.change !== undefined) {
    return [e.index, e.term, type, e.data, e.requestId ?? null, [
      codeOf(CHANGE_TYPES, e.change.type, "membership change type"),
      e.change.memberId,
    ]];
  }
  if (e.requestId !== undefined) return [e.index, e.term, type, e.data, e.requestId];
  return [e.index, e.term, type, e.data];
}

function packEntries(entries: readonly Entry[]): unknown[] {
  const out = new Array<unknown>(entries.length);
  for (let i = 0; i < entries.length; i++) out[i] = packEntry(entries[i]!); // i < length
  return out;
}

function packProposals(entries: ProposeMessage["entries"]): unknown[] {
  const out = new Array<unknown>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!; // i < length
    out[i] = e.requestId !== undefined ? [e.data, e.requestId] : [e.data];
  }
  return out;
}

/** Packs a Raft message into its positional wire array. Throws `TypeError` on an unknown variant. */
export function packRaftMessage(m: RaftMessage): unknown[] {
  switch (m.type) {
    case "append": {
      const packed = [0, m.from, m.to, m.term, m.prevIndex, m.prevTerm, m.commit, packEntries(m.entries)];
      if (m.leaderMatch !== undefined) packed.push(m.leaderMatch);
      return packed;
    }
    case "append-response":
      return [1, m.from, m.to, m.term, m.index, m.reject, m.rejectHint, m.hintTerm];
    case "heartbeat":
      return m.ctx !== undefined
        ? [2, m.from, m.to, m.term, m.commit, m.ctx]
        : [2, m.from, m.to, m.term, m.commit];
    case "heartbeat-response":
      return m.ctx !== undefined ? [3, m.from, m.to, m.term, m.ctx] : [3, m.from, m.to, m.term];
    case "vote":
    case "pre-vote": {
      const code = m.type === "vote" ? 4 : 5;
      return m.transfer !== undefined
        ? [code, m.from, m.to, m.term, m.lastIndex, m.lastTerm, m.transfer]
        : [code, m.from, m.to, m.term, m.lastIndex, m.lastTerm];
    }
    case "vote-response":
    case "pre-vote-response":
      return [m.type === "vote-response" ? 6 : 7, m.from, m.to, m.term, m.reject];
    case "snapshot": {
      const meta = m.meta;
      const ms = meta.membership;
      return [
        8,
        m.from,
        m.to,
        m.term,
        [meta.index, meta.term, ms.voters, ms.learners, ms.removed],
        m.offset,
        m.data,
        m.done,
        m.total,
        ...(m.digest === undefined ? [] : [m.digest]),
      ];
    }
    case "snapshot-response":
      return [9, m.from, m.to, m.term, m.index, m.offset, m.reject, m.done];
    case "timeout-now":
      return [10, m.from, m.to, m.term];
    case "propose":
      return [11, m.from, m.to, m.term, packProposals(m.entries)];
    case "read-index":
      return [12, m.from, m.to, m.term, m.ctx];
    case "read-index-response":
      return [13, m.from, m.to, m.term, m.ctx, m.index];
    default:
      throw new TypeError(`unknown raft message type ${JSON.stringify((m as { type?: unknown }).type)}`);
  }
}

function unpackEntry(value: unknown): Entry {
  const a = arrayAt(value, "entry", 4, 6);
  const index = uintAt(a[0], "entry.index");
  const term = uintAt(a[1], "entry.term");
  const type = enumAt(a[2], "entry.type", ENTRY_TYPES);
  const data = bytesAt(a[3], "entry.data");
  if (a.length === 4) return { index, term, type, data };
  const rid = a[4];
  if (a.length === 5) return { index, term, type, data, requestId: stringAt(rid, "entry.requestId") };
  const c = arrayAt(a[5], "entry.change", 2);
  const change: MembershipChange = {
    type: enumAt(c[0], "entry.change.type", CHANGE_TYPES),
    memberId: stringAt(c[1], "entry.change.memberId"),
  };
  if (rid === null) return { index, term, type, data, change };
  return { index, term, type, data, requestId: stringAt(rid, "entry.requestId"), change };
}

/** Runs `unpack` on every item of the array at `value`, naming the failing item's position. */
function unpackList<T>(value: unknown, path: string, unpack: (item: unknown) => T): T[] {
  const list = listAt(value, path);
  const out = new Array<T>(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      out[i] = unpack(list[i]);
    } catch (error) {
      throw new TypeError(`${path}[${i}]: ${(error as Error).message}`, { cause: error });
    }
  }
  return out;
}

function unpackProposal(value: unknown): { data: Uint8Array; requestId?: string } {
  const a = arrayAt(value, "proposal", 1, 2);
  const data = bytesAt(a[0], "proposal.data");
  return a.length === 1 ? { data } : { data, requestId: stringAt(a[1], "proposal.requestId") };
}

function unpackSnapshotMeta(value: unknown): SnapshotMeta {
  const a = arrayAt(value, "raft.snapshot.meta", 5);
  return {
    index: uintAt(a[0], "raft.snapshot.meta.index"),
    term: uintAt(a[1], "raft.snapshot.meta.term"),
    membership: {
      voters: stringListAt(a[2], "raft.snapshot.meta.voters"),
      learners: stringListAt(a[3], "raft.snapshot.meta.learners"),
      removed: stringListAt(a[4], "raft.snapshot.meta.removed"),
    },
  };
}

/**
 * Checks and unpacks a wire array into a Raft message. Throws `TypeError` naming the first field
 * that does not fit. Optional fields that are absent on the wire are absent (not `undefined`) in
 * the result.
 */
export function unpackRaftMessage(value: unknown): RaftMessage {
  const a = listAt(value, "raft");
  const type = enumAt(a[0], "raft.type", RAFT_MESSAGE_TYPES);
  switch (type) {
    case "append": {
      arrayAt(a, "raft.append", 8, 9);
      const from = stringAt(a[1], "raft.from");
      const to = stringAt(a[2], "raft.to");
      const term = uintAt(a[3], "raft.term");
      const prevIndex = uintAt(a[4], "raft.append.prevIndex");
      const prevTerm = uintAt(a[5], "raft.append.prevTerm");
      const commit = uintAt(a[6], "raft.append.commit");
      const entries = unpackList(a[7], "raft.append.entries", unpackEntry);
      if (a.length === 8) return { type, from, to, term, prevIndex, prevTerm, commit, entries };
      const leaderMatch = uintAt(a[8], "raft.append.leaderMatch");
      return { type, from, to, term, prevIndex, prevTerm, commit, entries, leaderMatch };
    }
    case "append-response":
      arrayAt(a, "raft.append-response", 8);
      return {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
        index: uintAt(a[4], "raft.append-response.index"),
        reject: boolAt(a[5], "raft.append-response.reject"),
        rejectHint: intFromAt(a[6], "raft.append-response.rejectHint", -1),
        hintTerm: uintAt(a[7], "raft.append-response.hintTerm"),
      };
    case "heartbeat": {
      arrayAt(a, "raft.heartbeat", 5, 6);
      const from = stringAt(a[1], "raft.from");
      const to = stringAt(a[2], "raft.to");
      const term = uintAt(a[3], "raft.term");
      const commit = uintAt(a[4], "raft.heartbeat.commit");
      return a.length === 5
        ? { type, from, to, term, commit }
        : { type, from, to, term, commit, ctx: stringAt(a[5], "raft.heartbeat.ctx") };
    }
    case "heartbeat-response": {
      arrayAt(a, "raft.heartbeat-response", 4, 5);
      const from = stringAt(a[1], "raft.from");
      const to = stringAt(a[2], "raft.to");
      const term = uintAt(a[3], "raft.term");
      return a.length === 4
        ? { type, from, to, term }
        : { type, from, to, term, ctx: stringAt(a[4], "raft.heartbeat-response.ctx") };
    }
    case "vote":
    case "pre-vote": {
      arrayAt(a, "raft.vote", 6, 7);
      const from = stringAt(a[1], "raft.from");
      const to = stringAt(a[2], "raft.to");
      const term = uintAt(a[3], "raft.term");
      const lastIndex = uintAt(a[4], "raft.vote.lastIndex");
      const lastTerm = uintAt(a[5], "raft.vote.lastTerm");
      return a.length === 6
        ? { type, from, to, term, lastIndex, lastTerm }
        : { type, from, to, term, lastIndex, lastTerm, transfer: boolAt(a[6], "raft.vote.transfer") };
    }
    case "vote-response":
    case "pre-vote-response":
      arrayAt(a, "raft.vote-response", 5);
      return {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
        reject: boolAt(a[4], "raft.vote-response.reject"),
      };
    case "snapshot": {
      arrayAt(a, "raft.snapshot", 9, 10);
      const chunk = {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
        meta: unpackSnapshotMeta(a[4]),
        offset: uintAt(a[5], "raft.snapshot.offset"),
        data: bytesAt(a[6], "raft.snapshot.data"),
        done: boolAt(a[7], "raft.snapshot.done"),
        total: uintAt(a[8], "raft.snapshot.total"),
      };
      if (a.length === 9) return chunk;
      const digest = uintAt(a[9], "raft.snapshot.digest");
      if (digest > 0xffffffff) throw new TypeError("raft.snapshot.digest is not a CRC-32C");
      return { ...chunk, digest };
    }
    case "snapshot-response":
      arrayAt(a, "raft.snapshot-response", 8);
      return {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
        index: uintAt(a[4], "raft.snapshot-response.index"),
        offset: uintAt(a[5], "raft.snapshot-response.offset"),
        reject: boolAt(a[6], "raft.snapshot-response.reject"),
        done: boolAt(a[7], "raft.snapshot-response.done"),
      };
    case "timeout-now":
      arrayAt(a, "raft.timeout-now", 4);
      return {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
      };
    case "propose":
      arrayAt(a, "raft.propose", 5);
      return {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
        entries: unpackList(a[4], "raft.propose.entries", unpackProposal),
      };
    case "read-index":
      arrayAt(a, "raft.read-index", 5);
      return {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
        ctx: stringAt(a[4], "raft.read-index.ctx"),
      };
    case "read-index-response":
      arrayAt(a, "raft.read-index-response", 6);
      return {
        type,
        from: stringAt(a[1], "raft.from"),
        to: stringAt(a[2], "raft.to"),
        term: uintAt(a[3], "raft.term"),
        ctx: stringAt(a[4], "raft.read-index-response.ctx"),
        index: intFromAt(a[5], "raft.read-index-response.index", -1),
      };
  }
}

/**
 * Packs log entries into the positional arrays of the wire format (the file storage's records
 * use the same shape).
 *
 * @example
 * ```ts ignore
 * encodeCbor(packLogEntries([{ index: 1, term: 1, type: "noop", data: new Uint8Array() }]));
 * ```
 */
export function packLogEntries(entries: readonly Entry[]): unknown[] {
  return packEntries(entries);
}

/**
 * Checks and unpacks what {@linkcode packLogEntries} made. Throws `TypeError` naming the first
 * field that does not fit.
 *
 * @example
 * ```ts ignore
 * const entries = unpackLogEntries(decodeCbor(bytes));
 * ```
 */
export function unpackLogEntries(value: unknown): Entry[] {
  return unpackList(value, "entries", unpackEntry);
}
