/**
 * The member side of the client protocol: answers the {@linkcode CLIENT_OPS} a process outside the
 * cluster sends (status, map reads and writes, publishes, map watches), with a size bound and a
 * per-sender rate limit. Writes go through this member like any of its own proposals.
 *
 * @module
 */

import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import type { EventBody } from "../codec/envelope.ts";
import type { Encoded, HamokMapState, MapWriteResult } from "../collections/map_state.ts";
import { HamokCodecError, HamokConfigError, HamokRateLimitedError } from "../errors.ts";
import {
  CLIENT_LIMITS,
  CLIENT_MAP_READ_OP,
  CLIENT_MAP_WRITE_OP,
  CLIENT_PUBLISH_OP,
  CLIENT_STATUS_OP,
  CLIENT_UNWATCH_OP,
  CLIENT_WATCH_OP,
} from "./client_ops.ts";
import type { PeerCounters } from "./peer_counters.ts";
import { REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";
import type { HamokStatus } from "./status.ts";

/** What the client service asks of its peer. */
export interface ClientServiceHost {
  /** This peer's status. */
  status(): HamokStatus;
  /** The replicated state of map `mapId`, if the log ever mentioned it. */
  findMapState(mapId: string): HamokMapState | undefined;
  /** A read barrier: resolves once this peer applied everything committed when it was called. */
  readBarrier(timeoutMs: number): Promise<void>;
  /**
   * Proposes a map command and resolves with its result once applied here; under `requestId` when
   * given (a command already applied under it is not applied again: its first result answers).
   */
  proposeMap(
    mapId: string,
    op: string,
    args: unknown,
    timeoutMs: number,
    requestId?: string,
  ): Promise<unknown>;
  /** Publishes an event on an emitter; resolves with the peers that acknowledged. */
  publish(emitterId: string, event: string, args: unknown[], timeoutMs: number): Promise<string[]>;
  /** Sends an event envelope to a peer's (or client's) inbox. */
  sendEvent(toPeerId: string, body: EventBody): void;
}

/** Limits of a {@linkcode ClientService}; defaults from {@linkcode CLIENT_LIMITS}. */
export type ClientServiceLimits = typeof CLIENT_LIMITS;

interface Bucket {
  tokens: number;
  at: number;
}

/** Longest request id a client may give a write. */
const MAX_CLIENT_REQUEST_ID = 128;
/** Longest map id a client may write to (as a collection id). */
const MAX_MAP_ID = 256;
/** Maps a member makes for clients' writes to map ids that do not exist yet (see `#write`). */
const MAX_CLIENT_NEW_MAPS = 256;
/** The event a watch gets when the map may have changed without it (a snapshot was installed). */
const WATCH_RESET_EVENT = "reset";

interface Watch {
  readonly peerId: string;
  readonly mapId: string;
  expires: number;
  seq: number;
}

/**
 * Serves client requests on a member.
 *
 * @example
 * ```ts ignore
 * const service = new ClientService(host, counters, 5000);
 * for (const op of CLIENT_OPS) rpc.handle(op, (payload, from) => service.handle(op, payload, from));
 * // in apply, while service.watching: service.applied("map", id, op, args, index);
 * ```
 */
export class ClientService {
  readonly #host: ClientServiceHost;
  readonly #counters: PeerCounters;
  readonly #timeoutMs: number;
  readonly #limits: ClientServiceLimits;
  readonly #buckets = new Map<string, Bucket>();
  /** The bucket of every sender together. */
  readonly #total: Bucket;
  /** Client writes in flight by their namespaced request id: a resend joins the first. */
  readonly #writes = new Map<string, Promise<Uint8Array>>();
  /** Map ids clients wrote to through this member before any state of them existed (bounded). */
  readonly #newMaps = new Set<string>();
  readonly #watches = new Map<string, Watch>();
  readonly #scheduler: Scheduler;
  /** Linearizable reads waiting on their barrier. */
  #barriers = 0;

  /** Creates the service; `timeoutMs` bounds the writes it makes for clients; clock of `scheduler`. */
  constructor(
    host: ClientServiceHost,
    counters: PeerCounters,
    timeoutMs: number,
    limits: ClientServiceLimits = CLIENT_LIMITS,
    scheduler: Scheduler = REAL_SCHEDULER,
  ) {
    this.#host = host;
    this.#scheduler = scheduler;
    this.#counters = counters;
    this.#timeoutMs = timeoutMs;
    this.#limits = limits;
    this.#total = { tokens: limits.totalRequestsPerSecond, at: scheduler.monotonicNow() };
  }

  /** True while at least one watch is open (the peer then reports applied map commands). */
  get watching(): boolean {
    return this.#watches.size > 0;
  }

  /** Serves one client request; rejects with a `HamokError` the router turns into an error answer. */
  handle(op: string, payload: Uint8Array, fromPeerId: string): Promise<Uint8Array | undefined> {
    try {
      this.#admit(payload, fromPeerId);
      switch (op) {
        case CLIENT_STATUS_OP:
          return Promise.resolve(encodeCbor(this.#host.status()));
        case CLIENT_MAP_READ_OP: {
          const args = decodeArgs(payload);
          if (args.consistency === undefined || args.consistency === "local") {
            return Promise.resolve(this.#read(args));
          }
          if (args.consistency !== "linearizable") {
            throw new HamokConfigError(
              `a map read's consistency is "local" or "linearizable", got ${
                JSON.stringify(args.consistency)
              }`,
            );
          }
          if (this.#barriers >= this.#limits.maxBarriers) {
            this.#counters.dropped("rate-limited");
            throw new HamokRateLimitedError(
              `${this.#limits.maxBarriers} linearizable client reads are in progress on this member`,
            );
          }
          this.#barriers++;
          return this.#host.readBarrier(this.#timeoutMs).then(() => this.#read(args)).finally(() => {
            this.#barriers--;
          });
        }
        case CLIENT_MAP_WRITE_OP:
          return this.#write(decodeArgs(payload), fromPeerId);
        case CLIENT_PUBLISH_OP:
          return this.#publish(decodeArgs(payload));
        case CLIENT_WATCH_OP:
          return Promise.resolve(this.#watch(decodeArgs(payload), fromPeerId));
        case CLIENT_UNWATCH_OP: {
          const watchId = stringField(decodeArgs(payload), "watchId");
          if (this.#watches.get(watchId)?.peerId === fromPeerId) this.#watches.delete(watchId);
          return Promise.resolve(undefined);
        }
        default:
          throw new HamokConfigError(`unknown client operation '${op}'`);
      }
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A command on `kind`/`id` was applied at `index`: streams it to the watches of that map, if it
   * changed the map (the map's revision is then `index`; a duplicate, a conflicting `ifRevision`, an
   * insert of a present key or a refused command leave it as it was and are not streamed).
   */
  applied(kind: string, id: string, op: string, args: unknown, index: number): void {
    if (kind !== "map") return;
    const now = this.#scheduler.monotonicNow();
    let payload: Uint8Array | undefined;
    let changed: boolean | undefined;
    for (const [watchId, watch] of this.#watches) {
      if (watch.expires < now) {
        this.#watches.delete(watchId);
        continue;
      }
      if (watch.mapId !== id) continue;
      changed ??= this.#host.findMapState(id)?.revision === index;
      if (!changed) return;
      payload ??= encodeCbor([index, args]);
      this.#host.sendEvent(watch.peerId, { emitterId: watchId, event: op, payload, seq: ++watch.seq });
    }
  }

  /**
   * This peer installed a snapshot up to `index`: the maps may have changed by commands no watch
   * saw, so every watch gets a `reset` event (the client then re-reads the map).
   */
  restored(index: number): void {
    if (this.#watches.size === 0) return;
    const now = this.#scheduler.monotonicNow();
    const payload = encodeCbor([index, null]);
    for (const [watchId, watch] of this.#watches) {
      if (watch.expires < now) {
        this.#watches.delete(watchId);
        continue;
      }
      this.#host.sendEvent(watch.peerId, {
        emitterId: watchId,
        event: WATCH_RESET_EVENT,
        payload,
        seq: ++watch.seq,
      });
    }
  }

  #admit(payload: Uint8Array, fromPeerId: string): void {
    if (payload.byteLength > this.#limits.maxPayloadBytes) {
      this.#counters.dropped("oversized");
      throw new HamokConfigError(
        `a client request carries at most ${this.#limits.maxPayloadBytes} bytes, got ${payload.byteLength}`,
      );
    }
    const now = this.#scheduler.monotonicNow();
    const rate = this.#limits.requestsPerSecond;
    let bucket = this.#buckets.get(fromPeerId);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#limits.maxSenders) {
        // the table is in order of last use: the first one is the least recently seen
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      bucket = { tokens: rate, at: now };
    } else {
      this.#buckets.delete(fromPeerId);
      refill(bucket, rate, now);
    }
    this.#buckets.set(fromPeerId, bucket);
    const total = this.#total;
    refill(total, this.#limits.totalRequestsPerSecond, now);
    if (bucket.tokens < 1) {
      this.#counters.dropped("rate-limited");
      throw new HamokRateLimitedError(`too many client requests from '${fromPeerId}'`);
    }
    if (total.tokens < 1) {
      this.#counters.dropped("rate-limited");
      throw new HamokRateLimitedError("too many client requests on this member");
    }
    bucket.tokens -= 1;
    total.tokens -= 1;
  }

  #read(args: Record<string, unknown>): Uint8Array {
    const mapId = stringField(args, "mapId");
    const state = this.#host.findMapState(mapId);
    const max = this.#limits.maxReadEntries;
    const limit = Math.min(max, typeof args.limit === "number" && args.limit > 0 ? args.limit : max);
    const entries: [Encoded, Encoded, number][] = [];
    if (state !== undefined) {
      if (Array.isArray(args.keys)) {
        for (const key of args.keys.slice(0, limit)) {
          if (typeof key !== "string" && !(key instanceof Uint8Array)) continue;
          const entry = state.lookup(key);
          if (entry !== undefined) entries.push([entry.key, entry.value, entry.revision]);
        }
      } else {
        for (const entry of state.entries()) {
          if (entries.length >= limit) break;
          entries.push([entry.key, entry.value, entry.revision]);
        }
      }
    }
    return encodeCbor({ mapId, size: state?.size ?? 0, revision: state?.revision ?? 0, entries });
  }

  #write(args: Record<string, unknown>, fromPeerId: string): Promise<Uint8Array> {
    const mapId = stringField(args, "mapId");
    if (mapId.length > MAX_MAP_ID) {
      throw new HamokConfigError(`a map id takes at most ${MAX_MAP_ID} characters`);
    }
    const key = encodedField(args, "key");
    let op: "set" | "delete";
    let command: Encoded[];
    if (args.op === "set") {
      op = "set";
      command = [key, encodedField(args, "value")];
    } else if (args.op === "delete") {
      op = "delete";
      command = [key];
    } else {
      throw new HamokConfigError(`a map write is "set" or "delete", got ${JSON.stringify(args.op)}`);
    }
    const clientRequestId = args.requestId;
    if (
      clientRequestId !== undefined &&
      (typeof clientRequestId !== "string" || clientRequestId.length === 0 ||
        clientRequestId.length > MAX_CLIENT_REQUEST_ID)
    ) {
      throw new HamokConfigError(
        `a client write's 'requestId' is a string of 1 to ${MAX_CLIENT_REQUEST_ID} characters`,
      );
    }
    // only a write that passed every check takes a place (a malformed one used one up for good)
    if (this.#host.findMapState(mapId) === undefined && !this.#newMaps.has(mapId)) {
      // a write makes the map's state on every member, for good: clients (anyone on the server,
      // without a cluster key) make at most a bounded number of maps through this member
      if (this.#newMaps.size >= MAX_CLIENT_NEW_MAPS) {
        throw new HamokRateLimitedError(
          `clients made ${MAX_CLIENT_NEW_MAPS} maps through this member, the most it makes; map '${mapId}' does not exist`,
        );
      }
      this.#newMaps.add(mapId);
    }
    if (clientRequestId === undefined) return this.#propose(mapId, op, command, undefined);
    // in the client's namespace: it cannot collide with a member's ids nor with another client's
    const requestId = `client:${fromPeerId}:${clientRequestId}`;
    const inFlight = this.#writes.get(requestId);
    if (inFlight !== undefined) return inFlight;
    const write = this.#propose(mapId, op, command, requestId).finally(() => this.#writes.delete(requestId));
    this.#writes.set(requestId, write);
    return write;
  }

  async #propose(
    mapId: string,
    op: string,
    command: Encoded[],
    requestId: string | undefined,
  ): Promise<Uint8Array> {
    const result = requestId === undefined
      ? await this.#host.proposeMap(mapId, op, command, this.#timeoutMs)
      : await this.#host.proposeMap(mapId, op, command, this.#timeoutMs, requestId);
    const written = result as MapWriteResult; // no ifRevision: never a conflict
    return encodeCbor({ previous: written.conflict ? null : written.previous });
  }

  async #publish(args: Record<string, unknown>): Promise<Uint8Array> {
    const emitterId = stringField(args, "emitterId");
    const event = stringField(args, "event");
    const values = Array.isArray(args.args) ? args.args : [];
    const peerIds = await this.#host.publish(emitterId, event, values, this.#timeoutMs);
    return encodeCbor({ peerIds });
  }

  #watch(args: Record<string, unknown>, fromPeerId: string): Uint8Array {
    const mapId = stringField(args, "mapId");
    const watchId = stringField(args, "watchId");
    const now = this.#scheduler.monotonicNow();
    for (const [id, watch] of this.#watches) if (watch.expires < now) this.#watches.delete(id);
    const existing = this.#watches.get(watchId);
    const expires = now + this.#limits.watchLeaseMs;
    if (existing !== undefined && existing.peerId === fromPeerId && existing.mapId === mapId) {
      existing.expires = expires;
      return encodeCbor({ leaseMs: this.#limits.watchLeaseMs, created: false });
    }
    if (existing !== undefined) throw new HamokConfigError(`watch '${watchId}' belongs to another client`);
    if (this.#watches.size >= this.#limits.maxWatches) {
      this.#counters.dropped("rate-limited");
      throw new HamokRateLimitedError(`this member serves at most ${this.#limits.maxWatches} watches`);
    }
    let mine = 0;
    for (const watch of this.#watches.values()) if (watch.peerId === fromPeerId) mine++;
    if (mine >= this.#limits.maxWatchesPerSender) {
      this.#counters.dropped("rate-limited");
      throw new HamokRateLimitedError(
        `this member serves at most ${this.#limits.maxWatchesPerSender} watches per client`,
      );
    }
    this.#watches.set(watchId, { peerId: fromPeerId, mapId, expires, seq: 0 });
    return encodeCbor({ leaseMs: this.#limits.watchLeaseMs, created: true });
  }
}

function refill(bucket: Bucket, rate: number, now: number): void {
  bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) * rate) / 1000);
  bucket.at = now;
}

function decodeArgs(payload: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = decodeCbor(payload);
  } catch (error) {
    throw new HamokCodecError("a client request payload is not CBOR", { cause: error });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HamokCodecError("a client request payload must be a CBOR map");
  }
  return value as Record<string, unknown>;
}

function stringField(args: Record<string, unknown>, name: string): string {
  const value = args[name];
  if (typeof value !== "string" || value.length === 0 || value.length > 1024) {
    throw new HamokConfigError(`a client request needs '${name}' (a non-empty string of at most 1024 chars)`);
  }
  return value;
}

function encodedField(args: Record<string, unknown>, name: string): Encoded {
  const value = args[name];
  if (typeof value === "string" || value instanceof Uint8Array) return value;
  throw new HamokConfigError(`a client request needs '${name}' as an encoded key or value (string or bytes)`);
}
