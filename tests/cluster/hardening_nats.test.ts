/**
 * Regressions of issue 9 that were found on a real nats-server with peers in separate processes,
 * reproduced the same way: an oversized write against the default 1 MB `max_payload`, a member
 * paused (SIGSTOP) past `peerTimeoutMs`, and a second process started with a peer id in use.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type NatsServer, startNatsServer } from "../_helpers/nats_server.ts";
import {
  PeerCommandError,
  type PeerProcess,
  type PeerStatus,
  startPeerProcess,
} from "../_helpers/peer_process.ts";
import { waitFor } from "../_helpers/wait.ts";
import type { HamokStatus } from "../../src/cluster/status.ts";

const TIMING = { tickMs: 50, electionTicks: 10, heartbeatTicks: 2, discoveryMs: 300, peerTimeoutMs: 3000 };

async function memberIds(peer: PeerProcess): Promise<string[]> {
  return (await peer.request<HamokStatus>("hamok.status")).members.map((m) => m.memberId).sort();
}

describe("hardening on a real nats-server, peers in separate processes", () => {
  let server: NatsServer;
  const peers: PeerProcess[] = [];
  const extra: PeerProcess[] = [];
  let clusterId: string;

  /** The leader and the followers as all three agree. */
  async function roles(): Promise<{ leader: PeerProcess; followers: PeerProcess[]; statuses: PeerStatus[] }> {
    let statuses: PeerStatus[] = [];
    await waitFor(async () => {
      statuses = await Promise.all(peers.map((p) => p.status()));
      return statuses.filter((s) => s.state === "leader").length === 1 &&
        statuses.every((s) =>
          s.joined && s.remotePeerIds.length === 2 && s.leaderId === statuses[0]!.leaderId
        );
    }, { timeoutMs: 30_000, intervalMs: 100, message: "three members agreeing on one leader" });
    const leader = peers.find((p) => p.peerId === statuses[0]!.leaderId)!;
    return { leader, followers: peers.filter((p) => p !== leader), statuses };
  }

  before(async () => {
    server = await startNatsServer(); // default max_payload: 1 MB
    clusterId = `hard-${crypto.randomUUID().slice(0, 8)}`;
    for (const peerId of ["a", "b", "c"]) {
      peers.push(await startPeerProcess({ natsUrl: server.url, peerId, clusterId, ...TIMING }));
    }
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 30_000 })));
    await roles();
  });

  after(async () => {
    await Promise.all([...peers, ...extra].map((p) => p.close()));
    await server?.stop();
  });

  it("a 2 MB write over the 1 MB max_payload rejects with HamokPayloadTooLargeError; the leader stays and small writes go on", async () => {
    const { leader, followers, statuses } = await roles();
    const big = "x".repeat(2 * 1024 * 1024);
    for (const writer of [leader, followers[0]!]) {
      // a write that entered the log and stalled would end in HAMOK_OUTCOME_UNKNOWN after 20 s
      const error = await writer.mapSet("m", "big", big, 20_000).then(
        () => assert.fail("the 2 MB write resolved"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof PeerCommandError, String(error));
      assert.equal(error.errorName, "HamokPayloadTooLargeError", error.message);
      assert.equal(error.code, "HAMOK_PAYLOAD_TOO_LARGE");
    }
    for (let i = 0; i < 20; i++) assert.equal(await peers[i % 3]!.mapSet("m", `small-${i}`, i, 5000), null);
    const after = await roles();
    assert.equal(after.leader, leader, "the same leader");
    assert.equal(after.statuses[0]!.term, statuses[0]!.term, "no election");
    assert.equal(
      await followers[1]!.mapGet("m", "big", { linearizable: true }),
      null,
      "the big value never applied",
    );
  });

  it("a member paused past peerTimeoutMs learns it was removed after SIGCONT, emits left and joins again", async () => {
    const { leader, followers } = await roles();
    const paused = followers[0]!;
    const oldMemberId = (await paused.status()).memberId;
    paused.kill("SIGSTOP");
    try {
      await waitFor(async () => !(await memberIds(leader)).includes(oldMemberId), {
        timeoutMs: 20_000,
        intervalMs: 200,
        message: "the leader removed the paused member",
      });
    } finally {
      paused.kill("SIGCONT");
    }
    await paused.waitForEvent("left", 20_000);
    let rejoined: PeerStatus | undefined;
    await waitFor(async () => {
      rejoined = await paused.status();
      return rejoined.joined && rejoined.state === "follower" && rejoined.memberId !== oldMemberId;
    }, { timeoutMs: 30_000, intervalMs: 100, message: "the paused peer back as a new member, following" });
    const newMemberId = rejoined!.memberId;
    await waitFor(async () => (await memberIds(leader)).includes(newMemberId), {
      timeoutMs: 10_000,
      message: "the new member in the leader's membership",
    });
    const applied = (await paused.status()).appliedIndex;
    for (let i = 0; i < 5; i++) await leader.mapSet("m", `after-rejoin-${i}`, i, 5000);
    await waitFor(async () => (await paused.status()).appliedIndex > applied, {
      timeoutMs: 10_000,
      message: "the rejoined member's applied index grows",
    });
    assert.equal(await paused.mapGet("m", "after-rejoin-4", { linearizable: true }), 4);
  });

  it("a second process with a peer id in use is refused with HamokDuplicatePeerError; the original stays", async () => {
    const { leader, followers } = await roles();
    const original = followers[0]!;
    const originalMemberId = (await original.status()).memberId;
    const leftBefore = original.events.filter((e) => e.event === "left").length;
    const impostor = await startPeerProcess({
      natsUrl: server.url,
      peerId: original.peerId,
      clusterId,
      ...TIMING,
    });
    extra.push(impostor);
    // the newcomer keeps asking until its join deadline (a peer that really died is replaced once
    // it is no longer heard), then rejects with the typed error
    const error = await impostor.join({ timeoutMs: 5000 }).then(
      () => assert.fail("the duplicate joined"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof PeerCommandError, String(error));
    assert.equal(error.errorName, "HamokDuplicatePeerError", error.message);
    assert.equal(error.code, "HAMOK_DUPLICATE_PEER");
    assert.ok((await memberIds(leader)).includes(originalMemberId), "the original is still a member");
    const status = await original.status();
    assert.equal(status.memberId, originalMemberId);
    assert.equal(status.state, "follower");
    assert.equal(
      original.events.filter((e) => e.event === "left").length,
      leftBefore,
      "the original never left",
    );
    assert.equal(await original.mapSet("m", "still-here", 1, 5000), null);
  });
});
