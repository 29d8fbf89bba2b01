import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { latin1String } from "../../src/codec/latin1.ts";

/** The reference: one char per byte, built the slow way. */
function slow(bytes: Uint8Array, start: number, n: number, prefix = -1): string {
  let s = prefix < 0 ? "" : String.fromCharCode(prefix);
  for (let i = start; i < start + n; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("latin1String", () => {
  it("every length around the reused lists and the apply limit, with and without a prefix", () => {
    for (
      const n of [
        0,
        1,
        2,
        21,
        23,
        24,
        25,
        47,
        48,
        49,
        64,
        65,
        100,
        126,
        127,
        128,
        129,
        4095,
        4096,
        4097,
        9000,
      ]
    ) {
      const bytes = bytesOf(n + 7, n + 1);
      for (const prefix of [-1, 0x62, 0]) {
        assert.equal(latin1String(bytes, 3, n, prefix), slow(bytes, 3, n, prefix), `n ${n} prefix ${prefix}`);
      }
    }
  });

  it("reads a view into a larger buffer at the view's own offsets", () => {
    const whole = bytesOf(300, 99);
    const view = whole.subarray(17, 250);
    for (const n of [5, 23, 47, 48, 66, 200]) {
      assert.equal(latin1String(view, 9, n), slow(whole, 26, n), `n ${n}`);
    }
  });

  it("a reused list carries nothing over from the call before", () => {
    const a = Uint8Array.of(1, 2, 3, 4, 5);
    const b = Uint8Array.of(250, 251, 252, 253, 254);
    assert.equal(latin1String(a, 0, 5), slow(a, 0, 5));
    assert.equal(latin1String(b, 0, 5), slow(b, 0, 5));
    assert.equal(latin1String(a, 1, 4, 0x62), "b" + slow(a, 1, 4));
    assert.equal(latin1String(b, 0, 5), slow(b, 0, 5)); // the same length as the prefixed call: no tag left
    assert.equal(latin1String(new Uint8Array(256).map((_, i) => i), 0, 256).length, 256);
  });
});
