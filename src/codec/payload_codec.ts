/**
 * The payload codec seam: how the arguments of an emitted event become the bytes (or string) that
 * travel in an event envelope, and back. CBOR by default; a user codec may produce strings (for
 * example JSON), which travel as CBOR text strings.
 *
 * What the CBOR default round-trips (cbor-x 1.6.9, checked on Deno and Bun): `undefined`, `null`,
 * booleans, numbers including `NaN` and `±Infinity`, strings, `bigint` of any size, arrays, plain
 * objects (nested), `Map` (any key type), `Set`, `Uint8Array`, the other typed arrays and `Date`
 * (millisecond precision). What does not: `-0` arrives as `0`; class instances arrive as plain
 * objects (own enumerable fields only); `Error` subclasses arrive as `Error` with the message;
 * `Buffer` and `ArrayBuffer` arrive as `Uint8Array`; array holes arrive as `undefined`; a key named
 * `__proto__` arrives renamed to `__proto_` (cbor-x's prototype-pollution guard); functions, symbols
 * and cyclic structures cannot be encoded (a {@linkcode HamokCodecError} from
 * {@linkcode encodePayload}).
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
 * Turns the arguments of an event into a string or bytes and back. Compatible with a codec of the
 * shape `{ encode: (...args) => string; decode: (data: string) => unknown[] }`.
 *
 * @example
 * ```ts
 * import type { PayloadCodec } from "@hamok/core";
 * const jsonCodec: PayloadCodec = {
 *   encode: (...args: unknown[]) => JSON.stringify(args),
 *   decode: (data: string) => JSON.parse(data),
 * };
 * ```
 */
export interface PayloadCodec {
  /** Encodes the arguments. */
  encode(...args: unknown[]): string | Uint8Array;
  /** Decodes what {@linkcode PayloadCodec.encode} produced back into the arguments. */
  decode(data: string | Uint8Array): unknown[];
}

/**
 * The default payload codec: the argument list as one CBOR array.
 *
 * Decoded `Uint8Array` arguments are views into `data`, not copies.
 *
 * @example
 * ```ts
 * import { CborPayloadCodec } from "@hamok/core/internal";
 * const codec = new CborPayloadCodec();
 * const data = codec.encode("hello", 42, new Map([["k", 1n]]));
 * console.log(codec.decode(data)); // [ "hello", 42, Map(1) { "k" => 1n } ]
 * ```
 */
export class CborPayloadCodec implements PayloadCodec {
  /** Encodes the arguments as a CBOR array. */
  encode(...args: unknown[]): Uint8Array {
    return this.encodeArgs(args);
  }

  /**
   * Encodes an argument list that is already an array (no spread, no copy of the list). Simple
   * arguments (what the direct encoder writes: ASCII strings, 32-bit integers, bytes, arrays...) need
   * no round-trip check: they hold nothing CBOR cannot carry; anything else is checked, then given to
   * cbor-x.
   */
  encodeArgs(args: readonly unknown[]): Uint8Array {
    const simple = encodeSimpleCbor(args);
    if (simple !== undefined) return simple;
    assertRoundTrips(args, "args");
    return plainBytes(cborEncoder.encode(args));
  }

  /** Decodes a CBOR array. Throws `TypeError` for a string or a CBOR value that is not an array. */
  decode(data: string | Uint8Array): unknown[] {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`the CBOR payload codec decodes bytes, got ${describeType(data)}`);
    }
    const value = decodeCbor(data);
    if (!Array.isArray(value)) throw new TypeError(`expected a CBOR array, got ${describeType(value)}`);
    return value;
  }
}

/**
 * The shared default {@linkcode CborPayloadCodec} instance.
 *
 * @example
 * ```ts
 * import { cborPayloadCodec, decodePayload, encodePayload } from "@hamok/core/internal";
 * const data = encodePayload(cborPayloadCodec, [1, "two"]);
 * console.log(decodePayload(cborPayloadCodec, data)); // [ 1, "two" ]
 * ```
 */
export const cborPayloadCodec: CborPayloadCodec = new CborPayloadCodec();

/**
 * Encodes `args` with `codec`. Any throw, or a result that is neither a string nor a `Uint8Array`,
 * or a string that is not well formed (a lone UTF-16 surrogate, which UTF-8 would carry as
 * U+FFFD), becomes a {@linkcode HamokCodecError} whose `cause` is the original error.
 *
 * @example
 * ```ts
 * import { cborPayloadCodec, encodePayload } from "@hamok/core/internal";
 * const data = encodePayload(cborPayloadCodec, ["message", { text: "hi" }]);
 * console.log(data instanceof Uint8Array); // true
 * ```
 */
export function encodePayload(codec: PayloadCodec, args: readonly unknown[]): string | Uint8Array {
  let data: unknown;
  try {
    data = codec instanceof CborPayloadCodec ? codec.encodeArgs(args) : codec.encode(...args);
  } catch (error) {
    throw new HamokCodecError(`payload codec failed to encode: ${messageOf(error)}`, { cause: error });
  }
  if (typeof data !== "string" && !(data instanceof Uint8Array)) {
    throw new HamokCodecError(
      `payload codec encode returned ${describeType(data)}, expected a string or a Uint8Array`,
      { cause: new TypeError(`encode returned ${describeType(data)}`) },
    );
  }
  if (typeof data === "string" && !isWellFormedString(data)) {
    assertWellFormed("the payload codec's output", data, HamokCodecError);
  }
  return data;
}

/**
 * Decodes `data` with `codec`. Any throw, or a result that is not an array, becomes a
 * {@linkcode HamokCodecError} whose `cause` is the original error.
 *
 * @example
 * ```ts
 * import { HamokCodecError } from "@hamok/core";
 * import { decodePayload } from "@hamok/core/internal";
 * const broken = { encode: () => "", decode: () => "not an array" as unknown as unknown[] };
 * try {
 *   decodePayload(broken, "x");
 * } catch (err) {
 *   console.log(err instanceof HamokCodecError); // true
 * }
 * ```
 */
export function decodePayload(codec: PayloadCodec, data: string | Uint8Array): unknown[] {
  let args: unknown;
  try {
    args = codec.decode(data);
  } catch (error) {
    throw new HamokCodecError(`payload codec failed to decode: ${messageOf(error)}`, { cause: error });
  }
  if (!Array.isArray(args)) {
    throw new HamokCodecError(
      `payload codec decode returned ${describeType(args)}, expected an array of arguments`,
      { cause: new TypeError(`decode returned ${describeType(args)}`) },
    );
  }
  return args;
}
