// pias config push FILE (--endpoints URL,... [--prefix P] | --config PROXY_CONF) [--dry-run]
//
// Check a fleet document (src/config/fleet.ts: static groups, the cluster key
// and its rotation key, joinable groups with their join keys) the way every
// proxy will, then make `<prefix>/config/` hold exactly it, in one store
// transaction: every proxy watching the store applies it at that revision.
// A document that does not pass is refused before anything is written.
import { parseArgs } from "node:util";
import { loadConfig, loadValidated } from "../../config/load.js";
import { validateFleet } from "../../config/fleet.js";
import { validateStore, type EtcdStoreConfig } from "../../config/store.js";
import { storeKeys } from "../../control/store-sync.js";
import { PiasError } from "../../errors.js";
import { EtcdStore } from "../../store/etcd.js";
import { UsageError } from "../usage.js";

export const USAGE = `config push FILE (--endpoints URL[,URL...] [--prefix /pias] | --config PROXY_CONF) [--dry-run]
    check a fleet configuration (groups, cluster key, joinable groups and their keys) as every proxy
    will, then write it to the store under PREFIX/config/ in one transaction (--dry-run: only print
    the keys); the store's address, TLS and auth come from --endpoints or from a proxy's cluster.store`;

function storeFrom(values: { endpoints?: string; prefix?: string; config?: string }): EtcdStoreConfig {
  if (values.config !== undefined) {
    if (values.endpoints !== undefined || values.prefix !== undefined) throw new UsageError("config push takes --config or --endpoints/--prefix, not both");
    const store = loadConfig(values.config).cluster?.store;
    if (!store) throw new PiasError("ECONFIG", `${values.config}: no cluster.store section names the store`);
    return store.etcd;
  }
  if (values.endpoints === undefined) throw new UsageError("config push needs --endpoints (or --config PROXY_CONF)");
  try {
    return validateStore({ etcd: { endpoints: values.endpoints.split(","), ...(values.prefix === undefined ? {} : { prefix: values.prefix }) } }, ["store"]).etcd;
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^store\.etcd\./, "--"));
  }
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "push") throw new UsageError(sub === undefined ? "config needs a subcommand: push" : `unknown config subcommand "${sub}"`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { endpoints: { type: "string" }, prefix: { type: "string" }, config: { type: "string" }, "dry-run": { type: "boolean", default: false } },
  });
  if (positionals.length !== 1) throw new UsageError("config push takes one FILE");
  const store = storeFrom(values);
  const { entries } = loadValidated(positionals[0], validateFleet); // refused here, before any write
  const prefix = storeKeys(store.prefix).config;
  const full = entries.map(([k, v]) => [prefix + k, v] as const);
  if (values["dry-run"]) {
    for (const [k, v] of full) console.log(`${k} ${v}`);
    return 0;
  }
  const kv = new EtcdStore(store);
  try {
    const revision = await kv.replace(prefix, full);
    console.log(`pias config push: ${positionals[0]}: ${full.length} keys under ${prefix} at revision ${revision}`);
  } finally {
    kv.close();
  }
  return 0;
}
