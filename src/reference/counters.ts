// The reference model's counters (assembly/counters.ts): one per drop reason
// and the global statistics, read out in DataPlane.counters()'s shape.

import { Counts, Reason } from "../../assembly/shared/abi.js";
import type { Counters } from "../core/dataplane.js";

const REASON_COUNT = Counts.REASON_COUNT;

function reasonName(r: number): string {
  return (Reason[r] ?? `reason-${r}`).replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

export class ModelCounters {
  readonly drops = new Array<number>(REASON_COUNT).fill(0);
  readonly stat = {
    packets: 0, bytes: 0, forwarded: 0, dropped: 0, reflected: 0, flowsCreated: 0, flowsExpired: 0,
    encapsulated: 0, decapsulated: 0, icmpTranslated: 0, icmpGenerated: 0, toHost: 0,
    superPackets: 0, segmented: 0, segments: 0, wrongWorker: 0,
  };

  /** A drop under reason r. */
  drop(r: Reason): void {
    this.drops[r]++;
    this.stat.dropped++;
  }

  read(flowsLive: number): Counters {
    const drops: Record<string, number> = {};
    for (let r = 1; r < REASON_COUNT; r++) if (this.drops[r]) drops[reasonName(r)] = this.drops[r];
    return { ...this.stat, flowsLive, drops };
  }
}
