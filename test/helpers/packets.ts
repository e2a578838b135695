// Packet construction and checking for tests, in plain TypeScript and
// independent of the Wasm core: build IPv4/IPv6 packets (with IPv4 options or
// IPv6 extension headers) carrying TCP, UDP or ICMP/ICMPv6 with correct
// checksums, describe where their fields are, and verify every checksum by
// full recomputation. Plus fast-check arbitraries over all of it.

import fc from "fast-check";
import { complement, onesSum, pseudoHeaderSum, sumVerifies } from "../../src/net/checksum.js";

export type Proto = "tcp" | "udp" | "icmp";

export interface PacketSpec {
  family: 4 | 6;
  proto: Proto;
  src: Uint8Array;
  dst: Uint8Array;
  /** TCP/UDP source port, or ICMP echo identifier. */
  sport: number;
  dport: number;
  /** ICMP type (default echo request). */
  icmpType?: number;
  tcpFlags?: number;
  /** TCP sequence and acknowledgment numbers (default 0x1234 and 0). */
  tcpSeq?: number;
  tcpAck?: number;
  /** IPv4 options, a multiple of 4 bytes, at most 40. */
  ipOptions?: Uint8Array;
  /** IPv6 extension headers (next-header numbers 0, 60, 43 with segments left 0). */
  extHeaders?: readonly number[];
  payload: Uint8Array;
  ttl?: number;
  tos?: number;
  ipId?: number;
  df?: boolean;
  /** IPv4 UDP without checksum (0). */
  udpNoChecksum?: boolean;
}

export const IPPROTO = { tcp: 6, udp: 17, icmp4: 1, icmp6: 58 } as const;

export function protoNumber(family: 4 | 6, proto: Proto): number {
  return proto === "tcp" ? 6 : proto === "udp" ? 17 : family === 4 ? 1 : 58;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function get16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** Transport header + payload with the checksum field zero. */
function transport(spec: PacketSpec): Uint8Array {
  const p = spec.payload;
  if (spec.proto === "tcp") {
    const t = new Uint8Array(20 + p.length);
    put16(t, 0, spec.sport);
    put16(t, 2, spec.dport);
    new DataView(t.buffer).setUint32(4, spec.tcpSeq ?? 0x1234);
    new DataView(t.buffer).setUint32(8, spec.tcpAck ?? 0);
    t[12] = 0x50;
    t[13] = spec.tcpFlags ?? 0x02;
    put16(t, 14, 0xffff);
    t.set(p, 20);
    return t;
  }
  if (spec.proto === "udp") {
    const t = new Uint8Array(8 + p.length);
    put16(t, 0, spec.sport);
    put16(t, 2, spec.dport);
    put16(t, 4, t.length);
    t.set(p, 8);
    return t;
  }
  const t = new Uint8Array(8 + p.length);
  const echoReq = spec.family === 4 ? 8 : 128;
  t[0] = spec.icmpType ?? echoReq;
  put16(t, 4, spec.sport);
  put16(t, 6, 0x0001);
  t.set(p, 8);
  return t;
}

/** Build a raw IP packet with correct checksums. */
export function buildPacket(spec: PacketSpec): Uint8Array {
  const l4 = transport(spec);
  const proto = protoNumber(spec.family, spec.proto);
  let ip: Uint8Array;
  let l4off: number;
  if (spec.family === 4) {
    const opts = spec.ipOptions ?? new Uint8Array(0);
    const hl = 20 + opts.length;
    ip = new Uint8Array(hl + l4.length);
    ip[0] = 0x40 | (hl >>> 2);
    ip[1] = spec.tos ?? 0;
    put16(ip, 2, ip.length);
    put16(ip, 4, spec.ipId ?? 0x1234);
    put16(ip, 6, spec.df === false ? 0 : 0x4000);
    ip[8] = spec.ttl ?? 64;
    ip[9] = proto;
    ip.set(spec.src, 12);
    ip.set(spec.dst, 16);
    ip.set(opts, 20);
    put16(ip, 10, complement(onesSum(ip, 0, hl)));
    l4off = hl;
  } else {
    const ext = spec.extHeaders ?? [];
    const extLen = ext.length * 8;
    ip = new Uint8Array(40 + extLen + l4.length);
    ip[0] = 0x60 | ((spec.tos ?? 0) >>> 4);
    ip[1] = ((spec.tos ?? 0) & 0x0f) << 4;
    put16(ip, 4, extLen + l4.length);
    ip[6] = ext.length ? ext[0] : proto;
    ip[7] = spec.ttl ?? 64;
    ip.set(spec.src, 8);
    ip.set(spec.dst, 24);
    for (let i = 0; i < ext.length; i++) {
      const o = 40 + i * 8;
      ip[o] = i + 1 < ext.length ? ext[i + 1] : proto;
      ip[o + 1] = 0; // 8 bytes
      if (ext[i] === 43) { ip[o + 2] = 0; ip[o + 3] = 0; } // routing type 0, segments left 0
      else { ip[o + 2] = 1; ip[o + 3] = 4; } // PadN option filling the rest
    }
    l4off = 40 + extLen;
  }
  ip.set(l4, l4off);
  const csumAt = l4ChecksumOffset(spec.proto, l4off);
  if (!(spec.proto === "udp" && spec.family === 4 && spec.udpNoChecksum)) {
    const pseudo = spec.proto === "icmp" && spec.family === 4 ? 0 : pseudoHeaderSum(spec.src, spec.dst, proto, l4.length);
    let c = complement(onesSum(ip, l4off, ip.length, pseudo));
    if (spec.proto === "udp" && c === 0) c = 0xffff;
    put16(ip, csumAt, c);
  }
  return ip;
}

export function l4ChecksumOffset(proto: Proto, l4off: number): number {
  return l4off + (proto === "tcp" ? 16 : proto === "udp" ? 6 : 2);
}

/** Where things are in a raw IP packet built here (or any simple one). */
export interface Layout {
  family: 4 | 6;
  proto: number;
  l4: number;
  src: Uint8Array;
  dst: Uint8Array;
}

/** Locate the transport header of a raw IP packet (walks IPv6 extension headers 0/43/60). */
export function locate(ip: Uint8Array): Layout {
  const v = ip[0] >>> 4;
  if (v === 4) {
    return { family: 4, proto: ip[9], l4: (ip[0] & 15) * 4, src: ip.subarray(12, 16), dst: ip.subarray(16, 20) };
  }
  let nh = ip[6];
  let off = 40;
  while (nh === 0 || nh === 43 || nh === 60) {
    const next = ip[off];
    off += (ip[off + 1] + 1) * 8;
    nh = next;
  }
  return { family: 6, proto: nh, l4: off, src: ip.subarray(8, 24), dst: ip.subarray(24, 40) };
}

/**
 * Verify every checksum of a raw IP packet by full recomputation: the IPv4
 * header checksum and the transport checksum (TCP/UDP/ICMP/ICMPv6). For an
 * ICMP error, the quoted IPv4 header checksum too (and the quoted transport
 * checksum when the quote is the whole packet).
 */
export function checksumsValid(ip: Uint8Array): { ip: boolean; l4: boolean; quoted: boolean } {
  const L = locate(ip);
  const end = L.family === 4 ? get16(ip, 2) : 40 + get16(ip, 4);
  const ipOk = L.family === 6 || sumVerifies(onesSum(ip, 0, L.l4));
  const len = end - L.l4;
  let l4Ok = true;
  let quoted = true;
  if (L.proto === 6 || L.proto === 17) {
    const zeroUdp = L.proto === 17 && get16(ip, L.l4 + 6) === 0;
    if (!zeroUdp) l4Ok = sumVerifies(onesSum(ip, L.l4, end, pseudoHeaderSum(L.src, L.dst, L.proto, len)));
  } else if (L.proto === 1) {
    l4Ok = sumVerifies(onesSum(ip, L.l4, end));
  } else if (L.proto === 58) {
    l4Ok = sumVerifies(onesSum(ip, L.l4, end, pseudoHeaderSum(L.src, L.dst, 58, len)));
  }
  const type = ip[L.l4];
  const isError = (L.proto === 1 && [3, 4, 5, 11, 12].includes(type)) || (L.proto === 58 && type >= 1 && type <= 4);
  if (isError) {
    const q = ip.subarray(L.l4 + 8, end);
    if (q.length >= 20 && q[0] >>> 4 === 4) {
      const qhl = (q[0] & 15) * 4;
      quoted = sumVerifies(onesSum(q, 0, qhl));
      if (get16(q, 2) === q.length) quoted = quoted && checksumsValid(q).l4;
    } else if (q.length >= 40 && q[0] >>> 4 === 6 && 40 + get16(q, 4) === q.length) {
      quoted = checksumsValid(q).l4;
    }
  }
  return { ip: ipOk, l4: l4Ok, quoted };
}

/** Wrap a raw IP packet in an Ethernet header with the given 802.1Q tags. */
export function withEthernet(ip: Uint8Array, vlanTags = 0): Uint8Array {
  const out = new Uint8Array(14 + vlanTags * 4 + ip.length);
  out.set([0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb], 0);
  let o = 12;
  for (let i = 0; i < vlanTags; i++) {
    put16(out, o, 0x8100);
    put16(out, o + 2, 100 + i);
    o += 4;
  }
  put16(out, o, ip[0] >>> 4 === 4 ? 0x0800 : 0x86dd);
  out.set(ip, o + 2);
  return out;
}

/** An ICMP error from `from` to `to` quoting (a prefix of) `quoted`. */
export function buildIcmpError(family: 4 | 6, from: Uint8Array, to: Uint8Array, type: number, code: number, quoted: Uint8Array, extra = 0): Uint8Array {
  const icmp = new Uint8Array(8 + quoted.length);
  icmp[0] = type;
  icmp[1] = code;
  put16(icmp, 6, extra);
  icmp.set(quoted, 8);
  const proto = family === 4 ? 1 : 58;
  let ip: Uint8Array;
  if (family === 4) {
    ip = new Uint8Array(20 + icmp.length);
    ip[0] = 0x45;
    put16(ip, 2, ip.length);
    ip[8] = 64;
    ip[9] = proto;
    ip.set(from, 12);
    ip.set(to, 16);
    put16(ip, 10, complement(onesSum(ip, 0, 20)));
    ip.set(icmp, 20);
    put16(ip, 22, complement(onesSum(ip, 20, ip.length)));
  } else {
    ip = new Uint8Array(40 + icmp.length);
    ip[0] = 0x60;
    put16(ip, 4, icmp.length);
    ip[6] = proto;
    ip[7] = 64;
    ip.set(from, 8);
    ip.set(to, 24);
    ip.set(icmp, 40);
    put16(ip, 42, complement(onesSum(ip, 40, ip.length, pseudoHeaderSum(from, to, 58, icmp.length))));
  }
  return ip;
}

// ---- fast-check arbitraries ----

export const addr4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
export const addr6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
export const port = fc.integer({ min: 1, max: 65535 });

/** IPv4 options that parse and do not source-route: NOP, Router Alert, Record Route, Timestamp, EOL padding. */
export const ipv4Options: fc.Arbitrary<Uint8Array> = fc
  .array(fc.constantFrom<number[]>([1], [148, 4, 0, 0], [7, 7, 4, 0, 0, 0, 0], [68, 8, 5, 0, 0, 0, 0, 0]), { maxLength: 4 })
  .map((parts) => {
    const flat = parts.flat();
    while (flat.length % 4) flat.push(0);
    return new Uint8Array(flat.slice(0, 40));
  });

export const ipv6Extensions: fc.Arbitrary<number[]> = fc
  .array(fc.constantFrom(60, 43, 60), { maxLength: 3 })
  .chain((rest) => fc.boolean().map((hop) => (hop ? [0, ...rest] : rest)));

export interface ArbOptions {
  family?: 4 | 6;
  proto?: Proto;
  minPayload?: number;
  maxPayload?: number;
  dst?: Uint8Array;
  dport?: number;
}

/** Arbitrary packet specs: v4/v6 x TCP/UDP/ICMP x options/extension headers x payload sizes. */
export function packetSpec(o: ArbOptions = {}): fc.Arbitrary<PacketSpec> {
  const family = o.family ? fc.constant(o.family) : fc.constantFrom<4 | 6>(4, 6);
  const proto = o.proto ? fc.constant(o.proto) : fc.constantFrom<Proto>("tcp", "udp", "icmp");
  return fc.tuple(family, proto).chain(([fam, pr]) =>
    fc.record({
      family: fc.constant(fam),
      proto: fc.constant(pr),
      src: fam === 4 ? addr4 : addr6,
      dst: o.dst ? fc.constant(o.dst) : fam === 4 ? addr4 : addr6,
      sport: port,
      dport: o.dport !== undefined ? fc.constant(o.dport) : port,
      tcpFlags: fc.constantFrom(0x02, 0x10, 0x18, 0x11, 0x04),
      ipOptions: fam === 4 ? ipv4Options : fc.constant(undefined),
      extHeaders: fam === 6 ? ipv6Extensions : fc.constant(undefined),
      // size "max": every length up to maxPayload is likely, not just fast-check's small default
      payload: fc.uint8Array({ minLength: o.minPayload ?? 0, maxLength: o.maxPayload ?? 300, size: "max" }),
      ttl: fc.integer({ min: 1, max: 255 }),
      tos: fc.integer({ min: 0, max: 255 }),
      ipId: fc.integer({ min: 0, max: 0xffff }),
      df: fc.boolean(),
      udpNoChecksum: fam === 4 && pr === "udp" ? fc.boolean() : fc.constant(false),
    }),
  );
}

/**
 * Split a raw IP datagram into fragments whose payload parts are `size` bytes
 * (a multiple of 8; the last part takes the rest). IPv6 gets a Fragment
 * header with identification `id` after the fixed header (the builder's
 * extension headers must be absent).
 */
export function fragment(ip: Uint8Array, size: number, id = 0x4242): Uint8Array[] {
  const L = locate(ip);
  const hl = L.family === 4 ? (ip[0] & 15) * 4 : 40;
  const payload = ip.subarray(hl);
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += size) {
    const part = payload.subarray(off, Math.min(payload.length, off + size));
    const more = off + size < payload.length;
    if (L.family === 4) {
      const f = new Uint8Array(hl + part.length);
      f.set(ip.subarray(0, hl));
      f.set(part, hl);
      put16(f, 2, f.length); // the IPv4 identification stays the datagram's own
      put16(f, 6, (get16(ip, 6) & 0x4000) | (more ? 0x2000 : 0) | (off >>> 3));
      put16(f, 10, 0);
      put16(f, 10, complement(onesSum(f, 0, hl)));
      out.push(f);
    } else {
      const f = new Uint8Array(48 + part.length);
      f.set(ip.subarray(0, 40));
      f[6] = 44;
      put16(f, 4, 8 + part.length);
      f[40] = ip[6];
      put16(f, 42, off | (more ? 1 : 0));
      f[44] = (id >>> 24) & 255; f[45] = (id >>> 16) & 255; f[46] = (id >>> 8) & 255; f[47] = id & 255;
      f.set(part, 48);
      out.push(f);
    }
  }
  return out;
}

/** Reassemble fragments made by fragment() (or rewritten copies of them) into one datagram. */
export function reassemble(frags: readonly Uint8Array[]): Uint8Array {
  const first = frags[0];
  const v6 = first[0] >>> 4 === 6;
  const hl = v6 ? 40 : (first[0] & 15) * 4;
  const parts: { off: number; data: Uint8Array }[] = frags.map((f) =>
    v6 ? { off: get16(f, 42) & 0xfff8, data: f.subarray(48) } : { off: (get16(f, 6) & 0x1fff) * 8, data: f.subarray(hl) },
  );
  const total = Math.max(...parts.map((p) => p.off + p.data.length));
  const out = new Uint8Array(hl + total);
  out.set(first.subarray(0, hl));
  for (const p of parts) out.set(p.data, hl + p.off);
  if (v6) {
    out[6] = first[40];
    put16(out, 4, total);
  } else {
    put16(out, 2, out.length);
    put16(out, 6, get16(first, 6) & 0x4000);
    put16(out, 10, 0);
    put16(out, 10, complement(onesSum(out, 0, hl)));
  }
  return out;
}
