// The fragment captures replayed with groups on their destinations: every
// fragment of a forwarded datagram goes to the same target. (Their checksums
// are checked against tshark, with reassembly, in captures.test.ts.)

import { test } from "node:test";
import assert from "node:assert/strict";
import { Layout, Verdict } from "../../assembly/shared/abi.js";
import { DataPlane, type GroupSpec } from "../../src/core/dataplane.js";
import { readCapture } from "../../src/capture/file.js";
import { formatAddress } from "../../src/net/addr.js";
import { get16 } from "../helpers/packets.js";
import { capture } from "../helpers/paths.js";

const FRAGMENT_CAPTURES = [
  "ppp__ip4_fragments.pcap",
  "ppp__ip6_fragments.pcap",
  "zeek__fragmented-syn.pcap",
  "suricata__frag-eth-vlan-ip-tcp-syn.pcap",
  "ndpi__dns_fragmented.pcap",
];

interface Fragment {
  key: string; // datagram: family, source, destination, protocol, identification
  first: boolean;
  dst: string;
  proto: number;
}

/** The IP header after an Ethernet header with any VLAN tags. */
function ipOffset(frame: Uint8Array): number {
  let o = 12;
  while (get16(frame, o) === 0x8100 || get16(frame, o) === 0x88a8) o += 4;
  return o + 2;
}

function fragmentOf(frame: Uint8Array): Fragment | null {
  const ip = frame.subarray(ipOffset(frame));
  if (ip[0] >> 4 === 4) {
    const ff = get16(ip, 6);
    if ((ff & 0x3fff) === 0) return null;
    const src = formatAddress(ip.subarray(12, 16)), dst = formatAddress(ip.subarray(16, 20));
    return { key: `4 ${src} ${dst} ${ip[9]} ${get16(ip, 4)}`, first: (ff & 0x1fff) === 0, dst, proto: ip[9] };
  }
  if (ip[6] !== 44) return null; // a Fragment header right after the fixed header
  const src = formatAddress(ip.subarray(8, 24)), dst = formatAddress(ip.subarray(24, 40));
  const id = ((ip[44] << 24) | (ip[45] << 16) | (ip[46] << 8) | ip[47]) >>> 0;
  return { key: `6 ${src} ${dst} ${ip[40]} ${id}`, first: (get16(ip, 42) & 0xfff8) === 0, dst, proto: ip[40] };
}

for (const name of FRAGMENT_CAPTURES) {
  test(`${name}: every fragment of a forwarded datagram goes to the same target`, () => {
    const packets = readCapture(capture(name)).packets;
    const frags = packets.map((p) => fragmentOf(p.data));
    const groups = new Map<string, GroupSpec>();
    for (const f of frags) {
      if (!f) continue;
      const protocol = f.proto === 6 ? "tcp" : f.proto === 17 ? "udp" : null;
      if (!protocol || groups.has(`${protocol} ${f.dst}`)) continue;
      const v4 = !f.dst.includes(":");
      const t = v4 ? ["192.0.2.11", "192.0.2.12", "192.0.2.13"] : ["2001:db8:b::11", "2001:db8:b::12", "2001:db8:b::13"];
      groups.set(`${protocol} ${f.dst}`, { protocol, address: f.dst, port: 0, targets: t.map((address) => ({ address })) });
    }
    assert.ok(groups.size > 0, "the capture has fragmented TCP or UDP");
    const dp = DataPlane.create({ address: "198.51.100.1", address6: "2001:db8:ff::1", capacity: { flows: 4096, groups: 64, targets: 256 } }, [...groups.values()]);
    const batch = dp.createBatch(packets.length, Layout.MAX_PACKET + packets.length * 2048);
    for (const p of packets) batch.add(p.data, { link: p.link, wirelen: p.wirelen, time: p.time });
    dp.process(batch);
    const targetOf = new Map<string, string>();
    let followed = 0;
    packets.forEach((p, i) => {
      const f = frags[i];
      if (!f || batch.verdict(i) !== Verdict.Forward) return;
      const out = batch.packet(i);
      const ip = out.subarray(ipOffset(out));
      const dst = ip[0] >> 4 === 4 ? formatAddress(ip.subarray(16, 20)) : formatAddress(ip.subarray(24, 40));
      const seen = targetOf.get(f.key);
      if (seen === undefined) {
        assert.ok(f.first, `frame ${i + 1}: a later fragment was forwarded before its first fragment`);
        targetOf.set(f.key, dst);
      } else {
        assert.equal(dst, seen, `frame ${i + 1}: fragment of ${f.key} went to another target`);
        followed++;
      }
    });
    assert.ok(targetOf.size > 0, "some fragmented datagram was forwarded");
    assert.ok(followed > 0, "later fragments followed their first fragment");
    packets.forEach((_, i) => {
      const f = frags[i];
      if (f && targetOf.has(f.key)) assert.equal(batch.verdict(i), Verdict.Forward, `frame ${i + 1}: a fragment of a forwarded datagram was dropped (reason ${batch.reason(i)})`);
    });
  });
}
