/**
 * Typed commands: each collection kind declares its operations once, as an interface of
 * {@linkcode CommandSpec}s (op name -> argument type and result type). The view proposes through
 * {@linkcode ArgsOf} / {@linkcode ResultOf} of that declaration, and the replicated state applies with a
 * {@linkcode commandTable} of {@linkcode CommandHandlers} of the same declaration, so both sides are type-checked against
 * one list of operations: a missing handler, an extra one, or a result of the wrong shape does not
 * compile.
 *
 * @module
 */

import type { ApplyContext } from "../cluster/state_machine.ts";

/**
 * One operation of a collection kind: the arguments its command carries in the log and the result
 * the proposer gets once it is applied. A type only (nothing of it exists at run time).
 *
 * @example
 * ```ts ignore
 * interface CounterCommands {
 *   add: CommandSpec<readonly [amount: number], number>;
 *   reset: CommandSpec<null, number>;
 * }
 * ```
 */
export interface CommandSpec<Args, Result> {
  /** The arguments of the command, as proposed (CBOR-encodable). */
  readonly args: Args;
  /** The result of the command, as applied. */
  readonly result: Result;
}

/** The arguments of operation `O` of the declaration `C`. */
export type ArgsOf<C, O extends keyof C> = C[O] extends CommandSpec<infer A, unknown> ? A : never;

/** The result of operation `O` of the declaration `C`. */
export type ResultOf<C, O extends keyof C> = C[O] extends CommandSpec<unknown, infer R> ? R : never;

/**
 * The applying side of a declaration: one handler per operation. A handler gets the arguments as
 * they came out of the log (untrusted: it checks them, and a malformed command returns `undefined`,
 * deterministically) and returns the operation's declared result.
 */
export type CommandHandlers<C, S> = {
  readonly [O in keyof C]: (state: S, args: unknown, ctx: ApplyContext) => ResultOf<C, O> | undefined;
};

/** A kind's handlers as the state applies them: op name -> handler (made once per kind). */
export type CommandTable<S> = ReadonlyMap<string, (state: S, args: unknown, ctx: ApplyContext) => unknown>;

/**
 * The table of a kind's handlers, checked against its declaration `C` (every declared op has a
 * handler returning its declared result, and no other op has one). A `Map`, so that an op from the log
 * can never reach a prototype, and its lookup is as fast as a `switch` on the op names.
 */
export function commandTable<C, S>(handlers: CommandHandlers<C, S>): CommandTable<S> {
  return new Map(
    Object.entries(handlers) as [string, (state: S, args: unknown, ctx: ApplyContext) => unknown][],
  );
}

/** Applies `op` through `table`: the handler's result, or `undefined` for an op the kind does not declare. */
export function applyCommand<S>(
  table: CommandTable<S>,
  state: S,
  op: string,
  args: unknown,
  ctx: ApplyContext,
): unknown {
  const handler = table.get(op);
  return handler === undefined ? undefined : handler(state, args, ctx);
}
