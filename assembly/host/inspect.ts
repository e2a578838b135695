// What the parser sees, for tests and `pias inspect`: one record per packet
// with the parse result and the transport tuple. Reads only; changes nothing.

import { Desc, Layout } from "../shared/abi";
import { PACKET } from "../packet";
import { parsePacket } from "../parse";

/** Bytes per inspect record. */
export const INSPECT_SIZE: usize = 48;
// record: u8 reason, u8 family, u8 proto, u8 flags (1 fragment, 2 has ports, 4 ICMP error, 8 truncated),
//         u16 sport, u16 dport (host order), u8 icmp type, u8 icmp code, u16 pad, src[16] at 12, dst[16] at 28, u32 pad

/** Exported: parse descriptors desc[0..n) and write n records to `out`. */
export function inspect_batch(desc: usize, n: u32, out: usize): void {
  for (let i: u32 = 0; i < n; i++) {
    let d = desc + <usize>i * Layout.DESC_SIZE;
    let o = out + <usize>i * INSPECT_SIZE;
    memory.fill(o, 0, INSPECT_SIZE);
    let pkt = PACKET;
    let r = parsePacket(pkt, <u32>load<u16>(d + Desc.LINK), <usize>load<u32>(d + Desc.OFF), load<u32>(d + Desc.LEN),
      load<u32>(d + Desc.WIRELEN));
    store<u8>(o, <u8>r);
    if (r != 0) continue;
    let family = pkt.family;
    store<u8>(o + 1, <u8>family);
    store<u8>(o + 2, <u8>pkt.proto);
    let hasPorts = pkt.hasL4Header && (pkt.proto == 6 || pkt.proto == 17);
    store<u8>(o + 3, <u8>((pkt.isFragment ? 1 : 0) | (hasPorts ? 2 : 0) | (pkt.icmpError ? 4 : 0) | (pkt.truncated ? 8 : 0)));
    store<u16>(o + 4, bswap<u16>(<u16>pkt.sport));
    store<u16>(o + 6, bswap<u16>(<u16>pkt.dport));
    store<u8>(o + 8, <u8>pkt.icmpType);
    store<u8>(o + 9, <u8>pkt.icmpCode);
    memory.copy(o + 12, pkt.src(), family == 4 ? 4 : 16);
    memory.copy(o + 28, pkt.dst(), family == 4 ? 4 : 16);
  }
}
