// The anycast groups of a synthetic trace, and a pias configuration that
// serves them.
//
// The groups are a pure function of `groups` and `ipv6Share` (never of the
// seed), so a configuration written once fits every trace generated with the
// same --groups and --ipv6-share (and no more flows than its capacity). Addresses come only from documentation and
// benchmarking ranges (RFC 5737, RFC 2544, RFC 3849, RFC 6598): a generated
// configuration must never point at somebody's real hosts.
//
// Layout, per address family in use (IPv4 first):
//   - `groups` TCP/UDP groups, 8 per anycast address, services in this order:
//     tcp 80, udp 53, tcp 443, udp 443, tcp 22, udp 123, tcp 8080, udp 5060;
//   - plus one ICMP echo group per anycast address (ICMP has no ports),
//     listed right after that address's TCP/UDP groups.
//   IPv4 anycast addresses: 203.0.113.10 .. 203.0.113.254, then
//   198.18.0.1 .. 198.19.255.254. IPv6: 2001:db8:a::10, 2001:db8:a::11, ...
// Targets (traceConfig): distinct hosts per family, 192.0.2.11 .. 192.0.2.254
// then 100.64.0.1 .., and 2001:db8:b::11 ..; target port = group port + 8000.

import { formatAddress, parseAddress, type Family } from "../net/addr.js";
import { LIMITS } from "../config/types.js";
import { transportAddressKey, type Protocol } from "../net/ta.js";
import {
  familiesInUse,
  resolveTraceOptions,
  TraceOptionsError,
  type TraceOptions,
  type ResolvedTraceOptions,
} from "./options.js";

/** One transport address (group) of the trace. */
export interface TraceGroup {
  readonly protocol: Protocol;
  /** Canonical text of the anycast address. */
  readonly address: string;
  /** 0 for icmp. */
  readonly port: number;
  readonly family: Family;
}

/** The TCP/UDP services of each anycast address, in the order groups fill them. */
export const TRACE_SERVICES: readonly { readonly protocol: "tcp" | "udp"; readonly port: number }[] = Object.freeze([
  { protocol: "tcp", port: 80 },
  { protocol: "udp", port: 53 },
  { protocol: "tcp", port: 443 },
  { protocol: "udp", port: 443 },
  { protocol: "tcp", port: 22 },
  { protocol: "udp", port: 123 },
  { protocol: "tcp", port: 8080 },
  { protocol: "udp", port: 5060 },
]);

export const TRACE_PROXY_ADDRESS = "198.51.100.1";
export const TRACE_PROXY_ADDRESS6 = "2001:db8:ff::1";
/** Targets are legacy servers listening on the group port + this. */
export const TARGET_PORT_OFFSET = 8000;

const PROTO_TCP = 6;
const PROTO_UDP = 17;
/** Internal protocol code of an ICMP group (the IP protocol number differs per family: 1 or 58). */
export const PROTO_ICMP = 1;

const V4_FIRST = 245; // 203.0.113.10 .. .254
const V4_SECOND = 131070; // 198.18.0.1 .. 198.19.255.254

/** IPv4 anycast address number `a` as a 32-bit integer. */
export function anycastV4(a: number): number {
  if (a < V4_FIRST) return (0xcb007100 + 10 + a) >>> 0;
  if (a < V4_FIRST + V4_SECOND) return (0xc6120000 + 1 + (a - V4_FIRST)) >>> 0;
  throw new TraceOptionsError(`too many IPv4 anycast addresses (${a + 1})`);
}

/** Low 32 bits of IPv6 anycast address number `a` (the rest is 2001:db8:a::). */
export function anycastV6Low(a: number): number {
  return (0x10 + a) >>> 0;
}

export const ANYCAST_V6_PREFIX = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0, 0, 0, 0, 0, 0] as const;

/**
 * The groups as typed arrays, for the generator; traceGroups() is the same
 * list as objects. Index order is the order of traceGroups().
 */
export interface GroupLayout {
  readonly count: number;
  /** IP protocol: 6, 17, or PROTO_ICMP. */
  readonly proto: Uint8Array;
  readonly family: Uint8Array;
  /** Anycast address number within its family (see anycastV4 / anycastV6Low). */
  readonly addr: Int32Array;
  readonly port: Uint16Array;
  /** Per family (index 0 = IPv4, 1 = IPv6): group indices of the TCP/UDP groups, and of the ICMP groups (one per address). */
  readonly portGroups: readonly [Int32Array, Int32Array];
  readonly icmpGroups: readonly [Int32Array, Int32Array];
}

export function groupLayout(o: ResolvedTraceOptions): GroupLayout {
  const fams = familiesInUse(o);
  const perAddr = TRACE_SERVICES.length;
  const addrs = Math.ceil(o.groups / perAddr);
  const perFamily = o.groups + addrs;
  const families: Family[] = [];
  if (fams.v4) families.push(4);
  if (fams.v6) families.push(6);
  const count = perFamily * families.length;
  const proto = new Uint8Array(count);
  const family = new Uint8Array(count);
  const addr = new Int32Array(count);
  const port = new Uint16Array(count);
  const portGroups: [Int32Array, Int32Array] = [new Int32Array(0), new Int32Array(0)];
  const icmpGroups: [Int32Array, Int32Array] = [new Int32Array(0), new Int32Array(0)];
  let g = 0;
  for (const fam of families) {
    const pg = new Int32Array(o.groups);
    const ig = new Int32Array(addrs);
    let p = 0;
    for (let a = 0; a < addrs; a++) {
      if (fam === 4) anycastV4(a); // throws past the end of the ranges
      for (let s = 0; s < perAddr && p < o.groups; s++, p++) {
        const svc = TRACE_SERVICES[s];
        proto[g] = svc.protocol === "tcp" ? PROTO_TCP : PROTO_UDP;
        family[g] = fam;
        addr[g] = a;
        port[g] = svc.port;
        pg[p] = g++;
      }
      proto[g] = PROTO_ICMP;
      family[g] = fam;
      addr[g] = a;
      port[g] = 0;
      ig[a] = g++;
    }
    portGroups[fam === 4 ? 0 : 1] = pg;
    icmpGroups[fam === 4 ? 0 : 1] = ig;
  }
  return { count, proto, family, addr, port, portGroups, icmpGroups };
}

/** Anycast address bytes of group `g`. */
export function groupAddressBytes(layout: GroupLayout, g: number): Uint8Array {
  const a = layout.addr[g];
  if (layout.family[g] === 4) {
    const v = anycastV4(a);
    return Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  }
  const v = anycastV6Low(a);
  return Uint8Array.of(...ANYCAST_V6_PREFIX, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
}

function protocolName(p: number): Protocol {
  return p === PROTO_TCP ? "tcp" : p === PROTO_UDP ? "udp" : "icmp";
}

/**
 * The transport addresses the trace sends to: for each family in use (IPv4
 * unless ipv6Share is 1, IPv6 unless it is 0), `groups` TCP/UDP groups plus
 * one ICMP group per anycast address (ceil(groups / 8) of them). Depends only
 * on `groups` and `ipv6Share`. With few flows some groups may get none.
 */
export function traceGroups(options: TraceOptions = {}): TraceGroup[] {
  const layout = groupLayout(resolveTraceOptions(options));
  const out: TraceGroup[] = [];
  for (let g = 0; g < layout.count; g++) {
    out.push({
      protocol: protocolName(layout.proto[g]),
      address: formatAddress(groupAddressBytes(layout, g)),
      port: layout.port[g],
      family: layout.family[g] as Family,
    });
  }
  return out;
}

/** Target host number `j` of a family, as text. */
function targetAddress(family: Family, j: number): string {
  if (family === 4) {
    const v = j < 244 ? 0xc0000200 + 11 + j : 0x64400000 + 1 + (j - 244); // 192.0.2.11.., then 100.64.0.1..
    if (j - 244 >= 4194302) throw new TraceOptionsError("too many IPv4 targets for 100.64.0.0/10");
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const v = 0x11 + j;
  return formatAddress(Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0b, 0, 0, 0, 0, 0, 0, v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255));
}

/** Plain-JSON target of a generated configuration. */
export interface TraceConfigTarget {
  address: string;
  port?: number;
}

/** Plain-JSON group of a generated configuration. */
export interface TraceConfigGroup {
  name: string;
  protocol: Protocol;
  address: string;
  port?: number;
  policy: "affinity";
  targets: TraceConfigTarget[];
}

/** A plain-JSON pias configuration (the input of validateConfig / the config file format). */
export interface TraceConfig {
  proxy: { address: string; address6: string };
  capacity: { flows: number; groups: number; targets: number };
  groups: TraceConfigGroup[];
}

/**
 * A pias configuration serving every group of the trace: each group with
 * `targetsPerGroup` legacy targets (distinct hosts; port = group port + 8000),
 * policy affinity, and capacity for all groups and targets and 25% more flows
 * than the trace has (at least 1024). Throws TraceOptionsError when that would
 * exceed the configuration's limits.
 */
export function traceConfig(options: TraceOptions = {}, targetsPerGroup = 3): TraceConfig {
  const o = resolveTraceOptions(options);
  if (!Number.isInteger(targetsPerGroup) || targetsPerGroup < 0 || targetsPerGroup > 65536) {
    throw new TraceOptionsError(`targetsPerGroup must be an integer 0..65536, got ${String(targetsPerGroup)}`);
  }
  const count = groupLayout(o).count;
  const totalTargets = count * targetsPerGroup;
  if (count > LIMITS.groups[1]) throw new TraceOptionsError(`${count} groups exceed the configuration limit ${LIMITS.groups[1]}`);
  if (totalTargets > LIMITS.targets[1]) {
    throw new TraceOptionsError(`${count} groups x ${targetsPerGroup} targets exceed the configuration limit of ${LIMITS.targets[1]} targets`);
  }
  const list = traceGroups(o);
  const next = { 4: 0, 6: 0 };
  const groups = list.map((ta): TraceConfigGroup => {
    const targets: TraceConfigTarget[] = [];
    for (let t = 0; t < targetsPerGroup; t++) {
      const address = targetAddress(ta.family, next[ta.family]++);
      targets.push(ta.protocol === "icmp" ? { address } : { address, port: ta.port + TARGET_PORT_OFFSET });
    }
    const name = transportAddressKey(ta.protocol, parseAddress(ta.address).bytes, ta.port);
    const group: TraceConfigGroup = { name, protocol: ta.protocol, address: ta.address, policy: "affinity", targets };
    if (ta.protocol !== "icmp") group.port = ta.port;
    return group;
  });
  return {
    proxy: { address: TRACE_PROXY_ADDRESS, address6: TRACE_PROXY_ADDRESS6 },
    capacity: {
      flows: Math.min(LIMITS.flows[1], Math.max(1024, Math.ceil(o.flows * 1.25))),
      groups: Math.max(1, list.length),
      targets: Math.max(1, totalTargets),
    },
    groups,
  };
}
