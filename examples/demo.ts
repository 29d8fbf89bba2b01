/**
 * The Hamok demo: three peers in one process elect a leader, subscribe, publish with
 * acknowledgements, notify, lose their leader and carry on.
 *
 *   deno task demo                     # embedded in-memory transport
 *   deno task demo --nats nats://127.0.0.1:4222
 *
 * @module
 */

import process from "node:process";
import { Hamok, type HamokEmitter, NatsTransport, type Transport } from "../mod.ts";

type ChatEvents = { message: [from: string, text: string] };

const natsAt = process.argv.indexOf("--nats");
const natsUrl = natsAt >= 0 ? process.argv[natsAt + 1] : undefined;
if (natsAt >= 0 && (natsUrl === undefined || natsUrl.startsWith("--"))) {
  console.error("usage: deno task demo [--nats nats://HOST:PORT]");
  process.exit(2);
}

const say = (text: string) => console.log(`\n== ${text}`);
const started = performance.now();
const ms = () => `${(performance.now() - started).toFixed(0)} ms`;

async function transportFor(): Promise<Transport | undefined> {
  if (natsUrl === undefined) return undefined; // the embedded in-memory bus
  return await NatsTransport.connect({ servers: natsUrl });
}

say(
  `Starting three peers on ${
    natsUrl === undefined ? "the embedded in-memory transport" : `NATS at ${natsUrl}`
  }`,
);
const clusterId = `demo-${crypto.randomUUID().slice(0, 8)}`;
const transports: Transport[] = [];
const peers: Hamok[] = [];
for (const name of ["alice", "bob", "carol"]) {
  const transport = await transportFor();
  if (transport !== undefined) transports.push(transport);
  peers.push(new Hamok({ peerId: name, clusterId, transport, peerTimeoutMs: 1500 }));
}
for (const peer of peers) {
  peer.on("leader-changed", (leader) => {
    if (leader !== undefined && peer === peers.find((p) => !p.closed)) {
      console.log(`   [${ms()}] leader is now ${leader}`);
    }
  });
}

await Promise.all(peers.map((p) => p.join()));
const leader = peers.find((p) => p.leader)!;
console.log(`   [${ms()}] all three joined one cluster; ${leader.localPeerId} leads term ${leader.term}`);

say("Every peer creates the 'chat' emitter; bob and carol subscribe to 'message'");
const emitters = new Map<string, HamokEmitter<ChatEvents>>();
for (const peer of peers) {
  emitters.set(peer.localPeerId, peer.createEmitter<ChatEvents>({ emitterId: "chat" }));
}
for (const name of ["bob", "carol"]) {
  await emitters.get(name)!.subscribe(
    "message",
    (from, text) => console.log(`   ${name} heard ${from}: "${text}"`),
  );
}
console.log(
  `   the replicated table says 'message' goes to: ${
    emitters.get("alice")!.subscriptions.getPeerIds("message")
  }`,
);

say("alice publishes and waits for acknowledgements");
const acked = await emitters.get("alice")!.publish("message", "alice", "hello, everyone");
console.log(`   acknowledged by: ${acked.sort().join(", ")}`);

say("alice notifies (fire and forget)");
emitters.get("alice")!.notify("message", "alice", "no need to answer");
await peers[0].waitUntilCommitHead();
await new Promise((resolve) => setTimeout(resolve, 50));

say(`Killing the leader (${leader.localPeerId})`);
const killedAt = performance.now();
leader.close();
const survivors = peers.filter((p) => p !== leader);
await Promise.all(survivors.map((p) => p.waitUntilLeader(10_000)));
while (!survivors.some((p) => p.leader) || survivors.some((p) => p.leaderId !== survivors[0].leaderId)) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
const newLeader = survivors.find((p) => p.leader)!;
console.log(
  `   ${newLeader.localPeerId} took over in ${
    (performance.now() - killedAt).toFixed(0)
  } ms (term ${newLeader.term})`,
);

say(`Waiting for the new leader to remove the silent ${leader.localPeerId} from the cluster`);
await new Promise<void>((resolve) => {
  if (!newLeader.remotePeerIds.has(leader.localPeerId)) resolve();
  else newLeader.on("remote-peer-left", (id) => id === leader.localPeerId && resolve());
});
console.log(
  `   ${leader.localPeerId} removed after ${
    (performance.now() - killedAt).toFixed(0)
  } ms; its subscriptions went with it`,
);

say("A publish after the failover");
const publisher = survivors.find((p) => p.localPeerId !== "bob") ?? survivors[0];
const after = await emitters.get(publisher.localPeerId)!.publish(
  "message",
  publisher.localPeerId,
  "still here",
);
console.log(`   acknowledged by: ${after.sort().join(", ")}`);

say("Closing the peers");
for (const peer of survivors) peer.close();
await Promise.all(transports.map((t) => t.close()));
console.log(`   done in ${ms()}`);
