import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  MAX_MEMBER_CHARS,
  MAX_MEMBERS,
  type MembershipHost,
  MembershipManager,
} from "../../src/cluster/membership_manager.ts";
import { encodeCbor } from "../../src/codec/cbor.ts";
import { HamokConfigError, HamokNotLeaderError } from "../../src/errors.ts";
import type { RaftNode } from "../../src/raft/raft_node.ts";
import type { MembershipChange, ProposeResult } from "../../src/raft/types.ts";

const silent = { debug() {}, info() {} };
const options = { peerId: "a", requestTimeoutMs: 1000, tickMs: 10, peerTimeoutMs: 100, logger: silent };

/** A leader whose core appends every membership change at once and applies it immediately. */
function fakeLeader(voters: string[], learners: string[] = []) {
  const membership: { voters: string[]; learners: string[]; removed: string[] } = {
    voters: [...voters],
    learners: [...learners],
    removed: [],
  };
  const changes: MembershipChange[] = [];
  let index = 0;
  const node = {
    proposeMembership(change: MembershipChange): ProposeResult {
      changes.push(change);
      if (change.type === "remove") {
        membership.voters = membership.voters.filter((id) => id !== change.memberId);
        membership.learners = membership.learners.filter((id) => id !== change.memberId);
      } else if (change.type === "add-learner") {
        membership.learners = [...membership.learners, change.memberId];
      }
      return { status: "appended", index: ++index, term: 1 };
    },
  } as unknown as RaftNode;
  const state = { leader: true };
  const host: MembershipHost = {
    isLeader: () => state.leader,
    localMemberId: () => "a/1",
    membership: () => membership,
    requireDriver: () => ({
      run: (fn) => fn(node),
      waitApplied: () => Promise.resolve(),
      get appliedIndex() {
        return index;
      },
    }),
  };
  return { host, changes, membership, state };
}

describe("MembershipManager", () => {
  it("refuses join and leave requests when this peer is not the leader, and malformed ones", async () => {
    const { host, state, changes } = fakeLeader(["a/1"]);
    const manager = new MembershipManager(options, host);
    await assert.rejects(manager.onJoinRequest(encodeCbor("")), HamokConfigError);
    await assert.rejects(manager.onJoinRequest(encodeCbor(7)), HamokConfigError);
    await assert.rejects(manager.onLeaveRequest(encodeCbor(7)), HamokConfigError);
    state.leader = false;
    await assert.rejects(manager.onJoinRequest(encodeCbor("b/1")), HamokNotLeaderError);
    await assert.rejects(manager.onLeaveRequest(encodeCbor("b/1")), HamokNotLeaderError);
    assert.deepEqual(changes, []);
  });

  it("adds a newcomer as a learner, replacing an older incarnation of the same peer first", async () => {
    const { host, changes, membership } = fakeLeader(["a/1", "b/old"]);
    const manager = new MembershipManager(options, host);
    await manager.onJoinRequest(encodeCbor("b/new"));
    assert.deepEqual(changes, [
      { type: "remove", memberId: "b/old" },
      { type: "add-learner", memberId: "b/new" },
    ]);
    assert.deepEqual(membership.learners, ["b/new"]);
    await manager.onJoinRequest(encodeCbor("b/new")); // already a member: nothing to do
    assert.equal(changes.length, 2);
  });

  it("serializes concurrent changes in arrival order", async () => {
    const { host, changes } = fakeLeader(["a/1", "x/1"]);
    const manager = new MembershipManager(options, host);
    await Promise.all([
      manager.onJoinRequest(encodeCbor("b/1")),
      manager.onLeaveRequest(encodeCbor("x/1")),
      manager.onJoinRequest(encodeCbor("c/1")),
    ]);
    assert.deepEqual(changes.map((c) => `${c.type} ${c.memberId}`), [
      "add-learner b/1",
      "remove x/1",
      "add-learner c/1",
    ]);
  });

  it("removes a member silent for longer than peerTimeoutMs, once, and never itself", async () => {
    const { host, changes, membership } = fakeLeader(["a/1", "b/1", "c/1"]);
    const manager = new MembershipManager(options, host);
    const t0 = 1_000_000;
    manager.removeSilent(t0); // first sight of b and c: their clocks start now
    manager.heard("c/1", t0 + 150);
    manager.removeSilent(t0 + 150); // b silent 150 ms > 100 ms
    manager.removeSilent(t0 + 160); // already being removed: not twice
    await manager.remove("nobody/1"); // queued behind b's removal: waits for it
    assert.deepEqual(changes.slice(0, 1), [{ type: "remove", memberId: "b/1" }]);
    assert.equal(changes.filter((c) => c.memberId === "b/1").length, 1);
    assert.deepEqual(membership.voters, ["a/1", "c/1"]);
    manager.forget("b/1");
    manager.removeSilent(t0 + 10_000); // c silent now too; a (self) never
    await manager.remove("nobody/2");
    assert.ok(changes.some((c) => c.type === "remove" && c.memberId === "c/1"));
    assert.ok(!changes.some((c) => c.memberId === "a/1"));
  });

  it("does nothing about silent members when not the leader", () => {
    const { host, changes, state } = fakeLeader(["a/1", "b/1"]);
    state.leader = false;
    const manager = new MembershipManager(options, host);
    manager.heard("b/1", 0);
    manager.removeSilent(1_000_000);
    assert.deepEqual(changes, []);
  });
});

describe("MembershipManager: bounds", () => {
  it("refuses joins beyond MAX_MEMBERS (a restart of a member still replaces it) and over-long member ids", async () => {
    const learners = Array.from({ length: MAX_MEMBERS - 1 }, (_, i) => `p${i}/1`);
    const { host, changes } = fakeLeader(["a/1"], learners);
    const manager = new MembershipManager(options, host);
    // the old code added every made-up joiner: the membership (and every snapshot) grew without bound
    await assert.rejects(
      manager.onJoinRequest(encodeCbor("ghost/1"), "ghost"),
      (e: Error) => (e as { code?: string }).code === "HAMOK_RATE_LIMITED",
    );
    await assert.rejects(manager.onJoinRequest(encodeCbor(`${"g".repeat(400)}/1`)), HamokConfigError);
    assert.deepEqual(changes, []);
    await manager.onJoinRequest(encodeCbor("p7/2"), "p7");
    assert.deepEqual(changes, [{ type: "remove", memberId: "p7/1" }, {
      type: "add-learner",
      memberId: "p7/2",
    }]);
  });

  it("refuses joins once the members' ids take MAX_MEMBER_CHARS characters (long ids fill it first)", async () => {
    // 300-character member ids: about 218 of them fill the characters long before MAX_MEMBERS
    const long = (i: number) => `${String(i).padStart(290, "x")}/12345678`;
    const fit = Math.floor((MAX_MEMBER_CHARS - 3) / long(0).length);
    const learners = Array.from({ length: fit - 1 }, (_, i) => long(i));
    const { host, changes } = fakeLeader(["a/1"], learners);
    const manager = new MembershipManager(options, host);
    const next = long(fit);
    await manager.onJoinRequest(encodeCbor(next), next.slice(0, next.lastIndexOf("/")));
    assert.deepEqual(changes, [{ type: "add-learner", memberId: next }]);
    // the old code took these too: each snapshot message carried another 300 characters
    const over = long(fit + 1);
    await assert.rejects(
      manager.onJoinRequest(encodeCbor(over), over.slice(0, over.lastIndexOf("/"))),
      (e: Error) => (e as { code?: string }).code === "HAMOK_RATE_LIMITED" && /characters/.test(e.message),
    );
    assert.equal(changes.length, 1);
  });
});
