/**
 * Crash-safety regressions of the file storage (audit 2): a torn log-restart segment, the directory
 * lock, the directory sync of new segments, a torn tail before an empty reserved segment, typed
 * I/O errors during load, an interrupted discard, a directory sync that cannot open its directory,
 * and a snapshot save under a writer that never pauses.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import process from "node:process";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { HamokStorageCorruptError, HamokStorageError, HamokStorageLockedError } from "../../src/errors.ts";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { FileRaftStorage, type FileRaftStorageOptions } from "../../src/storage/file_raft_storage.ts";
import { NODE_FS, type StorageFs, syncDir, syncDirAsync } from "../../src/storage/storage_fs.ts";
import { waitFor } from "../_helpers/wait.ts";

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

/** A copy of `dir` as a process crash leaves it (every write in the OS; the LOCK of a dead process left out). */
function crashImage(dir: string, image: string): void {
  fs.rmSync(image, { recursive: true, force: true });
  fs.cpSync(dir, image, { recursive: true, filter: (p) => !basename(p).startsWith("LOCK") });
}

/**
 * `NODE_FS` that dies at the `at`-th call counted from `arm(at)`: that call and every later one
 * throw without doing anything, as in a process killed there.
 */
function mortalFs(): { fs: StorageFs; arm(at: number): void; calls(): number } {
  let calls = 0;
  let crashAt = Infinity;
  let dead = false;
  const seam: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(NODE_FS)) {
    seam[name] = (...args: unknown[]) => {
      if (!dead && ++calls === crashAt) dead = true;
      if (dead) throw Object.assign(new Error(`simulated crash at ${name}`), { code: "ECRASH" });
      return (fn as (...a: unknown[]) => unknown)(...args);
    };
  }
  return {
    fs: seam as unknown as StorageFs,
    arm(at: number) {
      calls = 0;
      crashAt = at;
    },
    calls: () => calls,
  };
}

describe("FileRaftStorage crash safety (audit 2, second round)", () => {
  // ---------------------------------------------------------------- F6: an interrupted discard
  it("a discard interrupted at any file-system call never gives a new member the old member's state", async () => {
    const root = tempRoot();
    const base = join(root, "base");
    const s0 = open(base);
    await s0.load();
    s0.saveHardState({ term: 3, vote: s0.memberId, commit: 5 });
    s0.append(range(1, 5).map((i) => e(i, 3)));
    await s0.sync();
    await s0.saveSnapshot(snap(2, 3));
    await waitFor(() => s0.removalsPending === 0, { timeoutMs: 5000, message: "old files removed" });
    s0.close();
    const oldId = s0.memberId;
    const trial = join(root, "trial");
    const discardAt = async (k: number) => {
      crashImage(base, trial);
      const mortal = mortalFs();
      const s = open(trial, { fs: mortal.fs });
      await s.load();
      mortal.arm(k);
      try {
        s.discard();
      } catch {
        // the process died there
      }
      return mortal.calls();
    };
    /** The member a restart finds in `dir`: the old one whole, or a new one with nothing. */
    const check = async (dir: string, label: string): Promise<"old" | "new"> => {
      const r = open(dir);
      const state = await r.load();
      r.close();
      if (r.memberId === oldId) {
        assert.equal(r.created, false, label);
        assert.deepEqual(state.hardState, { term: 3, vote: oldId, commit: 5 }, label);
        assert.equal(state.snapshot?.meta.index, 2, label);
        assert.deepEqual(indexes(state.entries), [3, 4, 5], label);
        return "old";
      }
      assert.deepEqual(
        state.hardState,
        { term: 0, vote: undefined, commit: 0 },
        `${label}: new member, old term`,
      );
      assert.equal(state.snapshot, undefined, `${label}: new member, old snapshot`);
      assert.deepEqual(state.entries, [], `${label}: new member, old log`);
      assert.equal(fs.existsSync(join(dir, "DISCARDED")), false, label);
      return "new";
    };
    const total = await discardAt(Infinity);
    assert.equal(await check(trial, "discard completed"), "new");
    const seen = { old: 0, new: 0 };
    let committed: string | undefined; // an image whose discard is decided but nothing deleted yet
    for (let k = 1; k <= total; k++) {
      await discardAt(k);
      if (
        committed === undefined && fs.existsSync(join(trial, "DISCARDED")) &&
        fs.existsSync(join(trial, "meta.json")) && walFiles(trial).length > 0
      ) {
        committed = join(root, "committed");
        crashImage(trial, committed);
      }
      seen[await check(trial, `crash at call ${k} of ${total}`)]++;
      for (const x of opened.splice(0)) x.close();
    }
    assert.ok(seen.old > 0 && seen.new > 0, JSON.stringify(seen));
    // the open that finishes a decided discard can crash anywhere too
    assert.ok(committed !== undefined, "a crash point between the marker and the first deletion");
    const again = join(root, "again");
    const probe = mortalFs();
    crashImage(committed, again);
    await open(again, { fs: probe.fs }).load();
    const calls = probe.calls();
    assert.ok(calls > 5, `${calls} calls`);
    for (const x of opened.splice(0)) x.close();
    for (let j = 1; j <= calls; j++) {
      crashImage(committed, again);
      const mortal = mortalFs();
      mortal.arm(j);
      try {
        await open(again, { fs: mortal.fs }).load();
      } catch {
        // the process died there
      }
      for (const x of opened.splice(0)) x.close(); // its lock goes with the process
      assert.equal(await check(again, `finishing open crashed at call ${j} of ${calls}`), "new");
    }
  });

  it("a directory an earlier version's discard left without meta.json but with a log is refused, not loaded", async () => {
    const dir = join(tempRoot(), "m");
    const s0 = open(dir);
    await s0.load();
    s0.saveHardState({ term: 3, vote: s0.memberId, commit: 0 });
    s0.append([e(1, 3), e(2, 3)]);
    await s0.sync();
    await s0.saveSnapshot(snap(1, 3));
    s0.close();
    fs.unlinkSync(join(dir, "meta.json")); // what the earlier discard deleted first
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = errorOf(() => open(dir));
      assert.ok(error instanceof HamokStorageCorruptError, String(error));
      assert.equal(error.code, "HAMOK_STORAGE_CORRUPT");
      assert.ok(error.path.endsWith("meta.json"), error.path);
    }
    assert.ok(walFiles(dir).length > 0, "nothing deleted: the operator decides");
    assert.equal(fs.existsSync(join(dir, "LOCK")), false, "the lock is released");
    // only the snapshot left: refused too
    for (const name of walFiles(dir)) fs.unlinkSync(join(dir, "wal", name));
    assert.ok(errorOf(() => open(dir)) instanceof HamokStorageCorruptError);
    // empty wal/ and snap/ (a crash while the directory was first made) are a new member
    for (const name of fs.readdirSync(join(dir, "snap"))) fs.unlinkSync(join(dir, "snap", name));
    const fresh = open(dir);
    assert.equal(fresh.created, true);
    assert.deepEqual((await fresh.load()).entries, []);
  });

  // ---------------------------------------------------------------- F10: a directory sync that cannot open
  it("syncDir and syncDirAsync throw HamokStorageError when the directory cannot be opened, except where unsupported", async () => {
    const dir = tempRoot();
    for (const code of ["EMFILE", "EACCES", "ENOENT", "EIO"]) {
      const failing: StorageFs = {
        ...NODE_FS,
        openSync: (path, flags) => {
          if (path === dir) throw Object.assign(new Error(`${code}: injected`), { code });
          return NODE_FS.openSync(path, flags);
        },
      };
      const error = errorOf(() => syncDir(failing, dir));
      assert.ok(error instanceof HamokStorageError, `${code}: ${error}`);
      assert.equal(error.code, "HAMOK_STORAGE", code);
      assert.equal(error.path, dir, code);
      assert.equal((error.cause as { code?: string }).code, code);
      const rejected = await rejectionOf(syncDirAsync(failing, dir));
      assert.ok(rejected instanceof HamokStorageError && rejected.path === dir, `${code} async: ${rejected}`);
    }
    // a platform that cannot open directories (Windows: EISDIR) has nothing to sync: no error
    const noDirs: StorageFs = {
      ...NODE_FS,
      openSync: (path, flags) => {
        if (path === dir) throw Object.assign(new Error("EISDIR: injected"), { code: "EISDIR" });
        return NODE_FS.openSync(path, flags);
      },
    };
    syncDir(noDirs, dir);
    await syncDirAsync(noDirs, dir);
  });

  it("a batch whose new segment's directory cannot be synced fails typed and stops the storage", async () => {
    const root = tempRoot();
    const dir = join(root, "m");
    const walDir = join(dir, "wal");
    const snapDir = join(dir, "snap");
    let refuse: string | undefined;
    const seam: StorageFs = {
      ...NODE_FS,
      openSync: (path, flags) => {
        if (path === refuse) {
          throw Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
        }
        return NODE_FS.openSync(path, flags);
      },
    };
    const s1 = open(dir, { fs: seam });
    await s1.load();
    refuse = walDir;
    s1.saveHardState({ term: 1, vote: "a", commit: 0 }); // the member's first segment
    const error = await rejectionOf(Promise.resolve(s1.sync()));
    assert.ok(error instanceof HamokStorageError, String(error));
    assert.equal(error.path, walDir);
    assert.equal((error.cause as { code?: string }).code, "EMFILE");
    assert.throws(() => s1.append([e(1, 1)]), HamokStorageError, "stopped: nothing more is written");
    s1.close();
    // a snapshot whose rename cannot be synced is not durable: the save fails and the storage stops
    refuse = undefined;
    const s2 = open(dir, { fs: seam });
    await s2.load();
    s2.append([e(1, 1), e(2, 1)]);
    await s2.sync();
    refuse = snapDir;
    const saveError = await rejectionOf(s2.saveSnapshot(snap(1, 1)));
    assert.ok(saveError instanceof HamokStorageError && saveError.path === snapDir, String(saveError));
    assert.throws(() => s2.append([e(3, 1)]), HamokStorageError);
    s2.close();
    // a directory that cannot be synced when it is opened the first time is refused, and left openable
    const other = join(root, "other");
    refuse = other;
    const openError = errorOf(() => open(other, { fs: seam }));
    assert.ok(openError instanceof HamokStorageError && openError.path === other, String(openError));
    refuse = undefined;
    await open(other).load();
  });

  // ---------------------------------------------------------------- F8: a save under a busy writer
  it("a snapshot save finishes under a writer that writes its next batch as soon as each sync resolves", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    await s1.load();
    s1.saveHardState({ term: 1, vote: "a", commit: 0 });
    s1.append(range(1, 50).map((i) => e(i, 1)));
    await s1.sync();
    let next = 51;
    let saved = false;
    let rounds = 0;
    const MAX_ROUNDS = 2000;
    // the Raft driver's loop under load: a batch, its sync, at once the next batch
    const writer = (async () => {
      while (!saved && rounds < MAX_ROUNDS) {
        rounds++;
        s1.append([e(next++, 1)]);
        await s1.sync();
      }
    })();
    const save = s1.saveSnapshot(snap(40, 1)).then(() => {
      saved = true;
    });
    await writer;
    assert.equal(saved, true, `the save finished while the writer ran (${rounds} rounds)`);
    await save;
    assert.equal(walFiles(dir).length, 1, "the segments the snapshot covers are gone");
    const last = next - 1;
    s1.close();
    const state = await open(dir).load();
    assert.equal(state.snapshot?.meta.index, 40);
    assert.deepEqual(indexes(state.entries), range(41, last));
  });
});
