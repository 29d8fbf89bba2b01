/**
 * Authentication of wire messages with a shared cluster key: every message carries an
 * HMAC-SHA-256 tag over the cluster id and the envelope bytes, appended after the envelope. A
 * message whose tag none of the configured keys reproduces is dropped before it is parsed.
 *
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { HamokConfigError } from "../errors.ts";

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
 * Throws `HamokConfigError` for an empty list, a key of another type or a key shorter than
 * {@linkcode MIN_CLUSTER_KEY_BYTES}.
 */
export function clusterKeysOf(key: ClusterKey | readonly ClusterKey[]): Uint8Array[] {
  const list: readonly unknown[] = Array.isArray(key) ? key : [key];
  if (list.length === 0) throw new HamokConfigError("clusterKey: an empty list of keys");
  return list.map((k, i) => {
    let bytes: Uint8Array;
    if (typeof k === "string") bytes = new TextEncoder().encode(k);
    else if (k instanceof Uint8Array) bytes = Uint8Array.from(k);
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
  readonly #keys: readonly Uint8Array[];
  /** The cluster id, length-prefixed, as the first input of every tag. */
  readonly #binding: Uint8Array;

  /** Creates an authenticator of `clusterId` with `keys` (the first signs). */
  constructor(clusterId: string, keys: readonly Uint8Array[]) {
    if (keys.length === 0) throw new HamokConfigError("a WireAuthenticator needs at least one key");
    this.#keys = keys;
    const id = new TextEncoder().encode(clusterId);
    const binding = new Uint8Array(4 + id.byteLength);
    new DataView(binding.buffer).setUint32(0, id.byteLength);
    binding.set(id, 4);
    this.#binding = binding;
  }

  /** Returns `envelope` followed by its tag (a new buffer). */
  seal(envelope: Uint8Array): Uint8Array {
    const out = new Uint8Array(envelope.byteLength + AUTH_TAG_BYTES);
    out.set(envelope, 0);
    out.set(this.#tag(this.#keys[0]!, envelope), envelope.byteLength);
    return out;
  }

  /** The envelope of a sealed message (a view), or `undefined` if no key reproduces its tag. */
  open(data: Uint8Array): Uint8Array | undefined {
    if (data.byteLength <= AUTH_TAG_BYTES) return undefined;
    const envelope = data.subarray(0, data.byteLength - AUTH_TAG_BYTES);
    const tag = data.subarray(data.byteLength - AUTH_TAG_BYTES);
    for (const key of this.#keys) {
      if (timingSafeEqual(this.#tag(key, envelope), tag)) return envelope;
    }
    return undefined;
  }

  #tag(key: Uint8Array, envelope: Uint8Array): Uint8Array {
    return createHmac("sha256", key).update(this.#binding).update(envelope).digest();
  }
}
