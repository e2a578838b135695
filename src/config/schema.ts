// The proxy configuration: its model, defaults, validation and normalisation.
//
// validateConfig() takes what JSON.parse or a YAML parser produced and returns
// a fully normalised PiasConfig (every default filled in, every address parsed
// to bytes and kept as canonical text), or throws a ConfigValidationError
// (a ConfigError) whose one-line message names the offending path, e.g.
//
//   groups[0].targets[1].address: "192.0.2.300" is not an IPv4 or IPv6 address
//
// Unknown keys are rejected everywhere, and so are values of the wrong type
// (a string where a number is meant, null for an optional setting): a typo in
// a proxy configuration must not pass silently.

import { ConfigError } from "../errors.js";
import { endpointKey, formatAddress, formatPrefix, parseAddress, parsePrefix, AddressError, type Family, type Prefix } from "../net/addr.js";

// ---------------------------------------------------------------- types

export type Protocol = "tcp" | "udp" | "icmp";
export type PolicyName = "affinity" | "round-robin" | "random" | "least-load" | "proximity";
/** What the affinity hash covers: the client address, or the whole 5-tuple. */
export type AffinityMode = "client" | "flow";

export const PROTOCOLS: readonly Protocol[] = ["tcp", "udp", "icmp"];
export const POLICIES: readonly PolicyName[] = ["affinity", "round-robin", "random", "least-load", "proximity"];
export const AFFINITY_MODES: readonly AffinityMode[] = ["client", "flow"];

/** Idle timeouts of flow state, in seconds. */
export interface Timeouts {
  /** Established TCP connection (RFC 5382: at least 2 h 4 min). */
  readonly tcpEstablished: number;
  /** TCP connection being opened or closed (RFC 5382: 4 min). */
  readonly tcpTransitory: number;
  /** UDP flow (RFC 4787: at least 2 min, 5 min recommended). */
  readonly udp: number;
  /** ICMP query (echo) flow. */
  readonly icmp: number;
}

/** Table sizes of the data plane, fixed when it starts. */
export interface Capacity {
  readonly flows: number;
  readonly groups: number;
  /** Targets over all groups (a target in two groups counts twice). */
  readonly targets: number;
}

export interface ProxyConfig {
  /** The proxy's unicast IPv4 address (canonical text), or null when not configured. */
  readonly address: string | null;
  /** `address` as 4 bytes, or null. */
  readonly addressBytes: Uint8Array | null;
  /** The proxy's unicast IPv6 address (RFC 5952 text), or null when not configured. */
  readonly address6: string | null;
  /** `address6` as 16 bytes, or null. */
  readonly address6Bytes: Uint8Array | null;
  /** NAT port / ICMP identifier range [min, max], inclusive. */
  readonly natPorts: readonly [number, number];
  readonly verifyChecksums: boolean;
  readonly tunnelMtu: number;
  readonly timeouts: Timeouts;
  /** The anycast prefixes this proxy serves (canonical text): packets to them with no group go to the host. */
  readonly anycastPrefixes: readonly string[];
}

export interface TargetConfig {
  /** Canonical text of the target's unicast address. */
  readonly address: string;
  readonly addressBytes: Uint8Array;
  readonly family: Family;
  /** 0 = keep the client's destination port. */
  readonly port: number;
  /** endpointKey(address, port): "192.0.2.11:8080" or "[2001:db8::1]:8080". */
  readonly key: string;
  readonly weight: number;
  /** PIAS-aware: reached through IP-in-IP, no NAT. */
  readonly aware: boolean;
  readonly label: string | null;
  readonly distance: number;
}

export interface ScopeConfig {
  /** Canonical prefix text, e.g. "10.1.0.0/16". */
  readonly prefix: string;
  readonly label: string;
}

/** Health check of a group's targets (the daemon runs it; the data plane only sees up/down). */
export interface HealthConfig {
  /** tcp: a connection completes; udp: `send` answered (with `expect` when set); http: GET `path` answers 2xx/3xx. */
  readonly check: HealthCheckKind;
  /** Port to probe instead of the target's (required when the target port is 0). */
  readonly port: number | null;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Consecutive failures that mark an up target down. */
  readonly fall: number;
  /** Consecutive successes that mark a down target up. */
  readonly rise: number;
  /** http: the request path. */
  readonly path: string;
  /** udp: the payload sent. */
  readonly send: string;
  /** udp: the reply must contain this text (null: any reply). */
  readonly expect: string | null;
}

export type HealthCheckKind = "tcp" | "udp" | "http";
export const HEALTH_CHECKS: readonly HealthCheckKind[] = ["tcp", "udp", "http"];

export interface GroupConfig {
  /** The configured name, or "<protocol> <address>:<port>" (see describeTransportAddress). */
  readonly name: string;
  readonly protocol: Protocol;
  readonly family: Family;
  /** Canonical text of the anycast address. */
  readonly address: string;
  readonly addressBytes: Uint8Array;
  /** 0 = every port (always 0 for icmp). */
  readonly port: number;
  readonly policy: PolicyName;
  readonly affinity: AffinityMode;
  readonly targets: readonly TargetConfig[];
  /** Scoping: clients in `prefix` only reach targets labelled `label` (longest prefix wins). */
  readonly scopes: readonly ScopeConfig[];
  /** Health check of the targets, or null: targets are up unless the host says otherwise. */
  readonly health: HealthConfig | null;
}

/** How `pias run` moves packets and reports (ignored by `pias replay` and the library). */
export interface DaemonConfig {
  /** I/O backend. */
  readonly io: "tun" | "pcap";
  /** TUN device name (the kernel adds a number for "%d"). */
  readonly tunName: string;
  /** Route the anycast prefixes and the proxy's addresses into the TUN device. */
  readonly routes: boolean;
  /** pcap: the interface to capture on and inject into. */
  readonly pcapInterface: string | null;
  /** pcap: extra BPF filter, ANDed with the one built from the anycast prefixes and proxy addresses. */
  readonly pcapFilter: string | null;
  /** Packets per batch. */
  readonly batch: number;
  /** host:port of the Prometheus endpoint, or null for none. */
  readonly metrics: string | null;
  readonly logLevel: "trace" | "debug" | "info" | "warn" | "error";
  /** On SIGTERM: keep forwarding for existing flows this long, then exit. */
  readonly drainMs: number;
}

/** A group targets may join through this proxy (the control plane; pias run only). */
export interface ClusterGroupConfig {
  /** "tcp 203.0.113.10:80": the data plane's group key. */
  readonly key: string;
  readonly protocol: Protocol;
  readonly address: string;
  readonly addressBytes: Uint8Array;
  readonly port: number;
  /** HMAC-SHA-256 key of join, leave and keepalive messages. */
  readonly joinKey: Uint8Array;
  /** Policy among the group's targets at a JAP, and among its JAPs at an IAP. */
  readonly policy: PolicyName;
  readonly affinity: AffinityMode;
}

/** The PIAS system of proxies this one belongs to (pias run only). */
export interface ClusterConfig {
  /** This proxy's id on the hash ring. */
  readonly id: string;
  /** UDP port of control messages, on the anycast prefixes and every proxy address. */
  readonly controlPort: number;
  /** HMAC-SHA-256 key of proxy-to-proxy messages. */
  readonly key: Uint8Array;
  /** The other proxies' unicast addresses (their control endpoints and tunnel ends). */
  readonly seeds: readonly string[];
  /** RAPs per group. */
  readonly replicas: number;
  /** Configured distance to other proxies by id (proximity among JAPs); unlisted: 100. */
  readonly distances: Readonly<Record<string, number>>;
  readonly groups: readonly ClusterGroupConfig[];
}

export interface PiasConfig {
  readonly proxy: ProxyConfig;
  readonly daemon: DaemonConfig;
  /** null: a stand-alone proxy, serving only its configured groups. */
  readonly cluster: ClusterConfig | null;
  readonly capacity: Capacity;
  readonly groups: readonly GroupConfig[];
}

// ---------------------------------------------------------------- defaults and limits

export const DEFAULT_NAT_PORTS: readonly [number, number] = Object.freeze([1024, 65535] as [number, number]);
export const DEFAULT_VERIFY_CHECKSUMS = false;
export const DEFAULT_TUNNEL_MTU = 1500;
export const DEFAULT_TIMEOUTS: Timeouts = Object.freeze({
  tcpEstablished: 7440,
  tcpTransitory: 240,
  udp: 300,
  icmp: 60,
});
export const DEFAULT_CAPACITY: Capacity = Object.freeze({
  flows: 1048576,
  groups: 65536,
  targets: 65536,
});
export const DEFAULT_POLICY: PolicyName = "affinity";
export const DEFAULT_AFFINITY: AffinityMode = "client";
export const DEFAULT_WEIGHT = 1;
export const DEFAULT_AWARE = false;
export const DEFAULT_DISTANCE = 0;

/** Inclusive ranges of the numeric settings. */
export const LIMITS = Object.freeze({
  port: [0, 65535],
  natPort: [1, 65535],
  tunnelMtu: [576, 65535],
  /** Smallest tunnel MTU once the proxy carries IPv6 (RFC 8200). */
  tunnelMtuIPv6: 1280,
  /** Timeouts are whole seconds, at most one year. */
  timeout: [1, 31536000],
  weight: [1, 65535],
  distance: [0, 4294967295],
  flows: [1, 16777216],
  groups: [1, 4194304],
  targets: [1, 4194304],
  /** Distinct target labels over the whole configuration (the core stores a label id in one byte). */
  labels: 255,
} as const);

/** The default configuration: no proxy address, no group. */
export function defaultConfig(): PiasConfig {
  return validateConfig({});
}

/**
 * How logs and messages name a group's transport address, and the default group
 * name: "tcp 203.0.113.10:80", "udp [2001:db8::1]:53", "icmp 203.0.113.10:0"
 * (ICMP groups have port 0). Same text as groupKey() in src/core/dataplane.ts.
 */
export function describeTransportAddress(protocol: Protocol, addressBytes: Uint8Array, port: number): string {
  return `${protocol} ${endpointKey(addressBytes, protocol === "icmp" ? 0 : port)}`;
}

// ---------------------------------------------------------------- errors

export type ConfigPath = readonly (string | number)[];

/** "groups[0].targets[1].address" */
export function formatConfigPath(path: ConfigPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out;
}

/** Where the source (if any) holds the offending part, for a message with a line number. */
export interface ConfigSourceLocation {
  readonly file: string;
  readonly line?: number;
}

/**
 * A configuration value is invalid. The message is one line:
 * "PATH: DETAIL", or DETAIL alone for the top level, prefixed by
 * "FILE:LINE: " when the configuration came from a file.
 */
export class ConfigValidationError extends ConfigError {
  constructor(
    /** Path of the offending value ([] for the configuration as a whole). */
    readonly path: ConfigPath,
    /** What is wrong, without the path. */
    readonly detail: string,
    /** Path of the source text to point at (the offending key for an unknown key); defaults to `path`. */
    readonly locate: ConfigPath = path,
    readonly source?: ConfigSourceLocation,
  ) {
    const where = source ? (source.line !== undefined ? `${source.file}:${source.line}: ` : `${source.file}: `) : "";
    super(where + (path.length ? `${formatConfigPath(path)}: ${detail}` : detail));
  }

  /** The same error with a file name (and line) in front. */
  at(source: ConfigSourceLocation): ConfigValidationError {
    return new ConfigValidationError(this.path, this.detail, this.locate, source);
  }
}

function fail(path: ConfigPath, detail: string, locate: ConfigPath = path): never {
  throw new ConfigValidationError(path, detail, locate);
}

// ---------------------------------------------------------------- value helpers

type Raw = Record<string, unknown>;

function isPlainObject(v: unknown): v is Raw {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Quote a string for a one-line message. */
function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** How a message shows a value it did not accept. */
function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (typeof v === "string") return `the string ${quote(v)}`;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) return "a list";
  if (isPlainObject(v)) return "an object";
  const name = (v as object).constructor?.name;
  return name ? `a ${name}` : "an object";
}

/** Levenshtein distance, for "did you mean" hints on unknown keys. */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

function suggestion(key: string, allowed: readonly string[]): string {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of allowed) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best !== undefined && bestDist <= Math.max(1, Math.floor(best.length / 3)) ? ` (did you mean "${best}"?)` : "";
}

function object(v: unknown, path: ConfigPath, allowed: readonly string[]): Raw {
  if (!isPlainObject(v)) {
    if (path.length === 0) fail(path, `the configuration must be an object, got ${describeValue(v)}`);
    fail(path, `must be an object with keys ${allowed.join(", ")}, got ${describeValue(v)}`);
  }
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      const hint = suggestion(key, allowed);
      if (path.length === 0) fail(path, `unknown key ${quote(key)} at top level${hint}`, [key]);
      fail(path, `unknown key ${quote(key)}${hint}`, [...path, key]);
    }
  }
  return v;
}

function has(obj: Raw, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function list(v: unknown, path: ConfigPath): unknown[] {
  if (!Array.isArray(v)) fail(path, `must be a list, got ${describeValue(v)}`);
  return v;
}

function integer(v: unknown, path: ConfigPath, range: readonly [number, number]): number {
  const [min, max] = range;
  if (typeof v !== "number") fail(path, `must be an integer ${min}..${max}, got ${describeValue(v)}`);
  if (!Number.isInteger(v)) fail(path, `${String(v)} is not an integer`);
  if (v < min || v > max) fail(path, `${v} is not in ${min}..${max}`);
  return v === 0 ? 0 : v; // no -0
}

function optInteger(obj: Raw, key: string, path: ConfigPath, range: readonly [number, number], def: number): number {
  return has(obj, key) ? integer(obj[key], [...path, key], range) : def;
}

function optBoolean(obj: Raw, key: string, path: ConfigPath, def: boolean): boolean {
  if (!has(obj, key)) return def;
  const v = obj[key];
  if (typeof v !== "boolean") fail([...path, key], `must be true or false, got ${describeValue(v)}`);
  return v;
}

function oneOf<T extends string>(v: unknown, path: ConfigPath, choices: readonly T[]): T {
  if (typeof v !== "string") fail(path, `must be one of ${choices.join(", ")}, got ${describeValue(v)}`);
  if (!(choices as readonly string[]).includes(v)) fail(path, `${quote(v)} is not one of ${choices.join(", ")}`);
  return v as T;
}

/** A name or label: a non-empty string that fits on one log line. */
function text(v: unknown, path: ConfigPath): string {
  if (typeof v !== "string") fail(path, `must be a string, got ${describeValue(v)}`);
  if (v.trim() === "") fail(path, "must not be empty");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) fail(path, `${quote(v)} contains a control character`);
  if (v.length > 200) fail(path, `is ${v.length} characters long, at most 200 allowed`);
  return v;
}

interface Address {
  readonly family: Family;
  readonly bytes: Uint8Array;
  readonly text: string;
}

/** Why an address cannot be a unicast host address, or undefined. */
function notUnicast(a: Address): string | undefined {
  const b = a.bytes;
  if (b.every((x) => x === 0)) return `${a.text} is the unspecified address`;
  if (a.family === 4) {
    if (b[0] >= 224 && b[0] <= 239) return `${a.text} is a multicast address`;
    if (b.every((x) => x === 255)) return `${a.text} is the broadcast address`;
  } else if (b[0] === 0xff) {
    return `${a.text} is a multicast address`;
  }
  return undefined;
}

function address(v: unknown, path: ConfigPath): Address {
  if (typeof v !== "string") fail(path, `must be an IPv4 or IPv6 address string, got ${describeValue(v)}`);
  let parsed;
  try {
    parsed = parseAddress(v);
  } catch (err) {
    if (err instanceof AddressError) fail(path, err.message);
    throw err;
  }
  const a: Address = { family: parsed.family, bytes: parsed.bytes, text: formatAddress(parsed.bytes) };
  const problem = notUnicast(a);
  if (problem !== undefined) fail(path, `${problem}, not a unicast address`);
  return a;
}

const familyName = (f: Family): string => (f === 4 ? "IPv4" : "IPv6");

// ---------------------------------------------------------------- sections

const TOP_KEYS = ["proxy", "capacity", "groups", "daemon", "cluster"] as const;
const CLUSTER_KEYS = ["id", "controlPort", "key", "seeds", "replicas", "distances", "groups"] as const;
const CLUSTER_GROUP_KEYS = ["protocol", "address", "port", "joinKey", "policy", "affinity"] as const;
const PROXY_KEYS = ["address", "address6", "natPorts", "verifyChecksums", "tunnelMtu", "timeouts", "anycastPrefixes"] as const;
const DAEMON_KEYS = ["io", "tunName", "routes", "pcapInterface", "pcapFilter", "batch", "metrics", "logLevel", "drainMs"] as const;
const HEALTH_KEYS = ["check", "port", "intervalMs", "timeoutMs", "fall", "rise", "path", "send", "expect"] as const;
const TIMEOUT_KEYS = ["tcpEstablished", "tcpTransitory", "udp", "icmp"] as const;
const CAPACITY_KEYS = ["flows", "groups", "targets"] as const;
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
  };
}

export const DEFAULT_DAEMON: DaemonConfig = Object.freeze({
  io: "tun",
  tunName: "pias%d",
  routes: true,
  pcapInterface: null,
  pcapFilter: null,
  batch: 256,
  metrics: null,
  logLevel: "info",
  drainMs: 5000,
});

function validateDaemon(v: unknown): DaemonConfig {
  const path = ["daemon"];
  const o = object(v, path, DAEMON_KEYS);
  const io = has(o, "io") ? oneOf(o.io, ["daemon", "io"], ["tun", "pcap"] as const) : DEFAULT_DAEMON.io;
  const tunName = has(o, "tunName") ? text(o.tunName, ["daemon", "tunName"]) : DEFAULT_DAEMON.tunName;
  if (tunName.length > 15 || /[\s/]/.test(tunName)) fail(["daemon", "tunName"], `${quote(tunName)} is not an interface name (at most 15 characters, no spaces or "/")`);
  const pcapInterface = has(o, "pcapInterface") ? text(o.pcapInterface, ["daemon", "pcapInterface"]) : null;
  if (io === "pcap" && pcapInterface === null) fail(["daemon", "pcapInterface"], "required with io pcap: the interface to capture on");
  let metrics: string | null = null;
  if (has(o, "metrics")) {
    metrics = text(o.metrics, ["daemon", "metrics"]);
    const m = /^(.*):(\d+)$/.exec(metrics);
    if (!m || Number(m[2]) > 65535) fail(["daemon", "metrics"], `${quote(metrics)} is not HOST:PORT (e.g. "127.0.0.1:9464")`);
  }
  return {
    io,
    tunName,
    routes: optBoolean(o, "routes", path, DEFAULT_DAEMON.routes),
    pcapInterface,
    pcapFilter: has(o, "pcapFilter") ? text(o.pcapFilter, ["daemon", "pcapFilter"]) : null,
    batch: optInteger(o, "batch", path, [1, 4096], DEFAULT_DAEMON.batch),
    metrics,
    logLevel: has(o, "logLevel") ? oneOf(o.logLevel, ["daemon", "logLevel"], ["trace", "debug", "info", "warn", "error"] as const) : DEFAULT_DAEMON.logLevel,
    drainMs: optInteger(o, "drainMs", path, [0, 3600000], DEFAULT_DAEMON.drainMs),
  };
}

function hexKey(v: unknown, path: ConfigPath): Uint8Array {
  const t = text(v, path);
  if (!/^([0-9a-fA-F]{2}){16,64}$/.test(t)) fail(path, "must be 32 to 128 hex digits (16 to 64 bytes), e.g. from `openssl rand -hex 32`");
  return Uint8Array.from(Buffer.from(t, "hex"));
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
      const key = describeTransportAddress(protocol, addr.bytes, port);
      if (groups.some((x) => x.key === key)) fail(gp, `duplicate group ${key}`);
      groups.push({
        key, protocol, address: addr.text, addressBytes: addr.bytes, port,
        joinKey: hexKey(go.joinKey, [...gp, "joinKey"]),
        policy: has(go, "policy") ? oneOf(go.policy, [...gp, "policy"], POLICIES) : "proximity",
        affinity: has(go, "affinity") ? oneOf(go.affinity, [...gp, "affinity"], AFFINITY_MODES) : DEFAULT_AFFINITY,
      });
    });
  }
  return {
    id: has(o, "id") ? text(o.id, ["cluster", "id"]) : self,
    controlPort: optInteger(o, "controlPort", path, [1, 65535], 7470),
    key: hexKey(o.key, ["cluster", "key"]),
    seeds,
    replicas: optInteger(o, "replicas", path, [1, 8], 2),
    distances,
    groups,
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

  const name = has(o, "name") ? text(o.name, [...path, "name"]) : describeTransportAddress(protocol, addr.bytes, port);
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
      const ta = describeTransportAddress(group.protocol, group.addressBytes, group.port);
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
  return { proxy, daemon, cluster, capacity, groups };
}

