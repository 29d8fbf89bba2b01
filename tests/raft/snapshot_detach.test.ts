import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RaftMessage, SnapshotChunkMessage } from "../../src/raft/types.ts";
import { encodeState, from, RaftHarness, to } from "../_helpers/raft_harness.ts";
import { crc32c } from "../../src/storage/crc32c.ts";

const chunks = (ms: RaftMessage[]) => ms.filter((m): m is SnapshotChunkMessage => m.type === "snapshot");

describe("RaftNode.detachSnapshotData", () => {
  it("chunks of a detached snapshot carry fill instead of bytes; filled in, they install it", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { snapshotChunkBytes: 8, maxInflightAppends: 3 });
    h.elect("a");
    h.tickAll(1);
    h.isolate("c");
    for (let i = 0; i < 10; i++) h.propose("a", `v${i}`);
    h.stabilize();
    h.tick("a");
    h.stabilize();
    const a = h.node("a");
    const data = encodeState(h.record("a").state);
    a.compact(a.appliedIndex, data, crc32c(data));
    h.drain("a");
    const index = a.snapshotIndex;
    assert.equal(a.detachSnapshotData(index + 1), false, "not the latest snapshot");
    assert.equal(a.detachSnapshotData(index), true);
    assert.equal(a.detachSnapshotData(index), false, "already detached");
    h.heal();
    h.tick("a");
    let sent = 0;
    for (let round = 0; round < 40 && h.node("c").snapshotIndex !== index; round++) {
      // the driver's part: read each chunk's bytes (here from the image) before it leaves
      for (const m of h.take(to("c"))) {
        if (m.type !== "snapshot") {
          h.deliver(m);
          continue;
        }
        sent++;
        assert.equal(m.total, data.byteLength);
        assert.equal(m.digest, crc32c(data));
        assert.equal(m.data.byteLength, 0);
        assert.equal(m.fill, Math.min(8, data.byteLength - m.offset));
        const { fill, ...chunk } = m;
        h.deliver({ ...chunk, data: data.subarray(m.offset, m.offset + fill!) });
      }
      h.deliverAll(from("c"));
      h.tick("a");
    }
    assert.equal(sent >= Math.ceil(data.byteLength / 8), true, `${sent} chunks`);
    assert.equal(h.node("c").snapshotIndex, index);
    assert.deepEqual(h.record("c").state, h.record("a").state);
  });

  it("a transfer that started before the detach keeps sending the bytes it started with", () => {
    const h = RaftHarness.bootstrap(["a", "b", "c"], { snapshotChunkBytes: 8, maxInflightAppends: 2 });
    h.elect("a");
    h.tickAll(1);
    h.isolate("c");
    for (let i = 0; i < 10; i++) h.propose("a", `v${i}`);
    h.stabilize();
    h.tick("a");
    h.stabilize();
    const a = h.node("a");
    a.compact(a.appliedIndex, encodeState(h.record("a").state));
    h.drain("a");
    h.heal();
    h.tick("a");
    for (let i = 0; i < 2; i++) {
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    assert.ok(a.detachSnapshotData(a.snapshotIndex));
    h.stabilize();
    const all = chunks(h.sent.filter(to("c")));
    assert.ok(all.length > 2 && all.every((m) => m.fill === undefined && m.data.byteLength > 0));
    assert.deepEqual(h.record("c").state, h.record("a").state);
  });
});
