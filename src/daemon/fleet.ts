// `pias run` with `cluster.store`: this proxy's link to a fleet kept in etcd.
// It owns the store client, the membership view ControlNode uses
// (StoreMembership, fed by StoreSync: lease, watch, digest reads) and the
// fleet configuration (src/config/fleet.ts) the daemon merges into the
// proxy's own file and applies like a reload. It logs what an operator must
// know (store reachable or not, a stale view, a lost lease, a rejected
// configuration) and leaves applying configurations to the daemon.
//
// It never stops forwarding: a store that does not answer leaves the last
// view and configuration in force, and says so.

import type { Logger } from "pino";
import { EMPTY_FLEET, fleetFromEntries, mergeFleet, type FleetDocument } from "../config/fleet.js";
import type { StoreConfig } from "../config/store.js";
import type { PiasConfig } from "../config/types.js";
import { validateConfig } from "../config/validate.js";
import { StoreMembership } from "../control/lease-membership.js";
import type { ProxyRef } from "../control/message.js";
import type { KeyValueStore } from "../control/store.js";
import { StoreSync, storeKeys } from "../control/store-sync.js";
import { ConfigError } from "../errors.js";
import { EtcdStore } from "../store/etcd.js";

export const FLEET_TICK_MS = 100;

export class Fleet {
  readonly store: KeyValueStore;
  membership: StoreMembership | null = null;
  sync: StoreSync | null = null;
  /** The fleet configuration in force and the store revision it came from (0: none). */
  doc: FleetDocument = EMPTY_FLEET;
  revision = 0;
  private text = "[]";
  private readonly where: string;

  constructor(
    readonly cfg: StoreConfig,
    private readonly log: Logger,
    store?: KeyValueStore,
  ) {
    this.store = store ?? new EtcdStore(cfg.etcd);
    this.where = `${cfg.etcd.endpoints.join(",")} ${cfg.etcd.prefix}`;
  }

  /** Read the fleet configuration now in the store; when the store does not answer, keep none and say so. */
  async fetch(): Promise<void> {
    try {
      const read = await this.store.read([storeKeys(this.cfg.etcd.prefix).config]);
      const prefix = storeKeys(this.cfg.etcd.prefix).config;
      this.setDoc(new Map(read.ranges[0].kvs.map((kv) => [kv.key.slice(prefix.length), kv.value])), read.revision);
    } catch (err) {
      this.log.warn({ store: this.where, err: (err as Error).message }, "store unreachable at start: serving this file's configuration until it answers");
    }
  }

  /** The proxy's own file `name` (parsed) with the fleet configuration in force, validated as a whole. Throws ConfigError. */
  configure(local: unknown, name: string): PiasConfig {
    try {
      return validateConfig(mergeFleet(local, this.doc));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const fleet = this.revision === 0 ? "no fleet configuration from the store" : `the fleet configuration of store revision ${this.revision}`;
      throw new ConfigError(`${name} with ${fleet}: ${err.message}`);
    }
  }

  /** Take the store's configuration entries: true when they differ from those in force and parse (else logged). */
  setDoc(entries: ReadonlyMap<string, string>, revision: number): boolean {
    const text = JSON.stringify([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (text === this.text) return false; // the first watch's read repeats fetch()'s
    try {
      this.doc = fleetFromEntries(entries);
      this.revision = revision;
      this.text = text;
      return true;
    } catch (err) {
      this.log.error({ revision, err: (err as Error).message }, "fleet configuration rejected; the running config stays");
      return false;
    }
  }

  /** The membership view of proxy `self`, kept from the store once start()ed; `changed` runs when the fleet configuration changes. */
  attach(self: ProxyRef, changed: () => void): StoreMembership {
    const e = this.cfg.etcd;
    const membership = new StoreMembership({ self, now: Date.now, staleAfterMs: e.leaseTtl * 1000 });
    membership.onStaleness((ev) => {
      if (ev.stale) this.log.warn({ revision: ev.revision, ageMs: Number.isFinite(ev.ageMs) ? ev.ageMs : null }, "membership view stale: the store has not confirmed it within the lease TTL; forwarding with this view");
      else this.log.info({ revision: ev.revision }, "membership view confirmed by the store");
    });
    this.membership = membership;
    this.sync = new StoreSync({
      store: this.store,
      prefix: e.prefix,
      membership,
      leaseTtlS: e.leaseTtl,
      now: Date.now,
      onConfig: (entries, revision) => {
        if (this.setDoc(entries, revision)) changed();
      },
      onLog: (level, msg, fields) => this.log[level]({ store: this.where, ...fields }, msg),
    });
    return membership;
  }

  /** Read the view and watch. Resolves once the store answered or failed (logged; tick() retries). */
  async start(): Promise<void> {
    await this.sync?.start().catch(() => undefined);
  }

  /** Put this proxy's key (with its lease): the other proxies take it into their views. */
  async join(): Promise<void> {
    await this.sync?.join().catch(() => undefined);
  }

  tick(): void {
    this.sync?.tick();
  }

  /** Leave: revoke the lease, so every view drops this proxy at once. */
  async stop(): Promise<void> {
    await this.sync?.stop();
    this.store.close();
  }
}
