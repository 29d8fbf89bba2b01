// The consumer scenario, shared by every runtime's entry point (.ci/consumers/run copies it into a
// fresh project that installed the packed tarball). `lib` is the imported `@hamok/core` namespace.
// Three peers form a cluster, a publish is acknowledged by the two subscribers, a map write made on
// one peer is read linearizably on another; first on the in-memory transport, then (if `natsUrl`
// is given) on a real nats-server with one connection per peer. Every wait is bounded.

const PEER_IDS = ["p1", "p2", "p3"];

function check(condition, message) {
  if (!condition) throw new Error(`consumer check failed: ${message}`);
}

async function threePeers(lib, label, mode, natsUrl, timeoutMs) {
  const { Hamok, MemoryBus, MemoryTransport, NatsTransport } = lib;
  const clusterId = `consumer-${label}-${mode}-${Math.random().toString(36).slice(2, 8)}`;
  const bus = mode === "memory" ? new MemoryBus() : undefined;
  const transports = [];
  for (let i = 0; i < PEER_IDS.length; i++) {
    transports.push(
      mode === "memory" ? new MemoryTransport({ bus }) : await NatsTransport.connect({ servers: natsUrl }),
    );
  }
  const peers = PEER_IDS.map((peerId, i) => new Hamok({ peerId, clusterId, transport: transports[i] }));
  try {
    await Promise.all(peers.map((p) => p.join({ timeoutMs })));
    await Promise.all(peers.map((p) => p.waitUntilLeader(timeoutMs)));
    const leaders = new Set(peers.map((p) => p.leaderId));
    check(leaders.size === 1 && !leaders.has(undefined), `one leader, got ${[...leaders].join(",")}`);

    const emitters = peers.map((p) => p.createEmitter({ emitterId: "greetings" }));
    const heard = [];
    for (const i of [1, 2]) {
      await emitters[i].subscribe("greet", (name) => heard.push(`${PEER_IDS[i]}:${name}`));
    }
    await peers[0].waitUntilCommitHead(timeoutMs);
    const acked = await emitters[0].publish("greet", "world");
    check(JSON.stringify([...acked].sort()) === '["p2","p3"]', `acks from p2 and p3, got ${acked}`);
    check(JSON.stringify(heard.sort()) === '["p2:world","p3:world"]', `both heard it, got ${heard}`);

    const maps = peers.map((p) => p.createMap({ mapId: "kv" }));
    await maps[2].set("answer", 42);
    const read = await maps[0].get("answer", { consistency: "linearizable", timeoutMs });
    check(read === 42, `linearizable read of p3's write on p1, got ${read}`);
    return [...leaders][0];
  } finally {
    for (const p of peers) p.close();
    await Promise.all(transports.map((t) => t.close()));
  }
}

export async function run(lib, { label, natsUrl, timeoutMs = 20000 }) {
  check(typeof lib.Hamok === "function", "Hamok is exported");
  const error = new lib.HamokError("boom");
  check(error instanceof Error && error.code === "HAMOK_ERROR", "HamokError is an Error with a code");
  const modes = natsUrl ? ["memory", "nats"] : ["memory"];
  for (const mode of modes) {
    let timer;
    const guard = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${label} ${mode}: no result in 60 s`)), 60000);
    });
    try {
      const leader = await Promise.race([threePeers(lib, label, mode, natsUrl, timeoutMs), guard]);
      console.log(`consumer ${label}: three peers on ${mode}: ok (leader ${leader})`);
    } finally {
      clearTimeout(timer);
    }
  }
}
