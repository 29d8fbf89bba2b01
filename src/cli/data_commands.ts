/**
 * `hamok map`, `hamok publish`, `hamok subscribe` and `hamok watch`: scripting and debugging
 * against a running cluster. Writes go through a member (the leader unless `--peer` is given);
 * map watches are streamed by a member; events are heard on their subjects directly.
 *
 * @module
 */

import process from "node:process";
import type { HamokClientMapChange, HamokClientWatchGap, HamokClientWriteOptions } from "./client.ts";
import { type CliContext, CONNECTION_HELP, HamokCliError, parseValue } from "./context.ts";

const TARGET_HELP = `  --peer ID         the member to go through (default: the leader)
  --codec C         how keys and values are encoded: cbor (the maps' default) or string`;

/** `hamok map --help`. */
export const MAP_HELP: string = `usage: hamok map <get|set|delete|list> --map ID [KEY] [VALUE] [options]

  hamok map get --map stock apples        prints the value (exit 1 if absent)
  hamok map set --map stock apples 10     sets it (VALUE is JSON if it parses, else a string)
  hamok map delete --map stock apples     removes it
  hamok map list --map stock [--limit N]  prints every entry (key, value, revision)

Reads go through a barrier at the leader first, so every write acknowledged before the read (through
any member) is in it; --local reads the member's replica as it is (no round trip; it may lag by a few
writes). A write that gets no answer in time may or may not be applied: the error names its request id;
run it again with --request-id ID (the same id) and it is applied at most once.

options:
  --json            print JSON
  --local           read the member's replica without a barrier (get, list)
  --request-id ID   the request id of a set or delete (default: a random one)
${TARGET_HELP}
${CONNECTION_HELP}`;

/** `hamok publish --help`. */
export const PUBLISH_HELP: string = `usage: hamok publish --emitter ID --event E [ARG...] [options]

Publishes one event through a member and prints the peers that acknowledged it. Each ARG is JSON
if it parses, else a string.

options:
${TARGET_HELP}
${CONNECTION_HELP}`;

/** `hamok subscribe --help`. */
export const SUBSCRIBE_HELP: string = `usage: hamok subscribe --emitter ID [--event E] [options]

Prints the arguments of every event as one JSON array per line (for scripts). Events travel only
while some member subscribes to them, so this hears what the members hear.

options:
  --count N         exit after N events
${CONNECTION_HELP}`;

/** `hamok watch --help`. */
export const WATCH_HELP: string = `usage: hamok watch --map ID | --emitter ID [--event E] [options]

Streams, as they happen, the committed changes of a map (from a member) or the events of an
emitter (heard on their subjects), one line each, until interrupted. A map watch streams only
commands that changed the map; when changes may have been skipped (the member caught up from a
snapshot, restarted or lost the watch) it says so on stderr: "hamok: watch: gap (...)".

options:
  --count N         exit after N lines
  --json            one JSON object per line
${TARGET_HELP}
${CONNECTION_HELP}`;

/**
 * Reads are linearizable unless `--local`: `hamok map get` right after a `hamok map set` through
 * another member must see it (a member's replica, even the leader's, may not have applied it yet).
 */
function consistency(ctx: CliContext): { consistency: "local" | "linearizable" } {
  return { consistency: ctx.flag("local") ? "local" : "linearizable" };
}

/** Runs `hamok map ...`. */
export async function mapCommand(ctx: CliContext): Promise<number> {
  const [, action, key, value] = ctx.args.positionals;
  const mapId = ctx.required("map", "ID");
  const client = await ctx.client();
  switch (action) {
    case "get": {
      if (key === undefined) throw new HamokCliError("usage: hamok map get --map ID KEY", 2);
      const peer = await ctx.target();
      const { entries } = await client.mapRead(peer, mapId, { keys: [ctx.encode(key)], ...consistency(ctx) });
      const entry = entries[0];
      if (entry === undefined) {
        ctx.io.err(`hamok: '${key}' is not in map '${mapId}'\n`);
        return 1;
      }
      ctx.io.out(
        ctx.flag("json")
          ? JSON.stringify({
            key,
            value: JSON.parse(asJson(ctx.show(entry.value))),
            revision: entry.revision,
          }) + "\n"
          : ctx.show(entry.value) + "\n",
      );
      return 0;
    }
    case "set": {
      if (key === undefined || value === undefined) {
        throw new HamokCliError("usage: hamok map set --map ID KEY VALUE", 2);
      }
      const previous = await client.mapWrite(
        await ctx.target(),
        mapId,
        ctx.encode(key),
        ctx.encode(value),
        writeOptions(ctx),
      );
      if (ctx.flag("json")) {
        ctx.io.out(
          JSON.stringify({
            key,
            previous: previous === null ? null : JSON.parse(asJson(ctx.show(previous))),
          }) + "\n",
        );
      } else ctx.io.out(previous === null ? "OK (new key)\n" : `OK (was ${ctx.show(previous)})\n`);
      return 0;
    }
    case "delete": {
      if (key === undefined) throw new HamokCliError("usage: hamok map delete --map ID KEY", 2);
      const previous = await client.mapWrite(
        await ctx.target(),
        mapId,
        ctx.encode(key),
        undefined,
        writeOptions(ctx),
      );
      ctx.io.out(previous === null ? "not found\n" : `deleted (was ${ctx.show(previous)})\n`);
      return previous === null ? 1 : 0;
    }
    case "list": {
      const answer = await client.mapRead(await ctx.target(), mapId, {
        limit: ctx.integer("limit", 1000),
        ...consistency(ctx),
      });
      if (ctx.flag("json")) {
        const entries = answer.entries.map((e) => ({
          key: JSON.parse(asJson(ctx.show(e.key))),
          value: JSON.parse(asJson(ctx.show(e.value))),
          revision: e.revision,
        }));
        ctx.io.out(JSON.stringify({ mapId, size: answer.size, revision: answer.revision, entries }) + "\n");
      } else {
        for (const e of answer.entries) {
          ctx.io.out(`${ctx.show(e.key)}\t${ctx.show(e.value)}\t${e.revision}\n`);
        }
        if (answer.size > answer.entries.length) {
          ctx.io.err(`(${answer.entries.length} of ${answer.size} entries; raise --limit)\n`);
        }
      }
      return 0;
    }
    default:
      throw new HamokCliError(`unknown map action '${action ?? ""}'\n\n${MAP_HELP}`, 2);
  }
}

/** Runs `hamok publish`. */
export async function publishCommand(ctx: CliContext): Promise<number> {
  const emitterId = ctx.required("emitter", "ID");
  const event = ctx.required("event", "NAME");
  const args = ctx.args.positionals.slice(1).map(parseValue);
  const client = await ctx.client();
  const peers = await client.publish(await ctx.target(), emitterId, event, args);
  ctx.io.out(peers.length === 0 ? "published (no subscriber)\n" : `acknowledged by ${peers.join(", ")}\n`);
  return 0;
}

/** Runs `hamok subscribe` (`json` lines of arguments) or `hamok watch --emitter`. */
export async function eventsCommand(ctx: CliContext, style: "subscribe" | "watch"): Promise<number> {
  const emitterId = ctx.required("emitter", "ID");
  const event = ctx.option("event");
  const count = ctx.integer("count", Number.MAX_SAFE_INTEGER);
  const client = await ctx.client();
  let seen = 0;
  return await new Promise<number>((resolve) => {
    const stop = client.subscribe(emitterId, event, (e) => {
      if (style === "subscribe") ctx.io.out(JSON.stringify(e.args) + "\n");
      else if (ctx.flag("json")) {
        ctx.io.out(
          JSON.stringify({
            time: new Date().toISOString(),
            event: e.event,
            from: e.fromPeerId,
            args: e.args,
          }) + "\n",
        );
      } else {ctx.io.out(
          `${new Date().toISOString()} ${e.event} from ${e.fromPeerId}: ${JSON.stringify(e.args)}\n`,
        );}
      if (++seen >= count) {
        stop();
        resolve(0);
      }
    });
    ctx.onClose(stop);
    untilInterrupted(ctx, () => resolve(0));
  });
}

/** Runs `hamok watch`. */
export async function watchCommand(ctx: CliContext): Promise<number> {
  if (ctx.option("emitter") !== undefined) return await eventsCommand(ctx, "watch");
  const mapId = ctx.option("map");
  if (mapId === undefined) {
    throw new HamokCliError(`watch needs --map ID or --emitter ID\n\n${WATCH_HELP}`, 2);
  }
  const count = ctx.integer("count", Number.MAX_SAFE_INTEGER);
  const client = await ctx.client();
  const peer = await ctx.target();
  let seen = 0;
  return await new Promise<number>((resolve, reject) => {
    const print = (change: HamokClientMapChange) => {
      ctx.io.out(
        ctx.flag("json") ? JSON.stringify(describeChange(ctx, change)) + "\n" : changeLine(ctx, change),
      );
      if (++seen >= count) resolve(0);
    };
    const onGap = (gap: HamokClientWatchGap) =>
      ctx.io.err(
        `hamok: watch: gap (${gap.reason}${
          gap.index === undefined ? "" : ` at ${gap.index}`
        }): changes may have been skipped; re-read the map\n`,
      );
    client.watchMap(peer, mapId, print, (error) => ctx.io.err(`hamok: watch: ${error.message}\n`), { onGap })
      .then(
        (stop) => {
          ctx.onClose(stop);
          ctx.io.err(`watching map '${mapId}' through ${peer}\n`);
        },
        reject,
      );
    untilInterrupted(ctx, () => resolve(0));
  });
}

function writeOptions(ctx: CliContext): HamokClientWriteOptions {
  const requestId = ctx.option("request-id");
  return requestId === undefined ? {} : { requestId };
}

function changeLine(ctx: CliContext, change: HamokClientMapChange): string {
  const d = describeChange(ctx, change);
  const parts = [`rev ${d.revision}`, d.op];
  if (d.key !== undefined) parts.push(d.key);
  if (d.value !== undefined) parts.push("=", d.value);
  if (d.args !== undefined) parts.push(d.args);
  return parts.join(" ") + "\n";
}

function describeChange(
  ctx: CliContext,
  change: HamokClientMapChange,
): { revision: number; op: string; key?: string; value?: string; args?: string } {
  const args = Array.isArray(change.args) ? change.args : [];
  const base = { revision: change.index, op: change.op };
  switch (change.op) {
    case "set":
    case "insert":
    case "updateIf":
      return { ...base, key: ctx.show(args[0]), value: ctx.show(args[1]) };
    case "delete":
    case "remove":
    case "removeIf":
      return { ...base, key: ctx.show(args[0]) };
    case "clear":
      return base;
    default:
      return { ...base, args: ctx.show(change.args) };
  }
}

function asJson(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}

function untilInterrupted(ctx: CliContext, done: () => void): void {
  const onSignal = () => done();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  ctx.onClose(() => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  });
}
