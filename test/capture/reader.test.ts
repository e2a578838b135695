// Capture framing against tshark, on every shared capture; round trips;
// corrupt files.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync, readFileSync, mkdtempSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import fc from "fast-check";
import { CaptureFormat, Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import { readCapture } from "../../src/capture/file.js";
import { CaptureReader, type CaptureExports } from "../../src/capture/reader.js";
import { CaptureWriter, WRITE_BYTES } from "../../src/capture/writer.js";
import { CaptureFileError } from "../../src/errors.js";
import { instantiate } from "../../src/core/wasm.js";
import { CAPTURES_DIR, capture } from "../helpers/paths.js";
import { SKIP_NO_TSHARK, hasTshark, tsharkFields } from "../helpers/tshark.js";

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

/** The ns-resolution pcap files among the captures (magic a1b23c4d in either byte order). */
function isNanos(name: string): boolean {
  const m = readFileSync(capture(name)).readUInt32LE(0);
  return m === 0xa1b23c4d || m === 0x4d3cb2a1;
}

/** Read a capture through the core and write every packet back out; returns the packets and the bytes the writer wrote. */
function copyThroughCore(input: string, output: string, slots = 64): { packets: number; written: number } {
  const core = instantiate<CaptureExports>();
  const desc = core.alloc_buffer(slots * Layout.DESC_SIZE);
  const arenaBytes = Layout.MAX_PACKET + 4 * Layout.HEADROOM;
  const arena = core.alloc_buffer(arenaBytes);
  const reader = new CaptureReader(input, core);
  const writer = new CaptureWriter(output, core, 2 * arenaBytes + (1 << 16));
  let total = 0;
  let begun = false;
  for (;;) {
    const n = reader.readBatch(desc, slots, arena, arenaBytes);
    if (!begun) { writer.begin(); begun = true; }
    if (n === 0) break;
    const v = new DataView(core.memory.buffer);
    for (let i = 0; i < n; i++) v.setUint8(desc + i * Layout.DESC_SIZE + Desc.VERDICT, Verdict.Forward);
    writer.writeBatch(desc, n);
    total += n;
  }
  reader.close();
  writer.close();
  return { packets: total, written: writer.bytesWritten };
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
  const blocks: Uint8Array[] = [];
  const block = (type: number, body: Uint8Array): void => {
    const b = new Uint8Array(12 + body.length);
    const v = new DataView(b.buffer);
    v.setUint32(0, type, true);
    v.setUint32(4, b.length, true);
    b.set(body, 8);
    v.setUint32(b.length - 4, b.length, true);
    blocks.push(b);
  };
  const shb = (): void => block(0x0a0d0d0a, Uint8Array.of(0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
  const idb = (): void => block(1, Uint8Array.of(101, 0, 0, 0, 0, 0, 1, 0)); // LINKTYPE_RAW, snaplen 65536
  const epb = (iface: number): void => {
    const ip = Uint8Array.of(0x45, 0, 0, 20, 0, 0, 0, 0, 64, 253, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2);
    const body = new Uint8Array(20 + ip.length);
    const v = new DataView(body.buffer);
    v.setUint32(0, iface, true);
    v.setUint32(12, ip.length, true);
    v.setUint32(16, ip.length, true);
    body.set(ip, 20);
    block(6, body);
  };
  shb();
  for (let i = 0; i < 1200; i++) idb();
  epb(1199);
  shb();
  for (let i = 0; i < 800; i++) idb();
  epb(799); // the file's interface 1999
  const f = join(tmp, "many-interfaces.pcapng");
  writeFileSync(f, Buffer.concat(blocks));
  const c = readCapture(f);
  assert.deepEqual(c.packets.map((p) => p.iface), [1199, 1999]);
  const out = join(tmp, "many-interfaces.copy.pcapng");
  copyThroughCore(f, out, 7);
  assert.deepEqual(readCapture(out).packets.map((p) => p.iface), [1199, 1999]);
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
