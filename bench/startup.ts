// npm run bench:startup — what a whole `pias replay` process of a small
// capture costs beside Node's own start-up, measured in one run:
//
//   node -e 0      Node's own start-up and exit: the floor of any Node program
//   pias help      the CLI (dist/src/cli/pias.cjs, the bundle `pias` runs), no command
//   import replay  `import()` of the replay command as ES modules (everything a
//                  replay loads: config, data plane, capture reader/writer),
//                  what the bundle spares
//   pias replay    `pias replay CAPTURE --config CONF --out OUT --json`: the
//                  whole process a user runs; its --json `seconds` (the
//                  pipeline alone: reading, the core, writing) is recorded too;
//                  and the same through the unbundled CLI (dist/src/cli/main.js)
//
// Each is a child process timed wall clock from spawn to exit. They run
// interleaved, round after round (after one untimed warm-up round that fills
// the page cache), so a load change on the machine touches them alike. The
// figure is the ratio of the minima of `pias replay` and `node -e 0` (the
// minimum is the best guess of the unloaded time); medians beside them.
//
// Where the environment sets NODE_EXTRA_CA_CERTS (this development machine
// does), every Node process reads and parses that certificate file before
// running any code: 40 ms here, most of `node -e 0`. `node -e 0` and
// `pias replay` are then measured a second time without it (the "clean"
// rows, as on a fresh Debian machine), and both ratios reported.
//
// The capture's config serves every destination it talks to
// (bench/lib/capture-config.ts, as `npm run bench` makes for captures). This
// is its own script rather than part of `npm run bench` because it takes
// seconds, not minutes, and is re-run after every start-up change.
//
// Environment (defaults in brackets):
//   BENCH_STARTUP_RUNS     rounds  [21]
//   BENCH_STARTUP_CAPTURE  the capture  [../shared/captures/ppp__example2.pcap beside the repository]
//   BENCH_STARTUP_BASE     another built checkout (main, say): its `pias replay` joins the rounds,
//                          for a before/after on the same machine at the same moment  [none]
//   BENCH_OUT              where startup.json goes  [bench/results]

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { captureConfig } from "./lib/capture-config.js";
import { load, machine } from "./lib/machine.js";
import { summarize, type Summary } from "./lib/stats.js";
import { markdownTable, num } from "./lib/table.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "dist", "src", "cli", "pias.cjs");
const REPLAY_COMMAND = join(ROOT, "dist", "src", "cli", "commands", "replay.js");
/** The CLI as ES modules, unbundled (what `pias` was before dist/src/cli/pias.cjs). */
const CLI_MODULES = join(ROOT, "dist", "src", "cli", "main.js");

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 21);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`BENCH_STARTUP_RUNS must be an integer >= 1, not ${process.env.BENCH_STARTUP_RUNS}`);
const CAPTURE = resolve(process.env.BENCH_STARTUP_CAPTURE ?? join(ROOT, "..", "shared", "captures", "ppp__example2.pcap"));
const OUT_DIR = resolve(process.env.BENCH_OUT ?? join(ROOT, "bench", "results"));
const BASE = process.env.BENCH_STARTUP_BASE ? resolve(process.env.BENCH_STARTUP_BASE) : null;

interface Series {
  key: "node" | "help" | "imports" | "replay" | "replayModules" | "base" | "nodeClean" | "replayClean" | "baseClean";
  label: string;
  args: string[];
  /** The environment, when not this process's. */
  env?: NodeJS.ProcessEnv;
  ms: number[];
}

function timeChild(args: readonly string[], env?: NodeJS.ProcessEnv): { ms: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return { ms, stdout: r.stdout };
}

function main(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: run "npm run build" first (npm run bench:startup does)`);
  if (!existsSync(CAPTURE)) throw new Error(`capture ${CAPTURE} not found (BENCH_STARTUP_CAPTURE)`);
  const info = machine();
  const tmp = mkdtempSync(join(tmpdir(), "pias-startup-"));
  try {
    const conf = join(tmp, "config.json");
    writeFileSync(conf, JSON.stringify(captureConfig(CAPTURE)));
    const out = join(tmp, "out.pcap");
    const series: Series[] = [
      { key: "node", label: "node -e 0", args: ["-e", "0"], ms: [] },
      { key: "help", label: "pias help", args: [CLI, "help"], ms: [] },
      { key: "imports", label: "import the replay command's ES modules", args: ["--input-type=module", "-e", `await import(${JSON.stringify(pathToFileURL(REPLAY_COMMAND).href)})`], ms: [] },
      { key: "replay", label: `pias replay ${basename(CAPTURE)}`, args: [CLI, "replay", CAPTURE, "--config", conf, "--out", out, "--json"], ms: [] },
      { key: "replayModules", label: "  the same, the CLI as ES modules (main.js)", args: [CLI_MODULES, "replay", CAPTURE, "--config", conf, "--out", out, "--json"], ms: [] },
    ];
    const [node, , , replay] = series;
    let base: Series | undefined;
    if (BASE) {
      // its installed CLI: the bundle, or main.js in checkouts from before it
      const cli = ["pias.cjs", "main.js"].map((f) => join(BASE, "dist", "src", "cli", f)).find((f) => existsSync(f));
      if (!cli) throw new Error(`no CLI in ${BASE}/dist/src/cli (BENCH_STARTUP_BASE): build that checkout first`);
      base = { key: "base", label: `${replay.label}, ${BASE}`, args: [cli, ...replay.args.slice(1)], ms: [] };
      series.push(base);
    }
    const extraCa = process.env.NODE_EXTRA_CA_CERTS;
    if (extraCa) {
      const env = { ...process.env };
      delete env.NODE_EXTRA_CA_CERTS;
      series.push({ ...node, key: "nodeClean", label: `${node.label}, clean`, env, ms: [] }, { ...replay, key: "replayClean", label: `${replay.label}, clean`, env, ms: [] });
      if (base) series.push({ ...base, key: "baseClean", label: `${base.label}, clean`, env, ms: [] });
    }
    const pipeline: number[] = [];
    let report: Record<string, unknown> = {};
    const loadBefore = load();
    process.stderr.write(`bench:startup: ${RUNS} rounds of ${series.map((s) => s.label).join(", ")}; load ${loadBefore.join(" ")}\n`);
    for (let round = -1; round < RUNS; round++) {
      for (const s of series) {
        const { ms, stdout } = timeChild(s.args, s.env);
        if (round < 0) continue; // warm-up: page cache, nothing recorded
        s.ms.push(ms);
        if (s.key === "replay") {
          report = JSON.parse(stdout) as Record<string, unknown>;
          pipeline.push(Number(report.seconds) * 1000);
        }
      }
    }
    const loadAfter = load();
    const stats = Object.fromEntries(series.map((s) => [s.key, summarize(s.ms)])) as Record<Series["key"], Summary>;
    const pipelineMs = summarize(pipeline);
    const ratioOf = (replay: Summary, node: Summary): { min: number; median: number } => ({ min: replay.min / node.min, median: replay.median / node.median });
    const ratio = ratioOf(stats.replay, stats.node);
    const ratioClean = extraCa ? ratioOf(stats.replayClean, stats.nodeClean) : null;
    const ratioBase = base ? { ...ratioOf(stats.base, stats.node), clean: extraCa ? ratioOf(stats.baseClean, stats.nodeClean) : null } : null;

    const rows = series.map((s) => {
      const x = stats[s.key];
      const floor = s.env ? stats.nodeClean : stats.node;
      return [s.label, num(x.min), num(x.median), num(x.min - floor.min), num(x.min / floor.min)];
    });
    rows.splice(4, 0, ["  of which the replay pipeline (--json seconds)", num(pipelineMs.min), num(pipelineMs.median), "", ""]);
    console.log(markdownTable(["process", "min ms", "median ms", "min - node ms", "min / node"], rows, ["l", "r", "r", "r", "r"]));
    const x = (r: { min: number; median: number }): string => `${r.min.toFixed(2)}x (min), ${r.median.toFixed(2)}x (median)`;
    console.log(`\n${basename(CAPTURE)}: ${report.packets} packets; pias replay / node -e 0: ${x(ratio)}${ratioClean ? `; clean (no NODE_EXTRA_CA_CERTS): ${x(ratioClean)}` : ""}; load ${loadBefore.join(" ")} -> ${loadAfter.join(" ")}`);
    if (ratioBase) console.log(`${BASE}: ${x(ratioBase)}${ratioBase.clean ? `; clean: ${x(ratioBase.clean)}` : ""}`);

    mkdirSync(OUT_DIR, { recursive: true });
    const file = join(OUT_DIR, "startup.json");
    const json = {
      generated: new Date().toISOString(),
      command: `${BASE ? `BENCH_STARTUP_BASE=${BASE} ` : ""}npm run bench:startup`,
      machine: info,
      loadBefore,
      loadAfter,
      capture: CAPTURE,
      packets: report.packets,
      runs: RUNS,
      nodeExtraCaCerts: extraCa ?? null,
      ratio,
      ratioClean,
      base: BASE,
      ratioBase,
      series: series.map((s) => ({ key: s.key, label: s.label, command: `${s.env ? "env -u NODE_EXTRA_CA_CERTS " : ""}node ${s.args.join(" ")}`, ms: stats[s.key] })),
      pipelineMs,
    };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    process.stderr.write(`wrote ${file}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
