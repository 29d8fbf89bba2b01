// Type-checked by tsc under strict, noUncheckedIndexedAccess, exactOptionalPropertyTypes and
// noImplicitOverride (tsconfig.strict.json: the shipped .d.ts, no skipLibCheck;
// tsconfig.strict-sources.json: the .ts sources that Bun and Deno resolve).
import {
  Hamok,
  type HamokConfig,
  HamokError,
  type HamokMap,
  HamokTimeoutError,
  MemoryBus,
  MemoryRemoteStore,
  MemoryTransport,
  NatsTransport,
} from "@hamok/core";
import { decodeEnvelope, encodeEnvelope, type WireEnvelope } from "@hamok/core/internal";

type Events = { greet: [name: string] };

export async function quickStart(natsUrl?: string): Promise<number | undefined> {
  const transport = natsUrl === undefined
    ? new MemoryTransport({ bus: new MemoryBus() })
    : await NatsTransport.connect({ servers: natsUrl });
  const config: HamokConfig = { peerId: "a", clusterId: "strict", transport };
  const hamok = new Hamok(config);
  await hamok.join({ timeoutMs: 5000 });
  const emitter = hamok.createEmitter<Events>({ emitterId: "greetings" });
  await emitter.subscribe("greet", (name: string) => console.log(name));
  const peers: string[] = await emitter.publish("greet", "world");
  const map: HamokMap<string, number> = hamok.createMap<string, number>({ mapId: "kv" });
  await map.set("k", peers.length, { timeoutMs: undefined, requestId: undefined });
  try {
    await hamok.waitUntilCommitHead(1000);
  } catch (error) {
    if (error instanceof HamokTimeoutError || error instanceof HamokError) console.log(error.code);
  }
  hamok.close();
  await transport.close();
  return map.get("k");
}

export function wireRoundTrip(envelope: WireEnvelope): WireEnvelope["type"] {
  return decodeEnvelope(encodeEnvelope(envelope)).type;
}

type Job = { owner: string; state: string };

/** The README's shapes: options given as `undefined` (the defaults) and record partials with `undefined`. */
export async function readmeShapes(hamok: Hamok): Promise<boolean> {
  const map = hamok.createMap<string, number>({ mapId: "m", keyCodec: undefined, valueCodec: undefined });
  const queue = hamok.createQueue<number>({ queueId: "q", codec: undefined });
  const remote = hamok.createRemoteMap<string, number>({
    mapId: "r",
    store: new MemoryRemoteStore<string, number>(),
    keyCodec: undefined,
    valueCodec: undefined,
    equalValues: undefined,
  });
  remote.close();
  const job = hamok.createRecord<Job>({
    recordId: "job",
    initialObject: { owner: undefined, state: "idle" },
  });
  await job.insertInstance({ owner: undefined, state: "idle" });
  const taken = await job.updateInstanceIf({ owner: "a" }, { owner: undefined, state: "idle" });
  map.close();
  queue.close();
  return taken;
}
