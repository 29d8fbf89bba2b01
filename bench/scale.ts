/**
 * Scale rows (issue 14): three peers in one process on the memory bus, one map of small entries
 * (key `k<i>` through the default CBOR key codec, a 32-character string value):
 *
 * - RSS and heap per entry per peer at each size (100,000 and 1,000,000 by default): the growth of
 *   the process's RSS and V8 heap from before the fill to after it (both after a full GC), divided
 *   by the entries and by the three peers;
 * - p50 / p99 / max of sequential `map.set` latency from the leader while the map holds that many
 *   entries, across at least three log compactions on every peer (counted from each peer's
 *   `status().snapshotIndex`), with the default `snapshotThreshold` (10,000), and the longest
 *   event-loop stall meanwhile (the longest gap between two ticks of a 1 ms timer);
 *
 * - the time for a fourth peer to join and be `ready` over NATS (a private nats-server, default
 *   settings: `max_payload` 1 MiB, `peerTimeoutMs` 5 s, `snapshotThreshold` 10,000) while the map holds
 *   that many entries (it receives the leader's snapshot in chunks and restores it in slices), the
 *   longest stall of the joiner's event loop meanwhile (the joiner runs in a process of its own,
 *   bench/_join_peer.ts), and whether any member was removed as silent meanwhile.
 *
 * Targets: max `map.set` latency during compaction <= 50 ms; <= 250 bytes of RSS per entry per peer;
 * the fourth peer `ready` in <= 10 s with no member removed.
 * Not part of CI (a 1,000,000-entry run takes a few minutes here).
 *
 * Deno: `deno run -A --v8-flags=--expose-gc bench/scale.ts [--sizes 100000,1000000]
 * [--rows sets,snapshot,join] [--storage memory|file] [--out file]`. `--storage file` gives each
 * peer of the sets rows a `FileRaftStorage` in a temporary directory (removed at the end), and each
 * such row also gives the disk's floor: three bare loops of a 150-byte append and an `fdatasync`
 * in the same directory, right after the sets and for as long as they ran (at most 30 s);
 * `--trace-io` (with `--storage file`) also prints, at the end of the sets, every file-system call
 * of a peer's storage that took over 15 ms and every set over 30 ms, with its start time, to tell
 * a slow set that waited for the disk from one that waited for the event loop; also the synchronous
 * calls over 15 ms, every rename and every open of a snapshot file (when snapshots are written and
 * replaced), sorted by time, with the epoch of the times so that they can be lined up with a
 * sampler of `/proc/diskstats` or `strace -tt`.
 * Bun: `bun bench/scale.ts`. Prints a markdown table (and writes it with `--out`).
 *
 * @module
 */

import process from "node:process";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, fdatasync, mkdtempSync, openSync, rmSync, write, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileRaftStorage } from "../src/storage/file_raft_storage.ts";
import { NODE_FS, type StorageFs } from "../src/storage/storage_fs.ts";
import { cpus, loadavg } from "node:os";
import { Hamok } from "../src/hamok.ts";
import { MemoryBus } from "../src/transport/memory_bus.ts";
import { MemoryTransport } from "../src/transport/memory_transport.ts";
import type { HamokMap } from "../src/collections/map.ts";
import { formatUs, summarize } from "./_measure.ts";
import { StateMachine, type StateMachineImage } from "../src/cluster/state_machine.ts";
import { SnapshotJob } from "../src/cluster/snapshot_job.ts";
import { HamokMapState } from "../src/collections/map_state.ts";
import { decodeCbor, encodeCbor } from "../src/codec/cbor.ts";
import { setImmediate } from "node:timers";
import { NatsTransport } from "../src/transport/nats_transport.ts";
import { startNatsServer } from "../tests/_helpers/nats_server.ts";

const args = process.argv.slice(2);
const sizesAt = args.indexOf("--sizes");
const SIZES = (sizesAt >= 0 ? args[sizesAt + 1]! : "100000,1000000").split(",").map(Number);
const outAt = args.indexOf("--out");
const OUT = outAt >= 0 ? args[outAt + 1] : undefined;
const thresholdAt = args.indexOf("--threshold");
const THRESHOLD = thresholdAt >= 0 ? Number(args[thresholdAt + 1]) : undefined;
const thresholdBytesAt = args.indexOf("--threshold-bytes");
const THRESHOLD_BYTES = thresholdBytesAt >= 0 ? Number(args[thresholdBytesAt + 1]) : undefined;
const rowsAt = args.indexOf("--rows");
const ROWS = new Set((rowsAt >= 0 ? args[rowsAt + 1]! : "sets,snapshot,join").split(","));
const storageAt = args.indexOf("--storage");
const STORAGE = storageAt >= 0 ? args[storageAt + 1]! : "memory";
if (STORAGE !== "memory" && STORAGE !== "file") throw new Error(`--storage memory|file, got ${STORAGE}`);
const TRACE_IO = args.includes("--trace-io");
const COMPACTIONS = 3;
const FILL_BATCH = 1000;
const VALUE_PAD = "v".repeat(32);

function fullGc(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun !== undefined) g.Bun.gc(true);
  else if (g.gc !== undefined) {
    g.gc();
    g.gc();
  } else {throw new Error(
      "run with --v8-flags=--expose-gc (Deno) or on Bun, so the bench can collect garbage",
    );}
}

type Memory = { rss: number; heap: number; heapTotal: number; external: number; arrayBuffers: number };

function sample(): Memory {
  fullGc();
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heap: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
  };
}

/**
 * Memory after a full GC, once the external memory has settled: V8 frees the backing stores of dead
 * ArrayBuffers (a snapshot image is one of 47 MB at 1,000,000 entries) on a background thread after the
 * GC, so a figure read right after `gc()` may still count an image that is already garbage; and a
 * compaction that is still being written out (each peer holds its image for about a second at
 * 1,000,000 entries, then drops it) is not the steady state. Collects again every 50 ms for at least
 * 200 ms and then until external memory is the same (within 1 MB) in three samples in a row, at
 * most 6 s.
 */
async function memory(): Promise<Memory> {
  let m = sample();
  let still = 0;
  for (let i = 0; i < 120; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const next = sample();
    still = Math.abs(next.external - m.external) < 1 << 20 ? still + 1 : 0;
    m = next;
    if (still >= 2 && i >= 3) break;
  }
  return m;
}

/** One line of where the bytes are, per entry per peer, relative to `from` (stderr). */
function account(label: string, from: Memory, to: Memory, n: number): void {
  const f = (k: keyof Memory) => ((to[k] - from[k]) / n).toFixed(1);
  console.error(
    `${label}: per entry per peer rss ${f("rss")} B, heapUsed ${f("heap")} B, heapTotal ${
      f("heapTotal")
    } B, ` +
      `external ${f("external")} B, arrayBuffers ${f("arrayBuffers")} B`,
  );
}

function valueOf(i: number): string {
  const s = `${i}:`;
  return s + VALUE_PAD.slice(s.length); // 32 characters
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface ScaleRow {
  entries: number;
  rssPerEntry: number;
  rssAfterFill: number;
  heapPerEntry: number;
  fillMs: number;
  sets: number;
  compactions: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Longest gap between two ticks of a 1 ms timer while the sets ran. */
  maxStallMs: number;
  /** With file storage: the disk's own sync latency in the same run (see {@linkcode diskFloor}). */
  floor?: DiskFloor;
}

/** Latency of bare write + `fdatasync` loops (the floor of a file-storage set), ms. */
interface DiskFloor {
  syncs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  seconds: number;
}

/**
 * The floor of a file-storage set, measured right after the sets in the same directory: three loops
 * (one per peer, as the peers' WALs), each appending a 150-byte record and `fdatasync`ing it, again
 * and again, for `ms` (no Hamok code, no other work in the process). Its maximum is the longest the
 * disk alone held a sync in that time.
 */
async function diskFloor(dir: string, ms: number): Promise<DiskFloor> {
  const fds = [0, 1, 2].map((i) => openSync(join(dir, `floor-${i}.wal`), "a"));
  const record = new Uint8Array(150).fill(7);
  const latencies: number[] = [];
  const end = performance.now() + ms;
  try {
    await Promise.all(fds.map((fd) =>
      new Promise<void>((resolve, reject) => {
        const loop = (): void => {
          if (performance.now() >= end) return resolve();
          const t0 = performance.now();
          write(fd, record, 0, record.length, null, (error) => {
            if (error) return reject(error);
            fdatasync(fd, (syncError) => {
              if (syncError) return reject(syncError);
              latencies.push(performance.now() - t0);
              loop();
            });
          });
        };
        loop();
      })
    ));
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return {
    syncs: sorted.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: sorted.at(-1) ?? NaN,
    seconds: ms / 1000,
  };
}

/** `--trace-io`: slow file-system calls and sets, as `[ms since start, line]`. */
const TRACE_START = performance.now();
const slowEvents: [number, string][] = [];
function traced(peer: number): StorageFs {
  type Callback = (...results: unknown[]) => void;
  const timed = <F extends (...args: never[]) => void>(name: string, call: F): F =>
    ((...args: unknown[]) => {
      const done = args[args.length - 1] as Callback;
      const t0 = performance.now();
      args[args.length - 1] = (...results: unknown[]) => {
        const ms = performance.now() - t0;
        if (ms > 15) slowEvents.push([t0 - TRACE_START, `p${peer} ${name} took ${ms.toFixed(1)} ms`]);
        done(...results);
      };
      (call as unknown as (...a: unknown[]) => void)(...args);
    }) as unknown as F;
  /** A synchronous call, timed; `always` also records calls that are quick (to mark when they happen). */
  const timedSync =
    <A extends unknown[], R>(name: string, call: (...a: A) => R, always?: (...a: A) => boolean) =>
    (...args: A): R => {
      const t0 = performance.now();
      const result = call(...args);
      const ms = performance.now() - t0;
      if (ms > 15 || always?.(...args) === true) {
        slowEvents.push([
          t0 - TRACE_START,
          `p${peer} ${name}(${String(args[0]).split("/").pop()}) took ${ms.toFixed(1)} ms`,
        ]);
      }
      return result;
    };
  const snapFile = (path: unknown) => String(path).includes(".snap");
  const openTimed = timed("open", NODE_FS.open);
  return {
    ...NODE_FS,
    openSync: timedSync("openSync", NODE_FS.openSync),
    writeSync: timedSync("writeSync", NODE_FS.writeSync),
    fsyncSync: timedSync("fsyncSync", NODE_FS.fsyncSync),
    renameSync: timedSync("renameSync", NODE_FS.renameSync, () => true),
    unlinkSync: timedSync("unlinkSync", NODE_FS.unlinkSync),
    fdatasync: timed("fdatasync", NODE_FS.fdatasync),
    fsync: timed("fsync", NODE_FS.fsync),
    write: timed("write", NODE_FS.write),
    open: ((path, flags, done) => {
      if (snapFile(path)) {
        slowEvents.push([performance.now() - TRACE_START, `p${peer} open(${path.split("/").pop()})`]);
      }
      openTimed(path, flags, done);
    }) as StorageFs["open"],
    unlink: timed("unlink", NODE_FS.unlink),
    ftruncate: timed("ftruncate", NODE_FS.ftruncate!),
  };
}

async function run(entries: number): Promise<ScaleRow> {
  const bus = new MemoryBus();
  // --storage file: a data directory per peer under a temporary directory (removed at the end)
  const dataRoot = STORAGE === "file" ? mkdtempSync(join(tmpdir(), "hamok-scale-")) : undefined;
  const peers = Array.from({ length: 3 }, (_, i) =>
    new Hamok({
      peerId: `scale-${entries}-${i}`,
      clusterId: `scale-${entries}`,
      ...(dataRoot === undefined ? {} : {
        storage: new FileRaftStorage({
          ...(TRACE_IO ? { fs: traced(i) } : {}),
          dataDir: join(dataRoot, `p${i}`),
          peerId: `scale-${entries}-${i}`,
          clusterId: `scale-${entries}`,
        }),
      }),
      transport: new MemoryTransport({ bus, id: `m${i}` }),
      peerTimeoutMs: 60_000,
      expectedPeers: 3,
      ...(THRESHOLD === undefined ? {} : { snapshotThreshold: THRESHOLD }),
      ...(THRESHOLD_BYTES === undefined ? {} : { snapshotThresholdBytes: THRESHOLD_BYTES }),
    }));
  try {
    await Promise.all(peers.map((p) => p.join({ timeoutMs: 30_000 })));
    const maps = peers.map((p) => p.createMap<string, string>({ mapId: "scale" }));
    await Promise.all(maps.map((m) => m.ready));
    const leaderAt = peers.findIndex((p) => p.leader);
    if (leaderAt < 0) throw new Error("no leader");
    const map: HamokMap<string, string> = maps[leaderAt]!;
    const before = await memory();
    const fillStarted = performance.now();
    for (let i = 0; i < entries; i += FILL_BATCH) {
      const batch: [string, string][] = [];
      for (let j = i; j < Math.min(entries, i + FILL_BATCH); j++) batch.push([`k${j}`, valueOf(j)]);
      await map.setAll(batch);
    }
    const target = peers[leaderAt]!.appliedIndex;
    await until("every peer to apply the fill", () => peers.every((p) => p.appliedIndex >= target), 300_000);
    const fillMs = performance.now() - fillStarted;
    for (const m of maps) {
      if (m.size !== entries) throw new Error(`a peer has ${m.size} entries, not ${entries}`);
    }
    const after = await memory();
    account(`${entries} after the fill`, before, after, entries * peers.length);

    // sequential sets (updates of existing keys) across COMPACTIONS compactions on every peer
    const seen = peers.map((p) => new Set<number>([p.status().snapshotIndex]));
    const compactions = () => {
      peers.forEach((p, i) => seen[i]!.add(p.status().snapshotIndex));
      return Math.min(...seen.map((s) => s.size - 1));
    };
    const samples: number[] = [];
    // the longest gap between two 1 ms timer ticks while the sets run: how long the event loop was held
    let lastTick = performance.now();
    let maxStallMs = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxStallMs = Math.max(maxStallMs, now - lastTick);
      lastTick = now;
    }, 1);
    const compactedAt: number[] = []; // sample numbers by which one more compaction had happened on every peer
    let n = 0;
    let done = 0;
    const setsStarted = performance.now();
    while (done < COMPACTIONS || n < 1000) {
      const key = `k${(n * 7919) % entries}`;
      const t0 = performance.now();
      await map.set(key, valueOf(n));
      const ms = performance.now() - t0;
      samples.push(ms);
      if (TRACE_IO && ms > 30) slowEvents.push([t0 - TRACE_START, `set #${n} took ${ms.toFixed(1)} ms`]);
      n++;
      if (n % 100 === 0) {
        const before = done;
        done = compactions();
        if (done > before) compactedAt.push(n);
      }
      if (n >= 40_000 && THRESHOLD !== undefined && THRESHOLD > 1e6) break; // no-compaction baseline
      if (n > 20 * 10_000 * COMPACTIONS) throw new Error("no compactions seen");
    }
    clearInterval(ticker);
    const setsMs = performance.now() - setsStarted;
    if (TRACE_IO) {
      console.error(
        `[io] times are from epoch ${((performance.timeOrigin + TRACE_START) / 1000).toFixed(3)} s`,
      );
      for (const [at, line] of slowEvents.splice(0).sort((a, b) => a[0] - b[0])) {
        console.error(`[io] at ${(at / 1000).toFixed(3)} s: ${line}`);
      }
    }
    const stats = summarize(Float64Array.from(samples));
    const worst = samples.map((ms, i) => [ms, i] as const).sort((x, y) => y[0] - x[0]).slice(0, 5);
    console.error(
      `${entries} entries: slowest sets ${
        worst.map(([ms, i]) => `#${i} ${ms.toFixed(1)} ms`).join(", ")
      }; every peer had compacted once more by sets ${compactedAt.join(", ")}; longest event-loop stall ${
        maxStallMs.toFixed(1)
      } ms`,
    );
    // Under these sets every compaction is due again when it ends (10,000 entries in well under the
    // second one takes at 1,000,000), so one may be in flight on any peer, holding its image; the
    // steady state is read once no snapshot index has moved for two seconds (at most 30 s).
    const idleFrom = performance.now();
    let indexes = peers.map((p) => p.status().snapshotIndex).join();
    let stillSince = performance.now();
    while (performance.now() - stillSince < 2000 && performance.now() - idleFrom < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const now = peers.map((p) => p.status().snapshotIndex).join();
      if (now !== indexes) {
        indexes = now;
        stillSince = performance.now();
      }
    }
    const steady = await memory(); // the fill's log entries are compacted away by now
    account(`${entries} steady`, before, steady, entries * peers.length);
    // the disk's own floor, as long as the sets ran (at most 30 s), with the peers still open but idle
    const floor = dataRoot === undefined ? undefined : await diskFloor(dataRoot, Math.min(30_000, setsMs));
    if (floor !== undefined) {
      console.error(
        `${entries} entries: bare fdatasync floor over ${
          floor.seconds.toFixed(1)
        } s: ${floor.syncs} syncs, p50 ${floor.p50Ms.toFixed(2)} ms, p99 ${floor.p99Ms.toFixed(2)} ms, max ${
          floor.maxMs.toFixed(1)
        } ms`,
      );
    }
    const perPeer = (bytes: number) => bytes / entries / peers.length;
    return {
      entries,
      rssPerEntry: perPeer(steady.rss - before.rss),
      heapPerEntry: perPeer(steady.heap - before.heap),
      rssAfterFill: perPeer(after.rss - before.rss),
      fillMs,
      sets: samples.length,
      compactions: compactions(),
      p50Us: stats.p50Us,
      p99Us: stats.p99Us,
      maxUs: Math.max(...samples) * 1000,
      maxStallMs,
      ...(floor === undefined ? {} : { floor }),
    };
  } finally {
    for (const p of peers) p.close();
    if (dataRoot !== undefined) rmSync(dataRoot, { recursive: true, force: true });
  }
}

interface SnapshotRow {
  entries: number;
  bytes: number;
  slices: number;
  longestSliceMs: number;
  totalMs: number;
  atOnceMs: number;
  restoreMs: number;
  restoreSlices: number;
  restoreLongestMs: number;
  restoreTotalMs: number;
}

/**
 * The snapshot alone, on one state machine holding one map of `entries` entries (keys and values as
 * the map's CBOR codec writes them): written out by a SnapshotJob in 4 ms slices (the peer's
 * setting), against encoding the image at once (what compaction did before), and the restore of
 * the image on a new state machine (still done at once).
 */
async function snapshotRun(entries: number): Promise<SnapshotRow> {
  const sm = new StateMachine();
  sm.registerKind("map", (id) => new HamokMapState(id));
  for (let i = 0; i < entries; i += FILL_BATCH) {
    const pairs: [Uint8Array, Uint8Array][] = [];
    for (let j = i; j < Math.min(entries, i + FILL_BATCH); j++) {
      pairs.push([encodeCbor(`k${j}`), encodeCbor(valueOf(j))]);
    }
    sm.apply({ kind: "map", id: "scale", op: "setAll", args: [pairs], peerId: "p" }, {
      index: i / FILL_BATCH + 1,
      requestId: `r${i}`,
      proposerPeerId: "p",
    });
  }
  const job = new SnapshotJob(sm.snapshotParts());
  let slices = 0;
  let longest = 0;
  const started = performance.now();
  for (let finished = false; !finished;) {
    const t0 = performance.now();
    do finished = job.step(); while (!finished && performance.now() - t0 < 4);
    longest = Math.max(longest, performance.now() - t0);
    slices++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const totalMs = performance.now() - started;
  const data = job.result();
  const t1 = performance.now();
  encodeCbor(sm.snapshot());
  const atOnceMs = performance.now() - t1;
  const copy = new StateMachine();
  copy.registerKind("map", (id) => new HamokMapState(id));
  const t2 = performance.now();
  copy.restore(decodeCbor(data) as StateMachineImage);
  const restoreMs = performance.now() - t2;
  // the restore a peer does now: in 4 ms slices, yielding between them (after a full GC: the garbage of
  // the restore at once above is not this one's)
  fullGc();
  const sliced = new StateMachine();
  sliced.registerKind("map", (id) => new HamokMapState(id));
  const restore = sliced.restoreJob(data);
  let restoreSlices = 0;
  let restoreLongestMs = 0;
  const t3 = performance.now();
  for (let finished = false; !finished;) {
    const t0 = performance.now();
    do finished = restore.step(); while (!finished && performance.now() - t0 < 4);
    restoreLongestMs = Math.max(restoreLongestMs, performance.now() - t0);
    restoreSlices++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const restoreTotalMs = performance.now() - t3;
  const size = [...sliced.states()].reduce((n, [, , state]) => n + (state as HamokMapState).size, 0);
  if (size !== entries) throw new Error(`the sliced restore holds ${size} entries, not ${entries}`);
  return {
    entries,
    bytes: data.length,
    slices,
    longestSliceMs: longest,
    totalMs,
    atOnceMs,
    restoreMs,
    restoreSlices,
    restoreLongestMs,
    restoreTotalMs,
  };
}

interface JoinResult {
  joinMs?: number;
  maxStallMs?: number;
  maxStallCpuMs?: number;
  maxCpuStallMs?: number;
  size?: number;
  snapshotIndex?: number;
  error?: string;
}

/** Starts bench/_join_peer.ts in a process of its own (same runtime) and waits for its result line. */
async function joinInAProcess(
  natsUrl: string,
  clusterId: string,
  peerId: string,
): Promise<{ result: JoinResult; stop(): void }> {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  const script = new URL("./_join_peer.ts", import.meta.url).pathname;
  const argv = JSON.stringify({ natsUrl, clusterId, peerId });
  // HAMOK_JOIN_PROFILE_DIR: a CPU profile of the joiner (Deno), to see what its longest stalls run
  const profileDir = process.env.HAMOK_JOIN_PROFILE_DIR;
  const profile = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  const child = deno !== undefined
    ? spawn(deno.execPath(), ["run", "-A", ...profile, script, argv], { stdio: ["pipe", "pipe", "inherit"] })
    : spawn(process.execPath, [script, argv], { stdio: ["pipe", "pipe", "inherit"] });
  const result = await new Promise<JoinResult>((resolve, reject) => {
    let buffered = "";
    child.stdout!.on("data", (data: Uint8Array) => {
      buffered += new TextDecoder().decode(data);
      const nl = buffered.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(buffered.slice(0, nl)) as JoinResult);
    });
    child.on("exit", (code) => reject(new Error(`the joiner process exited (${code})`)));
  });
  return { result, stop: () => child.stdin!.end() };
}

interface JoinRow {
  entries: number;
  fillMs: number;
  joinMs: number;
  maxStallMs: number;
  maxStallCpuMs: number;
  maxCpuStallMs: number;
  removed: number;
}

/**
 * Three peers over a private nats-server (default settings) hold one map of `entries` entries; a
 * fourth peer joins. Measured: from `join()` to `ready` (the join resolves once the peer has applied
 * the commit head: snapshot received and restored, later entries applied), the longest gap between
 * two turns of the event loop meanwhile, and members removed meanwhile (none is the target).
 */
async function joinRun(entries: number): Promise<JoinRow> {
  const server = await startNatsServer();
  const transports: NatsTransport[] = [];
  const peers: Hamok[] = [];
  const make = async (i: number) => {
    const transport = await NatsTransport.connect({ servers: server.url });
    transports.push(transport);
    const peer = new Hamok({
      peerId: `join-${entries}-${i}`,
      clusterId: `join-${entries}`,
      transport,
      expectedPeers: 3,
    });
    peers.push(peer);
    return peer;
  };
  try {
    const first = await Promise.all([0, 1, 2].map(make));
    await Promise.all(first.map((p) => p.join({ timeoutMs: 30_000 })));
    const leader = first.find((p) => p.leader) ?? first[0]!;
    const map = leader.createMap<string, string>({ mapId: "scale" });
    await map.ready;
    const fillStarted = performance.now();
    // batches small enough that the fill is more log entries than snapshotThreshold: it gets compacted
    const batchSize = Math.max(1, Math.min(FILL_BATCH, Math.floor(entries / 10_050)));
    for (let i = 0; i < entries; i += batchSize) {
      const batch: [string, string][] = [];
      for (let j = i; j < Math.min(entries, i + batchSize); j++) batch.push([`k${j}`, valueOf(j)]);
      await map.setAll(batch);
    }
    const target = leader.appliedIndex;
    await until("every peer to apply the fill", () => first.every((p) => p.appliedIndex >= target), 300_000);
    const fillMs = performance.now() - fillStarted;
    // the leader's snapshot covers (nearly) all of the fill: the joiner gets it as a snapshot (small writes
    // until the next compaction, if the fill ended between two)
    for (let n = 0; leader.status().snapshotIndex < target - 500; n++) {
      if (n > 20_000) throw new Error("no compaction covers the fill");
      await map.set("filler", `${n}`);
    }
    const snapshotIndex = leader.status().snapshotIndex;
    let removed = 0;
    for (const p of first) p.on("remote-peer-left", () => removed++);
    // the joiner in its own process: its stalls are its own (not the other three peers')
    const joined = await joinInAProcess(server.url, `join-${entries}`, `join-${entries}-3`);
    try {
      if (joined.result.error !== undefined) throw new Error(`the joiner failed: ${joined.result.error}`);
      const { joinMs, maxStallMs, maxStallCpuMs, maxCpuStallMs, size, snapshotIndex: installed } =
        joined.result;
      if (size! < entries) throw new Error(`the joiner has ${size} entries, not ${entries} and more`);
      if (installed! < snapshotIndex) throw new Error("the joiner did not install the snapshot");
      // a member removed as silent while it joined is removed by now (peerTimeoutMs after the fact)
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (leader.status().members.length !== 4) removed++;
      return {
        entries,
        fillMs,
        joinMs: joinMs!,
        maxStallMs: maxStallMs!,
        maxStallCpuMs: maxStallCpuMs!,
        maxCpuStallMs: maxCpuStallMs!,
        removed,
      };
    } finally {
      joined.stop();
    }
  } finally {
    for (const p of peers) p.close();
    await Promise.all(transports.map((t) => t.close().catch(() => {})));
    await server.stop();
  }
}

const runtime = (globalThis as { Bun?: unknown }).Bun !== undefined
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;
const lines: string[] = [
  `Scale rows (bench/scale.ts), ${runtime}; load average ${
    loadavg().map((l) => l.toFixed(1)).join(" / ")
  } (1 / 5 / 15 min) on ${cpus().length} CPUs when it started.`,
];
if (ROWS.has("sets")) {
  lines.push(
    "",
    `Three peers in one process, memory bus, ${
      STORAGE === "file"
        ? "file storage (FileRaftStorage, sync always, in a temporary directory)"
        : "memory storage"
    }; per-entry figures are per peer.`,
    "",
    "| entries | RSS / entry / peer | heap / entry / peer | RSS right after the fill | fill | sets | compactions (each peer) | set p50 | set p99 | set max | longest loop stall | disk floor: bare `fdatasync` p99 / max | targets met |",
    "| ------: | -----------------: | ------------------: | -----------------------: | ---: | ---: | ----------------------: | ------: | ------: | ------: | -----------------: | -------------------------------------: | ----------- |",
  );
  for (const size of SIZES) {
    const row = await run(size);
    const met = row.maxUs <= 50_000 && row.rssPerEntry <= 250;
    lines.push(
      `| ${row.entries.toLocaleString("en-US")} | ${row.rssPerEntry.toFixed(0)} B | ${
        row.heapPerEntry.toFixed(0)
      } B | ${row.rssAfterFill.toFixed(0)} B | ${
        (row.fillMs / 1000).toFixed(1)
      } s | ${row.sets} | ${row.compactions} | ${formatUs(row.p50Us)} | ${formatUs(row.p99Us)} | ${
        formatUs(row.maxUs)
      } | ${row.maxStallMs.toFixed(1)} ms | ${
        row.floor === undefined
          ? "— (memory storage)"
          : `${row.floor.p99Ms.toFixed(2)} ms / ${
            row.floor.maxMs.toFixed(1)
          } ms (${row.floor.syncs} syncs in ${row.floor.seconds.toFixed(0)} s)`
      } | ${met ? "yes" : "**no**"} (max <= 50 ms, RSS <= 250 B) |`,
    );
    console.log(lines.at(-1));
  }
}
if (ROWS.has("snapshot")) {
  lines.push(
    "",
    "Snapshot of one map state alone (no cluster): written out in 4 ms slices by SnapshotJob, vs encoded at once, and restored: at once (before), and in 4 ms slices by StateMachine.restoreJob (what a peer does now).",
    "",
    "| entries | image | slices | longest slice | written out in | at once (before) | restore at once (before) | restore slices | longest restore slice | restored in |",
    "| ------: | ----: | -----: | ------------: | -------------: | ---------------: | -----------------------: | -------------: | --------------------: | ----------: |",
  );
  for (const size of SIZES) {
    const r = await snapshotRun(size);
    lines.push(
      `| ${r.entries.toLocaleString("en-US")} | ${(r.bytes / 1e6).toFixed(1)} MB | ${r.slices} | ${
        r.longestSliceMs.toFixed(1)
      } ms | ${r.totalMs.toFixed(0)} ms | ${r.atOnceMs.toFixed(0)} ms | ${
        r.restoreMs.toFixed(0)
      } ms | ${r.restoreSlices} | ${r.restoreLongestMs.toFixed(1)} ms | ${r.restoreTotalMs.toFixed(0)} ms |`,
    );
    console.log(lines.at(-1));
  }
}
if (ROWS.has("join")) {
  lines.push(
    "",
    "A fourth peer joins three peers over NATS (a private nats-server, default settings; the three in this process, the joiner in a process of its own): from `join()` to `ready`, the longest stall of the joiner's event loop meanwhile, and members removed meanwhile.",
    "",
    "| entries | fill | join to ready | longest stall (CPU of the process in it) | longest stall in CPU time | members removed | target met |",
    "| ------: | ---: | ------------: | ---------------------------------------: | ------------------------: | --------------: | ---------- |",
  );
  for (const size of SIZES) {
    const r = await joinRun(size);
    const met = r.joinMs <= 10_000 && r.removed === 0;
    lines.push(
      `| ${r.entries.toLocaleString("en-US")} | ${(r.fillMs / 1000).toFixed(1)} s | ${
        (r.joinMs / 1000).toFixed(2)
      } s | ${r.maxStallMs.toFixed(1)} ms (${r.maxStallCpuMs.toFixed(1)} ms) | ${
        r.maxCpuStallMs.toFixed(1)
      } ms | ${r.removed} | ${met ? "yes" : "**no**"} (<= 10 s, none removed) |`,
    );
    console.log(lines.at(-1));
  }
}
const table = lines.join("\n");
console.log(table);
if (OUT !== undefined) {
  writeFileSync(OUT, table + "\n");
  // the table as deno fmt wants it (CI checks the formatting of every markdown file)
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  const bin = deno?.execPath() ?? new URL("../node_modules/.bin/deno", import.meta.url).pathname;
  try {
    execFileSync(bin, ["fmt", "--quiet", OUT], { stdio: "ignore" });
  } catch {
    console.error(`could not run deno fmt on ${OUT}`);
  }
}
