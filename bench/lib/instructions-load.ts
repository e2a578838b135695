// The load bench/instructions.ts counts under callgrind: one data plane (a
// group of INSTR_TARGETS targets, affinity, UDP), then INSTR_BATCHES batches
// of 1024 packets, each written by this script and processed by the core.
//
//   INSTR_LOAD=new   every packet a new flow whose client never comes back,
//                    8 batches a second, flows idle after a second (a table
//                    of 32,768: the expiry sweep frees the records new
//                    flows take, as bench:pair's PAIR_CHURN=1)
//   INSTR_LOAD=fill  every packet a new flow that stays, in a table of
//                    262,144 (as bench:scale's new flows, without expiry)
//   INSTR_LOAD=live  10,000 live flows made first, then packets of flows
//                    drawn at random among them
//   INSTR_HARNESS=1  the same packets written, none processed (the
//                    harness's own share, which bench/instructions.ts takes off)
//   INSTR_WASM=FILE  the core's build (default: this checkout's release build)

import { readFileSync } from "node:fs";
import { DataPlane } from "../../src/core/dataplane.js";
import { Desc, Layout } from "../../assembly/shared/abi.js";
import { GROUP_ADDR, SMALL_PACKET, oneGroup, smallPacket, xorshift32 } from "./one-group.js";

const LOAD = process.env.INSTR_LOAD ?? "new";
const BATCHES = Number(process.env.INSTR_BATCHES ?? 110);
const TARGETS = Number(process.env.INSTR_TARGETS ?? 34);
const HARNESS = process.env.INSTR_HARNESS === "1";
const LIVE_FLOWS = 10_000;
const SLOTS = 1024;
const STRIDE = Layout.HEADROOM + 64;
if (LOAD !== "new" && LOAD !== "fill" && LOAD !== "live") throw new Error(`INSTR_LOAD: "new", "fill" or "live", not ${LOAD}`);

const dp = DataPlane.create({
  address: "198.51.100.1",
  capacity: { flows: LOAD === "new" ? 32768 : LOAD === "fill" ? 262144 : LIVE_FLOWS + SLOTS, groups: 1, targets: TARGETS + 16 },
  timeouts: { tcpEstablished: 7440, tcpTransitory: 240, udp: LOAD === "new" ? 1 : 1 << 30, icmp: 60 },
  module: process.env.INSTR_WASM ? new WebAssembly.Module(readFileSync(process.env.INSTR_WASM)) : undefined,
}, [oneGroup(TARGETS)]);
const batch = dp.createBatch(SLOTS, SLOTS * STRIDE + Layout.HEADROOM);
const template = smallPacket(GROUP_ADDR, 53);

// The harness allocates nothing per batch (views made once, remade only if the memory grew): a collection in one
// of the counted runs and not the other would count as the core's.
let mem = dp.memory();
let view = new DataView(mem.buffer);
const ids = new Uint32Array(SLOTS);

/** Write a batch of packets from the clients ids[0..SLOTS] (a client's address is its id) at `time`. */
function write(time: number): void {
  if (view.buffer !== dp.memory().buffer) {
    mem = dp.memory();
    view = new DataView(mem.buffer);
  }
  for (let i = 0; i < SLOTS; i++) {
    const d = batch.desc + i * Layout.DESC_SIZE;
    const at = batch.arena + Layout.HEADROOM + i * STRIDE;
    view.setUint32(d + Desc.OFF, at, true);
    view.setUint32(d + Desc.LEN, SMALL_PACKET, true);
    view.setUint32(d + Desc.WIRELEN, SMALL_PACKET, true);
    view.setUint16(d + Desc.LINK, 101, true);
    view.setUint32(d + Desc.TIME, time, true);
    mem.set(template, at);
    view.setUint32(at + 12, (10 << 24) + ids[i], false);
  }
}

if (LOAD === "live") {
  for (let from = 0; from < LIVE_FLOWS; from += SLOTS) {
    for (let i = 0; i < SLOTS; i++) ids[i] = Math.min(from + i, LIVE_FLOWS - 1);
    write(1000);
    dp.process(batch, SLOTS);
  }
}
const rand = xorshift32(); // the live flows drawn
for (let b = 0; b < BATCHES; b++) {
  for (let i = 0; i < SLOTS; i++) ids[i] = LOAD === "live" ? rand() % LIVE_FLOWS : b * SLOTS + i;
  write(LOAD === "new" ? 1000 + (b >> 3) : 1000);
  if (!HARNESS) dp.process(batch, SLOTS);
}
const c = dp.counters();
if (c.forwarded !== c.packets) throw new Error(`${c.packets - c.forwarded} packets not forwarded (${JSON.stringify(c.drops)})`);
