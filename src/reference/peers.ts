// What the reference model knows of the PIAS system around the proxy
// (assembly/peers.ts): the other proxies (IP-in-IP is only accepted from
// them once any is known), the anycast prefixes (an unknown TA there goes to
// the host, within a budget per second, or is dropped as no-group when
// nothing resolves) and the control port. Set by control calls; the packet
// path only reads them, and spends the budget.

import { parseAddress, parsePrefix } from "../net/addr.js";
import { hex } from "./parse.js";

/** True when the first `length` bits of addr and prefix agree. */
function prefixHas(prefix: Uint8Array, length: number, addr: Uint8Array): boolean {
  for (let bit = 0; bit < length; bit++) {
    const m = 0x80 >>> (bit & 7);
    if ((prefix[bit >>> 3] & m) !== (addr[bit >>> 3] & m)) return false;
  }
  return true;
}

export class Peers {
  /** Other proxies (hex address). */
  private peers = new Set<string>();
  private anycast: { prefix: Uint8Array; length: number }[] = [];
  controlPort = 0;
  /** Unknown TAs of the prefixes go to the host to resolve (else: no-group). */
  resolveUnknown = true;
  /** Packets handed to the host to resolve per second (by the packets' clock), and what is left of this second's. */
  private resolvePerSecond = 1000;
  private resolveSecond = 0;
  private resolveLeft = 1000;

  setResolveBudget(perSecond: number): void {
    this.resolvePerSecond = this.resolveLeft = Math.max(0, Math.floor(perSecond)) >>> 0;
  }

  /** Take one packet of this second's budget (the core's takeUnresolved); false when it is spent. */
  takeUnresolved(now: number): boolean {
    if (now !== this.resolveSecond) {
      this.resolveSecond = now;
      this.resolveLeft = this.resolvePerSecond;
    }
    if (this.resolveLeft === 0) return false;
    this.resolveLeft--;
    return true;
  }

  setPeers(addresses: readonly string[]): void {
    this.peers = new Set(addresses.map((a) => hex(parseAddress(a).bytes)));
  }

  setAnycastPrefixes(prefixes: readonly string[]): void {
    this.anycast = prefixes.map((t) => {
      const p = parsePrefix(t);
      return { prefix: p.bytes, length: p.length };
    });
  }

  setControlPort(port: number): void {
    this.controlPort = port & 0xffff;
  }

  /** A tunnel from `src` is accepted: no peer is known, or it is one. */
  tunnelAllowed(src: Uint8Array): boolean {
    return this.peers.size === 0 || this.peers.has(hex(src));
  }

  inAnycast(addr: Uint8Array): boolean {
    return this.anycast.some((r) => r.prefix.length === addr.length && prefixHas(r.prefix, r.length, addr));
  }
}
