// Validation of a parsed configuration: validateConfig() takes what
// JSON.parse or a YAML parser produced and returns a fully normalised
// PiasConfig (src/config/types.ts: every default filled in, every address
// parsed to bytes and kept as canonical text), or throws a
// ConfigValidationError whose one-line message names the offending path, e.g.
//
//   groups[0].targets[1].address: "192.0.2.300" is not an IPv4 or IPv6 address
//
// Unknown keys are rejected everywhere, and so are values of the wrong type
// (a string where a number is meant, null for an optional setting): a typo in
// a proxy configuration must not pass silently.

import { validateBgp } from "./bgp.js";
import { validateOverlay } from "./overlay.js";
import { endpointKey, formatPrefix, parsePrefix, type Prefix } from "../net/addr.js";
import { transportAddressKey } from "../net/ta.js";
import {
  AFFINITY_MODES, DEFAULT_AFFINITY, DEFAULT_AWARE, DEFAULT_CAPACITY, DEFAULT_DISTANCE, DEFAULT_HALF_OPEN_PER_SOURCE, DEFAULT_NAT_PORTS, DEFAULT_POLICY,
  DEFAULT_TIMEOUTS, DEFAULT_TUNNEL_MTU, DEFAULT_VERIFY_CHECKSUMS, DEFAULT_WEIGHT, DEFAULT_DAEMON, HEALTH_CHECKS, LIMITS, POLICIES,
  PROTOCOLS, type Capacity, type ClusterConfig, type ClusterGroupConfig, type DaemonConfig, type GroupConfig, type HealthConfig,
  type PiasConfig, type Protocol, type ProxyConfig, type ScopeConfig, type TargetConfig, type Timeouts,
} from "./types.js";
import { validateStore } from "./store.js";
import {
  ConfigValidationError, address, describeValue, familyName, fail, has, hexKey, integer, isPlainObject, list, object, oneOf,
  optBoolean, optInteger, quote, text, type Address, type ConfigPath, type Raw,
} from "./values.js";

/** The default configuration: no proxy address, no group. */
export function defaultConfig(): PiasConfig {
  return validateConfig({});
}

const TOP_KEYS = ["proxy", "capacity", "groups", "daemon", "cluster", "bgp", "overlay"] as const;
const CLUSTER_KEYS = ["id", "controlPort", "key", "acceptKey", "seeds", "replicas", "distances", "groups", "store", "joinsPerSecond", "unresolvedPerSecond", "lookupsPerSecond", "negativeTtl"] as const;
const CLUSTER_GROUP_KEYS = ["protocol", "address", "port", "joinKey", "acceptJoinKey", "policy", "affinity"] as const;
const PROXY_KEYS = ["address", "address6", "natPorts", "verifyChecksums", "tunnelMtu", "timeouts", "anycastPrefixes", "halfOpenPerSource"] as const;
const DAEMON_KEYS = ["io", "tunName", "tunIo", "tunOffload", "workers", "routes", "pcapInterface", "pcapFilter", "xdpInterfaces", "xdpMode", "batch", "metrics", "logLevel", "drainMs"] as const;
const HEALTH_KEYS = ["check", "port", "intervalMs", "timeoutMs", "fall", "rise", "path", "send", "expect"] as const;
const TIMEOUT_KEYS = ["tcpEstablished", "tcpTransitory", "udp", "icmp"] as const;
const CAPACITY_KEYS = ["flows", "groups", "targets", "prefault"] as const;
const GROUP_KEYS = ["name", "protocol", "address", "port", "policy", "affinity", "targets", "scopes", "health"] as const;
const SCOPE_KEYS = ["prefix", "label"] as const;
const TARGET_KEYS = ["address", "port", "weight", "aware", "label", "distance"] as const;

function validateTimeouts(v: unknown, path: ConfigPath): Timeouts {
  const o = object(v, path, TIMEOUT_KEYS);
  const t = (key: keyof Timeouts): number => optInteger(o, key, path, LIMITS.timeout, DEFAULT_TIMEOUTS[key]);
  return { tcpEstablished: t("tcpEstablished"), tcpTransitory: t("tcpTransitory"), udp: t("udp"), icmp: t("icmp") };
}

function validateProxy(v: unknown): ProxyConfig {
  const path = ["proxy"];
  const o = object(v, path, PROXY_KEYS);

  let address4: Address | null = null;
  if (has(o, "address")) {
    address4 = address(o.address, ["proxy", "address"]);
    if (address4.family !== 4) fail(["proxy", "address"], `${address4.text} is IPv6; proxy.address is the IPv4 address (put it in proxy.address6)`);
  }
  let address6: Address | null = null;
  if (has(o, "address6")) {
    address6 = address(o.address6, ["proxy", "address6"]);
    if (address6.family !== 6) fail(["proxy", "address6"], `${address6.text} is IPv4; proxy.address6 is the IPv6 address (put it in proxy.address)`);
  }

  let natPorts: readonly [number, number] = DEFAULT_NAT_PORTS;
  if (has(o, "natPorts")) {
    const p = ["proxy", "natPorts"];
    const raw = o.natPorts;
    if (!Array.isArray(raw) || raw.length !== 2) {
      fail(p, `must be a list of two ports [min, max], got ${Array.isArray(raw) ? `a list of ${raw.length}` : describeValue(raw)}`);
    }
    const min = integer(raw[0], [...p, 0], LIMITS.natPort);
    const max = integer(raw[1], [...p, 1], LIMITS.natPort);
    if (min > max) fail(p, `min ${min} is greater than max ${max}`);
    natPorts = [min, max];
  }

  const verifyChecksums = optBoolean(o, "verifyChecksums", path, DEFAULT_VERIFY_CHECKSUMS);
  const tunnelMtu = optInteger(o, "tunnelMtu", path, LIMITS.tunnelMtu, DEFAULT_TUNNEL_MTU);
  if (address6 !== null && tunnelMtu < LIMITS.tunnelMtuIPv6) {
    fail(["proxy", "tunnelMtu"], `${tunnelMtu} is below ${LIMITS.tunnelMtuIPv6}, the IPv6 minimum MTU, and proxy.address6 is set`);
  }
  const timeouts = has(o, "timeouts") ? validateTimeouts(o.timeouts, ["proxy", "timeouts"]) : { ...DEFAULT_TIMEOUTS };
  const anycastPrefixes: string[] = [];
  if (has(o, "anycastPrefixes")) {
    list(o.anycastPrefixes, ["proxy", "anycastPrefixes"]).forEach((v, i) => {
      const p = ["proxy", "anycastPrefixes", i];
      try {
        anycastPrefixes.push(formatPrefix(parsePrefix(text(v, p))));
      } catch (e) {
        if (e instanceof ConfigValidationError) throw e;
        fail(p, (e as Error).message);
      }
    });
  }

  return {
    address: address4?.text ?? null,
    addressBytes: address4?.bytes ?? null,
    address6: address6?.text ?? null,
    address6Bytes: address6?.bytes ?? null,
    natPorts: [natPorts[0], natPorts[1]],
    verifyChecksums,
    tunnelMtu,
    timeouts,
    anycastPrefixes,
    halfOpenPerSource: optInteger(o, "halfOpenPerSource", path, LIMITS.halfOpenPerSource, DEFAULT_HALF_OPEN_PER_SOURCE),
  };
}

function validateDaemon(v: unknown): DaemonConfig {
  const path = ["daemon"];
  const o = object(v, path, DAEMON_KEYS);
  const io = has(o, "io") ? oneOf(o.io, ["daemon", "io"], ["tun", "pcap", "xdp"] as const) : DEFAULT_DAEMON.io;
  const tunName = has(o, "tunName") ? text(o.tunName, ["daemon", "tunName"]) : DEFAULT_DAEMON.tunName;
  if (tunName.length > 15 || /[\s/]/.test(tunName)) fail(["daemon", "tunName"], `${quote(tunName)} is not an interface name (at most 15 characters, no spaces or "/")`);
  const pcapInterface = has(o, "pcapInterface") ? text(o.pcapInterface, ["daemon", "pcapInterface"]) : null;
  if (io === "pcap" && pcapInterface === null) fail(["daemon", "pcapInterface"], "required with io pcap: the interface to capture on");
  const xdpInterfaces = has(o, "xdpInterfaces") ? list(o.xdpInterfaces, ["daemon", "xdpInterfaces"]).map((v, i) => {
    const name = text(v, ["daemon", "xdpInterfaces", i]);
    if (!name || name.length > 15 || /[\s/]/.test(name)) fail(["daemon", "xdpInterfaces", i], `${quote(name)} is not an interface name`);
    return name;
  }) : DEFAULT_DAEMON.xdpInterfaces;
  if (new Set(xdpInterfaces).size !== xdpInterfaces.length) fail(["daemon", "xdpInterfaces"], "lists an interface twice");
  if (xdpInterfaces.length > 16) fail(["daemon", "xdpInterfaces"], "at most 16 interfaces");
  if (io === "xdp" && xdpInterfaces.length === 0) fail(["daemon", "xdpInterfaces"], "required with io xdp: the interfaces to serve");
  let metrics: string | null = null;
  if (has(o, "metrics")) {
    metrics = text(o.metrics, ["daemon", "metrics"]);
    const m = /^(.*):(\d+)$/.exec(metrics);
    if (!m || Number(m[2]) > 65535) fail(["daemon", "metrics"], `${quote(metrics)} is not HOST:PORT (e.g. "127.0.0.1:9464")`);
  }
  return {
    io,
    tunName,
    tunIo: has(o, "tunIo") ? oneOf(o.tunIo, ["daemon", "tunIo"], ["auto", "readv", "uring"] as const) : DEFAULT_DAEMON.tunIo,
    tunOffload: optBoolean(o, "tunOffload", path, DEFAULT_DAEMON.tunOffload),
    workers: optInteger(o, "workers", path, [1, 256], DEFAULT_DAEMON.workers),
    routes: optBoolean(o, "routes", path, DEFAULT_DAEMON.routes),
    pcapInterface,
    pcapFilter: has(o, "pcapFilter") ? text(o.pcapFilter, ["daemon", "pcapFilter"]) : null,
    xdpInterfaces,
    xdpMode: has(o, "xdpMode") ? oneOf(o.xdpMode, ["daemon", "xdpMode"], ["auto", "native", "generic"] as const) : DEFAULT_DAEMON.xdpMode,
    batch: optInteger(o, "batch", path, [1, 4096], DEFAULT_DAEMON.batch),
    metrics,
    logLevel: has(o, "logLevel") ? oneOf(o.logLevel, ["daemon", "logLevel"], ["trace", "debug", "info", "warn", "error"] as const) : DEFAULT_DAEMON.logLevel,
    drainMs: optInteger(o, "drainMs", path, [0, 3600000], DEFAULT_DAEMON.drainMs),
  };
}

function validateCluster(v: unknown, proxy: ProxyConfig): ClusterConfig {
  const path = ["cluster"];
  const o = object(v, path, CLUSTER_KEYS);
  if (!has(o, "key")) fail(["cluster", "key"], "required: the key proxies sign their messages with (hex)");
  const self = proxy.address ?? proxy.address6;
  if (self === null) fail(["proxy", "address"], "required with a cluster: the proxy's control endpoint and tunnel end", ["cluster"]);
  const seeds = has(o, "seeds") ? list(o.seeds, ["cluster", "seeds"]).map((s, i) => address(s, ["cluster", "seeds", i]).text) : [];
  const distances: Record<string, number> = {};
  if (has(o, "distances")) {
    const d = o.distances;
    if (!isPlainObject(d)) fail(["cluster", "distances"], `must be an object of proxy id -> distance, got ${describeValue(d)}`);
    for (const [id, n] of Object.entries(d)) distances[id] = integer(n, ["cluster", "distances", id], LIMITS.distance);
  }
  const groups: ClusterGroupConfig[] = [];
  if (has(o, "groups")) {
    list(o.groups, ["cluster", "groups"]).forEach((g, i) => {
      const gp = ["cluster", "groups", i];
      const go = object(g, gp, CLUSTER_GROUP_KEYS);
      if (!has(go, "protocol")) fail([...gp, "protocol"], `required (one of ${PROTOCOLS.join(", ")})`);
      const protocol = oneOf(go.protocol, [...gp, "protocol"], PROTOCOLS);
      if (!has(go, "address")) fail([...gp, "address"], "required");
      const addr = address(go.address, [...gp, "address"]);
      const port = protocol === "icmp" ? 0 : has(go, "port") ? integer(go.port, [...gp, "port"], [1, 65535]) : fail([...gp, "port"], `required for ${protocol}`);
      if (!has(go, "joinKey")) fail([...gp, "joinKey"], "required: targets sign their joins with it (hex)");
      const key = transportAddressKey(protocol, addr.bytes, port);
      if (groups.some((x) => x.key === key)) fail(gp, `duplicate group ${key}`);
      groups.push({
        key, protocol, address: addr.text, addressBytes: addr.bytes, port,
        joinKey: hexKey(go.joinKey, [...gp, "joinKey"]),
        acceptJoinKey: has(go, "acceptJoinKey") ? hexKey(go.acceptJoinKey, [...gp, "acceptJoinKey"]) : null,
        policy: has(go, "policy") ? oneOf(go.policy, [...gp, "policy"], POLICIES) : "proximity",
        affinity: has(go, "affinity") ? oneOf(go.affinity, [...gp, "affinity"], AFFINITY_MODES) : DEFAULT_AFFINITY,
      });
    });
  }
  return {
    id: has(o, "id") ? text(o.id, ["cluster", "id"]) : self,
    controlPort: optInteger(o, "controlPort", path, [1, 65535], 7470),
    key: hexKey(o.key, ["cluster", "key"]),
    acceptKey: has(o, "acceptKey") ? hexKey(o.acceptKey, ["cluster", "acceptKey"]) : null,
    store: has(o, "store") ? validateStore(o.store, ["cluster", "store"]) : null,
    seeds,
    replicas: optInteger(o, "replicas", path, [1, 8], 2),
    distances,
    groups,
    joinsPerSecond: optInteger(o, "joinsPerSecond", path, [1, 1000000], 200),
    unresolvedPerSecond: optInteger(o, "unresolvedPerSecond", path, [1, 1000000], 1000),
    lookupsPerSecond: optInteger(o, "lookupsPerSecond", path, [1, 1000000], 200),
    negativeTtl: optInteger(o, "negativeTtl", path, [1, 3600], 30),
  };
}

function validateHealth(v: unknown, path: ConfigPath, group: { protocol: Protocol; targets: readonly TargetConfig[] }): HealthConfig {
  const o = object(v, path, HEALTH_KEYS);
  const check = has(o, "check") ? oneOf(o.check, [...path, "check"], HEALTH_CHECKS) : group.protocol === "udp" ? "udp" : "tcp";
  const port = has(o, "port") ? integer(o.port, [...path, "port"], [1, 65535]) : null;
  if (port === null) {
    const j = group.targets.findIndex((t) => t.port === 0);
    if (j >= 0) fail([...path, "port"], `required: targets[${j}] has port 0 (the client's port), so the check needs a port`);
  }
  const intervalMs = optInteger(o, "intervalMs", path, [100, 3600000], 2000);
  const timeoutMs = optInteger(o, "timeoutMs", path, [10, 3600000], Math.min(1000, intervalMs));
  if (timeoutMs > intervalMs) fail([...path, "timeoutMs"], `${timeoutMs} is longer than intervalMs ${intervalMs}`);
  const path_ = has(o, "path") ? text(o.path, [...path, "path"]) : "/";
  if (!path_.startsWith("/")) fail([...path, "path"], `${quote(path_)} must start with "/"`);
  return {
    check,
    port,
    intervalMs,
    timeoutMs,
    fall: optInteger(o, "fall", path, [1, 100], 3),
    rise: optInteger(o, "rise", path, [1, 100], 2),
    path: path_,
    send: has(o, "send") ? text(o.send, [...path, "send"]) : "ping",
    expect: has(o, "expect") ? text(o.expect, [...path, "expect"]) : null,
  };
}

function validateCapacity(v: unknown): Capacity {
  const path = ["capacity"];
  const o = object(v, path, CAPACITY_KEYS);
  return {
    flows: optInteger(o, "flows", path, LIMITS.flows, DEFAULT_CAPACITY.flows),
    groups: optInteger(o, "groups", path, LIMITS.groups, DEFAULT_CAPACITY.groups),
    targets: optInteger(o, "targets", path, LIMITS.targets, DEFAULT_CAPACITY.targets),
    prefault: optBoolean(o, "prefault", path, DEFAULT_CAPACITY.prefault),
  };
}

function validateTarget(v: unknown, path: ConfigPath, group: { protocol: Protocol; port: number; addr: Address }): TargetConfig {
  const o = object(v, path, TARGET_KEYS);
  if (!has(o, "address")) fail([...path, "address"], "required");
  const addr = address(o.address, [...path, "address"]);
  if (addr.family !== group.addr.family) {
    fail([...path, "address"], `${addr.text} is ${familyName(addr.family)} but the group address ${group.addr.text} is ${familyName(group.addr.family)}`);
  }
  if (addr.text === group.addr.text) fail([...path, "address"], `${addr.text} is the group's own anycast address`);

  let port = group.port;
  if (has(o, "port")) {
    if (group.protocol === "icmp") {
      if (o.port !== 0) fail([...path, "port"], `must be absent or 0 for an icmp group (ICMP has no ports), got ${describeValue(o.port)}`);
      port = 0;
    } else {
      port = integer(o.port, [...path, "port"], LIMITS.port);
    }
  }
  return {
    address: addr.text,
    addressBytes: addr.bytes,
    family: addr.family,
    port,
    key: endpointKey(addr.bytes, port),
    weight: optInteger(o, "weight", path, LIMITS.weight, DEFAULT_WEIGHT),
    aware: optBoolean(o, "aware", path, DEFAULT_AWARE),
    label: has(o, "label") ? text(o.label, [...path, "label"]) : null,
    distance: optInteger(o, "distance", path, LIMITS.distance, DEFAULT_DISTANCE),
  };
}

function validateGroup(v: unknown, path: ConfigPath): GroupConfig {
  const o = object(v, path, GROUP_KEYS);
  if (!has(o, "protocol")) fail([...path, "protocol"], `required (one of ${PROTOCOLS.join(", ")})`);
  const protocol = oneOf(o.protocol, [...path, "protocol"], PROTOCOLS);
  if (!has(o, "address")) fail([...path, "address"], "required");
  const addr = address(o.address, [...path, "address"]);

  let port = 0;
  if (protocol === "icmp") {
    if (has(o, "port") && o.port !== 0) {
      fail([...path, "port"], `must be absent or 0 for icmp (ICMP has no ports), got ${describeValue(o.port)}`);
    }
  } else {
    if (!has(o, "port")) fail([...path, "port"], `required for ${protocol} (0 = every port)`);
    port = integer(o.port, [...path, "port"], LIMITS.port);
  }

  const policy = has(o, "policy") ? oneOf(o.policy, [...path, "policy"], POLICIES) : DEFAULT_POLICY;
  let affinity = DEFAULT_AFFINITY;
  if (has(o, "affinity")) {
    affinity = oneOf(o.affinity, [...path, "affinity"], AFFINITY_MODES);
    if (policy !== "affinity") fail([...path, "affinity"], `only meaningful with policy affinity, but the policy is ${policy}`);
  }

  const targets: TargetConfig[] = [];
  if (has(o, "targets")) {
    const raw = list(o.targets, [...path, "targets"]);
    const seen = new Map<string, number>();
    raw.forEach((t, i) => {
      const tp = [...path, "targets", i];
      const target = validateTarget(t, tp, { protocol, port, addr });
      const first = seen.get(target.key);
      if (first !== undefined) fail(tp, `duplicate target ${target.key} (also targets[${first}])`);
      seen.set(target.key, i);
      targets.push(target);
    });
  }

  const scopes: ScopeConfig[] = [];
  if (has(o, "scopes")) {
    const labels = new Set(targets.map((t) => t.label).filter((l) => l !== null));
    list(o.scopes, [...path, "scopes"]).forEach((r, i) => {
      const sp = [...path, "scopes", i];
      const so = object(r, sp, SCOPE_KEYS);
      if (!has(so, "prefix")) fail([...sp, "prefix"], `required, e.g. "10.1.0.0/16"`);
      if (!has(so, "label")) fail([...sp, "label"], "required: the label of the targets these clients reach");
      const ptext = text(so.prefix, [...sp, "prefix"]);
      let prefix: Prefix;
      try {
        prefix = parsePrefix(ptext);
      } catch (e) {
        fail([...sp, "prefix"], (e as Error).message);
      }
      if (prefix.family !== addr.family) fail([...sp, "prefix"], `${ptext} is IPv${prefix.family} but the group is IPv${addr.family}`);
      const label = text(so.label, [...sp, "label"]);
      if (!labels.has(label)) fail([...sp, "label"], `no target of this group has label "${label}"`);
      const canonical = formatPrefix(prefix);
      if (scopes.some((x) => x.prefix === canonical)) fail([...sp, "prefix"], `duplicate scope ${canonical}`);
      scopes.push({ prefix: canonical, label });
    });
  }

  const name = has(o, "name") ? text(o.name, [...path, "name"]) : transportAddressKey(protocol, addr.bytes, port);
  let health: HealthConfig | null = null;
  if (has(o, "health")) {
    if (protocol === "icmp") fail([...path, "health"], "icmp groups have no health check (their targets have no port to probe)");
    health = validateHealth(o.health, [...path, "health"], { protocol, targets });
  }
  return { name, protocol, family: addr.family, address: addr.text, addressBytes: addr.bytes, port, policy, affinity, targets, scopes, health };
}

/**
 * Validate and normalise a parsed configuration (the value JSON.parse or a YAML
 * parser produced). Throws ConfigValidationError (a ConfigError, code ECONFIG)
 * with a one-line message naming the path of the first problem found.
 */
export function validateConfig(raw: unknown): PiasConfig {
  const o = object(raw, [], TOP_KEYS);
  const proxy = validateProxy(has(o, "proxy") ? o.proxy : {});
  const capacity = validateCapacity(has(o, "capacity") ? o.capacity : {});
  const daemon = has(o, "daemon") ? validateDaemon(o.daemon) : DEFAULT_DAEMON;

  const groups: GroupConfig[] = [];
  if (has(o, "groups")) {
    const raw = list(o.groups, ["groups"]);
    const byTa = new Map<string, number>();
    const byName = new Map<string, number>();
    let targetCount = 0;
    const labels = new Set<string>();
    raw.forEach((g, i) => {
      const path = ["groups", i];
      const group = validateGroup(g, path);
      const ta = transportAddressKey(group.protocol, group.addressBytes, group.port);
      const first = byTa.get(ta);
      if (first !== undefined) fail(path, `duplicate group ${ta} (also groups[${first}])`);
      byTa.set(ta, i);
      const sameName = byName.get(group.name);
      if (sameName !== undefined) {
        if (has(g as Raw, "name")) fail([...path, "name"], `duplicate name ${quote(group.name)} (also groups[${sameName}])`);
        fail(path, `its default name ${quote(group.name)} is already the name of groups[${sameName}]`);
      }
      byName.set(group.name, i);

      const own = group.family === 4 ? proxy.address : proxy.address6;
      if (own !== null && own === group.address) {
        fail([...path, "address"], `${group.address} is the proxy's own unicast address (proxy.${group.family === 4 ? "address" : "address6"})`);
      }
      group.targets.forEach((t, j) => {
        if (own !== null && t.address === own) {
          fail([...path, "targets", j, "address"], `${t.address} is the proxy's own unicast address (proxy.${t.family === 4 ? "address" : "address6"})`);
        }
      });

      if (i + 1 > capacity.groups) fail(path, `more groups than capacity.groups (${capacity.groups})`);
      if (targetCount + group.targets.length > capacity.targets) {
        const j = capacity.targets - targetCount; // the first target that does not fit
        fail([...path, "targets", j], `more targets in all groups than capacity.targets (${capacity.targets})`);
      }
      targetCount += group.targets.length;
      group.targets.forEach((t, j) => {
        if (t.label === null || labels.has(t.label)) return;
        labels.add(t.label);
        if (labels.size > LIMITS.labels) fail([...path, "targets", j, "label"], `more than ${LIMITS.labels} distinct labels in the configuration`);
      });
      groups.push(group);
    });
  }

  // The proxy needs a unicast address of each family it serves (NAT source, tunnel endpoint).
  const first4 = groups.findIndex((g) => g.family === 4);
  if (first4 >= 0 && proxy.address === null) {
    fail(["proxy", "address"], `required because groups[${first4}] is IPv4`, has(o, "proxy") ? ["proxy"] : ["groups", first4]);
  }
  const first6 = groups.findIndex((g) => g.family === 6);
  if (first6 >= 0 && proxy.address6 === null) {
    fail(["proxy", "address6"], `required because groups[${first6}] is IPv6`, has(o, "proxy") ? ["proxy"] : ["groups", first6]);
  }

  const cluster = has(o, "cluster") ? validateCluster(o.cluster, proxy) : null;
  const overlay = has(o, "overlay") ? validateOverlay(o.overlay, proxy, cluster, groups) : null;
  // an overlay node announces its overlay's TA space too
  const bgp = has(o, "bgp") ? validateBgp(o.bgp, overlay ? { ...proxy, anycastPrefixes: [...proxy.anycastPrefixes, ...overlay.prefixes] } : proxy, daemon) : null;
  return { proxy, daemon, cluster, overlay, bgp, capacity, groups };
}

