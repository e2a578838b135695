// The fast paths (assembly/fastpath.ts) take only what the general pipeline
// would give the same answer for: the cases where another stage claims a
// packet of a live flow first, and the first packets of new flows.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Desc, HostWork, Layout, Verdict } from "../../assembly/shared/abi.js";
import { DataPlane, reasonName, type GroupSpec } from "../../src/core/dataplane.js";
import { run } from "../helpers/dataplane.js";
import { buildPacket } from "../helpers/packets.js";
import { OverlayNet, PORT, ip4 } from "../helpers/overlay.js";

const udp = (src: string, sport: number, dst: string, dport: number): Uint8Array =>
  buildPacket({ family: 4, proto: "udp", src: ip4(src), dst: ip4(dst), sport, dport, payload: new Uint8Array(40) });

test("a reply to a NAT binding whose port is the overlay's goes to the overlay, as the general pipeline sends it", () => {
  // one NAT port, the overlay's: the flow's binding is P:PORT
  const net = new OverlayNet([{ id: "n1", address: "10.255.0.1" }], { settings: { natPorts: [PORT, PORT] } });
  const n1 = net.node("n1");
  n1.dp.addGroup({ protocol: "udp", address: "198.51.100.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] });
  const out = n1.one(udp("192.0.2.50", 4000, "198.51.100.10", 53));
  assert.equal(out.verdict, Verdict.Forward);
  assert.equal((out.out[20] << 8) | out.out[21], PORT, "the binding took the overlay's port");
  // the target's reply to P:PORT: a live flow's packet, and UDP to the overlay's port on the node's address
  for (let i = 0; i < 3; i++) {
    const reply = n1.one(udp("192.0.2.11", 53, "10.255.0.1", PORT));
    assert.equal(reply.verdict, Verdict.Drop, "reverse-NATed instead of going to the overlay");
    assert.match(reasonName(reply.reason), /^overlay-/);
  }
});

test("a reply to a NAT binding whose port is the control port goes to the host as a control message, as the general pipeline sends it", () => {
  const dp = DataPlane.create({ address: "10.255.0.1", natPorts: [7470, 7470], controlPort: 7470, capacity: { flows: 1024, groups: 4, targets: 4 } },
    [{ protocol: "udp", address: "198.51.100.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] }]);
  const batch = dp.createBatch(4);
  const [out] = run(dp, batch, [udp("192.0.2.50", 4000, "198.51.100.10", 53)]);
  assert.equal(out.verdict, Verdict.Forward);
  for (let i = 0; i < 3; i++) {
    const [reply] = run(dp, batch, [udp("192.0.2.11", 53, "10.255.0.1", 7470)]);
    assert.equal(reply.verdict, Verdict.ToHost, "reverse-NATed instead of going to the host");
    assert.equal(reply.reason, HostWork.Control);
  }
});

test("the first packets of new flows (TCP with and without SYN, UDP, ICMP echo; affinity and proximity; legacy and aware targets; NAT ports running out) get the same verdicts, reasons, bytes, counters and target statistics through the new-flow fast path as through the general pipeline", () => {
  const groups: GroupSpec[] = [
    { protocol: "tcp", address: "198.51.100.10", port: 80, policy: "affinity", targets: [{ address: "192.0.2.11", port: 8080 }, { address: "192.0.2.12", port: 8080 }] },
    { protocol: "tcp", address: "198.51.100.11", port: 80, policy: "proximity", targets: [{ address: "192.0.2.13", port: 8080 }] },
    { protocol: "udp", address: "198.51.100.12", port: 53, policy: "affinity", targets: [{ address: "192.0.2.14", port: 53 }, { address: "192.0.2.15", port: 53, aware: true }] },
    { protocol: "icmp", address: "198.51.100.13", policy: "affinity", targets: [{ address: "192.0.2.16" }] },
  ];
  const client = (i: number): Uint8Array => Uint8Array.of(10, 1, i >> 8, i & 255);
  const packets: Uint8Array[] = [];
  for (let i = 0; i < 60; i++) {
    const src = client(i);
    packets.push(buildPacket({ family: 4, proto: "tcp", src, dst: ip4("198.51.100.10"), sport: 1000 + i, dport: 80, tcpFlags: i % 3 === 0 ? 0x10 : 0x02, payload: new Uint8Array(0) }));
    packets.push(buildPacket({ family: 4, proto: "tcp", src, dst: ip4("198.51.100.11"), sport: 1000 + i, dport: 80, tcpFlags: i % 3 === 0 ? 0x18 : 0x02, payload: new Uint8Array(4) }));
    packets.push(buildPacket({ family: 4, proto: "udp", src, dst: ip4("198.51.100.12"), sport: 2000 + i, dport: 53, payload: new Uint8Array(12) }));
    packets.push(buildPacket({ family: 4, proto: "icmp", src, dst: ip4("198.51.100.13"), sport: 3000 + i, dport: 0, payload: new Uint8Array(8) }));
  }
  // verifyChecksums sends every packet through the general pipeline (the fast paths decline it); the packets' checksums are right
  const outcome = (verifyChecksums: boolean) => {
    const dp = DataPlane.create({ address: "10.255.0.1", natPorts: [40000, 40019], verifyChecksums, capacity: { flows: 4096, groups: 8, targets: 16 } }, groups);
    const batch = dp.createBatch(256, 256 * 2048);
    const results = run(dp, batch, packets);
    return { results, counters: dp.counters(), targets: dp.targetStats() };
  };
  const general = outcome(true);
  const fast = outcome(false);
  assert.ok(general.counters.drops["nat-ports-exhausted"] > 0, "some flows find no NAT port");
  assert.ok(general.counters.drops["no-flow"] > 0, "TCP mid-connection outside affinity is refused");
  assert.ok(general.counters.encapsulated > 0, "some flows go to the aware target");
  assert.deepEqual(fast.results, general.results);
  assert.deepEqual(fast.counters, general.counters);
  assert.deepEqual(fast.targets, general.targets);
});

test("packets that end at the last byte of the core's memory, shorter than the headers the batch prefetch touches, are handled without a read past the memory: a cut IP header and a runt dropped, a capture cut after the UDP header NATed", () => {
  const dp = DataPlane.create({ address: "10.255.0.1", capacity: { flows: 1024, groups: 4, targets: 4 } },
    [{ protocol: "udp", address: "198.51.100.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] }]);
  const desc = dp.allocBuffer(4096);
  const area = dp.allocBuffer(65536);
  assert.equal(area + 65536, dp.memoryBytes(), "the packets' buffer is the last of the memory");
  const whole = udp("192.0.2.50", 4000, "198.51.100.10", 53); // raw IPv4, 68 bytes
  const lengths = [30, 7, 47]; // a cut header, a runt, cut in the UDP payload
  const verdicts = [Verdict.Drop, Verdict.Drop, Verdict.Forward];
  const mem = new DataView(dp.memory().buffer);
  lengths.forEach((len, i) => {
    const p = area + 65536 - len;
    dp.memory().set(whole.subarray(0, len), p);
    const d = desc + i * Layout.DESC_SIZE;
    mem.setUint32(d + Desc.OFF, p, true);
    mem.setUint32(d + Desc.LEN, len, true);
    mem.setUint32(d + Desc.WIRELEN, whole.length, true);
    mem.setUint16(d + Desc.LINK, 228, true); // LINKTYPE_IPV4
    mem.setUint32(d + Desc.TIME, 1000, true);
  });
  dp.processBatch(desc, lengths.length);
  for (let i = 0; i < lengths.length; i++) {
    const d = desc + i * Layout.DESC_SIZE;
    assert.equal(mem.getUint8(d + Desc.VERDICT), verdicts[i], `packet of ${lengths[i]} bytes`);
  }
  assert.equal(dp.counters().packets, lengths.length);
});

test("in a group of more targets than the batch prefetch's MANY_TARGETS (1,100: it touches each live flow's target, and each new flow's table entry and target), new flows, their later packets and the targets' replies get the same verdicts, bytes, counters and target statistics through the fast paths as through the general pipeline, with some targets down", () => {
  const targets = Array.from({ length: 1100 }, (_, i) => ({ address: `192.0.${2 + (i >> 8)}.${i & 255}`, port: 53 }));
  const group: GroupSpec = { protocol: "udp", address: "198.51.100.10", port: 53, policy: "affinity", targets };
  const opening = Array.from({ length: 500 }, (_, i) => udp(`10.1.${i >> 8}.${i & 255}`, 4000 + i, "198.51.100.10", 53));
  const outcome = (verifyChecksums: boolean) => {
    const dp = DataPlane.create({ address: "10.255.0.1", verifyChecksums, capacity: { flows: 4096, groups: 2, targets: 1200 } }, [group]);
    const batch = dp.createBatch(1024, 1024 * 2048);
    const first = run(dp, batch, opening);
    // the targets' replies to the proxy's NAT ports, then the clients' next packets, with every seventh target down
    const replies = first.map((r) => {
      const target = `${r.out[16]}.${r.out[17]}.${r.out[18]}.${r.out[19]}`;
      return udp(target, 53, "10.255.0.1", (r.out[20] << 8) | r.out[21]);
    });
    for (let i = 0; i < targets.length; i += 7) dp.setTargetUp("udp 198.51.100.10:53", `${targets[i].address}:53`, false);
    const later = run(dp, batch, [...replies, ...opening]);
    return { first, later, counters: dp.counters(), targets: dp.targetStats() };
  };
  const general = outcome(true);
  const fast = outcome(false);
  assert.equal(general.first.filter((r) => r.verdict === Verdict.Forward).length, opening.length);
  assert.ok(new Set(general.first.map((r) => r.out[19] | (r.out[18] << 8))).size > 300, "the flows spread over many targets");
  assert.ok(general.later.slice(0, opening.length).every((r) => r.verdict === Verdict.Forward), "every reply is reverse-NATed");
  assert.deepEqual(fast.first, general.first);
  assert.deepEqual(fast.later, general.later);
  assert.deepEqual(fast.counters, general.counters);
  assert.deepEqual(fast.targets, general.targets);
});
