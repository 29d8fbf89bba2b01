import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  cborDecoder,
  cborEncoder,
  decodeCbor,
  decodeSimpleCbor,
  encodeCbor,
  encodeSimpleCbor,
  NOT_READ,
  plainBytes,
} from "../../src/codec/cbor.ts";
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
  -(2 ** 31) - 1,
  -(2 ** 32),
  -(2 ** 32) - 1,
  2 ** 32,
  2 ** 53 - 1,
  -(2 ** 53),
  1.5,
  -0.1,
  1e300,
  5e-324,
  Infinity,
  -Infinity,
  1796241005493, // a timestamp in ms
];
const EDGE_LENGTHS = [0, 1, 23, 24, 255, 256, 511, 512];
const BYTE_LENGTHS = [0, 1, 23, 24, 255, 256, 2047, 2048, 2049, 65535, 65536, 70000];

/** A random ASCII string, often of an edge length. */
function asciiString(next: () => number): string {
  const n = next() < 0.5 ? EDGE_LENGTHS[Math.floor(next() * EDGE_LENGTHS.length)] : Math.floor(next() * 40);
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(Math.floor(next() * 128));
  return s;
}

/** A random simple value: what the simple encoder must write exactly as cbor-x does. */
function simpleValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth >= 3 ? 6 : 8));
  switch (pick) {
    case 0:
      return asciiString(next);
    case 5:
      return undefined;
    case 6: {
      // a plain object: a result such as { conflict: false, previous }, or random ASCII keys
      if (next() < 0.3) return { conflict: next() < 0.5, previous: simpleValue(next, depth + 1) };
      const object: Record<string, unknown> = {};
      const n = next() < 0.1 ? 24 + Math.floor(next() * 41) : Math.floor(next() * 5);
      for (let i = 0; i < n; i++) {
        const key = next() < 0.2 ? String(Math.floor(next() * 30)) : asciiString(next).slice(0, 20);
        if (key === "__proto__" || key === "hasOwnProperty") continue;
        object[key] = simpleValue(next, depth + 1);
      }
      return object;
    }
    case 1:
      return next() < 0.4
        ? EDGE_NUMBERS[Math.floor(next() * EDGE_NUMBERS.length)]
        : next() < 0.7
        ? Math.floor((next() - 0.5) * 2 ** (1 + Math.floor(next() * 54))) // integers up to 2^53
        : (next() - 0.5) * 10 ** Math.floor((next() - 0.5) * 40); // fractions
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

  it("writes objects with integer-like keys in cbor-x's order, and their undefined values", () => {
    const values = [{ b: 1, 2: "x", a: undefined, 1: null }, { conflict: false, previous: null }, {}];
    for (const value of values) assert.deepStrictEqual(encodeSimpleCbor(value), cborX(value));
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
    const own = { a: 1, hasOwnProperty: 1 };
    const inherited: Record<string, number> = Object.create({ inheritedKey: 1 });
    inherited.a = 2;
    const refused: unknown[] = [
      "é",
      "x".repeat(513),
      NaN,
      [1, NaN],
      12n,
      { "é": 1 },
      { a: NaN },
      Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i])),
      own,
      inherited,
      Object.assign(Object.create(null), { a: 1 }),
      new (class Point {
        x = 1;
      })(),
      new Map([[1, 2]]),
      new Set([1]),
      Buffer.from([1, 2]),
      new Uint16Array(2),
      new Date(0),
      deep,
    ];
    for (const [i, value] of refused.entries()) {
      assert.equal(encodeSimpleCbor(value), undefined, `value ${i} should be refused`);
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
    // a value that starts a small slab, then 3,000 bytes: 5,189 bytes of room are left in it
    let first: Uint8Array;
    do first = encodeSimpleCbor(new Uint8Array(1000))!; while (first.byteOffset !== 0);
    encodeSimpleCbor(new Uint8Array(2000));
    const large = encodeSimpleCbor(new Uint8Array(6000).fill(5))!;
    const more = encodeSimpleCbor(new Uint8Array(6000).fill(6))!;
    assert.equal(
      large.buffer.byteLength,
      64 * 1024,
      "a value the room left cannot take goes to a large slab",
    );
    assert.equal(more.buffer.byteLength, 64 * 1024);
    if (more.buffer === large.buffer) assert.equal(more.byteOffset, large.byteOffset + large.length);
    assert.ok(large[3] === 5 && large[6002] === 5 && more[3] === 6, "both intact");
    const big = encodeSimpleCbor(new Uint8Array(9000).fill(7))!;
    assert.equal(big.byteOffset, 0, "a value larger than a small slab gets a buffer of its own");
    assert.equal(big.buffer.byteLength, 9003);
    assert.deepStrictEqual(big, cborX(new Uint8Array(9000).fill(7)));
    const huge = encodeSimpleCbor(new Uint8Array(70_000))!;
    assert.equal(huge.byteOffset, 0, "a value larger than a large slab gets a buffer of its own");
    assert.equal(huge.buffer.byteLength, 70_005);
    const filling: [Uint8Array, number][] = [];
    for (let i = 0; i < 30; i++) filling.push([encodeSimpleCbor(new Uint8Array(5000).fill(i))!, i]);
    for (const [bytes, i] of filling) assert.deepStrictEqual(bytes, cborX(new Uint8Array(5000).fill(i)));
    const nested = [new Uint8Array(6000), { a: new Uint8Array(3000) }];
    assert.deepStrictEqual(encodeSimpleCbor(nested), cborX(nested));
  });

  it("returns plain Uint8Array views", () => {
    const bytes = encodeSimpleCbor([1, "a"])!;
    assert.equal(bytes.constructor, Uint8Array);
  });
});

/** A random byte string, or a valid encoding of a simple value changed a little (hostile input). */
function hostileBytes(next: () => number): Uint8Array {
  if (next() < 0.2) {
    return Uint8Array.from({ length: Math.floor(next() * 12) }, () => Math.floor(next() * 256));
  }
  const valid = Uint8Array.from(cborX(simpleValue(next, 0)));
  switch (Math.floor(next() * 4)) {
    case 0:
      return valid.subarray(0, Math.floor(next() * valid.length)); // truncated
    case 1: {
      const extra = new Uint8Array(valid.length + 1 + Math.floor(next() * 3)); // trailing bytes
      extra.set(valid);
      return extra;
    }
    default: {
      for (let k = 1 + Math.floor(next() * 3); k > 0 && valid.length > 0; k--) {
        valid[Math.floor(next() * valid.length)] = Math.floor(next() * 256);
      }
      return valid;
    }
  }
}

describe("decodeSimpleCbor", () => {
  it("reads back every simple value as cbor-x does (seeded, 3000 values)", () => {
    const next = rng(20261203);
    for (let i = 0; i < 3000; i++) {
      const bytes = cborX(simpleValue(next, 0));
      const simple = decodeSimpleCbor(bytes);
      assert.notEqual(simple, NOT_READ, `value ${i} was not read`);
      assert.deepStrictEqual(simple, cborDecoder.decode(bytes), `value ${i}`);
    }
  });

  it("gives hostile bytes either cbor-x's value or to cbor-x (seeded, 4000 inputs)", () => {
    const next = rng(20261204);
    let read = 0;
    for (let i = 0; i < 4000; i++) {
      const bytes = hostileBytes(next);
      const simple = decodeSimpleCbor(bytes);
      if (simple === NOT_READ) continue;
      read++;
      assert.deepStrictEqual(simple, cborDecoder.decode(bytes), `input ${i}: ${bytes.join(",")}`);
    }
    assert.ok(read > 400, `only ${read} inputs were read directly`);
  });

  it("reads byte strings as plain views of the input, and heads longer than needed", () => {
    const input = Uint8Array.of(0x82, 0x42, 7, 8, 0x19, 0x00, 0x05);
    const decoded = decodeSimpleCbor(input) as [Uint8Array, number];
    assert.deepStrictEqual(decoded, cborDecoder.decode(input));
    assert.equal(decoded[0].constructor, Uint8Array);
    assert.equal(decoded[0].buffer, input.buffer);
    assert.equal(decoded[0].byteOffset, 2);
  });

  it("leaves to cbor-x what it does not read as cbor-x does, and decodeCbor still decodes it", () => {
    const proto = Uint8Array.of(0xa1, 0x69, ...new TextEncoder().encode("__proto__"), 0x01);
    const leftOver: Uint8Array[] = [
      Uint8Array.of(0xfa, 0x3f, 0xc0, 0x00, 0x00), // a float32
      Uint8Array.of(0xf9, 0x3c, 0x00), // a float16
      cborX(2n ** 60n), // a 64-bit integer
      cborX("é"),
      cborX(`${"x".repeat(29)}é`), // longer than the short-string cache: the other ASCII check
      cborX(`é${"x".repeat(40)}`),
      cborX("x".repeat(513)),
      cborX(new Map([[1, 2]])),
      cborX(new Date(0)),
      Uint8Array.of(0xa1, 0x01, 0x02), // a key that is not text
      proto,
      Uint8Array.of(0x9f, 0x01, 0xff), // an indefinite-length array
    ];
    for (const bytes of leftOver) {
      assert.equal(decodeSimpleCbor(bytes), NOT_READ, bytes.join(","));
      assert.deepStrictEqual(decodeCbor(bytes), cborDecoder.decode(bytes));
    }
    assert.deepStrictEqual(decodeCbor(proto), { __proto_: 1 });
    const broken = [
      Uint8Array.of(0x01, 0x02),
      Uint8Array.of(0x82, 0x01),
      new Uint8Array(),
      Uint8Array.of(0xf8, 0x20),
    ];
    for (const bytes of broken) {
      assert.equal(decodeSimpleCbor(bytes), NOT_READ);
      assert.throws(() => decodeCbor(bytes));
    }
  });
});
