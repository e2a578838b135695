// Proxy membership: who is alive, hence the hash ring. ProxyMembership is
// what the roles and the node use; two implementations: the heartbeat
// Membership here (seeds, nothing else needed: the embedded default) and
// StoreMembership (lease-membership.ts: leases in a replicated store).
//
// Heartbeats: every interval a proxy sends a HEARTBEAT to each proxy it knows of (the
// configured seeds plus proxies learned from others' heartbeats). A proxy is
// live once heard directly; one not heard for `deadAfter` intervals (default
// 3) is declared dead and leaves the ring; it rejoins when heard again.
// Gossip (the list of live proxies a heartbeat carries) only teaches whom to
// heartbeat: it never makes a proxy live, so a dead proxy cannot be kept alive
// by others' stale views. A restarted proxy has a higher incarnation; a
// heartbeat with a lower incarnation than the one known is stale and ignored.
//
// No sockets, no timers: the owner calls tick() and feeds onHeartbeat().

import type { HeartbeatMessage, PeerEntry, ProxyRef } from "./message.js";
import { Ring } from "./rendezvous.js";
import { epKey, sameEndpoint, type Endpoint } from "./ta.js";

export interface MembershipOptions {
  readonly self: ProxyRef;
  /** Increases on every restart. Default: seconds since the epoch at construction. */
  readonly incarnation?: number;
  /** Control endpoints of some other proxies; heartbeated forever. */
  readonly seeds: readonly Endpoint[];
  /** Heartbeat interval, ms. Default 1000. */
  readonly intervalMs?: number;
  /** Missed intervals before a proxy is declared dead. Default 3. */
  readonly deadAfter?: number;
  /** A learned (non-seed) proxy silent this long is forgotten altogether, ms. Default 10 min. */
  readonly forgetAfterMs?: number;
  readonly now: () => number;
  readonly send: (to: Endpoint, message: HeartbeatMessage) => void;
}

export interface MembershipEvent {
  readonly kind: "up" | "down";
  readonly proxy: ProxyRef;
  /** The store revision of the change (store membership only: the same on every proxy). */
  readonly revision?: number;
}

/** A proxy's view of the live proxies: what ControlNode and its roles need, whatever keeps it. */
export interface ProxyMembership {
  readonly self: ProxyRef;
  /** Bumped on every change of the live set. */
  readonly version: number;
  /** Call `fn` on every up/down change (an "up" of self: this proxy rejoined after others dropped it). */
  onChange(fn: (ev: MembershipEvent) => void): void;
  isLive(id: string): boolean;
  /** A live proxy by id (self included), or undefined. */
  proxy(id: string): ProxyRef | undefined;
  /** Live proxies, self included. */
  live(): ProxyRef[];
  /** The hash ring of the live proxies. */
  ring(): Ring;
  /** Proxies whose IP-in-IP this proxy accepts: the live ones, and any the view still trusts. */
  tunnelPeers(): ProxyRef[];
  /** Run the timers (send heartbeats, declare proxies dead, notice a stale view). */
  tick(): void;
  onHeartbeat(msg: HeartbeatMessage): void;
}

interface Peer {
  proxy: ProxyRef;
  incarnation: number;
  /** ms last heard directly; -Infinity if only learned from gossip. */
  lastHeard: number;
  learnedAt: number;
  live: boolean;
}

export class Membership implements ProxyMembership {
  readonly self: ProxyRef;
  readonly incarnation: number;
  readonly intervalMs: number;
  readonly deadAfter: number;
  private readonly forgetAfterMs: number;
  private readonly peers = new Map<string, Peer>();
  private readonly listeners: ((ev: MembershipEvent) => void)[] = [];
  private nextBeat = -Infinity;
  private ringCache: Ring | undefined;
  /** Bumped on every change of the live set. */
  version = 0;
  sent = 0;
  stale = 0;

  constructor(private readonly opts: MembershipOptions) {
    this.self = opts.self;
    this.incarnation = opts.incarnation ?? Math.floor(opts.now() / 1000);
    this.intervalMs = opts.intervalMs ?? 1000;
    this.deadAfter = opts.deadAfter ?? 3;
    this.forgetAfterMs = opts.forgetAfterMs ?? 600_000;
  }

  /** Call `fn` on every up/down change. */
  onChange(fn: (ev: MembershipEvent) => void): void {
    this.listeners.push(fn);
  }

  isLive(id: string): boolean {
    return id === this.self.id || this.peers.get(id)?.live === true;
  }

  /** A live proxy by id (self included), or undefined. */
  proxy(id: string): ProxyRef | undefined {
    if (id === this.self.id) return this.self;
    const p = this.peers.get(id);
    return p?.live ? p.proxy : undefined;
  }

  /** Live proxies, self included. */
  live(): ProxyRef[] {
    const out = [this.self];
    for (const p of this.peers.values()) if (p.live) out.push(p.proxy);
    return out;
  }

  /** Heartbeats accept tunnels from live proxies only (the owner adds its seeds). */
  tunnelPeers(): ProxyRef[] {
    return this.live();
  }

  /** The hash ring of the live proxies (cached until the live set changes). */
  ring(): Ring {
    if (this.ringCache === undefined) this.ringCache = new Ring(this.live().map((p) => p.id));
    return this.ringCache;
  }

  /** The earliest time tick() has work to do. */
  nextDue(): number {
    return this.nextBeat;
  }

  onHeartbeat(msg: HeartbeatMessage): void {
    const now = this.opts.now();
    const from = msg.from;
    if (from.id === this.self.id) return;
    let p = this.peers.get(from.id);
    if (p && msg.incarnation < p.incarnation) {
      this.stale++;
      return;
    }
    if (p === undefined) {
      p = { proxy: from, incarnation: msg.incarnation, lastHeard: now, learnedAt: now, live: false };
      this.peers.set(from.id, p);
    }
    // A live proxy with a higher incarnation restarted: its earlier run (and
    // what the others held for it: registrations, cached answers) is gone.
    if (p.live && msg.incarnation > p.incarnation) this.change(p, false);
    if (!sameEndpoint(p.proxy.endpoint, from.endpoint)) p.proxy = from;
    p.incarnation = msg.incarnation;
    p.lastHeard = now;
    if (!p.live) this.change(p, true);
    for (const k of msg.known) this.learn(k, now);
  }

  /** Send heartbeats when due and declare silent proxies dead. */
  tick(): void {
    const now = this.opts.now();
    const limit = this.deadAfter * this.intervalMs;
    for (const [id, p] of this.peers) {
      if (p.live && now - p.lastHeard > limit) this.change(p, false);
      else if (!p.live && now - Math.max(p.lastHeard, p.learnedAt) > this.forgetAfterMs) this.peers.delete(id);
    }
    if (now >= this.nextBeat) {
      this.nextBeat = now + this.intervalMs;
      this.beat();
    }
  }

  private beat(): void {
    const known: PeerEntry[] = [];
    for (const p of this.peers.values()) if (p.live) known.push({ proxy: p.proxy, incarnation: p.incarnation });
    const msg: HeartbeatMessage = { type: "heartbeat", from: this.self, incarnation: this.incarnation, known };
    const to = new Map<string, Endpoint>();
    for (const s of this.opts.seeds) to.set(epKey(s), s);
    for (const p of this.peers.values()) to.set(epKey(p.proxy.endpoint), p.proxy.endpoint);
    to.delete(epKey(this.self.endpoint));
    for (const ep of to.values()) {
      this.sent++;
      this.opts.send(ep, msg);
    }
  }

  private learn(k: PeerEntry, now: number): void {
    if (k.proxy.id === this.self.id || this.peers.has(k.proxy.id)) return;
    this.peers.set(k.proxy.id, { proxy: k.proxy, incarnation: k.incarnation, lastHeard: -Infinity, learnedAt: now, live: false });
  }

  private change(p: Peer, live: boolean): void {
    p.live = live;
    this.version++;
    this.ringCache = undefined;
    const ev: MembershipEvent = { kind: live ? "up" : "down", proxy: p.proxy };
    for (const fn of this.listeners) fn(ev);
  }
}
