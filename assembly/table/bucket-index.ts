// A hash index of 32-bit references in cache-line buckets (after F14 and
// Swiss tables): 64 bytes = 12 one-byte tags, an overflow count, and 12
// references. A lookup compares all 12 tags at once with SIMD and touches the
// referenced record only on a tag match. References are below 2^25: the 7
// bits above each hold 7 more bits of its entry's hash, a second tag read
// only where the first matched, so a lookup reaches another key's record
// once in 2^15 instead of once in 2^8 (with six entries a bucket, 1.5% of
// lookups did: a DRAM miss each that no prefetch foresaw). Deletion needs no
// tombstones: each bucket counts the entries that overflowed past it, and a
// probe stops at the first bucket whose count is zero.
//
// The index stores references only; the caller owns the records and decides
// whether a candidate matches. No allocation after init.

import { Limit } from "../shared/abi";

export const BUCKET_BYTES: usize = 64;
export const SLOTS: u32 = 12;
const OVERFLOW: usize = 12;
const REFS: usize = 16;
const SLOT_MASK: u32 = (1 << SLOTS) - 1;
/** Entries an index may hold: every reference is below this (each table checks its capacity against it). */
export const MAX_ENTRIES: u32 = <u32>Limit.INDEX_ENTRIES;
const REF_BITS: u32 = 25; // MAX_ENTRIES == 1 << REF_BITS
const REF_MASK: u32 = MAX_ENTRIES - 1;

/**
 * The second tag of hash h: the top 7 bits of h times an odd constant, which
 * depend on every bit of h (in a table of millions of buckets the home bucket
 * fixes all but the lowest ten or so bits of h, so the plain bits above the
 * tag would be nearly the same for entries sharing a bucket). Counted with
 * live-flow packets whose first candidate was another key's: 1M flows 1.5%
 * with the tag alone, 0.016% with either second tag; 8M flows 0.09% with
 * either.
 */
@inline function checkOf(h: u32): u32 {
  return (h * 0x9e3779b1) >>> REF_BITS;
}

/** Buckets needed so that `entries` references fill at most `percent`% of the slots (default ~80%). */
export function bucketsFor(entries: u32, percent: u32 = 80): u32 {
  let slots = <u64>SLOTS * percent;
  let b = <u32>((<u64>entries * 100 + slots - 1) / slots);
  return b < 2 ? 2 : b;
}

@inline export function homeBucket(h: u32, nb: u32): u32 {
  return <u32>((<u64>h * <u64>nb) >> 32);
}

/** The one-byte tag of hash h (0 marks a free slot). */
@inline function tagOf(h: u32): u32 {
  let t = h & 0xff;
  return t == 0 ? 1 : t;
}

/** Bit i set: slot i of the bucket at b holds `tag` (SIMD compare of the 12 tags). */
@inline function tagMask(b: usize, tag: u32): u32 {
  let m = v128.load(b);
  return <u32>i8x16.bitmask(i8x16.eq(m, i8x16.splat(<i8>tag))) & SLOT_MASK;
}

/** Bit i set: slot i of the bucket at b holds an entry of hash h (both its tags). */
@inline export function slotsOf(b: usize, h: u32): u32 {
  let m = tagMask(b, tagOf(h));
  let check = checkOf(h);
  for (let t = m; t != 0; t &= t - 1) {
    let slot = ctz<u32>(t);
    if (load<u32>(b + REFS + (<usize>slot << 2)) >>> REF_BITS != check) m &= ~(1 << slot);
  }
  return m;
}

// ---- probing, with the cursor in the caller's locals (a cursor in globals
// costs a memory access per step in V8's code). The idiom:
//
//   let bi = homeBucket(h, nb);
//   for (let steps: u32 = 0; steps < nb; steps++) {
//     let b = bucketAt(base, bi);
//     for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
//       let ref = refAt(b, ctz(m));   // a candidate: the caller compares its record
//     }
//     if (!overflowed(b)) break;       // no entry of this hash lies further on
//     bi = nextBucket(bi, nb);
//   }

@inline export function bucketAt(base: usize, bi: u32): usize {
  return base + <usize>bi * BUCKET_BYTES;
}

/** The reference in slot `slot` of the bucket at b. */
@inline export function refAt(b: usize, slot: u32): u32 {
  return load<u32>(b + REFS + (<usize>slot << 2)) & REF_MASK;
}

/** True when entries that hashed here or before were pushed past this bucket. */
@inline export function overflowed(b: usize): bool {
  return load<u8>(b + OVERFLOW) != 0;
}

@inline export function nextBucket(bi: u32, nb: u32): u32 {
  return bi + 1 == nb ? 0 : bi + 1;
}

/** Insert a reference (below MAX_ENTRIES) under hash h. False only when every bucket is full. */
export function indexInsert(base: usize, nb: u32, h: u32, ref: u32): bool {
  return indexInsertInline(base, nb, h, ref);
}

/** indexInsert() inlined where it is called: for the flow table's inserts, two on every new flow's path. */
@inline export function indexInsertInline(base: usize, nb: u32, h: u32, ref: u32): bool {
  let bi = homeBucket(h, nb);
  let tag = tagOf(h);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = base + <usize>bi * BUCKET_BYTES;
    let free = tagMask(b, 0);
    if (free != 0) {
      let i = <usize>ctz<u32>(free);
      store<u8>(b + i, <u8>tag);
      store<u32>(b + REFS + (i << 2), ref | (checkOf(h) << REF_BITS));
      return true;
    }
    let ov = load<u8>(b + OVERFLOW);
    if (ov != 255) store<u8>(b + OVERFLOW, ov + 1);
    bi = bi + 1 == nb ? 0 : bi + 1;
  }
  return false;
}

/** Remove a reference that was inserted under hash h. False if it is not there. */
export function indexRemove(base: usize, nb: u32, h: u32, ref: u32): bool {
  // First find it, then undo the overflow counts on the way (a miss must not
  // disturb the counts).
  let bi = homeBucket(h, nb);
  let steps: u32 = 0;
  while (true) {
    let b = base + <usize>bi * BUCKET_BYTES;
    let m = slotsOf(b, h);
    while (m != 0) {
      let i = <usize>ctz<u32>(m);
      m &= m - 1;
      if (refAt(b, <u32>i) == ref) {
        store<u8>(b + i, 0);
        let back = homeBucket(h, nb);
        while (back != bi) {
          let bb = base + <usize>back * BUCKET_BYTES;
          let ov = load<u8>(bb + OVERFLOW);
          if (ov != 255) store<u8>(bb + OVERFLOW, ov - 1);
          back = back + 1 == nb ? 0 : back + 1;
        }
        return true;
      }
    }
    if (load<u8>(b + OVERFLOW) == 0 || ++steps >= nb) return false;
    bi = bi + 1 == nb ? 0 : bi + 1;
  }
}
