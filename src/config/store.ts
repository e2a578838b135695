// The `cluster.store` section: where a proxy finds the replicated store that
// holds the fleet's membership (leases) and configuration (groups, keys).
// Types, defaults and the section's validator; validateCluster calls it.
// Nothing here connects or reads files: paths (TLS) are read when the store
// client starts (src/store/etcd.ts), so their errors name the file then.
//
//   cluster:
//     store:
//       etcd:
//         endpoints: [https://10.0.0.5:2379, https://10.0.0.6:2379]
//         prefix: /pias
//         leaseTtl: 3
//         tls: { ca: /etc/pias/etcd-ca.pem, cert: /etc/pias/p1.pem, key: /etc/pias/p1-key.pem }
//         auth: { username: pias, password: ... }

import { fail, has, integer, isPlainObject, list, object, quote, text, type ConfigPath } from "./values.js";

export interface EtcdTlsConfig {
  /** PEM file of the CA that signed the members' certificates. */
  readonly ca: string;
  /** PEM files of this proxy's client certificate and key (both or neither). */
  readonly cert: string | null;
  readonly key: string | null;
}

export interface EtcdStoreConfig {
  /** Member URLs, "http://host:port" or "https://host:port" (https with `tls`). */
  readonly endpoints: readonly string[];
  /** Every key pias reads or writes starts with this: `<prefix>/proxies/<id>`, `<prefix>/config/...`. */
  readonly prefix: string;
  /** Seconds a proxy's membership lease lives without keepalives: how long a dead proxy stays in the views. */
  readonly leaseTtl: number;
  readonly tls: EtcdTlsConfig | null;
  readonly auth: { readonly username: string; readonly password: string } | null;
}

export interface StoreConfig {
  readonly etcd: EtcdStoreConfig;
}

export const DEFAULT_STORE_PREFIX = "/pias";
export const DEFAULT_LEASE_TTL = 3;
/** etcd refuses TTLs below about 1.5 x its election timeout (1 s by default). */
export const LEASE_TTL_RANGE: readonly [number, number] = [2, 300];

const STORE_KEYS = ["etcd"] as const;
const ETCD_KEYS = ["endpoints", "prefix", "leaseTtl", "tls", "auth"] as const;
const TLS_KEYS = ["ca", "cert", "key"] as const;
const AUTH_KEYS = ["username", "password"] as const;

function endpoint(v: unknown, path: ConfigPath, tls: boolean): string {
  const t = text(v, path);
  const m = /^(?:(https?):\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(t);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) fail(path, `${quote(t)} is not an etcd endpoint (http://HOST:PORT or https://HOST:PORT)`);
  const scheme = m[1] ?? (tls ? "https" : "http");
  if (scheme === "https" && !tls) fail(path, `${quote(t)} is https but no tls section gives the CA`);
  if (scheme === "http" && tls) fail(path, `${quote(t)} is plain http but a tls section is set`);
  return `${scheme}://${m[2]}:${m[3]}`;
}

/** Validate `cluster.store` (at `path`). */
export function validateStore(v: unknown, path: ConfigPath): StoreConfig {
  const o = object(v, path, STORE_KEYS);
  if (!has(o, "etcd")) fail([...path, "etcd"], "required: the etcd cluster that holds membership and configuration");
  const ep = [...path, "etcd"];
  const e = object(o.etcd, ep, ETCD_KEYS);

  let tls: EtcdTlsConfig | null = null;
  if (has(e, "tls")) {
    const tp = [...ep, "tls"];
    const t = object(e.tls, tp, TLS_KEYS);
    if (!has(t, "ca")) fail([...tp, "ca"], "required: the PEM file of the CA of the etcd members");
    if (has(t, "cert") !== has(t, "key")) fail([...tp, has(t, "cert") ? "key" : "cert"], "required with a client certificate: cert and key go together");
    tls = { ca: text(t.ca, [...tp, "ca"]), cert: has(t, "cert") ? text(t.cert, [...tp, "cert"]) : null, key: has(t, "key") ? text(t.key, [...tp, "key"]) : null };
  }
  if (!has(e, "endpoints")) fail([...ep, "endpoints"], "required: the etcd members' client URLs");
  const endpoints = list(e.endpoints, [...ep, "endpoints"]).map((x, i) => endpoint(x, [...ep, "endpoints", i], tls !== null));
  if (endpoints.length === 0) fail([...ep, "endpoints"], "must name at least one etcd member");

  let prefix = DEFAULT_STORE_PREFIX;
  if (has(e, "prefix")) {
    prefix = text(e.prefix, [...ep, "prefix"]);
    if (!/^\/[\x21-\x7e]*[^/]$/.test(prefix)) fail([...ep, "prefix"], `${quote(prefix)} must start with "/", not end with "/", and hold no spaces`);
  }

  let auth: EtcdStoreConfig["auth"] = null;
  if (has(e, "auth")) {
    const ap = [...ep, "auth"];
    const a = object(e.auth, ap, AUTH_KEYS);
    if (!has(a, "username")) fail([...ap, "username"], "required");
    if (!has(a, "password")) fail([...ap, "password"], "required");
    auth = { username: text(a.username, [...ap, "username"]), password: text(a.password, [...ap, "password"]) };
  }
  const leaseTtl = has(e, "leaseTtl") ? integer(e.leaseTtl, [...ep, "leaseTtl"], LEASE_TTL_RANGE) : DEFAULT_LEASE_TTL;
  return { etcd: { endpoints, prefix, leaseTtl, tls, auth } };
}

/** The `cluster.store` section of a parsed (not yet validated) configuration, validated; null when there is none. */
export function storeOf(raw: unknown): StoreConfig | null {
  if (!isPlainObject(raw) || !isPlainObject(raw.cluster) || !has(raw.cluster, "store")) return null;
  return validateStore(raw.cluster.store, ["cluster", "store"]);
}
