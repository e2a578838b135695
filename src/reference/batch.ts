// What one slot of the model's batch holds (src/core/batch.ts for the core):
// the packet handed in, the frame it is processed in (with headroom in front,
// as the core's arena has), and the result the core would write back into
// the descriptor. Types only.

import type { Reason, Verdict } from "../../assembly/shared/abi.js";

/** One packet handed to the model (what DataPlane's batch.add() takes). */
export interface ModelPacket {
  /** Bytes from the link-layer header on. */
  data: Uint8Array;
  /** pcap LINKTYPE (default 101, raw IP). */
  link?: number;
  /** Arrival time in seconds. */
  time: number;
  /** Length on the wire (default: data.length). */
  wirelen?: number;
  /** A reply made by reflect(): counted apart, as the core does for AUX = Reflected. */
  reflected?: boolean;
}

/** What the core writes back for one packet. */
export interface ModelResult {
  verdict: Verdict;
  reason: Reason;
  aux: number;
  /** The packet bytes at the descriptor's OFF/LEN afterwards (for a drop: as the core left them). */
  data: Uint8Array;
  /** The descriptor's WIRELEN afterwards. */
  wirelen: number;
  link: number;
  time: number;
}

/** The descriptor fields a stage sets: verdict, reason (or HostWork), AUX flags. */
export interface Outcome {
  verdict: Verdict;
  reason: Reason;
  aux: number;
}

/** A packet in its buffer, with headroom in front as the core's batch arena has. */
export interface Frame {
  buf: Uint8Array;
  off: number;
  len: number;
  wirelen: number;
  link: number;
}
