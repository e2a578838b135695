// The ABI's layout values as this host was compiled with them, in the order
// the core's abi_values() writes them (assembly/host/abi-check.ts). Both
// compilers read assembly/shared/abi.ts; comparing the two lists catches a
// core built from another version of that file, or a constant one compiler
// evaluates differently.

import { CounterLayout, Counts, Desc, Layout, Link, Stat, Vnet } from "../../assembly/shared/abi.js";

export const ABI_VALUES: ReadonlyArray<readonly [name: string, value: number]> = [
  ["Layout.HEADROOM", Layout.HEADROOM],
  ["Layout.DESC_SIZE", Layout.DESC_SIZE],
  ["Layout.MAX_PACKET", Layout.MAX_PACKET],
  ["Layout.SCRATCH_SIZE", Layout.SCRATCH_SIZE],
  ["Desc.OFF", Desc.OFF],
  ["Desc.LEN", Desc.LEN],
  ["Desc.WIRELEN", Desc.WIRELEN],
  ["Desc.LINK", Desc.LINK],
  ["Desc.IFACE", Desc.IFACE],
  ["Desc.TS_HI", Desc.TS_HI],
  ["Desc.TS_LO", Desc.TS_LO],
  ["Desc.TIME", Desc.TIME],
  ["Desc.VERDICT", Desc.VERDICT],
  ["Desc.REASON", Desc.REASON],
  ["Desc.AUX", Desc.AUX],
  ["CounterLayout.REASON_SLOTS", CounterLayout.REASON_SLOTS],
  ["CounterLayout.STAT_SLOTS", CounterLayout.STAT_SLOTS],
  ["CounterLayout.STAT_BASE", CounterLayout.STAT_BASE],
  ["CounterLayout.BYTES", CounterLayout.BYTES],
  ["Counts.REASON_COUNT", Counts.REASON_COUNT],
  ["Stat.COUNT", Stat.COUNT],
  ["Link.VNET", Link.VNET],
  ["Vnet.CSUM_START", Vnet.CSUM_START],
  ["Vnet.SIZE", Vnet.SIZE],
];
