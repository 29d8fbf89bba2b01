/**
 * Coalescing of a subscriber's event acknowledgements per publisher.
 *
 * @module
 */

import type { WireError } from "../codec/envelope.ts";
import { REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";

/** Where an {@linkcode AckBatcher} sends what it coalesced (the peer's inbox sender). */
export interface AckSender {
  /** Sends one acknowledgement to `toPeerId`; `error` set: handling the event failed. */
  sendAck(toPeerId: string, emitterId: string, ackRequestId: string, error: WireError | undefined): void;
  /** Sends several successful acknowledgements to `toPeerId` in one message, in the order given. */
  sendAcks(toPeerId: string, acks: [emitterId: string, ackRequestId: string][]): void;
}

/**
 * Coalesces successful acknowledgements: those queued for one publisher within one microtask leave
 * as one message (a single one as a plain ack). A failure is never coalesced: it goes out at once,
 * right after the successes queued before it for the same publisher, so the publisher sees them in
 * the order the events were handled.
 *
 * @example
 * ```ts ignore
 * const acks = new AckBatcher({
 *   sendAck: (to, emitterId, ackRequestId, error) => send(to, { type: "ack", ... }),
 *   sendAcks: (to, list) => send(to, { type: "acks", ... }),
 * });
 * acks.acknowledge("pub-1", "chat", "a1");
 * acks.acknowledge("pub-1", "chat", "a2"); // both leave as one 'acks' message at the end of the microtask
 * ```
 */
export class AckBatcher {
  readonly #sender: AckSender;
  readonly #batches = new Map<string, [emitterId: string, ackRequestId: string][]>();
  #flushScheduled = false;
  #closed = false;
  readonly #flushAll = (): void => {
    this.#flushScheduled = false;
    for (const peerId of [...this.#batches.keys()]) this.#flush(peerId);
  };

  readonly #scheduler: Scheduler;

  /** Creates a batcher sending through `sender`; flushes are deferred through `scheduler`. */
  constructor(sender: AckSender, scheduler: Scheduler = REAL_SCHEDULER) {
    this.#sender = sender;
    this.#scheduler = scheduler;
  }

  /**
   * Acknowledges event `ackRequestId` of `emitterId` to the publisher `toPeerId`: queued if it
   * succeeded (`error` undefined), else sent at once after flushing what is queued for that peer.
   * Does nothing once closed.
   */
  acknowledge(toPeerId: string, emitterId: string, ackRequestId: string, error?: WireError): void {
    if (this.#closed) return;
    if (error !== undefined) {
      this.#flush(toPeerId);
      this.#sender.sendAck(toPeerId, emitterId, ackRequestId, error);
      return;
    }
    let batch = this.#batches.get(toPeerId);
    if (batch === undefined) {
      batch = [];
      this.#batches.set(toPeerId, batch);
    }
    batch.push([emitterId, ackRequestId]);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      this.#scheduler.defer(this.#flushAll);
    }
  }

  /** Drops what is queued and sends nothing more. */
  close(): void {
    this.#closed = true;
    this.#batches.clear();
  }

  #flush(toPeerId: string): void {
    const batch = this.#batches.get(toPeerId);
    if (batch === undefined) return;
    this.#batches.delete(toPeerId);
    if (this.#closed) return;
    const first = batch[0];
    if (batch.length === 1 && first !== undefined) {
      this.#sender.sendAck(toPeerId, first[0], first[1], undefined);
    } else if (batch.length <= MAX_ACKS_PER_MESSAGE && bytesOf(batch, 0, batch.length) <= ACKS_PART_BYTES) {
      this.#sender.sendAcks(toPeerId, batch);
    } else {
      // a receiver takes an acks message of at most 1 MiB (`ACKS_MAX_BYTES`): sent in parts that fit,
      // counted as UTF-8 at its largest (3 bytes per UTF-16 unit) and by number
      let from = 0;
      let bytes = 0;
      for (let at = 0; at < batch.length; at++) {
        const size = bytesOf(batch, at, at + 1);
        if (at > from && (at - from >= MAX_ACKS_PER_MESSAGE || bytes + size > ACKS_PART_BYTES)) {
          this.#sender.sendAcks(toPeerId, batch.slice(from, at));
          from = at;
          bytes = 0;
        }
        bytes += size;
      }
      this.#sender.sendAcks(toPeerId, batch.slice(from));
    }
  }
}

/** Acknowledgements per acks message at most. */
export const MAX_ACKS_PER_MESSAGE = 1024;
/** Bytes of ids per acks message at most: well under the 1 MiB a receiver takes, with the envelope. */
const ACKS_PART_BYTES = 768 * 1024;

/** The most bytes the ids of `batch[from, to)` take on the wire (with each pair's CBOR heads). */
function bytesOf(batch: readonly [string, string][], from: number, to: number): number {
  let bytes = 0;
  for (let i = from; i < to; i++) {
    const [emitterId, ackRequestId] = batch[i]!; // i < to <= length
    bytes += 3 * (emitterId.length + ackRequestId.length) + 6;
  }
  return bytes;
}
