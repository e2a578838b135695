// The hashes of the reference model: MurmurHash3 (x86, 32-bit) mixing over
// 32-bit words read LITTLE-ENDIAN from network-order bytes, exactly as the
// Wasm core loads them (assembly/hash.ts). Plain TypeScript: Math.imul and
// `>>> 0` keep every value an unsigned 32-bit number. The flow index's own
// hash (flowHash, 64-bit) is computed in BigInt.

export const SEED_AFFINITY = 0x5ca1ab1e;
export const SEED_MAGLEV_OFFSET = 0x6d61676c; // "magl"

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

export function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = rotl(k, 15);
  k = Math.imul(k, 0x1b873593);
  h = (h ^ k) >>> 0;
  h = rotl(h, 13);
  return (Math.imul(h, 5) + 0xe6546b64) >>> 0;
}

export function finalize(h: number, lenBytes: number): number {
  h = (h ^ lenBytes) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h;
}

/** The 32-bit word at bytes[i..i+3] read little-endian. */
export function wordLE(bytes: Uint8Array, i: number): number {
  return (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) >>> 0;
}

/** A port as the core holds it: its two network-order bytes read little-endian. */
export function portRaw(port: number): number {
  return ((port & 0xff) << 8) | ((port >>> 8) & 0xff);
}

/** Fold an address (4 or 16 bytes) into h. */
export function mixAddr(h: number, addr: Uint8Array): number {
  for (let i = 0; i < addr.length; i += 4) h = mix(h, wordLE(addr, i));
  return h;
}

/** Hash of a transport tuple; ports in host order (converted to the core's raw form here). */
export function hashTuple(seed: number, family: 4 | 6, src: Uint8Array, dst: Uint8Array, sport: number, dport: number, proto: number): number {
  let h = mixAddr(seed, src);
  h = mixAddr(h, dst);
  h = mix(h, (portRaw(sport) | (portRaw(dport) << 16)) >>> 0);
  h = mix(h, (proto | (family << 8)) >>> 0);
  return finalize(h, family === 4 ? 16 : 40);
}

// ---- the flow index's hash (assembly/hash.ts flowHash), in BigInt: 64-bit words absorbed by a rotate, an
// xor and a multiply each, then the rest of murmur3's 64-bit finalizer ----

const M64 = (1n << 64n) - 1n;
const FLOW_START = 0x9e3779b97f4a7c15n;
const FLOW_MUL = 0xff51afd7ed558ccdn;
const FLOW_FINAL = 0xc4ceb9fe1a85ec53n;

function flowAbsorb(st: bigint, w: bigint): bigint {
  const r = ((st << 29n) | (st >> 35n)) & M64;
  return ((r ^ w) * FLOW_MUL) & M64;
}

/** The 64-bit word at bytes[i..i+7] read little-endian. */
function word64LE(bytes: Uint8Array, i: number): bigint {
  return BigInt(wordLE(bytes, i)) | (BigInt(wordLE(bytes, i + 4)) << 32n);
}

/** The flow hash of a transport tuple (the core's flow index; also its tunnels' entropy); ports in host order. */
export function flowHash(family: 4 | 6, src: Uint8Array, dst: Uint8Array, sport: number, dport: number, proto: number): number {
  let st = family === 4
    ? flowAbsorb(FLOW_START, BigInt(wordLE(src, 0)) | (BigInt(wordLE(dst, 0)) << 32n))
    : [word64LE(src, 0), word64LE(src, 8), word64LE(dst, 0), word64LE(dst, 8)].reduce(flowAbsorb, FLOW_START);
  st = flowAbsorb(st, BigInt((portRaw(sport) | (portRaw(dport) << 16)) >>> 0) | (BigInt(proto | (family << 8)) << 32n));
  st ^= st >> 33n;
  st = (st * FLOW_FINAL) & M64;
  st ^= st >> 33n;
  return Number(st & 0xffffffffn);
}

export function hashAddr(seed: number, addr: Uint8Array): number {
  return finalize(mixAddr(seed, addr), addr.length === 4 ? 4 : 16);
}

/** A target's identity hash (address and port, port in host order). */
export function hashEndpoint(seed: number, addr: Uint8Array, port: number): number {
  return finalize(mix(mixAddr(seed, addr), portRaw(port)), addr.length === 4 ? 6 : 18);
}

// ---- weighted rendezvous hashing (assembly/hash.ts): integer-only scores ----

/** log2(1 + f/256) in Q16 for f = 0..255, by repeated squaring (integers only, as the core builds it). */
const LOG2_TABLE: readonly number[] = Array.from({ length: 256 }, (_, f) => {
  let m = 65536 + f * 256;
  let r = 0;
  for (let bit = 15; bit >= 0; bit--) {
    m = Math.floor((m * m) / 65536); // < 2^34: exact in a double
    if (m >= 131072) {
      m = Math.floor(m / 2);
      r |= 1 << bit;
    }
  }
  return r;
});

/** -log2((h + 1) / 2^32) in Q16, at least 1: the denominator of a rendezvous score. */
export function rendezvousCost(h: number): number {
  const x = h + 1; // up to 2^32: exact
  const e = x === 2 ** 32 ? 32 : 31 - Math.clz32(x);
  const f = e >= 8 ? Math.floor(x / 2 ** (e - 8)) & 0xff : (x * 2 ** (8 - e)) & 0xff;
  const cost = 32 * 65536 - (e * 65536 + LOG2_TABLE[f]);
  return cost === 0 ? 1 : cost;
}

/** A target's rendezvous hash for a key. */
export function rendezvousHash(key: number, targetHash: number): number {
  return finalize(mix(mix(SEED_AFFINITY, key), targetHash), 8);
}
