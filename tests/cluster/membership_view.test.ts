import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MembershipView, type MembershipViewHost } from "../../src/cluster/membership_view.ts";
import { applyMembershipChange, MAX_TOMBSTONE_CHARS, MAX_TOMBSTONES } from "../../src/raft/membership.ts";
import type { Membership, MembershipChange } from "../../src/raft/types.ts";

const host: MembershipViewHost = {
  localPeerId: "a",
  localMemberId: () => "a/1",
  peerJoined() {},
  learnerAdded() {},
  memberForgotten() {},
  peerRemoved() {},
  peerLeft() {},
  selfRemoved() {},
};

/** Applies `changes` to a view and to the core's membership alike; returns both. */
function both(changes: MembershipChange[]): [MembershipView, Membership] {
  const view = new MembershipView(host);
  let core: Membership = { voters: ["a/1"], learners: [], removed: [] };
  view.set(core, false);
  changes.forEach((change, i) => {
    view.applyChange(change, i + 1);
    core = applyMembershipChange(core, change);
  });
  return [view, core];
}

/** A joiner that comes and is removed, `n` times, with ids of `length` characters. */
function churn(n: number, length: number): MembershipChange[] {
  return Array.from({ length: n }, (_, i) => {
    const memberId = `${String(i).padStart(length - 9, "j")}/12345678`;
    return [{ type: "add-learner", memberId }, { type: "remove", memberId }] as MembershipChange[];
  }).flat();
}

describe("MembershipView tombstones", () => {
  it("keeps the same newest MAX_TOMBSTONES tombstones as the core (the old view kept every one)", () => {
    const [view, core] = both(churn(MAX_TOMBSTONES + 50, 20));
    assert.equal(core.removed.length, MAX_TOMBSTONES);
    assert.deepEqual([...view.removed], core.removed);
    assert.equal(view.removed.has(`${"0".padStart(11, "j")}/12345678`), false, "the oldest is forgotten");
  });

  it("bounds the tombstones' characters as the core does (long ids are forgotten sooner)", () => {
    const [view, core] = both(churn(400, 300));
    assert.equal(core.removed.length, Math.floor(MAX_TOMBSTONE_CHARS / 300));
    assert.deepEqual([...view.removed], core.removed);
  });

  it("a snapshot's membership replaces the tombstones", () => {
    const [view] = both(churn(3, 20));
    view.set({ voters: ["a/1"], learners: [], removed: ["x/1"] }, false);
    assert.deepEqual([...view.removed], ["x/1"]);
    view.applyChange({ type: "remove", memberId: "y/1" }, 9);
    assert.deepEqual([...view.removed], ["x/1", "y/1"]);
  });
});
