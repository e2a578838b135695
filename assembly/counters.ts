// Counters: one per drop reason and the global statistics, laid out as
// CounterLayout (assembly/shared/abi.ts) says, so the host reads them from
// counters_ptr() without knowing anything else. Bumped on the packet path;
// never allocated, never reset there.

import { CounterLayout, Reason, Stat } from "./shared/abi";

const area = memory.data(<i32>CounterLayout.BYTES, 16);

@inline function statAt(s: Stat): usize {
  return area + <usize>CounterLayout.STAT_BASE + (<usize>s << 3);
}

@inline export function countDrop(r: Reason): void {
  let p = area + (<usize>r << 3);
  store<u64>(p, load<u64>(p) + 1);
}

@inline export function bump(s: Stat, n: u64 = 1): void {
  let p = statAt(s);
  store<u64>(p, load<u64>(p) + n);
}

@inline export function setStat(s: Stat, v: u64): void {
  store<u64>(statAt(s), v);
}

@inline export function getStat(s: Stat): u64 {
  return load<u64>(statAt(s));
}

/** Exported: the counters area (CounterLayout). */
export function counters_ptr(): usize {
  return area;
}

export function counters_reset(): void {
  memory.fill(area, 0, <usize>CounterLayout.BYTES);
}
