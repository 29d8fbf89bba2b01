/**
 * The `hamok` command line's argument parser: positionals and `--name value`, `--name=value` or
 * bare `--flag` options.
 *
 * @module
 */

/**
 * Parsed arguments.
 *
 * @example
 * ```ts
 * import type { ParsedArgs } from "@hamok/core/cli";
 * const args: ParsedArgs = { positionals: ["status"], options: new Map([["json", true]]) };
 * ```
 */
export interface ParsedArgs {
  /** Arguments that are not options, in order. */
  readonly positionals: readonly string[];
  /** Options by name (without the dashes); `true` for a bare flag. */
  readonly options: ReadonlyMap<string, string | true>;
}

/**
 * Parses `argv`. Names in `flags` never take a value; any other option takes the next argument
 * unless it starts with `--`. `--` ends the options.
 *
 * @example
 * ```ts
 * import { parseArgs } from "@hamok/core/cli";
 * const { positionals, options } = parseArgs(["map", "get", "--map", "stock", "apples"], new Set());
 * console.log(positionals, options.get("map")); // ["map", "get", "apples"] "stock"
 * ```
 */
export function parseArgs(argv: readonly string[], flags: ReadonlySet<string>): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      if (eq > 0) {
        options.set(arg.slice(2, eq), arg.slice(eq + 1));
        continue;
      }
      const name = arg.slice(2);
      const next = argv[i + 1];
      if (flags.has(name) || next === undefined || next.startsWith("--")) options.set(name, true);
      else {
        options.set(name, next);
        i++;
      }
      continue;
    }
    if (arg === "-h") {
      options.set("help", true);
      continue;
    }
    positionals.push(arg);
  }
  return { positionals, options };
}
