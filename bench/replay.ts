// npm run bench — pias against its peers on the same traces, in one run:
//
//   replay     `pias replay IN --config CONF --out OUT --json` as a child
//              process (what a user runs); time = the `seconds` it reports
//              (framing, the whole pipeline, writing; not process start, which
//              is recorded apart as wall time), plus its peak RSS.
//   hot path   the Wasm core alone: every packet of the trace framed into the
//              core's memory first (untimed), then only the process_batch
//              calls are timed, batch by batch as the replay makes them. A
//              fresh data plane per repetition (processing rewrites packets
//              and creates flows).
//   model      the plain TypeScript reference model (src/reference/model.ts)
//              on the trace's first BENCH_MODEL_PACKETS packets (it is slow);
//              compared with the hot path's time over the same packets.
//   tcprewrite `tcprewrite --fixcsum --pnat=...` on the same file: a C peer
//              that rewrites every address and recomputes checksums, with no
//              flow table, no group lookup and no NAT state.
//   node copy  read and write the file in 8 MiB chunks (the replay's stage
//              size) in a Node loop: the I/O floor of a file-to-file replay.
//   cp         `cp IN OUT`, for reference.
//
// Traces: synthetic (gen-trace, BENCH_FLOWS flows, 64-byte frames and IMIX)
// and real captures from ../shared/captures (used in place), each with a
// config that serves every destination it talks to (bench/lib/capture-config.ts).
//
// Every measurement is repeated (BENCH_REPS, default 5); the median is
// reported with the slowest and fastest repetition. In-process measurements
// (hot path, model, node copy) run under tinybench with one untimed warm-up
// iteration and a hook (untimed) that prepares each iteration; external
// commands are timed here, wall clock, one child per repetition.
//
// Environment (defaults in brackets; BENCH_QUICK=1 changes them for a smoke run):
//   BENCH_QUICK=1          tiny traces, 1 repetition  [off]
//   BENCH_PACKETS          packets per synthetic trace  [4000000; quick 20000]
//   BENCH_FLOWS            flows per synthetic trace  [1000000; quick 5000]
//   BENCH_SIZES            synthetic frame sizes, comma-separated: 64, imix, 1500  [64,imix]
//   BENCH_CAPTURES         capture file names in BENCH_CAPTURES_DIR (or paths), comma-separated, or "none"
//                          [pcapparser__wireshark_samples-test.pcapng,ppp__example2.pcap,ppp__tls2.pcap,ndpi__gnutella.pcap]
//   BENCH_CAPTURES_DIR     [../shared/captures beside the repository]
//   BENCH_REPS             repetitions  [5; quick 1]
//   BENCH_SMALL_REPS       hot path and node copy repetitions on traces under 100k packets  [max(BENCH_REPS, 25); quick 1]
//   BENCH_MODEL_PACKETS    packets the reference model processes (whole batches)  [20000; quick 2000]
//   BENCH_TMP              directory for traces and outputs (removed at the end)  [os.tmpdir()]
//   BENCH_KEEP=1           keep that directory
//   BENCH_OUT              where replay.json and replay.svg go  [bench/results]

import { spawnSync } from "node:child_process";
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { Bench } from "tinybench";
import { DataPlane } from "../src/core/dataplane.js";
import { loadConfig } from "../src/config/load.js";
import type { PiasConfig } from "../src/config/types.js";
import { ReferenceModel } from "../src/reference/model.js";
import { STAGE_BYTES } from "../src/capture/reader.js";
import { captureConfig } from "./lib/capture-config.js";
import { frameAll, scanCapture, type Framed } from "./lib/frame.js";
import { rates, summarize, type Rates, type Summary } from "./lib/stats.js";
import { barChart, type Series } from "./lib/svg.js";
import { int, markdownTable, num } from "./lib/table.js";
import { load, machine } from "./lib/machine.js";

// ------------------------------------------------------------------ options

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "dist", "src", "cli", "pias.cjs");
const QUICK = process.env.BENCH_QUICK === "1";

function envInt(name: string, dflt: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return dflt;
  const v = Number(raw.replace(/_/g, ""));
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, not ${JSON.stringify(raw)}`);
  return v;
}

const REPS = envInt("BENCH_REPS", QUICK ? 1 : 5);
const OPTIONS = {
  quick: QUICK,
  packets: envInt("BENCH_PACKETS", QUICK ? 20_000 : 4_000_000),
  flows: envInt("BENCH_FLOWS", QUICK ? 5_000 : 1_000_000),
  sizes: (process.env.BENCH_SIZES ?? "64,imix").split(",").map((s) => s.trim()).filter(Boolean),
  captures: (process.env.BENCH_CAPTURES ?? "pcapparser__wireshark_samples-test.pcapng,ppp__example2.pcap,ppp__tls2.pcap,ndpi__gnutella.pcap")
    .split(",").map((s) => s.trim()).filter((s) => s && s !== "none"),
  capturesDir: resolve(process.env.BENCH_CAPTURES_DIR ?? join(ROOT, "..", "shared", "captures")),
  reps: REPS,
  smallReps: envInt("BENCH_SMALL_REPS", QUICK ? 1 : Math.max(REPS, 25)),
  modelPackets: envInt("BENCH_MODEL_PACKETS", QUICK ? 2_000 : 20_000),
  warmup: 1,
  chunkBytes: STAGE_BYTES,
  tcprewritePnat: "0.0.0.0/0:10.0.0.0/8,[::/0]:[2001:db8::/32]",
};
for (const s of OPTIONS.sizes) if (!["64", "imix", "1500"].includes(s)) throw new Error(`BENCH_SIZES: unknown size ${JSON.stringify(s)} (64, imix, 1500)`);
/** Traces with fewer packets than this repeat the cheap in-process measurements BENCH_SMALL_REPS times. */
const SMALL_TRACE = 100_000;
const OUT_DIR = resolve(process.env.BENCH_OUT ?? join(ROOT, "bench", "results"));
const TMP = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), "pias-bench-"));

// A fresh data plane per repetition holds the whole trace in its memory:
// collect the previous one before building the next.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

// ------------------------------------------------------------------ types

type Key = "replay" | "hotPath" | "model" | "tcprewrite" | "nodeCopy" | "cp";

const SERIES: readonly (Series & { key: Key })[] = [
  { key: "replay", label: "pias replay (file to file)", color: "#1f77b4" },
  { key: "hotPath", label: "Wasm hot path alone", color: "#2ca02c" },
  { key: "model", label: "TS reference model", color: "#9467bd" },
  { key: "tcprewrite", label: "tcprewrite --fixcsum --pnat", color: "#d62728" },
  { key: "nodeCopy", label: "node copy, 8 MiB chunks", color: "#7f7f7f" },
  { key: "cp", label: "cp", color: "#bcbd22" },
];

interface Measurement extends Rates {
  /** Packets and frame bytes the time covers. */
  packets: number;
  bytes: number;
  /** Seconds per repetition. */
  seconds: Summary;
  /** How the time was taken. */
  timing: string;
  /** The command run, for external measurements. */
  command?: string;
  [extra: string]: unknown;
}

interface Skipped {
  skipped: string;
}

interface TraceResult {
  name: string;
  kind: "synthetic" | "capture";
  file: string;
  fileBytes: number;
  packets: number;
  /** Sum of the captured frame lengths. */
  packetBytes: number;
  config: string;
  measurements: Record<Key, Measurement | Skipped>;
  /** Speed ratios, pias over the peer (> 1: pias is faster). */
  ratios: Record<string, number | null>;
  /** What replay and hot path did with the packets; they must agree. */
  checks: Record<string, unknown>;
}

const isMeasured = (m: Measurement | Skipped | undefined): m is Measurement => !!m && !("skipped" in m);

// ------------------------------------------------------------------ helpers

function run(cmd: string, args: string[], what: string): { stdout: string; stderr: string; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 << 20 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.error) throw new Error(`${what}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what}: exit status ${r.status}${r.signal ? ` (${r.signal})` : ""}: ${r.stderr.trim().split("\n").slice(-3).join(" / ")}`);
  return { stdout: r.stdout, stderr: r.stderr, seconds };
}

const rm = (p: string): void => {
  try {
    unlinkSync(p);
  } catch {
    // not there
  }
};

function measurement(seconds: number[], packets: number, bytes: number, timing: string, extra: Record<string, unknown> = {}): Measurement {
  const s = summarize(seconds);
  return { packets, bytes, seconds: s, timing, ...rates(s, packets, bytes), ...extra };
}

/**
 * Run `fn` under tinybench: `warmup` untimed iterations, then `reps` timed
 * ones; `prepare` runs before every iteration, outside the timed call.
 * Returns the timed samples in seconds.
 */
async function tiny(name: string, reps: number, prepare: () => void, fn: () => void, after?: (mode?: string) => void): Promise<number[]> {
  const bench = new Bench({
    name,
    time: 0,
    iterations: reps,
    warmup: OPTIONS.warmup > 0,
    warmupTime: 0,
    warmupIterations: OPTIONS.warmup,
    retainSamples: true,
    throws: true,
  });
  bench.add(name, fn, {
    async: false,
    beforeEach: () => prepare(),
    afterEach: (mode) => after?.(mode),
  });
  await bench.run();
  const task = bench.getTask(name);
  const result = task?.result;
  if (!result || !("latency" in result) || !result.latency.samples) throw new Error(`${name}: tinybench gave no samples (${result?.state})`);
  return [...result.latency.samples].map((ms) => ms / 1000);
}

function machineInfo(): Record<string, unknown> {
  const tr = spawnSync("tcprewrite", ["-V"], { encoding: "utf8" });
  const tcprewrite = tr.error ? null : `${tr.stdout}${tr.stderr}`.split("\n").find((l) => /version/i.test(l))?.trim() ?? "unknown";
  return { ...machine(), tcprewrite };
}

// ------------------------------------------------------------------ measurements

/**
 * The replay CLI under a wrapper that prints the child's peak RSS when it
 * exits: one untimed run, since the wrapper's ES module loader adds about
 * 35 ms to the process (the timed runs are `node pias.cjs replay`, as a user
 * runs it).
 */
const RSS_WRAPPER = [
  `const { pathToFileURL } = await import("node:url");`,
  `process.on("exit", () => process.stderr.write("\\npias-bench-maxrss-kib " + process.resourceUsage().maxRSS + "\\n"));`,
  `await import(pathToFileURL(process.argv[1]).href);`,
].join("\n");

function measureReplay(t: TraceSpec, packets: number, bytes: number): Measurement {
  const out = join(TMP, "replay-out.pcap");
  const args = [CLI, "replay", t.file, "--config", t.config, "--out", out, "--json"];
  const inProcess: number[] = [];
  const wall: number[] = [];
  let report: Record<string, unknown> = {};
  for (let i = 0; i < OPTIONS.reps; i++) {
    const r = run(process.execPath, args, `pias replay ${basename(t.file)}`);
    rm(out);
    report = JSON.parse(r.stdout) as Record<string, unknown>;
    if (report.packets !== packets) throw new Error(`pias replay ${t.name}: ${report.packets} packets, the scan found ${packets}`);
    inProcess.push(report.seconds as number);
    wall.push(r.seconds);
  }
  const peak = /pias-bench-maxrss-kib (\d+)/.exec(run(process.execPath, ["--input-type=module", "-e", RSS_WRAPPER, ...args], `pias replay ${basename(t.file)} (peak RSS)`).stderr);
  rm(out);
  const wallS = summarize(wall);
  return measurement(inProcess, packets, bytes, "the child's --json seconds (excludes process start, module load and config)", {
    command: `node dist/src/cli/pias.cjs replay ${t.file} --config ${t.config} --out OUT --json`,
    wallSeconds: wallS,
    wallMpps: packets / wallS.median / 1e6,
    peakRssMiB: peak ? Number(peak[1]) / 1024 : null,
    forwarded: report.forwarded,
    dropped: report.dropped,
    flows: report.flows,
    bytesOut: report.bytesOut,
  });
}

async function measureHotPath(t: TraceSpec, config: PiasConfig, packets: number, bytes: number, prefixTarget: number, reps: number): Promise<{ m: Measurement; prefix: { packets: number; seconds: Summary } }> {
  let dp: DataPlane | undefined;
  let framed: Framed | undefined;
  let prefixMs = 0;
  let prefixPackets = 0;
  const prefixSamples: number[] = [];
  const forwarded: number[] = [];
  const samples = await tiny(`hot path ${t.name}`, reps, () => {
    dp = undefined;
    framed = undefined;
    gc();
    dp = DataPlane.fromConfig(config);
    framed = frameAll(dp, t.file);
    if (framed.packets !== packets) throw new Error(`hot path ${t.name}: framed ${framed.packets} packets, the scan found ${packets}`);
  }, () => {
    const plane = dp!;
    const { desc, count } = framed!;
    const nb = desc.length;
    let done = 0;
    const t0 = performance.now();
    for (let i = 0; i < nb; i++) {
      plane.processBatch(desc[i], count[i]);
      done += count[i];
      if (prefixPackets === 0 && done >= prefixTarget) {
        prefixMs = performance.now() - t0;
        prefixPackets = done;
      }
    }
  }, (mode) => {
    const c = dp!.counters();
    if (c.packets !== packets) throw new Error(`hot path ${t.name}: the core counted ${c.packets} packets of ${packets}`);
    if (mode === "run") {
      prefixSamples.push(prefixMs / 1000);
      forwarded.push(c.forwarded);
    }
    prefixPackets = 0;
  });
  // the prefix boundary is the same batch every repetition (same file, same framing)
  let prefixCount = 0;
  for (let i = 0, done = 0; i < framed!.count.length; i++) {
    done += framed!.count[i];
    if (done >= prefixTarget) {
      prefixCount = done;
      break;
    }
  }
  dp = undefined;
  framed = undefined;
  gc();
  return {
    m: measurement(samples, packets, bytes, "tinybench, process_batch calls only; packets framed into the core's memory before each repetition, fresh data plane each time", {
      batches: "up to 1024 packets, as the replay's reader forms them",
      forwarded: forwarded[0],
    }),
    prefix: { packets: prefixCount, seconds: summarize(prefixSamples) },
  };
}

async function measureModel(t: TraceSpec, config: PiasConfig, batches: ReturnType<typeof scanCapture>["modelBatches"], packets: number, bytes: number, total: number): Promise<Measurement> {
  let model: ReferenceModel | undefined;
  let forwarded = 0;
  const samples = await tiny(`model ${t.name}`, OPTIONS.reps, () => {
    model = undefined;
    gc();
    model = new ReferenceModel({ ...config.proxy, capacity: config.capacity });
    for (const g of config.groups) model.addGroup(g);
  }, () => {
    for (const b of batches) model!.process(b);
  }, () => {
    forwarded = model!.counters().forwarded;
  });
  model = undefined;
  gc();
  return measurement(samples, packets, bytes, "tinybench, process() over batches of up to 1024 packets; fresh model each repetition", {
    subset: packets < total ? `first ${packets} of ${total} packets` : null,
    forwarded,
  });
}

function measureTcprewrite(t: TraceSpec, packets: number, bytes: number): Measurement | Skipped {
  const probe = spawnSync("tcprewrite", ["-V"], { encoding: "utf8" });
  if (probe.error) return { skipped: "tcprewrite is not installed (Debian package tcpreplay)" };
  const out = join(TMP, "tcprewrite-out.pcap");
  const args = ["--fixcsum", `--pnat=${OPTIONS.tcprewritePnat}`, "-i", t.file, "-o", out];
  const seconds: number[] = [];
  for (let i = 0; i < OPTIONS.reps; i++) {
    seconds.push(run("tcprewrite", args, `tcprewrite ${basename(t.file)}`).seconds);
    rm(out);
  }
  // peak RSS from one more, untimed run, when GNU time is there (it is optional)
  let peakRssMiB: number | null = null;
  if (existsSync("/usr/bin/time")) {
    const f = join(TMP, "time.txt");
    const r = spawnSync("/usr/bin/time", ["-f", "%M", "-o", f, "tcprewrite", ...args], { encoding: "utf8" });
    if (r.status === 0) peakRssMiB = Number(readFileSync(f, "utf8").trim().split("\n").pop()) / 1024;
    rm(out);
    rm(f);
  }
  return measurement(seconds, packets, bytes, "wall clock of the child (includes its process start, about a millisecond)", {
    command: `tcprewrite ${args.slice(0, 2).join(" ")} -i ${t.file} -o OUT`,
    peakRssMiB,
  });
}

async function measureNodeCopy(t: TraceSpec, packets: number, bytes: number, reps: number): Promise<Measurement> {
  const out = join(TMP, "copy-out.pcap");
  const buf = Buffer.allocUnsafe(OPTIONS.chunkBytes);
  const samples = await tiny(`node copy ${t.name}`, reps, () => rm(out), () => {
    const fi = openSync(t.file, "r");
    const fo = openSync(out, "w");
    try {
      for (;;) {
        const n = readSync(fi, buf, 0, buf.length, null);
        if (n === 0) break;
        for (let o = 0; o < n;) o += writeSync(fo, buf, o, n - o);
      }
    } finally {
      closeSync(fi);
      closeSync(fo);
    }
  }, () => {
    if (statSync(out).size !== statSync(t.file).size) throw new Error(`node copy ${t.name}: sizes differ`);
  });
  rm(out);
  return measurement(samples, packets, bytes, `tinybench, readSync/writeSync in ${OPTIONS.chunkBytes >> 20} MiB chunks`);
}

function measureCp(t: TraceSpec, packets: number, bytes: number): Measurement {
  const out = join(TMP, "cp-out.pcap");
  const seconds: number[] = [];
  for (let i = 0; i < OPTIONS.reps; i++) {
    seconds.push(run("cp", [t.file, out], "cp").seconds);
    rm(out);
  }
  return measurement(seconds, packets, bytes, "wall clock of the child", { command: `cp ${t.file} OUT` });
}

// ------------------------------------------------------------------ traces

interface TraceSpec {
  name: string;
  kind: "synthetic" | "capture";
  file: string;
  config: string;
  /** Writes the trace (synthetic ones are generated just before they are measured). */
  prepare?: () => void;
}

function syntheticTraces(): TraceSpec[] {
  return OPTIONS.sizes.map((sizes) => {
    const file = join(TMP, `gen-${sizes}.pcap`);
    const config = join(TMP, `gen-${sizes}.json`);
    const args = [CLI, "gen-trace", "--out", file, "--packets", String(OPTIONS.packets), "--flows", String(OPTIONS.flows), "--sizes", sizes, "--config-out", config];
    const label = sizes === "imix" ? "IMIX" : `${sizes} B`;
    const prepare = (): void => {
      log(`\ngen-trace ${sizes}: ${int(OPTIONS.packets)} packets, ${int(OPTIONS.flows)} flows`);
      run(process.execPath, args, "gen-trace");
      // on disk before it is measured: else the kernel writes its 300-600 MB back during the first measurements, on the core the replay's reads and writes use
      const fd = openSync(file, "r+");
      fsyncSync(fd);
      closeSync(fd);
    };
    return { name: `gen ${label}, ${short(OPTIONS.flows)} flows`, kind: "synthetic" as const, file, config, prepare };
  });
}

function captureTraces(): TraceSpec[] {
  const specs: TraceSpec[] = [];
  for (const c of OPTIONS.captures) {
    const file = isAbsolute(c) ? c : join(OPTIONS.capturesDir, c);
    if (!existsSync(file)) {
      log(`capture ${file} not found: skipped`);
      continue;
    }
    const config = join(TMP, `${basename(file)}.json`);
    writeFileSync(config, JSON.stringify(captureConfig(file), null, 1));
    specs.push({ name: basename(file), kind: "capture", file, config });
  }
  return specs;
}

function short(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

async function benchTrace(t: TraceSpec): Promise<TraceResult> {
  const config = loadConfig(t.config);
  const scan = scanCapture(t.file, OPTIONS.modelPackets);
  const { packets, packetBytes } = scan;
  const modelBytes = scan.modelBatches.reduce((a, b) => a + b.reduce((s, p) => s + p.data.length, 0), 0);
  const small = packets < SMALL_TRACE;
  const cheapReps = small ? OPTIONS.smallReps : OPTIONS.reps;
  log(`\n${t.name}: ${int(packets)} packets, ${int(packetBytes)} frame bytes (${(packetBytes / packets).toFixed(1)} per packet), ${statSync(t.file).size.toLocaleString("en-US")} file bytes`);

  const m = {} as Record<Key, Measurement | Skipped>;
  const show = (k: Key): void => {
    const x = m[k];
    const label = SERIES.find((s) => s.key === k)!.label;
    log(isMeasured(x)
      ? `  ${label.padEnd(30)} ${num(x.mpps).padStart(7)} Mpps  ${num(x.gbps).padStart(6)} Gbit/s  ${num(x.nsPerPacket).padStart(7)} ns/packet  (${x.seconds.samples.length} runs, ${num(x.mppsMin)}-${num(x.mppsMax)} Mpps)`
      : `  ${label.padEnd(30)} skipped: ${x.skipped}`);
  };

  m.replay = measureReplay(t, packets, packetBytes);
  show("replay");
  const hot = await measureHotPath(t, config, packets, packetBytes, scan.modelPackets, cheapReps);
  m.hotPath = hot.m;
  show("hotPath");
  m.model = await measureModel(t, config, scan.modelBatches, scan.modelPackets, modelBytes, packets);
  show("model");
  m.tcprewrite = measureTcprewrite(t, packets, packetBytes);
  show("tcprewrite");
  m.nodeCopy = await measureNodeCopy(t, packets, packetBytes, cheapReps);
  show("nodeCopy");
  m.cp = measureCp(t, packets, packetBytes);
  show("cp");

  const replay = m.replay as Measurement;
  const hotPath = m.hotPath as Measurement;
  const model = m.model as Measurement;
  const over = (a: Measurement, b: Measurement | Skipped): number | null => (isMeasured(b) && b.mpps > 0 ? a.mpps / b.mpps : null);
  const hotPrefixNs = (hot.prefix.seconds.median * 1e9) / hot.prefix.packets;
  const ratios = {
    "replay/tcprewrite": over(replay, m.tcprewrite),
    "replay/nodeCopy": over(replay, m.nodeCopy),
    "replay/cp": over(replay, m.cp),
    "hotPath/model": hotPrefixNs > 0 ? model.nsPerPacket / hotPrefixNs : null,
    "replay/hotPath": over(replay, hotPath),
  };
  const checks = {
    replayForwarded: replay.forwarded,
    hotPathForwarded: hotPath.forwarded,
    agree: replay.forwarded === hotPath.forwarded,
    hotPathOnModelPackets: { packets: hot.prefix.packets, seconds: hot.prefix.seconds, nsPerPacket: hotPrefixNs },
  };
  if (!checks.agree) log(`  WARNING: replay forwarded ${replay.forwarded} packets, the hot path ${hotPath.forwarded}`);
  return {
    name: t.name, kind: t.kind, file: t.file, fileBytes: statSync(t.file).size, packets, packetBytes,
    config: t.kind === "capture" ? "every destination: port-0 TCP and UDP groups and an ICMP group, two targets each (bench/lib/capture-config.ts)" : "gen-trace --config-out",
    measurements: m, ratios, checks,
  };
}

// ------------------------------------------------------------------ report

function report(results: TraceResult[], info: Record<string, unknown>): string {
  const lines: string[] = [];
  const cell = (r: TraceResult, k: Key, f: (x: Measurement) => string): string => {
    const x = r.measurements[k];
    return isMeasured(x) ? f(x) : "n/a";
  };
  const dag = (r: TraceResult): string => (isMeasured(r.measurements.model) && r.measurements.model.subset ? " †" : "");
  const head = ["trace", "packets", "B/packet", ...SERIES.map((s) => s.label)];
  const align = ["l", "r", "r", ...SERIES.map(() => "r" as const)] as ("l" | "r")[];
  const base = (r: TraceResult): string[] => [r.name, int(r.packets), (r.packetBytes / r.packets).toFixed(0)];

  lines.push(`Mpps, median of ${OPTIONS.reps} (in-process measurements on traces under ${int(SMALL_TRACE)} packets: ${OPTIONS.smallReps}); slowest-fastest in brackets`);
  lines.push(markdownTable(head, results.map((r) => [...base(r), ...SERIES.map((s) => cell(r, s.key, (x) =>
    `${num(x.mpps)} (${num(x.mppsMin)}-${num(x.mppsMax)})${s.key === "model" ? dag(r) : ""}`))]), align));
  lines.push("");
  lines.push("ns/packet, median");
  lines.push(markdownTable(head, results.map((r) => [...base(r), ...SERIES.map((s) => cell(r, s.key, (x) => `${num(x.nsPerPacket)}${s.key === "model" ? dag(r) : ""}`))]), align));
  lines.push("");
  lines.push("Gbit/s of frames (8 x captured frame bytes / time), median");
  lines.push(markdownTable(head, results.map((r) => [...base(r), ...SERIES.map((s) => cell(r, s.key, (x) => `${num(x.gbps)}${s.key === "model" ? dag(r) : ""}`))]), align));
  lines.push("");
  lines.push("pias over each peer (speed ratio, > 1: pias faster), replay wall clock, peak RSS");
  const x = (v: number | null | undefined): string => (v == null ? "n/a" : `${num(v)}x`);
  lines.push(markdownTable(
    ["trace", "replay / tcprewrite", "replay / node copy", "replay / cp", "hot path / model", "replay Mpps incl. process start", "replay peak RSS MiB", "tcprewrite peak RSS MiB"],
    results.map((r) => {
      const rp = r.measurements.replay as Measurement;
      const tr = r.measurements.tcprewrite;
      return [
        r.name, x(r.ratios["replay/tcprewrite"]), x(r.ratios["replay/nodeCopy"]), x(r.ratios["replay/cp"]), x(r.ratios["hotPath/model"]),
        num(rp.wallMpps as number), num(rp.peakRssMiB as number | null), isMeasured(tr) ? num(tr.peakRssMiB as number | null) : "n/a",
      ];
    }),
    ["l", "r", "r", "r", "r", "r", "r", "r"],
  ));
  lines.push("");
  if (results.some((r) => dag(r))) {
    lines.push(`† the model processes the first ${int(OPTIONS.modelPackets)} packets (whole batches); "hot path / model" compares it with the hot path's time over the same packets.`);
  }
  lines.push(`Replay: the child's own --json seconds (no process start); tcprewrite and cp: wall clock of the child; tcprewrite map --pnat=${OPTIONS.tcprewritePnat}.`);
  lines.push(`Machine: ${info.cpu}, ${info.cores} cores, Node ${info.node}, ${info.uname}, ${info.tcprewrite ?? "no tcprewrite"}; commit ${info.commit}${info.dirty ? " (with changes)" : ""}; load average ${(info.loadavg as number[]).join(" ")} at the start.`);
  return lines.join("\n");
}

function chart(results: TraceResult[], info: Record<string, unknown>): string {
  return barChart({
    title: "pias replay and its peers, million packets per second (median)",
    subtitle: `${info.cpu}, ${info.cores} cores, Node ${info.node}; ${OPTIONS.reps} repetitions${OPTIONS.quick ? " (BENCH_QUICK)" : ""}; model on the first ${int(OPTIONS.modelPackets)} packets`,
    unit: "Mpps",
    series: SERIES,
    groups: results.map((r) => ({
      label: `${r.name} — ${int(r.packets)} packets, ${(r.packetBytes / r.packets).toFixed(0)} B/packet`,
      bars: SERIES.map((s) => {
        const x = r.measurements[s.key];
        return isMeasured(x)
          ? { series: s.key, value: x.mpps, min: x.mppsMin, max: x.mppsMax, note: s.key === "model" && x.subset ? "†" : undefined }
          : { series: s.key, value: null, note: (x as Skipped).skipped };
      }),
    })),
  });
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: run "npm run build" first (npm run bench does)`);
  const info = machineInfo();
  const t0 = performance.now();
  log(`pias bench${QUICK ? " (quick)" : ""}: ${OPTIONS.reps} repetitions; temporary files in ${TMP}`);
  const results: TraceResult[] = [];
  try {
    const traces = [...syntheticTraces(), ...captureTraces()];
    for (const t of traces) {
      t.prepare?.();
      results.push(await benchTrace(t));
      if (t.kind === "synthetic" && process.env.BENCH_KEEP !== "1") {
        rm(t.file); // a few hundred MB each
      }
    }
  } finally {
    if (process.env.BENCH_KEEP !== "1") rmSync(TMP, { recursive: true, force: true });
  }
  const text = report(results, info);
  console.log(`\n${text}`);
  mkdirSync(OUT_DIR, { recursive: true });
  const json = {
    generated: new Date().toISOString(),
    command: QUICK ? "BENCH_QUICK=1 npm run bench" : "npm run bench",
    machine: info,
    options: OPTIONS,
    seconds: (performance.now() - t0) / 1000,
    loadAtEnd: load(),
    traces: results,
  };
  writeFileSync(join(OUT_DIR, "replay.json"), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(OUT_DIR, "replay.svg"), chart(results, info));
  log(`\nwrote ${join(OUT_DIR, "replay.json")} and ${join(OUT_DIR, "replay.svg")} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}

main().catch((e: unknown) => {
  console.error(`bench: ${(e as Error)?.stack ?? String(e)}`);
  process.exitCode = 1;
});
