// npm run bench:live — `pias run` beside the proxies a user would otherwise
// pick, in one run, in the same network namespaces:
//
//   client 10.10.0.2 --- 10.10.0.1 proxy 10.20.1.1 --- 10.20.1.2 target
//
// (veth pairs with two RX and two TX queues at each end, for AF_XDP's second
// worker: veth puts a packet on the peer's queue numbered like the sender's
// TX queue, chosen per flow; the other peers do not see the queues).
//
// Peers (each set up in the proxy namespace, measured, torn down): pias on
// TUN in the variants of `PIAS_VARIANTS` below (plain with readv or io_uring;
// offloaded with 1 or 2 workers), pias on AF_XDP with 1 or 2 workers
// (bench/lib/xdp-peer.ts, where the build has it), HAProxy in TCP mode (TCP only: it does not proxy
// UDP), and the kernel's nftables DNAT/SNAT with conntrack.
// Loads: iperf3 TCP bulk with -P 4 (Gbit/s); a flood of 64-byte UDP frames
// (256 flows) from trafgen on one core, offered faster than any peer
// forwards, counted where they leave the client and where they reach the
// target's interface (which drops them at its ingress hook, so that the
// target's own stack, which veth runs on the sender's CPU, is not counted as
// the proxy's work): offered and received Mpps, loss. For pias also its CPU
// time per packet received (and its user-space share) and, on TUN, the
// system calls per packet (its metrics). Nothing leaves the namespaces this
// script creates and removes. Needs root, iperf3, nft, haproxy and trafgen.
//
// Environment: LIVE_SECONDS (per measurement, default 5), LIVE_REPS (default
// 3; the median is reported), LIVE_PEERS (comma-separated name fragments,
// default all), BENCH_OUT (default bench/results).

import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { netnsUnavailable, Topology, waitForLine } from "../test/helpers/netns.js";
import { xdpUnavailable } from "../src/io/xdp.js";
import { machine } from "./lib/machine.js";
import { markdownTable, num } from "./lib/table.js";
import { flood, measureXdp, type FloodFigures, type XdpSetup } from "./lib/xdp-peer.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CLI = join(ROOT, "dist", "src", "cli", "pias.cjs");
const SECONDS = Number(process.env.LIVE_SECONDS ?? 5);
const REPS = Number(process.env.LIVE_REPS ?? 3);
const OUT = resolve(process.env.BENCH_OUT ?? join(ROOT, "bench", "results"));
const TA = "198.51.100.10";
const TARGET = "10.20.1.2";
const PORT = 5201;
const KERNEL = "kernel nftables DNAT/SNAT";

/** pias on TUN: the daemon settings each variant runs with. */
const PIAS_VARIANTS: Record<string, Record<string, unknown>> = {
  "pias TUN plain (readv)": { tunIo: "readv", tunOffload: false, workers: 1 },
  "pias TUN plain (io_uring)": { tunIo: "uring", tunOffload: false, workers: 1 },
  "pias TUN offloaded, 1 worker": { tunIo: "auto", tunOffload: true, workers: 1 },
  "pias TUN offloaded, 2 workers": { tunIo: "auto", tunOffload: true, workers: 2 },
};

interface Figures {
  tcpGbps: number[];
  flood: FloodFigures | null;
  /** pias on TUN: system calls (read + write) per packet written, during the flood. */
  syscallsPerPacket: number | null;
}

const median = (xs: number[]): number => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);

class Bench {
  readonly topo = new Topology();
  readonly dir = mkdtempSync(join(tmpdir(), "pias-live-"));
  xdp!: XdpSetup;

  async setUp(): Promise<void> {
    const { topo } = this;
    topo.addNamespace("c");
    topo.addNamespace("p");
    topo.addNamespace("t");
    const [clientIf, proxyIn] = topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24", 1500, 2);
    const [proxyOut, targetIf] = topo.link("p", "10.20.1.1/24", "t", `${TARGET}/24`, 1500, 2);
    this.xdp = { cli: CLI, dir: this.dir, ta: TA, target: TARGET, clientIf, proxyIn, proxyOut, targetIf, seconds: SECONDS, reps: REPS };
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    topo.exec("t", ["ip", "route", "add", "default", "via", "10.20.1.1"]);
    topo.sysctl("p", "net.ipv4.ip_forward", "1");
    // a TCP socket keeps its TX queue (veth: the proxy's RX queue, so the AF_XDP worker owning its flow) after a timeout
    for (const ns of ["c", "t"]) topo.sysctl(ns, "net.core.txrehash", "0");
    await waitForLine(topo.start("t", ["iperf3", "-s", "-B", TARGET, "--forceflush"]), /Server listening/);
    topo.exec("c", ["ping", "-c", "1", "-W", "2", "10.10.0.1"]); // trafgen does no ARP
  }

  /** iperf3 -P 4 for SECONDS, REPS times: Gbit/s received. */
  tcp(label: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < REPS; i++) {
      let r = this.topo.run("c", ["iperf3", "-c", TA, "-P", "4", "-t", String(SECONDS), "-J"], undefined, (SECONDS + 30) * 1000);
      // iperf3 now and then ends without its summary on a loaded machine: once more
      if (r.status !== 0) r = this.topo.run("c", ["iperf3", "-c", TA, "-P", "4", "-t", String(SECONDS), "-J"], undefined, (SECONDS + 30) * 1000);
      const j = r.status === 0 ? JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number } }; error?: string } : null;
      if (!j?.end?.sum_received) throw new Error(`iperf3 (${label}): ${j?.error ?? `${r.stdout.slice(-400)} ${r.stderr}`}`);
      out.push(j.end.sum_received.bits_per_second / 1e9);
      process.stderr.write(`  ${label} TCP ${i + 1}: ${out.at(-1)!.toFixed(2)} Gbit/s\n`);
    }
    return out;
  }

  /** pias on TUN with `daemon` settings: TCP, then the flood with its system calls per packet. */
  async pias(name: string, daemon: Record<string, unknown>): Promise<Figures> {
    const config = join(this.dir, "pias.json");
    writeFileSync(config, JSON.stringify({
      proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
      capacity: { flows: 65536, groups: 4, targets: 4 },
      daemon: { tunName: "pias0", logLevel: "info", batch: 256, metrics: "127.0.0.1:9464", ...daemon },
      groups: [
        { protocol: "tcp", address: TA, port: PORT, targets: [{ address: TARGET, port: PORT }] },
        { protocol: "udp", address: TA, port: PORT, targets: [{ address: TARGET, port: PORT }] },
      ],
    }));
    const pias: ChildProcess = this.topo.start("p", [process.execPath, CLI, "run", "--config", config]);
    try {
      process.stderr.write(`${name}: ${await waitForLine(pias, /"msg":"ready"/)}\n`);
      const tcpGbps = this.tcp(name);
      const c0 = this.io();
      const f = flood(this.topo, this.xdp, name, pias.pid!);
      const c1 = this.io();
      const written = c1.written - c0.written;
      return { tcpGbps, flood: f, syscallsPerPacket: written > 0 ? (c1.readCalls + c1.writeCalls - c0.readCalls - c0.writeCalls) / written : null };
    } finally {
      pias.kill("SIGTERM");
      await new Promise((r) => pias.once("exit", r));
    }
  }

  /** pias's TUN counters (its metrics). */
  private io(): Record<string, number> {
    const text = this.topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
    const out: Record<string, number> = { written: 0, readCalls: 0, writeCalls: 0 };
    for (const m of text.matchAll(/^pias_io_packets_total\{event="(\w+)"\} (\S+)$/gm)) out[m[1]] = Number(m[2]);
    return out;
  }

  async haproxy(): Promise<Figures> {
    const cfg = join(this.dir, "haproxy.cfg");
    writeFileSync(cfg, [
      "global", "  maxconn 4096",
      "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 60s", "  timeout server 60s",
      "frontend live", `  bind ${TA}:${PORT}`, "  default_backend target",
      "backend target", `  server t ${TARGET}:${PORT}`, "",
    ].join("\n"));
    this.topo.exec("p", ["ip", "addr", "add", `${TA}/32`, "dev", "lo"]);
    const haproxy = this.topo.start("p", ["haproxy", "-db", "-f", cfg]);
    try {
      await new Promise((r) => setTimeout(r, 500));
      if (haproxy.exitCode !== null) throw new Error(`haproxy exited ${haproxy.exitCode}`);
      return { tcpGbps: this.tcp("HAProxy"), flood: null, syscallsPerPacket: null };
    } finally {
      haproxy.kill("SIGTERM");
      await new Promise((r) => haproxy.once("exit", r));
      this.topo.exec("p", ["ip", "addr", "del", `${TA}/32`, "dev", "lo"]);
    }
  }

  /** Measured last: its conntrack entries outlive the table. */
  kernel(): Figures {
    this.topo.exec("p", ["nft", "-f", "-"], `table ip pias_live {
      chain pre { type nat hook prerouting priority dstnat; ip daddr ${TA} tcp dport ${PORT} dnat to ${TARGET}:${PORT}; ip daddr ${TA} udp dport ${PORT} dnat to ${TARGET}:${PORT}; }
      chain post { type nat hook postrouting priority srcnat; ip daddr ${TARGET} snat to 10.20.1.1; }
    }`);
    try {
      return { tcpGbps: this.tcp("kernel"), flood: flood(this.topo, this.xdp, "kernel"), syscallsPerPacket: null };
    } finally {
      this.topo.exec("p", ["nft", "delete", "table", "ip", "pias_live"]);
    }
  }

  async destroy(): Promise<void> {
    await this.topo.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const why = netnsUnavailable();
  if (why) throw new Error(`bench:live cannot run here: ${why}`);
  for (const tool of ["iperf3", "nft", "haproxy", "trafgen", "curl"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`bench:live needs ${tool} (see .ci/run)`);
  }
  const only = process.env.LIVE_PEERS?.split(",").map((s) => s.trim().toLowerCase());
  const wanted = (name: string): boolean => !only || only.some((o) => name.toLowerCase().includes(o));
  const bench = new Bench();
  const results: Record<string, Figures> = {};
  let xdpMode: string | null = null;
  try {
    await bench.setUp();
    for (const [name, daemon] of Object.entries(PIAS_VARIANTS)) if (wanted(name)) results[name] = await bench.pias(name, daemon);
    const noXdp = xdpUnavailable();
    if (noXdp) process.stderr.write(`pias AF_XDP skipped: ${noXdp}\n`);
    else {
      for (const workers of [1, 2]) {
        const name = `pias AF_XDP, ${workers} worker${workers > 1 ? "s" : ""}`;
        if (!wanted(name)) continue;
        const x = await measureXdp(bench.topo, bench.xdp, () => bench.tcp(name), workers);
        results[name] = { tcpGbps: x.iperf, flood: x.flood, syscallsPerPacket: null };
        xdpMode = x.mode;
      }
    }
    if (wanted("haproxy")) results["HAProxy (TCP mode)"] = await bench.haproxy();
    if (wanted("nftables")) results[KERNEL] = bench.kernel();
  } finally {
    await bench.destroy();
  }
  const kernelTcp = results[KERNEL] ? median(results[KERNEL].tcpGbps) : NaN;
  const rows = Object.entries(results).map(([name, f]) => {
    const fl = f.flood;
    return [
      name,
      num(median(f.tcpGbps)),
      Number.isFinite(kernelTcp) ? num(median(f.tcpGbps) / kernelTcp) : "–",
      fl ? num(fl.offeredMpps) : "n/a",
      fl ? num(fl.receivedMpps) : "n/a",
      fl ? (100 * Math.max(0, 1 - fl.receivedMpps / fl.offeredMpps)).toFixed(1) : "n/a",
      fl?.cpuUsPerPacket != null ? `${fl.cpuUsPerPacket.toFixed(2)} (${fl.userUsPerPacket!.toFixed(2)})` : "",
      f.syscallsPerPacket != null ? f.syscallsPerPacket.toFixed(3) : "",
    ];
  });
  const table = markdownTable(
    ["peer", "TCP -P 4 Gbit/s", "x nftables", "UDP 64 B offered Mpps", "received Mpps", "loss %", "pias CPU µs/packet (user)", "TUN syscalls/packet"],
    rows, ["l", "r", "r", "r", "r", "r", "r", "r"]);
  const where = machine();
  console.log(`\n${table}\n\n${where.cpu}, ${where.cores} cores${xdpMode ? `; AF_XDP: ${xdpMode}` : ""}; iperf3 -P 4 and a trafgen flood (1 core, 256 flows), ${REPS} x ${SECONDS} s, median; load at the end ${(where.loadavg as number[]).join(" ")}`);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "live.json"), `${JSON.stringify({ generated: new Date().toISOString(), machine: where, seconds: SECONDS, reps: REPS, xdpMode, peers: results }, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(`bench:live: ${(e as Error).message}`);
  process.exitCode = 1;
});
