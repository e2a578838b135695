// The IAP role: which JAPs serve a group, as seen by the proxy a client's
// packets reached.
//
// - resolve(ta) answers from a cache (TA -> JAPs), filtered by membership so a
//   dead JAP is never handed out. On a miss it sends LOOKUP to the group's
//   first RAP and reports "pending"; the packet that caused the miss (opaque
//   bytes) waits in a bounded per-group queue, and is released through
//   `onRelease` with the answer (the daemon reinjects it into the data plane).
//   Packets past the bound are dropped and counted.
// - A LOOKUP unanswered within `lookupTimeoutMs` goes to the next replica; when
//   every RAP has timed out the group's queued packets are released with
//   `failed: true` (the daemon drops them).
// - RAPs PUSH changes to IAPs that asked; a cache entry also expires after the
//   TTL the RAP gave (the backstop when a push is lost), and the next
//   resolve() asks again.
// - What a flood of packets to unused TAs of the anycast prefixes costs is
//   bounded, whatever the number of TAs: a negative answer (no JAP) goes to a
//   fixed-size table (negative.ts), at most `negativeTtlS`, and the RAP
//   keeps no per-TA state for it (it pushes a new group to IAPs that got
//   negative answers, which clears theirs); new LOOKUPs are rate-limited as a
//   whole (`lookupsPerSecond`; one per TA in flight, however many packets
//   wait); queued packets are bounded per group, in groups and in bytes.
//
// No sockets, no timers: the owner calls tick().

import { DeadlineHeap } from "./deadlines.js";
import { Fifo } from "./fifo.js";
import { NegativeCache } from "./negative.js";
import { TokenBucket } from "./ratelimit.js";
import type { JapEntry, LookupReplyMessage, Message, ProxyRef, PushMessage } from "./message.js";
import type { Ring } from "./rendezvous.js";
import { taId, type Endpoint, type TransportAddress } from "./ta.js";

export interface IapOptions {
  readonly self: ProxyRef;
  readonly now: () => number;
  readonly send: (to: Endpoint, message: Message) => void;
  readonly ring: () => Ring;
  /** A live proxy by id (undefined when dead or unknown). */
  readonly proxy: (id: string) => ProxyRef | undefined;
  /** RAPs per group. Default 2. */
  readonly replicas?: number;
  /** ms before a LOOKUP goes to the next replica. Default 500. */
  readonly lookupTimeoutMs?: number;
  /** Packets queued per group at most. Default 64. */
  readonly maxPendingPerGroup?: number;
  /** Groups with a lookup in flight at most. Default 4096. */
  readonly maxPendingGroups?: number;
  /** Bytes of queued packets at most, over all groups. Default 4 MiB. */
  readonly maxPendingBytes?: number;
  /** Cache entries (groups some JAP serves) at most (the oldest is evicted). Default 1 << 20. */
  readonly maxCacheEntries?: number;
  /** Slots of the negative cache (fixed memory: 12 bytes each). Default 65536. */
  readonly negativeSlots?: number;
  /** A negative answer is kept at most this long, s (less when the RAP's TTL is shorter). Default 30. */
  readonly negativeTtlS?: number;
  /** New LOOKUPs per second at most, over all groups (the answer to a miss past it: the packet is dropped). Default 200. */
  readonly lookupsPerSecond?: number;
  /** LOOKUPs that may go out at once before the rate applies. Default 400. */
  readonly lookupBurst?: number;
  /** Queued packets with the answer. */
  readonly onRelease?: (release: Release) => void;
}

export interface Release {
  readonly ta: TransportAddress;
  /** Live JAPs of the group (empty: no JAP has a target, or the lookup failed). */
  readonly japs: readonly JapEntry[];
  /** In arrival order. */
  readonly packets: readonly Uint8Array[];
  /** Every RAP timed out. */
  readonly failed: boolean;
}

export type Resolution =
  | { readonly status: "cached"; readonly japs: readonly JapEntry[] }
  /** `queued`: the packet (if any) waits for the answer; false when it was dropped (queue full, or lookups throttled). */
  | { readonly status: "pending"; readonly queued: boolean };

interface CacheEntry {
  readonly ta: TransportAddress;
  readonly key: string;
  japs: readonly JapEntry[];
  expires: number;
  alive: boolean;
}

interface Pending {
  readonly ta: TransportAddress;
  readonly key: string;
  readonly raps: string[];
  attempt: number;
  requestId: number;
  deadline: number;
  packets: Uint8Array[];
  alive: boolean;
}

export class Iap {
  readonly replicas: number;
  readonly lookupTimeoutMs: number;
  readonly maxPendingPerGroup: number;
  readonly negativeTtlS: number;
  private readonly maxPendingGroups: number;
  private readonly maxPendingBytes: number;
  private readonly maxCache: number;
  private readonly cache = new Map<string, CacheEntry>();
  /** Groups no JAP serves, in fixed memory. */
  readonly negative: NegativeCache;
  private readonly lookupBudget: TokenBucket;
  private pendingBytes = 0;
  /** Cache entries in insertion order, for eviction (entries already gone are skipped, and compacted away). */
  private order = new Fifo<CacheEntry>();
  private readonly expiry = new DeadlineHeap<CacheEntry>();
  private readonly pending = new Map<string, Pending>();
  /**
   * Lookup deadlines by group key (not the Pending itself: under a flood most
   * lookups are answered at once, and their entries wait here until the
   * deadline; a key is all that stays alive meanwhile).
   */
  private readonly timeouts = new DeadlineHeap<string>();
  private nextRequest = 1;
  readonly counters = {
    hits: 0, negativeHits: 0, misses: 0, lookups: 0, lookupsThrottled: 0, fallbacks: 0, failed: 0, pendingDrops: 0, released: 0, pushes: 0,
    negativeCleared: 0, expired: 0, evicted: 0,
  };

  constructor(private readonly opts: IapOptions) {
    this.replicas = opts.replicas ?? 2;
    this.lookupTimeoutMs = opts.lookupTimeoutMs ?? 500;
    this.maxPendingPerGroup = opts.maxPendingPerGroup ?? 64;
    this.maxPendingGroups = opts.maxPendingGroups ?? 4096;
    this.maxPendingBytes = opts.maxPendingBytes ?? 4 << 20;
    this.maxCache = opts.maxCacheEntries ?? 1 << 20;
    this.negative = new NegativeCache(opts.negativeSlots ?? 65536);
    this.negativeTtlS = opts.negativeTtlS ?? 30;
    this.lookupBudget = new TokenBucket(opts.lookupsPerSecond ?? 200, opts.lookupBurst ?? 400);
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  get pendingGroups(): number {
    return this.pending.size;
  }

  /** Packets waiting for a group's answer. */
  pendingPackets(ta: TransportAddress): number {
    return this.pending.get(taId(ta))?.packets.length ?? 0;
  }

  /** Bytes of packets waiting for answers, over all groups. */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  /** The cached JAPs of a group (live ones only; empty when known to have none), or undefined on a miss. Does not send anything. */
  cached(ta: TransportAddress): readonly JapEntry[] | undefined {
    const key = taId(ta);
    const now = this.opts.now();
    const e = this.cache.get(key);
    if (e === undefined || e.expires <= now) return this.negative.has(key, now) ? [] : undefined;
    return this.liveOnly(e.japs);
  }

  /**
   * The group's JAPs from the cache, or a LOOKUP under way with `packet`
   * queued for its answer. `packet` may be a function, called only when the
   * packet is queued (the caller copies it then, not for every packet of a flood).
   */
  resolve(ta: TransportAddress, packet?: Uint8Array | (() => Uint8Array)): Resolution {
    const now = this.opts.now();
    const key = taId(ta);
    const e = this.cache.get(key);
    if (e !== undefined && e.expires > now) {
      this.counters.hits++;
      return { status: "cached", japs: this.liveOnly(e.japs) };
    }
    if (this.negative.has(key, now)) {
      this.counters.hits++; // an answer from the cache: that no JAP serves the group
      this.counters.negativeHits++;
      return { status: "cached", japs: [] };
    }
    this.counters.misses++;
    let p = this.pending.get(key);
    if (p === undefined) {
      if (this.pending.size >= this.maxPendingGroups) {
        if (packet) this.counters.pendingDrops++;
        return { status: "pending", queued: false };
      }
      if (!this.lookupBudget.take(now)) {
        this.counters.lookupsThrottled++;
        if (packet) this.counters.pendingDrops++;
        return { status: "pending", queued: false };
      }
      const raps = this.opts.ring().raps(ta, this.replicas);
      p = { ta, key, raps, attempt: 0, requestId: 0, deadline: 0, packets: [], alive: true };
      this.pending.set(key, p);
      this.ask(p, now);
      if (!p.alive) return { status: "pending", queued: false }; // no live RAP: failed at once
    }
    if (packet === undefined) return { status: "pending", queued: false };
    if (p.packets.length >= this.maxPendingPerGroup || this.pendingBytes >= this.maxPendingBytes) {
      this.counters.pendingDrops++;
      return { status: "pending", queued: false };
    }
    const bytes = typeof packet === "function" ? packet() : packet;
    this.pendingBytes += bytes.length;
    p.packets.push(bytes);
    return { status: "pending", queued: true };
  }

  private ask(p: Pending, now: number): void {
    while (p.attempt < p.raps.length) {
      const rap = this.opts.proxy(p.raps[p.attempt]);
      if (rap !== undefined) {
        p.requestId = this.nextRequest;
        this.nextRequest = (this.nextRequest + 1) >>> 0 || 1;
        p.deadline = now + this.lookupTimeoutMs;
        this.timeouts.push(p.deadline, p.key);
        this.counters.lookups++;
        this.opts.send(rap.endpoint, { type: "lookup", iap: this.opts.self, requestId: p.requestId, ta: p.ta });
        return;
      }
      p.attempt++;
    }
    this.fail(p);
  }

  private fail(p: Pending): void {
    p.alive = false;
    this.pending.delete(p.key);
    this.counters.failed++;
    this.release(p, [], true);
  }

  private release(p: Pending, japs: readonly JapEntry[], failed: boolean): void {
    this.counters.released += p.packets.length;
    for (const b of p.packets) this.pendingBytes -= b.length;
    if (p.packets.length || failed) this.opts.onRelease?.({ ta: p.ta, japs, packets: p.packets, failed });
  }

  handleLookupReply(msg: LookupReplyMessage): void {
    this.learn(msg.ta, msg.japs, msg.ttl, true);
  }

  handlePush(msg: PushMessage): void {
    this.counters.pushes++;
    this.learn(msg.ta, msg.japs, msg.ttl, false);
  }

  /** An answer (reply or push) about a group: update the cache if we hold or await it, and release its packets. */
  private learn(ta: TransportAddress, japs: readonly JapEntry[], ttlS: number, reply: boolean): void {
    const now = this.opts.now();
    const key = taId(ta);
    const p = this.pending.get(key);
    let e = this.cache.get(key);
    if (p === undefined && e === undefined) {
      // Not asked for (or evicted): nothing to update, unless this IAP holds a
      // negative answer about it and a push now names JAPs (the group appeared).
      if (reply || japs.length === 0 || !this.negative.delete(key)) return;
      this.counters.negativeCleared++;
    }
    if (!reply && p === undefined && e !== undefined && e.expires <= now) return;
    const expires = now + ttlS * 1000;
    if (e === undefined && japs.length === 0) {
      // "no JAP": fixed memory, however many TAs a flood asks about
      this.negative.set(key, now + Math.min(ttlS, this.negativeTtlS) * 1000);
    } else if (e === undefined) {
      this.negative.delete(key);
      while (this.cache.size >= this.maxCache) this.evictOldest();
      e = { ta, key, japs, expires, alive: true };
      this.cache.set(key, e);
      this.expiry.push(expires, e);
      this.order.push(e);
      if (this.order.size > 2 * this.cache.size + 1024) {
        this.order = new Fifo();
        for (const x of this.cache.values()) this.order.push(x);
      }
    } else {
      e.japs = japs;
      if (e.expires <= expires) e.expires = expires;
    }
    if (p !== undefined) {
      p.alive = false;
      this.pending.delete(key);
      this.release(p, this.liveOnly(japs), false);
    }
  }

  private evictOldest(): void {
    for (let e = this.order.shift(); e !== undefined; e = this.order.shift()) {
      if (!e.alive) continue;
      e.alive = false;
      this.cache.delete(e.key);
      this.counters.evicted++;
      return;
    }
  }

  /** Fall back to the next replica on lookup timeouts; expire cache entries past their TTL. */
  tick(): void {
    const now = this.opts.now();
    this.timeouts.popDue(now, (key, at) => {
      const p = this.pending.get(key);
      if (p === undefined || !p.alive || p.deadline !== at) return;
      p.attempt++;
      if (p.attempt < p.raps.length) this.counters.fallbacks++;
      this.ask(p, now);
    });
    this.expiry.popDue(now, (e) => {
      if (!e.alive) return;
      if (e.expires > now) this.expiry.push(e.expires, e);
      else {
        e.alive = false;
        this.cache.delete(e.key);
        this.counters.expired++;
      }
    });
  }

  /** Drop a dead proxy's entries from every cached answer at once (the RAP's push follows). */
  proxyDown(id: string): void {
    for (const e of this.cache.values()) if (e.japs.some((j) => j.proxy.id === id)) e.japs = e.japs.filter((j) => j.proxy.id !== id);
  }

  private liveOnly(japs: readonly JapEntry[]): readonly JapEntry[] {
    for (const j of japs) if (this.opts.proxy(j.proxy.id) === undefined) return japs.filter((x) => this.opts.proxy(x.proxy.id) !== undefined);
    return japs;
  }
}
