// The JAP role: the proxy a target's join reached (by native anycast, the one
// nearest to it) keeps that target and tells the group's RAPs that it serves
// the group.
//
// - JOIN and KEEPALIVE (already authenticated by the node with the group's
//   join key) add or renew a target and are answered with JOIN_ACK (this
//   proxy's unicast control endpoint and the keepalive interval). A KEEPALIVE
//   from a target this JAP does not know is a join: the nearest proxy may have
//   changed, and the target learns its new JAP from the JOIN_ACK. A KEEPALIVE
//   of a known target is not answered.
// - A target not heard for `missedKeepalives` intervals (default 3) is removed.
// - Target churn stays here: the RAPs hear REGISTER only when a group's count
//   of targets goes 0 -> 1, UNREGISTER on 1 -> 0, and REFRESH with a load
//   figure every refresh interval (in rounds: all groups at once, so the
//   entries for one RAP fill whole frames). All R replicas get each of them,
//   so a replica can answer when the primary dies.
// - When the ring changes, a group whose RAP set changed registers with its
//   new RAPs (and unregisters from live proxies that are no longer RAPs).
// - Messages to each RAP are batched per flush() into as few frames as fit.
// - Admission is bounded for the whole JAP, not only per source address (the
//   node's limiter): at most `joinsPerSecond` new targets a second, however
//   many sources sign joins with a valid key; joins past it are dropped and
//   counted (the joiner retries with backoff).
// - With `deferInstall`, a new target is not acknowledged, counted or
//   registered until the owner has installed it in the data plane and called
//   confirm(): a refused install is a refused join, with a reason the joiner
//   sees (a target the data plane has no room for must not be a silent black
//   hole that the RAPs route clients to).
//
// It never touches the data plane: the owner listens to target events
// (add/update/remove) and calls DataPlane.addTarget/removeTarget.

import { DeadlineHeap } from "./deadlines.js";
import { TokenBucket } from "./ratelimit.js";
import type { JoinMessage, KeepaliveMessage, LeaveMessage, LoadEntry, Message, ProxyRef, RejectCode, TargetInfo } from "./message.js";
import { murmur3, type Ring } from "./rendezvous.js";
import { epFromId, epId, taFromId, taId, taKey, type Endpoint, type TransportAddress } from "./ta.js";

export interface JapOptions {
  readonly self: ProxyRef;
  readonly now: () => number;
  /** Send a message to a control endpoint (the owner seals it; self-addressed ones it delivers locally). */
  readonly send: (to: Endpoint, message: Message) => void;
  /** The current ring of live proxies. */
  readonly ring: () => Ring;
  /** A live proxy by id. */
  readonly proxy: (id: string) => ProxyRef | undefined;
  /** Seconds between a target's keepalives, told in JOIN_ACK. Default 10. */
  readonly keepaliveIntervalS?: number;
  /** Missed keepalives before a target is removed. Default 3. */
  readonly missedKeepalives?: number;
  /** ms between REFRESHes of a group at its RAPs. Default 30 s. */
  readonly refreshIntervalMs?: number;
  /** RAPs per group (primary + replicas). Default 2. */
  readonly replicas?: number;
  /** Targets per group at most; further joins are rejected "full". Default 1 << 20. */
  readonly maxTargetsPerGroup?: number;
  /** Targets over all groups at most. Default 1 << 24. */
  readonly maxTargets?: number;
  /** The load figure sent to RAPs for a group. Default: its number of targets here. */
  readonly load?: (ta: TransportAddress, targets: number) => number;
  /** Entries per REGISTER/REFRESH/UNREGISTER frame at most. Default 48 (about 1.2 kB of IPv6 TAs). */
  readonly batchEntries?: number;
  /** New targets admitted per second at most, over all groups and sources. Default 200. */
  readonly joinsPerSecond?: number;
  /** New targets admitted at once before the rate applies. Default 400. */
  readonly joinBurst?: number;
  /** New targets wait for confirm() before they are acknowledged and registered. Default false. */
  readonly deferInstall?: boolean;
}

export type TargetEventKind = "add" | "update" | "remove";
export type RemoveReason = "leave" | "expired" | "shutdown";

export interface TargetEvent {
  readonly kind: TargetEventKind;
  readonly ta: TransportAddress;
  /** taKey(ta): the data plane's group key. */
  readonly group: string;
  readonly target: TargetInfo;
  /** Set for "remove". */
  readonly reason?: RemoveReason;
}

// State is kept compact, since a JAP may hold millions of targets: a target is
// its endpoint's byte-string key plus weight, label and awareness (the
// TargetInfo is rebuilt when someone asks), and a group with one target (most
// groups) holds it without a Map.
interface JapTarget {
  /** epId of the target's endpoint. */
  readonly key: string;
  weight: number;
  label: string | null;
  aware: boolean;
  readonly group: JapGroup;
  /** Last ms the target is kept without hearing from it. */
  expires: number;
  alive: boolean;
  /** In the data plane (always, without deferInstall); until then not acknowledged, counted or registered. */
  installed: boolean;
  /** Where the acknowledgement goes once confirm() decides (pending targets only). */
  replyTo: Endpoint | undefined;
}

interface JapGroup {
  /** taId of the group's TA. */
  readonly key: string;
  /** The group's only target while it has exactly one; otherwise `many` holds them (installed or pending). */
  one: JapTarget | undefined;
  many: Map<string, JapTarget> | undefined;
  /** Installed targets. */
  size: number;
  /** Targets waiting for confirm(). */
  pending: number;
  /** RAP ids this group is registered with (best first). */
  raps: string[];
  alive: boolean;
}

type Op = { kind: "register" | "refresh"; group: JapGroup } | { kind: "unregister"; key: string };

function infoOf(t: JapTarget): TargetInfo {
  return { endpoint: epFromId(t.key), weight: t.weight, label: t.label, aware: t.aware };
}

function findTarget(g: JapGroup, key: string): JapTarget | undefined {
  return g.one !== undefined ? (g.one.key === key ? g.one : undefined) : g.many?.get(key);
}

function targetList(g: JapGroup): JapTarget[] {
  return g.one !== undefined ? [g.one] : g.many ? [...g.many.values()] : [];
}

function installedList(g: JapGroup): JapTarget[] {
  const all = targetList(g);
  return g.pending === 0 ? all : all.filter((t) => t.installed);
}

export class Jap {
  readonly keepaliveIntervalS: number;
  readonly missedKeepalives: number;
  readonly refreshIntervalMs: number;
  readonly replicas: number;
  private readonly maxPerGroup: number;
  private readonly maxTargets: number;
  private readonly batch: number;
  private readonly groups = new Map<string, JapGroup>();
  private readonly expiry = new DeadlineHeap<JapTarget>();
  /** When the next refresh round is due (every group to each of its RAPs, batched). */
  private nextRound: number;
  /** RAP id -> TA key -> the last operation queued for it (the last one wins). */
  private readonly outbox = new Map<string, Map<string, Op>>();
  private readonly listeners: ((ev: TargetEvent) => void)[] = [];
  private readonly admission: TokenBucket;
  private readonly deferInstall: boolean;
  private targets = 0;
  private pendingTargets = 0;
  readonly counters = {
    joins: 0, rejoins: 0, keepalives: 0, leaves: 0, expired: 0, rejected: 0, throttled: 0, installRefused: 0, registers: 0, unregisters: 0,
    refreshes: 0,
  };

  constructor(private readonly opts: JapOptions) {
    this.keepaliveIntervalS = opts.keepaliveIntervalS ?? 10;
    this.missedKeepalives = opts.missedKeepalives ?? 3;
    this.refreshIntervalMs = opts.refreshIntervalMs ?? 30_000;
    this.replicas = opts.replicas ?? 2;
    this.maxPerGroup = opts.maxTargetsPerGroup ?? 1 << 20;
    this.maxTargets = opts.maxTargets ?? 1 << 24;
    this.batch = opts.batchEntries ?? 48;
    this.admission = new TokenBucket(opts.joinsPerSecond ?? 200, opts.joinBurst ?? 400);
    this.deferInstall = opts.deferInstall ?? false;
    // Rounds are staggered by proxy id, so a cluster started at once does not refresh in step.
    const phase = murmur3(new TextEncoder().encode(opts.self.id), 0x5eed) / 2 ** 32;
    this.nextRound = opts.now() + this.refreshIntervalMs * (1 + phase);
  }

  onTarget(fn: (ev: TargetEvent) => void): void {
    this.listeners.push(fn);
  }

  get groupCount(): number {
    return this.groups.size;
  }

  /** Installed targets. */
  get targetCount(): number {
    return this.targets;
  }

  /** Targets waiting for confirm(). */
  get pendingCount(): number {
    return this.pendingTargets;
  }

  /** The installed targets of a group here (empty when none). */
  targetsOf(ta: TransportAddress): TargetInfo[] {
    const g = this.groups.get(taId(ta));
    return g ? installedList(g).map(infoOf) : [];
  }

  /** Whether the target with this endpoint is an installed member of the group here. */
  has(ta: TransportAddress, endpoint: Endpoint): boolean {
    const g = this.groups.get(taId(ta));
    return g !== undefined && findTarget(g, epId(endpoint))?.installed === true;
  }

  /** The RAP ids a group is registered with, best first. */
  rapsOf(ta: TransportAddress): string[] {
    return this.groups.get(taId(ta))?.raps.slice() ?? [];
  }

  /** The groups this JAP serves. */
  *groupTas(): IterableIterator<TransportAddress> {
    for (const key of this.groups.keys()) yield taFromId(key);
  }

  private validate(ta: TransportAddress, t: TargetInfo): RejectCode | undefined {
    if (t.endpoint.address.length !== ta.address.length) return "family-mismatch";
    if (ta.protocol === "icmp" && t.endpoint.port !== 0) return "bad-target";
    let same = true;
    for (let i = 0; i < ta.address.length; i++) if (ta.address[i] !== t.endpoint.address[i]) same = false;
    if (same) return "bad-target";
    return undefined;
  }

  /** A JOIN or KEEPALIVE from `from` (the frame's source). */
  handleJoin(msg: JoinMessage | KeepaliveMessage, from: Endpoint): void {
    const now = this.opts.now();
    const key = taId(msg.ta);
    const tkey = epId(msg.target.endpoint);
    let g = this.groups.get(key);
    const known = g && findTarget(g, tkey);
    const info = msg.target;
    if (known && !known.installed) {
      // a retry while the install is under way: confirm() answers it
      known.expires = now + this.timeoutMs();
      known.replyTo = from;
      return;
    }
    if (known) {
      known.expires = now + this.timeoutMs();
      if (msg.type === "keepalive") this.counters.keepalives++;
      else this.counters.joins++;
      const changed = known.weight !== info.weight || known.label !== info.label || known.aware !== info.aware;
      if (changed) {
        known.weight = info.weight;
        known.label = info.label;
        known.aware = info.aware;
        this.emit({ kind: "update", ta: msg.ta, group: taKey(msg.ta), target: info });
      }
      if (msg.type === "join" || changed) this.ack(msg.ta, info.endpoint, from, "none");
      return;
    }
    const full = this.targets + this.pendingTargets >= this.maxTargets || (g !== undefined && g.size + g.pending >= this.maxPerGroup);
    const why = this.validate(msg.ta, info) ?? (full ? "full" : undefined);
    if (why) {
      this.counters.rejected++;
      this.ack(msg.ta, info.endpoint, from, why);
      return;
    }
    if (!this.admission.take(now)) {
      this.counters.throttled++;
      return;
    }
    if (msg.type === "keepalive") this.counters.rejoins++;
    else this.counters.joins++;
    if (g === undefined) {
      g = { key, one: undefined, many: undefined, size: 0, pending: 0, raps: this.opts.ring().raps(msg.ta, this.replicas), alive: true };
      this.groups.set(key, g);
    }
    const installed = !this.deferInstall;
    const t: JapTarget = {
      key: tkey, weight: info.weight, label: info.label, aware: info.aware, group: g, expires: now + this.timeoutMs(), alive: true,
      installed, replyTo: installed ? undefined : from,
    };
    if (g.size + g.pending === 0) g.one = t;
    else {
      if (g.many === undefined) {
        g.many = new Map();
        if (g.one !== undefined) g.many.set(g.one.key, g.one);
        g.one = undefined;
      }
      g.many.set(tkey, t);
    }
    this.expiry.push(t.expires + 1, t);
    if (installed) this.counted(t);
    else {
      g.pending++;
      this.pendingTargets++;
    }
    this.emit({ kind: "add", ta: msg.ta, group: taKey(msg.ta), target: info });
    if (installed) this.ack(msg.ta, info.endpoint, from, "none");
  }

  /** A target is served: count it, and register its group on 0 -> 1. */
  private counted(t: JapTarget): void {
    const g = t.group;
    g.size++;
    this.targets++;
    if (g.size === 1) for (const rap of g.raps) this.queue(rap, g.key, { kind: "register", group: g });
  }

  /**
   * (deferInstall) The owner's verdict on a new target: "none" when the data
   * plane installed it (it is then acknowledged, counted and registered),
   * else the reason it was refused, which the joiner is told. A target that
   * left or expired meanwhile is ignored.
   */
  confirm(ta: TransportAddress, endpoint: Endpoint, reason: RejectCode): void {
    const g = this.groups.get(taId(ta));
    const t = g && findTarget(g, epId(endpoint));
    if (!g || !t || t.installed) return;
    const to = t.replyTo!;
    t.replyTo = undefined;
    g.pending--;
    this.pendingTargets--;
    if (reason === "none") {
      t.installed = true;
      this.counted(t);
    } else {
      this.counters.installRefused++;
      this.detach(t);
    }
    this.ack(ta, endpoint, to, reason);
  }

  handleLeave(msg: LeaveMessage): void {
    const g = this.groups.get(taId(msg.ta));
    const t = g && findTarget(g, epId(msg.endpoint));
    if (!t) return;
    this.counters.leaves++;
    this.remove(t, "leave");
  }

  private timeoutMs(): number {
    return this.missedKeepalives * this.keepaliveIntervalS * 1000;
  }

  private ack(ta: TransportAddress, endpoint: Endpoint, to: Endpoint, reason: RejectCode): void {
    const accepted = reason === "none";
    this.opts.send(to, {
      type: "join-ack",
      ta,
      endpoint,
      accepted,
      reason,
      jap: this.opts.self,
      keepaliveInterval: accepted ? this.keepaliveIntervalS : 0,
    });
  }

  private remove(t: JapTarget, reason: RemoveReason): void {
    if (!t.alive) return;
    const g = t.group;
    if (t.installed) {
      g.size--;
      this.targets--;
      if (g.size === 0) for (const rap of g.raps) this.queue(rap, g.key, { kind: "unregister", key: g.key });
    } else {
      g.pending--;
      this.pendingTargets--;
    }
    if (this.listeners.length) {
      const ta = taFromId(g.key);
      this.emit({ kind: "remove", ta, group: taKey(ta), target: infoOf(t), reason });
    }
    this.detach(t);
  }

  /** Take a target out of its group's structures (and the group out when it is empty). */
  private detach(t: JapTarget): void {
    t.alive = false;
    const g = t.group;
    if (g.one === t) g.one = undefined;
    else g.many?.delete(t.key);
    if (g.size + g.pending === 0) {
      g.alive = false;
      this.groups.delete(g.key);
    }
  }

  /** Remove targets past their keepalives and queue due refreshes. Call flush() after. */
  tick(): void {
    const now = this.opts.now();
    this.expiry.popDue(now, (t) => {
      if (!t.alive) return;
      // Alive through `expires` itself: removed only strictly after it.
      if (t.expires >= now) this.expiry.push(t.expires + 1, t);
      else {
        this.counters.expired++;
        this.remove(t, "expired");
      }
    });
    // Refresh in rounds, every group at once: a JAP's refreshes to one RAP then fill whole
    // frames (48 groups each) instead of trickling out one group per frame.
    if (now >= this.nextRound) {
      this.nextRound = now + this.refreshIntervalMs;
      for (const g of this.groups.values()) if (g.size > 0) for (const rap of g.raps) this.queue(rap, g.key, { kind: "refresh", group: g });
    }
  }

  /** The ring changed: register each group whose RAP set changed with its new RAPs. */
  ringChanged(): void {
    const ring = this.opts.ring();
    for (const g of this.groups.values()) {
      const next = ring.raps(taFromId(g.key), this.replicas);
      if (next.length === g.raps.length && next.every((id, i) => id === g.raps[i])) continue;
      if (g.size > 0) {
        for (const id of next) if (!g.raps.includes(id)) this.queue(id, g.key, { kind: "register", group: g });
        for (const id of g.raps) if (!next.includes(id) && ring.has(id)) this.queue(id, g.key, { kind: "unregister", key: g.key });
      }
      g.raps = next;
    }
  }

  /** A proxy came up (or back after a restart, with nothing registered): register there every group it is a RAP of. */
  registerAt(rap: string): void {
    for (const g of this.groups.values()) if (g.size > 0 && g.raps.includes(rap)) this.queue(rap, g.key, { kind: "register", group: g });
  }

  /** Refresh every group at its RAPs at the next tick (they dropped this proxy and took it back). */
  refreshSoon(): void {
    this.nextRound = this.opts.now();
  }

  /** Unregister every group and drop every target (shutdown). Call flush() after. */
  stop(): void {
    for (const g of [...this.groups.values()]) for (const t of targetList(g)) this.remove(t, "shutdown");
  }

  private queue(rap: string, key: string, op: Op): void {
    let box = this.outbox.get(rap);
    if (box === undefined) this.outbox.set(rap, (box = new Map()));
    const prev = box.get(key);
    // A refresh never downgrades a pending register.
    if (op.kind === "refresh" && prev?.kind === "register") return;
    box.delete(key);
    box.set(key, op);
  }

  /** Send what is queued, one or more frames per RAP. */
  flush(): void {
    if (this.outbox.size === 0) return;
    const self = this.opts.self;
    const load = this.opts.load;
    for (const [rap, box] of this.outbox) {
      const to = this.opts.proxy(rap);
      if (to === undefined) continue; // dead: the new ring's RAPs are told by ringChanged()
      const reg: LoadEntry[] = [];
      const ref: LoadEntry[] = [];
      const unreg: TransportAddress[] = [];
      for (const op of box.values()) {
        if (op.kind === "unregister") unreg.push(taFromId(op.key));
        else {
          if (!op.group.alive) continue;
          const ta = taFromId(op.group.key);
          const n = op.group.size;
          (op.kind === "register" ? reg : ref).push({ ta, load: load ? load(ta, n) : n });
        }
      }
      for (let i = 0; i < unreg.length; i += this.batch) {
        this.counters.unregisters++;
        this.opts.send(to.endpoint, { type: "unregister", jap: self, tas: unreg.slice(i, i + this.batch) });
      }
      for (let i = 0; i < reg.length; i += this.batch) {
        this.counters.registers++;
        this.opts.send(to.endpoint, { type: "register", jap: self, entries: reg.slice(i, i + this.batch) });
      }
      for (let i = 0; i < ref.length; i += this.batch) {
        this.counters.refreshes++;
        this.opts.send(to.endpoint, { type: "refresh", jap: self, entries: ref.slice(i, i + this.batch) });
      }
    }
    this.outbox.clear();
  }

  private emit(ev: TargetEvent): void {
    for (const fn of this.listeners) fn(ev);
  }
}
