// A batch of fixed packet slots in the core's memory, for live I/O: the
// reader (the TUN addon) fills slot i in place, the core processes the batch,
// the writer sends what the core forwarded. reset() re-arms every descriptor
// with one call into the core (ring_reset), so the host touches no packet.
// With a segment area (offloaded TUN: super-packets to PIAS-aware targets are
// cut by the core) its descriptors follow the slots' in memory, so one write
// call sends the batch and its segments: sendCount().

import { Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import { DataPlaneError } from "../errors.js";
import type { DataPlaneExports } from "./dataplane.js";

/** Segment descriptors per slot, and bytes per slot for the segments' own headers (46 segments of 1448 bytes, 180 bytes each). */
const SEGMENTS_PER_SLOT = 64;
const SEGMENT_OVERHEAD = 8192;
const MAX_SEGMENT_ARENA = 32 << 20;

export class PacketRing {
  /** Address of the descriptor array in the core's memory. */
  readonly desc: number;
  /** Address of slot 0 (slot i at base + i * stride). */
  readonly base: number;
  /** Bytes between slots: headroom (a tunnel header or a generated ICMP error's headers go in front) and the packet. */
  readonly stride: number;

  /** Descriptors of the segment area, right after the slots' (0: none). */
  readonly segmentSlots: number;

  constructor(
    private readonly core: DataPlaneExports,
    /** Slots (packets per batch). */
    readonly slots: number,
    /** Largest packet a slot takes (the device MTU, at most Layout.MAX_PACKET). */
    readonly capacity: number,
    /** Give the ring a segment area (and register it with the core). */
    segments = false,
  ) {
    if (capacity > Layout.MAX_PACKET) throw new RangeError(`slot capacity ${capacity} exceeds ${Layout.MAX_PACKET}`);
    this.stride = (Layout.HEADROOM + capacity + 7) & ~7;
    this.segmentSlots = segments ? slots * SEGMENTS_PER_SLOT : 0;
    this.desc = core.alloc_buffer((slots + this.segmentSlots) * Layout.DESC_SIZE);
    this.base = core.alloc_buffer(slots * this.stride + Layout.HEADROOM);
    if (!this.desc || !this.base) throw new DataPlaneError(`out of memory for ${slots} packet slots of ${capacity} bytes`);
    if (segments) {
      // every slot's packet cut into segments of its own headers each: room for a full batch of 64 KiB super-packets
      const bytes = Math.min(slots * (capacity + SEGMENT_OVERHEAD), MAX_SEGMENT_ARENA);
      const arena = core.alloc_buffer(bytes);
      if (!arena) throw new DataPlaneError(`out of memory for a segment area of ${bytes} bytes`);
      core.gso_area(this.desc + slots * Layout.DESC_SIZE, this.segmentSlots, arena, bytes);
    }
    this.reset(slots, 0);
  }

  /**
   * Descriptors to send after processing `n`: n, or, when the core put
   * segments in the area, every slot (those past n are empty) and the area's.
   */
  sendCount(n: number): number {
    const emitted = this.segmentSlots ? this.core.gso_emitted() : 0;
    return emitted ? this.slots + emitted : n;
  }

  /** Re-arm descriptors [0, n) as empty slots offering `capacity` bytes; `time` (seconds) drives flow timeouts. */
  reset(n: number, time: number, link = 101): void {
    this.core.ring_reset(this.desc, n, this.base, this.stride, this.capacity, link, time >>> 0);
  }

  private u8 = new Uint8Array(0);
  private view = new DataView(new ArrayBuffer(0));

  /** The core's memory as bytes; the views are renewed only when the memory grew. */
  memory(): Uint8Array {
    if (this.u8.buffer !== this.core.memory.buffer) {
      this.u8 = new Uint8Array(this.core.memory.buffer);
      this.view = new DataView(this.core.memory.buffer);
    }
    return this.u8;
  }

  private u32(i: number, field: number): number {
    this.memory();
    return this.view.getUint32(this.desc + i * Layout.DESC_SIZE + field, true);
  }

  verdict(i: number): Verdict {
    return this.memory()[this.desc + i * Layout.DESC_SIZE + Desc.VERDICT];
  }

  /** HostWork (ToHost) or Reason (Drop) of packet i. */
  reason(i: number): number {
    return this.memory()[this.desc + i * Layout.DESC_SIZE + Desc.REASON];
  }

  /** The bytes of packet i as they are now; a view valid until the next reset. */
  packet(i: number): Uint8Array {
    const off = this.u32(i, Desc.OFF);
    return this.memory().subarray(off, off + this.u32(i, Desc.LEN));
  }
}
