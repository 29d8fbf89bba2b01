import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  DecodeFailureCounter,
  type DecodeFailureStats,
  encodeEnvelope,
  HamokCodecError,
  HamokConfigError,
  safeDecodeEnvelope,
  type WireEnvelope,
} from "../../mod.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { allEnvelopes } from "./_fixtures.ts";

describe("safeDecodeEnvelope", () => {
  it("returns the envelope and counts nothing for a valid message", () => {
    const stats = new DecodeFailureCounter();
    for (const env of allEnvelopes()) {
      assert.deepStrictEqual(safeDecodeEnvelope(encodeEnvelope(env), stats), env);
    }
    assert.equal(stats.decodeFailures, 0);
    assert.equal(stats.lastError, undefined);
  });

  it("drops and counts bad messages, keeping the last error, and keeps going", () => {
    const stats = new DecodeFailureCounter();
    const good = allEnvelopes();
    const inbox: Uint8Array[] = [];
    const bad = [
      new Uint8Array(0),
      new Uint8Array([0xff, 0x00]),
      encodeCbor([2, 0, "p", []]),
      encodeCbor([1, 77, "p", []]),
      encodeCbor([1, 4, "p", ["e", "x", 5, 1]]),
    ];
    for (let i = 0; i < good.length; i++) {
      inbox.push(encodeEnvelope(good[i]));
      if (i < bad.length) inbox.push(bad[i]);
    }
    const handled: WireEnvelope[] = [];
    for (const msg of inbox) {
      const env = safeDecodeEnvelope(msg, stats);
      if (env !== undefined) handled.push(env);
    }
    assert.deepStrictEqual(handled, good);
    assert.equal(stats.decodeFailures, bad.length);
    assert.ok(stats.lastError instanceof HamokCodecError);
    assert.match(stats.lastError.message, /event\.payload/);
  });

  it("honours maxBytes", () => {
    const stats = new DecodeFailureCounter();
    const msg = encodeEnvelope(allEnvelopes()[0]);
    assert.equal(safeDecodeEnvelope(msg, stats, { maxBytes: 4 }), undefined);
    assert.equal(stats.decodeFailures, 1);
    assert.match(stats.lastError?.message ?? "", /exceed the limit of 4/);
  });

  it("works with any object of the DecodeFailureStats shape", () => {
    const stats: DecodeFailureStats = { decodeFailures: 10, lastError: undefined };
    assert.equal(safeDecodeEnvelope(new Uint8Array([0x01]), stats), undefined);
    assert.equal(stats.decodeFailures, 11);
    assert.ok(stats.lastError instanceof HamokCodecError);
  });

  it("throws configuration errors instead of counting them", () => {
    const stats = new DecodeFailureCounter();
    assert.throws(() => safeDecodeEnvelope(new Uint8Array([1]), stats, { maxBytes: -5 }), HamokConfigError);
    assert.equal(stats.decodeFailures, 0);
  });
});

describe("DecodeFailureCounter", () => {
  it("records and resets", () => {
    const counter = new DecodeFailureCounter();
    const a = new HamokCodecError("a");
    const b = new HamokCodecError("b");
    counter.record(a);
    counter.record(b);
    assert.equal(counter.decodeFailures, 2);
    assert.equal(counter.lastError, b);
    counter.reset();
    assert.equal(counter.decodeFailures, 0);
    assert.equal(counter.lastError, undefined);
  });
});
