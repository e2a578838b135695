// The flow table: one 48-byte record per flow, reachable from both
// directions through two references in a bucket index (client->TA and, for a
// NAT binding, target->proxy:port). Sized once at start.
//
// Expiry is lazy and bounded: a lookup that finds an idle record treats it as
// gone and frees it, and each batch sweeps a fixed number of records — never
// the whole table (more while flows expire as fast as they come). A NAT port
// is handed out only after checking that no flow holds it (in the reverse
// index, or in a dense port space's bits, ports.ts; an idle holder's port is
// taken only when every port tried is held, and the holder is freed first).
// Nothing here allocates after init.
//
// SYN floods (spoofed sources) must not shut a target out: a TCP flow opened
// by a SYN is *half-open* until its handshake completes (or it is reset).
// - Early drop (as conntrack's): when every NAT port tried toward a target is
//   held, the oldest transitory TCP binding among those tried (half-open, or
//   closed) is freed and its port reused, so new clients are served at once
//   instead of after the transitory timeout. An established binding is never
//   taken; a freed flow is gone before its port is handed out again, so no
//   binding ever serves two live flows.
// - Half-open flows per source are capped (`halfOpenPerSource`), counted in a
//   fixed table of counters indexed by a hash of the client address (a flood
//   from one address cannot fill the table or a target's ports; two sources
//   sharing a counter share its cap).

import { Limit, Reason, Stat } from "../shared/abi";
import { raw16, raw32 } from "../wire/bytes";
import { flowHash, flowHashAddrs, flowHashPorts, hashAddr, finalize, mix } from "../hash";
import {
  bucketAt, bucketsFor, homeBucket, indexInsertInline, indexRemove, nextBucket, overflowed, refAt, slotsOf, BUCKET_BYTES,
} from "../table/bucket-index";
import { reservePages } from "../memory";
import { denseBits, portBind, portBound, portRelease, portsBuildDone, portsBuildSeen, portsBuildStart, targetPortSpace } from "./ports";
import { bump, getStat, setStat } from "../counters";
import {
  groupLive, groupPtr, targetPtr, targetFlowEnded, targetFlowStarted, G_ADDR, T_ADDR, T_PORT, T_FLAGS, TF_AWARE, T_ACTIVE,
} from "../group/groups";
import {
  halfOpenPerSource, portMin, portMax, proxyAddrPtr, timeoutIcmp, timeoutTcpEstablished, timeoutTcpTransitory, timeoutUdp,
} from "../settings";
import { PROTO_TCP, PROTO_UDP } from "../wire/ip";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../wire/l4";

// ---- flow record (48 bytes) ----
// What a packet of a live flow reads comes first, the client address last of
// it: an IPv4 flow's packets read bytes 0-23 only, which lie in one cache
// line for three records in four (records are 48 bytes apart, so a record
// starts at 0, 48, 32 or 16 bytes into a line); an IPv6 flow's read 0-35.
export const FLOW_SIZE: usize = 48;
export const F_CPORT: usize = 0; // u16 raw: client port or ICMP echo identifier
export const F_GPORT: usize = 2; // u16 raw: destination port the client used (the TA's port)
export const F_GROUP: usize = 4; // u32
export const F_TARGET: usize = 8; // u32
export const F_NPORT: usize = 12; // u16 raw: NAT port / ICMP identifier toward the target
export const F_PROTO: usize = 14; // u8
export const F_FLAGS: usize = 15; // u8
export const F_LAST: usize = 16; // u32 seconds of the last packet
export const F_CADDR: usize = 20; // 16 bytes: client address (IPv4 in the first 4)
export const F_NEXT: usize = 36; // u32 free-list link; while used, its NAT binding's port space id (ports.ts; 0: none)
export const F_HFWD: usize = 40; // u32 hash of the client->TA key
export const F_HREV: usize = 44; // u32 hash of the target->proxy key
/** Where the bytes a live flow's packet reads in its record end, by family (the prefetch touches the 8 bytes before). */
export const F_V4_END: usize = F_CADDR + 4;
export const F_V6_END: usize = F_CADDR + 16;
if (F_LAST + 4 > F_CADDR || F_V4_END > 24 || F_V6_END > F_NEXT) ERROR("flows: a live flow's packet reads more than the first bytes of its record");

export const FF_V6: u32 = 1;
export const FF_AWARE: u32 = 2; // tunnelled to a PIAS-aware target: no NAT binding, no reverse key
export const FF_ESTABLISHED: u32 = 4;
export const FF_FIN_FWD: u32 = 8;
export const FF_FIN_REV: u32 = 16;
export const FF_CLOSED: u32 = 32; // RST seen or FIN both ways: transitory timeout
export const FF_USED: u32 = 64;
export const FF_HALF_OPEN: u32 = 128; // opened by a SYN, handshake not complete: counted in its source's half-open counter
/** The bits of the u16 at F_PROTO (protocol, flags) a key compares: the protocol, USED and V6. */
const KEY_MASK: u32 = 0xff | ((FF_USED | FF_V6) << 8);

/** Direction bit of a reference: 0 = client->TA, 1 = target->proxy. */
export const DIR_REVERSE: u32 = 1;

/** Records the sweep inspects per batch (bounded work; lookups expire lazily anyway). */
const SWEEP_PER_BATCH: u32 = 64;
/** Records inspected for a victim when the table is full. */
const EVICT_SCAN: u32 = 64;
/** NAT ports tried before giving up: at 90% of a target's ports bound, 64 random tries all fail once in 850. */
const PORT_TRIES: u32 = 64;
/** Tries toward a target whose ports all look bound (some holders may have expired or be transitory). */
const PORT_TRIES_FULL: u32 = 8;
/** Half-open counters (u16), indexed by a hash of the client address. */
export const SOURCE_COUNTERS: u32 = 65536;
/** Seed of that hash ("syns"). */
export const SEED_SOURCE: u32 = 0x73796e73;

let flows: usize = 0;
let capacity: u32 = 0;
let hwm: u32 = 0; // records ever used; above it, all are fresh
let freeHead: i64 = -1;
let live: u32 = 0;
let hand: u32 = 0;
let index: usize = 0;
let indexBuckets: u32 = 0;
let halfOpen: usize = 0;

/**
 * The flow index's fill at capacity, in percent of its slots (two entries a
 * flow). At 80% about 6% of keys sit past their home bucket and 2.4% share
 * their tag with another flow's there: the batch prefetch touches neither,
 * so such a packet stalls on its misses one after the other (two DRAM
 * round trips). Paired at 1M live flows against 80%: 60% new flows 0.68-0.76,
 * live-flow packets 0.88-0.91; 50% a further 0.94-0.95 on both; 40% slower
 * than 50% (its footprint). Costs 8 bytes a flow over 80%.
 */
const INDEX_FILL: u32 = 50;

export function flowsInit(maxFlows: u32): bool {
  if (maxFlows > <u32>Limit.FLOWS) return false;
  capacity = maxFlows;
  flows = reservePages(<usize>maxFlows * FLOW_SIZE);
  indexBuckets = bucketsFor(maxFlows * 2, INDEX_FILL);
  index = reservePages(<usize>indexBuckets * BUCKET_BYTES);
  halfOpen = reservePages(<usize>SOURCE_COUNTERS << 1);
  return flows != 0 && index != 0 && halfOpen != 0;
}

/** The half-open counter of a client address. */
@inline function halfOpenCounter(family: u32, src: usize): usize {
  return halfOpen + (<usize>(hashAddr(SEED_SOURCE, src, family) & (SOURCE_COUNTERS - 1)) << 1);
}

/** A half-open flow completed its handshake or was reset: its source's counter drops (call before clearing FF_HALF_OPEN). */
export function halfOpenEnded(rec: usize): void {
  let c = halfOpenCounter(flowFamily(rec), rec + F_CADDR);
  let n = load<u16>(c);
  if (n != 0) store<u16>(c, n - 1);
}

@inline export function flowPtr(idx: u32): usize {
  return flows + <usize>idx * FLOW_SIZE;
}

/** The flow index (for the batch prefetch). */
@inline export function flowIndexBase(): usize { return index; }
@inline export function flowIndexBuckets(): u32 { return indexBuckets; }

/**
 * The hashes of the keys indexed since the batch prefetch's current chunk
 * began: for each of 1,024 slots (hash >>> 22), the chunk (a 16-bit
 * generation) in which a key of such a hash was last indexed. What the
 * prefetch found absent under a hash whose slot is not of the current chunk
 * is absent still (no key is indexed but through indexKey; a removal only
 * makes it more so): newFlowPath creates such a key's flow without probing
 * for it again, and allocNatPort takes such a candidate port without
 * probing for its holder. A slot shared with another hash only costs that
 * probe back (a chunk of 64 new flows indexes 128 keys: an eighth of the
 * slots by its end). A generation instead of clearing the slots each chunk:
 * a chunk of live flows' packets, which indexes nothing, pays nothing.
 */
const indexedSince = memory.data(2048, 16);
let indexedGeneration: u32 = 1;

/** A chunk begins (prefetchChunk): no key indexed since. */
@inline export function flowIndexNewChunk(): void {
  let g = (indexedGeneration + 1) & 0xffff;
  if (g == 0) {
    // the generations wrapped: forget every slot's (once every 65,535 chunks)
    for (let k: usize = 0; k < 2048; k += 16) v128.store(indexedSince + k, i64x2.splat(0));
    g = 1;
  }
  indexedGeneration = g;
}

/** False when no key of hash h was indexed since the chunk began (true: perhaps one was). */
@inline export function flowIndexedSince(h: u32): bool {
  return <u32>load<u16>(indexedSince + (<usize>(h >>> 22) << 1)) == indexedGeneration;
}

/** Index reference `ref` under hash h, noting h for flowIndexedSince. */
@inline function indexKey(h: u32, ref: u32): void {
  store<u16>(indexedSince + (<usize>(h >>> 22) << 1), <u16>indexedGeneration);
  indexInsertInline(index, indexBuckets, h, ref);
}

export function flows_live(): u32 {
  return live;
}

export function flows_capacity(): u32 {
  return capacity;
}

/** Bytes of memory per flow: record plus its share of the index. */
export function flow_bytes_per_flow(): f64 {
  return <f64>FLOW_SIZE + <f64>(<u64>indexBuckets * BUCKET_BYTES) / <f64>capacity;
}

@inline function sameAddr(family: u32, a: usize, b: usize): bool {
  if (family == 4) return raw32(a) == raw32(b);
  return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8);
}

/** Port the target sees: its configured port, or the client's destination port for an every-port target. */
@inline export function targetPortRaw(rec: usize): u32 {
  let p = raw16(targetPtr(load<u32>(rec + F_TARGET)) + T_PORT);
  return p != 0 ? p : raw16(rec + F_GPORT);
}

@inline export function flowFamily(rec: usize): u32 {
  return (<u32>load<u8>(rec + F_FLAGS) & FF_V6) != 0 ? 6 : 4;
}

/**
 * Find the flow whose key (either direction) is the tuple src:sport -> dst:dport.
 * Returns (record index << 1 | direction) or -1. Does not check expiry.
 */
export function flowLookup(family: u32, proto: u32, src: usize, dst: usize, sport: u32, dport: u32): i64 {
  return flowLookupHashed(flowHash(family, src, dst, sport, dport, proto), family, proto, src, dst, sport, dport);
}

/** flowLookup with the tuple's hash already computed (flowHash of the same fields). */
@inline export function flowLookupHashed(h: u32, family: u32, proto: u32, src: usize, dst: usize, sport: u32, dport: u32): i64 {
  let want = keyWant(family, proto);
  let ports = sport | (dport << 16);
  let nb = indexBuckets;
  let bi = homeBucket(h, nb);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = bucketAt(index, bi);
    for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
      let ref = refAt(b, ctz<u32>(m));
      if (refHolds(ref, want, family, src, dst, ports)) return <i64>ref;
    }
    if (!overflowed(b)) break;
    bi = nextBucket(bi, nb);
  }
  return -1;
}

/**
 * flowLookupHashed, trying first `candidate` (a reference the batch prefetch
 * found under the key's tag, or -1): when it holds the key, no probe. The
 * ports as one word (source port in the low half), raw.
 */
@inline export function flowLookupFrom(candidate: i64, h: u32, family: u32, proto: u32, src: usize, dst: usize, ports: u32): i64 {
  if (candidate >= 0 && refHolds(<u32>candidate, keyWant(family, proto), family, src, dst, ports)) return candidate;
  return flowLookupHashed(h, family, proto, src, dst, ports & 0xffff, ports >>> 16);
}

/** proto and flags as one u16 load of a record gives them: the protocol, and the USED and V6 flags the key's family needs. */
@inline function keyWant(family: u32, proto: u32): u32 {
  return proto | ((FF_USED | (family == 6 ? FF_V6 : 0)) << 8);
}

/**
 * True when index reference `ref` is the key src:sport -> dst:dport (`want`:
 * keyWant; `ports`: sport | dport << 16, raw) in its direction. A reverse reference also needs a flow with a
 * binding (FF_AWARE clear): one the prefetch saw may since name a flow moved
 * to a PIAS-aware target (flowRepin keeps the old NAT port in the record
 * while the reverse key leaves the index), or a record taken again by an
 * aware flow.
 */
@inline function refHolds(ref: u32, want: u32, family: u32, src: usize, dst: usize, ports: u32): bool {
  let rec = flowPtr(ref >> 1);
  let mask = (ref & DIR_REVERSE) == 0 ? KEY_MASK : KEY_MASK | (FF_AWARE << 8);
  if ((<u32>load<u16>(rec + F_PROTO) & mask) != want) return false;
  if ((ref & DIR_REVERSE) == 0) {
    return load<u32>(rec + F_CPORT) == ports && sameAddr(family, rec + F_CADDR, src) &&
      sameAddr(family, groupPtr(load<u32>(rec + F_GROUP)) + G_ADDR, dst);
  }
  return raw16(rec + F_NPORT) == ports >>> 16 && targetPortRaw(rec) == (ports & 0xffff) &&
    sameAddr(family, targetPtr(load<u32>(rec + F_TARGET)) + T_ADDR, src) &&
    sameAddr(family, proxyAddrPtr(family), dst);
}

/**
 * TCP state for timeouts (RFC 5382): transitory until the handshake completes,
 * again after FIN/RST. A flow opened by a SYN stops counting as half-open
 * against its source once established or reset.
 */
@inline export function trackTcp(rec: usize, flags: u32, fromTarget: bool): void {
  let f = <u32>load<u8>(rec + F_FLAGS);
  if ((flags & TCP_RST) != 0) {
    f |= FF_CLOSED;
  } else if ((flags & TCP_SYN) != 0) {
    if (!fromTarget && (flags & TCP_ACK) == 0 && (f & FF_CLOSED) != 0) {
      // the client reuses the tuple for a new connection
      f &= ~(FF_CLOSED | FF_ESTABLISHED | FF_FIN_FWD | FF_FIN_REV);
    }
  } else {
    if ((flags & TCP_FIN) != 0) f |= fromTarget ? FF_FIN_REV : FF_FIN_FWD;
    if ((f & (FF_FIN_FWD | FF_FIN_REV)) == (FF_FIN_FWD | FF_FIN_REV)) f |= FF_CLOSED;
    f |= FF_ESTABLISHED;
  }
  if ((f & FF_HALF_OPEN) != 0 && (f & (FF_ESTABLISHED | FF_CLOSED)) != 0) {
    halfOpenEnded(rec);
    f &= ~FF_HALF_OPEN;
  }
  store<u8>(rec + F_FLAGS, <u8>f);
}

/** Idle timeout of a flow, by protocol and TCP state. */
@inline export function flowTimeout(rec: usize): u32 {
  let proto = <u32>load<u8>(rec + F_PROTO);
  if (proto == PROTO_TCP) {
    let f = <u32>load<u8>(rec + F_FLAGS);
    return (f & FF_ESTABLISHED) != 0 && (f & FF_CLOSED) == 0 ? timeoutTcpEstablished : timeoutTcpTransitory;
  }
  if (proto == PROTO_UDP) return timeoutUdp;
  return timeoutIcmp;
}

@inline export function flowExpired(rec: usize, now: u32): bool {
  // signed difference: a trace whose clock steps back does not expire flows
  return <i32>(now - load<u32>(rec + F_LAST)) > <i32>flowTimeout(rec);
}

/** A flow that is over: idle past its timeout, or its group was removed. Free it where found. */
@inline export function flowStale(rec: usize, now: u32): bool {
  return flowExpired(rec, now) || !groupLive(load<u32>(rec + F_GROUP));
}

/**
 * The part of a binding's reverse-key hash that depends on the target alone
 * (its address and the proxy's): flowHash's first steps, once for all the
 * NAT ports a new flow tries.
 */
@inline export function reversePrefix(family: u32, tid: u32): u64 {
  return flowHashAddrs(family, targetPtr(tid) + T_ADDR, proxyAddrPtr(family));
}

/** Reverse-key hash of a binding, the target's reply src T:t -> dst P:x: flowHash from its prefix. */
@inline export function reverseHash(prefix: u64, family: u32, proto: u32, tportRaw: u32, nportRaw: u32): u32 {
  return flowHashPorts(prefix, family, tportRaw, nportRaw, proto);
}

/** End a flow: unlink both keys, release its target and group, recycle the record. */
export function flowFree(idx: u32): void {
  let rec = flowPtr(idx);
  let f = <u32>load<u8>(rec + F_FLAGS);
  if ((f & FF_USED) == 0) return;
  if ((f & FF_HALF_OPEN) != 0) halfOpenEnded(rec);
  indexRemove(index, indexBuckets, load<u32>(rec + F_HFWD), idx << 1);
  if ((f & FF_AWARE) == 0) unbind(rec, idx);
  store<u8>(rec + F_FLAGS, 0);
  targetFlowEnded(load<u32>(rec + F_TARGET), load<u32>(rec + F_GROUP));
  store<u32>(rec + F_NEXT, <u32>freeHead);
  freeHead = <i64>idx;
  live--;
  bump(Stat.FlowsExpired);
  setStat(Stat.FlowsLive, live);
}

/**
 * The flow that holds the binding T:t <-> P:x, or -1. `live`: only a live
 * (unexpired) holder counts, and an expired one is freed.
 */
function bindingHolder(family: u32, proto: u32, tid: u32, tportRaw: u32, nportRaw: u32, h: u32, now: u32, live: bool): i64 {
  let tAddr = targetPtr(tid) + T_ADDR;
  let want = proto | ((FF_USED | (family == 6 ? FF_V6 : 0)) << 8);
  let nb = indexBuckets;
  let bi = homeBucket(h, nb);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = bucketAt(index, bi);
    for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
      let ref = refAt(b, ctz<u32>(m));
      if ((ref & DIR_REVERSE) == 0) continue;
      let rec = flowPtr(ref >> 1);
      if ((<u32>load<u16>(rec + F_PROTO) & KEY_MASK) != want || raw16(rec + F_NPORT) != nportRaw) continue;
      if (targetPortRaw(rec) != tportRaw || !sameAddr(family, targetPtr(load<u32>(rec + F_TARGET)) + T_ADDR, tAddr)) continue;
      if (live && flowStale(rec, now)) {
        flowFree(ref >> 1);
        return -1;
      }
      return <i64>(ref >> 1);
    }
    if (!overflowed(b)) break;
    bi = nextBucket(bi, nb);
  }
  return -1;
}

/** Index a flow's NAT binding (its reverse key) and count its port bound in port space `space` (0: none). */
@inline function bind(rec: usize, idx: u32, nat: u64, space: u32): void {
  let hrev = <u32>(nat >> 32);
  store<u16>(rec + F_NPORT, bswap<u16>(<u16>nat));
  store<u32>(rec + F_HREV, hrev);
  store<u32>(rec + F_NEXT, space);
  indexKey(hrev, (idx << 1) | DIR_REVERSE);
  if (space != 0) portBind(space, <u32>nat & 0xffff, portMax - portMin + 1);
}

/** Undo bind(). */
function unbind(rec: usize, idx: u32): void {
  indexRemove(index, indexBuckets, load<u32>(rec + F_HREV), (idx << 1) | DIR_REVERSE);
  let space = load<u32>(rec + F_NEXT);
  if (space != 0) portRelease(space, <u32>bswap<u16>(load<u16>(rec + F_NPORT)));
}

/** A TCP flow in a transitory state: half-open (handshake not complete) or closed (RST, or FIN both ways). */
@inline function transitory(rec: usize): bool {
  let f = <u32>load<u8>(rec + F_FLAGS);
  return <u32>load<u8>(rec + F_PROTO) == PROTO_TCP && ((f & FF_ESTABLISHED) == 0 || (f & FF_CLOSED) != 0);
}

/**
 * A new flow's first NAT port candidates, computed ahead by the prefetch
 * (prefetch.ts) from the same inputs allocNatPort uses: [0] u32 how many,
 * [PH_HASHED] a bit per candidate whose reverse-key hash is given, [PH_HASH]
 * those hashes in candidate order (u32, at most PORT_HINTS_PROBED),
 * [PH_PORT] the ports (u16, host order), [PH_FREE] a bit per hashed
 * candidate no binding held when the chunk was prefetched (its reverse
 * bucket had no entry of its hash, nor any past it; the prefetch's step 6
 * writes it for every block with candidates). allocNatPort takes them
 * instead of computing them again.
 */
export const PORT_HINTS: u32 = 4; // with a port space: at 40% of the ports bound, 39 flows in 40 find a free one among 4
/**
 * Candidates hinted in a sparse port space (each hashed, its reverse bucket touched): the first one, free for 5 flows
 * in 6 or more there (a second touched too was 3-6% slower a new flow, paired at 1.5-15% of the ports bound).
 */
export const PORT_HINTS_PROBED: u32 = 1;
export const PH_HASHED: usize = 4;
export const PH_HASH: usize = 8;
export const PH_PORT: usize = PH_HASH + (<usize>PORT_HINTS_PROBED << 2);
export const PH_FREE: usize = PH_PORT + (<usize>PORT_HINTS << 1);
export const PORT_HINTS_BYTES: usize = PH_FREE + 4;
/** A PortHints block with no candidates. */
export const NO_PORT_HINTS: usize = memory.data(<i32>PORT_HINTS_BYTES, 4);

/** allocNatPort found no free port. */
export const NO_PORT: u64 = u64.MAX_VALUE;

/** The port space (ports.ts) of the binding allocNatPort returned last (0: none): the caller binds its port there. */
let natSpace: u32 = 0;

/**
 * Candidate i (host order) of a NAT port range of `range` ports from portMin
 * for the key of flow hash `keyHash`: a small range in order from the
 * hash, a large one sampled (candidate 0 from the hash itself, a finished
 * one; each later one from a mix of the hash and i), scaled to the range by
 * a multiply (no division: the first candidate is every new flow's).
 */
@inline export function natPortCandidate(keyHash: u32, i: u32, range: u32): u32 {
  if (range <= PORT_TRIES) return portMin + (keyHash + i) % range;
  let x = i == 0 ? keyHash : finalize(mix(keyHash, i), 4);
  return portMin + <u32>((<u64>x * range) >> 32);
}

/** Candidate i's port: the prefetch's, or computed from the key's hash. */
@inline function candidatePort(hints: usize, i: u32, keyHash: u32, range: u32): u32 {
  return i < load<u32>(hints) ? <u32>load<u16>(hints + PH_PORT + (<usize>i << 1)) : natPortCandidate(keyHash, i, range);
}

/** True when the prefetch found no binding of candidate i (PH_FREE; false for any candidate it did not look up). */
@inline function freeAtPrefetch(hints: usize, i: u32): bool {
  return i < load<u32>(hints) && (load<u32>(hints + PH_FREE) & (1 << i)) != 0;
}

/** The reverse-key hash of candidate i, port `port`: the prefetch's, or computed. */
@inline function candidateHash(hints: usize, i: u32, family: u32, proto: u32, tid: u32, tportRaw: u32, port: u32): u32 {
  let hashed = load<u32>(hints + PH_HASHED);
  if (i < load<u32>(hints) && (hashed & (1 << i)) != 0) return load<u32>(hints + PH_HASH + (<usize>popcnt(hashed & ((1 << i) - 1)) << 2));
  return reverseHash(reversePrefix(family, tid), family, proto, tportRaw, <u32>bswap<u16>(<u16>port));
}

/**
 * Choose a NAT port (host order) for a new binding toward target tid:tport.
 * Candidates are drawn from a hash of the client's key (deterministic, and
 * random enough that bound ports do not cluster: about 1 / (1 - load) tries).
 * The first candidate no flow holds is taken (a port held by a flow that has
 * gone idle stays held until that flow is freed: by the sweep, a lookup, or
 * here). When every candidate is held, the first whose holder has gone idle
 * is freed and taken, else the oldest transitory TCP holder among them
 * (early drop; see the header). Returns the port in the low 32 bits and the
 * reverse key's hash in the high ones, or NO_PORT when none of the holders
 * is idle or transitory. A target with a fixed port that already has as many
 * flows as there are ports gets only a few tries.
 */
@inline export function allocNatPort(family: u32, proto: u32, tid: u32, tportRaw: u32, keyHash: u32, now: u32, hints: usize): u64 {
  let range = portMax - portMin + 1;
  let t = targetPtr(tid);
  let tries = range < PORT_TRIES ? range : PORT_TRIES;
  if (raw16(t + T_PORT) != 0) {
    if (load<u32>(t + T_ACTIVE) >= range) tries = min(tries, PORT_TRIES_FULL);
  }
  let space = targetPortSpace(t, family, proto, tportRaw, true);
  natSpace = space;
  let bits = space != 0 ? denseBits(space) : 0;
  // the first candidate no flow holds: its bit in a dense port space, else the reverse index
  for (let i: u32 = 0; i < tries; i++) {
    let port = candidatePort(hints, i, keyHash, range);
    if (bits != 0) {
      if (portBound(bits, port)) continue;
      return (<u64>candidateHash(hints, i, family, proto, tid, tportRaw, port) << 32) | <u64>port;
    }
    let h = candidateHash(hints, i, family, proto, tid, tportRaw, port);
    if (freeAtPrefetch(hints, i)) { // (nested ifs, not && and ||: see parse.ts ipv4Shape)
      if (!flowIndexedSince(h)) return (<u64>h << 32) | <u64>port;
    }
    if (bindingHolder(family, proto, tid, tportRaw, <u32>bswap<u16>(<u16>port), h, now, false) < 0) return (<u64>h << 32) | <u64>port;
  }
  // every candidate is held: the first idle holder's port, else early drop
  let victim: i64 = -1; // the oldest transitory holder seen (only TCP holds TCP ports)
  let victimNat: u64 = 0;
  let victimAge: i32 = -1;
  for (let i: u32 = 0; i < tries; i++) {
    let port = candidatePort(hints, i, keyHash, range);
    let h = candidateHash(hints, i, family, proto, tid, tportRaw, port);
    let holder = bindingHolder(family, proto, tid, tportRaw, <u32>bswap<u16>(<u16>port), h, now, true);
    if (holder < 0) return (<u64>h << 32) | <u64>port;
    let rec = flowPtr(<u32>holder);
    let age = <i32>(now - load<u32>(rec + F_LAST));
    if (transitory(rec) && age > victimAge) {
      victim = holder;
      victimNat = (<u64>h << 32) | <u64>port;
      victimAge = age;
    }
  }
  if (victim < 0) return NO_PORT;
  flowFree(<u32>victim); // early drop: the binding is free before it is handed out again
  return victimNat;
}

/** A record for a new flow: free list, fresh records, then expired or transitory victims. */
@inline function takeRecord(now: u32): i64 {
  if (freeHead >= 0) return takeFree();
  if (hwm < capacity) return <i64>(hwm++);
  return takeVictim(now);
}

/** The record at the free list's head, taken off it (freeHead >= 0). */
@inline function takeFree(): i64 {
  let idx = <u32>freeHead;
  freeHead = <i64>load<u32>(flowPtr(idx) + F_NEXT);
  if (freeHead == 0xffffffff) freeHead = -1;
  return <i64>idx;
}

/** takeRecord() of a full table: an expired record first, else the first transitory one seen (freed, then taken). */
function takeVictim(now: u32): i64 {
  let victim: i64 = -1;
  for (let i: u32 = 0; i < EVICT_SCAN; i++) {
    if (hand >= capacity) hand = 0; // D: the sweep may leave the hand one past the end
    let idx = hand++;
    let rec = flowPtr(idx);
    let f = <u32>load<u8>(rec + F_FLAGS);
    if ((f & FF_USED) == 0) continue;
    if (flowStale(rec, now)) { victim = <i64>idx; break; }
    if (victim < 0 && transitory(rec)) victim = <i64>idx;
  }
  if (victim < 0) return -1;
  flowFree(<u32>victim);
  return takeFree();
}

/**
 * Create a flow for the tuple src:sport -> dst:dport of group gid, pinned to
 * target tid, under the hash `hfwd` of its client->TA key. For a legacy
 * target a NAT port is allocated. `syn`: a TCP flow opened by a SYN, counted
 * half-open against its source's cap. Returns the record index, or minus the
 * Reason it could not be created for (half-open-limit, nat-ports-exhausted,
 * flow-table-full).
 */
export function flowCreate(family: u32, proto: u32, src: usize, sport: u32, dport: u32, gid: u32, tid: u32, hfwd: u32, now: u32, syn: bool, portHints: usize = NO_PORT_HINTS): i64 {
  return flowCreateInline(family, proto, src, sport, dport, gid, tid, hfwd, now, syn, portHints);
}

/** flowCreate() inlined where it is called: in the fast path's first packet of a new flow. */
@inline export function flowCreateInline(family: u32, proto: u32, src: usize, sport: u32, dport: u32, gid: u32, tid: u32, hfwd: u32, now: u32, syn: bool, portHints: usize): i64 {
  // one copy per family, each with the family a constant
  return family == 4
    ? createFor(4, proto, src, sport, dport, gid, tid, hfwd, now, syn, portHints)
    : createFor(6, proto, src, sport, dport, gid, tid, hfwd, now, syn, portHints);
}

@inline function createFor(family: u32, proto: u32, src: usize, sport: u32, dport: u32, gid: u32, tid: u32, hfwd: u32, now: u32, syn: bool, portHints: usize): i64 {
  let counter: usize = syn ? halfOpenCounter(family, src) : 0; // the source's hash only for a SYN
  if (syn && <u32>load<u16>(counter) >= halfOpenPerSource) return -<i64>Reason.HalfOpenLimit;
  let t = targetPtr(tid);
  let aware = (<u32>load<u8>(t + T_FLAGS) & TF_AWARE) != 0;
  let tport = raw16(t + T_PORT);
  if (tport == 0) tport = dport;
  let nat: u64 = 0;
  let space: u32 = 0;
  if (!aware) {
    nat = allocNatPort(family, proto, tid, tport, hfwd, now, portHints);
    if (nat == NO_PORT) return -<i64>Reason.NatPortsExhausted;
    space = natSpace;
  }
  let r = takeRecord(now);
  if (r < 0) return -<i64>Reason.FlowTableFull;
  let idx = <u32>r;
  let rec = flowPtr(idx);
  // the record's 48 bytes in plain stores (a memory.fill or a variable-length memory.copy is a call out of the Wasm code in V8)
  store<u64>(rec, 0);
  store<u64>(rec + 8, 0);
  store<u64>(rec + 16, 0);
  store<u64>(rec + 24, 0);
  store<u64>(rec + 32, 0);
  store<u64>(rec + 40, 0);
  if (family == 4) {
    store<u32>(rec + F_CADDR, load<u32>(src));
  } else {
    store<u64>(rec + F_CADDR, load<u64>(src));
    store<u64>(rec + F_CADDR + 8, load<u64>(src + 8));
  }
  store<u16>(rec + F_CPORT, <u16>sport);
  store<u16>(rec + F_GPORT, <u16>dport);
  store<u32>(rec + F_GROUP, gid);
  store<u32>(rec + F_TARGET, tid);
  store<u8>(rec + F_PROTO, <u8>proto);
  store<u8>(rec + F_FLAGS, <u8>(FF_USED | (family == 6 ? FF_V6 : 0) | (aware ? FF_AWARE : 0) | (syn ? FF_HALF_OPEN : 0)));
  if (syn) store<u16>(counter, load<u16>(counter) + 1);
  store<u32>(rec + F_LAST, now);
  store<u32>(rec + F_HFWD, hfwd);
  indexKey(hfwd, idx << 1);
  if (!aware) bind(rec, idx, nat, space);
  targetFlowStarted(tid, gid);
  live++;
  bump(Stat.FlowsCreated);
  setStat(Stat.FlowsLive, live);
  return <i64>idx;
}

/**
 * Move a flow to another target (its target went down; UDP/ICMP only): the
 * reverse key changes with the target, so the binding is re-made.
 */
export function flowRepin(idx: u32, tid: u32, now: u32): bool {
  let rec = flowPtr(idx);
  let family = flowFamily(rec);
  let proto = <u32>load<u8>(rec + F_PROTO);
  let gid = load<u32>(rec + F_GROUP);
  let t = targetPtr(tid);
  let aware = (<u32>load<u8>(t + T_FLAGS) & TF_AWARE) != 0;
  let tport = raw16(t + T_PORT);
  if (tport == 0) tport = raw16(rec + F_GPORT);
  let nat: u64 = 0;
  if (!aware) {
    nat = allocNatPort(family, proto, tid, tport, load<u32>(rec + F_HFWD), now, NO_PORT_HINTS);
    if (nat == NO_PORT) return false;
  }
  let space = natSpace;
  let f = <u32>load<u8>(rec + F_FLAGS);
  if ((f & FF_AWARE) == 0) unbind(rec, idx);
  targetFlowEnded(load<u32>(rec + F_TARGET), gid);
  store<u32>(rec + F_TARGET, tid);
  store<u8>(rec + F_FLAGS, <u8>(aware ? f | FF_AWARE : f & ~FF_AWARE));
  if (!aware) bind(rec, idx, nat, space);
  else store<u32>(rec + F_NEXT, 0);
  targetFlowStarted(tid, gid);
  return true;
}

/** Where a pass of the port spaces' build stands (ports.ts): the next record, and the end of the pass (0: no pass). */
let buildHand: u32 = 0;
let buildEnd: u32 = 0;

/**
 * Bounded work for the port spaces turning dense (ports.ts), once per batch
 * of `packets` packets: a pass walks the records present when it started,
 * setting the bits of their bindings in the spaces it builds, two records a
 * packet (at least 64 a batch), so that its cost is a few nanoseconds a
 * packet while it lasts.
 */
export function flowsBuildPorts(packets: u32): void {
  if (buildEnd == 0) {
    if (!portsBuildStart()) return;
    buildHand = 0;
    buildEnd = hwm;
  }
  let n = packets * 2;
  if (n < 64) n = 64;
  let end = buildHand + n < buildEnd ? buildHand + n : buildEnd;
  for (let i = buildHand; i < end; i++) {
    let rec = flowPtr(i);
    let f = <u32>load<u8>(rec + F_FLAGS);
    let space = load<u32>(rec + F_NEXT);
    if ((f & FF_USED) != 0 && (f & FF_AWARE) == 0 && space != 0) portsBuildSeen(space, <u32>bswap<u16>(load<u16>(rec + F_NPORT)));
  }
  buildHand = end;
  if (end == buildEnd) {
    portsBuildDone();
    buildEnd = 0;
  }
}

/** FlowsCreated at the last sweep. */
let sweptCreated: u64 = 0;

/** Whether the sweep has freed a flow in its current lap of the table, or in its last. */
let lapFreed = false;
let lastLapFreed = false;

/**
 * Bounded expiry work, once per batch: SWEEP_PER_BATCH records from the
 * moving hand and, while flows expire (the sweep freed one in this lap of
 * the table or the last), two more for each flow created since the last
 * sweep. Where flows come and go as fast as packets (a query a flow),
 * expired ones are then freed in the walk's order about as fast as new
 * ones come, instead of one at a time by the new flows of a full table;
 * where nothing expires, the walk stays short.
 */
export function flowsSweep(now: u32): void {
  let created = getStat(Stat.FlowsCreated);
  let made = created >= sweptCreated ? created - sweptCreated : created; // (the counters may have been reset)
  sweptCreated = created;
  let n = SWEEP_PER_BATCH < hwm ? SWEEP_PER_BATCH : hwm;
  sweep(n, now);
  if (!(lapFreed || lastLapFreed) || made == 0) return;
  let more = made << 1;
  sweep(more < <u64>(hwm - n) ? <u32>more : hwm - n, now);
}

/** The expired records of one chunk of the sweep (SWEEP_CHUNK indexes). */
const SWEEP_CHUNK: u32 = 32;
const sweepList: usize = memory.data(<i32>(SWEEP_CHUNK << 2), 4);
let sweepSink: u64 = 0;

/**
 * Walk n records from the hand, freeing the expired flows, a chunk at a
 * time: the expired records of the chunk first, with a load of their index
 * buckets (forward and reverse) so that those misses overlap, then each one
 * freed, in the walk's order.
 */
function sweep(n: u32, now: u32): void {
  let i: u32 = 0;
  while (i < n) {
    let k: u32 = 0;
    let acc: u64 = 0;
    for (; i < n && k < SWEEP_CHUNK; i++) {
      if (hand >= hwm) {
        hand = 0;
        lastLapFreed = lapFreed;
        lapFreed = false;
      }
      let rec = flowPtr(hand);
      if ((<u32>load<u8>(rec + F_FLAGS) & FF_USED) != 0 && flowStale(rec, now)) {
        store<u32>(sweepList + (<usize>k << 2), hand);
        k++;
        acc += <u64>load<u8>(bucketAt(index, homeBucket(load<u32>(rec + F_HFWD), indexBuckets)));
        acc += <u64>load<u8>(bucketAt(index, homeBucket(load<u32>(rec + F_HREV), indexBuckets))); // (an aware flow's: harmless)
        lapFreed = true;
      }
      hand++;
    }
    sweepSink += acc;
    for (let j: u32 = 0; j < k; j++) flowFree(load<u32>(sweepList + (<usize>j << 2)));
  }
}

/** Exported: free every flow idle at time `now` (a control-plane full sweep, not for the packet path). */
export function flows_expire_all(now: u32): u32 {
  let freed: u32 = 0;
  for (let i: u32 = 0; i < hwm; i++) {
    let rec = flowPtr(i);
    if ((<u32>load<u8>(rec + F_FLAGS) & FF_USED) != 0 && flowStale(rec, now)) { flowFree(i); freed++; }
  }
  return freed;
}
