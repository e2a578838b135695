// BGP failover figures (`npm run bench:failover`): runs the routed testbeds
// of test/e2e/bgp.test.ts (one proxy and a BIRD router) and
// test/e2e/cluster.test.ts (four proxies, a BIRD router choosing the nearest
// per region) FAILOVER_REPS times (default 3), collects what they measure
// (they append JSON lines to $PIAS_FIGURES) and prints the median and range
// of each figure; the raw figures go to bench/results/failover.json with the
// machine, the load and the commit. Needs root and BIRD 2 (Debian bird2);
// everything runs in network namespaces the tests create and remove.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { summarize } from "./lib/stats.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const REPS = Number(process.env.FAILOVER_REPS ?? 3);
const OUT = resolve(process.env.BENCH_OUT ?? join(ROOT, "bench", "results"));

function machine(): Record<string, unknown> {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "unknown";
  const uname = spawnSync("uname", ["-a"], { encoding: "utf8" }).stdout.trim();
  const bird = spawnSync("bird", ["--version"], { encoding: "utf8" });
  return { uname, cpu, cores: cpus().length, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, kernel: release(), bird: `${bird.stdout}${bird.stderr}`.trim() };
}

const tmp = mkdtempSync(join(tmpdir(), "pias-failover-"));
const figuresFile = join(tmp, "figures.jsonl");
const loadBefore = loadavg();
for (let i = 0; i < REPS; i++) {
  console.log(`run ${i + 1}/${REPS}`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=dot", "test/e2e/bgp.test.ts", "test/e2e/cluster.test.ts"], {
    cwd: ROOT,
    env: { ...process.env, PIAS_FIGURES: figuresFile },
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0) {
    console.error(`the testbeds failed (exit ${r.status}): no figures`);
    process.exit(1);
  }
}
const loadAfter = loadavg();
const runs = readFileSync(figuresFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { kind: string; figures: Record<string, unknown> });
rmSync(tmp, { recursive: true, force: true });

/** Every numeric figure, flattened ("failover.SIGKILL.udpMaxGapMs"), over the runs. */
const series = new Map<string, number[]>();
const survived = new Map<string, boolean[]>();
const walk = (prefix: string, v: unknown): void => {
  if (typeof v === "number") series.set(prefix, [...(series.get(prefix) ?? []), v]);
  else if (typeof v === "boolean") survived.set(prefix, [...(survived.get(prefix) ?? []), v]);
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(`${prefix}.${k}`, x);
};
for (const r of runs) walk(r.kind, r.figures);

console.log(`\n${"figure".padEnd(44)} ${"median".padStart(8)} ${"min".padStart(8)} ${"max".padStart(8)}`);
for (const [name, values] of series) {
  const s = summarize(values);
  console.log(`${name.padEnd(44)} ${String(s.median).padStart(8)} ${String(s.min).padStart(8)} ${String(s.max).padStart(8)}`);
}
for (const [name, values] of survived) console.log(`${name.padEnd(44)} ${values.filter(Boolean).length}/${values.length} runs`);

const commit = spawnSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim();
mkdirSync(OUT, { recursive: true });
const file = join(OUT, "failover.json");
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), commit, machine: machine(), load: { before: loadBefore, after: loadAfter }, reps: REPS, runs }, null, 2)}\n`);
console.log(`\nload average ${loadBefore.map((x) => x.toFixed(2)).join(" ")} -> ${loadAfter.map((x) => x.toFixed(2)).join(" ")}; raw figures: ${file}`);
