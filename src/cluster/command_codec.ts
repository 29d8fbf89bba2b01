/**
 * The command codec: how a collection command travels in a log entry. An entry's data is the CBOR
 * array `[kind, id, op, args, proposerPeerId]`; its request id travels beside it in the entry.
 *
 * @module
 */

import { decodeCbor, encodeCbor } from "../codec/cbor.ts";
import type { Command } from "./state_machine.ts";

/**
 * The entry data of a command (throws if `args` cannot be encoded).
 *
 * @example
 * ```ts ignore
 * const data = encodeCommand("map", "stock", "set", [key, value], "peer-a");
 * ```
 */
export function encodeCommand(
  kind: string,
  id: string,
  op: string,
  args: unknown,
  peerId: string,
): Uint8Array {
  return encodeCbor([kind, id, op, args, peerId]);
}

/**
 * The command in an entry's data. Throws `TypeError` if it is not CBOR, or not a command: every
 * peer then skips the entry alike (a collection id of another type made a state under a number,
 * which a snapshot wrote as "", and replicas restored from it held another map than the others).
 *
 * @example
 * ```ts ignore
 * const { kind, id, op } = decodeCommand(entry.data);
 * ```
 */
export function decodeCommand(data: Uint8Array): Command {
  const raw = decodeCbor(data) as unknown[];
  if (!Array.isArray(raw) || raw.length !== 5) throw new TypeError("a command is an array of 5 items");
  const kind = raw[0];
  const id = raw[1];
  const op = raw[2];
  const peerId = raw[4];
  if (!isName(kind) || !isName(id) || !isName(op) || !isName(peerId)) {
    throw new TypeError("a command names its kind, id, op and proposer with non-empty strings");
  }
  return { kind, id, op, args: raw[3], peerId };
}

/**
 * A non-empty string. Not bounded here (the entry's size bounds it): ids made by an older version,
 * before collection ids were bounded at creation, must apply alike on every version.
 */
function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}
