// Link-layer views: Ethernet (any number of 802.1Q/802.1ad tags, bounded),
// Linux SLL and SLL2, BSD NULL/loopback, raw IPv4/IPv6, and pias's own
// Link.VNET (a TUN's virtio_net_hdr, then raw IP; wire/vnet.ts).
//
// parseLink() finds where the IP header starts and records in the packet's
// view where the link layer names the network protocol, so a tunnel endpoint can change the
// family (6in4 decapsulation) and keep the link header truthful.

import { Link, Reason, Vnet } from "../shared/abi";
import { ld16, st16 } from "./bytes";
import { Packet } from "../packet";

export const LINK_NULL: u32 = 0;
export const LINK_ETHERNET: u32 = 1;
export const LINK_RAW: u32 = 101;
export const LINK_LINUX_SLL: u32 = 113;
export const LINK_IPV4: u32 = 228;
export const LINK_IPV6: u32 = 229;
export const LINK_LINUX_SLL2: u32 = 276;
export const LINK_VNET: u32 = <u32>Link.VNET;

const ETH_HEADER: u32 = 14;
const VLAN_TAG: u32 = 4;
const MAX_VLAN_TAGS: u32 = 8;
const SLL_HEADER: u32 = 16;
const SLL2_HEADER: u32 = 20;
const NULL_HEADER: u32 = 4;

const ETHERTYPE_IPV4: u32 = 0x0800;
const ETHERTYPE_IPV6: u32 = 0x86dd;
const ETHERTYPE_VLAN: u32 = 0x8100;
const ETHERTYPE_QINQ: u32 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u32 = 0x9100;

// BSD loopback address families (the value is in the capturing host's byte order).
const AF_INET: u32 = 2;
const AF_INET6_LINUX: u32 = 10;
const AF_INET6_BSD: u32 = 24;
const AF_INET6_FREEBSD: u32 = 28;
const AF_INET6_DARWIN: u32 = 30;

/**
 * Parse the link-layer header of `len` bytes at `p` into the link fields of
 * `pkt` (linkLen, linkFamily, linkProtoPtr, linkProtoKind).
 */
export function parseLink(pkt: Packet, link: u32, p: usize, len: u32): Reason {
  pkt.linkProtoPtr = 0;
  pkt.linkProtoKind = 0;
  pkt.linkFamily = 0;
  pkt.vnet = 0;
  switch (link) {
    case LINK_VNET: {
      if (len < <u32>Vnet.SIZE + 1) return Reason.Truncated;
      pkt.linkLen = Vnet.SIZE;
      pkt.vnet = p;
      return Reason.None; // the IP header's version nibble decides, as for LINKTYPE_RAW
    }
    case LINK_ETHERNET: {
      if (len < ETH_HEADER) return Reason.Truncated;
      let off: u32 = 12;
      let type = ld16(p + off);
      let tags: u32 = 0;
      while (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ || type == ETHERTYPE_QINQ_OLD) {
        if (++tags > MAX_VLAN_TAGS) return Reason.NotIp;
        off += VLAN_TAG;
        if (len < off + 2) return Reason.Truncated;
        type = ld16(p + off);
      }
      pkt.linkLen = off + 2;
      pkt.linkProtoPtr = p + off;
      pkt.linkProtoKind = 1;
      return familyFromEthertype(pkt, type);
    }
    case LINK_LINUX_SLL: {
      if (len < SLL_HEADER) return Reason.Truncated;
      pkt.linkLen = SLL_HEADER;
      pkt.linkProtoPtr = p + 14;
      pkt.linkProtoKind = 1;
      return familyFromEthertype(pkt, ld16(p + 14));
    }
    case LINK_LINUX_SLL2: {
      if (len < SLL2_HEADER) return Reason.Truncated;
      pkt.linkLen = SLL2_HEADER;
      pkt.linkProtoPtr = p;
      pkt.linkProtoKind = 1;
      return familyFromEthertype(pkt, ld16(p));
    }
    case LINK_NULL: {
      if (len < NULL_HEADER) return Reason.Truncated;
      pkt.linkLen = NULL_HEADER;
      pkt.linkProtoPtr = p;
      let af = load<u32>(p);
      pkt.linkProtoKind = 2;
      if (af > 0xffff) { af = bswap<u32>(af); pkt.linkProtoKind = 3; }
      if (af == AF_INET) { pkt.linkFamily = 4; return Reason.None; }
      if (af == AF_INET6_LINUX || af == AF_INET6_BSD || af == AF_INET6_FREEBSD || af == AF_INET6_DARWIN) {
        pkt.linkFamily = 6;
        return Reason.None;
      }
      return Reason.NotIp;
    }
    case LINK_RAW: {
      pkt.linkLen = 0;
      if (len < 1) return Reason.Truncated;
      return Reason.None; // the IP header's version nibble decides
    }
    case LINK_IPV4: {
      pkt.linkLen = 0;
      pkt.linkFamily = 4;
      pkt.linkProtoKind = 4;
      return Reason.None;
    }
    case LINK_IPV6: {
      pkt.linkLen = 0;
      pkt.linkFamily = 6;
      pkt.linkProtoKind = 4;
      return Reason.None;
    }
  }
  return Reason.LinkUnsupported;
}

function familyFromEthertype(pkt: Packet, type: u32): Reason {
  if (type == ETHERTYPE_IPV4) { pkt.linkFamily = 4; return Reason.None; }
  if (type == ETHERTYPE_IPV6) { pkt.linkFamily = 6; return Reason.None; }
  return Reason.NotIp;
}

/**
 * Make the link header (whose protocol field is at `protoPtr`, encoded as
 * `kind`) announce IP version `family`. Returns false when the link type
 * cannot carry that family (LINKTYPE_IPV4 with an IPv6 packet).
 */
export function setLinkFamily(protoPtr: usize, kind: u32, family: u32, currentFamily: u32): bool {
  if (family == currentFamily) return true;
  if (kind == 1) { st16(protoPtr, family == 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6); return true; }
  if (kind == 2 || kind == 3) {
    let af: u32 = family == 4 ? AF_INET : AF_INET6_BSD;
    store<u32>(protoPtr, kind == 2 ? af : bswap<u32>(af));
    return true;
  }
  return kind == 0; // LINKTYPE_RAW carries both; fixed-family link types carry one
}

/** Swap Ethernet source and destination MAC addresses (for a synthesised reply). */
export function swapEthernetAddresses(link: u32, p: usize, len: u32): void {
  if (link != LINK_ETHERNET || len < ETH_HEADER) return;
  let a = load<u32>(p), b = load<u16>(p + 4);
  memory.copy(p, p + 6, 6);
  store<u32>(p + 6, a);
  store<u16>(p + 10, b);
}

/** True for link types whose header this module understands. */
export function linkSupported(link: u32): bool {
  return link == LINK_ETHERNET || link == LINK_NULL || link == LINK_RAW || link == LINK_LINUX_SLL ||
    link == LINK_LINUX_SLL2 || link == LINK_IPV4 || link == LINK_IPV6;
}
