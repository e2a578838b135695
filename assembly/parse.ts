// Stage 1 of the pipeline: parse one packet into the module globals below.
//
// Every length is checked before the bytes it covers are read; a packet that
// does not parse gets a Reason, never a trap. Parsing writes no packet byte
// and allocates nothing.

import { Reason } from "./shared/abi";
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
import { parseLink, linkLen, linkFamily } from "./wire/link";

/** IPv6 extension headers walked before giving up (RFC 8200 expects few; captures show 100). */
export const MAX_V6_EXTENSIONS: u32 = 8;

const IPV4_OPT_EOL: u32 = 0;
const IPV4_OPT_NOP: u32 = 1;
const IPV4_OPT_LSRR: u32 = 131;
const IPV4_OPT_SSRR: u32 = 137;
const IPV6_OPT_PAD1: u32 = 0;
const IPV6_OPT_HOME_ADDRESS: u32 = 0xc9;
const IPV6_OPT_JUMBO: u32 = 0xc2;

// ---- results (valid after parsePacket returned Reason.None) ----
export let family: u32 = 0;
/** IP header. */
export let l3: usize = 0;
/** Bytes from the IP header to the transport header (IPv6: including extension headers). */
export let ipHdrLen: u32 = 0;
/** IP datagram length per its header. */
export let ipTotal: u32 = 0;
/** End of the IP datagram's captured bytes. */
export let ipEnd: usize = 0;
/** The capture holds fewer bytes than the datagram (snaplen): checksums cannot be recomputed. */
export let truncated: bool = false;
/** Transport protocol (after the IPv6 extension chain). */
export let proto: u32 = 0;
/** Transport header (or fragment payload). */
export let l4: usize = 0;
/** Transport length per the IP header. */
export let l4Len: u32 = 0;
/** Transport bytes present in this packet (captured and inside the datagram). */
export let l4Avail: u32 = 0;
export let isFragment: bool = false;
/** Fragment offset in bytes. */
export let fragOffset: u32 = 0;
export let fragMore: bool = false;
export let fragId: u32 = 0;
/** Start of the fragmentable part (fragment offsets count from here). */
export let fragPayload: usize = 0;
/** Protocol that keys the datagram's fragments: IPv4 protocol, or the Fragment header's next header. */
export let fragProto: u32 = 0;
/** The first fragment or an unfragmented datagram: the transport header is here. */
export let hasL4Header: bool = false;
/** Ports (raw) of TCP/UDP; for ICMP echo, the identifier as sport (request) or dport (reply). */
export let sport: u32 = 0;
export let dport: u32 = 0;
export let tcpFlags: u32 = 0;
export let icmpType: u32 = 0;
export let icmpCode: u32 = 0;
/** ICMP/ICMPv6 error message (quotes a packet). */
export let icmpError: bool = false;
/** Address of the transport checksum, or 0 when absent from this packet or UDP checksum 0. */
export let l4CsumPtr: usize = 0;

/** Parse the packet of `len` captured bytes (`wirelen` on the wire) at `p`. */
export function parsePacket(link: u32, p: usize, len: u32, wirelen: u32): Reason {
  l3 = 0;
  let r = parseLink(link, p, len);
  if (r != Reason.None) return r;
  if (wirelen < len) wirelen = len;
  return parseIp(p + linkLen, len - linkLen, wirelen - linkLen, linkFamily);
}

/**
 * Parse an IP datagram at `ip` with `avail` captured bytes and `wireAvail`
 * bytes on the wire; `expect` is the family the link layer announced (0 = any).
 */
export function parseIp(ip: usize, avail: u32, wireAvail: u32, expect: u32): Reason {
  if (avail < 1) return Reason.Truncated;
  let v = version(ip);
  if (expect != 0 && v != expect) return Reason.IpHeaderMalformed;
  l3 = ip;
  isFragment = false;
  fragOffset = 0;
  fragMore = false;
  fragId = 0;
  let r: Reason;
  if (v == 4) r = parseIpv4(ip, avail, wireAvail);
  else if (v == 6) r = parseIpv6(ip, avail, wireAvail);
  else return Reason.IpHeaderMalformed;
  if (r != Reason.None) return r;
  return parseTransport();
}

function datagramBounds(ip: usize, total: u32, avail: u32, wireAvail: u32): Reason {
  // A datagram longer than the frame on the wire is malformed; longer than the
  // captured bytes only is a capture artefact (snaplen) and still rewritable.
  if (total > wireAvail) return Reason.IpLengthMismatch;
  ipTotal = total;
  truncated = total > avail;
  ipEnd = ip + <usize>(truncated ? avail : total);
  return Reason.None;
}

function parseIpv4(ip: usize, avail: u32, wireAvail: u32): Reason {
  if (avail < IPV4_HEADER) return Reason.Truncated;
  let hl = v4HeaderLen(ip);
  if (hl < IPV4_HEADER) return Reason.IpHeaderMalformed;
  if (hl > avail) return Reason.Truncated;
  let total = v4TotalLen(ip);
  if (total < hl) return Reason.IpLengthMismatch; // includes TSO captures with total length 0
  let r = datagramBounds(ip, total, avail, wireAvail);
  if (r != Reason.None) return r;
  if (hl > IPV4_HEADER) {
    r = checkIpv4Options(ip + IPV4_HEADER, ip + hl);
    if (r != Reason.None) return r;
  }
  family = 4;
  ipHdrLen = hl;
  proto = ld8(ip + V4_PROTO);
  fragProto = proto;
  fragPayload = ip + hl;
  let ff = ld16(ip + V4_FLAGS_FRAG);
  fragOffset = (ff & V4_FRAG_MASK) << 3;
  fragMore = (ff & V4_MF) != 0;
  isFragment = fragMore || fragOffset != 0;
  fragId = ld16(ip + V4_ID);
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

function parseIpv6(ip: usize, avail: u32, wireAvail: u32): Reason {
  if (avail < IPV6_HEADER) return Reason.Truncated;
  let pl = v6PayloadLen(ip);
  // Payload length 0 with a Jumbo Payload option (RFC 2675) is found below and refused.
  let r = datagramBounds(ip, IPV6_HEADER + pl, avail, wireAvail);
  if (r != Reason.None) return r;
  family = 6;
  let nh = ld8(ip + V6_NEXT);
  let off: u32 = IPV6_HEADER;
  let end: u32 = <u32>(ipEnd - ip); // captured bytes of the datagram
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
      fragOffset = fo & 0xfff8;
      fragMore = (fo & 1) != 0;
      fragId = ld32(h + 4);
      isFragment = fragMore || fragOffset != 0;
      fragPayload = h + 8;
      fragProto = next;
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
    if (isFragment && fragOffset != 0) break; // the rest is payload of a later fragment
  }
  if (pl == 0) return Reason.IpLengthMismatch;
  ipHdrLen = off;
  proto = nh;
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

function parseTransport(): Reason {
  l4 = l3 + ipHdrLen;
  if (ipTotal < ipHdrLen) return Reason.IpLengthMismatch;
  l4Len = ipTotal - ipHdrLen;
  l4Avail = l4 <= ipEnd ? <u32>(ipEnd - l4) : 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  icmpType = 0;
  icmpCode = 0;
  icmpError = false;
  l4CsumPtr = 0;
  hasL4Header = !isFragment || fragOffset == 0;
  if (!hasL4Header) return Reason.None;
  // A first fragment may carry only part of the transport header (a TCP
  // header split into 8-byte fragments): the ports are needed, the checksum
  // field may live in a later fragment.
  let firstFragment = isFragment;
  if (proto == PROTO_TCP) {
    if (l4Len < TCP_HEADER && !firstFragment) return Reason.L4HeaderMalformed;
    if (l4Avail < 4) return firstFragment ? Reason.L4HeaderMalformed : Reason.Truncated;
    sport = raw16(l4);
    dport = raw16(l4 + 2);
    if (l4Avail >= TCP_HEADER) {
      let doff = (ld8(l4 + TCP_DATA_OFF) >> 4) << 2;
      if (doff < TCP_HEADER || (!firstFragment && doff > l4Len)) return Reason.L4HeaderMalformed;
      tcpFlags = ld8(l4 + TCP_FLAGS);
      l4CsumPtr = l4 + TCP_CSUM;
    } else if (!firstFragment) {
      return Reason.Truncated;
    } else if (l4Avail >= TCP_FLAGS + 1) {
      tcpFlags = ld8(l4 + TCP_FLAGS);
    }
    return Reason.None;
  }
  if (proto == PROTO_UDP) {
    if (l4Len < UDP_HEADER && !firstFragment) return Reason.L4HeaderMalformed;
    if (l4Avail < 4) return firstFragment ? Reason.L4HeaderMalformed : Reason.Truncated;
    sport = raw16(l4);
    dport = raw16(l4 + 2);
    if (l4Avail >= UDP_HEADER) {
      let ul = ld16(l4 + UDP_LEN);
      if (!firstFragment && (ul < UDP_HEADER || ul > l4Len)) return Reason.L4HeaderMalformed;
      if (raw16(l4 + UDP_CSUM) != 0) l4CsumPtr = l4 + UDP_CSUM;
    } else if (!firstFragment) {
      return Reason.Truncated;
    }
    return Reason.None;
  }
  if (proto == (family == 4 ? PROTO_ICMP : PROTO_ICMPV6)) {
    if (l4Len < ICMP_HEADER) return Reason.L4HeaderMalformed;
    if (l4Avail < ICMP_HEADER) return Reason.Truncated;
    icmpType = ld8(l4);
    icmpCode = ld8(l4 + 1);
    l4CsumPtr = l4 + ICMP_CSUM;
    if (isEchoRequest(family, icmpType)) sport = raw16(l4 + ICMP_ID);
    else if (isEchoReply(family, icmpType)) dport = raw16(l4 + ICMP_ID);
    else icmpError = isIcmpError(family, icmpType);
    return Reason.None;
  }
  return Reason.None; // other protocols: no ports; classification decides
}

/** True when `proto` is the ICMP of the parsed packet's family. */
@inline export function isIcmp(): bool {
  return proto == (family == 4 ? PROTO_ICMP : PROTO_ICMPV6);
}
