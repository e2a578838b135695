// The data-plane library: loads the Wasm core, fills its group and target
// tables from a configuration, hands out packet batches, and reads counters.
// The CLI and the daemon are thin shells over this class.
//
// Per packet, the host only places bytes in a batch and reads verdicts; all
// parsing, lookup and rewriting happens in the core, one call per batch.

import { instantiate, instantiateModule, type CoreBuild } from "./wasm.js";
import { adviseHugePages } from "./hugepages.js";
import { Counts, ControlError, CounterLayout, Desc, Layout, Limit, Policy, AffinityKey, Reason, Stage, Stat } from "../../assembly/shared/abi.js";
import { DataPlaneError } from "../errors.js";
import { parseAddress, parsePrefix, endpointKey, type Family, type ParsedAddress } from "../net/addr.js";
import { transportAddressKey } from "../net/ta.js";
import { PacketBatch } from "./batch.js";
import { PacketRing } from "./ring.js";
import { CaptureReader, type CaptureExports } from "../capture/reader.js";
import { CaptureWriter } from "../capture/writer.js";
import { OverlayPlane, type OverlayExports, type OverlaySettings } from "./overlay.js";
import {
  DEFAULT_CAPACITY, DEFAULT_HALF_OPEN_PER_SOURCE, DEFAULT_TIMEOUTS, DEFAULT_NAT_PORTS, DEFAULT_TUNNEL_MTU, type PiasConfig, type PolicyName,
  type Timeouts,
} from "../config/types.js";
import type { Protocol } from "../net/ta.js";

/** The raw Wasm exports the data plane uses (see assembly/index.ts). */
export interface DataPlaneExports extends CaptureExports, OverlayExports {
  alloc_buffer(size: number): number;
  memory_bytes(): number;
  dataplane_init(flows: number, groups: number, targets: number, fragments: number): number;
  scratch_ptr(): number;
  set_proxy_address(family: number): void;
  set_nat_ports(min: number, max: number): void;
  set_nat_ports_shared(min: number, max: number): void;
  set_verify_checksums(on: number): void;
  set_tunnel_mtu(mtu: number): void;
  set_timeouts(est: number, trans: number, udp: number, icmp: number): void;
  set_half_open_per_source(n: number): void;
  set_unresolved_to_host(on: number): void;
  set_unresolved_per_second(n: number): void;
  set_random_seed(seed: number): void;
  counters_ptr(): number;
  counters_reset(): void;
  group_add(family: number, proto: number, port: number, policy: number, affinity: number): number;
  group_remove(gid: number): number;
  group_set_policy(gid: number, policy: number, affinity: number): number;
  group_set_scopes(gid: number, n: number): number;
  group_set_pending(gid: number, pending: number): number;
  peers_clear(): void;
  peer_add(family: number): number;
  prefixes_clear(): void;
  prefix_add(family: number, length: number): number;
  set_control_port(port: number): void;
  group_commit(gid: number): number;
  group_table_digest(gid: number): number;
  target_add(gid: number, port: number, weight: number, aware: number, label: number, distance: number): number;
  target_remove(tid: number): number;
  target_set_up(tid: number, up: number): number;
  target_set_weight(tid: number, weight: number): number;
  target_packets(tid: number): number;
  target_active(tid: number): number;
  flows_live(): number;
  flows_capacity(): number;
  flow_bytes_per_flow(): number;
  flows_expire_all(now: number): number;
  process_batch(desc: number, n: number): number;
  inspect_batch(desc: number, n: number, out: number): void;
  abi_values(out: number): number;
  ring_reset(desc: number, n: number, base: number, stride: number, cap: number, link: number, time: number): void;
  gso_area(desc: number, maxDesc: number, arena: number, arenaBytes: number): void;
  gso_emitted(): number;
  reflect_batch(desc: number, n: number, out: number, arena: number, arenaLen: number): number;
  /** Only in the bench build. */
  bench_stop_after?(stage: number): void;
  bench_chase?(base: number, start: number, steps: number): number;
  bench_gather?(base: number, lines: number, n: number): number;
}

/** Proxy-wide settings (a plain struct with documented defaults, like KatranConfig). */
export interface DataPlaneSettings {
  /** The proxy's unicast IPv4 address: NAT source and tunnel endpoint for IPv4. */
  address?: string | null;
  /** The proxy's unicast IPv6 address. */
  address6?: string | null;
  /** NAT port (and ICMP identifier) range. Default [1024, 65535]. */
  natPorts?: readonly [number, number];
  /** The range several data planes (workers) share, natPorts being this one's slice: packets to a port of another's slice are counted (wrongWorker). */
  natPortsShared?: readonly [number, number];
  /** Drop packets whose checksums are wrong instead of passing the error on. Default false. */
  verifyChecksums?: boolean;
  /** MTU toward PIAS-aware targets. Default 1500. */
  tunnelMtu?: number;
  /** Idle timeouts in seconds. Defaults: 7440 / 240 / 300 / 60 (RFC 5382, RFC 4787). */
  timeouts?: Partial<Timeouts>;
  /** SYN-flood protection: flows opened by a SYN and not yet established, per client address, at most. Default 512. */
  halfOpenPerSource?: number;
  /**
   * Table sizes, fixed at creation. Defaults: 1M flows, 65536 groups, 65536 targets, a fragment entry per 16 flows
   * (at least 1024). `prefault`: write to every page of the tables at creation, so that no packet pays for the first
   * use of a page (the kernel's fault and zeroing, each time a new flow takes a record never used before, or an
   * index bucket no key reached yet); the tables are then resident in full from the start. Default false: pages
   * are taken as flows reach them.
   */
  capacity?: { flows?: number; groups?: number; targets?: number; fragments?: number; prefault?: boolean };
  /** Seed of the `random` policy. */
  randomSeed?: number;
  /** Which build of the core to load (default: release, or PIAS_WASM=debug); "bench" is for `npm run bench:scale`. */
  build?: CoreBuild;
  /** A compiled core to use instead of `build` (another build's, for a benchmark that compares two: `npm run bench:pair`). */
  module?: WebAssembly.Module;
  /** Transparent huge pages for the flow table and index when they take 8 MiB or more (native/memory.cc; default true; skipped where unavailable). */
  hugePages?: boolean;
  /** Other proxies' unicast addresses: once set, IP-in-IP is accepted only from them (else tunnel-from-stranger). */
  peers?: readonly string[];
  /** Prefixes all proxies announce: a packet to an address there with no group goes to the host (HostWork.Unresolved). */
  anycastPrefixes?: readonly string[];
  /** UDP to this port of an anycast or proxy address goes to the host (HostWork.Control); 0 = none. */
  controlPort?: number;
  /** Serve as an overlay node (README "Reaching an overlay"): see DataPlane.overlay. */
  overlay?: OverlaySettings;
}

export interface TargetSpec {
  address: string;
  /** Port on the target; 0 or absent keeps the client's destination port. */
  port?: number;
  weight?: number;
  /** PIAS-aware: reached through IP-in-IP, answers clients directly. */
  aware?: boolean;
  label?: string | null;
  distance?: number;
}

export interface GroupSpec {
  protocol: Protocol;
  address: string;
  /** 0 or absent: every port of the address. */
  port?: number;
  policy?: PolicyName;
  /** What affinity hashes: the client address (default) or the whole 5-tuple. */
  affinity?: "client" | "flow";
  name?: string;
  targets?: readonly TargetSpec[];
  /** Scoping: clients in `prefix` only reach targets labelled `label` (longest prefix wins). */
  scopes?: readonly ScopeSpec[];
}

export interface ScopeSpec {
  /** "10.1.0.0/16" or "2001:db8:c::/48", same family as the group. */
  prefix: string;
  label: string;
}

const POLICIES: Record<PolicyName, Policy> = {
  affinity: Policy.Affinity,
  "round-robin": Policy.RoundRobin,
  random: Policy.Random,
  "least-load": Policy.LeastLoad,
  proximity: Policy.Proximity,
};

/** Drop reason as printed: Reason.NotForProxy -> "not-for-proxy". */
export function reasonName(r: number): string {
  const name = Reason[r] ?? `reason-${r}`;
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

export const REASON_NAMES: readonly string[] = Array.from({ length: Counts.REASON_COUNT }, (_, i) => reasonName(i));

function protoNumber(protocol: Protocol, family: Family): number {
  if (protocol === "tcp") return 6;
  if (protocol === "udp") return 17;
  return family === 4 ? 1 : 58;
}

function controlError(code: number, what: string): DataPlaneError {
  const why: Record<number, string> = {
    [ControlError.NoMemory]: "out of memory",
    [ControlError.TableFull]: "table full",
    [ControlError.Exists]: "already exists",
    [ControlError.NotFound]: "not found",
    [ControlError.Invalid]: "invalid argument",
  };
  const failure = code === ControlError.NoMemory || code === ControlError.TableFull ? "full"
    : code === ControlError.Exists ? "exists" : code === ControlError.NotFound ? "not-found" : code === ControlError.Invalid ? "invalid" : "other";
  return new DataPlaneError(`${what}: ${why[code] ?? `error ${code}`}`, failure);
}

interface TargetEntry {
  readonly tid: number;
  readonly key: string;
  spec: TargetSpec;
}

interface GroupEntry {
  readonly gid: number;
  readonly key: string;
  readonly protocol: Protocol;
  readonly family: Family;
  spec: GroupSpec;
  readonly targets: Map<string, TargetEntry>;
}

/** What applyGroups()/applyConfig() changed. */
export interface ReloadSummary {
  groupsAdded: string[];
  groupsRemoved: string[];
  groupsChanged: string[];
  targetsAdded: number;
  targetsRemoved: number;
  targetsChanged: number;
}

export interface TargetStats {
  group: string;
  endpoint: string;
  packets: number;
  activeFlows: number;
  up: boolean;
}

export interface Counters {
  packets: number;
  bytes: number;
  forwarded: number;
  dropped: number;
  toHost: number;
  reflected: number;
  flowsCreated: number;
  flowsExpired: number;
  flowsLive: number;
  encapsulated: number;
  decapsulated: number;
  icmpTranslated: number;
  icmpGenerated: number;
  /** GSO super-packets received (Link.VNET), each NATed as one packet or segmented. */
  superPackets: number;
  /** Super-packets segmented by the core (toward PIAS-aware targets), and the segments they made. */
  segmented: number;
  segments: number;
  /** Packets to the proxy with a NAT port of another worker's slice (natPortsShared): steered to the wrong worker. */
  wrongWorker: number;
  /** Drop reason -> count, only reasons that occurred. */
  drops: Record<string, number>;
}

/** Group key as users write it: "tcp 203.0.113.10:80" (the TA's key, src/net/ta.ts). */
export function groupKey(protocol: Protocol, address: string, port = 0): string {
  return transportAddressKey(protocol, parseAddress(address).bytes, port);
}

/** The parser's view of one packet (DataPlane.inspect), for tests and tools. */
export interface ParsedView {
  /** Drop reason code of the parse (Reason.None = 0: it parsed). */
  reason: number;
  family: number;
  proto: number;
  fragment: boolean;
  /** TCP or UDP with its header in this packet. */
  hasPorts: boolean;
  icmpError: boolean;
  truncated: boolean;
  sport: number;
  dport: number;
  icmpType: number;
  icmpCode: number;
  /** Source and destination addresses (4 or 16 bytes). */
  src: Uint8Array;
  dst: Uint8Array;
}

/** Tables smaller than this keep 4 KiB pages (8 MiB: about 130k flows): they fit the TLB well enough, and a 2 MiB page costs more to fault in. */
const HUGE_PAGES_FROM = 8 << 20;

/**
 * Write a zero to every 4 KiB page of `buffer` from `from` on: freshly reserved
 * pages, all zero, so the writes change nothing but make the kernel back them
 * (after the huge-page advice, so that a 2 MiB page backs each 2 MiB at once).
 */
function prefault(buffer: ArrayBuffer, from: number): void {
  const bytes = new Uint8Array(buffer);
  for (let at = from; at < bytes.length; at += 4096) bytes[at] = 0;
}

/** Bytes per inspect record (assembly/host/inspect.ts). */
const INSPECT_SIZE = 48;

export class DataPlane {
  /** The Wasm core's exports: only src/core/ touches them; everything else goes through this class. */
  private readonly core: DataPlaneExports;
  private inspectOut = 0;
  private inspectCap = 0;
  private readonly groups = new Map<string, GroupEntry>();
  private readonly labels = new Map<string, number>();
  private readonly up = new Map<number, boolean>();

  private settings: DataPlaneSettings;
  /** Bytes of the tables advised to use huge pages (0: none, negative: the kernel's errno). */
  readonly hugePages: number = 0;
  /** The overlay tables and partition, when `settings.overlay` was given. */
  readonly overlay: OverlayPlane | null = null;

  constructor(settings: DataPlaneSettings = {}) {
    this.settings = settings;
    this.core = settings.module ? instantiateModule<DataPlaneExports>(settings.module) : instantiate<DataPlaneExports>(settings.build);
    const cap = { ...DEFAULT_CAPACITY, ...settings.capacity };
    const untouched = (this.core.memory.buffer as ArrayBuffer).byteLength; // the tables are reserved from here on
    if (this.core.dataplane_init(cap.flows, cap.groups, cap.targets, settings.capacity?.fragments ?? 0) !== 0) {
      throw new DataPlaneError(`cannot reserve memory for ${cap.flows} flows, ${cap.groups} groups, ${cap.targets} targets` +
        ` (at most ${Limit.FLOWS} flows and ${Limit.INDEX_ENTRIES} groups or targets: the tables' indexes)`);
    }
    // The tables are reserved (not yet touched): huge pages for them, where the addon and the kernel allow.
    // Smaller tables fit the TLB's reach with 4 KiB pages, and a 2 MiB page costs more to fault in.
    const tables = this.core.memory.buffer as ArrayBuffer;
    if (settings.hugePages !== false && tables.byteLength >= HUGE_PAGES_FROM) this.hugePages = adviseHugePages(tables).bytes;
    if (cap.prefault) prefault(tables, untouched);
    if (settings.address != null) this.setProxyAddress(settings.address, 4);
    if (settings.address6 != null) this.setProxyAddress(settings.address6, 6);
    const [min, max] = settings.natPorts ?? DEFAULT_NAT_PORTS;
    this.core.set_nat_ports(min, max);
    if (settings.natPortsShared) this.core.set_nat_ports_shared(settings.natPortsShared[0], settings.natPortsShared[1]);
    this.core.set_verify_checksums(settings.verifyChecksums ? 1 : 0);
    this.core.set_tunnel_mtu(settings.tunnelMtu ?? DEFAULT_TUNNEL_MTU);
    const t = { ...DEFAULT_TIMEOUTS, ...settings.timeouts };
    this.core.set_timeouts(t.tcpEstablished, t.tcpTransitory, t.udp, t.icmp);
    this.core.set_half_open_per_source(settings.halfOpenPerSource ?? DEFAULT_HALF_OPEN_PER_SOURCE);
    if (settings.randomSeed !== undefined) this.core.set_random_seed(settings.randomSeed >>> 0);
    if (settings.peers) this.setPeers(settings.peers);
    if (settings.anycastPrefixes) this.setAnycastPrefixes(settings.anycastPrefixes);
    if (settings.controlPort) this.setControlPort(settings.controlPort);
    if (settings.overlay) this.overlay = new OverlayPlane(this.core, settings.overlay);
  }

  /** The other proxies: once any is set, IP-in-IP to this proxy is accepted only from them. */
  setPeers(addresses: readonly string[]): void {
    this.core.peers_clear();
    for (const a of addresses) {
      const { family } = this.writeScratch(a);
      if (this.core.peer_add(family) < 0) throw new DataPlaneError(`too many peers (at most 4096)`);
    }
  }

  /** The anycast prefixes: packets to an address there with no group are handed to the host to resolve. */
  setAnycastPrefixes(prefixes: readonly string[]): void {
    this.core.prefixes_clear();
    for (const text of prefixes) {
      const p = parsePrefix(text);
      this.bytes().set(p.bytes, this.core.scratch_ptr());
      if (this.core.prefix_add(p.family, p.length) < 0) throw new DataPlaneError(`too many anycast prefixes (at most 64): ${text}`);
    }
  }

  /** UDP to this port of an anycast or proxy address is a control message for the host (0: none). */
  setControlPort(port: number): void {
    this.core.set_control_port(port & 0xffff);
  }

  /**
   * Whether packets to an anycast-prefix address with no group go to the host
   * to be resolved (HostWork.Unresolved, the default) or are dropped as
   * no-group: a proxy with nothing to resolve them (no cluster) turns it off.
   */
  setResolveUnknown(on: boolean): void {
    this.core.set_unresolved_to_host(on ? 1 : 0);
  }

  /**
   * Packets handed to the host to resolve, per second at most (default
   * 1000): past it they are dropped as resolve-throttled, so a flood to
   * random addresses of the prefixes costs the host bounded work.
   */
  setResolveBudget(perSecond: number): void {
    this.core.set_unresolved_per_second(Math.max(0, Math.floor(perSecond)) >>> 0);
  }

  /**
   * Mark a group as waiting for its rendezvous answer: while it has no usable
   * target its packets go to the host (HostWork.Unresolved) instead of being
   * dropped as no-target.
   */
  setGroupPending(key: string, pending: boolean): void {
    const rc = this.core.group_set_pending(this.group(key).gid, pending ? 1 : 0);
    if (rc < 0) throw controlError(rc, `group ${key}`);
  }

  /** The data plane a validated configuration describes (see src/config/types.ts). */
  static fromConfig(config: PiasConfig, extra: Pick<DataPlaneSettings, "randomSeed" | "natPortsShared" | "overlay" | "capacity"> = {}): DataPlane {
    return DataPlane.create({ ...config.proxy, capacity: config.capacity, ...extra }, config.groups);
  }

  /** A data plane with every group of `groups` installed. */
  static create(settings: DataPlaneSettings, groups: readonly GroupSpec[]): DataPlane {
    const dp = new DataPlane(settings);
    for (const g of groups) dp.addGroup(g);
    return dp;
  }

  private bytes(): Uint8Array {
    return new Uint8Array(this.core.memory.buffer);
  }

  /** Parse `address` into the core's scratch area (for the control call that follows); returns its bytes and family. */
  private writeScratch(address: string, expect?: Family): ParsedAddress {
    const a = parseAddress(address);
    if (expect !== undefined && a.family !== expect) {
      throw new DataPlaneError(`${address}: expected an IPv${expect} address`);
    }
    this.bytes().set(a.bytes, this.core.scratch_ptr());
    return a;
  }

  private setProxyAddress(address: string, family: Family): void {
    this.writeScratch(address, family);
    this.core.set_proxy_address(family);
  }

  private labelId(label: string | null | undefined): number {
    if (label == null) return 0;
    let id = this.labels.get(label);
    if (id === undefined) {
      id = this.labels.size + 1;
      if (id > 255) throw new DataPlaneError(`too many distinct target labels (at most 255): ${label}`);
      this.labels.set(label, id);
    }
    return id;
  }

  /** Install a group and its targets. Returns the group key ("tcp 203.0.113.10:80"). */
  addGroup(spec: GroupSpec): string {
    const { bytes, family } = this.writeScratch(spec.address);
    const key = transportAddressKey(spec.protocol, bytes, spec.port ?? 0);
    const port = spec.protocol === "icmp" ? 0 : (spec.port ?? 0);
    const policy = POLICIES[spec.policy ?? "affinity"];
    if (policy === undefined) throw new DataPlaneError(`${key}: unknown policy ${spec.policy}`);
    const affinity = spec.affinity === "flow" ? AffinityKey.FiveTuple : AffinityKey.ClientAddress;
    const gid = this.core.group_add(family, protoNumber(spec.protocol, family), port, policy, affinity);
    if (gid < 0) throw controlError(gid, `group ${key}`);
    const entry: GroupEntry = { gid, key, protocol: spec.protocol, family, spec, targets: new Map() };
    this.groups.set(key, entry);
    for (const t of spec.targets ?? []) this.installTarget(entry, t);
    if (spec.scopes?.length) this.installScopes(entry, spec.scopes);
    this.commit(entry);
    return key;
  }

  /**
   * Reload: make this data plane run `config`, changing only what differs
   * (see applyGroups). NAT ports, checksum policy, tunnel MTU and timeouts
   * change in place; the proxy's addresses, the table sizes and whether the
   * tables are prefaulted cannot change without a restart, and a config that
   * changes them is refused before anything is touched. `extraGroups` are
   * kept beside the config's groups (the daemon's: groups its targets
   * joined, groups resolved to JAPs).
   */
  applyConfig(config: PiasConfig, extraGroups: readonly GroupSpec[] = []): ReloadSummary {
    const now = this.settings;
    const fixed: string[] = [];
    if ((config.proxy.address ?? null) !== (now.address ?? null)) fixed.push("proxy.address");
    if ((config.proxy.address6 ?? null) !== (now.address6 ?? null)) fixed.push("proxy.address6");
    const cap = { ...DEFAULT_CAPACITY, ...now.capacity };
    for (const k of ["flows", "groups", "targets", "prefault"] as const) if (config.capacity[k] !== cap[k]) fixed.push(`capacity.${k}`);
    if (fixed.length) throw new DataPlaneError(`${fixed.join(", ")} cannot change without a restart`);
    this.core.set_nat_ports(config.proxy.natPorts[0], config.proxy.natPorts[1]);
    this.core.set_verify_checksums(config.proxy.verifyChecksums ? 1 : 0);
    this.core.set_tunnel_mtu(config.proxy.tunnelMtu);
    const t = config.proxy.timeouts;
    this.core.set_timeouts(t.tcpEstablished, t.tcpTransitory, t.udp, t.icmp);
    this.core.set_half_open_per_source(config.proxy.halfOpenPerSource);
    this.setAnycastPrefixes(config.proxy.anycastPrefixes);
    this.settings = { ...now, ...config.proxy, capacity: config.capacity };
    return this.applyGroups([...config.groups, ...extraGroups]);
  }

  /**
   * Make the installed groups those of `next`, changing only what differs, so
   * live flows to groups and targets that stay keep their targets and NAT
   * bindings. A target whose weight changes keeps its flows; one whose
   * awareness, label, distance or port changes is replaced (its flows end).
   * Targets that stay keep their health.
   */
  applyGroups(next: readonly GroupSpec[]): ReloadSummary {
    const summary: ReloadSummary = { groupsAdded: [], groupsRemoved: [], groupsChanged: [], targetsAdded: 0, targetsRemoved: 0, targetsChanged: 0 };
    const wanted = new Map(next.map((g) => [groupKey(g.protocol, g.address, g.port ?? 0), g] as const));
    for (const key of [...this.groups.keys()]) {
      if (!wanted.has(key)) {
        this.removeGroup(key);
        summary.groupsRemoved.push(key);
      }
    }
    for (const [key, spec] of wanted) {
      const g = this.groups.get(key);
      if (!g) {
        this.addGroup(spec);
        summary.groupsAdded.push(key);
        continue;
      }
      let changed = false;
      if ((spec.policy ?? "affinity") !== (g.spec.policy ?? "affinity") || (spec.affinity ?? "client") !== (g.spec.affinity ?? "client")) {
        this.setPolicy(key, spec.policy ?? "affinity", spec.affinity ?? "client");
        changed = true;
      }
      if (JSON.stringify(spec.scopes ?? []) !== JSON.stringify(g.spec.scopes ?? [])) {
        this.setScopes(key, spec.scopes ?? []);
        changed = true;
      }
      const targets = new Map((spec.targets ?? []).map((t) => [endpointKey(parseAddress(t.address).bytes, t.port ?? 0), t] as const));
      const replaced = new Set<string>();
      for (const [endpoint, t] of [...g.targets]) {
        const want = targets.get(endpoint);
        const same = want && (want.aware ?? false) === (t.spec.aware ?? false) && (want.label ?? null) === (t.spec.label ?? null) &&
          (want.distance ?? 0) === (t.spec.distance ?? 0);
        if (!same) {
          this.removeTarget(key, endpoint);
          if (want) {
            replaced.add(endpoint);
            summary.targetsChanged++;
          } else {
            summary.targetsRemoved++;
          }
          changed = true;
        } else if ((want.weight ?? 1) !== (t.spec.weight ?? 1)) {
          this.setTargetWeight(key, endpoint, want.weight ?? 1);
          t.spec = want;
          summary.targetsChanged++;
          changed = true;
        }
      }
      for (const [endpoint, t] of targets) {
        if (g.targets.has(endpoint)) continue;
        this.installTarget(g, t);
        if (!replaced.has(endpoint)) summary.targetsAdded++;
        changed = true;
      }
      this.commit(g);
      g.spec = spec;
      if (changed) summary.groupsChanged.push(key);
    }
    return summary;
  }

  /** Replace a group's scope rules (an empty list removes scoping). Live flows keep their targets. */
  setScopes(key: string, scopes: readonly ScopeSpec[]): void {
    this.installScopes(this.group(key), scopes);
  }

  private installScopes(g: GroupEntry, scopes: readonly ScopeSpec[]): void {
    const SCOPE_SIZE = 20;
    if (scopes.length * SCOPE_SIZE > 4000) throw new DataPlaneError(`${g.key}: at most ${Math.floor(4000 / SCOPE_SIZE)} scope rules`);
    const mem = this.bytes();
    const base = this.core.scratch_ptr();
    mem.fill(0, base, base + scopes.length * SCOPE_SIZE);
    scopes.forEach((r, i) => {
      const p = parsePrefix(r.prefix);
      if (p.family !== g.family) throw new DataPlaneError(`${g.key}: scope ${r.prefix} is not IPv${g.family}`);
      const at = base + i * SCOPE_SIZE;
      mem.set(p.bytes, at);
      mem[at + 16] = p.length;
      mem[at + 17] = this.labelId(r.label);
    });
    const rc = this.core.group_set_scopes(g.gid, scopes.length);
    if (rc < 0) throw controlError(rc, `scopes of ${g.key}`);
  }

  removeGroup(key: string): void {
    const g = this.group(key);
    const rc = this.core.group_remove(g.gid);
    if (rc < 0) throw controlError(rc, `group ${key}`);
    for (const t of g.targets.values()) this.up.delete(t.tid);
    this.groups.delete(key);
  }

  /** Change a group's selection policy; live flows keep their targets. */
  setPolicy(key: string, policy: PolicyName, affinity: "client" | "flow" = "client"): void {
    const g = this.group(key);
    const p = POLICIES[policy];
    if (p === undefined) throw new DataPlaneError(`${key}: unknown policy ${policy}`);
    const rc = this.core.group_set_policy(g.gid, p, affinity === "flow" ? AffinityKey.FiveTuple : AffinityKey.ClientAddress);
    if (rc < 0) throw controlError(rc, `group ${key}`);
    this.commit(g);
  }

  addTarget(key: string, spec: TargetSpec): void {
    const g = this.group(key);
    this.installTarget(g, spec);
    this.commit(g);
  }

  removeTarget(key: string, endpoint: string): void {
    const g = this.group(key);
    this.uninstallTarget(g, this.target(g, endpoint));
    this.commit(g);
  }

  /**
   * Several target changes to one group, with one update of its selection
   * table at the end (the table work of a batch of joins is paid once):
   * removes the targets `remove` names (endpoint keys; unknown ones are
   * skipped), then installs each of `add`. Returns, per add, null or why the
   * core refused it; a refused add does not stop the others.
   */
  updateTargets(key: string, remove: readonly string[], add: readonly TargetSpec[]): (DataPlaneError | null)[] {
    const g = this.group(key);
    for (const endpoint of remove) {
      const t = g.targets.get(endpoint);
      if (t) this.uninstallTarget(g, t);
    }
    const added: TargetEntry[] = [];
    const out = add.map((spec) => {
      try {
        added.push(this.installTarget(g, spec));
        return null;
      } catch (err) {
        if (err instanceof DataPlaneError) return err;
        throw err;
      }
    });
    try {
      this.commit(g);
    } catch (err) {
      // no memory for the new table: the group keeps its old one, without the adds
      if (!(err instanceof DataPlaneError)) throw err;
      for (const t of added) this.uninstallTarget(g, t);
      this.commit(g);
      return out.map((e) => e ?? err);
    }
    return out;
  }

  private uninstallTarget(g: GroupEntry, t: TargetEntry): void {
    const rc = this.core.target_remove(t.tid);
    if (rc < 0) throw controlError(rc, `target ${t.key} of ${g.key}`);
    g.targets.delete(t.key);
    this.up.delete(t.tid);
  }

  /** Mark a target up or down: new flows avoid a down target at once. */
  setTargetUp(key: string, endpoint: string, up: boolean): void {
    const g = this.group(key);
    const t = this.target(g, endpoint);
    const rc = this.core.target_set_up(t.tid, up ? 1 : 0);
    if (rc < 0) throw controlError(rc, `target ${endpoint} of ${key}`);
    this.up.set(t.tid, up);
    this.commit(g);
  }

  setTargetWeight(key: string, endpoint: string, weight: number): void {
    const g = this.group(key);
    const t = this.target(g, endpoint);
    const rc = this.core.target_set_weight(t.tid, weight);
    if (rc < 0) throw controlError(rc, `target ${endpoint} of ${key}`);
    this.commit(g);
  }

  private installTarget(g: GroupEntry, spec: TargetSpec): TargetEntry {
    if (g.protocol === "icmp" && spec.port) {
      throw new DataPlaneError(`target ${spec.address} of ${g.key}: an ICMP target has no port`);
    }
    const { bytes, family } = this.writeScratch(spec.address, g.family);
    const key = endpointKey(bytes, spec.port ?? 0);
    const tid = this.core.target_add(g.gid, spec.port ?? 0, spec.weight ?? 1, spec.aware ? 1 : 0,
      this.labelId(spec.label), spec.distance ?? 0);
    if (tid < 0) throw controlError(tid, `target ${key} of ${g.key} (IPv${family})`);
    const entry = { tid, key, spec };
    g.targets.set(key, entry);
    this.up.set(tid, true);
    return entry;
  }

  private commit(g: GroupEntry): void {
    const rc = this.core.group_commit(g.gid);
    if (rc < 0) throw controlError(rc, `group ${g.key}`);
  }

  private group(key: string): GroupEntry {
    const g = this.groups.get(key);
    if (!g) throw new DataPlaneError(`no group ${key}`);
    return g;
  }

  private target(g: GroupEntry, endpoint: string): TargetEntry {
    const t = g.targets.get(endpoint);
    if (!t) throw new DataPlaneError(`group ${g.key} has no target ${endpoint}`);
    return t;
  }

  /** A batch of `slots` packets with `arenaBytes` of packet memory, in this data plane's memory. */
  createBatch(slots = 256, arenaBytes = slots * 2048): PacketBatch {
    const desc = this.core.alloc_buffer(slots * Layout.DESC_SIZE);
    const arena = this.core.alloc_buffer(arenaBytes);
    if (!desc || !arena) throw new DataPlaneError("out of memory for a packet batch");
    return new PacketBatch(this.core, desc, slots, arena, arenaBytes);
  }

  /** Run the pipeline over the first `count` packets of the batch: one call into the core. Returns how many went to the host. */
  process(batch: PacketBatch, count = batch.count): number {
    return this.core.process_batch(batch.desc, count);
  }

  /**
   * Run the pipeline over `n` descriptors at `desc` (a batch the I/O filled
   * in place: a PacketRing's, a capture reader's). One call into the core.
   * Returns how many packets got a ToHost verdict.
   */
  processBatch(desc: number, n: number): number {
    return this.core.process_batch(desc, n);
  }

  /**
   * Bench build only (`build: "bench"`): from now on every packet stops after
   * `stage` (Stage.Verdict: the whole pipeline again). For timing stages.
   */
  stopAfter(stage: Stage): void {
    if (!this.core.bench_stop_after) throw new DataPlaneError('stopAfter needs the bench build of the core (build: "bench")');
    this.core.bench_stop_after(stage);
  }

  /**
   * Bench build only: the memory floors bench:scale measures beside the
   * stages, over `lines` 64-byte lines at `base` (a buffer of this data
   * plane): "chase" follows `n` dependent links from line `start` (each
   * line's first u32 names the next), "gather" makes `n` independent loads
   * at random lines. Returns a value of the loads.
   */
  memoryFloor(kind: "chase" | "gather", base: number, lines: number, n: number, start = 0): number {
    const chase = this.core.bench_chase, gather = this.core.bench_gather;
    if (!chase || !gather) throw new DataPlaneError('memoryFloor needs the bench build of the core (build: "bench")');
    return kind === "chase" ? chase(base, start, n) : gather(base, lines, n);
  }

  /**
   * `pias replay --reflect`: for each packet of desc[0..n) forwarded to a
   * legacy target, write the target's reply into descriptor i of `out` (with
   * its bytes in `arena`); others get an empty slot. Returns replies made.
   */
  reflectBatch(desc: number, n: number, out: PacketBatch, arenaBytes = out.arenaBytes): number {
    return this.core.reflect_batch(desc, n, out.desc, out.arena, Math.min(arenaBytes, out.arenaBytes));
  }

  /** The parser's view of packets desc[0..n): what the core sees, changing nothing. */
  inspect(desc: number, n: number): ParsedView[] {
    if (this.inspectCap < n) {
      this.inspectOut = this.allocBuffer(n * INSPECT_SIZE);
      this.inspectCap = n;
    }
    this.core.inspect_batch(desc, n, this.inspectOut);
    const mem = this.memory();
    const out: ParsedView[] = [];
    for (let i = 0; i < n; i++) {
      const o = this.inspectOut + i * INSPECT_SIZE;
      const family = mem[o + 1];
      const len = family === 6 ? 16 : 4;
      out.push({
        reason: mem[o],
        family,
        proto: mem[o + 2],
        fragment: (mem[o + 3] & 1) !== 0,
        hasPorts: (mem[o + 3] & 2) !== 0,
        icmpError: (mem[o + 3] & 4) !== 0,
        truncated: (mem[o + 3] & 8) !== 0,
        sport: mem[o + 4] | (mem[o + 5] << 8), // host order, little-endian (assembly/host/inspect.ts)
        dport: mem[o + 6] | (mem[o + 7] << 8),
        icmpType: mem[o + 8],
        icmpCode: mem[o + 9],
        src: mem.slice(o + 12, o + 12 + len),
        dst: mem.slice(o + 28, o + 28 + len),
      });
    }
    return out;
  }

  /**
   * Fixed packet slots for live I/O (see PacketRing), in this data plane's
   * memory. With `segments`, the ring also carries the segment area
   * super-packets to PIAS-aware targets are cut into (Link.VNET input).
   */
  createRing(slots: number, capacity: number, segments = false): PacketRing {
    const ring = new PacketRing(this.core, slots, capacity, segments);
    if (segments) this.segmentDesc = ring.desc + slots * Layout.DESC_SIZE;
    return ring;
  }

  /** The segment area's descriptors (createRing with segments, createSegmentArea). */
  private segmentDesc = 0;

  /** Views of the packets the last process put into the segment area, in order; valid until the next process. */
  emittedSegments(): Uint8Array[] {
    const n = this.segmentDesc ? this.core.gso_emitted() : 0;
    const mem = this.memory();
    const v = new DataView(mem.buffer);
    return Array.from({ length: n }, (_, i) => {
      const d = this.segmentDesc + i * Layout.DESC_SIZE;
      const off = v.getUint32(d + Desc.OFF, true);
      return mem.subarray(off, off + v.getUint32(d + Desc.LEN, true));
    });
  }

  /**
   * A segment area of `descriptors` spare descriptors and `bytes` of arena,
   * registered with the core (replacing any before, a ring's included):
   * super-packets (Link.VNET) to PIAS-aware targets are cut into it, and
   * after one is, every later forwarded packet of the batch moves there too.
   * After each process(), send the batch, then the area's first
   * segmentsEmitted() packets. Without an area such super-packets are dropped
   * as gso-no-room.
   */
  createSegmentArea(descriptors: number, bytes: number): PacketBatch {
    const desc = this.allocBuffer(descriptors * Layout.DESC_SIZE);
    const arena = this.allocBuffer(bytes);
    this.core.gso_area(desc, descriptors, arena, bytes);
    this.segmentDesc = desc;
    return new PacketBatch(this.core, desc, descriptors, arena, bytes);
  }

  /** Packets the last process() put into the segment area. */
  segmentsEmitted(): number {
    return this.core.gso_emitted();
  }

  /** A reader that frames the records of a pcap/pcapng file straight into this data plane's memory (`readAhead`: for readBatchAhead). */
  openCaptureReader(path: string, strictLinks = false, readAhead = false): CaptureReader {
    return new CaptureReader(path, this.core, strictLinks, readAhead);
  }

  /**
   * A writer that frames forwarded packets from this data plane's memory into
   * a capture file (`capacity`: the most one batch frames; `writeBehind`: for
   * writeBatchBehind).
   */
  openCaptureWriter(path: string, capacity: number, writeBehind = false): CaptureWriter {
    return new CaptureWriter(path, this.core, capacity, writeBehind);
  }

  /** `bytes` of zeroed, page-aligned memory in the core, for the host's buffers. Throws when memory cannot grow. */
  allocBuffer(bytes: number): number {
    const p = this.core.alloc_buffer(bytes);
    if (!p) throw new DataPlaneError(`out of memory for a buffer of ${bytes} bytes`);
    return p;
  }

  /** The core's linear memory as bytes. A view: renew it after anything that may grow memory. */
  memory(): Uint8Array {
    return new Uint8Array(this.core.memory.buffer);
  }

  /** Size of the core's linear memory in bytes. */
  memoryBytes(): number {
    return this.core.memory_bytes();
  }

  /**
   * Huge pages for the host buffers reserved from byte `from` of the memory on
   * (from memoryBytes() before reserving them), before they are touched: for
   * large buffers streamed through once, such as a long replay's staging and
   * output, which a 2 MiB fault backs 512 pages at a time. Returns the bytes
   * advised (0: none, without the addon or with `hugePages: false`; negative:
   * the kernel's errno).
   */
  adviseHugePagesFrom(from: number): number {
    if (this.settings.hugePages === false) return 0;
    return adviseHugePages(this.core.memory.buffer as ArrayBuffer, from).bytes;
  }

  /**
   * The ABI as the core was compiled: its layout constants in the order of
   * ABI_VALUE_NAMES (src/core/abi.ts), to compare with this host's.
   */
  abiValues(): number[] {
    const n = this.core.abi_values(this.core.scratch_ptr());
    return Array.from(new Uint32Array(this.core.memory.buffer, this.core.scratch_ptr(), n));
  }

  /** Global counters and drop reasons. */
  counters(): Counters {
    const slots = CounterLayout.BYTES / 8;
    const c = new BigUint64Array(this.core.memory.buffer, this.core.counters_ptr(), slots);
    const stat = (s: Stat): number => Number(c[CounterLayout.STAT_BASE / 8 + s]);
    const drops: Record<string, number> = {};
    for (let r = 1; r < Counts.REASON_COUNT; r++) {
      const n = Number(c[r]);
      if (n) drops[reasonName(r)] = n;
    }
    return {
      packets: stat(Stat.Packets),
      bytes: stat(Stat.Bytes),
      forwarded: stat(Stat.Forwarded),
      dropped: stat(Stat.Dropped),
      toHost: stat(Stat.ToHost),
      reflected: stat(Stat.Reflected),
      flowsCreated: stat(Stat.FlowsCreated),
      flowsExpired: stat(Stat.FlowsExpired),
      flowsLive: this.core.flows_live(),
      encapsulated: stat(Stat.Encapsulated),
      decapsulated: stat(Stat.Decapsulated),
      icmpTranslated: stat(Stat.IcmpTranslated),
      icmpGenerated: stat(Stat.IcmpGenerated),
      superPackets: stat(Stat.SuperPackets),
      segmented: stat(Stat.Segmented),
      segments: stat(Stat.Segments),
      wrongWorker: stat(Stat.WrongWorker),
      drops,
    };
  }

  /** Per-target packet counts, active flows and health. */
  targetStats(): TargetStats[] {
    const out: TargetStats[] = [];
    for (const g of this.groups.values()) {
      for (const t of g.targets.values()) {
        out.push({
          group: g.key,
          endpoint: t.key,
          packets: this.core.target_packets(t.tid),
          activeFlows: this.core.target_active(t.tid),
          up: this.up.get(t.tid) ?? true,
        });
      }
    }
    return out;
  }

  /** A digest of a group's lookup table by its owners' identities (0: no table): equal digests, equal selection. */
  tableDigest(key: string): number {
    return this.core.group_table_digest(this.group(key).gid) >>> 0;
  }

  /** Keys of the installed groups. */
  groupKeys(): string[] {
    return [...this.groups.keys()];
  }

  /** Bytes of memory each flow costs (record plus index share). */
  bytesPerFlow(): number {
    return this.core.flow_bytes_per_flow();
  }

  /** Free every flow idle at `now` (seconds); a full sweep for control use, not per packet. */
  expireIdle(now: number): number {
    return this.core.flows_expire_all(now >>> 0) + (this.overlay?.expireIdle(now) ?? 0);
  }
}

export { Desc, Layout };
