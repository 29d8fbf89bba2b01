/**
 * Sample wire messages and a seeded PRNG for the codec tests.
 *
 * @module
 */

import type { Entry, RaftMessage } from "../../src/raft/types.ts";
import type { WireEnvelope } from "../../src/codec/envelope.ts";

/** `n` bytes with a recognisable pattern derived from `seed`. */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 17) & 0xff;
  return out;
}

/** Mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Five 64-byte normal entries, the hot-path shape. */
export function fiveEntries(): Entry[] {
  return Array.from({ length: 5 }, (_, i) => ({
    index: 100 + i,
    term: 7,
    type: "normal" as const,
    data: bytes(64, i),
    requestId: `req-${i}`,
  }));
}

/** One message of every Raft variant, with and without each optional field. */
export function raftMessages(): RaftMessage[] {
  const base = { from: "member-a", to: "member-b", term: 7 };
  return [
    { ...base, type: "append", prevIndex: 99, prevTerm: 7, commit: 98, entries: fiveEntries() },
    {
      ...base,
      type: "append",
      prevIndex: 99,
      prevTerm: 7,
      commit: 98,
      entries: fiveEntries(),
      leaderMatch: 104,
    },
    { ...base, type: "append", prevIndex: 0, prevTerm: 0, commit: 0, entries: [] },
    {
      ...base,
      type: "append",
      prevIndex: 10,
      prevTerm: 2,
      commit: 9,
      entries: [
        { index: 11, term: 3, type: "noop", data: new Uint8Array(0) },
        {
          index: 12,
          term: 3,
          type: "config",
          data: new Uint8Array(0),
          change: { type: "add-learner", memberId: "m-c" },
        },
        {
          index: 13,
          term: 3,
          type: "config",
          data: new Uint8Array(0),
          change: { type: "promote", memberId: "m-c" },
        },
        {
          index: 14,
          term: 3,
          type: "config",
          data: new Uint8Array(0),
          requestId: "r-14",
          change: { type: "remove", memberId: "m-d" },
        },
        { index: 15, term: 3, type: "normal", data: bytes(3), requestId: "" },
      ],
    },
    { ...base, type: "append-response", index: 104, reject: false, rejectHint: 0, hintTerm: 0 },
    { ...base, type: "append-response", index: 99, reject: true, rejectHint: 50, hintTerm: 4 },
    { ...base, type: "append-response", index: 99, reject: true, rejectHint: -1, hintTerm: 0 },
    { ...base, type: "heartbeat", commit: 98 },
    { ...base, type: "heartbeat", commit: 98, ctx: "read-1" },
    { ...base, type: "heartbeat-response" },
    { ...base, type: "heartbeat-response", ctx: "read-1" },
    { ...base, type: "vote", lastIndex: 104, lastTerm: 7 },
    { ...base, type: "vote", lastIndex: 104, lastTerm: 7, transfer: true },
    { ...base, type: "pre-vote", lastIndex: 104, lastTerm: 7 },
    { ...base, type: "pre-vote", lastIndex: 104, lastTerm: 7, transfer: false },
    { ...base, type: "vote-response", reject: false },
    { ...base, type: "pre-vote-response", reject: true },
    {
      ...base,
      type: "snapshot",
      meta: { index: 500, term: 6, membership: { voters: ["a", "b", "c"], learners: ["d"], removed: [] } },
      offset: 262144,
      total: 1048576,
      data: bytes(1000),
      done: false,
    },
    {
      ...base,
      type: "snapshot",
      meta: { index: 500, term: 6, membership: { voters: ["a"], learners: [], removed: [] } },
      offset: 0,
      total: 1000,
      digest: 0xfedcba98,
      data: bytes(1000),
      done: true,
    },
    { ...base, type: "snapshot-response", index: 500, offset: 263144, reject: false, done: true },
    { ...base, type: "timeout-now" },
    { ...base, type: "propose", entries: [{ data: bytes(8) }, { data: bytes(4), requestId: "r-9" }] },
    { ...base, type: "propose", entries: [] },
    { ...base, type: "read-index", ctx: "read-2" },
    { ...base, type: "read-index-response", ctx: "read-2", index: 104 },
    { ...base, type: "read-index-response", ctx: "read-3", index: -1 },
  ];
}

/** One envelope of every non-Raft type, with and without each optional field. */
export function otherEnvelopes(): WireEnvelope[] {
  const from = "peer-0123";
  return [
    {
      type: "hello",
      from,
      body: { clusterId: "demo", peerId: from, memberId: "m-1", term: 0, joined: false },
    },
    {
      type: "hello",
      from,
      body: { clusterId: "demo", peerId: from, memberId: "m-1", leaderId: "m-2", term: 9, joined: true },
    },
    { type: "request", from, body: { requestId: "r1", op: "join", payload: bytes(20) } },
    { type: "request", from, body: { requestId: "", op: "", payload: new Uint8Array(0) } },
    { type: "response", from, body: { requestId: "r1", ok: true } },
    { type: "response", from, body: { requestId: "r1", ok: true, payload: bytes(5) } },
    {
      type: "response",
      from,
      body: { requestId: "r2", ok: false, error: { code: "HAMOK_NOT_LEADER", message: "ask m-2" } },
    },
    {
      type: "response",
      from,
      body: { requestId: "r3", ok: false, payload: bytes(2), error: { code: "X", message: "" } },
    },
    { type: "event", from, body: { emitterId: "chat", event: "message", payload: bytes(64), seq: 12345 } },
    {
      type: "event",
      from,
      body: { emitterId: "chat", event: "message", payload: '["hi",1]', seq: 0, ackRequestId: "a-1" },
    },
    {
      type: "event",
      from,
      body: { emitterId: "chat", event: "m", payload: bytes(3), seq: 7, incarnation: "1a2b3c4d." },
    },
    {
      type: "event",
      from,
      body: {
        emitterId: "chat",
        event: "m",
        payload: "[]",
        seq: 8,
        ackRequestId: "a-2",
        incarnation: "1a2b3c4d.",
      },
    },
    { type: "ack", from, body: { emitterId: "chat", ackRequestId: "a-1", peerId: "p-2", ok: true } },
    { type: "acks", from, body: { peerId: "p-2", acks: [["chat", "a-1"]] } },
    {
      type: "acks",
      from,
      body: { peerId: "p-2", acks: [["chat", "a-1"], ["news", "b-7"], ["chat", "a-2"]] },
    },
    {
      type: "ack",
      from,
      body: {
        emitterId: "chat",
        ackRequestId: "a-1",
        peerId: "p-2",
        ok: false,
        error: { code: "HAMOK_CODEC", message: "cannot decode payload" },
      },
    },
  ];
}

/** Every sample envelope: all Raft variants wrapped, then the other types. */
export function allEnvelopes(): WireEnvelope[] {
  return [
    ...raftMessages().map((body): WireEnvelope => ({ type: "raft", from: "peer-0123", body })),
    ...otherEnvelopes(),
  ];
}
