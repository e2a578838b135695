// The parsed view of one packet: what parse.ts found, as a plain record the
// pipeline passes to every stage (smoltcp's Repr next to its Packet view).
// A stage reads the packet's shape from its `p: Packet` argument and nothing
// else; only parse.ts (and decapsulation, which parses the inner packet into
// the same record) writes it.
//
// The record is unmanaged memory at a fixed address (PACKET): no allocation,
// and one record serves the whole batch, packet after packet.

@unmanaged
export class Packet {
  // ---- link layer (valid after parseLink returned Reason.None) ----
  /** Length of the link-layer header. */
  linkLen: u32;
  /** IP version announced by the link layer (4 or 6), or 0 when the IP header must tell (LINKTYPE_RAW). */
  linkFamily: u32;
  /** Where the link layer stores the network protocol (0 = nowhere). */
  linkProtoPtr: usize;
  /** How linkProtoPtr is encoded: 1 ethertype, 2 NULL little-endian AF, 3 NULL big-endian AF, 4 fixed family. */
  linkProtoKind: u32;
  /** Link.VNET: address of the virtio_net_hdr (the link header); 0 for every other link type. */
  vnet: usize;
  /** Link.VNET: the GSO type without its ECN bit (VnetGso.None: not a super-packet), and the segment payload size. */
  gsoType: u32;
  gsoSize: u32;
  /** Link.VNET: the transport checksum is partial (NEEDS_CSUM at it): it holds only the pseudo-header's sum. */
  partial: bool;

  // ---- network layer ----
  family: u32;
  /** IP header. */
  l3: usize;
  /** Bytes from the IP header to the transport header (IPv6: including extension headers). */
  ipHdrLen: u32;
  /** IP datagram length per its header. */
  ipTotal: u32;
  /** End of the IP datagram's captured bytes. */
  ipEnd: usize;
  /** The capture holds fewer bytes than the datagram (snaplen): checksums cannot be recomputed. */
  truncated: bool;
  /** Transport protocol (after the IPv6 extension chain). */
  proto: u32;

  // ---- fragments ----
  isFragment: bool;
  fragMore: bool;
  /** The first fragment or an unfragmented datagram: the transport header is here. */
  hasL4Header: bool;
  /** Fragment offset in bytes. */
  fragOffset: u32;
  fragId: u32;
  /** Start of the fragmentable part (fragment offsets count from here). */
  fragPayload: usize;
  /** Protocol that keys the datagram's fragments: IPv4 protocol, or the Fragment header's next header. */
  fragProto: u32;

  // ---- transport layer ----
  /** Transport header (or fragment payload). */
  l4: usize;
  /** Transport length per the IP header. */
  l4Len: u32;
  /** Transport bytes present in this packet (captured and inside the datagram). */
  l4Avail: u32;
  /** Ports (raw) of TCP/UDP; for ICMP echo, the identifier as sport (request) or dport (reply). */
  sport: u32;
  dport: u32;
  tcpFlags: u32;
  icmpType: u32;
  icmpCode: u32;
  /** ICMP/ICMPv6 error message (quotes a packet). */
  icmpError: bool;
  /** Address of the transport checksum, or 0 when absent from this packet or UDP checksum 0. */
  l4CsumPtr: usize;

  /** True when `proto` is the ICMP of the packet's family. */
  @inline isIcmp(): bool {
    return this.proto == (this.family == 4 ? <u32>1 : <u32>58);
  }

  /** Address of the source address field. */
  @inline src(): usize {
    return this.l3 + (this.family == 4 ? <usize>12 : <usize>8);
  }

  /** Address of the destination address field. */
  @inline dst(): usize {
    return this.l3 + (this.family == 4 ? <usize>16 : <usize>24);
  }
}

/** The one Packet record the pipeline and the host-facing helpers parse into. */
export const PACKET: Packet = changetype<Packet>(memory.data(offsetof<Packet>(), 16));
