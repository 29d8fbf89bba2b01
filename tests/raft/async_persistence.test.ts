import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RaftNode } from "../../src/raft/raft_node.ts";
import type { RaftConfig, RaftMessage, RaftReady } from "../../src/raft/types.ts";
import { bootstrapSnapshot, cmd } from "../_helpers/raft_harness.ts";

/**
 * The leader writes its log in parallel with replicating it (RaftConfig.asyncPersistence): its
 * appends may leave before the batch is durable, and it counts its own entries toward a commit only
 * once `persisted()` reports them durable.
 */

const VOTERS = ["a", "b", "c"];

function node(id: string, voters: readonly string[] = VOTERS, extra: Partial<RaftConfig> = {}): RaftNode {
  return new RaftNode({ id, random: () => 0, asyncPersistence: true, ...extra }, {
    hardState: { term: 0, vote: undefined, commit: 0 },
    snapshot: bootstrapSnapshot(voters),
    entries: [],
  });
}

/** Drains one node, acting like a driver that persists at once; returns every message it sent. */
function drain(n: RaftNode): RaftMessage[] {
  const out: RaftMessage[] = [];
  while (n.hasReady()) {
    const rd = n.ready();
    out.push(...rd.earlyMessages);
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) n.persisted(last.index, last.term);
    out.push(...rd.messages);
  }
  return out;
}

/** Elects `a` among a, b, c (everything persisted at once), and settles its no-op everywhere. */
function cluster(): Map<string, RaftNode> {
  const nodes = new Map(VOTERS.map((id) => [id, node(id)]));
  nodes.get("a")!.campaign();
  let queue = drain(nodes.get("a")!);
  for (let round = 0; round < 20 && queue.length > 0; round++) {
    const next: RaftMessage[] = [];
    for (const m of queue) {
      const to = nodes.get(m.to)!;
      to.step(m);
      next.push(...drain(to));
    }
    queue = next;
  }
  assert.equal(nodes.get("a")!.role, "leader");
  return nodes;
}

function responsesTo(n: RaftNode, msgs: readonly RaftMessage[]): RaftMessage[] {
  for (const m of msgs) n.step(m);
  return drain(n);
}

describe("asynchronous persistence in the core", () => {
  it("a leader's appends leave before its batch is persisted; its own entries count only once durable", () => {
    const nodes = cluster();
    const a = nodes.get("a")!;
    const before = a.commitIndex;
    const res = a.propose(cmd("x"));
    assert.equal(res.status, "appended");
    const index = (res as { index: number }).index;
    const rd = a.ready();
    assert.deepEqual(rd.entries.map((e) => e.index), [index]);
    // the appends to both followers are early; nothing waits in `messages`
    assert.deepEqual(rd.earlyMessages.map((m) => `${m.type}->${m.to}`).sort(), ["append->b", "append->c"]);
    assert.equal(rd.messages.length, 0);
    // b acknowledges while a's own write is still in flight: one of three is no quorum
    const fromB = responsesTo(nodes.get("b")!, rd.earlyMessages.filter((m) => m.to === "b"));
    for (const m of fromB) a.step(m);
    assert.equal(
      a.commitIndex,
      before,
      "committed on one follower's ack without the leader's own durable copy",
    );
    assert.equal(a.progress.get("a")!.match, index - 1);
    // a's write becomes durable: now two of three hold it
    a.persisted(index, a.term);
    assert.equal(a.commitIndex, index);
    assert.equal(a.progress.get("a")!.match, index);
  });

  it("two followers commit an entry that the leader has not made durable yet", () => {
    const nodes = cluster();
    const a = nodes.get("a")!;
    const res = a.propose(cmd("y")) as { index: number };
    const rd = a.ready();
    for (const id of ["b", "c"]) {
      for (const m of responsesTo(nodes.get(id)!, rd.earlyMessages.filter((m) => m.to === id))) a.step(m);
    }
    assert.equal(a.commitIndex, res.index);
    assert.equal(a.persistedIndex, res.index - 1);
  });

  it("an append sent before the leader's write is durable tells followers only what is durable", () => {
    const nodes = cluster();
    const a = nodes.get("a")!;
    const first = a.propose(cmd("p")) as { index: number };
    const rd = a.ready();
    const early = rd.earlyMessages.filter((m) => m.to === "b");
    assert.ok(
      early.every((m) => m.type === "append" && m.leaderMatch === undefined),
      "nothing durable beyond the commit index",
    );
    const b = nodes.get("b")!;
    responsesTo(b, early);
    assert.equal(b.commitIndex, first.index - 1, "b alone does not make a majority");
    a.persisted(first.index, a.term);
    a.propose(cmd("q"));
    const next = a.ready().earlyMessages.filter((m) => m.to === "b");
    assert.deepEqual(next.map((m) => m.type === "append" && m.leaderMatch), [first.index]);
    responsesTo(b, next);
    assert.equal(b.commitIndex, first.index, "p is durable on a and b; q only on b so far");
  });

  it("a lone voter commits its entry only after persisted()", () => {
    const a = node("a", ["a"]);
    a.campaign();
    const first = a.ready();
    assert.equal(a.role, "leader");
    assert.equal(first.committed.length, 0, "the no-op committed before it was durable");
    const noop = first.entries[first.entries.length - 1]!;
    a.persisted(noop.index, noop.term);
    assert.equal(a.commitIndex, noop.index);
    const second = a.ready();
    assert.deepEqual(second.committed.map((e) => e.index), [noop.index]);
  });

  it("the testing bug self-ack-on-append counts the leader's entry on append", () => {
    const a = node("a", ["a"], { testingBugs: ["self-ack-on-append"] });
    a.campaign();
    const rd = a.ready();
    assert.equal(rd.committed.length, 1, "the broken variant should commit the no-op before persisted()");
  });

  it("a report about an entry that is no longer in the log (another term) is ignored", () => {
    const nodes = cluster();
    const a = nodes.get("a")!;
    const res = a.propose(cmd("z")) as { index: number; term: number };
    a.ready();
    a.persisted(res.index, res.term + 1);
    assert.equal(a.persistedIndex, res.index - 1);
    a.persisted(res.index + 5, res.term);
    assert.equal(a.persistedIndex, res.index - 1, "an index beyond what was handed out counts as durable");
    a.persisted(res.index, res.term);
    assert.equal(a.persistedIndex, res.index);
  });

  it("a batch that changes term or vote sends nothing early", () => {
    const b = node("b");
    b.campaign(); // pre-vote: no term change yet, but a vote request is never early
    let rd: RaftReady = b.ready();
    assert.equal(rd.earlyMessages.length, 0);
    assert.ok(rd.messages.every((m) => m.type === "pre-vote"));
    const c = node("c", VOTERS, { preVote: false });
    c.campaign();
    rd = c.ready();
    assert.equal(rd.hardState?.vote, "c");
    assert.equal(rd.earlyMessages.length, 0);
    assert.deepEqual(rd.messages.map((m) => m.type), ["vote", "vote"]);
  });

  it("a new leader in a batch that also persists its vote holds its appends back", () => {
    // a lone voter with a learner elects itself at once: its new term and vote and its first
    // append to the learner land in one batch, and the append must wait until the term is durable
    const b = new RaftNode({ id: "b", random: () => 0, asyncPersistence: true }, {
      hardState: { term: 0, vote: undefined, commit: 0 },
      snapshot: {
        meta: { index: 0, term: 0, membership: { voters: ["b"], learners: ["l"], removed: [] } },
        data: new Uint8Array(),
      },
      entries: [],
    });
    b.campaign();
    assert.equal(b.role, "leader");
    const rd = b.ready();
    assert.equal(rd.hardState?.term, 1);
    assert.equal(rd.earlyMessages.length, 0);
    assert.ok(rd.messages.some((m) => m.type === "append" && m.to === "l"));
  });

  it("a follower's acknowledgements always wait for its batch to be persisted", () => {
    const nodes = cluster();
    const a = nodes.get("a")!;
    a.propose(cmd("w"));
    const rd = a.ready();
    const b = nodes.get("b")!;
    for (const m of rd.earlyMessages.filter((m) => m.to === "b")) b.step(m);
    const rb = b.ready();
    assert.equal(rb.earlyMessages.length, 0);
    assert.deepEqual(rb.messages.map((m) => m.type), ["append-response"]);
    assert.ok(rb.entries.length > 0);
  });

  it("without asyncPersistence nothing is early and the leader counts itself on append (unchanged)", () => {
    const a = new RaftNode({ id: "a", random: () => 0 }, {
      hardState: { term: 0, vote: undefined, commit: 0 },
      snapshot: bootstrapSnapshot(["a"]),
      entries: [],
    });
    a.campaign();
    const rd = a.ready();
    assert.equal(rd.earlyMessages.length, 0);
    assert.equal(rd.committed.length, 1);
  });
});
