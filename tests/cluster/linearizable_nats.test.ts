/**
 * A Jepsen-shaped run on the real thing: three peer processes on a real `nats-server`, each on a
 * data directory of its own, with two clients apiece issuing `set`, `insert`, `delete`, `updateIf` and
 * linearizable `get` on three contended keys of one map, while a nemesis pauses (SIGSTOP) the
 * leader or a follower past the election timeout, partitions one (each peer reaches NATS through a
 * proxy of its own, which the nemesis cuts), kills (SIGKILL) a peer and starts it again on its
 * directory, replaces one (it leaves; a new one with its peer id and an empty directory joins), or
 * restarts the NATS server. The history, timed in this process (an operation
 * took effect somewhere between sending its command and reading its reply), must be linearizable
 * by the project's checker; afterwards the three replicas must be equal.
 *
 * `HAMOK_LIN_SEED` replays a nemesis schedule (the processes' timing still varies);
 * `HAMOK_LIN_MS` sets the length of the fault phase (default 8000 ms); `HAMOK_LIN_BUG=resolve-before-apply`
 * runs the peers with that deliberate bug, which this test must then report.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import { type PeerProcess, startPeerProcess } from "../_helpers/peer_process.ts";
import { startTcpProxy, type TcpProxy } from "../_helpers/tcp_proxy.ts";
import { waitFor } from "../_helpers/wait.ts";
import { seededRandom } from "../_helpers/raft_harness.ts";
import { checkLinearizability, type CheckResult, type Operation } from "../sim/linearizability.ts";
import { type MapInput, mapModel, type MapOutput } from "../sim_peer/map_model.ts";

const FAULT_MS = Number(process.env.HAMOK_LIN_MS ?? 8000);
const TIMING = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2, discoveryMs: 300, peerTimeoutMs: 10_000 };
const KEYS = ["k0", "k1", "k2"];
const OP_TIMEOUT_MS = 1500;
const MAP = "lin";
/** `HAMOK_LIN_BUG`: a `HamokTestingBug` for the peers, to see the check fail (by hand, not in CI). */
const BUG = process.env.HAMOK_LIN_BUG;

/** The end of the longest linearizable prefix of the failing key, and the operations it could not place. */
function explain(result: CheckResult<MapInput, MapOutput>): string {
  const prefix = result.longestPrefix ?? [];
  const placed = new Set(prefix);
  const rest = (result.failedPartition ?? []).filter((op) => !placed.has(op)).sort((x, y) => x.call - y.call);
  return [
    `... ${prefix.length} operations linearized, the last of them:`,
    ...prefix.slice(-8).map((op) => mapModel.describe!(op)),
    `the first of the ${rest.length} it could not place:`,
    ...rest.slice(0, 12).map((op) => mapModel.describe!(op)),
  ].join("\n");
}

/** One peer's slot: its process while it runs (undefined while it is down). */
interface Slot {
  readonly peerId: string;
  peer: PeerProcess | undefined;
  /** Its way to the NATS server. */
  proxy: TcpProxy;
  /** Resolves once the current incarnation has joined (clients wait on it). */
  up: Promise<void>;
  paused: boolean;
}

describe("linearizability over NATS, peers in separate processes, under pauses, partitions, kills, replacements and a NATS restart", () => {
  let server: NatsServer;
  let root: string;
  before(async () => {
    server = await startNatsServer();
    root = fs.mkdtempSync(join(tmpdir(), "hamok-lin-"));
  });
  after(async () => {
    await server?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("the history of six clients on three contended keys is linearizable and the replicas agree", async () => {
    const seed = Number(process.env.HAMOK_LIN_SEED ?? Math.floor(Math.random() * 1e9));
    const random = seededRandom(seed); // the nemesis's schedule
    const pick = seededRandom(seed + 1); // the clients' operations
    const clusterId = `lin-${seed}`;
    const t0 = performance.now();
    const now = (): number => performance.now() - t0;
    const history: Operation<MapInput, MapOutput>[] = [];
    const log: string[] = [];
    const note = (line: string): void => void log.push(`${now().toFixed(0)} ms: ${line}`);
    const failures = new Map<string, number>();

    const slots: Slot[] = await Promise.all(["a", "b", "c"].map(async (peerId) => ({
      peerId,
      peer: undefined,
      proxy: await startTcpProxy(server.port),
      up: Promise.resolve(),
      paused: false,
    })));
    const start = (slot: Slot): Promise<void> => {
      slot.up = (async () => {
        const peer = await startPeerProcess({
          natsUrl: slot.proxy.url,
          peerId: slot.peerId,
          clusterId,
          dataDir: join(root, slot.peerId),
          ...TIMING,
          ...(BUG === undefined ? {} : { testingBugs: [BUG] }),
        }, { timeoutMs: 10_000 });
        slot.peer = peer;
        await peer.join({ timeoutMs: 30_000 });
      })();
      return slot.up;
    };
    const leaderSlot = async (): Promise<Slot | undefined> => {
      for (const slot of slots) {
        if (slot.peer === undefined || slot.paused || slot.proxy.cut || slot.peer.exited) continue;
        const status = await slot.peer.status(2000).catch(() => undefined);
        if (status?.leaderId === undefined || status.leaderId === null) continue;
        return slots.find((s) => s.peerId === status.leaderId);
      }
      return undefined;
    };

    let stopping = false;
    let counter = 0;
    const client = async (slot: Slot, clientId: string): Promise<void> => {
      const seen = new Map<string, string>(); // key -> a value this client read or wrote there
      while (!stopping) {
        await slot.up.catch(() => {});
        const peer = slot.peer;
        if (peer === undefined || peer.exited) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        const key = KEYS[Math.floor(pick() * KEYS.length)]!;
        const value = `${clientId}.${counter++}`;
        const roll = pick();
        let input: MapInput;
        let run: () => Promise<unknown>;
        if (roll < 0.33) {
          input = { op: "set", key, value };
          run = () => peer.mapSet(MAP, key, value, OP_TIMEOUT_MS);
        } else if (roll < 0.43) {
          input = { op: "insert", key, value };
          run = () => peer.request("map.insert", { mapId: MAP, key, value, timeoutMs: OP_TIMEOUT_MS }, 4000);
        } else if (roll < 0.5) {
          input = { op: "delete", key };
          run = () => peer.request("map.delete", { mapId: MAP, key, timeoutMs: OP_TIMEOUT_MS }, 4000);
        } else if (roll < 0.68 && seen.has(key)) {
          const expected = seen.get(key)!;
          input = { op: "updateIf", key, value, expected };
          run = () =>
            peer.request(
              "map.updateIf",
              { mapId: MAP, key, value, expected, timeoutMs: OP_TIMEOUT_MS },
              4000,
            );
        } else {
          input = { op: "get", key };
          run = () => peer.mapGet(MAP, key, { linearizable: true, timeoutMs: OP_TIMEOUT_MS });
        }
        const call = now();
        try {
          const output = (await run()) as MapOutput;
          history.push({ clientId, input, output, call, ret: now() });
          if (typeof output === "string") seen.set(key, output);
          if (
            input.op === "set" || (input.op === "insert" && output === null) ||
            (input.op === "updateIf" && output === true)
          ) seen.set(key, value);
        } catch (error) {
          const code = (error as { code?: string }).code ?? "process";
          failures.set(code, (failures.get(code) ?? 0) + 1);
          // a read that failed changed nothing; a write that failed may still take effect, at any time
          if (input.op !== "get") history.push({ clientId, input, call, ret: Infinity });
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    };

    const nemesis = async (): Promise<void> => {
      const end = now() + FAULT_MS;
      let natsRestarts = 0;
      while (now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 300 + random() * 700));
        note(`leader ${(await leaderSlot())?.peerId ?? "none"}`);
        const roll = random();
        if (roll < 0.3) {
          // pause the leader (or, when none is known, any peer) past the election timeout
          const target = (await leaderSlot()) ?? slots[Math.floor(random() * 3)]!;
          const peer = target.peer;
          if (peer === undefined || peer.exited) continue;
          const ms = 300 + Math.floor(random() * 1200);
          note(`SIGSTOP ${target.peerId} for ${ms} ms`);
          target.paused = true;
          peer.kill("SIGSTOP");
          await new Promise((resolve) => setTimeout(resolve, ms));
          peer.kill("SIGCONT");
          target.paused = false;
        } else if (roll < 0.55) {
          // cut the leader (or any peer) off NATS: an isolated leader must not answer anything
          const target = (await leaderSlot()) ?? slots[Math.floor(random() * 3)]!;
          const ms = 300 + Math.floor(random() * 2200);
          note(`partition ${target.peerId} for ${ms} ms`);
          target.proxy.cutOff();
          await new Promise((resolve) => setTimeout(resolve, ms));
          target.proxy.heal();
        } else if (roll < 0.8) {
          const target = slots[Math.floor(random() * 3)]!;
          const peer = target.peer;
          if (peer === undefined || peer.exited) continue;
          note(`SIGKILL ${target.peerId}`);
          peer.kill("SIGKILL");
          await peer.waitForExit(10_000);
          target.peer = undefined;
          await new Promise((resolve) => setTimeout(resolve, 100 + random() * 900));
          note(`start ${target.peerId}`);
          await start(target);
          note(`${target.peerId} joined`);
        } else if (roll < 0.92) {
          // a rolling deploy's replacement: the instance leaves, and a new one with the same peer id
          // and a fresh data directory joins as a new member
          const target = slots[Math.floor(random() * 3)]!;
          const peer = target.peer;
          if (peer === undefined || peer.exited) continue;
          note(`replace ${target.peerId}`);
          target.paused = true; // not a leader to pick meanwhile
          await peer.leave(10_000).catch((error) => note(`leave of ${target.peerId} failed: ${error}`));
          await peer.close();
          target.peer = undefined;
          target.paused = false;
          fs.rmSync(join(root, target.peerId), { recursive: true, force: true });
          await start(target);
          note(`${target.peerId} joined anew`);
        } else if (natsRestarts < 1) {
          natsRestarts++;
          note("restart nats-server");
          await server.restart();
        }
      }
    };

    try {
      await Promise.all(slots.map(start));
      await waitFor(async () => (await leaderSlot()) !== undefined, {
        timeoutMs: 20_000,
        intervalMs: 20,
        message: "a leader",
      });
      const clients = slots.flatMap((
        slot,
      ) => [client(slot, `${slot.peerId}1`), client(slot, `${slot.peerId}2`)]);
      await nemesis();
      note("heal");
      stopping = true;
      await Promise.all(clients);

      // the replicas converge: after a read barrier on each, every peer holds the same entries
      await waitFor(async () => {
        for (const slot of slots) {
          await slot.up;
          await slot.peer!.request("sync", { timeoutMs: 5000 }, 7000);
        }
        const all = await Promise.all(slots.map((s) => s.peer!.mapEntries(MAP)));
        const shapes = all.map((entries) => JSON.stringify(entries.sort()));
        return shapes.every((shape) => shape === shapes[0]);
      }, { timeoutMs: 30_000, intervalMs: 100, message: "the replicas agree" });

      const completed = history.filter((op) => op.ret !== Infinity);
      const writes = completed.filter((op) => op.input.op !== "get").length;
      assert.ok(writes >= 20, `writes completed under the faults (${writes}; failures ${[...failures]})`);
      assert.ok(
        completed.length - writes >= 20,
        `reads completed under the faults (${completed.length - writes})`,
      );
      const result = checkLinearizability(mapModel, history, { maxSteps: 5_000_000 });
      if (result.verdict !== "ok" || process.env.HAMOK_LIN_VERBOSE) {
        console.log(
          `seed ${seed}: ${history.length} operations (${completed.length} completed), ` +
            `failures ${JSON.stringify(Object.fromEntries(failures))}, verdict ${result.verdict}\n` +
            log.join("\n"),
        );
      }
      assert.equal(result.verdict, "ok", `history not linearizable (seed ${seed}):\n${explain(result)}`);
    } finally {
      stopping = true;
      for (const slot of slots) {
        slot.peer?.kill("SIGCONT");
        slot.proxy.heal();
      }
      await Promise.all(slots.map((slot) => slot.peer?.close()));
      await Promise.all(slots.map((slot) => slot.proxy.close()));
    }
  });
});
