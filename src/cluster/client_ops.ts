/**
 * The operations a process OUTSIDE the cluster (the `hamok` CLI, a health check) may ask of a
 * member, with their limits. They travel in ordinary `request` envelopes (`RequestBody.op`), so
 * they pass the same checks as every other message; the trust boundary drops requests from
 * non-members unless their op is in {@linkcode CLIENT_OPS}.
 *
 * @module
 */

/**
 * This member's status ({@linkcode HamokStatus}). The only client op a member also answers on the
 * broadcast subject, so a client that knows no peer id can ask every member at once.
 *
 * @example
 * ```ts
 * import { CLIENT_STATUS_OP } from "@hamok/core/internal";
 * console.log(CLIENT_STATUS_OP); // "client.status"
 * ```
 */
export const CLIENT_STATUS_OP = "client.status";
/**
 * Read keys of a map (payload `{ mapId, keys?, limit? }`).
 *
 * @example
 * ```ts
 * import { CLIENT_MAP_READ_OP } from "@hamok/core/internal";
 * console.log(CLIENT_MAP_READ_OP); // "client.map.read"
 * ```
 */
export const CLIENT_MAP_READ_OP = "client.map.read";
/**
 * Write a map through the member (payload `{ mapId, op: "set" | "delete", key, value?, requestId? }`).
 * With a `requestId` (at most 128 characters) the member proposes the write under
 * `client:<sender>:<requestId>`, so a client that sends the same write again after an unknown
 * outcome has it applied at most once (a member that does not know the field ignores it).
 *
 * @example
 * ```ts
 * import { CLIENT_MAP_WRITE_OP } from "@hamok/core/internal";
 * console.log(CLIENT_MAP_WRITE_OP); // "client.map.write"
 * ```
 */
export const CLIENT_MAP_WRITE_OP = "client.map.write";
/**
 * Publish an event through the member (payload `{ emitterId, event, args }`).
 *
 * @example
 * ```ts
 * import { CLIENT_PUBLISH_OP } from "@hamok/core/internal";
 * console.log(CLIENT_PUBLISH_OP); // "client.publish"
 * ```
 */
export const CLIENT_PUBLISH_OP = "client.publish";
/**
 * Start or renew a watch of a map's committed commands (payload `{ mapId, watchId }`, answer
 * `{ leaseMs, created }`: `created` is true when the member had no such watch and made it). The
 * member streams the commands that changed the map to the client's inbox as `event` envelopes
 * (`emitterId` the watch id, `event` the op, payload `[index, args]`, `seq` 1, 2, ... per watch)
 * until the lease runs out; after it installs a snapshot it sends each watch an event `reset`
 * (payload `[snapshotIndex, null]`): changes may have been skipped.
 *
 * @example
 * ```ts
 * import { CLIENT_WATCH_OP } from "@hamok/core/internal";
 * console.log(CLIENT_WATCH_OP); // "client.watch"
 * ```
 */
export const CLIENT_WATCH_OP = "client.watch";
/**
 * End a watch (payload `{ watchId }`).
 *
 * @example
 * ```ts
 * import { CLIENT_UNWATCH_OP } from "@hamok/core/internal";
 * console.log(CLIENT_UNWATCH_OP); // "client.unwatch"
 * ```
 */
export const CLIENT_UNWATCH_OP = "client.unwatch";

/**
 * Every op a non-member may send. The trust boundary consults this set (and nothing else) before
 * it lets a request from outside the membership through.
 *
 * @example
 * ```ts
 * import { CLIENT_OPS } from "@hamok/core/internal";
 * console.log(CLIENT_OPS.has("client.status")); // true
 * console.log(CLIENT_OPS.has("join")); // false
 * ```
 */
export const CLIENT_OPS: ReadonlySet<string> = new Set([
  CLIENT_STATUS_OP,
  CLIENT_MAP_READ_OP,
  CLIENT_MAP_WRITE_OP,
  CLIENT_PUBLISH_OP,
  CLIENT_WATCH_OP,
  CLIENT_UNWATCH_OP,
]);

/**
 * Limits of client requests, as a member enforces them.
 *
 * @example
 * ```ts
 * import { CLIENT_LIMITS } from "@hamok/core/internal";
 * console.log(CLIENT_LIMITS.maxPayloadBytes); // 65536
 * ```
 */
export const CLIENT_LIMITS: {
  /** Largest request payload accepted, in bytes. */
  readonly maxPayloadBytes: number;
  /** Requests per second one sender may make (token bucket, burst of the same size). */
  readonly requestsPerSecond: number;
  /** Distinct senders the rate limiter tracks (the least recently seen is forgotten beyond). */
  readonly maxSenders: number;
  /**
   * Requests per second all senders together may make (token bucket, burst of the same size): a
   * sender that changes its id at every request gets no more than this.
   */
  readonly totalRequestsPerSecond: number;
  /** Entries one `client.map.read` returns at most. */
  readonly maxReadEntries: number;
  /** Watches one member serves at once. */
  readonly maxWatches: number;
  /** Watches one member serves at once for one sender. */
  readonly maxWatchesPerSender: number;
  /** A watch not renewed within this many ms ends. */
  readonly watchLeaseMs: number;
  /** Linearizable `client.map.read`s one member runs at once (each waits on a read barrier). */
  readonly maxBarriers: number;
} = {
  maxPayloadBytes: 64 * 1024,
  requestsPerSecond: 5000,
  maxSenders: 1024,
  totalRequestsPerSecond: 20_000,
  maxReadEntries: 1000,
  maxWatches: 64,
  maxWatchesPerSender: 8,
  watchLeaseMs: 10_000,
  maxBarriers: 256,
};
