// The overlay's UDP tunnel: wrap a parsed IPv4 packet in IPv4 + UDP + an
// overlay frame (frame.ts), and take a received frame's inner packet out.
//
// Like the IP-in-IP tunnel (rewrite/tunnel.ts), the packet never moves:
// wrapping writes the outer headers into the headroom in front of it (the
// link-layer header moves in front of them), unwrapping moves the link-layer
// header forward over them. The UDP checksum is 0 (allowed over IPv4): the
// frame's tag covers every byte. No allocation.

import { Desc, OverlayFrame, Reason } from "../shared/abi";
import { ld16, ld8, st16, st8 } from "../wire/bytes";
import { finish, sumBytes } from "../wire/checksum";
import { IPV4_HEADER, PROTO_UDP, V4_DF, V4_FLAGS_FRAG, V4_TOS } from "../wire/ip";
import { UDP_HEADER, UDP_LEN } from "../wire/l4";
import { Packet } from "../packet";
import { parseIp } from "../parse";
import { nextIpId } from "../rewrite/tunnel";
import { seal } from "./frame";

const OUTER_TTL: u32 = 64;

/**
 * Wrap the parsed packet `pkt` (descriptor d) in a frame of `kind` from
 * src:sport to dst:dport (raw IPv4 addresses and ports), sent by `sender`
 * (raw address, 0 for none) at `now`, with OverlayFlag `flags`. The outer
 * header copies DF; the frame drops bytes past the inner packet's own length
 * (link-layer padding).
 */
export function wrap(pkt: Packet, d: usize, kind: u32, src: u32, sport: u32, dst: u32, dport: u32, sender: u32, now: u32, flags: u32 = 0): void {
  let off = <usize>load<u32>(d + Desc.OFF);
  let l2 = pkt.linkLen;
  let outer: u32 = OverlayFrame.OVERHEAD;
  let newOff = off - outer;
  if (l2 != 0) memory.copy(newOff, off, l2);
  if (pkt.linkProtoPtr != 0) pkt.linkProtoPtr -= outer;
  let o = newOff + l2;
  let inner = pkt.l3;
  let innerLen = pkt.ipTotal;
  let frameLen = <u32>OverlayFrame.HEADER + innerLen;
  store<u8>(o, 0x45);
  st8(o + V4_TOS, ld8(inner + V4_TOS));
  st16(o + 2, innerLen + outer);
  st16(o + 4, nextIpId());
  st16(o + V4_FLAGS_FRAG, ld16(inner + V4_FLAGS_FRAG) & V4_DF);
  st8(o + 8, OUTER_TTL);
  st8(o + 9, PROTO_UDP);
  store<u16>(o + 10, 0);
  store<u32>(o + 12, src);
  store<u32>(o + 16, dst);
  store<u16>(o + 10, <u16>finish(sumBytes(o, IPV4_HEADER, 0)));
  let u = o + IPV4_HEADER;
  store<u16>(u, <u16>sport);
  store<u16>(u + 2, <u16>dport);
  st16(u + UDP_LEN, UDP_HEADER + frameLen);
  store<u16>(u + 6, 0);
  seal(u + UDP_HEADER, frameLen, kind, sender, now, flags);
  let len = l2 + outer + innerLen;
  store<u32>(d + Desc.OFF, <u32>newOff);
  store<u32>(d + Desc.LEN, len);
  store<u32>(d + Desc.WIRELEN, len);
}

/**
 * The frame of the UDP datagram `pkt` (descriptor d) has been opened: strip
 * the outer IPv4 and UDP headers and the frame header, and parse the inner
 * packet into `pkt` in its place. It must be IPv4.
 */
export function unwrap(pkt: Packet, d: usize): Reason {
  let off = <usize>load<u32>(d + Desc.OFF);
  let l2 = pkt.linkLen;
  let shift = pkt.ipHdrLen + UDP_HEADER + <u32>OverlayFrame.HEADER;
  let frameEnd = pkt.l4 + <usize>ld16(pkt.l4 + UDP_LEN);
  let newOff = off + shift;
  if (l2 != 0) memory.copy(newOff, off, l2);
  let len = <u32>(frameEnd - newOff);
  if (pkt.linkProtoPtr != 0) pkt.linkProtoPtr += shift;
  store<u32>(d + Desc.OFF, <u32>newOff);
  store<u32>(d + Desc.LEN, len);
  store<u32>(d + Desc.WIRELEN, len);
  if (parseIp(pkt, newOff + l2, len - l2, len - l2, 4) != Reason.None) return Reason.OverlayMalformed;
  return Reason.None;
}
