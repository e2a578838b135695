// The reference model is a test oracle: production code must never depend on
// it, or a bug in the oracle could hide in the product as well. Scans every
// import (static, re-export, dynamic, type-only) of every module under src/
// outside src/reference/ and fails on any that resolves into src/reference/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";
import { REPO_ROOT } from "../helpers/paths.js";

const SRC = join(REPO_ROOT, "src");
const REFERENCE = join(SRC, "reference");

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (path.endsWith(".ts")) out.push(path);
  }
  return out;
}

const inside = (path: string, dir: string): boolean => path === dir || path.startsWith(dir + sep);

/** "file imports spec" for each import of a module outside src/reference/ that lands in src/reference/. */
function referenceImports(modules: { path: string; text: string }[]): string[] {
  const bad: string[] = [];
  for (const { path, text } of modules) {
    if (inside(path, REFERENCE)) continue;
    for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
      if (spec.startsWith(".") && inside(resolve(dirname(path), spec), REFERENCE)) {
        bad.push(`${relative(REPO_ROOT, path)} imports ${spec}`);
      }
    }
  }
  return bad;
}

test("no module under src/ outside src/reference/ imports the reference model", () => {
  const modules = sources(SRC).map((path) => ({ path, text: readFileSync(path, "utf8") }));
  assert.ok(modules.some((m) => m.path === join(SRC, "net", "packet.ts")), "the scan sees src/net/packet.ts");
  assert.deepEqual(referenceImports(modules), []);
});

test("the scan catches static, re-exported, dynamic and type-only imports of src/reference, and skips src/reference itself", () => {
  const forms = [
    `import { onesSum } from "../reference/checksum.js";`,
    `export { ReferenceModel } from "../reference/model.js";`,
    `const m = await import("../reference/model.js");`,
    `import type { ModelPacket } from "../reference/model.js";`,
  ];
  for (const text of forms) {
    assert.equal(referenceImports([{ path: join(SRC, "net", "x.ts"), text }]).length, 1, text);
  }
  assert.deepEqual(referenceImports([{ path: join(REFERENCE, "model.ts"), text: `import { x } from "./parse.js";` }]), []);
  assert.deepEqual(referenceImports([{ path: join(SRC, "net", "x.ts"), text: `import { x } from "./referenced.js";` }]), []);
});
