/**
 * Cluster formation: the time from `join()` of three fresh peers (default timings) to the first
 * leader, on the memory transport and on NATS.
 *
 * Each call makes three new peers under a fresh cluster id (on NATS they reuse three open
 * connections, so connecting is not timed), resolves at the first leader, then closes the peers.
 *
 * Deno: `deno bench -A bench/cluster.bench.ts`. Bun: `bun bench/cluster.bench.ts` (through mitata).
 *
 * @module
 */

import { Hamok } from "../src/hamok.ts";
import type { Transport } from "../src/transport/transport.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { makeTransports } from "./_fixtures.ts";
import { bench, onBenchEnd } from "./_harness.ts";

const server = await startNatsServer();
onBenchEnd(() => server.killSync());
const natsTransports = await makeTransports("nats", 3, server.url);
onBenchEnd(async () => {
  await Promise.all(natsTransports.map((t) => t.close().catch(() => {})));
});

let trial = 0;

/** Three peers join at once; resolves when the first of them becomes leader; closes them. */
async function firstLeader(transports: Transport[]): Promise<void> {
  const clusterId = `join-bench-${++trial}`;
  const peers = transports.map((transport, i) =>
    new Hamok({ peerId: `${clusterId}-${i}`, clusterId, transport })
  );
  try {
    await new Promise<void>((resolve, reject) => {
      for (const peer of peers) {
        peer.on("state-changed", (state) => {
          if (state === "leader") resolve();
        });
        peer.join({ timeoutMs: 10_000 }).catch(reject);
      }
    });
  } finally {
    for (const peer of peers) peer.close();
  }
}

bench("join() -> first leader, 3 peers (memory)", async () => {
  const transports = await makeTransports("memory", 3);
  try {
    await firstLeader(transports);
  } finally {
    await Promise.all(transports.map((t) => t.close()));
  }
}, { group: "join", samples: true, n: 10, warmup: 1 });

bench("join() -> first leader, 3 peers (NATS)", async () => {
  await firstLeader(natsTransports);
}, { group: "join", samples: true, n: 10, warmup: 1 });
