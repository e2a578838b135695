// Reflection for `pias replay --reflect`: simulate the legacy targets by
// answering every packet the proxy forwarded to one with the packet a target
// would send back (addresses and ports swapped, same payload; an echo request
// becomes an echo reply). The replies then go through process_batch like any
// packet, so the output shows what the client would receive.

import { AuxFlag, Desc, Layout, Verdict } from "../shared/abi";
import { raw16, raw32 } from "../wire/bytes";
import { applyAt, delta16 } from "../wire/checksum";
import { PROTO_TCP, PROTO_UDP } from "../wire/ip";
import { ICMP_CSUM, isEchoRequest, ICMP4_ECHO_REPLY, ICMP6_ECHO_REPLY } from "../wire/l4";
import { swapEthernetAddresses } from "../wire/link";
import { Packet, PACKET } from "../packet";
import { parsePacket } from "../parse";

/**
 * Exported: for each forwarded, NATed packet of `desc[0..n)`, write its
 * target's reply into `arena` and descriptor i of `out` (others get OFF = 0).
 * Returns how many replies were made; a packet that does not fit in the arena gets none.
 */
export function reflect_batch(desc: usize, n: u32, out: usize, arena: usize, arenaLen: u32): u32 {
  let pos = arena + Layout.HEADROOM;
  let end = arena + arenaLen;
  let made: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let d = desc + <usize>i * Layout.DESC_SIZE;
    let o = out + <usize>i * Layout.DESC_SIZE;
    memory.copy(o, d, Layout.DESC_SIZE);
    store<u32>(o + Desc.OFF, 0);
    store<u8>(o + Desc.VERDICT, <u8>Verdict.Drop);
    store<u8>(o + Desc.REASON, 0);
    let aux = <u32>load<u16>(d + Desc.AUX);
    if (load<u8>(d + Desc.VERDICT) != <u8>Verdict.Forward) continue;
    if ((aux & AuxFlag.ToTarget) == 0 || (aux & (AuxFlag.Encapsulated | AuxFlag.IcmpError)) != 0) continue;
    let len = load<u32>(d + Desc.LEN);
    if (pos + len + Layout.HEADROOM > end) continue; // arena full: no reply, but every slot is still cleared
    memory.copy(pos, <usize>load<u32>(d + Desc.OFF), len);
    store<u32>(o + Desc.OFF, <u32>pos);
    store<u16>(o + Desc.AUX, <u16>AuxFlag.Reflected);
    if (!swap(PACKET, <u32>load<u16>(o + Desc.LINK), pos, len, load<u32>(o + Desc.WIRELEN))) {
      store<u32>(o + Desc.OFF, 0);
      continue;
    }
    pos += ((<usize>len + 7) & ~<usize>7) + Layout.HEADROOM;
    made++;
  }
  return made;
}

function swap(pkt: Packet, link: u32, p: usize, len: u32, wirelen: u32): bool {
  if (parsePacket(pkt, link, p, len, wirelen) != 0 || !pkt.hasL4Header) return false;
  let family = pkt.family;
  let s = pkt.src(), d = pkt.dst();
  // swapping is checksum-neutral: the same words are summed in another order
  if (family == 4) {
    let a = raw32(s);
    store<u32>(s, raw32(d));
    store<u32>(d, a);
  } else {
    let a0 = load<u64>(s), a1 = load<u64>(s + 8);
    memory.copy(s, d, 16);
    store<u64>(d, a0);
    store<u64>(d + 8, a1);
  }
  if (pkt.proto == PROTO_TCP || pkt.proto == PROTO_UDP) {
    let sp = raw16(pkt.l4);
    store<u16>(pkt.l4, <u16>raw16(pkt.l4 + 2));
    store<u16>(pkt.l4 + 2, <u16>sp);
  } else if (pkt.isIcmp() && isEchoRequest(family, pkt.icmpType)) {
    let old = raw16(pkt.l4);
    let reply: u32 = family == 4 ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY;
    let nw = (old & 0xff00) | reply;
    store<u16>(pkt.l4, <u16>nw);
    applyAt(pkt.l4 + ICMP_CSUM, delta16(old, nw));
  } else {
    return false;
  }
  swapEthernetAddresses(link, p, len);
  return true;
}
