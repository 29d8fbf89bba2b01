import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { FileRaftStorage } from "../../src/storage/file_raft_storage.ts";
import { FileRemover, REMOVE_STEP_BYTES, REMOVED_SUFFIX } from "../../src/storage/file_remover.ts";
import { NODE_FS, type StorageFs } from "../../src/storage/storage_fs.ts";
import { waitFor } from "../_helpers/wait.ts";

const MiB = 1024 * 1024;
const dirs: string[] = [];
const opened: FileRaftStorage[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "hamok-rm-"));
  dirs.push(dir);
  return dir;
}
function bigFile(path: string, bytes: number): void {
  fs.writeFileSync(path, new Uint8Array(bytes).fill(7));
}

/** A seam that logs the calls the remover makes, in order. */
function logging(log: string[], base: StorageFs = NODE_FS): StorageFs {
  return {
    ...base,
    ftruncate: (fd, length, callback) => {
      log.push(`ftruncate ${length / MiB}`);
      base.ftruncate!(fd, length, callback);
    },
    fsync: (fd, callback) => {
      log.push("fsync");
      base.fsync(fd, callback);
    },
    unlink: (path, callback) => {
      log.push(`unlink ${path.slice(path.lastIndexOf("/") + 1)}`);
      base.unlink(path, callback);
    },
  };
}

afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("FileRemover", () => {
  it("shrinks a large file in synced steps before it unlinks it, one file after the other", async () => {
    const dir = tempDir();
    const a = join(dir, "a.del");
    const b = join(dir, "b.del");
    bigFile(a, 10 * MiB);
    bigFile(b, 3 * MiB);
    const log: string[] = [];
    const remover = new FileRemover(logging(log));
    remover.enqueue(a);
    remover.enqueue(b);
    assert.equal(remover.pending, 2);
    await remover.idle();
    assert.equal(remover.pending, 0);
    assert.equal(REMOVE_STEP_BYTES, 4 * MiB);
    // 10 MiB: two steps (to 6, then 2 MiB), each synced, then the unlink; 3 MiB: unlinked at once
    assert.deepEqual(log, ["ftruncate 6", "fsync", "ftruncate 2", "fsync", "unlink a.del", "unlink b.del"]);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("without ftruncate and fstat in the seam, unlinks at once", async () => {
    const dir = tempDir();
    const a = join(dir, "a.del");
    bigFile(a, 9 * MiB);
    const log: string[] = [];
    const { ftruncate: _t, fstat: _s, ...plain } = NODE_FS;
    const remover = new FileRemover(logging(log, plain));
    remover.enqueue(a);
    await remover.idle();
    assert.deepEqual(log, ["unlink a.del"]);
    assert.equal(fs.existsSync(a), false);
  });

  it("stops after the current step once closed, and leaves the rest on disk; errors are ignored", async () => {
    const dir = tempDir();
    const a = join(dir, "a.del");
    const b = join(dir, "b.del");
    bigFile(a, 13 * MiB);
    bigFile(b, 1 * MiB);
    const log: string[] = [];
    const seam = logging(log);
    let remover: FileRemover | undefined = undefined;
    const closing: StorageFs = {
      ...seam,
      fsync: (fd, callback) => {
        remover!.close(); // closed during the first step
        seam.fsync(fd, callback);
      },
    };
    remover = new FileRemover(closing);
    remover.enqueue(join(dir, "missing.del")); // ENOENT: skipped
    remover.enqueue(a);
    remover.enqueue(b);
    await remover.idle();
    assert.deepEqual(log, ["ftruncate 9", "fsync"]);
    assert.equal(fs.statSync(a).size, 9 * MiB);
    assert.equal(fs.existsSync(b), true);
    remover.enqueue(b); // ignored once closed
    assert.equal(remover.pending, 0);
  });
});

const e = (index: number, term: number, size: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(size).fill(index & 0xff),
  requestId: `r${index}`,
});
const snap = (index: number, bytes: number): Snapshot => ({
  meta: { index, term: 1, membership: { voters: ["a/1"], learners: [], removed: [] } },
  data: new Uint8Array(bytes).fill(index & 0xff),
});
const names = (dir: string) => fs.readdirSync(dir).sort();

describe("FileRaftStorage file removal", () => {
  it("renames covered segments and snapshots out of the log's view at once and removes them in steps", async () => {
    const dir = join(tempDir(), "member");
    const log: string[] = [];
    const s1 = new FileRaftStorage({
      dataDir: dir,
      peerId: "a",
      clusterId: "c1",
      fs: logging(log),
      segmentBytes: 6 * MiB,
    });
    opened.push(s1);
    await s1.load();
    for (let i = 1; i <= 20; i++) s1.append([e(i, 1, MiB)]); // four segments of 6 MiB or less
    await s1.sync();
    await s1.saveSnapshot(snap(10, 9 * MiB));
    await s1.saveSnapshot(snap(20, 1024));
    // the log's view has moved on at once; the files behind it go in the background
    assert.deepEqual(names(join(dir, "snap")).filter((n) => n.endsWith(".snap")), ["0000000000000014.snap"]);
    await waitFor(() => s1.removalsPending === 0, { timeoutMs: 20_000, message: "old files removed" });
    assert.deepEqual(names(join(dir, "snap")), ["0000000000000014.snap"]);
    assert.equal(names(join(dir, "wal")).length, 1);
    // the 9 MiB snapshot file and the 6 MiB segments were shrunk in synced steps before their unlink
    const unlinkSnap = log.indexOf(`unlink 000000000000000a.snap${REMOVED_SUFFIX}`);
    assert.ok(unlinkSnap > 0, log.join(", "));
    assert.equal(log[unlinkSnap - 1], "fsync", log.join(", "));
    assert.ok(log.filter((l) => l.startsWith("ftruncate")).length >= 4, log.join(", "));
  });

  it("files left in removal by a crash never come back into the log and are removed after the restart", async () => {
    const dir = join(tempDir(), "member");
    const s1 = new FileRaftStorage({ dataDir: dir, peerId: "a", clusterId: "c1", segmentBytes: 200 });
    opened.push(s1);
    await s1.load();
    for (let i = 1; i <= 20; i++) s1.append([e(i, 1, 40)]);
    await s1.sync();
    await s1.saveSnapshot(snap(15, 64));
    s1.close(); // the remover stops with the storage: what it had not removed stays on disk
    // an old segment that is valid on its own, under its .del name, beside the log
    fs.copyFileSync(
      join(dir, "wal", names(join(dir, "wal")).find((n) => n.endsWith(".wal"))!),
      join(dir, "wal", `0000000000000000.wal${REMOVED_SUFFIX}`),
    );
    fs.writeFileSync(join(dir, "snap", `0000000000000001.snap${REMOVED_SUFFIX}`), new Uint8Array(100));
    const s2 = new FileRaftStorage({ dataDir: dir, peerId: "a", clusterId: "c1", segmentBytes: 200 });
    opened.push(s2);
    const state = await s2.load();
    assert.equal(state.snapshot?.meta.index, 15);
    assert.deepEqual(state.entries.map((x) => x.index), [16, 17, 18, 19, 20]);
    await waitFor(() => s2.removalsPending === 0, { timeoutMs: 10_000, message: "leftovers removed" });
    assert.deepEqual(names(join(dir, "wal")).filter((n) => n.endsWith(REMOVED_SUFFIX)), []);
    assert.deepEqual(names(join(dir, "snap")), ["000000000000000f.snap"]);
  });
});
