// The `bgp` section of the configuration (pias run only): its normalised
// type, defaults and validator. pias announces its anycast prefixes over BGP
// through BIRD 2, either a BIRD it runs itself ("managed") or an operator's
// BIRD reached through its control socket ("external"). Validation only:
// nothing here talks to BIRD.

import { formatPrefix, parsePrefix, prefixContains, type Family, type Prefix } from "../net/addr.js";
import type { DaemonConfig, ProxyConfig } from "./types.js";
import {
  address, describeValue, fail, familyName, has, integer, list, object, optBoolean, optInteger, quote, text, type ConfigPath,
} from "./values.js";

export interface BgpNeighborConfig {
  /** Canonical text of the neighbour's address (IPv4 or IPv6). */
  readonly address: string;
  readonly family: Family;
  /** The neighbour's AS number. */
  readonly as: number;
  /** TCP-MD5 password (RFC 2385), or null. */
  readonly password: string | null;
  /** TTL of a session to a neighbour that is not on a connected network (BIRD's `multihop`), or null: directly connected. */
  readonly multihop: number | null;
  /** The interface a link-local IPv6 neighbour is on, or null. */
  readonly interface: string | null;
}

/** One prefix pias announces. */
export interface BgpPrefixConfig {
  /** Canonical prefix text, e.g. "203.0.113.0/24". */
  readonly prefix: string;
  readonly family: Family;
  /**
   * true: withdrawn while no target of the prefix's groups is up, when those
   * groups have health checks. false: announced whenever pias serves.
   */
  readonly withdrawWhenNoTargets: boolean;
}

export interface BgpConfig {
  /** "managed": pias runs its own BIRD 2; otherwise the control socket path of an operator's BIRD. */
  readonly bird: "managed" | string;
  /** Managed: this proxy's AS number (external: null, the operator's BIRD holds the sessions). */
  readonly localAs: number | null;
  /** Managed: the BGP router id (an IPv4 address). */
  readonly routerId: string | null;
  /** Managed: the BGP sessions. */
  readonly neighbors: readonly BgpNeighborConfig[];
  /** Managed: BGP hold time, seconds (keepalives every third of it). */
  readonly holdTime: number;
  /** Managed: BFD on every session (BIRD's bfd protocol, 100 ms x 3). */
  readonly bfd: boolean;
  readonly announce: readonly BgpPrefixConfig[];
  /** Managed: communities added to every announcement, "65001:100" (standard) or "65001:1:2" (large). */
  readonly communities: readonly string[];
  /** On SIGTERM: announce with GRACEFUL_SHUTDOWN (65535:0) this long before withdrawing. */
  readonly gracefulShutdownMs: number;
  /** Managed: a file of BIRD configuration included at the end of the generated one, or null. */
  readonly birdConfig: string | null;
}

const BGP_KEYS = [
  "bird", "localAs", "routerId", "neighbors", "holdTime", "bfd", "announce", "communities", "gracefulShutdownMs", "birdConfig",
] as const;
const MANAGED_ONLY = ["localAs", "routerId", "neighbors", "holdTime", "bfd", "communities", "birdConfig"] as const;
const NEIGHBOR_KEYS = ["address", "as", "password", "multihop", "interface"] as const;
const PREFIX_KEYS = ["prefix", "withdrawWhenNoTargets"] as const;

export const DEFAULT_BGP = Object.freeze({
  bird: "managed",
  holdTime: 9,
  bfd: false,
  withdrawWhenNoTargets: true,
});

export const BGP_LIMITS = Object.freeze({
  as: [1, 4294967295],
  /** RFC 4271: 0 (no keepalives, which pias does not allow) or at least 3 seconds. */
  holdTime: [3, 65535],
  multihop: [1, 255],
  /** Linux TCP_MD5SIG_MAXKEYLEN. */
  password: 80,
  gracefulShutdownMs: [0, 3600000],
} as const);

/** RFC 8326: the community pias adds itself while it shuts down. */
export const GRACEFUL_SHUTDOWN = "65535:0";

function asNumber(v: unknown, path: ConfigPath): number {
  return integer(v, path, BGP_LIMITS.as);
}

function prefixOf(v: unknown, path: ConfigPath): Prefix {
  const t = text(v, path);
  try {
    return parsePrefix(t);
  } catch (e) {
    fail(path, (e as Error).message);
  }
}

/** "65001:100" (two 16-bit numbers) or "65001:1:2" (a large community: three 32-bit numbers), canonical text. */
function community(v: unknown, path: ConfigPath): string {
  const t = typeof v === "string" ? v : fail(path, `must be a community string "ASN:VALUE" or "ASN:X:Y", got ${describeValue(v)}`);
  const parts = t.split(":");
  const max = parts.length === 2 ? 65535 : 4294967295;
  if ((parts.length !== 2 && parts.length !== 3) || !parts.every((p) => /^(0|[1-9][0-9]{0,9})$/.test(p) && Number(p) <= max)) {
    fail(path, `${quote(t)} is not a community: "A:B" with A, B 0..65535, or a large community "A:B:C" with each 0..4294967295`);
  }
  const canonical = parts.map(Number).join(":");
  if (canonical === GRACEFUL_SHUTDOWN) fail(path, `${GRACEFUL_SHUTDOWN} is GRACEFUL_SHUTDOWN (RFC 8326): pias adds it itself while it shuts down`);
  return canonical;
}

function validateNeighbor(v: unknown, path: ConfigPath): BgpNeighborConfig {
  const o = object(v, path, NEIGHBOR_KEYS);
  if (!has(o, "address")) fail([...path, "address"], "required: the neighbour's IPv4 or IPv6 address");
  if (!has(o, "as")) fail([...path, "as"], "required: the neighbour's AS number");
  const addr = address(o.address, [...path, "address"]);
  let password: string | null = null;
  if (has(o, "password")) {
    password = text(o.password, [...path, "password"]);
    if (password.length > BGP_LIMITS.password) fail([...path, "password"], `is ${password.length} characters long, TCP-MD5 allows at most ${BGP_LIMITS.password}`);
    if (!/^[\x20-\x7e]+$/.test(password) || /["\\]/.test(password)) fail([...path, "password"], "must be printable ASCII without \" or \\");
  }
  const linkLocal = addr.family === 6 && addr.bytes[0] === 0xfe && (addr.bytes[1] & 0xc0) === 0x80;
  let iface: string | null = null;
  if (has(o, "interface")) {
    iface = text(o.interface, [...path, "interface"]);
    if (iface.length > 15 || !/^[A-Za-z0-9_.@-]+$/.test(iface)) fail([...path, "interface"], `${quote(iface)} is not an interface name`);
  } else if (linkLocal) {
    fail([...path, "interface"], `required: ${addr.text} is link-local, so BIRD needs the interface it is on`);
  }
  const multihop = has(o, "multihop") ? integer(o.multihop, [...path, "multihop"], BGP_LIMITS.multihop) : null;
  if (multihop !== null && linkLocal) fail([...path, "multihop"], `${addr.text} is link-local: a multihop session cannot use it`);
  return { address: addr.text, family: addr.family, as: asNumber(o.as, [...path, "as"]), password, multihop, interface: iface };
}

function validatePrefix(v: unknown, path: ConfigPath): BgpPrefixConfig {
  if (typeof v === "string") {
    const p = prefixOf(v, path);
    return { prefix: formatPrefix(p), family: p.family, withdrawWhenNoTargets: DEFAULT_BGP.withdrawWhenNoTargets };
  }
  const o = object(v, path, PREFIX_KEYS);
  if (!has(o, "prefix")) fail([...path, "prefix"], `required, e.g. "203.0.113.0/24"`);
  const p = prefixOf(o.prefix, [...path, "prefix"]);
  return { prefix: formatPrefix(p), family: p.family, withdrawWhenNoTargets: optBoolean(o, "withdrawWhenNoTargets", path, DEFAULT_BGP.withdrawWhenNoTargets) };
}

/** Validate the `bgp` section; `proxy` and `daemon` give the defaults (router id, prefixes, graceful phase). */
export function validateBgp(v: unknown, proxy: ProxyConfig, daemon: DaemonConfig): BgpConfig {
  const path = ["bgp"];
  const o = object(v, path, BGP_KEYS);

  let bird: string = DEFAULT_BGP.bird;
  if (has(o, "bird")) {
    bird = text(o.bird, ["bgp", "bird"]);
    if (bird !== "managed" && !bird.startsWith("/")) {
      fail(["bgp", "bird"], `${quote(bird)} is neither "managed" nor the absolute path of a BIRD control socket (e.g. /run/bird/bird.ctl)`);
    }
  }
  const managed = bird === "managed";
  if (!managed) {
    const k = MANAGED_ONLY.find((key) => has(o, key));
    if (k !== undefined) fail(["bgp", k], `only with bird: managed; with an external BIRD the sessions, communities and options are in its own configuration`);
  }

  const anycast = proxy.anycastPrefixes.map((t) => parsePrefix(t));
  const announce: BgpPrefixConfig[] = [];
  if (has(o, "announce")) {
    list(o.announce, ["bgp", "announce"]).forEach((a, i) => {
      const p = ["bgp", "announce", i];
      const entry = validatePrefix(a, p);
      if (announce.some((x) => x.prefix === entry.prefix)) fail(p, `duplicate prefix ${entry.prefix}`);
      const parsed = parsePrefix(entry.prefix);
      if (anycast.length > 0 && !anycast.some((q) => q.family === parsed.family && q.length <= parsed.length && prefixContains(q, parsed.bytes))) {
        fail(p, `${entry.prefix} is not inside proxy.anycastPrefixes (${proxy.anycastPrefixes.join(", ")}): pias would attract traffic it does not serve`);
      }
      announce.push(entry);
    });
  } else {
    for (const prefix of proxy.anycastPrefixes) {
      announce.push({ prefix, family: parsePrefix(prefix).family, withdrawWhenNoTargets: DEFAULT_BGP.withdrawWhenNoTargets });
    }
  }
  if (announce.length === 0) fail(["bgp", "announce"], "required: nothing to announce (proxy.anycastPrefixes is empty too)", has(o, "announce") ? ["bgp", "announce"] : ["bgp"]);

  const gracefulShutdownMs = optInteger(o, "gracefulShutdownMs", path, BGP_LIMITS.gracefulShutdownMs, daemon.drainMs);
  if (!managed) {
    return { bird, localAs: null, routerId: null, neighbors: [], holdTime: DEFAULT_BGP.holdTime, bfd: false, announce, communities: [], gracefulShutdownMs, birdConfig: null };
  }

  if (!has(o, "localAs")) fail(["bgp", "localAs"], "required: this proxy's AS number", ["bgp"]);
  const localAs = asNumber(o.localAs, ["bgp", "localAs"]);
  let routerId = proxy.address;
  if (has(o, "routerId")) {
    const r = address(o.routerId, ["bgp", "routerId"]);
    if (r.family !== 4) fail(["bgp", "routerId"], `${r.text} is IPv6; a BGP router id is written as an IPv4 address`);
    routerId = r.text;
  }
  if (routerId === null) fail(["bgp", "routerId"], "required: proxy.address is not set, so there is no default router id (an IPv4 address)", ["bgp"]);

  if (!has(o, "neighbors")) fail(["bgp", "neighbors"], "required: the routers to announce to", ["bgp"]);
  const neighbors: BgpNeighborConfig[] = [];
  list(o.neighbors, ["bgp", "neighbors"]).forEach((n, i) => {
    const p = ["bgp", "neighbors", i];
    const neighbor = validateNeighbor(n, p);
    const first = neighbors.findIndex((x) => x.address === neighbor.address);
    if (first >= 0) fail(p, `duplicate neighbour ${neighbor.address} (also neighbors[${first}])`);
    if (neighbor.address === proxy.address || neighbor.address === proxy.address6) fail([...p, "address"], `${neighbor.address} is the proxy's own address`);
    neighbors.push(neighbor);
  });
  if (neighbors.length === 0) fail(["bgp", "neighbors"], "must list at least one neighbour");
  for (const [i, a] of announce.entries()) {
    if (!neighbors.some((n) => n.family === a.family)) {
      fail(["bgp", "announce", i], `${a.prefix} is ${familyName(a.family)} but no neighbour is: pias announces ${familyName(a.family)} prefixes over ${familyName(a.family)} sessions`, has(o, "announce") ? ["bgp", "announce", i] : ["bgp", "neighbors"]);
    }
  }

  const bfd = optBoolean(o, "bfd", path, DEFAULT_BGP.bfd);
  const hop = neighbors.findIndex((n) => n.multihop !== null);
  if (bfd && hop >= 0) fail(["bgp", "neighbors", hop, "multihop"], "bgp.bfd needs directly connected neighbours (BIRD runs BFD on a multihop session only from a fixed source address)");

  const communities: string[] = [];
  if (has(o, "communities")) {
    list(o.communities, ["bgp", "communities"]).forEach((c, i) => {
      const canonical = community(c, ["bgp", "communities", i]);
      if (communities.includes(canonical)) fail(["bgp", "communities", i], `duplicate community ${canonical}`);
      communities.push(canonical);
    });
  }
  let birdConfig: string | null = null;
  if (has(o, "birdConfig")) {
    birdConfig = text(o.birdConfig, ["bgp", "birdConfig"]);
    if (!birdConfig.startsWith("/") || birdConfig.includes('"')) fail(["bgp", "birdConfig"], `${quote(birdConfig)} must be an absolute file path without "`);
  }
  return {
    bird, localAs, routerId, neighbors,
    holdTime: optInteger(o, "holdTime", path, BGP_LIMITS.holdTime, DEFAULT_BGP.holdTime),
    bfd,
    announce, communities, gracefulShutdownMs, birdConfig,
  };
}
