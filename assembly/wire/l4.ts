// TCP, UDP, ICMP and ICMPv6 header views: field offsets and type numbers.

export const TCP_HEADER: u32 = 20;
export const TCP_SPORT: u32 = 0;
export const TCP_DPORT: u32 = 2;
export const TCP_DATA_OFF: u32 = 12;
export const TCP_FLAGS: u32 = 13;
export const TCP_CSUM: u32 = 16;

export const TCP_FIN: u32 = 0x01;
export const TCP_SYN: u32 = 0x02;
export const TCP_RST: u32 = 0x04;
export const TCP_ACK: u32 = 0x10;

export const UDP_HEADER: u32 = 8;
export const UDP_SPORT: u32 = 0;
export const UDP_DPORT: u32 = 2;
export const UDP_LEN: u32 = 4;
export const UDP_CSUM: u32 = 6;

export const ICMP_HEADER: u32 = 8;
export const ICMP_TYPE: u32 = 0;
export const ICMP_CODE: u32 = 1;
export const ICMP_CSUM: u32 = 2;
export const ICMP_ID: u32 = 4;
/** Next-hop MTU of "fragmentation needed" (ICMPv4 3/4), low half of the 32-bit field. */
export const ICMP_MTU: u32 = 6;
/** MTU of ICMPv6 "packet too big" (32 bits). */
export const ICMP6_MTU: u32 = 4;

export const ICMP4_ECHO_REPLY: u32 = 0;
export const ICMP4_UNREACH: u32 = 3;
export const ICMP4_SOURCE_QUENCH: u32 = 4;
export const ICMP4_REDIRECT: u32 = 5;
export const ICMP4_ECHO_REQUEST: u32 = 8;
export const ICMP4_TIME_EXCEEDED: u32 = 11;
export const ICMP4_PARAM_PROBLEM: u32 = 12;
export const ICMP4_FRAG_NEEDED_CODE: u32 = 4;

export const ICMP6_UNREACH: u32 = 1;
export const ICMP6_PACKET_TOO_BIG: u32 = 2;
export const ICMP6_TIME_EXCEEDED: u32 = 3;
export const ICMP6_PARAM_PROBLEM: u32 = 4;
export const ICMP6_ECHO_REQUEST: u32 = 128;
export const ICMP6_ECHO_REPLY: u32 = 129;

@inline export function isIcmpError(family: u32, type: u32): bool {
  if (family == 4) {
    return type == ICMP4_UNREACH || type == ICMP4_TIME_EXCEEDED || type == ICMP4_PARAM_PROBLEM ||
      type == ICMP4_SOURCE_QUENCH || type == ICMP4_REDIRECT;
  }
  return type >= ICMP6_UNREACH && type <= ICMP6_PARAM_PROBLEM;
}

@inline export function isEchoRequest(family: u32, type: u32): bool {
  return type == (family == 4 ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST);
}

@inline export function isEchoReply(family: u32, type: u32): bool {
  return type == (family == 4 ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY);
}

@inline export function icmpProto(family: u32): u32 { return family == 4 ? 1 : 58; }
