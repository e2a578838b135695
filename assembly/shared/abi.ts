// The contract between the Wasm data plane and its host, in one file that both
// compilers read (asc for assembly/, tsc for src/). Only enums live here: they
// mean the same thing in AssemblyScript and TypeScript.
//
// Never renumber a member: codes are stored in descriptors and counters.

/** Fixed sizes of the batch ABI. */
export enum Layout {
  /** Bytes the core may use in front of every packet (tunnel header, ICMP error header, moved link header). */
  HEADROOM = 128,
  /** Bytes per packet descriptor. */
  DESC_SIZE = 32,
  /** Largest packet the core accepts (IPv6 jumbograms and GSO super-packets in captures). */
  MAX_PACKET = 262144,
  /** Bytes of the scratch area the host uses to pass addresses and names to control calls. */
  SCRATCH_SIZE = 4096,
}

/**
 * Byte offsets inside one packet descriptor. The host fills OFF..TIME, the core
 * writes VERDICT/REASON/AUX and, for a forwarded packet, the new OFF/LEN/WIRELEN.
 */
export enum Desc {
  /** u32: address of the packet's first byte (its link-layer header) in linear memory. */
  OFF = 0,
  /** u32: bytes present (captured length). */
  LEN = 4,
  /** u32: length on the wire (>= LEN; larger when the capture truncated the packet). */
  WIRELEN = 8,
  /** u16: link type (pcap LINKTYPE_* number). */
  LINK = 12,
  /** u16: capture interface (opaque to the data plane, kept for output). */
  IFACE = 14,
  /** u32: capture timestamp, high word (opaque, kept for output). */
  TS_HI = 16,
  /** u32: capture timestamp, low word (opaque, kept for output). */
  TS_LO = 20,
  /** u32: time of arrival in whole seconds; drives flow timeouts. */
  TIME = 24,
  /** u8: Verdict. */
  VERDICT = 28,
  /** u8: Reason (for Drop), HostWork (for ToHost), 0 otherwise. */
  REASON = 29,
  /** u16: AuxFlag bits. */
  AUX = 30,
}

/**
 * Link types of pias's own, beside pcap's LINKTYPE_* numbers in Desc.LINK.
 * Live I/O only: no capture file carries them.
 */
export enum Link {
  /**
   * A Vnet.SIZE-byte virtio_net_hdr (a TUN device with IFF_VNET_HDR,
   * little-endian) and then an IPv4 or IPv6 packet, which may be a GSO
   * super-packet or carry a partial checksum. The header is the packet's
   * link-layer header: it moves with the packet, and the core rewrites it to
   * say what the packet it forwards needs (the kernel segments a super-packet
   * it forwards; a segment the core made carries no GSO request).
   */
  VNET = 65000,
}

/** Byte offsets of the virtio_net_hdr in front of a Link.VNET packet (little-endian u16 fields). */
export enum Vnet {
  /** u8: VnetFlag bits. */
  FLAGS = 0,
  /** u8: VnetGso type. */
  GSO_TYPE = 1,
  /** u16: length of the headers before the payload (a hint; may be 0). */
  HDR_LEN = 2,
  /** u16: payload bytes per segment of a super-packet. */
  GSO_SIZE = 4,
  /** u16: where the partial checksum's region starts, from the IP header. */
  CSUM_START = 6,
  /** u16: where its checksum field is, from CSUM_START. */
  CSUM_OFFSET = 8,
  /** Bytes of the header. */
  SIZE = 10,
}

export enum VnetFlag {
  /** The checksum at CSUM_START + CSUM_OFFSET holds only the pseudo-header's sum: the sum from CSUM_START on is still to be added (CHECKSUM_PARTIAL). */
  NeedsCsum = 1,
  /** The kernel verified the checksum (reads only). */
  DataValid = 2,
}

export enum VnetGso {
  None = 0,
  TcpV4 = 1,
  /** UDP fragmentation offload (UFO): not accepted. */
  Udp = 3,
  TcpV6 = 4,
  /** UDP segmentation (USO): datagrams of GSO_SIZE payload bytes. */
  UdpL4 = 5,
  /** Flag bit: TCP with ECN (CWR on the first segment only). */
  Ecn = 0x80,
}

export enum Verdict {
  /** Slot unused or packet dropped (see REASON). */
  Drop = 0,
  /** Send the packet now found at OFF/LEN. */
  Forward = 1,
  /** The core does not handle it: the host should (control messages, pending lookups). */
  ToHost = 2,
}

/** Why a packet was handed to the host (the REASON byte of a ToHost verdict). */
export enum HostWork {
  None = 0,
  /** A control-plane message: UDP to the control port of an anycast or proxy address. */
  Control = 1,
  /** To an address the proxies serve, but no group is installed for it yet, or the group waits for its rendezvous answer. */
  Unresolved = 2,
}

export enum AuxFlag {
  /** The forwarded packet is an IP-in-IP tunnel packet built by the core. */
  Encapsulated = 1,
  /** The forwarded packet was decapsulated from a tunnel first. */
  Decapsulated = 2,
  /** The forwarded packet is an ICMP error the core generated toward the sender. */
  Generated = 4,
  /** The packet is a reply the core synthesised for --reflect. */
  Reflected = 8,
  /** Forward direction (client to target); unset for the return direction. */
  ToTarget = 16,
  /** An ICMP error about a flow, translated. */
  IcmpError = 32,
}

/**
 * Why a packet was dropped. Every member has a counter. The host prints a
 * member as kebab-case (NotForProxy -> "not-for-proxy").
 */
export enum Reason {
  None = 0,
  /** Shorter than the link-layer header, or a header the link layer announced is cut. */
  Truncated = 1,
  /** Link type the core does not parse. */
  LinkUnsupported = 2,
  /** Not IPv4 or IPv6 (ARP, LLC, MPLS, PPPoE, ...). */
  NotIp = 3,
  /** IP version/header length fields are impossible. */
  IpHeaderMalformed = 4,
  /** IP total/payload length disagrees with the bytes on the wire. */
  IpLengthMismatch = 5,
  /** IPv6 extension header chain longer than the core walks, or malformed. */
  Ipv6ExtChain = 6,
  /** IPv6 routing header with segments left, or Home Address option: the pseudo-header is not the IP header's. */
  Ipv6ExtUnsupported = 7,
  /** IPv4 loose/strict source route: the destination field is not the final destination. */
  IpSourceRoute = 8,
  /** TCP/UDP/ICMP header cut short or with an impossible length field. */
  L4HeaderMalformed = 9,
  /** A later fragment arrived before the first (no fragment entry to follow). */
  FragmentOutOfOrder = 10,
  /** Addressed neither to a group, nor to a live NAT binding, nor a tunnel to this proxy. */
  NotForProxy = 11,
  /** The group has no usable target. */
  NoTarget = 12,
  /** A TCP segment other than SYN for which no flow exists (policy is not affinity). */
  NoFlow = 13,
  /** No flow entry could be made free. */
  FlowTableFull = 14,
  /** Every NAT port toward the target is bound to a live flow. */
  NatPortsExhausted = 15,
  /** The flow's target is down and TCP flows are not re-pinned. */
  TargetDown = 16,
  /** verifyChecksums is on and the IPv4 header checksum is wrong. */
  BadIpChecksum = 17,
  /** verifyChecksums is on and the TCP/UDP/ICMP checksum is wrong. */
  BadL4Checksum = 18,
  /** ICMP/ICMPv6 type the proxy does not translate (router advertisements, ...). */
  IcmpUnsupported = 19,
  /** ICMP error whose quoted packet matches no flow. */
  IcmpErrorNoFlow = 20,
  /** IP-in-IP to this proxy whose inner packet is malformed or of a family the link cannot carry. */
  TunnelMalformed = 21,
  /** IP-in-IP from an address that is not a known proxy. */
  TunnelFromStranger = 22,
  /** Fragment table has no room for a new datagram. */
  FragmentTableFull = 23,
  /** Packet too big for the tunnel MTU; an ICMP error went back to the sender. */
  PacketTooBig = 24,
  /** Flow waits for a rendezvous answer and its queue is full. */
  PendingQueueFull = 25,
  /** Capture record whose link type cannot carry the rewritten packet (e.g. 4in6 decap on LINKTYPE_IPV6). */
  LinkFamilyMismatch = 26,
  /** Overlay frame too short, of an unknown kind or version, or whose inner packet is not IPv4 (assembly/overlay/). */
  OverlayMalformed = 27,
  /** Overlay frame whose tag does not verify under its kind's key (no key, a wrong key, altered bytes). */
  OverlayBadTag = 28,
  /** Overlay frame stamped outside the time window (a replay, or a clock far off). */
  OverlayStale = 29,
  /** Node-to-node overlay frame from a sender that is not a live overlay node. */
  OverlayFromStranger = 30,
  /** Packet to an overlay TA with no live NAT binding here, or outside the overlay's partition. */
  OverlayNoBinding = 31,
  /** Through the overlay: neither TCP nor UDP, a fragment, or a destination inside the overlay itself. */
  OverlayUnsupported = 32,
  /** virtio_net_hdr asks for segmentation with gso_size 0. */
  GsoSizeZero = 33,
  /** virtio_net_hdr's hdr_len reaches past the end of the packet. */
  VnetHdrLenPastPacket = 34,
  /** virtio_net_hdr's partial checksum (csum_start, csum_offset) lies outside the packet, or is not the transport checksum of an unfragmented TCP/UDP packet (ICMP and others: completed on arrival). */
  VnetCsumOutside = 35,
  /** virtio_net_hdr's GSO type does not match the packet (TCPV4 on IPv6 or UDP, a fragment, ...) or is not supported (UFO). */
  GsoTypeMismatch = 36,
  /** A super-packet to a PIAS-aware target that the batch's segment area has no room left to segment (see gso_area). */
  GsoNoRoom = 37,
  /** To an address of the anycast prefixes that has no group, with nothing (no cluster) to resolve it. */
  NoGroup = 38,
  /** To the proxy's own address with no live NAT binding: a reply whose flow expired or was evicted, or that a restart lost. */
  NoBinding = 39,
  /** IPv4 without DF too long to encapsulate at all: the outer header's total length would exceed 65,535. */
  TunnelOverflow = 40,
  /** A SYN whose source already has halfOpenPerSource half-open flows (SYN-flood protection). */
  HalfOpenLimit = 41,
  /** To an anycast-prefix address with no group, past the packets per second the host takes to resolve. */
  ResolveThrottled = 42,
  /** A super-packet to a PIAS-aware target whose payload was not captured whole (a capture cut at a snap length): it cannot be cut into segments. */
  GsoTruncated = 43,
}

/**
 * Table limits. An index entry's reference is below INDEX_ENTRIES: the bits
 * above it hold a second tag of its hash (assembly/table/bucket-index.ts).
 * A flow, and an overlay binding, has two references (its two keys).
 */
export enum Limit {
  INDEX_ENTRIES = 33554432, // 2^25
  FLOWS = 16777216,
}

/** Number of Reason members; counters are indexed 0..REASON_COUNT-1. */
export enum Counts {
  REASON_COUNT = 44,
}

/**
 * The counters area at counters_ptr(): REASON_SLOTS u64 drop counters indexed
 * by Reason (reason r at byte r * 8), then STAT_SLOTS u64 statistics indexed
 * by Stat (statistic s at byte STAT_BASE + s * 8). Little-endian, as all of
 * linear memory.
 */
export enum CounterLayout {
  REASON_SLOTS = 64,
  STAT_SLOTS = 32,
  /** Byte offset of the first statistic: REASON_SLOTS * 8. */
  STAT_BASE = 512,
  /** Bytes of the whole area: (REASON_SLOTS + STAT_SLOTS) * 8. */
  BYTES = 768,
}

/** Global statistics, at CounterLayout.STAT_BASE + s * 8 of the counters area. */
export enum Stat {
  Packets = 0,
  Bytes = 1,
  Forwarded = 2,
  Dropped = 3,
  ToHost = 4,
  FlowsCreated = 5,
  FlowsExpired = 6,
  FlowsLive = 7,
  Encapsulated = 8,
  Decapsulated = 9,
  IcmpTranslated = 10,
  Reflected = 11,
  IcmpGenerated = 12,
  /** GSO super-packets received (Link.VNET with a GSO type): each NATed as one packet, or segmented. */
  SuperPackets = 13,
  /** Super-packets segmented by the core (toward PIAS-aware targets: IP-in-IP has no GSO type). */
  Segmented = 14,
  /** Packets those segmentations made. */
  Segments = 15,
  /** Packets to the proxy's address with a NAT port of another worker's slice (set_nat_ports_shared): steered to the wrong worker, dropped as not-for-proxy (or icmp-error-no-flow). */
  WrongWorker = 16,
  COUNT = 17,
}

/** Target selection policies. */
export enum Policy {
  Affinity = 0,
  RoundRobin = 1,
  Random = 2,
  LeastLoad = 3,
  Proximity = 4,
}

/** What the affinity hash covers. */
export enum AffinityKey {
  ClientAddress = 0,
  FiveTuple = 1,
}

/** Error codes of control calls (negative return values). */
export enum ControlError {
  Ok = 0,
  NoMemory = -1,
  TableFull = -2,
  Exists = -3,
  NotFound = -4,
  Invalid = -5,
}

/** Error codes of the capture-file scanner. */
export enum CaptureError {
  Ok = 0,
  BadMagic = 1,
  Truncated = 2,
  BadBlock = 3,
  RecordTooLarge = 4,
  UnknownInterface = 5,
  BadHeader = 6,
  /** A packet on a link type the data plane does not parse (only with cap_strict_links). */
  UnsupportedLinkType = 7,
}

/** Capture container formats. */
export enum CaptureFormat {
  Unknown = 0,
  Pcap = 1,
  PcapNg = 2,
}

/** Kinds of overlay frames (the byte at OverlayFrame.KIND). */
export enum OverlayKind {
  /** Client -> its local node: a packet of the client's, to NAT and send on. */
  ClientData = 1,
  /** Local node -> client: a reply, reverse-NATed to the client's own address and port. */
  ClientReturn = 2,
  /** Remote node -> owner: a reply that entered the overlay at the remote node, for the owner of its TA. */
  Reply = 3,
  /** Owner -> remote node: a NATed packet to send out from its TA, near its destination. */
  SendOut = 4,
}

/** The overlay frame header in front of the inner packet (a UDP payload); README "Reaching an overlay". */
export enum OverlayFrame {
  /** u64: SipHash-2-4 of bytes [KIND, end) under the key of the kind. */
  TAG = 0,
  /** u8: OverlayKind. */
  KIND = 8,
  /** u8: VERSION. */
  VER = 9,
  /** u8: OverlayFlag bits. */
  FLAGS = 10,
  /** u32: the sending node's address (network order); 0 from a client. */
  SENDER = 12,
  /** u32: seconds (network order); frames outside the window are dropped. */
  TIME = 16,
  /** u32: a fresh value per frame. */
  SEQ = 20,
  /** Bytes of the header; the inner packet follows. */
  HEADER = 24,
  VERSION = 1,
  /** Bytes a frame adds to the inner packet on the wire: IPv4 20 + UDP 8 + HEADER. */
  OVERHEAD = 52,
}

/** Bits of OverlayFrame.FLAGS. */
export enum OverlayFlag {
  /** A reply the TA's owner had no binding for, handed to the block's runner-up (its owner before a join); never handed on again. */
  HandedOver = 1,
}

/** The overlay's statistics, u64 each at overlay_stats_ptr() + s * 8. */
export enum OverlayStat {
  /** Client packets accepted (tag and window good, NATed). */
  FromClient = 0,
  /** Replies sent down a client's tunnel. */
  ToClient = 1,
  /** Client packets sent through the remote node cached for their destination. */
  ViaRemote = 2,
  /** Client packets sent to their destination directly. */
  Direct = 3,
  /** Replies that entered here for a TA another node owns, tunnelled to it. */
  RelayedToOwner = 4,
  /** Packets another node asked this one to send out from its TA. */
  SentOut = 5,
  /** Replies for this node's TAs that entered the overlay here. */
  RepliesDirect = 6,
  /** Replies for this node's TAs that another node relayed. */
  RepliesViaNode = 7,
  FlowsCreated = 8,
  FlowsExpired = 9,
  FlowsLive = 10,
  /** Replies this node had no binding for, handed to the block's runner-up. */
  HandedOver = 11,
  COUNT = 12,
  SLOTS = 16,
}

/**
 * Pipeline stages, in order, for the bench build of the core only (asc
 * --target bench): bench_stop_after(stage) makes process_batch stop every
 * packet after that stage, so that `npm run bench:scale` can time each
 * stage as the difference between two stopping points on the same packets.
 */
export enum Stage {
  /** Read the descriptor and parse the packet. */
  Parse = 1,
  /** Classify, hash and look the flow up (with the batch's prefetch of index buckets and records). */
  FlowLookup = 2,
  /** A new flow's group lookup and target selection. */
  Select = 3,
  /** A new flow's record, NAT port and index entries. */
  Create = 4,
  /** The flow's bookkeeping (timestamp, TCP state, target checks) and the rewrite or encapsulation. */
  Rewrite = 5,
  /** The verdict, counters and the per-batch expiry sweep: the whole pipeline. */
  Verdict = 6,
}
