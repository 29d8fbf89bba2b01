import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { AppendResponseMessage, RaftTestingBug, VoteResponseMessage } from "../../src/raft/types.ts";
import { bootstrapSnapshot, cmd, RaftHarness, stateWithLog } from "../_helpers/raft_harness.ts";

// "commit-old-term" is exercised next to the correct behaviour in replication.test.ts (fig. 8).

function follower(bugs: RaftTestingBug[]): RaftNode {
  return new RaftNode(
    { id: "b", random: () => 0, testingBugs: bugs },
    stateWithLog(["a", "b", "c"], [1, 1, 2], 3),
  );
}

describe("testing bugs break exactly what they name", () => {
  it("skip-prev-log-check: a follower accepts an append whose prevTerm does not match", () => {
    for (const [bugs, reject] of [[[], true], [["skip-prev-log-check"], false]] as const) {
      const b = follower([...bugs]);
      b.step({
        type: "append",
        from: "a",
        to: "b",
        term: 3,
        prevIndex: 3,
        prevTerm: 3,
        entries: [{ index: 4, term: 3, type: "normal", data: cmd("x") }],
        commit: 4,
      });
      const [answer] = b.ready().messages as AppendResponseMessage[];
      assert.equal(answer.reject, reject, `bugs: ${bugs}`);
      assert.equal(b.lastIndex, reject ? 3 : 4);
    }
  });

  it("double-vote: a vote is granted to a second candidate in the same term", () => {
    for (const [bugs, reject] of [[[], true], [["double-vote"], false]] as const) {
      const b = new RaftNode({ id: "b", random: () => 0, testingBugs: [...bugs] }, {
        hardState: { term: 1, vote: "a", commit: 0 },
        snapshot: bootstrapSnapshot(["a", "b", "c"]),
        entries: [],
      });
      b.step({ type: "vote", from: "c", to: "b", term: 1, lastIndex: 0, lastTerm: 0 });
      const [answer] = b.ready().messages as VoteResponseMessage[];
      assert.equal(answer.reject, reject, `bugs: ${bugs}`);
    }
  });

  it("ignore-check-quorum: an isolated leader never steps down, and voters ignore the lease", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { testingBugs: ["ignore-check-quorum"] });
    h.elect("a");
    h.isolate("a");
    for (let i = 0; i < 100; i++) {
      h.tick("a");
      h.stabilize();
    }
    assert.equal(h.node("a").role, "leader");
    h.heal();
    h.tickAll(1);
    h.node("b").step({ type: "pre-vote", from: "c", to: "b", term: 2, lastIndex: 1, lastTerm: 1 });
    const [answer] = h.take((m) => m.type === "pre-vote-response") as VoteResponseMessage[];
    assert.equal(answer.reject, false, "granted although b just heard from the leader");
  });
});
