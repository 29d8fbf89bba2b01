import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Proposals, type ProposalSubmitter } from "../../src/cluster/proposals.ts";
import { HamokClosedError, HamokNoLeaderError, HamokOutcomeUnknownError } from "../../src/errors.ts";
import type { RaftNode } from "../../src/raft/raft_node.ts";
import type { ProposeResult } from "../../src/raft/types.ts";
import { REAL_SCHEDULER, type Scheduler, type TimerHandle } from "../../src/cluster/scheduler.ts";

/** A scheduler whose clock moves only by `advance`, counting the timers it ever armed. */
class ManualClock {
  time = 0;
  /** How far the monotonic clock reads behind the timers' own. */
  skew = 0;
  armed = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  readonly scheduler: Scheduler = {
    ...REAL_SCHEDULER,
    now: () => this.time,
    monotonicNow: () => this.time - this.skew,
    setTimeout: (fn: () => void, ms: number): TimerHandle => {
      this.armed++;
      const id = this.#next++;
      this.#timers.set(id, { at: this.time + ms, fn });
      return id;
    },
    clearTimeout: (handle: TimerHandle | undefined): void => {
      this.#timers.delete(handle as number);
    },
  };

  /** Timers armed and not yet fired or cleared. */
  get live(): number {
    return this.#timers.size;
  }

  /** Moves the clock by `ms`, firing every timer due on the way, in time order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (due === undefined || entry[1].at < due[1].at)) due = entry;
      }
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].fn();
    }
    this.time = end;
  }
}

/** Settles every promise in `list` and says which ones rejected, by name. */
async function rejected(list: Record<string, Promise<unknown>>): Promise<string[]> {
  const out: string[] = [];
  for (const [name, promise] of Object.entries(list)) {
    await promise.then(() => undefined, () => out.push(name));
  }
  return out;
}

/** A driver whose node answers every proposal with `answer` and records the request ids. */
function fakeDriver(answer: () => ProposeResult): { driver: ProposalSubmitter; proposed: string[] } {
  const proposed: string[] = [];
  const node = {
    propose(_data: Uint8Array, requestId?: string): ProposeResult {
      proposed.push(requestId ?? "");
      return answer();
    },
  } as unknown as RaftNode;
  return { driver: { run: (fn) => fn(node) }, proposed };
}

const appended = (): ProposeResult => ({ status: "appended", index: 1, term: 1 });
const forwarded = (): ProposeResult => ({ status: "forwarded", leaderId: "b" });
const dropped = (): ProposeResult => ({ status: "dropped", reason: "no-leader" });
const data = new Uint8Array([1]);

describe("Proposals", () => {
  it("submits at once when a leader is known and resolves with the applied result", async () => {
    const { driver, proposed } = fakeDriver(appended);
    const proposals = new Proposals(() => driver, 100);
    const result = proposals.add("r1", data, 5000);
    assert.deepEqual(proposed, ["r1"]);
    assert.equal(proposals.has("r1"), true);
    proposals.applied("r1", "old-value");
    assert.equal(await result, "old-value");
    assert.equal(proposals.size, 0);
    proposals.applied("r1", "again"); // no longer pending: ignored
  });

  it("waits without a leader and submits everything when one becomes known", async () => {
    const { driver, proposed } = fakeDriver(forwarded);
    let leaderKnown = false;
    const proposals = new Proposals(() => (leaderKnown ? driver : undefined), 100);
    const a = proposals.add("a", data, 5000);
    const b = proposals.add("b", data, 5000);
    assert.deepEqual(proposed, []);
    leaderKnown = true;
    proposals.resubmitAll();
    assert.deepEqual(proposed, ["a", "b"]);
    proposals.applied("a", 1);
    proposals.applied("b", 2);
    assert.deepEqual(await Promise.all([a, b]), [1, 2]);
  });

  it("times out with HamokNoLeaderError when no leader ever took the proposal", async () => {
    const { driver } = fakeDriver(dropped);
    const proposals = new Proposals(() => driver, 100);
    await assert.rejects(proposals.add("r1", data, 5), (error: unknown) => {
      assert.ok(error instanceof HamokNoLeaderError);
      assert.match(error.message, /no leader accepted request r1 within 5 ms/);
      return true;
    });
    assert.equal(proposals.size, 0);
  });

  it("times out with HamokOutcomeUnknownError once a leader may have taken it", async () => {
    const { driver } = fakeDriver(forwarded);
    const proposals = new Proposals(() => driver, 100);
    await assert.rejects(proposals.add("r1", data, 5), (error: unknown) => {
      assert.ok(error instanceof HamokOutcomeUnknownError);
      assert.match(error.message, /may still be applied/);
      return true;
    });
  });

  it("retries only what is not in this peer's own log, and only after retryMs", async () => {
    let answer = forwarded;
    const { driver, proposed } = fakeDriver(() => answer());
    const proposals = new Proposals(() => driver, 100);
    const forwardedOne = proposals.add("fwd", data, 5000);
    answer = appended;
    const ownOne = proposals.add("own", data, 5000);
    assert.deepEqual(proposed, ["fwd", "own"]);
    const now = performance.now();
    proposals.retryLost(now); // too early
    assert.deepEqual(proposed, ["fwd", "own"]);
    proposals.retryLost(now + 1000);
    assert.deepEqual(proposed, ["fwd", "own", "fwd"]);
    proposals.close();
    await assert.rejects(forwardedOne, HamokClosedError);
    await assert.rejects(ownOne, HamokClosedError);
  });

  it("rejects everything pending with HamokClosedError on close", async () => {
    const proposals = new Proposals(() => undefined, 100);
    const a = proposals.add("a", data, 5000);
    proposals.close();
    await assert.rejects(a, (error: unknown) => {
      assert.ok(error instanceof HamokClosedError);
      assert.match(error.message, /while a proposal was pending/);
      assert.equal(error.requestId, "a"); // retryable by request id, like an outcome-unknown write
      return true;
    });
    assert.equal(proposals.size, 0);
  });

  it("shares one timer among many proposals and still times each one out at its own deadline", async () => {
    const clock = new ManualClock();
    const { driver } = fakeDriver(forwarded);
    const proposals = new Proposals(() => driver, 100, undefined, clock.scheduler);
    const all: Record<string, Promise<unknown>> = {};
    for (let i = 0; i < 50; i++) {
      all[`r${i}`] = proposals.add(`r${i}`, data, 1000);
      clock.advance(10); // r0 at 0, r1 at 10, ... r49 at 490
    }
    assert.equal(clock.armed, 1, "one timer for fifty proposals with the same timeout");
    for (let i = 0; i < 50; i += 2) proposals.applied(`r${i}`, i); // the even ones, r0 included
    clock.advance(1000 - 500 + 5); // t = 1005: r1 (deadline 1010) is not due yet
    assert.equal(proposals.size, 25);
    clock.advance(10); // t = 1015: r1 is due
    assert.equal(proposals.has("r1"), false);
    assert.equal(proposals.has("r3"), true);
    clock.advance(500);
    assert.equal(proposals.size, 0);
    const failed = await rejected(all);
    assert.deepEqual(failed, Array.from({ length: 25 }, (_, k) => `r${2 * k + 1}`));
    assert.equal(clock.live, 0, "nothing pending: the timer is not re-armed");
  });

  it("times out a shorter timeout added after a longer one first", async () => {
    const clock = new ManualClock();
    const { driver } = fakeDriver(appended);
    const proposals = new Proposals(() => driver, 100, undefined, clock.scheduler);
    const long = proposals.add("long", data, 5000);
    const mid = proposals.add("mid", data, 3000);
    const short = proposals.add("short", data, 100);
    clock.advance(150);
    assert.deepEqual([proposals.has("long"), proposals.has("mid"), proposals.has("short")], [
      true,
      true,
      false,
    ]);
    await assert.rejects(short, HamokOutcomeUnknownError);
    clock.advance(2900); // t = 3050
    assert.deepEqual([proposals.has("long"), proposals.has("mid")], [true, false]);
    await assert.rejects(mid, HamokOutcomeUnknownError);
    proposals.applied("long", "done");
    assert.equal(await long, "done");
    clock.advance(5000);
    assert.equal(clock.live, 0);
  });

  it("re-arms when its timer fires early by the monotonic clock", async () => {
    const clock = new ManualClock();
    const { driver } = fakeDriver(dropped);
    const proposals = new Proposals(() => driver, 100, undefined, clock.scheduler);
    const late = proposals.add("late", data, 100);
    clock.skew = 0.5; // the monotonic clock reads a little behind the timers' own
    clock.advance(100); // the timer fires at 99.5 by the monotonic clock
    assert.equal(proposals.has("late"), true);
    assert.equal(clock.armed, 2, "re-armed for the rest");
    clock.advance(1);
    assert.equal(proposals.has("late"), false);
    await assert.rejects(late, HamokNoLeaderError);
  });

  it("close stops the shared timer", async () => {
    const clock = new ManualClock();
    const proposals = new Proposals(() => undefined, 100, undefined, clock.scheduler);
    const pending = proposals.add("a", data, 1000).catch(() => "closed");
    assert.equal(clock.live, 1);
    proposals.close();
    assert.equal(clock.live, 0);
    assert.equal(await pending, "closed");
  });
});
