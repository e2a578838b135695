// The load the core's benches share (bench:scale, bench:pair,
// bench:instructions): one affinity group at 203.0.113.10, its targets
// 100.64.0.0 on, and 46-byte packets toward it (a 64-byte Ethernet frame
// without its Ethernet header) from clients whose address is a flow id.

import type { GroupSpec } from "../../src/core/dataplane.js";

/** Bytes of a packet: IPv4 20 + UDP 8 + 18 payload, or TCP 20 + 6. */
export const SMALL_PACKET = 46;
/** The group's address, as the packets' destination bytes. */
export const GROUP_ADDR = [203, 0, 113, 10];

/** One affinity group of `targets` targets at GROUP_ADDR:port. */
export function oneGroup(targets: number, protocol: "udp" | "tcp" = "udp", port = 53): GroupSpec {
  return {
    protocol, address: GROUP_ADDR.join("."), port, policy: "affinity",
    targets: Array.from({ length: targets }, (_, i) => ({ address: `100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, port })),
  };
}

/**
 * A packet to dst:dport from client 0.0.0.0:4000 (the client's address, bytes
 * 12-15, is the writer's to set; the core does not verify checksums): UDP,
 * or TCP with these flags (an ACK acknowledges 1).
 */
export function smallPacket(dst: number[], dport: number, tcpFlags: number | null = null): Uint8Array {
  const p = new Uint8Array(SMALL_PACKET);
  p.set([0x45, 0, 0, SMALL_PACKET, 0, 0, 0x40, 0, 64, tcpFlags === null ? 17 : 6, 0, 0, 0, 0, 0, 0, ...dst]);
  if (tcpFlags === null) p.set([0x0f, 0xa0, dport >> 8, dport & 255, 0, SMALL_PACKET - 20, 0, 0], 20);
  else p.set([0x0f, 0xa0, dport >> 8, dport & 255, 0, 0, 0, 1, 0, 0, 0, tcpFlags & 0x10 ? 1 : 0, 0x50, tcpFlags, 0xff, 0xff], 20);
  return p;
}

/** xorshift32: the same "random live flow" sequence in every run and build. */
export function xorshift32(seed = 0x9e3779b9): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}
