import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftDriver, type RaftDriverHooks } from "../../src/cluster/raft_driver.ts";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { RaftMessage } from "../../src/raft/types.ts";
import type { RaftStorage } from "../../src/storage/raft_storage.ts";
import { waitFor } from "../_helpers/wait.ts";

/**
 * The driver with RaftConfig.asyncPersistence: a leader's appends leave while its own sync runs,
 * and the leader counts its entries toward a commit only once that sync is done.
 */

const MEMBERSHIP = { voters: ["a", "b", "c"], learners: [], removed: [] };

/** A storage whose syncs wait until the test opens them (or fail, with `failSync`). */
function gatedStorage(memberId: string, log: string[], failSync = false): RaftStorage & { open(): boolean } {
  const gates: (() => void)[] = [];
  return {
    memberId,
    load: () => Promise.resolve({ hardState: { term: 0, vote: undefined, commit: 0 }, entries: [] }),
    saveHardState: () => void log.push("hard-state"),
    append: (entries) => void log.push(`entries ${entries.map((e) => e.index).join(",")}`),
    saveSnapshot: () => void log.push("snapshot"),
    sync: () => {
      log.push("sync");
      if (failSync) return Promise.reject(new Error("no space left on device"));
      return new Promise<void>((resolve) =>
        gates.push(() => {
          log.push("synced");
          resolve();
        })
      );
    },
    open: () => {
      const gate = gates.shift();
      gate?.();
      return gate !== undefined;
    },
    close: () => {},
  };
}

function hooks(log: string[], sent: RaftMessage[], errors: unknown[] = []): RaftDriverHooks {
  return {
    send: (m) => {
      sent.push(m);
      log.push(`send ${m.type}->${m.to}`);
    },
    apply: (entry) => void log.push(`apply ${entry.index}`),
    restore: () => {},
    softStateChanged: () => {},
    membershipChanged: () => {},
    error: (e) => void errors.push(e),
  };
}

function newNode(id: string): RaftNode {
  return new RaftNode({ id, random: () => 0, preVote: false, asyncPersistence: true }, {
    hardState: { term: 0, vote: undefined, commit: 0 },
    snapshot: { meta: { index: 0, term: 0, membership: MEMBERSHIP }, data: new Uint8Array() },
    entries: [],
  });
}

describe("RaftDriver with asynchronous persistence", () => {
  it("sends the leader's appends before its sync ends and commits its entry only after", async () => {
    const log: string[] = [];
    const sent: RaftMessage[] = [];
    const storage = gatedStorage("a", log);
    const node = newNode("a");
    const driver = new RaftDriver(node, storage, hooks(log, sent), 1000);
    driver.run((n) => n.campaign());
    // the candidate's term and vote are synced before its vote requests leave
    await waitFor(() => log.includes("sync"), { timeoutMs: 2000, message: "the candidate's sync" });
    assert.equal(sent.length, 0, "a vote request left before the vote was durable");
    assert.ok(storage.open());
    await waitFor(() => sent.some((m) => m.type === "vote"), { timeoutMs: 2000, message: "vote requests" });
    driver.step({ type: "vote-response", from: "b", to: "a", term: 1, reject: false });
    await waitFor(() => node.role === "leader" && log.filter((l) => l === "sync").length === 2, {
      timeoutMs: 2000,
      message: "the leader's no-op batch syncing",
    });
    // the no-op's appends went out while its sync is still running
    const appends = sent.filter((m) => m.type === "append");
    assert.deepEqual(appends.map((m) => m.to).sort(), ["b", "c"]);
    assert.equal(log.filter((l) => l === "synced").length, 1, "the no-op's sync has not ended yet");
    assert.equal(node.progress.get("a")!.match, 0, "the leader counted its own unsynced no-op");
    // b acknowledges before a's write is durable: one of three is no quorum
    driver.step({
      type: "append-response",
      from: "b",
      to: "a",
      term: 1,
      index: 1,
      reject: false,
      rejectHint: 0,
      hintTerm: 0,
    });
    assert.equal(node.commitIndex, 0, "committed without the leader's own durable copy");
    assert.ok(!log.includes("apply 1"));
    // the sync ends: now a and b hold it
    assert.ok(storage.open());
    await waitFor(() => log.includes("apply 1"), { timeoutMs: 2000, message: "the no-op applied" });
    assert.equal(node.commitIndex, 1);
    assert.equal(node.persistedIndex, 1);
    driver.stop();
  });

  it("a follower whose sync fails never acknowledges the entries and reports the failure", async () => {
    const log: string[] = [];
    const sent: RaftMessage[] = [];
    const errors: unknown[] = [];
    const node = newNode("b");
    const driver = new RaftDriver(node, gatedStorage("b", log, true), hooks(log, sent, errors), 1000);
    driver.step({
      type: "append",
      from: "a",
      to: "b",
      term: 1,
      prevIndex: 0,
      prevTerm: 0,
      entries: [{ index: 1, term: 1, type: "noop", data: new Uint8Array() }],
      commit: 0,
    });
    await waitFor(() => errors.length > 0, { timeoutMs: 2000, message: "the storage failure reported" });
    assert.match(String(errors[0]), /no space left/);
    assert.deepEqual(sent, [], "a message left after a failed sync");
    driver.stop();
  });
});
