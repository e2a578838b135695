// A batch of packets in the core's linear memory: descriptors (Layout.DESC_SIZE
// bytes each, see assembly/shared/abi.ts) and an arena holding the packets,
// each with Layout.HEADROOM free bytes in front for a tunnel header.
//
// Fast I/O paths (the capture scanner, the TUN addon) fill descriptors and
// arena directly; add() is the convenient path for embedders with packets in
// JavaScript buffers.

import { AuxFlag, Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import type { CoreExports } from "./wasm.js";

export interface PacketMeta {
  /** pcap LINKTYPE of the packet's first header (default 101: raw IP). */
  link?: number;
  /** Arrival time in seconds (drives flow timeouts). Default: now. */
  time?: number;
  /** Length on the wire when the buffer holds a truncated capture. */
  wirelen?: number;
  iface?: number;
  tsHi?: number;
  tsLo?: number;
}

export const LINKTYPE_RAW = 101;

export class PacketBatch {
  /** Number of packets currently in the batch. */
  count = 0;
  private next: number;
  private view: DataView;
  private u8: Uint8Array;

  constructor(
    private readonly core: CoreExports,
    /** Address of the descriptor array. */
    readonly desc: number,
    /** Descriptor slots. */
    readonly slots: number,
    /** Address and size of the packet arena. */
    readonly arena: number,
    readonly arenaBytes: number,
  ) {
    this.next = arena + Layout.HEADROOM;
    this.view = new DataView(core.memory.buffer);
    this.u8 = new Uint8Array(core.memory.buffer);
  }

  /** Views over the core's memory, renewed when the memory grew. */
  private mem(): DataView {
    if (this.view.buffer !== this.core.memory.buffer) {
      this.view = new DataView(this.core.memory.buffer);
      this.u8 = new Uint8Array(this.core.memory.buffer);
    }
    return this.view;
  }

  clear(): void {
    this.count = 0;
    this.next = this.arena + Layout.HEADROOM;
  }

  /** Copy a packet into the batch. False when the batch or its arena is full. */
  add(data: Uint8Array, meta: PacketMeta = {}): boolean {
    if (this.count >= this.slots) return false;
    const len = data.length;
    if (len > Layout.MAX_PACKET) throw new RangeError(`packet of ${len} bytes exceeds ${Layout.MAX_PACKET}`);
    if (this.next + len + Layout.HEADROOM > this.arena + this.arenaBytes) return false;
    const v = this.mem();
    const off = this.next;
    this.u8.set(data, off);
    const d = this.desc + this.count * Layout.DESC_SIZE;
    const time = meta.time ?? Math.floor(Date.now() / 1000);
    v.setUint32(d + Desc.OFF, off, true);
    v.setUint32(d + Desc.LEN, len, true);
    v.setUint32(d + Desc.WIRELEN, Math.max(meta.wirelen ?? len, len), true);
    v.setUint16(d + Desc.LINK, meta.link ?? LINKTYPE_RAW, true);
    v.setUint16(d + Desc.IFACE, meta.iface ?? 0, true);
    v.setUint32(d + Desc.TS_HI, meta.tsHi ?? time, true);
    v.setUint32(d + Desc.TS_LO, meta.tsLo ?? 0, true);
    v.setUint32(d + Desc.TIME, time >>> 0, true);
    v.setUint8(d + Desc.VERDICT, 0);
    v.setUint8(d + Desc.REASON, 0);
    v.setUint16(d + Desc.AUX, 0, true);
    this.next = off + ((len + 7) & ~7) + Layout.HEADROOM;
    this.count++;
    return true;
  }

  private field(i: number, off: number, size: 1 | 2 | 4): number {
    const v = this.mem();
    const p = this.desc + i * Layout.DESC_SIZE + off;
    return size === 1 ? v.getUint8(p) : size === 2 ? v.getUint16(p, true) : v.getUint32(p, true);
  }

  verdict(i: number): Verdict {
    return this.field(i, Desc.VERDICT, 1);
  }

  /** Drop reason code (see Reason) of packet i. */
  reason(i: number): number {
    return this.field(i, Desc.REASON, 1);
  }

  aux(i: number): AuxFlag {
    return this.field(i, Desc.AUX, 2);
  }

  /** Bytes of packet i as they are now (after processing: the output). A view, valid until the batch is reused. */
  packet(i: number): Uint8Array {
    this.mem();
    const off = this.field(i, Desc.OFF, 4);
    return this.u8.subarray(off, off + this.field(i, Desc.LEN, 4));
  }

  /** Where packet i starts in the core's memory; 0 for an empty slot. */
  offset(i: number): number {
    return this.field(i, Desc.OFF, 4);
  }

  wirelen(i: number): number {
    return this.field(i, Desc.WIRELEN, 4);
  }
}
