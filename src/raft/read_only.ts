/**
 * The leader's bookkeeping of ReadIndex requests: each request records the commit index at the
 * time it arrived and waits until a majority of voters has acknowledged a heartbeat carrying its
 * context (or the context of a later request, which confirms the earlier ones too).
 *
 * @module
 */

/** One pending ReadIndex request. */
export interface ReadRequest {
  /** The caller's context (request id). */
  readonly ctx: string;
  /** The commit index when the request arrived: the read may be served once it is applied. */
  readonly index: number;
  /** The member that asked (this node for local reads, a follower for forwarded ones). */
  readonly from: string;
  /** Members that acknowledged a heartbeat carrying this context. */
  readonly acks: Set<string>;
}

/**
 * Pending ReadIndex requests, in arrival order.
 *
 * @example
 * ```ts
 * import { ReadOnly } from "./read_only.ts";
 * const ro = new ReadOnly();
 * ro.add("r1", 7, "a");
 * ro.add("r2", 8, "b");
 * ro.ack("r2", "c");
 * console.log(ro.advance("r2").map((r) => r.ctx)); // ["r1", "r2"]
 * ```
 */
export class ReadOnly {
  private queue: ReadRequest[] = [];
  private readonly byCtx = new Map<string, ReadRequest>();

  /** Number of pending requests. */
  get size(): number {
    return this.queue.length;
  }

  /** The context of the latest pending request (what a heartbeat should carry), if any. */
  get lastCtx(): string | undefined {
    return this.queue[this.queue.length - 1]?.ctx;
  }

  /** Adds a request; returns false (and ignores it) if the context is already pending. */
  add(ctx: string, index: number, from: string): boolean {
    if (this.byCtx.has(ctx)) return false;
    const request: ReadRequest = { ctx, index, from, acks: new Set() };
    this.queue.push(request);
    this.byCtx.set(ctx, request);
    return true;
  }

  /** Records `from`'s acknowledgement of `ctx`; returns the request, or undefined if unknown. */
  ack(ctx: string, from: string): ReadRequest | undefined {
    const request = this.byCtx.get(ctx);
    if (request === undefined) return undefined;
    request.acks.add(from);
    return request;
  }

  /** Removes and returns every request up to and including `ctx`, in arrival order. */
  advance(ctx: string): ReadRequest[] {
    const position = this.queue.findIndex((r) => r.ctx === ctx);
    if (position < 0) return [];
    const done = this.queue.slice(0, position + 1);
    this.queue = this.queue.slice(position + 1);
    for (const request of done) this.byCtx.delete(request.ctx);
    return done;
  }

  /** Removes and returns every pending request (leadership lost). */
  drain(): ReadRequest[] {
    const all = this.queue;
    this.queue = [];
    this.byCtx.clear();
    return all;
  }
}
