/**
 * A ready logger that writes one line per message to the console, filtered by level and
 * rate-limited: a flood of identical messages becomes the first line plus one "suppressed N" line.
 *
 * @module
 */

import type { HamokLogger } from "../config.ts";

/**
 * Levels of {@linkcode consoleLogger}, from the most verbose.
 *
 * @example
 * ```ts
 * import type { HamokLogLevel } from "@hamok/core";
 * const level: HamokLogLevel = "info";
 * ```
 */
export type HamokLogLevel = "debug" | "info" | "warn" | "error" | "silent";

/**
 * Options of {@linkcode consoleLogger}.
 *
 * @example
 * ```ts
 * import type { ConsoleLoggerOptions } from "@hamok/core";
 * const lines: string[] = [];
 * const options: ConsoleLoggerOptions = { write: (_level, line) => lines.push(line), windowMs: 5000 };
 * ```
 */
export interface ConsoleLoggerOptions {
  /** Where lines go. Default: `console.log` for debug and info, `console.warn`/`console.error` above. */
  write?: (level: Exclude<HamokLogLevel, "silent">, line: string) => void;
  /** Identical messages within this many ms after the first are counted, not written. Default 10000. */
  windowMs?: number;
  /** The clock (ms). Default `Date.now`. */
  now?: () => number;
  /** Prefix the ISO time to each line. Default true. */
  timestamps?: boolean;
}

const RANK = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 } as const;
const MAX_KEYS = 1024;

interface Seen {
  readonly level: Exclude<HamokLogLevel, "silent">;
  readonly message: string;
  until: number;
  suppressed: number;
}

/**
 * A {@linkcode HamokLogger} writing to the console from `level` up (default `"info"`). Each
 * message is one line (`<time> <LEVEL> <message>: <detail>`); an `Error` detail shows its code and
 * message. The same level and message repeated within `windowMs` is written once; when the
 * window ends the logger writes how many were suppressed.
 *
 * @example
 * ```ts
 * import { consoleLogger, Hamok } from "@hamok/core";
 * const hamok = new Hamok({ logger: consoleLogger("info") });
 * await hamok.join(); // "... INFO  hamok <id>: no cluster found, bootstrapping one", "... joined ..."
 * hamok.close();
 * ```
 */
export function consoleLogger(
  level: HamokLogLevel = "info",
  options: ConsoleLoggerOptions = {},
): HamokLogger {
  if (!(level in RANK)) throw new TypeError(`unknown log level ${JSON.stringify(level)}`);
  const min = RANK[level];
  const write = options.write ?? defaultWrite;
  const windowMs = options.windowMs ?? 10_000;
  const now = options.now ?? Date.now;
  const timestamps = options.timestamps ?? true;
  const seen = new Map<string, Seen>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const line = (lvl: Exclude<HamokLogLevel, "silent">, text: string): string => {
    const head = `${lvl.toUpperCase().padEnd(5)} ${text}`;
    return timestamps ? `${new Date(now()).toISOString()} ${head}` : head;
  };
  const flush = (force: boolean): void => {
    const t = now();
    for (const [key, entry] of seen) {
      if (!force && entry.until > t) continue;
      seen.delete(key);
      if (entry.suppressed > 0) {
        write(entry.level, line(entry.level, `${entry.message} (suppressed ${entry.suppressed} identical)`));
      }
    }
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (seen.size > 0) schedule();
  };
  const schedule = (): void => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      flush(false);
    }, windowMs);
    // never keep a process alive for a summary line
    (timer as { unref?: () => void }).unref?.();
  };
  const log = (lvl: Exclude<HamokLogLevel, "silent">, message: string, details: unknown[]): void => {
    if (RANK[lvl] < min) return;
    const text = oneLine(message, details);
    const key = `${lvl}\u0000${text}`;
    const t = now();
    const entry = seen.get(key);
    if (entry !== undefined && entry.until > t) {
      entry.suppressed++;
      return;
    }
    if (entry !== undefined) flush(false);
    if (seen.size >= MAX_KEYS) flush(true);
    seen.set(key, { level: lvl, message: text, until: t + windowMs, suppressed: 0 });
    schedule();
    write(lvl, line(lvl, text));
  };
  return {
    debug: (message, ...details) => log("debug", message, details),
    info: (message, ...details) => log("info", message, details),
    warn: (message, ...details) => log("warn", message, details),
    error: (message, ...details) => log("error", message, details),
  };
}

function defaultWrite(level: Exclude<HamokLogLevel, "silent">, line: string): void {
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

function oneLine(message: string, details: unknown[]): string {
  let text = message;
  for (const detail of details) {
    if (detail === undefined) continue;
    text += `: ${describe(detail)}`;
  }
  if (text.length > MAX_LINE) text = `${text.slice(0, MAX_LINE)}… (${text.length} characters)`;
  // line breaks and the blanks around them become one space; split and trim are linear (a regular
  // expression with blanks on both sides backtracked quadratically on a run of spaces)
  if (text.indexOf("\n") < 0 && text.indexOf("\r") < 0) return text;
  return text.split(/[\r\n]+/).map((part) => part.trim()).filter((part) => part.length > 0).join(" ");
}

/** The longest line written (a detail can carry text from the network). */
const MAX_LINE = 4096;

function describe(detail: unknown): string {
  if (detail instanceof Error) {
    const code = (detail as { code?: unknown }).code;
    const cause = detail.cause instanceof Error ? ` (cause: ${detail.cause.message})` : "";
    return `${typeof code === "string" ? `${code} ` : ""}${detail.message}${cause}`;
  }
  if (typeof detail === "string") return detail;
  try {
    return JSON.stringify(detail) ?? String(detail);
  } catch {
    return String(detail);
  }
}
