// NAT port occupancy: for each binding space — a target endpoint and a
// protocol (family, protocol, target address, target port), the part of a
// reverse key that a NAT port completes — one bit per port, set while a flow
// record holds that binding (from its creation until it is freed, idle or
// not). allocNatPort (flows.ts) reads a candidate port's bit instead of
// probing the reverse index and reading the holder's record: at 40% of a
// target's ports bound, those were most of a new flow's cache misses.
//
// Spaces are found by a small hash table and taken from a pool sized once at
// start (8 KiB each: a bit for every port number, whatever the NAT range); a
// space, once given, is never taken back, so a binding space that found the
// pool empty has no bits, and allocNatPort asks the reverse index for it
// instead (the same answer, slower). No allocation after init.

import { finalize, mix, mixAddr } from "../hash";
import { reservePages } from "../memory";
import { raw16 } from "../wire/bytes";
import { PROTO_TCP, PROTO_UDP } from "../wire/ip";
import { T_ADDR, T_PORT, T_SPACES } from "../group/groups";

const SEED_SPACE: u32 = 0x73706163; // "spac"
/** Bytes of one space's bitmap: a bit per port number. */
const BITMAP_BYTES: usize = 65536 >> 3;
/** Entry of the space table: address (16), target port raw (u16), protocol (u8), family (u8), space + 1 (u32). */
const ENTRY: usize = 24;
const E_PORT: usize = 16;
const E_PROTO: usize = 18;
const E_FAMILY: usize = 19;
const E_SPACE: usize = 20;
/** At most this many spaces (8 MiB of bitmaps). */
const MAX_SPACES: u32 = 1024;

let table: usize = 0;
let slotMask: u32 = 0;
let bitmaps: usize = 0;
let counts: usize = 0; // u32 per space: the ports bound in it
let capacity: u32 = 0;
let used: u32 = 0;

/** Reserve room for the spaces a table of maxFlows flows toward maxTargets targets may need. */
export function portsInit(maxFlows: u32, maxTargets: u32): bool {
  let n = (maxFlows >> 8) + 16; // a space pays for its 8 KiB with many flows
  if (n > maxTargets * 3) n = maxTargets * 3; // TCP, UDP and ICMP toward each target
  if (n > MAX_SPACES) n = MAX_SPACES;
  if (n == 0) n = 1;
  capacity = n;
  let slots: u32 = 1;
  while (slots < n * 2) slots <<= 1;
  slotMask = slots - 1;
  table = reservePages(<usize>slots * ENTRY);
  bitmaps = reservePages(<usize>n * BITMAP_BYTES);
  counts = reservePages(<usize>n << 2);
  return table != 0 && bitmaps != 0 && counts != 0;
}

@inline function sameKey(e: usize, family: u32, proto: u32, addr: usize, tportRaw: u32): bool {
  if (<u32>load<u16>(e + E_PORT) != tportRaw || <u32>load<u8>(e + E_PROTO) != proto || <u32>load<u8>(e + E_FAMILY) != family) return false;
  if (family == 4) return load<u32>(e) == load<u32>(addr);
  return load<u64>(e) == load<u64>(addr) && load<u64>(e + 8) == load<u64>(addr + 8);
}

/**
 * The space of binding key (family, proto, target address at `addr`, target
 * port raw): its bitmap's address, or 0 when it has none. `create`: give it
 * one from the pool if it has none yet (no space is given while the pool is
 * empty: such a key keeps none).
 */
export function portSpace(family: u32, proto: u32, addr: usize, tportRaw: u32, create: bool): usize {
  let h = finalize(mix(mixAddr(SEED_SPACE, addr, family), tportRaw | (proto << 16) | (family << 24)), 4);
  let i = h & slotMask;
  for (;;) {
    let e = table + <usize>i * ENTRY;
    let s = load<u32>(e + E_SPACE);
    if (s == 0) {
      if (!create || used == capacity) return 0;
      if (family == 4) store<u32>(e, load<u32>(addr));
      else {
        store<u64>(e, load<u64>(addr));
        store<u64>(e + 8, load<u64>(addr + 8));
      }
      store<u16>(e + E_PORT, <u16>tportRaw);
      store<u8>(e + E_PROTO, <u8>proto);
      store<u8>(e + E_FAMILY, <u8>family);
      store<u32>(e + E_SPACE, ++used);
      return bitmaps + <usize>(used - 1) * BITMAP_BYTES;
    }
    if (sameKey(e, family, proto, addr, tportRaw)) return bitmaps + <usize>(s - 1) * BITMAP_BYTES;
    i = (i + 1) & slotMask; // the table has twice the slots of the pool: an empty one comes
  }
  return 0; // (unreachable)
}

@inline function countOf(space: usize): usize {
  return counts + ((space - bitmaps) >> 11); // BITMAP_BYTES per space, 4 bytes per count
}

/**
 * True when at least a sixth of a space's `range` ports are bound: below
 * that, a candidate is mostly free, and probing the reverse index (whose
 * bucket the new binding needs anyway) is cheaper than a bit that may miss
 * the cache (the bitmaps of many targets outgrow it).
 */
@inline export function portsDense(space: usize, range: u32): bool {
  return load<u32>(countOf(space)) * 6 >= range;
}

/**
 * portSpace() of a binding toward the target at `t` (protocol proto, target
 * port raw tportRaw). A target with a fixed port keeps its spaces in its
 * record once given (a space is never taken back, and a target's endpoint
 * never changes): the table's lines are cache misses of their own at a
 * million flows. `create` (allocNatPort): give a space, and keep it in the
 * record (the prefetch, which changes nothing, only looks).
 */
@inline export function targetPortSpace(t: usize, family: u32, proto: u32, tportRaw: u32, create: bool): usize {
  let fixed = raw16(t + T_PORT) != 0;
  let slot = t + T_SPACES + (proto == PROTO_TCP ? 0 : proto == PROTO_UDP ? 4 : 8);
  if (fixed) {
    let known = <usize>load<u32>(slot);
    if (known != 0) return known;
  }
  let space = portSpace(family, proto, t + T_ADDR, tportRaw, create);
  if (fixed && create && space != 0) store<u32>(slot, <u32>space);
  return space;
}

/** True while a flow holds port `port` (host order) of the space at `space`. */
@inline export function portBound(space: usize, port: u32): bool {
  return (<u32>load<u8>(space + <usize>(port >> 3)) & (1 << (port & 7))) != 0;
}

@inline export function portBind(space: usize, port: u32): void {
  let p = space + <usize>(port >> 3);
  store<u8>(p, <u8>(<u32>load<u8>(p) | (1 << (port & 7))));
  let c = countOf(space);
  store<u32>(c, load<u32>(c) + 1);
}

@inline export function portRelease(space: usize, port: u32): void {
  let p = space + <usize>(port >> 3);
  store<u8>(p, <u8>(<u32>load<u8>(p) & ~(1 << (port & 7))));
  let c = countOf(space);
  store<u32>(c, load<u32>(c) - 1);
}
