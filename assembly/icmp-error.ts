// ICMP and ICMPv6 errors about NATed flows (RFC 5508; DESIGN.md section 2
// step 5). An error quotes the packet that caused it; the quote is matched to
// a flow and translated together with the outer header:
//   from the target side: R -> P quoting P:x -> T:t  becomes  R -> C quoting C:c -> A:g
//   from the client side: R -> A quoting A:g -> C:c  becomes  R -> T quoting T:t -> P:x
// Every checksum involved (outer IPv4 header, quoted IPv4 header, quoted
// transport checksum when the quote holds it, the ICMP checksum over all of
// it, ICMPv6 pseudo-header) is updated incrementally.

import { Reason } from "./shared/abi";
import { ld16, ld8, raw16, raw32 } from "./wire/bytes";
import { applyAt, delta128, delta16, delta32 } from "./wire/checksum";
import {
  IPV4_HEADER, IPV6_HEADER, V4_CSUM, V4_DST, V4_FLAGS_FRAG, V4_FRAG_MASK, V4_PROTO, V6_DST, V6_NEXT,
  PROTO_FRAGMENT, PROTO_AH, PROTO_TCP, PROTO_UDP, isV6Extension, dstOffset, srcOffset,
} from "./wire/ip";
import { ICMP_CSUM, ICMP_HEADER, ICMP_ID, TCP_CSUM, UDP_CSUM, isEchoReply, isEchoRequest } from "./wire/l4";
import { MAX_V6_EXTENSIONS } from "./parse";
import * as pkt from "./parse";

// ---- the quoted packet (valid after parseQuote() returned true) ----
export let qIp: usize = 0;
export let qProto: u32 = 0;
export let qL4: usize = 0;
/** Ports (raw) of the quoted packet, identifier for quoted ICMP echo as in parse.ts. */
export let qSport: u32 = 0;
export let qDport: u32 = 0;
let qEnd: usize = 0;
let qEchoReply: bool = false;

/** Parse the packet quoted by the current ICMP error. False when it cannot name a flow. */
export function parseQuote(): bool {
  let q = pkt.l4 + ICMP_HEADER;
  let end = pkt.ipEnd;
  qEnd = end;
  qIp = q;
  let family = pkt.family;
  let hl: u32;
  if (family == 4) {
    if (q + IPV4_HEADER > end || ld8(q) >> 4 != 4) return false;
    hl = (ld8(q) & 15) << 2;
    if (hl < IPV4_HEADER || q + hl > end) return false;
    if ((ld16(q + V4_FLAGS_FRAG) & V4_FRAG_MASK) != 0) return false; // a later fragment has no ports
    qProto = ld8(q + V4_PROTO);
  } else {
    if (q + IPV6_HEADER > end || ld8(q) >> 4 != 6) return false;
    let nh = ld8(q + V6_NEXT);
    hl = IPV6_HEADER;
    let count: u32 = 0;
    while (isV6Extension(nh)) {
      if (++count > MAX_V6_EXTENSIONS || q + hl + 8 > end) return false;
      let h = q + hl;
      let len: u32 = nh == PROTO_FRAGMENT ? 8 : nh == PROTO_AH ? (ld8(h + 1) + 2) << 2 : (ld8(h + 1) + 1) << 3;
      if (nh == PROTO_FRAGMENT && (ld16(h + 2) & 0xfff8) != 0) return false;
      nh = ld8(h);
      hl += len;
    }
    if (q + hl > end) return false;
    qProto = nh;
  }
  qL4 = q + hl;
  if (qProto == PROTO_TCP || qProto == PROTO_UDP) {
    if (qL4 + 4 > end) return false;
    qSport = raw16(qL4);
    qDport = raw16(qL4 + 2);
    return true;
  }
  if (qProto == (family == 4 ? 1 : 58)) {
    if (qL4 + ICMP_ID + 2 > end) return false;
    let type = ld8(qL4);
    qEchoReply = isEchoReply(family, type);
    if (!qEchoReply && !isEchoRequest(family, type)) return false;
    let id = raw16(qL4 + ICMP_ID);
    qSport = qEchoReply ? 0 : id;
    qDport = qEchoReply ? id : 0;
    return true;
  }
  return false;
}

@inline export function quoteSrc(): usize { return qIp + srcOffset(pkt.family); }
@inline export function quoteDst(): usize { return qIp + dstOffset(pkt.family); }

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
 * Translate the current error: outer destination becomes `outerDst`, the
 * quoted packet's source becomes newSrc:newSport and its destination
 * newDst:newDport (16-byte address buffers, raw ports).
 */
export function translateError(outerDst: usize, newSrc: usize, newSport: u32, newDst: usize, newDport: u32): Reason {
  let family = pkt.family;
  let ip = pkt.l3;
  let q = qIp;
  // The ICMP checksum covers every word changed inside the message.
  let dIcmp: u64 = 0;
  let dQAddr = setAddr(q + srcOffset(family), newSrc, family) + setAddr(q + dstOffset(family), newDst, family);
  dIcmp += dQAddr;
  if (family == 4) dIcmp += updateCsum(q + V4_CSUM, dQAddr);
  if (qProto == PROTO_TCP || qProto == PROTO_UDP) {
    let dPorts = setWord(qL4, newSport) + setWord(qL4 + 2, newDport);
    dIcmp += dPorts;
    let cs = qL4 + (qProto == PROTO_TCP ? TCP_CSUM : UDP_CSUM);
    if (cs + 2 <= qEnd && (qProto == PROTO_TCP || raw16(cs) != 0)) {
      let old = raw16(cs);
      applyAt(cs, dQAddr + dPorts);
      let n = raw16(cs);
      if (qProto == PROTO_UDP && n == 0) { store<u16>(cs, 0xffff); n = 0xffff; }
      dIcmp += delta16(old, n);
    }
  } else {
    let dId = setWord(qL4 + ICMP_ID, qEchoReply ? newDport : newSport);
    dIcmp += dId;
    if (qL4 + ICMP_CSUM + 2 <= qEnd) {
      dIcmp += updateCsum(qL4 + ICMP_CSUM, family == 6 ? dId + dQAddr : dId);
    }
  }
  let dOuter = setAddr(ip + (family == 4 ? V4_DST : V6_DST), outerDst, family);
  if (family == 4) applyAt(ip + V4_CSUM, dOuter);
  else dIcmp += dOuter; // ICMPv6 pseudo-header
  applyAt(pkt.l4 + ICMP_CSUM, dIcmp);
  return Reason.None;
}
