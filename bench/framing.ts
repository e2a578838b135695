// Capture framing alone, in the core (`npm run bench:framing`): ns per packet
// of cap_scan (the records of a capture already in the core's memory framed
// into an arena and descriptors, as the replay's reader does) and of cap_emit
// (every packet forwarded, written back as records of the input's format, as
// the replay's writer does), for the generated 64-byte trace as pcap and as
// pcapng (converted by editcap). Medians over rounds.
//
// BENCH_FRAMING_BASE=FILE.wasm measures another build of the core in the same
// rounds, interleaved with this one (a change against the build before it).
// BENCH_PACKETS (default 1M), BENCH_ROUNDS (default 9).
//
// Writes bench/results/framing.json.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Desc, Layout, Verdict } from "../assembly/shared/abi.js";
import type { CaptureExports } from "../src/capture/reader.js";
import { instantiateModule, wasmPath } from "../src/core/wasm.js";
import { summarize } from "./lib/stats.js";
import { markdownTable, num } from "./lib/table.js";
import { machine } from "./lib/machine.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(ROOT, "dist", "src", "cli", "pias.cjs");
const PACKETS = Number(process.env.BENCH_PACKETS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const BASE = process.env.BENCH_FRAMING_BASE;
const SLOTS = 1024;

/** A core instance from a .wasm file. */
function core(file: string): CaptureExports {
  return instantiateModule<CaptureExports>(new WebAssembly.Module(readFileSync(file)));
}

/** One pass over the whole capture (in the core's memory at `stage`): ns per packet spent in cap_scan and in cap_emit. */
function pass(c: CaptureExports, stage: number, bytes: number, buf: { desc: number; arena: number; arenaBytes: number; out: number; outBytes: number }): { scan: number; emit: number } {
  c.cap_reset();
  let pos = stage;
  const end = stage + bytes;
  let scanNs = 0n, emitNs = 0n, packets = 0;
  c.cap_emit_begin(buf.out, buf.outBytes);
  for (;;) {
    const t0 = process.hrtime.bigint();
    const n = c.cap_scan(pos, end - pos, 1, buf.desc, SLOTS, buf.arena, buf.arenaBytes);
    const t1 = process.hrtime.bigint();
    pos += c.cap_consumed();
    if (c.cap_error() !== 0) throw new Error(`capture error ${c.cap_error()}`);
    if (n === 0) break;
    const v = new DataView(c.memory.buffer);
    for (let i = 0; i < n; i++) v.setUint8(buf.desc + i * Layout.DESC_SIZE + Desc.VERDICT, Verdict.Forward);
    const t2 = process.hrtime.bigint();
    const w = c.cap_emit(buf.desc, n, 0, buf.out, buf.outBytes);
    const t3 = process.hrtime.bigint();
    if (w === 0xffffffff) throw new Error("output buffer too small");
    scanNs += t1 - t0;
    emitNs += t3 - t2;
    packets += n;
  }
  return { scan: Number(scanNs) / packets, emit: Number(emitNs) / packets };
}

function prepare(c: CaptureExports, file: string): { stage: number; bytes: number; buf: Parameters<typeof pass>[3] } {
  const data = readFileSync(file);
  const stage = c.alloc_buffer(data.length);
  new Uint8Array(c.memory.buffer).set(data, stage);
  const arenaBytes = SLOTS * 2048;
  const buf = { desc: c.alloc_buffer(SLOTS * Layout.DESC_SIZE), arena: c.alloc_buffer(arenaBytes), arenaBytes, out: 0, outBytes: 2 * arenaBytes + (1 << 20) };
  buf.out = c.alloc_buffer(buf.outBytes);
  return { stage, bytes: data.length, buf };
}

function main(): void {
  const tmp = mkdtempSync(join(tmpdir(), "pias-bench-framing-"));
  try {
    const pcap = join(tmp, "gen-64.pcap");
    const gen = spawnSync(process.execPath, [CLI, "gen-trace", "--out", pcap, "--packets", String(PACKETS), "--flows", String(Math.max(1, PACKETS >> 2)), "--sizes", "64"], { stdio: "inherit" });
    if (gen.status !== 0) throw new Error("gen-trace failed");
    const files: { format: string; file: string }[] = [{ format: "pcap", file: pcap }];
    const pcapng = join(tmp, "gen-64.pcapng");
    const conv = spawnSync("editcap", ["-F", "pcapng", pcap, pcapng], { stdio: "inherit" });
    if (conv.status === 0) files.push({ format: "pcapng", file: pcapng });
    else console.log("editcap not found (Debian: wireshark-common): pcapng not measured");
    const builds = [{ name: "this build", file: wasmPath("release") }, ...(BASE ? [{ name: `base (${BASE})`, file: BASE }] : [])];
    const results: Record<string, unknown>[] = [];
    const rows: string[][] = [];
    for (const { format, file } of files) {
      const runs = builds.map((b) => { const c = core(b.file); return { ...b, c, ...prepare(c, file), scan: [] as number[], emit: [] as number[] }; });
      for (let round = -1; round < ROUNDS; round++) { // round -1 warms up
        for (const r of round % 2 === 0 ? runs : [...runs].reverse()) {
          const t = pass(r.c, r.stage, r.bytes, r.buf);
          if (round >= 0) { r.scan.push(t.scan); r.emit.push(t.emit); }
        }
      }
      for (const r of runs) {
        const scan = summarize(r.scan), emit = summarize(r.emit);
        results.push({ format, build: r.name, wasm: r.file, packets: PACKETS, scanNs: scan, emitNs: emit });
        rows.push([format, r.name, num(scan.median), `${num(scan.min)}-${num(scan.max)}`, num(emit.median), `${num(emit.min)}-${num(emit.max)}`]);
      }
    }
    console.log(`\nns per packet, median of ${ROUNDS} rounds over ${PACKETS.toLocaleString("en-US")} packets (64-byte trace)`);
    console.log(markdownTable(["format", "core", "read (cap_scan)", "range", "write (cap_emit)", "range"], rows, ["l", "l", "r", "r", "r", "r"]));
    mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
    writeFileSync(join(ROOT, "bench", "results", "framing.json"), `${JSON.stringify({ generated: new Date().toISOString(), machine: machine(), rounds: ROUNDS, results }, null, 2)}\n`);
    console.log("raw figures: bench/results/framing.json");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main();
