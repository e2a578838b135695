// NAT in the reference model (assembly/rewrite/nat.ts): the packet's
// addresses and ports (the ICMP echo identifier) are rewritten, then every
// checksum is recomputed from scratch where it can be, else updated
// incrementally (FALLBACK, src/reference/checksum.ts).

import { Fallback, ipHeaderFresh, ipHeaderOk, l4Fresh, l4Ok, pseudoSum } from "../checksum.js";
import { addrLen, be16, dstOffset, isEchoReply, put16, srcOffset, PROTO_TCP, PROTO_UDP, type Parsed } from "../parse.js";

/** Rewrite the addresses (and the IPv4 header checksum); returns the address change as a delta builder. */
export function rewriteAddrs(b: Uint8Array, p: Parsed, newSrc: Uint8Array, newDst: Uint8Array): (fb: Fallback) => Fallback {
  const family = p.family;
  const ip = p.l3;
  const n = addrLen(family);
  const sAt = ip + srcOffset(family);
  const dAt = ip + dstOffset(family);
  const ipWasOk = family === 4 && ipHeaderOk(b, ip, p.ipHdrLen);
  const oldSrc = b.slice(sAt, sAt + n);
  const oldDst = b.slice(dAt, dAt + n);
  b.set(newSrc.subarray(0, n), sAt);
  b.set(newDst.subarray(0, n), dAt);
  const addrDelta = (fb: Fallback): Fallback => fb.bytes(oldSrc, newSrc.subarray(0, n)).bytes(oldDst, newDst.subarray(0, n));
  if (family === 4) {
    if (ipWasOk) ipHeaderFresh(b, ip, p.ipHdrLen);
    else addrDelta(new Fallback()).applyAt(b, ip + 10); // FALLBACK: header checksum was wrong
  }
  return addrDelta;
}

/**
 * NAT rewrite of a parsed packet: the source becomes newSrc:newSport and the
 * destination newDst:newDport (for ICMP echo the identifier takes the port of
 * its direction). Returns the transport checksum change as a delta (what a
 * later fragment owes when this first fragment lacks the field), or null
 * without a transport header.
 */
export function natRewrite(b: Uint8Array, p: Parsed, newSrc: Uint8Array, newSport: number, newDst: Uint8Array, newDport: number): Fallback | null {
  const family = p.family;
  const ip = p.l3;
  // judge the transport checksum before touching anything
  const l4WasOk = l4Ok(b, p);
  const partialWasExact = p.partial && be16(b, p.csumAt) === pseudoSum(b, p);
  const addrDelta = rewriteAddrs(b, p, newSrc, newDst);
  if (!p.hasL4Header) return null;
  const l4 = p.l4;
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP) {
    const oldS = be16(b, l4);
    const oldD = be16(b, l4 + 2);
    put16(b, l4, newSport);
    put16(b, l4 + 2, newDport);
    const delta = addrDelta(new Fallback()).word(oldS, newSport).word(oldD, newDport);
    if (p.csumAt < 0) return delta;
    if (p.partial) {
      // partial (virtio NEEDS_CSUM): the field is the pseudo-header's sum; the ports are in the region still to be summed
      if (partialWasExact) put16(b, p.csumAt, pseudoSum(b, p));
      else addrDelta(new Fallback()).applyPartialAt(b, p.csumAt); // FALLBACK
      return delta;
    }
    if (l4WasOk) l4Fresh(b, family, ip, p.proto, l4, p.l4Len, p.csumAt);
    else delta.applyAt(b, p.csumAt, p.proto === PROTO_UDP); // FALLBACK
    return delta;
  }
  const id = isEchoReply(family, p.icmpType) ? newDport : newSport;
  const oldId = be16(b, l4 + 4);
  put16(b, l4 + 4, id);
  const delta = new Fallback().word(oldId, id);
  if (family === 6) addrDelta(delta); // ICMPv6 checksums the pseudo-header
  if (l4WasOk) l4Fresh(b, family, ip, p.proto, l4, p.l4Len, p.csumAt);
  else delta.applyAt(b, p.csumAt); // FALLBACK
  return delta;
}
