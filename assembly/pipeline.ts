// The per-batch pipeline: parse -> (decapsulate) -> classify -> flow lookup or
// create (select a target) -> rewrite or encapsulate -> verdict.
//
// One call handles a whole batch of descriptors (assembly/shared/abi.ts). The
// host never sees a packet the core could handle. Every drop has a Reason and
// a counter. Nothing is allocated.
//
// Each packet is parsed into one Packet record (packet.ts) that is then passed
// to every stage as `pkt`: what a stage knows of the packet comes through its
// arguments, and what it computed comes back as its return value.
//
// Before it, the batch prefetch (flow/prefetch.ts) classifies and hashes
// every packet and touches what their lookups will read; a common-shape
// packet of a live flow, or of a new flow whose target the prefetch picked,
// then takes the fast path (fastpath.ts) and never reaches processOne.

import { AuxFlag, Desc, HostWork, Layout, Policy, Reason, Stage, Stat, Verdict, Vnet, VnetFlag } from "./shared/abi";
import { stopAfter, stopsBefore } from "./stages";
import { controlPortRaw, inAnycastPrefix, isPeer, peersKnown, takeUnresolved, unresolvedToHost } from "./peers";
import { ld16, raw16, raw32 } from "./wire/bytes";
import { applyAt, applyUdpAt, finish, sumBytes, verifies, pseudo4, pseudo6 } from "./wire/checksum";
import { PROTO_IPIP, PROTO_IPV6, PROTO_TCP, PROTO_UDP } from "./wire/ip";
import { vnetCsumOffset, vnetCsumStart, vnetFlags } from "./wire/vnet";
import { isEchoReply, isEchoRequest, TCP_ACK, TCP_RST, TCP_SYN, UDP_CSUM, TCP_CSUM, ICMP_CSUM } from "./wire/l4";
import { Packet, PACKET } from "./packet";
import { parsePacket } from "./parse";
import { bump, countDrop } from "./counters";
import { accept, drop, toHost } from "./verdict";
import { fastPath, newFlowPath } from "./fastpath";
import { foreignPort, isProxyAddr, proxyAddrPtr, verifyChecksums } from "./settings";
import {
  flowCreate, flowStale, flowFree, flowLookup, flowLookupHashed, flowPtr, flowRepin, flowsBuildPorts, flowsSweep, targetPortRaw, trackTcp,
  DIR_REVERSE, F_CADDR, F_CPORT, F_GPORT, F_GROUP, F_TARGET, F_NPORT, F_FLAGS, F_LAST, F_HFWD,
  FF_AWARE, FF_ESTABLISHED, FF_USED,
} from "./flow/flows";
import {
  fragmentFind, fragmentFlow, fragmentFlowCheck, fragmentOwe, fragmentOwedAt, fragmentOwedDelta, fragmentRemember,
} from "./flow/fragments";
import { prefetchChunk, prefetchedAbsent, CHUNK, prefetchedGroup, prefetchedHash, prefetchedShape, prefetchedTarget } from "./flow/prefetch";
import {
  groupLookup, groupPtr, targetPtr, targetUsable, G_ADDR, G_POLICY, G_FLAGS, G_USABLE, GF_PENDING, T_ADDR, T_PACKETS,
} from "./group/groups";
import { selectTarget } from "./group/select";
import { rewrite, rewriteAddresses } from "./rewrite/nat";
import { decapsulate, encapsulate } from "./rewrite/tunnel";
import { packetTooBig, tooBigForTunnel, tunnelOverhead } from "./rewrite/icmp-gen";
import { firstSegmentLen, gsoBatchStart, gsoMove, gsoSpilling, isSuperPacket, segmentEncapsulate } from "./rewrite/gso";
import { parseQuote, translateError, Quote, QUOTE } from "./rewrite/icmp-error";
import { flowHash } from "./hash";
import { overlayOn, overlayPacket } from "./overlay/overlay";

/**
 * Exported: process `n` descriptors at `desc`. A descriptor whose OFF is 0 is
 * an empty slot and is skipped. Descriptors arriving with AUX = Reflected are
 * replies synthesised by reflect_batch() and are counted apart. Returns how
 * many packets of the batch got a ToHost verdict (the host looks for them
 * only when there are some). The batch runs in chunks of CHUNK packets: the
 * prefetch pass over a chunk (flow/prefetch.ts), then its packets in order.
 */
export function process_batch(desc: usize, n: u32): u32 {
  gsoBatchStart();
  let now: u32 = 0;
  let any = false;
  let toHost: u32 = 0;
  let pkt = PACKET;
  for (let start: u32 = 0; start < n; start += CHUNK) {
    let m = n - start < CHUNK ? n - start : CHUNK;
    let dc = desc + <usize>start * Layout.DESC_SIZE;
    prefetchChunk(dc, m);
    for (let i: u32 = 0; i < m; i++) {
      let d = dc + (<usize>i * Layout.DESC_SIZE);
      if (load<u32>(d + Desc.OFF) == 0) continue;
      now = load<u32>(d + Desc.TIME);
      any = true;
      if (!(prefetchedAbsent(i) ? newFlowPath(d, i, now) : fastPath(d, i, now))) processOne(pkt, d, now, i);
      let v = load<u8>(d + Desc.VERDICT);
      if (v == <u8>Verdict.ToHost) toHost++;
      else if (v == <u8>Verdict.Forward && gsoSpilling()) gsoMove(d); // after segments, in batch order (rewrite/gso.ts)
    }
  }
  if (any && !stopsBefore(Stage.Verdict)) flowsSweep(now); // the clock is the packets' own: no packet, no time, no sweep
  if (any) flowsBuildPorts(n); // (the bench build's stops too: what they measure is the built state)
  return toHost;
}

/** Packet `d`, the i-th of its chunk (for the prefetch's hints). */
function processOne(pkt: Packet, d: usize, now: u32, i: u32): void {
  let off = <usize>load<u32>(d + Desc.OFF);
  let len = load<u32>(d + Desc.LEN);
  let wirelen = load<u32>(d + Desc.WIRELEN);
  let aux: u32 = <u32>load<u16>(d + Desc.AUX) & AuxFlag.Reflected;
  store<u8>(d + Desc.VERDICT, <u8>Verdict.Drop);
  store<u8>(d + Desc.REASON, 0);
  store<u16>(d + Desc.AUX, <u16>aux);
  if (aux == 0) {
    bump(Stat.Packets);
    bump(Stat.Bytes, <u64>(wirelen > len ? wirelen : len));
  }
  let r = parsePacket(pkt, <u32>load<u16>(d + Desc.LINK), off, len, wirelen, prefetchedShape(i));
  if (r != Reason.None) { drop(d, r); return; }
  if (pkt.vnet != 0) vnetArrived(pkt);
  if (stopAfter(Stage.Parse)) return;

  // IP-in-IP addressed to this proxy: take the inner packet (once; no nesting).
  if ((pkt.proto == PROTO_IPIP || pkt.proto == PROTO_IPV6) && isProxyAddr(pkt.family, pkt.dst())) {
    // once the proxy knows its peers, only they may tunnel to it
    if (peersKnown() && !isPeer(pkt.family, pkt.src())) { drop(d, Reason.TunnelFromStranger); return; }
    r = decapsulate(pkt, d);
    if (r != Reason.None) { drop(d, r); return; }
    aux |= AuxFlag.Decapsulated;
    bump(Stat.Decapsulated);
  }
  if (verifyChecksums) {
    r = verify(pkt);
    if (r != Reason.None) { drop(d, r); return; }
  }
  if (!pkt.hasL4Header) { laterFragment(pkt, d, aux, now); return; }
  if (overlayOn && pkt.family == 4 && overlayPacket(pkt, d, aux, now)) return;

  let family = pkt.family;
  let proto = pkt.proto;
  let src = pkt.src();
  let dst = pkt.dst();
  let icmp = pkt.isIcmp();
  if (proto == PROTO_UDP && controlPortRaw != 0 && pkt.dport == controlPortRaw && (isProxyAddr(family, dst) || inAnycastPrefix(family, dst))) {
    toHost(d, HostWork.Control, aux);
    return;
  }
  if (icmp) {
    if (pkt.icmpError) { icmpError(pkt, QUOTE, d, aux, now); return; }
    if (!isEchoRequest(family, pkt.icmpType) && !isEchoReply(family, pkt.icmpType)) { drop(d, Reason.IcmpUnsupported); return; }
  } else if (proto != PROTO_TCP && proto != PROTO_UDP) {
    drop(d, Reason.NotForProxy);
    return;
  }

  // the prefetch hashed the same tuple (and found the group and target of a new flow), unless the packet was decapsulated since
  let prefetched = (aux & AuxFlag.Decapsulated) == 0;
  let hint = prefetched ? prefetchedHash(i) : -1;
  let h = hint >= 0 ? <u32>hint : flowHash(family, src, dst, pkt.sport, pkt.dport, proto);
  let ref = flowLookupHashed(h, family, proto, src, dst, pkt.sport, pkt.dport);
  if (ref >= 0 && flowStale(flowPtr(<u32>ref >> 1), now)) {
    flowFree(<u32>ref >> 1);
    ref = flowLookupHashed(h, family, proto, src, dst, pkt.sport, pkt.dport);
  }
  // a live flow has no selection or creation: it stops here until the rewrite stage
  if (stopAfter(Stage.FlowLookup) || (ref >= 0 && stopsBefore(Stage.Rewrite))) return;
  if (ref >= 0) {
    let idx = <u32>ref >> 1;
    if ((<u32>ref & DIR_REVERSE) != 0) reverse(pkt, d, idx, aux, now);
    else forward(pkt, d, idx, aux, now);
    return;
  }

  // A new flow: only toward a group, never to the proxy's own address (there: a reply whose binding is gone).
  if (isProxyAddr(family, dst)) {
    if (foreignPort(<u32>bswap<u16>(<u16>pkt.dport))) bump(Stat.WrongWorker);
    drop(d, Reason.NoBinding);
    return;
  }
  if (icmp && !isEchoRequest(family, pkt.icmpType)) { drop(d, Reason.NotForProxy); return; }
  let gidRes = prefetched ? prefetchedGroup(i) : -1;
  if (gidRes < 0) gidRes = groupLookup(family, proto, dst, icmp ? 0 : pkt.dport);
  if (gidRes < 0) {
    // an address the proxies serve: the group may exist elsewhere; the host asks its rendezvous proxy
    if (!inAnycastPrefix(family, dst)) drop(d, Reason.NotForProxy);
    else if (!unresolvedToHost) drop(d, Reason.NoGroup);
    else toHostToResolve(d, aux, now);
    return;
  }
  let gid = <u32>gidRes;
  let g = groupPtr(gid);
  if ((<u32>load<u8>(g + G_FLAGS) & GF_PENDING) != 0 && load<u32>(g + G_USABLE) == 0) {
    toHostToResolve(d, aux, now);
    return;
  }
  if (proto == PROTO_TCP && (pkt.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN &&
    <u32>load<u8>(g + G_POLICY) != Policy.Affinity) {
    // Mid-connection without state: only affinity can find the target another proxy chose.
    drop(d, Reason.NoFlow);
    return;
  }
  let tid = prefetched ? prefetchedTarget(i) : -1;
  if (tid < 0) tid = selectTarget(gid, family, src, dst, pkt.sport, pkt.dport, proto);
  if (tid < 0) { drop(d, Reason.NoTarget); return; }
  if (stopAfter(Stage.Select)) return;
  let syn = proto == PROTO_TCP && (pkt.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
  let created = flowCreate(family, proto, src, pkt.sport, pkt.dport, gid, <u32>tid, h, now, syn);
  if (created < 0) { drop(d, <Reason>(<i32>-created)); return; }
  if (stopAfter(Stage.Create)) return;
  let rec = flowPtr(<u32>created);
  if (proto == PROTO_TCP && (pkt.tcpFlags & TCP_SYN) == 0) {
    // picked up mid-connection (affinity): it was established elsewhere
    store<u8>(rec + F_FLAGS, <u8>(<u32>load<u8>(rec + F_FLAGS) | FF_ESTABLISHED));
  }
  forward(pkt, d, <u32>created, aux, now);
}

/** A packet for the host to resolve its group, within the host's budget per second (else resolve-throttled). */
function toHostToResolve(d: usize, aux: u32, now: u32): void {
  if (takeUnresolved(now)) toHost(d, HostWork.Unresolved, aux);
  else drop(d, Reason.ResolveThrottled);
}

/**
 * A packet behind a virtio_net_hdr (Link.VNET), checked by the parser: what
 * the header said on the way in is settled here. DATA_VALID means nothing on
 * the way out; a partial checksum other than TCP's or UDP's (which stay
 * partial through NAT and tunnels) is completed now, as the kernel's
 * skb_checksum_help would, so the ICMP and tunnel paths see whole packets.
 */
function vnetArrived(pkt: Packet): void {
  let h = pkt.vnet;
  let flags = vnetFlags(h);
  if ((flags & VnetFlag.NeedsCsum) != 0 && !pkt.partial) {
    let start = pkt.l3 + <usize>vnetCsumStart(h);
    let field = start + <usize>vnetCsumOffset(h);
    let c = finish(sumBytes(start, pkt.ipEnd - start, 0)); // the field holds the sum to start from
    store<u16>(field, <u16>(c == 0 ? 0xffff : c));
    flags &= ~(<u32>VnetFlag.NeedsCsum);
  }
  store<u8>(h + Vnet.FLAGS, <u8>(flags & ~(<u32>VnetFlag.DataValid)));
  if (isSuperPacket(pkt)) bump(Stat.SuperPackets);
}

/**
 * The packet does not fit the tunnel: it is dropped (counted as
 * packet-too-big) and an ICMP error telling the sender the MTU goes out in
 * its place.
 */
function tooBig(pkt: Packet, d: usize, aux: u32): void {
  countDrop(Reason.PacketTooBig);
  bump(Stat.Dropped);
  if (!packetTooBig(pkt, d, <u32>load<u16>(d + Desc.LINK))) {
    store<u8>(d + Desc.REASON, <u8>Reason.PacketTooBig);
    return;
  }
  bump(Stat.IcmpGenerated);
  store<u8>(d + Desc.VERDICT, <u8>Verdict.Forward);
  store<u16>(d + Desc.AUX, <u16>(aux | AuxFlag.Generated));
}

/** Client -> TA packet of a known flow: NAT or tunnel it to the flow's target. */
function forward(pkt: Packet, d: usize, idx: u32, aux: u32, now: u32): void {
  let rec = flowPtr(idx);
  let tid = load<u32>(rec + F_TARGET);
  let family = pkt.family;
  if (!targetUsable(tid)) {
    // TCP state lives in the target: never move a connection mid-stream.
    if (pkt.proto == PROTO_TCP) { drop(d, Reason.TargetDown); return; }
    let n = selectTarget(load<u32>(rec + F_GROUP), family, pkt.src(), pkt.dst(), pkt.sport, pkt.dport, pkt.proto);
    if (n < 0) { drop(d, Reason.NoTarget); return; }
    if (!flowRepin(idx, <u32>n, now)) { drop(d, Reason.NatPortsExhausted); return; }
    tid = <u32>n;
  }
  let frag: i64 = -1;
  if (pkt.isFragment) {
    // later fragments will come with these (original) addresses
    frag = fragmentRemember(family, pkt.src(), pkt.dst(), pkt.fragProto, pkt.fragId, idx << 1, load<u32>(rec + F_HFWD), now);
    if (frag < 0) { drop(d, Reason.FragmentTableFull); return; }
  }
  store<u32>(rec + F_LAST, now);
  if (pkt.proto == PROTO_TCP) trackTcp(rec, pkt.tcpFlags, false);
  let t = targetPtr(tid);
  if (toAwareTarget(pkt, d, rec, t, aux)) return;
  countTargetPacket(t);
  let tport = pkt.isIcmp() ? 0 : targetPortRaw(rec);
  let dl4 = rewrite(pkt, proxyAddrPtr(family), raw16(rec + F_NPORT), t + T_ADDR, tport);
  if (frag >= 0) oweChecksum(pkt, <u32>frag, dl4);
  if (stopAfter(Stage.Rewrite)) return;
  accept(d, aux | AuxFlag.ToTarget);
}

/**
 * The path every packet toward a PIAS-aware target takes (a flow's packet, a
 * later fragment, an ICMP error about a reply): tunnel it, or, when it would
 * not fit the tunnel, answer its sender with the MTU. Returns false for a flow
 * to a legacy target, which the caller NATs.
 */
function toAwareTarget(pkt: Packet, d: usize, rec: usize, t: usize, aux: u32): bool {
  if ((<u32>load<u8>(rec + F_FLAGS) & FF_AWARE) == 0) return false;
  if (isSuperPacket(pkt)) { segmentToAware(pkt, d, rec, t, aux); return true; }
  if (tooBigForTunnel(pkt)) { tooBig(pkt, d, aux & ~AuxFlag.IcmpError); return true; }
  // IPv4 without DF may go past the tunnel MTU (the path fragments it), but not past what an outer header can say
  if (pkt.ipTotal + tunnelOverhead(pkt) > 0xffff) { drop(d, Reason.TunnelOverflow); return true; }
  if ((aux & AuxFlag.IcmpError) != 0) bump(Stat.IcmpTranslated);
  else countTargetPacket(t);
  encapsulate(pkt, d, proxyAddrPtr(pkt.family), t + T_ADDR, load<u32>(rec + F_HFWD));
  if (stopAfter(Stage.Rewrite)) return true;
  bump(Stat.Encapsulated);
  accept(d, aux | AuxFlag.Encapsulated | AuxFlag.ToTarget);
  return true;
}

/**
 * A super-packet to an aware target: cut by gso_size and each segment
 * tunnelled (rewrite/gso.ts). The path MTU rule applies per segment: when
 * the largest does not fit (with DF, or IPv6), the sender hears the MTU once.
 * One captured only up to a snap length is dropped: the payload to cut is
 * not all there.
 */
function segmentToAware(pkt: Packet, d: usize, rec: usize, t: usize, aux: u32): void {
  if (pkt.truncated) { drop(d, Reason.GsoTruncated); return; } // its payload past the snap length is not there to cut
  if (tooBigForTunnel(pkt, firstSegmentLen(pkt))) {
    tooBig(pkt, d, aux);
    return;
  }
  let out = aux | AuxFlag.Encapsulated | AuxFlag.ToTarget;
  let k = segmentEncapsulate(pkt, d, proxyAddrPtr(pkt.family), t + T_ADDR, load<u32>(rec + F_HFWD), out);
  if (k == 0) { drop(d, Reason.GsoNoRoom); return; }
  store<u64>(t + T_PACKETS, load<u64>(t + T_PACKETS) + k);
  bump(Stat.Segmented);
  bump(Stat.Segments, k);
  bump(Stat.Encapsulated, k);
  bump(Stat.Forwarded, k);
}

@inline function countTargetPacket(t: usize): void {
  store<u64>(t + T_PACKETS, load<u64>(t + T_PACKETS) + 1);
}

/**
 * After rewriting a first fragment that does not hold its transport checksum
 * field: the later fragment that does owes the change `dl4`.
 */
function oweChecksum(pkt: Packet, frag: u32, dl4: u64): void {
  let field: u32 = pkt.proto == PROTO_TCP ? TCP_CSUM : pkt.proto == PROTO_UDP ? UDP_CSUM : ICMP_CSUM;
  let at = <u32>(pkt.l4 - pkt.fragPayload) + field;
  let payloadLen = pkt.ipTotal - <u32>(pkt.fragPayload - pkt.l3);
  if (at + 2 > payloadLen) fragmentOwe(frag, at, dl4);
}

/** A fragment after the first: follow the entry its first fragment left. */
function laterFragment(pkt: Packet, d: usize, aux: u32, now: u32): void {
  let found = fragmentFind(pkt.family, pkt.src(), pkt.dst(), pkt.fragProto, pkt.fragId, now);
  if (found < 0) { drop(d, Reason.FragmentOutOfOrder); return; }
  let frag = <u32>found;
  let ref = fragmentFlow(frag);
  let idx = ref >> 1;
  let rec = flowPtr(idx);
  if ((<u32>load<u8>(rec + F_FLAGS) & FF_USED) == 0 || load<u32>(rec + F_HFWD) != fragmentFlowCheck(frag) ||
    flowStale(rec, now)) {
    drop(d, Reason.FragmentOutOfOrder);
    return;
  }
  store<u32>(rec + F_LAST, now);
  if ((ref & DIR_REVERSE) != 0) {
    rewriteAddresses(pkt, groupPtr(load<u32>(rec + F_GROUP)) + G_ADDR, rec + F_CADDR);
    payOwed(pkt, frag);
    accept(d, aux);
    return;
  }
  let tid = load<u32>(rec + F_TARGET);
  if (!targetUsable(tid)) { drop(d, pkt.fragProto == PROTO_TCP ? Reason.TargetDown : Reason.NoTarget); return; }
  let t = targetPtr(tid);
  if (toAwareTarget(pkt, d, rec, t, aux)) return;
  countTargetPacket(t);
  rewriteAddresses(pkt, proxyAddrPtr(pkt.family), t + T_ADDR);
  payOwed(pkt, frag);
  accept(d, aux | AuxFlag.ToTarget);
}

/** Apply the transport checksum change a first fragment could not, if this fragment holds the field. */
function payOwed(pkt: Packet, frag: u32): void {
  let payloadLen = pkt.ipTotal - <u32>(pkt.fragPayload - pkt.l3);
  let at = fragmentOwedAt(frag, pkt.fragOffset, payloadLen);
  if (at < 0) return;
  let p = pkt.fragPayload + <usize>at;
  if (p + 2 > pkt.ipEnd) return; // cut by the capture
  if (pkt.fragProto == PROTO_UDP) applyUdpAt(p, fragmentOwedDelta(frag));
  else applyAt(p, fragmentOwedDelta(frag));
}

/** Target -> proxy reply of a NAT binding: restore A:g -> C:c. */
function reverse(pkt: Packet, d: usize, idx: u32, aux: u32, now: u32): void {
  let rec = flowPtr(idx);
  let frag: i64 = -1;
  if (pkt.isFragment) {
    frag = fragmentRemember(pkt.family, pkt.src(), pkt.dst(), pkt.fragProto, pkt.fragId, (idx << 1) | DIR_REVERSE,
      load<u32>(rec + F_HFWD), now);
    if (frag < 0) { drop(d, Reason.FragmentTableFull); return; }
  }
  store<u32>(rec + F_LAST, now);
  if (pkt.proto == PROTO_TCP) trackTcp(rec, pkt.tcpFlags, true);
  let g = groupPtr(load<u32>(rec + F_GROUP));
  let dl4 = rewrite(pkt, g + G_ADDR, raw16(rec + F_GPORT), rec + F_CADDR, raw16(rec + F_CPORT));
  if (frag >= 0) oweChecksum(pkt, <u32>frag, dl4);
  if (stopAfter(Stage.Rewrite)) return;
  accept(d, aux);
}

/** An ICMP error: translate it if it quotes a packet of a live flow (the quote parsed into `q`). */
function icmpError(pkt: Packet, q: Quote, d: usize, aux: u32, now: u32): void {
  if (!parseQuote(pkt, q)) { drop(d, Reason.IcmpErrorNoFlow); return; }
  let family = pkt.family;
  // The quote is a packet we sent; its reverse is a key of the flow.
  let ref = flowLookup(family, q.proto, q.dst(), q.src(), q.dport, q.sport);
  if (ref < 0 || flowStale(flowPtr(<u32>ref >> 1), now)) {
    if (isProxyAddr(family, pkt.dst()) && foreignPort(<u32>bswap<u16>(<u16>q.sport))) bump(Stat.WrongWorker);
    drop(d, Reason.IcmpErrorNoFlow);
    return;
  }
  let rec = flowPtr(<u32>ref >> 1);
  let g = groupPtr(load<u32>(rec + F_GROUP));
  let t = targetPtr(load<u32>(rec + F_TARGET));
  let outerDst = pkt.dst();
  if ((<u32>ref & DIR_REVERSE) != 0) {
    // about P:x -> T:t, reported to P: tell the client about C:c -> A:g
    if (!isProxyAddr(family, outerDst)) { drop(d, Reason.IcmpErrorNoFlow); return; }
    translateError(pkt, q, rec + F_CADDR, rec + F_CADDR, raw16(rec + F_CPORT), g + G_ADDR, raw16(rec + F_GPORT));
    bump(Stat.IcmpTranslated);
    accept(d, aux | AuxFlag.IcmpError);
    return;
  }
  // about A:g -> C:c (a reply we sent), reported to A: tell the target
  if (!sameAddr(family, outerDst, q.src())) { drop(d, Reason.IcmpErrorNoFlow); return; }
  if (toAwareTarget(pkt, d, rec, t, aux | AuxFlag.IcmpError)) return;
  let tport = q.proto == PROTO_TCP || q.proto == PROTO_UDP ? targetPortRaw(rec) : 0;
  translateError(pkt, q, t + T_ADDR, t + T_ADDR, tport, proxyAddrPtr(family), raw16(rec + F_NPORT));
  bump(Stat.IcmpTranslated);
  accept(d, aux | AuxFlag.IcmpError | AuxFlag.ToTarget);
}

@inline function sameAddr(family: u32, a: usize, b: usize): bool {
  if (family == 4) return raw32(a) == raw32(b);
  return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8);
}

/** Full checksum verification (verifyChecksums): IPv4 header, then the transport checksum when it is all here. */
function verify(pkt: Packet): Reason {
  let ip = pkt.l3;
  if (pkt.family == 4 && !verifies(sumBytes(ip, pkt.ipHdrLen, 0))) return Reason.BadIpChecksum;
  // a partial checksum is not made yet; a super-packet's is its segments'
  if (pkt.truncated || pkt.isFragment || pkt.partial || isSuperPacket(pkt)) return Reason.None;
  let proto = pkt.proto;
  let acc: u64;
  if (proto == PROTO_TCP || proto == PROTO_UDP) {
    if (proto == PROTO_UDP && raw16(pkt.l4 + UDP_CSUM) == 0) return Reason.None;
    acc = pkt.family == 4 ? pseudo4(ip, proto, pkt.l4Len) : pseudo6(ip, proto, pkt.l4Len);
  } else if (pkt.isIcmp()) {
    acc = pkt.family == 4 ? 0 : pseudo6(ip, proto, pkt.l4Len);
  } else {
    return Reason.None;
  }
  if (!verifies(sumBytes(pkt.l4, pkt.l4Len, acc))) return Reason.BadL4Checksum;
  return Reason.None;
}
