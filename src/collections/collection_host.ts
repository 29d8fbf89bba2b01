/**
 * What a collection needs from the peer that hosts it. `Hamok` implements it; collections depend
 * only on this interface, never on `Hamok` itself.
 *
 * @module
 */

import type { HamokMetrics } from "../telemetry/metrics.ts";
import type { Tracer } from "@opentelemetry/api";
import type { WireEnvelope } from "../codec/envelope.ts";
import type { ClusterSubjects } from "../cluster/subjects.ts";
import type { ReplicatedState } from "../cluster/state_machine.ts";
import type { HamokLogger } from "../config.ts";
import type { Transport, TransportHeaders } from "../transport/transport.ts";
import type { Scheduler } from "../cluster/scheduler.ts";

/**
 * Event sequences per millisecond of the publisher's clock: a peer's event sequence starts at its
 * clock's milliseconds times this, so a publisher restarted with the same member id (on its storage)
 * continues above every sequence it sent before, as long as it sent fewer than this many events per
 * millisecond on average.
 */
export const EVENT_SEQ_PER_MS = 1000;

/**
 * The order of an incarnation (see {@linkcode CollectionHost.incarnation}): 0 for `""` (a member's first
 * process), its restart count for `<count base 36>.<nonce>`, -1 for an unordered one.
 */
export function incarnationOrder(incarnation: string): number {
  if (incarnation === "") return 0;
  const dot = incarnation.indexOf(".");
  if (dot <= 0 || dot === incarnation.length - 1 || dot > 7) return -1;
  let n = 0;
  for (let i = 0; i < dot; i++) {
    const c = incarnation.charCodeAt(i);
    const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 122 ? c - 87 : -1;
    if (digit < 0) return -1;
    n = n * 36 + digit;
  }
  return n;
}

/** Options of a proposal made by a collection. */

export interface ProposeOptions {
  /** How long to wait for the command to be applied on this peer. */
  readonly timeoutMs: number;
  /** A request id to reuse (for an idempotent retry); a fresh one is made otherwise. */
  readonly requestId?: string | undefined;
}

/** A handler of acknowledgements addressed to one emitter on this peer. */
export type AckHandler = (ack: {
  readonly ackRequestId: string;
  readonly peerId: string;
  readonly ok: boolean;
  readonly error?: { readonly code: string; readonly message: string };
}) => void;

/** The services a peer offers to the collections it hosts. */
export interface CollectionHost {
  /** This peer's id. */
  readonly localPeerId: string;
  /** This peer's member id in the Raft group (peer id plus incarnation). */
  readonly localMemberId: string;
  /** The cluster's subjects. */
  readonly subjects: ClusterSubjects;
  /** The transport. */
  readonly transport: Transport;
  /** The logger. */
  readonly logger: HamokLogger;
  /** The timers and clocks of the peer (every collection timer goes through it). */
  readonly scheduler: Scheduler;
  /** The tracer of this peer. */
  readonly tracer: Tracer;
  /** The metrics of this peer (absent in minimal hosts; `enabled` false without an SDK). */
  readonly metrics?: HamokMetrics;
  /** True once the peer is closed. */
  readonly closed: boolean;
  /** Whether every envelope is authenticated by a cluster key (else anyone on the bus can forge one). */
  readonly authenticated: boolean;
  /**
   * This process's incarnation of its member: `""` for the member's first process; when a process
   * restarts on the member's durable storage (the member id is the same, the process is not)
   * `<restarts base 36>.<nonce>` where the storage counts its loads durably (ordered: see
   * {@linkcode incarnationOrder}), else `<nonce>.` (unordered).
   */
  readonly incarnation: string;
  /** The identity of the cluster whose log this peer holds (made when the cluster was bootstrapped), if known. */
  readonly clusterUid: string | undefined;
  /** Whether `peerId` is a current member of the cluster other than this peer. */
  isRemoteMember(peerId: string): boolean;
  /** Whether `memberId` is a current member of the cluster other than this peer (exact member id). */
  isRemoteMemberId(memberId: string): boolean;
  /**
   * A request id no other proposal of this member has used: unique across the member's processes (a
   * restart on its storage) and across the views a process opens, as the cluster's dedup window needs.
   */
  newRequestId(): string;
  /**
   * The next event sequence of this process, for every emitter of the peer: above the last one handed
   * out and never behind the clock (in 1/1000 ms), so emitter views opened again (a closed id reused,
   * a client publish) never repeat a sequence, and with it an acknowledgement id.
   */
  nextEventSeq(): number;
  /** Proposes a command; resolves with its result once applied on this peer. */
  propose(kind: string, id: string, op: string, args: unknown, options: ProposeOptions): Promise<unknown>;
  /** Resolves once this peer has joined and applied everything committed when it was called. */
  whenReady(timeoutMs: number): Promise<void>;
  /**
   * A read barrier (ReadIndex through the leader): resolves once this peer has applied everything
   * the cluster had committed when it was called. Use it for linearizable reads.
   */
  waitUntilCommitHead(timeoutMs: number): Promise<void>;
  /** The replicated state of (kind, id) on this peer, created empty if needed. */
  replicatedState<S extends ReplicatedState>(kind: string, id: string): S;
  /** Publishes a wire message on a subject. */
  publish(subject: string, data: Uint8Array, headers?: TransportHeaders): void;
  /** The largest command or event payload the peer can send, in bytes. */
  readonly maxEntryBytes: number;
  /** Encodes, binds and seals an envelope. */
  encodeEnvelope(envelope: WireEnvelope): Uint8Array;
  /** The envelope of received bytes, or `undefined` (dropped and counted). */
  decodeEnvelope(data: Uint8Array): WireEnvelope | undefined;
  /** Counts a message dropped by a collection. */
  dropMessage(reason: "non-member" | "forged-sender" | "stale-sequence" | "unexpected"): void;
  /**
   * Acknowledges an event to the publisher `toPeerId`. Successful acknowledgements to one peer are
   * coalesced into one message per microtask (a burst of events is answered at once); a failure is
   * sent on its own, after the acknowledgements queued before it.
   */
  acknowledge(
    toPeerId: string,
    emitterId: string,
    ackRequestId: string,
    error?: { readonly code: string; readonly message: string },
  ): void;
  /** Routes acknowledgements for `emitterId` arriving in this peer's inbox to `handler`. */
  onAck(emitterId: string, handler: AckHandler): () => void;
  /** Calls `listener` when a member leaves the cluster (after the removal is applied). */
  onMemberRemoved(listener: (peerId: string) => void): () => void;
  /** The live collection of (kind, id) on this peer, if any. */
  hostedCollection<C>(kind: string, id: unknown): C | undefined;
  /** Calls `listener` each time this peer has joined (a first join, a rejoin, a restart). */
  onJoined(listener: () => void): () => void;
  /** Calls `listener` once when the peer closes (at once if it is closed); returns its removal. */
  onClosed(listener: () => void): () => void;
  /** Reports a non-fatal error on the peer's `error` event. */
  reportError(error: Error): void;
  /** Forgets a closed collection so that its id can be used again. */
  detach(kind: string, id: string): void;
}
