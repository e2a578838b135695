// One proxy's link to a fleet run from a replicated store (etcd): its
// membership lease and key, and a mirror of everything under `<prefix>/`
// (the proxies' keys and the fleet configuration) that one watch keeps
// current, change by change, at the store's revisions.
//
// - join(): grant a lease of `leaseTtlS` and put `<prefix>/proxies/<id>` (the
//   proxy's control endpoint) with it; tick() renews it every third of the
//   TTL. When the store says the lease is gone (it expired while this proxy
//   was cut off), a new lease and key: the others take the proxy back, and
//   the view tells the JAP to register again.
// - start(): read everything under the prefix, then watch from the next
//   revision. The proxies' keys feed StoreMembership, the configuration keys
//   onConfig, each change at its revision, in order, on every proxy alike.
//   Every third of the TTL a digest read (counts and highest mod revisions,
//   at one revision, through the store's quorum) confirms the mirror is
//   current; a mismatch restarts the watch from the mirror's revision (it
//   replays the missed changes), and a second in a row replaces the mirror
//   with a full read.
// - Cut off from the store: renewals and reads fail and are counted; after
//   a TTL the view is stale (StoreMembership says so), while the mirror, the
//   view and the configuration stay as they were.
//
// No timers, no sockets: tick() starts what is due and the store's promises
// finish it. It never throws out of tick(): failures are counted and logged.

import type { StoreMembership } from "./lease-membership.js";
import type { ProxyRef } from "./message.js";
import type { KeyValueStore, StoreEvent, StoreKv, StoreRead, StoreWatch } from "./store.js";
import { epKey, parseControlEndpoint } from "./ta.js";

export interface StoreSyncOptions {
  readonly store: KeyValueStore;
  /** "/pias": keys are `<prefix>/proxies/<id>` and `<prefix>/config/...`. */
  readonly prefix: string;
  readonly membership: StoreMembership;
  readonly leaseTtlS: number;
  readonly now: () => number;
  /** The configuration changed: every key under `<prefix>/config/` (relative to it) with its value, at `revision`. */
  readonly onConfig?: (entries: ReadonlyMap<string, string>, revision: number) => void;
  /** A line for the operator's log. */
  readonly onLog?: (level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown>) => void;
}

export interface StoreSyncCounters {
  leaseGrants: number;
  /** Times the store had dropped this proxy's lease (it then rejoined with a new one). */
  leaseLost: number;
  keepaliveFailures: number;
  readFailures: number;
  /** Reads that found the mirror behind the store. */
  mismatches: number;
  watchRestarts: number;
  /** Proxy keys whose value is not a control endpoint: ignored. */
  badProxyKeys: number;
  configChanges: number;
}

/** The keys of a fleet under `prefix`. */
export function storeKeys(prefix: string) {
  return { all: `${prefix}/`, proxies: `${prefix}/proxies/`, config: `${prefix}/config/` };
}

/** A proxy's key value: its control endpoint (JSON, so more can be added). */
export function proxyValue(self: ProxyRef): string {
  return JSON.stringify({ endpoint: epKey(self.endpoint) });
}

export class StoreSync {
  readonly counters: StoreSyncCounters = { leaseGrants: 0, leaseLost: 0, keepaliveFailures: 0, readFailures: 0, mismatches: 0, watchRestarts: 0, badProxyKeys: 0, configChanges: 0 };
  /** The store answered the last call (a renewal or a read); undefined before the first. */
  reachable: boolean | undefined;
  /** When the store last answered, ms. */
  lastAnswer = -Infinity;
  private readonly keys: ReturnType<typeof storeKeys>;
  private readonly mirror = new Map<string, StoreKv>();
  /** Revision the mirror is at (0: not read yet). */
  private revision = 0;
  private watch: StoreWatch | undefined;
  private lease: string | undefined;
  private joined = false;
  private leaseOkAt = -Infinity;
  /** The lease went a TTL without renewal (said once); the next answered keepalive says whether it lived. */
  private overdue = false;
  private nextRenew = Infinity;
  private nextConfirm = Infinity;
  private renewing = false;
  private confirming = false;
  private misses = 0;
  private stopped = false;
  private readonly periodMs: number;

  constructor(private readonly opts: StoreSyncOptions) {
    this.keys = storeKeys(opts.prefix);
    this.periodMs = (opts.leaseTtlS * 1000) / 3;
  }

  /** The mirror's revision: the store revision of the view and configuration this proxy acts on. */
  get mirrorRevision(): number {
    return this.revision;
  }

  /** The configuration keys (relative to `<prefix>/config/`) and their values. */
  config(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, kv] of this.mirror) if (k.startsWith(this.keys.config)) out.set(k.slice(this.keys.config.length), kv.value);
    return out;
  }

  /** Read everything, then watch. Rejects when the store does not answer (tick() keeps trying). */
  async start(): Promise<void> {
    this.nextConfirm = this.opts.now() + this.periodMs;
    await this.resync();
  }

  /** Take part: a lease and this proxy's key. Rejects when the store does not answer (tick() keeps trying). */
  async join(): Promise<void> {
    this.joined = true;
    this.nextRenew = this.opts.now() + this.periodMs;
    await this.grant(false);
  }

  /** Renew the lease and confirm the mirror when due; notice a stale view. */
  tick(): void {
    if (this.stopped) return;
    const now = this.opts.now();
    if (this.joined && now >= this.nextRenew && !this.renewing) {
      this.nextRenew = now + this.periodMs;
      this.renewing = true;
      this.renew().finally(() => (this.renewing = false));
    }
    if (now >= this.nextConfirm && !this.confirming) {
      this.nextConfirm = now + this.periodMs;
      this.confirming = true;
      this.confirm(now).finally(() => (this.confirming = false));
    }
    this.opts.membership.tick();
  }

  /** Leave: revoke the lease (every view drops this proxy at once) and stop watching. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.cancel();
    const lease = this.lease;
    this.lease = undefined;
    if (lease !== undefined) await this.opts.store.revokeLease(lease).catch(() => undefined);
  }

  // ---------------------------------------------------------------- lease

  private async grant(rejoin: boolean): Promise<void> {
    const store = this.opts.store;
    const lease = await store.grantLease(this.opts.leaseTtlS);
    const revision = await store.put(this.keys.proxies + this.opts.membership.self.id, proxyValue(this.opts.membership.self), lease);
    if (this.stopped) return void (await store.revokeLease(lease).catch(() => undefined)); // stop() came meanwhile
    this.lease = lease;
    this.counters.leaseGrants++;
    this.leaseOkAt = this.opts.now();
    this.answered();
    if (rejoin) {
      this.log("info", "rejoined the fleet with a new lease", { revision });
      this.opts.membership.rejoined(revision);
    }
  }

  private async renew(): Promise<void> {
    try {
      if (this.lease === undefined) return await this.grant(this.counters.leaseGrants > 0);
      const ttl = await this.opts.store.keepAlive(this.lease);
      this.answered();
      this.overdue = false;
      if (ttl > 0) {
        this.leaseOkAt = this.opts.now();
        return;
      }
      this.counters.leaseLost++;
      this.log("warn", "the store dropped this proxy's lease: every proxy had removed it from its view; rejoining", { lease: this.lease });
      this.lease = undefined;
      await this.grant(true);
    } catch (err) {
      this.counters.keepaliveFailures++;
      this.unanswered(err);
      const since = this.opts.now() - this.leaseOkAt;
      if (this.lease !== undefined && since > this.opts.leaseTtlS * 1000 && !this.overdue) {
        // The lease may still live: etcd extends every lease when a new leader
        // takes over. The next keepalive the store answers tells: alive, it is
        // kept; expired (TTL 0), this proxy rejoins with a new one.
        this.overdue = true;
        this.log("warn", "lease not renewed within its TTL: the other proxies may have dropped this one from their views", { lease: this.lease, sinceMs: since });
      }
    }
  }

  // ---------------------------------------------------------------- mirror

  /** A digest read: confirm the mirror, or find it behind and catch up. */
  private async confirm(at: number): Promise<void> {
    let read: StoreRead;
    try {
      read = await this.opts.store.read([this.keys.proxies, this.keys.config], true);
    } catch (err) {
      this.counters.readFailures++;
      this.unanswered(err);
      return;
    }
    this.answered();
    if (this.revision === 0) return void (await this.resync().catch((err) => this.unanswered(err)));
    const behind = read.ranges.some((r) => {
      let count = 0;
      let max = 0;
      for (const kv of this.mirror.values()) {
        if (!kv.key.startsWith(r.prefix)) continue;
        count++;
        if (kv.modRevision > max) max = kv.modRevision;
      }
      return count !== r.count || max !== r.maxModRevision;
    });
    if (!behind) {
      this.misses = 0;
      this.opts.membership.confirm(at);
      return;
    }
    this.counters.mismatches++;
    if (++this.misses === 1) this.rewatch(this.revision + 1);
    else await this.resync().catch((err) => this.unanswered(err));
  }

  /** Replace the mirror with a full read and watch from the revision after it. */
  private async resync(): Promise<void> {
    const at = this.opts.now();
    const read = await this.opts.store.read([this.keys.all]);
    this.answered();
    this.misses = 0;
    if (read.revision >= this.revision) {
      const next = new Map(read.ranges[0].kvs.map((kv) => [kv.key, kv]));
      const events: StoreEvent[] = [];
      for (const key of this.mirror.keys()) if (!next.has(key)) events.push({ type: "delete", key, value: "", modRevision: read.revision });
      for (const kv of next.values()) {
        const had = this.mirror.get(kv.key);
        if (had === undefined || had.modRevision !== kv.modRevision) events.push({ type: "put", key: kv.key, value: kv.value, modRevision: kv.modRevision });
      }
      this.apply(events, read.revision);
    }
    this.opts.membership.confirm(at);
    this.rewatch(this.revision + 1);
  }

  private rewatch(from: number): void {
    if (this.watch !== undefined) this.counters.watchRestarts++;
    this.watch?.cancel();
    this.watch = this.opts.store.watch(
      this.keys.all,
      from,
      (events) => this.apply(events),
      (err) => {
        this.log("warn", "store watch failed; reading everything again", { err: err.message });
        this.resync().catch((e) => this.unanswered(e));
      },
    );
  }

  /**
   * Apply changes in revision order: the proxies' keys change the view one by
   * one, the configuration is handed on once per batch, at its last revision.
   * A watch's changes at or below the mirror's revision are in it already; a
   * read's (`snapshot`: its revision) are all applied.
   */
  private apply(events: readonly StoreEvent[], snapshot?: number): void {
    let configChanged = false;
    let last = snapshot ?? this.revision;
    for (const e of events) {
      if (snapshot === undefined && e.modRevision <= this.revision) continue;
      last = Math.max(last, e.modRevision);
      if (e.type === "delete") this.mirror.delete(e.key);
      else this.mirror.set(e.key, { key: e.key, value: e.value, modRevision: e.modRevision });
      if (e.key.startsWith(this.keys.proxies)) this.proxyChanged(e);
      else if (e.key.startsWith(this.keys.config)) configChanged = true;
    }
    this.revision = Math.max(last, this.revision);
    if (configChanged) {
      this.counters.configChanges++;
      this.opts.onConfig?.(this.config(), this.revision);
    }
  }

  private proxyChanged(e: StoreEvent): void {
    const id = e.key.slice(this.keys.proxies.length);
    const m = this.opts.membership;
    if (e.type === "delete") return m.remove(e.modRevision, id);
    let proxy: ProxyRef;
    try {
      const v = JSON.parse(e.value) as { endpoint?: unknown };
      if (typeof v.endpoint !== "string") throw new Error("no endpoint");
      proxy = { id, endpoint: parseControlEndpoint(v.endpoint) };
    } catch (err) {
      this.counters.badProxyKeys++;
      this.log("warn", "ignored a proxy key that does not hold a control endpoint", { key: e.key, err: (err as Error).message });
      return m.remove(e.modRevision, id);
    }
    m.put(e.modRevision, proxy);
  }

  // ---------------------------------------------------------------- reachability

  private answered(): void {
    this.lastAnswer = this.opts.now();
    if (this.reachable !== true) {
      this.reachable = true;
      this.log("info", "store reachable", { revision: this.revision });
    }
  }

  private unanswered(err: unknown): void {
    if (this.reachable !== false) {
      this.reachable = false;
      this.log("warn", "store unreachable: forwarding goes on with the last view and configuration", { revision: this.revision, err: (err as Error)?.message ?? String(err) });
    }
  }

  private log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown>): void {
    this.opts.onLog?.(level, msg, { id: this.opts.membership.self.id, ...fields });
  }
}
