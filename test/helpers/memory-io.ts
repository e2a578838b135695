// A PacketIO in memory, for daemon tests without a device: packets queued by
// the test are read into the ring the way the TUN addon fills it (LEN and
// WIRELEN set to the bytes read), and what the daemon sends is recorded.

import { Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import type { PacketRing } from "../../src/core/ring.js";
import type { PacketIO } from "../../src/io/backend.js";

export class MemoryIO implements PacketIO {
  readonly description = "memory";
  readonly linkType = 101;
  readonly capacity = 2048;
  /** Packets waiting to be read. */
  readonly queue: Uint8Array[] = [];
  /** Packets the daemon sent: forwarded by the core and made by the host (control replies). */
  readonly sent: Uint8Array[] = [];
  private readable: (() => void) | null = null;
  private reads = 0;

  /** Queue packets and tell the daemon there is something to read. */
  push(...packets: Uint8Array[]): void {
    this.queue.push(...packets);
    this.readable?.();
  }

  read(ring: PacketRing, max: number): number {
    const mem = ring.memory();
    const view = new DataView(mem.buffer);
    let n = 0;
    while (n < max && this.queue.length > 0) {
      const p = this.queue.shift()!;
      const d = ring.desc + n * Layout.DESC_SIZE;
      const off = view.getUint32(d + Desc.OFF, true);
      mem.set(p, off);
      view.setUint32(d + Desc.LEN, p.length, true);
      view.setUint32(d + Desc.WIRELEN, p.length, true);
      n++;
    }
    this.reads += n;
    return n;
  }

  send(ring: PacketRing, n: number): void {
    for (let i = 0; i < n; i++) if (ring.verdict(i) === Verdict.Forward) this.sent.push(ring.packet(i).slice());
  }

  sendOne(packet: Uint8Array): boolean {
    this.sent.push(packet.slice());
    return true;
  }

  onReadable(cb: () => void): void {
    this.readable = cb;
  }

  close(): void {
    this.readable = null;
  }

  stats(): Record<string, number> {
    return { read: this.reads, written: this.sent.length };
  }
}
