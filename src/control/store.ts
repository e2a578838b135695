// The replicated key-value store as the control plane sees it: the few
// operations of etcd's v3 API that store membership and fleet configuration
// need (linearizable reads at one revision, watches from a revision, leases,
// transactions). The etcd client implements it in src/store/etcd.ts;
// MemoryStore (memstore.ts) implements it in memory for tests and the
// simulation. Types only: nothing here does I/O.

export interface StoreKv {
  readonly key: string;
  readonly value: string;
  /** Revision of the key's last change. */
  readonly modRevision: number;
}

/** The keys under one prefix in a read: always their count and highest mod revision, the keys themselves unless only a digest was asked for. */
export interface StoreRange {
  readonly prefix: string;
  readonly count: number;
  /** 0 when no key is under the prefix. */
  readonly maxModRevision: number;
  readonly kvs: readonly StoreKv[];
}

/** One linearizable read of several prefixes, all at the same revision. */
export interface StoreRead {
  readonly revision: number;
  readonly ranges: readonly StoreRange[];
}

export interface StoreEvent {
  readonly type: "put" | "delete";
  readonly key: string;
  /** "" for a delete. */
  readonly value: string;
  /** The revision of the change (for a delete: the revision that deleted it). */
  readonly modRevision: number;
}

export interface StoreWatch {
  cancel(): void;
}

export interface KeyValueStore {
  /**
   * Read the keys under each prefix at one revision, through the store's
   * quorum (a store member cut off from it fails the read). With
   * `digestOnly`, only counts and highest mod revisions: enough to tell a
   * mirror is current without moving its keys.
   */
  read(prefixes: readonly string[], digestOnly?: boolean): Promise<StoreRead>;
  /**
   * Every change under `prefix` from revision `from` on, in revision order,
   * never splitting a revision across calls of `onEvents`. `onError` when the
   * watch cannot go on (its start revision was compacted away, say).
   */
  watch(prefix: string, from: number, onEvents: (events: readonly StoreEvent[]) => void, onError: (err: Error) => void): StoreWatch;
  /** A lease of `ttlS` seconds; keys put with it are deleted (in one revision) when it expires or is revoked. */
  grantLease(ttlS: number): Promise<string>;
  /** Renew a lease: its remaining TTL, s; 0 when it is gone (expired or revoked). */
  keepAlive(lease: string): Promise<number>;
  revokeLease(lease: string): Promise<void>;
  /** Put one key (bound to `lease` if given); resolves to the revision. */
  put(key: string, value: string, lease?: string): Promise<number>;
  /** In one transaction (one revision): the keys under `prefix` become exactly `entries` (full keys). */
  replace(prefix: string, entries: readonly (readonly [string, string])[]): Promise<number>;
  close(): void;
}
