// The ABI as this compiler sees it: every layout constant of
// assembly/shared/abi.ts the host depends on, written out in a fixed order
// so a test can compare them with what the TypeScript compiler made of the
// same file (test/core/abi.test.ts). Control call; never on the packet path.

import { CounterLayout, Counts, Desc, Layout, Link, Stat, Vnet } from "../shared/abi";

/** Exported: write the ABI's layout values as u32s at `out` (in the order of ABI_VALUE_NAMES in src/core/abi.ts); returns how many. */
export function abi_values(out: usize): u32 {
  const values: StaticArray<u32> = [
    Layout.HEADROOM,
    Layout.DESC_SIZE,
    Layout.MAX_PACKET,
    Layout.SCRATCH_SIZE,
    Desc.OFF,
    Desc.LEN,
    Desc.WIRELEN,
    Desc.LINK,
    Desc.IFACE,
    Desc.TS_HI,
    Desc.TS_LO,
    Desc.TIME,
    Desc.VERDICT,
    Desc.REASON,
    Desc.AUX,
    CounterLayout.REASON_SLOTS,
    CounterLayout.STAT_SLOTS,
    CounterLayout.STAT_BASE,
    CounterLayout.BYTES,
    Counts.REASON_COUNT,
    Stat.COUNT,
    Link.VNET,
    Vnet.CSUM_START,
    Vnet.SIZE,
  ];
  for (let i = 0; i < values.length; i++) store<u32>(out + (<usize>i << 2), values[i]);
  return <u32>values.length;
}
