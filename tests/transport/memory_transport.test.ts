import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokConfigError } from "../../src/errors.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { transportContract, uniqueSubject } from "./contract.ts";
import { waitFor } from "../_helpers/wait.ts";

let bus = new MemoryBus();

transportContract({
  name: "MemoryTransport",
  setup(): Promise<void> {
    bus = new MemoryBus();
    return Promise.resolve();
  },
  create: () => Promise.resolve(new MemoryTransport({ bus })),
  exitFixtureArgs: () => ["memory"],
});

describe("MemoryTransport (memory specifics)", () => {
  it("transports created without a bus find each other on MemoryBus.default", async () => {
    const a = new MemoryTransport();
    const b = new MemoryTransport();
    try {
      assert.equal(a.bus, MemoryBus.default);
      assert.equal(b.bus, MemoryBus.default);
      assert.notEqual(a.id, b.id);
      assert.ok(MemoryBus.default.endpointIds.includes(a.id));
      const subject = uniqueSubject();
      const got: number[] = [];
      b.subscribe(subject, (msg) => got.push(msg.data[0]));
      a.publish(subject, new Uint8Array([42]));
      await waitFor(() => got.length === 1, { timeoutMs: 2000, message: "delivery on the default bus" });
      assert.deepEqual(got, [42]);
    } finally {
      await a.close();
      await b.close();
    }
    assert.ok(!MemoryBus.default.endpointIds.includes(a.id), "close() detaches from the bus");
  });

  it("endpoint ids are unique per bus and reusable after close()", async () => {
    const local = new MemoryBus();
    const a = new MemoryTransport({ bus: local, id: "peer-a" });
    assert.equal(a.id, "peer-a");
    assert.throws(() => new MemoryTransport({ bus: local, id: "peer-a" }), HamokConfigError);
    assert.throws(() => new MemoryTransport({ bus: local, id: "" }), HamokConfigError);
    const other = new MemoryTransport({ bus: new MemoryBus(), id: "peer-a" }); // another bus: fine
    await a.close();
    const again = new MemoryTransport({ bus: local, id: "peer-a" });
    assert.equal(again.id, "peer-a");
    await Promise.all([other.close(), again.close()]);
  });
});
