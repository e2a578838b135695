// A batch of fixed packet slots in the core's memory, for live I/O: the
// reader (the TUN addon) fills slot i in place, the core processes the batch,
// the writer sends what the core forwarded. reset() re-arms every descriptor
// with one call into the core (ring_reset), so the host touches no packet.

import { Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import { DataPlaneError } from "../errors.js";
import type { DataPlaneExports } from "./dataplane.js";

export class PacketRing {
  /** Address of the descriptor array in the core's memory. */
  readonly desc: number;
  /** Address of slot 0 (slot i at base + i * stride). */
  readonly base: number;
  /** Bytes between slots: headroom (a tunnel header or a generated ICMP error's headers go in front) and the packet. */
  readonly stride: number;

  constructor(
    private readonly core: DataPlaneExports,
    /** Slots (packets per batch). */
    readonly slots: number,
    /** Largest packet a slot takes (the device MTU, at most Layout.MAX_PACKET). */
    readonly capacity: number,
  ) {
    if (capacity > Layout.MAX_PACKET) throw new RangeError(`slot capacity ${capacity} exceeds ${Layout.MAX_PACKET}`);
    this.stride = (Layout.HEADROOM + capacity + 7) & ~7;
    this.desc = core.alloc_buffer(slots * Layout.DESC_SIZE);
    this.base = core.alloc_buffer(slots * this.stride + Layout.HEADROOM);
    if (!this.desc || !this.base) throw new DataPlaneError(`out of memory for ${slots} packet slots of ${capacity} bytes`);
    this.reset(slots, 0);
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
