// Capture framing against tshark, on every shared capture; round trips;
// corrupt files.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync, readFileSync, mkdtempSync, statSync } from "node:fs";
import { join } from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { tmpdir } from "node:os";
import fc from "fast-check";
import { CaptureFormat, Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import { readCapture } from "../../src/capture/file.js";
import { CaptureReader, STAGE_BYTES, type CaptureExports } from "../../src/capture/reader.js";
import { CaptureWriter, WRITE_BEHIND_BYTES, WRITE_BYTES } from "../../src/capture/writer.js";
import { CaptureFileError } from "../../src/errors.js";
import { instantiate } from "../../src/core/wasm.js";
import { CAPTURES_DIR, capture } from "../helpers/paths.js";
import { SKIP_NO_TSHARK, hasTshark, tsharkFields } from "../helpers/tshark.js";
import { IP_PACKET, epb, idb, shb } from "../helpers/pcapng.js";

const CAPTURES = readdirSync(CAPTURES_DIR).filter((f) => /\.pcap(ng)?$/.test(f)).sort();
const tmp = mkdtempSync(join(tmpdir(), "pias-capture-"));

test("there are shared captures to test with", () => {
  assert.ok(CAPTURES.length >= 60, `only ${CAPTURES.length} captures in ${CAPTURES_DIR}`);
});

for (const name of CAPTURES) {
  test(`${name}: packet count, lengths, interfaces and timestamps agree with tshark`, { skip: !hasTshark() && SKIP_NO_TSHARK }, () => {
    const ours = readCapture(capture(name));
    // tshark also lists custom pcapng blocks as frames; they have no encapsulation
    const rows = tsharkFields(capture(name), ["frame.cap_len", "frame.len", "frame.time_epoch", "frame.interface_id", "frame.encap_type"])
      .filter((r) => r[4] !== "");
    assert.equal(ours.packets.length, rows.length, "packet count");
    const digits = isNanos(name) ? 9 : 6;
    // we number interfaces across sections, tshark within a section: the numbering must correspond
    const ifaceMap = new Map<number, string>();
    ours.packets.forEach((p, i) => {
      const [caplen, len, epoch, iface] = rows[i];
      assert.equal(p.data.length, Number(caplen), `frame ${i + 1} captured length`);
      assert.equal(p.wirelen, Math.max(Number(len), Number(caplen)), `frame ${i + 1} length`);
      if (epoch) {
        const [sec, frac = "0"] = epoch.split(".");
        assert.equal(BigInt(p.time), BigInt(sec) % (1n << 32n), `frame ${i + 1} seconds`);
        if (ours.format === CaptureFormat.Pcap) assert.equal(p.tsLo, Number(frac.padEnd(9, "0").slice(0, digits)), `frame ${i + 1} fraction`);
      }
      if (iface) {
        assert.equal(ifaceMap.get(p.iface) ?? iface, iface, `frame ${i + 1} interface`);
        ifaceMap.set(p.iface, iface);
      }
    });
  });
}

/** Every packet block of a pcapng the writer wrote (little-endian) pads its data to 4 bytes with zeros. */
function assertZeroPadding(path: string): void {
  const f = readFileSync(path);
  for (let at = 0; at + 12 <= f.length;) {
    const type = f.readUInt32LE(at), len = f.readUInt32LE(at + 4);
    if (type === 6) {
      const caplen = f.readUInt32LE(at + 20);
      const pad = f.subarray(at + 28 + caplen, at + len - 4);
      assert.ok(pad.every((x) => x === 0), `the padding of the block at byte ${at} is ${pad.toString("hex")}`);
    }
    at += len;
  }
}

/** The ns-resolution pcap files among the captures (magic a1b23c4d in either byte order). */
function isNanos(name: string): boolean {
  const m = readFileSync(capture(name)).readUInt32LE(0);
  return m === 0xa1b23c4d || m === 0x4d3cb2a1;
}

interface Copier {
  core: CaptureExports;
  desc: number;
  arena: number;
  arenaBytes: number;
  reader: CaptureReader;
  writer: CaptureWriter;
}

function copier(input: string, output: string, slots: number, overlap = false): Copier {
  const core = instantiate<CaptureExports>();
  const desc = core.alloc_buffer(slots * Layout.DESC_SIZE);
  const arenaBytes = Layout.MAX_PACKET + 4 * Layout.HEADROOM;
  const arena = core.alloc_buffer(arenaBytes);
  const reader = new CaptureReader(input, core, false, overlap);
  return { core, desc, arena, arenaBytes, reader, writer: new CaptureWriter(output, core, 2 * arenaBytes + (1 << 16), overlap) };
}

function forwardAll(c: Copier, n: number): void {
  const v = new DataView(c.core.memory.buffer);
  for (let i = 0; i < n; i++) v.setUint8(c.desc + i * Layout.DESC_SIZE + Desc.VERDICT, Verdict.Forward);
}

/** Read a capture through the core and write every packet back out; returns the packets and the bytes the writer wrote. */
function copyThroughCore(input: string, output: string, slots = 64): { packets: number; written: number } {
  const c = copier(input, output, slots);
  let total = 0;
  for (let begun = false; ;) {
    const n = c.reader.readBatch(c.desc, slots, c.arena, c.arenaBytes);
    if (!begun) { c.writer.begin(); begun = true; }
    if (n === 0) break;
    forwardAll(c, n);
    c.writer.writeBatch(c.desc, n);
    total += n;
  }
  c.reader.close();
  c.writer.close();
  return { packets: total, written: c.writer.bytesWritten };
}

/** copyThroughCore reading ahead and writing behind (as a replay does). */
async function copyAheadBehind(input: string, output: string, slots = 64): Promise<{ packets: number; written: number }> {
  const c = copier(input, output, slots, true);
  let total = 0;
  try {
    for (let begun = false; ;) {
      const n = await c.reader.readBatchAhead(c.desc, slots, c.arena, c.arenaBytes);
      if (!begun) { c.writer.begin(); begun = true; }
      if (n === 0) break;
      forwardAll(c, n);
      await c.writer.writeBatchBehind(c.desc, n);
      total += n;
    }
  } finally {
    c.reader.close();
    await c.writer.closeBehind();
  }
  return { packets: total, written: c.writer.bytesWritten };
}

/**
 * A pcap (raw IP) of `bytes` or more whose records' lengths vary from 0 to
 * the largest the core takes, so that records fall across every boundary of
 * the reader's chunks, largest ones too.
 */
function bigCapture(path: string, bytes: number, seed: number): void {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(Layout.MAX_PACKET, 16);
  header.writeUInt32LE(101, 20);
  parts.push(header);
  let total = 24;
  let x = seed >>> 0 || 1;
  const next = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  for (let i = 0; total < bytes; i++) {
    const r = next();
    const len = r % 97 === 0 ? Layout.MAX_PACKET - (r % 5) : r % 7 === 0 ? r % 70000 : r % 1600;
    const rec = Buffer.alloc(16 + len, i & 0xff);
    rec.writeUInt32LE(i, 0);
    rec.writeUInt32LE(len, 8);
    rec.writeUInt32LE(len, 12);
    parts.push(rec);
    total += rec.length;
  }
  writeFileSync(path, Buffer.concat(parts));
}

for (const name of CAPTURES) {
  test(`${name}: read then written again, every packet keeps its bytes, lengths, interface and timestamp`, () => {
    const out = join(tmp, `${name}.copy`);
    copyThroughCore(capture(name), out, 7);
    const a = readCapture(capture(name));
    const b = readCapture(out);
    assert.equal(b.format, a.format);
    assert.equal(b.packets.length, a.packets.length);
    a.packets.forEach((p, i) => assert.deepEqual(b.packets[i], p, `packet ${i + 1}`));
    if (b.format === CaptureFormat.PcapNg) assertZeroPadding(out);
    if (hasTshark()) {
      // packets only (tshark lists custom blocks as frames too); a simple packet block has no timestamp,
      // and we write it as an enhanced packet block with timestamp 0
      const fields = ["frame.len", "frame.cap_len", "frame.protocols", "frame.time_epoch", "frame.encap_type"];
      const before = tsharkFields(capture(name), fields).filter((r) => r[4] !== "");
      const after = tsharkFields(out, fields);
      assert.equal(after.length, before.length, "tshark sees as many packets");
      before.forEach((r, i) => {
        assert.deepEqual(after[i].slice(0, 3), r.slice(0, 3), `frame ${i + 1}`);
        if (r[3]) assert.equal(after[i][3], r[3], `frame ${i + 1} time`);
      });
    }
  });
}

test(`the writer's output, gathered over several writes of ${WRITE_BYTES} bytes, reaches the file whole (ppp__example2.pcap, one packet a batch)`, () => {
  const input = capture("ppp__example2.pcap");
  const out = join(tmp, "gathered.pcap");
  const { packets, written } = copyThroughCore(input, out, 1);
  assert.ok(written > 4 * WRITE_BYTES);
  assert.equal(written, statSync(out).size);
  assert.equal(readCapture(out).packets.length, packets);
  assert.deepEqual(readFileSync(out), readFileSync(input), "a pcap copied through the core is the same file");
});

test("a write that fails (a full device) is one CaptureFileError naming the file, and close() neither writes it again nor throws", { skip: !existsSync("/dev/full") && "no /dev/full" }, () => {
  const core = instantiate<CaptureExports>();
  const desc = core.alloc_buffer(64 * Layout.DESC_SIZE);
  const arenaBytes = Layout.MAX_PACKET + 64 * 2048;
  const arena = core.alloc_buffer(arenaBytes);
  const reader = new CaptureReader(capture("ppp__example2.pcap"), core);
  const writer = new CaptureWriter("/dev/full", core, 2 * arenaBytes + (1 << 16));
  let failed: unknown;
  try {
    for (let begun = false; ;) {
      const n = reader.readBatch(desc, 64, arena, arenaBytes);
      if (!begun) { writer.begin(); begun = true; }
      if (n === 0) break;
      for (let i = 0; i < n; i++) new DataView(core.memory.buffer).setUint8(desc + i * Layout.DESC_SIZE + Desc.VERDICT, Verdict.Forward);
      writer.writeBatch(desc, n);
    }
  } catch (e) {
    failed = e;
  }
  reader.close();
  assert.ok(failed instanceof CaptureFileError, String(failed));
  assert.match((failed as Error).message, /^cannot write \/dev\/full: /);
  writer.close();
  assert.equal(writer.bytesWritten, 0);
});

test(`a capture of several read chunks (${STAGE_BYTES * 5 / 2 >> 20} MiB, records up to the largest across every chunk boundary), copied reading ahead and writing behind, is the same file, as copied in place`, async () => {
  const input = join(tmp, "big.pcap");
  bigCapture(input, STAGE_BYTES * 5 / 2, 2005);
  const inPlace = join(tmp, "big.copy.pcap");
  const behind = join(tmp, "big.behind.pcap");
  const a = copyThroughCore(input, inPlace, 64);
  const b = await copyAheadBehind(input, behind, 64);
  assert.equal(b.packets, a.packets);
  assert.ok(b.written > 4 * WRITE_BEHIND_BYTES, "several writes behind");
  assert.equal(b.written, statSync(behind).size);
  const original = readFileSync(input);
  assert.ok(readFileSync(inPlace).equals(original), "copied in place: the same file");
  assert.ok(readFileSync(behind).equals(original), "copied ahead and behind: the same file");
});

test("a reader closed while it reads ahead closes its file once that read is done", { skip: !existsSync("/proc/self/fd") && "needs /proc" }, async () => {
  const input = join(tmp, "big-for-close.pcap");
  bigCapture(input, 3 * STAGE_BYTES, 5);
  const fds = (): number => readdirSync("/proc/self/fd").length;
  const before = fds();
  const c = copier(input, join(tmp, "unused.pcap"), 64, true);
  assert.ok(await c.reader.readBatchAhead(c.desc, 64, c.arena, c.arenaBytes) > 0); // the next chunk is being read now
  c.reader.close();
  await c.writer.closeBehind();
  for (let i = 0; i < 100 && fds() > before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(fds(), before);
});

test("a capture read from a pipe (short reads, no size known) is framed whole, reading ahead or in place", { skip: process.platform !== "linux" && "needs mkfifo" }, async () => {
  const input = join(tmp, "piped.pcap");
  bigCapture(input, STAGE_BYTES + (3 << 20), 17);
  const original = readFileSync(input);
  for (const ahead of [false, true]) {
    const fifo = join(tmp, `fifo-${ahead}`);
    execFileSync("mkfifo", [fifo]);
    // dd writes the pipe 4 KiB at a time: the reader sees short reads
    const feeder = spawn("dd", [`if=${input}`, `of=${fifo}`, "bs=4096"], { stdio: "ignore" });
    try {
      const out = join(tmp, `piped-${ahead}.pcap`);
      const r = ahead ? await copyAheadBehind(fifo, out, 64) : copyThroughCore(fifo, out, 64);
      assert.ok(r.packets > 0);
      assert.ok(readFileSync(out).equals(original), ahead ? "reading ahead" : "in place");
    } finally {
      feeder.kill(); // (done by now, unless the copy failed)
    }
  }
});

test("a write behind that fails (a full device) is one CaptureFileError naming the file, from writeBatchBehind or closeBehind; the file is closed", { skip: !existsSync("/dev/full") && "no /dev/full" }, async () => {
  const input = join(tmp, "big-for-full.pcap");
  bigCapture(input, 4 * WRITE_BEHIND_BYTES, 3);
  await assert.rejects(copyAheadBehind(input, "/dev/full", 64), (e: unknown) => {
    assert.ok(e instanceof CaptureFileError, String(e));
    assert.match((e as Error).message, /^cannot write \/dev\/full: /);
    return true;
  });
});

test("one packet per batch and a tiny arena still frame every record (records across chunk boundaries)", () => {
  const name = "pcapngtest__test202.pcapng";
  const out = join(tmp, "tiny.pcapng");
  assert.equal(copyThroughCore(capture(name), out, 1).packets, readCapture(capture(name)).packets.length);
  assert.deepEqual(readCapture(out).packets, readCapture(capture(name)).packets);
});

function expectCaptureError(bytes: Uint8Array, pattern: RegExp): void {
  const f = join(tmp, `bad-${Math.random().toString(36).slice(2)}.pcap`);
  writeFileSync(f, bytes);
  assert.throws(() => readCapture(f), (e: unknown) => {
    assert.ok(e instanceof CaptureFileError, String(e));
    assert.ok(!e.message.includes("\n"), "one line");
    assert.match(e.message, pattern);
    return true;
  });
}

const sample = readFileSync(capture("tcpreplay__test.pcap"));
const sampleNg = readFileSync(capture("ppp__pcapng-example.pcapng"));

test("a pcapng with more interfaces than 1,024 over its sections (2,000 in two sections) is read, and written back with every packet on its interface", () => {
  const raw = 101; // LINKTYPE_RAW
  const blocks = [shb(), ...Array.from({ length: 1200 }, () => idb(raw)), epb(1199), shb(), ...Array.from({ length: 800 }, () => idb(raw)), epb(799)]; // the file's interface 1999
  const f = join(tmp, "many-interfaces.pcapng");
  writeFileSync(f, Buffer.concat(blocks));
  const c = readCapture(f);
  assert.deepEqual(c.packets.map((p) => p.iface), [1199, 1999]);
  const out = join(tmp, "many-interfaces.copy.pcapng");
  copyThroughCore(f, out, 7);
  assert.deepEqual(readCapture(out).packets.map((p) => p.iface), [1199, 1999]);
});

test("property: a pcapng packet's seconds are its timestamp over its interface's if_tsresol, plus if_tsoffset, whatever the order of the timestamps", () => {
  // per interface: if_tsresol (decimal 10^-r or binary 2^-r) and if_tsoffset; packets jump forwards and back across seconds
  const resol = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 40 }).map((b) => 0x80 | b));
  const iface = fc.record({ resol, offset: fc.bigInt({ min: -(1n << 40n), max: 1n << 40n }) });
  const stamp = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: 1n << 36n }));
  fc.assert(fc.property(fc.array(iface, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), stamp, fc.integer({ min: -2, max: 2 })), { minLength: 1, maxLength: 40 }), (ifaces, packets) => {
    const ticks = ifaces.map((f) => (f.resol & 0x80 ? 1n << BigInt(f.resol & 0x7f) : 10n ** BigInt(f.resol)));
    const blocks = [shb()];
    for (const f of ifaces) {
      const options = Buffer.alloc(8 + 12 + 4); // if_tsresol; if_tsoffset; end of options
      options.writeUInt16LE(9, 0); options.writeUInt16LE(1, 2); options[4] = f.resol;
      options.writeUInt16LE(14, 8); options.writeUInt16LE(8, 10); options.writeBigInt64LE(f.offset, 12);
      blocks.push(idb(101, options));
    }
    const want: number[] = [];
    for (const [n, raw, nudge] of packets) {
      const i = n % ifaces.length;
      // near a second's boundary now and then: the last tick of a second, the first of the next
      const ts = nudge === 0 ? raw : ((raw / ticks[i]) * ticks[i] + (nudge < 0 ? -1n : BigInt(nudge - 1)) + ticks[i]) % (1n << 64n);
      blocks.push(epb(i, IP_PACKET, ts));
      want.push(Number(BigInt.asUintN(32, ts / ticks[i] + ifaces[i].offset)));
    }
    const f = join(tmp, "timestamps.pcapng");
    writeFileSync(f, Buffer.concat(blocks));
    assert.deepEqual(readCapture(f).packets.map((p) => p.time), want);
  }), {
    numRuns: 300,
    // the largest timestamp (its second cut short by the 64-bit range), then the smallest
    examples: [[[{ resol: 9, offset: 0n }], [[0, (1n << 64n) - 1n, 0], [0, 0n, 0]]]],
  });
});

test("an empty file is refused with a one-line error", () => {
  expectCaptureError(new Uint8Array(0), /empty file/);
});

test("a file that is not a capture is refused by its magic number", () => {
  expectCaptureError(new TextEncoder().encode("hello, this is not a pcap file at all"), /not a pcap or pcapng file/);
});

test("a pcap cut in its header or in the middle of a record is refused as truncated", () => {
  expectCaptureError(sample.subarray(0, 10), /ends in the middle/);
  expectCaptureError(sample.subarray(0, sample.length - 7), /ends in the middle of a record at byte \d+/);
});

test("a pcap record with an absurd captured length is refused", () => {
  const b = Uint8Array.from(sample.subarray(0, 200));
  new DataView(b.buffer).setUint32(24 + 8, 0x7fffffff, true);
  expectCaptureError(b, /larger than/);
});

test("a pcapng block whose length is corrupt is refused", () => {
  const b = Uint8Array.from(sampleNg);
  const shbLen = new DataView(b.buffer).getUint32(4, true);
  new DataView(b.buffer).setUint32(shbLen + 4, 13, true); // not a multiple of 4
  expectCaptureError(b, /corrupt record or block at byte \d+/);
});

test("arbitrary bytes after a valid or random header never trap: packets or a CaptureFileError", () => {
  const headers = [sample.subarray(0, 24), sampleNg.subarray(0, 28), new Uint8Array(0)];
  fc.assert(
    fc.property(fc.constantFrom(...headers), fc.uint8Array({ maxLength: 600, size: "max" }), (h, body) => {
      const f = join(tmp, "fuzz.pcap");
      const bytes = new Uint8Array(h.length + body.length);
      bytes.set(h);
      bytes.set(body, h.length);
      writeFileSync(f, bytes);
      try {
        readCapture(f);
      } catch (e) {
        assert.ok(e instanceof CaptureFileError, `not a capture error: ${String(e)}`);
      }
    }),
    { numRuns: Number(process.env.PIAS_FUZZ_RUNS ?? 300) },
  );
});
