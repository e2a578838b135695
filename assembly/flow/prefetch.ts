// A pass over a chunk of a batch before it is processed, so that the cache
// misses of the chunk overlap instead of stalling one packet at a time (a
// VPP-style vector pass; Wasm has no prefetch instruction, so a "touch" is a
// load whose value is summed into a sink). process_batch runs a batch as
// chunks of CHUNK packets, each prefetched, then processed.
//
// For the common packet shapes (parse.ts, commonShape: IPv4 or IPv6 TCP/UDP
// on Ethernet or raw IP, nothing unusual):
//   0. touch every packet's header (its first bytes and those of its
//      transport header), for packets whose bytes are not in the cache (a
//      NIC's, or a batch framed long before);
//   1. classify and hash each packet's tuple and find its flow-index bucket
//      (in the bench build, stopping after the parse stage stops here; the
//      new flows' hints count in the selection stage, the touches of their
//      reverse buckets in the creation stage);
//   2. touch every bucket;
//   3. for a packet whose bucket names a candidate, note that flow record;
//      for one whose key is certainly not in the index (no tag match, no
//      overflow: a new flow, if any), find its group; where an affinity
//      table picks its target, touch the entry it reads, then the target
//      that names (a table of 1,000 targets' is 400 KB: a miss); then,
//      where the choice is a pure function of the packet and the tables
//      (affinity and proximity), pick its target and its first NAT port
//      candidates (four in a dense port space, ports.ts; else the first
//      one, with the hash of its reverse key);
//   4. touch the noted records, in a loop that does nothing else (a touch
//      is a load: until it completes no later instruction retires, so a
//      touch followed by a new flow's hints would wait alone instead of
//      beside the chunk's other misses); where targets are many
//      (MANY_TARGETS), then the targets the records of packets toward them
//      name;
//   5. where the binding's port space keeps bits, touch the bit of its
//      first candidate (and of its second in a dense space), then, in a
//      dense space, take the first free candidate and hash its reverse key;
//   6. touch the reverse-index buckets of the hashed candidates, and the
//      records those name (without a dense port space, a bound port's
//      holder, which the NAT port allocation reads).
// The pipeline then takes each packet's shape, hash, group and target from
// here (prefetchedShape/Hash/Group/Target) instead of computing them again.
//
// Reads only; changes nothing the pipeline would see. A packet this pass does
// not recognise is simply left to the pipeline; a hint is a value the
// pipeline would compute itself from the same inputs, since no control call
// can run inside a batch.

import { Desc, Layout, Policy, Stage } from "../shared/abi";
import { raw16 } from "../wire/bytes";
import { ipv4Shape, otherShape, shapeFamily, shapeIpHeader, shapeLinkLen, shapePorts, shapeProto } from "../parse";
import { IPV4_HEADER, PROTO_TCP, PROTO_UDP } from "../wire/ip";
import { stopsBefore } from "../stages";
import { flowHash, flowHashV4 } from "../hash";
import { bucketAt, homeBucket, overflowed, refAt, slotsOf } from "../table/bucket-index";
import {
  flowIndexBase, flowIndexBuckets, flowIndexNewChunk, flowPtr, natPortCandidate, reverseHash, reversePrefix,
  DIR_REVERSE, F_LAST, F_TARGET, F_V4_END, F_V6_END, PORT_HINTS, PORT_HINTS_PROBED, PH_FREE, PH_HASH, PH_HASHED, PH_PORT, PORT_HINTS_BYTES,
} from "./flows";
import { denseBits, keptBits, portBound, targetPortSpace } from "./ports";
import { groupLookup, groupPtr, targetPtr, targetsInUse, G_POLICY, T_FLAGS, T_PORT, TF_AWARE } from "../group/groups";
import { selectAt, selectionEntry, selectTarget } from "../group/select";
import { isProxyAddr, portMax, portMin } from "../settings";

/**
 * Packets prefetched at once. Small enough that the lines and pages a chunk
 * touches are still in the cache and the TLB when its packets are processed
 * (a whole batch of 1024 touches more pages than the TLB holds), large enough
 * that the misses of one step of the pass overlap. Paired in one process at
 * 1M flows, 32 against the whole batch: new flows 4-12% faster, live-flow
 * packets 5-9% (16 to 128 were tried). Since the touches go in passes of
 * their own (touchListed), 64 against 32: live-flow packets 0.89-0.94 (1M
 * flows, 34 and 1,000 targets; 10M), new flows 0.96-1.01, churn 0.93-1.04;
 * 48 and 128 against 64: 1.04-1.05 and 0.93-1.01.
 */
export const CHUNK: u32 = 64;
/**
 * Per packet: [0] bucket address (0: not recognised), [4] hash, [8] group + 1,
 * [12] target + 1, [16] commonShape() of the packet, [24] 1 when its key is
 * certainly not in the index, [28] its first NAT port candidates (a
 * PortHints block, see flows.ts: their count, which are hashed, reverse-key
 * hashes and ports), [52] 1 + the reference its bucket names under the packet's tag (the record
 * to touch, and the pipeline's first candidate), or 0; for a new flow whose
 * binding's port space keeps bits: [56] its bitmap (else 0), [60] the rest of the
 * reverse keys (target port raw, protocol, family), [64] their prefix (u64,
 * reversePrefix); for a new flow of a group: [72] the selection's table entry
 * (selectionEntry), or 0;
 * for one whose table entry is touched first: [76] its IP header's address,
 * [80] its ports as shapePorts gives them (newFlowHints needs them again).
 */
const ENTRY: usize = 88;
const E_BUCKET: usize = 0;
const E_HASH: usize = 4;
const E_GROUP: usize = 8;
const E_TARGET: usize = 12;
const E_SHAPE: usize = 16;
const E_ABSENT: usize = 24;
const E_PORTS: usize = 28;
const E_REF: usize = 52;
if (E_PORTS + PORT_HINTS_BYTES > E_REF) ERROR("prefetch: the PortHints block overlaps E_REF");
const E_SPACE: usize = 56;
const E_REVKEY: usize = 60;
const E_PREFIX: usize = 64;
const E_ENTRY: usize = 72;
const E_IP: usize = 76;
const E_L4PORTS: usize = 80;
const hints = memory.data(<i32>(<usize>CHUNK * ENTRY), 16);
/** The packets of the chunk whose new flows' targets a table picks (step 3 touches the entry and the target first). */
const pending = memory.data(<i32>CHUNK, 4);
/** The packets of the chunk with NAT port hints (steps 5 and 6 visit only these). */
const hinted = memory.data(<i32>CHUNK, 4);
/** The second header touch's offset in a packet: the TCP data offset of IPv4 on Ethernet (14 + 20 + 12), the last byte commonShape reads there. */
const HEADER_REACH: u32 = 46;
/**
 * Target ids in use above which step 4 touches the targets of live flows'
 * packets too: their 64-byte records (64 KB at 1,024) outgrow the cache the
 * flows' records and buckets share. Paired at 1M flows against no such
 * pass: 10,000 targets, live-flow packets 0.71; 1,000 targets 0.98-0.99; 34
 * targets 1.01-1.09 (all in the cache: the pass is only work).
 */
const MANY_TARGETS: u32 = 1024;
/** Loaded values are summed here so the loads are not optimised away. */
let sink: u64 = 0;
/**
 * The addresses a step touches, listed first and then loaded in a pass of
 * four loads an iteration and nothing else: the fewer instructions between
 * them, the more of the misses are in flight at once (the reorder buffer,
 * not the loads, was the limit). At most two a packet of the chunk, and
 * three of padding.
 */
const touchList = memory.data(<i32>(<usize>CHUNK * 8 + 12), 16);

/** Entry k of touchList. */
@inline function listTouch(k: u32, address: u32): void {
  store<u32>(touchList + (<usize>k << 2), address);
}

/** Load the first k addresses of touchList (padded to a multiple of four with an address in the cache). */
@inline function touchListed(k: u32): u64 {
  let end = touchList + (<usize>k << 2);
  store<u32>(end, <u32>touchList);
  store<u32>(end + 4, <u32>touchList);
  store<u32>(end + 8, <u32>touchList);
  let acc: u64 = 0;
  for (let a = touchList; a < end; a += 16) {
    acc += load<u64>(<usize>load<u32>(a)) + load<u64>(<usize>load<u32>(a + 4)) +
      load<u64>(<usize>load<u32>(a + 8)) + load<u64>(<usize>load<u32>(a + 12));
  }
  return acc;
}

@inline function entryAt(i: u32): usize {
  return hints + <usize>i * ENTRY;
}

// What the prefetch found for packet i of the last chunk. i < CHUNK: the
// index process_batch gives the packet within its chunk (the only caller:
// no check spent on it per packet).

/**
 * The flow hash the prefetch computed for packet i, or -1 (not a shape it
 * recognised). It is flowHash of exactly the fields the pipeline's flow
 * lookup hashes, so the lookup may use it.
 */
@inline export function prefetchedHash(i: u32): i64 {
  let e = entryAt(i);
  return load<u32>(e + E_BUCKET) == 0 ? -1 : <i64>load<u32>(e + E_HASH);
}

/**
 * The first reference packet i's bucket held under its tag when its chunk was
 * prefetched, or -1: a candidate only (a tag is 8 bits of the hash, and
 * earlier packets of the chunk may have ended or replaced that flow since).
 */
@inline export function prefetchedRef(i: u32): i64 {
  return <i64>load<u32>(entryAt(i) + E_REF) - 1;
}

/** commonShape() of packet i (parse.ts), or 0: not a common shape, or not classified. */
@inline export function prefetchedShape(i: u32): u64 {
  return load<u64>(entryAt(i) + E_SHAPE);
}

/** True when packet i's key was certainly not in the flow index when its chunk was prefetched (a new flow, or nothing). */
@inline export function prefetchedAbsent(i: u32): bool {
  return load<u32>(entryAt(i) + E_ABSENT) != 0;
}

/** The group of packet i (groupLookup of its destination), or -1 when the prefetch did not look it up. */
@inline export function prefetchedGroup(i: u32): i64 {
  return <i64>load<u32>(entryAt(i) + E_GROUP) - 1;
}

/** The target selectTarget picks for packet i's new flow, or -1 when the prefetch did not (or could not) pick it. */
@inline export function prefetchedTarget(i: u32): i64 {
  return <i64>load<u32>(entryAt(i) + E_TARGET) - 1;
}

/** The PortHints block (flows.ts) of packet i's new flow: its first NAT port candidates, or none (count 0). */
@inline export function prefetchedPorts(i: u32): usize {
  return entryAt(i) + E_PORTS;
}

/** The last group lookup of the chunk: its key (address, then port raw | protocol << 16 | family << 24) and group, or none. */
const lastGroupAddr = memory.data(16, 16);
let lastGroupKey: u32 = 0; // 0: none (a family is never 0)
let lastGroup: i64 = -1;

/** groupLookup, remembered for the rest of the chunk: new flows come in runs toward one group. */
@inline function chunkGroup(family: u32, proto: u32, dst: usize, portRaw: u32): i64 {
  let key = portRaw | (proto << 16) | (family << 24);
  if (key == lastGroupKey && (family == 4
    ? load<u32>(lastGroupAddr) == load<u32>(dst)
    : load<u64>(lastGroupAddr) == load<u64>(dst) && load<u64>(lastGroupAddr + 8) == load<u64>(dst + 8))) return lastGroup;
  let gid = groupLookup(family, proto, dst, portRaw);
  lastGroupKey = key;
  if (family == 4) store<u32>(lastGroupAddr, load<u32>(dst));
  else {
    store<u64>(lastGroupAddr, load<u64>(dst));
    store<u64>(lastGroupAddr + 8, load<u64>(dst + 8));
  }
  lastGroup = gid;
  return gid;
}

export function prefetchChunk(desc: usize, n: u32): void {
  if (n > CHUNK) n = CHUNK; // (process_batch never passes more)
  lastGroupKey = 0; // (the groups may change between batches)
  flowIndexNewChunk(); // (what steps 3 and 6 find absent stays so for hashes not indexed since)
  let base = flowIndexBase();
  let nb = flowIndexBuckets();
  // 0. touch the packets' headers: bytes a NIC (or the framing long before) wrote are not in the cache, and
  // classifying one packet at a time would wait for each alone
  let k: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let d = desc + <usize>i * Layout.DESC_SIZE;
    let p = load<u32>(d + Desc.OFF);
    let len = load<u32>(d + Desc.LEN);
    if (p == 0 || len < 8) continue; // (a touch loads 8 bytes, all of them the packet's)
    listTouch(k++, p);
    listTouch(k++, p + min(HEADER_REACH, len - 8));
  }
  let acc = touchListed(k);
  // 1. classify (the common shapes of parse.ts) and hash
  for (let i: u32 = 0; i < n; i++) {
    let d = desc + <usize>i * Layout.DESC_SIZE;
    let e = entryAt(i);
    store<u64>(e + E_BUCKET, 0);
    store<u64>(e + E_GROUP, 0);
    store<u64>(e + E_SHAPE, 0);
    store<u64>(e + E_ABSENT, 0); // and the first reverse bucket
    store<u32>(e + E_REF, 0);
    let p = <usize>load<u32>(d + Desc.OFF);
    if (p == 0) continue;
    let link = <u32>load<u16>(d + Desc.LINK), len = load<u32>(d + Desc.LEN);
    // the commonest shape (TCP or UDP in IPv4 without options) hashed with what its shape fixes, the rest decoded
    let shape = ipv4Shape(link, p, len);
    let h: u32;
    if (shape != 0) {
      let ip = p + shapeLinkLen(shape);
      h = flowHashV4(load<u64>(ip + 12), load<u32>(ip + IPV4_HEADER), shapeProto(shape));
    } else {
      shape = otherShape(link, p, len);
      if (shape == 0) continue;
      let ip = p + shapeLinkLen(shape);
      let family = shapeFamily(shape);
      let ports = shapePorts(shape, ip + shapeIpHeader(shape));
      h = family == 4
        ? flowHash(4, ip + 12, ip + 16, ports & 0xffff, ports >>> 16, shapeProto(shape))
        : flowHash(6, ip + 8, ip + 24, ports & 0xffff, ports >>> 16, shapeProto(shape));
    }
    store<u64>(e + E_SHAPE, shape);
    store<u32>(e + E_BUCKET, <u32>bucketAt(base, homeBucket(h, nb)));
    store<u32>(e + E_HASH, h);
  }
  if (stopsBefore(Stage.FlowLookup)) { sink += acc; return; }
  // 2. touch the buckets
  k = 0;
  for (let i: u32 = 0; i < n; i++) {
    let b = load<u32>(entryAt(i) + E_BUCKET);
    if (b != 0) listTouch(k++, b);
  }
  acc += touchListed(k);
  // 3. a packet whose bucket names a candidate: note its record; one whose key is certainly not there: its group and
  // its hints, at once where no table picks its target, else after its table entry, then the target that names, were
  // touched beside the chunk's other new flows'
  let range = portMax - portMin + 1;
  let news: u32 = 0;
  let pend: u32 = 0;
  k = 0;
  for (let i: u32 = 0; i < n; i++) {
    let e = entryAt(i);
    let b = <usize>load<u32>(e + E_BUCKET);
    if (b == 0) continue;
    let m = slotsOf(b, load<u32>(e + E_HASH));
    if (m != 0) {
      store<u32>(e + E_REF, refAt(b, ctz<u32>(m)) + 1);
    } else if (!overflowed(b)) {
      store<u32>(e + E_ABSENT, 1);
      if (stopsBefore(Stage.Select)) continue;
      let entry = newFlow(e, desc + <usize>i * Layout.DESC_SIZE, range);
      if (entry > 0) {
        store<u8>(pending + pend++, <u8>i);
        listTouch(k++, <u32>entry);
      } else if (entry == 0 && load<u32>(e + E_PORTS) != 0) {
        store<u8>(hinted + news++, <u8>i);
      }
    }
  }
  if (pend != 0) {
    // the new flows a table picks for: their entries, then the targets those name, then their hints
    acc += touchListed(k);
    k = 0;
    for (let j: u32 = 0; j < pend; j++) listTouch(k++, <u32>targetPtr(load<u32>(<usize>load<u32>(entryAt(<u32>load<u8>(pending + j)) + E_ENTRY))));
    acc += touchListed(k);
    for (let j: u32 = 0; j < pend; j++) {
      let i = <u32>load<u8>(pending + j);
      let e = entryAt(i);
      acc += newFlowHints(e, range);
      if (load<u32>(e + E_PORTS) != 0) store<u8>(hinted + news++, <u8>i);
    }
  }
  // 4. touch those records in a tight pass (no touch waits behind a new flow's hints: a touch's load holds back
  // every later instruction until it completes)
  k = 0;
  for (let i: u32 = 0; i < n; i++) {
    // a 48-byte record may straddle two lines: touch the first and the last bytes the packet reads (flows.ts)
    let e = entryAt(i);
    let ref = load<u32>(e + E_REF);
    if (ref == 0) continue;
    let rec = flowPtr((ref - 1) >> 1);
    listTouch(k++, <u32>rec);
    listTouch(k++, <u32>(rec + (shapeFamily(load<u64>(e + E_SHAPE)) == 4 ? F_V4_END : F_V6_END) - 8));
  }
  acc += touchListed(k);
  // then, where targets are many, the targets those records name, for packets toward them (the fast path reads the
  // target's state, address and counter)
  let targets = targetsInUse();
  if (targets > MANY_TARGETS) {
    k = 0;
    for (let i: u32 = 0; i < n; i++) {
      let ref = load<u32>(entryAt(i) + E_REF);
      if (ref == 0 || ((ref - 1) & DIR_REVERSE) != 0) continue;
      let tid = load<u32>(flowPtr((ref - 1) >> 1) + F_TARGET);
      if (tid < targets) listTouch(k++, <u32>targetPtr(tid)); // (a candidate only: its record may be another key's)
    }
    acc += touchListed(k);
  }
  if (stopsBefore(Stage.Create)) { sink += acc; return; }
  // 5. where the binding's port space keeps bits, touch the first candidate's (the one its binding likely sets),
  // and the second's in a dense space (no candidate hashed yet); then, in a dense space, take the first free
  // candidate and hash its reverse key
  k = 0;
  for (let j: u32 = 0; j < news; j++) {
    let e = entryAt(<u32>load<u8>(hinted + j));
    let space = load<u32>(e + E_SPACE);
    if (space == 0) continue;
    let ph = e + E_PORTS;
    listTouch(k++, space + (<u32>load<u16>(ph + PH_PORT) >> 3));
    if (load<u32>(ph + PH_HASHED) == 0) listTouch(k++, space + (<u32>load<u16>(ph + PH_PORT + 2) >> 3));
  }
  acc += touchListed(k);
  for (let j: u32 = 0; j < news; j++) {
    let e = entryAt(<u32>load<u8>(hinted + j));
    let space = <usize>load<u32>(e + E_SPACE);
    let ph = e + E_PORTS;
    if (space == 0 || load<u32>(ph + PH_HASHED) != 0) continue;
    let count = load<u32>(ph);
    for (let k: u32 = 0; k < count; k++) {
      let port = <u32>load<u16>(ph + PH_PORT + (<usize>k << 1));
      if (portBound(space, port)) continue;
      let key = load<u32>(e + E_REVKEY);
      store<u32>(ph + PH_HASH, reverseHash(load<u64>(e + E_PREFIX), key >>> 24, (key >>> 16) & 0xff, key & 0xffff, <u32>bswap<u16>(<u16>port)));
      store<u32>(ph + PH_HASHED, 1 << k);
      break;
    }
  }
  // 6. touch the reverse buckets of the candidates hashed, and the records those name (without a dense port space,
  // a bound port's holder, which allocNatPort reads); note the candidates no binding holds (PH_FREE)
  k = 0;
  for (let j: u32 = 0; j < news; j++) {
    let ph = entryAt(<u32>load<u8>(hinted + j)) + E_PORTS;
    for (let c = <usize>popcnt(load<u32>(ph + PH_HASHED)); c-- > 0;) {
      listTouch(k++, <u32>bucketAt(base, homeBucket(load<u32>(ph + PH_HASH + (c << 2)), nb)));
    }
  }
  acc += touchListed(k);
  for (let j: u32 = 0; j < news; j++) {
    let ph = entryAt(<u32>load<u8>(hinted + j)) + E_PORTS;
    let free: u32 = 0;
    let c: usize = 0;
    for (let bits = load<u32>(ph + PH_HASHED); bits != 0; bits &= bits - 1) {
      let hr = load<u32>(ph + PH_HASH + (c++ << 2)); // (the hashes of the hashed candidates, in candidate order)
      let b = bucketAt(base, homeBucket(hr, nb));
      let m = slotsOf(b, hr);
      if (m == 0) {
        if (!overflowed(b)) free |= bits & (~bits + 1); // this candidate's bit
        continue;
      }
      let ref = refAt(b, ctz<u32>(m));
      if ((ref & DIR_REVERSE) == 0) continue;
      let rec = flowPtr(ref >> 1);
      acc += <u64>load<u32>(rec + F_TARGET) + <u64>load<u32>(rec + F_LAST);
    }
    store<u32>(ph + PH_FREE, free);
  }
  sink += acc;
}

/**
 * A packet whose key is not in the flow index: if it is addressed to a group,
 * note the group; where a table picks its target, return the table entry
 * the selection reads (selectionEntry: the caller touches it, then the
 * target it names, before newFlowHints), else note its hints now (hintsOf)
 * and return 0; -1 when it is not addressed to a group (or is a reply).
 */
function newFlow(e: usize, d: usize, range: u32): i64 {
  let shape = load<u64>(e + E_SHAPE);
  // one copy per family, each with the family a constant
  return shapeFamily(shape) == 4 ? groupFor(e, d, range, shape, 4) : groupFor(e, d, range, shape, 6);
}

@inline function groupFor(e: usize, d: usize, range: u32, shape: u64, family: u32): i64 {
  let ip = <usize>load<u32>(d + Desc.OFF) + shapeLinkLen(shape);
  let proto = shapeProto(shape);
  let src = ip + (family == 4 ? 12 : 8);
  let dst = ip + (family == 4 ? 16 : 24);
  let ports = shapePorts(shape, ip + shapeIpHeader(shape));
  let sport = ports & 0xffff;
  let dport = ports >>> 16;
  let tcpUdp = proto == PROTO_TCP || proto == PROTO_UDP;
  // a reply is never a new flow (nor an echo reply)
  if (isProxyAddr(family, dst)) return -1;
  if (!tcpUdp && sport == 0) return -1;
  let gid = chunkGroup(family, proto, dst, tcpUdp ? dport : 0);
  if (gid < 0) return -1;
  store<u32>(e + E_GROUP, <u32>gid + 1);
  let entry = selectionEntry(<u32>gid, family, src, dst, sport, dport, proto);
  store<u32>(e + E_ENTRY, <u32>entry);
  if (entry != 0) {
    store<u32>(e + E_IP, <u32>ip);
    store<u32>(e + E_L4PORTS, ports);
    return <i64>entry;
  }
  sink += hintsOf(e, range, family, proto, src, dst, sport, dport, <u32>gid, 0);
  return 0;
}

/** The hints of a new flow newFlow left to be picked after its table entry and target were touched. Returns a touch. */
@inline function newFlowHints(e: usize, range: u32): u64 {
  let shape = load<u64>(e + E_SHAPE);
  // one copy per family, each with the family a constant
  return shapeFamily(shape) == 4 ? hintsFor(e, range, shape, 4) : hintsFor(e, range, shape, 6);
}

@inline function hintsFor(e: usize, range: u32, shape: u64, family: u32): u64 {
  let ip = <usize>load<u32>(e + E_IP);
  let ports = load<u32>(e + E_L4PORTS);
  return hintsOf(e, range, family, shapeProto(shape), ip + (family == 4 ? 12 : 8), ip + (family == 4 ? 16 : 24), ports & 0xffff, ports >>> 16,
    load<u32>(e + E_GROUP) - 1, <usize>load<u32>(e + E_ENTRY));
}

/**
 * A new flow of group gid (`entry`: its selection's table entry, or 0): note
 * the target and the reverse buckets of its first NAT ports when the
 * group's policy picks the target from the packet alone. Returns a value
 * loaded from the target (a touch).
 */
@inline function hintsOf(e: usize, range: u32, family: u32, proto: u32, src: usize, dst: usize, sport: u32, dport: u32, gid: u32, entry: usize): u64 {
  let h = load<u32>(e + E_HASH);
  let policy = <u32>load<u8>(groupPtr(gid) + G_POLICY);
  if (policy != Policy.Affinity && policy != Policy.Proximity) return 0; // the others change state as they pick
  let tid = entry != 0 ? selectAt(entry, gid, family, src, dst, sport, dport, proto) : selectTarget(gid, family, src, dst, sport, dport, proto);
  if (tid < 0) return 0;
  store<u32>(e + E_TARGET, <u32>tid + 1);
  let t = targetPtr(<u32>tid);
  let flags = <u32>load<u8>(t + T_FLAGS);
  if ((flags & TF_AWARE) != 0) return <u64>flags;
  let tport = raw16(t + T_PORT);
  if (tport == 0) tport = dport;
  // the first candidates: where the binding has a dense port space (ports.ts), their ports (step 5 picks the first
  // free one, its bit read beside the chunk's other misses, and hashes its reverse key alone); else the first one
  // (PORT_HINTS_PROBED), hashed
  let id = targetPortSpace(t, family, proto, tport, false);
  let space = id != 0 ? keptBits(id) : 0; // the bitmap the binding will change, if any
  let dense = space != 0 && denseBits(id) != 0; // else mostly free: probed as allocNatPort will
  let prefix = reversePrefix(family, <u32>tid);
  let ph = e + E_PORTS;
  let most = min(dense ? PORT_HINTS : PORT_HINTS_PROBED, range);
  let hashed: u32 = 0;
  let k: u32 = 0;
  for (; k < most; k++) {
    let port = natPortCandidate(h, k, range);
    store<u16>(ph + PH_PORT + (<usize>k << 1), <u16>port);
    if (dense) continue;
    store<u32>(ph + PH_HASH + (<usize>k << 2), reverseHash(prefix, family, proto, tport, <u32>bswap<u16>(<u16>port)));
    hashed |= 1 << k;
  }
  store<u32>(e + E_SPACE, <u32>space);
  store<u64>(e + E_PREFIX, prefix);
  store<u32>(e + E_REVKEY, tport | (proto << 16) | (family << 24));
  store<u32>(ph, k);
  store<u32>(ph + PH_HASHED, hashed);
  return <u64>flags;
}
