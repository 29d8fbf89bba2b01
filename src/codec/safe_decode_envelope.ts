/**
 * Decode-or-drop for receivers: a message that cannot be decoded is counted and dropped, never
 * thrown into the transport's delivery loop.
 *
 * @module
 */

import { HamokCodecError } from "../errors.ts";
import type { DecodeFailureStats } from "./decode_failure_counter.ts";
import { decodeEnvelope, type DecodeEnvelopeOptions, type WireEnvelope } from "./envelope.ts";

/**
 * Decodes `bytes` like {@linkcode decodeEnvelope}, but on a {@linkcode HamokCodecError} returns
 * `undefined`, increments `stats.decodeFailures` and stores the error in `stats.lastError`.
 * Other errors (a {@linkcode HamokConfigError} for an invalid `maxBytes`) are thrown.
 *
 * @example
 * ```ts
 * import { DecodeFailureCounter, encodeEnvelope, safeDecodeEnvelope } from "@hamok/core";
 * const stats = new DecodeFailureCounter();
 * const ok = encodeEnvelope({
 *   type: "ack",
 *   from: "p2",
 *   body: { emitterId: "chat", ackRequestId: "a1", peerId: "p2", ok: true },
 * });
 * console.log(safeDecodeEnvelope(ok, stats)?.type); // "ack"
 * console.log(safeDecodeEnvelope(ok.subarray(1), stats)); // undefined
 * console.log(stats.decodeFailures); // 1
 * ```
 */
export function safeDecodeEnvelope(
  bytes: Uint8Array,
  stats: DecodeFailureStats,
  options?: DecodeEnvelopeOptions,
): WireEnvelope | undefined {
  try {
    return decodeEnvelope(bytes, options);
  } catch (error) {
    if (!(error instanceof HamokCodecError)) throw error;
    stats.decodeFailures++;
    stats.lastError = error;
    return undefined;
  }
}
