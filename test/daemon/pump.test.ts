// The pump (src/daemon/pump.ts): backend -> ring -> one processBatch per
// batch -> backend, and ToHost packets to the host's handler. On the TUN
// backend over an in-memory device (test/helpers/fake-tun.ts): no root.

import { test } from "node:test";
import assert from "node:assert/strict";
import { HostWork, Verdict } from "../../assembly/shared/abi.js";
import { DataPlane } from "../../src/core/dataplane.js";
import type { PacketRing } from "../../src/core/ring.js";
import { Pump } from "../../src/daemon/pump.js";
import { TunBackend } from "../../src/io/tun-backend.js";
import { parseAddress } from "../../src/net/addr.js";
import { FakeTun } from "../helpers/fake-tun.js";
import { buildPacket, get16, locate, type PacketSpec } from "../helpers/packets.js";

const a = (text: string): Uint8Array => parseAddress(text).bytes;
const packet = (over: Partial<PacketSpec> = {}): Uint8Array =>
  buildPacket({ family: 4, proto: "udp", src: a("10.0.0.7"), dst: a("203.0.113.10"), sport: 5000, dport: 53, payload: new Uint8Array(8), ...over });

function setup(slots: number, onHost: ((ring: PacketRing, slot: number) => void) | null = null) {
  const tun = new FakeTun();
  const io = TunBackend.over(tun);
  const dp = DataPlane.create({ address: "198.51.100.1", anycastPrefixes: ["203.0.113.0/24"], capacity: { flows: 4096, groups: 4, targets: 4 } }, [
    { protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 5353 }] },
  ]);
  const pump = new Pump(dp, io, dp.createRing(slots, 1500), onHost);
  return { tun, dp, pump };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test("a burst larger than the ring goes through in ring-sized batches, one processBatch each, and every forwarded packet is written in order", async () => {
  const { tun, dp, pump } = setup(8);
  pump.start();
  tun.deliver(...Array.from({ length: 20 }, (_, i) => packet({ sport: 6000 + i })));
  await turn();
  assert.equal(pump.batches, 3, "8 + 8 + 4");
  assert.equal(tun.pending, 0);
  assert.deepEqual(tun.written.map((p) => [...locate(p).dst].join(".")), Array(20).fill("192.0.2.11"));
  const ports = tun.written.map((p) => get16(p, locate(p).l4));
  assert.equal(new Set(ports).size, 20, "twenty flows, twenty NAT ports");
  assert.equal(dp.counters().flowsLive, 20);
});

test("after 64 batches in one turn the pump yields to the event loop, then carries on", async () => {
  const { tun, pump } = setup(2);
  tun.deliver(...Array.from({ length: 2 * 64 + 5 }, (_, i) => packet({ sport: 7000 + i })));
  pump.drain();
  assert.equal(pump.batches, 64);
  assert.equal(tun.pending, 5);
  await turn();
  assert.equal(pump.batches, 67);
  assert.equal(tun.pending, 0);
  assert.equal(tun.written.length, 2 * 64 + 5);
});

test("packets the core hands to the host reach the host's handler with their slot; without a handler they are counted", async () => {
  const seen: { verdict: Verdict; work: number; bytes: number[] }[] = [];
  const { tun, pump } = setup(8, (ring, slot) => seen.push({ verdict: ring.verdict(slot), work: ring.reason(slot), bytes: [...ring.packet(slot)] }));
  pump.start();
  const unresolved = packet({ dst: a("203.0.113.77") }); // in the anycast prefix, no group: the host asks the RAP
  tun.deliver(packet(), unresolved, packet({ sport: 5001 }));
  await turn();
  assert.deepEqual(seen, [{ verdict: Verdict.ToHost, work: HostWork.Unresolved, bytes: [...unresolved] }]);
  assert.equal(tun.written.length, 2, "the host's packet is not written");
  assert.equal(pump.hostUnhandled, 0);

  const bare = setup(8);
  bare.pump.start();
  bare.tun.deliver(unresolved, unresolved);
  await turn();
  assert.equal(bare.pump.hostUnhandled, 2);
});
