// The AF_XDP rows of `npm run bench:live`: `pias run` with daemon.io xdp on
// the proxy's two interfaces (client side, target side) of bench/live.ts's
// topology, measured with the same iperf3 loads as the other paths, plus a
// flood of 64-byte UDP frames from trafgen (one core's worth), the load the
// targets are stated in: packets/s received by the target and pias's CPU
// time per packet. flood() measures the kernel's nftables NAT under the same
// flood, in the same run.
//
// AF_XDP takes frames before the kernel's stack, so the client and target
// compute their own checksums while pias runs on AF_XDP (tx off; restored
// after, so the other paths are measured as they were).

import { join } from "node:path";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { parseAddress } from "../../src/net/addr.js";
import { buildPacket, withEthernet } from "../../test/helpers/packets.js";
import type { Topology } from "../../test/helpers/netns.js";
import { machine } from "./machine.js";
import { markdownTable, num } from "./table.js";

export interface XdpSetup {
  cli: string;
  dir: string;
  ta: string;
  target: string;
  /** The client's, the proxy's client-side, the proxy's target-side and the target's interfaces. */
  clientIf: string;
  proxyIn: string;
  proxyOut: string;
  targetIf: string;
  seconds: number;
  reps: number;
}

export interface FloodFigures {
  /** 64-byte frames trafgen sent per second. */
  offeredMpps: number;
  /** Frames the target's interface received per second. */
  receivedMpps: number;
  /** pias's CPU time (user + system) per frame received by the target; null for the kernel. */
  cpuUsPerPacket: number | null;
  /** Of which in user space (the core, the addon, the pump); the rest is the kernel's, mostly AF_XDP's copy-mode transmit. */
  userUsPerPacket: number | null;
}

export interface XdpFigures<F> {
  /** bench/live.ts's iperf3 figures. */
  iperf: F;
  flood: FloodFigures;
  /** How the program was attached and whether the sockets run zero-copy (from pias's log). */
  mode: string;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU seconds a process has used: [user, system]. */
function cpuSeconds(pid: number): [number, number] {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return [Number(fields[11]) / 100, Number(fields[12]) / 100]; // utime, stime in clock ticks (USER_HZ = 100)
}

const counter = (topo: Topology, ns: string, iface: string, what: string): number =>
  Number(topo.exec(ns, ["cat", `/sys/class/net/${iface}/statistics/${what}`]).trim());

const macOf = (topo: Topology, ns: string, iface: string): Uint8Array =>
  Uint8Array.from(topo.exec(ns, ["cat", `/sys/class/net/${iface}/address`]).trim().split(":").map((h) => parseInt(h, 16)));

/** 64-byte UDP frames (18-byte payload) from the client to the TA's port 5201, 256 source ports, as trafgen's config. */
function floodConfig(topo: Topology, s: XdpSetup): string {
  const src = parseAddress("10.10.0.2").bytes;
  const dst = parseAddress(s.ta).bytes;
  const dmac = macOf(topo, "p", s.proxyIn);
  const smac = macOf(topo, "c", s.clientIf);
  const frames = Array.from({ length: 256 }, (_, i) => {
    const f = withEthernet(buildPacket({ family: 4, proto: "udp", src, dst, sport: 20000 + i, dport: 5201, payload: new Uint8Array(18) }));
    f.set(dmac, 0);
    f.set(smac, 6);
    return `{ ${[...f].map((b) => `0x${b.toString(16).padStart(2, "0")}`).join(", ")} }`;
  });
  const path = join(s.dir, "flood.cfg");
  writeFileSync(path, frames.join("\n"));
  return path;
}

/**
 * trafgen on one core for `seconds`, `reps` times: the median frames/s
 * offered and received, and pias's CPU per frame. The target drops the flood
 * at its interface's ingress hook (after the interface counted it): veth runs
 * the receiver's stack on the sender's CPU, which would otherwise count the
 * target's UDP and ICMP port-unreachable work as the proxy's.
 */
export function flood(topo: Topology, s: XdpSetup, label: string, piasPid?: number): FloodFigures {
  const cfg = floodConfig(topo, s);
  topo.exec("t", ["nft", "-f", "-"], `table netdev pias_flood {\n chain in {\n  type filter hook ingress device "${s.targetIf}" priority 0;\n  udp dport 5201 drop\n }\n}\n`);
  const offered: number[] = [];
  const received: number[] = [];
  const cpu: number[] = [];
  const user: number[] = [];
  for (let i = 0; i < s.reps; i++) {
    const tx0 = counter(topo, "c", s.clientIf, "tx_packets");
    const rx0 = counter(topo, "t", s.targetIf, "rx_packets");
    const cpu0 = piasPid ? cpuSeconds(piasPid) : [0, 0];
    const t0 = process.hrtime.bigint();
    topo.run("c", ["timeout", "-s", "INT", `${s.seconds}s`, "trafgen", "-o", s.clientIf, "-i", cfg, "--cpus", "1", "-q"], undefined, (s.seconds + 30) * 1000);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const got = counter(topo, "t", s.targetIf, "rx_packets") - rx0;
    offered.push((counter(topo, "c", s.clientIf, "tx_packets") - tx0) / seconds / 1e6);
    received.push(got / seconds / 1e6);
    if (piasPid) {
      const [u, k] = cpuSeconds(piasPid);
      cpu.push(((u - cpu0[0] + k - cpu0[1]) * 1e6) / Math.max(1, got));
      user.push(((u - cpu0[0]) * 1e6) / Math.max(1, got));
    }
    process.stderr.write(`  ${label} flood ${i + 1}: ${offered.at(-1)!.toFixed(3)} Mpps offered, ${received.at(-1)!.toFixed(3)} Mpps received${piasPid ? `, pias ${cpu.at(-1)!.toFixed(2)} us CPU per packet (${user.at(-1)!.toFixed(2)} in user space)` : ""}\n`);
  }
  topo.exec("t", ["nft", "delete", "table", "netdev", "pias_flood"]);
  return { offeredMpps: median(offered), receivedMpps: median(received), cpuUsPerPacket: cpu.length ? median(cpu) : null, userUsPerPacket: user.length ? median(user) : null };
}

/** pias run on AF_XDP in the topology with `workers` workers (one per RX queue): iperf3 through `measure`, then the flood. */
export async function measureXdp<F>(topo: Topology, s: XdpSetup, measure: (label: string, pid: number) => F, workers = 1): Promise<XdpFigures<F>> {
  const offloads = (on: "on" | "off"): void => {
    topo.exec("c", ["ethtool", "-K", s.clientIf, "tx", on]);
    topo.exec("t", ["ethtool", "-K", s.targetIf, "tx", on]);
  };
  const config = join(s.dir, "pias-xdp.json");
  writeFileSync(config, JSON.stringify({
    proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
    capacity: { flows: 65536, groups: 4, targets: 4 },
    daemon: { io: "xdp", xdpInterfaces: [s.proxyIn, s.proxyOut], logLevel: "info", batch: 256, workers },
    groups: [
      { protocol: "tcp", address: s.ta, port: 5201, targets: [{ address: s.target, port: 5201 }] },
      { protocol: "udp", address: s.ta, port: 5201, targets: [{ address: s.target, port: 5201 }] },
    ],
  }));
  offloads("off");
  topo.exec("p", ["ping", "-c", "1", "-W", "2", "10.10.0.2"]); // neighbours known before pias reads the table
  topo.exec("p", ["ping", "-c", "1", "-W", "2", s.target]);
  let pias: ChildProcess | undefined;
  try {
    pias = topo.start("p", [process.execPath, s.cli, "run", "--config", config]);
    const log = await new Promise<string>((resolve, reject) => {
      let seen = "";
      pias!.stdout!.on("data", (b: Buffer) => {
        seen += b.toString();
        const line = seen.split("\n").find((l) => l.includes('"msg":"ready"'));
        if (line) resolve(line);
      });
      pias!.stderr!.on("data", (b: Buffer) => (seen += b.toString()));
      pias!.once("exit", (code) => reject(new Error(`pias (AF_XDP) exited ${code}: ${seen.slice(-500)}`)));
    });
    const mode = (JSON.parse(log) as { io: string }).io;
    process.stderr.write(`pias run (${mode}), ${s.reps} x ${s.seconds} s each\n`);
    const label = `pias xdp ${workers}w`;
    let iperf: F;
    try {
      iperf = measure(label, pias.pid!);
    } catch (err) {
      // iperf3 now and then ends without its summary on a loaded machine: once more
      process.stderr.write(`  ${label}: iperf3 failed (${(err as Error).message}); again\n`);
      iperf = measure(label, pias.pid!);
    }
    const f = flood(topo, s, label, pias.pid!);
    return { iperf, flood: f, mode };
  } finally {
    if (pias && pias.exitCode === null) {
      pias.kill("SIGTERM");
      await new Promise((r) => pias!.once("exit", r));
    }
    offloads("on");
  }
}

type Iperf = { tcpGbps: number; udpMpps: number; udpLossPercent: number };

/** Print the AF_XDP table (pias on AF_XDP beside the kernel's nftables NAT of the same run) and write bench/results/live-xdp.json. */
export function reportXdp(out: string, x: XdpFigures<Iperf>, kernel: Iperf, kernelFlood: FloodFigures, udpLen: number): void {
  const ratio = (a: number, b: number): string => (b > 0 ? num(a / b) : "–");
  const table = markdownTable(["measurement", "pias run (AF_XDP)", "kernel nftables NAT", "pias / kernel"], [
    ["TCP bulk (Gbit/s)", num(x.iperf.tcpGbps), num(kernel.tcpGbps), ratio(x.iperf.tcpGbps, kernel.tcpGbps)],
    [`iperf3 UDP ${udpLen}-byte datagrams received (Mpps)`, num(x.iperf.udpMpps), num(kernel.udpMpps), ratio(x.iperf.udpMpps, kernel.udpMpps)],
    ["trafgen 64-byte UDP offered (Mpps)", num(x.flood.offeredMpps), num(kernelFlood.offeredMpps), ""],
    ["trafgen 64-byte UDP received (Mpps)", num(x.flood.receivedMpps), num(kernelFlood.receivedMpps), ratio(x.flood.receivedMpps, kernelFlood.receivedMpps)],
    ["pias CPU per packet received (us)", num(x.flood.cpuUsPerPacket), "", ""],
    ["of which in user space (us)", num(x.flood.userUsPerPacket), "", ""],
  ], ["l", "r", "r", "r"]);
  const where = machine();
  console.log(`\npias on AF_XDP: ${x.mode}\n\n${table}\n\nload average at the end: ${(where.loadavg as number[]).join(", ")}`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "live-xdp.json"), `${JSON.stringify({ generated: new Date().toISOString(), machine: where, udpPayload: udpLen, xdp: x, kernel, kernelFlood }, null, 2)}\n`);
}
