import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Entry, RaftTestingBug } from "../../src/raft/types.ts";
import { encodeState, type NodeRecord, RaftHarness, seededRandom } from "../_helpers/raft_harness.ts";

/**
 * A light randomized run of the core under message loss, duplication and reordering, partitions,
 * crashes with restart from storage, compaction, leadership transfer, reads and membership churn,
 * checking election safety and that every node applies the same entry at the same index. (The full
 * simulator with linearizability checking lives in tests/sim/.)
 */
export function run(
  seed: number,
  steps: number,
  testingBugs: RaftTestingBug[] = [],
): { applied: number; leaders: number; stats: Record<string, number> } {
  const rnd = seededRandom(seed);
  const options = { electionTicks: 6, maxEntriesPerAppend: 4, snapshotChunkBytes: 16, testingBugs };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)];
  const initial = rnd() < 0.5 ? ["n1", "n2", "n3"] : ["n1", "n2", "n3", "n4", "n5"];
  const h = RaftHarness.bootstrap(initial, options, seed);
  const leaderOfTerm = new Map<number, string>();
  const committed = new Map<number, string>();
  const checked = new WeakMap<NodeRecord, number>();
  const all = [...initial];
  const down = new Set<string>();
  let joined = 0;
  let proposals = 0;

  const key = (e: Entry) =>
    `${e.term}/${e.type}/${new TextDecoder().decode(e.data)}/${JSON.stringify(e.change ?? null)}`;
  const check = () => {
    for (const node of h.nodes.values()) {
      if (node.role !== "leader") continue;
      const known = leaderOfTerm.get(node.term);
      if (known === undefined) leaderOfTerm.set(node.term, node.id);
      else assert.equal(known, node.id, `seed ${seed}: two leaders in term ${node.term}`);
    }
    for (const [id, record] of h.records) {
      const done = checked.get(record) ?? 0;
      for (let i = done; i < record.applied.length; i++) {
        const entry = record.applied[i];
        const k = key(entry);
        const seen = committed.get(entry.index);
        if (seen === undefined) committed.set(entry.index, k);
        else assert.equal(k, seen, `seed ${seed}: ${id} applied a different entry at ${entry.index}`);
      }
      checked.set(record, record.applied.length);
    }
  };

  for (let step = 0; step < steps; step++) {
    const r = rnd();
    const live = [...h.nodes.keys()];
    if (r < 0.45 && h.outbox.length > 0) {
      const i = Math.floor(rnd() * Math.min(h.outbox.length, 6)); // mild reordering
      const [m] = h.outbox.splice(i, 1);
      const fate = rnd();
      if (fate < 0.08) continue; // dropped
      if (fate < 0.12) h.outbox.push(m); // duplicated
      h.deliver(m);
    } else if (r < 0.7) {
      const id = pick(live);
      h.node(id).tick();
      h.drain(id);
    } else if (r < 0.8) {
      const id = pick(live);
      h.node(id).propose(new TextEncoder().encode(`p${proposals++}`));
      h.drain(id);
    } else if (r < 0.83) {
      const a = pick(all);
      const b = pick(all);
      if (a !== b) h.disconnect(a, b);
    } else if (r < 0.87) {
      h.heal();
    } else if (r < 0.89 && live.length > 1) {
      const id = pick(live);
      h.crash(id, true);
      down.add(id);
    } else if (r < 0.92 && down.size > 0) {
      const id = pick([...down]);
      down.delete(id);
      h.start(id);
      h.drain(id);
    } else if (r < 0.95) {
      const id = pick(live);
      const node = h.node(id);
      if (node.appliedIndex > node.snapshotIndex) {
        node.compact(node.appliedIndex, encodeState(h.record(id).state));
        h.drain(id);
      }
    } else if (r < 0.96) {
      const leader = h.leaders()[0];
      if (leader !== undefined) {
        h.node(leader).transferLeadership(pick(all));
        h.drain(leader);
      }
    } else if (r < 0.98) {
      const id = pick(live);
      h.node(id).readIndex(`r${step}`);
      h.drain(id);
    } else {
      const leader = h.leaders()[0];
      if (leader !== undefined) {
        const node = h.node(leader);
        if (rnd() < 0.5 && joined < 2) {
          const id = `j${joined}`;
          if (node.proposeMembership({ type: "add-learner", memberId: id }).status === "appended") {
            joined++;
            all.push(id);
            h.addJoiner(id, options);
          }
        } else if (node.membership.voters.length > 3) {
          node.proposeMembership({ type: "remove", memberId: pick(node.membership.voters) });
        }
        h.drain(leader);
      }
    }
    check();
  }

  // Liveness: heal everything, restart everyone, and require a leader and a new commit.
  h.heal();
  for (const id of down) h.start(id);
  let leader: string | undefined;
  for (let round = 0; round < 400; round++) {
    h.tickAll(1);
    check();
    const leaders = h.leaders().filter((id) =>
      h.node(id).promotable && h.node(id).transferTarget === undefined
    );
    if (leaders.length === 1) {
      leader = leaders[0];
      break;
    }
  }
  assert.ok(leader !== undefined, `seed ${seed}: no leader after healing`);
  const marker = `final-${seed}`;
  const result = h.node(leader).propose(new TextEncoder().encode(marker));
  assert.equal(result.status, "appended", `seed ${seed}: final proposal ${JSON.stringify(result)}`);
  for (let round = 0; round < 50; round++) h.tickAll(1);
  check();
  for (const id of h.node(leader).membership.voters) {
    const state = h.record(id).state;
    assert.equal(state.at(-1), marker, `seed ${seed}: voter ${id} did not apply the final proposal`);
  }
  const stats: Record<string, number> = {};
  for (const m of h.sent) stats[m.type] = (stats[m.type] ?? 0) + 1;
  for (const record of h.records.values()) stats.restored = (stats.restored ?? 0) + record.restored.length;
  stats.reads = [...h.records.values()].reduce((n, r) => n + r.readStates.length, 0);
  stats.joined = joined;
  return { applied: committed.size, leaders: leaderOfTerm.size, stats };
}

describe("randomized runs", () => {
  it("keep election safety and applied-entry agreement, and recover after healing", () => {
    let applied = 0;
    let leaders = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const result = run(seed, 600);
      applied += result.applied;
      leaders += result.leaders;
    }
    assert.ok(applied > 150 * 10, `entries were committed (${applied})`);
    assert.ok(leaders > 150, `several elections happened (${leaders})`);
  });

  it("the same checks catch a deliberately broken core (they have teeth)", () => {
    let caught = 0;
    for (let seed = 1; seed <= 50 && caught === 0; seed++) {
      try {
        run(seed, 1500, ["skip-prev-log-check"]);
      } catch (err) {
        assert.match(String(err), /applied a different entry|two leaders/);
        caught++;
      }
    }
    assert.equal(caught, 1);
  });
});
