/**
 * NATS naming rules shared by the transports: validation of published and subscribed subjects,
 * wildcard matching (`*` = exactly one token, `>` = one or more trailing tokens) and header rules.
 *
 * @module
 */

/** True if `subject` is non-empty, has no whitespace and no empty token. */
function hasValidTokens(subject: string): boolean {
  const n = subject.length;
  if (n === 0) return false;
  let tokenStart = 0;
  for (let i = 0; i < n; i++) {
    const c = subject.charCodeAt(i);
    // space, tab, CR, LF and other control characters break the NATS protocol line
    if (c <= 32 || c === 127) return false;
    if (c === 46 /* . */) {
      if (i === tokenStart) return false;
      tokenStart = i + 1;
    }
  }
  return tokenStart < n;
}

/**
 * True if `subject` may be published to: valid tokens and no wildcard token.
 *
 * @example
 * ```ts
 * isValidPublishSubject("hamok.c1.peer.a"); // true
 * isValidPublishSubject("hamok.*"); // false
 * ```
 */
export function isValidPublishSubject(subject: string): boolean {
  if (!hasValidTokens(subject)) return false;
  for (const token of subject.split(".")) {
    if (token === "*" || token === ">") return false;
  }
  return true;
}

/**
 * True if `subject` may be subscribed to: valid tokens, `>` only as the last token.
 *
 * @example
 * ```ts
 * isValidSubscribeSubject("hamok.*.all"); // true
 * isValidSubscribeSubject("hamok.>.all"); // false
 * ```
 */
export function isValidSubscribeSubject(subject: string): boolean {
  if (!hasValidTokens(subject)) return false;
  const tokens = subject.split(".");
  const last = tokens.length - 1;
  for (let i = 0; i < last; i++) {
    if (tokens[i] === ">") return false;
  }
  return true;
}

/** True if the subscription subject contains a wildcard token. */
export function hasWildcard(subject: string): boolean {
  for (const token of subject.split(".")) {
    if (token === "*" || token === ">") return true;
  }
  return false;
}

/**
 * True if the literal subject (already split into tokens) matches the subscription pattern
 * (already split into tokens).
 *
 * @example
 * ```ts
 * subjectMatches(["a", "*", ">"], ["a", "b", "c", "d"]); // true
 * subjectMatches(["a", ">"], ["a"]); // false
 * ```
 */
export function subjectMatches(pattern: readonly string[], subject: readonly string[]): boolean {
  const n = pattern.length;
  for (let i = 0; i < n; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== "*" && p !== subject[i]) return false;
  }
  return subject.length === n;
}

/**
 * True if `key` is a valid NATS header key: printable ASCII (33..126) without `:`, non-empty.
 *
 * @example
 * ```ts
 * isValidHeaderKey("traceparent"); // true
 * isValidHeaderKey("bad key"); // false
 * ```
 */
export function isValidHeaderKey(key: string): boolean {
  const n = key.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c < 33 || c > 126 || c === 58 /* : */) return false;
  }
  return true;
}

/**
 * True if `value` is a valid NATS header value (no CR or LF). NATS trims surrounding whitespace.
 *
 * @example
 * ```ts
 * isValidHeaderValue("00-abc-def-01"); // true
 * isValidHeaderValue("a\r\nb"); // false
 * ```
 */
export function isValidHeaderValue(value: string): boolean {
  return value.indexOf("\r") < 0 && value.indexOf("\n") < 0;
}
