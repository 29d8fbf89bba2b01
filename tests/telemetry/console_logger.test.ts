import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { consoleLogger } from "../../src/telemetry/console_logger.ts";
import { HamokTimeoutError } from "../../src/errors.ts";
import { FAST, memoryTransports, startCluster } from "../_helpers/cluster.ts";
import { waitFor } from "../_helpers/wait.ts";

describe("consoleLogger", () => {
  it("writes one line per message from its level up, with error codes", () => {
    const lines: string[] = [];
    const logger = consoleLogger("info", { write: (_l, line) => lines.push(line), timestamps: false });
    logger.debug("hidden");
    logger.info("hamok a: joined");
    logger.warn("multi\nline", new HamokTimeoutError("late", { timeoutMs: 5 }));
    logger.error("boom", { n: 1 });
    assert.deepEqual(lines, [
      "INFO  hamok a: joined",
      "WARN  multi line: HAMOK_TIMEOUT late",
      'ERROR boom: {"n":1}',
    ]);
  });

  it("a line is bounded and its line breaks become single spaces, whatever the text from the network", () => {
    const lines: string[] = [];
    const logger = consoleLogger("info", { write: (_l, line) => lines.push(line), timestamps: false });
    logger.warn("one\n   two  \r\n\nthree");
    // a claimed cluster id of 200,000 blanks around a line break: the old code wrote it whole (and
    // its regular expression took time quadratic in the run of blanks)
    logger.warn(`dropped: ${" ".repeat(100_000)}\n${" ".repeat(100_000)}x`);
    assert.equal(lines[0], "WARN  one two three");
    assert.ok(lines[1]!.length < 5000, `${lines[1]!.length} characters`);
    assert.match(lines[1]!, /… \(200011 characters\)$/);
  });

  it("a flood of identical messages becomes one line plus a suppressed count", () => {
    const lines: string[] = [];
    let clock = 1000;
    const logger = consoleLogger("warn", {
      write: (_l, line) => lines.push(line),
      timestamps: false,
      windowMs: 100,
      now: () => clock,
    });
    for (let i = 0; i < 500; i++) logger.warn("dropped an undecodable message");
    logger.warn("something else");
    assert.deepEqual(lines, ["WARN  dropped an undecodable message", "WARN  something else"]);
    clock += 150;
    logger.warn("dropped an undecodable message");
    assert.deepEqual(lines.slice(2), [
      "WARN  dropped an undecodable message (suppressed 499 identical)",
      "WARN  dropped an undecodable message",
    ]);
  });

  it("tells the story of a cluster: bootstrap, joins, leader, removal", async () => {
    const lines: string[] = [];
    const logger = consoleLogger("info", { write: (_l, line) => lines.push(line), timestamps: false });
    const cluster = await startCluster(memoryTransports(), ["a", "b", "c"], { ...FAST, logger });
    try {
      const leader = await cluster.settled();
      const victim = cluster.peers.find((p) => !p.leader)!;
      await cluster.crash(victim);
      await waitFor(() => !leader.remotePeerIds.has(victim.localPeerId), {
        timeoutMs: 5000,
        message: "the silent member was removed",
      });
      const text = lines.join("\n");
      assert.match(text, /bootstrapping/);
      assert.match(text, /joined/);
      assert.match(text, new RegExp(`leader is now ${leader.localPeerId}`));
      assert.match(text, new RegExp(`${victim.localPeerId} left the cluster`));
      assert.ok(lines.every((l) => !l.includes("\n")));
    } finally {
      await cluster.close();
    }
  });
});
