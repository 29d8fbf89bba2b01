import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const raftDir = join(root, "src/raft");
const allowed = [join(root, "src/raft"), join(root, "src/storage")];

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** Strips comments and string/template contents so that prose never counts as code. */
function codeOnly(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, " ")
    .replace(/(^|[^:])\/\/.*$/gm, "$1")
    .replace(/`(?:\\[\s\S]|[^`\\])*`/g, "``");
}

/** Specifiers of static imports, re-exports and dynamic imports. */
function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/(^|[^:])\/\/.*$/gm, "$1");
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^'"`;]*?\bfrom\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.push(match[1]);
  return found;
}

const files = sourceFiles(raftDir);

describe("src/raft/ stays pure", () => {
  it("finds the core's files (the check is not vacuous)", () => {
    const names = files.map((f) => relative(raftDir, f));
    for (const expected of ["raft_node.ts", "raft_log.ts", "progress.ts", "types.ts"]) {
      assert.ok(names.includes(expected), expected);
    }
  });

  it("the specifier parser sees every import form", () => {
    const sample = [
      'import { a } from "./x.ts";',
      "import type { B } from '../storage/y.ts';",
      'export * from "./z.ts";',
      'export { c } from "node:fs";',
      'import "side-effect";',
      'const m = await import("npm:thing");',
      '// import { nope } from "commented.ts";',
    ].join("\n");
    assert.deepEqual(specifiers(sample).sort(), [
      "../storage/y.ts",
      "./x.ts",
      "./z.ts",
      "node:fs",
      "npm:thing",
      "side-effect",
    ]);
  });

  it("imports nothing outside src/raft/ and src/storage/", () => {
    for (const file of files) {
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        assert.ok(spec.startsWith("."), `${relative(root, file)} imports the non-relative "${spec}"`);
        const target = resolve(dirname(file), spec);
        assert.ok(
          allowed.some((dir) => target.startsWith(dir + "/")),
          `${relative(root, file)} imports ${relative(root, target)}`,
        );
      }
    }
  });

  it("uses no timers, clocks, randomness or crypto", () => {
    const forbidden = /\b(setTimeout|setInterval|Date|performance|Math\.random|crypto)\b/;
    for (const file of files) {
      const match = codeOnly(readFileSync(file, "utf8")).match(forbidden);
      assert.equal(match, null, `${relative(root, file)} uses ${match?.[1]}`);
    }
  });
});
