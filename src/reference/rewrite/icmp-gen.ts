// ICMP errors the reference model originates (assembly/rewrite/icmp-gen.ts):
// fragmentation needed / packet too big, with the path MTU left inside the
// tunnel, to the sender of a packet too big for the tunnel to a PIAS-aware
// target. Built in the packet's own slot, in front of the quoted packet.

import { Vnet } from "../../../assembly/shared/abi.js";
import type { Frame } from "../batch.js";
import { complement, onesSum, pseudoHeaderSum } from "../../net/checksum.js";
import { ipHeaderFresh } from "../checksum.js";
import { addrLen, be16, put16, put32, srcOffset, type Parsed } from "../parse.js";
import type { Settings } from "../settings.js";
import type { IpIds } from "./tunnel.js";

/** Too big once encapsulated, and not to be fragmented on the way: IPv4 with DF, or IPv6. `ipLen`: the length to judge (a super-packet's largest segment's). */
export function tooBigForTunnel(b: Uint8Array, p: Parsed, tunnelMtu: number, ipLen = p.ipTotal): boolean {
  if (ipLen + (p.family === 4 ? 20 : 40) <= tunnelMtu) return false;
  return p.family === 6 || (be16(b, p.l3 + 6) & 0x4000) !== 0;
}

/**
 * Replace the frame's packet with fragmentation-needed / packet-too-big from
 * the proxy's address to its sender, quoting it; false (nothing written)
 * when the proxy has no address of the packet's family.
 */
export function packetTooBig(f: Frame, p: Parsed, settings: Settings, ipIds: IpIds): boolean {
  const family = p.family;
  if (!settings.hasProxy(family)) return false;
  const proxy = settings.proxyAddr(family);
  const b = f.buf;
  const hdr = family === 4 ? 28 : 48;
  const quote = Math.min(p.ipEnd - p.l3, (family === 4 ? 576 : 1280) - hdr);
  const total = hdr + quote;
  const newOff = f.off - hdr;
  b.copyWithin(newOff, f.off, f.off + p.linkLen);
  const o = newOff + p.linkLen;
  const sender = b.slice(p.l3 + srcOffset(family), p.l3 + srcOffset(family) + addrLen(family));
  const mtu = settings.tunnelMtu - (family === 4 ? 20 : 40);
  const icmp = o + (family === 4 ? 20 : 40);
  b.fill(0, o, icmp + 8);
  if (family === 4) {
    b[o] = 0x45;
    put16(b, o + 2, total);
    put16(b, o + 4, ipIds.next());
    b[o + 8] = 64;
    b[o + 9] = 1;
    b.set(proxy, o + 12);
    b.set(sender, o + 16);
    ipHeaderFresh(b, o, 20);
    b[icmp] = 3;
    b[icmp + 1] = 4;
    put16(b, icmp + 6, mtu);
    put16(b, icmp + 2, complement(onesSum(b, icmp, icmp + 8 + quote)));
  } else {
    b[o] = 0x60;
    put16(b, o + 4, 8 + quote);
    b[o + 6] = 58;
    b[o + 7] = 64;
    b.set(proxy, o + 8);
    b.set(sender, o + 24);
    b[icmp] = 2;
    put32(b, icmp + 4, mtu);
    put16(b, icmp + 2, complement(onesSum(b, icmp, icmp + 8 + quote, pseudoHeaderSum(proxy, sender, 58, 8 + quote))));
  }
  if (f.link === 1) {
    // back toward the sender: swap the Ethernet addresses
    const dstMac = b.slice(newOff, newOff + 6);
    b.copyWithin(newOff, newOff + 6, newOff + 12);
    b.set(dstMac, newOff + 6);
  }
  if (p.vnet >= 0) {
    b.fill(0, newOff, newOff + Vnet.SIZE); // a plain packet, its checksums complete
    p.vnet = newOff;
  }
  f.off = newOff;
  f.len = p.linkLen + total;
  f.wirelen = f.len;
  return true;
}
