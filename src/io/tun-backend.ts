// The TUN backend: a TUN device the kernel routes the anycast prefixes and the
// proxy's own (NAT) addresses into; pias reads client and target packets
// from it and writes what it forwards back, for the kernel to route on.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Verdict } from "../../assembly/shared/abi.js";
import { Layout } from "../core/dataplane.js";
import type { PacketRing } from "../core/ring.js";
import { PiasError } from "../errors.js";
import type { PacketIO } from "./backend.js";
import { TunDevice } from "./tun.js";

/** MTU of the TUN device: the kernel hands it any IP packet it routes there, up to 64 KiB. */
export const TUN_MTU = 65535;

export interface TunBackendOptions {
  /** Interface name ("pias%d": the kernel numbers it). */
  name: string;
  /** Set the device up and route these prefixes into it (and turn on IP forwarding); empty: leave routing to the operator. */
  routes: readonly string[];
}

/** Run `ip ARGS`; throws a PiasError with ip's own message on failure. */
export function ip(args: readonly string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.error) throw new PiasError("EROUTE", `cannot run ip (${r.error.message}): install iproute2`);
  if (r.status !== 0) throw new PiasError("EROUTE", `ip ${args.join(" ")}: ${r.stderr.trim() || `exit status ${r.status}`}`);
}

/** The part of a TunDevice the backend uses. */
export type TunPort = Pick<TunDevice, "name" | "readBatch" | "writeBatch" | "write" | "onReadable" | "close" | "stats">;

export class TunBackend implements PacketIO {
  readonly linkType = 101;
  readonly capacity = TUN_MTU;
  readonly description: string;

  private constructor(private readonly tun: TunPort) {
    this.description = `tun ${tun.name}`;
  }

  /** A backend on a device opened elsewhere (its routes are the opener's). */
  static over(tun: TunPort): TunBackend {
    return new TunBackend(tun);
  }

  static open(options: TunBackendOptions): TunBackend {
    const tun = TunDevice.open({ name: options.name });
    try {
      if (options.routes.length) {
        ip(["link", "set", "dev", tun.name, "mtu", String(TUN_MTU), "up"]);
        for (const prefix of options.routes) ip([prefix.includes(":") ? "-6" : "-4", "route", "replace", prefix, "dev", tun.name]);
        enableForwarding(options.routes.some((p) => p.includes(":")));
      }
    } catch (err) {
      tun.close();
      throw err;
    }
    return new TunBackend(tun);
  }

  read(ring: PacketRing, max: number): number {
    return this.tun.readBatch(ring.memory(), ring.desc, Layout.DESC_SIZE, max);
  }

  send(ring: PacketRing, n: number): void {
    this.tun.writeBatch(ring.memory(), ring.desc, Layout.DESC_SIZE, n, Verdict.Forward);
  }

  sendOne(packet: Uint8Array): boolean {
    return this.tun.write(packet);
  }

  onReadable(cb: () => void): void {
    this.tun.onReadable(cb);
  }

  close(): void {
    this.tun.close(); // the device goes, and its routes with it
  }

  stats(): Record<string, number> {
    return { ...this.tun.stats() };
  }
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
