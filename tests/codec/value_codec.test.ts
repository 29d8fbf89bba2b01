import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokCodecError, type ValueCodec } from "../../mod.ts";
import { CborValueCodec, cborValueCodec, decodeValue, encodeValue } from "../../internal.ts";
import { bytes } from "./_fixtures.ts";

describe("CBOR value codec", () => {
  it("round-trips the edge values one at a time", () => {
    const values: unknown[] = [
      undefined,
      null,
      0,
      "",
      false,
      true,
      NaN,
      -Infinity,
      { a: { b: [1, { c: null }] } },
      new Map<unknown, unknown>([[1, "a"], ["k", new Map([[2n, [true]]])]]),
      bytes(17),
      12345678901234567890n,
      -(2n ** 80n),
      [undefined, null],
      new Set(["x"]),
    ];
    for (const v of values) {
      const data = encodeValue(cborValueCodec, v);
      assert.ok(data instanceof Uint8Array);
      assert.deepStrictEqual(decodeValue(cborValueCodec, data), v);
    }
  });

  it("decodes Uint8Array values as plain views", () => {
    const data = cborValueCodec.encode(bytes(8)) as Uint8Array;
    const out = cborValueCodec.decode(data) as Uint8Array;
    assert.equal(out.constructor, Uint8Array);
    assert.equal(out.buffer, data.buffer);
  });

  it("is typed by its parameter", () => {
    const codec: ValueCodec<{ n: number }> = new CborValueCodec<{ n: number }>();
    assert.equal(codec.decode(codec.encode({ n: 3 })).n, 3);
  });

  it("wraps failures in HamokCodecError with the cause", () => {
    const boom = new Error("nope");
    const throwing: ValueCodec<number> = {
      encode: () => {
        throw boom;
      },
      decode: () => {
        throw boom;
      },
    };
    for (const fn of [() => encodeValue(throwing, 1), () => decodeValue(throwing, "1")]) {
      assert.throws(fn, (err: unknown) => err instanceof HamokCodecError && err.cause === boom);
    }
    const wrongType: ValueCodec<number> = { encode: () => 5 as unknown as string, decode: () => 1 };
    assert.throws(() => encodeValue(wrongType, 1), /expected a string or a Uint8Array/);
    assert.throws(() => decodeValue(cborValueCodec, "text"), (err: unknown) => {
      return err instanceof HamokCodecError && err.cause instanceof TypeError;
    });
    assert.throws(() => decodeValue(cborValueCodec, new Uint8Array([0x9f])), HamokCodecError);
    assert.throws(() => encodeValue(cborValueCodec, Symbol("s")), HamokCodecError);
  });

  it("accepts a string codec", () => {
    const json: ValueCodec<unknown> = {
      encode: (v) => JSON.stringify(v),
      decode: (d) => JSON.parse(d as string),
    };
    const data = encodeValue(json, { a: 1 });
    assert.equal(data, '{"a":1}');
    assert.deepStrictEqual(decodeValue(json, data), { a: 1 });
  });
});
