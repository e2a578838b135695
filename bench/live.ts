// npm run bench:live — `pias run` beside the proxies a user would otherwise
// pick, in one run, in the same network namespaces:
//
//   client 10.10.0.2 --- 10.10.0.1 proxy 10.20.1.1 --- 10.20.1.2 target
//
// Peers (each set up in the proxy namespace, measured, torn down): pias on
// TUN in the variants of `PIAS_VARIANTS` below (plain with readv or io_uring;
// offloaded with 1 or 2 workers), the kernel's nftables DNAT/SNAT with
// conntrack, and HAProxy in TCP mode (TCP only: it does not proxy UDP).
// Loads: iperf3 TCP bulk with -P 4 (Gbit/s); a flood of 64-byte UDP frames
// from trafgen (netsniff-ng) on the client's veth, offered faster than any
// peer forwards, counted where they arrive (the target's UDP InDatagrams +
// RcvbufErrors: one count per datagram, after any GRO segment is split) and
// where they left (the client veth's tx packets): received Mpps and loss.
// For pias also its own CPU time per forwarded packet and the TUN system
// calls per packet (its metrics). Nothing leaves the namespaces this script
// creates and removes. Needs root, iperf3, nft, haproxy and trafgen.
//
// Environment: LIVE_SECONDS (per measurement, default 5), LIVE_REPS (default
// 3; the median is reported), LIVE_PEERS (comma-separated names, default
// all), LIVE_SENDERS (trafgen processes, default 1), BENCH_OUT (default
// bench/results).

import { execFileSync, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { netnsUnavailable, Topology, waitForLine } from "../test/helpers/netns.js";
import { markdownTable, num } from "./lib/table.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const SECONDS = Number(process.env.LIVE_SECONDS ?? 5);
const REPS = Number(process.env.LIVE_REPS ?? 3);
const SENDERS = Number(process.env.LIVE_SENDERS ?? 1);
const OUT = resolve(process.env.BENCH_OUT ?? join(ROOT, "bench", "results"));
const TA = "198.51.100.10";
const TARGET = "10.20.1.2";
const PORT = 5201;
/** UDP source ports of the flood: this many flows (so that several workers get some). */
const UDP_FLOWS = 16;

/** pias variants: the daemon settings each one runs with. */
const PIAS_VARIANTS: Record<string, Record<string, unknown>> = {
  "pias TUN plain (readv)": { tunIo: "readv", tunOffload: false, workers: 1 },
  "pias TUN plain (io_uring)": { tunIo: "uring", tunOffload: false, workers: 1 },
  "pias TUN offloaded, 1 worker": { tunIo: "auto", tunOffload: true, workers: 1 },
  "pias TUN offloaded, 2 workers": { tunIo: "auto", tunOffload: true, workers: 2 },
};

interface Peer {
  name: string;
  /** Sets the peer up in the proxy namespace; returns the pid whose CPU time is the peer's own (pias only). */
  start(): Promise<number | undefined>;
  stop(): Promise<void>;
  udp: boolean;
  /** Reads the peer's counters (pias: its metrics), for syscalls per packet. */
  counters?(): Record<string, number>;
}

interface Figures {
  tcpGbps: number[];
  udpMpps: number[];
  udpLossPercent: number[];
  /** pias: its own CPU time (user + system, all threads) per packet the target received, µs. */
  cpuUsPerPacket: number[];
  /** pias: TUN system calls (read + write) per packet forwarded. */
  syscallsPerPacket: number[];
}

const median = (xs: number[]): number => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);

/** CPU seconds (user + system) a process has used so far, all its threads. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

class Bench {
  readonly topo = new Topology();
  readonly dir = mkdtempSync(join(tmpdir(), "pias-live-"));
  private clientIf = "";
  private proxyMac = "";
  private readonly keep: ChildProcess[] = [];

  async setUp(): Promise<void> {
    const { topo } = this;
    topo.addNamespace("c");
    topo.addNamespace("p");
    topo.addNamespace("t");
    const [ci, pi] = topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24");
    topo.link("p", "10.20.1.1/24", "t", `${TARGET}/24`);
    this.clientIf = ci;
    this.proxyMac = JSON.parse(topo.exec("p", ["ip", "-j", "link", "show", "dev", pi]))[0].address;
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    topo.exec("t", ["ip", "route", "add", "default", "via", "10.20.1.1"]);
    topo.sysctl("p", "net.ipv4.ip_forward", "1");
    const server = topo.start("t", ["iperf3", "-s", "-B", TARGET, "--forceflush"]);
    await waitForLine(server, /Server listening/);
    // the UDP sink: bound and never read; arrivals count as InDatagrams or RcvbufErrors
    const sink = topo.start("t", ["python3", "-c", `import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(("${TARGET}",${PORT}))\nprint("ready",flush=True)\ntime.sleep(1e9)`]);
    await waitForLine(sink, /ready/);
    this.keep.push(server, sink);
    // the client must know the proxy's MAC before trafgen, which does no ARP
    topo.exec("c", ["ping", "-c", "1", "-W", "2", "10.10.0.1"]);
  }

  tcp(): number {
    const r = this.topo.run("c", ["iperf3", "-c", TA, "-P", "4", "-t", String(SECONDS), "-J"], undefined, (SECONDS + 30) * 1000);
    if (r.status !== 0) throw new Error(`iperf3: ${r.stdout.slice(-400)} ${r.stderr}`);
    return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
  }

  /** Datagrams that reached the target's UDP socket layer. */
  private arrived(): number {
    const lines = this.topo.exec("t", ["cat", "/proc/net/snmp"]).split("\n").filter((l) => l.startsWith("Udp:"));
    const [names, values] = lines.map((l) => l.split(/\s+/).slice(1));
    const v = (k: string): number => Number(values[names.indexOf(k)]);
    return v("InDatagrams") + v("RcvbufErrors");
  }

  private sent(): number {
    return JSON.parse(this.topo.exec("c", ["ip", "-j", "-s", "link", "show", "dev", this.clientIf]))[0].stats64.tx.packets;
  }

  /** A flood of 64-byte frames (18 bytes of UDP payload) for SECONDS: { mpps, loss, received }. */
  udp(): { mpps: number; lossPercent: number; received: number } {
    const cfg = join(this.dir, "flood.cfg");
    writeFileSync(cfg, `{ eth(da=${this.proxyMac}, type=0x0800), ipv4(sa=10.10.0.2, da=${TA}, ttl=64, df), udp(sp=dinc(20000, ${20000 + UDP_FLOWS - 1}), dp=${PORT}), fill(0x41, 18) }\n`);
    const sent0 = this.sent();
    const got0 = this.arrived();
    const t0 = process.hrtime.bigint();
    const r = this.topo.run("c", ["timeout", "-s", "INT", String(SECONDS), "trafgen", "--dev", this.clientIf, "--conf", cfg, "--cpus", String(SENDERS), "--no-sock-mem", "--notouch-irq", "--no-cpu-stats"], undefined, (SECONDS + 20) * 1000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0 && r.status !== 124) throw new Error(`trafgen: exit ${r.status}: ${r.stderr.slice(-400)}`);
    spawnSync("sleep", ["0.3"]); // what is still in queues arrives
    const sent = this.sent() - sent0;
    const received = this.arrived() - got0;
    return { mpps: received / seconds / 1e6, lossPercent: sent > 0 ? (100 * (sent - Math.min(received, sent))) / sent : 0, received };
  }

  async measure(peer: Peer): Promise<Figures> {
    const f: Figures = { tcpGbps: [], udpMpps: [], udpLossPercent: [], cpuUsPerPacket: [], syscallsPerPacket: [] };
    const pid = await peer.start();
    try {
      for (let i = 0; i < REPS; i++) {
        f.tcpGbps.push(this.tcp());
        let note = `TCP ${f.tcpGbps.at(-1)!.toFixed(2)} Gbit/s`;
        if (peer.udp) {
          const cpu0 = pid ? cpuSeconds(pid) : 0;
          const c0 = peer.counters?.();
          const u = this.udp();
          f.udpMpps.push(u.mpps);
          f.udpLossPercent.push(u.lossPercent);
          note += `, UDP ${u.mpps.toFixed(3)} Mpps received (${u.lossPercent.toFixed(1)}% lost)`;
          if (pid && u.received > 0) {
            f.cpuUsPerPacket.push(((cpuSeconds(pid) - cpu0) / u.received) * 1e6);
            note += `, ${f.cpuUsPerPacket.at(-1)!.toFixed(2)} µs CPU/packet`;
          }
          const c1 = peer.counters?.();
          if (c0 && c1 && c1.written > c0.written) {
            f.syscallsPerPacket.push((c1.readCalls + c1.writeCalls - c0.readCalls - c0.writeCalls) / (c1.written - c0.written));
            note += `, ${f.syscallsPerPacket.at(-1)!.toFixed(3)} syscalls/packet`;
          }
        }
        process.stderr.write(`  ${peer.name} run ${i + 1}: ${note}\n`);
      }
    } finally {
      await peer.stop();
    }
    return f;
  }

  piasPeer(name: string, daemon: Record<string, unknown>): Peer {
    let pias: ChildProcess | undefined;
    const config = join(this.dir, "pias.json");
    return {
      name,
      udp: true,
      start: async () => {
        writeFileSync(config, JSON.stringify({
          proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
          capacity: { flows: 65536, groups: 4, targets: 4 },
          daemon: { tunName: "pias0", logLevel: "info", batch: 256, metrics: "127.0.0.1:9464", ...daemon },
          groups: [
            { protocol: "tcp", address: TA, port: PORT, targets: [{ address: TARGET, port: PORT }] },
            { protocol: "udp", address: TA, port: PORT, targets: [{ address: TARGET, port: PORT }] },
          ],
        }));
        pias = this.topo.start("p", [process.execPath, CLI, "run", "--config", config]);
        const ready = await waitForLine(pias, /"msg":"ready"/);
        process.stderr.write(`${name}: ${ready}\n`);
        return pias.pid;
      },
      stop: async () => {
        pias!.kill("SIGTERM");
        await new Promise((r) => pias!.once("exit", r));
      },
      counters: () => {
        const text = this.topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
        const out: Record<string, number> = {};
        for (const m of text.matchAll(/^pias_io_packets_total\{event="(\w+)"\} (\S+)$/gm)) out[m[1]] = Number(m[2]);
        return out;
      },
    };
  }

  nftPeer(): Peer {
    return {
      name: "kernel nftables DNAT/SNAT",
      udp: true,
      start: async () => {
        this.topo.exec("p", ["nft", "-f", "-"], `table ip pias_live {
          chain pre { type nat hook prerouting priority dstnat; ip daddr ${TA} tcp dport ${PORT} dnat to ${TARGET}:${PORT}; ip daddr ${TA} udp dport ${PORT} dnat to ${TARGET}:${PORT}; }
          chain post { type nat hook postrouting priority srcnat; ip daddr ${TARGET} snat to 10.20.1.1; }
        }`);
        return undefined;
      },
      stop: async () => {
        // (its conntrack entries stay until they time out: it is measured last)
        this.topo.exec("p", ["nft", "delete", "table", "ip", "pias_live"]);
      },
    };
  }

  haproxyPeer(): Peer {
    let haproxy: ChildProcess | undefined;
    return {
      name: "HAProxy (TCP mode)",
      udp: false,
      start: async () => {
        const cfg = join(this.dir, "haproxy.cfg");
        writeFileSync(cfg, [
          "global", "  maxconn 4096",
          "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 60s", "  timeout server 60s",
          "frontend live", `  bind ${TA}:${PORT}`, "  default_backend target",
          "backend target", `  server t ${TARGET}:${PORT}`, "",
        ].join("\n"));
        this.topo.exec("p", ["ip", "addr", "add", `${TA}/32`, "dev", "lo"]);
        haproxy = this.topo.start("p", ["haproxy", "-db", "-f", cfg]);
        await new Promise((r) => setTimeout(r, 500));
        if (haproxy.exitCode !== null) throw new Error(`haproxy exited ${haproxy.exitCode}`);
        return undefined;
      },
      stop: async () => {
        haproxy!.kill("SIGTERM");
        await new Promise((r) => haproxy!.once("exit", r));
        this.topo.exec("p", ["ip", "addr", "del", `${TA}/32`, "dev", "lo"]);
      },
    };
  }

  async destroy(): Promise<void> {
    await this.topo.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function machine(): Record<string, unknown> {
  const sh = (cmd: string, args: string[]): string => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8", cwd: ROOT }).trim();
    } catch {
      return "unknown";
    }
  };
  return {
    uname: sh("uname", ["-a"]),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
    commit: sh("git", ["rev-parse", "HEAD"]),
    dirty: sh("git", ["status", "--porcelain", "--untracked-files=no"]) !== "",
  };
}

async function main(): Promise<void> {
  const why = netnsUnavailable();
  if (why) throw new Error(`bench:live cannot run here: ${why}`);
  for (const tool of ["iperf3", "nft", "haproxy", "trafgen", "python3", "curl"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`bench:live needs ${tool} (see .ci/run)`);
  }
  const bench = new Bench();
  const loadBefore = loadavg();
  const results: Record<string, Figures> = {};
  try {
    await bench.setUp();
    const peers = [...Object.entries(PIAS_VARIANTS).map(([name, d]) => bench.piasPeer(name, d)), bench.haproxyPeer(), bench.nftPeer()];
    const only = process.env.LIVE_PEERS?.split(",").map((s) => s.trim().toLowerCase());
    for (const peer of peers) {
      if (only && !only.some((o) => peer.name.toLowerCase().includes(o))) continue;
      process.stderr.write(`${peer.name}, ${REPS} x ${SECONDS} s each\n`);
      results[peer.name] = await bench.measure(peer);
    }
  } finally {
    await bench.destroy();
  }
  const kernel = results["kernel nftables DNAT/SNAT"];
  const rows = Object.entries(results).map(([name, f]) => [
    name,
    num(median(f.tcpGbps)),
    kernel ? num(median(f.tcpGbps) / median(kernel.tcpGbps)) : "–",
    f.udpMpps.length ? num(median(f.udpMpps)) : "n/a",
    f.udpLossPercent.length ? median(f.udpLossPercent).toFixed(1) : "n/a",
    f.cpuUsPerPacket.length ? median(f.cpuUsPerPacket).toFixed(2) : "",
    f.syscallsPerPacket.length ? median(f.syscallsPerPacket).toFixed(3) : "",
  ]);
  const table = markdownTable(
    ["peer", "TCP -P 4 Gbit/s", "x nftables", "UDP 64 B Mpps received", "UDP loss %", "pias CPU µs/packet", "TUN syscalls/packet"],
    rows, ["l", "r", "r", "r", "r", "r", "r"]);
  const info = { ...machine(), loadBefore, loadAfter: loadavg() };
  console.log(`\n${table}\n\n${info.cpu}, ${info.cores} cores; iperf3 -P 4 and trafgen (${SENDERS} sender${SENDERS > 1 ? "s" : ""}, ${UDP_FLOWS} flows) ${REPS} x ${SECONDS} s, median; load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`);
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "live.json"), `${JSON.stringify({ generated: new Date().toISOString(), machine: info, seconds: SECONDS, reps: REPS, senders: SENDERS, udpFlows: UDP_FLOWS, peers: results }, null, 2)}\n`);
}

main().catch((e: unknown) => {
  console.error(`bench:live: ${(e as Error).message}`);
  process.exitCode = 1;
});
