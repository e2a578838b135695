// GSO in the reference model (assembly/rewrite/gso.ts), written from what the
// Linux kernel does rather than from the core: segmentation of a TCP or UDP
// super-packet as tcp_gso_segment / __udp_gso_segment under inet_gso_segment
// and ipv6_gso_segment do it, and completion of a partial checksum as
// skb_checksum_help does it. Every checksum is computed from scratch. Plain
// byte arrays in and out; the model's pipeline and the tests use it.

import { complement, onesSum, pseudoHeaderSum } from "../../net/checksum.js";
import { ipHeaderFresh } from "../checksum.js";
import { addrLen, be16, be32, dstOffset, parseIp, put16, put32, srcOffset, PROTO_TCP } from "../parse.js";

/** One segment: an IP packet, and where its partial checksum is when it has one. */
export interface Segment {
  ip: Uint8Array;
  /** The transport checksum holds only the pseudo-header's sum (the super-packet's was partial). */
  partial: boolean;
  /** From the IP header: the transport header, and its checksum field's offset in it. */
  csumStart: number;
  csumOffset: number;
}

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * Cut the super-packet `ip` (an IPv4 or IPv6 packet carrying TCP or UDP)
 * into segments of `gsoSize` payload bytes: headers copied; IPv4 total
 * length, identification (+1 per segment) and header checksum, IPv6 payload
 * length; TCP sequence (+gsoSize per segment), FIN and PSH on the last
 * segment only, CWR on the first only; UDP length. The transport checksum of
 * each segment is its pseudo-header's sum when `partial` (left for whoever
 * completes it), else computed in full (a UDP checksum of 0 stays 0).
 */
export function segment(ip: Uint8Array, gsoSize: number, partial: boolean): Segment[] {
  const p = parseIp(ip, 0, ip.length, ip.length, 0);
  if (typeof p === "number") throw new Error(`not a packet to segment (reason ${p})`);
  const tcp = p.proto === PROTO_TCP;
  const l4Hl = tcp ? (ip[p.l4 + 12] >>> 4) << 2 : 8;
  const hdrs = p.ipHdrLen + l4Hl;
  const payload = p.ipTotal - hdrs;
  const k = payload === 0 ? 1 : Math.ceil(payload / gsoSize);
  const csumOffset = tcp ? 16 : 6;
  const n = addrLen(p.family);
  const src = ip.slice(srcOffset(p.family), srcOffset(p.family) + n);
  const dst = ip.slice(dstOffset(p.family), dstOffset(p.family) + n);
  const noUdpChecksum = !tcp && !partial && be16(ip, p.l4 + 6) === 0;
  const out: Segment[] = [];
  for (let i = 0; i < k; i++) {
    const c = i + 1 < k ? gsoSize : payload - (k - 1) * gsoSize;
    const s = new Uint8Array(hdrs + c);
    s.set(ip.subarray(0, hdrs));
    s.set(ip.subarray(hdrs + i * gsoSize, hdrs + i * gsoSize + c), hdrs);
    const l4 = p.ipHdrLen;
    const l4Len = l4Hl + c;
    if (p.family === 4) {
      put16(s, 2, hdrs + c);
      put16(s, 4, (be16(ip, 4) + i) & 0xffff);
      ipHeaderFresh(s, 0, p.ipHdrLen);
    } else {
      put16(s, 4, s.length - 40);
    }
    if (tcp) {
      put32(s, l4 + 4, (be32(ip, p.l4 + 4) + i * gsoSize) >>> 0);
      let f = ip[p.l4 + 13];
      if (i + 1 < k) f &= ~(TCP_FIN | TCP_PSH);
      if (i > 0) f &= ~TCP_CWR;
      s[l4 + 13] = f;
    } else {
      put16(s, l4 + 4, l4Len);
    }
    const pseudo = pseudoHeaderSum(src, dst, p.proto, l4Len);
    if (partial) {
      put16(s, l4 + csumOffset, pseudo);
    } else if (!noUdpChecksum) {
      put16(s, l4 + csumOffset, 0);
      const c2 = complement(onesSum(s, l4, s.length, pseudo));
      put16(s, l4 + csumOffset, c2 === 0 && !tcp ? 0xffff : c2);
    }
    out.push({ ip: s, partial, csumStart: l4, csumOffset });
  }
  return out;
}

/**
 * Complete a partial checksum as the kernel does (skb_checksum_help): the
 * sum of the bytes from `csumStart` to the end — the field, holding the
 * pseudo-header's sum, included — complemented into the field; a result of
 * 0 is sent as 0xffff.
 */
export function completeChecksum(ip: Uint8Array, csumStart: number, csumOffset: number, end = ip.length): void {
  const c = complement(onesSum(ip, csumStart, end));
  put16(ip, csumStart + csumOffset, c === 0 ? 0xffff : c);
}

/**
 * The segment area (assembly/rewrite/gso.ts gso_area), as the core accounts
 * for it: `maxDesc` descriptors and `bytes` of arena, each segment taking
 * room for the outer header, the virtio_net_hdr, its headers and gso_size
 * payload bytes, rounded up to 8. What the model put there in the last batch
 * is `list`.
 */
export class SegmentArea {
  list: { verdict: number; reason: number; aux: number; data: Uint8Array; wirelen: number; link: number; time: number }[] = [];
  cursor = 0;
  spilling = false;

  constructor(
    readonly maxDesc = 0,
    readonly bytes = 0,
  ) {}

  reset(): void {
    this.list = [];
    this.cursor = 0;
    this.spilling = false;
  }

  /** Room for k segments of a super-packet (per segment at most `perSeg` bytes, the last `lastBytes`)? Takes it when there is. */
  take(k: number, perSeg: number, lastBytes: number): boolean {
    if (this.list.length + k > this.maxDesc || this.cursor + (k - 1) * perSeg + lastBytes > this.bytes) return false;
    this.cursor += k * perSeg;
    return true;
  }
}
