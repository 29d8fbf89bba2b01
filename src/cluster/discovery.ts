/**
 * Discovery: how a peer without a cluster finds one (hellos on the broadcast subject), asks its
 * leader to be added, or, when nobody of a cluster has been heard for long enough, decides whether
 * it is the one to bootstrap a new cluster.
 *
 * @module
 */

import type { HelloBody } from "../codec/envelope.ts";
import {
  HamokClusterConflictError,
  HamokDuplicatePeerError,
  HamokRemovedError,
  HamokTimeoutError,
} from "../errors.ts";
import { throwIfAborted } from "./async.ts";
import { REAL_SCHEDULER, type Scheduler } from "./scheduler.ts";

/** What discovery needs of its peer. */
export interface DiscoveryHost {
  /** This peer's hello as of now (its member id, the leader it knows, its term, whether it is a member). */
  hello(): HelloBody;
  /** True if this peer is a committed member of a cluster (it then answers newcomers' hellos). */
  isMember(): boolean;
  /** True once this peer is in a cluster's membership (committed, or in its Raft configuration). */
  inCluster(): boolean;
  /** Sends a hello on the broadcast subject (`toPeerId` undefined) or to a peer's inbox. */
  publish(hello: HelloBody, toPeerId: string | undefined): void;
  /** Asks the leader `leaderMemberId` to add this peer; resolves once it did, rejects otherwise. */
  requestJoin(leaderMemberId: string, timeoutMs: number): Promise<unknown>;
  /** Starts a new cluster with this peer as its only member. */
  bootstrap(): void;
  /** Reports a problem the application should know of (a second cluster on the prefix). */
  reportError(error: Error): void;
  /**
   * True if this peer is the only member of its cluster, which has no application writes, and may
   * dissolve it (its hellos then say `lone`). Absent: never.
   */
  lone?(): boolean;
  /**
   * Moves this lone peer into the cluster `clusterUid` led by `leaderMemberId`: resolves true once
   * that leader added it (under a new member id) and this peer dissolved its own cluster, false if it
   * kept its own. Absent: never merges.
   */
  merge?(leaderMemberId: string, clusterUid: string): Promise<boolean>;
  /**
   * The other member ids of this peer's Raft configuration (a joiner catching up holds one before it
   * is a member). Absent: none.
   */
  knownMembers?(): readonly string[];
}

/** Settings of {@linkcode Discovery} (a subset of the peer's resolved configuration). */
export interface DiscoveryOptions {
  /** This peer's id. */
  readonly peerId: string;
  /** The cluster to find; hellos of other clusters are ignored. */
  readonly clusterId: string;
  /** How long to look for a cluster before bootstrapping one, in ms. */
  readonly discoveryMs: number;
  /** Bound of one join request, in ms. */
  readonly requestTimeoutMs: number;
  /** `"never"`: only join, never bootstrap. Default `"auto"`. */
  readonly bootstrap?: "auto" | "never";
  /** Nobody bootstraps before this many newcomers (this one included) were heard. Default 1. */
  readonly expectedPeers?: number;
  /**
   * How long a member, once heard, keeps this peer from bootstrapping, in ms. Default
   * `4 x discoveryMs`; the peer passes at least two election timeouts, so a cluster that is electing
   * a new leader is never mistaken for no cluster.
   */
  readonly memberWindowMs?: number;
  /** How long a member named in a hello stays trusted by {@linkcode Discovery.heardOf}, in ms. */
  readonly trustWindowMs?: number;
  /** Where diagnostics go. */
  readonly logger: { debug(message: string, ...details: unknown[]): void };
  /** Timers and clock. Default `REAL_SCHEDULER`. */
  readonly scheduler?: Scheduler;
  /**
   * A lone peer tries to merge into another cluster at most once per this many ms. Default
   * `max(memberWindowMs, requestTimeoutMs)`.
   */
  readonly mergeEveryMs?: number;
  /** A lone peer announces itself on the broadcast subject at most once per this many ms. Default 1000. */
  readonly announceEveryMs?: number;
  /**
   * A leader of a cluster that is not lone announces it on the broadcast subject at most once per
   * this many ms, so that a second cluster of its name (two clusters formed apart during a partition)
   * is heard and reported, not silent. Default 5000.
   */
  readonly leaderAnnounceEveryMs?: number;
  /** Testing only: `"bootstrap-on-failed-join"` switches on the old split brain. */
  readonly testingBugs?: readonly string[];
}

/** The leader of a cluster that is not lone announces it at most once per this many ms (default). */
const LEADER_ANNOUNCE_EVERY_MS = 5000;

/** A member tells a lone member of another cluster about its own at most once per this many ms. */
export const FOREIGN_ANSWER_EVERY_MS = 1000;
/** At most this many newcomers and members are remembered (remote ids are hostile input). */
export const DISCOVERY_TABLE_LIMIT = 256;
/**
 * A newcomer bootstraps only after this many hello rounds in a row (each `discoveryMs / 4` plus
 * jitter) that it sent, waited out on time and heard no member in.
 */
export const DISCOVERY_ROUNDS = 4;
/** A member answers at most this many newcomer hellos per second (a flood of hellos is cheap). */
export const HELLO_ANSWERS_PER_SECOND = 20;

interface HeardMember {
  at: number;
  readonly memberId: string;
  readonly leaderId: string | undefined;
  /** The identity of the cluster the member said it is in. */
  readonly clusterUid: string | undefined;
}

/**
 * Finds the cluster of a peer that has none. It says hello on the broadcast subject in rounds of
 * `discoveryMs / 4` plus up to half of that (jitter); members answer with the leader they know, and
 * the peer asks that leader to add it. A failed join request only forgets that leader: the peer asks
 * again once a member names a leader.
 *
 * A peer never bootstraps once it heard any member of its cluster (leader or not) during this
 * `discover()`, with `bootstrap: "never"`, or before `expectedPeers` newcomers were heard;
 * otherwise the newcomer with the smallest peer id among those heard within `2 x discoveryMs`
 * bootstraps after {@linkcode DISCOVERY_ROUNDS} silent rounds in a row, and the others join it. A
 * round counts as silent only if its hello was sent, its wait ended on time on the scheduler's clock
 * and one more turn of the event loop brought no member's answer: a peer whose loop stalled (its
 * timers fire late, all at once, before the messages that waited) does not take the stall for
 * silence.
 *
 * Hellos carry the cluster's identity (made at bootstrap): a peer that hears two identities on its
 * prefix reports a `HamokClusterConflictError`. A peer that is the only member of a cluster without
 * application writes (`host.lone()`, its hellos say `lone`) moves into the other cluster
 * (`host.merge()`) if that one is not lone or has the smaller identity, at most once per
 * `mergeEveryMs`; members answer a lone member of another cluster directly (once a second each),
 * so that it hears them.
 *
 * @example
 * ```ts ignore
 * const discovery = new Discovery(config, host);
 * // every hello received on the broadcast subject or in the inbox:
 * discovery.onHello(body);
 * // joining: resolves once a leader accepted this peer, or after host.bootstrap()
 * await discovery.discover(scheduler.monotonicNow() + 10_000, abort.signal);
 * ```
 */
export class Discovery {
  readonly #options: DiscoveryOptions;
  readonly #host: DiscoveryHost;
  readonly #memberWindowMs: number;
  /** Peers heard recently that are not members yet (peerId -> time). */
  readonly #candidates = new Map<string, number>();
  /** Members heard recently (peerId -> when, member id, the leader they named). */
  readonly #members = new Map<string, HeardMember>();
  /** Cluster identities heard from members, with this peer's own (if any) reported once each. */
  readonly #identities = new Set<string>();
  readonly #reportedConflicts = new Set<string>();
  /** The leader's member id as named by members, and since when. */
  #discoveredLeader: string | undefined;
  /** The discovered leader was named by a lone cluster's member (see `HelloBody.lone`). */
  #discoveredFromLone = false;
  /** The identity of the cluster whose member named the discovered leader. */
  #discoveredUid: string | undefined;
  /**
   * The identity of the cluster this peer last asked to join: until it is a member with an identity
   * of its own, it trusts only members of that cluster (see `heardOf`, `heardElsewhere`).
   */
  #joiningUid: string | undefined;
  /** Newcomer hellos answered in the current second. */
  #answers = 0;
  #answersSecond = 0;
  /** Per newcomer: when this member last answered it. */
  readonly #answered = new Map<string, number>();
  readonly #wake = new Set<() => void>();
  readonly #scheduler: Scheduler;
  #stalledRounds = 0;
  /** Per lone member of another cluster: when this member last told it of its own cluster. */
  readonly #answeredForeign = new Map<string, number>();
  readonly #mergeEveryMs: number;
  #merging = false;
  #lastMergeAt: number | undefined;
  #lastAnnounceAt: number | undefined;
  #merges = 0;

  /** Creates the discovery of a peer. */
  constructor(options: DiscoveryOptions, host: DiscoveryHost) {
    this.#options = options;
    this.#scheduler = options.scheduler ?? REAL_SCHEDULER;
    this.#host = host;
    this.#memberWindowMs = options.memberWindowMs ?? 4 * options.discoveryMs;
    this.#mergeEveryMs = options.mergeEveryMs ?? Math.max(this.#memberWindowMs, options.requestTimeoutMs);
  }

  /**
   * Finds the cluster and joins it through its leader, or bootstraps one: resolves once this peer
   * is in a cluster's membership, a leader accepted its join request, or it bootstrapped. Rejects
   * with `HamokTimeoutError` at `deadline` (a `HamokDuplicatePeerError` if the leader kept refusing
   * because a live member has this peer's id) and with the abort reason when `signal` aborts.
   */
  async discover(deadline: number, signal: AbortSignal, allowBootstrap = true): Promise<void> {
    const { discoveryMs, requestTimeoutMs, logger, peerId } = this.#options;
    const started = this.#scheduler.monotonicNow();
    const helloEvery = Math.max(10, Math.floor(discoveryMs / 4));
    let duplicate: Error | undefined;
    /** Hello rounds in a row that were sent, waited out on time, and drew no member's answer. */
    let silentRounds = 0;
    /** Rounds in a row whose timer fired late (a stalled event loop): the next may be later still. */
    let lateRounds = 0;
    /** Since when the only leader known was named by a lone cluster. */
    let loneSince: number | undefined;
    let loneHelloAt = Number.NEGATIVE_INFINITY;
    for (;;) {
      throwIfAborted(signal);
      const now = this.#scheduler.monotonicNow();
      if (now >= deadline) {
        if (duplicate !== undefined) throw duplicate;
        throw new HamokTimeoutError("no cluster could be joined in time", { timeoutMs: now - started });
      }
      if (this.#host.inCluster()) return;
      const leader = this.#discoveredLeader;
      if (leader !== undefined && this.#discoveredFromLone) {
        // Only a lone cluster answered so far. It may be the stray of a split whose real cluster
        // answers a moment later: give that one two hello rounds before joining the lone one.
        loneSince ??= now;
        if (now - loneSince < 2 * helloEvery) {
          if (now - loneHelloAt >= helloEvery) {
            loneHelloAt = now;
            this.sendHello(undefined);
          }
          await this.#sleep(loneSince + 2 * helloEvery - now, signal);
          continue;
        }
      } else loneSince = undefined;
      const held = this.#heldUid();
      if (
        leader !== undefined && held !== undefined && this.#discoveredUid !== undefined &&
        this.#discoveredUid !== held
      ) {
        // this peer already holds a configuration of the other cluster (it was added there and is
        // catching up): asking this one too would make it a member of two (seed 2077)
        this.#discoveredLeader = undefined;
        await this.#sleep(helloEvery, signal);
        continue;
      }
      if (leader !== undefined) {
        const uid = this.#discoveredUid;
        if (uid !== undefined) this.#joiningUid = uid;
        try {
          await this.#raceLeaderChange(
            leader,
            uid,
            this.#host.requestJoin(
              leader,
              Math.max(1, Math.ceil(Math.min(requestTimeoutMs, deadline - this.#scheduler.monotonicNow()))),
            ),
          );
          if (this.#discoveredLeader === leader || this.#host.inCluster()) return;
          continue; // another leader was named meanwhile: ask it (a join is idempotent)
        } catch (error) {
          logger.debug(`hamok ${peerId}: join through ${leader} failed`, error);
          if ((error as { code?: unknown })?.code === "HAMOK_REMOVED") {
            // this member id is a tombstone: asking again can never succeed
            throw new HamokRemovedError(
              `the cluster removed member ${this.#host.hello().memberId} before it joined`,
              {},
              {
                cause: error,
              },
            );
          }
          if ((error as { code?: unknown })?.code === "HAMOK_DUPLICATE_PEER") {
            duplicate = new HamokDuplicatePeerError(
              `a live member of the cluster already has peer id '${peerId}'`,
              { peerId },
              { cause: error },
            );
          }
          // forget only this leader; members heard still keep this peer from bootstrapping
          if (this.#discoveredLeader === leader) this.#discoveredLeader = undefined;
          if (this.#options.testingBugs?.includes("bootstrap-on-failed-join") && !this.#host.inCluster()) {
            this.#host.bootstrap(); // the deliberate bug: the split brain of old
            return;
          }
        }
        silentRounds = 0; // a fresh series of hello rounds before any bootstrap decision
        await this.#sleep(helloEvery, signal);
        continue;
      }
      // One round: a hello, then a wait of helloEvery plus up to half of it (jitter keeps newcomers
      // started together from saying hello in lockstep), then one turn of the event loop so that
      // answers queued behind a late timer are taken in before the round is judged.
      const sentAt = now;
      this.sendHello(undefined);
      const roundMs = helloEvery + Math.floor(this.#scheduler.random() * (helloEvery / 2));
      await this.#sleep(roundMs, signal);
      await this.#yield();
      const end = this.#scheduler.monotonicNow();
      if (this.#heardMemberSince(Math.min(sentAt, end - this.#memberWindowMs) - 1)) {
        silentRounds = 0;
        continue;
      }
      const elapsed = end - sentAt;
      if (elapsed < roundMs) continue; // woken early (news, or closing): not a whole round
      // A timer far later than asked for means the event loop was stalled: whatever was answered
      // meanwhile may still be queued, so the round proves no silence. The allowance doubles with
      // each late round in a row, so that a peer whose loop is always this slow still gets there.
      if (elapsed - roundMs > roundMs * 2 ** lateRounds) {
        lateRounds++;
        this.#stalledRounds++;
        logger.debug(
          `hamok ${peerId}: a discovery round took ${elapsed} ms instead of ${roundMs} ms; not counted`,
        );
        continue;
      }
      lateRounds = 0;
      silentRounds++;
      if (
        silentRounds >= DISCOVERY_ROUNDS && end - started >= discoveryMs &&
        // a member heard since this join began proves a cluster exists: never start another one
        allowBootstrap && !this.#heardMemberSince(started - 1) && this.#mayBootstrap(end)
      ) {
        this.#host.bootstrap();
        return;
      }
    }
  }

  /** Discovery rounds not counted as silence because their timer fired late (a stalled event loop). */
  get stalledRounds(): number {
    return this.#stalledRounds;
  }

  /** Times this peer dissolved a lone cluster of its own and moved into another one. */
  get merges(): number {
    return this.#merges;
  }

  /**
   * Called periodically (the peer's liveness tick): a lone member announces itself on the
   * broadcast subject once a second, so that members of another cluster with its name hear it and
   * answer; the leader of any other cluster every `leaderAnnounceEveryMs`, so that two clusters of
   * one name hear each other and report the conflict.
   */
  tick(now: number): void {
    const lone = this.#host.lone?.() ?? false;
    if (!lone) {
      const { memberId, leaderId } = this.#host.hello();
      if (leaderId !== memberId || !this.#host.isMember()) return;
    }
    const every = lone
      ? this.#options.announceEveryMs ?? 1000
      : this.#options.leaderAnnounceEveryMs ?? LEADER_ANNOUNCE_EVERY_MS;
    if (this.#lastAnnounceAt !== undefined && now - this.#lastAnnounceAt < every) return;
    this.#lastAnnounceAt = now;
    this.sendHello(undefined);
  }

  /** Sends this peer's hello on the broadcast subject (`toPeerId` undefined) or to one peer. */
  sendHello(toPeerId: string | undefined): void {
    this.#host.publish(this.#host.hello(), toPeerId);
  }

  /** Takes in a hello from another peer (own hellos and other clusters' are ignored). */
  onHello(body: HelloBody): void {
    if (body.peerId === this.#options.peerId || body.clusterId !== this.#options.clusterId) return;
    const now = this.#scheduler.monotonicNow();
    if (body.clusterUid !== undefined) {
      this.#heardIdentity(body.clusterUid);
      if (body.joined) this.#heardForeignMember(body, body.clusterUid, now);
    }
    if (body.joined) {
      this.#remember(this.#members, body.peerId, {
        at: now,
        memberId: body.memberId,
        leaderId: body.leaderId,
        clusterUid: body.clusterUid,
      });
      // a leader named by a cluster that is not lone wins over one named by a lone cluster; one of
      // another cluster than the one whose configuration this peer holds is never taken
      const held = this.#heldUid();
      if (
        body.leaderId !== undefined &&
        (held === undefined || body.clusterUid === undefined || body.clusterUid === held) &&
        (body.lone !== true || this.#discoveredLeader === undefined || this.#discoveredFromLone)
      ) {
        this.#discoveredLeader = body.leaderId;
        this.#discoveredFromLone = body.lone === true;
        this.#discoveredUid = body.clusterUid;
      }
      this.#candidates.delete(body.peerId);
      this.wake();
      return;
    }
    this.#remember(this.#candidates, body.peerId, now);
    // members answer a newcomer directly, so it learns the leader at once (rate-limited)
    if (this.#host.isMember() && this.#mayAnswer(body.peerId, now)) this.sendHello(body.peerId);
  }

  /**
   * True if `memberId` was named by a member's hello heard within `trustWindowMs` (as itself or as
   * its leader): a joining peer takes its first snapshot and entries only from such members.
   */
  heardOf(memberId: string): boolean {
    const now = this.#scheduler.monotonicNow();
    const window = Math.max(this.#memberWindowMs, this.#options.trustWindowMs ?? 0);
    // A member of a cluster, or a peer joining one: members heard in another cluster of its name do
    // not count (a stale join request of this member answered there must not make it follow two
    // leaders)
    const own = this.#trustedUid();
    for (const heard of this.#members.values()) {
      if (now - heard.at > window) continue;
      if (own !== undefined && heard.clusterUid !== undefined && heard.clusterUid !== own) continue;
      if (heard.memberId === memberId || heard.leaderId === memberId) return true;
    }
    return false;
  }

  /**
   * True if `memberId` was last heard of (as a member, or named as a leader) in a cluster with this
   * name but another identity than the one this peer is in or is joining. Its Raft messages are
   * another cluster's: a join request it answered late (after this peer asked elsewhere) must not
   * make this peer a member of two clusters (whole-peer simulator, discovery mode, seed 424).
   */
  heardElsewhere(memberId: string): boolean {
    const own = this.#trustedUid();
    if (own === undefined) return false;
    for (const heard of this.#members.values()) {
      if (heard.memberId !== memberId && heard.leaderId !== memberId) continue;
      if (heard.clusterUid !== undefined && heard.clusterUid !== own) return true;
    }
    return false;
  }

  /**
   * The identity this peer trusts: its cluster's, else the one of the cluster whose configuration it
   * holds, else the one of the cluster it asked to join.
   */
  #trustedUid(): string | undefined {
    return this.#heldUid() ?? this.#joiningUid;
  }

  /**
   * The identity of the cluster this peer is a member of, or else whose configuration it holds (a
   * joiner catching up): the one its configuration's members were heard with.
   */
  #heldUid(): string | undefined {
    const own = this.#host.hello().clusterUid;
    if (own !== undefined) return own;
    const known = this.#host.knownMembers?.();
    if (known === undefined || known.length === 0) return undefined;
    for (const heard of this.#members.values()) {
      if (heard.clusterUid !== undefined && known.includes(heard.memberId)) return heard.clusterUid;
    }
    return undefined;
  }

  /** Cuts short the current wait between two discovery rounds (news arrived, or the peer closed). */
  wake(): void {
    for (const wake of [...this.#wake]) wake();
  }

  /** Forgets everything heard (a peer that left starts afresh). */
  reset(): void {
    this.#candidates.clear();
    this.#members.clear();
    this.#identities.clear();
    this.#answered.clear();
    this.#answeredForeign.clear();
    this.#discoveredLeader = undefined;
    this.#discoveredFromLone = false;
    this.#discoveredUid = undefined;
    this.#joiningUid = undefined;
  }

  #heardIdentity(uid: string): void {
    const own = this.#host.hello().clusterUid;
    if (own !== undefined) this.#identities.add(own);
    if (this.#identities.size < DISCOVERY_TABLE_LIMIT) this.#identities.add(uid);
    if (this.#identities.size < 2) return;
    // one report per identity heard besides this peer's own (a key of all identities so far grew
    // with the square of their number, made-up ones included)
    if (uid === own || this.#reportedConflicts.has(uid)) return;
    if (this.#reportedConflicts.size >= DISCOVERY_TABLE_LIMIT || !this.#identities.has(uid)) return;
    for (const identity of this.#identities) if (identity !== own) this.#reportedConflicts.add(identity);
    const identities = own === undefined
      ? [...this.#identities]
      : [own, ...[...this.#identities].filter((u) => u !== own)];
    this.#host.reportError(
      new HamokClusterConflictError(
        `two clusters named '${this.#options.clusterId}' were heard on one subject prefix: ${
          identities.join(", ")
        }`,
        { identities },
      ),
    );
  }

  /**
   * A member of a cluster named like this one but with identity `uid` said hello. A lone member of
   * another cluster is told of this one (it may be the one to move). This peer moves into the other
   * cluster if it is lone itself, and either the other one is not lone or has the smaller identity:
   * of two clusters at most one side ever tries, so they never swap into each other.
   */
  #heardForeignMember(body: HelloBody, uid: string, now: number): void {
    const own = this.#host.hello().clusterUid;
    if (own === undefined || uid === own) return;
    if (body.lone === true && this.#host.isMember() && this.#mayAnswerForeign(body.peerId, now)) {
      this.sendHello(body.peerId);
    }
    const leader = body.leaderId;
    if (leader === undefined || (body.lone === true && !(uid < own))) return;
    if (this.#merging || this.#host.merge === undefined || !(this.#host.lone?.() ?? false)) return;
    if (this.#lastMergeAt !== undefined && now - this.#lastMergeAt < this.#mergeEveryMs) return;
    this.#merging = true;
    this.#lastMergeAt = now;
    const { logger, peerId } = this.#options;
    logger.debug(`hamok ${peerId}: lone in cluster ${own}, asking ${leader} of cluster ${uid} to add it`);
    this.#host.merge(leader, uid).then(
      (merged) => {
        if (!merged) return;
        this.#merges++;
        this.#identities.delete(own); // dissolved: no conflict with it to report any more
      },
      (error) => logger.debug(`hamok ${peerId}: merging into cluster ${uid} failed`, error),
    ).finally(() => {
      this.#merging = false;
    });
  }

  #mayAnswerForeign(peer: string, now: number): boolean {
    const last = this.#answeredForeign.get(peer);
    if (last !== undefined && now - last < FOREIGN_ANSWER_EVERY_MS) return false;
    if (!this.#takeAnswer(now)) return false;
    this.#remember(this.#answeredForeign, peer, now);
    return true;
  }

  /** True if a member was heard after `since`. */
  #heardMemberSince(since: number): boolean {
    for (const heard of this.#members.values()) if (heard.at > since) return true;
    return false;
  }

  /** The bootstrap rule (see the class documentation). */
  #mayBootstrap(now: number): boolean {
    const { bootstrap = "auto", expectedPeers = 1, peerId: self } = this.#options;
    if (bootstrap === "never") return false;
    for (const heard of this.#members.values()) {
      if (now - heard.at <= this.#memberWindowMs) return false;
    }
    const window = 2 * this.#options.discoveryMs;
    let heard = 1;
    let smallest = true;
    for (const [peerId, at] of this.#candidates) {
      if (now - at > window) {
        this.#candidates.delete(peerId);
        continue;
      }
      heard++;
      if (peerId < self) smallest = false;
    }
    return smallest && heard >= expectedPeers;
  }

  #mayAnswer(newcomer: string, now: number): boolean {
    const last = this.#answered.get(newcomer);
    const every = Math.max(10, Math.floor(this.#options.discoveryMs / 8));
    if (last !== undefined && now - last < every) return false;
    if (!this.#takeAnswer(now)) return false;
    this.#remember(this.#answered, newcomer, now);
    return true;
  }

  /** Takes one of the `HELLO_ANSWERS_PER_SECOND` answers of the current second, if one is left. */
  #takeAnswer(now: number): boolean {
    const second = Math.floor(now / 1000);
    if (second !== this.#answersSecond) {
      this.#answersSecond = second;
      this.#answers = 0;
    }
    if (this.#answers >= HELLO_ANSWERS_PER_SECOND) return false;
    this.#answers++;
    return true;
  }

  /** Sets `key` in a bounded table, evicting the oldest insertion when full. */
  #remember<V>(table: Map<string, V>, key: string, value: V): void {
    table.delete(key);
    if (table.size >= DISCOVERY_TABLE_LIMIT) {
      const oldest = table.keys().next();
      if (!oldest.done) table.delete(oldest.value);
    }
    table.set(key, value);
  }

  /**
   * Settles with `request`, or resolves early once members of the same cluster (`uid`) name a leader
   * other than `leader` (a new leader there: asking it again is idempotent). A leader named in
   * another cluster of this name does not cut the request short: that cluster could add this peer
   * while the first one still does.
   */
  #raceLeaderChange(leader: string, uid: string | undefined, request: Promise<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const named = this.#discoveredLeader;
        if (named === undefined || named === leader) return;
        const namedUid = this.#discoveredUid;
        if (uid === undefined || namedUid === undefined || namedUid === uid) finish();
      };
      const finish = () => {
        this.#wake.delete(check);
        resolve(undefined);
      };
      this.#wake.add(check);
      request.then(
        (value) => {
          this.#wake.delete(check);
          resolve(value);
        },
        (error) => {
          this.#wake.delete(check);
          reject(error);
        },
      );
    });
  }

  /** Resolves in a later turn of the event loop, after the I/O that was waiting (see `yieldThen`). */
  #yield(): Promise<void> {
    return new Promise((resolve) => this.#scheduler.yieldThen(resolve));
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#scheduler.clearTimeout(timer);
        this.#wake.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = this.#scheduler.setTimeout(done, ms);
      this.#wake.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
