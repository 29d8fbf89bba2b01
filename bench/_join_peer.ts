/**
 * A peer that joins an existing cluster over NATS in its own process, for the join row of
 * `bench/scale.ts`: it measures, from `join()` to `ready`, the time and the longest gap between two
 * turns of its own event loop (a `setTimeout(0)` chain), checks the size of the map `scale`, and
 * prints one line of JSON (`{ joinMs, maxStallMs, maxStallCpuMs, maxCpuStallMs, size, snapshotIndex }`, or
 * `{ error }`), then exits.
 * Runs under Deno (`deno run -A bench/_join_peer.ts '<json>'`) and Bun; `argv[2]` is
 * `{ natsUrl, clusterId, peerId }`.
 *
 * @module
 */

import process from "node:process";
import { Hamok } from "../src/hamok.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";

const start = JSON.parse(process.argv[2] ?? "{}") as { natsUrl: string; clusterId: string; peerId: string };
const transport = await NatsTransport.connect({ servers: start.natsUrl, name: start.peerId });
const peer = new Hamok({ peerId: start.peerId, clusterId: start.clusterId, transport });
const map = peer.createMap<string, string>({ mapId: "scale" });
let sampling = true;
let last = performance.now();
let lastCpu = cpuMs();
let maxStallMs = 0;
/** The process's CPU time during the longest stall (far below it: the OS ran something else meanwhile). */
let maxStallCpuMs = 0;
/** The longest stall counted in the process's own CPU time. */
let maxCpuStallMs = 0;
const tick = () => {
  const now = performance.now();
  const cpu = cpuMs();
  if (now - last > maxStallMs) {
    maxStallMs = now - last;
    maxStallCpuMs = cpu - lastCpu;
  }
  maxCpuStallMs = Math.max(maxCpuStallMs, Math.min(now - last, cpu - lastCpu));
  last = now;
  lastCpu = cpu;
  if (sampling) setTimeout(tick, 0);
};

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
tick();
const started = performance.now();
try {
  await peer.join({ timeoutMs: 60_000 });
  const joinMs = performance.now() - started;
  sampling = false;
  const line = {
    joinMs,
    maxStallMs,
    maxStallCpuMs,
    maxCpuStallMs,
    size: map.size,
    snapshotIndex: peer.status().snapshotIndex,
  };
  process.stdout.write(JSON.stringify(line) + "\n");
} catch (error) {
  sampling = false;
  process.stdout.write(JSON.stringify({ error: String(error) }) + "\n");
}
// stay a member until the bench has looked (it closes stdin when done)
process.stdin.resume();
process.stdin.on("end", async () => {
  peer.close();
  await transport.close().catch(() => {});
  process.exit(0);
});
