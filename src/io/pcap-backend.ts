// The pcap backend (node_pcap): capture on an interface with a BPF filter for
// the anycast prefixes and the proxy's own addresses, inject what pias
// forwards. For a "one-armed" proxy on an Ethernet segment: the kernel must
// not also answer the captured packets (keep the anycast and NAT addresses
// off the interface and IP forwarding off, or drop them with nftables).
//
// node_pcap hands packets one at a time; they are copied into a bounded
// queue and moved into the ring in batches. Frames out get this interface's
// MAC as source and the next hop's as destination (src/io/neighbors.ts).

import { createRequire } from "node:module";
import type { PiasConfig } from "../config/types.js";
import { Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import type { PacketRing } from "../core/ring.js";
import { PiasError } from "../errors.js";
import type { PacketIO } from "./backend.js";
import { Neighbors } from "./neighbors.js";

/** Packets waiting between node_pcap's callback and the next batch; more are dropped and counted. */
const QUEUE_MAX = 8192;
const LINKTYPE_ETHERNET = 1;

/** A captured packet as node_pcap hands it: the frame and its pcap record header (caplen at byte 8). */
export interface RawPacket {
  buf: Buffer;
  header: Buffer;
  link_type: string;
}

/** The part of a node_pcap session the backend uses. */
export interface PcapSession {
  on(event: "packet", cb: (p: RawPacket) => void): void;
  inject(data: Buffer): void;
  close(): void;
  link_type: string;
}

export interface PcapBackendOptions {
  iface: string;
  /** Extra BPF filter, ANDed with the built one. */
  filter: string | null;
  config: PiasConfig;
}

/** The BPF filter: IP to an anycast prefix (or group address) or to the proxy's own addresses. */
export function pcapFilter(config: PiasConfig, extra: string | null): string {
  const nets = new Set<string>(config.proxy.anycastPrefixes);
  if (nets.size === 0) for (const g of config.groups) nets.add(g.address);
  if (config.proxy.address) nets.add(config.proxy.address);
  if (config.proxy.address6) nets.add(config.proxy.address6);
  const terms = [...nets].map((n) => (n.includes("/") ? `dst net ${n}` : `dst host ${n}`));
  if (terms.length === 0) throw new PiasError("ECONFIG", "pcap: no anycast prefix, group or proxy address to capture");
  const built = `(${terms.join(" or ")})`;
  return extra ? `${built} and (${extra})` : built;
}

export class PcapBackend implements PacketIO {
  readonly linkType = LINKTYPE_ETHERNET;
  readonly capacity = 65535 + 14;
  readonly description: string;
  private readonly queue: Buffer[] = [];
  private readable: (() => void) | null = null;
  private scheduled = false;
  private readonly counts = { read: 0, written: 0, queueDropped: 0, neighborUnresolved: 0, injectErrors: 0 };

  private constructor(
    private readonly session: PcapSession,
    private readonly neighbors: Neighbors,
    iface: string,
  ) {
    this.description = `pcap ${iface}`;
    session.on("packet", (p) => this.captured(p));
  }

  static open(o: PcapBackendOptions): PcapBackend {
    let pcap: { createSession(dev: string, opts: object): PcapSession };
    try {
      pcap = createRequire(import.meta.url)("pcap");
    } catch (err) {
      throw new PiasError("EPCAP", `the pcap package is not installed or not built (${(err as Error).message.split("\n")[0]}): install libpcap-dev, then npm rebuild pcap`);
    }
    const neighbors = new Neighbors(o.iface);
    let session: PcapSession;
    try {
      // immediate delivery (1 ms buffer timeout), not promiscuous: only frames for this host
      session = pcap.createSession(o.iface, { filter: pcapFilter(o.config, o.filter), buffer_timeout: 1, promiscuous: false });
    } catch (err) {
      throw new PiasError("EPCAP", `pcap on ${o.iface}: ${(err as Error).message}`);
    }
    if (session.link_type !== "LINKTYPE_ETHERNET") {
      session.close();
      throw new PiasError("EPCAP", `pcap on ${o.iface}: link type ${session.link_type}, only Ethernet is supported`);
    }
    return PcapBackend.over(session, neighbors, o.iface);
  }

  /** A backend on a session opened elsewhere (an Ethernet one), sending to the next hops `neighbors` knows. */
  static over(session: PcapSession, neighbors: Neighbors, iface: string): PcapBackend {
    return new PcapBackend(session, neighbors, iface);
  }

  private captured(p: RawPacket): void {
    const caplen = p.header.readUInt32LE(8);
    if (this.queue.length >= QUEUE_MAX) {
      this.counts.queueDropped++;
      return;
    }
    this.queue.push(Buffer.from(p.buf.subarray(0, caplen)));
    if (this.readable && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.readable?.();
      });
    }
  }

  read(ring: PacketRing, max: number): number {
    const n = Math.min(max, this.queue.length);
    if (n === 0) return 0;
    const mem = ring.memory();
    const view = new DataView(mem.buffer);
    for (let i = 0; i < n; i++) {
      const frame = this.queue[i];
      const d = ring.desc + i * Layout.DESC_SIZE;
      mem.set(frame, view.getUint32(d + Desc.OFF, true));
      view.setUint32(d + Desc.LEN, frame.length, true);
      view.setUint32(d + Desc.WIRELEN, frame.length, true);
    }
    this.queue.splice(0, n);
    this.counts.read += n;
    return n;
  }

  send(ring: PacketRing, n: number): void {
    for (let i = 0; i < n; i++) {
      if (ring.verdict(i) !== Verdict.Forward) continue;
      this.sendOne(ring.packet(i));
    }
  }

  /** Inject one Ethernet frame, its MACs set (in place) for the next hop toward its IP destination. */
  sendOne(frame: Uint8Array): boolean {
    const type = (frame[12] << 8) | frame[13];
    const dst = type === 0x0800 ? frame.subarray(14 + 16, 14 + 20) : type === 0x86dd ? frame.subarray(14 + 24, 14 + 40) : null;
    const mac = dst && dst.length ? this.neighbors.lookup(dst) : null;
    if (!mac) {
      this.counts.neighborUnresolved++;
      return false;
    }
    frame.set(mac, 0); // in place: the frame is a ring slot or a packet the host just built
    frame.set(this.neighbors.mac, 6);
    try {
      this.session.inject(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
      this.counts.written++;
      return true;
    } catch {
      this.counts.injectErrors++;
      return false;
    }
  }

  onReadable(cb: () => void): void {
    this.readable = cb;
  }

  close(): void {
    this.readable = null;
    this.session.close();
  }

  stats(): Record<string, number> {
    return { ...this.counts, queued: this.queue.length };
  }
}
