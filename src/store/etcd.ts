// The etcd v3 client behind the control plane's KeyValueStore (src/control/
// store.ts), on the `etcd3` package (gRPC). Reads are one transaction of
// range requests (one revision, linearizable: a member cut off from the
// quorum cannot answer them); a replace is one transaction (deletes and puts,
// guarded by the revision of the read it was built from); every call carries a deadline, so a store that does not
// answer fails the call instead of hanging it. Errors become StoreError, one
// line naming the endpoints.
//
// It keeps no state of the fleet and never retries by itself beyond the
// client's own policy: StoreSync decides what to do next. That policy is the
// client's (a failed call tries the next member, up to four attempts) except
// for how long a member that failed three calls in a row is skipped: the
// client's default is 5 s, during which a cluster that is back (a leader
// election, members restarted, a proxy cut off for a moment) gets no call at
// all, longer than a lease of the default 3 s lives. Here it is half a second.

import { readFileSync } from "node:fs";
import { circuitBreaker, ConsecutiveBreaker, handleWhen } from "cockatiel";
import { CompareResult, CompareTarget, Etcd3, EtcdLeaseInvalidError, isRecoverableError, Range, SortOrder, SortTarget, type IOptions, type IRequestOp, type Watcher } from "etcd3";
import type { EtcdStoreConfig } from "../config/store.js";
import type { KeyValueStore, StoreEvent, StoreKv, StoreRange, StoreRead, StoreWatch } from "../control/store.js";
import { PiasError } from "../errors.js";

/** A store call failed; the message is one line. */
export class StoreError extends PiasError {
  constructor(message: string) {
    super("ESTORE", message);
  }
}

export interface EtcdStoreOptions {
  /** Deadline of each call, ms. Default 2000. */
  readonly timeoutMs?: number;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StoreError(`cannot read cluster.store.etcd.tls.${what} ${path}: ${((err as NodeJS.ErrnoException).code ?? (err as Error).message)}`);
  }
}

const text = (b: Buffer | undefined): string => (b ? b.toString("utf8") : "");

/** A member that failed this many calls in a row is skipped ... */
const MEMBER_FAILURES = 3;
/** ... for this long, ms; then one call tries it again. */
export const MEMBER_SKIP_MS = 500;

export class EtcdStore implements KeyValueStore {
  private readonly client: Etcd3;
  private readonly timeoutMs: number;
  private readonly where: string;
  private readonly members: number;
  private readonly watchers = new Set<Watcher>();

  constructor(cfg: EtcdStoreConfig, opts: EtcdStoreOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.members = cfg.endpoints.length;
    this.where = `etcd ${cfg.endpoints.join(",")}`;
    const options: IOptions = {
      hosts: [...cfg.endpoints],
      dialTimeout: this.timeoutMs,
      faultHandling: { host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: MEMBER_SKIP_MS, breaker: new ConsecutiveBreaker(MEMBER_FAILURES) }) },
    };
    if (cfg.tls) {
      options.credentials = {
        rootCertificate: readPem(cfg.tls.ca, "ca"),
        ...(cfg.tls.cert && cfg.tls.key ? { certChain: readPem(cfg.tls.cert, "cert"), privateKey: readPem(cfg.tls.key, "key") } : {}),
      };
    }
    if (cfg.auth) options.auth = { username: cfg.auth.username, password: cfg.auth.password, callOptions: () => this.deadline() };
    this.client = new Etcd3(options);
  }

  private deadline(): { deadline: number } {
    return { deadline: Date.now() + this.timeoutMs };
  }

  private fail(what: string, err: unknown): never {
    const message = String((err as Error)?.message ?? err).split("\n")[0];
    throw new StoreError(`${this.where}: ${what}: ${message}`);
  }

  async read(prefixes: readonly string[], digestOnly = false): Promise<StoreRead> {
    const ops: IRequestOp[] = [];
    for (const p of prefixes) {
      const r = Range.prefix(p);
      if (digestOnly) {
        ops.push({ request_range: { key: r.start, range_end: r.end, count_only: true } });
        ops.push({ request_range: { key: r.start, range_end: r.end, limit: 1, keys_only: true, sort_target: SortTarget.Mod, sort_order: SortOrder.Descend } });
      } else ops.push({ request_range: { key: r.start, range_end: r.end } });
    }
    let res;
    try {
      res = await this.client.kv.txn({ success: ops }, this.deadline());
    } catch (err) {
      this.fail("read", err);
    }
    const ranges: StoreRange[] = prefixes.map((prefix, i) => {
      if (digestOnly) {
        const latest = res.responses[2 * i + 1].response_range.kvs[0];
        return { prefix, count: Number(res.responses[2 * i].response_range.count), maxModRevision: latest ? Number(latest.mod_revision) : 0, kvs: [] };
      }
      const kvs: StoreKv[] = res.responses[i].response_range.kvs.map((kv) => ({ key: text(kv.key), value: text(kv.value), modRevision: Number(kv.mod_revision) }));
      return { prefix, count: kvs.length, maxModRevision: kvs.reduce((m, kv) => Math.max(m, kv.modRevision), 0), kvs };
    });
    return { revision: Number(res.header.revision), ranges };
  }

  watch(prefix: string, from: number, onEvents: (events: readonly StoreEvent[]) => void, onError: (err: Error) => void): StoreWatch {
    const w = this.client.watch().prefix(prefix).startRevision(String(from)).watcher();
    this.watchers.add(w);
    w.on("data", (res) => {
      const events: StoreEvent[] = res.events.map((e) => ({
        type: e.type === "Delete" ? "delete" : "put",
        key: text(e.kv.key),
        value: e.type === "Delete" ? "" : text(e.kv.value),
        modRevision: Number(e.kv.mod_revision),
      }));
      if (events.length > 0) onEvents(events);
    });
    w.on("error", (err) => onError(new StoreError(`${this.where}: watch ${prefix}: ${err.message.split("\n")[0]}`)));
    return { cancel: () => this.cancel(w) };
  }

  private cancel(w: Watcher): Promise<void> {
    this.watchers.delete(w);
    w.removeAllListeners("data");
    return w.cancel().catch(() => undefined);
  }

  async grantLease(ttlS: number): Promise<string> {
    try {
      return String((await this.client.leaseClient.leaseGrant({ TTL: ttlS }, this.deadline())).ID);
    } catch (err) {
      this.fail("lease grant", err);
    }
  }

  /**
   * A keepalive is a stream, which the client opens on one member without
   * trying the others: a dead member fails it. So try again (the client then
   * knows that member failed) while the deadline allows, once per member.
   */
  async keepAlive(lease: string): Promise<number> {
    const deadline = Date.now() + this.timeoutMs;
    let last: unknown;
    for (let attempt = 0; attempt <= this.members && Date.now() < deadline; attempt++) {
      try {
        const stream = await this.client.leaseClient.leaseKeepAlive({ deadline });
        const ttl = await new Promise<number>((resolve, reject) => {
          stream.on("data", (r) => resolve(Number(r.TTL)));
          stream.on("error", reject);
          stream.write({ ID: lease });
        });
        stream.end();
        return ttl;
      } catch (err) {
        if (err instanceof EtcdLeaseInvalidError) return 0;
        last = err;
      }
    }
    this.fail("lease keepalive", last);
  }

  async revokeLease(lease: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: lease }, this.deadline());
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) this.fail("lease revoke", err);
    }
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    try {
      const res = await this.client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : { lease }) }, this.deadline());
      return Number(res.header.revision);
    } catch (err) {
      this.fail(`put ${key}`, err);
    }
  }

  /**
   * etcd refuses a transaction that puts a key inside a range it deletes, so:
   * read the keys under the prefix at revision R, then one transaction that
   * deletes those not put again and puts the rest, on condition that no key
   * under the prefix changed after R (else read and try again).
   */
  async replace(prefix: string, entries: readonly (readonly [string, string])[]): Promise<number> {
    const r = Range.prefix(prefix);
    const keep = new Set(entries.map(([k]) => k));
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.read([prefix]);
      const ops: IRequestOp[] = [];
      for (const kv of current.ranges[0].kvs) if (!keep.has(kv.key)) ops.push({ request_delete_range: { key: Buffer.from(kv.key) } });
      for (const [key, value] of entries) ops.push({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
      const unchanged = { key: r.start, range_end: r.end, target: CompareTarget.Mod, result: CompareResult.Less, mod_revision: current.revision + 1 };
      try {
        const res = await this.client.kv.txn({ compare: [unchanged], success: ops }, this.deadline());
        if (res.succeeded) return Number(res.header.revision);
      } catch (err) {
        this.fail(`replace ${prefix}`, err);
      }
    }
    throw new StoreError(`${this.where}: replace ${prefix}: the keys kept changing while being replaced`);
  }

  /** Cancel the watches (else the client reconnects them), then close the connections. */
  close(): void {
    const cancels = [...this.watchers].map((w) => this.cancel(w));
    void Promise.race([Promise.all(cancels), new Promise((r) => setTimeout(r, 500))]).then(() => this.client.close());
  }
}
