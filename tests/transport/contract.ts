/**
 * The contract every {@linkcode Transport} implementation must meet. A test file calls
 * {@linkcode transportContract} with a harness that creates transports on one shared network
 * (one memory bus, one nats-server).
 *
 * @module
 */

import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { HamokClosedError, HamokConfigError, HamokTransportError } from "../../src/errors.ts";
import type { Transport, TransportMessage, TransportState } from "../../src/transport/transport.ts";
import { waitFor } from "../_helpers/wait.ts";

/** How a test file plugs an implementation into the contract. */
export interface TransportContractHarness {
  /** Suite name, e.g. "MemoryTransport". */
  name: string;
  /** Runs once before the suite (e.g. starts a nats-server). */
  setup?(): Promise<void>;
  /** Runs once after the suite. */
  teardown?(): Promise<void>;
  /** Creates a new transport on the suite's shared network. */
  create(): Promise<Transport>;
  /**
   * Arguments for `tests/transport/_fixtures/close_exits.ts`, which uses and closes transports
   * of this kind in a child process that must then exit by itself.
   */
  exitFixtureArgs(): string[];
}

const TEST_TIMEOUT = { timeout: 30_000 };

let subjectCounter = 0;
const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

/** A subject prefix no other test uses. */
export function uniqueSubject(): string {
  return `contract.${runId}.t${++subjectCounter}`;
}

function encode(publisher: number, seq: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, publisher);
  view.setUint32(4, seq);
  return bytes;
}

function decode(data: Uint8Array): [publisher: number, seq: number] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return [view.getUint32(0), view.getUint32(4)];
}

/** Runs `script` with the current runtime (Deno or Bun) and resolves with its exit code and output. */
export function runScript(
  script: string,
  args: string[],
  timeoutMs: number,
): Promise<
  { code: number | null; signal: string | null; stdout: string; stderr: string; timedOut: boolean }
> {
  const isDeno = "Deno" in globalThis;
  const bin = process.execPath;
  const argv = isDeno ? ["run", "-A", script, ...args] : [script, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout!.on("data", (chunk) => (stdout += String(chunk)));
    child.stderr!.on("data", (chunk) => (stderr += String(chunk)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Registers the contract tests for the implementation behind `harness`. */
export function transportContract(harness: TransportContractHarness): void {
  describe(`${harness.name} (transport contract)`, () => {
    const open: Transport[] = [];
    const create = async (): Promise<Transport> => {
      const transport = await harness.create();
      open.push(transport);
      return transport;
    };

    before(async () => {
      await harness.setup?.();
    });
    afterEach(async () => {
      const transports = open.splice(0);
      await Promise.all(transports.map((t) => t.close()));
    });
    after(async () => {
      await harness.teardown?.();
    });

    it("starts connected", TEST_TIMEOUT, async () => {
      const t = await create();
      assert.equal(t.state, "connected");
    });

    it(
      "delivers 10,000 messages per publisher complete and in order (two publishers interleaved)",
      TEST_TIMEOUT,
      async () => {
        const [p1, p2, receiver] = await Promise.all([create(), create(), create()]);
        const subject = uniqueSubject();
        const seen: number[][] = [[], [], []];
        receiver.subscribe(subject, (msg) => {
          const [publisher, seq] = decode(msg.data);
          seen[publisher].push(seq);
        });
        await receiver.flush();
        const N = 10_000;
        for (let i = 0; i < N; i++) {
          p1.publish(subject, encode(1, i));
          p2.publish(subject, encode(2, i));
        }
        await waitFor(() => seen[1].length + seen[2].length >= 2 * N, {
          timeoutMs: 20_000,
          message: "20,000 deliveries",
        });
        const expected = Array.from({ length: N }, (_, i) => i);
        assert.deepEqual(seen[1], expected);
        assert.deepEqual(seen[2], expected);
        assert.equal(seen[0].length, 0);
      },
    );

    it("fans a message out to every subscriber, the publisher's own included", TEST_TIMEOUT, async () => {
      const [publisher, r1, r2] = await Promise.all([create(), create(), create()]);
      const subject = uniqueSubject();
      const counts = [0, 0, 0, 0, 0];
      publisher.subscribe(subject, () => counts[0]++);
      r1.subscribe(subject, () => counts[1]++);
      r1.subscribe(subject, () => counts[2]++);
      r2.subscribe(subject, () => counts[3]++);
      r2.subscribe(`${subject}.other`, () => counts[4]++);
      await Promise.all([publisher.flush(), r1.flush(), r2.flush()]);
      publisher.publish(subject, new Uint8Array([7]));
      await waitFor(() => counts[0] + counts[1] + counts[2] + counts[3] >= 4, {
        timeoutMs: 5000,
        message: "fan-out to 4 subscriptions",
      });
      assert.deepEqual(counts, [1, 1, 1, 1, 0]);
    });

    it("matches NATS wildcards: * is one token, > is one or more trailing tokens", TEST_TIMEOUT, async () => {
      const [publisher, receiver] = await Promise.all([create(), create()]);
      const p = uniqueSubject();
      const got: Record<string, string[]> = {};
      for (const pattern of [`${p}.*`, `${p}.>`, `${p}.a.*`, `${p}.*.c`, `${p}.a.b`, `${p}.*.*.*`]) {
        got[pattern] = [];
        receiver.subscribe(pattern, (msg) => got[pattern].push(msg.subject.slice(p.length + 1)));
      }
      await receiver.flush();
      for (const s of ["a", "a.b", "a.b.c", "x.c", "end"]) publisher.publish(`${p}.${s}`, new Uint8Array(0));
      // Per-publisher order: once `end` reached `p.>`, everything before it reached every subscription.
      await waitFor(() => got[`${p}.>`].includes("end"), { timeoutMs: 5000, message: "end marker" });
      assert.deepEqual(got[`${p}.*`], ["a", "end"]);
      assert.deepEqual(got[`${p}.>`], ["a", "a.b", "a.b.c", "x.c", "end"]);
      assert.deepEqual(got[`${p}.a.*`], ["a.b"]);
      assert.deepEqual(got[`${p}.*.c`], ["x.c"]);
      assert.deepEqual(got[`${p}.a.b`], ["a.b"]);
      assert.deepEqual(got[`${p}.*.*.*`], ["a.b.c"]);
    });

    it(
      "round-trips headers, and a message without headers (or with {}) arrives without",
      TEST_TIMEOUT,
      async () => {
        const [publisher, receiver] = await Promise.all([create(), create()]);
        const subject = uniqueSubject();
        const got: TransportMessage[] = [];
        receiver.subscribe(subject, (msg) => got.push(msg));
        await receiver.flush();
        const headers = {
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          "X-Mixed-Case": "Some Value",
        };
        publisher.publish(subject, new Uint8Array([1, 2, 3]), headers);
        publisher.publish(subject, new Uint8Array([4]));
        publisher.publish(subject, new Uint8Array([5]), {});
        await waitFor(() => got.length >= 3, { timeoutMs: 5000, message: "3 messages" });
        assert.equal(got[0].subject, subject);
        assert.deepEqual([...got[0].data], [1, 2, 3]);
        assert.deepEqual({ ...got[0].headers }, headers);
        assert.deepEqual([...got[1].data], [4]);
        assert.equal(got[1].headers, undefined);
        assert.deepEqual([...got[2].data], [5]);
        assert.equal(got[2].headers, undefined);
      },
    );

    it("rejects invalid subjects and headers with HamokConfigError", TEST_TIMEOUT, async () => {
      const t = await create();
      const data = new Uint8Array(1);
      for (const bad of ["", "a..b", ".a", "a.", "a b", "a\tb", "a.*", "a.>"]) {
        assert.throws(() => t.publish(bad, data), HamokConfigError, `publish '${bad}'`);
      }
      for (const bad of ["", "a..b", "a b", "a.>.b", ">.a"]) {
        assert.throws(() => t.subscribe(bad, () => {}), HamokConfigError, `subscribe '${bad}'`);
      }
      const subject = uniqueSubject();
      assert.throws(() => t.publish(subject, data, { "bad key": "v" }), HamokConfigError);
      assert.throws(() => t.publish(subject, data, { "bad:key": "v" }), HamokConfigError);
      assert.throws(() => t.publish(subject, data, { key: "a\r\nb" }), HamokConfigError);
      // The transport still works afterwards.
      let got = 0;
      t.subscribe(subject, () => got++);
      await t.flush();
      t.publish(subject, data);
      await waitFor(() => got === 1, { timeoutMs: 5000, message: "delivery after rejected calls" });
    });

    it("stops delivery on unsubscribe, including messages already queued", TEST_TIMEOUT, async () => {
      const [publisher, receiver] = await Promise.all([create(), create()]);
      const subject = uniqueSubject();
      let first = 0;
      let witness = 0;
      const sub = receiver.subscribe(subject, () => {
        first++;
        sub.unsubscribe();
        sub.unsubscribe(); // idempotent
      });
      receiver.subscribe(subject, () => witness++);
      await receiver.flush();
      assert.equal(sub.closed, false);
      for (let i = 0; i < 100; i++) publisher.publish(subject, encode(0, i));
      await waitFor(() => witness === 100, { timeoutMs: 5000, message: "witness got 100" });
      assert.equal(first, 1);
      assert.equal(sub.closed, true);
      for (let i = 0; i < 10; i++) publisher.publish(subject, encode(0, i));
      await waitFor(() => witness === 110, { timeoutMs: 5000, message: "witness got 110" });
      assert.equal(first, 1);
    });

    it("delivers asynchronously, never inside the publisher's call stack", TEST_TIMEOUT, async () => {
      const t = await create();
      const subject = uniqueSubject();
      let publishing = false;
      let depth = 0;
      let maxDepth = 0;
      let deliveredDuringPublish = 0;
      let delivered = 0;
      t.subscribe(subject, (msg) => {
        if (publishing) deliveredDuringPublish++;
        depth++;
        maxDepth = Math.max(maxDepth, depth);
        delivered++;
        const [, seq] = decode(msg.data);
        if (seq < 20) {
          publishing = true;
          t.publish(subject, encode(0, seq + 1));
          publishing = false;
        }
        depth--;
      });
      await t.flush();
      publishing = true;
      t.publish(subject, encode(0, 0));
      publishing = false;
      assert.equal(delivered, 0, "nothing is delivered synchronously");
      await waitFor(() => delivered === 21, { timeoutMs: 5000, message: "chain of 21 messages" });
      assert.equal(deliveredDuringPublish, 0);
      assert.equal(maxDepth, 1);
    });

    it(
      "isolates handler exceptions: reported via `error`, other subscribers still receive",
      TEST_TIMEOUT,
      async () => {
        const [publisher, r1, r2] = await Promise.all([create(), create(), create()]);
        const subject = uniqueSubject();
        const errors: Error[] = [];
        r1.on("error", (err) => errors.push(err));
        let bad = 0;
        let good1 = 0;
        let good2 = 0;
        r1.subscribe(subject, () => {
          bad++;
          throw new Error("boom");
        });
        r1.subscribe(subject, () => good1++);
        r2.subscribe(subject, () => good2++);
        await Promise.all([r1.flush(), r2.flush()]);
        publisher.publish(subject, new Uint8Array(1));
        publisher.publish(subject, new Uint8Array(1));
        await waitFor(() => good1 === 2 && good2 === 2 && bad === 2, {
          timeoutMs: 5000,
          message: "both messages to all three",
        });
        assert.equal(errors.length, 2);
        assert.ok(errors[0] instanceof HamokTransportError);
        assert.equal((errors[0].cause as Error).message, "boom");
      },
    );

    it(
      "close() closes every subscription, emits state-changed and makes later calls throw HamokClosedError",
      TEST_TIMEOUT,
      async () => {
        const [publisher, t] = await Promise.all([create(), create()]);
        const subject = uniqueSubject();
        const changes: [TransportState, TransportState][] = [];
        t.on("state-changed", (state, previous) => changes.push([state, previous]));
        let received = 0;
        const subs = [
          t.subscribe(subject, () => received++),
          t.subscribe(`${subject}.*`, () => received++),
          t.subscribe(`${subject}.>`, () => received++),
        ];
        await t.flush();
        await t.close();
        assert.equal(t.state, "closed");
        assert.deepEqual(changes, [["closed", "connected"]]);
        for (const sub of subs) assert.equal(sub.closed, true);
        await t.close(); // idempotent
        assert.equal(changes.length, 1);
        assert.throws(() => t.publish(subject, new Uint8Array(1)), HamokClosedError);
        assert.throws(() => t.subscribe(subject, () => {}), HamokClosedError);
        await assert.rejects(t.flush(), HamokClosedError);
        // Nothing reaches the closed transport any more.
        let witness = 0;
        publisher.subscribe(`${subject}.>`, () => witness++);
        await publisher.flush();
        publisher.publish(subject, new Uint8Array(1));
        publisher.publish(`${subject}.x`, new Uint8Array(1));
        await waitFor(() => witness === 1, { timeoutMs: 5000, message: "witness" });
        await publisher.flush();
        assert.equal(received, 0);
      },
    );

    it(
      "after close() the process exits by itself (no leaked timers, handles or connections)",
      TEST_TIMEOUT,
      async () => {
        // The Node leg of CI runs this suite compiled to JavaScript: the fixture is compiled too.
        const ext = import.meta.url.endsWith(".js") ? "js" : "ts";
        const script = fileURLToPath(new URL(`./_fixtures/close_exits.${ext}`, import.meta.url));
        const result = await runScript(script, harness.exitFixtureArgs(), 25_000);
        assert.equal(
          result.timedOut,
          false,
          `the child did not exit by itself:\n${result.stdout}\n${result.stderr}`,
        );
        assert.equal(result.code, 0, `child failed:\n${result.stdout}\n${result.stderr}`);
        assert.match(result.stdout, /closed-ok/);
      },
    );
  });
}
