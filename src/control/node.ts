// One proxy's control plane: membership + JAP + RAP + IAP (+ discovery)
// behind one receive()/tick() pair, over an injected clock and an injected
// send(to, bytes). Every proxy plays every role, for different groups.
// Membership is heartbeats to the seeds unless the owner hands in another
// ProxyMembership (a view kept from a store: lease-membership.ts).
//
// receive(from, bytes): rate limit (target frames, per source address) ->
// authenticate (auth.ts) -> dispatch by type to the role. Messages a role
// addresses to this proxy itself (it is its own RAP for a group, say) are
// delivered locally without sealing. Answers that someone waits for (JOIN_ACK,
// LOOKUP_REPLY, LOOKUP) leave at once; what the JAP and RAP batch (REGISTER,
// UNREGISTER, REFRESH to each RAP; PUSH to each IAP, one per group) leaves at
// the next tick(), so everything that changed between two ticks shares frames.
//
// No sockets, no timers, no Math.random unless none is injected: a daemon
// plugs it onto UDP sockets and a timer, the simulation onto an in-memory
// network with simulated time.

import { Authenticator, type KeySet, type RejectReason } from "./auth.js";
import { excluding, pickMembers, prefixDistance } from "./discovery.js";
import { Iap, type Release, type Resolution } from "./iap.js";
import { Jap, type TargetEvent } from "./jap.js";
import { Membership, type MembershipEvent, type ProxyMembership } from "./membership.js";
import {
  MAX_EXCLUDE,
  MessageError,
  isGroupKeyed,
  peekKind,
  type DiscoverForwardMessage,
  type DiscoverMessage,
  type DiscoverMode,
  type Member,
  type Message,
  type MessageKind,
  type ProxyRef,
  type RejectCode,
  type TargetInfo,
} from "./message.js";
import { OverlayRole, type OverlayRoleOptions } from "./overlay.js";
import { Rap } from "./rap.js";
import { RateLimiter, type RateLimitOptions } from "./ratelimit.js";
import { sameEndpoint, type Endpoint, type TransportAddress } from "./ta.js";

export interface ControlNodeOptions {
  /** This proxy's id on the hash ring (unique in the cluster). */
  readonly id: string;
  /** This proxy's unicast control endpoint (its address is also its tunnel endpoint). */
  readonly endpoint: Endpoint;
  /** Key of proxy <-> proxy frames, shared by the cluster (two during a rotation: the first signs). */
  readonly clusterKey: KeySet;
  /** A group's join key(s), or undefined: joins for that group are refused (unknown-group). */
  readonly groupKey: (ta: TransportAddress) => KeySet | undefined;
  /** Control endpoints of other proxies to start from (heartbeat membership). */
  readonly seeds: readonly Endpoint[];
  /** Where the live proxies come from; default: heartbeats to `seeds` (Membership). */
  readonly membership?: ProxyMembership;
  readonly now: () => number;
  readonly send: (to: Endpoint, bytes: Uint8Array) => void;
  readonly incarnation?: number;
  /** RAPs per group. Default 2. */
  readonly replicas?: number;
  readonly heartbeatIntervalMs?: number;
  readonly deadAfter?: number;
  readonly keepaliveIntervalS?: number;
  readonly missedKeepalives?: number;
  readonly refreshIntervalMs?: number;
  readonly registrationExpiryMs?: number;
  readonly cacheTtlS?: number;
  readonly lookupTimeoutMs?: number;
  readonly maxPendingPerGroup?: number;
  /** IAP: new LOOKUPs per second at most (see IapOptions). */
  readonly lookupsPerSecond?: number;
  /** IAP: how long a negative answer is kept at most, s. */
  readonly negativeTtlS?: number;
  readonly maxTargetsPerGroup?: number;
  /** JAP: new targets admitted per second at most, over all sources (see JapOptions). */
  readonly joinsPerSecond?: number;
  /** JAP: new targets wait for confirmTarget() (the owner installs them first). */
  readonly deferInstall?: boolean;
  readonly authWindowMs?: number;
  readonly replayCapacity?: number;
  /** Per-source limit on target frames (JOIN, KEEPALIVE, LEAVE, DISCOVER). */
  readonly rateLimit?: RateLimitOptions;
  readonly nonce?: () => Uint8Array;
  readonly random?: () => number;
  /** Load figure of a group sent to RAPs (default: its targets here). */
  readonly load?: (ta: TransportAddress, targets: number) => number;
  /** Distance between two addresses for nearest discovery (default prefixDistance). */
  readonly distance?: (a: Uint8Array, b: Uint8Array) => number;
  /** How many times a discovery query may be forwarded to another JAP. Default 1. */
  readonly maxDiscoverHops?: number;
  readonly onTarget?: (ev: TargetEvent) => void;
  readonly onRelease?: (release: Release) => void;
  readonly onMembership?: (ev: MembershipEvent) => void;
  /** This proxy is an overlay node (src/control/overlay.ts). */
  readonly overlay?: OverlayRoleOptions;
}

export interface NodeStats {
  readonly id: string;
  readonly live: number;
  readonly sent: Record<string, number>;
  readonly received: Record<string, number>;
  readonly local: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly rejected: Record<RejectReason, number>;
  readonly jap: { readonly groups: number; readonly targets: number; readonly installing: number } & Jap["counters"];
  readonly rap: { readonly groups: number; readonly entries: number; readonly negativeWatchers: number } & Rap["counters"];
  readonly iap: { readonly cache: number; readonly negative: number; readonly pending: number; readonly queuedBytes: number } & Iap["counters"];
  readonly replayCache: number;
  readonly unexpected: number;
}

export class ControlNode {
  readonly self: ProxyRef;
  readonly auth: Authenticator;
  readonly limiter: RateLimiter;
  readonly membership: ProxyMembership;
  readonly jap: Jap;
  readonly rap: Rap;
  readonly iap: Iap;
  /** The overlay role, when this proxy is an overlay node. */
  readonly overlay: OverlayRole | null;
  private readonly local: { msg: Message; from: Endpoint }[] = [];
  private settling = false;
  private ringDirty = false;
  private stopped = false;
  private readonly random: () => number;
  private readonly distance: (a: Uint8Array, b: Uint8Array) => number;
  private readonly sent: Record<string, number> = {};
  private readonly received: Record<string, number> = {};
  private localCount = 0;
  private bytesSent = 0;
  private bytesReceived = 0;
  private unexpected = 0;
  /** The last message sealed and its frame: a message sent to several proxies (a heartbeat, a push) is sealed once. */
  private lastMsg: Message | undefined;
  private lastFrame: Uint8Array | undefined;
  private lastAt = NaN;
  /** While a frame is handled: which of its group's keys it came with, so answers to a target use the same one. */
  private replyKey = 0;
  private lastKey = 0;

  constructor(private readonly opts: ControlNodeOptions) {
    this.self = { id: opts.id, endpoint: opts.endpoint };
    const now = opts.now;
    this.random = opts.random ?? Math.random;
    this.distance = opts.distance ?? prefixDistance;
    this.auth = new Authenticator({
      clusterKey: opts.clusterKey,
      groupKey: opts.groupKey,
      now,
      windowMs: opts.authWindowMs,
      replayCapacity: opts.replayCapacity,
      nonce: opts.nonce,
    });
    this.limiter = new RateLimiter(opts.rateLimit);
    const send = (to: Endpoint, msg: Message): void => this.post(to, msg);
    this.membership = opts.membership ?? new Membership({
      self: this.self,
      incarnation: opts.incarnation,
      seeds: opts.seeds,
      intervalMs: opts.heartbeatIntervalMs,
      deadAfter: opts.deadAfter,
      now,
      send,
    });
    const ring = () => this.membership.ring();
    const proxy = (id: string) => this.membership.proxy(id);
    this.jap = new Jap({
      self: this.self,
      now,
      send,
      ring,
      proxy,
      keepaliveIntervalS: opts.keepaliveIntervalS,
      missedKeepalives: opts.missedKeepalives,
      refreshIntervalMs: opts.refreshIntervalMs,
      replicas: opts.replicas,
      maxTargetsPerGroup: opts.maxTargetsPerGroup,
      load: opts.load,
      joinsPerSecond: opts.joinsPerSecond,
      deferInstall: opts.deferInstall,
    });
    this.rap = new Rap({ self: this.self, now, send, expiryMs: opts.registrationExpiryMs, ttlS: opts.cacheTtlS });
    this.iap = new Iap({
      self: this.self,
      now,
      send,
      ring,
      proxy,
      replicas: opts.replicas,
      lookupTimeoutMs: opts.lookupTimeoutMs,
      maxPendingPerGroup: opts.maxPendingPerGroup,
      lookupsPerSecond: opts.lookupsPerSecond,
      negativeTtlS: opts.negativeTtlS,
      onRelease: opts.onRelease,
    });
    this.overlay = opts.overlay ? new OverlayRole(opts.overlay, { self: this.self, incarnation: opts.incarnation, now, send, random: this.random }) : null;
    if (opts.onTarget) this.jap.onTarget(opts.onTarget);
    this.membership.onChange((ev) => {
      this.ringDirty = true;
      if (ev.proxy.id === this.self.id) {
        if (ev.kind === "up") this.jap.refreshSoon(); // the others dropped this proxy and its registrations
      } else if (ev.kind === "down") {
        this.rap.proxyDown(ev.proxy.id);
        this.iap.proxyDown(ev.proxy.id);
      } else {
        this.jap.registerAt(ev.proxy.id); // a restarted RAP knows no JAP until told
      }
      opts.onMembership?.(ev);
    });
  }

  /** A frame arrived from `from` (the UDP source). Never throws on bad input. */
  receive(from: Endpoint, bytes: Uint8Array): void {
    if (this.stopped) return;
    this.bytesReceived += bytes.length;
    const kind = peekKind(bytes);
    if (kind !== undefined && isGroupKeyed(kind) && !this.limiter.allow(addressKey(from.address), this.opts.now())) {
      this.auth.reject("rate-limited");
      return;
    }
    const opened = this.auth.open(bytes);
    if (!opened.ok) return;
    this.count(this.received, opened.message.type);
    this.replyKey = opened.keyIndex;
    try {
      this.dispatch(opened.message, from);
    } finally {
      this.replyKey = 0;
    }
    this.settle(false);
  }

  /** Run the timers: heartbeats, dead proxies, keepalive expiry, refreshes, registration expiry, lookup timeouts, TTLs. */
  tick(): void {
    if (this.stopped) return;
    this.membership.tick();
    this.overlay?.tick();
    this.jap.tick();
    this.rap.tick();
    this.iap.tick();
    this.settle(true);
  }

  /** The IAP's answer for a group; see Iap.resolve. */
  resolve(ta: TransportAddress, packet?: Uint8Array | (() => Uint8Array)): Resolution {
    const r = this.iap.resolve(ta, packet);
    this.settle(false);
    return r;
  }

  /** (deferInstall) The data plane's verdict on a new target: "none" (installed) or why not; see Jap.confirm. */
  confirmTarget(ta: TransportAddress, endpoint: Endpoint, reason: RejectCode): void {
    if (this.stopped) return;
    this.jap.confirm(ta, endpoint, reason);
    this.settle(false);
  }

  /** Unregister every group at its RAPs and stop answering. */
  stop(): void {
    this.jap.stop();
    this.settle(true);
    this.stopped = true;
  }

  private post(to: Endpoint, msg: Message): void {
    if (sameEndpoint(to, this.self.endpoint)) {
      this.local.push({ msg, from: this.self.endpoint });
      return;
    }
    let bytes: Uint8Array;
    try {
      // The same frame may go to several receivers: replay protection is per receiver.
      const now = this.opts.now();
      const key = isGroupKeyed(msg.type) ? this.replyKey : 0;
      if (msg !== this.lastMsg || now !== this.lastAt || key !== this.lastKey) {
        this.lastMsg = undefined;
        this.lastFrame = this.auth.seal(msg, key);
        this.lastMsg = msg;
        this.lastAt = now;
        this.lastKey = key;
      }
      bytes = this.lastFrame!;
    } catch (err) {
      if (err instanceof MessageError) {
        this.unexpected++;
        return;
      }
      throw err;
    }
    this.count(this.sent, msg.type);
    this.bytesSent += bytes.length;
    this.opts.send(to, bytes);
  }

  private count(table: Record<string, number>, kind: MessageKind): void {
    table[kind] = (table[kind] ?? 0) + 1;
  }

  /** Deliver self-addressed messages; with `flush`, also send what the JAP and RAP batched. */
  private settle(flush: boolean): void {
    if (this.settling) return;
    this.settling = true;
    try {
      for (;;) {
        if (flush) {
          if (this.ringDirty) {
            this.ringDirty = false;
            this.jap.ringChanged();
          }
          this.jap.flush();
          this.rap.flush();
        }
        if (this.local.length === 0) break;
        const batch = this.local.splice(0, this.local.length);
        for (const { msg, from } of batch) {
          this.localCount++;
          this.dispatch(msg, from);
        }
      }
    } finally {
      this.settling = false;
    }
  }

  private dispatch(msg: Message, from: Endpoint): void {
    switch (msg.type) {
      case "join":
      case "keepalive":
        if (this.overlay?.isGroup(msg.ta)) {
          this.unexpected++; // the overlay's group has no members but its nodes
          return;
        }
        return this.jap.handleJoin(msg, from);
      case "leave":
        return this.jap.handleLeave(msg);
      case "discover":
        return this.handleDiscover(msg, from);
      case "register":
      case "refresh":
        return this.rap.handleRegister(msg);
      case "unregister":
        return this.rap.handleUnregister(msg);
      case "lookup":
        return this.rap.handleLookup(msg);
      case "lookup-reply":
        return this.iap.handleLookupReply(msg);
      case "push":
        return this.iap.handlePush(msg);
      case "heartbeat":
        return this.membership.onHeartbeat(msg);
      case "discover-forward":
        return this.handleDiscoverForward(msg);
      case "overlay-heartbeat":
        if (this.overlay) this.overlay.onHeartbeat(msg);
        else this.unexpected++;
        return;
      case "join-ack":
      case "discover-reply":
        // Proxy -> target messages: a proxy never expects one.
        this.unexpected++;
        return;
    }
  }

  // ---------------------------------------------------------------- discovery

  private localMembers(ta: TransportAddress, k: number, mode: DiscoverMode, exclude: readonly Endpoint[], near: Uint8Array): TargetInfo[] {
    const ex = excluding(exclude);
    return pickMembers(this.jap.targetsOf(ta), k, {
      mode,
      exclude: (t) => ex(t.endpoint) || sameAddress(t.endpoint.address, near),
      distance: (t) => this.distance(near, t.endpoint.address),
      random: this.random,
    });
  }

  private handleDiscover(msg: DiscoverMessage, from: Endpoint): void {
    if (this.overlay?.isGroup(msg.ta)) {
      this.post(from, { type: "discover-reply", ta: msg.ta, members: this.overlay.members(msg.k, msg.mode, msg.exclude) });
      return;
    }
    this.discover(msg.ta, msg.k, msg.mode, msg.exclude, from, this.opts.maxDiscoverHops ?? 1);
  }

  private handleDiscoverForward(msg: DiscoverForwardMessage): void {
    this.discover(msg.ta, msg.k, msg.mode, msg.exclude, msg.origin, msg.hops, msg.from.id);
  }

  /**
   * Answer from this JAP's own targets (the nearest to the asker: both reached
   * this proxy by anycast); if fewer than k, forward the rest of the query to
   * one other JAP of the group known from the IAP cache (the nearest to this
   * proxy, or a random one), which answers the asker directly.
   */
  private discover(ta: TransportAddress, k: number, mode: DiscoverMode, exclude: readonly Endpoint[], asker: Endpoint, hops: number, cameFrom?: string): void {
    const picked = this.localMembers(ta, k, mode, exclude, asker.address);
    const members: Member[] = picked.map((t) => ({ endpoint: t.endpoint, label: t.label }));
    let forwarded = false;
    if (members.length < k && hops > 0) {
      const japs = this.iap.cached(ta);
      if (japs === undefined) this.iap.resolve(ta); // known next time
      else {
        const others = japs.filter((j) => j.proxy.id !== this.self.id && j.proxy.id !== cameFrom);
        const [next] = pickMembers(others, 1, { mode, distance: (j) => this.distance(this.self.endpoint.address, j.proxy.endpoint.address), random: this.random });
        if (next) {
          const ex = [...exclude, ...members.map((m) => m.endpoint)].slice(0, MAX_EXCLUDE);
          this.post(next.proxy.endpoint, { type: "discover-forward", from: this.self, origin: asker, hops: hops - 1, ta, k: k - members.length, mode, exclude: ex });
          forwarded = true;
        }
      }
    }
    if (members.length > 0 || !forwarded) this.post(asker, { type: "discover-reply", ta, members });
  }

  // ---------------------------------------------------------------- stats

  stats(): NodeStats {
    return {
      id: this.self.id,
      live: this.membership.live().length,
      sent: { ...this.sent },
      received: { ...this.received },
      local: this.localCount,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      rejected: { ...this.auth.rejections.counts },
      jap: { groups: this.jap.groupCount, targets: this.jap.targetCount, installing: this.jap.pendingCount, ...this.jap.counters },
      rap: { groups: this.rap.groupCount, entries: this.rap.entryCount, negativeWatchers: this.rap.negativeWatcherCount, ...this.rap.counters },
      iap: {
        cache: this.iap.cacheSize, negative: this.iap.negative.size, pending: this.iap.pendingGroups, queuedBytes: this.iap.queuedBytes,
        ...this.iap.counters,
      },
      replayCache: this.auth.replay.size,
      unexpected: this.unexpected,
    };
  }
}

function addressKey(a: Uint8Array): string {
  let s = "";
  for (let i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
  return s;
}

function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
