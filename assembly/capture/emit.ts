// Capture-file framing, output side: the forwarded packets of processed
// batches become records of a file in the input's format (little-endian):
// pcap with the input's link type and timestamp resolution, or one pcapng
// section declaring the input's interfaces (numbered across all its sections)
// before their first packet. Never writes past the buffer it is given. No
// allocation.

import { CaptureFormat, Desc, Layout, Verdict } from "../shared/abi";
import { format, pcapLink, pcapNanos } from "./scan";
import { ifaceLink, ifaceResol, ifaceSnaplen, interfaceCount } from "./interfaces";

const SNAPLEN: u32 = <u32>Layout.MAX_PACKET;
/** Returned by cap_emit when the buffer is too small (a host sizing bug). */
const NO_ROOM: u32 = 0xffffffff;

let declared: u32 = 0; // output interfaces (IDBs) written so far

/** Exported: write the output file header. Returns its size, or NO_ROOM. */
export function cap_emit_begin(out: usize, cap: u32): u32 {
  declared = 0;
  if (format == CaptureFormat.Pcap) {
    if (cap < 24) return NO_ROOM;
    store<u32>(out, pcapNanos ? 0xa1b23c4d : 0xa1b2c3d4);
    store<u16>(out + 4, 2);
    store<u16>(out + 6, 4);
    store<u64>(out + 8, 0); // thiszone, sigfigs
    store<u32>(out + 16, SNAPLEN);
    store<u32>(out + 20, pcapLink);
    return 24;
  }
  if (cap < 28) return NO_ROOM;
  store<u32>(out, 0x0a0d0d0a);
  store<u32>(out + 4, 28);
  store<u32>(out + 8, 0x1a2b3c4d);
  store<u16>(out + 12, 1);
  store<u16>(out + 14, 0);
  store<i64>(out + 16, -1); // section length unknown
  store<u32>(out + 24, 28);
  return 28;
}

/** Write the IDB of input interface i; returns its size or 0 when it does not fit. */
function idb(p: usize, end: usize, i: u32): u32 {
  let resol = ifaceResol(i);
  let len: u32 = resol != 6 ? 32 : 20; // if_tsresol option (8) + end of options (4)
  if (p + len > end) return 0;
  store<u32>(p, 1);
  store<u32>(p + 4, len);
  store<u16>(p + 8, <u16>ifaceLink(i));
  store<u16>(p + 10, 0);
  let snap = ifaceSnaplen(i);
  store<u32>(p + 12, snap == 0 ? 0 : SNAPLEN);
  if (resol != 6) {
    store<u16>(p + 16, 9);
    store<u16>(p + 18, 1);
    store<u32>(p + 20, resol);
    store<u32>(p + 24, 0); // opt_endofopt
  }
  store<u32>(p + len - 4, len);
  return len;
}

function record(p: usize, end: usize, d: usize): u32 {
  let len = load<u32>(d + Desc.LEN);
  let data = <usize>load<u32>(d + Desc.OFF);
  if (format == CaptureFormat.Pcap) {
    if (p + 16 + len > end) return NO_ROOM;
    store<u32>(p, load<u32>(d + Desc.TS_HI));
    store<u32>(p + 4, load<u32>(d + Desc.TS_LO));
    store<u32>(p + 8, len);
    store<u32>(p + 12, load<u32>(d + Desc.WIRELEN));
    memory.copy(p + 16, data, len);
    return 16 + len;
  }
  let iface = <u32>load<u16>(d + Desc.IFACE);
  let q = p;
  while (declared <= iface && declared < interfaceCount()) {
    let w = idb(q, end, declared);
    if (w == 0) return NO_ROOM;
    q += w;
    declared++;
  }
  let padded = (len + 3) & ~3;
  let blen = 32 + padded;
  if (q + blen > end) return NO_ROOM;
  store<u32>(q, 6);
  store<u32>(q + 4, blen);
  store<u32>(q + 8, iface);
  store<u32>(q + 12, load<u32>(d + Desc.TS_HI));
  store<u32>(q + 16, load<u32>(d + Desc.TS_LO));
  store<u32>(q + 20, len);
  store<u32>(q + 24, load<u32>(d + Desc.WIRELEN));
  memory.copy(q + 28, data, len);
  store<u32>(q + 28 + len, 0); // the padding (a memory.fill is a call out of the Wasm code in V8; the block's length is written after)
  store<u32>(q + blen - 4, blen);
  return <u32>(q - p) + blen;
}

/**
 * Exported: write a record for every forwarded packet of desc[0..n) and, when
 * desc2 is not 0, right after each, for desc2[i] (its reflection). Returns
 * the bytes written, or NO_ROOM when `cap` is too small.
 */
export function cap_emit(desc: usize, n: u32, desc2: usize, out: usize, cap: u32): u32 {
  let p = out;
  let end = out + cap;
  for (let i: u32 = 0; i < n; i++) {
    let d = desc + <usize>i * Layout.DESC_SIZE;
    if (load<u8>(d + Desc.VERDICT) == <u8>Verdict.Forward) {
      let w = record(p, end, d);
      if (w == NO_ROOM) return NO_ROOM;
      p += w;
    }
    if (desc2 == 0) continue;
    let r = desc2 + <usize>i * Layout.DESC_SIZE;
    if (load<u32>(r + Desc.OFF) != 0 && load<u8>(r + Desc.VERDICT) == <u8>Verdict.Forward) {
      let w = record(p, end, r);
      if (w == NO_ROOM) return NO_ROOM;
      p += w;
    }
  }
  return <u32>(p - out);
}
