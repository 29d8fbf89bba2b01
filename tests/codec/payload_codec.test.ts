import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { HamokCodecError, type PayloadCodec } from "../../mod.ts";
import {
  CborPayloadCodec,
  cborPayloadCodec,
  decodeEnvelope,
  decodePayload,
  encodeEnvelope,
  encodePayload,
} from "../../internal.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { bytes } from "./_fixtures.ts";

function roundTrip(args: unknown[]): unknown[] {
  return decodePayload(cborPayloadCodec, encodePayload(cborPayloadCodec, args));
}

function assertCodecError(fn: () => unknown, pattern: RegExp, cause?: unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HamokCodecError, `expected HamokCodecError, got ${String(err)}`);
    assert.match(err.message, pattern);
    if (cause !== undefined) assert.equal(err.cause, cause);
    else assert.ok(err.cause !== undefined);
    return true;
  });
}

describe("CBOR payload codec: values that round-trip", () => {
  it("round-trips undefined, null, 0, empty string, false and NaN in one argument list", () => {
    const out = roundTrip([undefined, null, 0, "", false, NaN]);
    assert.equal(out.length, 6);
    assert.deepStrictEqual(out, [undefined, null, 0, "", false, NaN]);
    assert.ok(Number.isNaN(out[5]));
  });

  it("round-trips an empty argument list and a single argument", () => {
    assert.deepStrictEqual(roundTrip([]), []);
    assert.deepStrictEqual(roundTrip(["only"]), ["only"]);
  });

  it("round-trips numbers, strings and Infinity", () => {
    const args = [
      1,
      -1,
      2 ** 53 - 1,
      -(2 ** 40),
      1.5,
      -0.25,
      Infinity,
      -Infinity,
      "héllo ✓ 🎉",
      "x".repeat(1000),
    ];
    assert.deepStrictEqual(roundTrip(args), args);
  });

  it("round-trips nested objects and arrays", () => {
    const args = [{ a: { b: [1, { c: [undefined, null, { d: "e" }] }] }, list: [[], [[]], {}] }];
    assert.deepStrictEqual(roundTrip(args), args);
  });

  it("round-trips Maps with any keys, nested in objects", () => {
    const m = new Map<unknown, unknown>([[1, "one"], ["k", { x: 1 }], [true, null]]);
    const args = [m, { inner: new Map([["a", new Map([["b", 2]])]]) }, new Map()];
    const out = roundTrip(args);
    assert.deepStrictEqual(out, args);
    assert.ok(out[0] instanceof Map);
    assert.ok(!(out[1] instanceof Map), "a plain object stays a plain object");
  });

  it("round-trips Uint8Array as a plain Uint8Array view into the payload", () => {
    const data = encodePayload(cborPayloadCodec, [bytes(64), new Uint8Array(0)]);
    assert.ok(data instanceof Uint8Array);
    const out = decodePayload(cborPayloadCodec, data);
    assert.deepStrictEqual(out, [bytes(64), new Uint8Array(0)]);
    const first = out[0] as Uint8Array;
    assert.equal(first.constructor, Uint8Array);
    assert.equal(first.buffer, (data as Uint8Array).buffer, "no copy on decode");
  });

  it("round-trips bigint of any size and sign", () => {
    const args = [0n, 5n, -3n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 70n, -(2n ** 70n)];
    const out = roundTrip(args);
    assert.deepStrictEqual(out, args);
    for (const v of out) assert.equal(typeof v, "bigint");
  });

  it("round-trips Set, Date and other typed arrays", () => {
    const args = [
      new Set([1, "a"]),
      new Date(1234567890123),
      new Uint16Array([1, 65535]),
      new Float64Array([0.5]),
    ];
    assert.deepStrictEqual(roundTrip(args), args);
  });

  it("encodeArgs produces the same bytes as encode(...args)", () => {
    const codec = new CborPayloadCodec();
    const args = ["a", 1, { b: bytes(3) }];
    assert.deepStrictEqual(codec.encodeArgs(args), codec.encode(...args));
  });
});

describe("CBOR payload codec: documented values that do not round-trip", () => {
  it("-0 arrives as 0", () => {
    const [v] = roundTrip([-0]);
    assert.equal(v, 0);
    assert.ok(!Object.is(v, -0));
  });

  it("class instances arrive as plain objects", () => {
    class Point {
      constructor(public x: number, public y: number) {}
      norm(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    const [v] = roundTrip([new Point(3, 4)]);
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepStrictEqual({ ...(v as object) }, { x: 3, y: 4 });
  });

  it("Error subclasses arrive as Error with the message", () => {
    const [v] = roundTrip([new TypeError("bad")]);
    assert.ok(v instanceof Error);
    assert.ok(!(v instanceof TypeError));
    assert.equal((v as Error).message, "bad");
  });

  it("Buffer and ArrayBuffer arrive as Uint8Array", () => {
    const out = roundTrip([Buffer.from([1, 2]), new Uint8Array([3]).buffer]);
    assert.deepStrictEqual(out, [new Uint8Array([1, 2]), new Uint8Array([3])]);
    for (const v of out) assert.equal((v as object).constructor, Uint8Array);
  });

  it("array holes arrive as undefined and a __proto__ key is renamed", () => {
    // deno-lint-ignore no-sparse-arrays
    assert.deepStrictEqual(roundTrip([[1, , 3]]), [[1, undefined, 3]]);
    const [v] = roundTrip([JSON.parse('{"__proto__": {"polluted": 1}}')]);
    assert.deepStrictEqual(Object.keys(v as object), ["__proto_"]);
    assert.equal(({} as { polluted?: number }).polluted, undefined);
  });

  it("functions, symbols and cycles cannot be encoded", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const v of [() => 1, Symbol("s"), cyclic]) {
      assertCodecError(() => encodePayload(cborPayloadCodec, [v]), /payload codec failed to encode/);
    }
  });
});

describe("payload codec seam", () => {
  it("accepts a codec of the manual's string shape and carries its string in an event", () => {
    const manual: { encode: (...args: unknown[]) => string; decode: (data: string) => unknown[] } = {
      encode: (...args) => JSON.stringify(args),
      decode: (data) => JSON.parse(data),
    };
    const codec: PayloadCodec = manual; // type-level compatibility
    const payload = encodePayload(codec, ["hi", 1, { a: [true] }]);
    assert.equal(payload, '["hi",1,{"a":[true]}]');
    const env = decodeEnvelope(encodeEnvelope({
      type: "event",
      from: "p",
      body: { emitterId: "chat", event: "message", payload, seq: 1 },
    }));
    assert.equal(env.type, "event");
    if (env.type !== "event") return;
    assert.equal(typeof env.body.payload, "string");
    assert.deepStrictEqual(decodePayload(codec, env.body.payload), ["hi", 1, { a: [true] }]);
  });

  it("wraps a throw in encode, keeping the thrown value as cause", () => {
    const boom = new Error("encode boom");
    const codec: PayloadCodec = {
      encode: () => {
        throw boom;
      },
      decode: () => [],
    };
    assertCodecError(() => encodePayload(codec, [1]), /payload codec failed to encode: encode boom/, boom);
    const throwsString: PayloadCodec = {
      encode: () => {
        throw "plain string"; // a user codec may throw anything
      },
      decode: () => [],
    };
    assertCodecError(() => encodePayload(throwsString, []), /plain string/, "plain string");
  });

  it("wraps a throw in decode, keeping the thrown value as cause", () => {
    const boom = new SyntaxError("decode boom");
    const codec: PayloadCodec = {
      encode: () => "",
      decode: () => {
        throw boom;
      },
    };
    assertCodecError(() => decodePayload(codec, "x"), /payload codec failed to decode: decode boom/, boom);
  });

  it("rejects a decode result that is not an array", () => {
    for (const result of [undefined, null, "a", 1, { 0: "a", length: 1 }, new Set([1])]) {
      const codec: PayloadCodec = { encode: () => "", decode: () => result as unknown as unknown[] };
      assertCodecError(() => decodePayload(codec, "x"), /expected an array of arguments/);
    }
  });

  it("rejects an encode result that is neither a string nor a Uint8Array", () => {
    for (const result of [undefined, null, 1, [1], { length: 0 }, new ArrayBuffer(1)]) {
      const codec: PayloadCodec = { encode: () => result as unknown as string, decode: () => [] };
      assertCodecError(() => encodePayload(codec, [1]), /expected a string or a Uint8Array/);
    }
  });

  it("the CBOR codec rejects a string, garbage bytes and a CBOR value that is not an array", () => {
    assertCodecError(() => decodePayload(cborPayloadCodec, "[1]"), /decodes bytes, got string/);
    assertCodecError(() => decodePayload(cborPayloadCodec, new Uint8Array([0x82, 0x01])), /failed to decode/);
    assertCodecError(() => decodePayload(cborPayloadCodec, new Uint8Array(0)), /failed to decode/);
    assertCodecError(
      () => decodePayload(cborPayloadCodec, encodeCbor({ a: 1 })),
      /expected a CBOR array, got Object/,
    );
    assertCodecError(
      () => decodePayload(cborPayloadCodec, encodeCbor("x")),
      /expected a CBOR array, got string/,
    );
  });
});
