/**
 * The durable restart counter (`RaftStorage.restarts`): the file storage counts every load in
 * `meta.json`, durably before the load resolves, so no later load (in this process or after any
 * crash) gets a number an earlier one already got; the memory storage counts the loads of one
 * object (a simulated restart hands the same object to the new node).
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { HamokStorageCorruptError, HamokStorageError } from "../../src/errors.ts";
import type { Entry, Snapshot } from "../../src/raft/types.ts";
import { FileRaftStorage, type FileRaftStorageOptions } from "../../src/storage/file_raft_storage.ts";
import { MemoryRaftStorage } from "../../src/storage/memory_storage.ts";
import { NODE_FS, type StorageFs } from "../../src/storage/storage_fs.ts";
import { waitFor } from "../_helpers/wait.ts";

const e = (index: number, term: number): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array([index & 0xff]),
});
const snap = (index: number, term: number): Snapshot => ({
  meta: { index, term, membership: { voters: ["a/1"], learners: [], removed: [] } },
  data: new Uint8Array([1, 2, 3]),
});
const indexes = (entries: readonly Entry[]) => entries.map((x) => x.index);

const dirs: string[] = [];
const opened: FileRaftStorage[] = [];
function tempRoot(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), "hamok-restarts-"));
  dirs.push(dir);
  return dir;
}
function open(dataDir: string, extra: Partial<FileRaftStorageOptions> = {}): FileRaftStorage {
  const s = new FileRaftStorage({ dataDir, peerId: "a", clusterId: "c1", ...extra });
  opened.push(s);
  return s;
}
/** A copy of `dir` as a process crash leaves it (every write in the OS; the LOCK of a dead process left out). */
function crashImage(dir: string, image: string): void {
  fs.rmSync(image, { recursive: true, force: true });
  fs.cpSync(dir, image, { recursive: true, filter: (p) => !basename(p).startsWith("LOCK") });
}
/** The `restarts` of one more load of `dir` (opened, loaded, closed). */
async function restartsOf(dir: string): Promise<number | undefined> {
  const s = open(dir);
  await s.load();
  s.close();
  return s.restarts;
}
/** `NODE_FS` with `before(name, args)` called ahead of every function. */
function tracedFs(before: (name: string, args: unknown[]) => void): StorageFs {
  const seam: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(NODE_FS)) {
    seam[name] = (...args: unknown[]) => {
      before(name, args);
      return (fn as (...a: unknown[]) => unknown)(...args);
    };
  }
  return seam as unknown as StorageFs;
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

describe("FileRaftStorage restarts", () => {
  it("is 0 at the first load of a new directory and one more at every later load, a second one of the same object too", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    assert.equal(s1.created, true);
    assert.equal(s1.restarts, undefined, "not known before the load");
    await s1.load();
    assert.equal(s1.restarts, 0);
    s1.saveHardState({ term: 2, vote: "a", commit: 0 });
    s1.append([e(1, 2), e(2, 2)]);
    await s1.sync();
    s1.close();
    const s2 = open(dir);
    assert.equal(s2.memberId, s1.memberId);
    const state = await s2.load();
    assert.equal(s2.restarts, 1);
    assert.deepEqual(indexes(state.entries), [1, 2], "the log is untouched by the count");
    await s2.load();
    assert.equal(s2.restarts, 2, "a second load of the same object counts");
    s2.close();
    assert.equal(await restartsOf(dir), 3);
    assert.equal(await restartsOf(dir), 4);
  });

  it("a crash at any file-system call of a load never lets a later load get a number already handed out", async () => {
    const root = tempRoot();
    const base = join(root, "base");
    const s0 = open(base);
    await s0.load(); // hands out 0
    s0.saveHardState({ term: 1, vote: "a", commit: 0 });
    s0.append([e(1, 1), e(2, 1), e(3, 1)]);
    await s0.sync();
    await s0.saveSnapshot(snap(2, 1));
    await waitFor(() => s0.removalsPending === 0, { timeoutMs: 5000, message: "old files removed" });
    s0.close();
    assert.equal(s0.restarts, 0);
    // the fs calls of one open and load (all made before load() returns its promise)
    let calls = 0;
    const trial = join(root, "trial");
    crashImage(base, trial);
    const probe = open(trial, { fs: tracedFs(() => calls++) });
    const loading = probe.load();
    const total = calls;
    await loading;
    probe.close();
    assert.ok(total > 5, `${total} calls`);
    const image = join(root, "image");
    for (let k = 1; k <= total; k++) {
      crashImage(base, trial);
      let call = 0;
      let taken = false;
      const s = open(trial, {
        fs: tracedFs(() => {
          if (++call === k) {
            crashImage(trial, image); // the process dies just before this call
            taken = true;
          }
        }),
      });
      await s.load();
      assert.equal(taken, true, `call ${k}`);
      assert.equal(s.restarts, 1, "the load under test gets 1");
      // a crash right after the load resolved (before anything else): the next process gets more
      const after = join(root, "after");
      crashImage(trial, after);
      s.close();
      const next = await restartsOf(image);
      assert.ok(next !== undefined && next >= 1, `crash before call ${k}: got ${next}, 0 was handed out`);
      assert.equal(await restartsOf(after), 2, `crash after the load resolved (call ${k} run)`);
      const state = await open(image).load();
      assert.deepEqual(indexes(state.entries), [3], "the image loads with its log");
      for (const x of opened.splice(0)) x.close();
    }
  });

  it("the count is renamed into place and its directory synced before the load resolves", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    await s1.load();
    s1.close();
    const trace: string[] = [];
    const fds = new Map<number, string>();
    const seam = tracedFs((name, args) => {
      if (name === "renameSync") {
        trace.push(`rename ${basename(args[0] as string)} ${basename(args[1] as string)}`);
      }
      if (name === "fsyncSync") trace.push(`fsync ${fds.get(args[0] as number)}`);
    });
    const openSync = seam.openSync;
    seam.openSync = (path, flags) => {
      const fd = openSync(path, flags);
      fds.set(fd, basename(path));
      return fd;
    };
    const s2 = open(dir, { fs: seam });
    const pending = s2.load();
    // load() is synchronous up to its promise: all of this happened before it can resolve
    const at = trace.indexOf("rename meta.json.tmp meta.json");
    assert.ok(at > 0, trace.join("; "));
    assert.equal(trace[at - 1], "fsync meta.json.tmp", "the new count is synced before the rename");
    assert.equal(trace[at + 1], `fsync ${basename(dir)}`, "and the rename is synced after it");
    await pending;
    assert.equal(s2.restarts, 1);
    assert.equal(JSON.parse(fs.readFileSync(join(dir, "meta.json"), "utf8")).loads, 2);
  });

  it("a count that cannot be written rejects the load typed and hands out nothing; the retry gets the number", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    await s1.load();
    s1.close();
    let failing = true;
    const s2 = open(dir, {
      fs: {
        ...NODE_FS,
        renameSync: (from, to) => {
          if (failing && to.endsWith("meta.json")) {
            throw Object.assign(new Error("EIO: injected"), { code: "EIO" });
          }
          NODE_FS.renameSync(from, to);
        },
      },
    });
    let error: unknown;
    try {
      await s2.load();
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof HamokStorageError, String(error));
    assert.equal(error.code, "HAMOK_STORAGE");
    assert.ok(error.path.endsWith("meta.json"), error.path);
    assert.equal((error.cause as { code?: string }).code, "EIO");
    assert.equal(s2.restarts, undefined, "nothing handed out");
    failing = false;
    await s2.load();
    assert.equal(s2.restarts, 1);
    s2.close();
    assert.equal(await restartsOf(dir), 2);
  });

  it("a directory of the previous format (meta.json without the count) loads as before and counts from 0", async () => {
    const dir = join(tempRoot(), "m");
    const s1 = open(dir);
    await s1.load();
    s1.saveHardState({ term: 4, vote: "a", commit: 1 });
    s1.append([e(1, 4), e(2, 4)]);
    await s1.sync();
    s1.close();
    // exactly what the previous version wrote
    const old = { format: 1, clusterId: "c1", memberId: s1.memberId };
    fs.writeFileSync(join(dir, "meta.json"), JSON.stringify(old) + "\n");
    const s2 = open(dir);
    assert.equal(s2.created, false);
    assert.equal(s2.memberId, s1.memberId);
    const state = await s2.load();
    assert.deepEqual(state.hardState, { term: 4, vote: "a", commit: 1 });
    assert.deepEqual(indexes(state.entries), [1, 2]);
    assert.equal(s2.restarts, 0);
    s2.close();
    const meta = JSON.parse(fs.readFileSync(join(dir, "meta.json"), "utf8"));
    assert.deepEqual(meta, { ...old, loads: 1 }, "the identity is kept, the count added");
    assert.equal(await restartsOf(dir), 1);
    // a count that is not a count is damage
    for (const loads of [-1, 1.5, "3", null]) {
      fs.writeFileSync(join(dir, "meta.json"), JSON.stringify({ ...old, loads }) + "\n");
      let error: unknown;
      try {
        open(dir);
      } catch (caught) {
        error = caught;
      }
      assert.ok(error instanceof HamokStorageCorruptError, `loads ${JSON.stringify(loads)}: ${error}`);
    }
  });
});

describe("MemoryRaftStorage restarts", () => {
  it("counts the loads of the same object (a simulated restart); loadSync and a failed load do not count", async () => {
    const s = new MemoryRaftStorage("a/1");
    assert.equal(s.restarts, undefined);
    await s.load();
    assert.equal(s.restarts, 0);
    s.saveHardState({ term: 1, vote: "a/1", commit: 0 });
    s.append([e(1, 1)]);
    const state = await s.load(); // the same object handed to the next node
    assert.equal(s.restarts, 1);
    assert.deepEqual(indexes(state.entries), [1]);
    s.loadSync(); // a look at the state, not a restart
    assert.equal(s.restarts, 1);
    await s.load();
    assert.equal(s.restarts, 2);
    assert.equal(new MemoryRaftStorage("a/2").restarts, undefined, "another member counts on its own");
    s.close();
    await assert.rejects(s.load());
    assert.equal(s.restarts, 2);
  });
});
