/**
 * Counting of dropped wire messages, so a receiver can "drop and count" what it cannot decode.
 *
 * @module
 */

import type { HamokCodecError } from "../errors.ts";

/**
 * Where a receiver records messages it dropped because they could not be decoded.
 *
 * @example
 * ```ts
 * import type { DecodeFailureStats } from "@hamok/core";
 * const stats: DecodeFailureStats = { decodeFailures: 0, lastError: undefined };
 * ```
 */
export interface DecodeFailureStats {
  /** How many messages were dropped. */
  decodeFailures: number;
  /** Why the latest one was dropped. */
  lastError: HamokCodecError | undefined;
}

/**
 * A {@linkcode DecodeFailureStats} with `record` and `reset`.
 *
 * @example
 * ```ts
 * import { DecodeFailureCounter, safeDecodeEnvelope } from "@hamok/core";
 * const counter = new DecodeFailureCounter();
 * safeDecodeEnvelope(new Uint8Array([0xff]), counter); // undefined
 * console.log(counter.decodeFailures, counter.lastError?.code); // 1 "HAMOK_CODEC"
 * ```
 */
export class DecodeFailureCounter implements DecodeFailureStats {
  /** How many messages were dropped since creation or the last `reset()`. */
  decodeFailures: number = 0;
  /** Why the latest one was dropped. */
  lastError: HamokCodecError | undefined = undefined;

  /** Counts one dropped message and keeps its error. */
  record(error: HamokCodecError): void {
    this.decodeFailures++;
    this.lastError = error;
  }

  /** Sets the count back to 0 and forgets the last error. */
  reset(): void {
    this.decodeFailures = 0;
    this.lastError = undefined;
  }
}
