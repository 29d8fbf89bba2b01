/**
 * What every `hamok` command gets: its parsed arguments, its output streams, and a connection to
 * the cluster as a non-member client, opened on demand.
 *
 * @module
 */

import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import type { Encoded } from "../collections/map_state.ts";
import { HamokError } from "../errors.ts";
import { NatsTransport } from "../transport/nats_transport.ts";
import type { ParsedArgs } from "./args.ts";
import { HAMOK_CLIENT_DEFAULT_TIMEOUT_MS, HamokClient, leaderOf } from "./client.ts";

/** A CLI failure with the message shown to the user and the exit status. */
export class HamokCliError extends HamokError {
  /** The process exit status. */
  readonly exitCode: number;

  /** Creates the error. */
  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, "HAMOK_CONFIG", options);
    this.exitCode = exitCode;
  }
}

/** Where a command writes. */
export interface CliIo {
  /** Writes to standard output. */
  out(text: string): void;
  /** Writes to standard error. */
  err(text: string): void;
  /** True when standard error is a terminal (progress bars). */
  readonly errIsTty: boolean;
}

/** The options every command that talks to a cluster understands. */
export const CONNECTION_HELP: string = `connection options:
  --nats URL        NATS server (default $HAMOK_NATS or nats://127.0.0.1:4222)
  --cluster ID      cluster id (default $HAMOK_CLUSTER or "default")
  --prefix P        subject prefix, if the cluster uses a custom one
  --key KEY         cluster key, if the cluster authenticates (default $HAMOK_CLUSTER_KEY)
  --timeout MS      timeout of each request (default ${HAMOK_CLIENT_DEFAULT_TIMEOUT_MS}; 3000 for the status round)`;

/** One command's context. */
export class CliContext {
  /** The parsed arguments. */
  readonly args: ParsedArgs;
  /** The output streams. */
  readonly io: CliIo;
  /** The environment. */
  readonly env: Readonly<Record<string, string | undefined>>;
  #transport: NatsTransport | undefined;
  #client: HamokClient | undefined;
  readonly #cleanups: (() => void)[] = [];

  /** Creates the context. */
  constructor(args: ParsedArgs, io: CliIo, env: Readonly<Record<string, string | undefined>>) {
    this.args = args;
    this.io = io;
    this.env = env;
  }

  /** A string option, or `fallback`. */
  option(name: string, fallback?: string): string | undefined {
    const value = this.args.options.get(name);
    if (value === true) throw new HamokCliError(`--${name} needs a value`, 2);
    return value ?? fallback;
  }

  /** A required string option. */
  required(name: string, what: string): string {
    const value = this.option(name);
    if (value === undefined || value.length === 0) throw new HamokCliError(`missing --${name} ${what}`, 2);
    return value;
  }

  /** A positive integer option. */
  integer(name: string, fallback: number): number {
    const raw = this.option(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) {
      throw new HamokCliError(`--${name} must be a positive integer, got ${raw}`, 2);
    }
    return value;
  }

  /** True if the flag was given. */
  flag(name: string): boolean {
    return this.args.options.get(name) === true;
  }

  /** The cluster id. */
  get clusterId(): string {
    return this.option("cluster", this.env.HAMOK_CLUSTER ?? "default")!;
  }

  /** Connects (once) and returns the client. */
  async client(): Promise<HamokClient> {
    if (this.#client !== undefined) return this.#client;
    const url = this.option("nats", this.env.HAMOK_NATS ?? "nats://127.0.0.1:4222")!;
    try {
      this.#transport = await NatsTransport.connect({
        servers: url,
        reconnect: false,
        maxReconnectAttempts: 0,
      });
    } catch (error) {
      throw new HamokCliError(`cannot connect to NATS at ${url} (is nats-server running?)`, 1, {
        cause: error,
      });
    }
    const key = this.option("key", this.env.HAMOK_CLUSTER_KEY);
    const prefix = this.option("prefix");
    const timeoutMs = this.option("timeout") === undefined ? undefined : this.integer("timeout", 0);
    this.#client = new HamokClient(this.#transport, {
      clusterId: this.clusterId,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(prefix === undefined ? {} : { subjectPrefix: prefix }),
      ...(key === undefined ? {} : { clusterKey: key }),
    });
    return this.#client;
  }

  /**
   * The member to send requests to: `--peer`, else the leader (from a status round). Rejects
   * with a clear error when nobody answers.
   */
  async target(): Promise<string> {
    const peer = this.option("peer");
    if (peer !== undefined) return peer;
    const client = await this.client();
    const views = await client.statusAll();
    if (views.length === 0) throw this.noAnswer(client);
    return leaderOf(views) ?? views[0]!.peerId;
  }

  /** The error of a cluster that did not answer. */
  noAnswer(client: HamokClient): HamokCliError {
    const unauthenticated = client.counters.values().dropped.unauthenticated;
    if (unauthenticated > 0) {
      return new HamokCliError(
        `answers from cluster '${this.clusterId}' failed authentication: wrong or missing --key`,
      );
    }
    return new HamokCliError(
      `no member of cluster '${this.clusterId}' answered within ${client.statusWindowMs} ms ` +
        `(no such cluster on this NATS server, or a wrong --key)`,
    );
  }

  /** Runs `fn` when the command ends. */
  onClose(fn: () => void): void {
    this.#cleanups.push(fn);
  }

  /** Encodes a key or value given on the command line (JSON if it parses, else the string). */
  encode(text: string): Encoded {
    if (this.option("codec", "cbor") === "string") return text;
    return encodeCbor(parseValue(text));
  }

  /** Shows an encoded key or value (decoded with the chosen codec). */
  show(encoded: unknown): string {
    return showValue(encoded);
  }

  /** Releases the client and the connection. */
  async close(): Promise<void> {
    for (const fn of this.#cleanups.splice(0)) fn();
    this.#client?.close();
    await this.#transport?.close().catch(() => {});
  }
}

/** A command-line value: JSON if it parses, else the string itself. */
export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A readable form of an encoded key or value (CBOR-decoded when possible). */
export function showValue(encoded: unknown): string {
  if (typeof encoded === "string") return encoded;
  if (encoded instanceof Uint8Array) {
    try {
      return JSON.stringify(decodeCbor(encoded), jsonReplacer);
    } catch {
      return `0x${[...encoded].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
    }
  }
  return JSON.stringify(encoded, jsonReplacer) ?? String(encoded);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return showValue(value);
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}
