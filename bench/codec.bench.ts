/**
 * Wire codec benchmarks: the hot-path envelopes (Raft append with 5 x 64 B entries, an event with a
 * 64 B payload), with raw cbor-x on the same wire arrays as the floor.
 *
 * Deno: `deno bench -A bench/codec.bench.ts`. Bun: `bun bench/codec.bench.ts` (runs through mitata).
 *
 * @module
 */

import {
  cborPayloadCodec,
  decodeEnvelope,
  decodePayload,
  encodeEnvelope,
  encodePayload,
  type WireEnvelope,
} from "../internal.ts";
import { cborDecoder, cborEncoder, decodeCbor } from "../src/codec/cbor.ts";

type BenchFn = () => void;
interface BenchDef {
  name: string;
  group: string;
  baseline?: boolean;
  fn: BenchFn;
}

const defs: BenchDef[] = [];
function bench(group: string, name: string, fn: BenchFn, baseline = false): void {
  defs.push({ name, group, baseline, fn });
}

function payload(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

const append: WireEnvelope = {
  type: "raft",
  from: "peer-0123456789",
  body: {
    type: "append",
    from: "member-aaaa",
    to: "member-bbbb",
    term: 7,
    prevIndex: 99,
    prevTerm: 7,
    commit: 98,
    entries: Array.from({ length: 5 }, (_, i) => ({
      index: 100 + i,
      term: 7,
      type: "normal" as const,
      data: payload(64, i),
      requestId: `req-${i}`,
    })),
  },
};

const event: WireEnvelope = {
  type: "event",
  from: "peer-0123456789",
  body: {
    emitterId: "chat",
    event: "message",
    payload: payload(64, 9),
    seq: 12345,
    ackRequestId: "ack-1234",
  },
};

const appendBytes = encodeEnvelope(append);
const eventBytes = encodeEnvelope(event);
const appendWire = decodeCbor(appendBytes);
const eventWire = decodeCbor(eventBytes);
const args = ["message", { text: "hello", at: 1700000000000 }];
const argsBytes = encodePayload(cborPayloadCodec, args);

let sink = 0;
bench("raft append 5x64B encode", `encodeEnvelope (${appendBytes.length} B)`, () => {
  sink += encodeEnvelope(append).length;
}, true);
bench("raft append 5x64B encode", "cbor-x encode of the same wire array (floor)", () => {
  sink += cborEncoder.encode(appendWire).length;
});
bench("raft append 5x64B decode", "decodeEnvelope (checked)", () => {
  sink += decodeEnvelope(appendBytes).from.length;
}, true);
bench("raft append 5x64B decode", "cbor-x decode only (floor)", () => {
  sink += (cborDecoder.decode(appendBytes) as unknown[]).length;
});

bench("event 64B encode", `encodeEnvelope (${eventBytes.length} B)`, () => {
  sink += encodeEnvelope(event).length;
}, true);
bench("event 64B encode", "cbor-x encode of the same wire array (floor)", () => {
  sink += cborEncoder.encode(eventWire).length;
});
bench("event 64B decode", "decodeEnvelope (checked)", () => {
  sink += decodeEnvelope(eventBytes).from.length;
}, true);
bench("event 64B decode", "cbor-x decode only (floor)", () => {
  sink += (cborDecoder.decode(eventBytes) as unknown[]).length;
});

bench("payload codec encode", "encodePayload CBOR ['message', {text, at}]", () => {
  sink += encodePayload(cborPayloadCodec, args).length;
}, true);
bench("payload codec decode", "decodePayload CBOR", () => {
  sink += decodePayload(cborPayloadCodec, argsBytes).length;
}, true);

// Deno.bench where it exists; elsewhere (Bun) the same definitions through mitata.
const deno = (globalThis as {
  Deno?: { bench?: (o: { name: string; group: string; baseline?: boolean; fn: BenchFn }) => void };
})
  .Deno;
if (deno?.bench) {
  for (const d of defs) deno.bench(d);
} else {
  const mitata = await import("mitata");
  for (const group of new Set(defs.map((d) => d.group))) {
    mitata.group(group, () => {
      for (const d of defs) if (d.group === group) mitata.bench(d.name, d.fn);
    });
  }
  await mitata.run();
  if (sink === -1) console.log(sink);
}
