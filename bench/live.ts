// npm run bench:live — packets/s and Gbit/s through `pias run` (TUN) and,
// in the same topology and run, through the Linux kernel doing the same NAT
// with nftables DNAT/SNAT + conntrack:
//
//   client 10.10.0.2 --- 10.10.0.1 proxy 10.20.1.1 --- 10.20.1.2 target (iperf3 -s)
//
// Each path is measured with iperf3: TCP (bulk, Gbit/s) and a UDP flood of
// small datagrams (packets/s received by the target). Both run in namespaces
// this script creates and removes; nothing leaves the machine. Needs root,
// iperf3 and nft.
//
// Environment: LIVE_SECONDS (per measurement, default 5), LIVE_UDP_LEN
// (datagram payload bytes, default 18: 64-byte Ethernet frames), LIVE_REPS
// (default 3; the median is reported), BENCH_OUT (default bench/results).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import { netnsUnavailable, Topology, waitForLine } from "../test/helpers/netns.js";
import { flood, measureXdp, reportXdp, type XdpSetup } from "./lib/xdp-peer.js";
import { xdpUnavailable } from "../src/io/xdp.js";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CLI = join(ROOT, "dist", "src", "cli", "main.js");
const SECONDS = Number(process.env.LIVE_SECONDS ?? 5);
const UDP_LEN = Number(process.env.LIVE_UDP_LEN ?? 18);
const REPS = Number(process.env.LIVE_REPS ?? 3);
const OUT = resolve(process.env.BENCH_OUT ?? join(ROOT, "bench", "results"));
const TA = "198.51.100.10";
const TARGET = "10.20.1.2";

interface Figures {
  tcpGbps: number;
  udpMpps: number;
  udpLossPercent: number;
  /** pias only: packets the data plane handled per second of its own CPU time (user + system) during the UDP flood. */
  udpMppsPerCpuSecond?: number;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function iperf(topo: Topology, args: string[]): Record<string, any> {
  const r = topo.run("c", ["iperf3", "-c", TA, "-t", String(SECONDS), "-J", ...args], undefined, (SECONDS + 30) * 1000);
  if (r.status !== 0) throw new Error(`iperf3 ${args.join(" ")}: ${r.stdout.slice(-500)} ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function measure(topo: Topology, label: string, piasPid?: number): Figures {
  const tcp: number[] = [];
  const udp: number[] = [];
  const loss: number[] = [];
  const perCpu: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t = iperf(topo, []);
    tcp.push(t.end.sum_received.bits_per_second / 1e9);
    const cpu0 = piasPid ? cpuSeconds(piasPid) : 0;
    const u = iperf(topo, ["-u", "-b", "0", "-l", String(UDP_LEN)]);
    const s = u.end.sum;
    udp.push((s.packets - s.lost_packets) / s.seconds / 1e6);
    loss.push(s.lost_percent);
    let note = "";
    if (piasPid) {
      // every datagram the target received went through pias (plus the few iperf3 control packets)
      perCpu.push((s.packets - s.lost_packets) / (cpuSeconds(piasPid) - cpu0) / 1e6);
      note = `, pias ${perCpu.at(-1)!.toFixed(3)} Mpps per CPU second`;
    }
    process.stderr.write(`  ${label} run ${i + 1}: TCP ${tcp.at(-1)!.toFixed(2)} Gbit/s, UDP ${udp.at(-1)!.toFixed(3)} Mpps received (${s.lost_percent.toFixed(1)}% lost)${note}\n`);
  }
  return { tcpGbps: median(tcp), udpMpps: median(udp), udpLossPercent: median(loss), ...(perCpu.length ? { udpMppsPerCpuSecond: median(perCpu) } : {}) };
}

async function main(): Promise<void> {
  const why = netnsUnavailable();
  if (why) throw new Error(`bench:live cannot run here: ${why}`);
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-live-"));
  let pias: ChildProcess | undefined;
  try {
    topo.addNamespace("c");
    topo.addNamespace("p");
    topo.addNamespace("t");
    const [clientIf, proxyIn] = topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24");
    const [proxyOut, targetIf] = topo.link("p", "10.20.1.1/24", "t", `${TARGET}/24`);
    const xdp: XdpSetup = { cli: CLI, dir, ta: TA, target: TARGET, clientIf, proxyIn, proxyOut, targetIf, seconds: SECONDS, reps: REPS };
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    topo.exec("t", ["ip", "route", "add", "default", "via", "10.20.1.1"]);
    const server = topo.start("t", ["iperf3", "-s", "-B", TARGET, "--forceflush"]);
    await waitForLine(server, /Server listening/);

    // pias: the TA's TCP and UDP port 5201 to the target
    const config = join(dir, "pias.json");
    writeFileSync(config, JSON.stringify({
      proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
      capacity: { flows: 65536, groups: 4, targets: 4 },
      daemon: { tunName: "pias0", logLevel: "warn", batch: 256 },
      groups: [
        { protocol: "tcp", address: TA, port: 5201, targets: [{ address: TARGET, port: 5201 }] },
        { protocol: "udp", address: TA, port: 5201, targets: [{ address: TARGET, port: 5201 }] },
      ],
    }));
    pias = topo.start("p", [process.execPath, CLI, "run", "--config", config]);
    await new Promise((r) => setTimeout(r, 1500));
    process.stderr.write(`pias run (TUN), ${REPS} x ${SECONDS} s each\n`);
    const viaPias = measure(topo, "pias", pias.pid);
    pias.kill("SIGTERM");
    await new Promise((r) => pias!.once("exit", r));

    // pias on AF_XDP (bench/lib/xdp-peer.ts), where this build has it
    const noXdp = xdpUnavailable();
    const viaXdp = noXdp ? null : await measureXdp(topo, xdp, (label, pid) => measure(topo, label, pid));
    if (noXdp) process.stderr.write(`pias run (AF_XDP) skipped: ${noXdp}\n`);

    // the kernel: nftables DNAT/SNAT with conntrack, same addresses
    topo.sysctl("p", "net.ipv4.ip_forward", "1");
    topo.exec("p", ["nft", "-f", "-"], `table ip pias_live {
      chain pre { type nat hook prerouting priority dstnat; ip daddr ${TA} tcp dport 5201 dnat to ${TARGET}:5201; ip daddr ${TA} udp dport 5201 dnat to ${TARGET}:5201; }
      chain post { type nat hook postrouting priority srcnat; ip daddr ${TARGET} snat to 10.20.1.1; }
    }`);
    process.stderr.write(`kernel nftables NAT, ${REPS} x ${SECONDS} s each\n`);
    const viaKernel = measure(topo, "kernel");
    const kernelFlood = viaXdp ? flood(topo, xdp, "kernel") : null;

    const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);
    const rows = [
      ["TCP bulk (Gbit/s)", viaPias.tcpGbps.toFixed(2), viaKernel.tcpGbps.toFixed(2), ratio(viaPias.tcpGbps, viaKernel.tcpGbps).toFixed(2)],
      [`UDP ${UDP_LEN}-byte datagrams (Mpps received)`, viaPias.udpMpps.toFixed(3), viaKernel.udpMpps.toFixed(3), ratio(viaPias.udpMpps, viaKernel.udpMpps).toFixed(2)],
      ["UDP loss (%)", viaPias.udpLossPercent.toFixed(1), viaKernel.udpLossPercent.toFixed(1), ""],
      ["pias: UDP Mpps per CPU second of pias", (viaPias.udpMppsPerCpuSecond ?? 0).toFixed(3), "", ""],
    ];
    const table = ["| measurement | pias run (TUN) | kernel nftables NAT | pias / kernel |", "| --- | ---: | ---: | ---: |", ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
    console.log(`\n${table}\n\n${cpus()[0]?.model}, ${cpus().length} cores, Linux ${release()}, Node ${process.version}; iperf3 ${REPS} x ${SECONDS} s, median`);
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, "live.json"), `${JSON.stringify({ generated: new Date().toISOString(), seconds: SECONDS, reps: REPS, udpPayload: UDP_LEN, pias: viaPias, kernel: viaKernel }, null, 2)}\n`);
    if (viaXdp) reportXdp(OUT, viaXdp, viaKernel, kernelFlood!, UDP_LEN);
  } finally {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench:live: ${(e as Error).message}`);
  process.exitCode = 1;
});
