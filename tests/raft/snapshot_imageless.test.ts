import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { RaftMessage } from "../../src/raft/types.ts";
import { RaftError } from "../../src/raft/raft_error.ts";
import { encodeState, from, leaderWithFollowerBehind, to } from "../_helpers/raft_harness.ts";
import { crc32c } from "../../src/storage/crc32c.ts";

const chunksTo = (ms: readonly RaftMessage[], id: string) =>
  ms.filter((m) => m.type === "snapshot" && m.to === id).length;

/** a leads a, b, c; c was cut off while ten entries were written and compacted without an image. */
function behindAnImagelessSnapshot() {
  const { h, a } = leaderWithFollowerBehind(2);
  a.compactWithoutImage(a.appliedIndex);
  h.drain("a");
  return { h, a, index: a.snapshotIndex };
}

describe("RaftNode.compactWithoutImage", () => {
  it("compacts the log; a transfer of it sends nothing and asks for an image until one is given", () => {
    const { h, a, index } = behindAnImagelessSnapshot();
    assert.ok(index > 0 && a.snapshotImageless);
    assert.equal(a.detachSnapshotData(index), false, "nothing to detach");
    assert.equal(a.takeImageRequest(), 0, "nobody asked yet");
    h.heal();
    for (let round = 0; round < 10; round++) {
      h.tick("a");
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    assert.equal(chunksTo(h.sent, "c"), 0, "no chunk of an imageless snapshot leaves");
    assert.equal(h.node("c").snapshotIndex, 0);
    assert.equal(a.takeImageRequest(), index, "the transfer asks for an image");
    assert.equal(a.takeImageRequest(), 0, "taken");
    const data = encodeState(h.record("a").state);
    assert.equal(a.provideImage(index + 1, data), false, "not the latest snapshot");
    assert.equal(a.provideImage(index, data, crc32c(data)), true);
    assert.equal(a.snapshotImageless, false);
    assert.equal(a.provideImage(index, data), false, "it has one now");
    h.stabilize();
    assert.ok(chunksTo(h.sent, "c") >= Math.ceil(data.byteLength / 8));
    assert.equal(h.node("c").snapshotIndex, index);
    assert.deepEqual(h.record("c").state, h.record("a").state);
    // dropped again once nobody needs it: the next transfer asks again
    assert.equal(a.dropImage(index + 1), false);
    assert.equal(a.dropImage(index), true);
    assert.equal(a.dropImage(index), false, "already imageless");
    assert.ok(a.snapshotImageless);
  });

  it("a transfer waiting for an image moves to a newer snapshot taken with one", () => {
    const { h, a, index } = behindAnImagelessSnapshot();
    h.heal();
    for (let round = 0; round < 4; round++) {
      h.tick("a");
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    assert.equal(a.takeImageRequest(), index);
    // more is applied meanwhile (c gets no appends: it waits for a snapshot); a compaction with an image
    h.isolate("c");
    for (let i = 10; i < 14; i++) h.propose("a", `v${i}`);
    h.stabilize();
    h.heal();
    const data = encodeState(h.record("a").state);
    a.compact(a.appliedIndex, data, crc32c(data));
    h.drain("a");
    assert.ok(a.snapshotIndex > index);
    for (let round = 0; round < 40 && h.node("c").snapshotIndex !== a.snapshotIndex; round++) {
      h.tick("a");
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    assert.equal(h.node("c").snapshotIndex, a.snapshotIndex);
    h.stabilize();
    assert.deepEqual(h.record("c").state, h.record("a").state);
  });

  it("refuses an index beyond the applied one and ignores one not beyond the snapshot", () => {
    const { a, index } = behindAnImagelessSnapshot();
    assert.throws(() => a.compactWithoutImage(a.appliedIndex + 5), RaftError);
    a.compactWithoutImage(index - 1);
    assert.equal(a.snapshotIndex, index);
  });

  it("followersMatchFloor: what a follower keeping up has, or the snapshot being sent to one", () => {
    const { h, a, index } = behindAnImagelessSnapshot();
    const applied = a.appliedIndex;
    // c (cut off, its window full) lags: within the lag limit it holds the floor, beyond it not
    const lag = applied - h.node("c").appliedIndex;
    assert.ok(lag > 0);
    assert.equal(a.followersMatchFloor(lag), applied - lag);
    assert.equal(a.followersMatchFloor(lag - 1), applied, "a laggard beyond the limit is left to a snapshot");
    h.heal();
    for (let round = 0; round < 4; round++) {
      h.tick("a");
      h.deliverAll(to("c"));
      h.deliverAll(from("c"));
    }
    // c waits for the image of the snapshot at `index`: the log is kept from there
    assert.equal(a.followersMatchFloor(0), index);
    assert.equal(
      h.node("b").followersMatchFloor(0),
      h.node("b").appliedIndex,
      "a follower: its applied index",
    );
  });
});
