/**
 * Discovery: how a peer without a cluster finds one (hellos on the broadcast subject), asks its
 * leader to be added, or, when nobody answers, decides whether it is the one to bootstrap a new
 * cluster.
 *
 * @module
 */

import { encodeEnvelope, type HelloBody } from "../codec/envelope.ts";
import { HamokTimeoutError } from "../errors.ts";
import { throwIfAborted } from "./async.ts";

/** What discovery needs of its peer. */
export interface DiscoveryHost {
  /** This peer's hello as of now (its member id, the leader it knows, its term, whether it is a member). */
  hello(): HelloBody;
  /** True if this peer is a committed member of a cluster (it then answers newcomers' hellos). */
  isMember(): boolean;
  /** True once this peer is in a cluster's membership (committed, or in its Raft configuration). */
  inCluster(): boolean;
  /** Publishes an encoded hello on the broadcast subject (`toPeerId` undefined) or to a peer's inbox. */
  publish(data: Uint8Array, toPeerId: string | undefined): void;
  /** Asks the leader `leaderMemberId` to add this peer; resolves once it did, rejects otherwise. */
  requestJoin(leaderMemberId: string, timeoutMs: number): Promise<unknown>;
  /** Starts a new cluster with this peer as its only member. */
  bootstrap(): void;
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
  /** Where diagnostics go. */
  readonly logger: { debug(message: string, ...details: unknown[]): void };
}

/**
 * Finds the cluster of a peer that has none. It broadcasts a hello every `discoveryMs / 4`;
 * members answer with the leader they know, and the peer asks that leader to add it. Newcomers
 * hear each other's hellos too: if no member answered within `discoveryMs`, the newcomer with the
 * smallest peer id among those heard within `2 x discoveryMs` bootstraps a new cluster and the
 * others join it.
 *
 * @example
 * ```ts ignore
 * const discovery = new Discovery(config, host);
 * // every hello received on the broadcast subject or in the inbox:
 * discovery.onHello(body);
 * // joining: resolves once a leader accepted this peer, or after host.bootstrap()
 * await discovery.discover(Date.now() + 10_000, abort.signal);
 * ```
 */
export class Discovery {
  readonly #options: DiscoveryOptions;
  readonly #host: DiscoveryHost;
  /** Peers heard recently that are not members yet (peerId -> time). */
  readonly #candidates = new Map<string, number>();
  /** The leader's member id as reported by members. */
  #discoveredLeader: string | undefined;
  #discoveredMember = false;
  readonly #wake = new Set<() => void>();

  /** Creates the discovery of a peer. */
  constructor(options: DiscoveryOptions, host: DiscoveryHost) {
    this.#options = options;
    this.#host = host;
  }

  /**
   * Finds the cluster and joins it through its leader, or bootstraps one: resolves once this peer
   * is in a cluster's membership, a leader accepted its join request, or it bootstrapped. Rejects
   * with `HamokTimeoutError` at `deadline` and with the abort reason when `signal` aborts.
   */
  async discover(deadline: number, signal: AbortSignal): Promise<void> {
    const { discoveryMs, requestTimeoutMs, logger, peerId } = this.#options;
    const started = Date.now();
    const helloEvery = Math.max(10, Math.floor(discoveryMs / 4));
    let lastHello = 0;
    for (;;) {
      throwIfAborted(signal);
      const now = Date.now();
      if (now >= deadline) {
        throw new HamokTimeoutError("no cluster could be joined in time", { timeoutMs: now - started });
      }
      if (this.#host.inCluster()) return;
      const leader = this.#discoveredLeader;
      if (leader !== undefined) {
        try {
          await this.#host.requestJoin(
            leader,
            Math.max(1, Math.min(requestTimeoutMs, deadline - Date.now())),
          );
          return;
        } catch (error) {
          logger.debug(`hamok ${peerId}: join through ${leader} failed`, error);
          if (this.#discoveredLeader === leader) this.#discoveredLeader = undefined;
          this.#discoveredMember = false;
        }
        continue;
      }
      if (now - lastHello >= helloEvery) {
        lastHello = now;
        this.sendHello(undefined);
      }
      if (now - started >= discoveryMs && !this.#discoveredMember && this.#smallestCandidate(now)) {
        this.#host.bootstrap();
        return;
      }
      await this.#sleep(helloEvery, signal);
    }
  }

  /** Sends this peer's hello on the broadcast subject (`toPeerId` undefined) or to one peer. */
  sendHello(toPeerId: string | undefined): void {
    const data = encodeEnvelope({ type: "hello", from: this.#options.peerId, body: this.#host.hello() });
    this.#host.publish(data, toPeerId);
  }

  /** Takes in a hello from another peer (own hellos and other clusters' are ignored). */
  onHello(body: HelloBody): void {
    if (body.peerId === this.#options.peerId || body.clusterId !== this.#options.clusterId) return;
    if (body.joined) {
      this.#discoveredMember = true;
      if (body.leaderId !== undefined) this.#discoveredLeader = body.leaderId;
      this.#candidates.delete(body.peerId);
      this.wake();
      return;
    }
    this.#candidates.set(body.peerId, Date.now());
    // members answer a newcomer directly, so it learns the leader at once
    if (this.#host.isMember()) this.sendHello(body.peerId);
  }

  /** Cuts short the current wait between two discovery rounds (news arrived, or the peer closed). */
  wake(): void {
    for (const wake of [...this.#wake]) wake();
  }

  /** True if no newcomer with a smaller peer id was heard recently (forgets the stale ones). */
  #smallestCandidate(now: number): boolean {
    const window = 2 * this.#options.discoveryMs;
    const self = this.#options.peerId;
    for (const [peerId, at] of this.#candidates) {
      if (now - at > window) {
        this.#candidates.delete(peerId);
        continue;
      }
      if (peerId < self) return false;
    }
    return true;
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
