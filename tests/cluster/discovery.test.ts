import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Discovery, DISCOVERY_ROUNDS, type DiscoveryHost } from "../../src/cluster/discovery.ts";
import type { HelloBody } from "../../src/codec/envelope.ts";
import { HamokAbortedError, HamokTimeoutError } from "../../src/errors.ts";
import { REAL_SCHEDULER } from "../../src/cluster/scheduler.ts";

const silent = { debug() {} };

interface FakeHost extends DiscoveryHost {
  /** Hellos published: [to (undefined: broadcast), body]. */
  readonly sent: [string | undefined, HelloBody][];
  readonly joinRequests: string[];
  bootstrapped: number;
  member: boolean;
  readonly errors: Error[];
}

/**
 * A host whose `onPublish` runs after every published hello (to play the other peers) and whose
 * join requests are answered by `join`.
 */
function fakeHost(
  options: {
    onPublish?: (to: string | undefined) => void;
    join?: (leaderMemberId: string) => Promise<unknown>;
  } = {},
): FakeHost {
  const host: FakeHost = {
    sent: [],
    joinRequests: [],
    bootstrapped: 0,
    member: false,
    errors: [],
    hello: () => ({ clusterId: "c", peerId: "b", memberId: "b-1", term: 0, joined: host.member }),
    isMember: () => host.member,
    inCluster: () => host.member,
    publish: (hello, to) => {
      host.sent.push([to, hello]);
      options.onPublish?.(to);
    },
    reportError: (error) => {
      host.errors.push(error);
    },
    requestJoin: (leaderMemberId) => {
      host.joinRequests.push(leaderMemberId);
      return options.join?.(leaderMemberId) ?? Promise.resolve();
    },
    bootstrap: () => {
      host.bootstrapped++;
    },
  };
  return host;
}

const options = { peerId: "b", clusterId: "c", discoveryMs: 20, requestTimeoutMs: 1000, logger: silent };
const newcomer = (peerId: string): HelloBody => ({
  clusterId: "c",
  peerId,
  memberId: `${peerId}-1`,
  term: 0,
  joined: false,
});
const member = (peerId: string, leaderId?: string): HelloBody => ({
  clusterId: "c",
  peerId,
  memberId: `${peerId}-1`,
  leaderId,
  term: 3,
  joined: true,
});

describe("Discovery", () => {
  it("bootstraps after discoveryMs when nobody answers, having broadcast its hello", async () => {
    const host = fakeHost();
    await new Discovery(options, host).discover(performance.now() + 5000, new AbortController().signal);
    assert.equal(host.bootstrapped, 1);
    // one hello per round, and a bootstrap only after DISCOVERY_ROUNDS silent ones
    assert.ok(host.sent.length >= DISCOVERY_ROUNDS, `${host.sent.length} hellos`);
    assert.deepEqual(host.sent[0], [undefined, {
      clusterId: "c",
      peerId: "b",
      memberId: "b-1",
      term: 0,
      joined: false,
    }]);
    assert.deepEqual(host.joinRequests, []);
  });

  it("bootstraps when the only other newcomer has a larger peer id", async () => {
    const host = fakeHost({ onPublish: () => discovery.onHello(newcomer("c")) });
    const discovery = new Discovery(options, host);
    await discovery.discover(performance.now() + 5000, new AbortController().signal);
    assert.equal(host.bootstrapped, 1);
  });

  it("leaves bootstrapping to a newcomer with a smaller peer id (and times out without a cluster)", async () => {
    const host = fakeHost({ onPublish: () => discovery.onHello(newcomer("a")) });
    const discovery = new Discovery(options, host);
    await assert.rejects(
      discovery.discover(performance.now() + 150, new AbortController().signal),
      (error: unknown) => {
        assert.ok(error instanceof HamokTimeoutError);
        assert.match(error.message, /no cluster could be joined in time/);
        return true;
      },
    );
    assert.equal(host.bootstrapped, 0);
  });

  it("joins through the leader a member's hello names, without bootstrapping", async () => {
    const host = fakeHost({ onPublish: () => discovery.onHello(member("a", "a-1")) });
    const discovery = new Discovery(options, host);
    await discovery.discover(performance.now() + 5000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, ["a-1"]);
    assert.equal(host.bootstrapped, 0);
  });

  it("does not bootstrap while members are around, even before the leader is known", async () => {
    const host = fakeHost({ onPublish: () => discovery.onHello(member("z")) });
    const discovery = new Discovery(options, host);
    await assert.rejects(
      discovery.discover(performance.now() + 150, new AbortController().signal),
      HamokTimeoutError,
    );
    assert.equal(host.bootstrapped, 0);
  });

  it("forgets a leader whose join request failed and joins through the next one announced", async () => {
    let leader = "a-1";
    const host = fakeHost({
      onPublish: () => discovery.onHello(member("a", leader)),
      join: (leaderMemberId) => {
        if (leaderMemberId === "a-1") {
          leader = "d-1"; // the cluster moved on: members now name d
          return Promise.reject(new Error("not the leader"));
        }
        return Promise.resolve();
      },
    });
    const discovery = new Discovery(options, host);
    // the first hello is published before discover() runs, so the leader is known at once
    discovery.onHello(member("a", "a-1"));
    await discovery.discover(performance.now() + 5000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, ["a-1", "d-1"]);
    assert.equal(host.bootstrapped, 0);
  });

  it("returns at once when the peer is already in the cluster", async () => {
    const host = fakeHost();
    host.member = true;
    await new Discovery(options, host).discover(performance.now() + 5000, new AbortController().signal);
    assert.deepEqual(host.sent, []);
    assert.equal(host.bootstrapped, 0);
  });

  it("answers a newcomer's hello directly once it is a member, and only then", () => {
    const host = fakeHost();
    const discovery = new Discovery(options, host);
    discovery.onHello(newcomer("x"));
    assert.equal(host.sent.length, 0);
    host.member = true;
    discovery.onHello(newcomer("x"));
    assert.equal(host.sent.length, 1);
    assert.equal(host.sent[0][0], "x");
    assert.equal(host.sent[0][1].joined, true);
  });

  it("ignores its own hellos and other clusters' hellos", async () => {
    const host = fakeHost();
    host.member = true;
    const discovery = new Discovery(options, host);
    discovery.onHello(newcomer("b"));
    discovery.onHello({ ...newcomer("x"), clusterId: "other" });
    discovery.onHello({ ...member("a", "a-1"), clusterId: "other" });
    assert.deepEqual(host.sent, []);
    host.member = false;
    await discovery.discover(performance.now() + 5000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, []);
    assert.equal(host.bootstrapped, 1);
  });

  it("stops with the abort reason when the signal aborts while it waits", async () => {
    const abort = new AbortController();
    const host = fakeHost({ onPublish: () => queueMicrotask(() => abort.abort("stop")) });
    const discovery = new Discovery({ ...options, discoveryMs: 60_000 }, host);
    await assert.rejects(discovery.discover(performance.now() + 120_000, abort.signal), (error: unknown) => {
      assert.ok(error instanceof HamokAbortedError);
      assert.equal(error.cause, "stop");
      return true;
    });
    assert.equal(host.bootstrapped, 0);
  });

  it("wakes up at once when a member's hello arrives during a wait", async () => {
    const host = fakeHost({
      onPublish: () => setTimeout(() => discovery.onHello(member("a", "a-1")), 1),
    });
    // a long hello period: without the wake-up the join would wait for the timeout below
    const discovery = new Discovery({ ...options, discoveryMs: 60_000 }, host);
    await discovery.discover(performance.now() + 120_000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, ["a-1"]);
  });

  describe("merging a lone cluster (autoMerge)", () => {
    /** A member of cluster `uid` whose hellos say `lone` as given; merges are recorded, not run. */
    const setup = (uid: string, lone: boolean) => {
      let now = 1_000_000;
      const merges: [string, string][] = [];
      const host = fakeHost();
      host.member = true;
      const own = host.hello;
      Object.assign(host, {
        hello: () => ({ ...own(), clusterUid: uid }),
        lone: () => lone,
        merge: (leader: string, other: string) => {
          merges.push([leader, other]);
          return Promise.resolve(false);
        },
      });
      const scheduler = { ...REAL_SCHEDULER, now: () => now, monotonicNow: () => now };
      const discovery = new Discovery({ ...options, scheduler, mergeEveryMs: 5000 }, host);
      return { host, discovery, merges, advance: (ms: number) => now += ms };
    };
    const foreign = (peerId: string, uid: string, lone?: boolean): HelloBody => ({
      ...member(peerId, `${peerId}-1`),
      clusterUid: uid,
      ...(lone === undefined ? {} : { lone }),
    });

    it("a lone peer moves into a cluster that is not lone, whatever the identities", () => {
      const { discovery, merges } = setup("0-small", true);
      discovery.onHello(foreign("x", "9-large"));
      assert.deepEqual(merges, [["x-1", "9-large"]]);
    });

    it("of two lone clusters only the one with the larger identity moves", () => {
      const large = setup("9-large", true);
      large.discovery.onHello(foreign("x", "0-small", true));
      assert.deepEqual(large.merges, [["x-1", "0-small"]]);
      const small = setup("0-small", true);
      small.discovery.onHello(foreign("x", "9-large", true));
      assert.deepEqual(small.merges, []);
    });

    it("a peer that is not lone never moves, and tells a lone member of another cluster about its own", () => {
      const { host, discovery, merges } = setup("9-large", false);
      discovery.onHello(foreign("x", "0-small", true));
      discovery.onHello(foreign("y", "0-small"));
      assert.deepEqual(merges, []);
      // it answered the lone one directly (so that one learns of this cluster), not the other
      assert.deepEqual(host.sent.map(([to, body]) => [to, body.clusterUid]), [["x", "9-large"]]);
      assert.equal(host.errors.length, 1, "the conflict is reported once");
    });

    it("answers a lone member of another cluster at most once a second", () => {
      const { host, discovery, advance } = setup("9-large", false);
      for (let i = 0; i < 10; i++) {
        discovery.onHello(foreign("x", "0-small", true));
        advance(150);
      }
      assert.equal(host.sent.length, 2);
    });

    it("a newcomer joins through the leader a cluster that is not lone names, over a lone one's", async () => {
      let round = 0;
      const host = fakeHost({
        onPublish: () => {
          round++;
          // the lone stray answers first; the real cluster's follower answers the second hello
          if (round === 1) discovery.onHello({ ...foreign("l", "0-small", true), leaderId: "l-1" });
          if (round === 2) discovery.onHello(foreign("x", "9-large"));
          if (round === 3) discovery.onHello({ ...foreign("l", "0-small", true), leaderId: "l-1" });
        },
      });
      const discovery = new Discovery({ ...options, discoveryMs: 80 }, host);
      await discovery.discover(performance.now() + 5000, new AbortController().signal);
      assert.deepEqual(host.joinRequests, ["x-1"]);
    });

    it("a newcomer joins a lone cluster when nothing else answers", async () => {
      const host = fakeHost({
        onPublish: () => discovery.onHello({ ...foreign("l", "0-small", true), leaderId: "l-1" }),
      });
      const discovery = new Discovery(options, host);
      await discovery.discover(performance.now() + 5000, new AbortController().signal);
      assert.deepEqual(host.joinRequests, ["l-1"]);
      assert.equal(host.bootstrapped, 0);
    });

    it("tries at most once per mergeEveryMs, and never for a hello that names no leader", async () => {
      const { discovery, merges, advance } = setup("9-large", true);
      discovery.onHello({ ...foreign("x", "0-small"), leaderId: undefined });
      assert.deepEqual(merges, []);
      for (let i = 0; i < 20; i++) {
        discovery.onHello(foreign("x", "0-small"));
        advance(1000);
        await new Promise((resolve) => setTimeout(resolve, 0)); // the attempt before settles
      }
      assert.equal(merges.length, 4, "20 s of hellos: attempts at 0, 5, 10 and 15 s");
    });
  });

  describe("joining one cluster of two with the same name (whole-peer simulator, seed 424)", () => {
    const inCluster = (peerId: string, uid: string, leaderId = `${peerId}-1`): HelloBody => ({
      ...member(peerId, leaderId),
      clusterUid: uid,
    });

    it("a join request in flight is cut short by a new leader of its cluster, never by another cluster's", async () => {
      const answers: ((value: unknown) => void)[] = [];
      const host = fakeHost({
        join: () => new Promise((resolve) => answers.push(resolve)),
      });
      const discovery = new Discovery(options, host);
      discovery.onHello(inCluster("a", "uid-a"));
      const done = discovery.discover(performance.now() + 5000, new AbortController().signal);
      await new Promise((resolve) => setTimeout(resolve, 0)); // one turn: the loop reacts on microtasks
      assert.deepEqual(host.joinRequests, ["a-1"]);
      // the other cluster of the name answers: the request to a stays the one in flight
      discovery.onHello(inCluster("x", "uid-x"));
      await new Promise((resolve) => setTimeout(resolve, 0)); // one turn: the loop reacts on microtasks
      assert.deepEqual(host.joinRequests, ["a-1"]);
      // a's cluster names a new leader: asking it instead is the same join
      discovery.onHello(inCluster("c", "uid-a", "c-1"));
      await new Promise((resolve) => setTimeout(resolve, 0)); // one turn: the loop reacts on microtasks
      assert.deepEqual(host.joinRequests, ["a-1", "c-1"]);
      host.member = true;
      answers.at(-1)!(undefined);
      await done;
    });

    it("until it is a member, a joiner trusts only members of the cluster it asked", async () => {
      const host = fakeHost();
      const discovery = new Discovery(options, host);
      discovery.onHello(inCluster("x", "uid-x"));
      discovery.onHello(inCluster("a", "uid-a"));
      // before any request both are plausible (nothing is known about which cluster it joins)
      assert.equal(discovery.heardElsewhere("x-1"), false);
      assert.equal(discovery.heardOf("x-1"), true);
      await discovery.discover(performance.now() + 5000, new AbortController().signal);
      assert.deepEqual(host.joinRequests, ["a-1"]);
      assert.equal(discovery.heardOf("a-1"), true);
      assert.equal(discovery.heardElsewhere("a-1"), false);
      // x answered a request of this peer late: its Raft messages are another cluster's
      assert.equal(discovery.heardOf("x-1"), false);
      assert.equal(discovery.heardElsewhere("x-1"), true);
      assert.equal(discovery.heardElsewhere("never-heard-1"), false);
      discovery.reset();
      assert.equal(discovery.heardElsewhere("x-1"), false);
    });

    it("a joiner holding one cluster's configuration never asks the other cluster's leader (seed 2077)", async () => {
      let rounds = 0;
      const host = fakeHost({
        onPublish: () => {
          rounds++;
          // the other cluster answers every hello; a's cluster only the fourth
          discovery.onHello(inCluster("x", "uid-x"));
          if (rounds === 4) discovery.onHello(inCluster("a", "uid-a"));
        },
      });
      // added to a's cluster, catching up: its configuration names a-1 (heard with uid-a before)
      Object.assign(host, { knownMembers: () => ["a-1"] });
      const discovery = new Discovery(options, host);
      discovery.onHello({ ...inCluster("a", "uid-a"), leaderId: undefined });
      discovery.onHello(inCluster("x", "uid-x"));
      await discovery.discover(performance.now() + 5000, new AbortController().signal);
      assert.deepEqual(host.joinRequests, ["a-1"]);
      assert.equal(discovery.heardElsewhere("x-1"), true);
      assert.equal(host.bootstrapped, 0);
    });
  });
});
