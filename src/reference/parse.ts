// The reference model's packet parser: link layer, IPv4/IPv6 (options and
// extension headers), transport header. Plain reads from a Uint8Array at
// absolute offsets; every check in the order the Wasm core makes it
// (assembly/parse.ts, assembly/wire/link.ts), because the first failing
// check decides the drop reason.

import { Link, Reason, Vnet, VnetFlag, VnetGso } from "../../assembly/shared/abi.js";

export const PROTO_HOPOPTS = 0;
export const PROTO_ICMP = 1;
export const PROTO_IPIP = 4;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_IPV6 = 41;
export const PROTO_ROUTING = 43;
export const PROTO_FRAGMENT = 44;
export const PROTO_AH = 51;
export const PROTO_ICMPV6 = 58;
export const PROTO_DSTOPTS = 60;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

export const be16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
export const be32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
export function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, (v >>> 16) & 0xffff);
  put16(b, o + 2, v & 0xffff);
}

export function isV6Extension(nh: number): boolean {
  return [0, 43, 44, 60, 51, 135, 139, 140, 253, 254].includes(nh);
}
export const icmpProto = (family: 4 | 6): number => (family === 4 ? PROTO_ICMP : PROTO_ICMPV6);
export const isEchoRequest = (family: 4 | 6, type: number): boolean => type === (family === 4 ? 8 : 128);
export const isEchoReply = (family: 4 | 6, type: number): boolean => type === (family === 4 ? 0 : 129);
export function isIcmpError(family: 4 | 6, type: number): boolean {
  return family === 4 ? [3, 4, 5, 11, 12].includes(type) : type >= 1 && type <= 4;
}
export const srcOffset = (family: 4 | 6): number => (family === 4 ? 12 : 8);
export const dstOffset = (family: 4 | 6): number => (family === 4 ? 16 : 24);
export const addrLen = (family: 4 | 6): number => (family === 4 ? 4 : 16);
export const sameAddr = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
export const hex = (a: Uint8Array): string => Array.from(a, (x) => x.toString(16).padStart(2, "0")).join("");

/** What the link layer told. */
export interface LinkInfo {
  linkLen: number;
  /** IP version the link announced, 0 = the IP header decides. */
  linkFamily: 0 | 4 | 6;
  /** Offset of the link's protocol field. */
  protoAt: number;
  /** 0 none (raw), 1 ethertype, 2 NULL little-endian AF, 3 NULL big-endian AF, 4 fixed family. */
  kind: number;
}

/** A parsed IP datagram (offsets absolute in the buffer; ports and identifiers in host order). */
export interface IpInfo {
  family: 4 | 6;
  l3: number;
  ipHdrLen: number;
  ipTotal: number;
  ipEnd: number;
  truncated: boolean;
  proto: number;
  l4: number;
  l4Len: number;
  l4Avail: number;
  isFragment: boolean;
  fragOffset: number;
  fragId: number;
  fragPayload: number;
  fragProto: number;
  hasL4Header: boolean;
  sport: number;
  dport: number;
  tcpFlags: number;
  icmpType: number;
  icmpError: boolean;
  /** Offset of the transport checksum, -1 when absent from this packet (or UDP checksum 0). */
  csumAt: number;
}

/** What a virtio_net_hdr in front of the packet (Link.VNET) said, once checked. */
export interface VnetInfo {
  /** Offset of the header, -1 without one. */
  vnet: number;
  /** GSO type without the ECN bit (VnetGso.None: not a super-packet), and the segment payload size. */
  gsoType: number;
  gsoSize: number;
  /** The transport checksum is partial (NEEDS_CSUM at it). */
  partial: boolean;
}

export type Parsed = LinkInfo & IpInfo & VnetInfo;

export const NO_VNET: VnetInfo = { vnet: -1, gsoType: VnetGso.None, gsoSize: 0, partial: false };

/** Little-endian u16 (the virtio_net_hdr's fields). */
export const le16 = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);
export function putLe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

function fromEthertype(type: number, linkLen: number, protoAt: number): LinkInfo | Reason {
  if (type === ETHERTYPE_IPV4) return { linkLen, linkFamily: 4, protoAt, kind: 1 };
  if (type === ETHERTYPE_IPV6) return { linkLen, linkFamily: 6, protoAt, kind: 1 };
  return Reason.NotIp;
}

export function parseLink(b: Uint8Array, p: number, len: number, link: number): LinkInfo | Reason {
  switch (link) {
    case 1: {
      if (len < 14) return Reason.Truncated;
      let off = 12;
      let type = be16(b, p + off);
      let tags = 0;
      while (type === 0x8100 || type === 0x88a8 || type === 0x9100) {
        if (++tags > 8) return Reason.NotIp;
        off += 4;
        if (len < off + 2) return Reason.Truncated;
        type = be16(b, p + off);
      }
      return fromEthertype(type, off + 2, p + off);
    }
    case 113:
      if (len < 16) return Reason.Truncated;
      return fromEthertype(be16(b, p + 14), 16, p + 14);
    case 276:
      if (len < 20) return Reason.Truncated;
      return fromEthertype(be16(b, p), 20, p);
    case 0: {
      if (len < 4) return Reason.Truncated;
      let af = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
      let kind = 2;
      if (af > 0xffff) {
        af = be32(b, p);
        kind = 3;
      }
      if (af === 2) return { linkLen: 4, linkFamily: 4, protoAt: p, kind };
      if (af === 10 || af === 24 || af === 28 || af === 30) return { linkLen: 4, linkFamily: 6, protoAt: p, kind };
      return Reason.NotIp;
    }
    case 101:
      if (len < 1) return Reason.Truncated;
      return { linkLen: 0, linkFamily: 0, protoAt: 0, kind: 0 };
    case 228:
      return { linkLen: 0, linkFamily: 4, protoAt: 0, kind: 4 };
    case 229:
      return { linkLen: 0, linkFamily: 6, protoAt: 0, kind: 4 };
    case Link.VNET:
      if (len < Vnet.SIZE + 1) return Reason.Truncated;
      return { linkLen: Vnet.SIZE, linkFamily: 0, protoAt: 0, kind: 0 };
  }
  return Reason.LinkUnsupported;
}

/** Parse link and IP layers of the `len` captured bytes (`wirelen` on the wire) at `p`. */
export function parsePacket(b: Uint8Array, p: number, len: number, wirelen: number, link: number): Parsed | Reason {
  const l = parseLink(b, p, len, link);
  if (typeof l === "number") return l;
  if (wirelen < len) wirelen = len;
  const ip = parseIp(b, p + l.linkLen, len - l.linkLen, wirelen - l.linkLen, l.linkFamily);
  if (typeof ip === "number") return ip;
  const out: Parsed = { ...l, ...ip, ...NO_VNET };
  if (link !== Link.VNET) return out;
  out.vnet = p;
  const r = checkVnet(b, out);
  return r === Reason.None ? out : r;
}

/** The virtio_net_hdr must describe the packet (assembly/parse.ts checkVnet, same checks in the same order). */
function checkVnet(b: Uint8Array, p: Parsed): Reason {
  const h = p.vnet;
  const avail = p.ipEnd - p.l3;
  if (le16(b, h + Vnet.HDR_LEN) > avail) return Reason.VnetHdrLenPastPacket;
  const gso = b[h + Vnet.GSO_TYPE];
  const type = gso & ~VnetGso.Ecn;
  const tcp = p.proto === PROTO_TCP && !p.isFragment;
  if (gso !== VnetGso.None) {
    if (le16(b, h + Vnet.GSO_SIZE) === 0) return Reason.GsoSizeZero;
    const fits = type === VnetGso.TcpV4 ? tcp && p.family === 4
      : type === VnetGso.TcpV6 ? tcp && p.family === 6
      : type === VnetGso.UdpL4 ? p.proto === PROTO_UDP && !p.isFragment && (gso & VnetGso.Ecn) === 0
      : false;
    if (!fits) return Reason.GsoTypeMismatch;
    p.gsoType = type;
    p.gsoSize = le16(b, h + Vnet.GSO_SIZE);
  }
  if ((b[h + Vnet.FLAGS] & VnetFlag.NeedsCsum) === 0) return Reason.None;
  const start = le16(b, h + Vnet.CSUM_START);
  const field = start + le16(b, h + Vnet.CSUM_OFFSET);
  if (field + 2 > avail || p.isFragment || p.truncated) return Reason.VnetCsumOutside;
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP) {
    if (p.l3 + start !== p.l4 || p.l3 + field !== p.l4 + (p.proto === PROTO_TCP ? 16 : 6)) return Reason.VnetCsumOutside;
    p.partial = true;
    p.csumAt = p.l3 + field;
  }
  return Reason.None;
}

interface Frag {
  isFragment: boolean;
  fragOffset: number;
  /** IPv4 identification or the Fragment header's. */
  fragId: number;
  /** Where the fragmentable part starts (fragment offsets count from here). */
  fragPayload: number;
  /** Protocol keying the fragments: IPv4 protocol, or the Fragment header's next header. */
  fragProto: number;
}

/** Parse an IP datagram at `ip` with `avail` captured and `wireAvail` wire bytes; `expect` 0 = any version. */
export function parseIp(b: Uint8Array, ip: number, avail: number, wireAvail: number, expect: number): IpInfo | Reason {
  if (avail < 1) return Reason.Truncated;
  const v = b[ip] >>> 4;
  if (expect !== 0 && v !== expect) return Reason.IpHeaderMalformed;
  const frag: Frag = { isFragment: false, fragOffset: 0, fragId: 0, fragPayload: 0, fragProto: 0 };
  let r: { family: 4 | 6; ipHdrLen: number; ipTotal: number; ipEnd: number; truncated: boolean; proto: number } | Reason;
  if (v === 4) r = parseIpv4(b, ip, avail, wireAvail, frag);
  else if (v === 6) r = parseIpv6(b, ip, avail, wireAvail, frag);
  else return Reason.IpHeaderMalformed;
  if (typeof r === "number") return r;
  return parseTransport(b, { ...r, l3: ip, ...frag });
}

/** Total length against the frame: longer than the wire is malformed, longer than the capture is a snaplen cut. */
function bounds(ip: number, total: number, avail: number, wireAvail: number): { ipTotal: number; truncated: boolean; ipEnd: number } | Reason {
  if (total > wireAvail) return Reason.IpLengthMismatch;
  const truncated = total > avail;
  return { ipTotal: total, truncated, ipEnd: ip + (truncated ? avail : total) };
}

function parseIpv4(b: Uint8Array, ip: number, avail: number, wireAvail: number, frag: Frag) {
  if (avail < 20) return Reason.Truncated;
  const hl = (b[ip] & 15) << 2;
  if (hl < 20) return Reason.IpHeaderMalformed;
  if (hl > avail) return Reason.Truncated;
  const total = be16(b, ip + 2);
  if (total < hl) return Reason.IpLengthMismatch;
  const bd = bounds(ip, total, avail, wireAvail);
  if (typeof bd === "number") return bd;
  // options: LSRR/SSRR mean the destination field is not the final destination
  let o = ip + 20;
  const end = ip + hl;
  while (o < end) {
    const t = b[o];
    if (t === 0) break;
    if (t === 1) { o++; continue; }
    if (o + 2 > end) return Reason.IpHeaderMalformed;
    const l = b[o + 1];
    if (l < 2 || o + l > end) return Reason.IpHeaderMalformed;
    if (t === 131 || t === 137) return Reason.IpSourceRoute;
    o += l;
  }
  const ff = be16(b, ip + 6);
  frag.fragOffset = (ff & 0x1fff) << 3;
  frag.isFragment = (ff & 0x2000) !== 0 || frag.fragOffset !== 0;
  frag.fragId = be16(b, ip + 4);
  frag.fragPayload = ip + hl;
  frag.fragProto = b[ip + 9];
  return { family: 4 as const, ipHdrLen: hl, proto: b[ip + 9], ...bd };
}

function parseIpv6(b: Uint8Array, ip: number, avail: number, wireAvail: number, frag: Frag) {
  if (avail < 40) return Reason.Truncated;
  const pl = be16(b, ip + 4);
  const bd = bounds(ip, 40 + pl, avail, wireAvail);
  if (typeof bd === "number") return bd;
  let nh = b[ip + 6];
  let off = 40;
  const end = bd.ipEnd - ip; // captured bytes of the datagram
  const total = 40 + pl;
  // past the datagram is malformed; past the capture only, a snaplen cut
  const short = (need: number): Reason => (pl === 0 ? Reason.IpLengthMismatch : need > total ? Reason.Ipv6ExtChain : Reason.Truncated);
  let count = 0;
  while (isV6Extension(nh)) {
    if (++count > 8) return Reason.Ipv6ExtChain;
    if (off + 8 > end) return short(off + 8);
    const h = ip + off;
    const next = b[h];
    let len: number;
    if (nh === PROTO_FRAGMENT) {
      len = 8;
      const fo = be16(b, h + 2);
      frag.fragOffset = fo & 0xfff8;
      frag.isFragment = (fo & 1) !== 0 || frag.fragOffset !== 0;
      frag.fragId = be32(b, h + 4);
      frag.fragPayload = h + 8;
      frag.fragProto = next;
    } else if (nh === PROTO_AH) {
      len = (b[h + 1] + 2) << 2;
    } else {
      len = (b[h + 1] + 1) << 3;
    }
    if (off + len > end) return short(off + len);
    if (nh === PROTO_ROUTING && b[h + 3] !== 0) return Reason.Ipv6ExtUnsupported;
    if (nh === PROTO_HOPOPTS || nh === PROTO_DSTOPTS) {
      let o = h + 2;
      const oend = h + len;
      while (o < oend) {
        const t = b[o];
        if (t === 0) { o++; continue; }
        if (o + 2 > oend) return Reason.Ipv6ExtChain;
        const l = b[o + 1];
        if (o + 2 + l > oend) return Reason.Ipv6ExtChain;
        if (t === 0xc9) return Reason.Ipv6ExtUnsupported; // Home Address
        if (t === 0xc2) return Reason.IpLengthMismatch; // Jumbo Payload
        o += 2 + l;
      }
    }
    off += len;
    nh = next;
    if (frag.isFragment && frag.fragOffset !== 0) break; // the rest is payload of a later fragment
  }
  if (pl === 0) return Reason.IpLengthMismatch;
  return { family: 6 as const, ipHdrLen: off, proto: nh, ...bd };
}

type IpBase = Omit<IpInfo, "l4" | "l4Len" | "l4Avail" | "hasL4Header" | "sport" | "dport" | "tcpFlags" | "icmpType" | "icmpError" | "csumAt">;

function parseTransport(b: Uint8Array, ip: IpBase): IpInfo | Reason {
  const l4 = ip.l3 + ip.ipHdrLen;
  if (ip.ipTotal < ip.ipHdrLen) return Reason.IpLengthMismatch;
  const l4Len = ip.ipTotal - ip.ipHdrLen;
  const l4Avail = l4 <= ip.ipEnd ? ip.ipEnd - l4 : 0;
  const out: IpInfo = {
    ...ip, l4, l4Len, l4Avail, hasL4Header: !ip.isFragment || ip.fragOffset === 0,
    sport: 0, dport: 0, tcpFlags: 0, icmpType: 0, icmpError: false, csumAt: -1,
  };
  if (!out.hasL4Header) return out;
  // a first fragment may hold only part of the transport header
  const first = ip.isFragment;
  if (ip.proto === PROTO_TCP) {
    if (l4Len < 20 && !first) return Reason.L4HeaderMalformed;
    if (l4Avail < 4) return first ? Reason.L4HeaderMalformed : Reason.Truncated;
    out.sport = be16(b, l4);
    out.dport = be16(b, l4 + 2);
    if (l4Avail >= 20) {
      const doff = (b[l4 + 12] >>> 4) << 2;
      if (doff < 20 || (!first && doff > l4Len)) return Reason.L4HeaderMalformed;
      out.tcpFlags = b[l4 + 13];
      out.csumAt = l4 + 16;
    } else if (!first) {
      return Reason.Truncated;
    } else if (l4Avail >= 14) {
      out.tcpFlags = b[l4 + 13];
    }
    return out;
  }
  if (ip.proto === PROTO_UDP) {
    if (l4Len < 8 && !first) return Reason.L4HeaderMalformed;
    if (l4Avail < 4) return first ? Reason.L4HeaderMalformed : Reason.Truncated;
    out.sport = be16(b, l4);
    out.dport = be16(b, l4 + 2);
    if (l4Avail >= 8) {
      const ul = be16(b, l4 + 4);
      if (!first && (ul < 8 || ul > l4Len)) return Reason.L4HeaderMalformed;
      if (be16(b, l4 + 6) !== 0) out.csumAt = l4 + 6;
    } else if (!first) {
      return Reason.Truncated;
    }
    return out;
  }
  if (ip.proto === icmpProto(ip.family)) {
    if (l4Len < 8) return Reason.L4HeaderMalformed;
    if (l4Avail < 8) return Reason.Truncated;
    out.icmpType = b[l4];
    out.csumAt = l4 + 2;
    if (isEchoRequest(ip.family, out.icmpType)) out.sport = be16(b, l4 + 4);
    else if (isEchoReply(ip.family, out.icmpType)) out.dport = be16(b, l4 + 4);
    else out.icmpError = isIcmpError(ip.family, out.icmpType);
    return out;
  }
  return out; // other protocols: no ports
}
