// Capture interfaces seen in the input (pcapng IDBs, numbered across all
// sections in file order): link type, snap length and timestamp resolution,
// for framing input and for declaring the same interfaces in the output.
//
// The table grows (doubling, on an IDB, never per packet) up to what a
// descriptor's u16 interface number can name: a file may declare any number
// of interfaces per section and over its sections up to that.

import { heapAlloc, heapFree } from "../memory";

/** Interfaces over all sections at most: Desc.IFACE is a u16. */
export const MAX_INTERFACES: u32 = 65536;

// per interface: u16 link, u8 resol option byte, u8 pad, u32 snaplen, u64 ticks per second, i64 offset seconds
const ENTRY: usize = 24;
let table: usize = 0;
let room: u32 = 0;
let count: u32 = 0;

export function resetInterfaces(): void {
  count = 0;
}

@inline export function interfaceCount(): u32 {
  return count;
}

/** Register the next interface. False when the resolution cannot be represented. */
export function addInterface(link: u32, snaplen: u32, resol: u32, offset: i64): bool {
  if (count >= MAX_INTERFACES) return false;
  if (count == room) {
    let grown: u32 = room == 0 ? 16 : room * 2;
    let t = heapAlloc(<usize>grown * ENTRY);
    if (t == 0) return false;
    if (count != 0) memory.copy(t, table, <usize>count * ENTRY);
    heapFree(table);
    table = t;
    room = grown;
  }
  let ticks: u64 = 1;
  if ((resol & 0x80) != 0) {
    let bits = resol & 0x7f;
    if (bits > 63) return false;
    ticks = <u64>1 << bits;
  } else {
    if (resol > 19) return false;
    for (let i: u32 = 0; i < resol; i++) ticks *= 10;
  }
  let e = table + <usize>count * ENTRY;
  store<u16>(e, <u16>link);
  store<u8>(e + 2, <u8>resol);
  store<u32>(e + 4, snaplen);
  store<u64>(e + 8, ticks);
  store<i64>(e + 16, offset);
  count++;
  return true;
}

@inline export function ifaceLink(i: u32): u32 {
  return i < count ? <u32>load<u16>(table + <usize>i * ENTRY) : 0;
}

@inline export function ifaceResol(i: u32): u32 {
  return i < count ? <u32>load<u8>(table + <usize>i * ENTRY + 2) : 6;
}

@inline export function ifaceSnaplen(i: u32): u32 {
  return i < count ? load<u32>(table + <usize>i * ENTRY + 4) : 0;
}

/** Unix seconds of a timestamp (high, low words in the interface's units). */
export function ifaceSeconds(i: u32, hi: u32, lo: u32): u32 {
  if (i >= count) return 0;
  let e = table + <usize>i * ENTRY;
  let ts = (<u64>hi << 32) | <u64>lo;
  return <u32>(<i64>(ts / load<u64>(e + 8)) + load<i64>(e + 16));
}
