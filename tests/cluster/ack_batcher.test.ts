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
    // the longest ids, of characters UTF-8 takes three bytes for
    const emitterId = "事".repeat(256);
    const member = `${"節".repeat(253)}/12345678`;
    for (let i = 0; i < n; i++) batcher.acknowledge("p", emitterId, `${member}:abcdefgh.${i}`);
    await afterMicrotasks();
    const parts = sent.map((m) => ("acks" in m ? m.acks : [m.ack]));
    assert.ok(
      parts.length > 2 && parts.every((p) => p.length <= MAX_ACKS_PER_MESSAGE),
      `${parts.map((p) => p.length)}`,
    );
    assert.deepEqual(
      parts.flat().map(([, id]) => id),
      Array.from({ length: n }, (_, i) => `${member}:abcdefgh.${i}`),
    );
    // each part fits the receiver's limit for acks messages (1024 of these took 1.2 MB: refused)
    for (const part of parts) {
      const bytes = encodeEnvelope({ type: "acks", from: "q", body: { peerId: "q", acks: part } }, "c");
      assert.ok(bytes.byteLength <= ACKS_MAX_BYTES, `${bytes.byteLength} bytes`);
      assert.equal(decodeEnvelope(bytes).type, "acks");
    }
    // short ids go 1024 to a message
    sent.length = 0;
    for (let i = 0; i < n; i++) batcher.acknowledge("p", "e", `p/12345678:abcdefgh.${i}`);
    await afterMicrotasks();
    assert.deepEqual(sent.map((m) => ("acks" in m ? m.acks.length : 1)), [
      MAX_ACKS_PER_MESSAGE,
      MAX_ACKS_PER_MESSAGE,
      5,
    ]);
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
