import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { cborValueCodec } from "../../src/codec/value_codec.ts";
import { decodeKept, decodeStored } from "../../src/collections/entry_codec.ts";
import { latin1Of, VALUE_BYTES } from "../../src/collections/map_slots.ts";
import { HamokCodecError } from "../../src/errors.ts";

describe("decodeStored", () => {
  it("gives a CBOR byte string as a copy of its bytes, in a buffer of its own", () => {
    const stored = Uint8Array.from(encodeCbor(new Uint8Array([1, 2, 3, 4])));
    const value = decodeStored(cborValueCodec, stored) as Uint8Array;
    assert.deepStrictEqual(value, new Uint8Array([1, 2, 3, 4]));
    assert.notEqual(value.buffer, stored.buffer);
    assert.equal(value.byteOffset, 0);
    assert.equal(value.buffer.byteLength, 4);
    value[0] = 99;
    assert.deepStrictEqual(decodeStored(cborValueCodec, stored), new Uint8Array([1, 2, 3, 4]));
  });

  it("still copies the stored bytes before decoding arrays and maps with byte strings in them", () => {
    const stored = Uint8Array.from(encodeCbor([new Uint8Array([5]), { b: new Uint8Array([6]) }]));
    const value = decodeStored(cborValueCodec, stored) as [Uint8Array, { b: Uint8Array }];
    value[0][0] = 0;
    value[1].b[0] = 0;
    assert.deepStrictEqual(decodeStored(cborValueCodec, stored), [new Uint8Array([5]), {
      b: new Uint8Array([6]),
    }]);
  });
});

describe("decodeKept", () => {
  const kept = (value: unknown): string => latin1Of(encodeCbor(value), 0);
  const values: unknown[] = [
    new Uint8Array(0),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(23).fill(7),
    new Uint8Array(24).fill(8),
    new Uint8Array(255).fill(9),
    new Uint8Array(256).fill(10),
    new Uint8Array(1000).map((_, i) => i),
    "",
    "k",
    "x".repeat(23),
    "y".repeat(24),
    "z".repeat(300),
    "café ünïcode ✓",
    "\u007f edge",
    0,
    -1,
    1.5,
    12n,
    true,
    null,
    [1, "a", new Uint8Array([2])],
    { a: new Uint8Array([3]), b: "c" },
  ];

  it("reads every kind of value kept as one char per byte as the CBOR codec decodes it", () => {
    for (const value of values) {
      assert.deepStrictEqual(decodeKept(cborValueCodec, kept(value), VALUE_BYTES), value, String(value));
    }
  });

  it("gives byte strings as fresh arrays and leaves values not kept as bytes to the codec", () => {
    const k = kept(new Uint8Array([4, 5, 6]));
    const a = decodeKept(cborValueCodec, k, VALUE_BYTES) as Uint8Array;
    const b = decodeKept(cborValueCodec, k, VALUE_BYTES) as Uint8Array;
    assert.notEqual(a.buffer, b.buffer);
    assert.equal(a.buffer.byteLength, 3);
    a[0] = 0;
    assert.deepStrictEqual(b, new Uint8Array([4, 5, 6]));
    const owned = Uint8Array.from(encodeCbor(new Uint8Array(2000).fill(1)));
    const c = decodeKept(cborValueCodec, owned, 0) as Uint8Array;
    assert.equal(c.length, 2000);
    assert.notEqual(c.buffer, owned.buffer);
    const stringCodec = { encode: (v: string) => v, decode: (d: string | Uint8Array) => String(d) };
    assert.equal(decodeKept(stringCodec, "plain", 0), "plain");
  });

  it("decodes a malformed kept value to a codec error, as decodeStored does", () => {
    const truncated = kept("hello").slice(0, 3);
    assert.throws(() => decodeKept(cborValueCodec, truncated, VALUE_BYTES), HamokCodecError);
  });
});
