import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hamok, HAMOK_DEFAULTS, HamokConfigError, MemoryBus, MemoryTransport } from "../mod.ts";
import { resolveHamokConfig } from "../src/config.ts";

describe("the peer's request timeout is requestTimeoutInMs, with requestTimeoutMs as a deprecated alias", () => {
  it("takes requestTimeoutInMs, and defaults to HAMOK_DEFAULTS.requestTimeoutInMs", () => {
    assert.equal(resolveHamokConfig({ requestTimeoutInMs: 1234 }).requestTimeoutInMs, 1234);
    assert.equal(resolveHamokConfig({}).requestTimeoutInMs, HAMOK_DEFAULTS.requestTimeoutInMs);
    assert.equal(HAMOK_DEFAULTS.requestTimeoutInMs, 5000);
  });

  it("accepts the old name, alone or with the same value, and resolves both names to one value", () => {
    const old = resolveHamokConfig({ requestTimeoutMs: 777 });
    assert.equal(old.requestTimeoutInMs, 777);
    assert.equal(old.requestTimeoutMs, 777);
    assert.equal(
      resolveHamokConfig({ requestTimeoutMs: 900, requestTimeoutInMs: 900 }).requestTimeoutInMs,
      900,
    );
  });

  it("rejects both names with different values, and an invalid value under either name", () => {
    assert.throws(
      () => resolveHamokConfig({ requestTimeoutMs: 1000, requestTimeoutInMs: 2000 }),
      (error: unknown) => error instanceof HamokConfigError && /requestTimeoutMs/.test(error.message),
    );
    assert.throws(() => resolveHamokConfig({ requestTimeoutInMs: 0 }), HamokConfigError);
    assert.throws(() => resolveHamokConfig({ requestTimeoutMs: -5 }), HamokConfigError);
    assert.throws(() => resolveHamokConfig({ requestTimeoutInMs: 2 ** 31 }), HamokConfigError);
  });
});

describe("ids are bounded", () => {
  it("a peerId or clusterId over 253 characters, or a collection id over 256, is a HamokConfigError", () => {
    assert.equal(resolveHamokConfig({ peerId: "p".repeat(253) }).peerId.length, 253);
    assert.throws(() => resolveHamokConfig({ peerId: "p".repeat(254) }), HamokConfigError);
    assert.throws(() => resolveHamokConfig({ clusterId: "c".repeat(254) }), HamokConfigError);
    const hamok = new Hamok({ clusterId: "ids-bounded" });
    try {
      assert.equal(hamok.createMap({ mapId: "m".repeat(256) }).id.length, 256);
      assert.throws(() => hamok.createMap({ mapId: "m".repeat(257) }), HamokConfigError);
    } finally {
      hamok.close();
    }
  });
});

describe("object options are checked when the peer is made", () => {
  it("a transport, storage or logger without its methods is a HamokConfigError naming the option", () => {
    // the old code took a MemoryBus as the transport and failed at join() with a bare TypeError
    const bad = [
      [{ transport: new MemoryBus() }, /transport has no publish\(\)/],
      [{ transport: "nats://127.0.0.1:4222" }, /transport must be an object/],
      [{ storage: {} }, /storage has no load\(\)/],
      [{ logger: console.log }, /logger has no debug\(\)/],
      [{ logger: null }, /logger must be an object, got null/],
    ] as const;
    for (const [config, message] of bad) {
      assert.throws(
        () => new Hamok(config as never),
        (error: unknown) => error instanceof HamokConfigError && message.test(error.message),
        JSON.stringify(Object.keys(config)),
      );
    }
    const fine = new Hamok({ transport: new MemoryTransport(), logger: console });
    assert.equal(fine.localPeerId.length > 0, true);
  });
});
