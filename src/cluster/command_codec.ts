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
 * The command in an entry's data (throws if it is not CBOR).
 *
 * @example
 * ```ts ignore
 * const { kind, id, op } = decodeCommand(entry.data);
 * ```
 */
export function decodeCommand(data: Uint8Array): Command {
  const raw = decodeCbor(data) as [string, string, string, unknown, string];
  return { kind: raw[0], id: raw[1], op: raw[2], args: raw[3], peerId: raw[4] };
}
