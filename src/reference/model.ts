// A reference model of the data plane in plain TypeScript, for differential
// testing against the Wasm core (DESIGN.md sections 2-3; assembly/pipeline.ts
// and the modules it calls). It has the host API's shape (DataPlane in
// src/core/dataplane.ts): the same control calls, process() over a batch of
// packets, counters() and targetStats().
//
// Written for clarity, not speed: flows live in Maps keyed by strings,
// packets are read and written byte by byte, and — the point of the model —
// after a rewrite every checksum is RECOMPUTED FROM SCRATCH
// (src/reference/checksum.ts), where the core updates it incrementally.
//
// From scratch is only possible when the checksummed region is all in the
// capture and its checksum was right on input. Otherwise (a snaplen-truncated
// capture, a fragment, a checksum that was already wrong) the model falls
// back to an explicit RFC 1624 incremental update over the words the core
// changes — see `Fallback` below; every use is marked FALLBACK.
//
// What the model mirrors on purpose, because observable behaviour depends on
// it: the flow record allocation order (free list LIFO, then the high-water
// mark), eviction from the moving hand when the table is full, the per-batch
// sweep of 64 records from the same hand, NAT port probing, the random
// policy's generator, the IPv4 tunnel ID counter, and group/target table
// slots (for TableFull).
//
// Flows are found by key in two Maps (client->TA, target->proxy). A tuple
// could only name flows in both if a flow had the proxy's own address as its
// TA, and new flows to that address are refused; lookup() checks it anyway,
// because there the core's answer would depend on its hash-probe order.

import { AffinityKey, AuxFlag, HostWork, Layout, Policy, Reason, Verdict } from "../../assembly/shared/abi.js";
import type { Counters, DataPlaneSettings, GroupSpec, ScopeSpec, TargetSpec, TargetStats } from "../core/dataplane.js";
import { DEFAULT_CAPACITY, DEFAULT_HALF_OPEN_PER_SOURCE, DEFAULT_NAT_PORTS, DEFAULT_TIMEOUTS, type Timeouts } from "../config/types.js";
import { endpointKey, parseAddress, parsePrefix } from "../net/addr.js";
import { complement, onesSum, pseudoHeaderSum } from "./checksum.js";
import { addMember, commit, growMembers, RefGroup, RefTarget, Selector } from "./groups.js";
import { finalize, hashAddr, hashTuple, mix, SEED_FLOW, SEED_PORT } from "./hash.js";
import {
  addrLen, be16, dstOffset, icmpProto, isEchoReply, isEchoRequest, isV6Extension, parseIp, parsePacket, put16, put32,
  srcOffset, PROTO_AH, PROTO_FRAGMENT, PROTO_IPIP, PROTO_IPV6, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN,
  type Parsed,
} from "./parse.js";

/** One packet handed to the model (what DataPlane's batch.add() takes). */
export interface ModelPacket {
  /** Bytes from the link-layer header on. */
  data: Uint8Array;
  /** pcap LINKTYPE (default 101, raw IP). */
  link?: number;
  /** Arrival time in seconds. */
  time: number;
  /** Length on the wire (default: data.length). */
  wirelen?: number;
  /** A reply made by reflect(): counted apart, as the core does for AUX = Reflected. */
  reflected?: boolean;
}

/** What the core writes back for one packet. */
export interface ModelResult {
  verdict: Verdict;
  reason: Reason;
  aux: number;
  /** The packet bytes at the descriptor's OFF/LEN afterwards (for a drop: as the core left them). */
  data: Uint8Array;
  /** The descriptor's WIRELEN afterwards. */
  wirelen: number;
  link: number;
  time: number;
}

export class ModelError extends Error {}

const POLICIES: Record<string, Policy> = {
  affinity: Policy.Affinity,
  "round-robin": Policy.RoundRobin,
  random: Policy.Random,
  "least-load": Policy.LeastLoad,
  proximity: Policy.Proximity,
};

const REASON_COUNT = 32;
/** Half-open counters, indexed by a hash of the client address (the core's SOURCE_COUNTERS, SEED_SOURCE). */
const SOURCE_COUNTERS = 65536;
const SEED_SOURCE = 0x73796e73;

function reasonName(r: number): string {
  return (Reason[r] ?? `reason-${r}`).replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

const hex = (a: Uint8Array): string => Array.from(a, (x) => x.toString(16).padStart(2, "0")).join("");
const sameAddr = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Key of a flow's client -> TA direction. */
const fwdKey = (family: number, proto: number, src: Uint8Array, sport: number, dst: Uint8Array, dport: number): string =>
  `${family}/${proto} ${hex(src)}:${sport} > ${hex(dst)}:${dport}`;
/** Key of a NAT binding: target T:t -> proxy:x. */
const revKey = (family: number, proto: number, taddr: Uint8Array, tport: number, nport: number): string =>
  `${family}/${proto} ${hex(taddr)}:${tport} > proxy:${nport}`;

interface Flow {
  used: boolean;
  family: 4 | 6;
  proto: number;
  caddr: Uint8Array;
  cport: number;
  /** The TA port the client used (0 for ICMP). */
  gport: number;
  group: RefGroup;
  target: RefTarget;
  /** NAT port / ICMP identifier toward the target (legacy targets). */
  nport: number;
  aware: boolean;
  established: boolean;
  finFwd: boolean;
  finRev: boolean;
  closed: boolean;
  /** Opened by a SYN and not yet established or reset: counted against its source. */
  halfOpen: boolean;
  last: number;
  /** Hash of the client->TA tuple: NAT port start and IPv6 tunnel flow label. */
  hfwd: number;
  fwdKey: string;
  revKey: string;
}

/** A packet in its buffer, with headroom in front as the core's batch arena has. */
interface Frame {
  buf: Uint8Array;
  off: number;
  len: number;
  wirelen: number;
  link: number;
}

interface Quote {
  ip: number;
  hl: number;
  proto: number;
  l4: number;
  sport: number;
  dport: number;
  echoReply: boolean;
  /** End of the captured bytes (of the error message). */
  end: number;
  /** Total length the quoted header declares. */
  total: number;
  /** The quoted datagram is a (first) fragment. */
  fragment: boolean;
}

// ---------------------------------------------------------------- checksums

/** True when the IPv4 header at ip (hl bytes) verifies. */
function ipHeaderOk(b: Uint8Array, ip: number, hl: number): boolean {
  return onesSum(b, ip, ip + hl) === 0xffff;
}

/** Recompute the IPv4 header checksum from scratch. */
function ipHeaderFresh(b: Uint8Array, ip: number, hl: number): void {
  put16(b, ip + 10, 0);
  put16(b, ip + 10, complement(onesSum(b, ip, ip + hl)));
}

/** Sum of a transport region [l4, l4+len) with the pseudo-header of the IP header at ip (none for ICMPv4). */
function l4Sum(b: Uint8Array, family: 4 | 6, ip: number, proto: number, l4: number, len: number): number {
  let pseudo = 0;
  if (proto !== 1) {
    const n = addrLen(family);
    const s = ip + srcOffset(family);
    const d = ip + dstOffset(family);
    pseudo = pseudoHeaderSum(b.subarray(s, s + n), b.subarray(d, d + n), proto, len);
  }
  return onesSum(b, l4, l4 + len, pseudo);
}

/** Recompute a transport checksum at csumAt from scratch (UDP: a computed 0 is sent as 0xffff). */
function l4Fresh(b: Uint8Array, family: 4 | 6, ip: number, proto: number, l4: number, len: number, csumAt: number): void {
  put16(b, csumAt, 0);
  let c = complement(l4Sum(b, family, ip, proto, l4, len));
  if (proto === PROTO_UDP && c === 0) c = 0xffff;
  put16(b, csumAt, c);
}

/** The whole transport region of the parsed packet is in the capture. */
const l4Complete = (p: Parsed): boolean => p.hasL4Header && !p.truncated && !p.isFragment;

/** The packet's transport checksum is present, its region complete, and it verifies. */
function l4Ok(b: Uint8Array, p: Parsed): boolean {
  return p.csumAt >= 0 && l4Complete(p) && l4Sum(b, p.family, p.l3, p.proto, p.l4, p.l4Len) === 0xffff;
}

/**
 * FALLBACK: an explicit incremental update (RFC 1624 eqn. 3, HC' = ~(~HC +
 * sum of ~m + m')) over exactly the 16-bit words the core changes, for a
 * checksum the model cannot recompute (region not all captured, or wrong on
 * input: incremental update keeps it wrong by the same amount).
 */
class Fallback {
  private acc = 0;

  word(oldWord: number, newWord: number): this {
    this.acc += (~oldWord & 0xffff) + (newWord & 0xffff);
    return this;
  }

  bytes(oldBytes: Uint8Array, newBytes: Uint8Array): this {
    for (let i = 0; i < oldBytes.length; i += 2) this.word(be16(oldBytes, i), be16(newBytes, i));
    return this;
  }

  /** Apply to the checksum at `at`; `udp`: 0 stays 0 and a computed 0 becomes 0xffff. */
  applyAt(b: Uint8Array, at: number, udp = false): void {
    const c = be16(b, at);
    if (udp && c === 0) return;
    let s = (~c & 0xffff) + this.acc;
    while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
    let n = ~s & 0xffff;
    if (udp && n === 0) n = 0xffff;
    put16(b, at, n);
  }
}

function setLinkFamily(b: Uint8Array, at: number, kind: number, family: 4 | 6, current: 4 | 6): boolean {
  if (family === current) return true;
  if (kind === 1) {
    put16(b, at, family === 4 ? 0x0800 : 0x86dd);
    return true;
  }
  if (kind === 2 || kind === 3) {
    const af = family === 4 ? 2 : 24;
    if (kind === 2) b.set([af, 0, 0, 0], at);
    else b.set([0, 0, 0, af], at);
    return true;
  }
  return kind === 0; // raw carries both; fixed-family link types carry one
}

// ---------------------------------------------------------------- the model

interface GroupEntry {
  group: RefGroup;
  /** Endpoint key -> target, in installation order (as DataPlane lists them). */
  targets: Map<string, RefTarget>;
}

export class ReferenceModel {
  private readonly proxy4 = new Uint8Array(4);
  private readonly proxy6 = new Uint8Array(16);
  private hasProxy4 = false;
  private hasProxy6 = false;
  private readonly portMin: number;
  private readonly portMax: number;
  private readonly verifyChecksums: boolean;
  private readonly tunnelMtu: number;
  /** Other proxies (hex address); when any is known, IP-in-IP is accepted only from them. */
  private peers = new Set<string>();
  private anycast: { prefix: Uint8Array; length: number }[] = [];
  private controlPort = 0;
  private readonly timeouts: Timeouts;
  private readonly flowCap: number;
  private readonly groupCap: number;
  private readonly targetCap: number;
  private readonly selector: Selector;
  private ipId = 0;

  // groups and targets
  private readonly groups = new Map<string, GroupEntry>();
  /** Live groups by family/protocol/address/port. */
  private readonly groupIndex = new Map<string, RefGroup>();
  private readonly labels = new Map<string, number>();
  private groupSlots = 0;
  private targetSlots = 0;

  // flows
  private readonly flows: Flow[] = [];
  private hwm = 0;
  private readonly freeList: number[] = [];
  private hand = 0;
  private live = 0;
  private readonly fwd = new Map<string, number>();
  private readonly rev = new Map<string, number>();
  /** Fragment entries by fragKey(), in creation order (the core's table: see fragRemember). */
  private readonly frags = new Map<string, FragEntry>();
  private readonly fragCap: number;
  private readonly halfOpen = new Uint16Array(SOURCE_COUNTERS);
  private halfOpenPerSource: number;
  private resolveUnknown = true;
  /** Packets handed to the host to resolve per second (by the packets' clock), and what is left of this second's. */
  private resolvePerSecond = 1000;
  private resolveSecond = 0;
  private resolveLeft = 1000;

  // counters
  private readonly drops = new Array<number>(REASON_COUNT).fill(0);
  private readonly stat = {
    packets: 0, bytes: 0, forwarded: 0, dropped: 0, reflected: 0, flowsCreated: 0, flowsExpired: 0,
    encapsulated: 0, decapsulated: 0, icmpTranslated: 0, icmpGenerated: 0, toHost: 0,
  };

  constructor(settings: DataPlaneSettings = {}) {
    if (settings.address != null) {
      this.proxy4.set(this.parse(settings.address, 4));
      this.hasProxy4 = true;
    }
    if (settings.address6 != null) {
      this.proxy6.set(this.parse(settings.address6, 6));
      this.hasProxy6 = true;
    }
    [this.portMin, this.portMax] = settings.natPorts ?? DEFAULT_NAT_PORTS;
    this.verifyChecksums = settings.verifyChecksums ?? false;
    this.tunnelMtu = settings.tunnelMtu ?? 1500;
    if (settings.peers) this.setPeers(settings.peers);
    if (settings.anycastPrefixes) this.setAnycastPrefixes(settings.anycastPrefixes);
    if (settings.controlPort) this.setControlPort(settings.controlPort);
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...settings.timeouts };
    this.halfOpenPerSource = Math.min(settings.halfOpenPerSource ?? DEFAULT_HALF_OPEN_PER_SOURCE, 0xffff);
    const cap = { ...DEFAULT_CAPACITY, ...settings.capacity };
    this.flowCap = cap.flows;
    this.fragCap = Math.max(1024, cap.flows >>> 4);
    this.groupCap = cap.groups;
    this.targetCap = cap.targets;
    this.selector = new Selector(settings.randomSeed ?? 0);
  }

  private parse(address: string, expect?: 4 | 6): Uint8Array {
    const a = parseAddress(address);
    if (expect !== undefined && a.family !== expect) throw new ModelError(`${address}: expected an IPv${expect} address`);
    return a.bytes;
  }

  private proxyAddr(family: 4 | 6): Uint8Array {
    return family === 4 ? this.proxy4 : this.proxy6;
  }

  private isProxy(family: 4 | 6, a: Uint8Array): boolean {
    return family === 4 ? this.hasProxy4 && sameAddr(a, this.proxy4) : this.hasProxy6 && sameAddr(a, this.proxy6);
  }

  // ------------------------------------------------------------ control

  addGroup(spec: GroupSpec): string {
    const a = parseAddress(spec.address);
    const port = spec.protocol === "icmp" ? 0 : (spec.port ?? 0);
    const key = `${spec.protocol} ${endpointKey(a.bytes, port)}`;
    const policy = POLICIES[spec.policy ?? "affinity"];
    if (policy === undefined) throw new ModelError(`${key}: unknown policy ${spec.policy}`);
    const affinity = spec.affinity === "flow" ? AffinityKey.FiveTuple : AffinityKey.ClientAddress;
    const proto = spec.protocol === "tcp" ? 6 : spec.protocol === "udp" ? 17 : a.family === 4 ? 1 : 58;
    const ik = `${a.family}/${proto}/${hex(a.bytes)}/${port}`;
    if (this.groupIndex.has(ik)) throw new ModelError(`group ${key}: already exists`);
    if (this.groupSlots >= this.groupCap) throw new ModelError(`group ${key}: table full`);
    const g = new RefGroup(a.family, proto, a.bytes, port, policy, affinity);
    this.groupIndex.set(ik, g);
    this.groupSlots++;
    const entry: GroupEntry = { group: g, targets: new Map() };
    this.groups.set(key, entry);
    for (const t of spec.targets ?? []) this.installTarget(key, entry, t);
    if (spec.scopes?.length) this.installScopes(g, spec.scopes);
    commit(g);
    return key;
  }

  removeGroup(key: string): void {
    const { group: g } = this.entry(key);
    for (const t of g.targets) this.retire(t);
    g.targets = [];
    g.cap = 0;
    this.groupIndex.delete(`${g.family}/${g.proto}/${hex(g.addr)}/${g.port}`);
    g.live = false;
    g.table = [];
    g.near = [];
    this.maybeRecycleGroup(g);
    this.groups.delete(key);
  }

  setPolicy(key: string, policy: string, affinity: "client" | "flow" = "client"): void {
    const { group: g } = this.entry(key);
    const p = POLICIES[policy];
    if (p === undefined) throw new ModelError(`${key}: unknown policy ${policy}`);
    g.policy = p;
    g.affinity = affinity === "flow" ? AffinityKey.FiveTuple : AffinityKey.ClientAddress;
    commit(g);
  }

  addTarget(key: string, spec: TargetSpec): void {
    const e = this.entry(key);
    this.installTarget(key, e, spec);
    commit(e.group);
  }

  removeTarget(key: string, endpoint: string): void {
    const e = this.entry(key);
    const t = this.target(e, endpoint);
    e.group.targets = e.group.targets.filter((x) => x !== t); // keeps list order
    this.retire(t);
    e.targets.delete(endpoint);
    commit(e.group);
  }

  setTargetUp(key: string, endpoint: string, up: boolean): void {
    const e = this.entry(key);
    this.target(e, endpoint).up = up;
    commit(e.group);
  }

  setTargetWeight(key: string, endpoint: string, weight: number): void {
    const e = this.entry(key);
    const t = this.target(e, endpoint);
    if (weight >>> 0 === 0) throw new ModelError(`target ${endpoint} of ${key}: invalid argument`);
    t.weight = weight >>> 0;
    commit(e.group);
  }

  /** Free every flow idle at `now`; returns how many. */
  expireIdle(now: number): number {
    let freed = 0;
    for (let i = 0; i < this.hwm; i++) {
      const f = this.flows[i];
      if (f.used && this.stale(f, now >>> 0)) {
        this.flowFree(i);
        freed++;
      }
    }
    return freed;
  }

  /** Replace a group's scope rules. */
  setScopes(key: string, scopes: readonly ScopeSpec[]): void {
    this.installScopes(this.entry(key).group, scopes);
  }

  private labelId(label: string): number {
    if (!this.labels.has(label)) {
      if (this.labels.size + 1 > 255) throw new ModelError(`too many distinct target labels`);
      this.labels.set(label, this.labels.size + 1);
    }
    return this.labels.get(label)!;
  }

  private installScopes(g: RefGroup, scopes: readonly ScopeSpec[]): void {
    const rules = scopes.map((r) => {
      const p = parsePrefix(r.prefix);
      if (p.family !== g.family) throw new ModelError(`scope ${r.prefix} is not IPv${g.family}`);
      return { prefix: p.bytes, length: p.length, label: this.labelId(r.label) };
    });
    g.scopes = rules.sort((a, b) => b.length - a.length); // stable: equal lengths keep their order
  }

  private installTarget(key: string, e: GroupEntry, spec: TargetSpec): void {
    const g = e.group;
    if (g.proto === icmpProto(g.family) && spec.port) throw new ModelError(`target ${spec.address} of ${key}: an ICMP target has no port`);
    const addr = this.parse(spec.address, g.family);
    const port = spec.port ?? 0;
    const tkey = endpointKey(addr, port);
    if (spec.label != null) this.labelId(spec.label);
    const weight = (spec.weight ?? 1) >>> 0;
    if (weight === 0) throw new ModelError(`target ${tkey} of ${key}: invalid argument`);
    if (g.targets.some((t) => t.port === port && sameAddr(t.addr, addr))) throw new ModelError(`target ${tkey} of ${key}: already exists`);
    growMembers(g);
    if (this.targetSlots >= this.targetCap) throw new ModelError(`target ${tkey} of ${key}: table full`);
    const t = new RefTarget(g, addr, port, weight, spec.aware ?? false, spec.distance ?? 0, spec.label == null ? 0 : this.labels.get(spec.label)!);
    addMember(g, t);
    this.targetSlots++;
    e.targets.set(tkey, t);
  }

  private entry(key: string): GroupEntry {
    const e = this.groups.get(key);
    if (!e) throw new ModelError(`no group ${key}`);
    return e;
  }

  private target(e: GroupEntry, endpoint: string): RefTarget {
    const t = e.targets.get(endpoint);
    if (!t) throw new ModelError(`no target ${endpoint}`);
    return t;
  }

  private retire(t: RefTarget): void {
    t.live = false;
    t.up = false;
    this.maybeRecycleTarget(t);
  }

  private maybeRecycleTarget(t: RefTarget): void {
    if (t.live || !t.slotUsed || t.active !== 0) return;
    t.slotUsed = false;
    this.targetSlots--;
  }

  private maybeRecycleGroup(g: RefGroup): void {
    if (g.live || !g.slotUsed || g.flows !== 0) return;
    g.slotUsed = false;
    this.groupSlots--;
  }

  // ------------------------------------------------------------ read-out

  counters(): Counters {
    const drops: Record<string, number> = {};
    for (let r = 1; r < REASON_COUNT; r++) if (this.drops[r]) drops[reasonName(r)] = this.drops[r];
    return { ...this.stat, flowsLive: this.live, drops };
  }

  targetStats(): TargetStats[] {
    const out: TargetStats[] = [];
    for (const [key, e] of this.groups) {
      for (const [endpoint, t] of e.targets) {
        out.push({ group: key, endpoint, packets: t.packets, activeFlows: t.active, up: t.up });
      }
    }
    return out;
  }

  groupKeys(): string[] {
    return [...this.groups.keys()];
  }

  // ------------------------------------------------------------ flows

  private timeout(f: Flow): number {
    if (f.proto === PROTO_TCP) return f.established && !f.closed ? this.timeouts.tcpEstablished : this.timeouts.tcpTransitory;
    if (f.proto === PROTO_UDP) return this.timeouts.udp;
    return this.timeouts.icmp;
  }

  /** Idle for longer than its timeout; the difference is signed, so a clock stepping back expires nothing. */
  private expired(f: Flow, now: number): boolean {
    return ((now - f.last) | 0) > (this.timeout(f) | 0);
  }

  /** Over: idle past its timeout, or its group was removed. */
  private stale(f: Flow, now: number): boolean {
    return this.expired(f, now) || !f.group.live;
  }

  private lookup(
    family: 4 | 6, proto: number, src: Uint8Array, dst: Uint8Array, sport: number, dport: number,
  ): { idx: number; reverse: boolean } | null {
    const f = this.fwd.get(fwdKey(family, proto, src, sport, dst, dport));
    const r = sameAddr(dst, this.proxyAddr(family)) ? this.rev.get(revKey(family, proto, src, sport, dport)) : undefined;
    if (f !== undefined && r !== undefined) throw new ModelError("model: a tuple names two flows (a group has the proxy's address)");
    if (f !== undefined) return { idx: f, reverse: false };
    if (r !== undefined) return { idx: r, reverse: true };
    return null;
  }

  private flowFree(idx: number): void {
    const f = this.flows[idx];
    if (!f.used) return;
    if (f.halfOpen) this.halfOpenEnded(f);
    this.fwd.delete(f.fwdKey);
    if (!f.aware) this.rev.delete(f.revKey);
    f.used = false;
    this.flowEnded(f.target, f.group);
    this.freeList.push(idx);
    this.live--;
    this.stat.flowsExpired++;
  }

  private flowEnded(t: RefTarget, g: RefGroup): void {
    t.active--;
    this.maybeRecycleTarget(t);
    g.flows--;
    this.maybeRecycleGroup(g);
  }

  private flowStarted(t: RefTarget, g: RefGroup): void {
    t.active++;
    g.flows++;
  }

  private sourceCounter(addr: Uint8Array): number {
    return hashAddr(SEED_SOURCE, addr) & (SOURCE_COUNTERS - 1);
  }

  private halfOpenEnded(f: Flow): void {
    const c = this.sourceCounter(f.caddr);
    if (this.halfOpen[c]) this.halfOpen[c]--;
    f.halfOpen = false;
  }

  /** After trackTcp: a half-open flow that got established or reset stops counting against its source. */
  private handshakeDone(f: Flow): void {
    if (f.halfOpen && (f.established || f.closed)) this.halfOpenEnded(f);
  }

  /**
   * A NAT port toward target:tport no live binding holds, drawn from a hash of
   * the client's key (in order for a range of at most 64 ports, sampled for a
   * larger one) — 8 tries when a fixed-port target already has as many flows
   * as there are ports. When every port tried is held, the oldest transitory
   * TCP holder among them (the first seen of equal age) is freed and its port
   * reused (early drop); -1 when none is transitory.
   */
  private allocNatPort(family: 4 | 6, proto: number, t: RefTarget, tport: number, keyHash: number, now: number): number {
    const range = (this.portMax - this.portMin + 1) >>> 0;
    const h = finalize(mix(SEED_PORT, keyHash), 4);
    let tries = Math.min(range, 64);
    if (t.port !== 0 && t.active >= range && tries > 8) tries = 8;
    let victim = -1;
    let victimPort = 0;
    let victimAge = -1;
    for (let i = 0; i < tries; i++) {
      const port = (this.portMin + (range <= 64 ? ((h + i) >>> 0) % range : finalize(mix(h, i), 4) % range)) & 0xffff;
      const holder = this.rev.get(revKey(family, proto, t.addr, tport, port));
      if (holder === undefined) return port;
      const fl = this.flows[holder];
      if (this.stale(fl, now)) {
        this.flowFree(holder); // an idle holder is freed on the spot
        return port;
      }
      const age = (now - fl.last) | 0;
      if (fl.proto === PROTO_TCP && (!fl.established || fl.closed) && age > victimAge) {
        victim = holder;
        victimPort = port;
        victimAge = age;
      }
    }
    if (victim < 0) return -1;
    this.flowFree(victim);
    return victimPort;
  }

  /** A record for a new flow: the free list (LIFO), fresh records, then an expired or transitory victim. */
  private takeRecord(now: number): number {
    if (this.freeList.length) return this.freeList.pop()!;
    if (this.hwm < this.flowCap) return this.hwm++;
    let victim = -1;
    for (let i = 0; i < 64; i++) {
      if (this.hand >= this.flowCap) this.hand = 0; // the sweep may leave the hand one past the end
      const idx = this.hand++;
      const f = this.flows[idx];
      if (!f.used) continue;
      if (this.stale(f, now)) { victim = idx; break; }
      if (victim < 0 && f.proto === PROTO_TCP && (!f.established || f.closed)) victim = idx;
    }
    if (victim < 0) return -1;
    this.flowFree(victim);
    return this.takeRecord(now);
  }

  /** Create a flow pinned to t (with a NAT binding for a legacy target): its record index, or why not. */
  private flowCreate(
    family: 4 | 6, proto: number, src: Uint8Array, sport: number, dport: number, g: RefGroup, t: RefTarget, hfwd: number, now: number,
    syn: boolean,
  ): { idx: number } | { fail: Reason } {
    const counter = this.sourceCounter(src);
    if (syn && this.halfOpen[counter] >= this.halfOpenPerSource) return { fail: Reason.HalfOpenLimit };
    const tport = t.port !== 0 ? t.port : dport;
    let nport = 0;
    if (!t.aware) {
      nport = this.allocNatPort(family, proto, t, tport, hfwd, now);
      if (nport < 0) return { fail: Reason.NatPortsExhausted };
    }
    const idx = this.takeRecord(now);
    if (idx < 0) return { fail: Reason.FlowTableFull };
    const f: Flow = {
      used: true, family, proto, caddr: src.slice(), cport: sport, gport: dport, group: g, target: t, nport,
      aware: t.aware, established: false, finFwd: false, finRev: false, closed: false, halfOpen: syn, last: now, hfwd,
      fwdKey: fwdKey(family, proto, src, sport, g.addr, dport), revKey: "",
    };
    this.flows[idx] = f;
    if (syn) this.halfOpen[counter]++;
    this.fwd.set(f.fwdKey, idx);
    if (!t.aware) {
      f.revKey = revKey(family, proto, t.addr, tport, nport);
      this.rev.set(f.revKey, idx);
    }
    this.flowStarted(t, g);
    this.live++;
    this.stat.flowsCreated++;
    return { idx };
  }

  /** Move a flow to another target (its own went down; UDP/ICMP): the binding is made anew. */
  private flowRepin(idx: number, t: RefTarget, now: number): boolean {
    const f = this.flows[idx];
    const tport = t.port !== 0 ? t.port : f.gport;
    let nport = 0;
    if (!t.aware) {
      nport = this.allocNatPort(f.family, f.proto, t, tport, f.hfwd, now);
      if (nport < 0) return false;
    }
    if (!f.aware) this.rev.delete(f.revKey);
    this.flowEnded(f.target, f.group);
    f.target = t;
    f.aware = t.aware;
    if (!t.aware) {
      f.nport = nport;
      f.revKey = revKey(f.family, f.proto, t.addr, tport, nport);
      this.rev.set(f.revKey, idx);
    }
    this.flowStarted(t, f.group);
    return true;
  }

  /** Bounded expiry work at the end of a batch: 64 records from the moving hand. */
  private sweep(now: number): void {
    const n = Math.min(64, this.hwm);
    for (let i = 0; i < n; i++) {
      if (this.hand >= this.hwm) this.hand = 0;
      const f = this.flows[this.hand];
      if (f.used && this.stale(f, now)) this.flowFree(this.hand);
      this.hand++;
    }
  }

  // ------------------------------------------------------------ packets

  /** Process one batch; a null entry is an empty slot (OFF = 0). */
  process(packets: readonly (ModelPacket | null)[]): (ModelResult | null)[] {
    let now = 0;
    let any = false;
    const out: (ModelResult | null)[] = [];
    for (const input of packets) {
      if (input === null) {
        out.push(null);
        continue;
      }
      now = input.time >>> 0;
      any = true;
      out.push(this.processOne(input, now));
    }
    if (any) this.sweep(now); // no packet, no time, no sweep
    return out;
  }

  /**
   * The replies the legacy targets would send to the forwarded NATed packets
   * of a processed batch (reflect_batch): addresses and ports swapped, an echo
   * request answered; null where there is none. Feed them to process().
   */
  reflect(results: readonly (ModelResult | null)[]): (ModelPacket | null)[] {
    return results.map((r) => {
      if (r === null || r.verdict !== Verdict.Forward) return null;
      if ((r.aux & AuxFlag.ToTarget) === 0 || (r.aux & (AuxFlag.Encapsulated | AuxFlag.IcmpError)) !== 0) return null;
      const b = r.data.slice();
      if (!swapReply(b, r.link, r.wirelen)) return null;
      return { data: b, link: r.link, time: r.time, wirelen: r.wirelen, reflected: true };
    });
  }

  private processOne(input: ModelPacket, now: number): ModelResult {
    const len = input.data.length;
    const link = input.link ?? 101;
    const f: Frame = {
      buf: new Uint8Array(Layout.HEADROOM + len), off: Layout.HEADROOM, len,
      wirelen: Math.max(input.wirelen ?? len, len), link,
    };
    f.buf.set(input.data, Layout.HEADROOM);
    const res = { verdict: Verdict.Drop, reason: Reason.None, aux: input.reflected ? AuxFlag.Reflected : 0 };
    this.pipeline(f, res, now);
    return { ...res, data: f.buf.slice(f.off, f.off + f.len), wirelen: f.wirelen, link, time: input.time };
  }

  private toHost(res: { verdict: Verdict; reason: Reason; aux: number }, work: HostWork, aux: number): void {
    res.verdict = Verdict.ToHost;
    res.reason = work as number as Reason;
    res.aux = aux;
    this.stat.toHost++;
  }

  private inAnycast(addr: Uint8Array): boolean {
    return this.anycast.some((r) => r.prefix.length === addr.length && prefixHas(r.prefix, r.length, addr));
  }

  setPeers(addresses: readonly string[]): void {
    this.peers = new Set(addresses.map((a) => hex(parseAddress(a).bytes)));
  }

  setAnycastPrefixes(prefixes: readonly string[]): void {
    this.anycast = prefixes.map((t) => {
      const p = parsePrefix(t);
      return { prefix: p.bytes, length: p.length };
    });
  }

  setControlPort(port: number): void {
    this.controlPort = port & 0xffff;
  }

  setResolveUnknown(on: boolean): void {
    this.resolveUnknown = on;
  }

  setResolveBudget(perSecond: number): void {
    this.resolvePerSecond = this.resolveLeft = Math.max(0, Math.floor(perSecond)) >>> 0;
  }

  /** A packet for the host to resolve, within its budget per second (else resolve-throttled). */
  private toResolve(res: { verdict: Verdict; reason: Reason; aux: number }, aux: number, now: number): void {
    if (now !== this.resolveSecond) {
      this.resolveSecond = now;
      this.resolveLeft = this.resolvePerSecond;
    }
    if (this.resolveLeft === 0) return this.drop(res, Reason.ResolveThrottled);
    this.resolveLeft--;
    this.toHost(res, HostWork.Unresolved, aux);
  }

  setGroupPending(key: string, pending: boolean): void {
    this.entry(key).group.pending = pending;
  }

  private drop(res: { verdict: Verdict; reason: Reason }, r: Reason): void {
    res.verdict = Verdict.Drop;
    res.reason = r;
    this.drops[r]++;
    this.stat.dropped++;
  }

  private accept(res: { verdict: Verdict; aux: number }, aux: number): void {
    res.verdict = Verdict.Forward;
    res.aux = aux;
    if (aux & AuxFlag.Reflected) this.stat.reflected++;
    else this.stat.forwarded++;
  }

  private pipeline(f: Frame, res: { verdict: Verdict; reason: Reason; aux: number }, now: number): void {
    const b = f.buf;
    let aux = res.aux;
    if (aux === 0) {
      this.stat.packets++;
      this.stat.bytes += Math.max(f.wirelen, f.len);
    }
    const parsed = parsePacket(b, f.off, f.len, f.wirelen, f.link);
    if (typeof parsed === "number") return this.drop(res, parsed);
    let p: Parsed = parsed;
    const addrAt = (at: number): Uint8Array => b.slice(at, at + addrLen(p.family));

    // IP-in-IP to this proxy: take the inner packet (once), from a known proxy when any is known
    if ((p.proto === PROTO_IPIP || p.proto === PROTO_IPV6) && this.isProxy(p.family, addrAt(p.l3 + dstOffset(p.family)))) {
      if (this.peers.size && !this.peers.has(hex(addrAt(p.l3 + srcOffset(p.family))))) return this.drop(res, Reason.TunnelFromStranger);
      const inner = this.decapsulate(f, p);
      if (typeof inner === "number") return this.drop(res, inner);
      p = inner;
      aux |= AuxFlag.Decapsulated;
      this.stat.decapsulated++;
    }
    if (this.verifyChecksums) {
      const r = verify(b, p);
      if (r !== Reason.None) return this.drop(res, r);
    }
    if (!p.hasL4Header) return this.laterFragment(f, p, aux, res, now);

    const family = p.family;
    const proto = p.proto;
    const src = addrAt(p.l3 + srcOffset(family));
    const dst = addrAt(p.l3 + dstOffset(family));
    const icmp = proto === icmpProto(family);
    if (proto === PROTO_UDP && this.controlPort && p.dport === this.controlPort && (this.isProxy(family, dst) || this.inAnycast(dst))) {
      return this.toHost(res, HostWork.Control, aux);
    }
    if (icmp) {
      if (p.icmpError) return this.icmpError(f, p, aux, res, now);
      if (!isEchoRequest(family, p.icmpType) && !isEchoReply(family, p.icmpType)) return this.drop(res, Reason.IcmpUnsupported);
    } else if (proto !== PROTO_TCP && proto !== PROTO_UDP) {
      return this.drop(res, Reason.NotForProxy);
    }

    let ref = this.lookup(family, proto, src, dst, p.sport, p.dport);
    if (ref && this.stale(this.flows[ref.idx], now)) {
      this.flowFree(ref.idx);
      ref = this.lookup(family, proto, src, dst, p.sport, p.dport);
    }
    if (ref) {
      if (ref.reverse) return this.reverse(f, p, ref.idx, aux, res, now);
      return this.forward(f, p, ref.idx, aux, res, now);
    }

    // a new flow: only toward a group, never to the proxy's own address (there: a reply whose binding is gone)
    if (this.isProxy(family, dst)) return this.drop(res, Reason.NoBinding);
    if (icmp && !isEchoRequest(family, p.icmpType)) return this.drop(res, Reason.NotForProxy);
    const port = icmp ? 0 : p.dport;
    let g = this.groupIndex.get(`${family}/${proto}/${hex(dst)}/${port}`);
    if (!g && port !== 0) g = this.groupIndex.get(`${family}/${proto}/${hex(dst)}/0`);
    if (!g) {
      if (!this.inAnycast(dst)) return this.drop(res, Reason.NotForProxy);
      return this.resolveUnknown ? this.toResolve(res, aux, now) : this.drop(res, Reason.NoGroup);
    }
    if (g.pending && g.usable === 0) return this.toResolve(res, aux, now);
    if (proto === PROTO_TCP && (p.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN && g.policy !== Policy.Affinity) {
      return this.drop(res, Reason.NoFlow); // only affinity finds the target another proxy chose
    }
    const hfwd = hashTuple(SEED_FLOW, family, src, dst, p.sport, p.dport, proto);
    const t = this.selector.select(g, family, src, dst, p.sport, p.dport, proto);
    if (!t) return this.drop(res, Reason.NoTarget);
    const syn = proto === PROTO_TCP && (p.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN;
    const created = this.flowCreate(family, proto, src, p.sport, p.dport, g, t, hfwd, now, syn);
    if ("fail" in created) return this.drop(res, created.fail);
    if (proto === PROTO_TCP && (p.tcpFlags & TCP_SYN) === 0) this.flows[created.idx].established = true; // picked up mid-connection
    this.forward(f, p, created.idx, aux, res, now);
  }

  /** Client -> TA packet of a known flow: NAT or tunnel it to the flow's target. */
  private forward(f: Frame, p: Parsed, idx: number, aux: number, res: { verdict: Verdict; reason: Reason; aux: number }, now: number): void {
    const b = f.buf;
    const fl = this.flows[idx];
    const family = p.family;
    let t = fl.target;
    if (!t.usable) {
      if (p.proto === PROTO_TCP) return this.drop(res, Reason.TargetDown); // never move a connection mid-stream
      const src = b.slice(p.l3 + srcOffset(family), p.l3 + srcOffset(family) + addrLen(family));
      const dst = b.slice(p.l3 + dstOffset(family), p.l3 + dstOffset(family) + addrLen(family));
      const n = this.selector.select(fl.group, family, src, dst, p.sport, p.dport, p.proto);
      if (!n) return this.drop(res, Reason.NoTarget);
      if (!this.flowRepin(idx, n, now)) return this.drop(res, Reason.NatPortsExhausted);
      t = n;
    }
    const frag = p.isFragment ? this.fragRemember(b, p, idx, false, now) : null;
    if (frag === undefined) return this.drop(res, Reason.FragmentTableFull);
    fl.last = now;
    if (p.proto === PROTO_TCP) {
      trackTcp(fl, p.tcpFlags, false);
      this.handshakeDone(fl);
    }
    if (fl.aware && this.tooBigForTunnel(b, p)) return this.tooBig(f, p, aux, res);
    if (fl.aware && this.tunnelOverflow(p)) return this.drop(res, Reason.TunnelOverflow);
    t.packets++;
    if (fl.aware) {
      this.encapsulate(f, p, this.proxyAddr(family), t.addr, fl.hfwd);
      this.stat.encapsulated++;
      return this.accept(res, aux | AuxFlag.Encapsulated | AuxFlag.ToTarget);
    }
    const tport = p.proto === icmpProto(family) ? 0 : t.port !== 0 ? t.port : fl.gport;
    const delta = natRewrite(b, p, this.proxyAddr(family), fl.nport, t.addr, tport);
    if (frag) owe(frag, p, delta);
    this.accept(res, aux | AuxFlag.ToTarget);
  }

  /** Target -> proxy reply of a NAT binding: restore A:g -> C:c. */
  private reverse(f: Frame, p: Parsed, idx: number, aux: number, res: { verdict: Verdict; reason: Reason; aux: number }, now: number): void {
    const fl = this.flows[idx];
    const frag = p.isFragment ? this.fragRemember(f.buf, p, idx, true, now) : null;
    if (frag === undefined) return this.drop(res, Reason.FragmentTableFull);
    fl.last = now;
    if (p.proto === PROTO_TCP) {
      trackTcp(fl, p.tcpFlags, true);
      this.handshakeDone(fl);
    }
    const delta = natRewrite(f.buf, p, fl.group.addr, fl.gport, fl.caddr, fl.cport);
    if (frag) owe(frag, p, delta);
    this.accept(res, aux);
  }

  // ------------------------------------------------------------ fragments

  /**
   * The entry a first fragment leaves for its datagram (keyed by its original
   * addresses, read before the rewrite); undefined when the table is full.
   * The core frees entries lazily and, when full, evicts an expired one among
   * 16 from a moving hand; here the oldest expired entry goes (the two differ
   * only with more than fragCap datagrams in flight).
   */
  private fragRemember(b: Uint8Array, p: Parsed, idx: number, reverse: boolean, now: number): FragEntry | undefined {
    const key = fragKey(b, p);
    const fl = this.flows[idx];
    let e = this.fragFind(key, now);
    if (!e) {
      if (this.frags.size >= this.fragCap) {
        const old = [...this.frags].find(([, x]) => ((now - x.expire) | 0) > 0);
        if (!old) return undefined;
        this.frags.delete(old[0]);
      }
      e = { idx, reverse, check: fl.hfwd, expire: 0, owed: false, csumOff: 0, delta: null };
      this.frags.set(key, e);
    }
    Object.assign(e, { idx, reverse, check: fl.hfwd, expire: (now + FRAG_TIMEOUT) >>> 0, owed: false });
    return e;
  }

  private fragFind(key: string, now: number): FragEntry | undefined {
    const e = this.frags.get(key);
    if (e && ((now - e.expire) | 0) > 0) {
      this.frags.delete(key);
      return undefined;
    }
    return e;
  }

  /** A fragment after the first: follow the entry its first fragment left. */
  private laterFragment(f: Frame, p: Parsed, aux: number, res: { verdict: Verdict; reason: Reason; aux: number }, now: number): void {
    const b = f.buf;
    const e = this.fragFind(fragKey(b, p), now);
    if (!e) return this.drop(res, Reason.FragmentOutOfOrder);
    const fl = this.flows[e.idx];
    if (!fl.used || fl.hfwd !== e.check || this.stale(fl, now)) return this.drop(res, Reason.FragmentOutOfOrder);
    fl.last = now;
    if (e.reverse) {
      rewriteAddrs(b, p, fl.group.addr, fl.caddr);
      payOwed(e, b, p);
      return this.accept(res, aux);
    }
    const t = fl.target;
    if (!t.usable) return this.drop(res, p.fragProto === PROTO_TCP ? Reason.TargetDown : Reason.NoTarget);
    if (fl.aware && this.tooBigForTunnel(b, p)) return this.tooBig(f, p, aux, res);
    if (fl.aware && this.tunnelOverflow(p)) return this.drop(res, Reason.TunnelOverflow);
    t.packets++;
    if (fl.aware) {
      this.encapsulate(f, p, this.proxyAddr(p.family), t.addr, fl.hfwd);
      this.stat.encapsulated++;
      return this.accept(res, aux | AuxFlag.Encapsulated | AuxFlag.ToTarget);
    }
    rewriteAddrs(b, p, this.proxyAddr(p.family), t.addr);
    payOwed(e, b, p);
    this.accept(res, aux | AuxFlag.ToTarget);
  }

  /** An ICMP error: translate it if it quotes a packet of a live flow. */
  private icmpError(f: Frame, p: Parsed, aux: number, res: { verdict: Verdict; reason: Reason; aux: number }, now: number): void {
    const b = f.buf;
    const family = p.family;
    const q = parseQuote(b, p);
    if (!q) return this.drop(res, Reason.IcmpErrorNoFlow);
    const n = addrLen(family);
    const qsrc = b.slice(q.ip + srcOffset(family), q.ip + srcOffset(family) + n);
    const qdst = b.slice(q.ip + dstOffset(family), q.ip + dstOffset(family) + n);
    // the quote is a packet we sent: its reverse is a key of the flow
    const ref = this.lookup(family, q.proto, qdst, qsrc, q.dport, q.sport);
    if (!ref || this.stale(this.flows[ref.idx], now)) return this.drop(res, Reason.IcmpErrorNoFlow);
    const fl = this.flows[ref.idx];
    const g = fl.group;
    const t = fl.target;
    const outerDst = b.slice(p.l3 + dstOffset(family), p.l3 + dstOffset(family) + n);
    if (ref.reverse) {
      // about P:x -> T:t, reported to P: tell the client about C:c -> A:g
      if (!this.isProxy(family, outerDst)) return this.drop(res, Reason.IcmpErrorNoFlow);
      translateError(b, p, q, fl.caddr, fl.caddr, fl.cport, g.addr, fl.gport);
      this.stat.icmpTranslated++;
      return this.accept(res, aux | AuxFlag.IcmpError);
    }
    // about A:g -> C:c (a reply we or an aware target sent), reported to A: tell the target
    if (!sameAddr(outerDst, qsrc)) return this.drop(res, Reason.IcmpErrorNoFlow);
    if (fl.aware) {
      if (this.tooBigForTunnel(b, p)) return this.tooBig(f, p, aux, res);
      if (this.tunnelOverflow(p)) return this.drop(res, Reason.TunnelOverflow);
      this.encapsulate(f, p, this.proxyAddr(family), t.addr, fl.hfwd);
      this.stat.encapsulated++;
      this.stat.icmpTranslated++;
      return this.accept(res, aux | AuxFlag.Encapsulated | AuxFlag.IcmpError | AuxFlag.ToTarget);
    }
    const tport = q.proto === PROTO_TCP || q.proto === PROTO_UDP ? (t.port !== 0 ? t.port : fl.gport) : 0;
    translateError(b, p, q, t.addr, t.addr, tport, this.proxyAddr(family), fl.nport);
    this.stat.icmpTranslated++;
    this.accept(res, aux | AuxFlag.IcmpError | AuxFlag.ToTarget);
  }

  /** IPv4 without DF may exceed the tunnel MTU, but not what the outer header's 16-bit length can say. */
  private tunnelOverflow(p: Parsed): boolean {
    return p.ipTotal + (p.family === 4 ? 20 : 40) > 0xffff;
  }

  /** Too big once encapsulated, and not to be fragmented on the way: IPv4 with DF, or IPv6. */
  private tooBigForTunnel(b: Uint8Array, p: Parsed): boolean {
    if (p.ipTotal + (p.family === 4 ? 20 : 40) <= this.tunnelMtu) return false;
    return p.family === 6 || (be16(b, p.l3 + 6) & 0x4000) !== 0;
  }

  /**
   * Drop the packet (packet-too-big) and send its sender fragmentation-needed
   * / packet-too-big with the tunnel's path MTU, built in the packet's slot.
   */
  private tooBig(f: Frame, p: Parsed, aux: number, res: { verdict: Verdict; reason: Reason; aux: number }): void {
    this.drops[Reason.PacketTooBig]++;
    this.stat.dropped++;
    const family = p.family;
    if ((family === 4 && !this.hasProxy4) || (family === 6 && !this.hasProxy6)) {
      res.reason = Reason.PacketTooBig;
      return;
    }
    const b = f.buf;
    const hdr = family === 4 ? 28 : 48;
    const quote = Math.min(p.ipEnd - p.l3, (family === 4 ? 576 : 1280) - hdr);
    const total = hdr + quote;
    const newOff = f.off - hdr;
    b.copyWithin(newOff, f.off, f.off + p.linkLen);
    const o = newOff + p.linkLen;
    const sender = b.slice(p.l3 + srcOffset(family), p.l3 + srcOffset(family) + addrLen(family));
    const mtu = this.tunnelMtu - (family === 4 ? 20 : 40);
    const icmp = o + (family === 4 ? 20 : 40);
    b.fill(0, o, icmp + 8);
    if (family === 4) {
      b[o] = 0x45;
      put16(b, o + 2, total);
      put16(b, o + 4, this.ipId);
      this.ipId = (this.ipId + 1) & 0xffff;
      b[o + 8] = 64;
      b[o + 9] = 1;
      b.set(this.proxyAddr(4), o + 12);
      b.set(sender, o + 16);
      ipHeaderFresh(b, o, 20);
      b[icmp] = 3;
      b[icmp + 1] = 4;
      put16(b, icmp + 6, mtu);
      put16(b, icmp + 2, complement(onesSum(b, icmp, icmp + 8 + quote)));
    } else {
      b[o] = 0x60;
      put16(b, o + 4, 8 + quote);
      b[o + 6] = 58;
      b[o + 7] = 64;
      b.set(this.proxyAddr(6), o + 8);
      b.set(sender, o + 24);
      b[icmp] = 2;
      put32(b, icmp + 4, mtu);
      put16(b, icmp + 2, complement(onesSum(b, icmp, icmp + 8 + quote, pseudoHeaderSum(this.proxyAddr(6), sender, 58, 8 + quote))));
    }
    if (f.link === 1) {
      // back toward the sender: swap the Ethernet addresses
      const dstMac = b.slice(newOff, newOff + 6);
      b.copyWithin(newOff, newOff + 6, newOff + 12);
      b.set(dstMac, newOff + 6);
    }
    f.off = newOff;
    f.len = p.linkLen + total;
    f.wirelen = f.len;
    res.verdict = Verdict.Forward;
    res.aux = aux | AuxFlag.Generated;
    this.stat.icmpGenerated++;
  }

  /** IP-in-IP: the link header moves into the headroom, the outer IP header goes between it and the packet. */
  private encapsulate(f: Frame, p: Parsed, src: Uint8Array, dst: Uint8Array, entropy: number): void {
    const b = f.buf;
    const outerLen = p.family === 4 ? 20 : 40;
    const newOff = f.off - outerLen;
    b.copyWithin(newOff, f.off, f.off + p.linkLen);
    const o = newOff + p.linkLen;
    const inner = p.l3;
    if (p.family === 4) {
      b.fill(0, o, o + 20);
      b[o] = 0x45;
      b[o + 1] = b[inner + 1]; // TOS
      put16(b, o + 2, (p.ipTotal + 20) & 0xffff);
      put16(b, o + 4, this.ipId);
      this.ipId = (this.ipId + 1) & 0xffff;
      put16(b, o + 6, be16(b, inner + 6) & 0x4000); // RFC 2003: copy DF
      b[o + 8] = 64;
      b[o + 9] = PROTO_IPIP;
      b.set(src, o + 12);
      b.set(dst, o + 16);
      ipHeaderFresh(b, o, 20);
    } else {
      const tc = (be16(b, inner) >>> 4) & 0xff;
      put32(b, o, ((6 << 28) | (tc << 20) | (entropy & 0xfffff)) >>> 0);
      put16(b, o + 4, p.ipTotal & 0xffff);
      b[o + 6] = PROTO_IPV6;
      b[o + 7] = 64;
      b.set(src, o + 8);
      b.set(dst, o + 24);
    }
    f.off = newOff;
    // the frame ends where the inner IP packet does (or where the capture cut it)
    f.len = p.linkLen + (p.ipEnd - p.l3) + outerLen;
    f.wirelen = p.linkLen + p.ipTotal + outerLen;
  }

  /** Strip the outer header of a tunnel packet to us; the link header moves forward and names the inner family. */
  private decapsulate(f: Frame, p: Parsed): Parsed | Reason {
    if (p.isFragment) return Reason.TunnelMalformed;
    const innerFamily = p.proto === PROTO_IPIP ? 4 : 6;
    const shift = p.l4 - f.off - p.linkLen; // outer IP header with its extension headers
    const l2 = p.linkLen;
    const wirelen = Math.max(f.wirelen, f.len);
    const newOff = f.off + shift;
    f.buf.copyWithin(newOff, f.off, f.off + l2);
    if (!setLinkFamily(f.buf, p.protoAt + shift, p.kind, innerFamily, p.family)) return Reason.LinkFamilyMismatch;
    const len = f.len;
    f.off = newOff;
    f.len = len - shift;
    f.wirelen = wirelen - shift;
    const ip = parseIp(f.buf, newOff + l2, len - shift - l2, wirelen - shift - l2, innerFamily);
    if (typeof ip === "number") return Reason.TunnelMalformed;
    return { linkLen: p.linkLen, linkFamily: p.linkFamily, protoAt: p.protoAt, kind: p.kind, ...ip };
  }
}

// ---------------------------------------------------------------- packet functions

/** TCP state for timeouts (RFC 5382): transitory until the handshake completes, again after FIN/RST. */
function trackTcp(f: Flow, flags: number, fromTarget: boolean): void {
  if (flags & TCP_RST) {
    f.closed = true;
  } else if (flags & TCP_SYN) {
    if (!fromTarget && (flags & TCP_ACK) === 0 && f.closed) {
      // the client reuses the tuple for a new connection
      f.closed = f.established = f.finFwd = f.finRev = false;
    }
  } else {
    if (flags & TCP_FIN) {
      if (fromTarget) f.finRev = true;
      else f.finFwd = true;
    }
    if (f.finFwd && f.finRev) f.closed = true;
    f.established = true;
  }
}

/** verifyChecksums: the IPv4 header, then the transport checksum when it is all here. */
function verify(b: Uint8Array, p: Parsed): Reason {
  if (p.family === 4 && !ipHeaderOk(b, p.l3, p.ipHdrLen)) return Reason.BadIpChecksum;
  if (p.truncated || p.isFragment) return Reason.None;
  if (p.proto === PROTO_UDP && be16(b, p.l4 + 6) === 0) return Reason.None;
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP || p.proto === icmpProto(p.family)) {
    if (l4Sum(b, p.family, p.l3, p.proto, p.l4, p.l4Len) !== 0xffff) return Reason.BadL4Checksum;
  }
  return Reason.None;
}

/**
 * NAT: the source becomes newSrc:newSport and the destination newDst:newDport
 * (for ICMP echo the identifier takes the port of its direction). Then the
 * checksums: from scratch where possible, else FALLBACK.
 */
/** Seconds a fragment entry lives (the core's FRAG_TIMEOUT). */
const FRAG_TIMEOUT = 30;

interface FragEntry {
  idx: number;
  reverse: boolean;
  /** The flow's forward hash: a recycled flow record does not match. */
  check: number;
  expire: number;
  /** The first fragment lacked its transport checksum: a later one owes `delta` at `csumOff`. */
  owed: boolean;
  csumOff: number;
  delta: Fallback | null;
}

/** True when the first `length` bits of addr and prefix agree. */
function prefixHas(prefix: Uint8Array, length: number, addr: Uint8Array): boolean {
  for (let bit = 0; bit < length; bit++) {
    const m = 0x80 >>> (bit & 7);
    if ((prefix[bit >>> 3] & m) !== (addr[bit >>> 3] & m)) return false;
  }
  return true;
}

function fragKey(b: Uint8Array, p: Parsed): string {
  const n = addrLen(p.family);
  const s = p.l3 + srcOffset(p.family);
  const d = p.l3 + dstOffset(p.family);
  return `${p.family}/${hex(b.slice(s, s + n))}/${hex(b.slice(d, d + n))}/${p.fragProto}/${p.fragId}`;
}

/** After rewriting a first fragment that lacks its transport checksum field: a later fragment owes the change. */
function owe(e: FragEntry, p: Parsed, delta: Fallback | null): void {
  const field = p.proto === PROTO_TCP ? 16 : p.proto === PROTO_UDP ? 6 : 2;
  const at = p.l4 - p.fragPayload + field;
  const payloadLen = p.ipTotal - (p.fragPayload - p.l3);
  if (at + 2 > payloadLen && delta) Object.assign(e, { owed: true, csumOff: at, delta });
}

/** Apply what the first fragment owed, if this fragment holds the checksum field (FALLBACK: incremental). */
function payOwed(e: FragEntry, b: Uint8Array, p: Parsed): void {
  if (!e.owed || !e.delta) return;
  const payloadLen = p.ipTotal - (p.fragPayload - p.l3);
  if (e.csumOff < p.fragOffset || e.csumOff + 2 > p.fragOffset + payloadLen) return;
  e.owed = false;
  const at = p.fragPayload + (e.csumOff - p.fragOffset);
  if (at + 2 > p.ipEnd) return; // cut by the capture
  e.delta.applyAt(b, at, p.fragProto === PROTO_UDP);
}

/** Rewrite the addresses (and the IPv4 header checksum); returns the address change as a delta builder. */
function rewriteAddrs(b: Uint8Array, p: Parsed, newSrc: Uint8Array, newDst: Uint8Array): (fb: Fallback) => Fallback {
  const family = p.family;
  const ip = p.l3;
  const n = addrLen(family);
  const sAt = ip + srcOffset(family);
  const dAt = ip + dstOffset(family);
  const ipWasOk = family === 4 && ipHeaderOk(b, ip, p.ipHdrLen);
  const oldSrc = b.slice(sAt, sAt + n);
  const oldDst = b.slice(dAt, dAt + n);
  b.set(newSrc.subarray(0, n), sAt);
  b.set(newDst.subarray(0, n), dAt);
  const addrDelta = (fb: Fallback): Fallback => fb.bytes(oldSrc, newSrc.subarray(0, n)).bytes(oldDst, newDst.subarray(0, n));
  if (family === 4) {
    if (ipWasOk) ipHeaderFresh(b, ip, p.ipHdrLen);
    else addrDelta(new Fallback()).applyAt(b, ip + 10); // FALLBACK: header checksum was wrong
  }
  return addrDelta;
}

/**
 * NAT rewrite of a parsed packet. Returns the transport checksum change as a
 * delta (what a later fragment owes when this first fragment lacks the field),
 * or null without a transport header.
 */
function natRewrite(b: Uint8Array, p: Parsed, newSrc: Uint8Array, newSport: number, newDst: Uint8Array, newDport: number): Fallback | null {
  const family = p.family;
  const ip = p.l3;
  // judge the transport checksum before touching anything
  const l4WasOk = l4Ok(b, p);
  const addrDelta = rewriteAddrs(b, p, newSrc, newDst);
  if (!p.hasL4Header) return null;
  const l4 = p.l4;
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP) {
    const oldS = be16(b, l4);
    const oldD = be16(b, l4 + 2);
    put16(b, l4, newSport);
    put16(b, l4 + 2, newDport);
    const delta = addrDelta(new Fallback()).word(oldS, newSport).word(oldD, newDport);
    if (p.csumAt < 0) return delta;
    if (l4WasOk) l4Fresh(b, family, ip, p.proto, l4, p.l4Len, p.csumAt);
    else delta.applyAt(b, p.csumAt, p.proto === PROTO_UDP); // FALLBACK
    return delta;
  }
  const id = isEchoReply(family, p.icmpType) ? newDport : newSport;
  const oldId = be16(b, l4 + 4);
  put16(b, l4 + 4, id);
  const delta = new Fallback().word(oldId, id);
  if (family === 6) addrDelta(delta); // ICMPv6 checksums the pseudo-header
  if (l4WasOk) l4Fresh(b, family, ip, p.proto, l4, p.l4Len, p.csumAt);
  else delta.applyAt(b, p.csumAt); // FALLBACK
  return delta;
}

/** The packet quoted by an ICMP error, or null when it cannot name a flow. */
function parseQuote(b: Uint8Array, p: Parsed): Quote | null {
  const q = p.l4 + 8;
  const end = p.ipEnd;
  const family = p.family;
  let hl: number;
  let proto: number;
  let total: number;
  let fragment = false;
  if (family === 4) {
    if (q + 20 > end || b[q] >>> 4 !== 4) return null;
    hl = (b[q] & 15) << 2;
    if (hl < 20 || q + hl > end) return null;
    const ff = be16(b, q + 6);
    if ((ff & 0x1fff) !== 0) return null; // a later fragment has no ports
    fragment = (ff & 0x2000) !== 0;
    proto = b[q + 9];
    total = be16(b, q + 2);
  } else {
    if (q + 40 > end || b[q] >>> 4 !== 6) return null;
    let nh = b[q + 6];
    hl = 40;
    let count = 0;
    while (isV6Extension(nh)) {
      if (++count > 8 || q + hl + 8 > end) return null;
      const h = q + hl;
      const len = nh === PROTO_FRAGMENT ? 8 : nh === PROTO_AH ? (b[h + 1] + 2) << 2 : (b[h + 1] + 1) << 3;
      if (nh === PROTO_FRAGMENT) {
        if ((be16(b, h + 2) & 0xfff8) !== 0) return null;
        fragment = true;
      }
      nh = b[h];
      hl += len;
    }
    if (q + hl > end) return null;
    proto = nh;
    total = 40 + be16(b, q + 4);
  }
  const l4 = q + hl;
  const base = { ip: q, hl, proto, l4, end, total, fragment };
  if (proto === PROTO_TCP || proto === PROTO_UDP) {
    if (l4 + 4 > end) return null;
    return { ...base, sport: be16(b, l4), dport: be16(b, l4 + 2), echoReply: false };
  }
  if (proto === icmpProto(family)) {
    if (l4 + 6 > end) return null;
    const type = b[l4];
    const echoReply = isEchoReply(family, type);
    if (!echoReply && !isEchoRequest(family, type)) return null;
    const id = be16(b, l4 + 4);
    return { ...base, sport: echoReply ? 0 : id, dport: echoReply ? id : 0, echoReply };
  }
  return null;
}

/**
 * Translate an ICMP error: the outer destination becomes outerDst and the
 * quoted packet's source newSrc:newSport, its destination newDst:newDport.
 * Checksums involved: the outer IPv4 header, the quoted IPv4 header, the
 * quoted transport checksum when the quote holds it, and the ICMP checksum
 * over all of it (ICMPv6: with the outer pseudo-header).
 */
function translateError(
  b: Uint8Array, p: Parsed, q: Quote, outerDst: Uint8Array, newSrc: Uint8Array, newSport: number, newDst: Uint8Array, newDport: number,
): void {
  const family = p.family;
  const n = addrLen(family);
  const ip = p.l3;
  const qsAt = q.ip + srcOffset(family);
  const qdAt = q.ip + dstOffset(family);
  const oAt = ip + dstOffset(family);
  const tcpUdp = q.proto === PROTO_TCP || q.proto === PROTO_UDP;

  // which checksum the core updates in the quote (only when the quote holds it; a UDP 0 stays 0)
  let qCsumAt = -1;
  if (tcpUdp) {
    const cs = q.l4 + (q.proto === PROTO_TCP ? 16 : 6);
    if (cs + 2 <= q.end && (q.proto === PROTO_TCP || be16(b, cs) !== 0)) qCsumAt = cs;
  } else if (q.l4 + 4 <= q.end) {
    qCsumAt = q.l4 + 2;
  }
  // judge every checksum on the input, before any change
  const outerIpOk = family === 4 && ipHeaderOk(b, ip, p.ipHdrLen);
  const icmpOk = l4Ok(b, p);
  const qIpOk = family === 4 && ipHeaderOk(b, q.ip, q.hl);
  const qL4Len = q.total - q.hl;
  const qComplete = !q.fragment && q.total >= q.hl && q.ip + q.total <= q.end && qCsumAt >= 0 && qCsumAt + 2 <= q.ip + q.total;
  const qL4Ok = qComplete && l4Sum(b, family, q.ip, q.proto, q.l4, qL4Len) === 0xffff;

  const old = {
    qsrc: b.slice(qsAt, qsAt + n), qdst: b.slice(qdAt, qdAt + n), outerDst: b.slice(oAt, oAt + n),
    w0: be16(b, q.l4), w1: be16(b, q.l4 + 2), id: be16(b, q.l4 + 4),
    qIpCsum: family === 4 ? be16(b, q.ip + 10) : 0, qL4Csum: qCsumAt >= 0 ? be16(b, qCsumAt) : 0,
  };
  const newId = q.echoReply ? newDport : newSport;
  b.set(newSrc.subarray(0, n), qsAt);
  b.set(newDst.subarray(0, n), qdAt);
  if (tcpUdp) {
    put16(b, q.l4, newSport);
    put16(b, q.l4 + 2, newDport);
  } else {
    put16(b, q.l4 + 4, newId);
  }
  b.set(outerDst.subarray(0, n), oAt);

  const qAddrDelta = (fb: Fallback): Fallback => fb.bytes(old.qsrc, newSrc.subarray(0, n)).bytes(old.qdst, newDst.subarray(0, n));
  if (family === 4) {
    if (qIpOk) ipHeaderFresh(b, q.ip, q.hl);
    else qAddrDelta(new Fallback()).applyAt(b, q.ip + 10); // FALLBACK
  }
  if (qCsumAt >= 0) {
    if (qL4Ok) l4Fresh(b, family, q.ip, q.proto, q.l4, qL4Len, qCsumAt);
    else if (tcpUdp) {
      // FALLBACK: the quote is cut short (routers quote 8 bytes) or was wrong; the core uses a plain
      // update and then sends a UDP 0 as 0xffff
      qAddrDelta(new Fallback()).word(old.w0, newSport).word(old.w1, newDport).applyAt(b, qCsumAt);
      if (q.proto === PROTO_UDP && be16(b, qCsumAt) === 0) put16(b, qCsumAt, 0xffff);
    } else {
      const fb = new Fallback().word(old.id, newId); // FALLBACK
      if (family === 6) qAddrDelta(fb);
      fb.applyAt(b, qCsumAt);
    }
  }
  if (family === 4) {
    if (outerIpOk) ipHeaderFresh(b, ip, p.ipHdrLen);
    else new Fallback().bytes(old.outerDst, outerDst.subarray(0, n)).applyAt(b, ip + 10); // FALLBACK
  }
  if (icmpOk) {
    l4Fresh(b, family, ip, p.proto, p.l4, p.l4Len, p.csumAt);
  } else {
    // FALLBACK: every word the core changed inside the message (and the ICMPv6 pseudo-header)
    const fb = qAddrDelta(new Fallback());
    if (family === 4) fb.word(old.qIpCsum, be16(b, q.ip + 10));
    if (tcpUdp) fb.word(old.w0, newSport).word(old.w1, newDport);
    else fb.word(old.id, newId);
    if (qCsumAt >= 0) fb.word(old.qL4Csum, be16(b, qCsumAt));
    if (family === 6) fb.bytes(old.outerDst, outerDst.subarray(0, n));
    fb.applyAt(b, p.csumAt);
  }
}

/** The reply a legacy target would send (reflect_batch's swap); false when there is none. */
function swapReply(b: Uint8Array, link: number, wirelen: number): boolean {
  const p = parsePacket(b, 0, b.length, wirelen, link);
  if (typeof p === "number" || !p.hasL4Header) return false;
  const family = p.family;
  const icmpRequest = p.proto === icmpProto(family) && isEchoRequest(family, p.icmpType);
  if (p.proto !== PROTO_TCP && p.proto !== PROTO_UDP && !icmpRequest) return false;
  const wasOk = l4Ok(b, p);
  const n = addrLen(family);
  const sAt = p.l3 + srcOffset(family);
  const dAt = p.l3 + dstOffset(family);
  const s = b.slice(sAt, sAt + n);
  b.copyWithin(sAt, dAt, dAt + n);
  b.set(s, dAt); // swapping is checksum-neutral
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP) {
    const sp = be16(b, p.l4);
    put16(b, p.l4, be16(b, p.l4 + 2));
    put16(b, p.l4 + 2, sp);
  } else {
    const oldWord = be16(b, p.l4);
    b[p.l4] = family === 4 ? 0 : 129;
    if (wasOk) l4Fresh(b, family, p.l3, p.proto, p.l4, p.l4Len, p.csumAt);
    else new Fallback().word(oldWord, be16(b, p.l4)).applyAt(b, p.csumAt); // FALLBACK
  }
  if (link === 1 && b.length >= 14) {
    const mac = b.slice(0, 6);
    b.copyWithin(0, 6, 12);
    b.set(mac, 6);
  }
  return true;
}
