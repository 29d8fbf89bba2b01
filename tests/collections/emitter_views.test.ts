/**
 * Emitter views opened again in one process, and client publishes through a member: the event
 * sequence (and with it the acknowledgement id) belongs to the peer, not to a view, so a view opened
 * again never repeats one, and client publishes share the peer's publisher without touching the
 * application's view.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { HamokClient, type HamokLogger } from "../../mod.ts";
import { REAL_SCHEDULER, type Scheduler } from "../../src/cluster/scheduler.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

type Events = { e: [string] };

/** A scheduler whose wall clock the test sets (timers and the monotonic clock stay real). */
function steppedClock(): { scheduler: Scheduler; set(ms: number | undefined): void } {
  let fixed: number | undefined;
  return {
    scheduler: { ...REAL_SCHEDULER, now: () => fixed ?? REAL_SCHEDULER.now() },
    set: (ms) => (fixed = ms),
  };
}

describe("emitter views opened again", () => {
  it("a view opened again after the clock went back is delivered and acknowledged", async () => {
    const clock = steppedClock();
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["b", "c"]);
    const a = await cluster.add("a", { scheduler: clock.scheduler });
    try {
      await a.join({ timeoutMs: 10_000 });
      const b = cluster.peers[0];
      const got: string[] = [];
      await b.createEmitter<Events>({ emitterId: "ev" }).subscribe("e", (t) => void got.push(t));
      await a.waitUntilCommitHead();
      const first = a.createEmitter<Events>({ emitterId: "ev", requestTimeoutInMs: 2000 });
      assert.deepEqual(await first.publish("e", "one"), ["b"]);
      first.close();
      clock.set(REAL_SCHEDULER.now() - 60_000); // the host clock steps back a minute
      const again = a.createEmitter<Events>({ emitterId: "ev", requestTimeoutInMs: 2000 });
      // the old view's sequences were per view: these were dropped as stale and timed out
      assert.deepEqual(await again.publish("e", "two"), ["b"]);
      assert.deepEqual(await again.publish("e", "three"), ["b"]);
      assert.deepEqual(got, ["one", "two", "three"]);
    } finally {
      await cluster.close();
    }
  });

  it("a view opened again within the same millisecond is acknowledged for its own event only", async () => {
    const clock = steppedClock();
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["b", "c"]);
    const a = await cluster.add("a", { scheduler: clock.scheduler });
    try {
      await a.join({ timeoutMs: 10_000 });
      const b = cluster.peers[0];
      const got: string[] = [];
      await b.createEmitter<Events>({ emitterId: "ev" }).subscribe("e", (t) => void got.push(t));
      await a.waitUntilCommitHead();
      clock.set(REAL_SCHEDULER.now()); // every view opens in the same millisecond
      for (let round = 0; round < 5; round++) {
        const old = a.createEmitter<Events>({ emitterId: "ev", requestTimeoutInMs: 2000 });
        const closed = old.publish("e", `old-${round}`).then(() => "resolved", (e) => (e as Error).name);
        old.close();
        const view = a.createEmitter<Events>({ emitterId: "ev", requestTimeoutInMs: 2000 });
        // the old code gave the new event the old one's sequence and ack id: b dropped the event as
        // a duplicate and its ack of the old event resolved this publish
        assert.deepEqual(await view.publish("e", `new-${round}`), ["b"], `round ${round}`);
        assert.ok(got.includes(`new-${round}`), `round ${round}: b got ${got}`);
        assert.equal(await closed, "HamokClosedError");
        view.close();
      }
    } finally {
      await cluster.close();
    }
  });
});

describe("client publishes through a member with no view of the emitter", () => {
  it("back-to-back and overlapping publishes are all delivered, and the app's view stays its own", async () => {
    const clock = steppedClock();
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["b", "c"]);
    const a = await cluster.add("a", { scheduler: clock.scheduler });
    const transport = new MemoryTransport({ bus: factory.bus, id: "client" });
    const client = new HamokClient(transport, { clusterId: "test", timeoutMs: 3000 });
    try {
      await a.join({ timeoutMs: 10_000 });
      const b = cluster.peers[0];
      const got: string[] = [];
      await b.createEmitter<Events>({ emitterId: "ev" }).subscribe("e", (t) => void got.push(t));
      await a.waitUntilCommitHead();
      clock.set(REAL_SCHEDULER.now());
      // back to back in one millisecond: each went through a new emitter starting at the same sequence
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(await client.publish("a", "ev", "e", [`seq-${i}`]), ["b"]);
      }
      // overlapping: the first to finish closed the emitter under the second (HamokClosedError)
      const slow = factory.bus.delay({ from: "b", to: "a", ms: 60 });
      const first = client.publish("a", "ev", "e", ["conc-0"]);
      await waitFor(() => got.includes("conc-0"), { timeoutMs: 3000, message: "conc-0 delivered" });
      const second = client.publish("a", "ev", "e", ["conc-1"]);
      // meanwhile the application opens its own view of the id on a: the client's publisher was
      // registered as that view (createEmitter threw), and closing it closed the app's
      const app = a.createEmitter<Events>({ emitterId: "ev" });
      assert.deepEqual(await Promise.all([first, second]), [["b"], ["b"]]);
      slow.remove();
      assert.equal(app.closed, false);
      assert.deepEqual(await app.publish("e", "from-app"), ["b"]);
      assert.deepEqual(await client.publish("a", "ev", "e", ["through-app"]), ["b"]);
      assert.deepEqual(got.slice(10), ["conc-0", "conc-1", "from-app", "through-app"]);
      assert.deepEqual(got.slice(0, 10), Array.from({ length: 10 }, (_, i) => `seq-${i}`));
    } finally {
      client.close();
      await transport.close();
      await cluster.close();
    }
  });

  it("a publish to an emitter id nobody ever subscribed to resolves with no peers and makes no state", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b"]);
    const transport = new MemoryTransport({ bus: factory.bus, id: "client" });
    const client = new HamokClient(transport, { clusterId: "test", timeoutMs: 3000 });
    try {
      const [a] = cluster.peers;
      for (let i = 0; i < 20; i++) assert.deepEqual(await client.publish("a", `made-up-${i}`, "e", [i]), []);
      assert.deepEqual(a.export().emitters ?? [], []);
    } finally {
      client.close();
      await transport.close();
      await cluster.close();
    }
  });
});

describe("the subscription table follows the local listeners", () => {
  it("a subscribe that timed out but committed later is withdrawn; publishes stop waiting for it", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    try {
      const leader = await cluster.settled();
      const sub = cluster.peers.find((p) => p !== leader)!;
      const mine = sub.createEmitter<Events>({ emitterId: "ev", requestTimeoutInMs: 300 });
      const theirs = leader.createEmitter<Events>({ emitterId: "ev", requestTimeoutInMs: 800 });
      // the leader's messages reach the subscriber late: the command commits on the leader and the
      // third peer at once, the subscriber applies it only after its subscribe timed out
      const slow = factory.bus.delay({ from: leader.localPeerId, to: sub.localPeerId, ms: 500 });
      const outcome = await mine.subscribe("e", () => {}).then(() => "resolved", (e) => (e as Error).name);
      assert.equal(outcome, "HamokOutcomeUnknownError");
      assert.deepEqual(theirs.subscriptions.getPeerIds("e"), [sub.localPeerId], "committed all the same");
      slow.remove();
      // the old code left the entry for good: every publish of 'e' waited for the subscriber
      await waitFor(() => theirs.subscriptions.getPeerIds("e").length === 0, {
        timeoutMs: 5000,
        message: "the late subscription withdrawn",
      });
      assert.deepEqual(await theirs.publish("e", "x"), []);
      // a real subscription afterwards is untouched
      const got: string[] = [];
      await mine.subscribe("e", (t) => void got.push(t));
      assert.deepEqual(await theirs.publish("e", "y"), [sub.localPeerId]);
      assert.deepEqual(got, ["y"]);
    } finally {
      await cluster.close();
    }
  });
});

describe("subscriptions across a removal and a rejoin", () => {
  it("a subscriber removed as silent and rejoined automatically gets events again", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    try {
      const leader = await cluster.settled();
      const b = cluster.peers.find((p) => p !== leader)!;
      const got: number[] = [];
      await b.createEmitter<{ e: [number] }>({ emitterId: "ev" }).subscribe("e", (n) => void got.push(n));
      const ea = leader.createEmitter<{ e: [number] }>({ emitterId: "ev", requestTimeoutInMs: 2000 });
      assert.deepEqual(await ea.publish("e", 1), [b.localPeerId]);
      const others = cluster.peers.filter((p) => p !== b).map((p) => p.localPeerId);
      const cut = factory.bus.partition([b.localPeerId], others);
      await waitFor(() => !leader.remotePeerIds.has(b.localPeerId), {
        timeoutMs: 10_000,
        message: "b removed",
      });
      assert.deepEqual(ea.subscriptions.getPeerIds("e"), [], "its subscriptions went with it");
      cut.remove();
      // the old code rejoined with its listeners still attached but never registered them again
      await waitFor(() => ea.subscriptions.hasPeerOnEvent("e", b.localPeerId), {
        timeoutMs: 15_000,
        message: "b registered again after its rejoin",
      });
      assert.deepEqual(await ea.publish("e", 2), [b.localPeerId]);
      assert.deepEqual(got, [1, 2]);
    } finally {
      await cluster.close();
    }
  });
  it("a removal committed right behind a registration again is registered again too", async () => {
    const factory = memoryTransports();
    const cluster = await startCluster(factory, ["a", "b", "c"]);
    try {
      const leader = await cluster.settled();
      const a = cluster.peers.find((p) => p !== leader)!;
      const ea = a.createEmitter<{ e: [number] }>({ emitterId: "ev", requestTimeoutInMs: 2000 });
      const got: number[] = [];
      await ea.subscribe("e", (n) => void got.push(n));
      // Withdrawals of a's entry proposed under a's own peer id, as a previous process of the member
      // would: the first makes the view register "e" again; the second is submitted right behind
      // that registration, so both are applied in one batch while the registration is in flight.
      // deno-lint-ignore no-explicit-any
      const view = ea as any;
      const propose = view.proposeWith.bind(view);
      let raced = false;
      view.proposeWith = (op: string, args: unknown, options: unknown) => {
        const result = propose(op, args, options);
        if (op === "subscribe" && !raced) {
          raced = true;
          propose("unsubscribe", { event: "e" }, { timeoutMs: 2000 }).catch(() => {});
        }
        return result;
      };
      await propose("unsubscribe", { event: "e" }, { timeoutMs: 2000 });
      await waitFor(() => raced, { timeoutMs: 5000, message: "the view registered again" });
      // the old code dropped the second removal (a registration was in flight): a listened, unlisted
      await waitFor(() => ea.subscriptions.hasPeerOnEvent("e", a.localPeerId), {
        timeoutMs: 10_000,
        message: "a registered again after the second removal",
      });
      const eb = leader.createEmitter<{ e: [number] }>({ emitterId: "ev", requestTimeoutInMs: 2000 });
      await waitFor(() => eb.subscriptions.hasPeerOnEvent("e", a.localPeerId), { timeoutMs: 5000 });
      assert.deepEqual(await eb.publish("e", 1), [a.localPeerId]);
      assert.deepEqual(got, [1]);
    } finally {
      await cluster.close();
    }
  });
});

/** A logger that keeps the debug messages matching `pattern` (the view's failed reconciliations). */
function failureLog(pattern: RegExp): { failures: string[]; logger: HamokLogger } {
  const failures: string[] = [];
  const logger = {
    debug: (message: string) => void (pattern.test(message) && failures.push(message)),
    info() {},
    warn() {},
    error() {},
  };
  return { failures, logger };
}

describe("withdrawals that fail are not left to chance", () => {
  for (const how of ["close()", "clear()"] as const) {
    it(`a ${how} cut off from the cluster still withdraws the peer's subscriptions once it is back`, async () => {
      const factory = memoryTransports();
      const { failures, logger } = failureLog(/withdrawing/);
      const cluster = await startCluster(factory, ["a", "b", "c"], { logger });
      try {
        const leader = await cluster.settled();
        const [f, p] = cluster.peers.filter((peer) => peer !== leader);
        const ef = f!.createEmitter<{ ev: [number] }>({ emitterId: "e", requestTimeoutInMs: 500 });
        const ep = p!.createEmitter<{ ev: [number] }>({ emitterId: "e", requestTimeoutInMs: 500 });
        let calls = 0;
        await ef.subscribe("ev", () => void calls++);
        await p!.waitUntilCommitHead();
        assert.deepEqual(await ep.publish("ev", 0), [f!.localPeerId]);
        const cut = factory.bus.partition([f!.localPeerId], [leader.localPeerId, p!.localPeerId]);
        if (how === "close()") {
          ef.close();
          // heal only once the first withdrawal failed (it tried once, in the background)
          await waitFor(() => failures.length > 0, {
            timeoutMs: 5000,
            message: "the first withdrawal failed",
          });
        } else await assert.rejects(ef.clear());
        cut.remove();
        // the old code tried once: the peer stayed listed for good (close: every publish waited for
        // it and timed out; clear: it went on acknowledging with no listener)
        await waitFor(() => !ep.subscriptions.hasPeerOnEvent("ev", f!.localPeerId), {
          timeoutMs: 10_000,
          message: "the withdrawal retried",
        });
        assert.deepEqual(await ep.publish("ev", 1), []);
        assert.equal(calls, 1);
      } finally {
        await cluster.close();
      }
    });
  }
});

describe("withdrawals are retried for as long as the cut lasts", () => {
  for (const how of ["unsubscribe()", "clear()", "close() and a new view"] as const) {
    it(`${how} while cut off for several attempts: the peer is withdrawn once it is back`, async () => {
      const factory = memoryTransports();
      const { failures, logger } = failureLog(/withdrawing|registering/);
      const cluster = await startCluster(factory, ["a", "b", "c"], { logger });
      try {
        const leader = await cluster.settled();
        const [f, p] = cluster.peers.filter((peer) => peer !== leader);
        const ef = f!.createEmitter<{ ev: [number] }>({ emitterId: "e", requestTimeoutInMs: 300 });
        const ep = p!.createEmitter<{ ev: [number] }>({ emitterId: "e", requestTimeoutInMs: 500 });
        const listener = () => {};
        await ef.subscribe("ev", listener);
        await p!.waitUntilCommitHead();
        const cut = factory.bus.partition([f!.localPeerId], [leader.localPeerId, p!.localPeerId]);
        if (how === "unsubscribe()") await assert.rejects(ef.unsubscribe("ev", listener));
        else if (how === "clear()") await assert.rejects(ef.clear());
        else {
          ef.close();
          f!.createEmitter<{ ev: [number] }>({ emitterId: "e", requestTimeoutInMs: 300 });
        }
        // two more failed attempts while cut off: the old code tried once more at most, then gave up
        const before = failures.length;
        await waitFor(() => failures.length >= before + 2, {
          timeoutMs: 10_000,
          message: "retried while cut off",
        });
        cut.remove();
        await waitFor(() => !ep.subscriptions.hasPeerOnEvent("ev", f!.localPeerId), {
          timeoutMs: 10_000,
          message: "withdrawn once back",
        });
        assert.deepEqual(await ep.publish("ev", 1), []);
      } finally {
        await cluster.close();
      }
    });
  }
});
