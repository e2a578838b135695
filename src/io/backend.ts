// What the daemon needs from an I/O backend: fill a ring of packet slots in
// the core's memory, send what the core forwarded, and say when there is
// something to read. Backends: TUN (src/io/tun-backend.ts), pcap
// (src/io/pcap-backend.ts) and AF_XDP (src/io/xdp-backend.ts).

import type { PacketRing } from "../core/ring.js";

export interface PacketIO {
  /** For logs: "tun pias0", "pcap eth1". */
  readonly description: string;
  /** pcap LINKTYPE of the packets read and written (101 raw IP, 1 Ethernet), or Link.VNET (virtio_net_hdr, then IP). */
  readonly linkType: number;
  /** Largest packet a slot must hold. */
  readonly capacity: number;
  /**
   * The ring to read into, when the backend must allocate it itself (AF_XDP:
   * before its UMEM, so the UMEM is the last thing in the core's memory).
   * Absent: the daemon creates one of `capacity`-byte slots.
   */
  readonly ring?: PacketRing;
  /** Read up to `max` packets into ring slots [0, max) (already reset); returns how many. Never blocks. */
  read(ring: PacketRing, max: number): number;
  /** Send the packets of ring slots [0, n) that the core forwarded. */
  send(ring: PacketRing, n: number): void;
  /** Send one frame the host made or re-ran through the core, in the backend's link type (its link header first). */
  sendOne(packet: Uint8Array): boolean;
  /** Call `cb` whenever there may be packets to read. */
  onReadable(cb: () => void): void;
  close(): void;
  /** Counters of the backend (read, written, dropped, ...). */
  stats(): Record<string, number>;
  /** What the backend could not set up as asked and what it does instead: one log line each. */
  readonly notes?: readonly string[];
  /**
   * Serve these prefixes from now on (tunRoutes of a reloaded config): TUN
   * routes them into its device (when it manages routes), AF_XDP redirects
   * them. Absent: what the backend takes is fixed at open (pcap's filter).
   */
  serve?(prefixes: readonly string[]): void;
  /** Levels of the backend's buffers, where it has any (AF_XDP: UMEM frames by state). */
  levels?(): Record<string, number>;
}
