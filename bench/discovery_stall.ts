/**
 * A newcomer whose process stalls while it looks for the cluster (issue #14 runs: an overloaded
 * machine). Real processes on a real nats-server, library defaults (`expectedPeers: 1`,
 * `discoveryMs: 300`): peer `a` bootstraps; then newcomer `b` starts its join and is stopped with
 * SIGSTOP after a delay that walks through its discovery window, and continued after `--stall-ms`
 * (`--stop-member`: `a` is stopped instead, so it answers late; `--write`: `a` writes first).
 * Counts the trials in which `b` bootstrapped a cluster of its own (a split) and, with `autoMerge`,
 * whether it then ended in `a`'s cluster.
 *
 * ```sh
 * deno run -A bench/discovery_stall.ts --trials 12 --stall-ms 2000
 * deno run -A bench/discovery_stall.ts --trials 12 --stall-ms 2000 --stop-member
 * ```
 *
 * @module
 */

import process from "node:process";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";
import { type PeerStatus, startPeerProcess } from "../tests/_helpers/peer_process.ts";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const trials = flag("--trials", 12);
const stallMs = flag("--stall-ms", 2000);
/** Whom to stop: the newcomer `b` (its loop stalls) or the member `a` (it answers late). */
const stopped = argv.includes("--stop-member") ? "a" : "b";
/** `a` writes a map entry before `b` starts (its cluster has data: it never dissolves). */
const withData = argv.includes("--write");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const server = await startNatsServer();
let split = 0;
let healed = 0;
let joined = 0;
try {
  for (let trial = 0; trial < trials; trial++) {
    const clusterId = `stall-${trial}-${Date.now()}`;
    const a = await startPeerProcess({ natsUrl: server.url, peerId: "a", clusterId });
    await a.join({ timeoutMs: 15_000 });
    if (withData) await a.mapSet("m", "k", "v");
    const b = await startPeerProcess({ natsUrl: server.url, peerId: "b", clusterId });
    const delay = (trial % 6) * 60; // 0..300 ms into b's discovery
    const join = b.join({ timeoutMs: 30_000 }).catch((error: Error) => error);
    await sleep(delay);
    (stopped === "a" ? a : b).kill("SIGSTOP");
    await sleep(stallMs);
    (stopped === "a" ? a : b).kill("SIGCONT");
    const result = await join;
    if (result instanceof Error) throw result;
    const first = result as PeerStatus;
    const alone = first.leaderId === "b" && first.remotePeerIds.length === 0;
    if (alone) split++;
    else joined++;
    // with autoMerge one of the two lone clusters (both have no writes) moves into the other once
    // they hear each other: one cluster again when each names the other as a member (bounded wait)
    let one = false;
    let mover = "";
    for (let i = 0; alone && i < 40 && !one; i++) {
      const [sa, sb] = await Promise.all([a.status(), b.status()]);
      one = sa.remotePeerIds.includes("b") && sb.remotePeerIds.includes("a") && sa.leaderId === sb.leaderId;
      mover = sa.leaderId === "a" ? "b" : "a";
      if (!one) await sleep(250);
    }
    if (alone && one) healed++;
    console.log(
      `trial ${trial}: stop ${stopped} after ${delay} ms: ${alone ? "bootstrapped alone" : "joined a"}${
        alone ? (one ? `, then one cluster (${mover} moved)` : ", still apart after 10 s") : ""
      }`,
    );
    await Promise.all([a.close(), b.close()]);
  }
} finally {
  await server.stop();
}
console.log(
  `${trials} trials${
    withData ? " (a has data)" : ""
  }, ${stopped} stopped for ${stallMs} ms: ${joined} joined, ${split} bootstrapped alone (${healed} merged)`,
);
process.exit(0);
