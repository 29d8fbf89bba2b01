import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AckBatcher, MAX_ACKS_PER_MESSAGE } from "../../src/cluster/ack_batcher.ts";
import { ACKS_MAX_BYTES, decodeEnvelope, encodeEnvelope, type WireError } from "../../src/codec/envelope.ts";

type Sent =
  | { to: string; ack: [string, string]; error: WireError | undefined }
  | { to: string; acks: [string, string][] };

function recorder(): { sent: Sent[]; batcher: AckBatcher } {
  const sent: Sent[] = [];
  const batcher = new AckBatcher({
    sendAck: (to, emitterId, ackRequestId, error) => sent.push({ to, ack: [emitterId, ackRequestId], error }),
    sendAcks: (to, acks) => sent.push({ to, acks: [...acks] }),
  });
  return { sent, batcher };
}

/** Resolves after the microtasks queued so far (and the ones they queue) have run. */
const afterMicrotasks = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

const failure: WireError = { code: "HAMOK_LISTENER", message: "boom" };

describe("AckBatcher", () => {
  it("sends a lone acknowledgement as a plain ack at the end of the microtask", async () => {
    const { sent, batcher } = recorder();
    batcher.acknowledge("pub", "chat", "a1");
    assert.deepEqual(sent, []);
    await afterMicrotasks();
    assert.deepEqual(sent, [{ to: "pub", ack: ["chat", "a1"], error: undefined }]);
  });

  it("coalesces the successes of one microtask into one message per publisher, in order", async () => {
    const { sent, batcher } = recorder();
    batcher.acknowledge("pub-1", "chat", "a1");
    batcher.acknowledge("pub-2", "chat", "b1");
    batcher.acknowledge("pub-1", "news", "a2");
    batcher.acknowledge("pub-1", "chat", "a3");
    await afterMicrotasks();
    assert.deepEqual(sent, [
      { to: "pub-1", acks: [["chat", "a1"], ["news", "a2"], ["chat", "a3"]] },
      { to: "pub-2", ack: ["chat", "b1"], error: undefined },
    ]);
  });

  it("sends a failure at once, after the successes queued before it for the same publisher", async () => {
    const { sent, batcher } = recorder();
    batcher.acknowledge("pub-1", "chat", "a1");
    batcher.acknowledge("pub-1", "chat", "a2");
    batcher.acknowledge("pub-2", "chat", "b1");
    batcher.acknowledge("pub-1", "chat", "a3", failure);
    // synchronously: pub-1's queued successes, then the failure; pub-2 still waits for the microtask
    assert.deepEqual(sent, [
      { to: "pub-1", acks: [["chat", "a1"], ["chat", "a2"]] },
      { to: "pub-1", ack: ["chat", "a3"], error: failure },
    ]);
    batcher.acknowledge("pub-1", "chat", "a4");
    await afterMicrotasks();
    assert.deepEqual(sent.slice(2), [
      { to: "pub-2", ack: ["chat", "b1"], error: undefined },
      { to: "pub-1", ack: ["chat", "a4"], error: undefined },
    ]);
  });

  it("sends a failure alone when nothing is queued", () => {
    const { sent, batcher } = recorder();
    batcher.acknowledge("pub", "chat", "a1", failure);
    assert.deepEqual(sent, [{ to: "pub", ack: ["chat", "a1"], error: failure }]);
  });

  it("starts a new batch after each flush", async () => {
    const { sent, batcher } = recorder();
    batcher.acknowledge("pub", "chat", "a1");
    batcher.acknowledge("pub", "chat", "a2");
    await afterMicrotasks();
    batcher.acknowledge("pub", "chat", "a3");
    await afterMicrotasks();
    assert.deepEqual(sent, [
      { to: "pub", acks: [["chat", "a1"], ["chat", "a2"]] },
      { to: "pub", ack: ["chat", "a3"], error: undefined },
    ]);
  });

  it("drops what is queued and ignores later acknowledgements once closed", async () => {
    const { sent, batcher } = recorder();
    batcher.acknowledge("pub", "chat", "a1");
    batcher.close();
    batcher.acknowledge("pub", "chat", "a2");
    batcher.acknowledge("pub", "chat", "a3", failure);
    await afterMicrotasks();
    assert.deepEqual(sent, []);
  });

  it("splits a large batch into messages a receiver takes, in order", async () => {
    const { sent, batcher } = recorder();
    const n = 2 * MAX_ACKS_PER_MESSAGE + 5;
    const emitterId = "e".repeat(256);
    for (let i = 0; i < n; i++) batcher.acknowledge("p", emitterId, `p/12345678:abcdefgh.${i}`);
    await afterMicrotasks();
    const parts = sent.map((m) => ("acks" in m ? m.acks : [m.ack]));
    assert.deepEqual(parts.map((p) => p.length), [MAX_ACKS_PER_MESSAGE, MAX_ACKS_PER_MESSAGE, 5]);
    assert.deepEqual(
      parts.flat().map(([, id]) => id),
      Array.from({ length: n }, (_, i) => `p/12345678:abcdefgh.${i}`),
    );
    // each part, with the longest emitter id, fits the receiver's limit for acks messages
    const largest = encodeEnvelope({ type: "acks", from: "q", body: { peerId: "q", acks: parts[0]! } }, "c");
    assert.ok(largest.byteLength <= ACKS_MAX_BYTES, `${largest.byteLength} bytes`);
    assert.equal(decodeEnvelope(largest).type, "acks");
  });

  it("a receiver refuses an acks message over ACKS_MAX_BYTES before decoding it", () => {
    const acks = Array.from(
      { length: 40_000 },
      (_, i) => ["e", `id-${i}-${"x".repeat(20)}`] as [string, string],
    );
    const bytes = encodeEnvelope({ type: "acks", from: "q", body: { peerId: "q", acks } }, "c");
    assert.ok(bytes.byteLength > ACKS_MAX_BYTES);
    // the old code decoded it whole (about 45 times its size in heap) before any check
    assert.throws(() => decodeEnvelope(bytes), /limit of 1048576 for its message type/);
  });
});
