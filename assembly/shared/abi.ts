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
  /** To an address of the anycast prefixes that has no group, with nothing (no cluster) to resolve it. */
  NoGroup = 27,
  /** To the proxy's own address with no live NAT binding: a reply whose flow expired or was evicted, or that a restart lost. */
  NoBinding = 28,
  /** IPv4 without DF too long to encapsulate at all: the outer header's total length would exceed 65,535. */
  TunnelOverflow = 29,
  /** A SYN whose source already has halfOpenPerSource half-open flows (SYN-flood protection). */
  HalfOpenLimit = 30,
  /** To an anycast-prefix address with no group, past the packets per second the host takes to resolve. */
  ResolveThrottled = 31,
}

/** Number of Reason members; counters are indexed 0..REASON_COUNT-1. */
export enum Counts {
  REASON_COUNT = 32,
}

/**
 * The counters area at counters_ptr(): REASON_SLOTS u64 drop counters indexed
 * by Reason (reason r at byte r * 8), then STAT_SLOTS u64 statistics indexed
 * by Stat (statistic s at byte STAT_BASE + s * 8). Little-endian, as all of
 * linear memory.
 */
export enum CounterLayout {
  REASON_SLOTS = 32,
  STAT_SLOTS = 32,
  /** Byte offset of the first statistic: REASON_SLOTS * 8. */
  STAT_BASE = 256,
  /** Bytes of the whole area: (REASON_SLOTS + STAT_SLOTS) * 8. */
  BYTES = 512,
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
  COUNT = 13,
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
