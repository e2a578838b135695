// AF_XDP sockets whose UMEM is a region of the Wasm core's linear memory: the
// typed face of the native addon (native/xdp.cc, built by node-gyp at
// install into build/Release/pias_xdp.node, with its XDP program
// build/Release/pias_xdp_kern.o). Where the install had no clang or libxdp
// the addon is a stub, and xdpUnavailable() says why.
//
// With several workers the main thread holds the program (XdpProgram) and
// each worker opens XdpSockets on its own queues, given the program's socket
// map, the hand-off rings (handoffRings) and the workers' eventfds.
//
// Loaded lazily on the first open, so importing this module never needs the
// addon. No per-packet work here: each call is one call into the addon.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PiasError } from "../errors.js";
import type { SteeringConfig } from "./tun-backend.js";

export type XdpMode = "auto" | "native" | "generic";

export interface XdpOpenOptions {
  /** The core's whole linear memory (a fresh view). */
  memory: Uint8Array;
  /** Where the UMEM starts in that memory (page-aligned), and its size. */
  umemOffset: number;
  umemBytes: number;
  /** 2048 or 4096 bytes per frame. */
  frameSize: number;
  /** Bytes the core may write in front of a packet (Layout.HEADROOM); frames with less are dropped and counted. */
  headroom: number;
  /** Entries of each fill, completion, RX and TX ring (a power of two). */
  ringSize: number;
  interfaces: { name: string; mac: Uint8Array }[];
  mode: XdpMode;
  /** Prefixes the XDP program redirects, packed by packServed() (not with `worker`: the pool's program has them). */
  served?: Uint8Array;
  /** One worker of several: bind only the queues q with q % count == index, into the pool's program. */
  worker?: XdpWorkerHandles;
}

/** What a worker's sockets need from the pool (XdpProgram.handles() and handoffRings()). */
export interface XdpWorkerHandles {
  index: number;
  count: number;
  /** The program's socket map (a file descriptor of this process). */
  xsks: number;
  /** The hand-off rings, over a SharedArrayBuffer every worker has. */
  handoff: Uint8Array;
  /** Slots per ring. */
  slots: number;
  /** One eventfd per worker: written when frames were handed to it. */
  wake: number[];
}

/** The workers' NAT port slices, as the TUN steering program takes them too (native/steer_config.h). */
export type XdpSteer = SteeringConfig;

export interface XdpInterfaceInfo {
  name: string;
  ifindex: number;
  queues: number;
  /** How the program is attached: "native" (driver) or "generic" (skb). */
  mode: "native" | "generic";
  /** Every socket of the interface is in zero-copy mode (the NIC writes into the UMEM). */
  zerocopy: boolean;
  /** Id of the bpf_link that attaches the program (bpftool link show). */
  linkId: number;
}

export interface XdpInfo {
  interfaces: XdpInterfaceInfo[];
  /** One per RX queue of each interface: frames it received, frames lent to the kernel through its fill ring (not back yet). */
  sockets: { interface: string; queue: number; zerocopy: boolean; received: number; lent: number }[];
  programId: number;
  /** Address of the UMEM's first byte in this process. */
  umemAddress: number;
  umemOffset: number;
  umemBytes: number;
  frameSize: number;
  frames: number;
  open: boolean;
  /** This socket set's worker and the pool's size (0 and 1 without workers). */
  worker: number;
  workers: number;
}

/** Where every UMEM frame is; the parts add up to `total`. */
export interface XdpFrames {
  total: number;
  /** In the addon's free stack. */
  free: number;
  /** Lent to the kernel through a fill ring and not in an RX ring yet (in the ring, or taken by the kernel). */
  fill: number;
  /** In an RX ring, not read yet. */
  rx: number;
  /** In the current batch (between rx and tx). */
  core: number;
  /** ToHost frames kept until the next batch, for the host to read. */
  held: number;
  /** Given to a TX ring, not completed yet. */
  tx: number;
  /** In a completion ring, not reaped yet. */
  completion: number;
  /** Frames the kernel handed back in a state they could not be in (never used). */
  errors: number;
}

interface NativeXdp {
  rx(mem: Uint8Array, desc: number, stride: number, max: number): number;
  tx(mem: Uint8Array, desc: number, stride: number, n: number): number;
  sendFrame(mem: Uint8Array, frame: Uint8Array): boolean;
  setRoutes(routes: Uint8Array, neighbors: Uint8Array): void;
  setServed(served: Uint8Array): void;
  takeMisses(): Uint8Array;
  onReadable(cb: () => void): void;
  pause(): void;
  close(): void;
  stats(): Record<string, number>;
  frames(): XdpFrames;
  info(): XdpInfo;
  setRefill(on: boolean): void;
}

interface NativeProgram {
  attach(mode: XdpMode): void;
  setServed(served: Uint8Array): void;
  handles(): { xsks: number; wake: number[] };
  stats(): Record<string, number>;
  info(): { programId: number; interfaces: { name: string; ifindex: number; queues: number; mode: string; linkId: number }[] };
  close(): void;
}

interface Addon {
  available: boolean;
  reason: string;
  Xdp?: { new (o: XdpOpenOptions): NativeXdp; memoryAddress(view: Uint8Array): number };
  XdpProgram?: new (o: { program: string; interfaces: readonly string[]; served: Uint8Array; steer: Uint8Array; workers: number }) => NativeProgram;
}

/** Opening AF_XDP failed. `sysCode`: "EPERM", "EXDPBUSY", "EXDPUMEM", ... */
export class XdpError extends PiasError {
  constructor(
    message: string,
    readonly sysCode?: string,
  ) {
    super("EXDP", message);
  }
}

const BUILD = join("build", "Release");

/** build/Release walking up from this module (src/io under tsx, dist/src/io compiled), or null. */
function buildDir(from = dirname(fileURLToPath(import.meta.url))): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, BUILD, "pias_xdp.node"))) return join(dir, BUILD);
    if (dirname(dir) === dir) return null;
  }
}

let addon: Addon | undefined;
let programPath = "";

function load(): Addon {
  if (addon) return addon;
  const dir = buildDir();
  if (!dir) {
    addon = { available: false, reason: "the AF_XDP addon is not built (no build/Release/pias_xdp.node): npm rebuild, then npm run build" };
  } else {
    addon = createRequire(import.meta.url)(join(dir, "pias_xdp.node")) as Addon;
    programPath = join(dir, "pias_xdp_kern.o");
    if (addon.available && !existsSync(programPath)) addon = { available: false, reason: `the XDP program ${programPath} is missing: npm rebuild` };
  }
  return addon;
}

/** Why AF_XDP cannot be used in this build, or undefined when it can. */
export function xdpUnavailable(): string | undefined {
  const a = load();
  return a.available ? undefined : a.reason;
}

/** Address of a view's first byte in this process (to show the UMEM does not move). */
export function memoryAddress(view: Uint8Array): number {
  const a = load();
  if (!a.Xdp) throw new XdpError(`AF_XDP is unavailable: ${a.reason}`);
  return a.Xdp.memoryAddress(view);
}

/** One prefix ("203.0.113.0/24", "2001:db8::1/128") as the XDP program's map takes it: length, family, address[16]. */
export function packServed(prefixes: readonly { family: 4 | 6; length: number; bytes: Uint8Array }[]): Uint8Array {
  const out = new Uint8Array(prefixes.length * 18);
  prefixes.forEach((p, i) => {
    out[i * 18] = p.length;
    out[i * 18 + 1] = p.family;
    out.set(p.bytes, i * 18 + 2);
  });
  return out;
}

/** The program's steer map entry: proxy4, proxy6[4] (network order), has4, has6, portMin, portMax, slice, workers (u32 each). */
export function packSteer(s: XdpSteer): Uint8Array {
  const out = new Uint8Array(44);
  const v = new DataView(out.buffer);
  if (s.proxy4) out.set(s.proxy4, 0);
  if (s.proxy6) out.set(s.proxy6, 4);
  [s.proxy4 ? 1 : 0, s.proxy6 ? 1 : 0, s.portMin, s.portMax, s.slice, s.workers].forEach((x, i) => v.setUint32(20 + 4 * i, x, true));
  return out;
}

/** Bytes of a ring's head and of a slot (native/xdp.cc kHandHead, kHandSlot). */
const HAND_HEAD = 128;
const HAND_SLOT = 2048;

/**
 * The hand-off rings of `workers` workers, one per ordered pair, in one
 * SharedArrayBuffer: `slots` each (a power of two), by default about 1024
 * slots (2 MiB) into each worker in all, at least 16 from each other worker.
 */
export function handoffRings(workers: number, slots = 512): { handoff: Uint8Array; slots: number } {
  while (slots > 16 && slots * (workers - 1) > 1024) slots >>= 1;
  // 64 bytes more: the addon starts the rings at a cache line
  return { handoff: new Uint8Array(new SharedArrayBuffer(64 + workers * workers * (HAND_HEAD + slots * HAND_SLOT))), slots };
}

/** The XDP program of a pool of workers: loaded by the main thread, attached once every worker's sockets are in its map. */
export class XdpProgram {
  private constructor(private readonly native: NativeProgram) {}

  static open(o: { interfaces: readonly string[]; served: Uint8Array; steer: XdpSteer }): XdpProgram {
    const a = load();
    if (!a.available || !a.XdpProgram) throw new XdpError(`the AF_XDP backend is unavailable: ${a.reason}`);
    try {
      return new XdpProgram(new a.XdpProgram({ program: programPath, interfaces: o.interfaces, served: o.served, steer: packSteer(o.steer), workers: o.steer.workers }));
    } catch (err) {
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new XdpError((err as Error).message, typeof code === "string" ? code : undefined);
    }
  }

  /** Attach to every interface. Throws an XdpError saying why not. */
  attach(mode: XdpMode): void {
    try {
      this.native.attach(mode);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new XdpError((err as Error).message, typeof code === "string" ? code : undefined);
    }
  }

  setServed(served: Uint8Array): void {
    this.native.setServed(served);
  }

  /** The socket map's fd and the workers' eventfds. */
  handles(): { xsks: number; wake: number[] } {
    return this.native.handles();
  }

  /** The program's counters (programRedirected, programForeign, ...). */
  stats(): Record<string, number> {
    return this.native.stats();
  }

  info(): ReturnType<NativeProgram["info"]> {
    return this.native.info();
  }

  /** Detach, unload, close the eventfds: after the workers are gone. */
  close(): void {
    this.native.close();
  }
}

/** The addon's socket set: one AF_XDP socket per RX queue of each interface, sharing one UMEM in the core's memory. */
export class XdpSockets {
  private constructor(private readonly native: NativeXdp) {}

  /** Load and attach the XDP program, register the UMEM, bind the sockets. Throws an XdpError saying why not. */
  static open(o: XdpOpenOptions): XdpSockets {
    const a = load();
    if (!a.available || !a.Xdp) throw new XdpError(`the AF_XDP backend is unavailable: ${a.reason}`);
    try {
      return new XdpSockets(new a.Xdp({ ...o, program: programPath } as XdpOpenOptions));
    } catch (err) {
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new XdpError((err as Error).message, typeof code === "string" ? code : undefined);
    }
  }

  /** Receive up to `max` frames into descriptors [0, n) at `desc` (OFF into the UMEM, LEN, WIRELEN, IFACE); returns n. */
  rx(mem: Uint8Array, desc: number, stride: number, max: number): number {
    return this.native.rx(mem, desc, stride, max);
  }

  /** Send the forwarded frames of descriptors [0, n) (n from the last rx), recycle the dropped ones, hold the ToHost ones. */
  tx(mem: Uint8Array, desc: number, stride: number, n: number): number {
    return this.native.tx(mem, desc, stride, n);
  }

  /** Send one Ethernet frame the host built (copied into a free frame of `mem`, the core's memory); false if it could not go (counted). */
  sendFrame(mem: Uint8Array, frame: Uint8Array): boolean {
    return this.native.sendFrame(mem, frame);
  }

  /** The next-hop table: routes (36-byte entries) and neighbours (24-byte entries), see src/io/xdp-backend.ts. */
  setRoutes(routes: Uint8Array, neighbors: Uint8Array): void {
    this.native.setRoutes(routes, neighbors);
  }

  /** Replace the prefixes the XDP program redirects (packServed); the one-worker set only (a pool's program is an XdpProgram). */
  setServed(served: Uint8Array): void {
    this.native.setServed(served);
  }

  /** Next hops that had no MAC since the last call: (interface slot, family, address[16]) each. */
  takeMisses(): Uint8Array {
    return this.native.takeMisses();
  }

  /** Call `cb` whenever an RX ring has frames. Keeps the process alive while watching. */
  onReadable(cb: () => void): void {
    this.native.onReadable(cb);
  }

  pause(): void {
    this.native.pause();
  }

  /** Detach the program, close the sockets, unregister the UMEM. Idempotent. */
  close(): void {
    this.native.close();
  }

  stats(): Record<string, number> {
    return this.native.stats();
  }

  frames(): XdpFrames {
    return this.native.frames();
  }

  info(): XdpInfo {
    return this.native.info();
  }

  /** Tests: stop (false) or resume lending frames to the fill rings. */
  setRefill(on: boolean): void {
    this.native.setRefill(on);
  }
}
