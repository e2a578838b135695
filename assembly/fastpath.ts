// The fast paths: a packet of a live NAT flow (fastPath), or the first
// packet of a new one toward a legacy target the batch prefetch already
// selected (newFlowPath), in one of the common shapes (parse.ts,
// commonShape: TCP, UDP, ICMP echo), goes through here instead of the
// general pipeline (pipeline.ts, processOne): it is looked up (or its flow
// created), rewritten and given its verdict without filling a Packet record
// or asking any of the questions whose answer its shape already gives.
//
// It does exactly what processOne does for such a packet — the same lookup,
// the same flow creation and bookkeeping, the same rewrite and counters — and
// declines (returns false, having changed nothing) every packet that needs
// anything else: a new flow without the prefetch's target (a policy that
// changes state as it picks, no group), toward a PIAS-aware target, or
// mid-connection TCP outside affinity; a stale flow, a down or PIAS-aware
// target, a control message, an overlay packet, checksum verification.
// processOne then handles it in full. The differential test against the
// reference model holds both paths to the same bytes and counters
// (test/properties/differential.test.ts; test/core/fastpath.test.ts: the
// packets of live flows other stages claim first).

import { AuxFlag, Desc, Policy, Reason, Stage, Stat } from "./shared/abi";
import { bump } from "./counters";
import { ld8, raw16 } from "./wire/bytes";
import { PROTO_TCP, PROTO_UDP } from "./wire/ip";
import { TCP_ACK, TCP_CSUM, TCP_FLAGS, TCP_RST, TCP_SYN, UDP_CSUM, isEchoReply, isEchoRequest } from "./wire/l4";
import { shapeFamily, shapeIpHeader, shapeLinkLen, shapePorts, shapeProto } from "./parse";
import { prefetchedGroup, prefetchedHash, prefetchedPorts, prefetchedRef, prefetchedShape, prefetchedTarget } from "./flow/prefetch";
import {
  flowCreateInline, flowIndexedSince, flowLookupFrom, flowLookupHashed, flowPtr, flowStale, targetPortRaw, trackTcp,
  DIR_REVERSE, F_CPORT, F_CADDR, F_FLAGS, F_GPORT, F_GROUP, F_LAST, F_NPORT, F_TARGET, FF_AWARE, FF_ESTABLISHED,
} from "./flow/flows";
import { groupPtr, targetPtr, targetUsable, G_ADDR, G_POLICY, T_ADDR, T_FLAGS, T_PACKETS, TF_AWARE } from "./group/groups";
import { controlPortRaw } from "./peers";
import { overlayOn, overlayTakes } from "./overlay/overlay";
import { proxyAddrPtr, verifyChecksums } from "./settings";
import { rewriteEcho, rewriteIp, rewritePorts } from "./rewrite/nat";
import { accept, drop } from "./verdict";
import { stopAfter, stopsBefore } from "./stages";

/** Handle packet `d`, the i-th of its chunk, if it is a common-shape packet of a live flow; false: newFlowPath or processOne must. */
@inline export function fastPath(d: usize, i: u32, now: u32): bool {
  let shape = prefetchedShape(i);
  if (shape == 0) return false; // (the caller takes keys absent when its chunk was prefetched to newFlowPath)
  if (verifyChecksums) return false;
  // one copy of the path per family, each with the family a constant
  return shapeFamily(shape) == 4 ? liveFlow(d, i, now, shape, 4) : liveFlow(d, i, now, shape, 6);
}

@inline function liveFlow(d: usize, i: u32, now: u32, shape: u64, family: u32): bool {
  let proto = shapeProto(shape);
  let ip = <usize>load<u32>(d + Desc.OFF) + shapeLinkLen(shape);
  let l4 = ip + shapeIpHeader(shape);
  let ports = shapePorts(shape, l4);
  let dport = ports >>> 16;
  if (othersTake(family, proto, dport, ip)) return false;
  let aux: u32 = <u32>load<u16>(d + Desc.AUX) & AuxFlag.Reflected;
  if (stopAfter(Stage.Parse)) return true;

  let src = ip + (family == 4 ? 12 : 8);
  let dst = ip + (family == 4 ? 16 : 24);
  let ref = flowLookupFrom(prefetchedRef(i), <u32>prefetchedHash(i), family, proto, src, dst, ports);
  if (ref < 0) return false;
  let idx = <u32>ref >> 1;
  let rec = flowPtr(idx);
  if (flowStale(rec, now)) return false;
  let reverse = (<u32>ref & DIR_REVERSE) != 0;
  let tid = load<u32>(rec + F_TARGET);
  if (!reverse) {
    if (!targetUsable(tid)) return false;
    if ((<u32>load<u8>(rec + F_FLAGS) & FF_AWARE) != 0) return false;
  }
  if (stopsBefore(Stage.Rewrite)) return true;

  taken(d, aux); // from here on the packet is this path's
  store<u32>(rec + F_LAST, now);
  if (proto == PROTO_TCP) trackTcp(rec, <u32>load<u8>(l4 + TCP_FLAGS), reverse);
  natRewrite(d, rec, tid, reverse, family, proto, ip, l4, aux);
  return true;
}

/**
 * Handle packet `d`, the i-th of its chunk, if it is the common-shape first
 * packet of a new flow (its key was not in the index when its chunk was prefetched,
 * nor is it now) toward the legacy target the prefetch picked: create the
 * flow, as processOne would, and NAT the packet. False (nothing changed)
 * where processOne must decide: no target picked (a policy that changes
 * state as it picks, no group), a PIAS-aware target (the tunnel), an ICMP
 * echo reply, TCP mid-connection outside affinity, a flow created earlier in
 * the batch. (In the bench build, stopped before the selection, the
 * prefetch picks no target: the packet stops here before its stage.)
 */
export function newFlowPath(d: usize, i: u32, now: u32): bool {
  let shape = prefetchedShape(i);
  if (shape == 0) return false; // (the caller brings only keys absent when its chunk was prefetched)
  if (verifyChecksums) return false;
  if (prefetchedTarget(i) < 0 && !stopsBefore(Stage.Select)) return false;
  return shapeFamily(shape) == 4 ? firstPacket(d, i, now, shape, 4) : firstPacket(d, i, now, shape, 6);
}

// Opens as liveFlow does (the packet's fields, othersTake) on purpose: one
// opening shared by both paths was measured to cost live-flow packets 2-3%.
@inline function firstPacket(d: usize, i: u32, now: u32, shape: u64, family: u32): bool {
  let proto = shapeProto(shape);
  let ip = <usize>load<u32>(d + Desc.OFF) + shapeLinkLen(shape);
  let l4 = ip + shapeIpHeader(shape);
  let ports = shapePorts(shape, l4);
  let sport = ports & 0xffff;
  let dport = ports >>> 16;
  if (othersTake(family, proto, dport, ip)) return false;
  let aux: u32 = <u32>load<u16>(d + Desc.AUX) & AuxFlag.Reflected;
  if (stopAfter(Stage.Parse)) return true;

  let src = ip + (family == 4 ? 12 : 8);
  let h = <u32>prefetchedHash(i);
  if (flowIndexedSince(h) && flowLookupHashed(h, family, proto, src, ip + (family == 4 ? 16 : 24), sport, dport) >= 0) return false; // (absent at the prefetch: only a key indexed since may be there)
  if (stopAfter(Stage.FlowLookup)) return true;
  let gid = <u32>prefetchedGroup(i);
  let tid = <u32>prefetchedTarget(i);
  if ((<u32>load<u8>(targetPtr(tid) + T_FLAGS) & TF_AWARE) != 0) return false;
  let tcpFlags: u32 = 0;
  let syn = false;
  if (proto == PROTO_TCP) {
    tcpFlags = <u32>load<u8>(l4 + TCP_FLAGS);
    syn = (tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
    if (!syn && <u32>load<u8>(groupPtr(gid) + G_POLICY) != Policy.Affinity) return false;
  } else if (proto != PROTO_UDP && !isEchoRequest(family, ld8(l4))) {
    return false;
  }
  if (stopAfter(Stage.Select)) return true;

  taken(d, aux); // from here on the packet is this path's
  let created = flowCreateInline(family, proto, src, sport, dport, gid, tid, h, now, syn, prefetchedPorts(i));
  if (created < 0) {
    store<u16>(d + Desc.AUX, <u16>aux);
    drop(d, <Reason>(<i32>-created));
    return true;
  }
  if (stopAfter(Stage.Create)) return true;
  let rec = flowPtr(<u32>created);
  if (proto == PROTO_TCP) {
    // picked up mid-connection (affinity): it was established elsewhere
    if ((tcpFlags & TCP_SYN) == 0) store<u8>(rec + F_FLAGS, <u8>(<u32>load<u8>(rec + F_FLAGS) | FF_ESTABLISHED));
    trackTcp(rec, tcpFlags, false);
  }
  natRewrite(d, rec, tid, false, family, proto, ip, l4, aux);
  return true;
}

/** The packet is this path's: counted as processOne counts it on arrival. */
@inline function taken(d: usize, aux: u32): void {
  store<u8>(d + Desc.REASON, 0);
  if (aux == 0) {
    bump(Stat.Packets);
    let len = load<u32>(d + Desc.LEN), wirelen = load<u32>(d + Desc.WIRELEN);
    bump(Stat.Bytes, <u64>(wirelen > len ? wirelen : len));
  }
}

/**
 * UDP to the control port may be a control message, and the overlay's packets are its own: processOne decides.
 * (Without a control plane controlPortRaw is 0: UDP to port 0 goes to processOne too, which serves it alike.)
 */
@inline function othersTake(family: u32, proto: u32, dport: u32, ip: usize): bool {
  return (proto == PROTO_UDP && dport == controlPortRaw) || (overlayOn && family == 4 && overlayTakes(proto, dport, ip + 16));
}

/** NAT packet d of flow record rec (target tid) in its direction, count it and accept it. */
@inline function natRewrite(d: usize, rec: usize, tid: u32, reverse: bool, family: u32, proto: u32, ip: usize, l4: usize, aux: u32): void {
  let dAddr: u64, newSport: u32, newDport: u32;
  if (reverse) {
    // target -> proxy reply of a NAT binding: restore A:g -> C:c
    dAddr = rewriteIp(family, ip, groupPtr(load<u32>(rec + F_GROUP)) + G_ADDR, rec + F_CADDR);
    newSport = raw16(rec + F_GPORT);
    newDport = raw16(rec + F_CPORT);
  } else {
    // client -> TA: NAT to the flow's target
    let t = targetPtr(tid);
    store<u64>(t + T_PACKETS, load<u64>(t + T_PACKETS) + 1);
    dAddr = rewriteIp(family, ip, proxyAddrPtr(family), t + T_ADDR);
    newSport = raw16(rec + F_NPORT);
    newDport = proto == PROTO_TCP || proto == PROTO_UDP ? targetPortRaw(rec) : 0;
    aux |= AuxFlag.ToTarget;
  }
  if (proto == PROTO_TCP) rewritePorts(l4, proto, l4 + TCP_CSUM, false, dAddr, newSport, newDport);
  else if (proto == PROTO_UDP) rewritePorts(l4, proto, raw16(l4 + UDP_CSUM) != 0 ? l4 + UDP_CSUM : 0, false, dAddr, newSport, newDport);
  else rewriteEcho(family, l4, isEchoReply(family, ld8(l4)), dAddr, newSport, newDport);
  if (stopAfter(Stage.Rewrite)) return;
  accept(d, aux);
}
