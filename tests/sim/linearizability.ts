/**
 * A linearizability checker in the style of Porcupine: the Wing–Gong search with Lowe's
 * memoization of (set of linearized operations, model state), run separately on each partition of
 * the history (for a key-value store: one partition per key).
 *
 * A history is a list of {@linkcode Operation}s, each with the time it was invoked (`call`) and the
 * time it returned (`ret`). An operation whose outcome is unknown (the client gave up, the node
 * crashed) has `ret = Infinity` and no `output`: it may take effect at any point after its call, or
 * never. Two operations are ordered when one returned strictly before the other was invoked; equal
 * times count as concurrent.
 *
 * @module
 */

/** One recorded client operation. */
export interface Operation<I, O> {
  /** Who issued it (for messages only; the search does not rely on it). */
  readonly clientId: number | string;
  /** What was asked. */
  readonly input: I;
  /** What was answered; `undefined` when the outcome is unknown. */
  readonly output?: O;
  /** Invocation time. */
  readonly call: number;
  /** Return time; `Infinity` when the outcome is unknown. */
  readonly ret: number;
}

/** The result of one model transition. */
export interface StepResult<S> {
  /** Whether `output` is a legal answer to `input` in the state the step started from. */
  readonly ok: boolean;
  /** The state after the operation (meaningful only when `ok`). */
  readonly state: S;
}

/** A sequential specification of the object under test. */
export interface Model<S, I, O> {
  /** Split a history into independent parts (e.g. per key). Default: one part. */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
  /** The initial state. */
  init(): S;
  /**
   * Apply `input` to `state`. `output` is `undefined` for an operation of unknown outcome: the
   * step must then accept (ok) and return the state the operation would leave.
   */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /** A string that identifies a state exactly (used as part of the memoization key). */
  key(state: S): string;
  /** Human-readable form of an operation, for reports. */
  describe?(op: Operation<I, O>): string;
}

/** Options of {@linkcode checkLinearizability}. */
export interface CheckOptions {
  /** Give up on a partition after this many search steps (result `unknown`). Default 2,000,000. */
  readonly maxSteps?: number;
}

/** Outcome of {@linkcode checkLinearizability}. */
export interface CheckResult<I, O> {
  /** `ok`: linearizable; `illegal`: proven not linearizable; `unknown`: the search gave up. */
  readonly verdict: "ok" | "illegal" | "unknown";
  /** Number of partitions checked. */
  readonly partitions: number;
  /** Total search steps spent. */
  readonly steps: number;
  /** For `illegal`/`unknown`: the operations of the first failing partition. */
  readonly failedPartition?: readonly Operation<I, O>[];
  /**
   * For `illegal`: the longest prefix of that partition that could be linearized, in linearization
   * order (what the search got furthest with before it had to give up).
   */
  readonly longestPrefix?: readonly Operation<I, O>[];
}

/** A call or return event in the doubly linked event list of the search. */
interface Node {
  /** Index of the operation in the partition, or -1 for the list head. */
  readonly op: number;
  readonly isCall: boolean;
  /** The matching return event of a call (undefined for ops with unknown outcome and for returns). */
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

interface Frame<S> {
  readonly node: Node;
  readonly state: S;
}

function buildList<I, O>(ops: readonly Operation<I, O>[]): Node {
  interface Ev {
    readonly time: number;
    readonly isCall: boolean;
    readonly op: number;
  }
  const events: Ev[] = [];
  for (let i = 0; i < ops.length; i++) {
    events.push({ time: ops[i].call, isCall: true, op: i });
    if (ops[i].ret !== Infinity) events.push({ time: ops[i].ret, isCall: false, op: i });
  }
  // Calls before returns at equal times: equal times are treated as concurrent.
  events.sort((a, b) =>
    a.time !== b.time ? a.time - b.time : a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1
  );
  const head: Node = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  const calls = new Map<number, Node>();
  let tail = head;
  for (const ev of events) {
    const node: Node = { op: ev.op, isCall: ev.isCall, match: undefined, prev: tail, next: undefined };
    tail.next = node;
    tail = node;
    if (ev.isCall) calls.set(ev.op, node);
    else calls.get(ev.op)!.match = node;
  }
  return head;
}

function lift(call: Node): void {
  call.prev!.next = call.next;
  if (call.next !== undefined) call.next.prev = call.prev;
  const ret = call.match;
  if (ret !== undefined) {
    ret.prev!.next = ret.next;
    if (ret.next !== undefined) ret.next.prev = ret.prev;
  }
}

function unlift(call: Node): void {
  const ret = call.match;
  if (ret !== undefined) {
    ret.prev!.next = ret;
    if (ret.next !== undefined) ret.next.prev = ret;
  }
  call.prev!.next = call;
  if (call.next !== undefined) call.next.prev = call;
}

function bitsKey(bits: Uint32Array): string {
  let s = "";
  for (let i = 0; i < bits.length; i++) s += bits[i].toString(36) + ",";
  return s;
}

interface PartitionOutcome<I, O> {
  readonly verdict: "ok" | "illegal" | "unknown";
  readonly steps: number;
  readonly longestPrefix: Operation<I, O>[];
}

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  maxSteps: number,
): PartitionOutcome<I, O> {
  const head = buildList(ops);
  let finiteLeft = 0;
  for (const op of ops) if (op.ret !== Infinity) finiteLeft++;
  const bits = new Uint32Array(Math.ceil(ops.length / 32) || 1);
  const seen = new Set<string>();
  const stack: Frame<S>[] = [];
  let longest: Node[] = [];
  let state = model.init();
  let node = head.next;
  let steps = 0;
  while (finiteLeft > 0) {
    if (++steps > maxSteps) return { verdict: "unknown", steps, longestPrefix: [] };
    if (node !== undefined && node.isCall) {
      const op = ops[node.op];
      const res = model.step(state, op.input, op.ret === Infinity ? undefined : op.output);
      if (res.ok) {
        const word = node.op >>> 5;
        const mask = 1 << (node.op & 31);
        bits[word] |= mask;
        const key = bitsKey(bits) + "|" + model.key(res.state);
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ node, state });
          state = res.state;
          if (op.ret !== Infinity) finiteLeft--;
          lift(node);
          node = head.next;
          continue;
        }
        bits[word] &= ~mask;
      }
      node = node.next;
      continue;
    }
    // A return event (or the end of the list): the operation that returned has not been
    // linearized on this path, so undo the latest choice.
    if (stack.length > longest.length) longest = stack.map((f) => f.node);
    const top = stack.pop();
    if (top === undefined) {
      return { verdict: "illegal", steps, longestPrefix: longest.map((n) => ops[n.op]) };
    }
    state = top.state;
    bits[top.node.op >>> 5] &= ~(1 << (top.node.op & 31));
    if (ops[top.node.op].ret !== Infinity) finiteLeft++;
    unlift(top.node);
    node = top.node.next;
  }
  return { verdict: "ok", steps, longestPrefix: [] };
}

/**
 * Checks a history for linearizability against a model.
 *
 * @example
 * ```ts
 * const register: Model<number, { write?: number }, number> = {
 *   init: () => 0,
 *   step: (s, i, o) => i.write !== undefined ? { ok: true, state: i.write } : { ok: o === undefined || o === s, state: s },
 *   key: (s) => String(s),
 * };
 * const result = checkLinearizability(register, [
 *   { clientId: 1, input: { write: 1 }, call: 0, ret: 2 },
 *   { clientId: 2, input: {}, output: 1, call: 1, ret: 3 },
 * ]);
 * // result.verdict === "ok"
 * ```
 */
export function checkLinearizability<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  const maxSteps = options.maxSteps ?? 2_000_000;
  const parts = model.partition ? model.partition(history) : [history.slice()];
  let steps = 0;
  let unknown: Operation<I, O>[] | undefined;
  for (const part of parts) {
    const out = checkPartition(model, part, maxSteps);
    steps += out.steps;
    if (out.verdict === "illegal") {
      return {
        verdict: "illegal",
        partitions: parts.length,
        steps,
        failedPartition: part,
        longestPrefix: out.longestPrefix,
      };
    }
    if (out.verdict === "unknown" && unknown === undefined) unknown = part;
  }
  if (unknown !== undefined) {
    return { verdict: "unknown", partitions: parts.length, steps, failedPartition: unknown };
  }
  return { verdict: "ok", partitions: parts.length, steps };
}
