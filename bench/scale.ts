// npm run bench:scale — how the data plane's cost per packet grows with its
// state: live flows (1k -> 10M), groups (1 -> 1M), targets in one group
// (1 -> 100k), and the memory each flow costs. Not a test: it prints figures.
//
// Packets are written straight into a batch's arena (64-byte frames as raw
// IPv4/UDP); only process_batch is timed. BENCH_QUICK=1 runs small sizes.

import { performance } from "node:perf_hooks";
import { mkdirSync, writeFileSync } from "node:fs";
import { DataPlane, type GroupSpec } from "../src/core/dataplane.js";
import { Desc, Layout } from "../assembly/shared/abi.js";
import type { PacketBatch } from "../src/core/batch.js";

const QUICK = process.env.BENCH_QUICK === "1";
/** SCALE_ONLY=flows|groups|targets runs one of the three series. */
const ONLY = process.env.SCALE_ONLY;
const runs = (series: string): boolean => ONLY === undefined || ONLY === "" || ONLY === series;
const SLOTS = 1024;
const PACKET = 46; // a 64-byte Ethernet frame without its Ethernet header: IPv4 20 + UDP 8 + 18 payload
const STEADY_PACKETS = QUICK ? 200_000 : 4_000_000;

/** An IPv4/UDP packet to 203.0.113.10:53 with correct checksums for client 0.0.0.0 (the core does not verify them). */
function template(dst: number[], dport: number): Uint8Array {
  const p = new Uint8Array(PACKET);
  p.set([0x45, 0, 0, PACKET, 0, 0, 0x40, 0, 64, 17, 0, 0, 0, 0, 0, 0, ...dst]);
  p.set([0x0f, 0xa0, dport >> 8, dport & 255, 0, PACKET - 20, 0, 0], 20);
  return p;
}

class Pump {
  private readonly view: DataView;
  private readonly mem: Uint8Array;
  constructor(readonly dp: DataPlane, readonly batch: PacketBatch) {
    this.mem = dp.memory();
    this.view = new DataView(this.mem.buffer);
    for (let i = 0; i < SLOTS; i++) {
      const d = batch.desc + i * Layout.DESC_SIZE;
      this.view.setUint32(d + Desc.OFF, this.slot(i), true);
      this.view.setUint32(d + Desc.LEN, PACKET, true);
      this.view.setUint32(d + Desc.WIRELEN, PACKET, true);
      this.view.setUint16(d + Desc.LINK, 101, true);
      this.view.setUint32(d + Desc.TIME, 1000, true);
    }
  }

  private slot(i: number): number {
    return this.batch.arena + Layout.HEADROOM + i * (Layout.HEADROOM + 64);
  }

  /** Fill the batch: packet i of flow `flow(i)` (template `tmpl(flow)`, client from the flow id), then process it; returns ms in the core. */
  run(count: number, flow: (i: number) => number, tmpl: (flow: number) => Uint8Array): number {
    for (let i = 0; i < count; i++) {
      const at = this.slot(i);
      const id = flow(i);
      this.mem.set(tmpl(id), at);
      this.mem[at + 12] = 10 + (id >>> 24);
      this.mem[at + 13] = (id >>> 16) & 255;
      this.mem[at + 14] = (id >>> 8) & 255;
      this.mem[at + 15] = id & 255;
    }
    const t0 = performance.now();
    this.dp.process(this.batch, count);
    return performance.now() - t0;
  }
}

function plane(flows: number, groups: GroupSpec[], capacityGroups = groups.length, targets = 256): DataPlane {
  return DataPlane.create({
    address: "198.51.100.1",
    capacity: { flows, groups: Math.max(capacityGroups, 1), targets },
    timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: 1 << 30, icmp: 60 },
  }, groups);
}

const oneGroup = (targets: number): GroupSpec => ({
  protocol: "udp", address: "203.0.113.10", port: 53, policy: "affinity",
  targets: Array.from({ length: targets }, (_, i) => ({ address: `100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port: 53 })),
});

/** Create `n` flows (their first packets), then time `steady` packets of random live flows. */
function measureFlows(pump: Pump, n: number, steady: number, tmpl: (flow: number) => Uint8Array): { newNs: number; steadyNs: number } {
  let ms = 0;
  for (let start = 0; start < n; start += SLOTS) {
    const count = Math.min(SLOTS, n - start);
    ms += pump.run(count, (i) => start + i, tmpl);
  }
  const newNs = (ms * 1e6) / n;
  let x = 0x9e3779b9;
  const rand = (): number => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
  ms = 0;
  for (let done = 0; done < steady; done += SLOTS) ms += pump.run(SLOTS, () => rand() % n, tmpl);
  return { newNs, steadyNs: (ms * 1e6) / steady };
}

interface Row { [k: string]: string | number }
const results: Record<string, Row[]> = { flows: [], groups: [], targets: [] };

function print(title: string, rows: Row[]): void {
  if (rows.length === 0) return;
  console.log(`\n${title}`);
  const keys = Object.keys(rows[0]);
  const width = keys.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  console.log(keys.map((k, i) => k.padStart(width[i])).join("  "));
  for (const r of rows) console.log(keys.map((k, i) => String(r[k]).padStart(width[i])).join("  "));
}

const fmt = (n: number): string => n.toLocaleString("en-US");

/**
 * One proxy address gives a target port about 64k NAT bindings: a workload of
 * n flows needs n / 30000 targets (with room to spare) or it measures
 * nat-ports-exhausted instead of the data plane.
 */
const targetsFor = (flows: number): number => Math.max(3, Math.ceil(flows / 30000));

// ---- warm-up: let V8 tier the core up before anything is measured ----
{
  const dp = plane(1 << 16, [oneGroup(3)]);
  const pump = new Pump(dp, dp.createBatch(SLOTS, SLOTS * (Layout.HEADROOM + 64) + Layout.HEADROOM));
  const t = template([203, 0, 113, 10], 53);
  measureFlows(pump, 50_000, 500_000, () => t);
}

// ---- live flows ----
for (const n of !runs("flows") ? [] : QUICK ? [1_000, 100_000] : [1_000, 10_000, 100_000, 1_000_000, 10_000_000]) {
  const cap = Math.ceil(n * 1.25);
  const dp = plane(cap, [oneGroup(targetsFor(n))], 1, targetsFor(n) + 16);
  const pump = new Pump(dp, dp.createBatch(SLOTS, SLOTS * (Layout.HEADROOM + 64) + Layout.HEADROOM));
  const t = template([203, 0, 113, 10], 53);
  const m = measureFlows(pump, n, STEADY_PACKETS, () => t);
  results.flows.push({
    "live flows": fmt(n), targets: targetsFor(n), "new flow ns/pkt": m.newNs.toFixed(1), "steady ns/pkt": m.steadyNs.toFixed(1),
    "Mpps": (1e3 / m.steadyNs).toFixed(2), "bytes/flow": dp.bytesPerFlow().toFixed(1),
    "memory MiB": (dp.memoryBytes() / 2 ** 20).toFixed(0),
  });
  print("live flows (one group of max(3, flows/30000) targets, uniform random flow per packet)", results.flows.slice(-1));
}

// ---- groups ----
for (const g of !runs("groups") ? [] : QUICK ? [1, 10_000] : [1, 1_000, 100_000, 1_000_000]) {
  const t0 = performance.now();
  const dp = plane(1 << 20, [], g, g * 8 + 64);
  // each group its own targets (NAT bindings are per target endpoint), enough for its share of the flows
  const ip = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  const base = (100 << 24) | (64 << 16);
  const per = Math.max(2, Math.ceil(targetsFor(200_000 / Math.min(g, 4096)) - 1));
  for (let i = 0; i < g; i++) {
    const targets = Array.from({ length: per }, (_, k) => ({ address: ip(base + per * i + k), port: 53 }));
    dp.addGroup({ protocol: "udp", address: `198.18.${(i >> 8) & 255}.${i & 255}`, port: 1024 + (i >> 16), targets });
  }
  const setupS = (performance.now() - t0) / 1000;
  const pump = new Pump(dp, dp.createBatch(SLOTS, SLOTS * (Layout.HEADROOM + 64) + Layout.HEADROOM));
  const tmpls = Array.from({ length: Math.min(g, 4096) }, (_, i) => template([198, 18, (i >> 8) & 255, i & 255], 1024 + (i >> 16)));
  // each packet picks a group (and a client): flows spread over the groups
  const flows = 200_000;
  const m = measureFlows(pump, QUICK ? 20_000 : flows, STEADY_PACKETS, (id) => tmpls[(Math.imul(id, 2654435761) >>> 0) % tmpls.length]);
  results.groups.push({
    groups: fmt(g), "setup s": setupS.toFixed(1), "new flow ns/pkt": m.newNs.toFixed(1), "steady ns/pkt": m.steadyNs.toFixed(1),
    "memory MiB": (dp.memoryBytes() / 2 ** 20).toFixed(0),
  });
  print("groups (2+ targets each; 200k flows over the first 4096 groups)", results.groups.slice(-1));
}

// ---- targets in one group ----
for (const n of !runs("targets") ? [] : QUICK ? [1, 300, 1_000] : [1, 10, 64, 300, 1_000, 10_000, 100_000]) {
  const t0 = performance.now();
  const dp = plane(1 << 21, [oneGroup(n)], 1, n + 16);
  const setupS = (performance.now() - t0) / 1000;
  const pump = new Pump(dp, dp.createBatch(SLOTS, SLOTS * (Layout.HEADROOM + 64) + Layout.HEADROOM));
  const t = template([203, 0, 113, 10], 53);
  // at most 20k flows per target: the NAT port space of one target port holds 64k
  const m = measureFlows(pump, Math.min(QUICK ? 20_000 : 1_000_000, 20_000 * n), STEADY_PACKETS, () => t);
  const t1 = performance.now();
  dp.setTargetUp("udp 203.0.113.10:53", n > 1 ? oneGroup(n).targets![1].address + ":53" : oneGroup(n).targets![0].address + ":53", false);
  const rebuildMs = performance.now() - t1;
  results.targets.push({
    "targets": fmt(n), flows: fmt(Math.min(QUICK ? 20_000 : 1_000_000, 20_000 * n)), "selection": n <= 64 ? "rendezvous" : n <= 512 ? "rendezvous table" : "ring table", "setup s": setupS.toFixed(2), "rebuild ms": rebuildMs.toFixed(2),
    "new flow ns/pkt": m.newNs.toFixed(1), "steady ns/pkt": m.steadyNs.toFixed(1),
  });
  print("targets in one group (affinity)", results.targets.slice(-1));
}

print("live flows", results.flows);
print("groups", results.groups);
print("targets in one group", results.targets);
mkdirSync("bench/results", { recursive: true });
const out = `bench/results/scale${ONLY ? `-${ONLY}` : ""}.json`;
writeFileSync(out, JSON.stringify({ quick: QUICK, node: process.version, results }, null, 2));
console.log(`\nraw figures: ${out}`);
