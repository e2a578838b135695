// Super-packets and partial checksums (Link.VNET: a TUN's virtio_net_hdr in
// front of the packet), against the kernel's rules as the reference model
// writes them down (src/reference/rewrite/gso.ts: tcp/udp GSO segmentation,
// skb_checksum_help completion, checksums from scratch). Properties for the
// space between the rows; a table of named bad headers and their reasons.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AuxFlag, Link, Reason, Verdict, Vnet, VnetFlag, VnetGso } from "../../assembly/shared/abi.js";
import { DataPlane, reasonName, type GroupSpec } from "../../src/core/dataplane.js";
import { parseAddress } from "../../src/net/addr.js";
import { pseudoHeaderSum } from "../../src/net/checksum.js";
import { completeChecksum, segment } from "../../src/reference/rewrite/gso.js";
import { ReferenceModel } from "../../src/reference/model.js";
import { buildPacket, checksumsValid, locate, type PacketSpec } from "../helpers/packets.js";

const runs = process.env.PIAS_FUZZ_RUNS ? Number(process.env.PIAS_FUZZ_RUNS) : 150;
const PROXY = "198.51.100.1";
const PROXY6 = "2001:db8:ff::1";
const ip4 = (s: string): Uint8Array => Uint8Array.from(s.split(".").map(Number));
const CLIENT4 = ip4("10.1.2.3");
const TA4 = ip4("203.0.113.10");
const CLIENT6 = parseAddress("2001:db8:1::3").bytes;
const TA6 = parseAddress("2001:db8:0:71::10").bytes;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

interface Super {
  family: 4 | 6;
  proto: "tcp" | "udp";
  payload: number;
  gsoSize: number;
  partial: boolean;
  flags: number;
  seq: number;
  id: number;
  df: boolean;
  sport: number;
}

const superPacket: fc.Arbitrary<Super> = fc.record({
  family: fc.constantFrom(4 as const, 6 as const),
  proto: fc.constantFrom("tcp" as const, "udp" as const),
  payload: fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 3000, max: 16000 })),
  gsoSize: fc.oneof(fc.constantFrom(536, 1000, 1448), fc.integer({ min: 8, max: 2000 })),
  partial: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  flags: fc.constantFrom(0x10, 0x18, 0x19, 0x98, 0x11),
  seq: fc.nat({ max: 0xffffffff }),
  id: fc.nat({ max: 0xffff }),
  df: fc.boolean(),
  sport: fc.integer({ min: 1024, max: 65535 }),
});

/** The IP bytes of the super-packet (a partial checksum holds the pseudo-header's sum over its whole length). */
function ipOf(s: Super): Uint8Array {
  const spec: PacketSpec = {
    family: s.family, proto: s.proto, src: s.family === 4 ? CLIENT4 : CLIENT6, dst: s.family === 4 ? TA4 : TA6,
    sport: s.sport, dport: 80, tcpFlags: s.flags, tcpSeq: s.seq, ipId: s.id, df: s.df,
    payload: Uint8Array.from({ length: s.payload }, (_, i) => (i * 31 + s.seq) & 0xff),
  };
  const ip = buildPacket(spec);
  if (s.partial) setPartial(ip);
  return ip;
}

/** Replace the transport checksum with the pseudo-header's sum: what a sender with checksum offload leaves. */
function setPartial(ip: Uint8Array): void {
  const at = locate(ip);
  const off = at.l4 + (at.proto === 6 ? 16 : 6);
  const sum = pseudoHeaderSum(at.src, at.dst, at.proto, ip.length - at.l4);
  ip[off] = sum >>> 8;
  ip[off + 1] = sum & 0xff;
}

/**
 * `b` with the checksum at `csumAt` as the kernel writes it when it completes a
 * partial one: a sum that comes to 0 is written 0xffff (skb_checksum_help's
 * CSUM_MANGLED_0, as completeChecksum does), where a TCP checksum computed
 * from scratch or updated by the core stays 0. Both are the one's complement
 * zero and verify alike.
 */
function asCompleted(b: Uint8Array, csumAt: number): Uint8Array {
  const c = b.slice();
  if (c[csumAt] === 0 && c[csumAt + 1] === 0) c[csumAt] = c[csumAt + 1] = 0xff;
  return c;
}

/** A virtio_net_hdr: `gsoSize` 0 asks for no segmentation. */
function vnet(ip: Uint8Array, partial: boolean, gsoSize: number): Uint8Array {
  const at = locate(ip);
  const h = new Uint8Array(Vnet.SIZE);
  const v = new DataView(h.buffer);
  const tcp = at.proto === 6;
  if (partial) {
    h[Vnet.FLAGS] = VnetFlag.NeedsCsum;
    v.setUint16(Vnet.CSUM_START, at.l4, true);
    v.setUint16(Vnet.CSUM_OFFSET, tcp ? 16 : 6, true);
  }
  if (gsoSize) {
    h[Vnet.GSO_TYPE] = tcp ? (at.family === 4 ? VnetGso.TcpV4 : VnetGso.TcpV6) : VnetGso.UdpL4;
    v.setUint16(Vnet.GSO_SIZE, gsoSize, true);
    v.setUint16(Vnet.HDR_LEN, at.l4 + (tcp ? 20 : 8), true);
  }
  return h;
}

const frame = (h: Uint8Array, ip: Uint8Array): Uint8Array => Uint8Array.from([...h, ...ip]);

function dataPlane(aware: boolean, tunnelMtu = 65535): DataPlane {
  const dp = new DataPlane({ address: PROXY, address6: PROXY6, tunnelMtu, capacity: { flows: 256, groups: 8, targets: 8 } });
  for (const family of [4, 6] as const) {
    for (const protocol of ["tcp", "udp"] as const) {
      const g: GroupSpec = {
        protocol, address: family === 4 ? "203.0.113.10" : "2001:db8:0:71::10", port: 80, policy: "affinity",
        targets: [{ address: family === 4 ? "192.0.2.11" : "2001:db8:0:11::11", port: 8080, aware }],
      };
      dp.addGroup(g);
    }
  }
  return dp;
}

/** Run frames through the core in one batch; each result's verdict, reason and bytes (without the virtio header). */
function run(dp: DataPlane, frames: Uint8Array[]): { verdict: Verdict; reason: Reason; aux: number; frame: Uint8Array }[] {
  const b = dp.createBatch(frames.length, frames.reduce((n, f) => n + f.length + 256, 0));
  for (const f of frames) assert.ok(b.add(f, { link: Link.VNET, time: 100 }));
  dp.process(b);
  return frames.map((_, i) => ({ verdict: b.verdict(i), reason: b.reason(i), aux: b.aux(i), frame: b.packet(i).slice() }));
}

test("NAT of a GSO super-packet and then segmentation gives byte for byte the segments that segmentation and then NAT of each segment give", () => {
  fc.assert(fc.property(superPacket, (s) => {
    const ip = ipOf(s);
    // NAT once, then the kernel cuts it
    const [whole] = run(dataPlane(false), [frame(vnet(ip, s.partial, s.gsoSize), ip)]);
    assert.equal(whole.verdict, Verdict.Forward, reasonName(whole.reason));
    assert.deepEqual(whole.frame.subarray(0, Vnet.SIZE), vnet(ip, s.partial, s.gsoSize), "the virtio header goes out as it came: the kernel segments");
    const natThenCut = segment(whole.frame.subarray(Vnet.SIZE), s.gsoSize, s.partial).map((x) => hex(x.ip));
    // cut first, then NAT every segment
    const pieces = segment(ip, s.gsoSize, s.partial);
    const cutThenNat = run(dataPlane(false), pieces.map((p) => frame(vnet(p.ip, s.partial, 0), p.ip))).map((r) => {
      assert.equal(r.verdict, Verdict.Forward, reasonName(r.reason));
      return hex(r.frame.subarray(Vnet.SIZE));
    });
    assert.deepEqual(natThenCut, cutThenNat);
  }), { numRuns: runs });
});

test("a partial checksum NATed and then completed as the kernel does is the checksum of the packet completed first and NATed (inet_proto_csum_replace with pseudohdr)", () => {
  fc.assert(fc.property(superPacket, (s) => {
    const ip = ipOf({ ...s, partial: true, payload: s.payload % 1400 });
    const at = locate(ip);
    const csumOffset = at.proto === 6 ? 16 : 6;
    const completed = ip.slice();
    completeChecksum(completed, at.l4, csumOffset);
    const [partial, full] = [run(dataPlane(false), [frame(vnet(ip, true, 0), ip)])[0], run(dataPlane(false), [frame(vnet(completed, false, 0), completed)])[0]];
    const out = partial.frame.slice(Vnet.SIZE);
    completeChecksum(out, at.l4, csumOffset);
    assert.equal(hex(out), hex(asCompleted(full.frame.subarray(Vnet.SIZE), at.l4 + csumOffset)));
    assert.deepEqual(checksumsValid(out), { ip: true, l4: true, quoted: true });
  }), { numRuns: runs });
});

test("toward a PIAS-aware target the core cuts a super-packet as the kernel would: every segment, its partial checksum completed, is the reference's segment byte for byte and every checksum verifies by full recomputation", () => {
  fc.assert(fc.property(superPacket, (s) => {
    const ip = ipOf(s);
    const dp = dataPlane(true);
    const area = dp.createSegmentArea(4096, 1 << 22);
    const [r] = run(dp, [frame(vnet(ip, s.partial, s.gsoSize), ip)]);
    assert.equal(r.verdict, Verdict.Drop, "the super-packet's own slot is left empty");
    assert.equal(r.reason, Reason.None);
    const want = segment(ip, s.gsoSize, false); // full checksums, from scratch
    area.count = dp.segmentsEmitted();
    assert.equal(area.count, want.length, "one packet per segment");
    const outer = s.family === 4 ? 20 : 40;
    for (let i = 0; i < area.count; i++) {
      assert.equal(area.verdict(i), Verdict.Forward);
      assert.equal(area.aux(i), AuxFlag.Encapsulated | AuxFlag.ToTarget);
      const f = area.packet(i).slice();
      const h = new DataView(f.buffer, 0, Vnet.SIZE);
      const tunnel = f.subarray(Vnet.SIZE);
      assert.equal(f[Vnet.GSO_TYPE], VnetGso.None, "a segment asks for no GSO");
      if (s.partial) {
        assert.equal(f[Vnet.FLAGS], VnetFlag.NeedsCsum);
        assert.equal(h.getUint16(Vnet.CSUM_START, true), outer + locate(ip).l4, "csum_start follows the inner packet behind the outer header");
        completeChecksum(tunnel, h.getUint16(Vnet.CSUM_START, true), h.getUint16(Vnet.CSUM_OFFSET, true));
      } else {
        assert.equal(f[Vnet.FLAGS], 0);
      }
      const inner = tunnel.subarray(outer);
      const expected = s.partial ? asCompleted(want[i].ip, locate(ip).l4 + h.getUint16(Vnet.CSUM_OFFSET, true)) : want[i].ip;
      assert.equal(hex(inner), hex(expected), `segment ${i} of ${want.length}`);
      assert.deepEqual(checksumsValid(inner), { ip: true, l4: true, quoted: true });
      if (s.family === 4) assert.deepEqual(checksumsValid(tunnel).ip, true, "the outer header's checksum");
    }
  }), {
    numRuns: runs,
    // a segment whose TCP checksum comes to 0 (found by the property: completed, it reads 0xffff)
    examples: [[{ family: 4, proto: "tcp", payload: 204, gsoSize: 12, partial: true, flags: 16, seq: 345355062, id: 0, df: false, sport: 13755 }]],
  });
});

test("virtio headers that do not describe their packet are dropped with their own reasons, counted, never a trap", () => {
  const tcp = buildPacket({ family: 4, proto: "tcp", src: CLIENT4, dst: TA4, sport: 4000, dport: 80, tcpFlags: 0x10, payload: new Uint8Array(3000) });
  const udp = buildPacket({ family: 4, proto: "udp", src: CLIENT4, dst: TA4, sport: 4000, dport: 80, payload: new Uint8Array(3000) });
  const tcp6 = buildPacket({ family: 6, proto: "tcp", src: CLIENT6, dst: TA6, sport: 4000, dport: 80, tcpFlags: 0x10, payload: new Uint8Array(3000) });
  const frag = buildPacket({ family: 4, proto: "udp", src: CLIENT4, dst: TA4, sport: 4000, dport: 80, payload: new Uint8Array(100) });
  frag[6] |= 0x20; // more fragments
  const header = (f: Partial<Record<"flags" | "gso" | "hdrLen" | "gsoSize" | "start" | "offset", number>>): Uint8Array => {
    const h = new Uint8Array(Vnet.SIZE);
    const v = new DataView(h.buffer);
    h[0] = f.flags ?? 0;
    h[1] = f.gso ?? 0;
    v.setUint16(2, f.hdrLen ?? 0, true);
    v.setUint16(4, f.gsoSize ?? 0, true);
    v.setUint16(6, f.start ?? 0, true);
    v.setUint16(8, f.offset ?? 0, true);
    return h;
  };
  const cases: [string, Uint8Array, Reason][] = [
    ["gso_size 0", frame(header({ gso: VnetGso.TcpV4 }), tcp), Reason.GsoSizeZero],
    ["hdr_len past the packet", frame(header({ hdrLen: tcp.length + 1 }), tcp), Reason.VnetHdrLenPastPacket],
    ["csum_start past the packet", frame(header({ flags: 1, start: tcp.length, offset: 0 }), tcp), Reason.VnetCsumOutside],
    ["csum field past the packet", frame(header({ flags: 1, start: 20, offset: tcp.length }), tcp), Reason.VnetCsumOutside],
    ["csum_offset not at the TCP checksum", frame(header({ flags: 1, start: 20, offset: 6 }), tcp), Reason.VnetCsumOutside],
    ["csum_start not at the transport header", frame(header({ flags: 1, start: 0, offset: 36 }), tcp), Reason.VnetCsumOutside],
    ["a partial checksum on a fragment", frame(header({ flags: 1, start: 20, offset: 6 }), frag), Reason.VnetCsumOutside],
    ["TCPV4 on UDP", frame(header({ gso: VnetGso.TcpV4, gsoSize: 1000 }), udp), Reason.GsoTypeMismatch],
    ["TCPV4 on IPv6", frame(header({ gso: VnetGso.TcpV4, gsoSize: 1000 }), tcp6), Reason.GsoTypeMismatch],
    ["TCPV6 on IPv4", frame(header({ gso: VnetGso.TcpV6, gsoSize: 1000 }), tcp), Reason.GsoTypeMismatch],
    ["UDP_L4 on TCP", frame(header({ gso: VnetGso.UdpL4, gsoSize: 1000 }), tcp), Reason.GsoTypeMismatch],
    ["UFO (not accepted)", frame(header({ gso: VnetGso.Udp, gsoSize: 1000 }), udp), Reason.GsoTypeMismatch],
    ["UDP_L4 with the ECN bit", frame(header({ gso: VnetGso.UdpL4 | VnetGso.Ecn, gsoSize: 1000 }), udp), Reason.GsoTypeMismatch],
    ["GSO on a fragment", frame(header({ gso: VnetGso.UdpL4, gsoSize: 50 }), frag), Reason.GsoTypeMismatch],
    ["an unknown GSO type", frame(header({ gso: 9, gsoSize: 1000 }), tcp), Reason.GsoTypeMismatch],
    ["a header cut short", new Uint8Array(6), Reason.Truncated],
  ];
  const dp = dataPlane(false);
  const results = run(dp, cases.map(([, f]) => f));
  cases.forEach(([what, , reason], i) => {
    assert.equal(results[i].verdict, Verdict.Drop, what);
    assert.equal(reasonName(results[i].reason), reasonName(reason), what);
  });
  const drops = dp.counters().drops;
  for (const r of [Reason.GsoSizeZero, Reason.VnetHdrLenPastPacket, Reason.VnetCsumOutside, Reason.GsoTypeMismatch]) assert.ok(drops[reasonName(r)] > 0, reasonName(r));
});

test("a super-packet to an aware target with no segment area left is dropped as gso-no-room, and one whose segments exceed the tunnel MTU gets the MTU back once", () => {
  const ip = ipOf({ family: 4, proto: "tcp", payload: 10000, gsoSize: 1448, partial: true, flags: 0x10, seq: 1, id: 1, df: true, sport: 5000 });
  const noArea = run(dataPlane(true), [frame(vnet(ip, true, 1448), ip)])[0];
  assert.equal(noArea.reason, Reason.GsoNoRoom);
  const dp = dataPlane(true, 1400);
  dp.createSegmentArea(64, 1 << 20);
  const [r] = run(dp, [frame(vnet(ip, true, 1448), ip)]);
  assert.equal(r.verdict, Verdict.Forward);
  assert.equal(r.aux & AuxFlag.Generated, AuxFlag.Generated, "fragmentation needed, generated");
  const err = r.frame.subarray(Vnet.SIZE);
  assert.deepEqual(r.frame.subarray(0, Vnet.SIZE), new Uint8Array(Vnet.SIZE), "the error asks nothing of the kernel");
  assert.equal(err[20], 3);
  assert.equal(err[21], 4);
  assert.equal((err[26] << 8) | err[27], 1400 - 20, "the MTU left inside the tunnel");
  assert.deepEqual(checksumsValid(err), { ip: true, l4: true, quoted: true });
  assert.equal(dp.segmentsEmitted(), 0);
  assert.equal(dp.counters().drops["packet-too-big"], 1);
});

test("a super-packet cut at a snap length (a capture's) is dropped as gso-truncated toward an aware target, never cut from bytes it does not have; toward a legacy target it is NATed whole", () => {
  const ip = ipOf({ family: 4, proto: "tcp", payload: 6000, gsoSize: 1448, partial: false, flags: 0x10, seq: 1, id: 1, df: true, sport: 5000 });
  const whole = frame(vnet(ip, false, 1448), ip);
  const snapped = whole.subarray(0, Vnet.SIZE + 200); // the first 200 bytes of the IP packet captured
  const run1 = (dp: DataPlane) => {
    dp.createSegmentArea(64, 1 << 20);
    const b = dp.createBatch(1, 1 << 16);
    assert.ok(b.add(snapped, { link: Link.VNET, time: 100, wirelen: whole.length }));
    dp.process(b);
    return { verdict: b.verdict(0), reason: b.reason(0), frame: b.packet(0).slice(), segments: dp.segmentsEmitted() };
  };
  const aware = run1(dataPlane(true));
  assert.equal(reasonName(aware.reason), "gso-truncated");
  assert.equal(aware.segments, 0, "no segment made");
  const legacy = run1(dataPlane(false));
  assert.equal(legacy.verdict, Verdict.Forward, reasonName(legacy.reason));
  assert.equal(legacy.frame.length, snapped.length, "NATed as captured");
  // the reference model: the same drop (it used to throw, having nothing to cut)
  const model = new ReferenceModel({ address: PROXY, address6: PROXY6 });
  model.createSegmentArea(64, 1 << 20);
  model.addGroup({ protocol: "tcp", address: "203.0.113.10", port: 80, policy: "affinity", targets: [{ address: "192.0.2.11", port: 8080, aware: true }] });
  const [m] = model.process([{ data: snapped, link: Link.VNET, time: 100, wirelen: whole.length }]);
  assert.equal(reasonName(m!.reason), "gso-truncated");
});

test("arbitrary virtio headers in front of arbitrary packets never trap and always get a verdict", () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: Vnet.SIZE, maxLength: Vnet.SIZE }), superPacket, fc.uint8Array({ maxLength: 64 }), (h, s, junk) => {
    const dp = dataPlane(s.sport % 2 === 0);
    dp.createSegmentArea(64, 1 << 18);
    const ip = s.sport % 3 === 0 ? junk : ipOf(s);
    const [r] = run(dp, [frame(h, ip)]);
    assert.ok(r.verdict === Verdict.Drop || r.verdict === Verdict.Forward || r.verdict === Verdict.ToHost);
  }), { numRuns: runs * 2 });
});
