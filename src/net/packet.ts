// Reading and writing the few packets the host itself handles: control
// messages (UDP to the control port) and the first packets of flows to
// unresolved groups. Not the hot path: one object per packet is fine here.

import type { Family } from "./addr.js";
import { complement, onesSum, pseudoHeaderSum } from "./checksum.js";

export interface Datagram {
  family: Family;
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  payload: Uint8Array;
}

/** Where a packet is going: protocol, destination and its port (0 for ICMP). */
export interface Destination {
  family: Family;
  protocol: "tcp" | "udp" | "icmp";
  dst: Uint8Array;
  dport: number;
}

/** The IP header's length and next protocol (IPv6 extension headers are not walked: the core hands over plain packets only). */
function l4(p: Uint8Array): { family: Family; proto: number; off: number } | null {
  if (p.length < 20) return null;
  const v = p[0] >> 4;
  if (v === 4) {
    const hl = (p[0] & 15) * 4;
    return hl >= 20 && p.length >= hl ? { family: 4, proto: p[9], off: hl } : null;
  }
  if (v === 6 && p.length >= 40) return { family: 6, proto: p[6], off: 40 };
  return null;
}

export function destination(p: Uint8Array): Destination | null {
  const h = l4(p);
  if (!h) return null;
  const dst = h.family === 4 ? p.subarray(16, 20) : p.subarray(24, 40);
  if (h.proto === 6 || h.proto === 17) {
    if (p.length < h.off + 4) return null;
    return { family: h.family, protocol: h.proto === 6 ? "tcp" : "udp", dst, dport: (p[h.off + 2] << 8) | p[h.off + 3] };
  }
  if ((h.family === 4 && h.proto === 1) || (h.family === 6 && h.proto === 58)) return { family: h.family, protocol: "icmp", dst, dport: 0 };
  return null;
}

export function parseUdp(p: Uint8Array): Datagram | null {
  const h = l4(p);
  if (!h || h.proto !== 17 || p.length < h.off + 8) return null;
  const o = h.off;
  const len = (p[o + 4] << 8) | p[o + 5];
  if (len < 8 || o + len > p.length) return null;
  return {
    family: h.family,
    src: h.family === 4 ? p.slice(12, 16) : p.slice(8, 24),
    dst: h.family === 4 ? p.slice(16, 20) : p.slice(24, 40),
    sport: (p[o] << 8) | p[o + 1],
    dport: (p[o + 2] << 8) | p[o + 3],
    payload: p.slice(o + 8, o + len),
  };
}

/** An IPv4 or IPv6 UDP packet (TTL / hop limit 64, checksums computed). */
export function buildUdp(src: Uint8Array, sport: number, dst: Uint8Array, dport: number, payload: Uint8Array): Uint8Array {
  const v6 = src.length === 16;
  const ipLen = v6 ? 40 : 20;
  const udpLen = 8 + payload.length;
  const p = new Uint8Array(ipLen + udpLen);
  if (v6) {
    p[0] = 0x60;
    p[4] = udpLen >> 8;
    p[5] = udpLen & 255;
    p[6] = 17;
    p[7] = 64;
    p.set(src, 8);
    p.set(dst, 24);
  } else {
    const total = ipLen + udpLen;
    p[0] = 0x45;
    p[2] = total >> 8;
    p[3] = total & 255;
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 17;
    p.set(src, 12);
    p.set(dst, 16);
    const c = complement(onesSum(p, 0, 20));
    p[10] = c >> 8;
    p[11] = c & 255;
  }
  const u = ipLen;
  p[u] = sport >> 8;
  p[u + 1] = sport & 255;
  p[u + 2] = dport >> 8;
  p[u + 3] = dport & 255;
  p[u + 4] = udpLen >> 8;
  p[u + 5] = udpLen & 255;
  p.set(payload, u + 8);
  const c = complement(onesSum(p, u, u + udpLen, pseudoHeaderSum(src, dst, 17, udpLen))) || 0xffff;
  p[u + 6] = c >> 8;
  p[u + 7] = c & 255;
  return p;
}
