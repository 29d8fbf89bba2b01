/**
 * One Hamok peer in its own process for the CLI tests: joins the cluster named in `argv[2]`
 * (JSON: natsUrl, peerId, clusterId, clusterKey), hosts map `stock` and emitter `chat` (subscribed
 * to `msg`), prints `{"type":"ready"}` once joined, and exits when stdin closes.
 *
 * @module
 */

import process from "node:process";
import { Hamok } from "../../src/hamok.ts";
import { NatsTransport } from "../../src/transport/nats_transport.ts";

const config = JSON.parse(process.argv[2] ?? "{}") as {
  natsUrl: string;
  peerId: string;
  clusterId: string;
  clusterKey?: string;
};
const transport = await NatsTransport.connect({ servers: config.natsUrl });
const hamok = new Hamok({
  peerId: config.peerId,
  clusterId: config.clusterId,
  transport,
  tickMs: 20,
  electionTicks: 10,
  heartbeatTicks: 2,
  discoveryMs: 200,
  peerTimeoutMs: 120_000,
  requestTimeoutInMs: 5000,
  ...(config.clusterKey === undefined ? {} : { clusterKey: config.clusterKey }),
});
hamok.createMap<string, unknown>({ mapId: "stock" });
const chat = hamok.createEmitter<{ msg: unknown[] }>({ emitterId: "chat" });
await hamok.join({ timeoutMs: 20_000 });
await chat.subscribe("msg", () => {});
process.stdout.write(JSON.stringify({ type: "ready", peerId: config.peerId }) + "\n");

const stop = async () => {
  hamok.close();
  await transport.close().catch(() => {});
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
