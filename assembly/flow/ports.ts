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
  return table != 0 && bitmaps != 0;
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

/** True while a flow holds port `port` (host order) of the space at `space`. */
@inline export function portBound(space: usize, port: u32): bool {
  return (<u32>load<u8>(space + <usize>(port >> 3)) & (1 << (port & 7))) != 0;
}

@inline export function portBind(space: usize, port: u32): void {
  let p = space + <usize>(port >> 3);
  store<u8>(p, <u8>(<u32>load<u8>(p) | (1 << (port & 7))));
}

@inline export function portRelease(space: usize, port: u32): void {
  let p = space + <usize>(port >> 3);
  store<u8>(p, <u8>(<u32>load<u8>(p) & ~(1 << (port & 7))));
}
