// The TUN backend: a TUN device the kernel routes the anycast prefixes and the
// proxy's own (NAT) addresses into; pias reads client and target packets
// from it and writes what it forwards back, for the kernel to route on.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Link, Verdict } from "../../assembly/shared/abi.js";
import { Layout } from "../core/dataplane.js";
import type { PacketRing } from "../core/ring.js";
import { PiasError } from "../errors.js";
import type { PacketIO } from "./backend.js";
import { TunDevice, TunOffload, VNET_HDR_LEN, type TunFeatures } from "./tun.js";

/** MTU of the TUN device: the kernel hands it any IP packet it routes there, up to 64 KiB. */
export const TUN_MTU = 65535;

/**
 * Packets the kernel queues for pias before it drops (the device's
 * txqueuelen; Linux's default is 500): room for the event loop's scheduling
 * delays on a busy machine. Measured with a 64-byte UDP flood at load 8 on
 * 2 cores: 500 -> 180k packets read in 4 s, 4096 -> 287k.
 */
const TUN_QUEUE = 4096;

export interface TunBackendOptions {
  /** Interface name ("pias%d": the kernel numbers it). */
  name: string;
  /** Set the device up and route these prefixes into it (and turn on IP forwarding); empty: leave routing to the operator. */
  routes: readonly string[];
  /** System calls: readv/write per packet, or io_uring batches; "auto": io_uring where available (measured faster, README). */
  io?: "auto" | "readv" | "uring";
  /** Ask for the virtio-net header and offloads (checksum, TSO, USO): super-packets in and out, Link.VNET. */
  offload?: boolean;
  /** Open one queue of a multi-queue device (a worker's); the first creates it. */
  multiQueue?: boolean;
  /** TunRefuse bits: act as if the kernel refused these (tests of the fall-backs; PIAS_TUN_REFUSE). */
  refuse?: number;
}

/** What the steering program needs (native/steer.bpf.c): the proxy's addresses, the shared NAT range, the workers' slices. */
export interface SteeringConfig {
  proxy4: Uint8Array | null;
  proxy6: Uint8Array | null;
  portMin: number;
  portMax: number;
  slice: number;
  workers: number;
}

/** Run `ip ARGS`; throws a PiasError with ip's own message on failure. */
export function ip(args: readonly string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.error) throw new PiasError("EROUTE", `cannot run ip (${r.error.message}): install iproute2`);
  if (r.status !== 0) throw new PiasError("EROUTE", `ip ${args.join(" ")}: ${r.stderr.trim() || `exit status ${r.status}`}`);
}

/** The part of a TunDevice the backend uses (a device without features() is a plain one). */
export type TunPort = Pick<TunDevice, "name" | "readBatch" | "writeBatch" | "write" | "onReadable" | "close" | "stats">
  & Partial<Pick<TunDevice, "features" | "writeFrame" | "attachSteering">>;

/** What a device that says nothing of its features runs with. */
const PLAIN: TunFeatures = { vnetHdr: false, offload: 0, offloadNames: "none", multiQueue: false, io: "readv", uringBuilt: false, notes: [] };

export class TunBackend implements PacketIO {
  /** LINKTYPE_RAW, or Link.VNET when the kernel took the virtio-net header. */
  readonly linkType: number;
  /** A packet of up to 64 KiB, behind its virtio_net_hdr. */
  readonly capacity: number;
  readonly description: string;
  readonly features: TunFeatures;
  readonly notes: readonly string[];

  /** The prefixes routed into the device, or null when the operator routes (opened without routes). */
  private routes: readonly string[] | null = null;

  private constructor(private readonly tun: TunPort) {
    this.features = tun.features?.() ?? PLAIN;
    this.notes = this.features.notes;
    this.linkType = this.features.vnetHdr ? Link.VNET : 101;
    this.capacity = TUN_MTU + (this.features.vnetHdr ? VNET_HDR_LEN : 0);
    const offload = this.features.vnetHdr ? `offload ${this.features.offloadNames}` : "no offload";
    this.description = tun.features ? `tun ${tun.name} (${this.features.io}, ${offload})` : `tun ${tun.name}`;
  }

  /** A backend on a device opened elsewhere (its routes are the opener's). */
  static over(tun: TunPort): TunBackend {
    return new TunBackend(tun);
  }

  static open(options: TunBackendOptions): TunBackend {
    const io = options.io === "readv" ? "readv" : "uring";
    const tun = TunDevice.open({
      name: options.name, io, vnetHdr: options.offload ?? false, offload: TunOffload.ALL,
      multiQueue: options.multiQueue ?? false, refuse: options.refuse ?? 0,
    });
    try {
      routeIntoTun(tun.name, options.routes);
    } catch (err) {
      tun.close();
      throw err;
    }
    const backend = new TunBackend(tun);
    if (options.routes.length) backend.routes = options.routes;
    return backend;
  }

  /** The interface name the kernel gave. */
  get name(): string {
    return this.tun.name;
  }

  /** Attach the steering program to this queue's (multi-queue) device: null, or why it could not. */
  attachSteering(cfg: SteeringConfig): string | null {
    return this.tun.attachSteering ? this.tun.attachSteering(cfg) : "this device cannot be steered";
  }

  read(ring: PacketRing, max: number): number {
    return this.tun.readBatch(ring.memory(), ring.desc, Layout.DESC_SIZE, max);
  }

  send(ring: PacketRing, n: number): void {
    this.tun.writeBatch(ring.memory(), ring.desc, Layout.DESC_SIZE, n, Verdict.Forward);
  }

  sendOne(frame: Uint8Array): boolean {
    return this.tun.writeFrame ? this.tun.writeFrame(frame) : this.tun.write(frame);
  }

  onReadable(cb: () => void): void {
    this.tun.onReadable(cb);
  }

  /** Route `prefixes` into the device instead of the current ones (nothing when the operator routes). */
  serve(prefixes: readonly string[]): void {
    if (this.routes === null) return;
    rerouteTun(this.tun.name, this.routes, prefixes);
    this.routes = prefixes;
  }

  close(): void {
    this.tun.close(); // the device goes, and its routes with it
  }

  stats(): Record<string, number> {
    return { ...this.tun.stats() };
  }
}

/** Set the device up and route `routes` into it (and turn on IP forwarding); nothing for no routes. */
export function routeIntoTun(name: string, routes: readonly string[]): void {
  if (!routes.length) return;
  ip(["link", "set", "dev", name, "mtu", String(TUN_MTU), "txqueuelen", String(TUN_QUEUE), "up"]);
  for (const prefix of routes) ip([prefix.includes(":") ? "-6" : "-4", "route", "replace", prefix, "dev", name]);
  enableForwarding(routes.some((p) => p.includes(":")));
}

/** Route `next` into the device where `current` was: the routes no longer served go, the new ones come. */
export function rerouteTun(name: string, current: readonly string[], next: readonly string[]): void {
  routeIntoTun(name, next.filter((p) => !current.includes(p)));
  for (const prefix of current) if (!next.includes(prefix)) ip([prefix.includes(":") ? "-6" : "-4", "route", "del", prefix, "dev", name]);
}

/** Packets pias writes into the TUN device are routed on by the kernel: it must forward. */
function enableForwarding(ipv6: boolean): void {
  try {
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    if (ipv6) writeFileSync("/proc/sys/net/ipv6/conf/all/forwarding", "1");
  } catch (err) {
    throw new PiasError("EROUTE", `cannot turn on IP forwarding: ${(err as Error).message}`);
  }
}
