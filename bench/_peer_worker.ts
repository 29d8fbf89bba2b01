/**
 * One Hamok peer in its own worker thread, for the bench rows where the peers of a cluster should
 * not share one JS thread (as they would not in a deployment). Started by `startWorkerPeer` in
 * `bench/_fixtures.ts`; it joins the cluster over NATS, creates the emitter `bench` and the map
 * `bench`, subscribes the events it is told to, and answers `ready`; on `close` it closes and exits.
 *
 * @module
 */

import type { HamokEmitter } from "../src/collections/emitter.ts";
import { Hamok } from "../src/hamok.ts";
import { NatsTransport } from "../src/transport/nats_transport.ts";

/** A message to the worker. */
export type PeerWorkerRequest =
  | { type: "start"; url: string; clusterId: string; peerId: string; subscribe: string[] }
  | { type: "close" };

/** A message from the worker. */
export type PeerWorkerReply =
  | { type: "ready"; leader: boolean }
  | { type: "closed" }
  | { type: "error"; message: string };

interface WorkerScope {
  postMessage(message: PeerWorkerReply): void;
  addEventListener(type: "message", listener: (event: MessageEvent<PeerWorkerRequest>) => void): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
let peer: Hamok | undefined;
let transport: NatsTransport | undefined;

async function start(request: Extract<PeerWorkerRequest, { type: "start" }>): Promise<void> {
  transport = await NatsTransport.connect({ servers: request.url });
  peer = new Hamok({
    peerId: request.peerId,
    clusterId: request.clusterId,
    transport,
    peerTimeoutMs: 60_000,
  });
  await peer.join({ timeoutMs: 20_000 });
  const emitter: HamokEmitter = peer.createEmitter({ emitterId: "bench" });
  for (const event of request.subscribe) await emitter.subscribe(event, () => {});
  const map = peer.createMap<string, Uint8Array>({ mapId: "bench" });
  await map.ready;
  scope.postMessage({ type: "ready", leader: peer.leader });
}

async function close(): Promise<void> {
  peer?.close();
  await transport?.close().catch(() => {});
  scope.postMessage({ type: "closed" });
  scope.close();
}

scope.addEventListener("message", (event) => {
  const request = event.data;
  const run = request.type === "start" ? start(request) : close();
  run.catch((error) => scope.postMessage({ type: "error", message: String(error?.stack ?? error) }));
});
