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
  HamokRateLimitedError,
  HamokRemoteError,
  HamokRemovedError,
  HamokTimeoutError,
  HamokTransportError,
} from "../mod.ts";
import { errorFromWire, errorToWire, isHamokErrorCode } from "../internal.ts";
import type { RequestBody, ResponseBody } from "../internal.ts";
import { RpcRouter } from "../src/cluster/rpc.ts";

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

  it("a wire code that needs only a message comes back as its class, naming the peer in its cause", () => {
    const cases: [string, new (...args: never[]) => HamokError][] = [
      ["HAMOK_CLOSED", HamokClosedError],
      ["HAMOK_NO_LEADER", HamokNoLeaderError],
      ["HAMOK_NOT_LEADER", HamokNotLeaderError],
      ["HAMOK_CODEC", HamokCodecError],
      ["HAMOK_CONFIG", HamokConfigError],
      ["HAMOK_ABORTED", HamokAbortedError],
      ["HAMOK_TRANSPORT", HamokTransportError],
      ["HAMOK_RATE_LIMITED", HamokRateLimitedError],
      ["HAMOK_REMOVED", HamokRemovedError],
    ];
    for (const [code, type] of cases) {
      const error = errorFromWire({ code, message: "went wrong" }, "p2", "join");
      assert.ok(error instanceof type, `${code} -> ${type.name}, got ${error.name}`);
      assert.equal(error.code, code);
      assert.equal(error.message, "join at p2: went wrong");
      assert.ok(error.cause instanceof HamokRemoteError);
      assert.equal((error.cause as HamokRemoteError).peerId, "p2");
      assert.equal((error.cause as HamokRemoteError).code, code);
    }
  });

  it("a wire code whose class carries details the wire lacks stays a HamokRemoteError with the code", () => {
    for (const code of ["HAMOK_TIMEOUT", "HAMOK_OUTCOME_UNKNOWN", "HAMOK_CONFLICT", "HAMOK_STORAGE_FULL"]) {
      const error = errorFromWire({ code, message: "m" }, "p3");
      assert.ok(error instanceof HamokRemoteError, code);
      assert.equal(error.code, code);
      assert.equal((error as HamokRemoteError).peerId, "p3");
      assert.equal(error.message, "p3: m");
    }
  });

  it("an unknown wire code becomes HAMOK_ERROR, and the message names the remote code (bounded)", () => {
    assert.equal(isHamokErrorCode("HAMOK_TIMEOUT"), true);
    assert.equal(isHamokErrorCode("toString"), false);
    const error = errorFromWire({ code: "X".repeat(1000), message: "m" }, "p4");
    assert.ok(error instanceof HamokRemoteError);
    assert.equal(error.code, "HAMOK_ERROR");
    assert.ok(error.message.startsWith(`p4: m (remote code "${"X".repeat(64)}")`), error.message);
    assert.equal(new HamokRemoteError("constructor", "m", "p").code, "HAMOK_ERROR");
  });

  it("errorToWire keeps a HamokError's code and turns anything else into HAMOK_ERROR", () => {
    assert.deepEqual(errorToWire(new HamokRateLimitedError("slow down")), {
      code: "HAMOK_RATE_LIMITED",
      message: "slow down",
    });
    assert.deepEqual(errorToWire(new TypeError("boom")), { code: "HAMOK_ERROR", message: "boom" });
    assert.deepEqual(errorToWire("plain"), { code: "HAMOK_ERROR", message: "plain" });
  });

  it("an RPC answered with an error rejects with the class of its code (round trip through two routers)", async () => {
    const routers = new Map<string, RpcRouter>();
    const sender = (from: string) => ({
      sendRequest: (to: string, body: RequestBody) =>
        queueMicrotask(() => routers.get(to)!.onRequest(from, body)),
      sendResponse: (to: string, body: ResponseBody) =>
        queueMicrotask(() => routers.get(to)!.onResponse(from, body)),
    });
    routers.set("a", new RpcRouter(sender("a"), "a"));
    routers.set("b", new RpcRouter(sender("b"), "b"));
    routers.get("b")!.handle("limited", () => Promise.reject(new HamokRateLimitedError("too many joins")));
    routers.get("b")!.handle("buggy", () => Promise.reject(new TypeError("handler bug")));
    try {
      const limited = await routers.get("a")!.request("b", "limited", new Uint8Array(), 5000).then(
        () => assert.fail("resolved"),
        (error: unknown) => error,
      );
      assert.ok(limited instanceof HamokRateLimitedError);
      assert.equal(limited.message, "limited at b: too many joins");
      assert.equal((limited.cause as HamokRemoteError).peerId, "b");
      const plain = await routers.get("a")!.request("b", "buggy", new Uint8Array(), 5000).then(
        () => assert.fail("resolved"),
        (error: unknown) => error,
      );
      assert.ok(plain instanceof HamokRemoteError);
      assert.equal(plain.code, "HAMOK_ERROR");
      const unknownOp = await routers.get("a")!.request("b", "nope", new Uint8Array(), 5000).then(
        () => assert.fail("resolved"),
        (error: unknown) => error,
      );
      assert.ok(unknownOp instanceof HamokConfigError);
    } finally {
      for (const router of routers.values()) router.close();
    }
  });
});
