// Fragments (DESIGN.md section 2): the first fragment of a datagram carries
// the ports, so when it is forwarded it leaves a small entry keyed by
// (family, source, destination, protocol, IP identification) that later
// fragments follow to the same flow. When the first fragment did not hold the
// transport checksum (a TCP header cut into 8-byte fragments), the entry also
// keeps the checksum change still owed, and applies it to the fragment that
// holds the field. Entries live FRAG_TIMEOUT seconds; expiry is lazy and
// bounded, like the flow table's. No allocation after init.

import { raw32 } from "../wire/bytes";
import { fold } from "../wire/checksum";
import { hashTuple, SEED_FRAG } from "../hash";
import {
  bucketAt, bucketsFor, homeBucket, indexInsert, indexRemove, nextBucket, overflowed, refAt, slotsOf, BUCKET_BYTES, MAX_ENTRIES,
} from "../table/bucket-index";
import { reservePages } from "../memory";

/** Seconds a fragment entry lives after its first fragment (Linux ipfrag_time). */
export const FRAG_TIMEOUT: u32 = 30;
const EVICT_SCAN: u32 = 16;

// ---- fragment entry (64 bytes) ----
const FRAG_SIZE: usize = 64;
const R_SRC: usize = 0; // 16 bytes
const R_DST: usize = 16; // 16 bytes
const R_ID: usize = 32; // u32
const R_PROTO: usize = 36; // u8
const R_FLAGS: usize = 37; // u8: 1 used, 2 IPv6, 4 checksum still owed
const R_CSUM_OFF: usize = 38; // u16: offset of the transport checksum in the datagram's payload
const R_FLOW: usize = 40; // u32: flow reference (index << 1 | direction)
const R_EXPIRE: usize = 44; // u32 seconds
const R_DELTA: usize = 48; // u32: checksum delta still owed (folded)
const R_HASH: usize = 52; // u32
const R_NEXT: usize = 56; // u32 free list
const R_CHECK: usize = 60; // u32: forward hash of the flow (a recycled flow record does not match)

const RF_USED: u32 = 1;
const RF_V6: u32 = 2;
const RF_OWED: u32 = 4;

let frags: usize = 0;
let capacity: u32 = 0;
let hwm: u32 = 0;
let freeHead: i64 = -1;
let hand: u32 = 0;
let index: usize = 0;
let indexBuckets: u32 = 0;

export function fragmentsInit(maxEntries: u32): bool {
  if (maxEntries > MAX_ENTRIES) return false;
  capacity = maxEntries;
  frags = reservePages(<usize>maxEntries * FRAG_SIZE);
  indexBuckets = bucketsFor(maxEntries);
  index = reservePages(<usize>indexBuckets * BUCKET_BYTES);
  return frags != 0 && index != 0;
}

@inline function entry(i: u32): usize {
  return frags + <usize>i * FRAG_SIZE;
}

@inline function keyHash(family: u32, src: usize, dst: usize, proto: u32, id: u32): u32 {
  return hashTuple(SEED_FRAG, family, src, dst, id & 0xffff, id >>> 16, proto);
}

@inline function sameAddr(family: u32, a: usize, b: usize): bool {
  if (family == 4) return raw32(a) == raw32(b);
  return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8);
}

function free(i: u32): void {
  let e = entry(i);
  indexRemove(index, indexBuckets, load<u32>(e + R_HASH), i);
  store<u8>(e + R_FLAGS, 0);
  store<u32>(e + R_NEXT, <u32>freeHead);
  freeHead = <i64>i;
}

@inline function expired(e: usize, now: u32): bool {
  return <i32>(now - load<u32>(e + R_EXPIRE)) > 0;
}

/** The live entry for a fragment's key, or -1. Expired entries found on the way are freed. */
export function fragmentFind(family: u32, src: usize, dst: usize, proto: u32, id: u32, now: u32): i64 {
  let h = keyHash(family, src, dst, proto, id);
  let fam = family == 6 ? RF_V6 : 0;
  let nb = indexBuckets;
  let bi = homeBucket(h, nb);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = bucketAt(index, bi);
    for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
      let ref = refAt(b, ctz<u32>(m));
      let e = entry(ref);
      let f = <u32>load<u8>(e + R_FLAGS);
      if ((f & RF_USED) == 0 || (f & RF_V6) != fam || load<u32>(e + R_ID) != id || <u32>load<u8>(e + R_PROTO) != proto) continue;
      if (!sameAddr(family, e + R_SRC, src) || !sameAddr(family, e + R_DST, dst)) continue;
      if (expired(e, now)) {
        free(ref);
        return -1;
      }
      return <i64>ref;
    }
    if (!overflowed(b)) break;
    bi = nextBucket(bi, nb);
  }
  return -1;
}

function take(now: u32): i64 {
  if (freeHead >= 0) {
    let i = <u32>freeHead;
    let n = load<u32>(entry(i) + R_NEXT);
    freeHead = n == 0xffffffff ? -1 : <i64>n;
    return <i64>i;
  }
  if (hwm < capacity) return <i64>(hwm++);
  for (let k: u32 = 0; k < EVICT_SCAN; k++) {
    let i = hand;
    hand = hand + 1 >= capacity ? 0 : hand + 1;
    let e = entry(i);
    if ((<u32>load<u8>(e + R_FLAGS) & RF_USED) != 0 && expired(e, now)) {
      free(i);
      return take(now);
    }
  }
  return -1;
}

/**
 * Remember that the datagram (family, src, dst, proto, id), whose first
 * fragment is being forwarded, belongs to flow reference `flowRef` (whose
 * forward hash is `flowCheck`). Returns the entry, or -1 when the table is full.
 */
export function fragmentRemember(family: u32, src: usize, dst: usize, proto: u32, id: u32, flowRef: u32,
  flowCheck: u32, now: u32): i64 {
  let existing = fragmentFind(family, src, dst, proto, id, now);
  let i: u32;
  if (existing >= 0) {
    i = <u32>existing; // a duplicate first fragment: refresh
  } else {
    let t = take(now);
    if (t < 0) return -1;
    i = <u32>t;
    let e = entry(i);
    memory.fill(e, 0, FRAG_SIZE);
    memory.copy(e + R_SRC, src, family == 4 ? 4 : 16);
    memory.copy(e + R_DST, dst, family == 4 ? 4 : 16);
    store<u32>(e + R_ID, id);
    store<u8>(e + R_PROTO, <u8>proto);
    let h = keyHash(family, src, dst, proto, id);
    store<u32>(e + R_HASH, h);
    indexInsert(index, indexBuckets, h, i);
  }
  let e = entry(i);
  store<u8>(e + R_FLAGS, <u8>(RF_USED | (family == 6 ? RF_V6 : 0)));
  store<u32>(e + R_FLOW, flowRef);
  store<u32>(e + R_CHECK, flowCheck);
  store<u32>(e + R_EXPIRE, now + FRAG_TIMEOUT);
  return <i64>i;
}

/**
 * The first fragment lacked its transport checksum, at offset csumOff of the
 * fragmentable part: the fragment that holds it must get `delta`.
 */
export function fragmentOwe(i: u32, csumOff: u32, delta: u64): void {
  let e = entry(i);
  store<u8>(e + R_FLAGS, <u8>(<u32>load<u8>(e + R_FLAGS) | RF_OWED));
  store<u16>(e + R_CSUM_OFF, <u16>csumOff);
  store<u32>(e + R_DELTA, fold(delta));
}

@inline export function fragmentFlow(i: u32): u32 {
  return load<u32>(entry(i) + R_FLOW);
}

@inline export function fragmentFlowCheck(i: u32): u32 {
  return load<u32>(entry(i) + R_CHECK);
}

/**
 * If entry i still owes a checksum change and the fragment whose payload
 * covers [offset, offset + len) holds the field, return the field's offset in
 * that payload (and stop owing it); else -1.
 */
export function fragmentOwedAt(i: u32, offset: u32, len: u32): i64 {
  let e = entry(i);
  if ((<u32>load<u8>(e + R_FLAGS) & RF_OWED) == 0) return -1;
  let at = <u32>load<u16>(e + R_CSUM_OFF);
  if (at < offset || at + 2 > offset + len) return -1;
  store<u8>(e + R_FLAGS, <u8>(<u32>load<u8>(e + R_FLAGS) & ~RF_OWED));
  return <i64>(at - offset);
}

@inline export function fragmentOwedDelta(i: u32): u64 {
  return <u64>load<u32>(entry(i) + R_DELTA);
}
