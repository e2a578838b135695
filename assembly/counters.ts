// Counters: one per drop reason and the global statistics. The host reads
// them through counters_ptr() as a BigUint64Array (reasons first, then stats).

import { Reason, Stat } from "./shared/abi";

const REASONS: usize = 32;
const STATS: usize = 32;
const area = memory.data(<i32>((REASONS + STATS) * 8), 16);

@inline export function countDrop(r: Reason): void {
  let p = area + (<usize>r << 3);
  store<u64>(p, load<u64>(p) + 1);
}

@inline export function bump(s: Stat, n: u64 = 1): void {
  let p = area + ((REASONS + <usize>s) << 3);
  store<u64>(p, load<u64>(p) + n);
}

@inline export function setStat(s: Stat, v: u64): void {
  store<u64>(area + ((REASONS + <usize>s) << 3), v);
}

@inline export function getStat(s: Stat): u64 {
  return load<u64>(area + ((REASONS + <usize>s) << 3));
}

/** Exported: base of REASONS u64 drop counters followed by STATS u64 statistics. */
export function counters_ptr(): usize {
  return area;
}

export function counters_layout(): u32 {
  return (<u32>REASONS << 16) | <u32>STATS;
}

export function counters_reset(): void {
  memory.fill(area, 0, (REASONS + STATS) * 8);
}
