#!/usr/bin/env node
// Runs every test/**/*.test.ts (or those under the paths given) with node:test.
// Node 20's runner does not expand globs, so the files are listed here.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
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
// The tests that move real traffic through namespaces (test/e2e/, and the AF_XDP tests with their
// floods) run one at a time after the others: two of them together starve each other's forwarding
// on a 2-core machine and lose packets no proxy dropped.
const alone = (f) => f.includes("/e2e/") || /\/io\/xdp[^/]*\.test\.ts$/.test(f);
// The first run's report also goes to a file, so that its failures can be repeated at the very end: CI keeps
// only the tail of a long output, which the second run's report fills (that one ends with its own failures).
const logs = mkdtempSync(join(tmpdir(), "pias-test-"));
const firstLog = join(logs, "first");
const run = (list, concurrency, log) =>
  list.length === 0
    ? 0
    : (spawnSync(process.execPath, ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`,
        "--test-reporter=spec", "--test-reporter-destination=stdout",
        ...(log ? ["--test-reporter=spec", `--test-reporter-destination=${log}`] : []), ...list], {
        stdio: "inherit",
      }).status ?? 1);
const first = run(files.filter((f) => !alone(f)), process.env.PIAS_TEST_CONCURRENCY ?? 2, firstLog);
const second = run(files.filter(alone), 1);
if (first !== 0) {
  const log = existsSync(firstLog) ? readFileSync(firstLog, "utf8") : "";
  const at = log.lastIndexOf("\u2716 failing tests:");
  console.log(`\n==== the first run (two files at a time) failed (exit ${first}); its failures again:\n`);
  console.log(at >= 0 ? log.slice(at) : log.split("\n").slice(-60).join("\n"));
}
rmSync(logs, { recursive: true, force: true });
process.exit(first || second);
