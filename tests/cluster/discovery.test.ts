import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Discovery, type DiscoveryHost } from "../../src/cluster/discovery.ts";
import type { HelloBody } from "../../src/codec/envelope.ts";
import { HamokAbortedError, HamokTimeoutError } from "../../src/errors.ts";

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
    await new Discovery(options, host).discover(Date.now() + 5000, new AbortController().signal);
    assert.equal(host.bootstrapped, 1);
    assert.ok(host.sent.length >= 1);
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
    await discovery.discover(Date.now() + 5000, new AbortController().signal);
    assert.equal(host.bootstrapped, 1);
  });

  it("leaves bootstrapping to a newcomer with a smaller peer id (and times out without a cluster)", async () => {
    const host = fakeHost({ onPublish: () => discovery.onHello(newcomer("a")) });
    const discovery = new Discovery(options, host);
    await assert.rejects(
      discovery.discover(Date.now() + 150, new AbortController().signal),
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
    await discovery.discover(Date.now() + 5000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, ["a-1"]);
    assert.equal(host.bootstrapped, 0);
  });

  it("does not bootstrap while members are around, even before the leader is known", async () => {
    const host = fakeHost({ onPublish: () => discovery.onHello(member("z")) });
    const discovery = new Discovery(options, host);
    await assert.rejects(
      discovery.discover(Date.now() + 150, new AbortController().signal),
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
    await discovery.discover(Date.now() + 5000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, ["a-1", "d-1"]);
    assert.equal(host.bootstrapped, 0);
  });

  it("returns at once when the peer is already in the cluster", async () => {
    const host = fakeHost();
    host.member = true;
    await new Discovery(options, host).discover(Date.now() + 5000, new AbortController().signal);
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
    await discovery.discover(Date.now() + 5000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, []);
    assert.equal(host.bootstrapped, 1);
  });

  it("stops with the abort reason when the signal aborts while it waits", async () => {
    const abort = new AbortController();
    const host = fakeHost({ onPublish: () => queueMicrotask(() => abort.abort("stop")) });
    const discovery = new Discovery({ ...options, discoveryMs: 60_000 }, host);
    await assert.rejects(discovery.discover(Date.now() + 120_000, abort.signal), (error: unknown) => {
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
    await discovery.discover(Date.now() + 120_000, new AbortController().signal);
    assert.deepEqual(host.joinRequests, ["a-1"]);
  });
});
