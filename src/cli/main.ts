/**
 * The `hamok` command line: dispatch, help and error reporting. Every command talks to a cluster
 * over NATS as a non-member client (see `client.ts`).
 *
 * @module
 */

import { HamokError } from "../errors.ts";
import { parseArgs } from "./args.ts";
import { BENCH_HELP, benchCommand } from "./bench_command.ts";
import { CliContext, type CliIo, CONNECTION_HELP, HamokCliError } from "./context.ts";
import {
  eventsCommand,
  MAP_HELP,
  mapCommand,
  PUBLISH_HELP,
  publishCommand,
  SUBSCRIBE_HELP,
  WATCH_HELP,
  watchCommand,
} from "./data_commands.ts";
import { STATUS_HELP, statusCommand } from "./status_command.ts";
import { HAMOK_VERSION } from "../version.ts";

/** `hamok --help`. */
export const USAGE: string = `usage: hamok <command> [options]

Talks to a running Hamok cluster over NATS without joining it.

commands:
  status      the members, their roles, the leader, term, indexes and lag (exit 0 when healthy)
  watch       stream a map's changes (--map ID) or an emitter's events (--emitter ID)
  map         get | set | delete | list entries of a map
  publish     publish an event through a member
  subscribe   print an emitter's events as JSON lines
  bench       publish | set load with a p50/p99 summary

Run 'hamok <command> --help' for a command's options, 'hamok --version' for the version.

${CONNECTION_HELP}`;

const FLAGS = new Set(["json", "help", "local", "version"]);

interface Command {
  readonly help: string;
  readonly run: (ctx: CliContext) => Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  status: { help: STATUS_HELP, run: statusCommand },
  watch: { help: WATCH_HELP, run: watchCommand },
  map: { help: MAP_HELP, run: mapCommand },
  publish: { help: PUBLISH_HELP, run: publishCommand },
  subscribe: { help: SUBSCRIBE_HELP, run: (ctx) => eventsCommand(ctx, "subscribe") },
  bench: { help: BENCH_HELP, run: benchCommand },
};

/**
 * Runs the command line with `argv` (without the runtime and script) and resolves with the exit
 * status: 0 success, 1 failure (or an unhealthy cluster for `status`), 2 usage error.
 *
 * @example
 * ```ts ignore
 * const status = await runCli(["status", "--nats", "nats://127.0.0.1:4222", "--cluster", "orders"]);
 * ```
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  const name = args.positionals[0];
  if (name === "version" || (name === undefined && args.options.has("version"))) {
    io.out(`hamok ${HAMOK_VERSION}\n`);
    return 0;
  }
  if (name === undefined || name === "help") {
    (name === undefined && !args.options.has("help") ? io.err : io.out)(USAGE + "\n");
    return name === undefined && !args.options.has("help") ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.err(`hamok: unknown command '${name}'\n\n${USAGE}\n`);
    return 2;
  }
  if (args.options.has("help")) {
    io.out(command.help + "\n");
    return 0;
  }
  const ctx = new CliContext(args, io, env);
  try {
    return await command.run(ctx);
  } catch (error) {
    if (error instanceof HamokCliError) {
      io.err(`hamok: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof HamokError) {
      io.err(`hamok: ${error.message} (${error.code})\n`);
      return 1;
    }
    io.err(`hamok: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await ctx.close();
  }
}
