import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HamokStorageCorruptError,
  HamokStorageFullError,
  HamokStorageLockedError,
  HamokStorageMismatchError,
} from "../../src/errors.ts";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { FileRaftStorage, type FileRaftStorageOptions } from "../../src/storage/file_raft_storage.ts";
import { NODE_FS, type StorageFs } from "../../src/storage/storage_fs.ts";
import { peerIdOfMember } from "../../src/cluster/member_id.ts";
import { waitFor } from "../_helpers/wait.ts";

const e = (index: number, term: number, size = 1): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(size).fill(index & 0xff),
  requestId: `r${index}`,
});
const snap = (index: number, term: number): Snapshot => ({
  meta: { index, term, membership: { voters: ["a/1"], learners: ["b/2"], removed: ["c/3"] } },
  data: new Uint8Array([1, 2, 3, index & 0xff]),
});
const indexTerms = (entries: readonly Entry[]) => entries.map((x) => [x.index, x.term]);

const dirs: string[] = [];
const opened: FileRaftStorage[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "hamok-fs-"));
  dirs.push(dir);
  return join(dir, "member");
}
function open(dataDir: string, extra: Partial<FileRaftStorageOptions> = {}): FileRaftStorage {
  const s = new FileRaftStorage({ dataDir, peerId: "a", clusterId: "c1", ...extra });
  opened.push(s);
  return s;
}
function segments(dataDir: string): string[] {
  return fs.readdirSync(join(dataDir, "wal")).filter((n) => n.endsWith(".wal")).sort();
}
function lastSegment(dataDir: string): string {
  const all = segments(dataDir);
  return join(dataDir, "wal", all[all.length - 1]);
}

afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("FileRaftStorage", () => {
  it("creates a member id at first start and keeps it", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    assert.equal(s1.created, true);
    assert.equal(peerIdOfMember(s1.memberId), "a");
    assert.deepEqual(await s1.load(), { hardState: { term: 0, vote: undefined, commit: 0 }, entries: [] });
    s1.close();
    const s2 = open(dir);
    assert.equal(s2.created, false);
    assert.equal(s2.memberId, s1.memberId);
  });

  it("persists hard state and entries, replacing a conflicting suffix, across reopen", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    await s1.load();
    s1.saveHardState({ term: 2, vote: "b/1", commit: 0 });
    s1.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
    s1.append([e(3, 3), e(4, 3), e(5, 3)]); // a follower's conflicting suffix
    s1.saveHardState({ term: 3, vote: undefined, commit: 4 });
    await s1.sync();
    s1.close();
    const state = await open(dir).load();
    assert.deepEqual(state.hardState, { term: 3, vote: undefined, commit: 4 });
    assert.deepEqual(indexTerms(state.entries), [[1, 1], [2, 1], [3, 3], [4, 3], [5, 3]]);
    assert.equal(state.entries[4].requestId, "r5");
    assert.deepEqual([...state.entries[4].data], [5]);
  });

  it("keeps config entries and their change", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    await s1.load();
    s1.append([{
      index: 1,
      term: 1,
      type: "config",
      data: new Uint8Array(),
      change: { type: "add-learner", memberId: "b/9" },
    }]);
    s1.close();
    const state = await open(dir).load();
    assert.deepEqual(state.entries[0].change, { type: "add-learner", memberId: "b/9" });
  });

  it("a snapshot compacts the log (local) or replaces it (installed), and drops covered segments", async () => {
    const dir = tempDir();
    const s1 = open(dir, { segmentBytes: 200 });
    await s1.load();
    for (let i = 1; i <= 20; i++) s1.append([e(i, 1, 40)]);
    assert.ok(segments(dir).length > 3, `several segments (${segments(dir).length})`);
    await s1.saveSnapshot(snap(15, 1)); // local compaction: entries 16..20 stay
    assert.equal(segments(dir).length, 1);
    assert.equal(s1.snapshotIndex, 15);
    s1.close();
    const s2 = open(dir, { segmentBytes: 200 });
    const state = await s2.load();
    assert.equal(state.snapshot?.meta.index, 15);
    assert.deepEqual(state.snapshot?.meta.membership, snap(15, 1).meta.membership);
    assert.deepEqual([...state.snapshot!.data], [1, 2, 3, 15]);
    assert.deepEqual(indexTerms(state.entries), [[16, 1], [17, 1], [18, 1], [19, 1], [20, 1]]);
    await s2.saveSnapshot(snap(30, 4)); // installed from a leader: the whole log goes
    await s2.saveSnapshot(snap(25, 4)); // older: ignored
    s2.append([e(31, 4)]);
    await waitFor(() => s2.removalsPending === 0, { timeoutMs: 10_000, message: "old files removed" });
    s2.close();
    const state3 = await open(dir).load();
    assert.equal(state3.snapshot?.meta.index, 30);
    assert.deepEqual(indexTerms(state3.entries), [[31, 4]]);
    assert.deepEqual(fs.readdirSync(join(dir, "snap")), ["000000000000001e.snap"]);
  });

  it("cuts off a record torn at the end of the last segment", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    await s1.load();
    s1.append([e(1, 1), e(2, 1)]);
    s1.append([e(3, 1, 100)]);
    s1.close();
    const path = lastSegment(dir);
    const size = fs.statSync(path).size;
    fs.truncateSync(path, size - 30); // the last write only partly reached the disk
    const s2 = open(dir);
    const state = await s2.load();
    assert.deepEqual(indexTerms(state.entries), [[1, 1], [2, 1]]);
    s2.append([e(3, 2)]); // and the log goes on after the cut
    s2.close();
    assert.deepEqual(indexTerms((await open(dir).load()).entries), [[1, 1], [2, 1], [3, 2]]);
  });

  it("a torn tail whose bytes are garbage (payload checksum) is cut too", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    await s1.load();
    s1.append([e(1, 1)]);
    s1.append([e(2, 1, 50)]);
    s1.close();
    const path = lastSegment(dir);
    const bytes = fs.readFileSync(path);
    bytes[bytes.length - 5] ^= 0xff;
    fs.writeFileSync(path, bytes);
    assert.deepEqual(indexTerms((await open(dir).load()).entries), [[1, 1]]);
  });

  it("a bit flip before the tail is a typed error naming the file and offset", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    await s1.load();
    s1.append([e(1, 1, 50)]);
    s1.append([e(2, 1, 50)]);
    s1.close();
    const path = lastSegment(dir);
    const bytes = fs.readFileSync(path);
    // the first record is the segment's hard state; flip a byte inside the second (entry 1)
    const second = 16 + bytes.readUInt32LE(0);
    bytes[second + 20] ^= 0x01;
    fs.writeFileSync(path, bytes);
    const s2 = open(dir);
    await assert.rejects(s2.load(), (error: unknown) => {
      assert.ok(error instanceof HamokStorageCorruptError);
      assert.equal(error.code, "HAMOK_STORAGE_CORRUPT");
      assert.equal(error.path, path);
      assert.equal(error.offset, second);
      return true;
    });
  });

  it("a truncated segment that is not the last one is corruption, not a torn tail", async () => {
    const dir = tempDir();
    const s1 = open(dir, { segmentBytes: 100 });
    await s1.load();
    for (let i = 1; i <= 6; i++) s1.append([e(i, 1, 60)]);
    s1.close();
    const first = join(dir, "wal", segments(dir)[0]);
    fs.truncateSync(first, fs.statSync(first).size - 10);
    await assert.rejects(open(dir).load(), HamokStorageCorruptError);
  });

  it("a damaged snapshot file is a typed error", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    await s1.load();
    s1.append([e(1, 1)]);
    await s1.saveSnapshot(snap(1, 1));
    s1.close();
    const path = join(dir, "snap", "0000000000000001.snap");
    const bytes = fs.readFileSync(path);
    bytes[bytes.length - 1] ^= 0x10;
    fs.writeFileSync(path, bytes);
    await assert.rejects(open(dir).load(), (error: unknown) => {
      assert.ok(error instanceof HamokStorageCorruptError);
      assert.equal(error.path, path);
      return true;
    });
  });

  it("refuses a directory in use (lock) and one of another cluster or peer", () => {
    const dir = tempDir();
    const s1 = open(dir);
    assert.throws(() => open(dir), HamokStorageLockedError);
    s1.close();
    assert.throws(() => open(dir, { clusterId: "other" }), (error: unknown) => {
      assert.ok(error instanceof HamokStorageMismatchError);
      assert.equal(error.expected, "other");
      assert.equal(error.found, "c1");
      return true;
    });
    assert.throws(() => open(dir, { peerId: "b" }), HamokStorageMismatchError);
    // the refusals left the lock free
    open(dir);
  });

  it("takes over the lock of a process that is gone", () => {
    const dir = tempDir();
    const s1 = open(dir);
    s1.close();
    fs.writeFileSync(join(dir, "LOCK"), "2147483646\n"); // no such process
    const s2 = open(dir);
    assert.equal(s2.memberId, s1.memberId);
    assert.equal(fs.readFileSync(join(dir, "LOCK"), "utf8").trim().split(" ")[0], String(process.pid));
  });

  it("a full disk surfaces as HamokStorageFullError and every later write is refused", async () => {
    const dir = tempDir();
    let full = false;
    const enospc = () => Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    const seam: StorageFs = {
      ...NODE_FS,
      writeSync: (fd, buffer) => {
        if (full) throw enospc();
        return NODE_FS.writeSync(fd, buffer);
      },
    };
    const s1 = open(dir, { fs: seam });
    await s1.load();
    s1.append([e(1, 1)]);
    await s1.sync();
    full = true;
    assert.throws(() => s1.append([e(2, 1)]), HamokStorageFullError);
    full = false;
    assert.throws(() => s1.saveHardState({ term: 1, vote: undefined, commit: 1 }), HamokStorageFullError);
    s1.close();
    assert.deepEqual(indexTerms((await open(dir).load()).entries), [[1, 1]]);
  });

  it("a failing fdatasync rejects sync() with a typed error", async () => {
    const dir = tempDir();
    const seam: StorageFs = {
      ...NODE_FS,
      fdatasync: (_fd, callback) => callback(Object.assign(new Error("no space"), { code: "ENOSPC" })),
    };
    const s1 = open(dir, { fs: seam });
    await s1.load();
    s1.append([e(1, 1)]);
    await assert.rejects(Promise.resolve(s1.sync()), HamokStorageFullError);
    assert.throws(() => s1.append([e(2, 1)]), HamokStorageFullError);
  });

  it("a segment rolled while its fdatasync runs is closed only after the sync calls back", async () => {
    const held: (() => void)[] = [];
    const closed: number[] = [];
    const walFds = new Set<number>();
    /** A sync is issued on a microtask after sync() returns. */
    const issued = async () => {
      for (let turn = 0; turn < 10 && held.length === 0; turn++) await Promise.resolve();
    };
    const seam: StorageFs = {
      ...NODE_FS,
      fdatasync: (fd, callback) => {
        // the sync "runs" until released; it must find its descriptor still open then
        held.push(() => NODE_FS.fdatasync(fd, callback));
      },
      openSync: (path, flags) => {
        const fd = NODE_FS.openSync(path, flags);
        if (path.endsWith(".wal")) walFds.add(fd);
        else walFds.delete(fd);
        return fd;
      },
      closeSync: (fd) => {
        if (walFds.has(fd)) closed.push(fd); // segments only (not the directory synced for a new one)
        NODE_FS.closeSync(fd);
      },
    };
    const dir = tempDir();
    const s1 = open(dir, { fs: seam, segmentBytes: 100 });
    await s1.load();
    s1.append([e(1, 1, 16)]);
    const first = Promise.resolve(s1.sync());
    await issued();
    assert.equal(held.length, 1);
    const before = closed.length;
    s1.append([e(2, 1, 200)]); // past segmentBytes: the next append rolls to a new segment
    s1.append([e(3, 1, 16)]);
    assert.equal(closed.length, before, "the descriptor under the running sync is still open");
    held.shift()!();
    await first;
    assert.equal(closed.length, before + 1, "closed once its sync called back");
    const second = Promise.resolve(s1.sync());
    await issued();
    assert.equal(held.length, 1, "the new segment's sync");
    held.shift()!();
    await second;
    s1.close();
    assert.deepEqual(indexTerms((await open(dir).load()).entries), [[1, 1], [2, 1], [3, 1]]);
  });

  it("sync policies: always syncs once per call, never and interval return at once", async () => {
    let syncs = 0;
    const counting: StorageFs = {
      ...NODE_FS,
      fdatasync: (fd, callback) => {
        syncs++;
        NODE_FS.fdatasync(fd, callback);
      },
    };
    const always = open(tempDir(), { fs: counting });
    await always.load();
    always.append([e(1, 1), e(2, 1)]);
    always.saveHardState({ term: 1, vote: undefined, commit: 2 });
    await always.sync();
    assert.equal(syncs, 1, "one fdatasync for the whole batch");
    assert.equal(always.sync(), undefined, "nothing written since: no sync");
    syncs = 0;
    const never = open(tempDir(), { fs: counting, sync: "never" });
    await never.load();
    never.append([e(1, 1)]);
    assert.equal(never.sync(), undefined);
    never.close();
    assert.equal(syncs, 0);
    const interval = open(tempDir(), { fs: counting, sync: "interval", syncIntervalMs: 5 });
    await interval.load();
    interval.append([e(1, 1)]);
    assert.equal(interval.sync(), undefined);
    await waitFor(() => syncs > 0, { timeoutMs: 5000, message: "the interval timer syncs" });
  });

  it("discard() deletes the member: the directory opens as a new member", async () => {
    const dir = tempDir();
    const s1 = open(dir);
    await s1.load();
    s1.append([e(1, 1)]);
    s1.discard();
    const s2 = open(dir);
    assert.equal(s2.created, true);
    assert.notEqual(s2.memberId, s1.memberId);
    assert.deepEqual((await s2.load()).entries, []);
  });

  it("reloads 10,000 entries in order", async () => {
    const dir = tempDir();
    const s1 = open(dir, { sync: "never", segmentBytes: 64 * 1024 });
    await s1.load();
    for (let i = 1; i <= 10_000; i += 10) {
      s1.append(Array.from({ length: 10 }, (_, k) => e(i + k, 1, 16)));
    }
    s1.close();
    const state = await open(dir).load();
    assert.equal(state.entries.length, 10_000);
    assert.ok(state.entries.every((x, i) => x.index === i + 1));
  });
});
