// ICMP errors the proxy originates (DESIGN.md section 2 step 6): a packet
// that no longer fits the tunnel MTU once encapsulated — with DF set, or any
// IPv6 packet — is answered with "fragmentation needed" / "packet too big"
// carrying the MTU the sender must use, so path MTU discovery keeps working
// through the proxy. The error is built in the packet's own slot: new headers
// go into the headroom in front of the packet, which becomes the quote.

import { Desc } from "../shared/abi";
import { ld16, raw32, st16, st8, setRaw32 } from "../wire/bytes";
import { finish, sumBytes, pseudo6 } from "../wire/checksum";
import { IPV4_HEADER, IPV6_HEADER, V4_SRC, V6_SRC, PROTO_ICMP, PROTO_ICMPV6, V4_DF, V4_FLAGS_FRAG } from "../wire/ip";
import { ICMP4_UNREACH, ICMP4_FRAG_NEEDED_CODE, ICMP6_PACKET_TOO_BIG, ICMP_HEADER } from "../wire/l4";
import { swapEthernetAddresses } from "../wire/link";
import { clearVnet } from "../wire/vnet";
import { nextIpId } from "./tunnel";
import { hasProxy, proxyAddrPtr, tunnelMtu } from "../settings";
import { Packet } from "../packet";

/** Largest ICMP error datagram: IPv4 576 bytes (RFC 1812 4.3.2.3), IPv6 1280 (RFC 4443 2.4). */
const MAX_ERROR_V4: u32 = 576;
const MAX_ERROR_V6: u32 = 1280;
const HOP_LIMIT: u32 = 64;

/** Bytes an IP-in-IP header adds for the packet's family. */
@inline export function tunnelOverhead(pkt: Packet): u32 {
  return pkt.family == 4 ? IPV4_HEADER : IPV6_HEADER;
}

/**
 * True when the packet, encapsulated, exceeds the tunnel MTU and may
 * not be fragmented on the way (IPv4 with DF, or IPv6). `ipLen`: the IP
 * length to judge (a super-packet's largest segment's).
 */
export function tooBigForTunnel(pkt: Packet, ipLen: u32 = pkt.ipTotal): bool {
  if (ipLen + tunnelOverhead(pkt) <= tunnelMtu) return false;
  return pkt.family == 6 || (ld16(pkt.l3 + V4_FLAGS_FRAG) & V4_DF) != 0;
}

/**
 * Replace the packet `pkt` (descriptor d) with the ICMP error telling its
 * sender the tunnel's path MTU: tunnelMtu less `overhead` (default: the
 * IP-in-IP header). False when the proxy has no address of the packet's
 * family to send it from.
 */
export function packetTooBig(pkt: Packet, d: usize, link: u32, overhead: u32 = 0): bool {
  let family = pkt.family;
  if (!hasProxy(family)) return false;
  let off = <usize>load<u32>(d + Desc.OFF);
  let l2 = pkt.linkLen;
  let ip = pkt.l3;
  let hdr: u32 = family == 4 ? IPV4_HEADER + ICMP_HEADER : IPV6_HEADER + ICMP_HEADER;
  let limit = family == 4 ? MAX_ERROR_V4 : MAX_ERROR_V6;
  let quote = <u32>(pkt.ipEnd - ip);
  if (quote > limit - hdr) quote = limit - hdr;
  let newOff = off - hdr;
  if (l2 != 0) memory.copy(newOff, off, l2);
  let o = newOff + l2; // == ip - hdr
  let icmp = o + (family == 4 ? IPV4_HEADER : IPV6_HEADER);
  let total = hdr + quote;
  let mtu = tunnelMtu - (overhead != 0 ? overhead : tunnelOverhead(pkt));
  if (family == 4) {
    store<u8>(o, 0x45);
    st8(o + 1, 0);
    st16(o + 2, total);
    st16(o + 4, nextIpId());
    st16(o + 6, 0);
    st8(o + 8, HOP_LIMIT);
    st8(o + 9, PROTO_ICMP);
    store<u16>(o + 10, 0);
    setRaw32(o + 12, raw32(proxyAddrPtr(4)));
    setRaw32(o + 16, raw32(ip + V4_SRC)); // back to the sender
    store<u16>(o + 10, <u16>finish(sumBytes(o, IPV4_HEADER, 0)));
    st8(icmp, ICMP4_UNREACH);
    st8(icmp + 1, ICMP4_FRAG_NEEDED_CODE);
    store<u16>(icmp + 2, 0);
    st16(icmp + 4, 0);
    st16(icmp + 6, mtu);
    store<u16>(icmp + 2, <u16>finish(sumBytes(icmp, ICMP_HEADER + quote, 0)));
  } else {
    store<u32>(o, bswap<u32>(6 << 28));
    st16(o + 4, ICMP_HEADER + quote);
    st8(o + 6, PROTO_ICMPV6);
    st8(o + 7, HOP_LIMIT);
    memory.copy(o + 8, proxyAddrPtr(6), 16);
    memory.copy(o + 24, ip + V6_SRC, 16); // back to the sender
    st8(icmp, ICMP6_PACKET_TOO_BIG);
    st8(icmp + 1, 0);
    store<u16>(icmp + 2, 0);
    store<u32>(icmp + 4, bswap<u32>(mtu));
    store<u16>(icmp + 2, <u16>finish(sumBytes(icmp, ICMP_HEADER + quote, pseudo6(o, PROTO_ICMPV6, ICMP_HEADER + quote))));
  }
  swapEthernetAddresses(link, newOff, l2);
  if (pkt.vnet != 0) {
    clearVnet(newOff); // the error is a plain packet with its checksums complete
    pkt.vnet = newOff;
  }
  store<u32>(d + Desc.OFF, <u32>newOff);
  store<u32>(d + Desc.LEN, l2 + total);
  store<u32>(d + Desc.WIRELEN, l2 + total);
  return true;
}
