// An in-memory KeyValueStore with etcd's semantics, on an injected clock, for
// tests and the simulation: one revision per write (a transaction's keys share
// it), leases that expire on the clock and delete their keys in one revision,
// watches that deliver every change from a revision on in order, and reads at
// one revision. Clients (client(name)) can be cut off: their calls fail with
// StoreUnreachableError and their watches hold events until the cut heals,
// as an etcd client's watch resumes after a reconnect.
//
// Not a protocol component: nothing in the control plane depends on it.

import type { KeyValueStore, StoreEvent, StoreRange, StoreRead, StoreWatch } from "./store.js";

export class StoreUnreachableError extends Error {
  constructor(client: string) {
    super(`store unreachable from ${client}`);
  }
}

interface Entry {
  value: string;
  modRevision: number;
  lease: string | undefined;
}

interface Lease {
  ttlMs: number;
  expires: number;
  keys: Set<string>;
}

interface Watcher {
  readonly client: string;
  readonly prefix: string;
  /** The next revision to deliver. */
  next: number;
  readonly onEvents: (events: readonly StoreEvent[]) => void;
  cancelled: boolean;
}

export class MemoryStore {
  revision = 1;
  private readonly kv = new Map<string, Entry>();
  private readonly leases = new Map<string, Lease>();
  /** Every revision's events, oldest first (index = revision - 2). */
  private readonly history: StoreEvent[][] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly cut = new Set<string>();
  private nextLease = 1;
  readonly counters = { reads: 0, writes: 0, keepalives: 0, expired: 0, refused: 0 };

  constructor(private readonly now: () => number) {}

  /** A client of the store named `name` (cut off together by partition(name)). */
  client(name: string): KeyValueStore {
    const ok = async (): Promise<void> => {
      this.expire();
      if (this.cut.has(name)) {
        this.counters.refused++;
        throw new StoreUnreachableError(name);
      }
    };
    return {
      read: async (prefixes, digestOnly = false) => {
        await ok();
        this.counters.reads++;
        return this.read(prefixes, digestOnly);
      },
      watch: (prefix, from, onEvents) => this.watch(name, prefix, from, onEvents),
      grantLease: async (ttlS) => {
        await ok();
        const id = String(this.nextLease++);
        this.leases.set(id, { ttlMs: ttlS * 1000, expires: this.now() + ttlS * 1000, keys: new Set() });
        return id;
      },
      keepAlive: async (lease) => {
        await ok();
        this.counters.keepalives++;
        const l = this.leases.get(lease);
        if (l === undefined) return 0;
        l.expires = this.now() + l.ttlMs;
        return l.ttlMs / 1000;
      },
      revokeLease: async (lease) => {
        await ok();
        this.dropLease(lease);
      },
      put: async (key, value, lease) => {
        await ok();
        if (lease !== undefined && !this.leases.has(lease)) throw new Error(`lease ${lease} not found`);
        return this.commit([], [[key, value]], lease);
      },
      replace: async (prefix, entries) => {
        await ok();
        return this.commit([...this.kv.keys()].filter((k) => k.startsWith(prefix)), entries);
      },
      close: () => {
        for (const w of this.watchers) if (w.client === name) w.cancelled = true;
      },
    };
  }

  /** Cut client `name` off the store (true) or let it through again (false). */
  partition(name: string, cut: boolean): void {
    if (cut) this.cut.add(name);
    else {
      this.cut.delete(name);
      for (const w of this.watchers) if (w.client === name) this.schedule(w);
    }
  }

  /** Delete the keys of every lease past its TTL (each lease in one revision). Calls do this first anyway. */
  expire(): void {
    const now = this.now();
    for (const [id, l] of this.leases) {
      if (l.expires < now) {
        this.counters.expired++;
        this.dropLease(id);
      }
    }
  }

  /** A member became leader: every lease gets its whole TTL again from now, as etcd's lessor does (an election never expires a lease). */
  promote(): void {
    const now = this.now();
    for (const l of this.leases.values()) l.expires = now + l.ttlMs;
  }

  /** The value of a key, or undefined (for tests). */
  get(key: string): string | undefined {
    return this.kv.get(key)?.value;
  }

  private dropLease(id: string): void {
    const l = this.leases.get(id);
    if (l === undefined) return;
    this.leases.delete(id);
    const keys = [...l.keys].filter((k) => this.kv.get(k)?.lease === id);
    if (keys.length > 0) this.commit(keys, []);
  }

  private read(prefixes: readonly string[], digestOnly: boolean): StoreRead {
    const ranges: StoreRange[] = prefixes.map((prefix) => {
      const kvs = [...this.kv].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return {
        prefix,
        count: kvs.length,
        maxModRevision: kvs.reduce((m, [, e]) => Math.max(m, e.modRevision), 0),
        kvs: digestOnly ? [] : kvs.map(([key, e]) => ({ key, value: e.value, modRevision: e.modRevision })),
      };
    });
    return { revision: this.revision, ranges };
  }

  private commit(deletes: readonly string[], puts: readonly (readonly [string, string])[], lease?: string): number {
    const revision = ++this.revision;
    this.counters.writes++;
    const events: StoreEvent[] = [];
    for (const key of deletes) {
      const e = this.kv.get(key);
      if (e === undefined) continue;
      this.kv.delete(key);
      if (e.lease !== undefined) this.leases.get(e.lease)?.keys.delete(key);
      events.push({ type: "delete", key, value: "", modRevision: revision });
    }
    for (const [key, value] of puts) {
      const old = this.kv.get(key);
      if (old?.lease !== undefined && old.lease !== lease) this.leases.get(old.lease)?.keys.delete(key);
      this.kv.set(key, { value, modRevision: revision, lease });
      if (lease !== undefined) this.leases.get(lease)!.keys.add(key);
      events.push({ type: "put", key, value, modRevision: revision });
    }
    this.history.push(events);
    for (const w of this.watchers) this.schedule(w);
    return revision;
  }

  private watch(client: string, prefix: string, from: number, onEvents: (events: readonly StoreEvent[]) => void): StoreWatch {
    const w: Watcher = { client, prefix, next: Math.max(2, from), onEvents, cancelled: false };
    this.watchers.add(w);
    this.schedule(w);
    return {
      cancel: () => {
        w.cancelled = true;
        this.watchers.delete(w);
      },
    };
  }

  /** Deliver what a watcher has not seen yet, after the current call returns (as a network would). */
  private schedule(w: Watcher): void {
    queueMicrotask(() => {
      if (w.cancelled || this.cut.has(w.client) || w.next > this.revision) return;
      const events: StoreEvent[] = [];
      for (let r = w.next; r <= this.revision; r++) for (const e of this.history[r - 2]) if (e.key.startsWith(w.prefix)) events.push(e);
      w.next = this.revision + 1;
      if (events.length > 0) w.onEvents(events);
    });
  }
}
