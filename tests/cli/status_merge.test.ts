/** `clusterStatus`, the merge behind `hamok status`, on members' answers made up here. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { clusterStatus, renderStatus } from "../../src/cli/status_command.ts";
import type { HamokStatus } from "../../src/cluster/status.ts";
import { PeerCounters } from "../../src/cluster/peer_counters.ts";

function view(peerId: string, role: HamokStatus["role"], clusterUid: string, members: string[]): HamokStatus {
  return {
    clusterId: "c",
    peerId,
    memberId: `${peerId}/00000000`,
    clusterUid,
    role,
    term: 1,
    leaderId: role === "leader" ? peerId : members[0],
    commitIndex: 5,
    appliedIndex: 5,
    snapshotIndex: 0,
    lastIndex: 5,
    logLength: 5,
    logBytes: 100,
    pendingProposals: 0,
    members: members.map((m) => ({
      peerId: m,
      memberId: `${m}/00000000`,
      role: "voter",
      leader: m === members[0],
      ...(role === "leader" ? { matchIndex: 5, lag: 0, lastContactMs: 10 } : {}),
    })),
    counters: new PeerCounters().values(),
    time: 0,
  };
}

describe("clusterStatus", () => {
  it("one identity, a leader, every voter current: healthy", () => {
    const status = clusterStatus(
      "c",
      [
        view("a", "leader", "u1", ["a", "b"]),
        view("b", "follower", "u1", ["a", "b"]),
      ],
      100,
      2000,
    );
    assert.deepEqual(status.problems, []);
    assert.equal(status.healthy, true);
    assert.deepEqual(status.clusterUids, ["u1"]);
  });

  it("two cluster identities under one id are a split, reported with who is in which", () => {
    const status = clusterStatus(
      "c",
      [
        view("a", "leader", "u1", ["a", "b"]),
        view("b", "follower", "u1", ["a", "b"]),
        view("c", "leader", "u2", ["c"]),
      ],
      100,
      2000,
    );
    assert.equal(status.healthy, false);
    assert.deepEqual(status.clusterUids, ["u1", "u2"]);
    assert.deepEqual(status.problems, ["SPLIT: 2 clusters answer under this id (u1: a b; u2: c)"]);
    assert.match(renderStatus(status), /UNHEALTHY \(SPLIT: 2 clusters/);
  });
});
