/**
 * Whole-cluster crashes: three peer processes with data directories are killed with SIGKILL at a
 * random moment under a write load, all at once, and started again, `HAMOK_RESTART_CYCLES` times
 * (default 20). Afterwards every acknowledged write must be on every peer, and the peers must still
 * be the same three members (no new cluster bootstrapped).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { type PeerProcess, startPeerProcess } from "../_helpers/peer_process.ts";
import { waitFor } from "../_helpers/wait.ts";
import { seededRandom as prng } from "../_helpers/raft_harness.ts";

const CYCLES = Number(process.env.HAMOK_RESTART_CYCLES ?? 20);
const TIMING = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2, discoveryMs: 300, peerTimeoutMs: 10_000 };

describe("whole-cluster restart after SIGKILL", () => {
  let server: NatsServer;
  let root: string;
  before(async () => {
    server = await startNatsServer();
    root = fs.mkdtempSync(join(tmpdir(), "hamok-restart-"));
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it(`${CYCLES} SIGKILL cycles of all three peers lose no acknowledged write`, async () => {
    const seed = Number(process.env.HAMOK_RESTART_SEED ?? Math.floor(Math.random() * 1e9));
    const random = prng(seed);
    const clusterId = `restart-${seed}`;
    const ids = ["a", "b", "c"];
    const acknowledged = new Map<string, number>();
    let members: string[] | undefined;
    let peers: PeerProcess[] = [];
    const startAll = async (): Promise<void> => {
      peers = await Promise.all(
        ids.map((peerId) =>
          startPeerProcess({ natsUrl: server.url, peerId, clusterId, dataDir: join(root, peerId), ...TIMING })
        ),
      );
      const statuses = await Promise.all(peers.map((p) => p.join({ timeoutMs: 30_000 })));
      const now = statuses.map((s) => s.memberId);
      if (members === undefined) members = now;
      else assert.deepEqual(now, members, "the same members come back");
      await waitFor(async () => {
        const all = await Promise.all(peers.map((p) => p.status()));
        return all.every((s) => s.remotePeerIds.length === 2 && s.leaderId !== null);
      }, { timeoutMs: 20_000, intervalMs: 20, message: "the three members see each other" });
    };
    try {
      let next = 0;
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        await startAll();
        // a load of concurrent writes from every peer; all peers die after a random number of them
        const killAfter = 1 + Math.floor(random() * 20);
        let acked = 0;
        let killed = false;
        const killAll = (): void => {
          if (killed) return;
          killed = true;
          for (const p of peers) p.kill("SIGKILL");
        };
        const writer = async (p: PeerProcess): Promise<void> => {
          while (!killed) {
            const key = `k${next++}`;
            const value = cycle;
            try {
              await p.mapSet("m", key, value, 5000);
            } catch {
              continue; // in flight at the kill, or timed out: unknown outcome, not checked
            }
            acknowledged.set(key, value);
            if (++acked >= killAfter) killAll();
          }
        };
        const bound = setTimeout(killAll, 15_000);
        await Promise.all(peers.map((p) => writer(p)));
        clearTimeout(bound);
        await Promise.all(peers.map((p) => p.waitForExit(10_000)));
      }
      await startAll();
      assert.ok(acknowledged.size >= CYCLES, `writes were acknowledged (${acknowledged.size})`);
      if (process.env.HAMOK_RESTART_VERBOSE) {
        console.log(`seed ${seed}: ${acknowledged.size} acknowledged writes checked`);
      }
      // a linearizable read on each peer, then every acknowledged write must be there
      for (const p of peers) {
        await p.mapGet("m", "k0", { linearizable: true, timeoutMs: 10_000 });
        const entries = new Map(await p.mapEntries("m"));
        const missing = [...acknowledged].filter(([k, v]) => entries.get(k) !== v).map(([k]) => k);
        assert.deepEqual(missing, [], `peer ${p.peerId} (seed ${seed}) has every acknowledged write`);
      }
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});
