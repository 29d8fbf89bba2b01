import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  HamokAbortedError,
  HamokClosedError,
  HamokCodecError,
  HamokConfigError,
  HamokError,
  HamokNoLeaderError,
  HamokNotLeaderError,
  HamokOutcomeUnknownError,
  HamokTimeoutError,
  HamokTransportError,
} from "../mod.ts";

describe("errors", () => {
  it("every subclass is a HamokError with its own stable code and name", () => {
    const cases: [HamokError, string, string][] = [
      [new HamokError("x"), "HAMOK_ERROR", "HamokError"],
      [new HamokTimeoutError("x", { timeoutMs: 5 }), "HAMOK_TIMEOUT", "HamokTimeoutError"],
      [new HamokClosedError("x"), "HAMOK_CLOSED", "HamokClosedError"],
      [new HamokNoLeaderError("x"), "HAMOK_NO_LEADER", "HamokNoLeaderError"],
      [new HamokNotLeaderError("x"), "HAMOK_NOT_LEADER", "HamokNotLeaderError"],
      [new HamokCodecError("x"), "HAMOK_CODEC", "HamokCodecError"],
      [new HamokConfigError("x"), "HAMOK_CONFIG", "HamokConfigError"],
      [new HamokAbortedError("x"), "HAMOK_ABORTED", "HamokAbortedError"],
      [
        new HamokOutcomeUnknownError("x", { requestId: "r" }),
        "HAMOK_OUTCOME_UNKNOWN",
        "HamokOutcomeUnknownError",
      ],
      [new HamokTransportError("x"), "HAMOK_TRANSPORT", "HamokTransportError"],
    ];
    const codes = new Set<string>();
    for (const [err, code, name] of cases) {
      assert.ok(err instanceof HamokError);
      assert.ok(err instanceof Error);
      assert.equal(err.code, code);
      assert.equal(err.name, name);
      codes.add(err.code);
    }
    assert.equal(codes.size, cases.length);
  });

  it("keeps the cause of a wrapped error", () => {
    const inner = new TypeError("bad");
    const err = new HamokCodecError("decode failed", { cause: inner });
    assert.equal(err.cause, inner);
    assert.equal(new HamokError("no cause").cause, undefined);
  });

  it("timeout errors name who answered and who did not", () => {
    const err = new HamokTimeoutError("t", {
      timeoutMs: 100,
      respondedPeerIds: ["a"],
      missingPeerIds: ["b"],
    });
    assert.deepEqual(err.respondedPeerIds, ["a"]);
    assert.deepEqual(err.missingPeerIds, ["b"]);
    assert.equal(err.timeoutMs, 100);
  });
});
