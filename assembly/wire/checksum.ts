// The Internet checksum, in one place: full sums (RFC 1071), the TCP/UDP/ICMPv6
// pseudo-headers, and incremental update (RFC 1624, eqn. 3).
//
// Everything here works on raw words (see bytes.ts) and returns raw words:
// store the result with setRaw16. Incremental update keeps a checksum that was
// wrong on input wrong by exactly the same amount: the proxy never "repairs"
// or "breaks" a packet it merely rewrites.

import { raw16, raw32, raw64 } from "./bytes";

/** Fold a 32-bit sum of raw words to 16 bits (end-around carry). */
@inline function fold32(s: u32): u32 {
  s = (s & 0xffff) + (s >> 16);
  return (s & 0xffff) + (s >> 16);
}

/** Fold a 64-bit accumulator of raw words to 16 bits (end-around carry). */
@inline export function fold(acc: u64): u32 {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  return fold32(<u32>acc);
}

/**
 * 16-byte steps a lane of sumBytes takes before it is folded into the sum:
 * a step adds at most 2 x 0xffff to each 32-bit lane, so 32,768 steps
 * (512 KiB) never overflow one.
 */
const LANE_STEPS: usize = 32768;

/**
 * Add `len` bytes starting at `p` (an even offset of the checksummed region)
 * to `acc`. 16 bytes a step with SIMD: their eight 16-bit words added
 * pairwise into four 32-bit lanes (no carry to propagate until the lanes are
 * folded in), then the last 8, 4, 2 and 1 bytes. The sum is congruent mod
 * 0xffff to the one's complement sum of RFC 1071, and zero only when it is.
 */
export function sumBytes(p: usize, len: usize, acc: u64): u64 {
  let end16 = p + (len & ~<usize>15);
  while (p < end16) {
    let stop = end16 - p > LANE_STEPS << 4 ? p + (LANE_STEPS << 4) : end16;
    let lanes = i32x4.splat(0);
    for (; p < stop; p += 16) lanes = i32x4.add(lanes, i32x4.extadd_pairwise_i16x8_u(v128.load(p)));
    let pairs = i64x2.add(i64x2.extend_low_i32x4_u(lanes), i64x2.extend_high_i32x4_u(lanes));
    let w = <u64>i64x2.extract_lane(pairs, 0) + <u64>i64x2.extract_lane(pairs, 1);
    acc += w;
    if (acc < w) acc += 1; // end-around carry: 2^64 = 1 (mod 0xffff)
  }
  if ((len & 8) != 0) {
    let w = load<u64>(p);
    acc += w;
    if (acc < w) acc += 1;
    p += 8;
  }
  let rest = len & 7;
  if (rest >= 4) { acc += <u64>load<u32>(p); p += 4; rest -= 4; }
  if (rest >= 2) { acc += <u64>load<u16>(p); p += 2; rest -= 2; }
  if (rest) acc += <u64>load<u8>(p); // odd byte is the high-order byte of a zero-padded word
  return acc;
}

/** Checksum field value for a region whose sum (checksum field zeroed) is `acc`. */
@inline export function finish(acc: u64): u32 {
  return ~fold(acc) & 0xffff;
}

/** True when a region including its checksum field sums to all ones. */
@inline export function verifies(acc: u64): bool {
  return fold(acc) == 0xffff;
}

/** Pseudo-header sum for IPv4 (addresses at ip+12..19). */
@inline export function pseudo4(ip: usize, proto: u32, l4len: u32): u64 {
  return <u64>raw32(ip + 12) + <u64>raw32(ip + 16) + <u64>(proto << 8) + <u64>bswap<u16>(<u16>l4len);
}

/** Pseudo-header sum for IPv6 (addresses at ip+8..39). */
@inline export function pseudo6(ip: usize, proto: u32, l4len: u32): u64 {
  let acc: u64 = 0;
  acc = sumBytes(ip + 8, 32, acc);
  return acc + <u64>bswap<u32>(l4len) + <u64>(proto << 24);
}

// ---- incremental update (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')) ----
// A "delta" accumulates ~m + m' for every changed 16-bit word; apply() then
// folds it into a checksum. One delta serves every checksum that covers the
// same changed words (the IPv4 header and the TCP pseudo-header, say). A
// delta is a sum of a few dozen such terms at most (two IPv6 addresses and
// two ports: 36), far below 2^31, so apply() folds it with the field in 32
// bits (fold's two 64-bit steps were 8 instructions a checksum for nothing).

@inline export function delta16(oldRaw: u32, newRaw: u32): u64 {
  return <u64>((~oldRaw & 0xffff) + (newRaw & 0xffff));
}

@inline export function delta32(oldRaw: u32, newRaw: u32): u64 {
  return <u64>(~oldRaw & 0xffff) + <u64>(~oldRaw >>> 16) + <u64>(newRaw & 0xffff) + <u64>(newRaw >>> 16);
}

@inline export function delta64(oldRaw: u64, newRaw: u64): u64 {
  return delta32(<u32>oldRaw, <u32>newRaw) + delta32(<u32>(oldRaw >> 32), <u32>(newRaw >> 32));
}

/** Delta for replacing the 16 bytes at `p` with the 16 bytes at `q`. */
@inline export function delta128(p: usize, q: usize): u64 {
  return delta64(raw64(p), raw64(q)) + delta64(raw64(p + 8), raw64(q + 8));
}

/** Apply an accumulated delta to a raw checksum field value. */
@inline export function apply(csumRaw: u32, delta: u64): u32 {
  return ~fold32((~csumRaw & 0xffff) + <u32>delta) & 0xffff;
}

/** Apply a delta to the checksum stored at `p`. */
@inline export function applyAt(p: usize, delta: u64): void {
  store<u16>(p, <u16>apply(raw16(p), delta));
}

/**
 * Apply a delta to a partial checksum at `p` (CHECKSUM_PARTIAL: the field
 * holds the pseudo-header's sum, not yet complemented, the rest to be added
 * by whoever completes it): the sum itself moves by the delta, as the Linux
 * kernel's inet_proto_csum_replace* do with pseudohdr = true. Only changes
 * to the pseudo-header belong here: bytes inside the region still to be
 * summed (the ports) need no update.
 */
@inline export function applyPartialAt(p: usize, delta: u64): void {
  store<u16>(p, <u16>fold32(raw16(p) + <u32>delta));
}

/** Same for a UDP checksum: 0 means "none" and stays 0; a computed 0 is sent as 0xffff. */
@inline export function applyUdpAt(p: usize, delta: u64): void {
  let c = raw16(p);
  if (c == 0) return;
  let n = apply(c, delta);
  store<u16>(p, <u16>(n == 0 ? 0xffff : n));
}
