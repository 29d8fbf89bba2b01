import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Waiters } from "../../src/cluster/waiters.ts";
import { HamokAbortedError, HamokClosedError, HamokTimeoutError } from "../../src/errors.ts";

describe("Waiters", () => {
  it("resolves at once when the condition already holds", async () => {
    const waiters = new Waiters(() => false);
    await waiters.waitFor(() => true, 1000, "nothing");
    assert.equal(waiters.size, 0);
  });

  it("resolves a wait on the check after its condition became true, and only that wait", async () => {
    const waiters = new Waiters(() => false);
    let leader = "";
    let applied = 0;
    const order: string[] = [];
    const leaderKnown = waiters.waitFor(() => leader !== "", 5000, "a leader").then(() =>
      order.push("leader")
    );
    const appliedTwo = waiters.waitFor(() => applied >= 2, 5000, "index 2").then(() => order.push("applied"));
    waiters.check();
    assert.equal(waiters.size, 2);
    leader = "b";
    waiters.check();
    await leaderKnown;
    assert.deepEqual(order, ["leader"]);
    assert.equal(waiters.size, 1);
    applied = 2;
    waiters.check();
    await appliedTwo;
    assert.deepEqual(order, ["leader", "applied"]);
    assert.equal(waiters.size, 0);
  });

  it("rejects with HamokTimeoutError naming the condition once the timeout passes", async () => {
    const waiters = new Waiters(() => false);
    await assert.rejects(waiters.waitFor(() => false, 5, "a leader"), (error: unknown) => {
      assert.ok(error instanceof HamokTimeoutError);
      assert.match(error.message, /waiting for a leader timed out after 5 ms/);
      return true;
    });
    assert.equal(waiters.size, 0);
  });

  it("rejects with the abort reason when the signal aborts, and forgets the wait", async () => {
    const waiters = new Waiters(() => false);
    const abort = new AbortController();
    const wait = waiters.waitFor(() => false, 5000, "membership", abort.signal);
    abort.abort("stop");
    await assert.rejects(wait, (error: unknown) => {
      assert.ok(error instanceof HamokAbortedError);
      assert.equal(error.cause, "stop");
      return true;
    });
    assert.equal(waiters.size, 0);
  });

  it("passes a HamokError abort reason through unchanged", async () => {
    const waiters = new Waiters(() => false);
    const abort = new AbortController();
    const reason = new HamokClosedError("the peer closed");
    const wait = waiters.waitFor(() => false, 5000, "membership", abort.signal);
    abort.abort(reason);
    await assert.rejects(wait, (error: unknown) => error === reason);
  });

  it("rejects every pending wait with HamokClosedError on close", async () => {
    const waiters = new Waiters(() => false);
    const a = waiters.waitFor(() => false, 5000, "a leader");
    const b = waiters.waitFor(() => false, 5000, "membership");
    waiters.close();
    await assert.rejects(a, (error: unknown) => {
      assert.ok(error instanceof HamokClosedError);
      assert.match(error.message, /while waiting for a leader/);
      return true;
    });
    await assert.rejects(b, /while waiting for membership/);
    assert.equal(waiters.size, 0);
  });

  it("refuses new waits once the owner is closed, unless the condition already holds", async () => {
    let closed = false;
    const waiters = new Waiters(() => closed);
    closed = true;
    await assert.rejects(waiters.waitFor(() => false, 5000, "x"), (error: unknown) => {
      assert.ok(error instanceof HamokClosedError);
      assert.equal(error.message, "the peer is closed");
      return true;
    });
    await waiters.waitFor(() => true, 5000, "x");
  });

  it("does not settle a resolved wait again when the signal aborts later", async () => {
    const waiters = new Waiters(() => false);
    const abort = new AbortController();
    let ok = false;
    const wait = waiters.waitFor(() => ok, 5000, "x", abort.signal);
    ok = true;
    waiters.check();
    await wait;
    abort.abort("late");
    waiters.close();
    await wait; // still resolved
  });
});
