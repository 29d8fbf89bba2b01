/**
 * Subject names of one cluster. Every token that is not a plain NATS-safe token is encoded (never
 * rejected), so any peer id, emitter id or event name works on NATS and on the memory transport.
 *
 * @module
 */

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;
const encoder = new TextEncoder();

/**
 * Encodes one subject token. Tokens made of `[A-Za-z0-9_-]` pass unchanged; anything else
 * (dots, wildcards, spaces, unicode, the empty string) becomes `~` followed by the base64url of its
 * UTF-8 bytes, which is injective and cannot collide with a plain token.
 *
 * @example
 * ```ts
 * import { encodeSubjectToken } from "@hamok/core/internal";
 * encodeSubjectToken("chat");      // "chat"
 * encodeSubjectToken("chat.room"); // "~Y2hhdC5yb29t"
 * ```
 */
export function encodeSubjectToken(token: string): string {
  if (SAFE_TOKEN.test(token)) return token;
  const bytes = encoder.encode(token);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return "~" + btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The subjects a peer uses, derived from one prefix (default `hamok.<clusterId>`).
 *
 * @example
 * ```ts
 * import { ClusterSubjects } from "@hamok/core/internal";
 * const subjects = new ClusterSubjects("hamok.orders");
 * subjects.inbox("peer-1");              // "hamok.orders.peer.peer-1"
 * subjects.event("chat", "message");     // "hamok.orders.emit.chat.message"
 * subjects.shared;                       // "hamok.orders.append"
 * ```
 */
export class ClusterSubjects {
  /** The prefix every subject starts with. */
  readonly prefix: string;
  /** The broadcast subject used for discovery. */
  readonly broadcast: string;
  /**
   * The subject of a leader's shared appends and heartbeats: one publish for all its in-sync
   * followers, each message naming its recipients. Every peer subscribes to it.
   */
  readonly shared: string;

  /** Creates the subject set for a prefix (which must itself be a valid subject). */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.broadcast = `${prefix}.all`;
    this.shared = `${prefix}.append`;
  }

  /** The default prefix for a cluster id: `hamok.<encoded clusterId>`. */
  static prefixFor(clusterId: string): string {
    return `hamok.${encodeSubjectToken(clusterId)}`;
  }

  /** The unicast inbox of one peer. */
  inbox(peerId: string): string {
    return `${this.prefix}.peer.${encodeSubjectToken(peerId)}`;
  }

  /** The fan-out subject of one event of one emitter. */
  event(emitterId: string, event: string): string {
    return `${this.prefix}.emit.${encodeSubjectToken(emitterId)}.${encodeSubjectToken(event)}`;
  }
}
