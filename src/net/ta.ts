// Transport addresses (TA = protocol + anycast address + port): a group's
// identity everywhere in pias. This module owns the value type and its key
// text, "tcp 203.0.113.10:80" / "udp [2001:db8::1]:53" / "icmp 203.0.113.10:0",
// which the data plane, the configuration and the control plane all index
// and log groups by.

import { endpointKey } from "./addr.js";

export type Protocol = "tcp" | "udp" | "icmp";
export const PROTOCOLS: readonly Protocol[] = ["tcp", "udp", "icmp"];

/** A group's transport address. ICMP groups always have port 0. */
export interface TransportAddress {
  readonly protocol: Protocol;
  /** 4 (IPv4) or 16 (IPv6) bytes, network order. */
  readonly address: Uint8Array;
  readonly port: number;
}

/** The key text of a TA: "tcp 203.0.113.10:80", "udp [2001:db8::1]:53"; ICMP groups have port 0. */
export function transportAddressKey(protocol: Protocol, address: Uint8Array, port: number): string {
  return `${protocol} ${endpointKey(address, protocol === "icmp" ? 0 : port)}`;
}

/** transportAddressKey of a TransportAddress. */
export function taKey(ta: TransportAddress): string {
  return transportAddressKey(ta.protocol, ta.address, ta.port);
}
