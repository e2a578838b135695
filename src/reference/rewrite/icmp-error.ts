// ICMP error translation in the reference model (assembly/rewrite/icmp-error.ts):
// an ICMP error about a NATed packet is rewritten so its receiver sees the
// addresses and ports it knows (outer destination, quoted source and
// destination), with every checksum it carries recomputed from scratch or,
// where the quote is cut short or was wrong, updated incrementally (FALLBACK).

import { Fallback, ipHeaderFresh, ipHeaderOk, l4Fresh, l4Ok, l4Sum } from "../checksum.js";
import {
  addrLen, be16, dstOffset, icmpProto, isEchoReply, isEchoRequest, isV6Extension, put16, srcOffset, PROTO_AH, PROTO_FRAGMENT,
  PROTO_TCP, PROTO_UDP, type Parsed,
} from "../parse.js";

/** The packet an ICMP error quotes. */
export interface Quote {
  ip: number;
  hl: number;
  proto: number;
  l4: number;
  sport: number;
  dport: number;
  echoReply: boolean;
  /** End of the captured bytes (of the error message). */
  end: number;
  /** Total length the quoted header declares. */
  total: number;
  /** The quoted datagram is a (first) fragment. */
  fragment: boolean;
}

/** The packet quoted by an ICMP error, or null when it cannot name a flow. */
export function parseQuote(b: Uint8Array, p: Parsed): Quote | null {
  const q = p.l4 + 8;
  const end = p.ipEnd;
  const family = p.family;
  let hl: number;
  let proto: number;
  let total: number;
  let fragment = false;
  if (family === 4) {
    if (q + 20 > end || b[q] >>> 4 !== 4) return null;
    hl = (b[q] & 15) << 2;
    if (hl < 20 || q + hl > end) return null;
    const ff = be16(b, q + 6);
    if ((ff & 0x1fff) !== 0) return null; // a later fragment has no ports
    fragment = (ff & 0x2000) !== 0;
    proto = b[q + 9];
    total = be16(b, q + 2);
  } else {
    if (q + 40 > end || b[q] >>> 4 !== 6) return null;
    let nh = b[q + 6];
    hl = 40;
    let count = 0;
    while (isV6Extension(nh)) {
      if (++count > 8 || q + hl + 8 > end) return null;
      const h = q + hl;
      const len = nh === PROTO_FRAGMENT ? 8 : nh === PROTO_AH ? (b[h + 1] + 2) << 2 : (b[h + 1] + 1) << 3;
      if (nh === PROTO_FRAGMENT) {
        if ((be16(b, h + 2) & 0xfff8) !== 0) return null;
        fragment = true;
      }
      nh = b[h];
      hl += len;
    }
    if (q + hl > end) return null;
    proto = nh;
    total = 40 + be16(b, q + 4);
  }
  const l4 = q + hl;
  const base = { ip: q, hl, proto, l4, end, total, fragment };
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    if (l4 + 4 > end) return null;
    return { ...base, sport: be16(b, l4), dport: be16(b, l4 + 2), echoReply: false };
  }
  if (proto === icmpProto(family)) {
    if (l4 + 6 > end) return null;
    const type = b[l4];
    const echoReply = isEchoReply(family, type);
    if (!echoReply && !isEchoRequest(family, type)) return null;
    const id = be16(b, l4 + 4);
    return { ...base, sport: echoReply ? 0 : id, dport: echoReply ? id : 0, echoReply };
  }
  return null;
}

/**
 * Translate an ICMP error: the outer destination becomes outerDst and the
 * quoted packet's source newSrc:newSport, its destination newDst:newDport.
 * Checksums involved: the outer IPv4 header, the quoted IPv4 header, the
 * quoted transport checksum when the quote holds it, and the ICMP checksum
 * over all of it (ICMPv6: with the outer pseudo-header).
 */
export function translateError(
  b: Uint8Array, p: Parsed, q: Quote, outerDst: Uint8Array, newSrc: Uint8Array, newSport: number, newDst: Uint8Array, newDport: number,
): void {
  const family = p.family;
  const n = addrLen(family);
  const ip = p.l3;
  const qsAt = q.ip + srcOffset(family);
  const qdAt = q.ip + dstOffset(family);
  const oAt = ip + dstOffset(family);
  const tcpUdp = q.proto === PROTO_TCP || q.proto === PROTO_UDP;

  // which checksum the core updates in the quote (only when the quote holds it; a UDP 0 stays 0)
  let qCsumAt = -1;
  if (tcpUdp) {
    const cs = q.l4 + (q.proto === PROTO_TCP ? 16 : 6);
    if (cs + 2 <= q.end && (q.proto === PROTO_TCP || be16(b, cs) !== 0)) qCsumAt = cs;
  } else if (q.l4 + 4 <= q.end) {
    qCsumAt = q.l4 + 2;
  }
  // judge every checksum on the input, before any change
  const outerIpOk = family === 4 && ipHeaderOk(b, ip, p.ipHdrLen);
  const icmpOk = l4Ok(b, p);
  const qIpOk = family === 4 && ipHeaderOk(b, q.ip, q.hl);
  const qL4Len = q.total - q.hl;
  const qComplete = !q.fragment && q.total >= q.hl && q.ip + q.total <= q.end && qCsumAt >= 0 && qCsumAt + 2 <= q.ip + q.total;
  const qL4Ok = qComplete && l4Sum(b, family, q.ip, q.proto, q.l4, qL4Len) === 0xffff;

  const old = {
    qsrc: b.slice(qsAt, qsAt + n), qdst: b.slice(qdAt, qdAt + n), outerDst: b.slice(oAt, oAt + n),
    w0: be16(b, q.l4), w1: be16(b, q.l4 + 2), id: be16(b, q.l4 + 4),
    qIpCsum: family === 4 ? be16(b, q.ip + 10) : 0, qL4Csum: qCsumAt >= 0 ? be16(b, qCsumAt) : 0,
  };
  const newId = q.echoReply ? newDport : newSport;
  b.set(newSrc.subarray(0, n), qsAt);
  b.set(newDst.subarray(0, n), qdAt);
  if (tcpUdp) {
    put16(b, q.l4, newSport);
    put16(b, q.l4 + 2, newDport);
  } else {
    put16(b, q.l4 + 4, newId);
  }
  b.set(outerDst.subarray(0, n), oAt);

  const qAddrDelta = (fb: Fallback): Fallback => fb.bytes(old.qsrc, newSrc.subarray(0, n)).bytes(old.qdst, newDst.subarray(0, n));
  if (family === 4) {
    if (qIpOk) ipHeaderFresh(b, q.ip, q.hl);
    else qAddrDelta(new Fallback()).applyAt(b, q.ip + 10); // FALLBACK
  }
  if (qCsumAt >= 0) {
    if (qL4Ok) l4Fresh(b, family, q.ip, q.proto, q.l4, qL4Len, qCsumAt);
    else if (tcpUdp) {
      // FALLBACK: the quote is cut short (routers quote 8 bytes) or was wrong; the core uses a plain
      // update and then sends a UDP 0 as 0xffff
      qAddrDelta(new Fallback()).word(old.w0, newSport).word(old.w1, newDport).applyAt(b, qCsumAt);
      if (q.proto === PROTO_UDP && be16(b, qCsumAt) === 0) put16(b, qCsumAt, 0xffff);
    } else {
      const fb = new Fallback().word(old.id, newId); // FALLBACK
      if (family === 6) qAddrDelta(fb);
      fb.applyAt(b, qCsumAt);
    }
  }
  if (family === 4) {
    if (outerIpOk) ipHeaderFresh(b, ip, p.ipHdrLen);
    else new Fallback().bytes(old.outerDst, outerDst.subarray(0, n)).applyAt(b, ip + 10); // FALLBACK
  }
  if (icmpOk) {
    l4Fresh(b, family, ip, p.proto, p.l4, p.l4Len, p.csumAt);
  } else {
    // FALLBACK: every word the core changed inside the message (and the ICMPv6 pseudo-header)
    const fb = qAddrDelta(new Fallback());
    if (family === 4) fb.word(old.qIpCsum, be16(b, q.ip + 10));
    if (tcpUdp) fb.word(old.w0, newSport).word(old.w1, newDport);
    else fb.word(old.id, newId);
    if (qCsumAt >= 0) fb.word(old.qL4Csum, be16(b, qCsumAt));
    if (family === 6) fb.bytes(old.outerDst, outerDst.subarray(0, n));
    fb.applyAt(b, p.csumAt);
  }
}
