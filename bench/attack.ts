// npm run bench:attack — `pias run` under the attacks of issue 14, live, in
// network namespaces this script creates and removes (nothing leaves the
// machine; needs root, hping3, python3, curl):
//
//   legit client c 10.10.0.2 --+                      +-- target t 10.20.1.2 (python3 http.server :8080)
//                              +-- proxy p (pias, TUN) --+
//   attacker a 10.11.0.2 ------+   10.255.0.1, anycast 198.51.100.0/24
//
// 1. SYN flood: hping3 sends spoofed SYNs (random sources) to the group's TA
//    for SYN_SECONDS while the client opens a new connection every 200 ms;
//    then the client tries for 2 s more. Legit success rate during and after.
// 2. Random-TA flood, cluster mode: UDP to random addresses and ports of the
//    anycast prefix for FLOOD_SECONDS (hping3 --rand-dest); pias's RSS idle,
//    at its peak and 15 s after, its log bytes, and how long a metrics scrape
//    takes meanwhile.
// 3. Joins: 200 signed JOINs a second (from 100 source addresses) to a
//    cluster group for JOIN_SECONDS while the client's requests to a static
//    group are timed: latency of every request.
// 4. Join/install consistency: more joins than the data plane has target
//    slots; JOIN_ACKs accepted and refused (with their reason) against the
//    targets the JAP counts and the data plane holds.
// 5. What a join costs the data plane (in process, no namespaces): one
//    target added to, a batch of 20 added to, and one removed from a group
//    of 1,000, 10,000 and 100,000 targets (its selection table updated).
//
// Figures go to stdout and bench/results/attack.json (with the machine, the
// commit and the load). Environment: SYN_SECONDS (25), SYN_INTERVAL_US
// (hping3 -i, 40), FLOOD_SECONDS (60), FLOOD_INTERVAL_US (50), JOIN_SECONDS
// (30), JOIN_RATE (200), ATTACK_ONLY (comma list of 1-5), BENCH_OUT, and
// ATTACK_DEBUG=1 (where pias's resident memory grew, by mapping).

import { execSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { netnsUnavailable, Topology, waitForLine } from "../test/helpers/netns.js";
import { DataPlane } from "../src/core/dataplane.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CLI = join(ROOT, "dist", "src", "cli", "pias.cjs");
const PROBE = join(ROOT, "bench", "lib", "attack-probe.ts");
const OUT = resolve(process.env.BENCH_OUT ?? join(ROOT, "bench", "results"));
const env = (name: string, dflt: number): number => Number(process.env[name] ?? dflt);
const SYN_SECONDS = env("SYN_SECONDS", 25);
const SYN_INTERVAL_US = env("SYN_INTERVAL_US", 40);
const FLOOD_SECONDS = env("FLOOD_SECONDS", 60);
const FLOOD_INTERVAL_US = env("FLOOD_INTERVAL_US", 50);
const JOIN_SECONDS = env("JOIN_SECONDS", 30);
const JOIN_RATE = env("JOIN_RATE", 200);
const ONLY = new Set((process.env.ATTACK_ONLY ?? "1,2,3,4,5").split(",").map((s) => s.trim()));

const TA = "198.51.100.10";
const JOIN_TA = "198.51.100.20";
const TARGET = "10.20.1.2";
const PROXY = "10.255.0.1";
const CONTROL_PORT = 7470;
const JOIN_KEY = "a7".repeat(32);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Resident kB per mapping (address range start + name), for ATTACK_DEBUG. */
function smaps(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let cur = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) cur = `${head[1]} ${(parseInt(head[2], 16) - parseInt(head[1], 16)) >> 10}k ${head[3]}`;
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) out.set(cur, Number(m[1]));
  }
  return out;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

class Bench {
  readonly topo = new Topology();
  readonly dir = mkdtempSync(join(tmpdir(), "pias-attack-"));
  private pias: ChildProcess | null = null;
  logBytes = 0;
  /** pias's log (ATTACK_DEBUG only, first MiB). */
  logText = "";
  attackIface = "";

  setup(): void {
    const t = this.topo;
    for (const n of ["c", "a", "p", "t"]) t.addNamespace(n);
    t.link("c", "10.10.0.2/24", "p", "10.10.0.1/24");
    [this.attackIface] = t.link("a", "10.11.0.2/24", "p", "10.11.0.1/24");
    t.link("p", "10.20.1.1/24", "t", `${TARGET}/24`);
    t.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    t.exec("a", ["ip", "route", "add", "default", "via", "10.11.0.1"]);
    t.exec("t", ["ip", "route", "add", "default", "via", "10.20.1.1"]);
    // replies to spoofed sources vanish at the proxy, silently (no ICMP back into the TUN)
    t.exec("p", ["ip", "route", "add", "blackhole", "default"]);
    // join sources: a /16 the attacker's namespace answers for (AnyIP), routed to it
    t.exec("a", ["ip", "route", "add", "local", "10.77.0.0/16", "dev", "lo"]);
    t.exec("p", ["ip", "route", "add", "10.77.0.0/16", "via", "10.11.0.2"]);
    t.sysctl("t", "net.ipv4.tcp_syncookies", "1");
    const server = t.start("t", ["python3", "-m", "http.server", "8080", "--bind", TARGET, "--directory", this.dir]);
    // it logs a line per request: read them, or a full pipe stalls the server
    server.stdout!.resume();
    server.stderr!.resume();
    writeFileSync(join(this.dir, "index.html"), "ok\n");
  }

  async startPias(name: string, config: object): Promise<number> {
    const path = join(this.dir, `${name}.json`);
    writeFileSync(path, JSON.stringify(config));
    const p = this.topo.start("p", [process.execPath, CLI, "run", "--config", path]);
    this.logBytes = 0;
    this.logText = "";
    const keep = (b: Buffer): void => {
      this.logBytes += b.length;
      if (process.env.ATTACK_DEBUG && this.logText.length < 1 << 20) this.logText += b.toString();
    };
    p.stdout!.on("data", keep);
    p.stderr!.on("data", keep);
    await waitForLine(p, /"msg":"ready"/, 30_000);
    this.pias = p;
    // the target answers through pias before anything is measured
    for (let i = 0; i < 50; i++) {
      if (this.topo.run("c", ["curl", "-s", "--max-time", "1", `http://${TA}/`]).status === 0) break;
      await sleep(200);
    }
    return p.pid!;
  }

  async stopPias(): Promise<void> {
    const p = this.pias;
    if (process.env.ATTACK_DEBUG) for (const l of this.logText.split("\n")) if (l && !/"level":30/.test(l)) log(`   pias: ${l.slice(0, 300)}`);
    if (!p || p.exitCode !== null) return;
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
    this.pias = null;
  }

  metrics(): { text: string; ms: number } {
    const t0 = performance.now();
    const r = this.topo.run("p", ["curl", "-s", "--max-time", "10", "http://127.0.0.1:9464/metrics"]);
    return { text: r.stdout, ms: performance.now() - t0 };
  }

  metric(text: string, name: string, label?: string): number {
    return text.split("\n").filter((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && (!label || l.includes(label)))
      .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  }

  drops(text: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const l of text.split("\n")) {
      const m = /^pias_dropped_packets_total\{reason="([^"]+)"\} (\d+)/.exec(l);
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  }

  /** Run the probe in namespace `ns` in the background; resolves with its JSON line. */
  probe<T>(ns: string, mode: string, args: object): Promise<T> {
    const p = this.topo.start(ns, [process.execPath, "--import", "tsx", PROBE, mode, JSON.stringify(args)], { cwd: ROOT });
    let out = "";
    let err = "";
    p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    p.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    return new Promise((res, rej) => p.once("exit", (code) => (code === 0 ? res(JSON.parse(out.trim().split("\n").pop()!)) : rej(new Error(`probe ${mode}: exit ${code}: ${err}`)))));
  }

  hping(args: string[]): ChildProcess {
    const p = this.topo.start("a", ["hping3", "-q", ...args]);
    p.stdout!.resume();
    p.stderr!.resume();
    return p;
  }

  async destroy(): Promise<void> {
    await this.stopPias();
    await this.topo.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const baseConfig = (extra: object = {}) => ({
  proxy: { address: PROXY, anycastPrefixes: ["198.51.100.0/24"] },
  capacity: { flows: 1 << 20, groups: 64, targets: 16384 },
  daemon: { tunName: "pias0", metrics: "127.0.0.1:9464", logLevel: "info", drainMs: 0 },
  groups: [{ protocol: "tcp", address: TA, port: 80, policy: "round-robin", targets: [{ address: TARGET, port: 8080 }] }],
  ...extra,
});
const cluster = {
  id: "p1", controlPort: CONTROL_PORT, key: "c1".repeat(32),
  groups: [{ protocol: "tcp", address: JOIN_TA, port: 80, joinKey: JOIN_KEY }],
};

type Requests = { requests: { at: number; ok: boolean; ms: number }[] };

async function synFlood(b: Bench): Promise<object> {
  await b.startPias("syn", baseConfig());
  log(`1. SYN flood: hping3 -S --rand-source -i u${SYN_INTERVAL_US} for ${SYN_SECONDS} s, a new connection every 200 ms`);
  const flood = b.hping(["-S", "-p", "80", "--rand-source", "-i", `u${SYN_INTERVAL_US}`, TA]);
  const during = await b.probe<Requests>("c", "http", { host: TA, port: 80, everyMs: 200, seconds: SYN_SECONDS, timeoutMs: 3000 });
  const mid = b.metrics().text;
  flood.kill("SIGKILL");
  await new Promise((r) => flood.once("exit", r));
  const after = await b.probe<Requests>("c", "http", { host: TA, port: 80, everyMs: 100, seconds: 2, timeoutMs: 3000 });
  const m = b.metrics().text;
  await b.stopPias();
  const rate = (r: Requests) => r.requests.filter((x) => x.ok).length / Math.max(1, r.requests.length);
  const figures = {
    floodSeconds: SYN_SECONDS, hpingIntervalUs: SYN_INTERVAL_US,
    synsSeen: b.metric(m, "pias_flows_created_total"),
    duringSuccess: rate(during), duringRequests: during.requests.length,
    afterSuccess: rate(after), afterRequests: after.requests.length,
    duringP99Ms: percentile(during.requests.filter((x) => x.ok).map((x) => x.ms), 99),
    flowsLiveDuringFlood: b.metric(mid, "pias_flows_live"),
    drops: b.drops(m),
    goal: "during >= 90%, after (first 2 s) 100%",
  };
  log(`   legit success ${(figures.duringSuccess * 100).toFixed(1)}% during (${figures.duringRequests} requests), ${(figures.afterSuccess * 100).toFixed(1)}% in the 2 s after; ${figures.synsSeen} flows created; drops ${JSON.stringify(figures.drops)}`);
  return figures;
}

async function randomTaFlood(b: Bench): Promise<object> {
  const pid = await b.startPias("flood", baseConfig({ cluster }));
  log(`2. random-TA flood (cluster mode): hping3 --udp --rand-dest -i u${FLOOD_INTERVAL_US} for ${FLOOD_SECONDS} s`);
  await sleep(5000);
  const cold = rssMiB(pid);
  // warm-up: 5 s of the same flood, so the baseline includes the compiled (tiered-up) code, then settle
  const warm = b.hping(["--udp", "--rand-dest", "-I", b.attackIface, "-p", "++1024", "-i", `u${FLOOD_INTERVAL_US}`, "198.51.100.x"]);
  await sleep(5000);
  warm.kill("SIGKILL");
  await new Promise((r) => warm.once("exit", r));
  const warmPeak = rssMiB(pid);
  await sleep(15_000);
  const idleSamples: number[] = [];
  for (let i = 0; i < 8; i++) {
    idleSamples.push(rssMiB(pid));
    await sleep(250);
  }
  const idle = percentile(idleSamples, 50);
  const mapsIdle = process.env.ATTACK_DEBUG ? smaps(pid) : null;
  const logBefore = b.logBytes;
  const flood = b.hping(["--udp", "--rand-dest", "-I", b.attackIface, "-p", "++1024", "-i", `u${FLOOD_INTERVAL_US}`, "198.51.100.x"]);
  let peak = idle;
  const scrapes: number[] = [];
  const t0 = Date.now();
  let nextScrape = t0 + 5000;
  while (Date.now() - t0 < FLOOD_SECONDS * 1000) {
    peak = Math.max(peak, rssMiB(pid));
    if (Date.now() >= nextScrape) {
      scrapes.push(b.metrics().ms);
      nextScrape += 5000;
    }
    await sleep(250);
  }
  flood.kill("SIGKILL");
  await new Promise((r) => flood.once("exit", r));
  const logFlood = b.logBytes - logBefore;
  await sleep(15_000);
  const after = rssMiB(pid);
  const m = b.metrics().text;
  if (mapsIdle) {
    const now = smaps(pid);
    const grew = [...now].map(([k, v]) => [k, v - (mapsIdle.get(k) ?? 0)] as const).filter(([, d]) => Math.abs(d) >= 256).sort((x, y) => y[1] - x[1]);
    const sum = (f: (k: string) => boolean) => grew.filter(([k]) => f(k)).reduce((n, [, d]) => n + d, 0);
    log(`   grew: V8 heap pages (256k) ${sum((k) => / 256k $/.test(k))} kB (${grew.filter(([k]) => / 256k $/.test(k)).length}), other anon ${sum((k) => / \d+k $/.test(k) && !/ 256k $/.test(k))} kB, named ${sum((k) => !/ \d+k $/.test(k))} kB`);
  }
  await b.stopPias();
  const figures = {
    floodSeconds: FLOOD_SECONDS, hpingIntervalUs: FLOOD_INTERVAL_US,
    packets: b.metric(m, "pias_packets_total"),
    toHost: b.metric(m, "pias_cluster_packets_total", 'event="unresolved"'),
    drops: b.drops(m),
    rssColdMiB: cold, rssAfterWarmUpMiB: warmPeak, rssIdleMiB: idle, rssPeakMiB: peak, rssAfterMiB: after,
    peakOverIdle: peak / idle, afterOverIdle: after / idle,
    logBytesDuringFlood: logFlood,
    metricsScrapeMaxMs: Math.max(0, ...scrapes),
    iapCacheEntries: b.metric(m, "pias_iap_cache_entries"),
    goal: "peak < 2x idle, after within 10% of idle (idle: after a 5 s warm-up flood and 15 s quiet)",
  };
  log(`   RSS cold ${cold.toFixed(1)} MiB, after a 5 s warm-up flood ${warmPeak.toFixed(1)} MiB; idle ${idle.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB (${figures.peakOverIdle.toFixed(2)}x), after ${after.toFixed(1)} MiB; ${figures.packets} packets (${figures.toHost} to the host), log ${logFlood} bytes, slowest scrape ${figures.metricsScrapeMaxMs.toFixed(0)} ms`);
  return figures;
}

async function joinStorm(b: Bench): Promise<object> {
  await b.startPias("joins", baseConfig({ cluster: { ...cluster, joinsPerSecond: Math.max(JOIN_RATE, 200) } }));
  log(`3. ${JOIN_RATE} joins/s for ${JOIN_SECONDS} s to a cluster group, while a static group's requests are timed (one every 20 ms)`);
  const quiet = await b.probe<Requests>("c", "http", { host: TA, port: 80, everyMs: 20, seconds: 5, timeoutMs: 2000 });
  const joins = b.probe<{ sent: number; accepted: number; refused: Record<string, number> }>("a", "joins", {
    anycast: "198.51.100.1", port: CONTROL_PORT, group: `tcp:${JOIN_TA}:80`, keyHex: JOIN_KEY, rate: JOIN_RATE, count: JOIN_RATE * JOIN_SECONDS,
    sources: 100, sourcePrefix: "10.77", targetPrefix: "10.88", waitMs: 2000,
  });
  const timed = await b.probe<Requests>("c", "http", { host: TA, port: 80, everyMs: 20, seconds: JOIN_SECONDS, timeoutMs: 2000 });
  const j = await joins;
  const m = b.metrics().text;
  await b.stopPias();
  const ms = timed.requests.filter((x) => x.ok).map((x) => x.ms);
  if (process.env.ATTACK_DEBUG) log(`   slow or failed (at ms: ms): ${timed.requests.filter((x) => !x.ok || x.ms > 100).map((x) => `${x.at}:${x.ok ? x.ms : "x"}`).join(" ")}`);
  const figures = {
    joinRate: JOIN_RATE, joinSeconds: JOIN_SECONDS, joinsSent: j.sent, joinsAccepted: j.accepted, joinsRefused: j.refused,
    // the joined targets send no keepalives: those joined over 30 s before the end have expired
    targetsLiveAtEnd: b.metric(m, "pias_jap_targets"),
    requests: timed.requests.length, failed: timed.requests.filter((x) => !x.ok).length,
    latencyMs: { p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms) },
    quietLatencyMs: { p50: percentile(quiet.requests.map((x) => x.ms), 50), max: Math.max(...quiet.requests.map((x) => x.ms)) },
    over100ms: ms.filter((x) => x > 100).length,
    drops: b.drops(m),
    io: Object.fromEntries(m.split("\n").flatMap((l) => {
      const x = /^pias_io_packets_total\{event="([^"]+)"\} (\d+)/.exec(l);
      return x ? [[x[1], Number(x[2])]] : [];
    })),
    goal: "no request over 100 ms",
  };
  log(`   ${figures.requests} requests: p50 ${figures.latencyMs.p50} ms, p99 ${figures.latencyMs.p99} ms, max ${figures.latencyMs.max} ms (${figures.over100ms} over 100 ms, ${figures.failed} failed; quiet max ${figures.quietLatencyMs.max} ms); ${j.accepted} of ${j.sent} joins accepted, ${figures.targetsLiveAtEnd} targets live at the end; drops ${JSON.stringify(figures.drops)}; io ${JSON.stringify(figures.io)}`);
  return figures;
}

async function consistency(b: Bench): Promise<object> {
  const slots = 200;
  await b.startPias("consistency", baseConfig({ capacity: { flows: 65536, groups: 64, targets: slots }, cluster }));
  log(`4. join/install consistency: 300 joins, ${slots} target slots (1 used by the static group)`);
  const j = await b.probe<{ sent: number; accepted: number; refused: Record<string, number> }>("a", "joins", {
    anycast: "198.51.100.1", port: CONTROL_PORT, group: `tcp:${JOIN_TA}:80`, keyHex: JOIN_KEY, rate: 200, count: 300,
    sources: 100, sourcePrefix: "10.77", targetPrefix: "10.89", waitMs: 2000,
  });
  const m = b.metrics().text;
  await b.stopPias();
  const installed = b.metric(m, "pias_jap_targets");
  // targets the data plane holds for the group: one pias_target_up line each
  const dataPlane = m.split("\n").filter((l) => l.startsWith("pias_target_up{") && l.includes(`group="tcp ${JOIN_TA}:80"`)).length;
  const refused = Object.values(j.refused).reduce((a, x) => a + x, 0);
  const figures = {
    joinsSent: j.sent, acceptedAcks: j.accepted, refusedAcks: j.refused, japTargets: installed, dataPlaneTargets: dataPlane,
    installRefused: b.metric(m, "pias_cluster_packets_total", 'event="installRefused"'),
    consistent: j.accepted === installed && installed === dataPlane && j.accepted + refused === j.sent,
  };
  log(`   ${j.accepted} accepted, refused ${JSON.stringify(j.refused)}; JAP counts ${installed}, data plane holds ${dataPlane}: ${figures.consistent ? "consistent" : "INCONSISTENT"}`);
  return figures;
}

function tableUpdates(): object {
  log("5. what a join costs the data plane: one target added, 20 added at once, one removed (ms, median of 20)");
  const rows: object[] = [];
  for (const n of [1000, 10_000, 100_000]) {
    const dp = new DataPlane({ address: PROXY, capacity: { flows: 1024, groups: 4, targets: 200_000 } });
    const ep = (i: number) => ({ address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 80 });
    const key = dp.addGroup({ protocol: "tcp", address: TA, port: 80, targets: Array.from({ length: n }, (_, i) => ep(i)) });
    const time = (f: () => void): number => {
      const xs: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        f();
        xs.push(performance.now() - t0);
      }
      return Math.round(percentile(xs, 50) * 100) / 100;
    };
    let next = n;
    const addOne = time(() => dp.addTarget(key, ep(next++)));
    const addBatch = time(() => void dp.updateTargets(key, [], Array.from({ length: 20 }, () => ep(next++))));
    let gone = n;
    const removeOne = time(() => {
      const e = ep(gone++);
      dp.removeTarget(key, `${e.address}:80`);
    });
    rows.push({ targets: n, addOneMs: addOne, addTwentyMs: addBatch, removeOneMs: removeOne });
    log(`   ${n} targets: add one ${addOne} ms, add 20 ${addBatch} ms, remove one ${removeOne} ms`);
  }
  return { rows };
}

async function main(): Promise<void> {
  const why = netnsUnavailable();
  if (why) throw new Error(`bench:attack cannot run here: ${why}`);
  for (const tool of ["hping3", "python3", "curl"]) execSync(`command -v ${tool}`, { stdio: "ignore" });
  const b = new Bench();
  const results: Record<string, object> = {};
  try {
    b.setup();
    if (ONLY.has("1")) results.synFlood = await synFlood(b);
    if (ONLY.has("2")) results.randomTaFlood = await randomTaFlood(b);
    if (ONLY.has("3")) results.joinStorm = await joinStorm(b);
    if (ONLY.has("4")) results.joinInstallConsistency = await consistency(b);
    if (ONLY.has("5")) results.tableUpdates = tableUpdates();
  } finally {
    await b.destroy();
  }
  const machine = {
    uname: execSync("uname -a").toString().trim(),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
    load: execSync("uptime").toString().trim(),
  };
  let commit = "unknown";
  try {
    commit = execSync("git rev-parse HEAD", { cwd: ROOT }).toString().trim();
  } catch {
    // not a git checkout
  }
  mkdirSync(OUT, { recursive: true });
  const report = { generated: new Date().toISOString(), commit, machine, ...results };
  writeFileSync(join(OUT, "attack.json"), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
}

main().catch((e: unknown) => {
  console.error(`bench:attack: ${(e as Error).message}`);
  process.exitCode = 1;
});
