/** `hamok --version`, and the version constant kept equal to the package manifests. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "../../src/cli/main.ts";
import { HAMOK_VERSION } from "../../mod.ts";

/** The repository's manifest `name`: in the nearest directory above this file that has package.json. */
function manifest(name: string): { version: string } {
  for (let up = "../../"; up.length < 40; up += "../") {
    const root = fileURLToPath(new URL(up, import.meta.url));
    if (existsSync(join(root, "package.json")) && existsSync(join(root, "deno.json"))) {
      return JSON.parse(readFileSync(join(root, name), "utf8"));
    }
  }
  throw new Error("no package.json and deno.json above the test");
}

describe("version", () => {
  it("HAMOK_VERSION is the version of package.json and deno.json", () => {
    assert.equal(HAMOK_VERSION, manifest("package.json").version);
    assert.equal(HAMOK_VERSION, manifest("deno.json").version);
  });

  it("hamok --version and hamok version print it and exit 0", async () => {
    for (const argv of [["--version"], ["version"]]) {
      const out: string[] = [];
      const err: string[] = [];
      const status = await runCli(argv, {
        out: (t) => out.push(t),
        err: (t) => err.push(t),
        errIsTty: false,
      });
      assert.equal(status, 0, argv.join(" "));
      assert.deepEqual(out, [`hamok ${HAMOK_VERSION}\n`]);
      assert.deepEqual(err, []);
    }
  });
});
