/**
 * The whole-peer simulator over a fixed range of seeds (450 by default; CI gives each runtime its own
 * range with HAMOK_PEER_SIM_BASE), plus the seeds that found bugs, each a regression test.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runPeerSeed } from "./simulation.ts";

const base = Number(process.env.HAMOK_PEER_SIM_BASE ?? 1);
// 450, not 500, since half the seeds run on durable storage (about 11% more time per seed, measured
// over seeds 1-300): the sweep keeps the duration it had
const count = Number(process.env.HAMOK_PEER_SIM_SEEDS ?? 450);
// the discovery mode (default discovery, staggered starts, merges): about 75 ms a seed
const discoveryCount = Number(process.env.HAMOK_PEER_SIM_DISCOVERY_SEEDS ?? 100);

/**
 * Seeds that failed before a fix, with what they found; the workload they failed under (seeds
 * found before the record, remote map, queue and emitter workloads existed replay with the map's);
 * the storage (seeds found before the durable-storage mode replay on memory storage).
 */
const REGRESSIONS: readonly [
  seed: number,
  found: string,
  workload?: "map",
  storage?: "memory" | "durable",
  discovery?: "defaults",
][] = [
  [10082, "a lost read request held the read barrier of a join until its deadline", "map"],
  [10102, "a write in flight at the end of the run was missing from the history (simulator)", "map"],
  [20707, "a replacement peer cut off at its start bootstrapped a second cluster (expectedPeers)", "map"],
  [
    30585,
    "a repeated join request was answered before the change committed; the joiner waited forever",
    "map",
  ],
  [31547, "a duplicate id admitted after the original was cut off past peerTimeoutMs (simulator)", "map"],
  [
    42363,
    "a leader without an active majority appended a removal; a wiped voter then wedged the cluster",
    "map",
  ],
  [52380, "leave() resolved without a confirmed removal; the wiped member stayed a voter", "map"],
  [53321, "a joiner removed before it caught up asked again with its tombstoned id forever", "map"],
  [60164, "a peer restarted on a removed member's storage waited for its membership forever", "map"],
  // an unconfirmed leave whose application restarted the peer on its storage only after the heal:
  // it learns that its member was removed, starts over on a new storage and joins, but the check
  // ran before it could (simulator: every peer gets rejoinBoundMs to become a member again)
  [100334, "not a member after the heal: restarted late after an unconfirmed leave (simulator)", "map"],
  [108825, "the same, after a pause and a leave in a 5-peer cluster (simulator)", "map"],
  [115440, "the same, after partitions in a 5-peer cluster (simulator)", "map"],
  // duplicated and reordered events made a run of stale sequences, which re-based the publisher's
  // sequence and let an old event through after newer ones (emitter: sequences now start at the
  // publisher's clock, so a restart needs no re-basing, and stale events are always dropped)
  [216050, "emitter: an old event delivered after newer ones from the same publisher", undefined, "memory"],
  // a duplicate peer id admitted in place of a silent original was then killed as a member: with the
  // other voter it left a two-voter configuration without a quorum (simulator: an admitted duplicate
  // now leaves before it stops, as an application's instance would)
  [
    215714,
    "no quorum after the heal: an admitted duplicate killed as a member (simulator)",
    undefined,
    "memory",
  ],
  // the discovery mode: a newcomer whose join request to a paused leader went unanswered joined
  // another cluster; the paused leader then added the same member id, and the newcomer followed
  // both leaders (it trusted the members that had answered its hellos, whatever their cluster)
  [
    153,
    "discovery: one member id in two clusters (a stale join request answered)",
    undefined,
    undefined,
    "defaults",
  ],
  [
    228,
    "discovery: the same, the member followed the other cluster's leader",
    undefined,
    undefined,
    "defaults",
  ],
  [284, "discovery: the same, after pauses of two peers", undefined, undefined, "defaults"],
  // a lone peer admitted another lone one, which merged elsewhere and was removed for silence; the
  // removal left in its membership kept it from ever counting as lone again, so it stayed apart
  [
    502,
    "discovery: a lone peer whose only other member was removed merges",
    undefined,
    undefined,
    "defaults",
  ],
  // a newcomer paused before its join asked a leader, then abandoned that request when the other
  // cluster of the name was named: both added it, and it followed both leaders in turn
  [
    424,
    "discovery: a join request is not abandoned for another cluster's leader; its members' messages are dropped",
    undefined,
    undefined,
    "defaults",
  ],
  // a newcomer added to one cluster (catching up, not yet a member) asked the other one's leader
  // after its request timed out, and took entries from both
  [
    2077,
    "discovery: a joiner holding one cluster's configuration asks only that cluster",
    undefined,
    undefined,
    "defaults",
  ],
  // a leader cut off from the others appended the removal of a silent voter, then lost its term;
  // the two others went on without that entry. Once the one it named had to be elected with its
  // vote, it ignored that voter's vote requests, as if the removal had committed: no leader, ever
  [890768, "a removal that never committed kept a voter from being elected (Raft core)"],
  // the checker, not the library: a member of a cluster removed before the end (paused past the
  // peer timeout) had its operations checked apart from its cluster's, by the final memberships, and
  // its interleaved compare-and-sets looked impossible; histories now go by cluster identity
  [
    32865,
    "discovery: a member removed before the end is checked with its cluster's history",
    undefined,
    undefined,
    "defaults",
  ],
];

describe("whole-peer simulator sweep", () => {
  for (const [seed, found, workload, storage, discovery] of REGRESSIONS) {
    it(`regression seed ${seed}: ${found}`, { timeout: 60_000 }, async () => {
      const r = await runPeerSeed(seed, { workload, storage, discovery });
      const replay = `deno task sim:peer --seed ${seed}${workload ? ` --workload ${workload}` : ""}${
        storage ? ` --storage ${storage}` : ""
      }${discovery ? ` --discovery ${discovery}` : ""}`;
      assert.deepEqual(r.violations, [], `replay: ${replay}`);
    });
  }

  // in slices of 100 seeds, so that no single test runs for long (Bun limits each test's time)
  for (let from = base; from < base + count; from += 100) {
    const to = Math.min(base + count, from + 100) - 1;
    it(`seeds ${from}-${to} pass every check`, { timeout: 300_000 }, async () => {
      const failed: string[] = [];
      for (let seed = from; seed <= to; seed++) {
        const r = await runPeerSeed(seed, {});
        if (r.violations.length > 0) {
          failed.push(
            `seed ${seed}: ${r.violations[0]!.slice(0, 300)} (replay: deno task sim:peer --seed ${seed})`,
          );
        }
      }
      assert.deepEqual(failed, []);
    });
  }

  for (let from = base; from < base + discoveryCount; from += 100) {
    const to = Math.min(base + discoveryCount, from + 100) - 1;
    it(`discovery mode: seeds ${from}-${to} pass every check`, { timeout: 300_000 }, async () => {
      const failed: string[] = [];
      let merges = 0;
      for (let seed = from; seed <= to; seed++) {
        const r = await runPeerSeed(seed, { discovery: "defaults" });
        merges += r.merges;
        if (r.violations.length > 0) {
          failed.push(
            `seed ${seed}: ${
              r.violations[0]!.slice(0, 300)
            } (replay: deno task sim:peer --seed ${seed} --discovery defaults)`,
          );
        }
      }
      assert.deepEqual(failed, []);
      assert.ok(merges > 0, "some lone bootstrap merged");
    });
  }
});
