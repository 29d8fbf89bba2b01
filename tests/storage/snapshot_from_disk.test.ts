import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hamok } from "../../src/hamok.ts";
import { FileRaftStorage } from "../../src/storage/file_raft_storage.ts";
import { NODE_FS, type StorageFs } from "../../src/storage/storage_fs.ts";
import { MemoryBus } from "../../src/transport/memory_bus.ts";
import { MemoryTransport } from "../../src/transport/memory_transport.ts";
import { FAST } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

const dirs: string[] = [];
const peers: Hamok[] = [];
const storages: FileRaftStorage[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
  for (const s of storages.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A file system that counts snapshot files opened for reading and fails the first `failReads` reads. */
function countingFs(failReads: number) {
  const snapFds = new Set<number>();
  const stats = { snapOpens: 0, reads: 0, failed: 0 };
  const seam: StorageFs = {
    ...NODE_FS,
    open: (path, flags, callback) =>
      NODE_FS.open(path, flags, (error, fd) => {
        if (error === null && flags === "r" && path.endsWith(".snap")) {
          stats.snapOpens++;
          snapFds.add(fd);
        }
        callback(error, fd);
      }),
    read: (fd, buffer, offset, length, position, callback) => {
      if (snapFds.has(fd)) {
        stats.reads++;
        if (stats.failed < failReads) {
          stats.failed++;
          callback(Object.assign(new Error("EIO"), { code: "EIO" }), 0);
          return;
        }
      }
      NODE_FS.read(fd, buffer, offset, length, position, callback);
    },
  };
  return { seam, stats };
}

function cluster(failReads: number) {
  const root = fs.mkdtempSync(join(tmpdir(), "hamok-disk-snap-"));
  dirs.push(root);
  const clusterId = `ds-${crypto.randomUUID().slice(0, 8)}`;
  const bus = new MemoryBus();
  const { seam, stats } = countingFs(failReads);
  /** Per peer id: the index of the last snapshot whose save resolved (durable). */
  const durable = new Map<string, number>();
  const start = (id: string) => {
    const storage = new FileRaftStorage({ dataDir: join(root, id), peerId: id, clusterId, fs: seam });
    storages.push(storage);
    const save = storage.saveSnapshot.bind(storage);
    storage.saveSnapshot = (snapshot) => {
      const saving = save(snapshot);
      void saving.then(() => durable.set(id, snapshot.meta.index), () => {});
      return saving;
    };
    const p = new Hamok({
      ...FAST,
      peerId: id,
      clusterId,
      transport: new MemoryTransport({ bus }),
      storage,
      snapshotThreshold: 30,
    });
    peers.push(p);
    return { peer: p, storage };
  };
  const compactedDurably = (id: string, p: Hamok) =>
    waitFor(() => p.status().snapshotIndex > 0 && durable.get(id) === p.status().snapshotIndex, {
      timeoutMs: 10_000,
      message: `${id}'s snapshot durable`,
    });
  return { start, stats, compactedDurably };
}

describe("snapshots served from the file", () => {
  it("a joiner gets the leader's snapshot in chunks read from the leader's file, even when reads fail", async () => {
    const { start, stats, compactedDurably } = cluster(2);
    const a = start("a").peer;
    await a.join();
    const map = a.createMap<string, string>({ mapId: "m" });
    const value = "x".repeat(4000);
    for (let i = 0; i < 200; i++) await map.set(`k${i}`, value + i); // ~800 KB image: several chunks
    await waitFor(() => a.status().snapshotIndex > 150, { timeoutMs: 10_000, message: "compacted" });
    await compactedDurably("a", a);
    const b = start("b").peer;
    await b.join({ timeoutMs: 20_000 });
    const mb = b.createMap<string, string>({ mapId: "m" });
    await waitFor(() => mb.size === 200, { timeoutMs: 20_000, message: "b restored the snapshot" });
    assert.equal(mb.get("k199"), value + 199);
    assert.ok(stats.snapOpens >= 3, `chunks read from the file (${stats.snapOpens} opens)`);
    assert.equal(stats.failed, 2, "two reads failed and their chunks were sent again");
  });

  it("after a restart, the loaded snapshot is served from the file too", async () => {
    const { start, stats, compactedDurably } = cluster(0);
    const first = start("a");
    const a1 = first.peer;
    await a1.join();
    const map = a1.createMap<string, string>({ mapId: "m" });
    for (let i = 0; i < 100; i++) await map.set(`k${i}`, "y".repeat(3000));
    await waitFor(() => a1.status().snapshotIndex > 60, { timeoutMs: 10_000, message: "compacted" });
    await compactedDurably("a", a1);
    a1.close();
    first.storage.close();
    const opensBefore = stats.snapOpens;
    const a2 = start("a").peer;
    await a2.join({ timeoutMs: 20_000 });
    assert.equal(stats.snapOpens, opensBefore, "the restart read the snapshot file whole, not in chunks");
    const b = start("b").peer;
    await b.join({ timeoutMs: 20_000 });
    const mb = b.createMap<string, string>({ mapId: "m" });
    await waitFor(() => mb.size === 100, { timeoutMs: 20_000, message: "b restored the snapshot" });
    assert.ok(stats.snapOpens > opensBefore, "the restarted leader read the chunks from its file");
  });
});
