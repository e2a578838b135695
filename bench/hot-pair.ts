// npm run bench:hot-pair — this build's Wasm hot path against another's on a
// whole trace, in one process: the trace framed into a fresh data plane of
// one build and processed (process_batch calls only, timed), then the same
// with the other build, the order alternating each round, so the host's
// slow and quick phases move both alike. Unlike bench:pair, whose batches of
// two data planes interleave (and share the cache between two tables), each
// run here has the machine to itself, as `npm run bench`'s hot path does.
// Prints each build's median Mpps, each round's ratio (this / base) and the
// median over pairs of rounds of both orders (the second run of a round tends
// to be the quicker), and writes them, with the machine and the commit, to
// bench/results/hot-pair-COMMIT.json.
//
//   BENCH_PAIR_BASE=FILE.wasm  the other build (required: e.g. a copy of
//                              another commit's wasm/pias.wasm)
//   HOT_PAIR_TRACE, HOT_PAIR_CONFIG: a capture and its config (default: the
//   generated 64-byte trace of `npm run bench`, 4M packets over 1M flows,
//   made in a temporary directory); HOT_PAIR_ROUNDS (12), HOT_PAIR_WARMUP
//   (2 untimed rounds first); PAIR_OUT (the results file)

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { DataPlane } from "../src/core/dataplane.js";
import { validateConfig } from "../src/config/validate.js";
import { frameAll } from "./lib/frame.js";
import { load, machine } from "./lib/machine.js";
import { summarize } from "./lib/stats.js";

const BASE = process.env.BENCH_PAIR_BASE;
if (!BASE) {
  console.error("bench:hot-pair: set BENCH_PAIR_BASE to the .wasm file of the build to compare with");
  process.exit(2);
}
const ROUNDS = Number(process.env.HOT_PAIR_ROUNDS ?? 12);
/** Untimed rounds first: the first runs of each build are slower while V8 tiers its code up (the same build on both sides read 1.21 and 1.17 in its first two rounds, 0.995 over ten). */
const WARMUP = Number(process.env.HOT_PAIR_WARMUP ?? 2);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "dist", "src", "cli", "pias.cjs");

let trace = process.env.HOT_PAIR_TRACE;
let configFile = process.env.HOT_PAIR_CONFIG;
let tmp: string | undefined;
if (!trace || !configFile) {
  tmp = mkdtempSync(join(tmpdir(), "pias-hot-pair-"));
  trace = join(tmp, "gen-64.pcap");
  configFile = join(tmp, "gen-64.json");
  const r = spawnSync(process.execPath, [CLI, "gen-trace", "--out", trace, "--packets", "4000000", "--flows", "1000000", "--sizes", "64", "--config-out", configFile], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("gen-trace failed");
}
const config = validateConfig(JSON.parse(readFileSync(configFile, "utf8")));
const baseWasm = readFileSync(BASE);
const modules: Record<string, WebAssembly.Module | undefined> = { this: undefined, base: new WebAssembly.Module(baseWasm) };
const mpps: Record<string, number[]> = { this: [], base: [] };
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
try {
  for (let r = -WARMUP; r < ROUNDS; r++) {
    for (const build of r & 1 ? ["base", "this"] : ["this", "base"]) {
      gc();
      const dp = DataPlane.create({ ...config.proxy, capacity: config.capacity, module: modules[build] }, config.groups);
      const framed = frameAll(dp, trace);
      const t0 = performance.now();
      for (let i = 0; i < framed.desc.length; i++) dp.processBatch(framed.desc[i], framed.count[i]);
      const ms = performance.now() - t0;
      const c = dp.counters();
      if (c.packets !== framed.packets) throw new Error(`${build}: the core counted ${c.packets} packets of ${framed.packets}`);
      if (r >= 0) mpps[build].push(framed.packets / ms / 1e3);
    }
  }
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
const ratios = mpps.this.map((x, i) => x / mpps.base[i]);
// the second run of a round tends to be the quicker (memory the first one freed is reused): each pair of rounds,
// one of each order, as the geometric mean of its two ratios
const balanced: number[] = [];
for (let r = 0; r + 1 < ratios.length; r += 2) balanced.push(Math.sqrt(ratios[r] * ratios[r + 1]));
const results = {
  this: summarize(mpps.this), base: summarize(mpps.base), ratio: summarize(ratios),
  ratioBalanced: balanced.length ? summarize(balanced) : null,
};
console.log(`hot path, ${ROUNDS} rounds on ${process.env.HOT_PAIR_TRACE ?? "the generated 64-byte trace"}: this build ${results.this.median.toFixed(2)} Mpps median, base ${results.base.median.toFixed(2)}; ratio ${results.ratio.median.toFixed(3)} median (${ratios.map((x) => x.toFixed(2)).join(" ")})` +
  (results.ratioBalanced ? `, ${results.ratioBalanced.median.toFixed(3)} over pairs of rounds of both orders` : ""));
const m = machine();
const out = process.env.PAIR_OUT ?? `bench/results/hot-pair-${String(m.commit).slice(0, 7)}.json`;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({
  command: "BENCH_PAIR_BASE=... npm run bench:hot-pair", generated: new Date().toISOString(), machine: m, loadAtEnd: load(),
  base: BASE, baseSha256: createHash("sha256").update(baseWasm).digest("hex").slice(0, 16), trace: process.env.HOT_PAIR_TRACE ?? "gen-trace --packets 4000000 --flows 1000000 --sizes 64",
  rounds: ROUNDS, warmup: WARMUP, mpps, results,
}, null, 2)}\n`);
console.log(`raw figures: ${out}`);
