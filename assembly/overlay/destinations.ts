// The per-destination cache of remote nodes (README "Reaching an overlay"):
// "remote host R is reached through node N", learnt from the node a reply from
// R came through (or "directly" when the reply reached this node itself), and
// trusted for `cacheSeconds` after the last such reply.
//
// Four-way set-associative buckets of 64 bytes keyed by R's address: a
// lookup reads one cache line; a new entry takes an empty or the oldest way
// of its bucket, so the table never fills and never needs a sweep.
// Reserved once; nothing is allocated after.

import { finalize, mix } from "../hash";
import { reservePages } from "../memory";

const SEED_DEST: u32 = 0x64657374; // "dest"
const WAYS: u32 = 4;
const ENTRY: usize = 16; // u32 address (raw, 0 = empty), u16 node, u16 0, u32 seconds, u32 0
const E_NODE: usize = 4;
const E_TIME: usize = 8;

let table: usize = 0;
let bucketMask: u32 = 0;
export let cacheSeconds: u32 = 30;

/** Reserve room for at least `entries` destinations (rounded up to a power of two). */
export function destinationsInit(entries: u32): bool {
  let buckets: u32 = 1;
  while (buckets * WAYS < entries) buckets <<= 1;
  bucketMask = buckets - 1;
  table = reservePages(<usize>buckets * WAYS * ENTRY);
  return table != 0;
}

export function setCacheSeconds(s: u32): void {
  cacheSeconds = s;
}

@inline function bucketOf(addr: u32): usize {
  return table + <usize>(finalize(mix(SEED_DEST, addr), 4) & bucketMask) * (<usize>WAYS * ENTRY);
}

/** The node R (raw address) is reached through, or -1 when unknown or older than cacheSeconds. */
export function destinationNode(addr: u32, now: u32): i32 {
  let b = bucketOf(addr);
  for (let w: u32 = 0; w < WAYS; w++) {
    let e = b + <usize>w * ENTRY;
    if (load<u32>(e) != addr) continue;
    if (<i32>(now - load<u32>(e + E_TIME)) > <i32>cacheSeconds) return -1;
    return <i32>load<u16>(e + E_NODE);
  }
  return -1;
}

/** A reply from R (raw address) came through `node` at `now`. */
export function noteDestination(addr: u32, node: u32, now: u32): void {
  let b = bucketOf(addr);
  let pick = b;
  let oldest: i32 = i32.MIN_VALUE;
  for (let w: u32 = 0; w < WAYS; w++) {
    let e = b + <usize>w * ENTRY;
    let a = load<u32>(e);
    if (a == addr || a == 0) { pick = e; break; }
    let age = <i32>(now - load<u32>(e + E_TIME));
    if (age > oldest) { oldest = age; pick = e; }
  }
  store<u32>(pick, addr);
  store<u16>(pick + E_NODE, <u16>node);
  store<u32>(pick + E_TIME, now);
}
