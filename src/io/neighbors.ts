// Next-hop Ethernet addresses for frames pias injects (pcap, AF_XDP): the
// route to a destination (longest prefix of the interface's routes) gives the
// next hop, the kernel's neighbour table its MAC. Read with `ip -j`, cached,
// and refreshed in the background; a miss asks the kernel to resolve (one
// ping to the next hop) and the frame is dropped and counted. The AF_XDP
// backend reads the same tables without blocking (readNextHops) and pushes
// them into its addon.

import { execFile, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { formatAddress, parseAddress, parsePrefix, prefixContains, type Prefix } from "../net/addr.js";
import { PiasError } from "../errors.js";

export interface Route {
  prefix: Prefix;
  /** Next hop; null: on-link (the destination itself). */
  via: string | null;
}

const REFRESH_MS = 5000;
/** A miss re-reads the tables at most this often. */
const MISS_REFRESH_MS = 200;

function ipJson(args: string[]): unknown[] {
  const r = spawnSync("ip", ["-j", ...args], { encoding: "utf8" });
  if (r.error) throw new PiasError("EROUTE", `cannot run ip (${r.error.message}): install iproute2`);
  if (r.status !== 0) throw new PiasError("EROUTE", `ip -j ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as unknown[]) : [];
}

export function macBytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
}

export class Neighbors {
  /** The interface's own MAC. */
  readonly mac: Uint8Array;
  private routes: Route[] = [];
  private macs = new Map<string, Uint8Array>();
  private refreshed = 0;
  private resolving = new Set<string>();

  constructor(private readonly iface: string) {
    this.mac = interfaceMac(iface);
    this.refresh();
  }

  /** Reload routes and neighbours (synchronous: at most every REFRESH_MS, or when asked). */
  refresh(): void {
    this.routes = readRoutes(this.iface);
    this.macs = readNeighbors(this.iface);
    this.refreshed = Date.now();
  }

  /** The next hop toward `dst` (address bytes), or null when no route of this interface covers it. */
  nextHop(dst: Uint8Array): string | null {
    for (const r of this.routes) if (prefixContains(r.prefix, dst)) return r.via ?? formatAddress(dst);
    return null;
  }

  /** MAC of the next hop toward `dst`, or null (unknown yet: resolution started). */
  lookup(dst: Uint8Array): Uint8Array | null {
    if (Date.now() - this.refreshed > REFRESH_MS) this.refresh();
    let hop = this.nextHop(dst);
    let mac = hop === null ? undefined : this.macs.get(hop);
    if (mac === undefined && Date.now() - this.refreshed > MISS_REFRESH_MS) {
      this.refresh();
      hop = this.nextHop(dst);
      mac = hop === null ? undefined : this.macs.get(hop);
    }
    if (hop === null) return null;
    if (mac) return mac;
    this.resolve(hop);
    return null;
  }

  private resolve(hop: string): void {
    if (this.resolving.has(hop)) return;
    this.resolving.add(hop);
    resolveNeighbor(this.iface, hop, () => {
      this.resolving.delete(hop);
      this.refreshed = 0; // re-read the neighbour table on the next lookup
    });
  }
}

/** An interface's own MAC; throws a PiasError when there is no such interface. */
export function interfaceMac(iface: string): Uint8Array {
  try {
    return macBytes(readFileSync(`/sys/class/net/${iface}/address`, "utf8").trim());
  } catch {
    throw new PiasError("EIFACE", `no interface ${iface}`);
  }
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

interface IpNeighbor {
  dst: string;
  lladdr?: string;
  state?: string[];
  dev?: string;
}

/** One route of `ip -j route show`, or null for a kind pias does not forward over (multicast, ...). */
function toRoute(r: IpRoute, family: 4 | 6): Route | null {
  const dst = r.dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : r.dst.includes("/") ? r.dst : `${r.dst}/${family === 4 ? 32 : 128}`;
  try {
    return { prefix: parsePrefix(dst), via: r.gateway ?? null };
  } catch {
    return null;
  }
}

const longestFirst = (routes: Route[]): Route[] => routes.sort((a, b) => b.prefix.length - a.prefix.length);

/** A resolved neighbour of `ip -j neigh show` as [canonical address text, MAC], or null while unresolved. */
function toNeighbor(n: IpNeighbor): [string, Uint8Array] | null {
  if (!n.lladdr || n.state?.includes("FAILED") || n.state?.includes("INCOMPLETE")) return null;
  return [formatAddress(parseAddress(n.dst).bytes), macBytes(n.lladdr)];
}

/** The kernel's routes through `iface` (main table), longest prefix first. */
export function readRoutes(iface: string): Route[] {
  const routes: Route[] = [];
  for (const family of [4, 6] as const) {
    for (const r of ipJson([`-${family}`, "route", "show", "dev", iface]) as IpRoute[]) {
      const route = toRoute(r, family);
      if (route) routes.push(route);
    }
  }
  return longestFirst(routes);
}

/** The kernel's resolved neighbours on `iface`: canonical address text -> MAC. */
export function readNeighbors(iface: string): Map<string, Uint8Array> {
  const macs = new Map<string, Uint8Array>();
  for (const n of ipJson(["neigh", "show", "dev", iface]) as IpNeighbor[]) {
    const e = toNeighbor(n);
    if (e) macs.set(...e);
  }
  return macs;
}

export interface NextHops {
  /** The interface's routes, longest prefix first. */
  routes: Route[];
  /** Its resolved neighbours: canonical address text -> MAC. */
  macs: Map<string, Uint8Array>;
}

/** readRoutes and readNeighbors for several interfaces at once, without blocking the event loop (three `ip` runs). */
export async function readNextHops(ifaces: readonly string[]): Promise<NextHops[]> {
  const ip = (args: string[]): Promise<unknown[]> =>
    new Promise((resolve, reject) => {
      execFile("ip", ["-j", ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
        if (err) reject(new PiasError("EROUTE", `ip -j ${args.join(" ")}: ${stderr.trim() || err.message}`));
        else resolve(stdout.trim() ? (JSON.parse(stdout) as unknown[]) : []);
      });
    });
  const [r4, r6, neigh] = await Promise.all([ip(["-4", "route", "show"]), ip(["-6", "route", "show"]), ip(["neigh", "show"])]);
  return ifaces.map((iface) => {
    const routes: Route[] = [];
    for (const [family, list] of [[4, r4], [6, r6]] as const) {
      for (const r of list as IpRoute[]) {
        const route = r.dev === iface ? toRoute(r, family) : null;
        if (route) routes.push(route);
      }
    }
    const macs = new Map<string, Uint8Array>();
    for (const n of neigh as IpNeighbor[]) {
      const e = n.dev === iface ? toNeighbor(n) : null;
      if (e) macs.set(...e);
    }
    return { routes: longestFirst(routes), macs };
  });
}

/** Have the kernel resolve `hop` on `iface` (one ping); `done` runs when it finished either way. */
export function resolveNeighbor(iface: string, hop: string, done: () => void): void {
  const p = spawn("ping", ["-c", "1", "-W", "1", "-I", iface, hop], { stdio: "ignore" });
  p.on("exit", done);
  p.on("error", done);
}
