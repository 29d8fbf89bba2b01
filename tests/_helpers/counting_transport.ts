/**
 * Memory transports that record what their peer publishes, for tests that count messages.
 *
 * @module
 */

import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import type { TransportHeaders } from "../../src/transport/transport.ts";
import type { TransportFactory } from "./cluster.ts";

/** A memory transport that records what its peer publishes. */
export class CountingTransport extends MemoryTransport {
  readonly published: { subject: string; data: Uint8Array }[] = [];
  override publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void {
    this.published.push({ subject, data });
    super.publish(subject, data, headers);
  }
}

/**
 * A transport factory of memory transports made by `make` on one bus; `of` maps each peer id to its
 * own (for tests that watch or steer what one peer publishes).
 */
export function memoryTransports<T extends MemoryTransport>(
  name: string,
  make: (options: { bus: MemoryBus; id: string }) => T,
): TransportFactory & { bus: MemoryBus; of: Map<string, T> } {
  const bus = new MemoryBus();
  const of = new Map<string, T>();
  return {
    name,
    bus,
    of,
    create(peerId: string) {
      const transport = make({ bus, id: peerId });
      of.set(peerId, transport);
      return Promise.resolve(transport);
    },
    close: () => Promise.resolve(),
  };
}

/** A transport factory of {@linkcode CountingTransport}s on one bus; `of` maps each peer id to its own. */
export function countingTransports(): TransportFactory & {
  bus: MemoryBus;
  of: Map<string, CountingTransport>;
} {
  return memoryTransports("counting memory", (options) => new CountingTransport(options));
}
