// Software GSO toward PIAS-aware targets. A TUN with offloads hands the core
// GSO super-packets (up to 64 KiB behind a virtio_net_hdr, Link.VNET). NATed
// to a legacy target a super-packet stays whole and the kernel segments it;
// but IP-in-IP has no virtio GSO type, so a super-packet to an aware target
// is cut here, as the kernel's tcp/udp GSO would cut it, and each segment is
// tunnelled on its own:
//   - payload split by gso_size; IPv4 total length and identification (id + i),
//     IPv6 payload length; TCP sequence (+ i * gso_size), FIN/PSH on the last
//     segment only, CWR on the first only; UDP length;
//   - a partial transport checksum (NEEDS_CSUM) stays partial: each segment's
//     field holds its own pseudo-header sum and its virtio_net_hdr points at
//     it behind the outer header; a full one is computed per segment.
//
// Segments are written into the segment area the host registered
// (gso_area: spare descriptors and an arena), in order. From the first
// segmented super-packet of a batch on, every later forwarded packet of the
// batch moves to the area as well (its descriptor only; its bytes stay), so
// the host, which sends the batch and then the area, sends everything in
// batch order. A moved descriptor is left as an empty slot (Drop, reason None).
//
// Never allocates; never writes outside the arena and the descriptors it was
// given: a super-packet that does not fit is not touched (the caller drops
// it as gso-no-room).

import { Desc, Layout, Verdict, VnetGso } from "../shared/abi";
import { ld16, ld32, ld8, raw16, st16, st32, st8 } from "../wire/bytes";
import { finish, fold, pseudo4, pseudo6, sumBytes } from "../wire/checksum";
import { PROTO_TCP, V4_CSUM, V4_ID, V4_TOTAL_LEN, V6_PAYLOAD_LEN } from "../wire/ip";
import { TCP_CSUM, TCP_DATA_OFF, TCP_FLAGS, TCP_FIN, UDP_CSUM, UDP_HEADER, UDP_LEN } from "../wire/l4";
import { clearVnet, setVnetPartial } from "../wire/vnet";
import { encapsulateAt, outerHeaderLen } from "./tunnel";
import { Packet } from "../packet";

const TCP_PSH: u32 = 0x08;
const TCP_CWR: u32 = 0x80;
const TCP_SEQ: u32 = 4;

// The registered area: descriptors at areaDesc (areaMax of them) and the arena.
let areaDesc: usize = 0;
let areaMax: u32 = 0;
let arena: usize = 0;
let arenaEnd: usize = 0;
// This batch: descriptors used, the arena's next free byte, and whether order
// now requires every forwarded packet to move.
let emitted: u32 = 0;
let cursor: usize = 0;
let spilling: bool = false;

/**
 * Exported: register the segment area: `maxDesc` descriptors at `desc` and
 * `arenaBytes` bytes at `arenaPtr` (0, 0, 0, 0: none; super-packets to aware
 * targets are then dropped as gso-no-room). The host allocates both
 * (alloc_buffer) and, after each process_batch, sends the gso_emitted()
 * descriptors at `desc` after the batch's own.
 */
export function gso_area(desc: usize, maxDesc: u32, arenaPtr: usize, arenaBytes: u32): void {
  areaDesc = desc;
  areaMax = desc == 0 ? 0 : maxDesc;
  arena = arenaPtr;
  arenaEnd = arenaPtr + <usize>arenaBytes;
  gsoBatchStart();
}

/** Exported: descriptors the last process_batch put into the segment area (all Forward), in wire order after the batch. */
export function gso_emitted(): u32 {
  return emitted;
}

/** A new batch: the area starts empty. */
export function gsoBatchStart(): void {
  emitted = 0;
  cursor = arena;
  spilling = false;
}

/** True once a super-packet of this batch was segmented: forwarded packets after it must move to keep their order. */
@inline export function gsoSpilling(): bool {
  return spilling;
}

/** Move the forwarded descriptor d to the end of the area (no room left: it stays, and goes out ahead of the segments). */
export function gsoMove(d: usize): void {
  if (emitted >= areaMax) return;
  memory.copy(areaDesc + <usize>emitted * Layout.DESC_SIZE, d, Layout.DESC_SIZE);
  emitted++;
  emptySlot(d);
}

@inline function emptySlot(d: usize): void {
  store<u8>(d + Desc.VERDICT, <u8>Verdict.Drop);
  store<u8>(d + Desc.REASON, 0);
}

/** Bytes of the transport header of a super-packet (TCP with options, or UDP). */
@inline function l4HeaderLen(pkt: Packet): u32 {
  return pkt.proto == PROTO_TCP ? (ld8(pkt.l4 + TCP_DATA_OFF) >> 4) << 2 : UDP_HEADER;
}

/** Payload bytes behind the headers of the super-packet. */
@inline function payloadLen(pkt: Packet): u32 {
  return pkt.ipTotal - pkt.ipHdrLen - l4HeaderLen(pkt);
}

/** IP length of the largest segment the super-packet makes (its first). */
export function firstSegmentLen(pkt: Packet): u32 {
  let p = payloadLen(pkt);
  return pkt.ipTotal - p + (p < pkt.gsoSize ? p : pkt.gsoSize);
}

/**
 * Segment the super-packet `pkt` (descriptor d) and tunnel each segment from
 * `src` to `dst` (addresses of its family; `entropy` seeds IPv6 flow labels):
 * the segments go into the area as descriptors copied from d with verdict
 * Forward and AUX `aux`, and d is left empty. Returns how many segments, or 0
 * when the area has no room (then nothing was written).
 */
export function segmentEncapsulate(pkt: Packet, d: usize, src: usize, dst: usize, entropy: u32, aux: u32): u32 {
  let family = pkt.family;
  let outer = outerHeaderLen(family);
  let l2 = pkt.linkLen;
  let ipHl = pkt.ipHdrLen;
  let l4Hl = l4HeaderLen(pkt);
  let hdrs = ipHl + l4Hl;
  let payload = pkt.ipTotal - hdrs;
  let g = pkt.gsoSize;
  let k: u32 = payload == 0 ? 1 : (payload + g - 1) / g;
  // each segment: room for the outer header, the link header, the headers, its payload (8-byte aligned)
  let perSeg = (<usize>(outer + l2 + hdrs + g) + 7) & ~(<usize>7);
  let lastLen = payload - (k - 1) * g;
  if (emitted + k > areaMax || cursor + <usize>(k - 1) * perSeg + <usize>(outer + l2 + hdrs + lastLen) > arenaEnd) return 0;

  let tcp = pkt.proto == PROTO_TCP;
  let partial = pkt.partial;
  let ip = pkt.l3;
  let l4 = pkt.l4;
  let data = l4 + l4Hl;
  let id = family == 4 ? ld16(ip + V4_ID) : 0;
  let seq = tcp ? ld32(l4 + TCP_SEQ) : 0;
  let flags = tcp ? ld8(l4 + TCP_FLAGS) : 0;
  let csumField: u32 = tcp ? TCP_CSUM : UDP_CSUM;
  let udpNoCsum = !tcp && !partial && raw16(l4 + UDP_CSUM) == 0;
  for (let i: u32 = 0; i < k; i++) {
    let c = i + 1 < k ? g : lastLen;
    let seg = cursor + outer; // the segment's link header; the outer header goes in front
    memory.copy(seg, pkt.vnet, l2 + hdrs);
    memory.copy(seg + l2 + hdrs, data + <usize>i * g, c);
    let sip = seg + l2;
    let sl4 = sip + ipHl;
    let l4Len = l4Hl + c;
    if (family == 4) {
      st16(sip + V4_TOTAL_LEN, hdrs + c);
      st16(sip + V4_ID, (id + i) & 0xffff);
      store<u16>(sip + V4_CSUM, 0);
      store<u16>(sip + V4_CSUM, <u16>finish(sumBytes(sip, ipHl, 0)));
    } else {
      st16(sip + V6_PAYLOAD_LEN, ipHl - 40 + l4Len);
    }
    if (tcp) {
      st32(sl4 + TCP_SEQ, seq + i * g);
      let f = flags;
      if (i + 1 < k) f &= ~(TCP_FIN | TCP_PSH);
      if (i > 0) f &= ~TCP_CWR;
      st8(sl4 + TCP_FLAGS, f);
    } else {
      st16(sl4 + UDP_LEN, l4Len);
    }
    let pseudo = family == 4 ? pseudo4(sip, pkt.proto, l4Len) : pseudo6(sip, pkt.proto, l4Len);
    if (partial) {
      store<u16>(sl4 + csumField, <u16>fold(pseudo)); // the pseudo-header's sum: the rest is the kernel's to add
      setVnetPartial(seg, outer + ipHl, csumField);
    } else {
      if (!udpNoCsum) {
        store<u16>(sl4 + csumField, 0);
        let sum = finish(sumBytes(sl4, l4Len, pseudo));
        store<u16>(sl4 + csumField, <u16>(sum == 0 && !tcp ? 0xffff : sum));
      }
      clearVnet(seg);
    }
    let off = encapsulateAt(seg, l2, family, sip, hdrs + c, src, dst, entropy);
    let s = areaDesc + <usize>emitted * Layout.DESC_SIZE;
    memory.copy(s, d, Layout.DESC_SIZE);
    let len = l2 + outer + hdrs + c;
    store<u32>(s + Desc.OFF, <u32>off);
    store<u32>(s + Desc.LEN, len);
    store<u32>(s + Desc.WIRELEN, len);
    store<u8>(s + Desc.VERDICT, <u8>Verdict.Forward);
    store<u8>(s + Desc.REASON, 0);
    store<u16>(s + Desc.AUX, <u16>aux);
    emitted++;
    cursor += perSeg;
  }
  emptySlot(d);
  spilling = true;
  return k;
}

/** True when `pkt` is a GSO super-packet (Link.VNET with a GSO type). */
@inline export function isSuperPacket(pkt: Packet): bool {
  return pkt.gsoType != VnetGso.None;
}
