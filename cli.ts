#!/usr/bin/env node
/**
 * The `hamok` command line: `hamok status`, `watch`, `map`, `publish`, `subscribe` and `bench`
 * against a running cluster over NATS, without joining it. Runs on Deno
 * (`deno run -A jsr:@hamok/core/cli`), Bun (`bunx hamok`) and Node (`npx hamok`).
 *
 * @example
 * ```ts ignore
 * import { main } from "@hamok/core/cli";
 * const status: number = await main(["status", "--nats", "nats://127.0.0.1:4222", "--cluster", "orders"]);
 * ```
 *
 * @module
 */

import process from "node:process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runCli, USAGE } from "./src/cli/main.ts";

export { USAGE };
export { parseArgs, type ParsedArgs } from "./src/cli/args.ts";
export { runCli } from "./src/cli/main.ts";
export type { CliIo } from "./src/cli/context.ts";
export {
  type ClusterStatus,
  clusterStatus,
  type ClusterStatusMember,
  renderStatus,
} from "./src/cli/status_command.ts";
export type { BenchSummary } from "./src/cli/bench_command.ts";
export type { HamokMemberStatus, HamokStatus } from "./src/cluster/status.ts";
export type { DropReason, PeerCounterValues } from "./src/cluster/peer_counters.ts";

/**
 * Runs the command line with `args` (without the runtime and script) on this process's standard
 * streams and environment; resolves with the exit status.
 *
 * @example
 * ```ts
 * import { main } from "@hamok/core/cli";
 * const status: number = await main(["--help"]); // prints the usage
 * console.log(status); // 0
 * ```
 */
export function main(args: readonly string[]): Promise<number> {
  return runCli(args, {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    errIsTty: process.stderr.isTTY === true,
  }, process.env);
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

if (isEntryPoint()) {
  main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}
