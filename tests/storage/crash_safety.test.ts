/**
 * Crash-safety regressions of the file storage (audit 2): a torn log-restart segment, the directory
 * lock, the directory sync of new segments, a torn tail before an empty reserved segment, and typed
 * I/O errors during load.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import process from "node:process";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { HamokStorageCorruptError, HamokStorageError, HamokStorageLockedError } from "../../src/errors.ts";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { FileRaftStorage, type FileRaftStorageOptions } from "../../src/storage/file_raft_storage.ts";
import { NODE_FS, type StorageFs } from "../../src/storage/storage_fs.ts";

const e = (index: number, term: number, size = 100): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(size).fill(index & 0xff),
});
const snap = (index: number, term: number): Snapshot => ({
  meta: { index, term, membership: { voters: ["a/1"], learners: [], removed: [] } },
  data: new Uint8Array([1, 2, 3, index & 0xff]),
});
const indexes = (entries: readonly Entry[]) => entries.map((x) => x.index);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const dirs: string[] = [];
const opened: FileRaftStorage[] = [];
function tempRoot(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "hamok-crash-"));
  dirs.push(dir);
  return dir;
}
function open(dataDir: string, extra: Partial<FileRaftStorageOptions> = {}): FileRaftStorage {
  const s = new FileRaftStorage({ dataDir, peerId: "a", clusterId: "c1", ...extra });
  opened.push(s);
  return s;
}
function walFiles(dataDir: string): string[] {
  return fs.readdirSync(join(dataDir, "wal")).filter((n) => n.endsWith(".wal")).sort();
}
function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail("expected a throw");
}
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

afterEach(() => {
  for (const s of opened.splice(0)) {
    try {
      s.close();
    } catch {
      // closed already
    }
  }
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe("FileRaftStorage crash safety", () => {
  // ---------------------------------------------------------------- F1: torn log-restart segment
  it("a log-restart segment cut short by a full disk keeps the synced entries after the snapshot", async () => {
    const dir = join(tempRoot(), "m");
    let shortWrite = false;
    let full = false;
    const seam: StorageFs = {
      ...NODE_FS,
      writeSync: (fd, buffer) => {
        if (shortWrite) {
          shortWrite = false;
          full = true;
          return NODE_FS.writeSync(fd, buffer.subarray(0, 30)); // the reset record and a bit
        }
        if (full) throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
        return NODE_FS.writeSync(fd, buffer);
      },
      renameSync: (from, to) => {
        NODE_FS.renameSync(from, to);
        if (to.endsWith(".snap")) shortWrite = true; // the next write is the restart segment's
      },
    };
    const s1 = open(dir, { fs: seam });
    await s1.load();
    s1.saveHardState({ term: 1, vote: "a", commit: 5 });
    s1.append(range(1, 20).map((i) => e(i, 1)));
    await s1.sync(); // acknowledged: entries 1..20
    await rejectionOf(s1.saveSnapshot(snap(5, 1)));
    assert.equal(full, true, "the fault hit the restart segment");
    s1.close();
    assert.equal(walFiles(dir).length, 2, "the old segment and the torn restart segment");
    const state = await open(dir).load();
    assert.equal(state.snapshot?.meta.index, 5);
    assert.deepEqual(indexes(state.entries), range(6, 20));
    assert.deepEqual(state.hardState, { term: 1, vote: "a", commit: 5 });
  });

  it("a power loss that tears the log-restart segment keeps the synced entries after the snapshot", async () => {
    const root = tempRoot();
    const dir = join(root, "m");
    const image = join(root, "image");
    let taken = false;
    const seam: StorageFs = {
      ...NODE_FS,
      fdatasync: (fd, callback) => {
        // the restart segment is written, its sync not done: what a power loss here may leave
        if (!taken && walFiles(dir).length === 2) {
          taken = true;
          fs.cpSync(dir, image, { recursive: true, filter: (p) => !p.endsWith("LOCK") });
        }
        NODE_FS.fdatasync(fd, callback);
      },
    };
    const s1 = open(dir, { fs: seam });
    await s1.load();
    s1.saveHardState({ term: 1, vote: "a", commit: 5 });
    s1.append(range(1, 20).map((i) => e(i, 1)));
    await s1.sync();
    await s1.saveSnapshot(snap(5, 1));
    s1.close();
    assert.equal(taken, true);
    const restart = join(image, "wal", walFiles(image)[1]!);
    fs.truncateSync(restart, 40); // only the first bytes (the reset record) reached the disk
    const state = await open(image).load();
    assert.equal(state.snapshot?.meta.index, 5);
    assert.deepEqual(indexes(state.entries), range(6, 20));
  });

  it("a reset of an installed snapshot whose term does not match still drops the log on replay", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    await s1.load();
    s1.saveHardState({ term: 2, vote: undefined, commit: 0 });
    s1.append(range(1, 8).map((i) => e(i, 1)));
    await s1.sync();
    await s1.saveSnapshot(snap(5, 2)); // the leader's: entry 5 has term 2 there
    s1.append([e(6, 2)]);
    await s1.sync();
    s1.close();
    const state = await open(dir).load();
    assert.equal(state.snapshot?.meta.index, 5);
    assert.deepEqual(state.entries.map((x) => [x.index, x.term]), [[6, 2]]);
  });

  // ---------------------------------------------------------------- F3: the directory lock
  it("refuses a second storage on the same directory under another spelling of its path", async () => {
    const root = tempRoot();
    const dir = join(root, "m");
    const s1 = open(dir);
    await s1.load();
    s1.saveHardState({ term: 5, vote: "a", commit: 0 });
    s1.append([e(1, 5)]);
    await s1.sync();
    fs.symlinkSync(dir, join(root, "link"));
    const aliases = [
      dir + "/",
      join(root, ".", "m") + "/.",
      join(root, "..", root.split("/").pop()!, "m"),
      relative(process.cwd(), dir),
      join(root, "link"),
    ];
    for (const alias of aliases) {
      const error = errorOf(() => open(alias));
      assert.ok(error instanceof HamokStorageLockedError, `${alias}: ${error}`);
      assert.equal(error.pid, process.pid);
    }
    assert.ok(fs.existsSync(join(dir, "LOCK")), "the first storage still holds its lock");
    s1.close();
    const state = await open(dir).load();
    assert.deepEqual(state.hardState, { term: 5, vote: "a", commit: 0 });
    assert.deepEqual(state.entries.map((x) => [x.index, x.term]), [[1, 5]]);
  });

  it("a LOCK with this process's PID is stale unless a live storage of this process holds it", () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    s1.close();
    // left by an earlier process that had this PID (a restarted container)
    fs.writeFileSync(join(dir, "LOCK"), `${process.pid}\n`);
    const s2 = open(dir);
    assert.equal(s2.memberId, s1.memberId);
    // s2's own lock, copied under another name of the directory the path table cannot see, is held
    const content = fs.readFileSync(join(dir, "LOCK"));
    const twin = join(tempRoot(), "twin");
    fs.mkdirSync(twin);
    fs.writeFileSync(join(twin, "LOCK"), content);
    assert.ok(errorOf(() => open(twin)) instanceof HamokStorageLockedError);
    s2.close();
    assert.equal(fs.existsSync(join(dir, "LOCK")), false, "released");
    assert.equal(fs.existsSync(join(twin, "LOCK")), true, "another directory's LOCK is left alone");
  });

  it("an empty LOCK (another process is creating it) is held; an old empty one is taken over", () => {
    const dir = join(tempRoot(), "m");
    open(dir).close();
    fs.writeFileSync(join(dir, "LOCK"), ""); // created with O_EXCL, its PID not written yet
    const error = errorOf(() => open(dir));
    assert.ok(error instanceof HamokStorageLockedError, String(error));
    assert.equal(fs.readFileSync(join(dir, "LOCK")).length, 0, "the other process's LOCK is left alone");
    fs.writeFileSync(join(dir, "LOCK"), "12"); // partly written
    assert.ok(errorOf(() => open(dir)) instanceof HamokStorageLockedError);
    // a crash between the create and the write, long ago
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(join(dir, "LOCK"), old, old);
    const s = open(dir);
    assert.equal(fs.readFileSync(join(dir, "LOCK"), "utf8").split(" ")[0], String(process.pid));
    s.close();
  });

  it("the LOCK file never exists without the holder's PID", () => {
    const dir = join(tempRoot(), "m");
    open(dir).close();
    const lock = join(dir, "LOCK");
    const seen: string[] = [];
    const check = () => {
      if (fs.existsSync(lock)) seen.push(fs.readFileSync(lock, "utf8"));
    };
    const after = <A extends unknown[], R>(fn: (...args: A) => R) => (...args: A): R => {
      const result = fn(...args);
      check();
      return result;
    };
    const seam: StorageFs = {
      ...NODE_FS,
      openSync: after(NODE_FS.openSync),
      writeSync: after(NODE_FS.writeSync),
      fsyncSync: after(NODE_FS.fsyncSync),
      closeSync: after(NODE_FS.closeSync),
      linkSync: after(NODE_FS.linkSync!),
      renameSync: after(NODE_FS.renameSync),
      unlinkSync: after(NODE_FS.unlinkSync),
    };
    open(dir, { fs: seam });
    assert.ok(seen.length > 0);
    for (const content of seen) assert.match(content, new RegExp(`^${process.pid}[ \\n]`));
  });

  it("a stale LOCK replaced by a live process's lock while it is examined is not taken over", () => {
    const dir = join(tempRoot(), "m");
    open(dir).close();
    const lock = join(dir, "LOCK");
    fs.writeFileSync(lock, "2147483646\n"); // a crashed holder
    const live = `${process.ppid} 0f0f0f0f-0000-4000-8000-000000000000\n`; // a live process
    let raced = false;
    const seam: StorageFs = {
      ...NODE_FS,
      readFileSync: (path) => {
        const bytes = NODE_FS.readFileSync(path);
        if (path === lock && !raced) {
          raced = true; // another process takes the stale lock over right after this read
          fs.unlinkSync(lock);
          fs.writeFileSync(lock, live);
        }
        return bytes;
      },
    };
    const error = errorOf(() => open(dir, { fs: seam }));
    assert.equal(raced, true);
    assert.ok(error instanceof HamokStorageLockedError, String(error));
    assert.equal(error.pid, process.ppid);
    assert.equal(fs.readFileSync(lock, "utf8"), live, "the live process keeps its lock");
  });

  // ---------------------------------------------------------------- F4: directory sync of new segments
  it("a segment started by a roll has wal/ synced before its batch is acknowledged, once", async () => {
    const dir = join(tempRoot(), "m");
    const walDir = join(dir, "wal");
    const dirFds = new Set<number>();
    let dirSyncs = 0;
    const seam: StorageFs = {
      ...NODE_FS,
      openSync: (path, flags) => {
        const fd = NODE_FS.openSync(path, flags);
        if (path === walDir) dirFds.add(fd);
        else dirFds.delete(fd);
        return fd;
      },
      fsyncSync: (fd) => {
        if (dirFds.has(fd)) dirSyncs++;
        NODE_FS.fsyncSync(fd);
      },
      fsync: (fd, callback) => {
        const isDir = dirFds.has(fd);
        NODE_FS.fsync(fd, (error) => {
          if (isDir && error === null) dirSyncs++;
          callback(error);
        });
      },
    };
    const s1 = open(dir, { fs: seam, segmentBytes: 300 });
    await s1.load();
    const start = dirSyncs;
    s1.saveHardState({ term: 1, vote: "a", commit: 0 }); // the member's first segment
    await s1.sync();
    assert.equal(walFiles(dir).length, 1);
    assert.equal(dirSyncs, start + 1, "the first segment's directory entry is durable with its vote");
    s1.append([e(1, 1)]);
    await s1.sync();
    assert.equal(dirSyncs, start + 1, "a batch in an existing segment syncs no directory");
    s1.append([e(2, 1), e(3, 1)]);
    await s1.sync();
    s1.append([e(4, 1)]); // past segmentBytes: a new segment
    await s1.sync();
    assert.equal(walFiles(dir).length, 2);
    assert.equal(dirSyncs, start + 2, "the new segment's directory entry is durable with its batch");
    s1.append([e(5, 1)]);
    await s1.sync();
    assert.equal(dirSyncs, start + 2);
  });

  // ---------------------------------------------------------------- F5: torn tail before an empty segment
  it("loads a torn tail of a segment followed only by empty segments (a snapshot save's reserved one)", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    await s1.load();
    s1.saveHardState({ term: 1, vote: "a", commit: 0 });
    s1.append([e(1, 1), e(2, 1), e(3, 1)]);
    await s1.sync();
    s1.append([e(4, 1)]); // not synced when the power goes
    s1.close();
    const [only] = walFiles(dir);
    const segment = join(dir, "wal", only!);
    fs.truncateSync(segment, fs.statSync(segment).size - 20); // entry 4's record torn
    fs.writeFileSync(join(dir, "wal", "0000000000000002.wal"), new Uint8Array(0)); // reserved, empty
    const s2 = open(dir);
    const state = await s2.load();
    assert.deepEqual(indexes(state.entries), [1, 2, 3]);
    s2.append([e(4, 1)]);
    await s2.sync();
    s2.close();
    assert.deepEqual(indexes((await open(dir).load()).entries), [1, 2, 3, 4]);
  });

  it("a torn tail of a segment followed by a non-empty segment is still corruption", () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir, { segmentBytes: 200 });
    s1.loadSync();
    s1.saveHardState({ term: 1, vote: "a", commit: 0 });
    s1.append([e(1, 1)]);
    s1.append([e(2, 1)]);
    s1.append([e(3, 1)]); // in a second segment
    s1.close();
    const files = walFiles(dir);
    assert.equal(files.length, 2);
    const first = join(dir, "wal", files[0]!);
    fs.truncateSync(first, fs.statSync(first).size - 20);
    assert.ok(errorOf(() => open(dir).loadSync()) instanceof HamokStorageCorruptError);
  });

  // ---------------------------------------------------------------- F7: typed I/O errors on load
  it("I/O errors while loading are HamokStorageError with path and cause, not corruption", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir, { segmentBytes: 400 });
    await s1.load();
    s1.saveHardState({ term: 1, vote: "a", commit: 0 });
    s1.append(range(1, 10).map((i) => e(i, 1)));
    await s1.sync();
    await s1.saveSnapshot(snap(3, 1));
    s1.close();
    const fault = (code: string) => Object.assign(new Error(`${code}: injected`), { code });
    const cases: [string, string, Partial<StorageFs>][] = [
      ["EIO reading a segment", ".wal", {
        readFileSync: (p) =>
          p.endsWith(".wal")
            ? (() => {
              throw fault("EIO");
            })()
            : NODE_FS.readFileSync(p),
      }],
      ["EACCES reading meta.json", "meta.json", {
        readFileSync: (p) =>
          p.endsWith("meta.json")
            ? (() => {
              throw fault("EACCES");
            })()
            : NODE_FS.readFileSync(p),
      }],
      ["EIO reading the snapshot", ".snap", {
        readFileSync: (p) =>
          p.endsWith(".snap")
            ? (() => {
              throw fault("EIO");
            })()
            : NODE_FS.readFileSync(p),
      }],
      ["EACCES listing wal/", "/wal", {
        readdirSync: (p) =>
          p.endsWith("/wal")
            ? (() => {
              throw fault("EACCES");
            })()
            : NODE_FS.readdirSync(p),
      }],
    ];
    for (const [label, suffix, override] of cases) {
      let error: unknown;
      try {
        const s = open(dir, { fs: { ...NODE_FS, ...override } });
        await s.load();
      } catch (caught) {
        error = caught;
      }
      assert.ok(error instanceof HamokStorageError, `${label}: ${error}`);
      assert.ok(!(error instanceof HamokStorageCorruptError), `${label}: not corruption: ${error}`);
      assert.equal(error.code, "HAMOK_STORAGE", label);
      assert.ok(error.path.endsWith(suffix), `${label}: path ${error.path}`);
      assert.ok(["EIO", "EACCES"].includes((error.cause as { code?: string }).code ?? ""), label);
      for (const s of opened.splice(0)) s.close();
    }
    // the fault gone, the directory loads and takes writes
    const s2 = open(dir);
    const state = await s2.load();
    assert.equal(state.snapshot?.meta.index, 3);
    assert.deepEqual(indexes(state.entries), range(4, 10));
  });

  it("a load that failed on an I/O error can be retried on the same storage", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    await s1.load();
    s1.saveHardState({ term: 1, vote: "a", commit: 0 });
    s1.append([e(1, 1)]);
    await s1.sync();
    s1.close();
    let failing = true;
    const s2 = open(dir, {
      fs: {
        ...NODE_FS,
        readFileSync: (p) => {
          if (failing && p.endsWith(".wal")) throw Object.assign(new Error("EIO: injected"), { code: "EIO" });
          return NODE_FS.readFileSync(p);
        },
      },
    });
    const error = await rejectionOf(s2.load());
    assert.ok(
      error instanceof HamokStorageError && !(error instanceof HamokStorageCorruptError),
      String(error),
    );
    failing = false;
    assert.deepEqual(indexes((await s2.load()).entries), [1]);
    s2.append([e(2, 1)]);
    await s2.sync();
    s2.close();
    assert.deepEqual(indexes((await open(dir).load()).entries), [1, 2]);
  });
});
