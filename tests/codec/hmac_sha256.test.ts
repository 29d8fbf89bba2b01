import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { constantTimeEqual, PrefixedHmacSha256 } from "../../src/codec/hmac_sha256.ts";

function random(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, Math.min(length, i + 65536)));
  }
  return bytes;
}

function reference(key: Uint8Array, prefix: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(prefix).update(data).digest());
}

describe("PrefixedHmacSha256", () => {
  it("matches node:crypto's HMAC-SHA-256 for every key, prefix and message length around block edges", () => {
    const lengths = [
      0,
      1,
      2,
      31,
      32,
      33,
      54,
      55,
      56,
      57,
      63,
      64,
      65,
      119,
      120,
      127,
      128,
      129,
      150,
      1000,
      4095,
      8192,
    ];
    for (const keyLength of [1, 32, 63, 64, 65, 200]) {
      for (const prefixLength of [0, 4, 13, 55, 56, 63, 64, 65, 130]) {
        const key = random(keyLength);
        const prefix = random(prefixLength);
        const mac = new PrefixedHmacSha256(key, prefix);
        for (const length of lengths) {
          const data = random(length);
          const out = new Uint8Array(40);
          mac.tagInto(data, out, 5);
          assert.deepEqual(
            out.subarray(5, 37),
            reference(key, prefix, data),
            `key ${keyLength}, prefix ${prefixLength}, data ${length}`,
          );
        }
      }
    }
  });

  it("matches node:crypto for random lengths and above the native threshold, reusing one instance", () => {
    const key = random(48);
    const prefix = random(12);
    const mac = new PrefixedHmacSha256(key, prefix);
    const out = new Uint8Array(32);
    for (let i = 0; i < 300; i++) {
      const data = random(Math.floor(Math.random() * 3000));
      mac.tagInto(data, out, 0);
      assert.deepEqual(out, reference(key, prefix, data), `length ${data.byteLength}`);
    }
    for (const length of [8193, 100_000, 1_048_577]) {
      const data = random(length);
      mac.tagInto(data, out, 0);
      assert.deepEqual(out, reference(key, prefix, data), `length ${length}`);
    }
  });

  it("a different key, prefix or message gives another tag", () => {
    const data = random(100);
    const tags = [
      [random(32), new Uint8Array([1])],
      [random(32), new Uint8Array([1])],
    ].map(([key, prefix]) => {
      const out = new Uint8Array(32);
      new PrefixedHmacSha256(key!, prefix!).tagInto(data, out, 0);
      return out;
    });
    assert.notDeepEqual(tags[0], tags[1]);
  });

  it("constantTimeEqual compares ranges", () => {
    const a = new Uint8Array([9, 1, 2, 3]);
    const b = new Uint8Array([1, 2, 3, 7]);
    assert.equal(constantTimeEqual(a, 1, b, 0, 3), true);
    assert.equal(constantTimeEqual(a, 0, b, 0, 3), false);
    assert.equal(constantTimeEqual(a, 1, b, 1, 3), false);
  });
});
