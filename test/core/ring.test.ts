// The packet ring (src/core/ring.ts): fixed slots in the core's memory that a
// reader fills in place, re-armed by one call per batch. Tested the way the
// TUN addon uses it, without a device: bytes written into slot i, LEN set,
// one DataPlane.processBatch call, then the ring's accessors.

import { test } from "node:test";
import assert from "node:assert/strict";
import { AuxFlag, Desc, Layout, Reason, Verdict } from "../../assembly/shared/abi.js";
import { DataPlane } from "../../src/core/dataplane.js";
import type { PacketRing } from "../../src/core/ring.js";
import { parseAddress } from "../../src/net/addr.js";
import { buildPacket, checksumsValid, locate, type PacketSpec } from "../helpers/packets.js";

const a = (text: string): Uint8Array => parseAddress(text).bytes;
const udp = (over: Partial<PacketSpec> = {}): Uint8Array =>
  buildPacket({ family: 4, proto: "udp", src: a("10.0.0.1"), dst: a("203.0.113.10"), sport: 5000, dport: 53, payload: new Uint8Array(20), ...over });

function dataPlane(): DataPlane {
  return DataPlane.create({ address: "198.51.100.1", capacity: { flows: 1024, groups: 4, targets: 4 } }, [
    { protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 5353 }] },
    { protocol: "udp", address: "203.0.113.20", port: 53, targets: [{ address: "192.0.2.12", aware: true }] },
  ]);
}

/** Descriptor field `field` (u32) of slot i. */
function desc32(dp: DataPlane, ring: PacketRing, i: number, field: number): number {
  return new DataView(dp.memory().buffer).getUint32(ring.desc + i * Layout.DESC_SIZE + field, true);
}

/** What a reader does: the packet into slot i at OFF, its length into LEN and WIRELEN. */
function fill(dp: DataPlane, ring: PacketRing, i: number, packet: Uint8Array): void {
  const view = new DataView(dp.memory().buffer);
  const d = ring.desc + i * Layout.DESC_SIZE;
  ring.memory().set(packet, view.getUint32(d + Desc.OFF, true));
  view.setUint32(d + Desc.LEN, packet.length, true);
  view.setUint32(d + Desc.WIRELEN, packet.length, true);
}

test("reset arms every slot: OFF past the headroom of slot i, LEN and WIRELEN the capacity, the link type and time given, no verdict", () => {
  const dp = dataPlane();
  const ring = dp.createRing(8, 1500);
  assert.equal(ring.stride, (Layout.HEADROOM + 1500 + 7) & ~7);
  ring.reset(8, 1234, 1);
  const mem = new DataView(dp.memory().buffer);
  for (let i = 0; i < 8; i++) {
    const d = ring.desc + i * Layout.DESC_SIZE;
    assert.equal(desc32(dp, ring, i, Desc.OFF), ring.base + i * ring.stride + Layout.HEADROOM, `slot ${i} OFF`);
    assert.equal(desc32(dp, ring, i, Desc.LEN), 1500);
    assert.equal(desc32(dp, ring, i, Desc.WIRELEN), 1500);
    assert.equal(mem.getUint16(d + Desc.LINK, true), 1);
    assert.equal(desc32(dp, ring, i, Desc.TIME), 1234);
    assert.equal(ring.verdict(i), 0);
    assert.equal(ring.reason(i), 0);
  }
});

test("a ring's slots hold at most Layout.MAX_PACKET bytes", () => {
  const dp = dataPlane();
  assert.throws(() => dp.createRing(2, Layout.MAX_PACKET + 1), RangeError);
  assert.equal(dp.createRing(1, Layout.MAX_PACKET).capacity, Layout.MAX_PACKET);
});

test("packets read into slots go through one processBatch call: verdicts, reasons and the rewritten bytes at packet(i), a tunnel header in the headroom", () => {
  const dp = dataPlane();
  const ring = dp.createRing(4, 1500);
  ring.reset(4, 1000);
  const packets = [udp(), udp({ dst: a("203.0.113.99") }), udp({ dst: a("203.0.113.20") })];
  packets.forEach((p, i) => fill(dp, ring, i, p));
  assert.equal(dp.processBatch(ring.desc, packets.length), 0);

  assert.equal(ring.verdict(0), Verdict.Forward);
  const nat = ring.packet(0);
  assert.deepEqual([...locate(nat).dst], [192, 0, 2, 11]);
  assert.deepEqual([...locate(nat).src], [198, 51, 100, 1]);
  assert.deepEqual(checksumsValid(nat), { ip: true, l4: true, quoted: true });

  assert.equal(ring.verdict(1), Verdict.Drop);
  assert.equal(ring.reason(1), Reason.NotForProxy);

  assert.equal(ring.verdict(2), Verdict.Forward);
  const tunnelled = ring.packet(2);
  assert.equal(tunnelled.length, packets[2].length + 20);
  assert.equal(tunnelled[9], 4, "IP-in-IP");
  assert.deepEqual([...tunnelled.subarray(20)], [...packets[2]], "the client's packet, unchanged, inside");
  assert.equal(desc32(dp, ring, 2, Desc.OFF), ring.base + 2 * ring.stride + Layout.HEADROOM - 20, "the outer header went into the headroom");
  assert.equal(new DataView(dp.memory().buffer).getUint16(ring.desc + 2 * Layout.DESC_SIZE + Desc.AUX, true) & AuxFlag.Encapsulated, AuxFlag.Encapsulated);

  ring.reset(4, 1001);
  assert.equal(desc32(dp, ring, 2, Desc.OFF), ring.base + 2 * ring.stride + Layout.HEADROOM, "reset moves OFF back");
  assert.equal(ring.verdict(0), 0);
});

test("the ring's memory view follows the core's memory when it grows", () => {
  const dp = dataPlane();
  const ring = dp.createRing(2, 1500);
  ring.reset(2, 1000);
  fill(dp, ring, 0, udp());
  const before = ring.memory();
  dp.allocBuffer(64 << 20); // grows the memory: the old buffer is detached
  assert.equal(before.byteLength, 0);
  assert.ok(ring.memory().buffer === dp.memory().buffer, "the ring sees the grown memory");
  assert.deepEqual([...ring.packet(0).subarray(0, 20)], [...udp().subarray(0, 20)]);
});
