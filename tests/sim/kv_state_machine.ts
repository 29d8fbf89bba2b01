/**
 * The replicated key-value state machine the simulated clients talk to. Commands are JSON bytes;
 * the machine deduplicates by client session (one outstanding request per client, request ids
 * `<client>:<seq>`), keeps a hash chain over every entry it applied, and snapshots itself (state,
 * sessions and chain) for log compaction.
 *
 * @module
 */

import type { Entry } from "../../src/raft/types.ts";
import { chain, entryDigest } from "./hash.ts";

/** A command as proposed by a simulated client. */
export interface KvCommand {
  /** Client id. */
  readonly c: number;
  /** Client sequence number (one per client operation; retries reuse it). */
  readonly s: number;
  /** Operation. */
  readonly o: "put" | "get" | "cas";
  /** Key. */
  readonly k: string;
  /** New value (put, cas). */
  readonly v?: string;
  /** Expected value (cas). */
  readonly e?: string | null;
}

/** The answer of a command: previous value (put), value (get), wrote (cas). */
export type KvResult = string | null | boolean;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command to bytes. */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/** The request id carried with a command's entry. */
export function requestIdOf(client: number, seq: number): string {
  return `${client}:${seq}`;
}

interface Session {
  seq: number;
  result: KvResult;
}

interface SnapshotBody {
  /** Applied index. */
  i: number;
  /** Chain value at that index. */
  h: number;
  /** Key/value pairs. */
  d: [string, string][];
  /** Sessions: client, seq, result. */
  s: [number, number, KvResult][];
}

/** What applying one entry did. */
export interface ApplyOutcome {
  /** The command's request id, for normal entries that carry one. */
  readonly requestId?: string;
  /** The answer (also for a duplicate, which answers the first application's result). */
  readonly result?: KvResult;
  /** True when the command was not applied because its session had moved past it. */
  readonly stale?: boolean;
}

/**
 * A key-value store replica.
 *
 * @example
 * ```ts
 * const kv = new KvStateMachine();
 * kv.apply({ index: 1, term: 1, type: "normal", data: encodeCommand({ c: 1, s: 1, o: "put", k: "a", v: "x" }) });
 * kv.get("a"); // "x"
 * ```
 */
export class KvStateMachine {
  /** Index of the last applied entry. */
  appliedIndex = 0;
  /** Hash chain over all applied entries (restored from snapshots). */
  chainValue = 0;
  #data = new Map<string, string>();
  #sessions = new Map<number, Session>();

  /** Current value of `key`. */
  get(key: string): string | null {
    return this.#data.get(key) ?? null;
  }

  /** Applies one committed entry (the caller checks that indexes are consecutive). */
  apply(entry: Entry): ApplyOutcome {
    this.appliedIndex = entry.index;
    this.chainValue = chain(this.chainValue, entryDigest(entry));
    if (entry.type !== "normal") return {};
    const cmd = JSON.parse(decoder.decode(entry.data)) as KvCommand;
    const requestId = requestIdOf(cmd.c, cmd.s);
    const session = this.#sessions.get(cmd.c);
    if (session !== undefined && cmd.s <= session.seq) {
      return cmd.s === session.seq ? { requestId, result: session.result } : { requestId, stale: true };
    }
    let result: KvResult;
    const cur = this.#data.get(cmd.k) ?? null;
    switch (cmd.o) {
      case "put":
        this.#data.set(cmd.k, cmd.v!);
        result = cur;
        break;
      case "get":
        result = cur;
        break;
      case "cas":
        result = cur === cmd.e;
        if (result) this.#data.set(cmd.k, cmd.v!);
        break;
    }
    if (session === undefined) this.#sessions.set(cmd.c, { seq: cmd.s, result });
    else {
      session.seq = cmd.s;
      session.result = result;
    }
    return { requestId, result };
  }

  /** Serializes the whole state as of {@linkcode appliedIndex}. */
  snapshot(): Uint8Array {
    const body: SnapshotBody = {
      i: this.appliedIndex,
      h: this.chainValue,
      d: [...this.#data.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
      s: [...this.#sessions.entries()].sort((a, b) => a[0] - b[0]).map(([c, s]) => [c, s.seq, s.result]),
    };
    return encoder.encode(JSON.stringify(body));
  }

  /** Replaces the state with a snapshot's (an empty snapshot means the initial state). */
  restore(data: Uint8Array, index: number): void {
    this.#data.clear();
    this.#sessions.clear();
    if (data.length === 0) {
      this.appliedIndex = index;
      this.chainValue = 0;
      return;
    }
    const body = JSON.parse(decoder.decode(data)) as SnapshotBody;
    this.appliedIndex = body.i;
    this.chainValue = body.h;
    for (const [k, v] of body.d) this.#data.set(k, v);
    for (const [c, seq, result] of body.s) this.#sessions.set(c, { seq, result });
  }

  /** A digest of the key/value contents (for cross-node comparison of snapshots). */
  contentsKey(): string {
    return JSON.stringify([...this.#data.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  }
}
