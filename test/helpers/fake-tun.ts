// A TUN device in memory, for tests without root: it keeps the addon's
// contract (src/io/tun.ts, native/tun.cc) on the descriptor slots of the
// core's memory: readBatch copies queued packets to each slot's OFF (LEN on
// entry is the slot's capacity; longer packets are skipped and counted) and
// sets LEN and WIRELEN; writeBatch takes the packets whose VERDICT matches.
// deliver() queues packets and calls the readable callback, as the device's
// poll watcher would.

import { Desc } from "../../assembly/shared/abi.js";
import type { TunStats } from "../../src/io/tun.js";
import type { TunPort } from "../../src/io/tun-backend.js";

export class FakeTun implements TunPort {
  readonly name = "fake0";
  /** Packets the kernel would route on (writeBatch and write), copied. */
  readonly written: Uint8Array[] = [];
  closed = false;
  private readonly queue: Uint8Array[] = [];
  private readable: (() => void) | null = null;
  private readonly counts: TunStats = { read: 0, written: 0, truncated: 0, writeDropped: 0, writeErrors: 0, readErrors: 0, readCalls: 0, writeCalls: 0, uringFailures: 0 };

  /** Packets arriving from the kernel; the readable callback runs on the next turn of the event loop. */
  deliver(...packets: Uint8Array[]): void {
    this.queue.push(...packets);
    setImmediate(() => this.readable?.());
  }

  get pending(): number {
    return this.queue.length;
  }

  readBatch(mem: Uint8Array, desc: number, stride: number, max: number): number {
    const view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    let n = 0;
    while (n < max && this.queue.length) {
      const p = this.queue.shift()!;
      const d = desc + n * stride;
      if (p.length > view.getUint32(d + Desc.LEN, true)) {
        this.counts.truncated++;
        continue;
      }
      mem.set(p, view.getUint32(d + Desc.OFF, true));
      view.setUint32(d + Desc.LEN, p.length, true);
      view.setUint32(d + Desc.WIRELEN, p.length, true);
      n++;
    }
    this.counts.read += n;
    return n;
  }

  writeBatch(mem: Uint8Array, desc: number, stride: number, count: number, verdict: number): number {
    const view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    let written = 0;
    for (let i = 0; i < count; i++) {
      const d = desc + i * stride;
      if (mem[d + Desc.VERDICT] !== verdict) continue;
      const off = view.getUint32(d + Desc.OFF, true);
      this.written.push(mem.slice(off, off + view.getUint32(d + Desc.LEN, true)));
      written++;
    }
    this.counts.written += written;
    return written;
  }

  write(packet: Uint8Array): boolean {
    this.written.push(packet.slice());
    this.counts.written++;
    return true;
  }

  onReadable(cb: () => void): void {
    this.readable = cb;
  }

  close(): void {
    this.readable = null;
    this.closed = true;
  }

  stats(): TunStats {
    return { ...this.counts };
  }
}
