// Proxy-wide settings the host sets before traffic flows: the proxy's own
// addresses (NAT source and tunnel endpoint), the NAT port range, timeouts
// and checksum policy. The packet loop only reads these.

import { raw32 } from "./wire/bytes";

/** Scratch area the host writes addresses into before a control call. */
export const scratch = memory.data(4096, 16);

export let proxy4: u32 = 0; // raw
export let hasProxy4: bool = false;
export const proxy6 = memory.data(16, 16);
export let hasProxy6: bool = false;
/** The IPv4 proxy address as 16 bytes (first 4 significant), for code that works on either family. */
export const proxy4Bytes = memory.data(16, 16);

export let portMin: u32 = 1024;
export let portMax: u32 = 65535;
export let verifyChecksums: bool = false;
export let tunnelMtu: u32 = 1500;

export let timeoutTcpEstablished: u32 = 7440;
export let timeoutTcpTransitory: u32 = 240;
export let timeoutUdp: u32 = 300;
export let timeoutIcmp: u32 = 60;
/** TCP flows opened by a SYN and not yet established, per source address (counter), at most. */
export let halfOpenPerSource: u32 = 512;

/** Address of the proxy's unicast address for `family` (16-byte buffer). */
@inline export function proxyAddrPtr(family: u32): usize {
  return family == 4 ? proxy4Bytes : proxy6;
}

@inline export function hasProxy(family: u32): bool {
  return family == 4 ? hasProxy4 : hasProxy6;
}

/** True when the address at p is this proxy's own address of that family. */
@inline export function isProxyAddr(family: u32, p: usize): bool {
  if (family == 4) return hasProxy4 && raw32(p) == proxy4;
  return hasProxy6 && load<u64>(p) == load<u64>(proxy6) && load<u64>(p + 8) == load<u64>(proxy6 + 8);
}

// ---- exported setters ----

export function scratch_ptr(): usize {
  return scratch;
}

/** Set the proxy address of `family` from the first 4/16 bytes of the scratch area. */
export function set_proxy_address(family: u32): void {
  if (family == 4) {
    proxy4 = raw32(scratch);
    store<u32>(proxy4Bytes, proxy4);
    hasProxy4 = true;
  } else {
    memory.copy(proxy6, scratch, 16);
    hasProxy6 = true;
  }
}

export function set_nat_ports(min: u32, max: u32): void {
  portMin = min;
  portMax = max;
}

/**
 * The NAT port range this proxy's workers share, each with its own slice
 * (set_nat_ports); 0, 0: no sharing. A packet to the proxy's address with a
 * port of another worker's slice was steered to the wrong worker: counted.
 */
export let sharedPortMin: u32 = 0;
export let sharedPortMax: u32 = 0;

export function set_nat_ports_shared(min: u32, max: u32): void {
  sharedPortMin = min;
  sharedPortMax = max;
}

/** True when host-order `port` belongs to another worker's slice of the shared range. */
@inline export function foreignPort(port: u32): bool {
  return port >= sharedPortMin && port <= sharedPortMax && (port < portMin || port > portMax);
}

export function set_verify_checksums(on: bool): void {
  verifyChecksums = on;
}

export function set_tunnel_mtu(mtu: u32): void {
  tunnelMtu = mtu;
}

export function set_timeouts(tcpEstablished: u32, tcpTransitory: u32, udp: u32, icmp: u32): void {
  timeoutTcpEstablished = tcpEstablished;
  timeoutTcpTransitory = tcpTransitory;
  timeoutUdp = udp;
  timeoutIcmp = icmp;
}

export function set_half_open_per_source(n: u32): void {
  halfOpenPerSource = n > 0xffff ? 0xffff : n;
}
