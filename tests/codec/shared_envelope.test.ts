/** The wire form of a shared append or heartbeat (`raft-shared`, code 7) and the bounds its decoder keeps. */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  decodeEnvelope,
  encodeEnvelope,
  MAX_SHARED_RECIPIENTS,
  type WireEnvelope,
} from "../../src/codec/envelope.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { HamokCodecError } from "../../src/errors.ts";

const entries = [{
  index: 8,
  term: 3,
  type: "normal" as const,
  data: new Uint8Array([1, 2, 3]),
  requestId: "r1",
}];

function shared(recipients: string[]): WireEnvelope {
  return {
    type: "raft-shared",
    from: "a",
    body: {
      recipients,
      message: {
        type: "append",
        from: "a/1",
        to: "",
        term: 3,
        prevIndex: 7,
        prevTerm: 3,
        commit: 7,
        entries,
      },
    },
  };
}

describe("raft-shared envelope", () => {
  it("round-trips an append and a heartbeat, with an empty recipient field on the wire", () => {
    const append = shared(["b/2", "c/3"]);
    assert.deepStrictEqual(decodeEnvelope(encodeEnvelope(append, "x")), { ...append, cluster: "x" });
    const heartbeat: WireEnvelope = {
      type: "raft-shared",
      from: "a",
      body: {
        recipients: ["b/2"],
        message: { type: "heartbeat", from: "a/1", to: "", term: 3, commit: 7, ctx: "r" },
      },
    };
    assert.deepStrictEqual(decodeEnvelope(encodeEnvelope(heartbeat)), heartbeat);
    // whatever `to` the message had, it is not sent
    const addressed = shared(["b/2"]);
    if (addressed.type !== "raft-shared") throw new Error("unreachable");
    const wire = decodeCbor(
      encodeEnvelope({
        ...addressed,
        body: { ...addressed.body, message: { ...addressed.body.message, to: "b/2" } },
      }),
    ) as unknown[];
    assert.equal(wire[1], 7);
    assert.equal(((wire[3] as unknown[])[1] as unknown[])[2], "");
  });

  it(`refuses no recipients, more than ${MAX_SHARED_RECIPIENTS}, or a recipient that is not a string`, () => {
    const tooMany = Array.from({ length: MAX_SHARED_RECIPIENTS + 1 }, (_, i) => `m${i}`);
    assert.doesNotThrow(() => decodeEnvelope(encodeEnvelope(shared(tooMany.slice(1)))));
    for (
      const [recipients, pattern] of [
        [[], /recipients: expected 1\.\.128/],
        [tooMany, /recipients: expected 1\.\.128 member ids, got 129/],
        [Array.from({ length: 10_000 }, (_, i) => `m${i}`), /got 10000/],
      ] as const
    ) {
      assert.throws(() => decodeEnvelope(encodeEnvelope(shared([...recipients]))), (error: unknown) => {
        assert.ok(error instanceof HamokCodecError);
        assert.match(error.message, pattern);
        return true;
      });
    }
    const raw = (body: unknown) => encodeCbor([1, 7, "a", body]);
    assert.throws(() => decodeEnvelope(raw([["b", 2], [2, "a/1", "", 3, 7]])), /recipients\[1\]/);
    assert.throws(() => decodeEnvelope(raw([["b"]])), /raft-shared: expected 2 elements/);
  });

  it("carries appends and heartbeats only", () => {
    const vote = [4, "a/1", "", 3, 7, 3];
    assert.throws(
      () => decodeEnvelope(encodeCbor([1, 7, "a", [["b/2"], vote]])),
      /expected an append or a heartbeat, got vote/,
    );
  });
});
