import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hamok } from "../../src/hamok.ts";
import { HamokStorageError, HamokStorageFullError, HamokStorageLockedError } from "../../src/errors.ts";
import { FileRaftStorage } from "../../src/storage/file_raft_storage.ts";
import { MemoryRemoteStore } from "../../src/collections/remote_store.ts";
import { NODE_FS, type StorageFs } from "../../src/storage/storage_fs.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { REAL_SCHEDULER } from "../../src/cluster/scheduler.ts";
import { FAST } from "../_helpers/cluster.ts";
import { waitFor, waitForEvent } from "../_helpers/wait.ts";

const dirs: string[] = [];
const peers: Hamok[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "hamok-peer-"));
  dirs.push(dir);
  return dir;
}
function peer(config: ConstructorParameters<typeof Hamok>[0]): Hamok {
  const p = new Hamok({ ...FAST, ...config });
  peers.push(p);
  return p;
}

afterEach(() => {
  for (const p of peers.splice(0)) p.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("durable peers (dataDir)", () => {
  it("a peer restarted on its directory is the same member with its collections restored before ready", async () => {
    const dir = join(tempDir(), "a");
    const clusterId = `d-${crypto.randomUUID().slice(0, 8)}`;
    const bus = new MemoryBus();
    const a1 = peer({ peerId: "a", clusterId, dataDir: dir, transport: new MemoryTransport({ bus }) });
    await a1.join();
    const map = a1.createMap<string, number>({ mapId: "m" });
    for (let i = 0; i < 50; i++) await map.set(`k${i}`, i + 1);
    const queue = a1.createQueue<string>({ queueId: "q" });
    await queue.push("job-1");
    const memberId = a1.localMemberId;
    assert.throws(
      () => new Hamok({ ...FAST, peerId: "a", clusterId, dataDir: dir }),
      HamokStorageLockedError,
      "a second peer on the same directory is refused",
    );
    a1.close();

    const a2 = peer({ peerId: "a", clusterId, dataDir: dir, transport: new MemoryTransport({ bus }) });
    assert.equal(a2.localMemberId, memberId);
    await a2.join();
    const map2 = a2.createMap<string, number>({ mapId: "m" });
    assert.equal(map2.size, 50);
    assert.equal(map2.get("k49"), 50);
    assert.equal(a2.createQueue<string>({ queueId: "q" }).peek(), "job-1");
    assert.equal(await map2.set("k0", 100), 1);
  });

  it("with a key, replayed events of a publisher's earlier processes never silence its live one", async () => {
    // incarnations were random nonces: a subscriber that never saw two earlier processes took each
    // replayed one as newer, retired the live one and dropped its events for good (and delivered the
    // replays). They are ordered by the storage's durable restart count now.
    const KEY = "a cluster key of at least thirty-two bytes, for tests";
    const dir = join(tempDir(), "a");
    const clusterId = `d-${crypto.randomUUID().slice(0, 8)}`;
    const bus = new MemoryBus();
    type Ev = { e: [string] };
    const mk = (peerId: string, extra: Record<string, unknown> = {}) =>
      peer({ clusterId, clusterKey: KEY, peerId, transport: new MemoryTransport({ bus }), ...extra });
    const tap = new MemoryTransport({ bus, id: "tap" }); // an eavesdropper without the key
    const captured: Uint8Array[] = [];
    try {
      const b = mk("b");
      const c = mk("c");
      let a = mk("a", { dataDir: dir });
      await a.join();
      await Promise.all([b.join(), c.join()]);
      await waitFor(() => a.remotePeerIds.size === 2, { timeoutMs: 10_000 });
      await b.createEmitter<Ev>({ emitterId: "ev" }).subscribe("e", () => {});
      let ea = a.createEmitter<Ev>({ emitterId: "ev", requestTimeoutInMs: 2000 });
      const subject = ea.connection.subjectOf("e");
      tap.subscribe(subject, (m) => void captured.push(m.data));
      for (let process = 0; process < 3; process++) {
        if (process > 0) {
          a.close();
          a = mk("a", { dataDir: dir });
          await a.join({ timeoutMs: 10_000 });
          ea = a.createEmitter<Ev>({ emitterId: "ev", requestTimeoutInMs: 2000 });
        }
        assert.deepEqual(await ea.publish("e", `process-${process}`), ["b"]);
      }
      await waitFor(() => captured.length >= 3, { timeoutMs: 3000, message: "three events captured" });
      const d = mk("d");
      await d.join({ timeoutMs: 10_000 });
      const got: string[] = [];
      await d.createEmitter<Ev>({ emitterId: "ev" }).subscribe("e", (t) => void got.push(t));
      await waitFor(() => ea.subscriptions.hasPeerOnEvent("e", "d"), { timeoutMs: 5000 });
      assert.deepEqual((await ea.publish("e", "live-1")).sort(), ["b", "d"]);
      const stale = () => d.counters.values().dropped["stale-sequence"] ?? 0;
      const before = stale();
      tap.publish(subject, captured[0]!); // sealed bytes of processes 0 and 1, unchanged
      tap.publish(subject, captured[1]!);
      await waitFor(() => stale() === before + 2, { timeoutMs: 3000, message: "both replays dropped" });
      assert.deepEqual((await ea.publish("e", "live-2")).sort(), ["b", "d"]);
      assert.deepEqual(got, ["live-1", "live-2"]);
    } finally {
      await tap.close();
    }
  });

  it("a subscriber restarted on its directory: the previous process's subscriptions are withdrawn, its own kept", async () => {
    const root = tempDir();
    const clusterId = `d-${crypto.randomUUID().slice(0, 8)}`;
    const bus = new MemoryBus();
    type Ev = { e: [number]; f: [number] };
    const mk = (peerId: string) =>
      peer({ clusterId, peerId, dataDir: join(root, peerId), transport: new MemoryTransport({ bus }) });
    const a = mk("a");
    let b = mk("b");
    await a.join();
    await b.join();
    await waitFor(() => a.remotePeerIds.size === 1, { timeoutMs: 10_000 });
    const eb = b.createEmitter<Ev>({ emitterId: "ev" });
    await eb.subscribe("e", () => {});
    await eb.subscribe("f", () => {});
    await b.createEmitter<Ev>({ emitterId: "gone" }).subscribe("e", () => {});
    const ea = a.createEmitter<Ev>({ emitterId: "ev", requestTimeoutInMs: 2000 });
    const eg = a.createEmitter<Ev>({ emitterId: "gone", requestTimeoutInMs: 2000 });
    assert.deepEqual(await ea.publish("e", 1), ["b"]);
    b.close();
    b = mk("b");
    await b.join({ timeoutMs: 10_000 });
    // the new process listens to 'f' of 'ev' only; it never opens 'gone'. The old code kept all three
    // entries: every publish of 'e' (on both emitters) waited for b until it timed out, for good
    const got: number[] = [];
    await b.createEmitter<Ev>({ emitterId: "ev" }).subscribe("f", (n) => void got.push(n));
    await waitFor(
      () => !ea.subscriptions.hasPeerOnEvent("e", "b") && !eg.subscriptions.hasPeerOnEvent("e", "b"),
      { timeoutMs: 5000, message: "the previous process's entries withdrawn" },
    );
    assert.deepEqual(await ea.publish("e", 2), []);
    assert.deepEqual(await eg.publish("e", 2), []);
    assert.deepEqual(await ea.publish("f", 3), ["b"]);
    assert.deepEqual(got, [3]);
  });

  it("with a key, a member removed and rejoined (a new member id) then restarted still reaches its subscribers", async () => {
    // the rejoined member's first process kept the old member's incarnation (restart count 3); its
    // next restart counted from 1 again, and keyed subscribers refused its events as an older process
    const KEY = "a cluster key of at least thirty-two bytes, for tests";
    const dir = join(tempDir(), "a");
    const clusterId = `d-${crypto.randomUUID().slice(0, 8)}`;
    const bus = new MemoryBus();
    type Ev = { e: [string] };
    const transports = new Map<string, MemoryTransport>();
    const mk = (peerId: string, extra: Record<string, unknown> = {}) => {
      const transport = new MemoryTransport({ bus, id: peerId });
      transports.set(peerId, transport);
      return peer({ clusterId, clusterKey: KEY, peerId, transport, ...extra });
    };
    const restart = async (a: Hamok): Promise<Hamok> => {
      a.close();
      await transports.get("a")!.close();
      const next = mk("a", { dataDir: dir });
      await next.join({ timeoutMs: 10_000 });
      await next.waitUntilCommitHead();
      return next;
    };
    const b = mk("b");
    const c = mk("c");
    let a = mk("a", { dataDir: dir });
    await a.join();
    await Promise.all([b.join(), c.join()]);
    await waitFor(() => a.remotePeerIds.size === 2, { timeoutMs: 10_000 });
    const got: string[] = [];
    await b.createEmitter<Ev>({ emitterId: "ev" }).subscribe("e", (t) => void got.push(t));
    for (let i = 1; i <= 3; i++) a = await restart(a);
    const cut = bus.partition(["a"], ["b", "c"]);
    await waitFor(() => !b.remotePeerIds.has("a"), { timeoutMs: 10_000, message: "a removed" });
    cut.remove();
    await waitFor(() => b.remotePeerIds.has("a") && a.joined, { timeoutMs: 15_000, message: "a rejoined" });
    await a.waitUntilCommitHead();
    const rejoined = a.createEmitter<Ev>({ emitterId: "ev", requestTimeoutInMs: 2000 });
    assert.deepEqual(await rejoined.publish("e", "rejoined"), ["b"]);
    a = await restart(a);
    const ea = a.createEmitter<Ev>({ emitterId: "ev", requestTimeoutInMs: 2000 });
    await waitFor(() => ea.subscriptions.hasPeerOnEvent("e", "b"), { timeoutMs: 5000 });
    assert.deepEqual(await ea.publish("e", "after-restart"), ["b"]);
    assert.deepEqual(got, ["rejoined", "after-restart"]);
  });

  it("a publisher restarted on its directory after its clock went back an hour still reaches its subscribers", async () => {
    // receivers order a publisher's events by sequence, which starts at its wall clock; a restart on
    // the member's storage is the same member id with a clock that may be behind its last process's
    const dir = join(tempDir(), "a");
    const clusterId = `ev-${crypto.randomUUID().slice(0, 8)}`;
    const bus = new MemoryBus();
    type Events = { ev: [string] };
    const a1 = peer({ peerId: "a", clusterId, dataDir: dir, transport: new MemoryTransport({ bus }) });
    await a1.join();
    const b = peer({ peerId: "b", clusterId, transport: new MemoryTransport({ bus }) });
    const c = peer({ peerId: "c", clusterId, transport: new MemoryTransport({ bus }) });
    await Promise.all([b.join(), c.join()]);
    await waitFor(() => a1.remotePeerIds.size === 2, { timeoutMs: 10_000, message: "three members" });
    const got: string[] = [];
    await b.createEmitter<Events>({ emitterId: "e" }).subscribe("ev", (text) => void got.push(text));
    const e1 = a1.createEmitter<Events>({ emitterId: "e" });
    for (let i = 0; i < 3; i++) assert.deepEqual(await e1.publish("ev", `before-${i}`), ["b"]);
    const memberId = a1.localMemberId;
    a1.close();

    const HOUR = 3_600_000;
    const behind = { ...REAL_SCHEDULER, now: () => REAL_SCHEDULER.now() - HOUR };
    const a2 = peer({
      peerId: "a",
      clusterId,
      dataDir: dir,
      transport: new MemoryTransport({ bus }),
      scheduler: behind,
    });
    assert.equal(a2.localMemberId, memberId, "the same member");
    await a2.join({ timeoutMs: 10_000 });
    const e2 = a2.createEmitter<Events>({ emitterId: "e" });
    for (let i = 0; i < 3; i++) assert.deepEqual(await e2.publish("ev", `after-${i}`), ["b"]);
    assert.deepEqual(got, ["before-0", "before-1", "before-2", "after-0", "after-1", "after-2"]);
  });

  it("three peers on their directories all restart into the same cluster with every write", async () => {
    const root = tempDir();
    const clusterId = `d3-${crypto.randomUUID().slice(0, 8)}`;
    const ids = ["a", "b", "c"];
    const start = (bus: MemoryBus) =>
      ids.map((id) =>
        peer({
          peerId: id,
          clusterId,
          dataDir: join(root, id),
          transport: new MemoryTransport({ bus }),
          snapshotThreshold: 40,
        })
      );
    const first = start(new MemoryBus());
    await Promise.all(first.map((p) => p.join()));
    await waitFor(() => first.every((p) => p.remotePeerIds.size === 2), {
      timeoutMs: 10_000,
      message: "three members",
    });
    const members = first.map((p) => p.localMemberId);
    const map = first[1].createMap<string, number>({ mapId: "m" });
    for (let i = 0; i < 100; i++) await map.set(`k${i}`, i); // crosses the snapshot threshold
    for (const p of first) p.close();

    const second = start(new MemoryBus());
    assert.deepEqual(second.map((p) => p.localMemberId), members);
    await Promise.all(second.map((p) => p.join({ timeoutMs: 20_000 })));
    for (const p of second) {
      const m = p.createMap<string, number>({ mapId: "m" });
      assert.equal(m.size, 100, `${p.localPeerId} restored every write`);
      assert.equal(m.get("k99"), 99);
      assert.equal(p.remotePeerIds.size, 2);
    }
    assert.equal(await second[2].getOrCreateMap<string, number>({ mapId: "m" }).set("k1", 5), 1);
  });

  it("a remote map goes on after every peer restarts on its directory: its own mark, no operation run twice", async () => {
    const root = tempDir();
    const clusterId = `rm-${crypto.randomUUID().slice(0, 8)}`;
    const db = new MemoryRemoteStore<string, number>();
    const ids = ["a", "b", "c"];
    const start = (bus: MemoryBus) =>
      ids.map((id) =>
        peer({ peerId: id, clusterId, dataDir: join(root, id), transport: new MemoryTransport({ bus }) })
      );
    const first = start(new MemoryBus());
    await Promise.all(first.map((p) => p.join({ timeoutMs: 20_000 })));
    const maps = first.map((p) => p.createRemoteMap<string, number>({ mapId: "db", store: db }));
    for (let i = 0; i < 20; i++) await maps[i % 3].set(`k${i % 5}`, i);
    const uid = first[0].status().clusterUid;
    for (const p of first) p.close();
    const executed = db.executionLog.length;
    assert.equal(executed, 20);

    const second = start(new MemoryBus());
    await Promise.all(second.map((p) => p.join({ timeoutMs: 20_000 })));
    assert.equal(second[0].status().clusterUid, uid, "the same cluster");
    const again = second.map((p) => p.createRemoteMap<string, number>({ mapId: "db", store: db }));
    assert.equal(await again[1].set("k0", 100), 15);
    assert.equal(await again[2].get("k0", { consistency: "linearizable" }), 100);
    assert.equal(db.executionLog.length, executed + 1);
    assert.equal(new Set(db.executionLog).size, db.executionLog.length, "no log index executed twice");
  });

  it("a full disk is an error event and the peer refuses writes instead of acknowledging them", async () => {
    const dir = tempDir();
    let full = false;
    const seam: StorageFs = {
      ...NODE_FS,
      writeSync: (fd, buffer) => {
        if (full) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
        return NODE_FS.writeSync(fd, buffer);
      },
    };
    const clusterId = `full-${crypto.randomUUID().slice(0, 8)}`;
    const storage = new FileRaftStorage({ dataDir: dir, peerId: "a", clusterId, fs: seam });
    try {
      const a = peer({ peerId: "a", clusterId, storage, requestTimeoutInMs: 500 });
      await a.join();
      const map = a.createMap<string, number>({ mapId: "m" });
      await map.set("ok", 1);
      full = true;
      const errored = waitForEvent(a, "error", {
        timeoutMs: 5000,
        filter: (e) => e instanceof HamokStorageError,
      });
      const write = map.set("lost", 2, { timeoutMs: 500 });
      const [error] = await errored;
      assert.ok(error instanceof HamokStorageFullError);
      assert.equal((error as HamokStorageFullError).code, "HAMOK_STORAGE_FULL");
      await assert.rejects(write, "the write that was not persisted is never acknowledged");
      assert.equal(map.get("lost"), undefined);
      await assert.rejects(map.set("later", 3), HamokStorageFullError);
    } finally {
      storage.close();
    }
  });
});
