import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { resolveRaftConfig } from "../../src/raft/raft_config.ts";
import { RaftError } from "../../src/raft/raft_error.ts";

const random = () => 0.5;

describe("resolveRaftConfig", () => {
  it("fills in the documented defaults", () => {
    const c = resolveRaftConfig({ id: "a", random });
    assert.equal(c.electionTicks, 10);
    assert.equal(c.heartbeatTicks, 1);
    assert.equal(c.preVote, true);
    assert.equal(c.checkQuorum, true);
    assert.equal(c.maxEntriesPerAppend, 256);
    assert.equal(c.maxBytesPerAppend, 1024 * 1024);
    assert.equal(c.maxInflightAppends, 16);
    assert.equal(c.snapshotChunkBytes, 256 * 1024);
    assert.equal(c.autoPromoteLearners, true);
    assert.equal(
      c.bugSkipPrevLogCheck || c.bugDoubleVote || c.bugCommitOldTerm || c.bugIgnoreCheckQuorum,
      false,
    );
  });

  it("maps testing bugs to flags", () => {
    const c = resolveRaftConfig({ id: "a", random, testingBugs: ["double-vote", "commit-old-term"] });
    assert.equal(c.bugDoubleVote, true);
    assert.equal(c.bugCommitOldTerm, true);
    assert.equal(c.bugSkipPrevLogCheck, false);
  });

  it("refuses invalid values", () => {
    assert.throws(() => resolveRaftConfig({ id: "", random }), RaftError);
    assert.throws(
      () => resolveRaftConfig({ id: "a", random: undefined as unknown as () => number }),
      RaftError,
    );
    assert.throws(() => resolveRaftConfig({ id: "a", random, electionTicks: 0 }), RaftError);
    assert.throws(() => resolveRaftConfig({ id: "a", random, maxInflightAppends: 1.5 }), RaftError);
    assert.throws(
      () => resolveRaftConfig({ id: "a", random, electionTicks: 3, heartbeatTicks: 3 }),
      /smaller/,
    );
  });
});
