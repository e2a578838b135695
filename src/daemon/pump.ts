// Moves packets: read a batch from the I/O backend into the ring, one
// DataPlane.processBatch call, send what the core forwarded, hand what it
// gave to the host to the host's handler. Runs when the backend is readable, a bounded
// number of batches at a time so timers (health checks, metrics) keep running.

import { Verdict } from "../../assembly/shared/abi.js";
import type { DataPlane } from "../core/dataplane.js";
import type { PacketRing } from "../core/ring.js";
import type { PacketIO } from "../io/backend.js";

/** Batches per turn of the event loop before yielding. */
const BATCHES_PER_TURN = 64;

export type HostHandler = (ring: PacketRing, slot: number) => void;

export class Pump {
  private scheduled = false;
  /** Packets the core handed to the host that no handler took. */
  hostUnhandled = 0;
  batches = 0;

  constructor(
    private readonly dp: DataPlane,
    private readonly io: PacketIO,
    private readonly ring: PacketRing,
    private readonly onHost: HostHandler | null = null,
  ) {}

  start(): void {
    this.io.onReadable(() => this.drain());
  }

  /** Process what the backend has, up to BATCHES_PER_TURN batches, then yield and continue. */
  drain(): void {
    const { ring, io, dp } = this;
    for (let b = 0; b < BATCHES_PER_TURN; b++) {
      ring.reset(ring.slots, Math.floor(Date.now() / 1000), io.linkType);
      const n = io.read(ring, ring.slots);
      if (n === 0) return;
      const toHost = dp.processBatch(ring.desc, n);
      io.send(ring, ring.sendCount(n));
      this.batches++;
      if (toHost !== 0) this.host(n);
      if (n < ring.slots) return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.drain();
      });
    }
  }

  private host(n: number): void {
    for (let i = 0; i < n; i++) {
      if (this.ring.verdict(i) !== Verdict.ToHost) continue;
      if (this.onHost) this.onHost(this.ring, i);
      else this.hostUnhandled++;
    }
  }
}
