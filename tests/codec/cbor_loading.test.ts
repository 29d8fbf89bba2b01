import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

// The codec imports cbor-x's pure-JS subpaths: it must neither read the environment at import (a
// permission error on Deno without --allow-env) nor load the optional native helper cbor-extract,
// which is installed in this repository, so loading it would show here.
describe("loading the CBOR codec", () => {
  it("needs no permission and never installs cbor-x's native helper", () => {
    // CI's Node leg runs the suite compiled to JavaScript: the child is compiled too.
    const ext = import.meta.url.endsWith(".js") ? "js" : "ts";
    const child = fileURLToPath(new URL(`./_cbor_child.${ext}`, import.meta.url));
    const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
    const args = isDeno ? ["run", "--no-prompt", "--quiet", child] : [child];
    const result = spawnSync(process.execPath, args, {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, NO_COLOR: "1" },
    });
    assert.equal(result.status, 0, `child failed: ${result.stderr}`);
    assert.match(result.stdout, /roundtrip=true native=false/);
  });
});
