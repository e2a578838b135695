#!/usr/bin/env node
// Runs every test/**/*.test.ts (or those under the paths given) with node:test.
// Node 20's runner does not expand globs, so the files are listed here.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith(".test.ts")) {
    out.push(path);
  }
  return out;
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ["test"]).flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
// Two test files at a time (PIAS_TEST_CONCURRENCY): the capture tests mostly wait for tshark.
const result = spawnSync(process.execPath, ["--import", "tsx", "--test", `--test-concurrency=${process.env.PIAS_TEST_CONCURRENCY ?? 2}`, "--test-reporter=spec", ...files], {
  stdio: "inherit",
});
process.exit(result.status ?? 1);
