// SipHash-2-4 (Aumasson and Bernstein, 2012) for the host: the tag of overlay
// frames the overlay client seals and opens (src/net/overlay-frame.ts). The
// core has its own (assembly/overlay/siphash.ts); both must agree bit for bit
// (test/net/overlay-frame.test.ts runs the reference vectors and both).
//
// JavaScript has no fast 64-bit integers, so each 64-bit word is two unsigned
// 32-bit halves. No allocation per call.

let v0h = 0, v0l = 0, v1h = 0, v1l = 0, v2h = 0, v2l = 0, v3h = 0, v3l = 0;

function sipRound(): void {
  let l: number, h: number;
  // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
  l = (v0l + v1l) >>> 0; v0h = (v0h + v1h + (l < v0l ? 1 : 0)) >>> 0; v0l = l;
  h = v1h; v1h = ((h << 13) | (v1l >>> 19)) >>> 0; v1l = ((v1l << 13) | (h >>> 19)) >>> 0;
  v1h = (v1h ^ v0h) >>> 0; v1l = (v1l ^ v0l) >>> 0;
  h = v0h; v0h = v0l; v0l = h;
  // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
  l = (v2l + v3l) >>> 0; v2h = (v2h + v3h + (l < v2l ? 1 : 0)) >>> 0; v2l = l;
  h = v3h; v3h = ((h << 16) | (v3l >>> 16)) >>> 0; v3l = ((v3l << 16) | (h >>> 16)) >>> 0;
  v3h = (v3h ^ v2h) >>> 0; v3l = (v3l ^ v2l) >>> 0;
  // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
  l = (v0l + v3l) >>> 0; v0h = (v0h + v3h + (l < v0l ? 1 : 0)) >>> 0; v0l = l;
  h = v3h; v3h = ((h << 21) | (v3l >>> 11)) >>> 0; v3l = ((v3l << 21) | (h >>> 11)) >>> 0;
  v3h = (v3h ^ v0h) >>> 0; v3l = (v3l ^ v0l) >>> 0;
  // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
  l = (v2l + v1l) >>> 0; v2h = (v2h + v1h + (l < v2l ? 1 : 0)) >>> 0; v2l = l;
  h = v1h; v1h = ((h << 17) | (v1l >>> 15)) >>> 0; v1l = ((v1l << 17) | (h >>> 15)) >>> 0;
  v1h = (v1h ^ v2h) >>> 0; v1l = (v1l ^ v2l) >>> 0;
  h = v2h; v2h = v2l; v2l = h;
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/**
 * SipHash-2-4 of data[start, end) under a 16-byte key, written as 8 bytes
 * (little-endian, as the tag goes on the wire) into out[at, at + 8).
 */
export function siphash24Into(key: Uint8Array, data: Uint8Array, start: number, end: number, out: Uint8Array, at: number): void {
  const k0l = u32le(key, 0), k0h = u32le(key, 4), k1l = u32le(key, 8), k1h = u32le(key, 12);
  v0h = (k0h ^ 0x736f6d65) >>> 0; v0l = (k0l ^ 0x70736575) >>> 0;
  v1h = (k1h ^ 0x646f7261) >>> 0; v1l = (k1l ^ 0x6e646f6d) >>> 0;
  v2h = (k0h ^ 0x6c796765) >>> 0; v2l = (k0l ^ 0x6e657261) >>> 0;
  v3h = (k1h ^ 0x74656462) >>> 0; v3l = (k1l ^ 0x79746573) >>> 0;
  const len = end - start;
  const words = start + (len & ~7);
  let p = start;
  for (; p < words; p += 8) {
    const ml = u32le(data, p), mh = u32le(data, p + 4);
    v3h = (v3h ^ mh) >>> 0; v3l = (v3l ^ ml) >>> 0;
    sipRound();
    sipRound();
    v0h = (v0h ^ mh) >>> 0; v0l = (v0l ^ ml) >>> 0;
  }
  let bl = 0;
  let bh = ((len & 0xff) << 24) >>> 0;
  for (let i = 0; p + i < end; i++) {
    if (i < 4) bl = (bl | (data[p + i] << (8 * i))) >>> 0;
    else bh = (bh | (data[p + i] << (8 * (i - 4)))) >>> 0;
  }
  v3h = (v3h ^ bh) >>> 0; v3l = (v3l ^ bl) >>> 0;
  sipRound();
  sipRound();
  v0h = (v0h ^ bh) >>> 0; v0l = (v0l ^ bl) >>> 0;
  v2l = (v2l ^ 0xff) >>> 0;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  const rl = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  const rh = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  out[at] = rl; out[at + 1] = rl >>> 8; out[at + 2] = rl >>> 16; out[at + 3] = rl >>> 24;
  out[at + 4] = rh; out[at + 5] = rh >>> 8; out[at + 6] = rh >>> 16; out[at + 7] = rh >>> 24;
}

/** SipHash-2-4 of `data` under a 16-byte key, as an unsigned 64-bit value. */
export function siphash24(key: Uint8Array, data: Uint8Array): bigint {
  const out = new Uint8Array(8);
  siphash24Into(key, data, 0, data.length, out, 0);
  return new DataView(out.buffer).getBigUint64(0, true);
}
