import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { RaftMessage } from "../../src/raft/types.ts";
import { runSeed } from "./runner.ts";
import type { SimOptions } from "./simulation.ts";

/**
 * Seeds that once found a bug in the Raft core (or in the simulator), each replayed with the
 * options it failed with. `what` says what went wrong and how it was fixed. They were found before
 * asynchronous persistence existed: `persistence: "sync"` replays them exactly.
 */
const REGRESSIONS: readonly { readonly what: string; readonly opts: SimOptions }[] = [
  {
    // n2 lost its storage right after the promotion of n4 committed without n3: n3 still saw
    // voters {n2, n3} (so it campaigned at n2 alone, term 142) while n4 saw {n2, n3, n4} and
    // campaigned at n3 from term 111. n3 silently dropped the lower-term vote requests, so n4
    // never learned the newer term: no leader for ever. Fix: answer a stale vote request with a
    // rejection that carries the current term (as the Raft paper's RequestVote reply does).
    what: "a candidate that lags in term learns the voter's term from its rejection (liveness)",
    opts: { seed: 113275, steps: 10_000, persistence: "sync" },
  },
  {
    // Simulator bug: the liveness phase deafened the leader while the promotion of a learner was
    // in flight; the committed configuration {n1, n3} then needed the deaf n3. The leader is now
    // deafened only with a settled membership (no learners, every node's view the same).
    what: "no deaf leader while a configuration change is in flight",
    opts: { seed: 101857, steps: 10_000, persistence: "sync" },
  },
  {
    // Simulator bug: with pre-vote off, a deaf node (it sends but never hears) with the freshest
    // log campaigns in ever higher terms and takes the others' votes for ever; that is the
    // disruptive server pre-vote exists for, not a core bug. Deaf leaders only with pre-vote.
    what: "no deaf leader without pre-vote",
    opts: { seed: 222707, nodes: 5, steps: 10_000, persistence: "sync" },
  },
  {
    // Simulator bug: the storage-loss nemesis checked only the leader's view. Leader n2 had just
    // appended the auto-promotion of learner n4 (voters {n1, n2, n4} in its view, uncommitted)
    // when its storage was destroyed; the promotion had reached nobody, so the committed voters
    // {n1, n2} could never form a majority again. Storage is now lost only with a settled
    // membership (no goal, no learner, the same voters in every member's log).
    what: "no storage loss while an auto-promotion is in flight",
    opts: { seed: 1003767, steps: 10_000, persistence: "sync" },
  },
  {
    // Simulator bug: n1 (down) held an uncommitted promote:n7 of its old term (a crash after
    // persisting, before sending); leader n2 of term 3 sent its no-op to learner n7 and then lost
    // its storage. n1 needed 3 of {n1, n2, n5, n7}, but n7's log (139, t3) was rightly more up to
    // date than n1's (139, t2); lagging n5 needed 3 of {n1, n2, n4, n5}; learner n7 cannot
    // campaign. With configurations that take effect when appended no leader is possible.
    what: "no storage loss while another member's log holds a different configuration",
    opts: { seed: 1023452, steps: 10_000, persistence: "sync" },
  },
];

describe("simulator regressions", () => {
  for (const r of REGRESSIONS) {
    it(`seed ${r.opts.seed}: ${r.what}`, { timeout: 60_000 }, () => {
      const result = runSeed(r.opts.seed, r.opts);
      assert.deepEqual(result.violations, []);
      assert.equal(result.livenessOk, true);
    });
  }

  it("a voter rejects a lower-term vote request with its own term (seed 113275, in miniature)", () => {
    const membership = { voters: ["a", "b", "c"], learners: [], removed: [] };
    const node = new RaftNode({ id: "a", random: () => 0 }, {
      hardState: { term: 9, vote: undefined, commit: 0 },
      snapshot: { meta: { index: 0, term: 0, membership }, data: new Uint8Array() },
      entries: [],
    });
    while (node.hasReady()) node.ready();
    node.step({ type: "vote", from: "b", to: "a", term: 4, lastIndex: 0, lastTerm: 0 });
    const out: RaftMessage[] = [];
    while (node.hasReady()) out.push(...node.ready().messages);
    assert.deepEqual(out, [{ type: "vote-response", from: "a", to: "b", term: 9, reject: true }]);
    assert.equal(node.term, 9, "the stale request changes nothing else");
  });

  it("a learner answers (pre-)votes by the log alone (seed 1023452, in miniature)", () => {
    // n7 is a learner in its own view, but a candidate's view may have promoted it: it answers.
    // Its last entry (139, t3) beats n1's (139, t2), so n1 is refused; an up-to-date candidate is not.
    const membership = { voters: ["n1", "n2", "n5"], learners: ["n7"], removed: [] };
    const node = new RaftNode({ id: "n7", random: () => 0 }, {
      hardState: { term: 3, vote: undefined, commit: 138 },
      snapshot: { meta: { index: 138, term: 2, membership }, data: new Uint8Array() },
      entries: [{ index: 139, term: 3, type: "noop", data: new Uint8Array() }],
    });
    while (node.hasReady()) node.ready();
    const out: RaftMessage[] = [];
    node.step({ type: "pre-vote", from: "n1", to: "n7", term: 4, lastIndex: 139, lastTerm: 2 });
    node.step({ type: "pre-vote", from: "n5", to: "n7", term: 4, lastIndex: 139, lastTerm: 3 });
    while (node.hasReady()) out.push(...node.ready().messages);
    assert.deepEqual(out, [
      { type: "pre-vote-response", from: "n7", to: "n1", term: 3, reject: true },
      { type: "pre-vote-response", from: "n7", to: "n5", term: 4, reject: false },
    ]);
    assert.equal(node.promotable, false, "still a learner in its own view: it never campaigns");
  });
});
