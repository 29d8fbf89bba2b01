/**
 * Authentication of wire messages with a shared cluster key: every message carries an
 * HMAC-SHA-256 tag over the cluster id and the envelope bytes, appended after the envelope. A
 * message whose tag none of the configured keys reproduces is dropped before it is parsed.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { HamokConfigError } from "../errors.ts";
import { constantTimeEqual, PrefixedHmacSha256 } from "./hmac_sha256.ts";
import { assertWellFormed } from "./well_formed.ts";

/** Bytes of the tag appended to every authenticated message. */
export const AUTH_TAG_BYTES = 32;

/** The shortest cluster key accepted, in bytes. */
export const MIN_CLUSTER_KEY_BYTES = 32;

/**
 * A cluster key: at least 32 bytes, or a string of at least 32 bytes in UTF-8. An array of keys
 * rotates them: the first signs, every one of them verifies.
 *
 * @example
 * ```ts
 * import type { ClusterKey } from "@hamok/core";
 * const key: ClusterKey = "a long random secret of at least 32 bytes, from a vault";
 * ```
 */
export type ClusterKey = string | Uint8Array;

/**
 * Checks cluster key material and turns it into byte keys (first: the signing key).
 * Throws `HamokConfigError` for an empty list, a key of another type, a string key that is not well
 * formed (a lone UTF-16 surrogate, which UTF-8 would turn into U+FFFD) or a key shorter than
 * {@linkcode MIN_CLUSTER_KEY_BYTES}.
 */
export function clusterKeysOf(key: ClusterKey | readonly ClusterKey[]): Uint8Array[] {
  const list: readonly unknown[] = Array.isArray(key) ? key : [key];
  if (list.length === 0) throw new HamokConfigError("clusterKey: an empty list of keys");
  return list.map((k, i) => {
    let bytes: Uint8Array;
    if (typeof k === "string") {
      assertWellFormed(`clusterKey[${i}]`, k, HamokConfigError);
      bytes = new TextEncoder().encode(k);
    } else if (k instanceof Uint8Array) bytes = Uint8Array.from(k);
    else throw new HamokConfigError(`clusterKey[${i}] must be a string or a Uint8Array`);
    if (bytes.byteLength < MIN_CLUSTER_KEY_BYTES) {
      throw new HamokConfigError(
        `clusterKey[${i}] has ${bytes.byteLength} bytes; at least ${MIN_CLUSTER_KEY_BYTES} are required`,
      );
    }
    return bytes;
  });
}

/**
 * Seals outbound messages with the signing key and opens inbound ones with any key.
 *
 * @example
 * ```ts ignore
 * const auth = new WireAuthenticator("orders", clusterKeysOf("a long random secret of at least 32 bytes"));
 * const sealed = auth.seal(envelopeBytes);
 * const opened = auth.open(sealed); // envelopeBytes again, or undefined if the tag is wrong
 * ```
 */
export class WireAuthenticator {
  /** One prepared MAC per key (the first signs). */
  readonly #macs: readonly PrefixedHmacSha256[];
  /** The cluster id, length-prefixed, as the first input of every tag. */
  readonly #binding: Uint8Array;
  readonly #keys: readonly Uint8Array[];
  /** Scratch for the tag of an inbound message. */
  readonly #tag = new Uint8Array(AUTH_TAG_BYTES);

  /** Creates an authenticator of `clusterId` with `keys` (the first signs). */
  constructor(clusterId: string, keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new HamokConfigError("a WireAuthenticator needs at least one key");
    const id = new TextEncoder().encode(clusterId);
    const binding = new Uint8Array(4 + id.byteLength);
    new DataView(binding.buffer).setUint32(0, id.byteLength);
    binding.set(id, 4);
    this.#binding = binding;
    this.#keys = keys;
    this.#macs = keys.map((key) => new PrefixedHmacSha256(key, binding));
  }

  /** Returns `envelope` followed by its tag (a new buffer). */
  seal(envelope: Uint8Array): Uint8Array {
    const out = new Uint8Array(envelope.byteLength + AUTH_TAG_BYTES);
    out.set(envelope, 0);
    this.#tagInto(0, envelope, out, envelope.byteLength);
    return out;
  }

  /** The envelope of a sealed message (a view), or `undefined` if no key reproduces its tag. */
  open(data: Uint8Array): Uint8Array | undefined {
    if (data.byteLength <= AUTH_TAG_BYTES) return undefined;
    const length = data.byteLength - AUTH_TAG_BYTES;
    const envelope = data.subarray(0, length);
    const tag = this.#tag;
    for (let i = 0; i < this.#macs.length; i++) {
      this.#tagInto(i, envelope, tag, 0);
      if (constantTimeEqual(tag, 0, data, length, AUTH_TAG_BYTES)) return envelope;
    }
    return undefined;
  }

  /** Writes the tag of `envelope` under key `i` into `out` at `offset`. */
  #tagInto(i: number, envelope: Uint8Array, out: Uint8Array, offset: number): void {
    if (envelope.byteLength <= jsMacBelowBytes()) {
      this.#macs[i]!.tagInto(envelope, out, offset);
    } else {
      out.set(createHmac("sha256", this.#keys[i]!).update(this.#binding).update(envelope).digest(), offset);
    }
  }
}

/**
 * Up to how many bytes a message is tagged in JavaScript rather than by `node:crypto`: decided
 * once per process by timing both on a small message (the native call has a fixed cost that
 * differs a lot between runtimes: ~5-9 µs on Deno, under 1 µs on Bun; per byte it is faster, and
 * on Deno the two meet around 1 KiB).
 * Both give the same tag; only speed depends on the choice.
 */
function jsMacBelowBytes(): number {
  if (jsMacLimit !== undefined) return jsMacLimit;
  const key = new Uint8Array(32).fill(1);
  const message = new Uint8Array(160).fill(2);
  const prefix = new Uint8Array(12);
  const mac = new PrefixedHmacSha256(key, prefix);
  const out = new Uint8Array(AUTH_TAG_BYTES);
  // the best of several short rounds: a round that the scheduler interrupted does not decide
  const time = (run: () => void): number => {
    for (let i = 0; i < 50; i++) run();
    let best = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 8; round++) {
      const started = performance.now();
      for (let i = 0; i < 25; i++) run();
      best = Math.min(best, performance.now() - started);
    }
    return best;
  };
  const js = time(() => mac.tagInto(message, out, 0));
  const native = time(() => void createHmac("sha256", key).update(prefix).update(message).digest());
  jsMacLimit = js < native ? JS_MAC_MAX_BYTES : 0;
  return jsMacLimit;
}

/** The largest message tagged in JavaScript when that is the faster path for small messages. */
const JS_MAC_MAX_BYTES = 768;
let jsMacLimit: number | undefined;
