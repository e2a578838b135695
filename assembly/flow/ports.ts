// NAT port occupancy per binding space: a target endpoint and a protocol
// (family, protocol, target address, target port), the part of a reverse key
// that a NAT port completes. Every space counts the flow records that hold a
// binding in it (from the binding's creation until its record is freed,
// idle or not). A space whose count reaches a sixth of the NAT range is
// *dense*: it gets a bitmap, a bit per port set while a flow holds it, and
// allocNatPort (flows.ts) reads a candidate's bit instead of probing the
// reverse index and reading the holder's record — at 40% of a target's
// ports bound, those were most of a new flow's cache misses. Below that a
// candidate is mostly free, and the probe (whose bucket the new binding
// needs anyway) costs less than a bit in a bitmap that may miss the cache.
//
// A space that turns dense is *queued*; the next build pass gives every
// queued space its bitmap (*building*: binds and releases keep its bits from
// then on) and walks the flow records present when it started
// (flowsBuildPorts in flows.ts, two records a packet processed), setting the
// bits of their bindings; at the end of the pass its spaces are dense, and
// stay so. Only a dense space's bits are read.
//
// Spaces come from a table sized at start; bitmaps (8 KiB: a bit for every
// port number, whatever the NAT range) from a pool sized at start. A space
// that finds the table full, or no bitmap left, is probed in the index: the
// same answer, slower. No allocation after init.

import { finalize, mix, mixAddr } from "../hash";
import { reservePages } from "../memory";
import { raw16 } from "../wire/bytes";
import { PROTO_TCP, PROTO_UDP } from "../wire/ip";
import { T_ADDR, T_PORT, T_SPACES } from "../group/groups";

const SEED_SPACE: u32 = 0x73706163; // "spac"
/** Bytes of one bitmap: a bit per port number. */
const BITMAP_BYTES: usize = 65536 >> 3;
/** Entry of the space table: address (16), target port raw (u16), protocol (u8), family (u8), space id (u32, 1-based; 0: empty). */
const ENTRY: usize = 24;
const E_PORT: usize = 16;
const E_PROTO: usize = 18;
const E_FAMILY: usize = 19;
const E_ID: usize = 20;
/** Per space (by id): bound count (u32), bitmap address (u32; 0: none), state (u32). */
const SPACE: usize = 12;
const S_COUNT: usize = 0;
const S_BITMAP: usize = 4;
const S_STATE: usize = 8;
const SPARSE: u32 = 0;
const QUEUED: u32 = 1;
const BUILDING: u32 = 2;
const DENSE: u32 = 3;
/** At most this many spaces, and bitmaps (8 MiB). */
const MAX_SPACES: u32 = 16384;
const MAX_BITMAPS: u32 = 1024;

let table: usize = 0;
let slotMask: u32 = 0;
let spaces: usize = 0; // SPACE bytes per id, id 0 unused
let spaceCap: u32 = 0;
let spaceCount: u32 = 0;
let bitmaps: usize = 0;
let bitmapCap: u32 = 0;
let bitmapCount: u32 = 0;
let queued: bool = false;

/** Reserve room for the spaces and bitmaps a table of maxFlows flows toward maxTargets targets may need. */
export function portsInit(maxFlows: u32, maxTargets: u32): bool {
  let n = maxTargets * 3; // TCP, UDP and ICMP toward each target
  if (n > MAX_SPACES) n = MAX_SPACES;
  spaceCap = n;
  let slots: u32 = 2;
  while (slots < n * 2) slots <<= 1;
  slotMask = slots - 1;
  table = reservePages(<usize>slots * ENTRY);
  spaces = reservePages(<usize>(n + 1) * SPACE);
  let b = (maxFlows >> 8) + 16; // a dense space holds 10,000 bindings or more: a few per million flows
  if (b > n) b = n;
  if (b > MAX_BITMAPS) b = MAX_BITMAPS;
  bitmapCap = b;
  bitmaps = reservePages(<usize>b * BITMAP_BYTES);
  return table != 0 && spaces != 0 && bitmaps != 0;
}

@inline function spacePtr(id: u32): usize {
  return spaces + <usize>id * SPACE;
}

@inline function sameKey(e: usize, family: u32, proto: u32, addr: usize, tportRaw: u32): bool {
  if (<u32>load<u16>(e + E_PORT) != tportRaw || <u32>load<u8>(e + E_PROTO) != proto || <u32>load<u8>(e + E_FAMILY) != family) return false;
  if (family == 4) return load<u32>(e) == load<u32>(addr);
  return load<u64>(e) == load<u64>(addr) && load<u64>(e + 8) == load<u64>(addr + 8);
}

/**
 * The space of binding key (family, proto, target address at `addr`, target
 * port raw): its id, or 0 when it has none. `create`: give it one if it has
 * none yet (while the table has room).
 */
function portSpace(family: u32, proto: u32, addr: usize, tportRaw: u32, create: bool): u32 {
  let h = finalize(mix(mixAddr(SEED_SPACE, addr, family), tportRaw | (proto << 16) | (family << 24)), 4);
  let i = h & slotMask;
  for (;;) {
    let e = table + <usize>i * ENTRY;
    let id = load<u32>(e + E_ID);
    if (id == 0) {
      if (!create || spaceCount == spaceCap) return 0;
      if (family == 4) store<u32>(e, load<u32>(addr));
      else {
        store<u64>(e, load<u64>(addr));
        store<u64>(e + 8, load<u64>(addr + 8));
      }
      store<u16>(e + E_PORT, <u16>tportRaw);
      store<u8>(e + E_PROTO, <u8>proto);
      store<u8>(e + E_FAMILY, <u8>family);
      store<u32>(e + E_ID, ++spaceCount);
      return spaceCount;
    }
    if (sameKey(e, family, proto, addr, tportRaw)) return id;
    i = (i + 1) & slotMask; // the table has twice the slots of the spaces: an empty one comes
  }
  return 0; // (unreachable)
}

/**
 * portSpace() of a binding toward the target at `t` (protocol proto, target
 * port raw tportRaw). A target with a fixed port keeps its spaces in its
 * record once given (a space is never taken back, and a target's endpoint
 * never changes): the table's lines are cache misses of their own at a
 * million flows. `create` (allocNatPort): give a space, and keep it in the
 * record (the prefetch, which changes nothing, only looks).
 */
@inline export function targetPortSpace(t: usize, family: u32, proto: u32, tportRaw: u32, create: bool): u32 {
  let fixed = raw16(t + T_PORT) != 0;
  let slot = t + T_SPACES + (proto == PROTO_TCP ? 0 : proto == PROTO_UDP ? 4 : 8);
  if (fixed) {
    let known = load<u32>(slot);
    if (known != 0) return known;
  }
  let id = portSpace(family, proto, t + T_ADDR, tportRaw, create);
  if (fixed && create && id != 0) store<u32>(slot, id);
  return id;
}

/** The bitmap of space `id` when it is dense (its bits are exact), else 0. */
@inline export function denseBits(id: u32): usize {
  let s = spacePtr(id);
  return load<u32>(s + S_STATE) == DENSE ? <usize>load<u32>(s + S_BITMAP) : 0;
}

/** The bitmap of space `id` when its bits are kept (building or dense), else 0: a binding changes it. */
@inline export function keptBits(id: u32): usize {
  return <usize>load<u32>(spacePtr(id) + S_BITMAP);
}

/** True while a flow holds port `port` (host order): in a dense space's bitmap. */
@inline export function portBound(bits: usize, port: u32): bool {
  return (<u32>load<u8>(bits + <usize>(port >> 3)) & (1 << (port & 7))) != 0;
}

@inline function setBit(bits: usize, port: u32): void {
  let p = bits + <usize>(port >> 3);
  store<u8>(p, <u8>(<u32>load<u8>(p) | (1 << (port & 7))));
}

@inline function clearBit(bits: usize, port: u32): void {
  let p = bits + <usize>(port >> 3);
  store<u8>(p, <u8>(<u32>load<u8>(p) & ~(1 << (port & 7))));
}

/** A flow now holds port `port` of space `id` (NAT range of `range` ports). */
export function portBind(id: u32, port: u32, range: u32): void {
  let s = spacePtr(id);
  let count = load<u32>(s + S_COUNT) + 1;
  store<u32>(s + S_COUNT, count);
  let bits = <usize>load<u32>(s + S_BITMAP);
  if (bits != 0) setBit(bits, port);
  else if (load<u32>(s + S_STATE) == SPARSE && count * 6 >= range && bitmapCount < bitmapCap) {
    store<u32>(s + S_STATE, QUEUED);
    queued = true;
  }
}

/** The flow that held port `port` of space `id` is freed. */
export function portRelease(id: u32, port: u32): void {
  let s = spacePtr(id);
  store<u32>(s + S_COUNT, load<u32>(s + S_COUNT) - 1);
  let bits = <usize>load<u32>(s + S_BITMAP);
  if (bits != 0) clearBit(bits, port);
}

/** Start a build pass if spaces are queued: each gets its (zeroed) bitmap and keeps its bits from now on. True: a pass starts. */
export function portsBuildStart(): bool {
  if (!queued) return false;
  queued = false;
  let any = false;
  for (let id: u32 = 1; id <= spaceCount; id++) {
    let s = spacePtr(id);
    if (load<u32>(s + S_STATE) != QUEUED) continue;
    if (bitmapCount == bitmapCap) {
      store<u32>(s + S_STATE, SPARSE); // no bitmap left: probed in the index for good
      continue;
    }
    store<u32>(s + S_BITMAP, <u32>(bitmaps + <usize>(bitmapCount++) * BITMAP_BYTES)); // fresh pages are zero
    store<u32>(s + S_STATE, BUILDING);
    any = true;
  }
  return any;
}

/** During a pass: the binding of a flow record present when it started holds port `port` of space `id`. */
@inline export function portsBuildSeen(id: u32, port: u32): void {
  let s = spacePtr(id);
  if (load<u32>(s + S_STATE) == BUILDING) setBit(<usize>load<u32>(s + S_BITMAP), port);
}

/** The pass walked every record present when it started: its spaces' bits are exact. */
export function portsBuildDone(): void {
  for (let id: u32 = 1; id <= spaceCount; id++) {
    let s = spacePtr(id);
    if (load<u32>(s + S_STATE) == BUILDING) store<u32>(s + S_STATE, DENSE);
  }
}
