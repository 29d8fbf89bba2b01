import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftDriver } from "../../src/cluster/raft_driver.ts";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { Entry, HardState, Snapshot } from "../../src/raft/types.ts";
import type { RaftPersistentState, RaftStorage } from "../../src/storage/raft_storage.ts";
import { waitFor } from "../_helpers/wait.ts";
import { HamokNoLeaderError } from "../../src/errors.ts";

/** An asynchronous storage that records the order in which writes start and finish. */
class SlowStorage implements RaftStorage {
  readonly memberId = "n1";
  readonly log: string[] = [];
  load(): Promise<RaftPersistentState> {
    return Promise.resolve({ hardState: { term: 0, vote: undefined, commit: 0 }, entries: [] });
  }
  #slow(what: string): Promise<void> {
    this.log.push(`start ${what}`);
    return new Promise((resolve) =>
      setTimeout(() => {
        this.log.push(`end ${what}`);
        resolve();
      }, 5)
    );
  }
  saveHardState(_hs: HardState): Promise<void> {
    return this.#slow("hard-state");
  }
  append(_entries: readonly Entry[]): Promise<void> {
    return this.#slow("entries");
  }
  saveSnapshot(_snapshot: Snapshot): Promise<void> {
    return this.#slow("snapshot");
  }
  close(): void {}
}

describe("RaftDriver", () => {
  it("persists a ready batch in order and applies only after persisting, with an async storage", async () => {
    const storage = new SlowStorage();
    const node = new RaftNode({ id: "n1", random: () => 0.5 }, {
      hardState: { term: 0, vote: undefined, commit: 0 },
      snapshot: {
        meta: { index: 0, term: 0, membership: { voters: ["n1"], learners: [], removed: [] } },
        data: new Uint8Array(),
      },
      entries: [],
    });
    const applied: number[] = [];
    const driver = new RaftDriver(node, storage, {
      send: () => {},
      apply: (entry) => {
        applied.push(entry.index);
        storage.log.push(`apply ${entry.index}`);
      },
      restore: () => {},
      softStateChanged: () => {},
      membershipChanged: () => {},
      error: (e) => {
        throw e;
      },
    }, 1000);
    driver.run((n) => n.campaign());
    await waitFor(() => node.role === "leader", { timeoutMs: 2000 });
    const result = driver.run((n) => n.propose(new Uint8Array([1]), "r1"));
    assert.equal(result.status, "appended");
    await waitFor(() => applied.length >= 2, { timeoutMs: 2000 });
    driver.stop();
    // every write finished before the next one started, and entries were stored before being applied
    for (let i = 0; i < storage.log.length; i++) {
      if (storage.log[i].startsWith("start")) {
        const what = storage.log[i].slice(6);
        assert.equal(storage.log[i + 1], `end ${what}`, storage.log.join(" | "));
      }
    }
    const firstApply = storage.log.findIndex((l) => l.startsWith("apply"));
    assert.ok(storage.log.slice(0, firstApply).includes("end entries"), storage.log.join(" | "));
  });

  it("syncs once per ready batch, after its writes, and applies nothing of the batch before the sync ends", async () => {
    const log: string[] = [];
    let openGate: (() => void) | undefined;
    const storage: RaftStorage = {
      memberId: "n1",
      load: () => Promise.resolve({ hardState: { term: 0, vote: undefined, commit: 0 }, entries: [] }),
      saveHardState: () => void log.push("hard-state"),
      append: (entries) => void log.push(`entries ${entries.map((e) => e.index).join(",")}`),
      saveSnapshot: () => void log.push("snapshot"),
      sync: () => {
        log.push("sync");
        return new Promise<void>((resolve) => {
          openGate = () => {
            log.push("synced");
            resolve();
          };
        });
      },
      close: () => {},
    };
    const node = new RaftNode({ id: "n1", random: () => 0.5 }, {
      hardState: { term: 0, vote: undefined, commit: 0 },
      snapshot: {
        meta: { index: 0, term: 0, membership: { voters: ["n1"], learners: [], removed: [] } },
        data: new Uint8Array(),
      },
      entries: [],
    });
    const driver = new RaftDriver(node, storage, {
      send: () => {},
      apply: (entry) => void log.push(`apply ${entry.index}`),
      restore: () => {},
      softStateChanged: () => {},
      membershipChanged: () => {},
      error: (e) => {
        throw e;
      },
    }, 1000);
    driver.run((n) => n.campaign());
    // let the election's batches through until the leader's no-op is applied
    await waitFor(() => {
      if (openGate !== undefined) {
        const open = openGate;
        openGate = undefined;
        open();
      }
      return node.role === "leader" && log.includes("apply 1");
    }, { timeoutMs: 2000, message: "the leader's no-op applied" });
    log.length = 0;
    driver.run((n) => {
      n.propose(new Uint8Array([1]), "a");
      n.propose(new Uint8Array([2]), "b");
      n.propose(new Uint8Array([3]), "c");
    });
    await waitFor(() => openGate !== undefined, { timeoutMs: 2000, message: "the batch's sync" });
    // one batch: its writes, then one sync, and nothing applied while the sync runs
    assert.deepEqual(log, ["entries 2,3,4", "hard-state", "sync"]);
    openGate!();
    await waitFor(() => log.includes("apply 4"), { timeoutMs: 2000, message: "the batch applied" });
    assert.deepEqual(log, ["entries 2,3,4", "hard-state", "sync", "synced", "apply 2", "apply 3", "apply 4"]);
    driver.stop();
  });

  it("a read on a stopped driver rejects with a typed error, never a string", async () => {
    const node = new RaftNode({ id: "n1", random: () => 0.5 }, {
      hardState: { term: 0, vote: undefined, commit: 0 },
      entries: [],
    });
    const driver = new RaftDriver(node, new SlowStorage(), {
      send: () => {},
      apply: () => {},
      restore: () => {},
      softStateChanged: () => {},
      membershipChanged: () => {},
      error: () => {},
    }, 1000);
    const pending = driver.readIndex("r-before-stop");
    driver.stop();
    await assert.rejects(
      pending,
      (e) => e instanceof HamokNoLeaderError && /leadership-lost/.test(e.message),
    );
    await assert.rejects(driver.readIndex("r-after-stop"), HamokNoLeaderError);
  });
});
