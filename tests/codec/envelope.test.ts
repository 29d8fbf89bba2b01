import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { HamokCodecError, HamokConfigError } from "../../mod.ts";
import {
  decodeEnvelope,
  DEFAULT_MAX_ENVELOPE_BYTES,
  encodeEnvelope,
  PROTOCOL_VERSION,
  type WireEnvelope,
} from "../../internal.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { allEnvelopes, bytes, fiveEntries, otherEnvelopes, prng, raftMessages } from "./_fixtures.ts";

/** Asserts that `fn` throws a HamokCodecError with a cause, whose message matches `pattern`. */
function assertCodecError(fn: () => unknown, pattern?: RegExp): HamokCodecError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof HamokCodecError, `expected HamokCodecError, got ${String(caught)}`);
  assert.equal(caught.code, "HAMOK_CODEC");
  assert.ok(caught.cause !== undefined, "a codec error carries a cause");
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

/** Raw wire bytes `[version, type, from, body]`, bypassing encodeEnvelope. */
function raw(
  type: unknown,
  body: unknown,
  from: unknown = "p",
  version: unknown = PROTOCOL_VERSION,
): Uint8Array {
  return encodeCbor([version, type, from, body]);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

describe("envelope round trip", () => {
  it("carries protocol version 1", () => {
    assert.equal(PROTOCOL_VERSION, 1);
    const wire = decodeCbor(encodeEnvelope(otherEnvelopes()[0])) as unknown[];
    assert.ok(Array.isArray(wire));
    assert.equal(wire.length, 4);
    assert.equal(wire[0], 1);
  });

  for (const message of raftMessages()) {
    const label = `raft ${message.type} (${Object.keys(message).join(",")})`;
    it(`round-trips ${label}`, () => {
      const env: WireEnvelope = { type: "raft", from: "peer-x", body: message };
      assert.deepStrictEqual(decodeEnvelope(encodeEnvelope(env)), env);
    });
  }

  for (const env of otherEnvelopes()) {
    it(`round-trips ${env.type} (${Object.keys(env.body).join(",")})`, () => {
      assert.deepStrictEqual(decodeEnvelope(encodeEnvelope(env)), env);
    });
  }

  it("covers every Raft message variant", () => {
    const types = new Set(raftMessages().map((m) => m.type));
    assert.equal(types.size, 14);
  });

  it("pins the wire layout (golden bytes)", () => {
    // [1, 0 (raft), "p", [3 (heartbeat-response), "a", "b", 1]]
    const hb = encodeEnvelope({
      type: "raft",
      from: "p",
      body: { type: "heartbeat-response", from: "a", to: "b", term: 1 },
    });
    assert.equal(hex(hb), "84 01 00 61 70 84 03 61 61 61 62 01");
    // [1, 4 (event), "p", ["e", "x", h'0102', 5]]
    const ev = encodeEnvelope({
      type: "event",
      from: "p",
      body: { emitterId: "e", event: "x", payload: new Uint8Array([1, 2]), seq: 5 },
    });
    assert.equal(hex(ev), "84 01 04 61 70 84 61 65 61 78 42 01 02 05");
  });

  it("refuses an event whose publisher incarnation is longer than 16 characters", () => {
    const env: WireEnvelope = {
      type: "event",
      from: "p",
      body: { emitterId: "e", event: "x", payload: "[]", seq: 1, incarnation: "x".repeat(17) },
    };
    assert.throws(() => decodeEnvelope(encodeEnvelope(env)), HamokCodecError);
    const fits = { ...env, body: { ...env.body, incarnation: "x".repeat(16) } };
    assert.deepStrictEqual(decodeEnvelope(encodeEnvelope(fits)), fits);
  });

  it("encodes to a plain Uint8Array that later encodes do not overwrite", () => {
    const envs = allEnvelopes();
    const encoded = envs.map((env) => encodeEnvelope(env));
    for (const b of encoded) assert.equal(b.constructor, Uint8Array);
    for (let i = 0; i < envs.length; i++) assert.deepStrictEqual(decodeEnvelope(encoded[i]), envs[i]);
  });

  it("decodes entry data as plain Uint8Array views into the input (no copy)", () => {
    const env: WireEnvelope = {
      type: "raft",
      from: "p",
      body: {
        type: "append",
        from: "a",
        to: "b",
        term: 1,
        prevIndex: 0,
        prevTerm: 0,
        commit: 0,
        entries: fiveEntries(),
      },
    };
    const input = encodeEnvelope(env);
    const decoded = decodeEnvelope(input);
    assert.equal(decoded.type, "raft");
    assert.equal(decoded.body.type, "append");
    if (decoded.type !== "raft" || decoded.body.type !== "append") return;
    for (const e of decoded.body.entries) {
      assert.equal(e.data.constructor, Uint8Array);
      assert.equal(e.data.buffer, input.buffer, "entry data shares the input's memory");
      assert.ok(e.data.byteOffset >= input.byteOffset);
      assert.ok(e.data.byteOffset + e.data.byteLength <= input.byteOffset + input.byteLength);
    }
  });

  it("decodes byte fields as plain Uint8Array also when the input is a Buffer", () => {
    for (const env of allEnvelopes()) {
      const input = Buffer.from(encodeEnvelope(env));
      const decoded = decodeEnvelope(input);
      assert.deepStrictEqual(decoded, env);
      if (decoded.type === "event") {
        const p = decoded.body.payload;
        if (typeof p !== "string") assert.equal(p.constructor, Uint8Array);
      }
    }
  });

  it("decodes an envelope that sits at an offset inside a larger buffer", () => {
    const env = otherEnvelopes()[8];
    const encoded = encodeEnvelope(env);
    const big = new Uint8Array(encoded.length + 20);
    big.set(encoded, 10);
    assert.deepStrictEqual(decodeEnvelope(big.subarray(10, 10 + encoded.length)), env);
  });
});

describe("envelope encode errors", () => {
  it("rejects an unknown message type", () => {
    for (const type of ["nope", "toString", "__proto__"]) {
      assertCodecError(
        () => encodeEnvelope({ type, from: "p", body: {} } as unknown as WireEnvelope),
        /unknown message type/,
      );
    }
  });

  it("rejects an unknown Raft message type", () => {
    const body = { type: "gossip", from: "a", to: "b", term: 1 };
    assertCodecError(
      () => encodeEnvelope({ type: "raft", from: "p", body } as unknown as WireEnvelope),
      /gossip/,
    );
  });

  it("wraps values CBOR cannot encode", () => {
    const fn = (() => 1) as unknown as string;
    const err = assertCodecError(
      () =>
        encodeEnvelope({ type: "request", from: fn, body: { requestId: "r", op: "o", payload: bytes(1) } }),
      /cannot encode request envelope/,
    );
    assert.ok(err.cause instanceof Error);
  });
});

describe("envelope decode errors", () => {
  const valid = allEnvelopes().map((env) => encodeEnvelope(env));

  it("rejects every proper prefix of every valid message", () => {
    let prefixes = 0;
    for (const msg of valid) {
      for (let n = 0; n < msg.length; n++) {
        assertCodecError(() => decodeEnvelope(msg.subarray(0, n)));
        prefixes++;
      }
    }
    assert.ok(prefixes > 1000);
  });

  it("rejects empty input and trailing bytes", () => {
    assertCodecError(() => decodeEnvelope(new Uint8Array(0)), /empty/);
    for (const msg of valid.slice(0, 5)) {
      const longer = new Uint8Array(msg.length + 1);
      longer.set(msg);
      assertCodecError(() => decodeEnvelope(longer), /malformed CBOR/);
    }
  });

  it("rejects input that is not a Uint8Array", () => {
    for (const v of ["84", [0x84], null, undefined, new ArrayBuffer(4), new Uint16Array(2)]) {
      assertCodecError(() => decodeEnvelope(v as unknown as Uint8Array), /expected a Uint8Array/);
    }
  });

  it("rejects CBOR values that are not envelopes", () => {
    for (const v of [null, undefined, 1, "env", true, {}, new Map(), [], bytes(4)]) {
      assertCodecError(() => decodeEnvelope(encodeCbor(v)), /not an envelope/);
    }
    assertCodecError(() => decodeEnvelope(encodeCbor({ v: 1, t: 0, f: "p", b: [] })), /not an envelope/);
    assertCodecError(() => decodeEnvelope(encodeCbor([1, 4, "p"])), /not an envelope \(3 elements\)/);
    assertCodecError(
      () => decodeEnvelope(encodeCbor([1, 4, "p", [], "c", 0])),
      /not an envelope \(6 elements\)/,
    );
    assertCodecError(() => decodeEnvelope(encodeCbor([1, 4, "p", [], 0])), /cluster is .*not a string/);
    assertCodecError(() => decodeEnvelope(raw(4, ["e", "x", bytes(1), 1], "p", "1")), /not an envelope/);
  });

  it("rejects an unknown protocol version", () => {
    for (const version of [0, 2, 255, -1]) {
      const err = assertCodecError(
        () => decodeEnvelope(raw(4, ["e", "x", bytes(1), 1], "p", version)),
        new RegExp(`unknown protocol version ${version}`),
      );
      assert.ok(err.cause instanceof RangeError);
    }
    // a future version may change everything after the version: still reported as a version problem
    assertCodecError(
      () => decodeEnvelope(encodeCbor([2, "anything", { else: true }])),
      /unknown protocol version 2/,
    );
  });

  it("rejects an unknown message type", () => {
    for (const type of [8, 99, -1, 1.5, "raft", null]) {
      assertCodecError(() => decodeEnvelope(raw(type, [])), /unknown message type/);
    }
  });

  it("rejects a sender that is not a string", () => {
    assertCodecError(() => decodeEnvelope(raw(4, ["e", "x", bytes(1), 1], 5)), /sender is number/);
  });

  const badBodies: [string, number, unknown, RegExp][] = [
    ["append term -1", 0, [0, "a", "b", -1, 0, 0, 0, []], /raft\.term: expected an integer >= 0, got number/],
    ["append term 1.5", 0, [0, "a", "b", 1.5, 0, 0, 0, []], /raft\.term/],
    ["append term bigint", 0, [0, "a", "b", 5n, 0, 0, 0, []], /raft\.term.*bigint/],
    ["append term string", 0, [0, "a", "b", "7", 0, 0, 0, []], /raft\.term.*string/],
    ["append term 2^53", 0, [0, "a", "b", 2 ** 53, 0, 0, 0, []], /raft\.term/],
    ["append from number", 0, [0, 1, "b", 1, 0, 0, 0, []], /raft\.from/],
    ["append missing field", 0, [0, "a", "b", 1, 0, 0, []], /raft\.append: expected 8\.\.9 elements, got 7/],
    [
      "append extra field",
      0,
      [0, "a", "b", 1, 0, 0, 0, [], 1, 2],
      /raft\.append: expected 8\.\.9 elements, got 10/,
    ],
    ["append leaderMatch negative", 0, [0, "a", "b", 1, 0, 0, 0, [], -1], /raft\.append\.leaderMatch/],
    ["append leaderMatch string", 0, [0, "a", "b", 1, 0, 0, 0, [], "5"], /raft\.append\.leaderMatch/],
    [
      "append entries not an array",
      0,
      [0, "a", "b", 1, 0, 0, 0, {}],
      /raft\.append\.entries: expected array/,
    ],
    [
      "entry data string",
      0,
      [0, "a", "b", 1, 0, 0, 0, [[1, 1, 0, "x"]]],
      /entries\[0\]: entry\.data: expected bytes/,
    ],
    [
      "entry too short",
      0,
      [0, "a", "b", 1, 0, 0, 0, [[1, 1, 0, bytes(1)], [1, 1, 0]]],
      /entries\[1\]: entry/,
    ],
    ["entry type code 3", 0, [0, "a", "b", 1, 0, 0, 0, [[1, 1, 3, bytes(1)]]], /entry\.type/],
    ["entry requestId number", 0, [0, "a", "b", 1, 0, 0, 0, [[1, 1, 0, bytes(1), 5]]], /entry\.requestId/],
    [
      "entry change code 9",
      0,
      [0, "a", "b", 1, 0, 0, 0, [[1, 1, 1, bytes(0), null, [9, "m"]]]],
      /entry\.change\.type/,
    ],
    [
      "entry change member",
      0,
      [0, "a", "b", 1, 0, 0, 0, [[1, 1, 1, bytes(0), null, [0, 1]]]],
      /change\.memberId/,
    ],
    ["entry index -1", 0, [0, "a", "b", 1, 0, 0, 0, [[-1, 1, 0, bytes(1)]]], /entry\.index/],
    ["raft type 14", 0, [14, "a", "b", 1], /raft\.type/],
    ["raft type name", 0, ["append", "a", "b", 1], /raft\.type/],
    ["raft body map", 0, { type: "append" }, /raft: expected array, got Object/],
    ["raft body empty", 0, [], /raft\.type/],
    [
      "append-response rejectHint -2",
      0,
      [1, "a", "b", 1, 0, true, -2, 0],
      /rejectHint: expected an integer >= -1/,
    ],
    ["append-response index -1", 0, [1, "a", "b", 1, -1, true, 0, 0], /append-response\.index/],
    [
      "append-response reject 0",
      0,
      [1, "a", "b", 1, 0, 0, 0, 0],
      /append-response\.reject: expected boolean/,
    ],
    ["heartbeat ctx number", 0, [2, "a", "b", 1, 0, 7], /heartbeat\.ctx/],
    ["vote transfer string", 0, [4, "a", "b", 1, 0, 0, "yes"], /vote\.transfer/],
    [
      "snapshot voter number",
      0,
      [8, "a", "b", 1, [1, 1, ["a", 2], [], []], 0, bytes(1), true, 1],
      /voters\[1\]/,
    ],
    ["snapshot meta short", 0, [8, "a", "b", 1, [1, 1, []], 0, bytes(1), true, 1], /snapshot\.meta/],
    ["snapshot data string", 0, [8, "a", "b", 1, [1, 1, [], [], []], 0, "x", true, 1], /snapshot\.data/],
    [
      "snapshot total missing",
      0,
      [8, "a", "b", 1, [1, 1, [], [], []], 0, bytes(1), true],
      /raft\.snapshot: expected 9\.\.10/,
    ],
    ["snapshot total -1", 0, [8, "a", "b", 1, [1, 1, [], [], []], 0, bytes(1), true, -1], /snapshot\.total/],
    [
      "snapshot digest 2^32",
      0,
      [8, "a", "b", 1, [1, 1, [], [], []], 0, bytes(1), true, 1, 2 ** 32],
      /digest/,
    ],
    ["propose entry string", 0, [11, "a", "b", 1, ["x"]], /propose\.entries\[0\]/],
    ["read-index-response -2", 0, [13, "a", "b", 1, "c", -2], /index: expected an integer >= -1/],
    ["hello joined 1", 1, ["c", "p", "m", 0, 1], /hello\.joined/],
    ["hello term NaN", 1, ["c", "p", "m", NaN, true], /hello\.term/],
    ["hello leaderId number", 1, ["c", "p", "m", 0, true, 1], /hello\.leaderId/],
    ["hello lone 1", 1, ["c", "p", "m", 0, true, null, "u", 1], /hello\.lone/],
    ["hello 9 elements", 1, ["c", "p", "m", 0, true, null, "u", true, 1], /hello: expected 5\.\.8/],
    ["request payload string", 2, ["r", "join", "x"], /request\.payload/],
    ["request 2 elements", 2, ["r", "join"], /request: expected 3 elements/],
    ["response payload null", 3, ["r", true, null], /response\.payload/],
    ["response error map", 3, ["r", false, null, { code: "X", message: "y" }], /response\.error/],
    ["response error code", 3, ["r", false, null, [1, "y"]], /response\.error\.code/],
    ["event payload number", 4, ["e", "x", 5, 1], /event\.payload/],
    ["event seq -1", 4, ["e", "x", bytes(1), -1], /event\.seq/],
    ["event ackRequestId null", 4, ["e", "x", bytes(1), 1, null], /event\.ackRequestId/],
    ["ack ok missing", 5, ["e", "a", "p"], /ack: expected 4\.\.5 elements, got 3/],
    ["ack error string", 5, ["e", "a", "p", false, "boom"], /ack\.error/],
    ["acks empty", 6, ["p", []], /acks\.acks: expected a non-empty even number/],
    ["acks odd", 6, ["p", ["e", "a", "e"]], /acks\.acks: expected a non-empty even number/],
    ["acks id number", 6, ["p", ["e", 1]], /acks\.acks\[\]/],
    ["acks peer number", 6, [1, ["e", "a"]], /acks\.peerId/],
    ["acks 3 elements", 6, ["p", ["e", "a"], 1], /acks: expected 2 elements/],
  ];
  for (const [name, type, body, pattern] of badBodies) {
    it(`rejects a body that does not fit: ${name}`, () => {
      const err = assertCodecError(() => decodeEnvelope(raw(type, body)), /malformed \w+ body/);
      assert.match(err.message, pattern);
      assert.ok(err.cause instanceof TypeError);
    });
  }

  it("round-trips a lone member's hello, and writes the flag only when set", () => {
    const lone: WireEnvelope = {
      type: "hello",
      from: "p",
      body: {
        clusterId: "c",
        peerId: "p",
        memberId: "m",
        term: 2,
        joined: true,
        leaderId: "m",
        clusterUid: "u",
        lone: true,
      },
    };
    assert.deepStrictEqual(decodeEnvelope(encodeEnvelope(lone)), lone);
    const body = (decodeCbor(encodeEnvelope(lone)) as unknown[])[3] as unknown[];
    assert.equal(body.length, 8);
    const plain = { ...lone, body: { ...lone.body, lone: false } } as WireEnvelope;
    const plainBody = (decodeCbor(encodeEnvelope(plain)) as unknown[])[3] as unknown[];
    assert.equal(plainBody.length, 7);
  });

  it("accepts read-index-response index -1 (dropped read)", () => {
    const env = decodeEnvelope(raw(0, [13, "a", "b", 1, "c", -1]));
    assert.deepStrictEqual(env.body, {
      type: "read-index-response",
      from: "a",
      to: "b",
      term: 1,
      ctx: "c",
      index: -1,
    });
  });

  it("rejects messages over maxBytes, and accepts them at the limit", () => {
    const msg = valid[0];
    assert.ok(decodeEnvelope(msg, { maxBytes: msg.length }));
    const err = assertCodecError(() => decodeEnvelope(msg, { maxBytes: msg.length - 1 }), /exceed the limit/);
    assert.ok(err.cause instanceof RangeError);
  });

  it("has a default limit of 8 MiB", () => {
    assert.equal(DEFAULT_MAX_ENVELOPE_BYTES, 8 * 1024 * 1024);
    assertCodecError(
      () => decodeEnvelope(new Uint8Array(DEFAULT_MAX_ENVELOPE_BYTES + 1)),
      /exceed the limit of 8388608/,
    );
    const chunk = (n: number): WireEnvelope => ({
      type: "raft",
      from: "p",
      body: {
        type: "snapshot",
        from: "a",
        to: "b",
        term: 1,
        meta: { index: 1, term: 1, membership: { voters: ["a"], learners: [], removed: [] } },
        offset: 0,
        total: DEFAULT_MAX_ENVELOPE_BYTES,
        data: new Uint8Array(n),
        done: true,
      },
    });
    const probe = DEFAULT_MAX_ENVELOPE_BYTES - 100;
    const overhead = encodeEnvelope(chunk(probe)).length - probe;
    const atLimit = encodeEnvelope(chunk(DEFAULT_MAX_ENVELOPE_BYTES - overhead));
    assert.equal(atLimit.length, DEFAULT_MAX_ENVELOPE_BYTES);
    const decoded = decodeEnvelope(atLimit);
    assert.equal(
      decoded.type === "raft" && decoded.body.type === "snapshot" && decoded.body.data.length,
      DEFAULT_MAX_ENVELOPE_BYTES - overhead,
    );
    const over = encodeEnvelope(chunk(DEFAULT_MAX_ENVELOPE_BYTES - overhead + 1));
    assertCodecError(() => decodeEnvelope(over), /exceed the limit/);
  });

  it("rejects an invalid maxBytes with HamokConfigError", () => {
    for (const maxBytes of [0, -1, NaN, "10" as unknown as number]) {
      assert.throws(() => decodeEnvelope(valid[0], { maxBytes }), HamokConfigError);
    }
  });

  it("throws only HamokCodecError for seeded random garbage", () => {
    const random = prng(0xc0dec);
    let rejected = 0;
    let accepted = 0;
    const check = (input: Uint8Array): void => {
      let env: WireEnvelope;
      try {
        env = decodeEnvelope(input);
      } catch (error) {
        if (!(error instanceof HamokCodecError)) {
          assert.fail(`input ${hex(input)} threw ${String(error)}, not a HamokCodecError`);
        }
        rejected++;
        return;
      }
      // whatever decodes must be a well-formed envelope: it survives its own round trip
      accepted++;
      assert.deepStrictEqual(decodeEnvelope(encodeEnvelope(env)), env);
    };
    for (let i = 0; i < 3000; i++) {
      const input = new Uint8Array(1 + Math.floor(random() * 96));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(random() * 256);
      check(input);
    }
    // garbage behind a plausible header [1, code, "p", ...] reaches the body checks
    for (let i = 0; i < 3000; i++) {
      const tail = 1 + Math.floor(random() * 64);
      const input = new Uint8Array(5 + tail);
      input.set([0x84, 0x01, Math.floor(random() * 7), 0x61, 0x70]);
      for (let j = 5; j < input.length; j++) input[j] = Math.floor(random() * 256);
      check(input);
    }
    // valid messages with 1 to 3 bytes changed
    for (let i = 0; i < 6000; i++) {
      const input = new Uint8Array(valid[Math.floor(random() * valid.length)]);
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      check(input);
    }
    assert.equal(rejected + accepted, 12000);
    assert.ok(rejected > 6000, `most garbage is rejected (${rejected})`);
    // the decoder is not left in a broken state
    for (let i = 0; i < valid.length; i++) {
      assert.deepStrictEqual(decodeEnvelope(valid[i]), allEnvelopes()[i]);
    }
  });

  it("survives hostile CBOR: deep nesting, cycles, huge declared lengths, constructor tags", () => {
    const deep = new Uint8Array(200_001);
    deep.fill(0x81, 0, 200_000); // 200k nested one-element arrays around 0
    assertCodecError(() => decodeEnvelope(deep));
    // [1, 0, "p", shareable([sharedref(0)])]: a body that contains itself
    assertCodecError(
      () =>
        decodeEnvelope(new Uint8Array([0x84, 0x01, 0x00, 0x61, 0x70, 0xd8, 0x1c, 0x81, 0xd8, 0x1d, 0x00])),
      /malformed raft body|malformed CBOR/,
    );
    // an array claiming 2^64-1 elements; a byte string claiming 4 GiB
    assertCodecError(() =>
      decodeEnvelope(
        new Uint8Array([0x84, 0x01, 0x00, 0x61, 0x70, 0x9b, 255, 255, 255, 255, 255, 255, 255, 255]),
      )
    );
    assertCodecError(() =>
      decodeEnvelope(new Uint8Array([0x84, 0x01, 0x04, 0x61, 0x70, 0x5a, 255, 255, 255, 255, 0]))
    );
    // tag 27 (generic object) builds an Error where the sender should be
    const tag27 = [
      0x84,
      0x01,
      0x04,
      0xd8,
      0x1b,
      0x82,
      0x65,
      ...new TextEncoder().encode("Error"),
      0x61,
      0x78,
      0x80,
    ];
    assertCodecError(() => decodeEnvelope(new Uint8Array(tag27)), /sender is Error/);
    // a Date where a number should be
    assertCodecError(() => decodeEnvelope(raw(4, ["e", "x", bytes(1), new Date(0)])), /event\.seq.*Date/);
  });
});
