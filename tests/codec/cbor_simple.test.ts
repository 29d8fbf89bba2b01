import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { cborEncoder, decodeCbor, encodeCbor, encodeSimpleCbor, plainBytes } from "../../src/codec/cbor.ts";
import { prng as rng } from "./_fixtures.ts";

const EDGE_NUMBERS = [
  0,
  1,
  23,
  24,
  255,
  256,
  65535,
  65536,
  2 ** 32 - 1,
  -1,
  -24,
  -25,
  -256,
  -257,
  -65536,
  -65537,
  -(2 ** 31),
];
const EDGE_LENGTHS = [0, 1, 23, 24, 255, 256, 511, 512];
const BYTE_LENGTHS = [0, 1, 23, 24, 255, 256, 2047, 2048, 2049, 65535, 65536, 70000];

/** A random simple value: what the simple encoder must write exactly as cbor-x does. */
function simpleValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth >= 3 ? 5 : 6));
  switch (pick) {
    case 0: {
      const n = next() < 0.5
        ? EDGE_LENGTHS[Math.floor(next() * EDGE_LENGTHS.length)]
        : Math.floor(next() * 40);
      let s = "";
      for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(next() * 128));
      return s;
    }
    case 1:
      return next() < 0.5
        ? EDGE_NUMBERS[Math.floor(next() * EDGE_NUMBERS.length)]
        : Math.floor((next() - 0.5) * 2 ** (1 + Math.floor(next() * 32)));
    case 2:
      return next() < 0.5;
    case 3:
      return null;
    case 4: {
      const n = next() < 0.2
        ? BYTE_LENGTHS[Math.floor(next() * BYTE_LENGTHS.length)]
        : Math.floor(next() * 100);
      const bytes = new Uint8Array(n);
      for (let i = 0; i < Math.min(n, 64); i++) bytes[i] = Math.floor(next() * 256);
      return bytes;
    }
    default: {
      const n = next() < 0.1 ? 24 + Math.floor(next() * 300) : Math.floor(next() * 6);
      return Array.from({ length: n }, () => simpleValue(next, depth + 1));
    }
  }
}

const cborX = (value: unknown): Uint8Array => plainBytes(cborEncoder.encode(value));

describe("encodeSimpleCbor", () => {
  it("writes the very bytes cbor-x writes for every simple value (seeded, 3000 values)", () => {
    const next = rng(20261202);
    for (let i = 0; i < 3000; i++) {
      const value = simpleValue(next, 0);
      const simple = encodeSimpleCbor(value);
      assert.ok(simple !== undefined, `value ${i} was refused`);
      assert.deepStrictEqual(simple, cborX(value), `value ${i}`);
      assert.deepStrictEqual(decodeCbor(simple), value);
    }
  });

  it("writes a command and a string key as cbor-x does", () => {
    const command = [
      "map",
      "stock",
      "set",
      [new Uint8Array([0x63, 0x6b, 0x31, 0x32]), new Uint8Array(64)],
      "p0",
    ];
    assert.deepStrictEqual(encodeSimpleCbor(command), cborX(command));
    assert.deepStrictEqual(encodeSimpleCbor("k12"), cborX("k12"));
    assert.deepStrictEqual(encodeSimpleCbor(-0), cborX(-0)); // both write 0
  });

  it("refuses what it does not write exactly, and encodeCbor still encodes it", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 9; i++) deep = [deep];
    const refused: unknown[] = [
      undefined,
      [1, undefined],
      "é",
      "x".repeat(513),
      1.5,
      NaN,
      Infinity,
      2 ** 32,
      -(2 ** 31) - 1,
      12n,
      { a: 1 },
      new Map([[1, 2]]),
      new Set([1]),
      Buffer.from([1, 2]),
      new Uint16Array(2),
      new Date(0),
      deep,
    ];
    for (const value of refused) {
      assert.equal(encodeSimpleCbor(value), undefined, `${String(value)} should be refused`);
      assert.deepStrictEqual(encodeCbor(value), cborX(value));
    }
  });

  it("never overwrites an earlier result when a slab fills up", () => {
    const results: [Uint8Array, Uint8Array][] = [];
    for (let i = 0; i < 2000; i++) {
      const value = [i, new Uint8Array(37).fill(i & 0xff), `k${i}`];
      const bytes = encodeSimpleCbor(value)!;
      results.push([bytes, cborX(value)]);
    }
    for (const [simple, expected] of results) assert.deepStrictEqual(simple, expected);
    const big = encodeSimpleCbor(new Uint8Array(5000))!;
    assert.equal(big.byteOffset, 0, "a large value gets a buffer of its own");
  });

  it("returns plain Uint8Array views", () => {
    const bytes = encodeSimpleCbor([1, "a"])!;
    assert.equal(bytes.constructor, Uint8Array);
  });
});
