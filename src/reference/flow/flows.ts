// The reference model's flow table (assembly/flow/flows.ts): flow records
// found by key in two Maps (client -> TA, target -> proxy), NAT port
// allocation, per-protocol idle timeouts and the bounded expiry sweep.
//
// What it mirrors on purpose, because observable behaviour depends on it:
// the record allocation order (free list LIFO, then the high-water mark),
// eviction from the moving hand when the table is full, the per-batch sweep
// from the same hand (64 records, and two more a flow created while flows
// expire), NAT port probing (the first port no flow holds; when all are
// held, an idle holder's, or early drop of the oldest transitory holder),
// and the half-open counters per source.
//
// A tuple could only name flows in both Maps if a flow had the proxy's own
// address as its TA, and new flows to that address are refused; lookup()
// checks it anyway, because there the core's answer would depend on its
// hash-probe order.

import { Reason } from "../../../assembly/shared/abi.js";
import type { ModelCounters } from "../counters.js";
import { ModelError } from "../errors.js";
import type { GroupTable, RefGroup, RefTarget } from "../group/groups.js";
import { finalize, hashAddr, mix } from "../hash.js";
import { hex, sameAddr, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../parse.js";
import type { Settings } from "../settings.js";

export interface Flow {
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

/** Key of a flow's client -> TA direction. */
const fwdKey = (family: number, proto: number, src: Uint8Array, sport: number, dst: Uint8Array, dport: number): string =>
  `${family}/${proto} ${hex(src)}:${sport} > ${hex(dst)}:${dport}`;
/** Key of a NAT binding: target T:t -> proxy:x. */
const revKey = (family: number, proto: number, taddr: Uint8Array, tport: number, nport: number): string =>
  `${family}/${proto} ${hex(taddr)}:${tport} > proxy:${nport}`;

/** Half-open counters, indexed by a hash of the client address (the core's SOURCE_COUNTERS, SEED_SOURCE). */
const SOURCE_COUNTERS = 65536;
const SEED_SOURCE = 0x73796e73;

export class FlowTable {
  private readonly flows: Flow[] = [];
  private hwm = 0;
  private readonly freeList: number[] = [];
  private hand = 0;
  /** Flows in use. */
  live = 0;
  private readonly fwd = new Map<string, number>();
  private readonly rev = new Map<string, number>();
  private readonly halfOpen = new Uint16Array(SOURCE_COUNTERS);

  constructor(
    private readonly cap: number,
    private readonly settings: Settings,
    private readonly groups: GroupTable,
    private readonly counters: ModelCounters,
  ) {}

  /** The record at idx. */
  at(idx: number): Flow {
    return this.flows[idx];
  }

  private timeout(f: Flow): number {
    const timeouts = this.settings.timeouts;
    if (f.proto === PROTO_TCP) return f.established && !f.closed ? timeouts.tcpEstablished : timeouts.tcpTransitory;
    if (f.proto === PROTO_UDP) return timeouts.udp;
    return timeouts.icmp;
  }

  /** Idle for longer than its timeout; the difference is signed, so a clock stepping back expires nothing. */
  private expired(f: Flow, now: number): boolean {
    return ((now - f.last) | 0) > (this.timeout(f) | 0);
  }

  /** Over: idle past its timeout, or its group was removed. */
  stale(f: Flow, now: number): boolean {
    return this.expired(f, now) || !f.group.live;
  }

  lookup(
    family: 4 | 6, proto: number, src: Uint8Array, dst: Uint8Array, sport: number, dport: number,
  ): { idx: number; reverse: boolean } | null {
    const f = this.fwd.get(fwdKey(family, proto, src, sport, dst, dport));
    const r = sameAddr(dst, this.settings.proxyAddr(family)) ? this.rev.get(revKey(family, proto, src, sport, dport)) : undefined;
    if (f !== undefined && r !== undefined) throw new ModelError("model: a tuple names two flows (a group has the proxy's address)");
    if (f !== undefined) return { idx: f, reverse: false };
    if (r !== undefined) return { idx: r, reverse: true };
    return null;
  }

  free(idx: number): void {
    const f = this.flows[idx];
    if (!f.used) return;
    if (f.halfOpen) this.halfOpenEnded(f);
    this.fwd.delete(f.fwdKey);
    if (!f.aware) this.rev.delete(f.revKey);
    f.used = false;
    this.groups.flowEnded(f.target, f.group);
    this.freeList.push(idx);
    this.live--;
    this.counters.stat.flowsExpired++;
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
  handshakeDone(f: Flow): void {
    if (f.halfOpen && (f.established || f.closed)) this.halfOpenEnded(f);
  }

  /**
   * A NAT port toward target:tport, drawn from a hash of the client's key (in
   * order for a range of at most 64 ports, sampled for a larger one: candidate
   * 0 the hash itself, later ones a mix of it and i, scaled by a multiply) — 8
   * tries when a fixed-port target already has as many flows as there are
   * ports: the first candidate no flow holds (a flow gone idle holds its port
   * until it is freed). When every candidate is held, the first whose holder
   * has gone idle is freed and taken, else the oldest transitory TCP holder
   * among them (the first seen of equal age) is freed and its port reused
   * (early drop); -1 when none is idle or transitory.
   */
  private allocNatPort(family: 4 | 6, proto: number, t: RefTarget, tport: number, keyHash: number, now: number): number {
    const { portMin, portMax } = this.settings;
    const range = (portMax - portMin + 1) >>> 0;
    let tries = Math.min(range, 64);
    if (t.port !== 0 && t.active >= range && tries > 8) tries = 8;
    // candidates drawn from the key's flow hash (assembly/flow/flows.ts natPortCandidate)
    const sampled = (i: number) => Math.floor(((i === 0 ? keyHash : finalize(mix(keyHash, i), 4)) * range) / 2 ** 32);
    const candidate = (i: number) => (portMin + (range <= 64 ? ((keyHash + i) >>> 0) % range : sampled(i))) & 0xffff;
    for (let i = 0; i < tries; i++) {
      const port = candidate(i);
      if (!this.rev.has(revKey(family, proto, t.addr, tport, port))) return port;
    }
    let victim = -1;
    let victimPort = 0;
    let victimAge = -1;
    for (let i = 0; i < tries; i++) {
      const port = candidate(i);
      const holder = this.rev.get(revKey(family, proto, t.addr, tport, port))!;
      const fl = this.flows[holder];
      if (this.stale(fl, now)) {
        this.free(holder); // an idle holder is freed on the spot
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
    this.free(victim);
    return victimPort;
  }

  /** A record for a new flow: the free list (LIFO), fresh records, then an expired or transitory victim. */
  private takeRecord(now: number): number {
    if (this.freeList.length) return this.freeList.pop()!;
    if (this.hwm < this.cap) return this.hwm++;
    let victim = -1;
    for (let i = 0; i < 64; i++) {
      if (this.hand >= this.cap) this.hand = 0; // the sweep may leave the hand one past the end
      const idx = this.hand++;
      const f = this.flows[idx];
      if (!f.used) continue;
      if (this.stale(f, now)) { victim = idx; break; }
      if (victim < 0 && f.proto === PROTO_TCP && (!f.established || f.closed)) victim = idx;
    }
    if (victim < 0) return -1;
    this.free(victim);
    return this.takeRecord(now);
  }

  /** Create a flow pinned to t (with a NAT binding for a legacy target): its record index, or why not. `syn`: counted half-open. */
  create(
    family: 4 | 6, proto: number, src: Uint8Array, sport: number, dport: number, g: RefGroup, t: RefTarget, hfwd: number, now: number,
    syn: boolean,
  ): { idx: number } | { fail: Reason } {
    const counter = this.sourceCounter(src);
    if (syn && this.halfOpen[counter] >= this.settings.halfOpenPerSource) return { fail: Reason.HalfOpenLimit };
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
    this.groups.flowStarted(t, g);
    this.live++;
    this.counters.stat.flowsCreated++;
    return { idx };
  }

  /** Move a flow to another target (its own went down; UDP/ICMP): the binding is made anew. */
  repin(idx: number, t: RefTarget, now: number): boolean {
    const f = this.flows[idx];
    const tport = t.port !== 0 ? t.port : f.gport;
    let nport = 0;
    if (!t.aware) {
      nport = this.allocNatPort(f.family, f.proto, t, tport, f.hfwd, now);
      if (nport < 0) return false;
    }
    if (!f.aware) this.rev.delete(f.revKey);
    this.groups.flowEnded(f.target, f.group);
    f.target = t;
    f.aware = t.aware;
    if (!t.aware) {
      f.nport = nport;
      f.revKey = revKey(f.family, f.proto, t.addr, tport, nport);
      this.rev.set(f.revKey, idx);
    }
    this.groups.flowStarted(t, f.group);
    return true;
  }

  /** flowsCreated at the last sweep. */
  private sweptCreated = 0;

  /** Whether the sweep has freed a flow in its current lap of the table, or in its last. */
  private lapFreed = false;
  private lastLapFreed = false;

  /** Bounded expiry work at the end of a batch: 64 records from the moving hand and, while flows expire (one freed in this lap or the last), two more a flow created since the last sweep. */
  sweep(now: number): void {
    const created = this.counters.stat.flowsCreated;
    const made = created >= this.sweptCreated ? created - this.sweptCreated : created; // (the counters may have been reset)
    this.sweptCreated = created;
    const n = Math.min(64, this.hwm);
    this.sweepFrom(n, now);
    if (!(this.lapFreed || this.lastLapFreed) || made === 0) return;
    this.sweepFrom(Math.min(2 * made, this.hwm - n), now);
  }

  private sweepFrom(n: number, now: number): void {
    for (let i = 0; i < n; i++) {
      if (this.hand >= this.hwm) {
        this.hand = 0;
        this.lastLapFreed = this.lapFreed;
        this.lapFreed = false;
      }
      const f = this.flows[this.hand];
      if (f.used && this.stale(f, now)) {
        this.free(this.hand);
        this.lapFreed = true;
      }
      this.hand++;
    }
  }

  /** Free every flow idle at `now`; returns how many. */
  expireIdle(now: number): number {
    let freed = 0;
    for (let i = 0; i < this.hwm; i++) {
      const f = this.flows[i];
      if (f.used && this.stale(f, now >>> 0)) {
        this.free(i);
        freed++;
      }
    }
    return freed;
  }
}

/** TCP state for timeouts (RFC 5382): transitory until the handshake completes, again after FIN/RST. */
export function trackTcp(f: Flow, flags: number, fromTarget: boolean): void {
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
