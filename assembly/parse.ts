// Stage 1 of the pipeline: parse one packet into a Packet record (packet.ts),
// the value every later stage is handed.
//
// Every length is checked before the bytes it covers are read; a packet that
// does not parse gets a Reason, never a trap. Parsing writes no packet byte
// and allocates nothing; it writes only the record it is given.

import { Reason, VnetFlag, VnetGso } from "./shared/abi";
import { ld16, ld32, ld8, raw16 } from "./wire/bytes";
import {
  IPV4_HEADER, IPV6_HEADER, V4_FLAGS_FRAG, V4_FRAG_MASK, V4_MF, V4_PROTO, V6_NEXT, PROTO_TCP, PROTO_UDP,
  PROTO_ICMP, PROTO_ICMPV6, PROTO_FRAGMENT, PROTO_ROUTING, PROTO_HOPOPTS, PROTO_DSTOPTS, PROTO_AH,
  isV6Extension, v4HeaderLen, v4TotalLen, v6PayloadLen, version, V4_ID,
} from "./wire/ip";
import {
  TCP_HEADER, TCP_DATA_OFF, TCP_FLAGS, TCP_CSUM, UDP_HEADER, UDP_LEN, UDP_CSUM, ICMP_HEADER, ICMP_CSUM,
  ICMP_ID, isEchoRequest, isEchoReply, isIcmpError,
} from "./wire/l4";
import { parseLink, LINK_ETHERNET, LINK_IPV4, LINK_IPV6, LINK_RAW } from "./wire/link";
import { vnetCsumOffset, vnetCsumStart, vnetFlags, vnetGsoSize, vnetGsoType, vnetHdrLen } from "./wire/vnet";
import { Packet } from "./packet";

/** IPv6 extension headers walked before giving up (RFC 8200 expects few; captures show 100). */
export const MAX_V6_EXTENSIONS: u32 = 8;

const IPV4_OPT_EOL: u32 = 0;
const IPV4_OPT_NOP: u32 = 1;
const IPV4_OPT_LSRR: u32 = 131;
const IPV4_OPT_SSRR: u32 = 137;
const IPV6_OPT_PAD1: u32 = 0;
const IPV6_OPT_HOME_ADDRESS: u32 = 0xc9;
const IPV6_OPT_JUMBO: u32 = 0xc2;

/**
 * Parse the packet of `len` captured bytes (`wirelen` on the wire) at `p`.
 * `shape`: its commonShape() when the caller has it already (0: not known).
 */
export function parsePacket(pkt: Packet, link: u32, p: usize, len: u32, wirelen: u32, shape: u64 = 0): Reason {
  if (shape == 0) shape = commonShape(link, p, len);
  if (shape != 0) {
    parseCommon(pkt, link, p, shape);
    return Reason.None;
  }
  pkt.l3 = 0;
  pkt.gsoType = VnetGso.None;
  pkt.gsoSize = 0;
  pkt.partial = false;
  let r = parseLink(pkt, link, p, len);
  if (r != Reason.None) return r;
  if (wirelen < len) wirelen = len;
  r = parseIp(pkt, p + pkt.linkLen, len - pkt.linkLen, wirelen - pkt.linkLen, pkt.linkFamily);
  if (r != Reason.None || pkt.vnet == 0) return r;
  return checkVnet(pkt);
}

/**
 * The virtio_net_hdr in front of a Link.VNET packet must describe it: a GSO
 * type that fits the packet (TCPV4: unfragmented IPv4 TCP; TCPV6: IPv6 TCP;
 * UDP_L4: UDP) with a nonzero gso_size, a hdr_len inside it, and a partial
 * checksum inside it — for TCP and UDP exactly at the transport checksum
 * (then `pkt.partial`); other protocols' partial checksums are completed by
 * the pipeline on arrival. Sets pkt.gsoType and pkt.gsoSize.
 */
function checkVnet(pkt: Packet): Reason {
  let h = pkt.vnet;
  let avail = <u32>(pkt.ipEnd - pkt.l3);
  if (vnetHdrLen(h) > avail) return Reason.VnetHdrLenPastPacket;
  let gso = vnetGsoType(h);
  let type = gso & ~(<u32>VnetGso.Ecn);
  let tcp = pkt.proto == PROTO_TCP && !pkt.isFragment;
  if (gso != VnetGso.None) {
    if (vnetGsoSize(h) == 0) return Reason.GsoSizeZero;
    let fits = type == VnetGso.TcpV4 ? tcp && pkt.family == 4
      : type == VnetGso.TcpV6 ? tcp && pkt.family == 6
      : type == VnetGso.UdpL4 ? pkt.proto == PROTO_UDP && !pkt.isFragment && (gso & VnetGso.Ecn) == 0
      : false;
    if (!fits) return Reason.GsoTypeMismatch;
    pkt.gsoType = type;
    pkt.gsoSize = vnetGsoSize(h);
  }
  if ((vnetFlags(h) & VnetFlag.NeedsCsum) == 0) return Reason.None;
  let start = vnetCsumStart(h);
  let field = start + vnetCsumOffset(h);
  // the region must be here whole: never a fragment's, never past the end
  if (field + 2 > avail || pkt.isFragment || pkt.truncated) return Reason.VnetCsumOutside;
  if (pkt.proto == PROTO_TCP || pkt.proto == PROTO_UDP) {
    let at = pkt.l3 + field;
    if (pkt.l3 + start != pkt.l4 || at != pkt.l4 + (pkt.proto == PROTO_TCP ? TCP_CSUM : UDP_CSUM)) return Reason.VnetCsumOutside;
    pkt.partial = true;
    pkt.l4CsumPtr = at;
  }
  return Reason.None;
}

/**
 * The common shapes: Ethernet without VLAN tags, raw IP or LINKTYPE_IPV4/6;
 * an IPv4 header without options that is not a fragment, or an IPv6 header
 * followed directly by the transport header; TCP, UDP or an ICMP/ICMPv6 echo
 * request or reply; the whole datagram captured; the transport header
 * complete and its lengths consistent. For such a packet
 * returns SHAPE_COMMON | family << 8 | proto << 16 | linkLen << 24 | total << 32
 * (the IP datagram's length); 0 for every other packet, which the general
 * parse takes, errors included. The batch prefetch classifies packets with
 * it, and parsePacket fills a Packet from it.
 */
@inline export function commonShape(link: u32, p: usize, len: u32): u64 {
  let s = ipv4Shape(link, p, len);
  return s != 0 ? s : otherShape(link, p, len);
}

/**
 * commonShape() of the commonest shape, TCP or UDP in IPv4 without options
 * (version and header length 0x45), raw or on Ethernet, in a third of the
 * instructions and inlined where called; 0 for any other packet, or one that
 * fails the checks otherShape() makes, which then decides.
 */
@inline export function ipv4Shape(link: u32, p: usize, len: u32): u64 {
  let at: u32;
  if (link == LINK_ETHERNET) {
    // the EtherType (0x0800) and the version and header length (0x45) in one little-endian load of bytes 12-14
    if (len < 14 + IPV4_HEADER + UDP_HEADER || (load<u32>(p + 12) & 0xffffff) != 0x450008) return 0;
    at = 14;
  } else {
    if ((link != LINK_RAW && link != LINK_IPV4) || len < IPV4_HEADER + UDP_HEADER || ld8(p) != 0x45) return 0;
    at = 0;
  }
  let ip = p + at;
  let total = v4TotalLen(ip);
  let proto = <u32>ld8(ip + V4_PROTO);
  // (unsigned: total from IPV4_HEADER + UDP_HEADER to the bytes captured, len - at being at least that)
  // (each check returns on its own: V8 compiles a || chain into booleans it then tests, 10 instructions more here)
  if ((<u32>load<u16>(ip + V4_FLAGS_FRAG) & 0xff3f) != 0) return 0;
  if (total - (IPV4_HEADER + UDP_HEADER) > len - at - (IPV4_HEADER + UDP_HEADER)) return 0;
  let l4 = ip + IPV4_HEADER;
  let l4Len = total - IPV4_HEADER; // (at least UDP_HEADER)
  if (proto == PROTO_UDP) {
    if (ld16(l4 + UDP_LEN) - UDP_HEADER > l4Len - UDP_HEADER) return 0; // from UDP_HEADER to l4Len
  } else {
    if (proto != PROTO_TCP || l4Len < TCP_HEADER) return 0;
    if (((ld8(l4 + TCP_DATA_OFF) >> 4) << 2) - TCP_HEADER > l4Len - TCP_HEADER) return 0; // from TCP_HEADER to l4Len
  }
  return SHAPE_COMMON | (4 << 8) | <u64>(proto << 16) | <u64>(at << 24) | (<u64>total << 32);
}

/** commonShape() of a packet ipv4Shape() does not take. */
export function otherShape(link: u32, p: usize, len: u32): u64 {
  let linkLen: u32 = 0;
  let expect: u32 = 0;
  if (link == LINK_ETHERNET) {
    if (len < 14 + IPV4_HEADER) return 0;
    let type = ld16(p + 12);
    expect = type == 0x0800 ? 4 : type == 0x86dd ? 6 : 0;
    if (expect == 0) return 0;
    linkLen = 14;
  } else if (link == LINK_IPV4) {
    expect = 4;
  } else if (link == LINK_IPV6) {
    expect = 6;
  } else if (link != LINK_RAW) {
    return 0;
  }
  if (len < linkLen + IPV4_HEADER) return 0;
  let ip = p + linkLen;
  let avail = len - linkLen;
  let vihl = ld8(ip);
  let v = vihl >> 4;
  let total: u32, hl: u32, proto: u32;
  if (v == 4) {
    if (vihl != 0x45 || (expect != 0 && expect != 4)) return 0;
    total = v4TotalLen(ip);
    hl = IPV4_HEADER;
    proto = ld8(ip + V4_PROTO);
    if ((ld16(ip + V4_FLAGS_FRAG) & (V4_MF | V4_FRAG_MASK)) != 0) return 0;
  } else if (v == 6) {
    if ((expect != 0 && expect != 6) || avail < IPV6_HEADER) return 0;
    let pl = v6PayloadLen(ip);
    if (pl == 0) return 0;
    total = IPV6_HEADER + pl;
    hl = IPV6_HEADER;
    proto = ld8(ip + V6_NEXT);
  } else {
    return 0;
  }
  if (total > avail || total < hl + UDP_HEADER) return 0; // (the bytes captured are at most the wire's)
  let l4 = ip + hl;
  let l4Len = total - hl;
  if (proto == PROTO_TCP) {
    if (l4Len < TCP_HEADER) return 0;
    let doff = (ld8(l4 + TCP_DATA_OFF) >> 4) << 2;
    if (doff < TCP_HEADER || doff > l4Len) return 0;
  } else if (proto == PROTO_UDP) {
    let ul = ld16(l4 + UDP_LEN);
    if (ul < UDP_HEADER || ul > l4Len) return 0;
  } else if (proto == (v == 4 ? PROTO_ICMP : PROTO_ICMPV6)) {
    // echo request or reply only (ICMP_HEADER bytes are there: total >= hl + 8)
    let type = ld8(l4);
    if (!isEchoRequest(v, type) && !isEchoReply(v, type)) return 0;
  } else {
    return 0;
  }
  return SHAPE_COMMON | <u64>(v << 8) | <u64>(proto << 16) | <u64>(linkLen << 24) | (<u64>total << 32);
}

/**
 * The ports of a common shape's transport header at l4 as the flow key has
 * them (raw): TCP/UDP source and destination; an echo request's identifier
 * as the source port, a reply's as the destination port. Source in the low
 * 16 bits, destination in the high.
 */
@inline export function shapePorts(s: u64, l4: usize): u32 {
  let proto = shapeProto(s);
  if (proto == PROTO_TCP || proto == PROTO_UDP) return load<u32>(l4);
  let id = raw16(l4 + ICMP_ID);
  return isEchoRequest(shapeFamily(s), ld8(l4)) ? id : id << 16;
}

/** Set in every commonShape() result. */
export const SHAPE_COMMON: u64 = 1;
@inline export function shapeFamily(s: u64): u32 { return <u32>(s >> 8) & 0xff; }
@inline export function shapeProto(s: u64): u32 { return <u32>(s >> 16) & 0xff; }
@inline export function shapeLinkLen(s: u64): u32 { return <u32>(s >> 24) & 0xff; }
@inline export function shapeTotal(s: u64): u32 { return <u32>(s >> 32); }
/** Bytes of IP header of a common shape. */
@inline export function shapeIpHeader(s: u64): u32 { return shapeFamily(s) == 4 ? IPV4_HEADER : IPV6_HEADER; }

/** Fill `pkt` for a packet of common shape `s` (at p, on `link`) exactly as the general parse would. */
@inline function parseCommon(pkt: Packet, link: u32, p: usize, s: u64): void {
  let v = shapeFamily(s);
  let proto = shapeProto(s);
  let linkLen = shapeLinkLen(s);
  let total = shapeTotal(s);
  let hl = shapeIpHeader(s);
  let ip = p + linkLen;
  let l4 = ip + hl;
  pkt.linkLen = linkLen;
  pkt.vnet = 0;
  pkt.gsoType = VnetGso.None;
  pkt.gsoSize = 0;
  pkt.partial = false;
  pkt.linkFamily = link == LINK_RAW ? 0 : v;
  pkt.linkProtoPtr = link == LINK_ETHERNET ? p + 12 : 0;
  pkt.linkProtoKind = link == LINK_ETHERNET ? 1 : link == LINK_RAW ? 0 : 4;
  pkt.family = v;
  pkt.l3 = ip;
  pkt.ipHdrLen = hl;
  pkt.ipTotal = total;
  pkt.ipEnd = ip + <usize>total;
  pkt.truncated = false;
  pkt.proto = proto;
  pkt.isFragment = false;
  pkt.fragMore = false;
  pkt.hasL4Header = true;
  pkt.fragOffset = 0;
  if (v == 4) {
    pkt.fragId = ld16(ip + V4_ID);
    pkt.fragPayload = l4;
    pkt.fragProto = proto;
  } else {
    pkt.fragId = 0;
  }
  pkt.l4 = l4;
  pkt.l4Len = total - hl;
  pkt.l4Avail = total - hl;
  let ports = shapePorts(s, l4);
  pkt.sport = ports & 0xffff;
  pkt.dport = ports >>> 16;
  pkt.icmpError = false;
  if (proto == PROTO_TCP) {
    pkt.icmpType = 0;
    pkt.icmpCode = 0;
    pkt.tcpFlags = ld8(l4 + TCP_FLAGS);
    pkt.l4CsumPtr = l4 + TCP_CSUM;
  } else if (proto == PROTO_UDP) {
    pkt.icmpType = 0;
    pkt.icmpCode = 0;
    pkt.tcpFlags = 0;
    pkt.l4CsumPtr = raw16(l4 + UDP_CSUM) != 0 ? l4 + UDP_CSUM : 0;
  } else {
    pkt.icmpType = ld8(l4);
    pkt.icmpCode = ld8(l4 + 1);
    pkt.tcpFlags = 0;
    pkt.l4CsumPtr = l4 + ICMP_CSUM;
  }
}

/**
 * Parse an IP datagram at `ip` with `avail` captured bytes and `wireAvail`
 * bytes on the wire; `expect` is the pkt.family the link layer announced (0 = any).
 */
export function parseIp(pkt: Packet, ip: usize, avail: u32, wireAvail: u32, expect: u32): Reason {
  if (avail < 1) return Reason.Truncated;
  let v = version(ip);
  if (expect != 0 && v != expect) return Reason.IpHeaderMalformed;
  pkt.l3 = ip;
  pkt.isFragment = false;
  pkt.fragOffset = 0;
  pkt.fragMore = false;
  pkt.fragId = 0;
  let r: Reason;
  if (v == 4) r = parseIpv4(pkt, ip, avail, wireAvail);
  else if (v == 6) r = parseIpv6(pkt, ip, avail, wireAvail);
  else return Reason.IpHeaderMalformed;
  if (r != Reason.None) return r;
  return parseTransport(pkt);
}

function datagramBounds(pkt: Packet, ip: usize, total: u32, avail: u32, wireAvail: u32): Reason {
  // A datagram longer than the frame on the wire is malformed; longer than the
  // captured bytes only is a capture artefact (snaplen) and still rewritable.
  if (total > wireAvail) return Reason.IpLengthMismatch;
  pkt.ipTotal = total;
  pkt.truncated = total > avail;
  pkt.ipEnd = ip + <usize>(pkt.truncated ? avail : total);
  return Reason.None;
}

function parseIpv4(pkt: Packet, ip: usize, avail: u32, wireAvail: u32): Reason {
  if (avail < IPV4_HEADER) return Reason.Truncated;
  let hl = v4HeaderLen(ip);
  if (hl < IPV4_HEADER) return Reason.IpHeaderMalformed;
  if (hl > avail) return Reason.Truncated;
  let total = v4TotalLen(ip);
  if (total < hl) return Reason.IpLengthMismatch; // includes TSO captures with total length 0
  let r = datagramBounds(pkt, ip, total, avail, wireAvail);
  if (r != Reason.None) return r;
  if (hl > IPV4_HEADER) {
    r = checkIpv4Options(ip + IPV4_HEADER, ip + hl);
    if (r != Reason.None) return r;
  }
  pkt.family = 4;
  pkt.ipHdrLen = hl;
  pkt.proto = ld8(ip + V4_PROTO);
  pkt.fragProto = pkt.proto;
  pkt.fragPayload = ip + hl;
  let ff = ld16(ip + V4_FLAGS_FRAG);
  pkt.fragOffset = (ff & V4_FRAG_MASK) << 3;
  pkt.fragMore = (ff & V4_MF) != 0;
  pkt.isFragment = pkt.fragMore || pkt.fragOffset != 0;
  pkt.fragId = ld16(ip + V4_ID);
  return Reason.None;
}

function checkIpv4Options(p: usize, end: usize): Reason {
  while (p < end) {
    let t = ld8(p);
    if (t == IPV4_OPT_EOL) break;
    if (t == IPV4_OPT_NOP) { p++; continue; }
    if (p + 2 > end) return Reason.IpHeaderMalformed;
    let l = ld8(p + 1);
    if (l < 2 || p + l > end) return Reason.IpHeaderMalformed;
    if (t == IPV4_OPT_LSRR || t == IPV4_OPT_SSRR) return Reason.IpSourceRoute;
    p += l;
  }
  return Reason.None;
}

function parseIpv6(pkt: Packet, ip: usize, avail: u32, wireAvail: u32): Reason {
  if (avail < IPV6_HEADER) return Reason.Truncated;
  let pl = v6PayloadLen(ip);
  // Payload length 0 with a Jumbo Payload option (RFC 2675) is found below and refused.
  let r = datagramBounds(pkt, ip, IPV6_HEADER + pl, avail, wireAvail);
  if (r != Reason.None) return r;
  pkt.family = 6;
  let nh = ld8(ip + V6_NEXT);
  let off: u32 = IPV6_HEADER;
  let end: u32 = <u32>(pkt.ipEnd - ip); // captured bytes of the datagram
  let total: u32 = IPV6_HEADER + pl;
  let count: u32 = 0;
  while (isV6Extension(nh)) {
    if (++count > MAX_V6_EXTENSIONS) return Reason.Ipv6ExtChain;
    if (off + 8 > end) return pl == 0 ? Reason.IpLengthMismatch : off + 8 > total ? Reason.Ipv6ExtChain : Reason.Truncated;
    let h = ip + off;
    let next = ld8(h);
    let len: u32;
    if (nh == PROTO_FRAGMENT) {
      len = 8;
      let fo = ld16(h + 2);
      pkt.fragOffset = fo & 0xfff8;
      pkt.fragMore = (fo & 1) != 0;
      pkt.fragId = ld32(h + 4);
      pkt.isFragment = pkt.fragMore || pkt.fragOffset != 0;
      pkt.fragPayload = h + 8;
      pkt.fragProto = next;
    } else if (nh == PROTO_AH) {
      len = (ld8(h + 1) + 2) << 2;
    } else {
      len = (ld8(h + 1) + 1) << 3;
    }
    if (off + len > end) return pl == 0 ? Reason.IpLengthMismatch : off + len > total ? Reason.Ipv6ExtChain : Reason.Truncated;
    if (nh == PROTO_ROUTING && ld8(h + 3) != 0) return Reason.Ipv6ExtUnsupported;
    if (nh == PROTO_HOPOPTS || nh == PROTO_DSTOPTS) {
      let o = scanV6Options(h + 2, h + len);
      if (o != Reason.None) return o;
    }
    off += len;
    nh = next;
    if (pkt.isFragment && pkt.fragOffset != 0) break; // the rest is payload of a later fragment
  }
  if (pl == 0) return Reason.IpLengthMismatch;
  pkt.ipHdrLen = off;
  pkt.proto = nh;
  return Reason.None;
}

function scanV6Options(p: usize, end: usize): Reason {
  while (p < end) {
    let t = ld8(p);
    if (t == IPV6_OPT_PAD1) { p++; continue; }
    if (p + 2 > end) return Reason.Ipv6ExtChain;
    let l = ld8(p + 1);
    if (p + 2 + l > end) return Reason.Ipv6ExtChain;
    if (t == IPV6_OPT_HOME_ADDRESS) return Reason.Ipv6ExtUnsupported;
    if (t == IPV6_OPT_JUMBO) return Reason.IpLengthMismatch;
    p += 2 + l;
  }
  return Reason.None;
}

function parseTransport(pkt: Packet): Reason {
  pkt.l4 = pkt.l3 + pkt.ipHdrLen;
  if (pkt.ipTotal < pkt.ipHdrLen) return Reason.IpLengthMismatch;
  pkt.l4Len = pkt.ipTotal - pkt.ipHdrLen;
  pkt.l4Avail = pkt.l4 <= pkt.ipEnd ? <u32>(pkt.ipEnd - pkt.l4) : 0;
  pkt.sport = 0;
  pkt.dport = 0;
  pkt.tcpFlags = 0;
  pkt.icmpType = 0;
  pkt.icmpCode = 0;
  pkt.icmpError = false;
  pkt.l4CsumPtr = 0;
  pkt.hasL4Header = !pkt.isFragment || pkt.fragOffset == 0;
  if (!pkt.hasL4Header) return Reason.None;
  // A first fragment may carry only part of the transport header (a TCP
  // header split into 8-byte fragments): the ports are needed, the checksum
  // field may live in a later fragment.
  let firstFragment = pkt.isFragment;
  if (pkt.proto == PROTO_TCP) {
    if (pkt.l4Len < TCP_HEADER && !firstFragment) return Reason.L4HeaderMalformed;
    if (pkt.l4Avail < 4) return firstFragment ? Reason.L4HeaderMalformed : Reason.Truncated;
    pkt.sport = raw16(pkt.l4);
    pkt.dport = raw16(pkt.l4 + 2);
    if (pkt.l4Avail >= TCP_HEADER) {
      let doff = (ld8(pkt.l4 + TCP_DATA_OFF) >> 4) << 2;
      if (doff < TCP_HEADER || (!firstFragment && doff > pkt.l4Len)) return Reason.L4HeaderMalformed;
      pkt.tcpFlags = ld8(pkt.l4 + TCP_FLAGS);
      pkt.l4CsumPtr = pkt.l4 + TCP_CSUM;
    } else if (!firstFragment) {
      return Reason.Truncated;
    } else if (pkt.l4Avail >= TCP_FLAGS + 1) {
      pkt.tcpFlags = ld8(pkt.l4 + TCP_FLAGS);
    }
    return Reason.None;
  }
  if (pkt.proto == PROTO_UDP) {
    if (pkt.l4Len < UDP_HEADER && !firstFragment) return Reason.L4HeaderMalformed;
    if (pkt.l4Avail < 4) return firstFragment ? Reason.L4HeaderMalformed : Reason.Truncated;
    pkt.sport = raw16(pkt.l4);
    pkt.dport = raw16(pkt.l4 + 2);
    if (pkt.l4Avail >= UDP_HEADER) {
      let ul = ld16(pkt.l4 + UDP_LEN);
      if (!firstFragment && (ul < UDP_HEADER || ul > pkt.l4Len)) return Reason.L4HeaderMalformed;
      if (raw16(pkt.l4 + UDP_CSUM) != 0) pkt.l4CsumPtr = pkt.l4 + UDP_CSUM;
    } else if (!firstFragment) {
      return Reason.Truncated;
    }
    return Reason.None;
  }
  if (pkt.proto == (pkt.family == 4 ? PROTO_ICMP : PROTO_ICMPV6)) {
    if (pkt.l4Len < ICMP_HEADER) return Reason.L4HeaderMalformed;
    if (pkt.l4Avail < ICMP_HEADER) return Reason.Truncated;
    pkt.icmpType = ld8(pkt.l4);
    pkt.icmpCode = ld8(pkt.l4 + 1);
    pkt.l4CsumPtr = pkt.l4 + ICMP_CSUM;
    if (isEchoRequest(pkt.family, pkt.icmpType)) pkt.sport = raw16(pkt.l4 + ICMP_ID);
    else if (isEchoReply(pkt.family, pkt.icmpType)) pkt.dport = raw16(pkt.l4 + ICMP_ID);
    else pkt.icmpError = isIcmpError(pkt.family, pkt.icmpType);
    return Reason.None;
  }
  return Reason.None; // other protocols: no ports; classification decides
}

/** True when `pkt.proto` is the ICMP of the parsed packet's pkt.family. */
@inline export function isIcmp(): bool {
  return pkt.proto == (pkt.family == 4 ? PROTO_ICMP : PROTO_ICMPV6);
}
