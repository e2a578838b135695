// Fixed-slot batches for live I/O: before each read the host has the core
// reset a run of descriptors to fixed slots of an arena (slot i at
// base + i * stride, with Layout.HEADROOM free in front), each offering `cap`
// bytes to the reader (the TUN addon reads a packet into OFF and overwrites
// LEN and WIRELEN with its size). One call per batch instead of a host loop
// writing descriptor fields packet by packet.

import { Desc, Layout } from "../shared/abi";

/**
 * Exported: reset descriptors [0, n) at `desc`: OFF = base + i * stride +
 * HEADROOM, LEN = WIRELEN = cap, LINK = link, TIME = time, everything else 0.
 * process_batch may move OFF (into the headroom, for a tunnel header), so the
 * host calls this before every read.
 */
export function ring_reset(desc: usize, n: u32, base: usize, stride: u32, cap: u32, link: u32, time: u32): void {
  for (let i: u32 = 0; i < n; i++) {
    let d = desc + <usize>i * Layout.DESC_SIZE;
    store<u32>(d + Desc.OFF, <u32>(base + <usize>i * stride + Layout.HEADROOM));
    store<u32>(d + Desc.LEN, cap);
    store<u32>(d + Desc.WIRELEN, cap);
    store<u16>(d + Desc.LINK, <u16>link);
    store<u16>(d + Desc.IFACE, 0);
    store<u32>(d + Desc.TS_HI, time);
    store<u32>(d + Desc.TS_LO, 0);
    store<u32>(d + Desc.TIME, time);
    store<u32>(d + Desc.VERDICT, 0); // VERDICT, REASON, AUX
  }
}
