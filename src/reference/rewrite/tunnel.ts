// IP-in-IP in the reference model (assembly/rewrite/tunnel.ts; RFC 2003,
// RFC 2473): encapsulation toward PIAS-aware targets moves the link header
// into the headroom and writes the outer IP header between it and the
// unmodified packet; decapsulation of a tunnel to this proxy moves the link
// header forward over the outer header.

import { Reason } from "../../../assembly/shared/abi.js";
import type { Frame } from "../batch.js";
import { ipHeaderFresh } from "../checksum.js";
import { Vnet } from "../../../assembly/shared/abi.js";
import { be16, le16, parseIp, put16, put32, putLe16, PROTO_IPIP, PROTO_IPV6, type Parsed } from "../parse.js";

/** The IPv4 identification of the datagrams the proxy originates (tunnel headers, ICMP errors). */
export class IpIds {
  private id = 0;

  next(): number {
    const id = this.id;
    this.id = (this.id + 1) & 0xffff;
    return id;
  }
}

/** Point the link header at `family`; false when the link type carries only the other family. */
function setLinkFamily(b: Uint8Array, at: number, kind: number, family: 4 | 6, current: 4 | 6): boolean {
  if (family === current) return true;
  if (kind === 1) {
    put16(b, at, family === 4 ? 0x0800 : 0x86dd);
    return true;
  }
  if (kind === 2 || kind === 3) {
    const af = family === 4 ? 2 : 24;
    if (kind === 2) b.set([af, 0, 0, 0], at);
    else b.set([0, 0, 0, af], at);
    return true;
  }
  return kind === 0; // raw carries both; fixed-family link types carry one
}

/** IP-in-IP from src to dst; `entropy` seeds the IPv6 flow label. */
export function encapsulate(f: Frame, p: Parsed, src: Uint8Array, dst: Uint8Array, entropy: number, ipIds: IpIds): void {
  const b = f.buf;
  const outerLen = p.family === 4 ? 20 : 40;
  const newOff = f.off - outerLen;
  b.copyWithin(newOff, f.off, f.off + p.linkLen);
  const o = newOff + p.linkLen;
  const inner = p.l3;
  if (p.family === 4) {
    b.fill(0, o, o + 20);
    b[o] = 0x45;
    b[o + 1] = b[inner + 1]; // TOS
    put16(b, o + 2, (p.ipTotal + 20) & 0xffff);
    put16(b, o + 4, ipIds.next());
    put16(b, o + 6, be16(b, inner + 6) & 0x4000); // RFC 2003: copy DF
    b[o + 8] = 64;
    b[o + 9] = PROTO_IPIP;
    b.set(src, o + 12);
    b.set(dst, o + 16);
    ipHeaderFresh(b, o, 20);
  } else {
    const tc = (be16(b, inner) >>> 4) & 0xff;
    put32(b, o, ((6 << 28) | (tc << 20) | (entropy & 0xfffff)) >>> 0);
    put16(b, o + 4, p.ipTotal & 0xffff);
    b[o + 6] = PROTO_IPV6;
    b[o + 7] = 64;
    b.set(src, o + 8);
    b.set(dst, o + 24);
  }
  if (p.vnet >= 0) {
    // the virtio_net_hdr moved with the link header; a partial checksum's region moved with the inner packet
    if (p.partial) putLe16(b, newOff + Vnet.CSUM_START, le16(b, newOff + Vnet.CSUM_START) + outerLen);
    p.vnet = newOff;
  }
  f.off = newOff;
  // the frame ends where the inner IP packet does (or where the capture cut it)
  f.len = p.linkLen + (p.ipEnd - p.l3) + outerLen;
  f.wirelen = p.linkLen + p.ipTotal + outerLen;
}

/** Strip the outer header of a tunnel packet to us; the link header moves forward and names the inner family. */
export function decapsulate(f: Frame, p: Parsed): Parsed | Reason {
  if (p.isFragment) return Reason.TunnelMalformed;
  const innerFamily = p.proto === PROTO_IPIP ? 4 : 6;
  const shift = p.l4 - f.off - p.linkLen; // outer IP header with its extension headers
  const l2 = p.linkLen;
  const wirelen = Math.max(f.wirelen, f.len);
  const newOff = f.off + shift;
  f.buf.copyWithin(newOff, f.off, f.off + l2);
  if (!setLinkFamily(f.buf, p.protoAt + shift, p.kind, innerFamily, p.family)) return Reason.LinkFamilyMismatch;
  const len = f.len;
  f.off = newOff;
  f.len = len - shift;
  f.wirelen = wirelen - shift;
  const ip = parseIp(f.buf, newOff + l2, len - shift - l2, wirelen - shift - l2, innerFamily);
  if (typeof ip === "number") return Reason.TunnelMalformed;
  // (a partial checksum of a tunnel packet was completed on arrival; tunnel packets are never super-packets)
  return { linkLen: p.linkLen, linkFamily: p.linkFamily, protoAt: p.protoAt, kind: p.kind, ...ip, vnet: p.vnet >= 0 ? newOff : -1, gsoType: 0, gsoSize: 0, partial: false };
}
