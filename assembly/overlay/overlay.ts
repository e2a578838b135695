// The overlay stage (README "Reaching an overlay", paper §6.2): what the
// pipeline does with a packet that belongs to the overlay.
//
// - UDP to this node's address and the overlay port: an overlay frame. Open
//   it (shape, tag, time), take the inner packet out, and by kind:
//   client data   NAT C:c -> R:r to A:p from this node's blocks, send it to
//                 R through the remote node cached for R, or directly;
//   reply         (from the remote node N) reverse-NAT R:r -> A:p to C:c,
//                 send it down the client's tunnel, cache "R through N"; with
//                 no binding here, hand it once to the block's runner-up
//                 (its owner before a node joined and took it);
//   send-out      (from the owner) send the NATed packet on to R from A:p.
// - Anything else to an address of the overlay's prefixes: a reply from a
//   remote host R to a TA A:p. This node owns the TA (or still holds its
//   binding from before a join): it is the reply stage above with "R
//   directly"; another node owns it: tunnel it there, tagged with this
//   node's address.
//
// Every drop has a Reason. The pipeline calls overlayPacket() for every
// parsed IPv4 packet with a transport header; it returns false for packets
// that are not the overlay's. No allocation, no I/O.

import { AuxFlag, Desc, OverlayFlag, OverlayFrame, OverlayKind, OverlayStat, Reason, Stat, Verdict } from "../shared/abi";
import { ld16, raw32 } from "../wire/bytes";
import { PROTO_TCP, PROTO_UDP, V4_DF, V4_FLAGS_FRAG } from "../wire/ip";
import { TCP_ACK, TCP_RST, TCP_SYN, UDP_HEADER, UDP_LEN } from "../wire/l4";
import { Packet } from "../packet";
import { bump, countDrop } from "../counters";
import { hasProxy, isProxyAddr, proxy4, tunnelMtu } from "../settings";
import { rewrite } from "../rewrite/nat";
import { packetTooBig } from "../rewrite/icmp-gen";
import { scratch } from "../settings";
import { frameFlags, frameKind, frameSender, open, setKeys, setWindow } from "./frame";
import { unwrap, wrap } from "./tunnel";
import { blockOf, inSpace, isLiveNode, nodeAddress, nodeIndexOf, NO_NODE, ownerOf, partitionInit, runnerUpOf, selfIndex } from "./partition";
import {
  bindingCreate, bindingPtr, bindingsExpireAll, bindingsInit, bindingsLive, bindingsSweep, bindingTouch, findForward, findReverse,
  forwardHash, O_A, O_AP, O_CIN, O_COP, O_COUT, O_CP,
} from "./flows";
import { destinationNode, destinationsInit, noteDestination, setCacheSeconds } from "./destinations";
import { bumpStat } from "./stats";

/** True once overlay_configure() ran: the pipeline then calls overlayPacket(). */
export let overlayOn = false;
let portRaw: u32 = 0;

// ---- exported control calls ----

/** Exported: reserve the overlay's tables (bindings, destinations, partition blocks). 0, or -1 when memory cannot grow. */
export function overlay_init(flows: u32, destinations: u32, blocks: u32): i32 {
  return bindingsInit(flows) && destinationsInit(destinations) && partitionInit(blocks) ? 0 : -1;
}

/** Exported: turn the overlay on: its UDP port, time window and cache lifetime (seconds), keys from the scratch area (client key, node key: 16 bytes each). */
export function overlay_configure(port: u32, window: u32, cache: u32): void {
  portRaw = <u32>bswap<u16>(<u16>port);
  setWindow(window);
  setCacheSeconds(cache);
  setKeys(scratch);
  overlayOn = true;
}

export function overlay_flows_live(): u32 {
  return bindingsLive();
}

export function overlay_expire_all(now: u32): u32 {
  return bindingsExpireAll(now);
}

// ---- the stage ----

@inline function finish(d: usize, r: Reason, aux: u32): void {
  if (r == Reason.None) {
    store<u8>(d + Desc.VERDICT, <u8>Verdict.Forward);
    store<u16>(d + Desc.AUX, <u16>aux);
    bump(Stat.Forwarded);
    return;
  }
  store<u8>(d + Desc.VERDICT, <u8>Verdict.Drop);
  store<u8>(d + Desc.REASON, <u8>r);
  countDrop(r);
  bump(Stat.Dropped);
}

/** TCP or UDP with its whole datagram here: what the overlay carries. */
@inline function carried(pkt: Packet): bool {
  return (pkt.proto == PROTO_TCP || pkt.proto == PROTO_UDP) && !pkt.isFragment && !pkt.truncated;
}

/** UDP source port of a node-to-node frame: from the inner tuple, so paths between two nodes spread over ECMP. */
@inline function entropyPort(pkt: Packet): u32 {
  let h = raw32(pkt.src()) ^ raw32(pkt.dst()) ^ pkt.sport ^ (pkt.dport << 16);
  h ^= h >> 15;
  return <u32>bswap<u16>(<u16>(0xc000 | (h & 0x3fff)));
}

/**
 * The packet would not fit a frame (with DF): dropped, and "fragmentation
 * needed" with the MTU left inside the overlay goes to its sender instead.
 */
function tooBig(pkt: Packet, d: usize, aux: u32): bool {
  if (pkt.ipTotal + <u32>OverlayFrame.OVERHEAD <= tunnelMtu || (ld16(pkt.l3 + V4_FLAGS_FRAG) & V4_DF) == 0) return false;
  countDrop(Reason.PacketTooBig);
  bump(Stat.Dropped);
  if (!packetTooBig(pkt, d, <u32>load<u16>(d + Desc.LINK), OverlayFrame.OVERHEAD)) {
    store<u8>(d + Desc.REASON, <u8>Reason.PacketTooBig);
    return true;
  }
  bump(Stat.IcmpGenerated);
  store<u8>(d + Desc.VERDICT, <u8>Verdict.Forward);
  store<u16>(d + Desc.AUX, <u16>(aux | AuxFlag.Generated));
  return true;
}

/**
 * Called by the pipeline for a parsed IPv4 packet with a transport header:
 * handles it and returns true when it is the overlay's.
 */
export function overlayPacket(pkt: Packet, d: usize, aux: u32, now: u32): bool {
  let dst = pkt.dst();
  if (pkt.proto == PROTO_UDP && pkt.dport == portRaw && isProxyAddr(4, dst)) {
    bindingsSweep(now);
    fromTunnel(pkt, d, aux, now);
    return true;
  }
  if (!inSpace(raw32(dst))) return false;
  bindingsSweep(now);
  toTa(pkt, d, aux, now);
  return true;
}

/** A frame to this node. */
function fromTunnel(pkt: Packet, d: usize, aux: u32, now: u32): void {
  if (pkt.isFragment || pkt.truncated) { finish(d, Reason.OverlayUnsupported, 0); return; }
  let hdr = pkt.l4 + UDP_HEADER;
  let len = ld16(pkt.l4 + UDP_LEN) - UDP_HEADER;
  let r = open(hdr, len, now);
  if (r != Reason.None) { finish(d, r, 0); return; }
  let kind = frameKind(hdr);
  let handedOver = (frameFlags(hdr) & OverlayFlag.HandedOver) != 0;
  let from: i32 = -1;
  if (kind != OverlayKind.ClientData) {
    from = nodeIndexOf(frameSender(hdr));
    if (from < 0 || !isLiveNode(<u32>from) || <u32>from == selfIndex) { finish(d, Reason.OverlayFromStranger, 0); return; }
  }
  let cout = raw32(pkt.src());
  let cop = pkt.sport;
  r = unwrap(pkt, d);
  if (r != Reason.None) { finish(d, r, 0); return; }
  if (!carried(pkt)) { finish(d, Reason.OverlayUnsupported, 0); return; }
  aux |= AuxFlag.Decapsulated;
  if (kind == OverlayKind.ClientData) fromClient(pkt, d, aux, cout, cop, now);
  else if (kind == OverlayKind.Reply) reply(pkt, d, aux, <u32>from, now, handedOver);
  else sendOut(pkt, d, aux);
}

/** A client's packet C:c -> R:r, out of its tunnel. */
function fromClient(pkt: Packet, d: usize, aux: u32, cout: u32, cop: u32, now: u32): void {
  let c = raw32(pkt.src());
  let r = raw32(pkt.dst());
  // never back into the overlay or to this node: a loop, not a destination
  if (inSpace(r) || isProxyAddr(4, pkt.dst())) { finish(d, Reason.OverlayUnsupported, 0); return; }
  let proto = pkt.proto;
  let h = forwardHash(c, pkt.sport, r, pkt.dport, proto, cout, cop);
  let found = findForward(h, c, pkt.sport, r, pkt.dport, proto, cout, cop, now);
  if (found < 0) {
    if (proto == PROTO_TCP && (pkt.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN) { finish(d, Reason.NoFlow, 0); return; }
    found = bindingCreate(h, c, pkt.sport, r, pkt.dport, proto, cout, cop, now);
    if (found < 0) { finish(d, <Reason>(<i32>-found), 0); return; }
  }
  let rec = bindingPtr(<u32>found);
  bindingTouch(rec, pkt.tcpFlags, true, now);
  rewrite(pkt, rec + O_A, <u32>load<u16>(rec + O_AP), pkt.dst(), pkt.dport);
  bumpStat(OverlayStat.FromClient);
  let via = destinationNode(r, now);
  if (via >= 0 && <u32>via != selfIndex && isLiveNode(<u32>via)) {
    wrap(pkt, d, OverlayKind.SendOut, proxy4, entropyPort(pkt), nodeAddress(<u32>via), portRaw, proxy4, now);
    bumpStat(OverlayStat.ViaRemote);
    finish(d, Reason.None, aux | AuxFlag.Encapsulated | AuxFlag.ToTarget);
    return;
  }
  bumpStat(OverlayStat.Direct);
  finish(d, Reason.None, aux | AuxFlag.ToTarget);
}

@inline function findReply(pkt: Packet, now: u32): i64 {
  return findReverse(raw32(pkt.src()), pkt.sport, raw32(pkt.dst()), pkt.dport, pkt.proto, now);
}

/**
 * A reply R:r -> A:p for a TA of this node's blocks, having entered the
 * overlay at node `via` (this node itself when it came straight here).
 */
function reply(pkt: Packet, d: usize, aux: u32, via: u32, now: u32, handedOver: bool): void {
  let found = findReply(pkt, now);
  if (found >= 0) { deliver(pkt, d, aux, <u32>found, via, now); return; }
  if (!handedOver && handOver(pkt, d, aux, via, now)) return;
  finish(d, Reason.OverlayNoBinding, 0);
}

/**
 * No binding here for a reply to one of this node's TAs: a node that joined
 * took its block, and the binding is at the block's previous owner, now its
 * runner-up. Hand it there once (flagged, so it is never handed on), naming
 * the node it entered at, whose cache entry the binding's node then learns.
 */
function handOver(pkt: Packet, d: usize, aux: u32, via: u32, now: u32): bool {
  let block = blockOf(raw32(pkt.dst()), pkt.dport);
  if (block < 0) return false;
  let prev = runnerUpOf(<u32>block);
  if (prev == NO_NODE || prev == selfIndex || prev == via || !isLiveNode(prev)) return false;
  if (tooBig(pkt, d, aux)) return true;
  wrap(pkt, d, OverlayKind.Reply, proxy4, entropyPort(pkt), nodeAddress(prev), portRaw, nodeAddress(via), now, OverlayFlag.HandedOver);
  bumpStat(OverlayStat.HandedOver);
  finish(d, Reason.None, aux | AuxFlag.Encapsulated);
  return true;
}

/** A reply at the node holding its binding `found`: down the client's tunnel, and "R through `via`" cached. */
function deliver(pkt: Packet, d: usize, aux: u32, found: u32, via: u32, now: u32): void {
  if (tooBig(pkt, d, aux)) return;
  let rec = bindingPtr(found);
  bindingTouch(rec, pkt.tcpFlags, false, now);
  noteDestination(raw32(pkt.src()), via, now);
  bumpStat(via == selfIndex ? OverlayStat.RepliesDirect : OverlayStat.RepliesViaNode);
  rewrite(pkt, pkt.src(), pkt.sport, rec + O_CIN, <u32>load<u16>(rec + O_CP));
  wrap(pkt, d, OverlayKind.ClientReturn, proxy4, portRaw, load<u32>(rec + O_COUT), <u32>load<u16>(rec + O_COP), 0, now);
  bumpStat(OverlayStat.ToClient);
  finish(d, Reason.None, aux | AuxFlag.Encapsulated);
}

/** The owner asks this node to send a NATed packet A:p -> R:r on from here. */
function sendOut(pkt: Packet, d: usize, aux: u32): void {
  if (!inSpace(raw32(pkt.src()))) { finish(d, Reason.OverlayMalformed, 0); return; }
  bumpStat(OverlayStat.SentOut);
  finish(d, Reason.None, aux | AuxFlag.ToTarget);
}

/** A packet to an overlay TA that entered here: a remote host's reply. */
function toTa(pkt: Packet, d: usize, aux: u32, now: u32): void {
  if (!carried(pkt)) { finish(d, Reason.OverlayUnsupported, 0); return; }
  let block = blockOf(raw32(pkt.dst()), pkt.dport);
  let owner = block < 0 ? NO_NODE : ownerOf(<u32>block);
  if (owner == selfIndex) { reply(pkt, d, aux, selfIndex, now, false); return; }
  // a binding made here before a node joined and took the block still answers here
  let found = findReply(pkt, now);
  if (found >= 0) { deliver(pkt, d, aux, <u32>found, selfIndex, now); return; }
  if (owner == NO_NODE || !isLiveNode(owner) || !hasProxy(4)) { finish(d, Reason.OverlayNoBinding, 0); return; }
  if (tooBig(pkt, d, aux)) return;
  wrap(pkt, d, OverlayKind.Reply, proxy4, entropyPort(pkt), nodeAddress(owner), portRaw, proxy4, now);
  bumpStat(OverlayStat.RelayedToOwner);
  finish(d, Reason.None, aux | AuxFlag.Encapsulated);
}
