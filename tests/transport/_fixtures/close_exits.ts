/**
 * Child-process fixture of the contract test "after close() the process exits by itself": uses
 * transports of one kind (`memory` or `nats <url>`), closes them, prints `closed-ok` and must then
 * exit on its own. A leaked timer, socket or status loop keeps it alive and fails the test.
 *
 * @module
 */

import process from "node:process";
import { connect } from "nats";
import { MemoryBus } from "../../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../../src/transport/memory_transport.ts";
import { NatsTransport } from "../../../src/transport/nats_transport.ts";
import type { Transport } from "../../../src/transport/transport.ts";

async function roundTrip(a: Transport, b: Transport, subject: string): Promise<void> {
  let resolve!: () => void;
  const received = new Promise<void>((r) => (resolve = r));
  b.subscribe(subject, () => resolve());
  b.subscribe(`${subject}.>`, () => {});
  await b.flush();
  a.publish(subject, new Uint8Array([1]), { traceparent: "x" });
  await received;
}

const [kind, url] = process.argv.slice(2);
if (kind === "memory") {
  const a = new MemoryTransport();
  const b = new MemoryTransport({ bus: MemoryBus.default });
  await roundTrip(a, b, "fixture.memory");
  // Leave a delivery held back for 10 minutes: closing b must drop it and clear its timer.
  MemoryBus.default.delay({ to: b, ms: 600_000 });
  a.publish("fixture.memory", new Uint8Array([2]));
  const delayed = (): number => MemoryBus.default.delayedCount;
  if (delayed() !== 1) throw new Error("expected one delayed delivery");
  await a.close();
  await b.close();
  if (delayed() !== 0) throw new Error("delayed delivery survived close()");
  MemoryBus.default.heal();
} else if (kind === "nats" && url !== undefined) {
  const a = await NatsTransport.connect({ servers: url });
  const b = await NatsTransport.connect({ servers: url });
  await roundTrip(a, b, "fixture.nats");
  // A transport wrapping a connection the application owns.
  const nc = await connect({ servers: url });
  const c = new NatsTransport(nc);
  await roundTrip(a, c, "fixture.nats.wrapped");
  await Promise.all([a.close(), b.close(), c.close()]);
  if (nc.isClosed()) throw new Error("closing a wrapping transport closed the application's connection");
  await nc.close();
} else {
  throw new Error("usage: close_exits.ts memory | nats <url>");
}
console.log("closed-ok");
