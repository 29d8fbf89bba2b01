import { transportContract } from "./contract.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";

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
