/**
 * Typed commands: each collection kind declares its operations once, as an interface of
 * {@linkcode CommandSpec}s (op name -> argument type and result type). The view proposes through
 * {@linkcode ArgsOf} / {@linkcode ResultOf} of that declaration, and the replicated state applies with a
 * {@linkcode CommandHandlers} table of the same declaration, so both sides are type-checked against
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

/**
 * Applies `op` through `handlers`: the handler's result, or `undefined` for an operation the kind
 * does not declare (a command from another version; own properties only, so `op` cannot reach the
 * prototype).
 */
export function applyCommand<C, S>(
  handlers: CommandHandlers<C, S>,
  state: S,
  op: string,
  args: unknown,
  ctx: ApplyContext,
): unknown {
  if (!Object.hasOwn(handlers, op)) return undefined;
  return handlers[op as keyof C](state, args, ctx);
}
