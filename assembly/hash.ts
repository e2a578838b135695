// Hashing for tables and for target selection.
//
// MurmurHash3 (x86, 32-bit) mixing over 32-bit words loaded little-endian from
// network-order bytes. The affinity policy depends on these exact values:
// every proxy (and the TypeScript reference model) must compute the same
// hash for the same client, so changing anything here changes which target a
// client gets. Seeds are fixed constants, not random.

import { raw32 } from "./wire/bytes";

export const SEED_FLOW: u32 = 0x9e3779b9;
export const SEED_GROUP: u32 = 0x85ebca6b;
export const SEED_AFFINITY: u32 = 0x5ca1ab1e;
export const SEED_MAGLEV_OFFSET: u32 = 0x6d61676c; // "magl"
export const SEED_MAGLEV_SKIP: u32 = 0x736b6970; // "skip"
export const SEED_PORT: u32 = 0x706f7274; // "port"
export const SEED_FRAG: u32 = 0x66726167; // "frag"

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

/** Hash of an address alone (affinity by client address). */
@inline export function hashAddr(seed: u32, p: usize, family: u32): u32 {
  return finalize(mixAddr(seed, p, family), family == 4 ? 4 : 16);
}

/** Hash of an endpoint (address and raw port): a target's identity for Maglev. */
@inline export function hashEndpoint(seed: u32, p: usize, family: u32, portRaw: u32): u32 {
  return finalize(mix(mixAddr(seed, p, family), portRaw & 0xffff), family == 4 ? 6 : 18);
}
