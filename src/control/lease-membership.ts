// Proxy membership from a replicated store (etcd): every proxy keeps its key
// `<prefix>/proxies/<id>` alive with a lease, and the live set is the set of
// those keys. StoreSync (store-sync.ts) mirrors the keys and hands this view
// each change with its store revision, so every proxy changes its view at the
// same revisions: a proxy whose lease expires (a crash, a partition from the
// store's quorum) leaves every view at the revision that deleted its key.
//
// The view can go stale: once the store has not confirmed it for longer than
// a lease lives, this proxy cannot know whom the others dropped, nor whether
// they dropped it. It keeps the view (flows and cached groups keep working),
// says so (`stale`, an event for logs and metrics) and takes fresh changes
// again when the store answers. Self is always in its own view.
//
// No I/O, no timers: the owner calls tick().

import type { HeartbeatMessage, ProxyRef } from "./message.js";
import type { MembershipEvent, ProxyMembership } from "./membership.js";
import { Ring } from "./rendezvous.js";
import { sameEndpoint } from "./ta.js";

export interface StoreMembershipOptions {
  readonly self: ProxyRef;
  readonly now: () => number;
  /** A view the store has not confirmed for this long is stale, ms: the lease TTL. */
  readonly staleAfterMs: number;
  /** A proxy that left the view stays a tunnel peer this long, ms (its last flows may still come). Default 10 min. */
  readonly peerGraceMs?: number;
}

export interface StalenessEvent {
  readonly stale: boolean;
  /** Revision of the view. */
  readonly revision: number;
  /** ms since the store last confirmed the view (Infinity: never). */
  readonly ageMs: number;
}

export class StoreMembership implements ProxyMembership {
  readonly self: ProxyRef;
  version = 0;
  /** The store revision of the last change applied (0: none yet). */
  revision = 0;
  /** When the last read that confirmed the view started, ms. */
  confirmedAt = -Infinity;
  /** The view is older than a lease lives, and this proxy says so. */
  stale = true;
  /** Heartbeats are not how this membership works: counted and ignored. */
  ignoredHeartbeats = 0;
  private readonly others = new Map<string, ProxyRef>();
  /** The revision each known proxy last put its key at. */
  private readonly putAt = new Map<string, number>();
  private readonly departed = new Map<string, { proxy: ProxyRef; at: number }>();
  private readonly listeners: ((ev: MembershipEvent) => void)[] = [];
  private readonly staleListeners: ((ev: StalenessEvent) => void)[] = [];
  private readonly peerGraceMs: number;
  private ringCache: Ring | undefined;

  constructor(private readonly opts: StoreMembershipOptions) {
    this.self = opts.self;
    this.peerGraceMs = opts.peerGraceMs ?? 600_000;
  }

  onChange(fn: (ev: MembershipEvent) => void): void {
    this.listeners.push(fn);
  }

  /** Call `fn` when the view goes stale and when it is confirmed again. */
  onStaleness(fn: (ev: StalenessEvent) => void): void {
    this.staleListeners.push(fn);
  }

  isLive(id: string): boolean {
    return id === this.self.id || this.others.has(id);
  }

  proxy(id: string): ProxyRef | undefined {
    return id === this.self.id ? this.self : this.others.get(id);
  }

  live(): ProxyRef[] {
    return [this.self, ...this.others.values()];
  }

  ring(): Ring {
    if (this.ringCache === undefined) this.ringCache = new Ring(this.live().map((p) => p.id));
    return this.ringCache;
  }

  tunnelPeers(): ProxyRef[] {
    const now = this.opts.now();
    const out = this.live();
    for (const [id, d] of this.departed) {
      if (now - d.at > this.peerGraceMs) this.departed.delete(id);
      else out.push(d.proxy);
    }
    return out;
  }

  /** ms since the store last confirmed the view. */
  ageMs(): number {
    return this.opts.now() - this.confirmedAt;
  }

  /**
   * A proxy's key was put at `revision`: it joined, or it put the key again —
   * with a new lease, which a proxy takes when it starts: a restart within
   * the old lease's TTL, or at a new address. A proxy put again leaves and
   * joins (down, then up): what the others held for its earlier run (its
   * registrations, cached answers naming it) went with that run.
   */
  put(revision: number, proxy: ProxyRef): void {
    this.revision = Math.max(this.revision, revision);
    if (proxy.id === this.self.id) return;
    const known = this.others.get(proxy.id);
    const at = this.putAt.get(proxy.id) ?? 0;
    if (known && sameEndpoint(known.endpoint, proxy.endpoint) && revision <= at) return; // a read of what the view has
    this.putAt.set(proxy.id, Math.max(at, revision));
    if (known) this.emit("down", known, revision);
    this.others.set(proxy.id, proxy);
    this.departed.delete(proxy.id);
    this.emit("up", proxy, revision);
  }

  /** A proxy's key was deleted at `revision` (its lease expired or was revoked). */
  remove(revision: number, id: string): void {
    this.revision = Math.max(this.revision, revision);
    const known = this.others.get(id);
    if (known === undefined) return;
    this.others.delete(id);
    this.putAt.delete(id);
    this.departed.set(id, { proxy: known, at: this.opts.now() });
    this.emit("down", known, revision);
  }

  /** A read started at `at` found the store as the view has it. */
  confirm(at: number): void {
    if (at > this.confirmedAt) this.confirmedAt = at;
    this.checkStale();
  }

  /** This proxy put its key again after the store had deleted it: the others took it back at `revision`. */
  rejoined(revision: number): void {
    this.emit("up", this.self, revision);
  }

  onHeartbeat(_msg: HeartbeatMessage): void {
    this.ignoredHeartbeats++;
  }

  tick(): void {
    this.checkStale();
  }

  private checkStale(): void {
    const age = this.ageMs();
    const stale = age > this.opts.staleAfterMs;
    if (stale === this.stale) return;
    this.stale = stale;
    const ev: StalenessEvent = { stale, revision: this.revision, ageMs: age };
    for (const fn of this.staleListeners) fn(ev);
  }

  private emit(kind: "up" | "down", proxy: ProxyRef, revision: number): void {
    this.version++;
    this.ringCache = undefined;
    const ev: MembershipEvent = { kind, proxy, revision };
    for (const fn of this.listeners) fn(ev);
  }
}
