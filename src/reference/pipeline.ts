// The reference model's per-batch pipeline (assembly/pipeline.ts): parse ->
// (decapsulate) -> classify -> flow lookup or create (select a target) ->
// rewrite or encapsulate -> verdict, one packet after the other, then the
// bounded expiry sweep. Every drop has a reason and a counter, as in the core.
//
// Written for clarity, not speed: the packet is read and written byte by
// byte, and checksums are recomputed from scratch (src/reference/checksum.ts).

import { AuxFlag, HostWork, Layout, Link, Policy, Reason, Verdict, Vnet, VnetFlag, VnetGso } from "../../assembly/shared/abi.js";
import type { Frame, ModelPacket, ModelResult, Outcome } from "./batch.js";
import { l4Sum, ipHeaderOk } from "./checksum.js";
import type { ModelCounters } from "./counters.js";
import { trackTcp, type Flow, type FlowTable } from "./flow/flows.js";
import { fragKey, owe, payOwed, type FragmentTable } from "./flow/fragments.js";
import type { GroupTable, RefTarget } from "./group/groups.js";
import type { Selector } from "./group/select.js";
import { flowHash } from "./hash.js";
import {
  addrLen, be16, dstOffset, icmpProto, isEchoReply, isEchoRequest, le16, parsePacket, putLe16, sameAddr, srcOffset, PROTO_IPIP, PROTO_IPV6,
  PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN, type Parsed,
} from "./parse.js";
import type { Peers } from "./peers.js";
import { parseQuote, translateError } from "./rewrite/icmp-error.js";
import { packetTooBig, tooBigForTunnel } from "./rewrite/icmp-gen.js";
import { natRewrite, rewriteAddrs } from "./rewrite/nat.js";
import { decapsulate, encapsulate, type IpIds } from "./rewrite/tunnel.js";
import { completeChecksum, segment, type SegmentArea } from "./rewrite/gso.js";
import type { Settings } from "./settings.js";

/** Everything the pipeline reads and changes: the model's state, one object per part. */
export interface ModelState {
  settings: Settings;
  peers: Peers;
  counters: ModelCounters;
  groups: GroupTable;
  flows: FlowTable;
  fragments: FragmentTable;
  selector: Selector;
  ipIds: IpIds;
  /** Where super-packets to aware targets are cut into, and later forwarded packets of the batch moved to. */
  area: SegmentArea;
}

/** Process one batch; a null entry is an empty slot (OFF = 0). */
export function processBatch(m: ModelState, packets: readonly (ModelPacket | null)[]): (ModelResult | null)[] {
  let now = 0;
  let any = false;
  const out: (ModelResult | null)[] = [];
  const area = m.area;
  area.reset();
  for (const input of packets) {
    if (input === null) {
      out.push(null);
      continue;
    }
    now = input.time >>> 0;
    any = true;
    const made = area.list.length;
    const r = processOne(m, input, now);
    for (let i = made; i < area.list.length; i++) area.list[i].time = input.time; // its segments
    if (r.verdict === Verdict.Forward && area.spilling && area.list.length < area.maxDesc) {
      // after segments, in batch order: the packet goes to the area, its slot is left empty
      area.list.push({ ...r });
      r.verdict = Verdict.Drop;
      r.reason = Reason.None;
    }
    out.push(r);
  }
  if (any) m.flows.sweep(now); // no packet, no time, no sweep
  return out;
}

function processOne(m: ModelState, input: ModelPacket, now: number): ModelResult {
  const len = input.data.length;
  const link = input.link ?? 101;
  const f: Frame = {
    buf: new Uint8Array(Layout.HEADROOM + len), off: Layout.HEADROOM, len,
    wirelen: Math.max(input.wirelen ?? len, len), link,
  };
  f.buf.set(input.data, Layout.HEADROOM);
  const res: Outcome = { verdict: Verdict.Drop, reason: Reason.None, aux: input.reflected ? AuxFlag.Reflected : 0 };
  pipeline(m, f, res, now);
  return { ...res, data: f.buf.slice(f.off, f.off + f.len), wirelen: f.wirelen, link, time: input.time };
}

function drop(m: ModelState, res: Outcome, r: Reason): void {
  res.verdict = Verdict.Drop;
  res.reason = r;
  m.counters.drop(r);
}

function toHost(m: ModelState, res: Outcome, work: HostWork, aux: number): void {
  res.verdict = Verdict.ToHost;
  res.reason = work as number as Reason;
  res.aux = aux;
  m.counters.stat.toHost++;
}

function accept(m: ModelState, res: Outcome, aux: number): void {
  res.verdict = Verdict.Forward;
  res.aux = aux;
  if (aux & AuxFlag.Reflected) m.counters.stat.reflected++;
  else m.counters.stat.forwarded++;
}

function pipeline(m: ModelState, f: Frame, res: Outcome, now: number): void {
  const { settings, peers, flows, groups } = m;
  const b = f.buf;
  let aux = res.aux;
  if (aux === 0) {
    m.counters.stat.packets++;
    m.counters.stat.bytes += Math.max(f.wirelen, f.len);
  }
  const parsed = parsePacket(b, f.off, f.len, f.wirelen, f.link);
  if (typeof parsed === "number") return drop(m, res, parsed);
  let p: Parsed = parsed;
  if (p.vnet >= 0) vnetArrived(m, b, p);
  const addrAt = (at: number): Uint8Array => b.slice(at, at + addrLen(p.family));

  // IP-in-IP to this proxy: take the inner packet (once), from a known proxy when any is known
  if ((p.proto === PROTO_IPIP || p.proto === PROTO_IPV6) && settings.isProxy(p.family, addrAt(p.l3 + dstOffset(p.family)))) {
    if (!peers.tunnelAllowed(addrAt(p.l3 + srcOffset(p.family)))) return drop(m, res, Reason.TunnelFromStranger);
    const inner = decapsulate(f, p);
    if (typeof inner === "number") return drop(m, res, inner);
    p = inner;
    aux |= AuxFlag.Decapsulated;
    m.counters.stat.decapsulated++;
  }
  if (settings.verifyChecksums) {
    const r = verify(b, p);
    if (r !== Reason.None) return drop(m, res, r);
  }
  if (!p.hasL4Header) return laterFragment(m, f, p, aux, res, now);

  const family = p.family;
  const proto = p.proto;
  const src = addrAt(p.l3 + srcOffset(family));
  const dst = addrAt(p.l3 + dstOffset(family));
  const icmp = proto === icmpProto(family);
  if (proto === PROTO_UDP && peers.controlPort && p.dport === peers.controlPort && (settings.isProxy(family, dst) || peers.inAnycast(dst))) {
    return toHost(m, res, HostWork.Control, aux);
  }
  if (icmp) {
    if (p.icmpError) return icmpError(m, f, p, aux, res, now);
    if (!isEchoRequest(family, p.icmpType) && !isEchoReply(family, p.icmpType)) return drop(m, res, Reason.IcmpUnsupported);
  } else if (proto !== PROTO_TCP && proto !== PROTO_UDP) {
    return drop(m, res, Reason.NotForProxy);
  }

  let ref = flows.lookup(family, proto, src, dst, p.sport, p.dport);
  if (ref && flows.stale(flows.at(ref.idx), now)) {
    flows.free(ref.idx);
    ref = flows.lookup(family, proto, src, dst, p.sport, p.dport);
  }
  if (ref) {
    if (ref.reverse) return reverse(m, f, p, ref.idx, aux, res, now);
    return forward(m, f, p, ref.idx, aux, res, now);
  }

  // a new flow: only toward a group, never to the proxy's own address (there: a reply whose binding is gone)
  if (settings.isProxy(family, dst)) {
    if (settings.foreignPort(p.dport)) m.counters.stat.wrongWorker++;
    return drop(m, res, Reason.NoBinding);
  }
  if (icmp && !isEchoRequest(family, p.icmpType)) return drop(m, res, Reason.NotForProxy);
  const g = groups.find(family, proto, dst, icmp ? 0 : p.dport);
  if (!g) {
    if (!peers.inAnycast(dst)) return drop(m, res, Reason.NotForProxy);
    return peers.resolveUnknown ? toResolve(m, res, aux, now) : drop(m, res, Reason.NoGroup);
  }
  if (g.pending && g.usable === 0) return toResolve(m, res, aux, now);
  if (proto === PROTO_TCP && (p.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN && g.policy !== Policy.Affinity) {
    return drop(m, res, Reason.NoFlow); // only affinity finds the target another proxy chose
  }
  const hfwd = flowHash(family, src, dst, p.sport, p.dport, proto);
  const t = m.selector.select(g, family, src, dst, p.sport, p.dport, proto);
  if (!t) return drop(m, res, Reason.NoTarget);
  const syn = proto === PROTO_TCP && (p.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN;
  const created = flows.create(family, proto, src, p.sport, p.dport, g, t, hfwd, now, syn);
  if ("fail" in created) return drop(m, res, created.fail);
  if (proto === PROTO_TCP && (p.tcpFlags & TCP_SYN) === 0) flows.at(created.idx).established = true; // picked up mid-connection
  forward(m, f, p, created.idx, aux, res, now);
}

/** A packet for the host to resolve its group, within the host's budget per second (else resolve-throttled). */
function toResolve(m: ModelState, res: Outcome, aux: number, now: number): void {
  if (m.peers.takeUnresolved(now)) toHost(m, res, HostWork.Unresolved, aux);
  else drop(m, res, Reason.ResolveThrottled);
}

/**
 * What the virtio_net_hdr said on the way in is settled (assembly/pipeline.ts
 * vnetArrived): DATA_VALID dropped; a partial checksum other than TCP's or
 * UDP's completed now, as the kernel's skb_checksum_help would.
 */
function vnetArrived(m: ModelState, b: Uint8Array, p: Parsed): void {
  const h = p.vnet;
  let flags = b[h + Vnet.FLAGS];
  if (flags & VnetFlag.NeedsCsum && !p.partial) {
    completeChecksum(b, p.l3 + le16(b, h + Vnet.CSUM_START), le16(b, h + Vnet.CSUM_OFFSET), p.ipEnd);
    flags &= ~VnetFlag.NeedsCsum;
  }
  b[h + Vnet.FLAGS] = flags & ~VnetFlag.DataValid;
  if (p.gsoType !== VnetGso.None) m.counters.stat.superPackets++;
}

/** Client -> TA packet of a known flow: NAT or tunnel it to the flow's target. */
function forward(m: ModelState, f: Frame, p: Parsed, idx: number, aux: number, res: Outcome, now: number): void {
  const b = f.buf;
  const fl = m.flows.at(idx);
  const family = p.family;
  let t = fl.target;
  if (!t.usable) {
    if (p.proto === PROTO_TCP) return drop(m, res, Reason.TargetDown); // never move a connection mid-stream
    const src = b.slice(p.l3 + srcOffset(family), p.l3 + srcOffset(family) + addrLen(family));
    const dst = b.slice(p.l3 + dstOffset(family), p.l3 + dstOffset(family) + addrLen(family));
    const n = m.selector.select(fl.group, family, src, dst, p.sport, p.dport, p.proto);
    if (!n) return drop(m, res, Reason.NoTarget);
    if (!m.flows.repin(idx, n, now)) return drop(m, res, Reason.NatPortsExhausted);
    t = n;
  }
  const frag = p.isFragment ? m.fragments.remember(b, p, idx, fl.hfwd, false, now) : null;
  if (frag === undefined) return drop(m, res, Reason.FragmentTableFull);
  fl.last = now;
  if (p.proto === PROTO_TCP) {
    trackTcp(fl, p.tcpFlags, false);
    m.flows.handshakeDone(fl);
  }
  if (toAwareTarget(m, f, p, fl, t, aux, res)) return;
  t.packets++;
  const tport = p.proto === icmpProto(family) ? 0 : t.port !== 0 ? t.port : fl.gport;
  const delta = natRewrite(b, p, m.settings.proxyAddr(family), fl.nport, t.addr, tport);
  if (frag) owe(frag, p, delta);
  accept(m, res, aux | AuxFlag.ToTarget);
}

/**
 * The path every packet toward a PIAS-aware target takes (a flow's packet, a
 * later fragment, an ICMP error about a reply): tunnel it, or, when it would
 * not fit the tunnel, answer its sender with the MTU. False for a flow to a
 * legacy target, which the caller NATs.
 */
function toAwareTarget(m: ModelState, f: Frame, p: Parsed, fl: Flow, t: RefTarget, aux: number, res: Outcome): boolean {
  if (!fl.aware) return false;
  if (p.gsoType !== VnetGso.None) {
    segmentToAware(m, f, p, fl, t, aux, res);
    return true;
  }
  if (tooBigForTunnel(f.buf, p, m.settings.tunnelMtu)) {
    tooBig(m, f, p, aux & ~AuxFlag.IcmpError, res);
    return true;
  }
  // IPv4 without DF may go past the tunnel MTU, but not past what an outer header's 16-bit length can say
  if (p.ipTotal + (p.family === 4 ? 20 : 40) > 0xffff) {
    drop(m, res, Reason.TunnelOverflow);
    return true;
  }
  if (aux & AuxFlag.IcmpError) m.counters.stat.icmpTranslated++;
  else t.packets++;
  encapsulate(f, p, m.settings.proxyAddr(p.family), t.addr, fl.hfwd, m.ipIds);
  m.counters.stat.encapsulated++;
  accept(m, res, aux | AuxFlag.Encapsulated | AuxFlag.ToTarget);
  return true;
}

/**
 * A super-packet to an aware target (assembly/pipeline.ts segmentToAware):
 * cut as the kernel's GSO would, each segment tunnelled behind a
 * virtio_net_hdr asking for no GSO; the path MTU rule per segment.
 */
function segmentToAware(m: ModelState, f: Frame, p: Parsed, fl: Flow, t: RefTarget, aux: number, res: Outcome): void {
  if (p.truncated) return drop(m, res, Reason.GsoTruncated); // only the captured bytes are here: nothing to cut the rest from
  const b = f.buf;
  const segs = segment(b.slice(p.l3, p.l3 + p.ipTotal), p.gsoSize, p.partial);
  const outer = p.family === 4 ? 20 : 40;
  if (tooBigForTunnel(b, p, m.settings.tunnelMtu, segs[0].ip.length)) {
    tooBig(m, f, p, aux, res);
    return;
  }
  const hl = hdrsOf(segs[0], p);
  const perSeg = (outer + Vnet.SIZE + hl + p.gsoSize + 7) & ~7;
  const last = segs[segs.length - 1].ip.length;
  if (!m.area.take(segs.length, perSeg, outer + Vnet.SIZE + last)) return drop(m, res, Reason.GsoNoRoom);
  const out = aux | AuxFlag.Encapsulated | AuxFlag.ToTarget;
  for (const s of segs) {
    const sf: Frame = { buf: new Uint8Array(Layout.HEADROOM + Vnet.SIZE + s.ip.length), off: Layout.HEADROOM, len: Vnet.SIZE + s.ip.length, wirelen: Vnet.SIZE + s.ip.length, link: Link.VNET };
    const h = sf.off;
    if (s.partial) {
      sf.buf[h + Vnet.FLAGS] = VnetFlag.NeedsCsum;
      putLe16(sf.buf, h + Vnet.CSUM_START, s.csumStart);
      putLe16(sf.buf, h + Vnet.CSUM_OFFSET, s.csumOffset);
    }
    sf.buf.set(s.ip, h + Vnet.SIZE);
    const sp = parsePacket(sf.buf, sf.off, sf.len, sf.wirelen, Link.VNET);
    if (typeof sp === "number") throw new Error(`a segment does not parse (reason ${sp})`);
    encapsulate(sf, sp, m.settings.proxyAddr(p.family), t.addr, fl.hfwd, m.ipIds);
    m.area.list.push({ verdict: Verdict.Forward, reason: Reason.None, aux: out, data: sf.buf.slice(sf.off, sf.off + sf.len), wirelen: sf.wirelen, link: f.link, time: 0 });
  }
  const k = segs.length;
  t.packets += k;
  m.counters.stat.segmented++;
  m.counters.stat.segments += k;
  m.counters.stat.encapsulated += k;
  m.counters.stat.forwarded += k;
  m.area.spilling = true;
  res.verdict = Verdict.Drop;
  res.reason = Reason.None;
}

/** Bytes of the IP and transport headers of a segment of `p`. */
function hdrsOf(s: { ip: Uint8Array }, p: Parsed): number {
  return p.ipHdrLen + (p.proto === PROTO_TCP ? (s.ip[p.ipHdrLen + 12] >>> 4) << 2 : 8);
}

/**
 * The packet does not fit the tunnel: it is dropped (counted as
 * packet-too-big) and an ICMP error telling the sender the MTU goes out in
 * its place.
 */
function tooBig(m: ModelState, f: Frame, p: Parsed, aux: number, res: Outcome): void {
  m.counters.drop(Reason.PacketTooBig);
  if (!packetTooBig(f, p, m.settings, m.ipIds)) {
    res.reason = Reason.PacketTooBig;
    return;
  }
  res.verdict = Verdict.Forward;
  res.aux = aux | AuxFlag.Generated;
  m.counters.stat.icmpGenerated++;
}

/** Target -> proxy reply of a NAT binding: restore A:g -> C:c. */
function reverse(m: ModelState, f: Frame, p: Parsed, idx: number, aux: number, res: Outcome, now: number): void {
  const fl = m.flows.at(idx);
  const frag = p.isFragment ? m.fragments.remember(f.buf, p, idx, fl.hfwd, true, now) : null;
  if (frag === undefined) return drop(m, res, Reason.FragmentTableFull);
  fl.last = now;
  if (p.proto === PROTO_TCP) {
    trackTcp(fl, p.tcpFlags, true);
    m.flows.handshakeDone(fl);
  }
  const delta = natRewrite(f.buf, p, fl.group.addr, fl.gport, fl.caddr, fl.cport);
  if (frag) owe(frag, p, delta);
  accept(m, res, aux);
}

/** A fragment after the first: follow the entry its first fragment left. */
function laterFragment(m: ModelState, f: Frame, p: Parsed, aux: number, res: Outcome, now: number): void {
  const b = f.buf;
  const e = m.fragments.find(fragKey(b, p), now);
  if (!e) return drop(m, res, Reason.FragmentOutOfOrder);
  const fl = m.flows.at(e.idx);
  if (!fl.used || fl.hfwd !== e.check || m.flows.stale(fl, now)) return drop(m, res, Reason.FragmentOutOfOrder);
  fl.last = now;
  if (e.reverse) {
    rewriteAddrs(b, p, fl.group.addr, fl.caddr);
    payOwed(e, b, p);
    return accept(m, res, aux);
  }
  const t = fl.target;
  if (!t.usable) return drop(m, res, p.fragProto === PROTO_TCP ? Reason.TargetDown : Reason.NoTarget);
  if (toAwareTarget(m, f, p, fl, t, aux, res)) return;
  t.packets++;
  rewriteAddrs(b, p, m.settings.proxyAddr(p.family), t.addr);
  payOwed(e, b, p);
  accept(m, res, aux | AuxFlag.ToTarget);
}

/** An ICMP error: translate it if it quotes a packet of a live flow. */
function icmpError(m: ModelState, f: Frame, p: Parsed, aux: number, res: Outcome, now: number): void {
  const b = f.buf;
  const family = p.family;
  const q = parseQuote(b, p);
  if (!q) return drop(m, res, Reason.IcmpErrorNoFlow);
  const n = addrLen(family);
  const qsrc = b.slice(q.ip + srcOffset(family), q.ip + srcOffset(family) + n);
  const qdst = b.slice(q.ip + dstOffset(family), q.ip + dstOffset(family) + n);
  // the quote is a packet we sent: its reverse is a key of the flow
  const ref = m.flows.lookup(family, q.proto, qdst, qsrc, q.dport, q.sport);
  if (!ref || m.flows.stale(m.flows.at(ref.idx), now)) {
    const to = b.slice(p.l3 + dstOffset(family), p.l3 + dstOffset(family) + n);
    if (m.settings.isProxy(family, to) && m.settings.foreignPort(q.sport)) m.counters.stat.wrongWorker++;
    return drop(m, res, Reason.IcmpErrorNoFlow);
  }
  const fl = m.flows.at(ref.idx);
  const g = fl.group;
  const t = fl.target;
  const outerDst = b.slice(p.l3 + dstOffset(family), p.l3 + dstOffset(family) + n);
  if (ref.reverse) {
    // about P:x -> T:t, reported to P: tell the client about C:c -> A:g
    if (!m.settings.isProxy(family, outerDst)) return drop(m, res, Reason.IcmpErrorNoFlow);
    translateError(b, p, q, fl.caddr, fl.caddr, fl.cport, g.addr, fl.gport);
    m.counters.stat.icmpTranslated++;
    return accept(m, res, aux | AuxFlag.IcmpError);
  }
  // about A:g -> C:c (a reply we or an aware target sent), reported to A: tell the target
  if (!sameAddr(outerDst, qsrc)) return drop(m, res, Reason.IcmpErrorNoFlow);
  if (toAwareTarget(m, f, p, fl, t, aux | AuxFlag.IcmpError, res)) return;
  const tport = q.proto === PROTO_TCP || q.proto === PROTO_UDP ? (t.port !== 0 ? t.port : fl.gport) : 0;
  translateError(b, p, q, t.addr, t.addr, tport, m.settings.proxyAddr(family), fl.nport);
  m.counters.stat.icmpTranslated++;
  accept(m, res, aux | AuxFlag.IcmpError | AuxFlag.ToTarget);
}

/** verifyChecksums: the IPv4 header, then the transport checksum when it is all here. */
function verify(b: Uint8Array, p: Parsed): Reason {
  if (p.family === 4 && !ipHeaderOk(b, p.l3, p.ipHdrLen)) return Reason.BadIpChecksum;
  if (p.truncated || p.isFragment || p.partial || p.gsoType !== VnetGso.None) return Reason.None; // not made yet, or a super-packet's

  if (p.proto === PROTO_UDP && be16(b, p.l4 + 6) === 0) return Reason.None;
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP || p.proto === icmpProto(p.family)) {
    if (l4Sum(b, p.family, p.l3, p.proto, p.l4, p.l4Len) !== 0xffff) return Reason.BadL4Checksum;
  }
  return Reason.None;
}
