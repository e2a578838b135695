// IP-in-IP tunnels (RFC 2003, RFC 2473): toward PIAS-aware targets and, in
// the other direction, packets another proxy or a target tunnelled to us.
//
// The packet is never copied: encapsulation moves the link-layer header into
// the headroom in front of the packet and writes the outer IP header between
// it and the unmodified inner packet; decapsulation moves the link header
// forward over the outer IP header. A virtio_net_hdr (Link.VNET) is the link
// header: it moves too, and a partial checksum's csum_start follows the
// inner packet.

import { Desc, Reason } from "../shared/abi";
import { ld16, ld8, raw32, st16, st8 } from "../wire/bytes";
import { finish, sumBytes } from "../wire/checksum";
import { IPV4_HEADER, IPV6_HEADER, PROTO_IPIP, PROTO_IPV6, V4_DF, V4_FLAGS_FRAG, V4_TOS } from "../wire/ip";
import { setLinkFamily } from "../wire/link";
import { setVnetCsumStart, vnetCsumStart } from "../wire/vnet";
import { Packet } from "../packet";
import { parseIp } from "../parse";

const OUTER_TTL: u32 = 64;
let ipId: u32 = 0;

/** The IPv4 identification of the next datagram the proxy originates (tunnel headers, ICMP errors). */
export function nextIpId(): u32 {
  let id = ipId;
  ipId = (ipId + 1) & 0xffff;
  return id;
}

/**
 * Encapsulate the parsed packet (descriptor d) from `src` to `dst` (16-byte
 * address buffers of the packet's family). `entropy` seeds the IPv6 flow label.
 * Bytes past the inner packet's IP length (link padding, trailers) are left
 * out of the tunnel. The caller makes sure the outer length fits 16 bits.
 */
export function encapsulate(pkt: Packet, d: usize, src: usize, dst: usize, entropy: u32): void {
  let outerLen = outerHeaderLen(pkt.family);
  let newOff = encapsulateAt(<usize>load<u32>(d + Desc.OFF), pkt.linkLen, pkt.family, pkt.l3, pkt.ipTotal, src, dst, entropy);
  if (pkt.vnet != 0) {
    pkt.vnet = newOff;
    // a partial checksum's region moved with the inner packet
    if (pkt.partial) setVnetCsumStart(newOff, vnetCsumStart(newOff) + outerLen);
  }
  store<u32>(d + Desc.OFF, <u32>newOff);
  // the frame ends where the inner IP packet does (or where the capture cut it): no padding or trailer in the tunnel
  store<u32>(d + Desc.LEN, pkt.linkLen + <u32>(pkt.ipEnd - pkt.l3) + outerLen);
  store<u32>(d + Desc.WIRELEN, pkt.linkLen + pkt.ipTotal + outerLen);
}

/** Bytes of the outer IP header for an inner packet of `family`. */
@inline export function outerHeaderLen(family: u32): u32 {
  return family == 4 ? IPV4_HEADER : IPV6_HEADER;
}

/**
 * Tunnel the packet whose `l2`-byte link header starts at `off` and whose
 * IP header (of `family`, `innerLen` bytes long) is at `inner`: the link
 * header moves outerHeaderLen(family) bytes into the room in front of it and
 * the outer header goes between. Returns the link header's new address.
 */
export function encapsulateAt(off: usize, l2: u32, family: u32, inner: usize, innerLen: u32, src: usize, dst: usize, entropy: u32): usize {
  let outerLen = outerHeaderLen(family);
  let newOff = off - outerLen;
  if (l2 != 0) memory.copy(newOff, off, l2);
  let o = newOff + l2;
  if (family == 4) {
    store<u8>(o, 0x45);
    st8(o + V4_TOS, ld8(inner + V4_TOS));
    st16(o + 2, innerLen + IPV4_HEADER);
    st16(o + 4, nextIpId());
    st16(o + V4_FLAGS_FRAG, ld16(inner + V4_FLAGS_FRAG) & V4_DF); // RFC 2003: copy DF
    st8(o + 8, OUTER_TTL);
    st8(o + 9, PROTO_IPIP);
    store<u16>(o + 10, 0);
    store<u32>(o + 12, raw32(src));
    store<u32>(o + 16, raw32(dst));
    store<u16>(o + 10, <u16>finish(sumBytes(o, IPV4_HEADER, 0)));
  } else {
    let tc = ((ld16(inner) >> 4) & 0xff);
    store<u32>(o, bswap<u32>((6 << 28) | (tc << 20) | (entropy & 0xfffff)));
    st16(o + 4, innerLen);
    st8(o + 6, PROTO_IPV6);
    st8(o + 7, OUTER_TTL);
    memory.copy(o + 8, src, 16);
    memory.copy(o + 24, dst, 16);
  }
  return newOff;
}

/**
 * Strip the outer header of the tunnel packet `pkt` (descriptor d) addressed
 * to us, and parse the inner packet into `pkt` in its place.
 */
export function decapsulate(pkt: Packet, d: usize): Reason {
  if (pkt.isFragment) return Reason.TunnelMalformed;
  let innerFamily: u32 = pkt.proto == PROTO_IPIP ? 4 : 6;
  let off = <usize>load<u32>(d + Desc.OFF);
  let l2 = pkt.linkLen;
  let shift = <u32>(pkt.l4 - off) - l2; // outer IP header and its extension headers
  let kind = pkt.linkProtoKind;
  let protoPtr = pkt.linkProtoPtr;
  let outerFamily = pkt.family;
  let len = load<u32>(d + Desc.LEN);
  let wirelen = load<u32>(d + Desc.WIRELEN);
  if (wirelen < len) wirelen = len;
  // The frame keeps its tail (link-layer padding, if any); the inner packet's
  // own length field bounds it when it is parsed again below.
  let newOff = off + shift;
  if (l2 != 0) memory.copy(newOff, off, l2);
  if (!setLinkFamily(protoPtr + shift, kind, innerFamily, outerFamily)) return Reason.LinkFamilyMismatch;
  store<u32>(d + Desc.OFF, <u32>newOff);
  store<u32>(d + Desc.LEN, len - shift);
  store<u32>(d + Desc.WIRELEN, wirelen - shift);
  if (protoPtr != 0) pkt.linkProtoPtr = protoPtr + shift;
  if (pkt.vnet != 0) pkt.vnet = newOff; // (a partial checksum of a tunnel packet was completed on arrival)
  let r = parseIp(pkt, newOff + l2, len - shift - l2, wirelen - shift - l2, innerFamily);
  if (r != Reason.None) return Reason.TunnelMalformed;
  return Reason.None;
}
