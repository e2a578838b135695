// The TUN backend (src/io/tun-backend.ts) over an in-memory device that keeps
// the addon's contract (test/helpers/fake-tun.ts), with the real core between
// read and write: no device, no root. test/io/tun.test.ts tests the addon
// itself, test/e2e/daemon.test.ts all of it on a real device.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Verdict } from "../../assembly/shared/abi.js";
import { DataPlane } from "../../src/core/dataplane.js";
import { TunBackend, TUN_MTU } from "../../src/io/tun-backend.js";
import { parseAddress } from "../../src/net/addr.js";
import { FakeTun } from "../helpers/fake-tun.js";
import { buildPacket, checksumsValid, locate, type PacketSpec } from "../helpers/packets.js";

const a = (text: string): Uint8Array => parseAddress(text).bytes;
const packet = (over: Partial<PacketSpec> = {}): Uint8Array =>
  buildPacket({ family: 4, proto: "udp", src: a("10.0.0.7"), dst: a("203.0.113.10"), sport: 5000, dport: 53, payload: new Uint8Array(10), ...over });

test("packets read from the device into ring slots go through the core, and what it forwards, only that, is written back", () => {
  const tun = new FakeTun();
  const io = TunBackend.over(tun);
  assert.deepEqual([io.description, io.linkType, io.capacity], ["tun fake0", 101, TUN_MTU]);
  const dp = DataPlane.create({ address: "198.51.100.1", capacity: { flows: 1024, groups: 4, targets: 4 } }, [
    { protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 5353 }] },
  ]);
  const ring = dp.createRing(4, 1500);
  tun.deliver(packet(), packet({ dst: a("203.0.113.99") }), packet({ sport: 5001 }), packet({ payload: new Uint8Array(1600) }), packet({ sport: 5002 }));
  ring.reset(ring.slots, 1000, io.linkType);
  const n = io.read(ring, ring.slots);
  assert.equal(n, 4, "four packets fit their slots; the 1628-byte one was skipped");
  assert.deepEqual([...ring.packet(1)], [...packet({ dst: a("203.0.113.99") })]);
  dp.processBatch(ring.desc, n);
  assert.deepEqual([0, 1, 2, 3].map((i) => ring.verdict(i)), [Verdict.Forward, Verdict.Drop, Verdict.Forward, Verdict.Forward]);
  io.send(ring, n);
  assert.equal(tun.written.length, 3);
  for (const [k, sport] of [[0, 5000], [1, 5001], [2, 5002]]) {
    const out = tun.written[k];
    assert.deepEqual([...locate(out).dst], [192, 0, 2, 11], `packet from port ${sport} NATed to the target`);
    assert.deepEqual(checksumsValid(out), { ip: true, l4: true, quoted: true });
  }
  assert.ok(io.sendOne(packet()));
  assert.deepEqual(io.stats(), { read: 4, written: 4, truncated: 1, writeDropped: 0, writeErrors: 0, readErrors: 0, readCalls: 0, writeCalls: 0, uringFailures: 0 });
  io.close();
  assert.equal(tun.closed, true);
});
