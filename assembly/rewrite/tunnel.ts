// IP-in-IP tunnels (RFC 2003, RFC 2473): toward PIAS-aware targets and, in
// the other direction, packets another proxy or a target tunnelled to us.
//
// The packet is never copied: encapsulation moves the link-layer header into
// the headroom in front of the packet and writes the outer IP header between
// it and the unmodified inner packet; decapsulation moves the link header
// forward over the outer IP header.

import { Desc, Reason } from "../shared/abi";
import { ld16, ld8, raw32, st16, st8 } from "../wire/bytes";
import { finish, sumBytes } from "../wire/checksum";
import { IPV4_HEADER, IPV6_HEADER, PROTO_IPIP, PROTO_IPV6, V4_DF, V4_FLAGS_FRAG, V4_TOS } from "../wire/ip";
import { setLinkFamily } from "../wire/link";
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
  let family = pkt.family;
  let outerLen: u32 = family == 4 ? IPV4_HEADER : IPV6_HEADER;
  let off = <usize>load<u32>(d + Desc.OFF);
  let l2 = pkt.linkLen;
  let newOff = off - outerLen;
  if (l2 != 0) memory.copy(newOff, off, l2);
  let o = newOff + l2;
  let inner = pkt.l3;
  let innerLen = pkt.ipTotal;
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
  store<u32>(d + Desc.OFF, <u32>newOff);
  // the frame ends where the inner IP packet does (or where the capture cut it)
  store<u32>(d + Desc.LEN, l2 + <u32>(pkt.ipEnd - inner) + outerLen);
  store<u32>(d + Desc.WIRELEN, l2 + innerLen + outerLen);
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
  let r = parseIp(pkt, newOff + l2, len - shift - l2, wirelen - shift - l2, innerFamily);
  if (r != Reason.None) return Reason.TunnelMalformed;
  return Reason.None;
}
