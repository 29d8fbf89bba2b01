import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { cborValueCodec } from "../../src/codec/value_codec.ts";
import { decodeStored } from "../../src/collections/entry_codec.ts";

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
