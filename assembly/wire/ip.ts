// IPv4 and IPv6 header views: field offsets and the few accessors the data
// plane needs. Lengths are validated by parse.ts before any of these is used.

import { ld16, ld8 } from "./bytes";

export const IPV4_HEADER: u32 = 20;
export const IPV6_HEADER: u32 = 40;

// IPv4 field offsets.
export const V4_VER_IHL: u32 = 0;
export const V4_TOS: u32 = 1;
export const V4_TOTAL_LEN: u32 = 2;
export const V4_ID: u32 = 4;
export const V4_FLAGS_FRAG: u32 = 6;
export const V4_TTL: u32 = 8;
export const V4_PROTO: u32 = 9;
export const V4_CSUM: u32 = 10;
export const V4_SRC: u32 = 12;
export const V4_DST: u32 = 16;

export const V4_DF: u32 = 0x4000;
export const V4_MF: u32 = 0x2000;
export const V4_FRAG_MASK: u32 = 0x1fff;

// IPv6 field offsets.
export const V6_PAYLOAD_LEN: u32 = 4;
export const V6_NEXT: u32 = 6;
export const V6_HOP_LIMIT: u32 = 7;
export const V6_SRC: u32 = 8;
export const V6_DST: u32 = 24;

// Protocol numbers.
export const PROTO_HOPOPTS: u32 = 0;
export const PROTO_ICMP: u32 = 1;
export const PROTO_IPIP: u32 = 4;
export const PROTO_TCP: u32 = 6;
export const PROTO_UDP: u32 = 17;
export const PROTO_IPV6: u32 = 41;
export const PROTO_ROUTING: u32 = 43;
export const PROTO_FRAGMENT: u32 = 44;
export const PROTO_ESP: u32 = 50;
export const PROTO_AH: u32 = 51;
export const PROTO_ICMPV6: u32 = 58;
export const PROTO_NONE: u32 = 59;
export const PROTO_DSTOPTS: u32 = 60;
export const PROTO_MOBILITY: u32 = 135;
export const PROTO_HIP: u32 = 139;
export const PROTO_SHIM6: u32 = 140;
export const PROTO_EXP1: u32 = 253;
export const PROTO_EXP2: u32 = 254;

@inline export function srcOffset(family: u32): u32 { return family == 4 ? V4_SRC : V6_SRC; }
@inline export function dstOffset(family: u32): u32 { return family == 4 ? V4_DST : V6_DST; }
@inline export function addrLen(family: u32): u32 { return family == 4 ? 4 : 16; }
@inline export function version(ip: usize): u32 { return ld8(ip) >> 4; }
@inline export function v4HeaderLen(ip: usize): u32 { return (ld8(ip) & 15) << 2; }
@inline export function v4TotalLen(ip: usize): u32 { return ld16(ip + V4_TOTAL_LEN); }
@inline export function v6PayloadLen(ip: usize): u32 { return ld16(ip + V6_PAYLOAD_LEN); }

/** True for IPv6 next-header values that are extension headers the walk steps over. */
export function isV6Extension(nh: u32): bool {
  return nh == PROTO_HOPOPTS || nh == PROTO_ROUTING || nh == PROTO_FRAGMENT || nh == PROTO_DSTOPTS ||
    nh == PROTO_AH || nh == PROTO_MOBILITY || nh == PROTO_HIP || nh == PROTO_SHIM6 ||
    nh == PROTO_EXP1 || nh == PROTO_EXP2;
}
