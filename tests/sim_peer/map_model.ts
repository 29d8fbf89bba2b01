/**
 * The sequential specification of the simulator's `HamokMap<string, string>` workload, as a
 * {@linkcode Model} for the project's linearizability checker. Every write stores a value unique to
 * it, so an entry's revision (the log index of the write that made it) names its value exactly and a
 * compare-and-set by revision is a compare-and-set by value. One partition per key; the state of a
 * partition is the key's value (`null`: absent).
 *
 * @module
 */

import type { Model, Operation } from "../sim/linearizability.ts";

/** A map operation of the workload. */
export type MapInput =
  /** `set(key, value)`: answers the previous value. */
  | { readonly op: "set"; readonly key: string; readonly value: string }
  /** `insert(key, value)`: writes only if absent; answers the existing value. */
  | { readonly op: "insert"; readonly key: string; readonly value: string }
  /** `updateIf(key, value, expected)`: answers whether it replaced. */
  | { readonly op: "updateIf"; readonly key: string; readonly value: string; readonly expected: string }
  /** `set(key, value, { ifRevision })` with the revision of `expected`: answers whether it wrote. */
  | {
    readonly op: "casRevision";
    readonly key: string;
    readonly value: string;
    readonly expected: string | null;
  }
  /** A linearizable `get(key)`: answers the value. */
  | { readonly op: "get"; readonly key: string }
  /** `delete(key)`: answers whether the key was there. */
  | { readonly op: "delete"; readonly key: string };

/** A value (`null`: none) or a success flag. */
export type MapOutput = string | null | boolean;

/**
 * The model.
 *
 * @example
 * ```ts ignore
 * checkLinearizability(mapModel, history);
 * ```
 */
export const mapModel: Model<string | null, MapInput, MapOutput> = {
  partition(history: readonly Operation<MapInput, MapOutput>[]): Operation<MapInput, MapOutput>[][] {
    const byKey = new Map<string, Operation<MapInput, MapOutput>[]>();
    for (const op of history) {
      let list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, list = []);
      list.push(op);
    }
    return [...byKey.values()];
  },
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case "set":
        return { ok: output === undefined || output === state, state: input.value };
      case "insert":
        return state === null
          ? { ok: output === undefined || output === null, state: input.value }
          : { ok: output === undefined || output === state, state };
      case "get":
        return { ok: output === undefined || output === state, state };
      case "delete":
        return { ok: output === undefined || output === (state !== null), state: null };
      case "updateIf":
      case "casRevision": {
        const wrote = state === input.expected;
        return { ok: output === undefined || output === wrote, state: wrote ? input.value : state };
      }
    }
  },
  key: (state) => (state === null ? "\u0000" : state),
  describe(op) {
    const i = op.input;
    const args = i.op === "get" || i.op === "delete"
      ? i.key
      : i.op === "set" || i.op === "insert"
      ? `${i.key}, ${i.value}`
      : `${i.key}, ${i.value}, ${i.expected}`;
    const out = op.ret === Infinity ? "?" : JSON.stringify(op.output);
    return `${op.clientId} ${i.op}(${args}) -> ${out} [${op.call}, ${op.ret === Infinity ? "inf" : op.ret}]`;
  },
};
