// Group transport addresses (TA = protocol + anycast address + port) and
// endpoints (unicast address + port) as the control plane handles them: the
// value types, their text forms, and the string keys the roles index by.
//
// Keys are the same text the rest of pias uses ("tcp 203.0.113.10:80",
// "192.0.2.11:8080", "[2001:db8::1]:53"), so a control-plane log line and a
// data-plane group key name a group the same way. Nothing here allocates more
// than the key string.

import { PiasError } from "../errors.js";
import { endpointKey, parseEndpoint, tryParseAddress, type Family } from "../net/addr.js";
import { PROTOCOLS, taKey, type Protocol, type TransportAddress } from "../net/ta.js";

export { taKey, type Protocol, type TransportAddress };

/** A unicast address and a UDP port (a proxy's control endpoint, a target's service endpoint). */
export interface Endpoint {
  readonly address: Uint8Array;
  readonly port: number;
}

/** A TA or endpoint text is not valid; the message says why. */
export class TransportAddressError extends PiasError {
  constructor(message: string) {
    super("ETA", message);
  }
}

export function familyOfBytes(address: Uint8Array): Family {
  return address.length === 16 ? 6 : 4;
}

/** "192.0.2.11:8080", "[2001:db8::1]:8080". */
export function epKey(ep: Endpoint): string {
  return endpointKey(ep.address, ep.port);
}

const PROTO_CODE = { tcp: 6, udp: 17, icmp: 1 } as const;

function bytesId(tag: number, a: Uint8Array, port: number): string {
  const hi = port >> 8;
  const lo = port & 255;
  if (a.length === 4) return String.fromCharCode(tag, a[0], a[1], a[2], a[3], hi, lo);
  return String.fromCharCode(tag, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], hi, lo);
}

/**
 * A compact map key for a TA (its bytes as a string). The roles index their
 * tables by it: building it costs a fraction of taKey(), which formats text.
 */
export function taId(ta: TransportAddress): string {
  return bytesId(PROTO_CODE[ta.protocol], ta.address, ta.protocol === "icmp" ? 0 : ta.port);
}

/** A compact map key for an endpoint (see taId). */
export function epId(ep: Endpoint): string {
  return bytesId(0, ep.address, ep.port);
}

const PROTO_OF: Record<number, Protocol> = { 6: "tcp", 17: "udp", 1: "icmp" };

function idBytes(id: string, from: number): Uint8Array {
  const n = id.length - from - 2;
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = id.charCodeAt(from + i);
  return a;
}

/** Inverse of taId. */
export function taFromId(id: string): TransportAddress {
  const n = id.length;
  return { protocol: PROTO_OF[id.charCodeAt(0)], address: idBytes(id, 1), port: (id.charCodeAt(n - 2) << 8) | id.charCodeAt(n - 1) };
}

/** Inverse of epId. */
export function epFromId(id: string): Endpoint {
  const n = id.length;
  return { address: idBytes(id, 1), port: (id.charCodeAt(n - 2) << 8) | id.charCodeAt(n - 1) };
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  if (a.port !== b.port || a.address.length !== b.address.length) return false;
  for (let i = 0; i < a.address.length; i++) if (a.address[i] !== b.address[i]) return false;
  return true;
}

export function sameTa(a: TransportAddress, b: TransportAddress): boolean {
  return a.protocol === b.protocol && sameEndpoint(a, b);
}

/**
 * Parse "PROTO:ADDRESS:PORT" as the command line writes a group:
 * "tcp:203.0.113.10:80", "udp:[2001:db8::1]:53", "icmp:203.0.113.10" (ICMP
 * has no port; ":0" is accepted). Throws TransportAddressError.
 */
export function parseTransportAddress(text: string): TransportAddress {
  const colon = text.indexOf(":");
  const proto = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? "" : text.slice(colon + 1);
  if (!(PROTOCOLS as readonly string[]).includes(proto)) {
    throw new TransportAddressError(`${JSON.stringify(text)} is not a group PROTO:ADDRESS:PORT: protocol must be one of ${PROTOCOLS.join(", ")}`);
  }
  const protocol = proto as Protocol;
  if (protocol === "icmp") {
    const bare = rest.startsWith("[") && rest.endsWith("]") ? rest.slice(1, -1) : rest;
    const addr = tryParseAddress(bare);
    if (addr) return { protocol, address: addr.bytes, port: 0 };
  }
  try {
    const ep = parseEndpoint(rest);
    if (protocol === "icmp" && ep.port !== 0) throw new TransportAddressError("an icmp group has no port (write icmp:ADDRESS)");
    return { protocol, address: ep.bytes, port: ep.port };
  } catch (err) {
    if (err instanceof TransportAddressError) throw new TransportAddressError(`${JSON.stringify(text)}: ${err.message}`);
    throw new TransportAddressError(`${JSON.stringify(text)} is not a group PROTO:ADDRESS:PORT: ${(err as { detail?: string }).detail ?? (err as Error).message}`);
  }
}

/** Inverse of parseTransportAddress: "tcp:203.0.113.10:80". */
export function formatTransportAddress(ta: TransportAddress): string {
  return `${ta.protocol}:${endpointKey(ta.address, ta.port)}`;
}

/** Parse "ADDRESS:PORT" / "[ADDRESS]:PORT" into an Endpoint. Throws TransportAddressError. */
export function parseControlEndpoint(text: string): Endpoint {
  try {
    const ep = parseEndpoint(text);
    return { address: ep.bytes, port: ep.port };
  } catch (err) {
    throw new TransportAddressError((err as Error).message);
  }
}
