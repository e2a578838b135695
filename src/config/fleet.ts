// The fleet configuration: what every proxy of a fleet run from a store
// shares, kept under `<prefix>/config/` — static groups (with their targets,
// policies, scopes, health checks), the cluster key (and a second, accepted
// key during a rotation) and the groups targets may join, with their join
// keys. `pias config push` checks a fleet document and writes it; each proxy
// merges it into its own file (mergeFleet) and applies the result like a
// reload. A fleet document uses the proxy configuration's own syntax:
//
//   groups: [ ...as in a proxy configuration... ]
//   cluster: { key: HEX, acceptKey: HEX, groups: [ ...as cluster.groups... ] }
//
// and is stored one key per part (values are JSON):
//
//   groups/<name>          a static group
//   cluster/key            {"key": HEX, "acceptKey": HEX}
//   cluster/groups/<TA>    a joinable group ("tcp 198.51.100.10:80")
//
// Pure functions: nothing here reads files or talks to the store.

import { ConfigError } from "../errors.js";
import { formatAddress, tryParseAddress } from "../net/addr.js";
import { LIMITS } from "./types.js";
import { validateConfig } from "./validate.js";
import { ConfigValidationError, fail, has, isPlainObject, list, object, quote, type Raw } from "./values.js";

export interface FleetDocument {
  /** Static groups, as written in the document. */
  readonly groups: readonly unknown[];
  readonly key: { readonly key: unknown; readonly acceptKey?: unknown } | null;
  /** Joinable groups (cluster.groups), as written. */
  readonly clusterGroups: readonly unknown[];
}

export const EMPTY_FLEET: FleetDocument = Object.freeze({ groups: [], key: null, clusterGroups: [] });

const FLEET_KEYS = ["groups", "cluster"] as const;
const FLEET_CLUSTER_KEYS = ["key", "acceptKey", "groups"] as const;
const KEY_KEYS = ["key", "acceptKey"] as const;

/** The addresses a raw document names (groups, targets, joinable groups), canonical. */
function addressesIn(doc: FleetDocument): Set<string> {
  const out = new Set<string>();
  const add = (v: unknown) => {
    const a = typeof v === "string" ? tryParseAddress(v) : undefined;
    if (a) out.add(formatAddress(a.bytes));
  };
  for (const g of [...doc.groups, ...doc.clusterGroups]) {
    if (!isPlainObject(g)) continue;
    add(g.address);
    if (Array.isArray(g.targets)) for (const t of g.targets) if (isPlainObject(t)) add(t.address);
  }
  return out;
}

/** A documentation address no group or target of the document uses. */
function standIn(used: Set<string>, family: 4 | 6): string {
  for (let i = 1; i < 255; i++) {
    const a = family === 4 ? `192.0.2.${i}` : `2001:db8::${i.toString(16)}`;
    if (!used.has(a)) return a;
  }
  throw new ConfigError("the fleet document uses every stand-in address"); // 254 of them: not a real document
}

/**
 * Check every group and key of a fleet document the way a proxy will (the
 * proxy configuration's validator, with a stand-in proxy that no group
 * uses, and table sizes at their limits: each proxy checks its own), and
 * return it with its store entries. Throws ConfigValidationError whose path
 * names the document's own place ("groups[2].targets[0].port").
 */
export function validateFleet(raw: unknown): { doc: FleetDocument; entries: [string, string][] } {
  const o = object(raw, [], FLEET_KEYS);
  const groups = has(o, "groups") ? list(o.groups, ["groups"]) : [];
  let key: FleetDocument["key"] = null;
  let clusterGroups: unknown[] = [];
  if (has(o, "cluster")) {
    const c = object(o.cluster, ["cluster"], FLEET_CLUSTER_KEYS);
    if (has(c, "acceptKey") && !has(c, "key")) fail(["cluster", "acceptKey"], "only with cluster.key: the key that signs");
    if (has(c, "key")) key = has(c, "acceptKey") ? { key: c.key, acceptKey: c.acceptKey } : { key: c.key };
    clusterGroups = has(c, "groups") ? list(c.groups, ["cluster", "groups"]) : [];
  }
  const doc: FleetDocument = { groups, key, clusterGroups };
  const used = addressesIn(doc);
  const config = validateConfig({
    proxy: { address: standIn(used, 4), address6: standIn(used, 6) },
    capacity: { flows: 1, groups: LIMITS.groups[1], targets: LIMITS.targets[1] },
    groups,
    cluster: { key: key?.key ?? "00".repeat(16), ...(key?.acceptKey === undefined ? {} : { acceptKey: key.acceptKey }), groups: clusterGroups },
  });
  const entries: [string, string][] = [];
  config.groups.forEach((g, i) => entries.push([`groups/${g.name}`, JSON.stringify(groups[i])]));
  if (key) entries.push(["cluster/key", JSON.stringify(key)]);
  config.cluster!.groups.forEach((g, i) => entries.push([`cluster/groups/${g.key}`, JSON.stringify(clusterGroups[i])]));
  return { doc, entries };
}

/** The fleet document held by the store's entries (relative keys, JSON values). Throws ConfigError naming the bad key. */
export function fleetFromEntries(entries: ReadonlyMap<string, string>): FleetDocument {
  const groups: unknown[] = [];
  const clusterGroups: unknown[] = [];
  let key: FleetDocument["key"] = null;
  for (const name of [...entries.keys()].sort()) {
    let value: unknown;
    try {
      value = JSON.parse(entries.get(name)!);
    } catch (err) {
      throw new ConfigError(`config/${name}: not JSON: ${(err as Error).message.split("\n")[0]}`);
    }
    if (name.startsWith("groups/")) groups.push(value);
    else if (name.startsWith("cluster/groups/")) clusterGroups.push(value);
    else if (name === "cluster/key") {
      try {
        const k = object(value, ["cluster", "key"], KEY_KEYS);
        if (!has(k, "key")) fail(["cluster", "key"], 'must hold "key"');
        key = k as { key: unknown; acceptKey?: unknown };
      } catch (err) {
        if (err instanceof ConfigValidationError) throw new ConfigError(`config/${name}: ${err.detail}`);
        throw err;
      }
    } else throw new ConfigError(`config/${name}: ${quote(name)} is not a fleet configuration key (groups/..., cluster/key, cluster/groups/...)`);
  }
  return { groups, key, clusterGroups };
}

/**
 * A proxy's configuration with the fleet's: the fleet's static and joinable
 * groups after the file's own, and the fleet's cluster key (with its
 * accepted key, if any) in place of the file's. The result is validated as a
 * whole by the caller, so a group in both is refused as a duplicate.
 */
export function mergeFleet(local: unknown, fleet: FleetDocument): unknown {
  if (!isPlainObject(local)) return local;
  const out: Raw = { ...local };
  if (fleet.groups.length > 0) out.groups = [...(Array.isArray(local.groups) ? local.groups : []), ...fleet.groups];
  if (isPlainObject(local.cluster) && (fleet.key !== null || fleet.clusterGroups.length > 0)) {
    const cluster: Raw = { ...local.cluster };
    if (fleet.key !== null) {
      cluster.key = fleet.key.key;
      if (fleet.key.acceptKey === undefined) delete cluster.acceptKey;
      else cluster.acceptKey = fleet.key.acceptKey;
    }
    if (fleet.clusterGroups.length > 0) cluster.groups = [...(Array.isArray(local.cluster.groups) ? local.cluster.groups : []), ...fleet.clusterGroups];
    out.cluster = cluster;
  }
  return out;
}
