/**
 * How a peer sends the Raft messages of one ready batch: appends and heartbeats that are the same for
 * several in-sync followers but for their recipient go out once, as one shared message naming them;
 * acknowledgements a newer one in the same batch supersedes do not go out at all. Everything else is
 * sent as it came, one message per recipient, in the core's order.
 *
 * @module
 */

import { MAX_SHARED_RECIPIENTS, type WireEnvelope } from "../codec/envelope.ts";
import type { AppendMessage, HeartbeatMessage, RaftMessage } from "../raft/types.ts";
import { DEFAULT_MAX_INFLIGHT_APPENDS } from "../raft/raft_config.ts";
import { peerIdOfMember } from "./member_id.ts";
import type { PeerCounters } from "./peer_counters.ts";
import type { PeerWire } from "./peer_wire.ts";
import type { Scheduler, TimerHandle } from "./scheduler.ts";

/** Where {@linkcode sendRaftBatch} sends. */
export interface RaftFanoutSink {
  /** Sends one message to its `to` (the unicast path). */
  unicast(message: RaftMessage): void;
  /**
   * Sends `message` once to every member in `recipients` (2 to {@linkcode MAX_SHARED_RECIPIENTS};
   * `message.to` is the first of them and means nothing more).
   */
  shared(recipients: readonly string[], message: AppendMessage | HeartbeatMessage): void;
}

/** One send of a batch: a single message, or a shared one whose recipients are collected. */
interface Slot {
  readonly message: RaftMessage;
  /** Recipients of a shareable slot (the head's `to` first); undefined: a unicast slot. */
  readonly recipients: string[] | undefined;
}

/** How far back from the end of a batch a message looks for a shared slot to join. */
const SEARCH_SLOTS = 64;

/**
 * True if `a` and `b` are the same append or heartbeat but for the recipient: same term, previous
 * entry, commit index and entries (the core hands in-sync followers the same entries array; arrays
 * that are merely equal are not looked into, so they just go out separately).
 */
function sameButRecipient(a: AppendMessage | HeartbeatMessage, b: RaftMessage): boolean {
  if (a.type !== b.type || a.term !== b.term || a.from !== b.from || a.commit !== (b as typeof a).commit) {
    return false;
  }
  if (a.type === "heartbeat") return a.ctx === (b as HeartbeatMessage).ctx;
  const other = b as AppendMessage;
  return a.prevIndex === other.prevIndex && a.prevTerm === other.prevTerm &&
    a.leaderMatch === other.leaderMatch &&
    (a.entries === other.entries || (a.entries.length === 0 && other.entries.length === 0));
}

/**
 * Positions of the append responses of `messages` that a later one supersedes: a successful response
 * to the same leader in the same term with an index at least as high says all the earlier one says
 * (the leader's match index only grows, and an acknowledgement frees every append up to its index).
 * Refusals are never left out. Undefined when there is none.
 */
function supersededResponses(messages: readonly RaftMessage[]): Set<number> | undefined {
  let count = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!; // i < length
    if (m.type === "append-response" && !m.reject) count++;
  }
  if (count < 2) return undefined;
  let superseded: Set<number> | undefined;
  // the latest successful response per (leader, term), walking from the end
  const latest: { to: string; term: number; index: number }[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!; // 0 <= i < length
    if (m.type !== "append-response" || m.reject) continue;
    let seen: { to: string; term: number; index: number } | undefined;
    for (const candidate of latest) if (candidate.to === m.to && candidate.term === m.term) seen = candidate;
    if (seen === undefined) latest.push({ to: m.to, term: m.term, index: m.index });
    else if (m.index <= seen.index) (superseded ??= new Set()).add(i);
  }
  return superseded;
}

/**
 * Sends the Raft messages of one batch through `sink`: an append or heartbeat to a follower for which
 * `shareable(memberId, term)` holds joins an identical one (but for the recipient) to other such
 * followers and goes out once, as a shared message, when there are at least two of them (at most
 * {@linkcode MAX_SHARED_RECIPIENTS} per shared message); a successful append response superseded by a
 * later one to the same leader in the same batch is left out. Each recipient gets its messages in the
 * order the core made them.
 *
 * @example
 * ```ts ignore
 * sendRaftBatch(ready.messages, (memberId, term) => inSync(memberId, term), {
 *   unicast: (m) => publish(inbox(m.to), m),
 *   shared: (recipients, m) => publish(sharedSubject, { recipients, message: m }),
 * });
 * ```
 */
export function sendRaftBatch(
  messages: readonly RaftMessage[],
  shareable: (memberId: string, term: number) => boolean,
  sink: RaftFanoutSink,
): void {
  if (messages.length === 1) {
    sink.unicast(messages[0]!); // length 1
    return;
  }
  const superseded = supersededResponses(messages);
  const slots: Slot[] = [];
  // per recipient: the slot of its latest message (a later one may only join a later slot)
  let lastSlot: Map<string, number> | undefined;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!; // i < length
    if (superseded !== undefined && superseded.has(i)) continue;
    if ((m.type !== "append" && m.type !== "heartbeat") || !shareable(m.to, m.term)) {
      slots.push({ message: m, recipients: undefined });
      lastSlot?.set(m.to, slots.length - 1);
      continue;
    }
    lastSlot ??= new Map();
    const after = lastSlot.get(m.to) ?? -1;
    let joined = -1;
    for (let s = Math.max(after + 1, slots.length - SEARCH_SLOTS); s < slots.length; s++) {
      const slot = slots[s]!; // s < length
      if (
        slot.recipients !== undefined && slot.recipients.length < MAX_SHARED_RECIPIENTS &&
        sameButRecipient(slot.message as AppendMessage | HeartbeatMessage, m)
      ) {
        slot.recipients.push(m.to);
        joined = s;
        break;
      }
    }
    if (joined < 0) {
      slots.push({ message: m, recipients: [m.to] });
      joined = slots.length - 1;
    }
    lastSlot.set(m.to, joined);
  }
  for (const slot of slots) {
    const recipients = slot.recipients;
    if (recipients === undefined || recipients.length === 1) sink.unicast(slot.message);
    else sink.shared(recipients, slot.message as AppendMessage | HeartbeatMessage);
  }
}

/** What a {@linkcode RaftFanout} needs from its peer. */
export interface RaftFanoutOptions {
  /** The peer's clock. */
  readonly scheduler: Scheduler;
  /** How long after its latest answer a follower still gets shared messages, in ms. */
  readonly inSyncMs: number;
  /** This peer's id (the sender of its envelopes). */
  readonly localPeerId: string;
  /** The peer's trust boundary (encodes and seals the shared envelopes). */
  readonly wire: PeerWire;
  /** The largest envelope the peer may send, in bytes (before the tag). */
  maxMessageBytes(): number;
  /** Sends one Raft message to its own recipient's inbox. */
  unicast(message: RaftMessage): void;
  /** Publishes sealed bytes on the shared subject. */
  publishShared(data: Uint8Array): void;
  /** A shared envelope could not be encoded (counted and reported by the peer). */
  encodeFailed(error: unknown): void;
  /** Optional (metrics): a shared append went to `memberId` (unicasts are the peer's own business). */
  readonly appendSent?: ((memberId: string) => void) | undefined;
  /**
   * Optional: true while this peer is a follower whose acknowledgements the leader needs for nothing
   * but its bookkeeping (a learner with no free voter seat); its acknowledgements are then coalesced
   * (see {@linkcode AckCoalescer}). Without it none are held back (duplicates still are left out).
   */
  readonly coalesceAcks?: (() => boolean) | undefined;
  /** The leader's heartbeat interval, in ms (what the acknowledgement coalescing is timed by). */
  readonly heartbeatMs?: number | undefined;
}

/**
 * A leader's fan-out of appends and heartbeats: which followers are in sync with it (they answered an
 * append or heartbeat of its term within {@linkcode RaftFanoutOptions.inSyncMs}), and the sending of
 * each ready batch through {@linkcode sendRaftBatch}, a shared message being one publish on the
 * shared subject. A follower silent for longer goes back to its own inbox: it may have restarted or
 * moved to a newer term, and then drops shared messages (see {@linkcode openSharedRaft}).
 *
 * @example
 * ```ts ignore
 * const fanout = new RaftFanout({ scheduler, inSyncMs: 300, localPeerId: "a", wire, ... });
 * fanout.answered("b/1a2b3c4d", 7); // an append-response of term 7 came from b
 * fanout.send(ready.messages, true);
 * ```
 */
export class RaftFanout {
  readonly #options: RaftFanoutOptions;
  /** Follower id to the term and time of its latest answer; only one term is kept. */
  readonly #answers = new Map<string, { term: number; at: number }>();
  #term = 0;
  readonly #sink: RaftFanoutSink;
  /** A follower's acknowledgements on their way to its leader. */
  readonly #acks: AckCoalescer;

  /** Creates the fan-out of one peer's Raft node. */
  constructor(options: RaftFanoutOptions) {
    this.#options = options;
    const heartbeatMs = options.heartbeatMs ?? options.inSyncMs / 3;
    this.#acks = new AckCoalescer({
      scheduler: options.scheduler,
      holdMs: Math.max(1, Math.floor(heartbeatMs / 4)),
      holdAppends: DEFAULT_ACK_HOLD_APPENDS,
      quietMs: Math.min(Math.floor(heartbeatMs * 1.2), Math.floor(options.inSyncMs / 2)),
      send: (message) => options.unicast(message),
    });
    this.#sink = {
      unicast: (message) => this.#unicast(message),
      shared: (recipients, message) => this.#shared(recipients, message),
    };
  }

  /** Follower `memberId` answered an append or heartbeat of this leader's `term`. */
  answered(memberId: string, term: number): void {
    if (term < this.#term) return;
    if (term > this.#term) {
      this.#answers.clear();
      this.#term = term;
    }
    const now = this.#options.scheduler.monotonicNow();
    const answer = this.#answers.get(memberId);
    if (answer === undefined) this.#answers.set(memberId, { term, at: now });
    else answer.at = now;
  }

  /** True if `memberId` answered this leader in `term` lately (a shared message may name it). */
  inSync(memberId: string, term: number): boolean {
    const answer = this.#answers.get(memberId);
    return answer !== undefined && answer.term === term &&
      this.#options.scheduler.monotonicNow() - answer.at <= this.#options.inSyncMs;
  }

  /** What the acknowledgement coalescing of this peer left out or held back so far. */
  get ackStats(): AckCoalescerStats {
    return this.#acks.stats;
  }

  /** Drops any acknowledgement held back and stops its timer (the peer stops or leaves). */
  close(): void {
    this.#acks.reset();
  }

  /**
   * Sends one batch; `leading`: this peer is the leader (else every message goes to its inbox, a
   * follower's acknowledgements through the {@linkcode AckCoalescer}).
   */
  send(messages: readonly RaftMessage[], leading: boolean): void {
    if (!leading) {
      this.#acks.send(messages, this.#options.coalesceAcks?.() ?? false);
      return;
    }
    this.#acks.reset();
    if (this.#answers.size < 2) {
      for (let i = 0; i < messages.length; i++) this.#unicast(messages[i]!); // i < length
      return;
    }
    const since = this.#options.scheduler.monotonicNow() - this.#options.inSyncMs;
    sendRaftBatch(messages, (memberId, term) => {
      const answer = this.#answers.get(memberId);
      return answer !== undefined && answer.term === term && answer.at >= since;
    }, this.#sink);
  }

  #unicast(message: RaftMessage): void {
    this.#options.unicast(message);
  }

  /** One publish for all of `recipients`; each gets its own if that would not fit in one message. */
  #shared(recipients: readonly string[], message: AppendMessage | HeartbeatMessage): void {
    const options = this.#options;
    let data: Uint8Array;
    try {
      data = options.wire.encode({
        type: "raft-shared",
        from: options.localPeerId,
        body: { recipients, message },
      });
    } catch (error) {
      options.encodeFailed(error);
      return;
    }
    if (data.byteLength > options.maxMessageBytes() + options.wire.overhead) {
      for (const to of recipients) this.#unicast({ ...message, to });
      return;
    }
    if (message.type === "append" && options.appendSent !== undefined) {
      for (const to of recipients) options.appendSent(to);
    }
    options.publishShared(data);
  }
}

/**
 * Successful acknowledgements of this many appends a learner holds back at most: below the leader's
 * window of unacknowledged appends per follower ({@linkcode DEFAULT_MAX_INFLIGHT_APPENDS}), so that
 * the leader does not pause a learner that is in sync, with room for the acknowledgement's flight.
 */
export const DEFAULT_ACK_HOLD_APPENDS: number = Math.max(1, DEFAULT_MAX_INFLIGHT_APPENDS - 4);

/** What an {@linkcode AckCoalescer} needs. */
export interface AckCoalescerOptions {
  /** The peer's clock (the timer of a held acknowledgement). */
  readonly scheduler: Scheduler;
  /** How long a learner's successful acknowledgement may wait for a newer one, in ms. */
  readonly holdMs: number;
  /** A learner sends at once when its held acknowledgement covers this many appends. */
  readonly holdAppends: number;
  /**
   * A learner answers a heartbeat (one without a read context) only if it sent its leader nothing
   * for this long, in ms; the leader's in-sync window must be at least twice as long.
   */
  readonly quietMs: number;
  /** Sends one message to its recipient. */
  send(message: RaftMessage): void;
}

/** Counts of an {@linkcode AckCoalescer}. */
export interface AckCoalescerStats {
  /** Successful acknowledgements left out: one sent already said as much, or a newer one replaced it. */
  superseded: number;
  /** Heartbeat answers a learner left out (it had talked to its leader lately). */
  quietHeartbeats: number;
  /** Held acknowledgements sent (by the timer, the count, or ahead of another message). */
  flushed: number;
}

/**
 * A follower's acknowledgements to its leader, sent only when they tell it something:
 *
 * - a successful append response whose index is not above one already sent to the same leader in the
 *   same term is left out, one in a row (the leader's match index only grows; liveness is what the
 *   heartbeat answers are for): the answer to a leader's commit notice after a write, typically;
 * - a learner (when `coalesce` says so) holds its latest successful response back for up to
 *   `holdMs`, or until it covers `holdAppends` appends, a newer one replacing it;
 * - a learner answers heartbeats without a read context at most once per `quietMs` of silence
 *   towards its leader;
 * - refusals, snapshot answers, read-index answers and anything else go at once, preceded by a
 *   held acknowledgement to the same leader (so the leader learns in order and up to date).
 *
 * The leader then hears from a learner about once per `holdMs` under load (its match index is that
 * much behind at most, which status, lag metrics and the promotion rule tolerate: a learner that may
 * be promoted does not coalesce), and from any follower once per write and not twice.
 *
 * @example
 * ```ts
 * import { AckCoalescer } from "./raft_fanout.ts";
 * import { REAL_SCHEDULER } from "./scheduler.ts";
 * import type { RaftMessage } from "../raft/types.ts";
 * const sent: RaftMessage[] = [];
 * const acks = new AckCoalescer({
 *   scheduler: REAL_SCHEDULER,
 *   holdMs: 25,
 *   holdAppends: 12,
 *   quietMs: 150,
 *   send: (m) => sent.push(m),
 * });
 * const ack = (index: number): RaftMessage => ({
 *   type: "append-response", from: "f", to: "L", term: 1, index, reject: false, rejectHint: 0, hintTerm: 0,
 * });
 * acks.send([ack(3), ack(3)], false);
 * console.log(sent.length); // 1: the second says nothing new
 * ```
 */
export class AckCoalescer {
  readonly #options: AckCoalescerOptions;
  /** The leader and term acknowledged lately (what {@linkcode #acked} is about). */
  #leader: string | undefined;
  #term = 0;
  /** The highest successful index sent to {@linkcode #leader} in {@linkcode #term}. */
  #acked = 0;
  /** The latest acknowledgement not above {@linkcode #acked} was left out (the next one goes). */
  #repeatLeftOut = false;
  /** When this peer last sent {@linkcode #leader} anything, by the scheduler's clock. */
  #lastSentAt = Number.NEGATIVE_INFINITY;
  /** A learner's latest successful acknowledgement, not sent yet. */
  #held: RaftMessage | undefined;
  /** Acknowledgements with a higher index the held one stands for. */
  #heldAppends = 0;
  #timer: TimerHandle | undefined;
  /** Counts, for tests and status. */
  readonly stats: AckCoalescerStats = { superseded: 0, quietHeartbeats: 0, flushed: 0 };

  /** Creates the coalescing of one follower's acknowledgements. */
  constructor(options: AckCoalescerOptions) {
    this.#options = options;
  }

  /**
   * Sends the messages of one batch, in order, leaving out or holding back acknowledgements as the
   * class describes; `coalesce`: this follower is a learner that may hold its acknowledgements.
   */
  send(messages: readonly RaftMessage[], coalesce: boolean): void {
    if (!coalesce && this.#held !== undefined) this.flush();
    for (let i = 0; i < messages.length; i++) this.#one(messages[i]!, coalesce); // i < length
  }

  /** Sends the held acknowledgement, if any, now. */
  flush(): void {
    const held = this.#takeHeld();
    if (held === undefined) return;
    this.stats.flushed++;
    this.#deliver(held);
  }

  /** Forgets the leader and drops a held acknowledgement (this peer became leader, or left). */
  reset(): void {
    if (this.#held === undefined && this.#leader === undefined) return;
    this.#takeHeld();
    this.#leader = undefined;
    this.#term = 0;
    this.#acked = 0;
    this.#repeatLeftOut = false;
    this.#lastSentAt = Number.NEGATIVE_INFINITY;
  }

  #one(m: RaftMessage, coalesce: boolean): void {
    if (m.type !== "append-response" && m.type !== "heartbeat-response" && m.type !== "snapshot-response") {
      if (m.to === this.#leader) this.flush();
      this.#options.send(m);
      return;
    }
    if (m.to !== this.#leader || m.term !== this.#term) {
      // another leader or term: nothing sent before tells it anything (an older held one is stale)
      if (m.term < this.#term && m.to === this.#leader) {
        this.#options.send(m);
        return;
      }
      if (this.#takeHeld() !== undefined) this.stats.superseded++;
      this.#leader = m.to;
      this.#term = m.term;
      this.#acked = 0;
      this.#repeatLeftOut = false;
      this.#lastSentAt = Number.NEGATIVE_INFINITY;
    }
    if (m.type === "append-response" && !m.reject) {
      const held = this.#held as typeof m | undefined;
      if (held !== undefined && m.index <= held.index) {
        this.stats.superseded++; // the held one says as much and goes out
        return;
      }
      if (m.index <= this.#acked) {
        // Said already. Only one in a row is left out, the next such goes: were the leader's record
        // of this follower ever behind what it was told (its progress made anew), its probe must
        // get an answer.
        if (!this.#repeatLeftOut) {
          this.#repeatLeftOut = true;
          this.stats.superseded++;
          return;
        }
        this.#repeatLeftOut = false;
        this.#deliver(m);
        return;
      }
      if (!coalesce) {
        this.#deliver(m);
        return;
      }
      if (held !== undefined) this.stats.superseded++;
      this.#held = m;
      if (++this.#heldAppends >= this.#options.holdAppends) {
        this.flush();
        return;
      }
      this.#timer ??= this.#options.scheduler.setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, this.#options.holdMs);
      return;
    }
    this.flush();
    if (
      coalesce && m.type === "heartbeat-response" && m.ctx === undefined &&
      this.#options.scheduler.monotonicNow() - this.#lastSentAt < this.#options.quietMs
    ) {
      this.stats.quietHeartbeats++;
      return;
    }
    this.#deliver(m);
  }

  /** Takes the held acknowledgement (if any) out, and stops its timer. */
  #takeHeld(): RaftMessage | undefined {
    const held = this.#held;
    if (this.#timer !== undefined) this.#options.scheduler.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#held = undefined;
    this.#heldAppends = 0;
    return held;
  }

  /** Sends `m` to the tracked leader and remembers what it told it. */
  #deliver(m: RaftMessage): void {
    if (m.type === "append-response" && !m.reject && m.index > this.#acked) {
      this.#acked = m.index;
      this.#repeatLeftOut = false;
    }
    this.#lastSentAt = this.#options.scheduler.monotonicNow();
    this.#options.send(m);
  }
}

/** What a follower knows of its leader: its current term and the leader in it. */
export interface FollowedLeader {
  /** The follower's current term. */
  readonly term: number;
  /** The leader it knows in that term. */
  readonly leaderId: string | undefined;
}

/**
 * The checks of an envelope that came on the shared subject (after the trust boundary's): it must be
 * a shared append or heartbeat (else dropped as `unexpected`); one that does not name `memberId` is
 * counted as not for this peer and ignored; then the sender the body names must be the envelope's
 * (`forged-sender`), and it must be of the term `followed` is in and from the leader it names there
 * (`not-leader`: another term, or another member than that leader; the leader soon sends such a
 * follower its own messages); a follower that knows no leader in its term (it started a pre-vote
 * and the leader was alive, or it restarted) takes it, as it would the same message unicast. Returns the message addressed to `memberId`, to be checked further as
 * any Raft message, or `undefined` if it was dropped or ignored.
 *
 * @example
 * ```ts ignore
 * const message = openSharedRaft(envelope, memberId, driver?.node, wire, counters);
 * if (message !== undefined) onRaft(envelope.from, message);
 * ```
 */
export function openSharedRaft(
  envelope: WireEnvelope,
  memberId: string,
  followed: FollowedLeader | undefined,
  wire: PeerWire,
  counters: PeerCounters,
): RaftMessage | undefined {
  if (envelope.type !== "raft-shared") {
    wire.drop("unexpected");
    return undefined;
  }
  const { recipients, message } = envelope.body;
  if (!recipients.includes(memberId)) {
    counters.notForMe++;
    return undefined;
  }
  if (peerIdOfMember(message.from) !== envelope.from) {
    wire.drop("forged-sender");
    return undefined;
  }
  // the leader of our term, or, when we lost track of it in that term (a pre-vote that found the
  // leader alive, a restart), a member speaking in our term: there is one leader per term, and the
  // core checks the message as any other
  if (
    followed === undefined || message.term !== followed.term ||
    (followed.leaderId !== undefined && message.from !== followed.leaderId)
  ) {
    wire.drop("not-leader");
    return undefined;
  }
  return { ...message, to: memberId };
}
