// npm run bench:scale — where each nanosecond of the core goes as its state
// grows, beside the memory system's own floors. Not a test: it prints figures
// and writes them to bench/results/scale.json (with the machine, the commit
// and the load average).
//
// Packets are 64-byte frames (46 bytes of raw IPv4/UDP) written into a batch
// of 1024 by this script; only the core's process_batch call is timed, batch
// by batch, and every figure is the MEDIAN batch time / 1024 (a batch that
// another process preempted is an outlier the median ignores).
//
// Series (SCALE_ONLY=flows|groups|targets runs one):
//
// flows    per state size (10k, 100k, 1M, 10M live flows; one group with one
//          target per 30,000 flows, affinity):
//          - fill: the first packets of n flows on an empty table;
//          - new: the first packets of NEW more flows with n live;
//          - steady: packets of uniformly random live flows;
//          then the stage table: the same kinds of packets through the bench
//          build of the core (asc --target bench), which stops every packet
//          after a given stage (assembly/stages.ts). A stage's cost is the
//          median over rounds of the difference between stopping after it
//          and stopping before it, a round running every stop once on a batch
//          of its own (the same kind of packets): parse, flow lookup (with the
//          batch prefetch), group lookup + selection, flow creation with its
//          NAT port, rewrite (with the flow's bookkeeping), verdict (counters
//          and the expiry sweep). Every stop's new flows are fresh, so the
//          table grows by up to 3 NEW during the new-flow rows.
//          Floors, measured in the same run, in Wasm code (bench build), over
//          a buffer as large as the flow state with the tables' page size: a
//          dependent-load pointer chase (DRAM latency, with its TLB misses),
//          independent loads at random lines (what memory-level parallelism
//          allows per random access: the floor of one miss per packet), and a
//          copy of the batch's packet slots (the bandwidth floor of touching
//          every packet).
// groups   1 to 1M groups, 200k flows spread over the first 4096.
// targets  1 to 100k targets in one group (the selection's cost).
//
// BENCH_QUICK=1 runs small sizes; SCALE_FLOWS=10000,1000000 picks the flow
// series' sizes.

import { performance } from "node:perf_hooks";
import { mkdirSync, writeFileSync } from "node:fs";
import { DataPlane, type DataPlaneSettings, type GroupSpec } from "../src/core/dataplane.js";
import { GROUP_ADDR, SMALL_PACKET, oneGroup, smallPacket, xorshift32 } from "./lib/one-group.js";
import { Desc, Layout, Stage } from "../assembly/shared/abi.js";
import type { PacketBatch } from "../src/core/batch.js";
import { load, machine } from "./lib/machine.js";
import { adviseHugePages } from "../src/core/hugepages.js";

const QUICK = process.env.BENCH_QUICK === "1";
const ONLY = process.env.SCALE_ONLY;
const runs = (series: string): boolean => ONLY === undefined || ONLY === "" || ONLY === series;
const SLOTS = 1024;
const STRIDE = Layout.HEADROOM + 64;
const STEADY_PACKETS = QUICK ? 100_000 : 1_000_000;
const TIME = 1000;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** A batch of SLOTS packets in a data plane's memory, filled here and handed to the core. */
class Pump {
  private view: DataView;
  private mem: Uint8Array;
  readonly batch: PacketBatch;
  constructor(readonly dp: DataPlane) {
    this.batch = dp.createBatch(SLOTS, SLOTS * STRIDE + Layout.HEADROOM);
    this.mem = dp.memory();
    this.view = new DataView(this.mem.buffer);
  }

  /** Memory grew (a buffer was allocated): new views. */
  private views(): void {
    if (this.mem.byteLength !== 0) return;
    this.mem = this.dp.memory();
    this.view = new DataView(this.mem.buffer);
  }

  private slot(i: number): number {
    return this.batch.arena + Layout.HEADROOM + i * STRIDE;
  }

  /** Write `count` packets: packet i of flow flow(i) (template tmpl(flow), client address from the flow id). */
  fill(count: number, flow: (i: number) => number, tmpl: (flow: number) => Uint8Array): void {
    this.views();
    for (let i = 0; i < count; i++) {
      const d = this.batch.desc + i * Layout.DESC_SIZE;
      const at = this.slot(i);
      this.view.setUint32(d + Desc.OFF, at, true);
      this.view.setUint32(d + Desc.LEN, SMALL_PACKET, true);
      this.view.setUint32(d + Desc.WIRELEN, SMALL_PACKET, true);
      this.view.setUint16(d + Desc.LINK, 101, true);
      this.view.setUint32(d + Desc.TIME, TIME, true);
      const id = flow(i);
      this.mem.set(tmpl(id), at);
      this.mem[at + 12] = 10 + (id >>> 24);
      this.mem[at + 13] = (id >>> 16) & 255;
      this.mem[at + 14] = (id >>> 8) & 255;
      this.mem[at + 15] = id & 255;
    }
  }

  /** Fill and process `count` packets; returns the ns the core took. */
  run(count: number, flow: (i: number) => number, tmpl: (flow: number) => Uint8Array): number {
    this.fill(count, flow, tmpl);
    const t0 = performance.now();
    this.dp.process(this.batch, count);
    return (performance.now() - t0) * 1e6;
  }

  /** The bandwidth floor: copy this batch's packet slots once (after a fill); returns ns. */
  stream(to: number): number {
    this.views();
    const from = this.batch.arena;
    const t0 = performance.now();
    this.mem.copyWithin(to, from, from + SLOTS * STRIDE);
    return (performance.now() - t0) * 1e6;
  }
}

function plane(flows: number, groups: GroupSpec[], capacityGroups = groups.length, targets = 256, build?: DataPlaneSettings["build"]): DataPlane {
  return DataPlane.create({
    address: "198.51.100.1",
    capacity: { flows, groups: Math.max(capacityGroups, 1), targets },
    timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: 1 << 30, icmp: 60 },
    build,
  }, groups);
}

/** ns per packet (median batch) of the first packets of flows [from, from + count). */
function newFlows(pump: Pump, from: number, count: number, tmpl: (flow: number) => Uint8Array): number {
  const per: number[] = [];
  for (let start = 0; start < count; start += SLOTS) {
    const k = Math.min(SLOTS, count - start);
    per.push(pump.run(k, (i) => from + start + i, tmpl) / k);
  }
  return median(per);
}

/** ns per packet (median batch) of `packets` packets of uniformly random flows of [0, n). */
function steady(pump: Pump, n: number, packets: number, tmpl: (flow: number) => Uint8Array): number {
  const rand = xorshift32();
  const per: number[] = [];
  for (let done = 0; done < packets; done += SLOTS) per.push(pump.run(SLOTS, () => rand() % n, tmpl) / SLOTS);
  return median(per);
}

interface Row { [k: string]: string | number }
const results: Record<string, unknown[]> = { flows: [], stages: [], floors: [], groups: [], targets: [] };

function print(title: string, rows: Row[]): void {
  if (rows.length === 0) return;
  console.log(`\n${title}`);
  const keys = Object.keys(rows[0]);
  const width = keys.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  console.log(keys.map((k, i) => k.padStart(width[i])).join("  "));
  for (const r of rows) console.log(keys.map((k, i) => String(r[k]).padStart(width[i])).join("  "));
}

const fmt = (n: number): string => n.toLocaleString("en-US");
const ns = (v: number): string => v.toFixed(1);

/**
 * One proxy address gives a target port about 64k NAT bindings: a workload of
 * n flows needs n / 30000 targets (with room to spare) or it measures
 * nat-ports-exhausted instead of the data plane.
 */
const targetsFor = (flows: number): number => Math.max(3, Math.ceil(flows / 30000));

// ---- floors ----

/**
 * The memory floors over `bytes` of a bench-build data plane's memory (as
 * large as the flow state, with the tables' page size), in Wasm code: ns per
 * dependent load of a pointer chase through the lines in one random cycle
 * (latency), and ns per load of independent loads at random lines (what
 * memory-level parallelism allows per random access).
 */
function floors(dp: DataPlane, bytes: number): { chaseNs: number; gatherNs: number } {
  const lines = Math.floor(bytes / 64);
  const base = dp.allocBuffer(lines * 64);
  if (dp.hugePages > 0) adviseHugePages(dp.memory().buffer as ArrayBuffer); // the tables' page size
  const words = new Uint32Array(dp.memory().buffer);
  const at = base >>> 2; // word index of line 0
  const perm = new Uint32Array(lines);
  for (let i = 0; i < lines; i++) perm[i] = i;
  const rand = xorshift32(0x1234567);
  for (let i = lines - 1; i > 0; i--) { // Sattolo: one cycle through every line
    const j = rand() % i;
    const t = perm[i]; perm[i] = perm[j]; perm[j] = t;
  }
  for (let k = 0; k < lines; k++) words[at + perm[k] * 16] = perm[(k + 1) % lines];
  const time = (kind: "chase" | "gather", n: number): number => {
    dp.memoryFloor(kind, base, lines, Math.min(n, 100_000)); // warm the code, not the table
    const samples: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      dp.memoryFloor(kind, base, lines, n, perm[r]);
      samples.push(((performance.now() - t0) * 1e6) / n);
    }
    return median(samples);
  };
  return { chaseNs: time("chase", QUICK ? 100_000 : 500_000), gatherNs: time("gather", QUICK ? 500_000 : 4_000_000) };
}

const info = machine();

// ---- warm-up: let V8 tier both builds up before anything is measured ----
for (const build of ["release", "bench"] as const) {
  const dp = plane(1 << 16, [oneGroup(3)], 1, 256, build);
  const pump = new Pump(dp);
  const t = smallPacket(GROUP_ADDR, 53);
  newFlows(pump, 0, 50_000, () => t);
  steady(pump, 50_000, 500_000, () => t);
}

// ---- live flows: release figures, the stage table and the floors ----
const STAGES: readonly [Stage, string][] = [
  [Stage.Parse, "parse"],
  [Stage.FlowLookup, "flow lookup"],
  [Stage.Select, "group lookup + selection"],
  [Stage.Create, "flow creation + NAT port"],
  [Stage.Rewrite, "rewrite"],
  [Stage.Verdict, "verdict"],
];

const FLOW_SIZES = process.env.SCALE_FLOWS
  ? process.env.SCALE_FLOWS.split(",").map((x) => Number(x.replace(/_/g, "")))
  : QUICK ? [10_000, 100_000] : [10_000, 100_000, 1_000_000, 10_000_000];
for (const n of !runs("flows") ? [] : FLOW_SIZES) {
  const NEW = Math.min(65_536, Math.max(4096, n >> 3));
  const cap = n + 4 * NEW;
  const targets = targetsFor(cap);
  const t = smallPacket(GROUP_ADDR, 53);
  const tmpl = (): Uint8Array => t;

  // release build: what the product does
  let dp = plane(cap, [oneGroup(targets)], 1, targets + 16);
  let pump = new Pump(dp);
  const fillNs = newFlows(pump, 0, n, tmpl);
  const newNs = newFlows(pump, n, NEW, tmpl);
  const steadyNs = steady(pump, n, STEADY_PACKETS, tmpl);
  const memoryMiB = dp.memoryBytes() / 2 ** 20;
  const stateBytes = dp.bytesPerFlow() * cap;
  const hugePages = dp.hugePages > 0;
  results.flows.push({
    flows: n, targets, fillNs, newNs, newFlows: NEW, steadyNs, steadyMpps: 1e3 / steadyNs, bytesPerFlow: dp.bytesPerFlow(), memoryMiB, hugePages, load: load(),
  });
  print("live flows, release build (ns per packet, median batch of 1024)", [{
    "live flows": fmt(n), targets, "fill ns": ns(fillNs), [`new ns (${fmt(NEW)})`]: ns(newNs), "steady ns": ns(steadyNs),
    "steady Mpps": (1e3 / steadyNs).toFixed(2), "bytes/flow": dp.bytesPerFlow().toFixed(1), "memory MiB": memoryMiB.toFixed(0),
    "huge pages": hugePages ? "yes" : "no",
  }]);

  // the streaming floor: this batch's packet slots copied once
  const scratch = dp.allocBuffer(SLOTS * STRIDE);
  const streams: number[] = [];
  const rand = xorshift32();
  for (let r = 0; r < 200; r++) {
    pump.fill(SLOTS, () => rand() % n, tmpl);
    streams.push(pump.stream(scratch) / SLOTS);
  }
  const streamNs = median(streams);
  dp = undefined as unknown as DataPlane;
  pump = undefined as unknown as Pump;

  // bench build: the same packets stopped after each stage, and the memory floors beside them
  const db = plane(cap, [oneGroup(targets)], 1, targets + 16, "bench");
  const pb = new Pump(db);
  newFlows(pb, 0, n, tmpl);
  const { chaseNs, gatherNs } = floors(db, stateBytes);
  results.floors.push({ flows: n, tableBytes: stateBytes, hugePages, chaseNs, gatherNs, streamNsPerPacket: streamNs, load: load() });
  // Stops interleaved batch by batch, so that the load other processes put
  // on the machine moves them alike: a round runs every stop once, each on a
  // batch of its own (fresh random live flows, fresh new flows: a batch run
  // twice would find the second time what the first brought into the cache).
  const steadyT: number[][] = STAGES.map(() => []);
  const newT: number[][] = STAGES.map(() => []);
  const pick = xorshift32(0x51ed);
  let next = n;
  const rounds = Math.ceil((STEADY_PACKETS / SLOTS) / 4);
  for (let b = 0; b < rounds; b++) {
    STAGES.forEach(([stage], k) => {
      db.stopAfter(stage);
      if (stage !== Stage.Select && stage !== Stage.Create) steadyT[k].push(pb.run(SLOTS, () => pick() % n, tmpl) / SLOTS); // a live flow has neither
      if (b * SLOTS < NEW) {
        const from = next;
        next += SLOTS;
        newT[k].push(pb.run(SLOTS, (i) => from + i, tmpl) / SLOTS);
      }
    });
  }
  db.stopAfter(Stage.Verdict);
  /** Median over rounds of stop k's time less stop j's in the same round (j < 0: the time itself). */
  const diff = (t: number[][], k: number, j: number): number => median(t[k].map((x, i) => x - (j < 0 ? 0 : t[j][i])));
  const rows: Row[] = [];
  const stageNs: Record<string, { newFlow: number; steady: number | null }> = {};
  let prevNew = -1, prevSteady = -1;
  STAGES.forEach(([stage, name], k) => {
    const liveOnly = stage === Stage.Select || stage === Stage.Create;
    const newFlow = diff(newT, k, prevNew);
    const steadyStage = liveOnly ? null : diff(steadyT, k, prevSteady);
    stageNs[name] = { newFlow, steady: steadyStage };
    rows.push({ stage: name, "new flow ns": ns(newFlow), "steady ns": steadyStage === null ? "-" : ns(steadyStage) });
    prevNew = k;
    if (!liveOnly) prevSteady = k;
  });
  const last = STAGES.length - 1;
  const allNew = median(newT[last]), allSteady = median(steadyT[last]);
  rows.push({ stage: "all stages (bench build)", "new flow ns": ns(allNew), "steady ns": ns(allSteady) });
  rows.push({ stage: "release build", "new flow ns": ns(newNs), "steady ns": ns(steadyNs) });
  results.stages.push({ flows: n, rounds, newFlowRounds: newT[0].length, stages: stageNs, allStagesNew: allNew, allStagesSteady: allSteady, load: load() });
  print(`stages at ${fmt(n)} live flows (ns per packet: median per-batch differences between stopping points)`, rows);
  print(`floors at ${fmt(n)} flows (${(stateBytes / 2 ** 20).toFixed(0)} MiB of flow state)`, [{
    "pointer chase ns/load": ns(chaseNs), "random gather ns/load": ns(gatherNs), "batch copy ns/packet": ns(streamNs),
  }]);
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
  const pump = new Pump(dp);
  const tmpls = Array.from({ length: Math.min(g, 4096) }, (_, i) => smallPacket([198, 18, (i >> 8) & 255, i & 255], 1024 + (i >> 16)));
  // each packet picks a group (and a client): flows spread over the groups
  const flows = QUICK ? 20_000 : 200_000;
  const tmpl = (id: number): Uint8Array => tmpls[(Math.imul(id, 2654435761) >>> 0) % tmpls.length];
  const newNs = newFlows(pump, 0, flows, tmpl);
  const steadyNs = steady(pump, flows, STEADY_PACKETS, tmpl);
  results.groups.push({ groups: g, setupS, newNs, steadyNs, memoryMiB: dp.memoryBytes() / 2 ** 20, load: load() });
  print("groups (2+ targets each; 200k flows over the first 4096 groups)", [{
    groups: fmt(g), "setup s": setupS.toFixed(1), "fill ns": ns(newNs), "steady ns": ns(steadyNs),
    "memory MiB": (dp.memoryBytes() / 2 ** 20).toFixed(0),
  }]);
}

// ---- targets in one group ----
for (const n of !runs("targets") ? [] : QUICK ? [1, 300, 1_000] : [1, 10, 64, 300, 1_000, 10_000, 100_000]) {
  const t0 = performance.now();
  const dp = plane(1 << 21, [oneGroup(n)], 1, n + 16);
  const setupS = (performance.now() - t0) / 1000;
  const pump = new Pump(dp);
  const t = smallPacket(GROUP_ADDR, 53);
  // at most 20k flows per target: the NAT port space of one target port holds 64k
  const flows = Math.min(QUICK ? 20_000 : 1_000_000, 20_000 * n);
  const newNs = newFlows(pump, 0, flows, () => t);
  const steadyNs = steady(pump, flows, STEADY_PACKETS, () => t);
  const t1 = performance.now();
  dp.setTargetUp("udp 203.0.113.10:53", n > 1 ? oneGroup(n).targets![1].address + ":53" : oneGroup(n).targets![0].address + ":53", false);
  const rebuildMs = performance.now() - t1;
  const selection = n <= 8 ? "rendezvous" : n <= 128 ? "rendezvous table" : "ring table"; // group/tables.ts: HRW_MAX_SLOTS, RENDEZVOUS_TABLE_MAX_SLOTS
  results.targets.push({ targets: n, flows, selection, setupS, rebuildMs, newNs, steadyNs, load: load() });
  print("targets in one group (affinity)", [{
    targets: fmt(n), flows: fmt(flows), selection, "setup s": setupS.toFixed(2), "rebuild ms": rebuildMs.toFixed(2),
    "fill ns": ns(newNs), "steady ns": ns(steadyNs),
  }]);
}

mkdirSync("bench/results", { recursive: true });
const out = `bench/results/scale${ONLY ? `-${ONLY}` : ""}.json`;
writeFileSync(out, `${JSON.stringify({
  command: `${QUICK ? "BENCH_QUICK=1 " : ""}${ONLY ? `SCALE_ONLY=${ONLY} ` : ""}npm run bench:scale`,
  generated: new Date().toISOString(),
  machine: info,
  loadAtEnd: load(),
  method: "median batch time / 1024 packets, process_batch only; stages: bench build stopped after each stage (bench/scale.ts header)",
  results,
}, null, 2)}\n`);
console.log(`\nraw figures: ${out}`);
