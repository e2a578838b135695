// SipHash-2-4 (Aumasson and Bernstein, 2012): the 64-bit keyed tag of overlay
// frames. A PRF made for short inputs, fast in 64-bit arithmetic and without
// tables, so a frame is authenticated in about a nanosecond per byte here.
// src/net/siphash.ts is the same function for the host (the overlay client).
//
// Reads `len` bytes at `p`; allocates nothing, writes nothing.

@inline function round(): void {
  v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
  v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
}

// The state lives in globals so the rounds can be one inlined function; the
// core is single-threaded and siphash24 is not re-entered.
let v0: u64 = 0;
let v1: u64 = 0;
let v2: u64 = 0;
let v3: u64 = 0;

/** SipHash-2-4 of bytes [p, p + len) under the key (k0, k1) (the key's bytes 0-7 and 8-15, little-endian). */
export function siphash24(k0: u64, k1: u64, p: usize, len: usize): u64 {
  v0 = k0 ^ 0x736f6d6570736575;
  v1 = k1 ^ 0x646f72616e646f6d;
  v2 = k0 ^ 0x6c7967656e657261;
  v3 = k1 ^ 0x7465646279746573;
  let end = p + (len & ~<usize>7);
  while (p < end) {
    let m = load<u64>(p);
    v3 ^= m;
    round();
    round();
    v0 ^= m;
    p += 8;
  }
  let b: u64 = <u64>len << 56;
  let rest = <u32>(len & 7);
  for (let i: u32 = 0; i < rest; i++) b |= <u64>load<u8>(p + i) << (<u64>i << 3);
  v3 ^= b;
  round();
  round();
  v0 ^= b;
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return v0 ^ v1 ^ v2 ^ v3;
}
