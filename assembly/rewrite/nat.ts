// NAT for legacy targets (DESIGN.md section 2, step 3-4), on the packet the
// parser described:
//   forward  C:c -> A:g   becomes  P:x -> T:t
//   reverse  T:t -> P:x   becomes  A:g -> C:c
// Every checksum that covers a changed word is updated incrementally (RFC
// 1624), so a checksum that was wrong stays wrong by the same amount; a
// partial one (virtio NEEDS_CSUM) follows the pseudo-header only. A GSO
// super-packet is rewritten once, as one packet. No byte other than the
// addresses, ports/identifier and checksums changes.

import { raw16, raw32 } from "../wire/bytes";
import { applyAt, applyPartialAt, applyUdpAt, delta128, delta16, delta32 } from "../wire/checksum";
import { V4_CSUM, V4_DST, V4_SRC, V6_DST, V6_SRC, PROTO_TCP, PROTO_UDP } from "../wire/ip";
import { ICMP_ID, TCP_DPORT, TCP_SPORT, isEchoReply } from "../wire/l4";
import { Packet } from "../packet";

/**
 * Rewrite the parsed packet's source to newSrc:newSport and destination to
 * newDst:newDport (addresses as 16-byte buffers, ports raw; for ICMP echo the
 * identifier is the port that is nonzero in the key). Returns the delta it
 * applied to the transport checksum (0 for a packet without a transport
 * header): a first fragment whose checksum field is in a later fragment
 * leaves that delta to the fragment table.
 */
export function rewrite(pkt: Packet, newSrc: usize, newSport: u32, newDst: usize, newDport: u32): u64 {
  let dAddr = rewriteAddresses(pkt, newSrc, newDst);
  if (!pkt.hasL4Header) return 0;
  let l4 = pkt.l4;
  let proto = pkt.proto;
  if (proto == PROTO_TCP || proto == PROTO_UDP) {
    let dl4 = dAddr + delta16(raw16(l4 + TCP_SPORT), newSport) + delta16(raw16(l4 + TCP_DPORT), newDport);
    store<u16>(l4 + TCP_SPORT, <u16>newSport);
    store<u16>(l4 + TCP_DPORT, <u16>newDport);
    if (pkt.l4CsumPtr != 0) {
      // partial (a super-packet's, most often): only the addresses are in the pseudo-header
      if (pkt.partial) applyPartialAt(pkt.l4CsumPtr, dAddr);
      else if (proto == PROTO_UDP) applyUdpAt(pkt.l4CsumPtr, dl4);
      else applyAt(pkt.l4CsumPtr, dl4);
    }
    return dl4;
  }
  // ICMP echo: the identifier is the "port" (sport of a request, dport of a reply)
  let id = isEchoReply(pkt.family, pkt.icmpType) ? newDport : newSport;
  let dIcmp = delta16(raw16(l4 + ICMP_ID), id);
  store<u16>(l4 + ICMP_ID, <u16>id);
  if (pkt.family == 6) dIcmp += dAddr; // ICMPv6 checksums the pseudo-header
  applyAt(pkt.l4CsumPtr, dIcmp);
  return dIcmp;
}

/**
 * Rewrite only the addresses (the IPv4 header checksum follows), as for a
 * non-first fragment. Returns the checksum delta of the change, which the
 * transport checksum's pseudo-header owes too.
 */
export function rewriteAddresses(pkt: Packet, newSrc: usize, newDst: usize): u64 {
  let ip = pkt.l3;
  if (pkt.family == 4) {
    let s = raw32(newSrc), d = raw32(newDst);
    let dAddr = delta32(raw32(ip + V4_SRC), s) + delta32(raw32(ip + V4_DST), d);
    store<u32>(ip + V4_SRC, s);
    store<u32>(ip + V4_DST, d);
    applyAt(ip + V4_CSUM, dAddr);
    return dAddr;
  }
  let dAddr = delta128(ip + V6_SRC, newSrc) + delta128(ip + V6_DST, newDst);
  memory.copy(ip + V6_SRC, newSrc, 16);
  memory.copy(ip + V6_DST, newDst, 16);
  return dAddr;
}
