// The `overlay` section (README "Reaching an overlay"): this proxy is a node of
// an overlay reached through PIAS (paper §6.2). Its type, defaults and
// validator, with the value checkers of values.ts; nothing here opens a
// socket or touches the data plane.
//
//   overlay:
//     prefixes: [203.0.113.0/24]   # the overlay's TA space (IPv4), announced by every node
//     ports: [1024, 65535]         # TA ports of every address
//     blockPorts: 256              # ports per partition block
//     port: 7480                   # UDP port of frames (clients and nodes), on every node's address
//     key: 0e0e...                 # hex: the overlay key its clients hold
//     seeds: [10.255.0.2]          # other overlay nodes (default: cluster.seeds)
//     windowSeconds: 30            # frames stamped further off are stale
//     cacheSeconds: 30             # a remote node is used this long after the last reply through it
//     flows: 262144                # NAT bindings at most
//     destinations: 65536          # remote-node cache entries

import { formatPrefix, parsePrefix, prefixContains, type Prefix } from "../net/addr.js";
import { transportAddressKey, type TransportAddress } from "../net/ta.js";
import type { ClusterConfig, GroupConfig, ProxyConfig } from "./types.js";
import { address, fail, has, hexKey, integer, list, object, optInteger, text, describeValue, type ConfigPath } from "./values.js";

export interface OverlayConfig {
  /** Canonical IPv4 prefixes of the TA space. */
  readonly prefixes: readonly string[];
  readonly ports: readonly [number, number];
  readonly blockPorts: number;
  /** UDP port of overlay frames. */
  readonly port: number;
  /** The overlay key (clients hold it; frames between clients and nodes are keyed from it). */
  readonly key: Uint8Array;
  /** Unicast addresses of other overlay nodes (their control endpoints are ADDRESS:cluster.controlPort). */
  readonly seeds: readonly string[];
  readonly windowSeconds: number;
  readonly cacheSeconds: number;
  readonly flows: number;
  readonly destinations: number;
  /** The overlay's discovery group: udp, the first prefix's first address, `port`. */
  readonly group: TransportAddress;
  /** Blocks of the TA space. */
  readonly blocks: number;
}

export const OVERLAY_KEYS = ["prefixes", "ports", "blockPorts", "port", "key", "seeds", "windowSeconds", "cacheSeconds", "flows", "destinations"] as const;
export const DEFAULT_OVERLAY = Object.freeze({ ports: [1024, 65535] as const, blockPorts: 256, port: 7480, windowSeconds: 30, cacheSeconds: 30, flows: 262144, destinations: 65536 });
/** Blocks of the TA space at most (the data plane's owner table: 2 bytes a block). */
export const MAX_OVERLAY_BLOCKS = 1 << 20;

function overlaps(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && (prefixContains(a, b.bytes) || prefixContains(b, a.bytes));
}

/** The overlay's discovery group as a cluster group key ("udp 203.0.113.0:7480"). */
export function overlayGroupKey(o: OverlayConfig): string {
  return transportAddressKey("udp", o.group.address, o.group.port);
}

export function validateOverlay(v: unknown, proxy: ProxyConfig, cluster: ClusterConfig | null, groups: readonly GroupConfig[]): OverlayConfig {
  const path: ConfigPath = ["overlay"];
  const o = object(v, path, OVERLAY_KEYS);
  if (cluster === null) fail(path, "needs a cluster section: overlay nodes are PIAS proxies (membership, discovery, the cluster key)");
  if (proxy.address === null) fail(["proxy", "address"], "required with an overlay: the node's IPv4 address (frames, tunnel end)", path);
  if (!has(o, "prefixes")) fail([...path, "prefixes"], `required: the overlay's TA space, e.g. ["203.0.113.0/24"]`);
  if (!has(o, "key")) fail([...path, "key"], "required: the overlay key clients hold (hex)");
  const prefixes: Prefix[] = list(o.prefixes, [...path, "prefixes"]).map((raw, i) => {
    const p = [...path, "prefixes", i];
    let prefix: Prefix;
    try {
      prefix = parsePrefix(text(raw, p));
    } catch (e) {
      return fail(p, (e as Error).message);
    }
    if (prefix.family !== 4) fail(p, `${formatPrefix(prefix)} is IPv6: the overlay is IPv4 only`);
    if (prefix.length < 8) fail(p, `${formatPrefix(prefix)} is larger than a /8`);
    for (const a of proxy.anycastPrefixes) if (overlaps(prefix, parsePrefix(a))) fail(p, `${formatPrefix(prefix)} overlaps proxy.anycastPrefixes ${a}: the overlay's TAs are its own`);
    if (prefixContains(prefix, proxy.addressBytes!)) fail(p, `${formatPrefix(prefix)} holds proxy.address ${proxy.address}`);
    const g = groups.find((x) => prefixContains(prefix, x.addressBytes));
    if (g) fail(p, `${formatPrefix(prefix)} holds group ${g.name}'s address`);
    return prefix;
  });
  if (prefixes.length === 0) fail([...path, "prefixes"], "must name at least one prefix");
  prefixes.forEach((a, i) => prefixes.forEach((b, j) => j > i && overlaps(a, b) && fail([...path, "prefixes", j], `overlaps prefixes[${i}]`)));

  let ports: readonly [number, number] = DEFAULT_OVERLAY.ports;
  if (has(o, "ports")) {
    const p = [...path, "ports"];
    const raw = o.ports;
    if (!Array.isArray(raw) || raw.length !== 2) fail(p, `must be a list of two ports [min, max], got ${describeValue(raw)}`);
    const min = integer(raw[0], [...p, 0], [1, 65535]);
    const max = integer(raw[1], [...p, 1], [1, 65535]);
    if (min > max) fail(p, `min ${min} is greater than max ${max}`);
    ports = [min, max];
  }
  const blockPorts = optInteger(o, "blockPorts", path, [1, 65535], DEFAULT_OVERLAY.blockPorts);
  const addresses = prefixes.reduce((n, p) => n + 2 ** (32 - p.length), 0);
  const blocks = addresses * Math.ceil((ports[1] - ports[0] + 1) / blockPorts);
  if (blocks > MAX_OVERLAY_BLOCKS) {
    fail([...path, "blockPorts"], `the TA space has ${blocks} blocks of ${blockPorts} ports, at most ${MAX_OVERLAY_BLOCKS}: use smaller prefixes or larger blocks`);
  }
  const port = optInteger(o, "port", path, [1, 65535], DEFAULT_OVERLAY.port);
  if (port === cluster.controlPort) fail([...path, "port"], `${port} is cluster.controlPort: frames and control messages need their own ports`);
  const seeds = has(o, "seeds")
    ? list(o.seeds, [...path, "seeds"]).map((s, i) => {
        const a = address(s, [...path, "seeds", i]);
        if (a.family !== 4) fail([...path, "seeds", i], `${a.text} is IPv6: overlay nodes have IPv4 addresses`);
        return a.text;
      })
    : cluster.seeds;
  return {
    prefixes: prefixes.map(formatPrefix),
    ports,
    blockPorts,
    port,
    key: hexKey(o.key, [...path, "key"]),
    seeds,
    windowSeconds: optInteger(o, "windowSeconds", path, [1, 3600], DEFAULT_OVERLAY.windowSeconds),
    cacheSeconds: optInteger(o, "cacheSeconds", path, [1, 86400], DEFAULT_OVERLAY.cacheSeconds),
    flows: optInteger(o, "flows", path, [1, 16777216], DEFAULT_OVERLAY.flows),
    destinations: optInteger(o, "destinations", path, [4, 16777216], DEFAULT_OVERLAY.destinations),
    group: { protocol: "udp", address: prefixes[0].bytes, port },
    blocks,
  };
}
