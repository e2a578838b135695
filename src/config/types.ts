// The proxy configuration's model: the normalised types validateConfig()
// returns (src/config/validate.ts), their documented defaults and the limits
// the validator enforces. Types and constants only: nothing here validates.

import { availableParallelism } from "node:os";
import type { Family } from "../net/addr.js";
import type { Protocol } from "../net/ta.js";
import type { StoreConfig } from "./store.js";
import type { BgpConfig } from "./bgp.js";
import type { OverlayConfig } from "./overlay.js";

export { PROTOCOLS, type Protocol } from "../net/ta.js";

// ---------------------------------------------------------------- types

export type PolicyName = "affinity" | "round-robin" | "random" | "least-load" | "proximity";
/** What the affinity hash covers: the client address, or the whole 5-tuple. */
export type AffinityMode = "client" | "flow";

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
  /** Touch every page of the tables at start (DataPlaneSettings.capacity.prefault). */
  readonly prefault: boolean;
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
  /** SYN-flood protection: TCP flows opened by a SYN and not yet established, per client address, at most. */
  readonly halfOpenPerSource: number;
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
  /** The configured name, or "<protocol> <address>:<port>" (see transportAddressKey in src/net/ta.ts). */
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
  readonly io: "tun" | "pcap" | "xdp";
  /** TUN device name (the kernel adds a number for "%d"). */
  readonly tunName: string;
  /** TUN system calls: "readv" (readv/write per packet), "uring" (one io_uring_enter per batch each way), "auto" (the measured faster: uring where available). */
  readonly tunIo: "auto" | "readv" | "uring";
  /** TUN with the virtio-net header and offloads (checksum, TSO, USO) where the kernel accepts them: super-packets through the core. */
  readonly tunOffload: boolean;
  /** Forwarding workers (TUN, AF_XDP), each with its own core, NAT port slice and TUN queue or AF_XDP queues (1: forward in the main thread). Default: one per CPU. */
  readonly workers: number;
  /** Route the anycast prefixes and the proxy's addresses into the TUN device. */
  readonly routes: boolean;
  /** pcap: the interface to capture on and inject into. */
  readonly pcapInterface: string | null;
  /** pcap: extra BPF filter, ANDed with the one built from the anycast prefixes and proxy addresses. */
  readonly pcapFilter: string | null;
  /** xdp: the interfaces to serve (one: one-armed; two: client side and target side), an AF_XDP socket per RX queue. */
  readonly xdpInterfaces: readonly string[];
  /** xdp: attach the XDP program in the driver (native), as generic (skb) XDP, or native where the driver can (auto). */
  readonly xdpMode: "auto" | "native" | "generic";
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
  /** A second join key accepted during a rotation (a proxy answers a target with the key it signed with). */
  readonly acceptJoinKey: Uint8Array | null;
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
  /** A second key accepted (never signed with) during a rotation: the next key before it, the previous one after. */
  readonly acceptKey: Uint8Array | null;
  /** Membership and fleet configuration from a replicated store (null: seeds and heartbeats, this file only). */
  readonly store: StoreConfig | null;
  /** The other proxies' unicast addresses (their control endpoints and tunnel ends). */
  readonly seeds: readonly string[];
  /** RAPs per group. */
  readonly replicas: number;
  /** Configured distance to other proxies by id (proximity among JAPs); unlisted: 100. */
  readonly distances: Readonly<Record<string, number>>;
  readonly groups: readonly ClusterGroupConfig[];
  /** JAP: new targets admitted per second at most, over all sources. */
  readonly joinsPerSecond: number;
  /** IAP: packets to unknown TAs the data plane hands to the host per second at most (the rest: resolve-throttled). */
  readonly unresolvedPerSecond: number;
  /** IAP: lookups of unknown groups sent per second at most. */
  readonly lookupsPerSecond: number;
  /** IAP: seconds a "no JAP serves this group" answer is kept at most. */
  readonly negativeTtl: number;
}

export interface PiasConfig {
  readonly proxy: ProxyConfig;
  readonly daemon: DaemonConfig;
  /** null: a stand-alone proxy, serving only its configured groups. */
  readonly cluster: ClusterConfig | null;
  /** null: no BGP; the prefixes are routed to the proxy some other way (src/config/bgp.ts). */
  readonly bgp: BgpConfig | null;
  /** null: not an overlay node (src/config/overlay.ts). */
  readonly overlay: OverlayConfig | null;
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
  prefault: false,
});
export const DEFAULT_POLICY: PolicyName = "affinity";
export const DEFAULT_AFFINITY: AffinityMode = "client";
export const DEFAULT_WEIGHT = 1;
export const DEFAULT_AWARE = false;
export const DEFAULT_DISTANCE = 0;
export const DEFAULT_HALF_OPEN_PER_SOURCE = 512;

export const DEFAULT_DAEMON: DaemonConfig = Object.freeze({
  io: "tun",
  tunName: "pias%d",
  tunIo: "auto",
  tunOffload: true,
  workers: availableParallelism(),
  routes: true,
  pcapInterface: null,
  pcapFilter: null,
  xdpInterfaces: [],
  xdpMode: "auto",
  batch: 256,
  metrics: null,
  logLevel: "info",
  drainMs: 5000,
});

/** Inclusive ranges of the numeric settings. */
export const LIMITS = Object.freeze({
  port: [0, 65535],
  natPort: [1, 65535],
  tunnelMtu: [576, 65535],
  halfOpenPerSource: [1, 65535],
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

