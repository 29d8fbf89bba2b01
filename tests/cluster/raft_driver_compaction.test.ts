import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftDriver } from "../../src/cluster/raft_driver.ts";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import type { RaftStorage } from "../../src/storage/raft_storage.ts";
import { waitFor } from "../_helpers/wait.ts";

/** A storage whose snapshot saves stay pending until the test settles them. */
function slowSnapshots() {
  const saves: { snapshot: Snapshot; resolve(): void; reject(error: Error): void }[] = [];
  const appended: number[] = [];
  const storage: RaftStorage = {
    memberId: "n1",
    load: () => Promise.resolve({ hardState: { term: 0, vote: undefined, commit: 0 }, entries: [] }),
    saveHardState: () => {},
    append: (entries: readonly Entry[]) => void appended.push(...entries.map((e) => e.index)),
    saveSnapshot: (snapshot) =>
      new Promise<void>((resolve, reject) => saves.push({ snapshot, resolve, reject })),
    sync: () => Promise.resolve(),
    close: () => {},
  };
  return { storage, saves, appended };
}

function start(storage: RaftStorage, applied: number[], errors: unknown[]): RaftDriver {
  const node = new RaftNode({ id: "n1", random: () => 0.5, asyncPersistence: true }, {
    hardState: { term: 0, vote: undefined, commit: 0 },
    snapshot: {
      meta: { index: 0, term: 0, membership: { voters: ["n1"], learners: [], removed: [] } },
      data: new Uint8Array(),
    },
    entries: [],
  });
  const driver = new RaftDriver(node, storage, {
    send: () => {},
    apply: (entry) => void applied.push(entry.index),
    restore: () => {},
    softStateChanged: () => {},
    error: (error) => void errors.push(error),
  }, 1000);
  driver.run((n) => n.campaign());
  return driver;
}

describe("RaftDriver and a local compaction", () => {
  it("does not wait for the snapshot save: later writes are stored, committed and applied meanwhile", async () => {
    const { storage, saves, appended } = slowSnapshots();
    const applied: number[] = [];
    const errors: unknown[] = [];
    const driver = start(storage, applied, errors);
    await waitFor(() => driver.node.role === "leader", { timeoutMs: 2000 });
    for (let i = 0; i < 3; i++) driver.run((n) => n.propose(new Uint8Array([i]), `a${i}`));
    await waitFor(() => driver.appliedIndex >= 4, { timeoutMs: 2000 });
    driver.run((n) => n.compact(driver.appliedIndex, new Uint8Array([9])));
    await waitFor(() => saves.length === 1, { timeoutMs: 2000 });
    for (let i = 0; i < 3; i++) driver.run((n) => n.propose(new Uint8Array([i]), `b${i}`));
    await waitFor(() => driver.appliedIndex >= 7, { timeoutMs: 2000 });
    assert.deepEqual(appended.slice(-3), [5, 6, 7]);
    saves[0]!.resolve();
    assert.deepEqual(errors, []);
    driver.stop();
  });

  it("a failed background save stops the driver with the storage's error", async () => {
    const { storage, saves } = slowSnapshots();
    const applied: number[] = [];
    const errors: unknown[] = [];
    const driver = start(storage, applied, errors);
    await waitFor(() => driver.node.role === "leader", { timeoutMs: 2000 });
    driver.run((n) => n.propose(new Uint8Array([1]), "a"));
    await waitFor(() => driver.appliedIndex >= 2, { timeoutMs: 2000 });
    driver.run((n) => n.compact(2, new Uint8Array([9])));
    await waitFor(() => saves.length === 1, { timeoutMs: 2000 });
    const failure = new Error("no space left on device");
    saves[0]!.reject(failure);
    await waitFor(() => errors.length === 1, { timeoutMs: 2000 });
    assert.equal(errors[0], failure);
    const before = driver.appliedIndex;
    driver.run((n) => n.propose(new Uint8Array([2]), "b"));
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(driver.appliedIndex, before, "nothing is processed after the failure");
    driver.stop();
  });
});
