/**
 * The receiving side of a cluster peer: its subscriptions (inbox, broadcast, shared appends) and
 * the dispatch of what arrives, with the trust checks every message passes before anything acts
 * on it (after `PeerWire`'s): a Raft message is addressed to this member, sent by the peer it
 * names, at a term this peer can store, from a member; acknowledgements come from the member whose
 * peer they name; requests other than joins and client ops come from members. A removed member
 * that still talks is told so. {@linkcode ClusterPeer} (`peer.ts`) builds on it.
 *
 * @module
 */

import { encodeCbor } from "../codec/cbor.ts";
import type { HelloBody } from "../codec/envelope.ts";
import { peerIdOfMember } from "./member_id.ts";
import { JOIN_OP } from "./membership_manager.ts";
import { openSharedRaft } from "./raft_fanout.ts";
import { CLIENT_OPS, CLIENT_STATUS_OP } from "./client_ops.ts";
import { PeerCore } from "./peer_core.ts";
import type { RaftMessage } from "../raft/types.ts";
import type { TransportMessage, TransportState, TransportSubscription } from "../transport/transport.ts";
import { HamokTransportError } from "../errors.ts";

/**
 * The highest Raft term a peer adopts from a message (2^48). A term above it could not be
 * incremented and encoded for long, so a forged huge term could halt the cluster; at one election
 * a millisecond it takes nine thousand years to reach.
 */
const MAX_RAFT_TERM = 2 ** 48;
/**
 * The longest request id of a forwarded proposal: an application's ids take at most 256 characters,
 * the ones a peer makes its member id (a peer id of at most 253, a tag) and a counter, a remote
 * map's confirmations its id (at most 256) and an index.
 */
const MAX_FORWARDED_REQUEST_ID = 512;
/** Transport errors reported on the peer's `error` event per window, at most (the rest are counted). */
const TRANSPORT_ERRORS_PER_WINDOW = 5;
const TRANSPORT_ERROR_WINDOW_MS = 10_000;

/** Request op of a member telling a removed member that it was removed (payload: CBOR member id). */
export const REMOVED_OP = "removed";

/**
 * The inbox dispatch of a peer (see the module doc) on the plumbing of {@linkcode PeerCore}.
 *
 * @example
 * ```ts ignore
 * class ClusterPeer extends PeerInbox { ... }
 * ```
 */
export abstract class PeerInbox extends PeerCore {
  #transportSubs: TransportSubscription[] = [];
  #sharedSub: TransportSubscription | undefined;

  protected openTransport(): void {
    if (this.#transportSubs.length > 0) return;
    this.transport.on("error", this.#onTransportError);
    this.transport.on("state-changed", this.#onTransportState);
    this.#transportSubs.push(
      this.transport.subscribe(this.subjects.inbox(this.localPeerId), (message) => this.#onInbox(message)),
      this.transport.subscribe(this.subjects.broadcast, (message) => this.#onBroadcast(message)),
    );
    this.followShared();
  }

  protected closeTransport(): void {
    this.transport.off("error", this.#onTransportError);
    this.transport.off("state-changed", this.#onTransportState);
    for (const sub of this.#transportSubs) sub.unsubscribe();
    this.#transportSubs = [];
    this.followShared();
  }

  /** Transport errors reached nobody: reported on the peer's `error` event, a few per second at most. */
  #transportErrors = { windowStart: 0, inWindow: 0, suppressed: 0 };
  readonly #onTransportError = (error: Error): void => {
    if (this.isClosed) return;
    const now = this.config.scheduler.monotonicNow();
    const seen = this.#transportErrors;
    if (now - seen.windowStart >= TRANSPORT_ERROR_WINDOW_MS) {
      if (seen.suppressed > 0) {
        this.logger.warn(`hamok ${this.localPeerId}: ${seen.suppressed} transport errors not reported`);
      }
      seen.windowStart = now;
      seen.inWindow = 0;
      seen.suppressed = 0;
    }
    if (seen.inWindow >= TRANSPORT_ERRORS_PER_WINDOW) {
      seen.suppressed++;
      return;
    }
    seen.inWindow++;
    this.reportError(error);
  };

  readonly #onTransportState = (state: TransportState): void => {
    if (this.isClosed) return;
    if (state === "connected") {
      // a reconnect may reach a server with another maximum payload: appends and snapshot chunks
      // must fit the new one, or every message grouping several entries is refused for good
      const limits = this.messageLimits();
      this.node?.setMessageLimits(
        limits.maxBytesPerAppend,
        limits.snapshotChunkBytes,
        limits.snapshotMessageBytes,
      );
    } else if (state === "closed") {
      // the transport gave up (a NATS connection out of reconnect attempts): nothing arrives or
      // leaves any more, and the application must hear it
      this.reportError(
        new HamokTransportError(
          "the transport closed for good: this peer can no longer reach the cluster (close it and make a new one)",
        ),
      );
    }
  };

  /**
   * Subscribed to the shared append subject while the transport is open and this peer is not the
   * leader (a leader's own shared publishes would come back to it). A peer that steps down subscribes
   * before it answers the new leader, so before that leader may name it.
   */
  protected override followShared(): void {
    const want = this.#transportSubs.length > 0 && this.peerState !== "leader";
    if (want && this.#sharedSub === undefined) {
      try {
        this.#sharedSub = this.transport.subscribe(
          this.subjects.shared,
          (message) => this.#onShared(message),
        );
      } catch {
        // a transport closed under the peer: nothing arrives on any subject any more
      }
    } else if (!want && this.#sharedSub !== undefined) {
      this.#sharedSub.unsubscribe();
      this.#sharedSub = undefined;
    }
  }

  #onInbox(message: TransportMessage): void {
    if (this.isClosed) return;
    const envelope = this.wire.decode(message.data);
    if (envelope === undefined) return;
    switch (envelope.type) {
      case "raft":
        this.#onRaft(envelope.from, envelope.body);
        return;
      case "ack": {
        const body = envelope.body;
        if (!this.#fromMemberPeer(envelope.from, body.peerId)) return;
        const handlers = this.ackHandlers.get(body.emitterId);
        if (handlers === undefined) this.wire.drop("unexpected");
        else for (const handler of handlers) handler(body);
        return;
      }
      case "acks": {
        const peerId = envelope.body.peerId;
        if (!this.#fromMemberPeer(envelope.from, peerId)) return;
        for (const [emitterId, ackRequestId] of envelope.body.acks) {
          const handlers = this.ackHandlers.get(emitterId);
          if (handlers === undefined) continue;
          const ack = { ackRequestId, peerId, ok: true };
          for (const handler of handlers) handler(ack);
        }
        return;
      }
      case "request": {
        const op = envelope.body.op;
        // newcomers ask to join, outsiders may use the client ops; everything else is for members
        if (op !== JOIN_OP && !CLIENT_OPS.has(op) && !this.isRemoteMember(envelope.from)) {
          this.wire.drop("non-member");
          return;
        }
        this.rpc.onRequest(envelope.from, envelope.body);
        return;
      }
      case "response":
        if (!this.rpc.onResponse(envelope.from, envelope.body)) this.wire.drop("unexpected");
        return;
      case "hello":
        this.#onHello(envelope.body);
        return;
      default:
        this.wire.drop("unexpected");
        return;
    }
  }

  /** Whether `peerId` is a current member of the cluster other than this peer. */
  isRemoteMember(peerId: string): boolean {
    if (peerId === this.localPeerId) return false;
    for (const memberId of this.members.keys()) if (peerIdOfMember(memberId) === peerId) return true;
    return false;
  }

  /**
   * The trust checks of a Raft message: addressed to this member, sent by the peer it names, at a
   * term this peer can store, from a member (or, while joining, from a member that answered this
   * peer's hellos). A removed member is told so.
   */
  #onRaft(fromPeerId: string, body: RaftMessage): void {
    const driver = this.driver;
    if (driver === undefined || body.to !== this.memberId) {
      this.wire.drop("unexpected");
      return;
    }
    if (peerIdOfMember(body.from) !== fromPeerId) {
      this.wire.drop("forged-sender");
      return;
    }
    if (body.term > MAX_RAFT_TERM) {
      this.wire.drop("bad-term");
      return;
    }
    const membership = driver.node.membership;
    const now = this.config.scheduler.monotonicNow();
    const member = membership.voters.includes(body.from) || membership.learners.includes(body.from);
    if (member) {
      this.lastMemberContact = now;
    } else if (this.membership.removed.has(body.from)) {
      this.tellRemoved(body.from);
      this.wire.drop("non-member");
      return;
    } else if (this.peerState === "leader") {
      // a leader's membership is the newest there is (it appends every change): a sender it does not
      // know is no member, whatever it claims. A lone leader took anyone's messages once no member had
      // reached it for a while (and remembered every made-up id)
      this.wire.drop("non-member");
      return;
    } else if (this.discovery.heardElsewhere(body.from)) {
      // a member of another cluster with this name (it answered a join request of this peer late)
      this.wire.drop("other-cluster");
      return;
    } else if (
      // A member this peer does not know of yet: a peer catching up (a joiner, or one restored from an
      // old snapshot) learns of newer members only from the leader it cannot yet place. It accepts
      // members that answered its hellos, and anyone once no known member has reached it for a while.
      !this.discovery.heardOf(body.from) &&
      now - this.lastMemberContact <= 4 * this.config.electionTicks * this.config.tickMs
    ) {
      this.wire.drop("non-member");
      return;
    }
    if (body.type === "propose" && !this.#proposalsFit(body)) {
      this.wire.drop("oversized");
      return;
    }
    if (this.peerState === "leader") {
      this.membershipManager.heard(body.from, this.config.scheduler.monotonicNow());
      if (
        (body.type === "append-response" || body.type === "heartbeat-response") &&
        body.term === driver.node.term
      ) this.fanout?.answered(body.from, body.term);
      if (body.type === "append-response" && this.metrics.enabled) this.#appendAnswered(body.from);
    } else if (body.from === this.leaderMemberId) {
      this.lastLeaderContact = this.config.scheduler.monotonicNow();
    }
    driver.step(body);
  }

  /**
   * Whether every forwarded proposal of `body` is an entry this peer could replicate: a member's
   * forward is checked as this peer checks its own proposals (an entry too large for an append
   * would have stalled every commit behind it), with a request id no longer than a member makes.
   */
  #proposalsFit(body: RaftMessage & { type: "propose" }): boolean {
    const limit = this.maxEntryBytes;
    for (const entry of body.entries) {
      const requestId = entry.requestId;
      const idLength = requestId?.length ?? 0;
      if (idLength > MAX_FORWARDED_REQUEST_ID) return false;
      if (entry.data.byteLength + 3 * idLength > limit) return false;
    }
    return true;
  }

  /** True if `fromMemberId` is a current remote member whose peer is `peerId`; else drops. */
  #fromMemberPeer(fromMemberId: string, peerId: string): boolean {
    if (peerIdOfMember(fromMemberId) !== peerId) {
      this.wire.drop("forged-sender");
      return false;
    }
    if (!this.members.has(fromMemberId)) {
      this.wire.drop("non-member");
      return false;
    }
    return true;
  }

  #onHello(body: HelloBody): void {
    if (this.membership.removed.has(body.memberId)) this.tellRemoved(body.memberId);
    this.discovery.onHello(body);
  }

  /**
   * Tells a removed member (that still talks to the cluster: it was paused or cut off) that it was
   * removed, at most once a second per member id, so it stops campaigning and joins anew.
   */
  protected tellRemoved(memberId: string): void {
    if (!this.isJoined) return;
    if (!this.membership.noticeDue(memberId, this.config.scheduler.monotonicNow())) return;
    this.send(peerIdOfMember(memberId), {
      type: "request",
      from: this.localPeerId,
      body: { requestId: `${this.memberId}:removed`, op: REMOVED_OP, payload: encodeCbor(memberId) },
    });
  }

  /** A shared append or heartbeat (a leader is not subscribed; one that just became leader ignores it). */
  #onShared(message: TransportMessage): void {
    if (this.isClosed || this.peerState === "leader") return;
    const envelope = this.wire.decode(message.data);
    if (envelope === undefined) return;
    const raft = openSharedRaft(envelope, this.memberId, this.driver?.node, this.wire, this.counters);
    if (raft !== undefined) this.#onRaft(envelope.from, raft);
  }

  #onBroadcast(message: TransportMessage): void {
    if (this.isClosed) return;
    const envelope = this.wire.decode(message.data);
    if (envelope === undefined) return;
    if (envelope.type === "hello") this.#onHello(envelope.body);
    // the one client op answered on the broadcast subject: a client that knows no member asks all
    else if (envelope.type === "request" && envelope.body.op === CLIENT_STATUS_OP && this.isJoined) {
      this.rpc.onRequest(envelope.from, envelope.body);
    }
  }

  #appendAnswered(memberId: string): void {
    const sentAt = this.appendSentAt.get(memberId);
    if (sentAt === undefined) return;
    this.appendSentAt.delete(memberId);
    this.metrics.appendRoundTrip.record(
      (this.config.scheduler.monotonicNow() - sentAt) / 1000,
      this.metrics.follower(peerIdOfMember(memberId)),
    );
  }
}
