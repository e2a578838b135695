// A Linux TUN device (IFF_TUN | IFF_NO_PI, non-blocking) for the daemon: moves
// batches of packets between the device and descriptor slots in the Wasm
// core's memory, and calls back when the device is readable.
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

export interface TunOptions {
  /** Interface name, at most 15 bytes; "%d" lets the kernel number it. Default "pias%d". */
  name?: string;
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
}

interface Addon {
  Tun: new (name?: string) => NativeTun;
}

const ADDON = join("build", "Release", "pias_tun.node");

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
   * Opens /dev/net/tun and creates the interface (non-persistent: it goes when
   * the device is closed or the process exits). The interface starts down.
   */
  static open(options: TunOptions = {}): TunDevice {
    const { Tun } = load();
    try {
      return new TunDevice(new Tun(options.name));
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
   * and WIRELEN (+8) to each packet's length. Stops at EAGAIN. Packets longer
   * than their slot are skipped and counted in stats().truncated. Returns the
   * number of packets read. Throws TypeError/RangeError, before reading
   * anything, when a slot or descriptor lies outside `mem`.
   */
  readBatch(mem: Uint8Array, desc: number, stride: number, max: number): number {
    return this.native.readBatch(mem, desc, stride, max);
  }

  /**
   * Writes, one write(2) each, the packets (OFF +0, LEN +4) of descriptors
   * [0, count) whose VERDICT byte (+28) equals `verdict`. Never blocks; a
   * refused packet is counted (writeDropped, writeErrors), not thrown.
   * Returns how many were written.
   */
  writeBatch(mem: Uint8Array, desc: number, stride: number, count: number, verdict: number): number {
    return this.native.writeBatch(mem, desc, stride, count, verdict);
  }

  /** Writes one host-generated packet; true if the kernel took it. */
  write(packet: Uint8Array): boolean {
    return this.native.write(packet);
  }

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
}
