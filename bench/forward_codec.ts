/**
 * The codec cost of a forwarded proposal: `encodeEnvelope` and `decodeEnvelope` of a Raft `propose`
 * message of N map `set` commands (a 3-byte key, a 64-byte value, a 27-character request id), as a
 * follower sends it to its leader, per message and per entry. Deno: `deno run -A
 * bench/forward_codec.ts [entries]`; Bun: `bun bench/forward_codec.ts [entries]` (default 14, about
 * what a follower batches with 64 sets in flight).
 *
 * @module
 */

import process from "node:process";
import { decodeEnvelope, encodeEnvelope, type WireEnvelope } from "../src/codec/envelope.ts";
import { encodeCommand } from "../src/cluster/command_codec.ts";

const n = Number(process.argv[2] ?? 14);
const value = new Uint8Array(66);
value[0] = 0x58; // a CBOR byte string of 64 bytes, as the map's codec writes a 64-byte value
value[1] = 64;
const key = Uint8Array.of(0x62, 0x6b, 0x31);
const entries = Array.from({ length: n }, (_, i) => ({
  data: encodeCommand("map", "m", "set", [key, value], "p1").slice(),
  requestId: `p1/abcd1234:q7x2k9ab.${100000 + i}`,
}));
const envelope = {
  type: "raft",
  from: "p1/abcd1234",
  body: { type: "propose", from: "p1/abcd1234", to: "p0/aaaa1111", term: 3, entries },
} as WireEnvelope;
const bytes = encodeEnvelope(envelope, "cluster-x").slice();
const rounds = 100_000;
for (const measured of [false, true]) {
  let t0 = performance.now();
  for (let r = 0; r < rounds; r++) decodeEnvelope(bytes);
  const decodeUs = (performance.now() - t0) * 1000 / rounds;
  t0 = performance.now();
  for (let r = 0; r < rounds; r++) encodeEnvelope(envelope, "cluster-x");
  const encodeUs = (performance.now() - t0) * 1000 / rounds;
  if (measured) {
    console.log(
      `${n} entries, ${bytes.length} bytes: decode ${decodeUs.toFixed(2)} µs (${
        (decodeUs * 1000 / n).toFixed(0)
      } ns/entry), encode ${encodeUs.toFixed(2)} µs (${(encodeUs * 1000 / n).toFixed(0)} ns/entry)`,
    );
  }
}
