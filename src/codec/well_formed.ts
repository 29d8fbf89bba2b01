/**
 * Internal: the check that a string is well formed UTF-16 (no lone surrogate) before it is UTF-8
 * encoded. UTF-8 cannot carry a lone surrogate: the encoders write U+FFFD (or its three-byte
 * pattern) for it, so two different strings would become one on the wire: values would come back
 * changed, keys and ids would merge. Every boundary that takes a string which will be encoded
 * rejects such strings with this check instead. Not part of the public API.
 *
 * @module
 */

import type { HamokError, HamokErrorOptions } from "../errors.ts";

/** `String.prototype.isWellFormed` (ES2024: Deno 2, Bun, Node 20), if this runtime has it. */
const nativeIsWellFormed: ((this: string) => boolean) | undefined =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
    ? (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed
    : undefined;

/** A lone surrogate (a surrogate code unit that is not half of a pair): the fallback check. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The check {@linkcode isWellFormedString} uses: `native` (`String.prototype.isWellFormed`) if given,
 * else a regular expression. Exported to test both.
 *
 * @example
 * ```ts ignore
 * wellFormedCheck(undefined)("b\uD800"); // false, by the regular expression
 * ```
 */
export function wellFormedCheck(native: ((this: string) => boolean) | undefined): (s: string) => boolean {
  return native !== undefined ? (s) => native.call(s) : (s) => !LONE_SURROGATE.test(s);
}

/**
 * Whether `s` is well formed: it has no lone UTF-16 surrogate, so UTF-8 carries it unchanged.
 * `String.prototype.isWellFormed` where the runtime has it (O(1) for one-byte strings on V8), else
 * a regular expression.
 *
 * @example
 * ```ts ignore
 * isWellFormedString("caf\u00e9 \u{1F600}"); // true
 * isWellFormedString("b\uD800"); // false
 * ```
 */
export const isWellFormedString: (s: string) => boolean = wellFormedCheck(nativeIsWellFormed);

/** The constructor of a {@linkcode HamokError} subclass that takes a message and options. */
export type HamokErrorClass = new (message: string, options?: HamokErrorOptions) => HamokError;

/**
 * Throws `new ErrorClass(message, { cause })` unless `s` is well formed (see
 * {@linkcode isWellFormedString}). The message names `label` and the index and code unit of the
 * first lone surrogate, never the string itself; the cause is a `TypeError` with the same detail.
 * Use `HamokCodecError` for values and keys, `HamokConfigError` for ids, names and options.
 *
 * @example
 * ```ts ignore
 * import { HamokConfigError } from "../errors.ts";
 * assertWellFormed("peerId", "b\uD800", HamokConfigError);
 * // throws HamokConfigError: peerId is not a well-formed string: a lone UTF-16 surrogate (U+D800) at index 1 ...
 * ```
 */
export function assertWellFormed(label: string, s: string, ErrorClass: HamokErrorClass): void {
  if (isWellFormedString(s)) return;
  const at = loneSurrogateIndex(s);
  const unit = s.charCodeAt(at).toString(16).toUpperCase();
  const detail = `a lone UTF-16 surrogate (U+${unit}) at index ${at}`;
  throw new ErrorClass(
    `${label} is not a well-formed string: ${detail}, which UTF-8 cannot carry (it would arrive as U+FFFD)`,
    { cause: new TypeError(`${label}: ${detail}`) },
  );
}

/** Index of the first lone surrogate in `s` (which has one). */
function loneSurrogateIndex(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < n) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++; // a pair
        continue;
      }
    }
    return i;
  }
  return -1;
}
