#!/usr/bin/env node
/**
 * The `hamok` command line. This is a placeholder until the CLI lands: it prints its usage and
 * exits with status 2 whatever it is given.
 *
 * @example
 * ```ts
 * import { main } from "@hamok/core/cli";
 * const status: number = main([]); // prints the usage to stderr
 * console.log(status); // 2
 * ```
 *
 * @module
 */

import process from "node:process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** What `hamok` prints when it cannot do what it was asked. */
export const USAGE: string =
  "usage: hamok <command> [options]\n(no commands yet: the Hamok CLI is not built yet)";

/**
 * Runs the command line with `args` (without the runtime and script) and returns the exit status.
 *
 * @example
 * ```ts
 * import { main } from "@hamok/core/cli";
 * console.log(main(["--help"])); // 2
 * ```
 */
export function main(args: readonly string[]): number {
  void args;
  process.stderr.write(USAGE + "\n");
  return 2;
}

function isEntryPoint(): boolean {
  const flag = (import.meta as { main?: boolean }).main;
  if (typeof flag === "boolean") return flag;
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = main(process.argv.slice(2));
