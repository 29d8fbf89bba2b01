/**
 * The value codec seam of the replicated collections (`keyCodec`, `valueCodec`): one value to a
 * string or bytes and back. CBOR by default, with the same round-trip rules as the CBOR payload
 * codec (see `payload_codec.ts`).
 *
 * Note for keys: CBOR of a plain object follows its key insertion order, so two equal-looking
 * objects may encode differently. Collections that compare encoded keys should use primitive keys
 * or a canonicalising key codec.
 *
 * @module
 */

import { HamokCodecError } from "../errors.ts";
import {
  assertRoundTrips,
  cborEncoder,
  decodeCbor,
  describeType,
  encodeSimpleCbor,
  messageOf,
  plainBytes,
} from "./cbor.ts";
import { assertWellFormed, isWellFormedString } from "./well_formed.ts";

/**
 * Turns one value into a string or bytes and back.
 *
 * @example
 * ```ts
 * import type { ValueCodec } from "@hamok/core";
 * const dateCodec: ValueCodec<Date> = {
 *   encode: (d) => d.toISOString(),
 *   decode: (s) => new Date(s as string),
 * };
 * ```
 */
export interface ValueCodec<T> {
  /** Encodes a value. */
  encode(value: T): string | Uint8Array;
  /** Decodes what {@linkcode ValueCodec.encode} produced. */
  decode(data: string | Uint8Array): T;
}

/**
 * The default value codec: the value as one CBOR item. The type parameter is not checked at
 * runtime: `decode` returns whatever was encoded.
 *
 * Decoded `Uint8Array`s are views into `data`, not copies.
 *
 * @example
 * ```ts
 * import { CborValueCodec } from "@hamok/core/internal";
 * const codec = new CborValueCodec<{ name: string; tags: Set<string> }>();
 * const bytes = codec.encode({ name: "a", tags: new Set(["x"]) });
 * console.log(codec.decode(bytes).tags.has("x")); // true
 * ```
 */
export class CborValueCodec<T = unknown> implements ValueCodec<T> {
  /**
   * Encodes the value as CBOR. Throws `TypeError` for a value CBOR cannot round-trip (a function,
   * a `WeakMap`, a `Promise`, a cycle, ...) and `HamokCodecError` for a string in it that is not
   * well formed (a lone UTF-16 surrogate, which UTF-8 would carry as U+FFFD). A simple value (what
   * the direct encoder writes: ASCII strings, numbers, bytes, arrays and plain objects of them)
   * holds nothing of the kind, so only other values are checked before cbor-x encodes them.
   */
  encode(value: T): Uint8Array {
    const simple = encodeSimpleCbor(value);
    if (simple !== undefined) return simple;
    assertRoundTrips(value);
    return plainBytes(cborEncoder.encode(value));
  }

  /** Decodes one CBOR item. Throws `TypeError` for a string. */
  decode(data: string | Uint8Array): T {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`the CBOR value codec decodes bytes, got ${describeType(data)}`);
    }
    return decodeCbor(data) as T;
  }
}

/**
 * The shared default {@linkcode CborValueCodec} instance (untyped values).
 *
 * @example
 * ```ts
 * import { cborValueCodec } from "@hamok/core/internal";
 * console.log(cborValueCodec.decode(cborValueCodec.encode(12n))); // 12n
 * ```
 */
export const cborValueCodec: CborValueCodec<unknown> = new CborValueCodec<unknown>();

/**
 * Encodes `value` with `codec`. Any throw, or a result that is neither a string nor a `Uint8Array`,
 * or a string that is not well formed (a lone UTF-16 surrogate: UTF-8 would carry it as U+FFFD, so
 * two keys would become one), becomes a {@linkcode HamokCodecError} whose `cause` is the original
 * error.
 *
 * @example
 * ```ts
 * import { cborValueCodec, encodeValue } from "@hamok/core/internal";
 * const bytes = encodeValue(cborValueCodec, { count: 1 });
 * console.log(bytes instanceof Uint8Array); // true
 * ```
 */
export function encodeValue<T>(codec: ValueCodec<T>, value: T): string | Uint8Array {
  let data: unknown;
  try {
    data = codec.encode(value);
  } catch (error) {
    throw new HamokCodecError(`value codec failed to encode: ${messageOf(error)}`, { cause: error });
  }
  if (typeof data !== "string" && !(data instanceof Uint8Array)) {
    throw new HamokCodecError(
      `value codec encode returned ${describeType(data)}, expected a string or a Uint8Array`,
      { cause: new TypeError(`encode returned ${describeType(data)}`) },
    );
  }
  if (typeof data === "string" && !isWellFormedString(data)) {
    assertWellFormed("the value codec's output", data, HamokCodecError);
  }
  return data;
}

/**
 * Decodes `data` with `codec`. Any throw becomes a {@linkcode HamokCodecError} whose `cause` is the
 * original error.
 *
 * @example
 * ```ts
 * import { HamokCodecError } from "@hamok/core";
 * import { cborValueCodec, decodeValue } from "@hamok/core/internal";
 * try {
 *   decodeValue(cborValueCodec, new Uint8Array([0x82, 0x01])); // a truncated 2-element array
 * } catch (err) {
 *   console.log(err instanceof HamokCodecError); // true
 * }
 * ```
 */
export function decodeValue<T>(codec: ValueCodec<T>, data: string | Uint8Array): T {
  try {
    return codec.decode(data);
  } catch (error) {
    throw new HamokCodecError(`value codec failed to decode: ${messageOf(error)}`, { cause: error });
  }
}
