import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ApplyContext } from "../../src/cluster/state_machine.ts";
import { HamokSubscriptionTable } from "../../src/collections/subscription_table.ts";

let index = 0;
const by = (peerId: string): ApplyContext => ({
  index: ++index,
  requestId: undefined,
  proposerPeerId: peerId,
});

describe("HamokSubscriptionTable restore", () => {
  it("takes the image's order, not the order the table had (replicas list subscribers alike)", () => {
    // whole-peer simulator: a replica that restored a snapshot kept its old subscribers where they
    // were and appended the new ones, so its export differed from the replicas that applied the log
    const source = new HamokSubscriptionTable("e");
    for (const peerId of ["p1", "p2", "p3", "p4"]) {
      source.apply("subscribe", { event: "ev", metadata: null }, by(peerId));
    }
    source.apply("subscribe", { event: "other", metadata: null }, by("p1"));
    const target = new HamokSubscriptionTable("e");
    target.apply("subscribe", { event: "other", metadata: null }, by("p1"));
    for (const peerId of ["p4", "p9", "p1"]) {
      target.apply("subscribe", { event: "ev", metadata: null }, by(peerId));
    }
    const events: string[] = [];
    target.on("added", (event, peerId) => events.push(`added ${event} ${peerId}`));
    target.on("removed", (event, peerId) => events.push(`removed ${event} ${peerId}`));
    target.restore(structuredClone(source.snapshot()));
    assert.deepEqual(target.toSnapshot(), source.toSnapshot());
    assert.deepEqual(events.sort(), ["added ev p2", "added ev p3", "removed ev p9"]);
  });
});
