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
import { peerIdOfMember } from "./member_id.ts";
import type { PeerCounters } from "./peer_counters.ts";
import type { PeerWire } from "./peer_wire.ts";
import type { Scheduler } from "./scheduler.ts";

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

  /** Creates the fan-out of one peer's Raft node. */
  constructor(options: RaftFanoutOptions) {
    this.#options = options;
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
    const now = this.#options.scheduler.now();
    const answer = this.#answers.get(memberId);
    if (answer === undefined) this.#answers.set(memberId, { term, at: now });
    else answer.at = now;
  }

  /** True if `memberId` answered this leader in `term` lately (a shared message may name it). */
  inSync(memberId: string, term: number): boolean {
    const answer = this.#answers.get(memberId);
    return answer !== undefined && answer.term === term &&
      this.#options.scheduler.now() - answer.at <= this.#options.inSyncMs;
  }

  /** Sends one batch; `leading`: this peer is the leader (else every message goes to its inbox). */
  send(messages: readonly RaftMessage[], leading: boolean): void {
    if (!leading || this.#answers.size < 2) {
      for (let i = 0; i < messages.length; i++) this.#unicast(messages[i]!); // i < length
      return;
    }
    const since = this.#options.scheduler.now() - this.#options.inSyncMs;
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
 * (`forged-sender`), and it must be the leader `followed` names in its term (`not-leader`: another
 * term, another member, or no leader known, as after a restart; the leader soon sends such a
 * follower its own messages). Returns the message addressed to `memberId`, to be checked further as
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
  if (followed === undefined || message.term !== followed.term || message.from !== followed.leaderId) {
    wire.drop("not-leader");
    return undefined;
  }
  return { ...message, to: memberId };
}
