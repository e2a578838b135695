// The overlay's statistics (OverlayStat in assembly/shared/abi.ts): u64
// counters the host reads at overlay_stats_ptr(). Bumped on the packet path,
// never allocated.

import { OverlayStat } from "../shared/abi";

const area = memory.data(<i32>(OverlayStat.SLOTS * 8), 16);

@inline export function bumpStat(s: OverlayStat): void {
  let p = area + (<usize>s << 3);
  store<u64>(p, load<u64>(p) + 1);
}

@inline export function setStat(s: OverlayStat, v: u64): void {
  store<u64>(area + (<usize>s << 3), v);
}

/** Exported: the overlay's statistics area. */
export function overlay_stats_ptr(): usize {
  return area;
}
