// Synthetic trace generator: writes a classic pcap of clients talking to
// anycast group transport addresses, as a proxy in front of them sees it
// (client -> TA direction only), for benchmarks and tests of the data plane.
//
// It must never produce a packet with a wrong checksum or an impossible
// header (every IPv4 header, TCP, UDP, ICMP and ICMPv6 checksum is right), and
// never depend on anything but its options: no Math.random, no clock, no
// environment, so the same options give a byte-identical file. It must also
// stay fast (millions of packets per second): the hot loop allocates nothing,
// patches per-group header templates held in one ArrayBuffer, and computes
// checksums from precomputed partial sums instead of summing each packet.
//
// What the trace holds (all choices documented here are part of the format):
//
// Groups: see ./groups.ts (traceGroups). Flows: `flows` flows, flow f is IPv6
//   when floor((f+1)·share) > floor(f·share) (exactly floor(flows·share) IPv6
//   flows). Each flow goes to a random group of its family: an ICMP echo group
//   with probability 1/8, else a uniformly chosen TCP/UDP group. Clients:
//   10.0.0.0/8 and fd00::/8, four flows per client host (distinct source
//   ports, or ICMP echo identifiers, 1024..65535), so every flow has its own
//   client endpoint and the flows are distinct 5-tuples (ICMP: source,
//   destination, identifier).
// Packets per flow: Zipf with s = 1 over a seeded random ranking of the
//   flows. When packets >= flows every flow gets at least one packet and the
//   remaining packets - flows are shared in proportion to 1/rank (shares
//   rounded down, the few packets left over go one each to the top ranks), so
//   the trace holds exactly `flows` distinct flows; otherwise the top
//   `packets` ranks get one packet each (min(packets, flows) distinct flows).
// Order: a uniformly random interleaving of the flows' packet sequences
//   (each packet picks a flow with probability proportional to its remaining
//   packets, see ./sampler.ts), so every flow's own packets stay in order.
// TCP flow: first packet SYN (MSS, SACK permitted, window scale 7: a 66-byte
//   frame over IPv4, 86 over IPv6, whatever `sizes`), last packet (when the
//   flow has 2 or more) FIN|ACK carrying data like the segments before it,
//   between them ACK segments, PSH|ACK when they carry data. The sequence
//   number starts at a random ISN and advances by the SYN, each byte of data,
//   and the FIN; the ACK number starts at a random server ISN + 1 and
//   advances by 1448 per segment, as if the server sent a full segment per
//   client segment (the server's side is not in the trace). IPv4 TCP has DF
//   set; IPv4 UDP and ICMP do not.
// UDP flow: request datagrams. ICMP flow: echo requests, identifier = the
//   client's "port", sequence numbers 1, 2, 3, ...
// Sizes (frame = captured bytes: Ethernet header, no FCS):
//   "64":   64-byte frames (50-byte IP packets), except the SYNs above and
//           IPv6 TCP segments, which cannot be smaller than 74 bytes: those
//           are pure ACKs (and a bare FIN|ACK) without payload;
//   "1500": 1514-byte frames (1500-byte IP packets), SYNs excepted;
//   "imix": simple IMIX 7:4:1 by IP size, each data packet drawn at random:
//           the "64" size, 576-byte IP (590-byte frame) and 1500-byte IP
//           (1514-byte frame). The standard quotes 64/594/1518-byte frames
//           counting the 4-byte FCS that a capture does not hold; a 1518-byte
//           captured frame would be a 1504-byte IP packet, over the usual
//           1500 MTU. SYNs excepted.
//   Payload bytes are a fixed ASCII pattern (so tshark calls the UDP 53 and
//   123 payloads malformed DNS and NTP: cosmetic, the proxy does not care).
// Timestamps: the first packet at TRACE_EPOCH_SECONDS (2023-11-14T22:13:20Z),
//   each next one TRACE_PACKET_INTERVAL_US later (10 µs: 100000 packets/s,
//   so 10M packets span 100 s).
// Ethernet: from TRACE_ROUTER_MAC (the upstream router) to TRACE_PROXY_MAC.
// IPv4/IPv6 TTL / hop limit 47..62 per flow (clients some hops away),
//   IPv6 flow label random per flow.
// Memory: about 80 bytes per flow and 96 per group, plus an 8 MiB buffer.

import { closeSync, openSync, unlinkSync, writeSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { ANYCAST_V6_PREFIX, anycastV4, anycastV6Low, groupLayout, PROTO_ICMP } from "./groups.js";
import { isIPv6Flow, mix32, Prng, resolveTraceOptions, TraceOptionsError, type TraceOptions } from "./options.js";
import {
  RemainingSampler, FLOW_STRIDE, F_GROUP, F_ADDR, F_PORT, F_HASH, F_SEQ, F_COUNT, F_SENT, F_BASE,
  COL_STRIDE, COL_KEEP, COL_ALIAS, COL_THRESHOLD,
} from "./sampler.js";

export { traceGroups, traceConfig, TRACE_SERVICES, TRACE_PROXY_ADDRESS, TRACE_PROXY_ADDRESS6 } from "./groups.js";
export type { TraceGroup, TraceConfig, TraceConfigGroup, TraceConfigTarget } from "./groups.js";
export {
  resolveTraceOptions, TRACE_DEFAULTS, TRACE_LIMITS, TRACE_SIZES, TraceOptionsError,
  type TraceOptions, type ResolvedTraceOptions, type TraceSizes,
} from "./options.js";

/** Time of the first packet, seconds since the Unix epoch. */
export const TRACE_EPOCH_SECONDS = 1700000000;
/** Time between consecutive packets, microseconds. */
export const TRACE_PACKET_INTERVAL_US = 10;
export const TRACE_PROXY_MAC = "02:70:69:61:73:01";
export const TRACE_ROUTER_MAC = "02:72:74:72:00:01";

export interface GenerateTraceOptions extends TraceOptions {
  /** Path of the pcap file to write (created or truncated). */
  out: string;
}

/** Called about every 1% of the packets, and once at the end with done === total. */
export type TraceProgress = (done: number, total: number) => void;

export interface TraceSummary {
  out: string;
  packets: number;
  /** Flows with at least one packet: min(packets, flows). */
  flows: number;
  ipv6Flows: number;
  tcpFlows: number;
  udpFlows: number;
  icmpFlows: number;
  /** Transport addresses of the trace (traceGroups().length), whether or not a flow goes to each. */
  groups: number;
  /** File size in bytes. */
  bytes: number;
  /** Time from the first to the last packet's timestamp, microseconds. */
  spanUs: number;
  /** Wall-clock time the generation took, seconds. */
  seconds: number;
}

// ---------------------------------------------------------------- packet layout constants

const ETH = 14;
const PCAP_RECORD = 16;
const MAX_FRAME = ETH + 1500;
/**
 * A group's template: its headers (at most Ethernet + IPv6 + TCP = 74 bytes)
 * followed by the payload pattern up to this size, so that one copy makes a
 * whole small frame (the largest, an IPv6 SYN, is 86 bytes).
 */
const TPL_SIZE = 96;
const PATTERN = 0; // payload pattern at the start of the arena
const PATTERN_TEXT = "PIAS synthetic trace payload, client to anycast group. ";
const TPL_BASE = 2048;
/** Output staging area; written with one writeSync each time it fills. */
const OUT_BYTES = 8 << 20;

const GRP_STRIDE = 4;
const G_KIND = 0;
const G_IPSUM = 1;
const G_L4SUM = 2;

// Kinds: family index (0 = IPv4, 1 = IPv6) * 3 + protocol index (0 TCP, 1 UDP, 2 ICMP).
const K_TCP = 0;
const K_UDP = 1;
/** L3 + L4 header bytes per kind. */
const HDR = Int32Array.of(40, 28, 28, 60, 48, 48);
/** IP packet length per size class: small ("64"), medium (IMIX 576), large (1500). */
const SMALL_IP = 64 - ETH;
const CLASS_IP = [SMALL_IP, 576, 1500];

const DATA_WINDOW = 502; // 64256 bytes with window scale 7, what Linux advertises
const SYN_WINDOW = 64240;
const SYN_OPTIONS = 12; // MSS 4, NOP NOP SACK_PERM 2, NOP WS 3
const TCP_DF = 0x4000;

const TS_PER_SEC = 1000000;

function macBytes(text: string): number[] {
  return text.split(":").map((h) => parseInt(h, 16));
}

/**
 * Write a pcap of synthetic client traffic to the trace's groups (see the
 * module header for exactly what it holds) to `options.out`. Synchronous:
 * writes through one 8 MiB buffer with writeSync. Throws TraceOptionsError on
 * bad options (before touching the file) and file-system errors as they come;
 * a file left incomplete by an error is removed.
 */
export function generateTrace(options: GenerateTraceOptions, onProgress?: TraceProgress): TraceSummary {
  const started = performance.now();
  if (typeof options?.out !== "string" || options.out === "") throw new TraceOptionsError("out: the path of the pcap file to write is required");
  const o = resolveTraceOptions(options);
  const N = o.packets;
  const F = o.flows;
  const layout = groupLayout(o);
  const G = layout.count;

  // ---------------------------------------------------------------- arena: pattern, templates, output
  const outBase = TPL_BASE + G * TPL_SIZE;
  const arena = new ArrayBuffer(outBase + OUT_BYTES);
  const u8 = new Uint8Array(arena);
  const dv = new DataView(arena);
  const patSum = new Int32Array(1501); // ones'-complement word sums of the pattern's first L bytes, unfolded
  for (let i = 0; i < 1500; i++) u8[PATTERN + i] = PATTERN_TEXT.charCodeAt(i % PATTERN_TEXT.length);
  for (let L = 1; L <= 1500; L++) {
    patSum[L] = L & 1 ? patSum[L - 1] + (u8[PATTERN + L - 1] << 8) : patSum[L - 2] + ((u8[PATTERN + L - 2] << 8) | u8[PATTERN + L - 1]);
  }

  // ---------------------------------------------------------------- per-group templates and constant checksum parts
  // Per group: kind, IPv4 header words and pseudo-header + L4 header words that do not change per packet.
  const grp = new Int32Array(G * GRP_STRIDE);
  const dstMac = macBytes(TRACE_PROXY_MAC);
  const srcMac = macBytes(TRACE_ROUTER_MAC);
  for (let g = 0; g < G; g++) {
    const v6 = layout.family[g] === 6;
    const proto = layout.proto[g];
    const pi = proto === 6 ? 0 : proto === 17 ? 1 : 2;
    const gr = g * GRP_STRIDE;
    grp[gr + G_KIND] = (v6 ? 3 : 0) + pi;
    const t = TPL_BASE + g * TPL_SIZE;
    u8.set(dstMac, t);
    u8.set(srcMac, t + 6);
    u8[t + 12] = v6 ? 0x86 : 0x08;
    u8[t + 13] = v6 ? 0xdd : 0x00;
    const ip = t + ETH;
    let l4: number;
    let dstWords = 0;
    if (!v6) {
      const dst = anycastV4(layout.addr[g]);
      const ipProto = proto === PROTO_ICMP ? 1 : proto;
      u8[ip] = 0x45;
      if (proto === 6) u8[ip + 6] = TCP_DF >>> 8;
      u8[ip + 9] = ipProto;
      dv.setUint32(ip + 16, dst);
      dstWords = (dst >>> 16) + (dst & 0xffff);
      grp[gr + G_IPSUM] = 0x4500 + (proto === 6 ? TCP_DF : 0) + ipProto + dstWords;
      l4 = ip + 20;
    } else {
      const low = anycastV6Low(layout.addr[g]);
      u8[ip + 6] = proto === PROTO_ICMP ? 58 : proto;
      u8[ip + 8] = 0xfd; // client source fd00::/8; the low 32 bits are patched per packet
      u8.set(ANYCAST_V6_PREFIX, ip + 24);
      dv.setUint32(ip + 36, low);
      for (let i = 0; i < 12; i += 2) dstWords += (ANYCAST_V6_PREFIX[i] << 8) | ANYCAST_V6_PREFIX[i + 1];
      dstWords += (low >>> 16) + (low & 0xffff) + 0xfd00;
      l4 = ip + 40;
    }
    const hdrEnd = l4 + (proto === 6 ? 20 : 8);
    u8.copyWithin(hdrEnd, PATTERN, PATTERN + (t + TPL_SIZE - hdrEnd));
    const port = layout.port[g];
    if (proto === 6) {
      dv.setUint16(l4 + 2, port);
      u8[l4 + 12] = 0x50;
      dv.setUint16(l4 + 14, DATA_WINDOW);
      grp[gr + G_L4SUM] = dstWords + 6 + port + DATA_WINDOW;
    } else if (proto === 17) {
      dv.setUint16(l4 + 2, port);
      grp[gr + G_L4SUM] = dstWords + 17 + port;
    } else if (!v6) {
      u8[l4] = 8; // echo request; ICMPv4 has no pseudo-header
      grp[gr + G_L4SUM] = 0x0800;
    } else {
      u8[l4] = 128;
      grp[gr + G_L4SUM] = dstWords + 58 + 0x8000;
    }
  }

  // ---------------------------------------------------------------- flows
  const setup = new Prng(o.seed, 1);
  const seedMix = mix32((o.seed >>> 0) ^ mix32(Math.floor(o.seed / 4294967296) >>> 0));
  const flows = new Int32Array(F * FLOW_STRIDE);
  const addrs = layout.icmpGroups[0].length || layout.icmpGroups[1].length;
  for (let f = 0; f < F; f++) {
    const fi = isIPv6Flow(f, o.ipv6Share) ? 1 : 0;
    const fr = f * FLOW_STRIDE;
    flows[fr + F_GROUP] = (setup.u32() & 7) === 0 ? layout.icmpGroups[fi][setup.below(addrs)] : layout.portGroups[fi][setup.below(o.groups)];
    const host = f >>> 2;
    // An odd multiplier is a bijection mod 2^22: distinct hosts get distinct addresses; "| 1" avoids .0/.255.
    const x = (Math.imul(host, 0x2545f491) + seedMix) & 0x3fffff;
    flows[fr + F_ADDR] = fi === 0 ? (0x0a000000 | (x << 2) | 1) >>> 0 : ((x << 2) | 1) >>> 0;
    // 64512 / 4 = 16128: the four flows of one host get four different ports.
    flows[fr + F_PORT] = 1024 + ((mix32(host ^ seedMix) % 64512) + (f & 3) * 16128) % 64512;
    flows[fr + F_HASH] = setup.u32();
    flows[fr + F_SEQ] = setup.u32();
  }
  // Zipf over a seeded ranking: byRank[r] is the flow of rank r + 1.
  const byRank = new Int32Array(F);
  for (let i = 0; i < F; i++) byRank[i] = i;
  for (let i = F - 1; i > 0; i--) {
    const j = setup.below(i + 1);
    const tmp = byRank[i];
    byRank[i] = byRank[j];
    byRank[j] = tmp;
  }
  if (N >= F) {
    let W = 0;
    for (let r = 1; r <= F; r++) W += 1 / r;
    const extra = N - F;
    let given = 0;
    for (let r = 0; r < F; r++) {
      const c = 1 + Math.floor((extra * (1 / (r + 1))) / W);
      flows[byRank[r] * FLOW_STRIDE + F_COUNT] = c;
      given += c;
    }
    for (let r = 0; given < N; r = (r + 1) % F, given++) flows[byRank[r] * FLOW_STRIDE + F_COUNT]++;
  } else {
    for (let r = 0; r < N; r++) flows[byRank[r] * FLOW_STRIDE + F_COUNT] = 1;
  }
  const summary: TraceSummary = {
    out: options.out, packets: N, flows: 0, ipv6Flows: 0, tcpFlows: 0, udpFlows: 0, icmpFlows: 0,
    groups: G, bytes: 0, spanUs: N > 0 ? (N - 1) * TRACE_PACKET_INTERVAL_US : 0, seconds: 0,
  };
  for (let f = 0; f < F; f++) {
    if (flows[f * FLOW_STRIDE + F_COUNT] === 0) continue;
    const k = grp[flows[f * FLOW_STRIDE + F_GROUP] * GRP_STRIDE + G_KIND];
    summary.flows++;
    if (k >= 3) summary.ipv6Flows++;
    if (k % 3 === K_TCP) summary.tcpFlows++;
    else if (k % 3 === K_UDP) summary.udpFlows++;
    else summary.icmpFlows++;
  }
  const sampler = new RemainingSampler(flows);
  const cols = sampler.cols;
  let cN = sampler.n;

  // Payload bytes per kind (6) x size class (3).
  const payloadOf = new Int32Array(18);
  for (let k = 0; k < 6; k++) for (let c = 0; c < 3; c++) payloadOf[k * 3 + c] = Math.max(0, CLASS_IP[c] - HDR[k]);
  const sizeMode = o.sizes === "64" ? 0 : o.sizes === "1500" ? 2 : -1;

  // ---------------------------------------------------------------- write
  let fd = -1;
  let opened = false;
  let ok = false;
  try {
    fd = openSync(options.out, "w");
    opened = true;
    let o8 = outBase;
    const outEnd = outBase + OUT_BYTES - (PCAP_RECORD + MAX_FRAME);
    // pcap global header: little-endian, microseconds, v2.4, LINKTYPE_ETHERNET.
    dv.setUint32(o8, 0xa1b2c3d4, true);
    dv.setUint16(o8 + 4, 2, true);
    dv.setUint16(o8 + 6, 4, true);
    dv.setUint32(o8 + 8, 0, true);
    dv.setUint32(o8 + 12, 0, true);
    dv.setUint32(o8 + 16, 65535, true);
    dv.setUint32(o8 + 20, 1, true);
    o8 += 24;
    let bytes = 0;
    const flush = (end: number): void => {
      let at = outBase;
      while (at < end) at += writeSync(fd, u8, at, end - at);
      bytes += end - outBase;
    };

    const packetRng = new Prng(o.seed, 2);
    let s0 = packetRng.s0;
    let s1 = packetRng.s1;
    let s2 = packetRng.s2;
    let s3 = packetRng.s3;
    let sec = TRACE_EPOCH_SECONDS;
    let usec = 0;
    const progressStep = Math.max(1, Math.ceil(N / 100));
    let nextProgress = progressStep;

    for (let i = 0; i < N; i++) {
      // Pick the flow (see ./sampler.ts). xoshiro128** is inlined: r1 and r2
      // are its outputs (t its temporary): r1 picks the alias column, r2
      // within it, a third draw accepts or rejects.
      let r1 = 0;
      let t = 0;
      let fr = 0;
      for (;;) {
        r1 = Math.imul(((Math.imul(s1, 5) << 7) | (Math.imul(s1, 5) >>> 25)), 9);
        t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
        const r2 = Math.imul(((Math.imul(s1, 5) << 7) | (Math.imul(s1, 5) >>> 25)), 9);
        t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
        const c = Math.floor(((r1 >>> 0) / 4294967296) * cN) * COL_STRIDE;
        fr = cols[(r2 >>> 0) < (cols[c + COL_THRESHOLD] >>> 0) ? c + COL_KEEP : c + COL_ALIAS] * FLOW_STRIDE;
        const rem = flows[fr + F_COUNT] - flows[fr + F_SENT];
        const base = flows[fr + F_BASE];
        if (rem === base) break;
        r1 = Math.imul(((Math.imul(s1, 5) << 7) | (Math.imul(s1, 5) >>> 25)), 9);
        t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
        if (Math.floor(((r1 >>> 0) / 4294967296) * base) < rem) break;
      }
      const sent = flows[fr + F_SENT]++;
      if ((N - i - 1) * 2 < sampler.builtFor) {
        sampler.rebuild();
        cN = sampler.n;
      }

      const g = flows[fr + F_GROUP];
      const gr = g * GRP_STRIDE;
      const kind = grp[gr + G_KIND];
      const last = sent === flows[fr + F_COUNT] - 1;
      const h = flows[fr + F_HASH] >>> 0;
      const src = flows[fr + F_ADDR] >>> 0;
      const srcWords = (src >>> 16) + (src & 0xffff);
      const sport = flows[fr + F_PORT];
      const ttl = 62 - ((h >>> 8) & 15);
      const kp = kind % 3;
      const v6 = kind >= 3;

      let cls = sizeMode;
      if (cls < 0) {
        r1 = Math.imul(((Math.imul(s1, 5) << 7) | (Math.imul(s1, 5) >>> 25)), 9);
        t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
        const c12 = (r1 >>> 0) % 12;
        cls = c12 < 7 ? 0 : c12 < 11 ? 1 : 2;
      }
      const syn = kp === K_TCP && sent === 0;
      const pl = syn ? 0 : payloadOf[kind * 3 + cls];
      const l4Len = HDR[kind] - (v6 ? 40 : 20) + (syn ? SYN_OPTIONS : 0) + pl;
      const ipLen = (v6 ? 40 : 20) + l4Len;
      const frame = ETH + ipLen;

      // pcap record header
      dv.setUint32(o8, sec, true);
      dv.setUint32(o8 + 4, usec, true);
      dv.setUint32(o8 + 8, frame, true);
      dv.setUint32(o8 + 12, frame, true);
      const p = o8 + PCAP_RECORD;
      const tpl = TPL_BASE + g * TPL_SIZE;
      u8.copyWithin(p, tpl, tpl + (frame < TPL_SIZE ? frame : TPL_SIZE));

      const ip = p + ETH;
      let l4: number;
      if (!v6) {
        const id = (h + sent) & 0xffff;
        u8[ip + 2] = ipLen >>> 8;
        u8[ip + 3] = ipLen;
        u8[ip + 4] = id >>> 8;
        u8[ip + 5] = id;
        u8[ip + 8] = ttl;
        u8[ip + 12] = src >>> 24;
        u8[ip + 13] = src >>> 16;
        u8[ip + 14] = src >>> 8;
        u8[ip + 15] = src;
        let s = grp[gr + G_IPSUM] + ipLen + id + (ttl << 8) + srcWords;
        s = (s & 0xffff) + (s >>> 16);
        s = (s & 0xffff) + (s >>> 16);
        s = ~s & 0xffff;
        u8[ip + 10] = s >>> 8;
        u8[ip + 11] = s;
        l4 = ip + 20;
      } else {
        const label = h >>> 12;
        u8[ip] = 0x60 | (label >>> 16);
        u8[ip + 1] = label >>> 8;
        u8[ip + 2] = label;
        u8[ip + 4] = l4Len >>> 8;
        u8[ip + 5] = l4Len;
        u8[ip + 7] = ttl;
        u8[ip + 20] = src >>> 24;
        u8[ip + 21] = src >>> 16;
        u8[ip + 22] = src >>> 8;
        u8[ip + 23] = src;
        l4 = ip + 40;
      }

      let s: number;
      let ck: number; // offset of the checksum field
      let body: number; // where the payload goes
      if (kp === K_TCP) {
        const seq = flows[fr + F_SEQ] >>> 0;
        // The server's ISN + 1, then 1448 more bytes acknowledged per segment: a
        // constant ACK would make every pure ACK look like a duplicate ACK.
        const ack = (Math.imul(h, 0x9e3779b1) + 1 + (sent - 1) * 1448) >>> 0;
        u8[l4] = sport >>> 8;
        u8[l4 + 1] = sport;
        u8[l4 + 4] = seq >>> 24;
        u8[l4 + 5] = seq >>> 16;
        u8[l4 + 6] = seq >>> 8;
        u8[l4 + 7] = seq;
        s = grp[gr + G_L4SUM] + srcWords + l4Len + sport + (seq >>> 16) + (seq & 0xffff);
        if (syn) {
          const mss = v6 ? 1440 : 1460;
          u8[l4 + 12] = 0x80;
          u8[l4 + 13] = 0x02;
          u8[l4 + 14] = SYN_WINDOW >>> 8;
          u8[l4 + 15] = SYN_WINDOW & 255;
          const opt = l4 + 20;
          u8[opt] = 2; u8[opt + 1] = 4; u8[opt + 2] = mss >>> 8; u8[opt + 3] = mss & 255;
          u8[opt + 4] = 1; u8[opt + 5] = 1; u8[opt + 6] = 4; u8[opt + 7] = 2;
          u8[opt + 8] = 1; u8[opt + 9] = 3; u8[opt + 10] = 3; u8[opt + 11] = 7;
          s += 0x8002 - DATA_WINDOW + SYN_WINDOW + 0x0204 + mss + 0x0101 + 0x0402 + 0x0103 + 0x0307;
          flows[fr + F_SEQ] = seq + 1;
          body = opt + SYN_OPTIONS;
        } else {
          // A flow's last packet carries the FIN (unless the flow is only its SYN).
          const flags = (last ? 0x11 : 0x10) | (pl > 0 ? 0x08 : 0);
          u8[l4 + 8] = ack >>> 24;
          u8[l4 + 9] = ack >>> 16;
          u8[l4 + 10] = ack >>> 8;
          u8[l4 + 11] = ack;
          u8[l4 + 13] = flags;
          s += (ack >>> 16) + (ack & 0xffff) + 0x5000 + flags;
          flows[fr + F_SEQ] = seq + pl + (last ? 1 : 0);
          body = l4 + 20;
        }
        ck = l4 + 16;
      } else if (kp === K_UDP) {
        u8[l4] = sport >>> 8;
        u8[l4 + 1] = sport;
        u8[l4 + 4] = l4Len >>> 8;
        u8[l4 + 5] = l4Len;
        s = grp[gr + G_L4SUM] + srcWords + l4Len + l4Len + sport;
        ck = l4 + 6;
        body = l4 + 8;
      } else {
        const eseq = (sent + 1) & 0xffff;
        u8[l4 + 4] = sport >>> 8;
        u8[l4 + 5] = sport;
        u8[l4 + 6] = eseq >>> 8;
        u8[l4 + 7] = eseq;
        s = grp[gr + G_L4SUM] + sport + eseq + (v6 ? srcWords + l4Len : 0);
        ck = l4 + 2;
        body = l4 + 8;
      }
      if (pl > 0) {
        const inTemplate = TPL_SIZE - (body - p);
        if (pl > inTemplate) u8.copyWithin(body + inTemplate, PATTERN + inTemplate, PATTERN + pl);
        s += patSum[pl];
      }
      s = (s & 0xffff) + (s >>> 16);
      s = (s & 0xffff) + (s >>> 16);
      s = ~s & 0xffff;
      if (s === 0 && kp === K_UDP) s = 0xffff; // 0 means "no checksum" in UDP
      u8[ck] = s >>> 8;
      u8[ck + 1] = s;

      o8 = p + frame;
      if (o8 > outEnd) {
        flush(o8);
        o8 = outBase;
      }
      usec += TRACE_PACKET_INTERVAL_US;
      if (usec >= TS_PER_SEC) {
        usec -= TS_PER_SEC;
        sec++;
      }
      if (i + 1 === nextProgress) {
        nextProgress += progressStep;
        if (onProgress && i + 1 < N) onProgress(i + 1, N);
      }
    }
    flush(o8);
    summary.bytes = bytes;
    closeSync(fd);
    fd = -1;
    ok = true;
  } finally {
    if (fd >= 0) closeSync(fd);
    if (opened && !ok) {
      try {
        unlinkSync(options.out);
      } catch {
        // already gone
      }
    }
  }
  if (onProgress) onProgress(N, N);
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
