// npm run bench:pair — this build of the core against another, in one
// process: two data planes with the same table (one group of PAIR_TARGETS
// targets, affinity, PAIR_FLOWS live flows, as bench:scale's flow series),
// their batches interleaved (the order alternating each round) so that the
// host's slow and quick phases move both alike. Per round and per build: a
// batch of 1024 new flows, then a batch of 1024 packets of uniformly random
// live flows (the same flows for both builds). Prints the median ns per
// packet of each, and the mean over the fill (the table filling from empty:
// the first use of its pages, which PAIR_PREFAULT=1 takes off one side,
// falls in a few of its batches), and appends them, with the machine and
// the commit, to bench/results/pair-TARGETS[-FLOWS, unless 1M].json (a
// fresh file when the base build, the commit or the setting changed).
//
//   BENCH_PAIR_BASE=FILE.wasm  the other build (required: a release build of
//                              another commit, e.g. copied from its wasm/pias.wasm)
//   PAIR_FLOWS (1000000), PAIR_TARGETS (one per 30,000 flows), PAIR_ROUNDS (40),
//   PAIR_WARMUP (2000): batches of live flows after the fill, before the
//   rounds (time for the core's deferred work, such as the port spaces'
//   bitmaps, built two flow records a packet, to finish), PAIR_OUT (the results file)
//   PAIR_CHURN=1: instead, every packet a new flow whose client never comes
//   back, 8 batches a second, UDP flows idle after a second (about 16k live)
//   in a table of PAIR_FLOWS: a DNS-like load where the expiry sweep frees
//   the records new flows take; the new-flow figure only, in
//   bench/results/pair-churn-TARGETS[-FLOWS].json
//   PAIR_TCP=1: TCP instead of UDP: new flows open with a SYN (each
//   counted half-open against its client's address until its first ACK),
//   live-flow packets are ACKs (results in ...-tcp.json)
//   PAIR_PREFAULT=1: this build's data plane prefaults its tables
//   (capacity.prefault), the base's does not: with the same build as the
//   base, what a page's first use costs (results in ...-prefault.json)

import { createHash } from "node:crypto";
import { existsSync, readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { DataPlane } from "../src/core/dataplane.js";
import type { PacketBatch } from "../src/core/batch.js";
import { Desc, Layout } from "../assembly/shared/abi.js";
import { load, machine } from "./lib/machine.js";
import { GROUP_ADDR, SMALL_PACKET, oneGroup, smallPacket, xorshift32 } from "./lib/one-group.js";

const BASE = process.env.BENCH_PAIR_BASE;
if (!BASE) {
  console.error("bench:pair: set BENCH_PAIR_BASE to the .wasm file of the build to compare with");
  process.exit(2);
}
const FLOWS = Number(process.env.PAIR_FLOWS ?? 1_000_000);
const TARGETS = Number(process.env.PAIR_TARGETS ?? Math.max(3, Math.ceil(FLOWS / 30_000)));
const ROUNDS = Number(process.env.PAIR_ROUNDS ?? 40);
const WARMUP = Number(process.env.PAIR_WARMUP ?? 2000);
const CHURN = process.env.PAIR_CHURN === "1";
const PREFAULT = process.env.PAIR_PREFAULT === "1";
const TCP = process.env.PAIR_TCP === "1";
if (TCP && CHURN) {
  console.error("bench:pair: PAIR_TCP and PAIR_CHURN do not go together (half-open flows stay for the transitory timeout)");
  process.exit(2);
}
const SLOTS = 1024;
const STRIDE = Layout.HEADROOM + 64;
const PORT = TCP ? 80 : 53;
/** A new flow's first packet (TCP: a SYN) and a live flow's (TCP: an ACK). */
const opening = smallPacket(GROUP_ADDR, PORT, TCP ? 0x02 : null);
const live = smallPacket(GROUP_ADDR, PORT, TCP ? 0x10 : null);

interface Side { name: string; dp: DataPlane; batch: PacketBatch; next: number; fillNs: number[]; newNs: number[]; steadyNs: number[] }

function side(name: string, module?: WebAssembly.Module, prefault = false): Side {
  const dp = DataPlane.create({
    address: "198.51.100.1",
    capacity: { flows: CHURN ? FLOWS : FLOWS + (ROUNDS + 8) * SLOTS, groups: 1, targets: TARGETS + 16, prefault },
    timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: CHURN ? 1 : 1 << 30, icmp: 60 },
    module,
  }, [oneGroup(TARGETS, TCP ? "tcp" : "udp", PORT)]);
  return { name, dp, batch: dp.createBatch(SLOTS, SLOTS * STRIDE + Layout.HEADROOM), next: 0, fillNs: [], newNs: [], steadyNs: [] };
}

/** Write a batch of packets like `template` of flows flow(0..SLOTS) (client address from the flow id), process it: ns per packet. */
function run(s: Side, template: Uint8Array, flow: (i: number) => number, time = 1000): number {
  const mem = s.dp.memory();
  const view = new DataView(mem.buffer);
  for (let i = 0; i < SLOTS; i++) {
    const d = s.batch.desc + i * Layout.DESC_SIZE;
    const at = s.batch.arena + Layout.HEADROOM + i * STRIDE;
    view.setUint32(d + Desc.OFF, at, true);
    view.setUint32(d + Desc.LEN, SMALL_PACKET, true);
    view.setUint32(d + Desc.WIRELEN, SMALL_PACKET, true);
    view.setUint16(d + Desc.LINK, 101, true);
    view.setUint32(d + Desc.TIME, time, true);
    const id = flow(i);
    mem.set(template, at);
    mem[at + 12] = 10 + (id >>> 24);
    mem[at + 13] = (id >>> 16) & 255;
    mem[at + 14] = (id >>> 8) & 255;
    mem[at + 15] = id & 255;
  }
  const t0 = performance.now();
  s.dp.process(s.batch, SLOTS);
  return ((performance.now() - t0) * 1e6) / SLOTS;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const baseWasm = readFileSync(BASE);
const sides = [side(PREFAULT ? "this build, prefaulted" : "this build", undefined, PREFAULT), side(`base (${BASE})`, new WebAssembly.Module(baseWasm))];
if (CHURN) {
  // every packet a new flow, 8 batches a second, UDP flows idle after a second: about 16k live, in a table of FLOWS
  let batch = 0;
  const churn = (s: Side): number => run(s, opening, (i) => (batch * SLOTS + i) % 0xf000000, 1000 + (batch >> 3));
  for (; batch < WARMUP; batch++) for (const s of sides) churn(s);
  for (let r = 0; r < ROUNDS; r++, batch++) for (const s of r % 2 ? [sides[1], sides[0]] : sides) s.newNs.push(churn(s));
} else {
  // the fill and the warm-up interleaved too: built one after the other, the first state measured slower
  // (the same build on both sides: 7-10% on new flows, 3-5% on steady packets)
  for (let from = 0; from < FLOWS; from += SLOTS) for (const s of sides) s.fillNs.push(run(s, opening, (i) => from + i));
  for (let w = 0; w < WARMUP; w++) for (const s of sides) run(s, live, (i) => (w * 7919 + i * 977) % FLOWS);
  for (const s of sides) s.next = Math.ceil(FLOWS / SLOTS) * SLOTS;
  let seed = 0x9e3779b9; // the live flows of a round's steady batch (xorshift32 from seed), the same for both builds
  for (let r = 0; r < ROUNDS; r++) {
    let last = seed;
    for (const s of r % 2 ? [sides[1], sides[0]] : sides) {
      const from = s.next;
      s.next += SLOTS;
      s.newNs.push(run(s, opening, (i) => from + i));
      const rand = xorshift32(seed);
      s.steadyNs.push(run(s, live, () => (last = rand()) % FLOWS));
    }
    seed = last;
  }
}
const stats = sides.map((s) => {
  const c = s.dp.counters();
  if (c.forwarded !== c.packets) throw new Error(`${s.name}: ${c.packets - c.forwarded} packets not forwarded (${JSON.stringify(c.drops)})`);
  // the fill's mean, not its median: a page's first use is one batch's cost in many
  const fillNs = CHURN ? null : s.fillNs.reduce((a, b) => a + b, 0) / s.fillNs.length;
  return { build: s.name, fillNs, newNs: median(s.newNs), steadyNs: CHURN ? null : median(s.steadyNs), packets: c.packets };
});
console.log(CHURN
  ? `every packet a new flow, flows expiring, a table of ${FLOWS.toLocaleString("en-US")}, ${TARGETS} targets, ${ROUNDS} rounds (ns per packet, median batch of ${SLOTS})`
  : `${FLOWS.toLocaleString("en-US")} live flows, ${TARGETS} targets, ${ROUNDS} rounds (ns per packet, median batch of ${SLOTS})`);
for (const s of stats) {
  console.log(`${s.build.padEnd(40)} new ${s.newNs.toFixed(1).padStart(7)}${CHURN ? "" : `  steady ${s.steadyNs!.toFixed(1).padStart(6)}  fill (mean) ${s.fillNs!.toFixed(1).padStart(6)}`}`);
}
// one file per target count, its runs appended while the builds and the setting stay the same
const out = process.env.PAIR_OUT ?? `bench/results/pair-${CHURN ? "churn-" : ""}${TARGETS}${FLOWS === 1_000_000 ? "" : `-${FLOWS}`}${PREFAULT ? "-prefault" : ""}${TCP ? "-tcp" : ""}.json`;
const baseSha = createHash("sha256").update(baseWasm).digest("hex").slice(0, 16);
const run1 = { generated: new Date().toISOString(), machine: machine(), loadAtEnd: load(), results: stats };
const setting = { command: "BENCH_PAIR_BASE=... npm run bench:pair", base: BASE, baseSha256: baseSha, flows: FLOWS, targets: TARGETS, rounds: ROUNDS, warmup: WARMUP, churn: CHURN, prefault: PREFAULT, tcp: TCP };
let runs = [run1];
if (existsSync(out)) {
  const old = JSON.parse(readFileSync(out, "utf8"));
  const same = old.baseSha256 === baseSha && old.flows === FLOWS && old.targets === TARGETS && old.rounds === ROUNDS && old.warmup === WARMUP && (old.churn ?? false) === CHURN && (old.prefault ?? false) === PREFAULT && (old.tcp ?? false) === TCP && old.runs?.[0]?.machine?.commit === run1.machine.commit;
  if (same) runs = [...old.runs, run1];
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ ...setting, runs }, null, 2)}\n`);
console.log(`raw figures: ${out} (run ${runs.length})`);
