/**
 * The sequential specification of the simulator's key-value store, as a {@linkcode Model} for the
 * linearizability checker. Keys are independent, so the history is partitioned per key and each
 * partition's state is one register (`string | null`).
 *
 * @module
 */

import type { Model, Operation } from "./linearizability.ts";

/** A client request against the key-value store. */
export type KvInput =
  /** Write `value`; answers the previous value. */
  | { readonly op: "put"; readonly key: string; readonly value: string }
  /** Read; answers the current value. */
  | { readonly op: "get"; readonly key: string }
  /** Write `value` if the current value is `expected`; answers whether it wrote. */
  | { readonly op: "cas"; readonly key: string; readonly expected: string | null; readonly value: string };

/** The answer to a {@linkcode KvInput}: a value (put/get) or a success flag (cas). */
export type KvOutput = string | null | boolean;

/** One recorded key-value operation. */
export type KvOperation = Operation<KvInput, KvOutput>;

/**
 * The key-value model: put answers the previous value, get the current one, cas whether it wrote.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(kvModel, [
 *   { clientId: 1, input: { op: "put", key: "a", value: "x" }, output: null, call: 0, ret: 1 },
 *   { clientId: 2, input: { op: "get", key: "a" }, output: "x", call: 2, ret: 3 },
 * ]);
 * ```
 */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  partition(history: readonly KvOperation[]): KvOperation[][] {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      let list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, list = []);
      list.push(op);
    }
    return [...byKey.values()];
  },
  init(): string | null {
    return null;
  },
  step(state: string | null, input: KvInput, output: KvOutput | undefined) {
    switch (input.op) {
      case "put":
        return { ok: output === undefined || output === state, state: input.value };
      case "get":
        return { ok: output === undefined || output === state, state };
      case "cas": {
        const wrote = state === input.expected;
        return { ok: output === undefined || output === wrote, state: wrote ? input.value : state };
      }
    }
  },
  key(state: string | null): string {
    return state === null ? "\u0000" : state;
  },
  describe(op: KvOperation): string {
    const i = op.input;
    const what = i.op === "put"
      ? `put(${i.key}, ${i.value})`
      : i.op === "get"
      ? `get(${i.key})`
      : `cas(${i.key}, ${i.expected}, ${i.value})`;
    const out = op.ret === Infinity ? "?" : JSON.stringify(op.output);
    return `c${op.clientId} ${what} -> ${out} [${op.call}, ${op.ret === Infinity ? "inf" : op.ret}]`;
  },
};
