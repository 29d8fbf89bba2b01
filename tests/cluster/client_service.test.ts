/** `ClientService` on its own: the bound on linearizable client reads in progress. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClientService, type ClientServiceHost } from "../../src/cluster/client_service.ts";
import { CLIENT_LIMITS, CLIENT_MAP_READ_OP, CLIENT_MAP_WRITE_OP } from "../../src/cluster/client_ops.ts";
import { PeerCounters } from "../../src/cluster/peer_counters.ts";
import { decodeCbor, encodeCbor } from "../../src/codec/cbor.ts";
import { HamokRateLimitedError } from "../../src/errors.ts";
import type { HamokStatus } from "../../src/cluster/status.ts";

describe("ClientService", () => {
  it("runs at most maxBarriers linearizable reads at once; the next is refused and counted, a finished one frees a place", async () => {
    const barriers: (() => void)[] = [];
    const host: ClientServiceHost = {
      status: () => ({}) as HamokStatus,
      findMapState: () => undefined,
      readBarrier: () => new Promise<void>((resolve) => barriers.push(resolve)),
      proposeMap: () => Promise.reject(new Error("not used")),
      publish: () => Promise.reject(new Error("not used")),
      sendEvent: () => {},
    };
    const counters = new PeerCounters();
    const service = new ClientService(host, counters, 5000, { ...CLIENT_LIMITS, maxBarriers: 2 });
    const read = encodeCbor({ mapId: "m", keys: ["k"], consistency: "linearizable" });
    const first = service.handle(CLIENT_MAP_READ_OP, read, "client-1");
    const second = service.handle(CLIENT_MAP_READ_OP, read, "client-2");
    await assert.rejects(service.handle(CLIENT_MAP_READ_OP, read, "client-3"), HamokRateLimitedError);
    assert.equal(counters.values().dropped["rate-limited"], 1);
    // a local read waits on nothing and is not bounded by it
    const local = decodeCbor(
      (await service.handle(CLIENT_MAP_READ_OP, encodeCbor({ mapId: "m" }), "client-3"))!,
    );
    assert.equal((local as { size: number }).size, 0);
    barriers.shift()!();
    assert.equal((decodeCbor((await first)!) as { mapId: string }).mapId, "m");
    const third = service.handle(CLIENT_MAP_READ_OP, read, "client-3");
    assert.equal(barriers.length, 2, "the freed place went to the next read");
    for (const release of barriers.splice(0)) release();
    await Promise.all([second, third]);
  });

  it("makes a bounded number of maps for clients' writes to map ids that do not exist", async () => {
    const existing = new Set(["known"]);
    const proposed: string[] = [];
    const host: ClientServiceHost = {
      status: () => ({}) as HamokStatus,
      findMapState: (mapId) => (existing.has(mapId) ? ({} as never) : undefined),
      readBarrier: () => Promise.resolve(),
      proposeMap: (mapId) => {
        proposed.push(mapId);
        return Promise.resolve({ conflict: false, previous: null });
      },
      publish: () => Promise.reject(new Error("not used")),
      sendEvent: () => {},
    };
    const limits = { ...CLIENT_LIMITS, requestsPerSecond: 1e9, totalRequestsPerSecond: 1e9 };
    const service = new ClientService(host, new PeerCounters(), 5000, limits);
    const write = (mapId: string) =>
      service.handle(CLIENT_MAP_WRITE_OP, encodeCbor({ mapId, op: "set", key: "k", value: "v" }), "client-1");
    for (let i = 0; i < 256; i++) await write(`made-up-${i}`);
    // the old code made a state for every made-up id, on every member, for good
    await assert.rejects(write("made-up-256"), HamokRateLimitedError);
    await write("made-up-3"); // one it made already
    await write("known"); // maps that exist are not counted
    assert.equal(proposed.length, 258);
  });
});
