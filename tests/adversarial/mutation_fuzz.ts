/**
 * A mutation fuzzer (a tool, not part of the test run): a rogue client on a real nats-server
 * republishes mutated copies of a three-peer cluster's own messages (bit flips, truncations, CBOR
 * trees with fields replaced by values of other types, nested CBOR mutated too) while every peer
 * writes and one publishes. Afterwards every peer must still run, write, and agree with the others.
 * Without a cluster key a mutated proposal that still decodes is applied like any member's (see the
 * README's "Security": forged proposals are a residual without a key), so a map whose entries all
 * fail to decode alike on every peer counts as agreement.
 *
 * `SEED=3 FUZZ_MS=30000 deno run -A tests/adversarial/mutation_fuzz.ts` (exit 1 on a failure).
 * Session 19 ran seeds 1-6 for 20-30 s each (about 67,000 mutated messages a run): no peer exited,
 * every load kept writing, replicas agreed.
 *
 * @module
 */
import { connect } from "nats";
import { decode, encode } from "cbor-x";
import { startNatsServer } from "../_helpers/nats_server.ts";
import { type PeerProcess, startPeerProcess } from "../_helpers/peer_process.ts";

const SEED = Number(Deno.env.get("SEED") ?? 1);
const FUZZ_MS = Number(Deno.env.get("FUZZ_MS") ?? 30000);
let s = SEED >>> 0 || 1;
const rnd = () => {
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  s >>>= 0;
  return s / 4294967296;
};
const pick = <T>(a: T[]): T => a[Math.floor(rnd() * a.length)]!;
const TIMING = { tickMs: 50, electionTicks: 10, heartbeatTicks: 2, discoveryMs: 300, peerTimeoutMs: 3000 };

function randomValue(depth = 0): unknown {
  switch (Math.floor(rnd() * 16)) {
    case 0:
      return null;
    case 1:
      return undefined;
    case 2:
      return Math.floor(rnd() * 2 ** 53);
    case 3:
      return -Math.floor(rnd() * 1e9);
    case 4:
      return rnd() * 1e6;
    case 5:
      return NaN;
    case 6:
      return "";
    case 7:
      return "x".repeat(Math.floor(rnd() * 2000));
    case 8:
      return new Uint8Array(Math.floor(rnd() * 64));
    case 9:
      return depth < 3 ? [randomValue(depth + 1), randomValue(depth + 1)] : [];
    case 10:
      return depth < 3 ? { a: randomValue(depth + 1) } : {};
    case 11:
      return true;
    case 12:
      return 2 ** 31;
    case 13:
      return -1;
    case 14:
      return 0;
    default:
      return "\uD800";
  }
}

function mutateTree(v: unknown, depth = 0): unknown {
  if (Array.isArray(v) && v.length > 0 && rnd() < 0.85) {
    const out = [...v];
    const i = Math.floor(rnd() * out.length);
    const r = rnd();
    if (r < 0.1) out.splice(i, 1);
    else if (r < 0.2) out.push(randomValue());
    else if (r < 0.3) out[i] = randomValue();
    else out[i] = mutateTree(out[i], depth + 1);
    return out;
  }
  if (v instanceof Uint8Array && v.length > 0 && rnd() < 0.7) {
    // nested CBOR (bodies, entries) is mutated structurally too
    try {
      const inner = decode(v);
      return encode(mutateTree(inner, depth + 1));
    } catch {
      return bytesMutate(v);
    }
  }
  if (typeof v === "number" && rnd() < 0.5) return pick([v + 1, v - 1, v * 2, -v, 2 ** 53, 0]);
  if (typeof v === "string" && rnd() < 0.5) return pick([v + "x", v.slice(1), "", v.repeat(3)]);
  return randomValue();
}

function bytesMutate(b: Uint8Array): Uint8Array {
  const r = rnd();
  if (r < 0.4) {
    const out = Uint8Array.from(b);
    for (let k = 0, n = 1 + Math.floor(rnd() * 4); k < n; k++) {
      out[Math.floor(rnd() * out.length)] ^= 1 << Math.floor(rnd() * 8);
    }
    return out;
  }
  if (r < 0.6) return b.subarray(0, Math.floor(rnd() * b.length));
  if (r < 0.8) {
    const out = new Uint8Array(b.length + 8);
    out.set(b);
    for (let i = b.length; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
    return out;
  }
  const out = Uint8Array.from(b);
  out[Math.floor(rnd() * out.length)] = pick([
    0x18,
    0x19,
    0x1a,
    0x1b,
    0x5b,
    0x7b,
    0x9b,
    0xbb,
    0xd8,
    0xdc,
    0xff,
    0xf7,
  ]);
  return out;
}

function mutate(b: Uint8Array): Uint8Array {
  if (rnd() < 0.3) return bytesMutate(b);
  try {
    return encode(mutateTree(decode(b)));
  } catch {
    return bytesMutate(b);
  }
}

const server = await startNatsServer();
const clusterId = `fz${SEED}`;
const peers: PeerProcess[] = [];
for (const peerId of ["a", "b", "c"]) {
  peers.push(await startPeerProcess({ natsUrl: server.url, peerId, clusterId, ...TIMING }));
}
let fails = 0;
try {
  await Promise.all(peers.map((p) => p.join({ timeoutMs: 30_000 })));
  await peers[1]!.request("emitter.subscribe", { emitterId: "e", event: "ev" });
  await peers[2]!.request("emitter.subscribe", { emitterId: "e", event: "ev" });
  for (const [i, p] of peers.entries()) await p.request("load.start", { mapId: "m", prefix: `w${i}-` });

  const nc = await connect({ servers: server.url });
  const seen: { subject: string; data: Uint8Array; headers: unknown }[] = [];
  const sub = nc.subscribe(`hamok.${clusterId}.>`);
  (async () => {
    for await (const m of sub) {
      if (seen.length < 4000) seen.push({ subject: m.subject, data: m.data, headers: m.headers });
      else seen[Math.floor(rnd() * seen.length)] = { subject: m.subject, data: m.data, headers: m.headers };
    }
  })();
  const end = Date.now() + FUZZ_MS;
  let sent = 0;
  const pubs = (async () => {
    while (Date.now() < end) {
      for (let k = 0; k < 50 && seen.length > 0; k++) {
        const m = pick(seen);
        const data = mutate(m.data);
        nc.publish(m.subject, data, m.headers && rnd() < 0.5 ? { headers: m.headers as never } : undefined);
        sent++;
      }
      const ev = peers[0]!.request("emitter.publish", {
        emitterId: "e",
        event: "ev",
        args: [sent],
        timeoutMs: 2000,
      }).catch(() => {});
      await new Promise((r) => setTimeout(r, 20));
      void ev;
    }
  })();
  await pubs;
  sub.unsubscribe();
  await nc.close();
  console.log(`fuzz sent ${sent} mutated messages`);
  for (const p of peers) {
    if (p.exited) {
      console.log(`PEER ${p.peerId} EXITED`, p.stderr.slice(-3000));
      fails++;
    }
  }
  // the cluster recovers: each load gets writes through again
  const loads: { acked: unknown[]; failures: Record<string, number> }[] = [];
  for (const [i, p] of peers.entries()) {
    loads.push(
      await p.request<{ acked: unknown[]; failures: Record<string, number> }>("load.stop", {
        prefix: `w${i}-`,
      }, 30000),
    );
  }
  console.log("loads", JSON.stringify(loads.map((l) => ({ acked: l.acked.length, failures: l.failures }))));
  for (const p of peers) {
    await p.request("map.set", { mapId: "m", key: `after-${p.peerId}`, value: 1, timeoutMs: 20000 }, 30000);
  }
  for (const p of peers) await p.request("sync", { timeoutMs: 20000 }, 30000);
  const entries = await Promise.all(
    peers.map((p) =>
      p.request<[string, unknown][]>("map.entries", { mapId: "m" }).catch((e) =>
        [["ERROR", String(e.message)]] as [string, unknown][]
      )
    ),
  );
  const norm = entries.map((e) => JSON.stringify([...e].sort((x, y) => (x[0] < y[0] ? -1 : 1))));
  if (entries[0]![0]?.[0] === "ERROR") console.log("entries fail alike?", norm[0]!.slice(0, 200));
  if (!norm.every((n) => n === norm[0])) {
    console.log("REPLICAS DIFFER", norm.map((n) => n.length));
    fails++;
  } else console.log("replicas agree", entries[0]!.length);
  const counters = await Promise.all(peers.map((p) => p.request<Record<string, unknown>>("counters")));
  console.log("dropped", JSON.stringify(counters.map((c) => c.dropped)));
  const errs = peers.flatMap((p) =>
    p.events.filter((e) => e.event === "error").map((e) => JSON.stringify(e.data))
  );
  const uniq = [...new Set(errs.map((e) => e.slice(0, 160)))];
  console.log(`errors ${errs.length}, distinct ${uniq.length}`);
  for (const u of uniq.slice(0, 30)) console.log("  ", u);
  for (const p of peers) {
    const st = p.stderr;
    if (/Uncaught|unhandled|TypeError|RangeError/i.test(st)) {
      console.log(`STDERR ${p.peerId}:`, st.slice(-2000));
    }
  }
} catch (e) {
  console.log("FAILED", e);
  for (const p of peers) console.log(p.peerId, p.exited, p.stderr.slice(-1500));
  fails++;
} finally {
  await Promise.all(peers.map((p) => p.close().catch(() => {})));
  await server.stop();
}
console.log(fails === 0 ? "OK" : `FAILS ${fails}`);
Deno.exit(fails === 0 ? 0 : 1);
