// The AF_XDP backend: frames arrive and leave in the Wasm core's own linear
// memory. Opening it reserves, in this order, the descriptor ring and then
// the UMEM (the last thing allocated in the core's memory, so nothing the
// daemon sets up afterwards grows the memory under it), registers the UMEM
// and binds one AF_XDP socket per RX queue of each interface (src/io/xdp.ts
// over native/xdp.cc) -- or, as one worker of several (src/daemon/workers.ts),
// one per queue of its own, into the program the main thread holds. The XDP
// program redirects only what pias serves; the kernel keeps everything else
// (ARP, ND, SSH, the host's own traffic).
//
// A frame forwarded by the core leaves on the interface the kernel's route
// for its destination names, with that interface's MAC as source and the
// next hop's (the kernel's neighbour table) as destination: the tables are
// pushed to the addon every few seconds and when it reports a next hop it
// has no MAC for (one ping asks the kernel to resolve it; the frame is
// dropped and counted, as with pcap).
//
// No per-packet work here: read() and send() are one addon call each.

import { readdirSync } from "node:fs";
import { Layout } from "../../assembly/shared/abi.js";
import type { DataPlane } from "../core/dataplane.js";
import type { PacketRing } from "../core/ring.js";
import { formatAddress, parseAddress, parsePrefix } from "../net/addr.js";
import { PiasError } from "../errors.js";
import type { PacketIO } from "./backend.js";
import { kernelNeighbors, macBytes, readNextHops, type NextHops } from "./neighbors.js";
import { packServed, xdpUnavailable, XdpError, XdpSockets, type XdpMode, type XdpWorkerHandles } from "./xdp.js";

const LINKTYPE_ETHERNET = 1;
/** Bytes per UMEM frame; the kernel puts a packet 256 bytes in, leaving 1792 for it (an MTU of 1500 needs 1514). */
export const XDP_FRAME_SIZE = 2048;
/** Entries of every fill, completion, RX and TX ring. */
const RING_SIZE = 2048;
/** The kernel's route and neighbour tables are re-read this often, and on a miss at most every MISS_MS. */
const REFRESH_MS = 5000;
const MISS_MS = 200;

export interface XdpBackendOptions {
  /** Interfaces to serve, each with an AF_XDP socket per RX queue. */
  interfaces: readonly string[];
  mode: XdpMode;
  /** Prefixes the XDP program redirects to pias ("203.0.113.0/24", "10.255.0.1/32"); everything else goes to the kernel. */
  served: readonly string[];
  /** As one worker of several: its index, the pool's program and hand-off rings (then `served` is the program's business). */
  worker?: XdpWorkerHandles;
  /** The data plane whose memory holds the UMEM. */
  dp: DataPlane;
  /** Packets per batch (descriptors of the ring). */
  batch: number;
  /** Called once if AF_XDP had to stop (the core's memory moved); default: throw from read(). */
  onFatal?: (err: PiasError) => void;
}

/** The served prefixes as the XDP program's map takes them. */
export function packPrefixes(served: readonly string[]): Uint8Array {
  return packServed(served.map((p) => parsePrefix(p.includes("/") ? p : `${p}/${p.includes(":") ? 128 : 32}`)));
}

/** RX queues of an interface (its /sys/class/net/NAME/queues/rx-N entries). */
export function rxQueues(iface: string): number {
  try {
    return Math.max(1, readdirSync(`/sys/class/net/${iface}/queues`).filter((q) => q.startsWith("rx-")).length);
  } catch {
    throw new PiasError("EIFACE", `no interface ${iface}`);
  }
}

/** Next hops of the served interfaces (slot i: ifaces[i]), packed as the addon takes them (native/xdp.cc setRoutes). */
export function packNextHops(tables: readonly NextHops[]): { routes: Uint8Array; neighbors: Uint8Array } {
  const routes = new Uint8Array(36 * tables.reduce((n, t) => n + t.routes.length, 0));
  const neighbors = new Uint8Array(24 * tables.reduce((n, t) => n + t.macs.size, 0));
  let r = 0;
  let m = 0;
  tables.forEach((t, slot) => {
    for (const route of t.routes) {
      routes.set([route.prefix.family, route.prefix.length, slot, route.via ? 1 : 0], r);
      routes.set(route.prefix.bytes, r + 4);
      if (route.via) routes.set(parseAddress(route.via).bytes, r + 20);
      r += 36;
    }
    for (const [addr, mac] of t.macs) {
      const a = parseAddress(addr);
      neighbors.set([slot, a.family], m);
      neighbors.set(a.bytes, m + 2);
      neighbors.set(mac, m + 18);
      m += 24;
    }
  });
  return { routes, neighbors };
}

export class XdpBackend implements PacketIO {
  readonly linkType = LINKTYPE_ETHERNET;
  /** Largest frame a UMEM frame holds after the kernel's 256 bytes of headroom. */
  readonly capacity = XDP_FRAME_SIZE - 256;
  readonly description: string;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly resolving = new Set<string>();
  private refreshed = 0;
  private refreshing: Promise<void> | null = null;
  private failed: PiasError | null = null;

  private constructor(
    /** The descriptors the daemon's pump fills: reserved before the UMEM. */
    readonly ring: PacketRing,
    readonly sockets: XdpSockets,
    private readonly o: XdpBackendOptions,
  ) {
    const info = sockets.info();
    this.description = `xdp ${info.interfaces.map((i) => `${i.name} (${i.mode}${i.zerocopy ? ", zero-copy" : ", copy"}, ${i.queues} queue${i.queues > 1 ? "s" : ""})`).join(", ")}`;
    const every = setInterval(() => void this.refresh(), REFRESH_MS);
    const misses = setInterval(() => this.resolveMisses(), MISS_MS);
    every.unref();
    misses.unref();
    this.timers.push(every, misses);
  }

  /** Open the backend; resolves once the next-hop table is loaded. */
  static async open(o: XdpBackendOptions): Promise<XdpBackend> {
    const why = xdpUnavailable();
    if (why) throw new XdpError(`the AF_XDP backend is unavailable: ${why}`);
    const macs = o.interfaces.map((name) => ({ name, mac: macBytes(kernelNeighbors(name).mac()) }));
    // a worker binds the queues q with q % count == index
    const w = o.worker ?? { index: 0, count: 1 };
    const sockets = o.interfaces.reduce((n, i) => n + Math.ceil((rxQueues(i) - w.index) / w.count), 0);
    // Reserve first: the ring, then the UMEM (every fill ring full, and as
    // many frames again for TX), the last allocation in the core's memory.
    const ring = o.dp.createRing(o.batch, 64); // descriptors only: OFF points into the UMEM
    const frames = (sockets + 2) * RING_SIZE;
    const umemBytes = frames * XDP_FRAME_SIZE;
    let umemOffset: number;
    try {
      umemOffset = o.dp.allocBuffer(umemBytes);
    } catch {
      throw new PiasError("EXDP", `the core's memory cannot grow by ${umemBytes >> 20} MiB for the UMEM (${frames} frames of ${XDP_FRAME_SIZE} bytes)`);
    }
    const xsk = XdpSockets.open({
      memory: o.dp.memory(), umemOffset, umemBytes, frameSize: XDP_FRAME_SIZE, headroom: Layout.HEADROOM, ringSize: RING_SIZE,
      interfaces: macs, mode: o.mode, ...(o.worker ? { worker: o.worker } : { served: packPrefixes(o.served) }),
    });
    const backend = new XdpBackend(ring, xsk, o);
    await backend.refresh();
    return backend;
  }

  /** Re-read the kernel's routes and neighbours (without blocking) and push them to the addon. */
  private refresh(): Promise<void> {
    this.refreshing ??= readNextHops(this.o.interfaces).then(
      (tables) => {
        const t = packNextHops(tables);
        if (!this.failed) this.sockets.setRoutes(t.routes, t.neighbors);
      },
      () => {}, // ip failed: keep the last table, try again later
    ).finally(() => {
      this.refreshing = null;
      this.refreshed = Date.now();
    });
    return this.refreshing;
  }

  /** Next hops the addon found no MAC for: ask the kernel to resolve them, then re-read the tables. */
  private resolveMisses(): void {
    const m = this.sockets.takeMisses();
    if (m.length === 0) return;
    if (Date.now() - this.refreshed > MISS_MS) void this.refresh();
    for (let at = 0; at < m.length; at += 18) {
      const iface = this.o.interfaces[m[at]];
      const hop = formatAddress(m.subarray(at + 2, at + 2 + (m[at + 1] === 4 ? 4 : 16)));
      const key = `${iface} ${hop}`;
      if (this.resolving.has(key)) continue;
      this.resolving.add(key);
      kernelNeighbors(iface).resolve(hop, () => {
        this.resolving.delete(key);
        void this.refresh();
      });
    }
  }

  read(ring: PacketRing, max: number): number {
    if (this.failed) return 0;
    try {
      return this.sockets.rx(ring.memory(), ring.desc, Layout.DESC_SIZE, max);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EXDPMOVED") throw err;
      this.failed = new PiasError("EXDPMOVED", (err as Error).message);
      if (!this.o.onFatal) throw this.failed;
      this.o.onFatal(this.failed);
      return 0;
    }
  }

  send(ring: PacketRing, n: number): void {
    if (!this.failed) this.sockets.tx(ring.memory(), ring.desc, Layout.DESC_SIZE, n);
  }

  /** A control reply the host built (Ethernet): copied into a free frame, MACs set by the route. */
  sendOne(frame: Uint8Array): boolean {
    return !this.failed && this.sockets.sendFrame(this.o.dp.memory(), frame);
  }

  onReadable(cb: () => void): void {
    this.sockets.onReadable(cb);
  }

  /** Redirect these prefixes from now on (a reload changed what pias serves). */
  serve(prefixes: readonly string[]): void {
    this.sockets.setServed(packPrefixes(prefixes));
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.sockets.close(); // the program is detached first, then sockets and UMEM
  }

  stats(): Record<string, number> {
    return this.sockets.stats();
  }

  /** UMEM frames by state; they add up to the UMEM's frames. */
  levels(): Record<string, number> {
    const { total: _, errors: __, ...states } = this.sockets.frames();
    return states;
  }
}
