import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  applyMembershipChange,
  checkMembershipChange,
  EMPTY_MEMBERSHIP,
  isMember,
  isVoter,
  MAX_TOMBSTONES,
} from "../../src/raft/membership.ts";
import { MembershipTracker } from "../../src/raft/membership_tracker.ts";
import { majority, quorumIndex } from "../../src/raft/quorum.ts";
import type { Entry, MembershipChange } from "../../src/raft/types.ts";

const m0 = { voters: ["a", "b"], learners: ["l"], removed: ["x"] };
const config = (index: number, change: MembershipChange): Entry => ({
  index,
  term: 1,
  type: "config",
  data: new Uint8Array(),
  change,
});

describe("membership changes", () => {
  it("checks single-server changes", () => {
    assert.equal(checkMembershipChange(m0, { type: "add-learner", memberId: "c" }), undefined);
    assert.equal(checkMembershipChange(m0, { type: "add-learner", memberId: "a" }), "already-member");
    assert.equal(checkMembershipChange(m0, { type: "add-learner", memberId: "x" }), "removed");
    assert.equal(checkMembershipChange(m0, { type: "promote", memberId: "l" }), undefined);
    assert.equal(checkMembershipChange(m0, { type: "promote", memberId: "a" }), "not-learner");
    assert.equal(checkMembershipChange(m0, { type: "remove", memberId: "q" }), "not-member");
    assert.equal(checkMembershipChange(m0, { type: "remove", memberId: "l" }), undefined);
    assert.equal(
      checkMembershipChange({ voters: ["a"], learners: [], removed: [] }, { type: "remove", memberId: "a" }),
      "last-voter",
    );
  });

  it("applies changes and tombstones removed ids", () => {
    const added = applyMembershipChange(m0, { type: "add-learner", memberId: "c" });
    assert.deepEqual(added, { voters: ["a", "b"], learners: ["l", "c"], removed: ["x"] });
    const promoted = applyMembershipChange(added, { type: "promote", memberId: "l" });
    assert.deepEqual(promoted, { voters: ["a", "b", "l"], learners: ["c"], removed: ["x"] });
    const removed = applyMembershipChange(promoted, { type: "remove", memberId: "a" });
    assert.deepEqual(removed, { voters: ["b", "l"], learners: ["c"], removed: ["x", "a"] });
    assert.equal(applyMembershipChange(removed, { type: "add-learner", memberId: "a" }), removed);
    assert.equal(applyMembershipChange(removed, { type: "promote", memberId: "b" }), removed);
    assert.equal(applyMembershipChange(removed, { type: "remove", memberId: "a" }), removed);
    assert.equal(isVoter(removed, "l"), true);
    assert.equal(isMember(removed, "c"), true);
    assert.equal(isMember(removed, "a"), false);
    assert.equal(isMember(EMPTY_MEMBERSHIP, "a"), false);
  });

  it("keeps the newest MAX_TOMBSTONES tombstones, forgetting the oldest", () => {
    let m = { voters: ["a"], learners: [] as string[], removed: [] as string[] };
    for (let i = 0; i < MAX_TOMBSTONES + 5; i++) {
      m = applyMembershipChange(m, { type: "add-learner", memberId: `j${i}` }) as typeof m;
      m = applyMembershipChange(m, { type: "remove", memberId: `j${i}` }) as typeof m;
    }
    assert.equal(m.removed.length, MAX_TOMBSTONES);
    assert.equal(m.removed[0], "j5");
    assert.equal(m.removed.at(-1), `j${MAX_TOMBSTONES + 4}`);
    assert.equal(checkMembershipChange(m, { type: "add-learner", memberId: "j5" }), "removed");
    assert.equal(checkMembershipChange(m, { type: "add-learner", memberId: "j4" }), undefined);
    assert.deepEqual(m.voters, ["a"]);
    assert.deepEqual(m.learners, []);
  });

  it("tracks the latest config entry, undoes truncated ones, and compacts history", () => {
    const t = new MembershipTracker({ voters: ["a"], learners: [], removed: [] }, 0);
    assert.equal(t.append({ index: 1, term: 1, type: "noop", data: new Uint8Array() }), false);
    assert.equal(t.append(config(2, { type: "add-learner", memberId: "b" })), true);
    assert.equal(t.append(config(3, { type: "promote", memberId: "b" })), true);
    assert.equal(t.lastConfigIndex, 3);
    assert.deepEqual(t.current.voters, ["a", "b"]);
    assert.deepEqual(t.at(2).learners, ["b"]);
    assert.deepEqual(t.at(1).learners, []);
    assert.equal(t.truncateFrom(4), false);
    assert.equal(t.truncateFrom(3), true);
    assert.deepEqual(t.current, { voters: ["a"], learners: ["b"], removed: [] });
    t.compact(2);
    assert.equal(t.lastConfigIndex, 2);
    assert.deepEqual(t.at(2).learners, ["b"]);
    assert.equal(t.truncateFrom(3), false);
    assert.equal(t.reset({ voters: ["z"], learners: [], removed: [] }, 9), true);
    assert.equal(t.lastConfigIndex, 9);
  });

  it("a config entry that changes nothing still counts as the latest config entry", () => {
    const t = new MembershipTracker({ voters: ["a"], learners: [], removed: [] }, 0);
    assert.equal(t.append(config(1, { type: "promote", memberId: "nobody" })), false);
    assert.equal(t.lastConfigIndex, 1);
  });
});

describe("quorum", () => {
  it("computes majorities and the quorum index", () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(majority), [1, 2, 2, 3, 3]);
    const match: Record<string, number> = { a: 9, b: 7, c: 3, d: 1 };
    assert.equal(quorumIndex([], () => 5), 0);
    assert.equal(quorumIndex(["a"], (id) => match[id]), 9);
    assert.equal(quorumIndex(["a", "b", "c"], (id) => match[id]), 7);
    assert.equal(quorumIndex(["a", "b", "c", "d"], (id) => match[id]), 3);
  });
});
