// Scenarios for the differential test of the Wasm core against the reference
// model (src/reference/model.ts): a configuration, then steps — batches of
// packets and control calls. Packets are generated as recipes that are
// resolved only when their batch runs, against what earlier batches output
// (replies to NATed packets, ICMP errors quoting them), so later packets hit
// live flows and bindings.

import fc from "fast-check";
import type { DataPlaneSettings, GroupSpec, TargetSpec } from "../../src/core/dataplane.js";
import type { PolicyName, Protocol } from "../../src/config/types.js";
import { parseAddress } from "../../src/net/addr.js";
import { complement, onesSum, pseudoHeaderSum } from "../../src/net/checksum.js";
import { Link, Vnet, VnetFlag, VnetGso } from "../../assembly/shared/abi.js";
import { buildIcmpError, buildPacket, get16, locate, type PacketSpec } from "../helpers/packets.js";

export const PROXY4 = "198.51.100.1";
export const PROXY6 = "2001:db8:ff::1";
const A = (s: string): Uint8Array => parseAddress(s).bytes;

const POOL = {
  /** The third "TA" is the proxy's own address: a group there can never get a flow. */
  ta: { 4: ["203.0.113.10", "203.0.113.11", PROXY4], 6: ["2001:db8:a::10", "2001:db8:a::11", PROXY6] },
  target: {
    4: ["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14", "192.0.2.15", "192.0.2.16"],
    6: ["2001:db8:b::11", "2001:db8:b::12", "2001:db8:b::13", "2001:db8:b::14", "2001:db8:b::15", "2001:db8:b::16"],
  },
  client: { 4: ["10.0.0.1", "10.0.0.2", "10.1.2.3"], 6: ["2001:db8:c::1", "2001:db8:c::2", "2001:db8:c::3"] },
  router: { 4: "192.0.2.254", 6: "2001:db8:d::fe" },
  otherProxy: { 4: "198.51.100.2", 6: "2001:db8:ff::2" },
  unknown: { 4: "203.0.113.99", 6: "2001:db8:a::99" },
  proxy: { 4: PROXY4, 6: PROXY6 },
} as const;

/** The control port of scenarios that know the PIAS system around the proxy. */
const CONTROL_PORT = 4217;

const POLICY_NAMES: PolicyName[] = ["affinity", "round-robin", "random", "least-load", "proximity"];

// ---------------------------------------------------------------- configuration

export interface TargetChoice {
  addr: number;
  port: number;
  weight: number;
  aware: boolean;
  distance: number;
  /** Index into LABELS (0: no label). */
  label: number;
}

/** Target labels; scope rules send clients in a prefix to one of them. */
const LABELS = [null, "campus", "lab"] as const;

/** Scope prefixes over the client pool: 10.0.0.0/24 holds clients 0 and 1, 10.1.0.0/16 client 2. */
const SCOPE_PREFIXES = { 4: ["10.0.0.0/24", "10.1.0.0/16", "10.0.0.2/32"], 6: ["2001:db8:c::/64", "2001:db8:c::3/128", "2001:db8:c::2/127"] };

export interface ScopeChoice {
  prefix: number;
  label: number;
}

export interface GroupChoice {
  protocol: Protocol;
  family: 4 | 6;
  ta: number;
  port: number;
  policy: PolicyName;
  affinity: "client" | "flow";
  targets: TargetChoice[];
  /** Extra legacy targets at addresses no packet uses: more than 8 member slots make a rendezvous-table group (a ring table past 128). */
  filler: number;
  scopes: ScopeChoice[];
}

const targetChoice: fc.Arbitrary<TargetChoice> = fc.record({
  addr: fc.integer({ min: 0, max: 5 }),
  port: fc.constantFrom(0, 8080),
  weight: fc.integer({ min: 1, max: 4 }),
  aware: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  distance: fc.integer({ min: 0, max: 2 }),
  label: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 2 }) }),
});

const groupChoice: fc.Arbitrary<GroupChoice> = fc.record({
  protocol: fc.constantFrom<Protocol>("tcp", "udp", "icmp"),
  family: fc.constantFrom<4 | 6>(4, 6),
  ta: fc.oneof({ weight: 15, arbitrary: fc.integer({ min: 0, max: 1 }) }, { weight: 1, arbitrary: fc.constant(2) }),
  port: fc.constantFrom(0, 0, 80),
  policy: fc.constantFrom(...POLICY_NAMES),
  affinity: fc.constantFrom<"client" | "flow">("client", "flow"),
  targets: fc.uniqueArray(targetChoice, { minLength: 1, maxLength: 5, selector: (t) => `${t.addr}:${t.port}` }),
  // 6-12 or 60-90 more: a rendezvous table (9..128 member slots); 1030-1040: a ring table
  filler: fc.oneof(
    { weight: 60, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: 6, max: 12 }) },
    { weight: 3, arbitrary: fc.integer({ min: 60, max: 90 }) },
    { weight: 1, arbitrary: fc.integer({ min: 1030, max: 1040 }) },
  ),
  scopes: fc.oneof(
    { weight: 4, arbitrary: fc.constant<ScopeChoice[]>([]) },
    { weight: 1, arbitrary: fc.array(fc.record({ prefix: fc.integer({ min: 0, max: 2 }), label: fc.integer({ min: 1, max: 2 }) }), { maxLength: 3 }) },
  ),
});

function fillerAddress(family: 4 | 6, i: number): string {
  return family === 4 ? `198.18.${i >> 8}.${i & 255}` : `2001:db8:f::${(i + 1).toString(16)}`;
}

const groupIdentity = (g: GroupChoice): string => `${g.protocol}/${g.family}/${g.ta}/${g.protocol === "icmp" ? 0 : g.port}`;

export function groupSpec(g: GroupChoice): GroupSpec {
  const icmp = g.protocol === "icmp";
  return {
    protocol: g.protocol,
    address: POOL.ta[g.family][g.ta],
    port: icmp ? 0 : g.port,
    policy: g.policy,
    affinity: g.affinity,
    targets: g.targets
      .filter((t, i) => !icmp || g.targets.findIndex((u) => u.addr === t.addr) === i) // ICMP targets have no port
      .map((t): TargetSpec => ({
        address: POOL.target[g.family][t.addr],
        port: icmp ? 0 : t.port,
        weight: t.weight,
        aware: t.aware,
        distance: t.distance,
        label: LABELS[t.label],
      }))
      .concat(Array.from({ length: g.filler }, (_, i) => ({
        address: fillerAddress(g.family, i), port: icmp ? 0 : 8080, weight: 1, aware: false, distance: 3, label: null,
      }))),
    scopes: g.scopes.map((r) => ({ prefix: SCOPE_PREFIXES[g.family][r.prefix], label: LABELS[r.label]! })),
  };
}

export interface SettingsChoice {
  /** The clock at the first batch (u32 seconds; near 2^31 and 2^32 the core's signed differences matter). */
  startTime: number;
  natPorts: [number, number];
  timeouts: { tcpEstablished: number; tcpTransitory: number; udp: number; icmp: number };
  flows: number;
  verifyChecksums: boolean;
  randomSeed: number;
  tunnelMtu: number;
  /** Known peers (then IP-in-IP only from them), anycast prefixes (unknown TAs go to the host), control port. */
  system: boolean;
}

const settingsChoice: fc.Arbitrary<SettingsChoice> = fc.record({
  startTime: fc.oneof({ weight: 8, arbitrary: fc.constant(1000) }, { weight: 1, arbitrary: fc.constantFrom(0x7ffffff0, 0xffffff00) }),
  natPorts: fc.constantFrom<[number, number]>([1024, 65535], [1024, 65535], [40000, 40003], [50000, 50000]),
  timeouts: fc.constantFrom(
    { tcpEstablished: 7440, tcpTransitory: 240, udp: 300, icmp: 60 },
    { tcpEstablished: 100, tcpTransitory: 20, udp: 40, icmp: 10 },
  ),
  flows: fc.constantFrom(4, 16, 1024),
  verifyChecksums: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  randomSeed: fc.integer({ min: 0, max: 0xffffffff }),
  tunnelMtu: fc.constantFrom(1500, 1500, 576, 1280),
  system: fc.boolean(),
});

export function settingsOf(s: SettingsChoice): DataPlaneSettings {
  return {
    address: PROXY4,
    address6: PROXY6,
    natPorts: s.natPorts,
    timeouts: s.timeouts,
    capacity: { flows: s.flows, groups: 8, targets: 4096 },
    verifyChecksums: s.verifyChecksums,
    randomSeed: s.randomSeed,
    tunnelMtu: s.tunnelMtu,
    ...(s.system ? {
      peers: [POOL.otherProxy[4], POOL.otherProxy[6]],
      anycastPrefixes: ["203.0.113.0/24", "2001:db8:a::/48"],
      controlPort: CONTROL_PORT,
    } : {}),
  };
}

// ---------------------------------------------------------------- packets

export type RecipeKind = "new" | "again" | "reply" | "icmpFwd" | "icmpRev" | "tunnel" | "stray" | "garbage";

export interface LinkChoice {
  type: "raw" | "eth" | "null-le" | "null-be" | "sll" | "sll2" | "fixed" | "vnet";
  vlans: number;
  tpid: number;
  af6: number;
  /** A link header that does not announce this packet's IP version (or no IP at all). */
  odd: boolean;
}

export interface Mutation {
  kind: "none" | "snap" | "cut" | "version" | "length" | "csum" | "frag" | "byte" | "l4len";
  amount: number;
}

export interface Recipe {
  kind: RecipeKind;
  pick: number;
  client: number;
  sport: number;
  dport: number;
  flags: number;
  variant: number;
  payload: Uint8Array;
  link: LinkChoice;
  mutation: Mutation;
  /** Seconds added to the batch's time (a clock may step back). */
  dt: number;
  garbage: Uint8Array;
}

const linkChoice: fc.Arbitrary<LinkChoice> = fc.record({
  type: fc.oneof(
    { weight: 6, arbitrary: fc.constant("raw" as const) },
    { weight: 4, arbitrary: fc.constant("eth" as const) },
    { weight: 3, arbitrary: fc.constantFrom("null-le" as const, "null-be" as const, "sll" as const, "sll2" as const, "fixed" as const) },
    { weight: 4, arbitrary: fc.constant("vnet" as const) }, // an offloaded TUN's virtio_net_hdr: super-packets, partial checksums
  ),
  vlans: fc.oneof({ weight: 20, arbitrary: fc.constantFrom(0, 0, 1, 2) }, { weight: 1, arbitrary: fc.constantFrom(8, 9) }),
  tpid: fc.integer({ min: 0, max: 2 }),
  af6: fc.integer({ min: 0, max: 3 }),
  odd: fc.oneof({ weight: 30, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});

const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.oneof(
    { weight: 30, arbitrary: fc.constant("none" as const) },
    { weight: 1, arbitrary: fc.constantFrom("snap" as const, "cut" as const, "version" as const, "length" as const) },
    { weight: 2, arbitrary: fc.constantFrom("csum" as const, "frag" as const, "byte" as const, "snap" as const, "l4len" as const) },
  ),
  amount: fc.nat(),
});

const DEFAULT_KINDS: Record<RecipeKind, number> = { new: 6, again: 4, reply: 5, icmpFwd: 1, icmpRev: 1, tunnel: 1, stray: 1, garbage: 1 };

const recipe = (kinds: Record<RecipeKind, number>): fc.Arbitrary<Recipe> => fc.record({
  kind: fc.oneof(...(Object.entries(kinds) as [RecipeKind, number][]).filter(([, w]) => w > 0)
    .map(([k, weight]) => ({ weight, arbitrary: fc.constant(k) }))),
  pick: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.nat()),
  client: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 1, arbitrary: fc.integer({ min: 3, max: 8 }) }),
  sport: fc.oneof(fc.constantFrom(1000, 1001, 2000, 33000), fc.integer({ min: 1, max: 65535 })),
  dport: fc.oneof(fc.constantFrom(80, 443, 53, 8080), fc.integer({ min: 1, max: 65535 })),
  flags: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0x02) },
    { weight: 4, arbitrary: fc.constantFrom(0x10, 0x18, 0x11, 0x04, 0x12, 0x14, 0x01) },
  ),
  variant: fc.nat(),
  payload: fc.oneof(
    { weight: 8, arbitrary: fc.uint8Array({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 500, maxLength: 1400, size: "max" }) }, // past small tunnel MTUs
  ),
  link: linkChoice,
  mutation,
  dt: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, 2, -3) }),
  garbage: fc.uint8Array({ maxLength: 72 }),
});

/** A packet ready for both sides. */
export interface Built {
  data: Uint8Array;
  link: number;
  wirelen?: number;
  linkLen: number;
  /** Well-formed with correct checksums and complete: its forwarded output must verify too. */
  clean: boolean;
  /** A client -> TA packet that may be sent again later. */
  clientSpec?: PacketSpec;
  what: string;
}

/** What earlier batches produced, for packets that refer to live flows. */
export class History {
  clients: PacketSpec[] = [];
  /** NATed outputs P:x -> T:t (raw IP). */
  toTarget: Uint8Array[] = [];
  /** Reverse outputs A:g -> C:c (raw IP). */
  toClient: Uint8Array[] = [];

  static push<T>(list: T[], x: T): void {
    list.push(x);
    if (list.length > 40) list.shift();
  }
}

const recent = <T>(list: T[], pick: number): T => list[list.length - 1 - (pick % list.length)];

function fixV4Header(ip: Uint8Array): void {
  if (ip.length < 20 || ip[0] >>> 4 !== 4) return;
  const hl = Math.min((ip[0] & 15) * 4, ip.length);
  ip[10] = ip[11] = 0;
  const c = complement(onesSum(ip, 0, hl));
  ip[10] = c >>> 8;
  ip[11] = c & 0xff;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

/** Mostly no IPv4 options / IPv6 extension headers; now and then valid ones; rarely troublesome ones (3..5). */
function optionChoice(variant: number): number {
  const v = variant % 64;
  return v < 48 ? 0 : v < 60 ? 1 + (v % 2) : 3 + (v % 3);
}

const IPV4_OPTIONS = [
  undefined,
  new Uint8Array([7, 7, 4, 0, 0, 0, 0, 0]), // record route
  new Uint8Array([1, 1, 1, 1]),
  new Uint8Array([131, 7, 4, 0, 0, 0, 0, 0]), // LSRR
  new Uint8Array([68, 1, 0, 0]), // bad option length
  new Uint8Array([137, 7, 4, 0, 0, 0, 0, 0]), // SSRR
];
const IPV6_EXTENSIONS: (number[] | undefined)[] = [undefined, [0], [60, 43], [0], [43], [0]];

/** Build a client -> TA (or elsewhere) packet from a recipe. */
function clientPacket(r: Recipe, family: 4 | 6, proto: "tcp" | "udp" | "icmp", dst: Uint8Array, dport: number, src?: Uint8Array): PacketSpec {
  const clients = [...POOL.client[family], ...POOL.target[family]];
  const opt = optionChoice(r.variant);
  return {
    family,
    proto,
    src: src ?? A(clients[r.client % clients.length]),
    dst,
    sport: r.sport,
    dport,
    tcpFlags: r.flags,
    payload: r.payload,
    ipOptions: family === 4 ? IPV4_OPTIONS[opt] : undefined,
    extHeaders: family === 6 ? IPV6_EXTENSIONS[opt] : undefined,
    ttl: 64,
    tos: r.variant & 0xfc,
    ipId: r.sport,
    df: (r.variant & 1) === 0,
    udpNoChecksum: family === 4 && proto === "udp" && r.variant % 7 === 3,
  };
}

/** Build an IPv6 packet from a spec and apply the option trouble its variant asks for. */
function buildClient(spec: PacketSpec, variant: number): { ip: Uint8Array; clean: boolean } {
  const ip = buildPacket(spec);
  const opt = optionChoice(variant);
  if (spec.family === 6 && opt >= 3) {
    // 3: Home Address option, 4: routing header with segments left, 5: Jumbo Payload option
    if (opt === 3) ip[42] = 0xc9;
    if (opt === 4) ip[43] = 1;
    if (opt === 5) ip[42] = 0xc2;
    return { ip, clean: false };
  }
  return { ip, clean: !(spec.family === 4 && opt >= 3) };
}

/** The packet a target sends back for an output P:x -> T:t (or a client's packet turned around). */
function turnAround(ip: Uint8Array, r: Recipe): PacketSpec {
  const L = locate(ip);
  const family = L.family;
  const proto = L.proto === 6 ? "tcp" : L.proto === 17 ? "udp" : "icmp";
  const icmp = proto === "icmp";
  let sport = icmp ? get16(ip, L.l4 + 4) : get16(ip, L.l4 + 2);
  let dport = icmp ? 0 : get16(ip, L.l4);
  if (r.variant % 11 === 5) {
    // a reply to a port nobody holds
    if (icmp) sport = (sport + 1) & 0xffff;
    else dport = (dport + 1) & 0xffff;
  }
  return {
    family,
    proto,
    src: L.dst.slice(),
    dst: L.src.slice(),
    sport,
    dport,
    icmpType: icmp ? (family === 4 ? 0 : 129) : undefined,
    // mostly SYN-ACK for a SYN; now and then a bare SYN from the target (it must not reopen a closed flow)
    tcpFlags: r.flags === 0x02 && r.variant % 5 !== 2 ? 0x12 : r.flags,
    payload: r.payload,
    tos: ip[1],
    df: true,
  };
}

function quoteOf(ip: Uint8Array, variant: number): Uint8Array {
  const L = locate(ip);
  const lens = [L.l4 + 8, L.l4 + 8, ip.length, L.l4 + 4, L.l4 + 20, ip.length];
  return ip.subarray(0, Math.min(ip.length, lens[variant % lens.length]));
}

function icmpErrorType(family: 4 | 6, variant: number): [number, number] {
  const types: [number, number][] = family === 4 ? [[3, 4], [11, 0], [3, 3], [12, 0]] : [[2, 0], [1, 4], [3, 0], [4, 1]];
  return types[(variant >>> 3) % types.length];
}

/**
 * A virtio_net_hdr for `ip` as an offloaded TUN would give it, chosen by
 * `variant`: none asked (half the time), a partial transport checksum (the
 * field set to the pseudo-header's sum), or that and GSO by a gso_size small
 * enough to cut larger payloads into several segments; `odd` makes it a bad
 * one (gso_size 0, hdr_len past the end, csum_start outside, a GSO type that
 * does not fit). Writes the partial sum into `ip`.
 */
function vnetHeader(ip: Uint8Array, variant: number, odd: boolean): Uint8Array {
  const h = new Uint8Array(Vnet.SIZE);
  const v = new DataView(h.buffer);
  if (ip.length < 20) return h;
  const at = locate(ip);
  const tcp = at.proto === 6;
  const l4 = tcp || at.proto === 17;
  const kind = odd ? 3 + ((variant >>> 4) % 5) : (variant >>> 4) % 3;
  const family = ip[0] >>> 4 === 6 ? 6 : 4;
  const csumOffset = tcp ? 16 : 6;
  const partial = (): void => {
    h[Vnet.FLAGS] = VnetFlag.NeedsCsum;
    v.setUint16(Vnet.CSUM_START, at.l4, true);
    v.setUint16(Vnet.CSUM_OFFSET, csumOffset, true);
    if (at.l4 + csumOffset + 2 <= ip.length) {
      const len = ip.length - at.l4;
      const sum = pseudoHeaderSum(at.src, at.dst, at.proto, len);
      ip[at.l4 + csumOffset] = sum >>> 8;
      ip[at.l4 + csumOffset + 1] = sum & 0xff;
    }
  };
  const gsoType = tcp ? (family === 4 ? VnetGso.TcpV4 : VnetGso.TcpV6) : VnetGso.UdpL4;
  switch (kind) {
    case 0: return h; // nothing asked
    case 1: if (l4) partial(); return h;
    case 2:
      if (!l4) return h;
      partial();
      h[Vnet.GSO_TYPE] = gsoType;
      v.setUint16(Vnet.GSO_SIZE, [1, 100, 333, 536, 1200][(variant >>> 6) % 5], true);
      v.setUint16(Vnet.HDR_LEN, at.l4 + (tcp ? 20 : 8), true);
      return h;
    case 3: h[Vnet.GSO_TYPE] = gsoType; return h; // gso_size 0
    case 4: v.setUint16(Vnet.HDR_LEN, ip.length + 1 + (variant & 7), true); return h;
    case 5: h[Vnet.FLAGS] = VnetFlag.NeedsCsum; v.setUint16(Vnet.CSUM_START, (variant & 0xffff) % (ip.length + 8), true); v.setUint16(Vnet.CSUM_OFFSET, variant >>> 16 & 31, true); return h;
    case 6: h[Vnet.GSO_TYPE] = [VnetGso.TcpV6, VnetGso.TcpV4, VnetGso.Udp, VnetGso.UdpL4 | VnetGso.Ecn][variant & 3]; v.setUint16(Vnet.GSO_SIZE, 100, true); return h;
    default: h[Vnet.FLAGS] = VnetFlag.DataValid | (variant & 1); h[Vnet.GSO_TYPE] = variant >>> 8 & 0xff; v.setUint16(Vnet.GSO_SIZE, variant >>> 16 & 0xffff, true); return h;
  }
}

function wrapLink(ip: Uint8Array, lc: LinkChoice, variant: number): { data: Uint8Array; link: number; linkLen: number } {
  const family = ip.length > 0 && ip[0] >>> 4 === 6 ? 6 : 4;
  const ethertype = lc.odd ? 0x0806 : family === 6 ? 0x86dd : 0x0800;
  const join = (hdr: number[]): Uint8Array => {
    const out = new Uint8Array(hdr.length + ip.length);
    out.set(hdr);
    out.set(ip, hdr.length);
    return out;
  };
  switch (lc.type) {
    case "raw":
      return { data: ip, link: 101, linkLen: 0 };
    case "eth": {
      const hdr = [0x02, 0, 0, 0, 0, 0xaa, 0x02, 0, 0, 0, 0, 0xbb];
      const tpids = [0x8100, 0x88a8, 0x9100];
      for (let i = 0; i < lc.vlans; i++) {
        const tpid = tpids[(lc.tpid + i) % 3];
        hdr.push(tpid >>> 8, tpid & 0xff, 0, 100 + i);
      }
      hdr.push(ethertype >>> 8, ethertype & 0xff);
      return { data: join(hdr), link: 1, linkLen: hdr.length };
    }
    case "null-le":
    case "null-be": {
      const af = lc.odd ? 99 : family === 4 ? 2 : [10, 24, 28, 30][lc.af6];
      const hdr = lc.type === "null-le" ? [af, 0, 0, 0] : [0, 0, 0, af];
      return { data: join(hdr), link: 0, linkLen: 4 };
    }
    case "sll":
      return { data: join([0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0xaa, 0, 0, ethertype >>> 8, ethertype & 0xff]), link: 113, linkLen: 16 };
    case "sll2":
      return { data: join([ethertype >>> 8, ethertype & 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0xaa, 0, 0]), link: 276, linkLen: 20 };
    case "fixed":
      return { data: ip, link: (family === 6) !== lc.odd ? 229 : 228, linkLen: 0 };
    case "vnet":
      return { data: join([...vnetHeader(ip, variant, lc.odd)]), link: Link.VNET, linkLen: Vnet.SIZE };
  }
  return { data: ip, link: variant % 2 ? 105 : 101, linkLen: 0 };
}

/** IP-in-IP from another proxy to `to` (default: this proxy). */
function encapsulateIp(inner: Uint8Array, outerFamily: 4 | 6, to: Uint8Array, from: Uint8Array = A(POOL.otherProxy[outerFamily])): Uint8Array {
  const innerFamily = inner[0] >>> 4 === 6 ? 6 : 4;
  const proto = innerFamily === 4 ? 4 : 41;
  if (outerFamily === 4) {
    const o = new Uint8Array(20 + inner.length);
    o[0] = 0x45;
    put16(o, 2, o.length);
    o[8] = 64;
    o[9] = proto;
    o.set(from, 12);
    o.set(to, 16);
    fixV4Header(o);
    o.set(inner, 20);
    return o;
  }
  const o = new Uint8Array(40 + inner.length);
  o[0] = 0x60;
  put16(o, 4, inner.length);
  o[6] = proto;
  o[7] = 64;
  o.set(from, 8);
  o.set(to, 24);
  o.set(inner, 40);
  return o;
}

/**
 * IPv6: insert a Fragment header (first fragment, later fragment, or an
 * atomic fragment) after the fixed header, or insert an 8-byte extension
 * header of another type the core steps over (AH, Mobility, HIP, Shim6,
 * experimental).
 */
function v6Extension(ip: Uint8Array, a: number): Uint8Array {
  if (ip.length < 40) return ip;
  const out = new Uint8Array(ip.length + 8);
  out.set(ip.subarray(0, 40));
  out.set(ip.subarray(40), 48);
  const choice = a % 7;
  const types = [44, 44, 44, 51, 135, 139, 253];
  out[40] = ip[6]; // the inserted header's next header: what followed the fixed header
  out[6] = types[choice];
  if (choice < 3) {
    // offset/M: first fragment (0, M), later fragment (185, M=0), atomic (0, 0)
    put16(out, 42, [0x0001, 185 << 3, 0][choice]);
    out.set([0x12, 0x34, 0x56, (a >>> 4) & 0xff], 44);
  }
  // the length byte (out[41]) stays 0: AH is (0 + 2) * 4 = 8 bytes, the others (0 + 1) * 8 = 8 bytes
  put16(out, 4, get16(ip, 4) + 8);
  return out;
}

function mutate(ip: Uint8Array, m: Mutation): { ip: Uint8Array; clean: boolean } {
  if (m.kind === "none" || m.kind === "snap" || m.kind === "cut" || ip.length < 20) return { ip, clean: m.kind === "none" };
  const out = ip.slice();
  const v4 = out[0] >>> 4 === 4;
  const a = m.amount;
  switch (m.kind) {
    case "version":
      out[0] = (out[0] & 0x0f) | ([0, 5, 7, 15, v4 ? 6 : 4][a % 5] << 4);
      if (v4) fixV4Header(out);
      break;
    case "length": {
      const delta = [-30, -4, -1, 1, 4, 100, -8][a % 7];
      if (v4) {
        put16(out, 2, (get16(out, 2) + delta) & 0xffff);
        fixV4Header(out);
      } else if (out.length >= 40) {
        put16(out, 4, (get16(out, 4) + delta) & 0xffff);
      }
      break;
    }
    case "csum": {
      const L = locate(out);
      const at = v4 && a % 3 === 0 ? 10 : L.proto === 6 ? L.l4 + 16 : L.proto === 17 ? L.l4 + 6 : L.l4 + 2;
      if (at + 1 < out.length) out[at + 1] ^= 1 + (a % 255);
      break;
    }
    case "frag":
      if (v4) {
        put16(out, 6, a % 2 ? 0x2000 : 0x2000 | (1 + (a % 100)));
        fixV4Header(out);
      } else {
        return { ip: v6Extension(out, a), clean: false };
      }
      break;
    case "byte":
      out[a % out.length] ^= 1 + ((a >>> 8) % 255);
      break;
    case "l4len": {
      // the transport header's own length around the segment's end: a TCP data offset or a UDP length a step
      // short of it, at it, or past it (those past it the shape check, assembly/parse.ts, must reject)
      const L = locate(out);
      const segment = out.length - L.l4;
      if (L.proto === 6 && segment >= 20) {
        const words = Math.min(15, Math.max(0, (segment >> 2) + [-1, 0, 1, 2][a % 4]));
        out[L.l4 + 12] = (words << 4) | (out[L.l4 + 12] & 0x0f);
      } else if (L.proto === 17 && segment >= 8) {
        put16(out, L.l4 + 4, (segment + [-1, 0, 1, 4, -8][a % 5]) & 0xffff);
      }
      break;
    }
  }
  return { ip: out, clean: false };
}

/** Resolve a recipe into a packet, given the configuration and what earlier batches produced. */
export function resolve(r: Recipe, groups: GroupChoice[], h: History): Built {
  const g = groups[r.pick % groups.length];
  const family = g.family;
  let ip: Uint8Array;
  let clean = true;
  let clientSpec: PacketSpec | undefined;
  let what: string = r.kind;
  let kind = r.kind;
  if (kind === "again" && h.clients.length === 0) kind = "new";
  if (kind === "reply" && h.toTarget.length === 0) kind = "new";
  if (kind === "icmpFwd" && h.toTarget.length === 0) kind = "new";
  if (kind === "icmpRev" && h.toClient.length === 0 && h.clients.length === 0) kind = "new";
  switch (kind) {
    case "new":
    case "tunnel": {
      const dport = g.protocol === "icmp" ? 0 : g.port !== 0 ? g.port : r.dport;
      const spec = clientPacket(r, family, g.protocol, A(POOL.ta[family][g.ta]), dport);
      const b = buildClient(spec, r.variant);
      ip = b.ip;
      clean = b.clean;
      if (clean) clientSpec = spec;
      if (kind === "tunnel") {
        const outerFamily: 4 | 6 = r.variant % 5 === 1 ? (family === 4 ? 6 : 4) : family;
        const to = r.variant % 13 === 7 ? A(POOL.unknown[outerFamily]) : A(POOL.proxy[outerFamily]);
        // from a peer proxy, or (now and then) from a stranger
        ip = encapsulateIp(ip, outerFamily, to, r.variant % 3 === 0 ? A(POOL.router[outerFamily]) : A(POOL.otherProxy[outerFamily]));
        clientSpec = undefined;
        what = `tunnel ${outerFamily}in${family === 4 ? 4 : 6}`;
      }
      break;
    }
    case "again": {
      const old = recent(h.clients, r.pick);
      const spec: PacketSpec = { ...old, tcpFlags: r.flags, payload: r.payload };
      ip = buildPacket(spec);
      clientSpec = spec;
      break;
    }
    case "reply":
      ip = buildPacket(turnAround(recent(h.toTarget, r.pick), r));
      break;
    case "icmpFwd": {
      const out = recent(h.toTarget, r.pick);
      const fam = out[0] >>> 4 === 6 ? 6 : 4;
      const [type, code] = icmpErrorType(fam, r.variant);
      const to = r.variant % 9 === 4 ? A(POOL.unknown[fam]) : A(POOL.proxy[fam]);
      ip = buildIcmpError(fam, A(POOL.router[fam]), to, type, code, quoteOf(out, r.variant), 1400);
      break;
    }
    case "icmpRev": {
      // about A:g -> C:c: a reply output, or (for aware targets, which answer directly) a client packet turned around
      const fromClient = h.toClient.length === 0 || (h.clients.length > 0 && r.variant % 3 === 0);
      const quoted = fromClient ? buildPacket(turnAround(buildPacket(recent(h.clients, r.pick)), { ...r, variant: 0 })) : recent(h.toClient, r.pick);
      const fam = quoted[0] >>> 4 === 6 ? 6 : 4;
      const [type, code] = icmpErrorType(fam, r.variant);
      const to = r.variant % 9 === 4 ? A(POOL.proxy[fam]) : locate(quoted).src;
      ip = buildIcmpError(fam, A(POOL.router[fam]), to, type, code, quoteOf(quoted, r.variant), 0);
      break;
    }
    case "stray": {
      const v = r.variant % 7;
      const dst = v === 1 ? A(POOL.proxy[family]) : A(POOL.unknown[family]);
      const spec = clientPacket(r, family, g.protocol, dst, r.dport);
      if (v === 2) spec.icmpType = family === 4 ? 13 : 133; // timestamp / router solicitation
      if (v === 3) spec.icmpType = family === 4 ? 0 : 129; // an echo reply nobody asked for
      if (v >= 2 && v <= 3) {
        spec.proto = "icmp";
        spec.dst = A(POOL.ta[family][g.ta]);
      }
      ip = buildPacket(spec);
      if (v === 4) ip[family === 4 ? 9 : 6] = 47; // GRE: not for the proxy
      if (v === 5) ip = buildIcmpError(family, A(POOL.router[family]), A(POOL.proxy[family]), family === 4 ? 3 : 1, 1, ip.subarray(0, 10));
      if (v === 4 && family === 4) fixV4Header(ip);
      if (v === 6) {
        // a control message to a TA (or the unknown address) on the control port
        ip = buildPacket({ ...spec, proto: "udp", dport: CONTROL_PORT, dst: r.variant % 2 ? A(POOL.ta[family][g.ta]) : A(POOL.unknown[family]) });
      }
      what = `stray ${v}`;
      break;
    }
    default: {
      const w = wrapLink(r.garbage, r.link, r.variant);
      // now and then a link type the core does not parse
      return { ...w, link: r.variant % 5 === 0 ? 105 : w.link, clean: false, what: "garbage" };
    }
  }
  const mut = mutate(ip, r.mutation);
  clean = clean && mut.clean;
  const w = wrapLink(mut.ip, r.link, r.variant);
  let data = w.data;
  let wirelen: number | undefined;
  if (r.mutation.kind === "snap" || r.mutation.kind === "cut") {
    // a snaplen cut mostly takes only payload (the packet stays rewritable); a cut packet loses more
    const k = 1 + (r.mutation.amount % Math.min(data.length, r.mutation.kind === "snap" ? 14 : 60));
    if (r.mutation.kind === "snap") wirelen = data.length;
    data = data.slice(0, data.length - k);
  }
  if (r.link.odd) clean = false;
  if (w.link === Link.VNET && (data[0] !== 0 || data[1] !== 0)) clean = false; // a partial checksum or super-packet: not a plain packet
  return { data, link: w.link, wirelen, linkLen: w.linkLen, clean, clientSpec: clean ? clientSpec : undefined, what: `${what} ${r.mutation.kind}` };
}

// ---------------------------------------------------------------- steps

export interface ControlChoice {
  op: "down" | "up" | "remove" | "add" | "weight" | "policy" | "removeGroup" | "readdGroup" | "expire" | "pending";
  g: number;
  t: number;
  value: number;
  policy: PolicyName;
  affinity: "client" | "flow";
  aware: boolean;
}

const controlChoice = (churn: boolean): fc.Arbitrary<ControlChoice> => fc.record({
  op: churn
    ? fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("down" as const, "down" as const, "up" as const) },
      { weight: 3, arbitrary: fc.constantFrom("add" as const, "remove" as const, "weight" as const, "policy" as const, "expire" as const) },
      { weight: 1, arbitrary: fc.constantFrom("removeGroup" as const, "readdGroup" as const, "pending" as const) },
    )
    : fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom("down" as const, "up" as const, "add" as const, "remove" as const) },
      { weight: 2, arbitrary: fc.constantFrom("weight" as const, "policy" as const, "expire" as const) },
      { weight: 1, arbitrary: fc.constantFrom("removeGroup" as const, "readdGroup" as const, "pending" as const) },
    ),
  g: fc.nat(),
  t: fc.nat(),
  value: fc.integer({ min: 0, max: 500 }),
  policy: fc.constantFrom(...POLICY_NAMES),
  affinity: fc.constantFrom<"client" | "flow">("client", "flow"),
  aware: fc.boolean(),
});

export interface BatchStep {
  kind: "batch";
  /** Seconds the clock advances before this batch. */
  advance: number;
  packets: Recipe[];
  reflect: boolean;
}

export type Step = BatchStep | { kind: "control"; control: ControlChoice };

export interface Scenario {
  settings: SettingsChoice;
  groups: GroupChoice[];
  steps: Step[];
}

export interface ScenarioOptions {
  reflect?: fc.Arbitrary<boolean>;
  maxSteps?: number;
  maxPackets?: number;
  /** Many control calls between short batches of packets of existing flows (re-pinning, TargetDown). */
  churn?: boolean;
  /** Big batches of mostly new flows, and clocks that jump past the timeouts (more records than one sweep covers). */
  crowd?: boolean;
}

export function scenario(o: ScenarioOptions = {}): fc.Arbitrary<Scenario> {
  const kinds = o.churn ? { ...DEFAULT_KINDS, new: 3, again: 8, reply: 4, stray: 0, garbage: 0 }
    : o.crowd ? { ...DEFAULT_KINDS, new: 12, again: 3, reply: 3, stray: 0, garbage: 0 } : DEFAULT_KINDS;
  const batch: fc.Arbitrary<BatchStep> = fc.record({
    kind: fc.constant("batch" as const),
    advance: o.churn ? fc.constantFrom(0, 1, 2, 5) : o.crowd ? fc.constantFrom(0, 1, 12, 45, 250)
      : fc.constantFrom(0, 1, 3, 8, 15, 25, 45, 70, 250, 400, 8000),
    packets: fc.array(recipe(kinds), { minLength: o.crowd ? 24 : 1, maxLength: o.maxPackets ?? 12 }),
    reflect: o.reflect ?? fc.boolean(),
  });
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: o.churn ? 2 : 3, arbitrary: batch },
    { weight: o.churn ? 2 : 1, arbitrary: controlChoice(o.churn ?? false).map((control) => ({ kind: "control" as const, control })) },
  );
  return fc.record({
    settings: settingsChoice,
    groups: fc.uniqueArray(groupChoice, { minLength: 1, maxLength: 3, selector: groupIdentity }),
    steps: fc.array(step, { minLength: 1, maxLength: o.maxSteps ?? 8 }),
  });
}

/** A target spec for the "add" control call. */
export function addedTarget(g: GroupChoice, c: ControlChoice): { address: string; port: number; weight: number; aware: boolean; distance: number } {
  return {
    address: POOL.target[g.family][c.t % 6],
    port: g.protocol === "icmp" ? 0 : c.value % 2 ? 8080 : 0,
    weight: 1 + (c.value % 4),
    aware: c.aware,
    distance: c.value % 3,
  };
}
