// ICMP and ICMPv6 errors about NATed flows (RFC 5508; DESIGN.md section 2
// step 5). An error quotes the packet that caused it; the quote is matched to
// a flow and translated together with the outer header:
//   from the target side: R -> P quoting P:x -> T:t  becomes  R -> C quoting C:c -> A:g
//   from the client side: R -> A quoting A:g -> C:c  becomes  R -> T quoting T:t -> P:x
// Every checksum involved (outer IPv4 header, quoted IPv4 header, quoted
// transport checksum when the quote holds it, the ICMP checksum over all of
// it, ICMPv6 pseudo-header) is updated incrementally.

import { Reason } from "../shared/abi";
import { ld16, ld8, raw16, raw32 } from "../wire/bytes";
import { applyAt, delta128, delta16, delta32 } from "../wire/checksum";
import {
  IPV4_HEADER, IPV6_HEADER, V4_CSUM, V4_DST, V4_FLAGS_FRAG, V4_FRAG_MASK, V4_PROTO, V6_DST, V6_NEXT,
  PROTO_FRAGMENT, PROTO_AH, PROTO_TCP, PROTO_UDP, isV6Extension, dstOffset, srcOffset,
} from "../wire/ip";
import { ICMP_CSUM, ICMP_HEADER, ICMP_ID, TCP_CSUM, UDP_CSUM, isEchoReply, isEchoRequest } from "../wire/l4";
import { MAX_V6_EXTENSIONS } from "../parse";
import { Packet } from "../packet";

/** The packet an ICMP error quotes (valid after parseQuote() returned true). */
@unmanaged
export class Quote {
  /** The quoted IP header. */
  ip: usize;
  /** End of the quoted bytes (the error's captured end). */
  end: usize;
  family: u32;
  proto: u32;
  /** The quoted transport header. */
  l4: usize;
  /** Ports (raw) of the quoted packet; identifier for quoted ICMP echo as in parse.ts. */
  sport: u32;
  dport: u32;
  echoReply: bool;

  @inline src(): usize { return this.ip + srcOffset(this.family); }
  @inline dst(): usize { return this.ip + dstOffset(this.family); }
}

/** The one Quote record the pipeline parses into. */
export const QUOTE: Quote = changetype<Quote>(memory.data(offsetof<Quote>(), 16));

/** Parse the packet quoted by the ICMP error `pkt` into `q`. False when it cannot name a flow. */
export function parseQuote(pkt: Packet, q: Quote): bool {
  let qIp = pkt.l4 + ICMP_HEADER;
  let end = pkt.ipEnd;
  let family = pkt.family;
  q.end = end;
  q.ip = qIp;
  q.family = family;
  q.echoReply = false;
  let hl: u32;
  if (family == 4) {
    if (qIp + IPV4_HEADER > end || ld8(qIp) >> 4 != 4) return false;
    hl = (ld8(qIp) & 15) << 2;
    if (hl < IPV4_HEADER || qIp + hl > end) return false;
    if ((ld16(qIp + V4_FLAGS_FRAG) & V4_FRAG_MASK) != 0) return false; // a later fragment has no ports
    q.proto = ld8(qIp + V4_PROTO);
  } else {
    if (qIp + IPV6_HEADER > end || ld8(qIp) >> 4 != 6) return false;
    let nh = ld8(qIp + V6_NEXT);
    hl = IPV6_HEADER;
    let count: u32 = 0;
    while (isV6Extension(nh)) {
      if (++count > MAX_V6_EXTENSIONS || qIp + hl + 8 > end) return false;
      let h = qIp + hl;
      let len: u32 = nh == PROTO_FRAGMENT ? 8 : nh == PROTO_AH ? (ld8(h + 1) + 2) << 2 : (ld8(h + 1) + 1) << 3;
      if (nh == PROTO_FRAGMENT && (ld16(h + 2) & 0xfff8) != 0) return false;
      nh = ld8(h);
      hl += len;
    }
    if (qIp + hl > end) return false;
    q.proto = nh;
  }
  q.l4 = qIp + hl;
  if (q.proto == PROTO_TCP || q.proto == PROTO_UDP) {
    if (q.l4 + 4 > end) return false;
    q.sport = raw16(q.l4);
    q.dport = raw16(q.l4 + 2);
    return true;
  }
  if (q.proto == (family == 4 ? 1 : 58)) {
    if (q.l4 + ICMP_ID + 2 > end) return false;
    let type = ld8(q.l4);
    q.echoReply = isEchoReply(family, type);
    if (!q.echoReply && !isEchoRequest(family, type)) return false;
    let id = raw16(q.l4 + ICMP_ID);
    q.sport = q.echoReply ? 0 : id;
    q.dport = q.echoReply ? id : 0;
    return true;
  }
  return false;
}

@inline function setAddr(p: usize, a: usize, family: u32): u64 {
  if (family == 4) {
    let d = delta32(raw32(p), raw32(a));
    store<u32>(p, raw32(a));
    return d;
  }
  let d = delta128(p, a);
  memory.copy(p, a, 16);
  return d;
}

@inline function setWord(p: usize, v: u32): u64 {
  let d = delta16(raw16(p), v);
  store<u16>(p, <u16>v);
  return d;
}

@inline function updateCsum(p: usize, delta: u64): u64 {
  let old = raw16(p);
  applyAt(p, delta);
  return delta16(old, raw16(p));
}

/**
 * Translate the error `pkt` quoting `quote`: outer destination becomes `outerDst`, the
 * quoted packet's source becomes newSrc:newSport and its destination
 * newDst:newDport (16-byte address buffers, raw ports).
 */
export function translateError(pkt: Packet, quote: Quote, outerDst: usize, newSrc: usize, newSport: u32, newDst: usize, newDport: u32): Reason {
  let family = pkt.family;
  let ip = pkt.l3;
  let q = quote.ip;
  let qL4 = quote.l4;
  let qProto = quote.proto;
  // The ICMP checksum covers every word changed inside the message.
  let dIcmp: u64 = 0;
  let dQAddr = setAddr(q + srcOffset(family), newSrc, family) + setAddr(q + dstOffset(family), newDst, family);
  dIcmp += dQAddr;
  if (family == 4) dIcmp += updateCsum(q + V4_CSUM, dQAddr);
  if (qProto == PROTO_TCP || qProto == PROTO_UDP) {
    let dPorts = setWord(qL4, newSport) + setWord(qL4 + 2, newDport);
    dIcmp += dPorts;
    let cs = qL4 + (qProto == PROTO_TCP ? TCP_CSUM : UDP_CSUM);
    if (cs + 2 <= quote.end && (qProto == PROTO_TCP || raw16(cs) != 0)) {
      let old = raw16(cs);
      applyAt(cs, dQAddr + dPorts);
      let n = raw16(cs);
      if (qProto == PROTO_UDP && n == 0) { store<u16>(cs, 0xffff); n = 0xffff; }
      dIcmp += delta16(old, n);
    }
  } else {
    let dId = setWord(qL4 + ICMP_ID, quote.echoReply ? newDport : newSport);
    dIcmp += dId;
    if (qL4 + ICMP_CSUM + 2 <= quote.end) {
      dIcmp += updateCsum(qL4 + ICMP_CSUM, family == 6 ? dId + dQAddr : dId);
    }
  }
  let dOuter = setAddr(ip + (family == 4 ? V4_DST : V6_DST), outerDst, family);
  if (family == 4) applyAt(ip + V4_CSUM, dOuter);
  else dIcmp += dOuter; // ICMPv6 pseudo-header
  applyAt(pkt.l4 + ICMP_CSUM, dIcmp);
  return Reason.None;
}
