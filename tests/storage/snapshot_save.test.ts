import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HamokStorageCorruptError } from "../../src/errors.ts";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { FileRaftStorage, type FileRaftStorageOptions } from "../../src/storage/file_raft_storage.ts";
import { NODE_FS, type StorageFs } from "../../src/storage/storage_fs.ts";
import { crc32c } from "../../src/storage/crc32c.ts";
import { waitFor } from "../_helpers/wait.ts";

const e = (index: number, term: number, size = 8): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(size).fill(index & 0xff),
  requestId: `r${index}`,
});
const image = (size: number) => {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
  return data;
};
const snap = (index: number, term: number, data = image(64), digest?: number): Snapshot => {
  const meta = { index, term, membership: { voters: ["a/1"], learners: [], removed: [] } };
  return digest === undefined ? { meta, data } : { meta, data, digest };
};
const same = (a: Uint8Array | undefined, b: Uint8Array) =>
  a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
const indexes = (entries: readonly Entry[]) => entries.map((x) => x.index);

const dirs: string[] = [];
const opened: FileRaftStorage[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "hamok-snap-"));
  dirs.push(dir);
  return join(dir, "member");
}
function open(dataDir: string, extra: Partial<FileRaftStorageOptions> = {}): FileRaftStorage {
  const s = new FileRaftStorage({ dataDir, peerId: "a", clusterId: "c1", ...extra });
  opened.push(s);
  return s;
}
const walFiles = (dir: string) => fs.readdirSync(join(dir, "wal")).filter((n) => n.endsWith(".wal"));
const snapFiles = (dir: string) => fs.readdirSync(join(dir, "snap")).sort();

afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A seam whose callback-form writes wait until released: the snapshot file is held half-written. */
function gatedFs(): { fs: StorageFs; release(): void; writes(): number } {
  let open = false;
  let writes = 0;
  const waiting: (() => void)[] = [];
  return {
    fs: {
      ...NODE_FS,
      write: (fd, buffer, offset, length, position, callback) => {
        writes++;
        const go = () => NODE_FS.write(fd, buffer, offset, length, position, callback);
        if (open) go();
        else waiting.push(go);
      },
    },
    release() {
      open = true;
      for (const go of waiting.splice(0)) go();
    },
    writes: () => writes,
  };
}

describe("FileRaftStorage snapshot save", () => {
  it("returns before the file is written; appends meanwhile are kept and nothing is deleted until it is durable", async () => {
    const dir = tempDir();
    const gate = gatedFs();
    const s = open(dir, { fs: gate.fs, segmentBytes: 300 });
    await s.load();
    for (let i = 1; i <= 20; i++) s.append([e(i, 1, 40)]);
    const segmentsBefore = walFiles(dir).length;
    assert.ok(segmentsBefore > 2);
    let done = false;
    const saving = s.saveSnapshot(snap(15, 1, image(3 * 1024 * 1024)));
    void saving.then(() => done = true);
    // the log goes on while the file is being written
    for (let i = 21; i <= 25; i++) s.append([e(i, 1, 40)]);
    await s.sync();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(done, false);
    assert.equal(s.snapshotIndex, 0);
    assert.ok(walFiles(dir).length >= segmentsBefore, "no segment deleted before the file is durable");
    assert.deepEqual(snapFiles(dir), ["000000000000000f.snap.tmp"]);
    gate.release();
    await saving;
    assert.ok(gate.writes() >= 3, `header and data in slices (${gate.writes()} writes)`);
    assert.equal(s.snapshotIndex, 15);
    assert.equal(walFiles(dir).length, 1);
    assert.deepEqual(snapFiles(dir), ["000000000000000f.snap"]);
    s.append([e(26, 1)]);
    s.close();
    const state = await open(dir).load();
    assert.equal(state.snapshot?.meta.index, 15);
    assert.equal(state.snapshot?.data.length, 3 * 1024 * 1024);
    assert.ok(same(state.snapshot?.data, image(3 * 1024 * 1024)));
    assert.deepEqual(indexes(state.entries), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]);
  });

  it("writes the snapshot's digest as the data checksum (no second CRC pass), and computes it without one", async () => {
    const data = image(2 * 1024 * 1024 + 5);
    const dir1 = tempDir();
    const s1 = open(dir1);
    await s1.load();
    s1.append([e(1, 1)]);
    await s1.saveSnapshot(snap(1, 1, data, crc32c(data)));
    s1.close();
    assert.ok(same((await open(dir1).load()).snapshot?.data, data));
    // a digest that is not the data's CRC is written as given: the file does not load
    const dir2 = tempDir();
    const s2 = open(dir2);
    await s2.load();
    s2.append([e(1, 1)]);
    await s2.saveSnapshot(snap(1, 1, data, (crc32c(data) ^ 1) >>> 0));
    s2.close();
    await assert.rejects(open(dir2).load(), HamokStorageCorruptError);
    // without a digest it is computed (in slices)
    const dir3 = tempDir();
    const s3 = open(dir3);
    await s3.load();
    s3.append([e(1, 1)]);
    await s3.saveSnapshot(snap(1, 1, data));
    s3.close();
    assert.ok(same((await open(dir3).load()).snapshot?.data, data));
  });

  it("saves snapshots one after the other in call order; an older one queued behind a newer is ignored", async () => {
    const dir = tempDir();
    const s = open(dir);
    await s.load();
    for (let i = 1; i <= 12; i++) s.append([e(i, 1)]);
    const a = s.saveSnapshot(snap(5, 1));
    const b = s.saveSnapshot(snap(10, 1));
    const c = s.saveSnapshot(snap(8, 1));
    await Promise.all([a, b, c]);
    assert.equal(s.snapshotIndex, 10);
    // the replaced snapshot leaves through the remover (renamed, then deleted in the background)
    await waitFor(() => s.removalsPending === 0, { timeoutMs: 10_000, message: "old snapshot removed" });
    assert.deepEqual(snapFiles(dir), ["000000000000000a.snap"]);
    s.close();
    const state = await open(dir).load();
    assert.equal(state.snapshot?.meta.index, 10);
    assert.deepEqual(indexes(state.entries), [11, 12]);
  });

  it("a bootstrap snapshot at index 0 keeps the entries appended while it is written", async () => {
    const dir = tempDir();
    const s = open(dir);
    await s.load();
    const saving = s.saveSnapshot(snap(0, 0));
    s.append([e(1, 1), e(2, 1)]);
    await saving;
    s.append([e(3, 1)]);
    s.close();
    const state = await open(dir).load();
    assert.equal(state.snapshot?.meta.index, 0);
    assert.deepEqual(indexes(state.entries), [1, 2, 3]);
  });

  it("closing during the write abandons it; the directory loads as before", async () => {
    const dir = tempDir();
    const gate = gatedFs();
    const s = open(dir, { fs: gate.fs });
    await s.load();
    for (let i = 1; i <= 6; i++) s.append([e(i, 1)]);
    const saving = s.saveSnapshot(snap(4, 1, image(3 * 1024 * 1024)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    s.close();
    gate.release();
    await saving;
    const state = await open(dir).load();
    assert.equal(state.snapshot, undefined);
    assert.deepEqual(indexes(state.entries), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(snapFiles(dir), []);
  });

  it("readSnapshot reads ranges of the stored snapshot's data from its file, and nothing of a replaced one", async () => {
    const dir = tempDir();
    const s = open(dir);
    await s.load();
    for (let i = 1; i <= 12; i++) s.append([e(i, 1)]);
    const data = image(100_000);
    await s.saveSnapshot(snap(5, 1, data));
    assert.ok(same(await s.readSnapshot(5, 0, 10), data.subarray(0, 10)));
    assert.ok(same(await s.readSnapshot(5, 99_990, 10), data.subarray(99_990)));
    assert.equal(await s.readSnapshot(5, 99_995, 10), undefined, "beyond the data");
    assert.equal(await s.readSnapshot(4, 0, 10), undefined, "not the stored snapshot");
    const reading = s.readSnapshot(5, 50_000, 1000);
    await s.saveSnapshot(snap(10, 1, image(10)));
    const raced = await reading;
    assert.ok(
      raced === undefined || same(raced, data.subarray(50_000, 51_000)),
      "a read racing a newer save",
    );
    assert.equal(await s.readSnapshot(5, 0, 10), undefined, "replaced");
    assert.ok(same(await s.readSnapshot(10, 0, 10), image(10)));
    // load hands the image out once and keeps only its meta; a second load reads the file again
    s.close();
    const t = open(dir);
    const first = await t.load();
    assert.ok(same(first.snapshot?.data, image(10)));
    const second = await t.load();
    assert.ok(same(second.snapshot?.data, image(10)));
  });

  it("a crash at any file-system call of a save leaves a directory that loads with every entry", async () => {
    // count the calls of one save, then fail each in turn (the files stay as a crash there leaves them)
    const run = async (failAt: number) => {
      const dir = tempDir();
      let calls = -1; // not counting until armed
      const failing = (name: string) => {
        if (calls < 0) return false;
        calls++;
        return calls === failAt ? (void name, true) : false;
      };
      const boom = () => Object.assign(new Error("crash"), { code: "EIO" });
      const seam: StorageFs = { ...NODE_FS };
      for (const key of Object.keys(NODE_FS) as (keyof StorageFs)[]) {
        const real = NODE_FS[key] as (...args: unknown[]) => unknown;
        (seam as unknown as Record<string, unknown>)[key] = (...args: unknown[]) => {
          if (failing(key)) {
            const callback = args[args.length - 1];
            if (typeof callback === "function" && key !== "mkdirSync") {
              (callback as (error: Error) => void)(boom());
              return;
            }
            throw boom();
          }
          return real(...args);
        };
      }
      const s = open(dir, { fs: seam, segmentBytes: 200 });
      await s.load();
      for (let i = 1; i <= 12; i++) s.append([e(i, 1, 40)]);
      await s.sync();
      calls = 0;
      let failed = false;
      await s.saveSnapshot(snap(8, 1, image(3 * 1024 * 1024 + 7))).catch(() => failed = true);
      const total = calls;
      s.close();
      const state = await open(dir).load();
      const base = state.snapshot?.meta.index ?? 0;
      assert.ok(base === 0 || base === 8, `snapshot ${base}`);
      assert.deepEqual(indexes(state.entries), Array.from({ length: 12 - base }, (_, i) => base + 1 + i));
      return { total, failed };
    };
    const { total, failed } = await run(0);
    assert.equal(failed, false);
    assert.ok(total > 10, `a save makes ${total} calls`);
    let failures = 0;
    for (let k = 1; k <= total; k++) if ((await run(k)).failed) failures++;
    assert.ok(failures > total / 2, `${failures} of ${total} crash points fail the save`);
  });
});

describe("writeSnapshotFileAsync pacing", () => {
  it("syncs the file every 2 MiB of data as it writes it, never ahead of the bytes, and the file reads back whole", async () => {
    const { writeSnapshotFileAsync, readSnapshotFile, snapshotPath } = await import(
      "../../src/storage/snapshot_file.ts"
    );
    const dir = tempDir();
    fs.mkdirSync(dir, { recursive: true });
    const log: string[] = [];
    const counting: StorageFs = {
      ...NODE_FS,
      write: (fd, buffer, offset, length, position, callback) => {
        log.push(`w${length}`);
        NODE_FS.write(fd, buffer, offset, length, position, callback);
      },
      fsync: (fd, callback) => {
        log.push("sync");
        NODE_FS.fsync(fd, callback);
      },
    };
    const data = image(5 * 1024 * 1024 + 7);
    assert.equal(await writeSnapshotFileAsync(counting, dir, snap(9, 2, data), () => false), true);
    const mib = `w${1024 * 1024}`;
    // header, then 1 MiB slices: a sync after the 2nd and the 4th, the last one after the tail
    const writes = log.slice(1, -1); // the header's write first; the directory's sync last
    assert.deepEqual(writes, [mib, mib, "sync", mib, mib, "sync", mib, "w7", "sync"]);
    assert.ok(same(readSnapshotFile(NODE_FS, snapshotPath(dir, 9)).data, data));
  });
});
