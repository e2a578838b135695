// The reference model's proxy-wide settings (assembly/settings.ts): the
// proxy's own addresses, the NAT port range, checksum policy, tunnel MTU and
// idle timeouts. Fixed at construction; the packet path only reads them.

import type { DataPlaneSettings } from "../core/dataplane.js";
import { DEFAULT_HALF_OPEN_PER_SOURCE, DEFAULT_NAT_PORTS, DEFAULT_TIMEOUTS, type Timeouts } from "../config/types.js";
import { parseAddress } from "../net/addr.js";
import { ModelError } from "./errors.js";
import { sameAddr } from "./parse.js";

/** The bytes of an address, of the expected family when one is given. */
export function addressBytes(address: string, expect?: 4 | 6): Uint8Array {
  const a = parseAddress(address);
  if (expect !== undefined && a.family !== expect) throw new ModelError(`${address}: expected an IPv${expect} address`);
  return a.bytes;
}

export class Settings {
  private readonly proxy4 = new Uint8Array(4);
  private readonly proxy6 = new Uint8Array(16);
  private readonly hasProxy4: boolean = false;
  private readonly hasProxy6: boolean = false;
  readonly portMin: number;
  readonly portMax: number;
  /** The range shared with other workers ([0, 0]: none). */
  readonly sharedPorts: readonly [number, number];
  readonly verifyChecksums: boolean;
  readonly tunnelMtu: number;
  readonly timeouts: Timeouts;
  readonly halfOpenPerSource: number;

  constructor(settings: DataPlaneSettings) {
    if (settings.address != null) {
      this.proxy4.set(addressBytes(settings.address, 4));
      this.hasProxy4 = true;
    }
    if (settings.address6 != null) {
      this.proxy6.set(addressBytes(settings.address6, 6));
      this.hasProxy6 = true;
    }
    [this.portMin, this.portMax] = settings.natPorts ?? DEFAULT_NAT_PORTS;
    this.sharedPorts = settings.natPortsShared ?? [0, 0];
    this.verifyChecksums = settings.verifyChecksums ?? false;
    this.tunnelMtu = settings.tunnelMtu ?? 1500;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...settings.timeouts };
    this.halfOpenPerSource = Math.min(settings.halfOpenPerSource ?? DEFAULT_HALF_OPEN_PER_SOURCE, 0xffff);
  }

  /** A port of another worker's slice of the shared range. */
  foreignPort(port: number): boolean {
    return port >= this.sharedPorts[0] && port <= this.sharedPorts[1] && (port < this.portMin || port > this.portMax);
  }

  /** The proxy's address of a family (all zero when none is set). */
  proxyAddr(family: 4 | 6): Uint8Array {
    return family === 4 ? this.proxy4 : this.proxy6;
  }

  hasProxy(family: 4 | 6): boolean {
    return family === 4 ? this.hasProxy4 : this.hasProxy6;
  }

  isProxy(family: 4 | 6, a: Uint8Array): boolean {
    return this.hasProxy(family) && sameAddr(a, this.proxyAddr(family));
  }
}
