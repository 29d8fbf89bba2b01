import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { AUTH_TAG_BYTES, clusterKeysOf, WireAuthenticator } from "../../src/codec/wire_auth.ts";

const KEY_A = "first key of at least thirty-two bytes, for tests";
const KEY_B = "second key of at least thirty-two bytes, for tests";

function envelope(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

describe("WireAuthenticator", () => {
  it("tags are HMAC-SHA-256 over the length-prefixed cluster id and the envelope, small and large", () => {
    const [key] = clusterKeysOf(KEY_A);
    const auth = new WireAuthenticator("orders", [key!]);
    const id = new TextEncoder().encode("orders");
    const binding = new Uint8Array([0, 0, 0, id.byteLength, ...id]);
    for (const length of [1, 100, 1024, 1025, 5000, 100_000]) {
      const env = envelope(length);
      const sealed = auth.seal(env);
      assert.equal(sealed.byteLength, length + AUTH_TAG_BYTES);
      assert.deepEqual(sealed.subarray(0, length), env);
      const expected = createHmac("sha256", key!).update(binding).update(env).digest();
      assert.deepEqual(sealed.subarray(length), new Uint8Array(expected), `length ${length}`);
      assert.deepEqual(auth.open(sealed), env);
    }
  });

  it("opens only what a configured key sealed for this cluster; rotation verifies with every key", () => {
    const a = clusterKeysOf(KEY_A);
    const b = clusterKeysOf(KEY_B);
    const oldOnly = new WireAuthenticator("orders", a);
    const rotating = new WireAuthenticator("orders", [...b, ...a]);
    const otherCluster = new WireAuthenticator("billing", a);
    const env = envelope(200);
    assert.deepEqual(rotating.open(oldOnly.seal(env)), env, "the new config verifies the old key");
    assert.equal(oldOnly.open(rotating.seal(env)), undefined, "the old config does not know the new key");
    assert.equal(otherCluster.open(oldOnly.seal(env)), undefined, "another cluster id");
    const tampered = oldOnly.seal(env);
    tampered[10]! ^= 1;
    assert.equal(oldOnly.open(tampered), undefined, "a changed envelope");
    const badTag = oldOnly.seal(env);
    badTag[badTag.length - 1]! ^= 0x80;
    assert.equal(oldOnly.open(badTag), undefined, "a changed tag");
    assert.equal(oldOnly.open(env.subarray(0, AUTH_TAG_BYTES)), undefined, "too short");
    assert.equal(oldOnly.open(new Uint8Array(env.byteLength + AUTH_TAG_BYTES)), undefined, "zeros");
  });
});
