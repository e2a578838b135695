// Huge pages for the core's tables (native/memory.cc, src/core/hugepages.ts):
// the data plane asks for them over its tables once they are reserved, and
// works the same without them. Told to prefault, it makes its tables resident at creation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { adviseHugePages } from "../../src/core/hugepages.js";
import { DataPlane } from "../../src/core/dataplane.js";
import { addonBuilt as addon, thpOn } from "../helpers/hugepages.js";

/** The VmFlags of the mapping of /proc/self/smaps that holds `address`. */
function vmFlags(address: number): string[] | null {
  let inside = false;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) inside = parseInt(range[1], 16) <= address && address < parseInt(range[2], 16);
    else if (inside && line.startsWith("VmFlags:")) return line.slice(8).trim().split(/\s+/);
  }
  return null;
}

test("the core's memory is advised to use huge pages over every whole 2 MiB page (VmFlags hg)", (t) => {
  if (!thpOn) return t.skip("transparent huge pages are off in this kernel");
  if (!addon) return t.skip("the pias_memory addon is not built (npm rebuild needs g++ and make)");
  const memory = new WebAssembly.Memory({ initial: 160 }); // 10 MiB
  const advice = adviseHugePages(memory.buffer);
  assert.ok(advice.bytes >= 8 << 20, `advised ${advice.bytes} bytes`);
  assert.equal(advice.start % (2 << 20), 0);
  assert.ok(vmFlags(advice.start)?.includes("hg"), "no hg flag on the advised mapping");
  assert.ok(vmFlags(advice.start + advice.bytes - 1)?.includes("hg"), "no hg flag at the end of the advised range");
  assert.equal(adviseHugePages(new ArrayBuffer(4096)).bytes, 0, "a buffer without a whole 2 MiB page gets nothing advised");
  // from an offset on: the whole 2 MiB pages after it, to the same end
  const part = adviseHugePages(memory.buffer, 6 << 20);
  assert.ok(part.start - advice.start >= 4 << 20, `advised from ${part.start - advice.start} bytes past the whole memory's first`);
  assert.equal(part.start + part.bytes, advice.start + advice.bytes);
  assert.throws(() => adviseHugePages(memory.buffer, memory.buffer.byteLength + 1), /offset outside the buffer/);
});

test("a data plane asks for huge pages over its tables unless told not to, and forwards alike either way", () => {
  const settings = { address: "198.51.100.1", capacity: { flows: 1 << 18, groups: 4, targets: 16 } };
  const group = { protocol: "udp" as const, address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] };
  const on = DataPlane.create(settings, [group]);
  const off = DataPlane.create({ ...settings, hugePages: false }, [group]);
  assert.equal(off.hugePages, 0);
  if (thpOn && addon) assert.ok(on.hugePages >= 8 << 20, `advised ${on.hugePages} bytes`);
  for (const dp of [on, off]) {
    const batch = dp.createBatch(4);
    batch.add(new Uint8Array([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 203, 0, 113, 10, 0x0f, 0xa0, 0, 53, 0, 8, 0, 0]), { time: 1 });
    dp.process(batch);
    assert.equal(dp.counters().forwarded, 1);
  }
});

/** Rss in bytes of the mapping of /proc/self/smaps that holds `address`. */
function residentBytes(address: number): number {
  let inside = false;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) inside = parseInt(range[1], 16) <= address && address < parseInt(range[2], 16);
    else if (inside && line.startsWith("Rss:")) return Number(/(\d+) kB/.exec(line)![1]) * 1024;
  }
  return -1;
}

test("a data plane told to prefault has its tables resident from creation on (Rss of their mapping), and forwards alike", (t) => {
  if (!addon) return t.skip("the pias_memory addon is not built: it tells where the tables are (npm rebuild needs g++ and make)");
  const capacity = { flows: 1 << 18, groups: 4, targets: 16 };
  const group = { protocol: "udp" as const, address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] };
  const out: number[][] = [];
  for (const prefault of [false, true]) {
    const dp = DataPlane.create({ address: "198.51.100.1", capacity: { ...capacity, prefault } }, [group]);
    // the whole 2 MiB pages of the memory (about 20 MiB: 2^18 records of 48 bytes and their index), advised again
    // (a separate mapping since the first advice)
    const tables = adviseHugePages(dp.memory().buffer as ArrayBuffer);
    const resident = residentBytes(tables.start) / tables.bytes;
    if (prefault) assert.ok(resident > 0.9, `with prefault ${(100 * resident).toFixed(0)}% of the tables are resident`);
    else assert.ok(resident < 0.25, `without prefault ${(100 * resident).toFixed(0)}% of the tables are resident`);
    const batch = dp.createBatch(4);
    batch.add(new Uint8Array([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 203, 0, 113, 10, 0x0f, 0xa0, 0, 53, 0, 8, 0, 0]), { time: 1 });
    dp.process(batch);
    assert.equal(dp.counters().forwarded, 1);
    out.push([...batch.packet(0)]);
  }
  assert.deepEqual(out[1], out[0]);
});
