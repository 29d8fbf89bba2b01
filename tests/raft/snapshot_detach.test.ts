import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RaftMessage, SnapshotChunkMessage } from "../../src/raft/types.ts";
import { encodeState, from, leaderWithFollowerBehind, to } from "../_helpers/raft_harness.ts";
import { crc32c } from "../../src/storage/crc32c.ts";

const chunks = (ms: RaftMessage[]) => ms.filter((m): m is SnapshotChunkMessage => m.type === "snapshot");

describe("RaftNode.detachSnapshotData", () => {
  it("chunks of a detached snapshot carry fill instead of bytes; filled in, they install it", () => {
    const { h, a } = leaderWithFollowerBehind(3);
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
    const { h, a } = leaderWithFollowerBehind(2);
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

describe("a transfer of a detached snapshot that was replaced", () => {
  it("restarts with the newer snapshot once it stalls (the storage cannot read the old one)", () => {
    const { h, a } = leaderWithFollowerBehind(2);
    const images = new Map<number, Uint8Array>();
    const compact = () => {
      const data = encodeState(h.record("a").state);
      a.compact(a.appliedIndex, data, crc32c(data));
      h.drain("a");
      images.clear(); // the storage holds the latest snapshot only
      images.set(a.snapshotIndex, data);
      assert.ok(a.detachSnapshotData(a.snapshotIndex));
    };
    compact();
    const first = a.snapshotIndex;
    let firstChunks = 0;
    h.heal();
    // the driver's part: fill in what the storage can read, drop the rest
    const toC = () => {
      for (const m of h.take(to("c"))) {
        if (m.type !== "snapshot" || m.fill === undefined) {
          h.deliver(m);
          continue;
        }
        const image = images.get(m.meta.index);
        if (m.meta.index === first) firstChunks++;
        if (image === undefined) continue;
        const { fill, ...chunk } = m;
        h.deliver({ ...chunk, data: image.subarray(m.offset, m.offset + fill) });
      }
    };
    for (let round = 0; round < 20 && firstChunks < 2; round++) {
      h.tick("a");
      toC();
      h.deliverAll(from("c"));
    }
    assert.ok(firstChunks >= 2 && h.node("c").snapshotIndex === 0, "the first transfer is under way");
    // more writes (c is in snapshot state: it gets no appends) and a newer snapshot replaces the first
    for (let i = 10; i < 15; i++) h.propose("a", `v${i}`);
    for (let round = 0; round < 6; round++) {
      h.deliverAll(to("b"));
      h.deliverAll(from("b"));
    }
    compact();
    assert.ok(a.snapshotIndex > first);
    for (let round = 0; round < 60 && h.node("c").snapshotIndex !== a.snapshotIndex; round++) {
      toC();
      h.deliverAll(from("c"));
      h.deliverAll(to("b"));
      h.deliverAll(from("b"));
      h.tick("a");
    }
    assert.equal(h.node("c").snapshotIndex, a.snapshotIndex);
    h.stabilize();
    assert.deepEqual(h.record("c").state, h.record("a").state);
  });
});
