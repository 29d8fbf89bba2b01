/**
 * Strings that are not well formed (a lone UTF-16 surrogate) cannot be carried by UTF-8: encoded,
 * they arrive as U+FFFD, so two different strings become one. Every boundary that UTF-8-encodes a
 * string rejects them with a typed error (audit F4).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokCodecError, HamokConfigError, type HamokError } from "../../src/errors.ts";
import { assertRoundTrips, decodeCbor } from "../../src/codec/cbor.ts";
import { CborChunkWriter } from "../../src/codec/cbor_writer.ts";
import { CborValueCodec, cborValueCodec, encodeValue, type ValueCodec } from "../../src/codec/value_codec.ts";
import { cborPayloadCodec, encodePayload, type PayloadCodec } from "../../src/codec/payload_codec.ts";
import { clusterKeysOf } from "../../src/codec/wire_auth.ts";
import { nonEmptyString, resolveHamokConfig } from "../../src/config.ts";
import { assertWellFormed, isWellFormedString, wellFormedCheck } from "../../src/codec/well_formed.ts";

/** Lone surrogates (high, low, reversed pair, at the end) and, for contrast, well-formed strings. */
const LONE = ["\uD800", "\uDC00", "a\uDBFFb", "\uDC00\uD800", "x\uD83D", "caf\u00e9 \uDE00"];
const WELL_FORMED = ["", "ascii", "caf\u00e9", "\u{1F600}", "\uD83D\uDE00 and \u20AC", "\u0000\u00ff"];

/** Asserts that `fn` throws a `HamokError` of `type` whose message names a lone surrogate. */
function assertRejects(
  fn: () => unknown,
  type: typeof HamokCodecError | typeof HamokConfigError,
): HamokError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof type, `expected a ${type.name}, got ${String(thrown)}`);
  assert.match(thrown.message, /lone UTF-16 surrogate/);
  return thrown;
}

describe("the default value codec rejects strings that are not well formed", () => {
  it("as the value, nested in arrays, objects, Maps and Sets, and as object and Map keys", () => {
    for (const s of LONE) {
      const values: unknown[] = [
        s,
        [1, s],
        { name: s },
        { [s]: 1 },
        { deep: [{ deeper: new Map([["k", s]]) }] },
        new Map([[s, 1]]),
        new Set(["ok", s]),
        { long: "x".repeat(600) + s }, // past the simple encoder's string limit
        [new Uint8Array(2), s, 12n], // a bigint makes it cbor-x's to encode
      ];
      for (const value of values) {
        const error = assertRejects(() => encodeValue(cborValueCodec, value), HamokCodecError);
        assert.equal(error.code, "HAMOK_CODEC");
        // the cause chain ends in the detail, and the message never shows the string itself
        assert.ok(error.cause instanceof HamokCodecError);
        assert.ok(error.cause.cause instanceof TypeError);
        assert.ok(!error.message.includes(s));
      }
      assert.throws(() => new CborValueCodec().encode(s), HamokCodecError);
    }
  });

  it("names where the string is", () => {
    assert.throws(
      () => encodeValue(cborValueCodec, { a: [0, { b: "\uD800" }] }),
      /value\.a\[1\]\.b .*index 0/,
    );
    assert.throws(() => encodeValue(cborValueCodec, { ["k\uDC00"]: 1 }), /a key of value .*index 1/);
    assert.throws(() => assertRoundTrips(["ok", "\uD800"]), /value\[1\]/);
  });

  it("still encodes well-formed strings, surrogate pairs included, unchanged", () => {
    for (const s of WELL_FORMED) {
      for (const value of [s, { [s || "k"]: s }, [s, new Map([[s, s]])]]) {
        assert.deepEqual(cborValueCodec.decode(encodeValue(cborValueCodec, value) as Uint8Array), value);
      }
    }
  });

  it("keeps rejecting what CBOR cannot round-trip, with the same TypeErrors", () => {
    assert.throws(() => new CborValueCodec().encode(() => 1), TypeError);
    assert.throws(() => new CborValueCodec().encode({ w: new WeakMap() }), /WeakMap/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => new CborValueCodec().encode(cyclic), /cycle/);
  });
});

describe("a codec that returns strings", () => {
  const stringCodec: ValueCodec<string> = { encode: (s) => s, decode: (d) => d as string };

  it("is rejected for a string that is not well formed (two keys would become one)", () => {
    for (const s of LONE) {
      const error = assertRejects(() => encodeValue(stringCodec, s), HamokCodecError);
      assert.match(error.message, /value codec's output/);
      assert.ok(error.cause instanceof TypeError);
    }
    for (const s of WELL_FORMED) assert.equal(encodeValue(stringCodec, s), s);
  });

  it("a payload codec too; the default payload codec checks the arguments", () => {
    const stringPayload: PayloadCodec = { encode: (...args) => args.join(","), decode: (d) => [d] };
    assertRejects(() => encodePayload(stringPayload, ["a", "\uD800"]), HamokCodecError);
    assert.equal(encodePayload(stringPayload, ["a", "\u{1F600}"]), "a,\u{1F600}");
    assertRejects(() => encodePayload(cborPayloadCodec, ["chat", { text: "hi \uDC00" }]), HamokCodecError);
    const ok = encodePayload(cborPayloadCodec, ["chat", { text: "hi \u{1F600}" }]) as Uint8Array;
    assert.deepEqual(decodeCbor(ok), ["chat", { text: "hi \u{1F600}" }]);
  });
});

describe("the chunk writer's text()", () => {
  it("throws HamokCodecError for a lone surrogate and writes nothing", () => {
    for (const s of LONE) {
      const w = new CborChunkWriter(64);
      w.arrayHeader(1);
      const error = assertRejects(() => w.text(s), HamokCodecError);
      assert.equal(error.code, "HAMOK_CODEC");
      assert.equal(w.length, 1);
    }
  });

  it("checks the part it writes (from offset on), and writes well-formed text as before", () => {
    const w = new CborChunkWriter(64);
    w.arrayHeader(3);
    assertRejects(() => w.text("k\u00e9\uD800", 1), HamokCodecError);
    w.text("\uD800caf\u00e9", 1); // the lone surrogate is before the offset: not written
    w.text("\uD83D\uDE00");
    w.text("ascii");
    const joiner = w.joiner();
    assert.ok(joiner.step(1 << 20));
    assert.deepEqual(decodeCbor(joiner.result()), ["caf\u00e9", "\u{1F600}", "ascii"]);
  });
});

describe("configuration strings", () => {
  it("peerId, clusterId and subjectPrefix must be well formed (HamokConfigError)", () => {
    for (const s of LONE) {
      for (const field of ["peerId", "clusterId", "subjectPrefix"] as const) {
        const error = assertRejects(() => resolveHamokConfig({ [field]: `p-${s}` }), HamokConfigError);
        assert.equal(error.code, "HAMOK_CONFIG");
        assert.match(error.message, new RegExp(`^${field} `));
        assert.ok(error.cause instanceof TypeError);
      }
      assertRejects(() => nonEmptyString("name", s, () => "x"), HamokConfigError);
    }
    const config = resolveHamokConfig({ peerId: "p\u{1F600}", clusterId: "c\u00e9" });
    assert.equal(config.peerId, "p\u{1F600}");
    assert.equal(config.clusterId, "c\u00e9");
    assert.equal(nonEmptyString("name", undefined, () => "fallback"), "fallback");
  });

  it("a cluster key given as a string must be well formed", () => {
    const key = "a long random secret of at least 32 bytes, ";
    const error = assertRejects(() => clusterKeysOf([key + "ok", key + "\uD800"]), HamokConfigError);
    assert.match(error.message, /^clusterKey\[1\] /);
    assert.ok(!error.message.includes(key), "the message never shows the key");
    assert.equal(clusterKeysOf(key + "\u{1F600}").length, 1);
  });
});

describe("the helper (src/codec/well_formed.ts)", () => {
  it("assertWellFormed throws the given class, naming the index and the code unit", () => {
    for (const s of LONE) assert.equal(isWellFormedString(s), false, JSON.stringify(s));
    for (const s of WELL_FORMED) assert.equal(isWellFormedString(s), true, JSON.stringify(s));
    assert.doesNotThrow(() => assertWellFormed("event", "\u{1F600}", HamokConfigError));
    const error = assertRejects(
      () => assertWellFormed("event", "ab\uD83D\uDE00\uDC01", HamokConfigError),
      HamokConfigError,
    );
    assert.match(
      error.message,
      /^event is not a well-formed string: a lone UTF-16 surrogate \(U\+DC01\) at index 4/,
    );
    assertRejects(() => assertWellFormed("request id", "\uDBFF", HamokCodecError), HamokCodecError);
  });

  it("uses String.prototype.isWellFormed, or a regular expression where it is missing", () => {
    const native = (String.prototype as unknown as { isWellFormed: (this: string) => boolean }).isWellFormed;
    let calls = 0;
    const spied = wellFormedCheck(function (this: string) {
      calls++;
      return native.call(this);
    });
    assert.equal(spied("b\uD800"), false);
    assert.equal(calls, 1);
    const fallback = wellFormedCheck(undefined);
    for (const s of LONE) assert.equal(fallback(s), false, JSON.stringify(s));
    for (const s of WELL_FORMED) assert.equal(fallback(s), true, JSON.stringify(s));
    for (const s of [...LONE, ...WELL_FORMED]) assert.equal(isWellFormedString(s), native.call(s));
  });
});
