// The RAP role: for each group this proxy is a rendezvous point of, the set of
// JAPs that have at least one target (proxy, unicast endpoint, load, expiry),
// never the targets themselves.
//
// - REGISTER / REFRESH add or renew a JAP; UNREGISTER removes it. A JAP not
//   refreshed within `expiryMs` (default 3 x the 30 s refresh interval) is
//   forgotten; so is every JAP of a proxy that membership declares dead.
// - LOOKUP is answered with the group's JAPs and a TTL, and the asking IAP is
//   remembered for that TTL: when the set of JAPs changes, each such IAP gets
//   a PUSH (coalesced: one per group per flush()).
// - State per group is bounded by the number of proxies: one entry per JAP and
//   one per watching IAP, keyed by proxy id, whatever the group's size or churn.
// - A LOOKUP of a group no JAP registered creates nothing per TA (a flood of
//   lookups for random TAs must not grow memory): the answer is empty, and
//   the asking IAP is remembered once, whatever the TA, as a *negative
//   watcher* for the TTL. A group that gets its first JAP is pushed to the
//   negative watchers too (who then watch it as if they had asked), so an
//   IAP that cached "nobody" learns at once, and hears of later changes.
//
// No sockets, no timers: the owner calls tick() and flush().

import { DeadlineHeap } from "./deadlines.js";
import type { JapEntry, LookupMessage, Message, ProxyRef, RefreshMessage, RegisterMessage, UnregisterMessage } from "./message.js";
import { sameEndpoint, taFromId, taId, type Endpoint, type TransportAddress } from "./ta.js";

export interface RapOptions {
  readonly self: ProxyRef;
  readonly now: () => number;
  readonly send: (to: Endpoint, message: Message) => void;
  /** A registration not refreshed this long is forgotten, ms. Default 90 s. */
  readonly expiryMs?: number;
  /** TTL told to IAPs with each answer and push, s. Default 60. */
  readonly ttlS?: number;
  /** Groups held at most; registrations of further groups are ignored (counted). Default 1 << 22. */
  readonly maxGroups?: number;
  /** IAPs remembered as negative watchers at most (one entry per proxy). Default 4096. */
  readonly maxNegativeWatchers?: number;
}

interface RapJap {
  proxy: ProxyRef;
  load: number;
  expires: number;
}

interface Watcher {
  proxy: ProxyRef;
  until: number;
}

interface RapGroup {
  /** taId of the group's TA (the TA itself is rebuilt for a push: a RAP may hold millions of groups). */
  readonly key: string;
  japs: RapJap[];
  /** null until an IAP asks. */
  watchers: Watcher[] | null;
  /** Deadline of this group's heap entry, or Infinity when it has none. */
  queuedAt: number;
  dirty: boolean;
  /** Created since the last flush(): the negative watchers hear of it. */
  fresh: boolean;
}

export class Rap {
  readonly expiryMs: number;
  readonly ttlS: number;
  private readonly maxGroups: number;
  private readonly maxNegativeWatchers: number;
  private readonly groups = new Map<string, RapGroup>();
  /** IAPs that got an empty answer, by proxy id (bounded by the number of proxies). */
  private readonly negativeWatchers = new Map<string, Watcher>();
  private readonly timers = new DeadlineHeap<RapGroup>();
  private dirty: RapGroup[] = [];
  private japEntries = 0;
  readonly counters = { registered: 0, unregistered: 0, expired: 0, lookups: 0, negativeLookups: 0, pushes: 0, overflow: 0 };

  constructor(private readonly opts: RapOptions) {
    this.expiryMs = opts.expiryMs ?? 90_000;
    this.ttlS = opts.ttlS ?? 60;
    this.maxGroups = opts.maxGroups ?? 1 << 22;
    this.maxNegativeWatchers = opts.maxNegativeWatchers ?? 4096;
  }

  /** IAPs watching for groups to appear. */
  get negativeWatcherCount(): number {
    return this.negativeWatchers.size;
  }

  get groupCount(): number {
    return this.groups.size;
  }

  /** JAP entries over all groups. */
  get entryCount(): number {
    return this.japEntries;
  }

  /** The JAPs of a group here (empty when none). */
  japsOf(ta: TransportAddress): JapEntry[] {
    const g = this.groups.get(taId(ta));
    return g ? this.entries(g, this.opts.now()) : [];
  }

  /** Largest number of JAP entries and of watchers of any group (both bounded by the number of proxies). */
  maxPerGroup(): { japs: number; watchers: number } {
    let japs = 0;
    let watchers = 0;
    for (const g of this.groups.values()) {
      if (g.japs.length > japs) japs = g.japs.length;
      if (g.watchers && g.watchers.length > watchers) watchers = g.watchers.length;
    }
    return { japs, watchers };
  }

  private group(ta: TransportAddress, create: boolean): RapGroup | undefined {
    const key = taId(ta);
    let g = this.groups.get(key);
    if (g === undefined && create) {
      if (this.groups.size >= this.maxGroups) {
        this.counters.overflow++;
        return undefined;
      }
      g = { key, japs: [], watchers: null, queuedAt: Infinity, dirty: false, fresh: true };
      this.groups.set(key, g);
    }
    return g;
  }

  private schedule(g: RapGroup, at: number): void {
    if (g.queuedAt <= at) return;
    g.queuedAt = at;
    this.timers.push(at, g);
  }

  private markDirty(g: RapGroup): void {
    if (g.dirty) return;
    g.dirty = true;
    this.dirty.push(g);
  }

  handleRegister(msg: RegisterMessage | RefreshMessage): void {
    const now = this.opts.now();
    const expires = now + this.expiryMs;
    for (const e of msg.entries) {
      const g = this.group(e.ta, true);
      if (g === undefined) continue;
      let j = g.japs.find((x) => x.proxy.id === msg.jap.id);
      if (j === undefined) {
        j = { proxy: msg.jap, load: e.load, expires };
        g.japs.push(j);
        this.japEntries++;
        this.counters.registered++;
        this.markDirty(g);
      } else {
        if (!sameEndpoint(j.proxy.endpoint, msg.jap.endpoint)) {
          j.proxy = msg.jap;
          this.markDirty(g);
        }
        j.load = e.load;
        j.expires = expires;
      }
      this.schedule(g, expires);
    }
  }

  handleUnregister(msg: UnregisterMessage): void {
    for (const ta of msg.tas) {
      const g = this.group(ta, false);
      if (g === undefined) continue;
      const i = g.japs.findIndex((x) => x.proxy.id === msg.jap.id);
      if (i < 0) continue;
      g.japs.splice(i, 1);
      this.japEntries--;
      this.counters.unregistered++;
      this.markDirty(g);
      this.schedule(g, this.opts.now());
    }
  }

  handleLookup(msg: LookupMessage): void {
    const now = this.opts.now();
    this.counters.lookups++;
    const g = this.group(msg.ta, false);
    const japs = g ? this.entries(g, now) : [];
    const until = now + this.ttlS * 1000;
    if (g) {
      const w = g.watchers?.find((x) => x.proxy.id === msg.iap.id);
      if (w) {
        w.proxy = msg.iap;
        w.until = until;
      } else (g.watchers ??= []).push({ proxy: msg.iap, until });
      this.schedule(g, until);
    } else {
      this.counters.negativeLookups++;
      const w = this.negativeWatchers.get(msg.iap.id);
      if (w) {
        w.proxy = msg.iap;
        w.until = until;
      } else if (this.negativeWatchers.size < this.maxNegativeWatchers) this.negativeWatchers.set(msg.iap.id, { proxy: msg.iap, until });
    }
    this.opts.send(msg.iap.endpoint, { type: "lookup-reply", rap: this.opts.self, requestId: msg.requestId, ta: msg.ta, ttl: this.ttlS, japs });
  }

  /** Membership declared a proxy dead: forget its registrations and its watches. */
  proxyDown(id: string): void {
    const now = this.opts.now();
    for (const g of this.groups.values()) {
      const i = g.japs.findIndex((j) => j.proxy.id === id);
      if (i >= 0) {
        g.japs.splice(i, 1);
        this.japEntries--;
        this.counters.expired++;
        this.markDirty(g);
        if (g.japs.length === 0) this.schedule(g, now);
      }
      if (g.watchers?.some((w) => w.proxy.id === id)) g.watchers = g.watchers.filter((w) => w.proxy.id !== id);
    }
    this.negativeWatchers.delete(id);
  }

  /** Forget expired registrations and watches, and empty groups. Call flush() after. */
  tick(): void {
    const now = this.opts.now();
    for (const [id, w] of this.negativeWatchers) if (w.until <= now) this.negativeWatchers.delete(id);
    this.timers.popDue(now, (g, at) => {
      if (g.queuedAt !== at) return; // superseded by an earlier entry
      g.queuedAt = Infinity;
      if (this.groups.get(g.key) !== g) return;
      let next = Infinity;
      const keep: RapJap[] = [];
      for (const j of g.japs) {
        if (j.expires <= now) {
          this.counters.expired++;
          this.japEntries--;
          this.markDirty(g);
        } else {
          keep.push(j);
          if (j.expires < next) next = j.expires;
        }
      }
      g.japs = keep;
      if (g.watchers) {
        g.watchers = g.watchers.filter((w) => w.until > now);
        for (const w of g.watchers) if (w.until < next) next = w.until;
        if (g.watchers.length === 0) g.watchers = null;
      }
      if (g.japs.length === 0 && g.watchers === null) this.groups.delete(g.key);
      else this.schedule(g, next);
    });
  }

  /** Push every group whose set of JAPs changed to its watching IAPs. */
  flush(): void {
    if (this.dirty.length === 0) return;
    const now = this.opts.now();
    const dirty = this.dirty;
    this.dirty = [];
    for (const g of dirty) {
      g.dirty = false;
      const fresh = g.fresh;
      g.fresh = false;
      const negative = fresh && g.japs.length > 0 && this.negativeWatchers.size > 0;
      if (g.watchers === null && !negative) continue;
      // One message object for every watcher: the node seals it once.
      const push: Message = { type: "push", rap: this.opts.self, ta: taFromId(g.key), ttl: this.ttlS, japs: this.entries(g, now) };
      if (negative) {
        // an IAP that cached "nobody" for this TA now caches the JAPs: it watches the group like any that asked
        for (const n of this.negativeWatchers.values()) {
          if (n.until <= now || g.watchers?.some((w) => w.proxy.id === n.proxy.id)) continue;
          (g.watchers ??= []).push({ proxy: n.proxy, until: n.until });
          this.schedule(g, n.until);
        }
      }
      for (const w of g.watchers ?? []) {
        if (w.until <= now) continue;
        this.counters.pushes++;
        this.opts.send(w.proxy.endpoint, push);
      }
    }
  }

  private entries(g: RapGroup, now: number): JapEntry[] {
    const out: JapEntry[] = [];
    for (const j of g.japs) if (j.expires > now) out.push({ proxy: j.proxy, load: j.load });
    return out;
  }
}
