// Next-hop Ethernet addresses for frames pias injects with pcap: the route
// to a destination (longest prefix of the interface's routes) gives the next
// hop, the kernel's neighbour table its MAC. Read with `ip -j`, cached, and
// refreshed in the background; a miss asks the kernel to resolve (one ping to
// the next hop) and the frame is dropped and counted. The tables come from a
// NeighborSource: the kernel's by default, a test's own otherwise. The AF_XDP
// backend reads the same tables for all its interfaces without blocking
// (readNextHops) and pushes them into its addon.

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

/** A route and a neighbour as `ip -j route` / `ip -j neigh` print them. */
export interface RouteRow { dst: string; gateway?: string; dev?: string }
export interface NeighborRow { dst: string; lladdr?: string; state?: string[]; dev?: string }

/** Routes of `ip -j route` rows, longest prefix first; kinds pias does not forward over (multicast, ...) left out. */
function toRoutes(rows: readonly (readonly [4 | 6, RouteRow])[]): Route[] {
  const routes: Route[] = [];
  for (const [fam, r] of rows) {
    const dst = r.dst === "default" ? (fam === 4 ? "0.0.0.0/0" : "::/0") : r.dst.includes("/") ? r.dst : `${r.dst}/${fam === 4 ? 32 : 128}`;
    try {
      routes.push({ prefix: parsePrefix(dst), via: r.gateway ?? null });
    } catch {
      // not a unicast prefix
    }
  }
  return routes.sort((a, b) => b.prefix.length - a.prefix.length);
}

/** Resolved neighbours of `ip -j neigh` rows: canonical address text -> MAC. */
function toMacs(rows: readonly NeighborRow[]): Map<string, Uint8Array> {
  const macs = new Map<string, Uint8Array>();
  for (const n of rows) {
    if (n.lladdr && !n.state?.includes("FAILED") && !n.state?.includes("INCOMPLETE")) macs.set(parseAddressText(n.dst), macBytes(n.lladdr));
  }
  return macs;
}

/** An interface's routes (longest prefix first) and resolved neighbours. */
export interface NextHops {
  routes: Route[];
  macs: Map<string, Uint8Array>;
}

/** The kernel's routes and neighbours of several interfaces, read without blocking the event loop (three `ip` runs). */
export async function readNextHops(ifaces: readonly string[]): Promise<NextHops[]> {
  const ip = (args: string[]): Promise<unknown[]> =>
    new Promise((resolve, reject) => {
      execFile("ip", ["-j", ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
        if (err) reject(new PiasError("EROUTE", `ip -j ${args.join(" ")}: ${stderr.trim() || err.message}`));
        else resolve(stdout.trim() ? (JSON.parse(stdout) as unknown[]) : []);
      });
    });
  const [r4, r6, neigh] = await Promise.all([ip(["-4", "route", "show"]), ip(["-6", "route", "show"]), ip(["neigh", "show"])]);
  return ifaces.map((iface) => ({
    routes: toRoutes([...(r4 as RouteRow[]).map((r) => [4, r] as const), ...(r6 as RouteRow[]).map((r) => [6, r] as const)].filter(([, r]) => r.dev === iface)),
    macs: toMacs((neigh as NeighborRow[]).filter((n) => n.dev === iface)),
  }));
}

/** An interface's routes and neighbours. */
export interface NeighborSource {
  /** The interface's own MAC ("aa:bb:cc:dd:ee:ff"). */
  mac(): string;
  routes(family: 4 | 6): RouteRow[];
  neighbors(): NeighborRow[];
  /** Have the kernel resolve `hop`'s MAC; call `done` when that attempt ended, either way. */
  resolve(hop: string, done: () => void): void;
}

/** The kernel's tables for `iface`: /sys/class/net, `ip -j`, and one ping to resolve. */
export function kernelNeighbors(iface: string): NeighborSource {
  return {
    mac() {
      try {
        return readFileSync(`/sys/class/net/${iface}/address`, "utf8").trim();
      } catch {
        throw new PiasError("EIFACE", `no interface ${iface}`);
      }
    },
    routes: (family) => ipJson([`-${family}`, "route", "show", "dev", iface]) as RouteRow[],
    neighbors: () => ipJson(["neigh", "show", "dev", iface]) as NeighborRow[],
    resolve(hop, done) {
      const p = spawn("ping", ["-c", "1", "-W", "1", "-I", iface, hop], { stdio: "ignore" });
      p.on("exit", done);
      p.on("error", done);
    },
  };
}

export class Neighbors {
  /** The interface's own MAC. */
  readonly mac: Uint8Array;
  private routes: Route[] = [];
  private macs = new Map<string, Uint8Array>();
  private refreshed = 0;
  private resolving = new Set<string>();

  constructor(
    iface: string,
    private readonly source: NeighborSource = kernelNeighbors(iface),
    private readonly now: () => number = Date.now,
  ) {
    this.mac = macBytes(source.mac());
    this.refresh();
  }

  /** Reload routes and neighbours (synchronous: at most every REFRESH_MS, or when asked). */
  refresh(): void {
    this.routes = toRoutes(([4, 6] as const).flatMap((fam) => this.source.routes(fam).map((r) => [fam, r] as const)));
    this.macs = toMacs(this.source.neighbors());
    this.refreshed = this.now();
  }

  /** The next hop toward `dst` (address bytes), or null when no route of this interface covers it. */
  nextHop(dst: Uint8Array): string | null {
    for (const r of this.routes) if (prefixContains(r.prefix, dst)) return r.via ?? formatAddress(dst);
    return null;
  }

  /** MAC of the next hop toward `dst`, or null (unknown yet: resolution started). */
  lookup(dst: Uint8Array): Uint8Array | null {
    if (this.now() - this.refreshed > REFRESH_MS) this.refresh();
    let hop = this.nextHop(dst);
    let mac = hop === null ? undefined : this.macs.get(hop);
    if (mac === undefined && this.now() - this.refreshed > MISS_REFRESH_MS) {
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
    this.source.resolve(hop, () => {
      this.resolving.delete(hop);
      this.refreshed = 0; // re-read the neighbour table on the next lookup
    });
  }
}

function parseAddressText(text: string): string {
  return formatAddress(parseAddress(text).bytes);
}
