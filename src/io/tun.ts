// A Linux TUN device queue (IFF_TUN | IFF_NO_PI, non-blocking; optionally
// with the virtio-net header and offloads, and one of several queues) for
// the daemon: moves batches of packets between the device and descriptor
// slots in the Wasm core's memory (readv per packet or io_uring batches),
// and calls back when the device is readable.
//
// The work happens in the native addon (native/tun.cc, built by node-gyp at
// install time into build/Release/pias_tun.node), loaded lazily on the first
// open so that importing this module never needs it. This wrapper adds no
// per-packet work: each call is one call into the addon.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PiasError } from "../errors.js";

/** TUN_F_* offload bits (TUNSETOFFLOAD). */
export const TunOffload = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, USO4: 0x20, USO6: 0x40, ALL: 0x67 } as const;

/** Steps a test can make the addon treat as refused by the kernel (EINVAL), to exercise the fall-backs. */
export const TunRefuse = { ...TunOffload, MULTI_QUEUE: 0x100, VNET_HDR: 0x4000, URING: 0x10000, STEERING: 0x20000 } as const;

/** Bytes of the virtio_net_hdr in front of every packet when features().vnetHdr. */
export const VNET_HDR_LEN = 10;

export interface TunOptions {
  /** Interface name, at most 15 bytes; "%d" lets the kernel number it. Default "pias%d". */
  name?: string;
  /** Ask for the virtio-net header (IFF_VNET_HDR) and `offload`. Default false. */
  vnetHdr?: boolean;
  /** TUN_F_* bits wanted with vnetHdr (default all: CSUM|TSO4|TSO6|USO4|USO6); the kernel may take fewer. */
  offload?: number;
  /** Open one queue of a multi-queue device (IFF_MULTI_QUEUE): each open of the same name adds a queue. */
  multiQueue?: boolean;
  /** "readv": readv/write per packet; "uring": one io_uring_enter per batch (falls back to readv when unavailable). Default "readv". */
  io?: "readv" | "uring";
  /** TunRefuse bits: fall-back paths for tests. */
  refuse?: number;
}

/** What a queue runs with after negotiation with the kernel. */
export interface TunFeatures {
  /** Reads and writes carry a VNET_HDR_LEN-byte virtio_net_hdr in front of the packet. */
  vnetHdr: boolean;
  /** TUN_F_* bits the kernel accepted (0 without the header). */
  offload: number;
  /** "CSUM|TSO4|TSO6|USO4|USO6", or "none". */
  offloadNames: string;
  multiQueue: boolean;
  io: "readv" | "uring";
  /** Whether the addon was built with liburing. */
  uringBuilt: boolean;
  /** One line per refusal (of the kernel, or of this build): for the log. */
  notes: string[];
}

export interface TunStats {
  /** Packets readBatch returned. */
  read: number;
  /** Packets the kernel took (writeBatch and write). */
  written: number;
  /** Packets longer than their slot's capacity: read, cut short by the kernel, and skipped. */
  truncated: number;
  /** Writes refused for lack of room (EAGAIN, ENOBUFS). */
  writeDropped: number;
  /** Writes refused as bad (EINVAL for a packet that is not IP, EIO, ...). */
  writeErrors: number;
  /** Reads that failed with something other than EAGAIN. */
  readErrors: number;
  /** System calls made to read (readv, or io_uring_enter) and to write. */
  readCalls: number;
  writeCalls: number;
  /** Times io_uring failed and the queue went back to readv (0 or 1). */
  uringFailures: number;
}

/** Opening or creating the TUN device failed. `sysCode` is the errno name ("EPERM", "ENOENT", ...). */
export class TunError extends PiasError {
  constructor(
    message: string,
    readonly sysCode: string | undefined,
  ) {
    super("ETUN", message);
  }
}

/** The addon's class; TunDevice is its typed face. */
interface NativeTun {
  readonly name: string;
  readBatch(mem: Uint8Array, desc: number, stride: number, max: number): number;
  writeBatch(mem: Uint8Array, desc: number, stride: number, count: number, verdict: number): number;
  write(packet: Uint8Array): boolean;
  onReadable(cb: () => void): void;
  pause(): void;
  close(): void;
  stats(): TunStats;
  features(): TunFeatures;
  attachSteering(objPath: string, cfg: object): string | null;
}

interface Addon {
  Tun: new (name?: string, options?: Omit<TunOptions, "name">) => NativeTun;
}

const ADDON = join("build", "Release", "pias_tun.node");
const STEER_OBJECT = "pias_steer.bpf.o";

/**
 * Path of the built addon: the first build/Release/pias_tun.node found walking
 * up from `from` (this module's directory: src/io under tsx, dist/src/io when
 * compiled). Throws a TunError saying how to build it when there is none.
 */
export function findAddon(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new TunError(
    `the TUN addon is not built: run npm rebuild / node-gyp rebuild; it needs g++ and make ` +
      `(no ${ADDON} in ${from} or above; both clear build/, so run npm run build afterwards for the Wasm core)`,
    undefined,
  );
}

let addon: Addon | undefined;

function load(): Addon {
  addon ??= createRequire(import.meta.url)(findAddon()) as Addon;
  return addon;
}

export class TunDevice {
  private constructor(private readonly native: NativeTun) {}

  /**
   * Opens /dev/net/tun and creates the interface, or adds a queue to it
   * (multiQueue). Non-persistent: it goes when its last queue is closed or the
   * process exits. The interface starts down. What the kernel refused is in
   * features().notes; a refusal is never an error.
   */
  static open(options: TunOptions = {}): TunDevice {
    const { Tun } = load();
    const { name, ...rest } = options;
    try {
      return new TunDevice(new Tun(name, rest));
    } catch (err) {
      // TypeError/RangeError for a bad name stay as they are; system errors
      // become TunErrors with the addon's message.
      if (err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError)) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new TunError(err.message, typeof code === "string" ? code : undefined);
      }
      throw err;
    }
  }

  /** The interface name the kernel gave. */
  get name(): string {
    return this.native.name;
  }

  /**
   * Reads up to `max` packets without blocking into the descriptor slots at
   * `desc + i * stride` of `mem` (OFF at +0, capacity in LEN at +4); sets LEN
   * and WIRELEN (+8) to each packet's length (its virtio_net_hdr included,
   * with vnetHdr). Stops at EAGAIN. With io_uring it may exchange the OFF and
   * capacity of two descriptors, so that the packets read are [0, n). Packets longer
   * than their slot are skipped and counted in stats().truncated. Returns the
   * number of packets read. Throws TypeError/RangeError, before reading
   * anything, when a slot or descriptor lies outside `mem`.
   */
  readBatch(mem: Uint8Array, desc: number, stride: number, max: number): number {
    return this.native.readBatch(mem, desc, stride, max);
  }

  /**
   * Writes the packets (OFF +0, LEN +4; with vnetHdr, each starts with its
   * virtio_net_hdr) of descriptors [0, count) whose VERDICT byte (+28)
   * equals `verdict`: one write(2) each, or one io_uring_enter per batch. Never blocks; a
   * refused packet is counted (writeDropped, writeErrors), not thrown.
   * Returns how many were written.
   */
  writeBatch(mem: Uint8Array, desc: number, stride: number, count: number, verdict: number): number {
    return this.native.writeBatch(mem, desc, stride, count, verdict);
  }

  /** Writes one IP packet the host made (with vnetHdr, behind a header that asks for nothing); true if the kernel took it. */
  write(packet: Uint8Array): boolean {
    if (!this.vnetHdr) return this.native.write(packet);
    const frame = new Uint8Array(VNET_HDR_LEN + packet.length);
    frame.set(packet, VNET_HDR_LEN);
    return this.native.write(frame);
  }

  /** Writes one frame as it is: with vnetHdr it starts with its virtio_net_hdr. True if the kernel took it. */
  writeFrame(frame: Uint8Array): boolean {
    return this.native.write(frame);
  }

  /** Reads and writes carry the virtio-net header (features().vnetHdr). */
  get vnetHdr(): boolean {
    this.vnet ??= this.native.features().vnetHdr;
    return this.vnet;
  }

  private vnet: boolean | undefined;

  /**
   * Calls `cb` on the main thread whenever the device is readable (level
   * triggered: it fires again while packets remain). `cb` should drain with
   * readBatch until it returns less than `max`. A second call replaces the
   * callback. While watching, the device keeps the process alive.
   */
  onReadable(cb: () => void): void {
    this.native.onReadable(cb);
  }

  /** Stops watching; the device stays open and no longer keeps the process alive. */
  pause(): void {
    this.native.pause();
  }

  /** Stops watching and closes the device; the interface disappears. Idempotent. */
  close(): void {
    this.native.close();
  }

  stats(): TunStats {
    return this.native.stats();
  }

  features(): TunFeatures {
    return this.native.features();
  }

  /**
   * Load the steering program (built at install next to the addon:
   * pias_steer.bpf.o) and attach it to this multi-queue device, so the
   * kernel picks each packet's queue by it. Null, or one line saying why it
   * could not (no clang/libbpf at install, the kernel refused, ...).
   */
  attachSteering(cfg: { proxy4: Uint8Array | null; proxy6: Uint8Array | null; portMin: number; portMax: number; slice: number; workers: number }): string | null {
    return this.native.attachSteering(join(dirname(findAddon()), STEER_OBJECT), cfg);
  }
}
