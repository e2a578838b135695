// The few packets the host reads and writes itself (src/net/packet.ts):
// control messages and the first packets of unresolved groups. Checked
// against the test's own packet builder and checksum verifier
// (test/helpers/packets.ts) and against the Wasm core's parser.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Layout } from "../../assembly/shared/abi.js";
import { DataPlane } from "../../src/core/dataplane.js";
import { buildUdp, destination, parseUdp } from "../../src/net/packet.js";
import { parseAddress } from "../../src/net/addr.js";
import { buildPacket, checksumsValid, get16, locate, type PacketSpec } from "../helpers/packets.js";

const RUNS = Number(process.env.PIAS_FUZZ_RUNS) || 300;
const a = (text: string): Uint8Array => parseAddress(text).bytes;
const spec = (over: Partial<PacketSpec>): PacketSpec => ({
  family: 4, proto: "udp", src: a("10.0.0.1"), dst: a("203.0.113.10"), sport: 5000, dport: 7470, payload: new Uint8Array(3), ...over,
});

const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const addr6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const datagram = fc.record({
  v6: fc.boolean(),
  src4: addr4, dst4: addr4, src6: addr6, dst6: addr6,
  sport: fc.integer({ min: 0, max: 0xffff }),
  dport: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

test("buildUdp then parseUdp gives back every field, every checksum verifies by full recomputation, and the core parses the same tuple", () => {
  const dp = new DataPlane({ capacity: { flows: 16, groups: 1, targets: 1 } });
  const batch = dp.createBatch(1, Layout.MAX_PACKET);
  fc.assert(
    fc.property(datagram, (d) => {
      const [src, dst] = d.v6 ? [d.src6, d.dst6] : [d.src4, d.dst4];
      const p = buildUdp(src, d.sport, dst, d.dport, d.payload);
      assert.deepEqual(parseUdp(p), { family: d.v6 ? 6 : 4, src, dst, sport: d.sport, dport: d.dport, payload: d.payload });
      assert.deepEqual(checksumsValid(p), { ip: true, l4: true, quoted: true });
      assert.notEqual(get16(p, locate(p).l4 + 6), 0, "a UDP checksum is never sent as 0");
      batch.clear();
      assert.ok(batch.add(p, { time: 1 }));
      const [v] = dp.inspect(batch.desc, 1);
      assert.deepEqual(
        { reason: v.reason, family: v.family, proto: v.proto, src: v.src, dst: v.dst, sport: v.sport, dport: v.dport },
        { reason: 0, family: d.v6 ? 6 : 4, proto: 17, src, dst, sport: d.sport, dport: d.dport },
      );
    }),
    { numRuns: RUNS },
  );
});

test("a UDP checksum that computes to 0 is sent as 0xffff (RFC 768)", () => {
  for (const [src, dst] of [[a("10.0.0.1"), a("10.0.0.2")], [a("2001:db8::1"), a("2001:db8::2")]]) {
    // with a payload word of 0 the checksum field is c0; a payload word of c0 makes the sum 0xffff, the checksum 0
    const c0 = get16(buildUdp(src, 1, dst, 2, new Uint8Array(2)), src.length === 4 ? 26 : 46);
    const p = buildUdp(src, 1, dst, 2, Uint8Array.of(c0 >> 8, c0 & 255));
    assert.equal(get16(p, src.length === 4 ? 26 : 46), 0xffff);
    assert.equal(checksumsValid(p).l4, true);
  }
});

test("parseUdp refuses what is not a whole UDP datagram", () => {
  const udp = buildPacket(spec({}));
  const cases: [string, Uint8Array][] = [
    ["TCP", buildPacket(spec({ proto: "tcp" }))],
    ["ICMP", buildPacket(spec({ proto: "icmp" }))],
    ["shorter than an IPv4 header", udp.subarray(0, 19)],
    ["UDP header cut short", udp.subarray(0, 27)],
    ["UDP length below 8", Uint8Array.from(udp, (x, i) => (i === 24 ? 0 : i === 25 ? 7 : x))],
    ["UDP length beyond the packet", Uint8Array.from(udp, (x, i) => (i === 25 ? x + 1 : x))],
    ["IPv4 header length below 20", Uint8Array.from(udp, (x, i) => (i === 0 ? 0x44 : x))],
    ["IP version 5", Uint8Array.from(udp, (x, i) => (i === 0 ? 0x55 : x))],
    ["IPv6 shorter than its header", buildPacket(spec({ family: 6, src: a("2001:db8::1"), dst: a("2001:db8::2") })).subarray(0, 39)],
  ];
  for (const [name, p] of cases) assert.equal(parseUdp(p), null, name);
});

test("destination names the protocol, destination address and port of TCP, UDP, ICMP and ICMPv6, and nothing else", () => {
  const six = { family: 6 as const, src: a("2001:db8::1"), dst: a("2001:db8::10") };
  const cases: [string, Uint8Array, ReturnType<typeof destination>][] = [
    ["UDP", buildPacket(spec({ dport: 53 })), { family: 4, protocol: "udp", dst: a("203.0.113.10"), dport: 53 }],
    ["TCP over IPv4 with options", buildPacket(spec({ proto: "tcp", dport: 80, ipOptions: new Uint8Array(8).fill(1) })), { family: 4, protocol: "tcp", dst: a("203.0.113.10"), dport: 80 }],
    ["ICMP", buildPacket(spec({ proto: "icmp" })), { family: 4, protocol: "icmp", dst: a("203.0.113.10"), dport: 0 }],
    ["TCP over IPv6", buildPacket(spec({ ...six, proto: "tcp", dport: 443 })), { family: 6, protocol: "tcp", dst: a("2001:db8::10"), dport: 443 }],
    ["ICMPv6", buildPacket(spec({ ...six, proto: "icmp" })), { family: 6, protocol: "icmp", dst: a("2001:db8::10"), dport: 0 }],
    ["GRE", Uint8Array.from(buildPacket(spec({})), (x, i) => (i === 9 ? 47 : x)), null],
    ["TCP without its ports", buildPacket(spec({ proto: "tcp" })).subarray(0, 22), null],
    ["not IP", new Uint8Array(40), null],
  ];
  for (const [name, p, want] of cases) assert.deepEqual(destination(p), want, name);
});
