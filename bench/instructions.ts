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
// Each count is also split by Wasm function (a build whose .wat sits beside
// it: wasm/pias.wat for this one, FILE.wat for a base): callgrind knows no
// names for V8's code, and attributes each instruction to the address a
// call entered, which for a Wasm function is its slot in the module's jump
// table (V8 on x64: 64-byte lines of twelve 5-byte slots, slot i for the
// function of index i past the imports), so the slots name the functions.
// A count is a function's own instructions, not those of what it calls.
//
// INSTR_LOADS=trace counts a packet of a real trace instead
// (bench/lib/instructions-trace.ts): by default the generated 64-byte trace
// of `npm run bench` (4M packets, 1M flows, made in a temporary directory),
// framed whole, batches 2000 to 3000 of its 3,907 (its mix of new flows,
// TCP, IPv6 and ICMP echo, a table of 500k-700k flows); the framing is the
// same in both runs, so there is no harness to take off. About 3 minutes a
// build.
//
//   BENCH_PAIR_BASE=FILE.wasm  also count another build (a copy of another
//                              commit's wasm/pias.wasm)
//   INSTR_LOADS (new,fill,live; or trace), INSTR_TARGETS (34), INSTR_TRACE and
//   INSTR_CONFIG (the trace load's capture and configuration), PAIR_OUT (the
//   results file, bench/results/instructions-COMMIT.json)

import { execFileSync, spawnSync } from "node:child_process";
import { buildSync } from "esbuild";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { load, machine } from "./lib/machine.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const LOAD_SCRIPT = join(ROOT, "bench", "lib", "instructions-load.ts");
const TRACE_SCRIPT = join(ROOT, "bench", "lib", "instructions-trace.ts");
const LOADS = (process.env.INSTR_LOADS ?? "new,fill,live").split(",");
const LABEL: Record<string, string> = {
  new: "new flow, flows expiring", fill: "new flow, table filling", live: "live-flow packet", trace: "packet of the trace",
};
const TARGETS = process.env.INSTR_TARGETS ?? "34";
const BASE = process.env.BENCH_PAIR_BASE;
/** The batches counted (the difference between a run to TO and one to FROM), per load. */
const SPAN: Record<string, [number, number]> = { new: [110, 210], fill: [110, 210], live: [110, 210], trace: [2000, 3000] };
for (const l of LOADS) if (!SPAN[l]) throw new Error(`INSTR_LOADS: new, fill, live or trace, not ${l}`);

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
const TRACE_BUNDLE = join(ROOT, "dist", "bench", "instructions-trace.mjs");
for (const [entry, outfile] of [[LOAD_SCRIPT, BUNDLE], [TRACE_SCRIPT, TRACE_BUNDLE]]) {
  buildSync({ entryPoints: [entry], bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", outfile, logLevel: "warning" });
}
let trace = process.env.INSTR_TRACE;
let traceConfig = process.env.INSTR_CONFIG;
if (LOADS.includes("trace") && (!trace || !traceConfig)) {
  trace = join(tmp, "gen-64.pcap");
  traceConfig = join(tmp, "gen-64.json");
  execFileSync(process.execPath, [join(ROOT, "dist", "src", "cli", "pias.cjs"), "gen-trace", "--out", trace, "--packets", "4000000", "--flows", "1000000",
    "--sizes", "64", "--config-out", traceConfig], { stdio: "inherit" });
}

/** A run's count: the whole process, and the instructions at each address a call entered in code without a name. */
interface Count {
  total: number;
  entries: Map<number, number>;
}

/** Instructions callgrind counted for the whole process of one load run. */
function count(loadName: string, batches: number, wasm: string | undefined, harness: boolean): Count {
  const out = join(tmp, `callgrind.${process.pid}.${Date.now()}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env, INSTR_LOAD: loadName, INSTR_BATCHES: String(batches), INSTR_TARGETS: TARGETS, INSTR_HARNESS: harness ? "1" : "0",
    INSTR_TRACE: trace, INSTR_CONFIG: traceConfig,
  };
  if (wasm) env.INSTR_WASM = wasm;
  else delete env.INSTR_WASM;
  const r = spawnSync("setarch", ["-R", "valgrind", "--tool=callgrind", `--callgrind-out-file=${out}`,
    process.execPath, "--no-liftoff", "--predictable", "--no-memory-reducer", loadName === "trace" ? TRACE_BUNDLE : BUNDLE], { cwd: ROOT, env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`callgrind run failed (${loadName}, ${batches} batches): ${r.stderr.slice(-2000)}`);
  const summary = /^summary:\s+(\d+)/m.exec(readFileSync(out, "utf8"));
  const annotated = spawnSync("callgrind_annotate", ["--threshold=100", out], { encoding: "utf8", maxBuffer: 1 << 28 });
  rmSync(out, { force: true });
  if (!summary) throw new Error("no summary line in callgrind's output");
  const entries = new Map<number, number>();
  // lines such as "73,219,976 ( 5.93%)  ???:0x00002ea7c04f231e [???]" (a suffix 'N: the same entry N deep in recursion)
  for (const m of (annotated.stdout ?? "").matchAll(/^\s*([\d,]+) \([\s\d.]+%\)\s+\?\?\?:0x([0-9a-f]+)(?:'\d+)? \[\?\?\?\]$/gm)) {
    const address = Number.parseInt(m[2], 16);
    entries.set(address, (entries.get(address) ?? 0) + Number(m[1].replaceAll(",", "")));
  }
  return { total: Number(summary[1]), entries };
}

/** The names of a build's functions by index and how many of them are imports, from the .wat beside its .wasm (or undefined). */
function functionNames(wasm: string): { names: string[]; imports: number } | undefined {
  const wat = wasm.replace(/\.wasm$/, ".wat");
  if (!existsSync(wat)) return undefined;
  const text = readFileSync(wat, "utf8");
  const imports = [...text.matchAll(/^ \(import "[^"]*" "[^"]*" \(func (\$\S+)/gm)].map((m) => m[1]);
  const defined = [...text.matchAll(/^ \(func (\$\S+)/gm)].map((m) => m[1]);
  return { names: [...imports, ...defined].map((n) => n.replace(/^\$assembly\//, "")), imports: imports.length };
}

/** Jump-table slot of V8's x64 code (64-byte lines, twelve 5-byte slots): the offset of slot i from the table's start. */
const JT_LINE = 64;
const JT_SLOTS = 12;
const JT_SLOT = 5;

/**
 * Split the instructions between two runs of one build by Wasm function: the
 * entries in one 4 KiB page (the jump table, the page that counted most),
 * each at a slot offset, named from `names` (index = imports + slot); the
 * page's other entries (V8's own stubs past the table) as one.
 */
function byFunction(a: Count, b: Count, names: string[], imports: number, packets: number): Record<string, number> | undefined {
  const pages = new Map<number, number>();
  for (const [address, n] of b.entries) pages.set(Math.floor(address / 4096), (pages.get(Math.floor(address / 4096)) ?? 0) + n);
  const page = [...pages].sort((x, y) => y[1] - x[1])[0]?.[0];
  if (page === undefined) return undefined;
  const split: Record<string, number> = {};
  for (const address of new Set([...a.entries.keys(), ...b.entries.keys()])) {
    if (Math.floor(address / 4096) !== page) continue;
    const offset = address % 4096;
    const within = offset % JT_LINE;
    const index = imports + Math.floor(offset / JT_LINE) * JT_SLOTS + within / JT_SLOT;
    const name = within % JT_SLOT === 0 && within / JT_SLOT < JT_SLOTS && index < names.length ? names[index] : "(the page past the jump table)";
    split[name] = (split[name] ?? 0) + ((b.entries.get(address) ?? 0) - (a.entries.get(address) ?? 0)) / packets;
  }
  return split;
}

/** Instructions a packet over the load's span of batches, and their split by Wasm function when the build's names are known. */
function perPacket(loadName: string, wasm: string | undefined, harness: boolean): { total: number; functions?: Record<string, number> } {
  const [from, to] = SPAN[loadName];
  const packets = (to - from) * 1024;
  const a = count(loadName, from, wasm, harness);
  const b = count(loadName, to, wasm, harness);
  const total = (b.total - a.total) / packets;
  const build = harness ? undefined : functionNames(wasm ?? join(ROOT, "wasm", "pias.wasm"));
  return build ? { total, functions: byFunction(a, b, build.names, build.imports, packets) } : { total };
}

const builds: { name: string; wasm: string | undefined }[] = [{ name: "this build", wasm: undefined }];
if (BASE) builds.push({ name: `base (${BASE})`, wasm: resolve(BASE) });
const results: Record<string, Record<string, number>> = {};
/** Per load and build: each Wasm function's own instructions a packet (those of 0.5 or more). */
const functions: Record<string, Record<string, Record<string, number>>> = {};
try {
  for (const l of LOADS) {
    const harness = l === "trace" ? 0 : perPacket(l, undefined, true).total; // (the trace's framing is the same in both runs)
    results[l] = { harness: +harness.toFixed(1) };
    functions[l] = {};
    for (const b of builds) {
      const counted = perPacket(l, b.wasm, false);
      const core = counted.total - harness;
      results[l][b.name] = +core.toFixed(1);
      const what = l === "trace" ? LABEL[l] : `${LABEL[l]} (${TARGETS} targets)`;
      console.log(`${what}, ${b.name}: ${core.toFixed(1)} instructions a packet${harness ? ` (the harness's ${harness.toFixed(1)} taken off)` : ""}`);
      if (!counted.functions) {
        console.log("  (no split by function: the build has no .wat beside it)");
        continue;
      }
      const split = Object.entries(counted.functions).filter(([, n]) => n >= 0.5).sort((x, y) => y[1] - x[1]);
      functions[l][b.name] = Object.fromEntries(split.map(([f, n]) => [f, +n.toFixed(1)]));
      for (const [f, n] of split) console.log(`  ${n.toFixed(1).padStart(8)}  ${f}`);
      console.log(`  ${split.reduce((t, [, n]) => t + n, 0).toFixed(1).padStart(8)}  in Wasm functions`);
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
  method: "callgrind, node --no-liftoff --predictable under setarch -R; (run to the span's last batch - run to its first) / its packets, less the harness (none for the trace)",
  spans: Object.fromEntries(LOADS.map((l) => [l, SPAN[l]])), trace: LOADS.includes("trace") ? (process.env.INSTR_TRACE ?? "gen-trace --packets 4000000 --flows 1000000 --sizes 64") : undefined,
  targets: Number(TARGETS), base: BASE ?? null, results, functions,
}, null, 2)}\n`);
console.log(`raw figures: ${out}`);
