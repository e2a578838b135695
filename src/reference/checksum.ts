// The reference model's checksums over a parsed packet (the core's are in
// assembly/wire/checksum.ts). Where the core updates a checksum
// incrementally, the model RECOMPUTES IT FROM SCRATCH (src/net/checksum.ts).
//
// From scratch is only possible when the checksummed region is all in the
// capture and its checksum was right on input. Otherwise (a snaplen-truncated
// capture, a fragment, a checksum that was already wrong) the model falls
// back to an explicit RFC 1624 incremental update over the words the core
// changes: `Fallback` below; every use is marked FALLBACK.

import { complement, onesSum, pseudoHeaderSum } from "../net/checksum.js";
import { addrLen, be16, dstOffset, put16, srcOffset, PROTO_UDP, type Parsed } from "./parse.js";

/** True when the IPv4 header at ip (hl bytes) verifies. */
export function ipHeaderOk(b: Uint8Array, ip: number, hl: number): boolean {
  return onesSum(b, ip, ip + hl) === 0xffff;
}

/** Recompute the IPv4 header checksum from scratch. */
export function ipHeaderFresh(b: Uint8Array, ip: number, hl: number): void {
  put16(b, ip + 10, 0);
  put16(b, ip + 10, complement(onesSum(b, ip, ip + hl)));
}

/** Sum of a transport region [l4, l4+len) with the pseudo-header of the IP header at ip (none for ICMPv4). */
export function l4Sum(b: Uint8Array, family: 4 | 6, ip: number, proto: number, l4: number, len: number): number {
  let pseudo = 0;
  if (proto !== 1) {
    const n = addrLen(family);
    const s = ip + srcOffset(family);
    const d = ip + dstOffset(family);
    pseudo = pseudoHeaderSum(b.subarray(s, s + n), b.subarray(d, d + n), proto, len);
  }
  return onesSum(b, l4, l4 + len, pseudo);
}

/** Recompute a transport checksum at csumAt from scratch (UDP: a computed 0 is sent as 0xffff). */
export function l4Fresh(b: Uint8Array, family: 4 | 6, ip: number, proto: number, l4: number, len: number, csumAt: number): void {
  put16(b, csumAt, 0);
  let c = complement(l4Sum(b, family, ip, proto, l4, len));
  if (proto === PROTO_UDP && c === 0) c = 0xffff;
  put16(b, csumAt, c);
}

/** The pseudo-header sum of the parsed packet's transport (the value a partial checksum holds), from its IP header as it is now. */
export function pseudoSum(b: Uint8Array, p: Parsed, l4Len = p.l4Len): number {
  const n = addrLen(p.family);
  const s = p.l3 + srcOffset(p.family);
  const d = p.l3 + dstOffset(p.family);
  return pseudoHeaderSum(b.subarray(s, s + n), b.subarray(d, d + n), p.proto, l4Len);
}

/** The whole transport region of the parsed packet is in the capture. */
const l4Complete = (p: Parsed): boolean => p.hasL4Header && !p.truncated && !p.isFragment;

/** The packet's transport checksum is present, its region complete, and it verifies. */
export function l4Ok(b: Uint8Array, p: Parsed): boolean {
  return p.csumAt >= 0 && l4Complete(p) && l4Sum(b, p.family, p.l3, p.proto, p.l4, p.l4Len) === 0xffff;
}

/**
 * FALLBACK: an explicit incremental update (RFC 1624 eqn. 3, HC' = ~(~HC +
 * sum of ~m + m')) over exactly the 16-bit words the core changes, for a
 * checksum the model cannot recompute (region not all captured, or wrong on
 * input: incremental update keeps it wrong by the same amount).
 */
export class Fallback {
  private acc = 0;

  word(oldWord: number, newWord: number): this {
    this.acc += (~oldWord & 0xffff) + (newWord & 0xffff);
    return this;
  }

  bytes(oldBytes: Uint8Array, newBytes: Uint8Array): this {
    for (let i = 0; i < oldBytes.length; i += 2) this.word(be16(oldBytes, i), be16(newBytes, i));
    return this;
  }

  /** FALLBACK for a partial checksum (it holds an uncomplemented sum): the sum moves by the change. */
  applyPartialAt(b: Uint8Array, at: number): void {
    let s = be16(b, at) + this.acc;
    while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
    put16(b, at, s);
  }

  /** Apply to the checksum at `at`; `udp`: 0 stays 0 and a computed 0 becomes 0xffff. */
  applyAt(b: Uint8Array, at: number, udp = false): void {
    const c = be16(b, at);
    if (udp && c === 0) return;
    let s = (~c & 0xffff) + this.acc;
    while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
    let n = ~s & 0xffff;
    if (udp && n === 0) n = 0xffff;
    put16(b, at, n);
  }
}
