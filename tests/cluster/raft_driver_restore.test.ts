import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftDriver, type RaftDriverHooks } from "../../src/cluster/raft_driver.ts";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { Entry, RaftMessage, Snapshot } from "../../src/raft/types.ts";
import { MemoryRaftStorage } from "../../src/storage/memory_storage.ts";
import { waitFor } from "../_helpers/wait.ts";

const membership = (voters: string[]) => ({ voters, learners: [], removed: [] });

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

interface Side {
  node: RaftNode;
  driver: RaftDriver;
  applied: number[];
  sent: RaftMessage[];
  restores: Snapshot[];
}

/** Two drivers wired to each other: `a` leads a one-voter cluster that has compacted; `b` joins it. */
function pair(restore: (snapshot: Snapshot) => void | Promise<void>): { a: Side; b: Side } {
  const sides: Record<string, Side> = {};
  const make = (
    id: string,
    state: ConstructorParameters<typeof RaftNode>[1],
    hook?: typeof restore,
  ): Side => {
    const node = new RaftNode({ id, random: () => 0.5, electionTicks: 10, snapshotChunkBytes: 4 }, state);
    const side: Side = {
      node,
      driver: undefined as unknown as RaftDriver,
      applied: [],
      sent: [],
      restores: [],
    };
    const hooks: RaftDriverHooks = {
      send: (m) => {
        side.sent.push(m);
        queueMicrotask(() => sides[m.to]?.driver.step(m));
      },
      apply: (entry: Entry) => void side.applied.push(entry.index),
      restore: (snapshot) => {
        side.restores.push(snapshot);
        return hook?.(snapshot);
      },
      softStateChanged: () => {},
      error: (e) => {
        throw e;
      },
    };
    side.driver = new RaftDriver(node, new MemoryRaftStorage(id), hooks, 5);
    sides[id] = side;
    return side;
  };
  const a = make("a", {
    hardState: { term: 0, vote: undefined, commit: 0 },
    snapshot: { meta: { index: 0, term: 0, membership: membership(["a"]) }, data: new Uint8Array() },
    entries: [],
  });
  const b = make("b", { hardState: { term: 0, vote: undefined, commit: 0 }, entries: [] }, restore);
  return { a, b };
}

describe("RaftDriver restore in slices", () => {
  it("a follower restoring a snapshot answers its leader and applies later entries only afterwards", async () => {
    const restoring = gate();
    const { a, b } = pair(() => restoring.promise);
    try {
      a.driver.start();
      b.driver.start();
      a.driver.run((n) => n.campaign());
      await waitFor(() => a.node.role === "leader", { timeoutMs: 2000 });
      for (let i = 0; i < 5; i++) a.driver.run((n) => n.propose(new Uint8Array([i])));
      await waitFor(() => a.applied.length >= 6, { timeoutMs: 2000 });
      a.driver.run((n) => n.compact(n.appliedIndex, new Uint8Array(17)));
      a.driver.run((n) => n.proposeMembership({ type: "add-learner", memberId: "b" }));
      await waitFor(() => b.restores.length === 1, { timeoutMs: 2000, message: "b got the snapshot" });
      const snapshotIndex = b.restores[0]!.meta.index;
      assert.equal(b.driver.isRestoring, true);
      // more entries commit meanwhile; b acknowledges them but holds them back
      for (let i = 0; i < 3; i++) a.driver.run((n) => n.propose(new Uint8Array([9])));
      await waitFor(() => b.node.commitIndex >= a.node.lastIndex, { timeoutMs: 2000 });
      const heartbeatsBefore = b.sent.filter((m) => m.type === "heartbeat-response").length;
      await waitFor(
        () => b.sent.filter((m) => m.type === "heartbeat-response").length > heartbeatsBefore + 3,
        {
          timeoutMs: 2000,
          message: "b keeps answering heartbeats while it restores",
        },
      );
      assert.deepEqual(b.applied, [], "nothing applied before the restore is complete");
      assert.ok(b.driver.appliedIndex < snapshotIndex);
      let waited = false;
      const waiting = b.driver.waitApplied(snapshotIndex).then(() => (waited = true));
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(waited, false, "waitApplied waits for the restore");
      restoring.open();
      await waiting;
      await waitFor(() => b.driver.appliedIndex === a.node.commitIndex, { timeoutMs: 2000 });
      assert.equal(b.driver.isRestoring, false);
      assert.ok(
        b.applied.length > 0 && b.applied[0]! > snapshotIndex,
        "held entries applied in order after it",
      );
      assert.deepEqual(b.applied, [...b.applied].sort((x, y) => x - y));
    } finally {
      a.driver.stop();
      b.driver.stop();
    }
  });

  it("holdUntil: a superseded restore is ignored; the newest one releases the held entries", async () => {
    const { a } = pair(() => undefined);
    try {
      a.driver.start();
      a.driver.run((n) => n.campaign());
      await waitFor(() => a.applied.length >= 1, { timeoutMs: 2000 });
      const first = gate();
      const second = gate();
      const index = a.driver.appliedIndex;
      a.driver.holdUntil(first.promise, index);
      a.driver.holdUntil(second.promise, index);
      a.driver.run((n) => n.propose(new Uint8Array([1])));
      await waitFor(() => a.node.commitIndex > index, { timeoutMs: 2000 });
      first.open();
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(a.driver.isRestoring, true, "the older restore does not release anything");
      assert.equal(a.applied.length, 1);
      second.open();
      await waitFor(() => a.applied.length === 2, { timeoutMs: 2000 });
      assert.equal(a.driver.appliedIndex, a.node.commitIndex);
    } finally {
      a.driver.stop();
    }
  });
});
