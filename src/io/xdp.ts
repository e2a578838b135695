// AF_XDP sockets whose UMEM is a region of the Wasm core's linear memory: the
// typed face of the native addon (native/xdp.cc, built by node-gyp at
// install into build/Release/pias_xdp.node, with its XDP program
// build/Release/pias_xdp_kern.o). Where the install had no clang or libxdp
// the addon is a stub, and xdpUnavailable() says why.
//
// Loaded lazily on the first open, so importing this module never needs the
// addon. No per-packet work here: each call is one call into the addon.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PiasError } from "../errors.js";

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
  /** Prefixes the XDP program redirects, packed by packServed(). */
  served: Uint8Array;
}

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

interface Addon {
  available: boolean;
  reason: string;
  Xdp?: { new (o: XdpOpenOptions): NativeXdp; memoryAddress(view: Uint8Array): number };
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

  /** Replace the prefixes the XDP program redirects (packServed). */
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
