// npm run bench:instructions — machine instructions a packet costs in the
// core, counted with callgrind (Debian `valgrind`), not timed: the same
// build gives the same count to within a few instructions on a loaded or
// quiet machine, so a change of a few percent shows where timing (±3-5%
// between runs here) cannot tell it.
//
// For each load of bench/lib/instructions-load.ts (new flows with flows
// expiring, new flows filling a table, live-flow packets) and each build: `node --no-liftoff --predictable` under
// `setarch -R` (no address randomisation; no memory reducer, whose GCs follow the clock), run to 110 and to 210 batches of
// 1024 packets; the difference over the last 100 batches, less the same
// difference with the packets written but not processed (the harness),
// over 102,400 packets. The first batches are left out: they hold V8's
// warm-up of the harness and the table's, which differ between builds (110
// less 10 batches read 3,675 a new flow where 210 less 110 read 2,960).
//
//   BENCH_PAIR_BASE=FILE.wasm  also count another build (a copy of another
//                              commit's wasm/pias.wasm)
//   INSTR_LOADS (new,fill,live), INSTR_TARGETS (34), PAIR_OUT (the results file,
//   bench/results/instructions-COMMIT.json)

import { execFileSync, spawnSync } from "node:child_process";
import { buildSync } from "esbuild";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { load, machine } from "./lib/machine.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const LOAD_SCRIPT = join(ROOT, "bench", "lib", "instructions-load.ts");
const LOADS = (process.env.INSTR_LOADS ?? "new,fill,live").split(",");
const LABEL: Record<string, string> = { new: "new flow, flows expiring", fill: "new flow, table filling", live: "live-flow packet" };
const TARGETS = process.env.INSTR_TARGETS ?? "34";
const BASE = process.env.BENCH_PAIR_BASE;
const FROM = 110;
const TO = 210;
const PACKETS = (TO - FROM) * 1024;

try {
  execFileSync("valgrind", ["--version"], { stdio: "ignore" });
} catch {
  console.error("bench:instructions needs valgrind (Debian: apt-get install valgrind)");
  process.exit(2);
}

const tmp = mkdtempSync(join(tmpdir(), "pias-instructions-"));
// The load runs bundled, not under tsx: tsx transpiles through esbuild's service, and the main thread's work
// around those replies moved the counts by tens of millions of instructions from run to run. (Beside dist/, so
// that the core's wasm/ and the addon are found from it as from dist/src/.)
const BUNDLE = join(ROOT, "dist", "bench", "instructions-load.mjs");
buildSync({ entryPoints: [LOAD_SCRIPT], bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", outfile: BUNDLE, logLevel: "warning" });

/** Instructions callgrind counted for the whole process of one load run. */
function count(loadName: string, batches: number, wasm: string | undefined, harness: boolean): number {
  const out = join(tmp, `callgrind.${process.pid}.${Date.now()}`);
  const env: NodeJS.ProcessEnv = { ...process.env, INSTR_LOAD: loadName, INSTR_BATCHES: String(batches), INSTR_TARGETS: TARGETS, INSTR_HARNESS: harness ? "1" : "0" };
  if (wasm) env.INSTR_WASM = wasm;
  else delete env.INSTR_WASM;
  const r = spawnSync("setarch", ["-R", "valgrind", "--tool=callgrind", `--callgrind-out-file=${out}`,
    process.execPath, "--no-liftoff", "--predictable", "--no-memory-reducer", BUNDLE], { cwd: ROOT, env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`callgrind run failed (${loadName}, ${batches} batches): ${r.stderr.slice(-2000)}`);
  const summary = /^summary:\s+(\d+)/m.exec(readFileSync(out, "utf8"));
  rmSync(out, { force: true });
  if (!summary) throw new Error("no summary line in callgrind's output");
  return Number(summary[1]);
}

/** Instructions a packet over the last TO - FROM batches. */
function perPacket(loadName: string, wasm: string | undefined, harness: boolean): number {
  return (count(loadName, TO, wasm, harness) - count(loadName, FROM, wasm, harness)) / PACKETS;
}

const builds: { name: string; wasm: string | undefined }[] = [{ name: "this build", wasm: undefined }];
if (BASE) builds.push({ name: `base (${BASE})`, wasm: resolve(BASE) });
const results: Record<string, Record<string, number>> = {};
try {
  for (const l of LOADS) {
    const harness = perPacket(l, undefined, true);
    results[l] = { harness: +harness.toFixed(1) };
    for (const b of builds) {
      const core = perPacket(l, b.wasm, false) - harness;
      results[l][b.name] = +core.toFixed(1);
      console.log(`${LABEL[l] ?? l} (${TARGETS} targets), ${b.name}: ${core.toFixed(1)} instructions a packet (the harness's ${harness.toFixed(1)} taken off)`);
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
const m = machine();
const out = process.env.PAIR_OUT ?? join(ROOT, "bench", "results", `instructions-${String(m.commit).slice(0, 7)}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({
  command: "npm run bench:instructions", generated: new Date().toISOString(), machine: m, loadAtEnd: load(),
  method: `callgrind, node --no-liftoff --predictable under setarch -R; (${TO} - ${FROM} batches) / ${PACKETS} packets, less the harness`,
  targets: Number(TARGETS), base: BASE ?? null, results,
}, null, 2)}\n`);
console.log(`raw figures: ${out}`);
