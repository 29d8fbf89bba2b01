import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Entry, RaftReady } from "../../src/raft/types.ts";
import { SafetyChecker } from "./safety.ts";
import { SimStorage } from "./sim_storage.ts";

const enc = new TextEncoder();
const e = (index: number, term: number, text = `${index}/${term}`): Entry => ({
  index,
  term,
  type: "normal",
  data: enc.encode(text),
});
const ready = (entries: Entry[], extra: Partial<RaftReady> = {}): RaftReady => ({
  entries,
  restoreSnapshot: false,
  committed: [],
  messages: [],
  earlyMessages: [],
  readStates: [],
  droppedReads: [],
  ...extra,
});
const bootstrap = {
  meta: { index: 0, term: 0, membership: { voters: ["a", "b"], learners: [], removed: [] } },
  data: new Uint8Array(),
};

function setup() {
  const safety = new SafetyChecker(() => ({ time: 0, step: 0 }));
  const mk = (id: string) => {
    const st = new SimStorage(id, safety);
    st.bootstrap(bootstrap);
    return st;
  };
  return { safety, mk };
}

describe("SafetyChecker", () => {
  it("reports two leaders in one term, not one leader seen twice", () => {
    const { safety, mk } = setup();
    safety.onLeader("a", 1, mk("a"));
    safety.onLeader("a", 1, mk("a"));
    safety.onLeader("b", 2, mk("b"));
    assert.equal(safety.violations.length, 0);
    safety.onLeader("c", 1, mk("c"));
    assert.equal(safety.violations[0]?.kind, "election-safety");
  });

  it("accepts identical logs and overwrites of uncommitted suffixes", () => {
    const { safety, mk } = setup();
    const a = mk("a");
    const b = mk("b");
    a.persist(ready([e(1, 1), e(2, 1)]));
    b.persist(ready([e(1, 1), e(2, 1), e(3, 1)]));
    b.persist(ready([e(3, 2, "other")]));
    assert.equal(b.lastIndex, 3);
    assert.equal(b.entryAt(3)?.term, 2);
    assert.equal(safety.violations.length, 0);
  });

  it("reports the same (index, term) with a different entry or a different prefix", () => {
    {
      const { safety, mk } = setup();
      mk("a").persist(ready([e(1, 1, "x")]));
      mk("b").persist(ready([e(1, 1, "y")]));
      assert.equal(safety.violations[0]?.kind, "log-matching");
    }
    {
      const { safety, mk } = setup();
      mk("a").persist(ready([e(1, 1, "x"), e(2, 2)]));
      mk("b").persist(ready([e(1, 1, "y")]));
      assert.equal(safety.violations.length, 1);
    }
    {
      // Same entry at index 2, but the prefixes differ: a follower that skipped the prev check.
      const { safety, mk } = setup();
      mk("a").persist(ready([e(1, 1), e(2, 2)]));
      const b = mk("b");
      b.persist(ready([e(1, 2, "old leader")]));
      assert.equal(safety.violations.length, 0);
      b.persist(ready([e(2, 2)]));
      assert.equal(safety.violations[0]?.kind, "log-matching");
    }
  });

  it("reports a committed index holding two different entries", () => {
    const { safety } = setup();
    safety.onCommitted("a", e(1, 1, "x"));
    safety.onCommitted("b", e(1, 1, "x"));
    assert.equal(safety.violations.length, 0);
    safety.onCommitted("c", e(1, 2, "y"));
    assert.equal(safety.violations[0]?.kind, "state-machine-safety");
  });

  it("reports a later leader that lacks a committed entry", () => {
    const { safety, mk } = setup();
    const a = mk("a");
    a.persist(ready([e(1, 1), e(2, 1)]));
    safety.onCommitted("a", e(1, 1));
    safety.onCommitted("a", e(2, 1));
    const b = mk("b");
    b.persist(ready([e(1, 1), e(2, 1), e(3, 2)]));
    safety.onLeader("b", 2, b);
    assert.equal(safety.violations.length, 0);
    const c = mk("c");
    c.persist(ready([e(1, 1)]));
    safety.onLeader("c", 3, c);
    assert.equal(safety.violations[0]?.kind, "leader-completeness");
    const { safety: s2, mk: mk2 } = setup();
    s2.onCommitted("a", e(1, 1));
    const d = mk2("d");
    d.persist(ready([e(1, 2, "z")]));
    s2.onLeader("d", 2, d);
    assert.equal(s2.violations[0]?.kind, "leader-completeness");
  });

  it("compares applied chains across nodes and over time", () => {
    const { safety } = setup();
    safety.onApplied("a", 1, 111, "apply");
    safety.onApplied("b", 1, 111, "apply");
    safety.onApplied("a", 1, 111, "restore");
    assert.equal(safety.violations.length, 0);
    safety.onApplied("b", 1, 222, "restore");
    assert.equal(safety.violations[0]?.kind, "state-machine-safety");
  });
});

describe("SimStorage", () => {
  it("persists hard state, entries and snapshots and loads them back", () => {
    const { safety, mk } = setup();
    const st = mk("a");
    st.persist(ready([e(1, 1), e(2, 1), e(3, 1)], { hardState: { term: 1, vote: "a", commit: 2 } }));
    const snap = {
      meta: { index: 2, term: 1, membership: bootstrap.meta.membership },
      data: enc.encode("s"),
    };
    st.persist(ready([], { snapshot: snap }));
    const loaded = st.load();
    assert.deepEqual(loaded.hardState, { term: 1, vote: "a", commit: 2 });
    assert.equal(loaded.snapshot, snap);
    assert.deepEqual(loaded.entries.map((x) => x.index), [3]);
    assert.equal(st.chainAt(2), safety.chainAt(2, 1));
    // A snapshot that does not match the log replaces the whole log.
    const other = {
      meta: { index: 5, term: 3, membership: bootstrap.meta.membership },
      data: enc.encode("t"),
    };
    mk("b").persist(ready([e(1, 1), e(2, 1), e(3, 1), e(4, 3), e(5, 3)]));
    st.persist(ready([], { snapshot: other }));
    assert.equal(st.lastIndex, 5);
    assert.equal(st.load().entries.length, 0);
    assert.equal(safety.violations.length, 0);
  });

  it("reports a gap in the log as an invariant violation", () => {
    const { safety, mk } = setup();
    mk("a").persist(ready([e(2, 1)]));
    assert.equal(safety.violations[0]?.kind, "invariant");
  });

  it("reports a snapshot of an entry no log ever held", () => {
    const { safety, mk } = setup();
    const snap = {
      meta: { index: 4, term: 9, membership: bootstrap.meta.membership },
      data: enc.encode("s"),
    };
    mk("a").persist(ready([], { snapshot: snap }));
    assert.equal(safety.violations[0]?.kind, "invariant");
  });
});
