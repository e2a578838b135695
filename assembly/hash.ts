// Hashing for tables and for target selection.
//
// MurmurHash3 (x86, 32-bit) mixing over 32-bit words loaded little-endian from
// network-order bytes, and the flow index's own hash (flowHash, below). The
// affinity policy depends on the murmur values: every proxy (and the
// TypeScript reference model) must compute the same hash for the same
// client, so changing anything there changes which target a client gets.
// Seeds are fixed constants, not random.

import { raw32 } from "./wire/bytes";

export const SEED_GROUP: u32 = 0x85ebca6b;
export const SEED_AFFINITY: u32 = 0x5ca1ab1e;
export const SEED_MAGLEV_OFFSET: u32 = 0x6d61676c; // "magl"
export const SEED_FRAG: u32 = 0x66726167; // "frag"
export const SEED_ENDPOINT: u32 = 0x656e6470; // "endp"

@inline export function mix(h: u32, k: u32): u32 {
  k *= 0xcc9e2d51;
  k = rotl<u32>(k, 15);
  k *= 0x1b873593;
  h ^= k;
  h = rotl<u32>(h, 13);
  return h * 5 + 0xe6546b64;
}

@inline export function finalize(h: u32, lenBytes: u32): u32 {
  h ^= lenBytes;
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

/** Hash of an address (4 or 16 bytes at p) folded into h. */
@inline export function mixAddr(h: u32, p: usize, family: u32): u32 {
  h = mix(h, raw32(p));
  if (family == 6) {
    h = mix(h, raw32(p + 4));
    h = mix(h, raw32(p + 8));
    h = mix(h, raw32(p + 12));
  }
  return h;
}

/**
 * Hash of a transport tuple as a packet carries it: addresses at srcPtr/dstPtr,
 * ports raw (network order loaded little-endian), protocol number.
 */
@inline export function hashTuple(seed: u32, family: u32, srcPtr: usize, dstPtr: usize, sportRaw: u32, dportRaw: u32, proto: u32): u32 {
  let h = mixAddr(seed, srcPtr, family);
  h = mixAddr(h, dstPtr, family);
  h = mix(h, (sportRaw & 0xffff) | (dportRaw << 16));
  h = mix(h, proto | (family << 8));
  return finalize(h, family == 4 ? 16 : 40);
}

// ---- the flow index's hash ----
// Every key of the flow table (a packet's tuple, a binding's reverse key) is
// hashed with flowHash: 64-bit words absorbed by a rotate, an xor and a
// multiply each (an IPv4 tuple is two words: the addresses, then the ports
// with the protocol and family), then the rest of murmur3's 64-bit
// finalizer (whose first multiply the last word's absorption is). About 20
// machine instructions for an IPv4 tuple where hashTuple takes about 50. It
// is a proxy's own: no other proxy computes it (affinity, which proxies must
// agree on, hashes with hashTuple).

const FLOW_START: u64 = 0x9e3779b97f4a7c15;
const FLOW_MUL: u64 = 0xff51afd7ed558ccd;

@inline function flowAbsorb(st: u64, w: u64): u64 {
  return (rotl<u64>(st, 29) ^ w) * FLOW_MUL;
}

/** The flow hash's state after a tuple's addresses (4 or 16 bytes each at src and dst). */
@inline export function flowHashAddrs(family: u32, src: usize, dst: usize): u64 {
  if (family == 4) return flowAbsorb(FLOW_START, <u64>load<u32>(src) | (<u64>load<u32>(dst) << 32));
  let st = flowAbsorb(FLOW_START, load<u64>(src));
  st = flowAbsorb(st, load<u64>(src + 8));
  st = flowAbsorb(st, load<u64>(dst));
  return flowAbsorb(st, load<u64>(dst + 8));
}

/** The flow hash of a tuple from flowHashAddrs' state: ports raw, protocol number. */
@inline export function flowHashPorts(st: u64, family: u32, sportRaw: u32, dportRaw: u32, proto: u32): u32 {
  return flowHashEnd(st, (sportRaw & 0xffff) | (dportRaw << 16), proto | (family << 8));
}

/** The last word (the ports as one word, the protocol and family) and the finalizer. */
@inline function flowHashEnd(st: u64, ports: u32, protoFamily: u32): u32 {
  st = flowAbsorb(st, <u64>ports | (<u64>protoFamily << 32));
  st ^= st >> 33;
  st *= 0xc4ceb9fe1a85ec53;
  st ^= st >> 33;
  return <u32>st;
}

/** The flow index's hash of a transport tuple as a packet carries it (addresses at src/dst, ports raw). */
@inline export function flowHash(family: u32, src: usize, dst: usize, sportRaw: u32, dportRaw: u32, proto: u32): u32 {
  return flowHashPorts(flowHashAddrs(family, src, dst), family, sportRaw, dportRaw, proto);
}

/**
 * flowHash() of an IPv4 TCP or UDP packet's tuple read as it lies in the
 * packet: the addresses as one word (source, then destination: `ip + 12`),
 * the ports as one word (the transport header's first four bytes).
 */
@inline export function flowHashV4(addrs: u64, ports: u32, proto: u32): u32 {
  return flowHashEnd(flowAbsorb(FLOW_START, addrs), ports, proto | (4 << 8));
}

/** Hash of an address alone (affinity by client address). */
@inline export function hashAddr(seed: u32, p: usize, family: u32): u32 {
  return finalize(mixAddr(seed, p, family), family == 4 ? 4 : 16);
}

/** Hash of an endpoint (address and raw port): a target's identity for affinity. */
@inline export function hashEndpoint(seed: u32, p: usize, family: u32, portRaw: u32): u32 {
  return finalize(mix(mixAddr(seed, p, family), portRaw & 0xffff), family == 4 ? 6 : 18);
}

// ---- weighted rendezvous hashing: integer-only scores ----
// A target of weight w whose hash for a key is h scores w / -log2((h+1)/2^32);
// the highest score wins (Schindelhauer and Schomaker). log2 comes from a
// 256-entry fixed-point table built by repeated squaring, integers only, so
// the TypeScript reference model and every proxy compute identical scores.

const LOG2_TABLE = memory.data(512, 2);

function log2Fraction(m: u64): u32 {
  // m in Q16, [1, 2): 16 result bits of log2(m)
  let r: u32 = 0;
  for (let bit = 15; bit >= 0; bit--) {
    m = (m * m) >> 16;
    if (m >= 131072) {
      m >>= 1;
      r |= 1 << bit;
    }
  }
  return r;
}

for (let f: u32 = 0; f < 256; f++) store<u16>(LOG2_TABLE + (<usize>f << 1), <u16>log2Fraction(65536 + (<u64>f << 8)));

/** -log2((h + 1) / 2^32) in Q16 fixed point, at least 1: the denominator of a rendezvous score. */
export function rendezvousCost(h: u32): u64 {
  let x = <u64>h + 1;
  let e = <u32>(63 - clz<u64>(x));
  let f = e >= 8 ? <u32>((x >> (e - 8)) & 0xff) : <u32>((x << (8 - e)) & 0xff);
  let lg = (<u64>e << 16) + <u64>load<u16>(LOG2_TABLE + (<usize>f << 1));
  let cost = (<u64>32 << 16) - lg;
  return cost == 0 ? 1 : cost;
}

/** The part of a rendezvous hash that depends on the key alone (computed once per selection). */
@inline export function rendezvousKey(key: u32): u32 {
  return mix(SEED_AFFINITY, key);
}

/** A target's rendezvous hash: rendezvousKey(key) mixed with the target's identity hash. */
@inline export function rendezvousHash(keyMix: u32, targetHash: u32): u32 {
  return finalize(mix(keyMix, targetHash), 8);
}
