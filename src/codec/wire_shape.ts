/**
 * Internal: shape checks for decoded wire values. Each check returns the value with its proper type
 * or throws a `TypeError` naming the offending path; `decodeEnvelope` wraps that in a
 * `HamokCodecError`. Paths are passed as constant strings and only formatted into a message on
 * failure, so a successful check allocates nothing. The checks never recurse into values of unbounded depth, so hostile input
 * (deep nesting, cyclic references from CBOR tag 28/29) cannot make them loop or overflow.
 *
 * @module
 */

import { describeType } from "./cbor.ts";

function fail(path: string, expected: string, value: unknown): never {
  throw new TypeError(`${path}: expected ${expected}, got ${describeType(value)}`);
}

/** An array with a length in `[min, max]`. */
export function arrayAt(value: unknown, path: string, min: number, max: number = min): readonly unknown[] {
  if (!Array.isArray(value)) fail(path, "array", value);
  if (value.length < min || value.length > max) {
    throw new TypeError(
      `${path}: expected ${min === max ? min : `${min}..${max}`} elements, got ${value.length}`,
    );
  }
  return value;
}

/** An array of any length. */
export function listAt(value: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(value)) fail(path, "array", value);
  return value;
}

/** A safe integer >= 0. */
export function uintAt(value: unknown, path: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    fail(path, "an integer >= 0", value);
  }
  return value;
}

/** A safe integer >= `min`. */
export function intFromAt(value: unknown, path: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    fail(path, `an integer >= ${min}`, value);
  }
  return value;
}

/** A string. */
export function stringAt(value: unknown, path: string): string {
  if (typeof value !== "string") fail(path, "string", value);
  return value;
}

/**
 * The longest id a message may name where a peer keeps what it heard (a hello's peer, member,
 * leader and cluster identity): ids are at most 253 characters, member ids add a tag of 9.
 */
export const MAX_WIRE_ID = 320;

/** A non-empty string of at most {@linkcode MAX_WIRE_ID} characters (an id a peer may keep). */
export function idAt(value: unknown, path: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_WIRE_ID) {
    fail(path, `string of 1-${MAX_WIRE_ID} characters`, value);
  }
  return value;
}

/** A boolean. */
export function boolAt(value: unknown, path: string): boolean {
  if (typeof value !== "boolean") fail(path, "boolean", value);
  return value;
}

/** A byte string (decoded as a plain `Uint8Array` view). */
export function bytesAt(value: unknown, path: string): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(path, "bytes", value);
  return value;
}

/** An array of strings (the decoded array itself, checked in place). */
export function stringListAt(value: unknown, path: string): string[] {
  const list = listAt(value, path);
  for (let i = 0; i < list.length; i++) {
    if (typeof list[i] !== "string") fail(`${path}[${i}]`, "string", list[i]);
  }
  return list as string[];
}

/** An index into `names` (a small integer code on the wire), returned as the name. */
export function enumAt<T extends string>(value: unknown, path: string, names: readonly T[]): T {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value >= names.length) {
    fail(path, `a code in 0..${names.length - 1}`, value);
  }
  return names[value]!; // checked: an integer in 0..length-1
}

/** Packs error details `{ code, message }` as `[code, message]`. */
export function packError(error: { readonly code: string; readonly message: string }): [string, string] {
  return [error.code, error.message];
}

/** Unpacks `[code, message]` into `{ code, message }`. */
export function errorAt(value: unknown, path: string): { code: string; message: string } {
  const a = arrayAt(value, path, 2);
  return { code: stringAt(a[0], `${path}.code`), message: stringAt(a[1], `${path}.message`) };
}
