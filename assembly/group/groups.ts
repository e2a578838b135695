// The group table (a group is a transport address: protocol, anycast address,
// port; port 0 = every port) and the target table (group members).
//
// Control calls add, change and remove entries; the packet path only reads
// them (and bumps per-target counters). A removed group or target keeps its
// slot until no flow refers to it, so a live flow never points at a recycled
// entry.

import { ControlError, Policy } from "../shared/abi";
import { raw32, raw16 } from "../wire/bytes";
import { hashEndpoint, finalize, mix, mixAddr, SEED_ENDPOINT, SEED_GROUP, SEED_MAGLEV_OFFSET } from "../hash";
import {
  bucketAt, bucketsFor, homeBucket, indexInsert, indexRemove, nextBucket, overflowed, refAt, slotsOf, BUCKET_BYTES, MAX_ENTRIES,
} from "../table/bucket-index";
import { heapAlloc, heapFree, reservePages } from "../memory";
import { scratch } from "../settings";

// ---- group record (96 bytes) ----
export const GROUP_SIZE: usize = 96;
export const G_ADDR: usize = 0; // 16 bytes
export const G_PORT: usize = 16; // u16 raw
export const G_PROTO: usize = 18; // u8
export const G_FLAGS: usize = 19; // u8
export const G_POLICY: usize = 20; // u8
export const G_AFFINITY: usize = 21; // u8 AffinityKey
export const G_WMAX: usize = 22; // u16 largest weight among usable targets (round-robin rounds)
export const G_TARGETS: usize = 24; // u32 pointer to u32[] of target ids
export const G_NTARGETS: usize = 28; // u32
export const G_CAP: usize = 32; // u32 capacity of the target list
export const G_TABLE: usize = 36; // u32 pointer to u32[] lookup table (target ids), groups over 64 member slots
export const G_TABLE_SIZE: usize = 40; // u32 entries (0 = no table: rendezvous hashing)
export const G_RR: usize = 44; // u32 round-robin position in the target list (0xffffffff: before the first)
export const G_RR_ROUND: usize = 48; // u32 round-robin weight round
export const G_FLOWS: usize = 52; // u32 flows referring to this group
export const G_NEAR: usize = 56; // u32 pointer to u32[] nearest usable targets (proximity)
export const G_NNEAR: usize = 60; // u32
export const G_USABLE: usize = 64; // u32 usable targets (up and member)
export const G_SCOPES: usize = 68; // u32 pointer to scope rules (SCOPE_SIZE bytes each, longest prefix first)
export const G_NSCOPES: usize = 72; // u32
export const G_CANDIDATES: usize = 76; // u32 pointer: usable targets as (id, identity hash, weight, 0) u32 quadruples
export const G_NCANDIDATES: usize = 80; // u32
export const G_RING: usize = 84; // u32 pointer to the sorted ring points of a ring table (ring.ts), 0 for other kinds
export const G_NRING: usize = 88; // u32 points in the ring

/** A scope rule: clients in prefix/len only reach targets with this label. */
export const SCOPE_SIZE: usize = 20;
export const S_PREFIX: usize = 0; // 16 bytes
export const S_LEN: usize = 16; // u8 prefix length
export const S_LABEL: usize = 17; // u8 label id

export const GF_V6: u32 = 1;
export const GF_LIVE: u32 = 2;
/** Every usable target has the same weight (set by group_commit): rendezvous needs no costs. */
export const GF_EQUAL_WEIGHTS: u32 = 4;
/** The group's JAPs are being looked up: while it has no usable target, its packets go to the host. */
export const GF_PENDING: u32 = 8;
/** The group's table is a rendezvous table (each slot owned by its rendezvous winner), not a ring table. */
export const GF_RENDEZVOUS_TABLE: u32 = 16;

// ---- target record (48 bytes) ----
export const TARGET_SIZE: usize = 64;
export const T_ADDR: usize = 0; // 16 bytes
export const T_PORT: usize = 16; // u16 raw (0 = keep the client's destination port)
export const T_FLAGS: usize = 18; // u8
export const T_LABEL: usize = 19; // u8
export const T_GROUP: usize = 20; // u32
export const T_WEIGHT: usize = 24; // u32
export const T_ACTIVE: usize = 28; // u32 live flows pinned to it
export const T_PACKETS: usize = 32; // u64 packets forwarded to it
export const T_DISTANCE: usize = 40; // u32
export const T_HASH: usize = 44; // u32 identity hash (rendezvous and ring points)
export const T_SPACES: usize = 48; // 3 x u32: the NAT port spaces of its TCP, UDP and ICMP bindings (flow/ports.ts), once given; 0: not yet

export const TF_V6: u32 = 1;
export const TF_AWARE: u32 = 2;
export const TF_UP: u32 = 4;
export const TF_LIVE: u32 = 8; // member of its group (cleared on removal)
export const TF_USED: u32 = 16; // slot in use (until its last flow is gone)
export const TF_DIRTY: u32 = 32; // scratch of group_commit: the target lost (or changed) its table slots
export const TF_KEPT: u32 = 64; // scratch of updateRing: the target stays on the ring as it was

let groups: usize = 0;
let groupCap: u32 = 0;
let groupHwm: u32 = 0;
let groupFree: i64 = -1; // free-list through G_TARGETS of dead slots
let groupIndex: usize = 0;
let groupIndexBuckets: u32 = 0;
let groupCount: u32 = 0;

let targets: usize = 0;
let targetCap: u32 = 0;
let targetHwm: u32 = 0;
let targetFree: i64 = -1;
let targetCount: u32 = 0;
// the live targets by (group, endpoint): one target per endpoint within a group, checked without a walk of the group
let endpointIndex: usize = 0;
let endpointBuckets: u32 = 0;

@inline export function groupPtr(gid: u32): usize {
  return groups + <usize>gid * GROUP_SIZE;
}

@inline export function targetPtr(tid: u32): usize {
  return targets + <usize>tid * TARGET_SIZE;
}

/** Target ids ever given out: every target id is below it. */
@inline export function targetsInUse(): u32 {
  return targetHwm;
}

export function groupsInit(maxGroups: u32, maxTargets: u32): bool {
  if (maxGroups > MAX_ENTRIES || maxTargets > MAX_ENTRIES) return false;
  groupCap = maxGroups;
  groups = reservePages(<usize>maxGroups * GROUP_SIZE);
  groupIndexBuckets = bucketsFor(maxGroups);
  groupIndex = reservePages(<usize>groupIndexBuckets * BUCKET_BYTES);
  targetCap = maxTargets;
  targets = reservePages(<usize>maxTargets * TARGET_SIZE);
  endpointBuckets = bucketsFor(maxTargets);
  endpointIndex = reservePages(<usize>endpointBuckets * BUCKET_BYTES);
  return groups != 0 && groupIndex != 0 && targets != 0 && endpointIndex != 0;
}

@inline function groupHash(family: u32, proto: u32, addr: usize, portRaw: u32): u32 {
  let h = mixAddr(SEED_GROUP, addr, family);
  h = mix(h, (portRaw & 0xffff) | (proto << 16) | (family << 24));
  return finalize(h, 24);
}

@inline function sameAddr(family: u32, a: usize, b: usize): bool {
  if (family == 4) return raw32(a) == raw32(b);
  return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8);
}

@inline function endpointHash(gid: u32, family: u32, addr: usize, portRaw: u32): u32 {
  let h = mixAddr(SEED_ENDPOINT, addr, family);
  h = mix(h, (portRaw & 0xffff) | (family << 24));
  return finalize(mix(h, gid), 28);
}

/** The live target of group gid at the endpoint (address at addr, port raw), or -1. */
function endpointFind(gid: u32, family: u32, addr: usize, portRaw: u32): i64 {
  let h = endpointHash(gid, family, addr, portRaw);
  let nb = endpointBuckets;
  let bi = homeBucket(h, nb);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = bucketAt(endpointIndex, bi);
    for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
      let tid = refAt(b, ctz<u32>(m));
      let t = targetPtr(tid);
      if (load<u32>(t + T_GROUP) == gid && raw16(t + T_PORT) == portRaw && sameAddr(family, t + T_ADDR, addr)) return <i64>tid;
    }
    if (!overflowed(b)) break;
    bi = nextBucket(bi, nb);
  }
  return -1;
}

/** The live group for exactly (family, proto, address, port), or -1. */
export function groupFind(family: u32, proto: u32, addr: usize, portRaw: u32): i64 {
  // one copy per family, each with the family a constant
  return family == 4 ? findFor(4, proto, addr, portRaw) : findFor(6, proto, addr, portRaw);
}

@inline function findFor(family: u32, proto: u32, addr: usize, portRaw: u32): i64 {
  let h = groupHash(family, proto, addr, portRaw);
  let nb = groupIndexBuckets;
  let bi = homeBucket(h, nb);
  // port, protocol and the V6 flag in one u32 load (G_PORT, G_PROTO, G_FLAGS are adjacent)
  let want = (portRaw & 0xffff) | (proto << 16) | ((family == 6 ? GF_V6 : 0) << 24);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = bucketAt(groupIndex, bi);
    for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
      let ref = refAt(b, ctz<u32>(m));
      let g = groupPtr(ref);
      if ((load<u32>(g + G_PORT) & (0xffffff | (GF_V6 << 24))) == want && sameAddr(family, g + G_ADDR, addr)) return <i64>ref;
    }
    if (!overflowed(b)) break;
    bi = nextBucket(bi, nb);
  }
  return -1;
}

/** Group for a packet to addr:port: the exact port first, then the every-port group (port 0). */
@inline export function groupLookup(family: u32, proto: u32, addr: usize, portRaw: u32): i64 {
  let g = groupFind(family, proto, addr, portRaw);
  if (g < 0 && portRaw != 0) g = groupFind(family, proto, addr, 0);
  return g;
}

// ---- control calls ----

/** Exported: add a group whose address is in the scratch area. Returns its id or a ControlError. */
export function group_add(family: u32, proto: u32, port: u32, policy: u32, affinityKey: u32): i32 {
  if (family != 4 && family != 6) return ControlError.Invalid;
  if (policy > <u32>Policy.Proximity) return ControlError.Invalid;
  let portRaw = <u32>bswap<u16>(<u16>port);
  if (groupFind(family, proto, scratch, portRaw) >= 0) return ControlError.Exists;
  let gid: u32;
  if (groupFree >= 0) {
    gid = <u32>groupFree;
    groupFree = <i64>load<i32>(groupPtr(gid) + G_TARGETS);
  } else {
    if (groupHwm >= groupCap) return ControlError.TableFull;
    gid = groupHwm++;
  }
  let g = groupPtr(gid);
  memory.fill(g, 0, GROUP_SIZE);
  memory.copy(g + G_ADDR, scratch, family == 4 ? 4 : 16);
  store<u16>(g + G_PORT, <u16>portRaw);
  store<u8>(g + G_PROTO, <u8>proto);
  store<u8>(g + G_FLAGS, <u8>(GF_LIVE | (family == 6 ? GF_V6 : 0)));
  store<u8>(g + G_POLICY, <u8>policy);
  store<u8>(g + G_AFFINITY, <u8>affinityKey);
  store<u32>(g + G_RR, 0xffffffff); // round robin starts before the first target
  if (!indexInsert(groupIndex, groupIndexBuckets, groupHash(family, proto, g + G_ADDR, portRaw), gid)) {
    store<u8>(g + G_FLAGS, 0);
    return ControlError.TableFull;
  }
  groupCount++;
  return <i32>gid;
}

/** Exported: mark a group as waiting for its rendezvous answer (its packets go to the host meanwhile). */
export function group_set_pending(gid: u32, pending: bool): i32 {
  if (!groupLive(gid)) return ControlError.NotFound;
  let g = groupPtr(gid);
  let f = <u32>load<u8>(g + G_FLAGS);
  store<u8>(g + G_FLAGS, <u8>(pending ? f | GF_PENDING : f & ~GF_PENDING));
  return ControlError.Ok;
}

/** Exported: change a group's policy. */
export function group_set_policy(gid: u32, policy: u32, affinityKey: u32): i32 {
  if (!groupLive(gid) || policy > <u32>Policy.Proximity) return ControlError.Invalid;
  let g = groupPtr(gid);
  store<u8>(g + G_POLICY, <u8>policy);
  store<u8>(g + G_AFFINITY, <u8>affinityKey);
  return ControlError.Ok;
}

/** Exported: remove a group and all its targets. Its live flows die with it (their packets no longer match). */
export function group_remove(gid: u32): i32 {
  if (!groupLive(gid)) return ControlError.NotFound;
  let g = groupPtr(gid);
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  for (let i: u32 = 0; i < n; i++) retireTarget(load<u32>(list + (<usize>i << 2)));
  store<u32>(g + G_NTARGETS, 0);
  let family: u32 = (<u32>load<u8>(g + G_FLAGS) & GF_V6) != 0 ? 6 : 4;
  indexRemove(groupIndex, groupIndexBuckets, groupHash(family, <u32>load<u8>(g + G_PROTO), g + G_ADDR, raw16(g + G_PORT)), gid);
  store<u8>(g + G_FLAGS, <u8>(<u32>load<u8>(g + G_FLAGS) & ~GF_LIVE));
  groupCount--;
  freeGroupTables(g);
  heapFree(<usize>load<u32>(g + G_TARGETS));
  store<u32>(g + G_TARGETS, 0);
  store<u32>(g + G_CAP, 0);
  maybeRecycleGroup(gid);
  return ControlError.Ok;
}

@inline export function groupLive(gid: u32): bool {
  return gid < groupHwm && (<u32>load<u8>(groupPtr(gid) + G_FLAGS) & GF_LIVE) != 0;
}

function maybeRecycleGroup(gid: u32): void {
  let g = groupPtr(gid);
  if ((<u32>load<u8>(g + G_FLAGS) & GF_LIVE) != 0 || load<u32>(g + G_FLOWS) != 0) return;
  store<u8>(g + G_FLAGS, 0);
  store<i32>(g + G_TARGETS, <i32>groupFree);
  groupFree = <i64>gid;
}

/**
 * Exported: set group gid's scope rules from `n` SCOPE_SIZE-byte entries in
 * the scratch area (any order; stored longest prefix first). n = 0 clears them.
 */
export function group_set_scopes(gid: u32, n: u32): i32 {
  if (!groupLive(gid) || <usize>n * SCOPE_SIZE > 4096) return ControlError.Invalid;
  let g = groupPtr(gid);
  let family: u32 = (<u32>load<u8>(g + G_FLAGS) & GF_V6) != 0 ? 6 : 4;
  let rules: usize = 0;
  if (n != 0) {
    rules = heapAlloc(<usize>n * SCOPE_SIZE);
    if (rules == 0) return ControlError.NoMemory;
    memory.copy(rules, scratch, <usize>n * SCOPE_SIZE);
    // insertion sort by prefix length, longest first: the first match is the longest
    for (let i: u32 = 1; i < n; i++) {
      for (let j = i; j > 0; j--) {
        let a = rules + <usize>(j - 1) * SCOPE_SIZE, b = rules + <usize>j * SCOPE_SIZE;
        if (load<u8>(a + S_LEN) >= load<u8>(b + S_LEN)) break;
        memory.copy(scratch + 4000, a, SCOPE_SIZE);
        memory.copy(a, b, SCOPE_SIZE);
        memory.copy(b, scratch + 4000, SCOPE_SIZE);
      }
    }
    for (let i: u32 = 0; i < n; i++) {
      if (<u32>load<u8>(rules + <usize>i * SCOPE_SIZE + S_LEN) > (family == 4 ? 32 : 128)) { heapFree(rules); return ControlError.Invalid; }
    }
  }
  heapFree(<usize>load<u32>(g + G_SCOPES));
  store<u32>(g + G_SCOPES, <u32>rules);
  store<u32>(g + G_NSCOPES, n);
  return ControlError.Ok;
}

function freeGroupTables(g: usize): void {
  heapFree(<usize>load<u32>(g + G_RING));
  store<u32>(g + G_RING, 0);
  store<u32>(g + G_NRING, 0);
  heapFree(<usize>load<u32>(g + G_CANDIDATES));
  store<u32>(g + G_CANDIDATES, 0);
  store<u32>(g + G_NCANDIDATES, 0);
  heapFree(<usize>load<u32>(g + G_SCOPES));
  store<u32>(g + G_SCOPES, 0);
  store<u32>(g + G_NSCOPES, 0);
  heapFree(<usize>load<u32>(g + G_TABLE));
  store<u32>(g + G_TABLE, 0);
  store<u32>(g + G_TABLE_SIZE, 0);
  heapFree(<usize>load<u32>(g + G_NEAR));
  store<u32>(g + G_NEAR, 0);
  store<u32>(g + G_NNEAR, 0);
}

/**
 * Exported: add a target (address in the scratch area) to group `gid`.
 * Call group_commit(gid) after a series of changes. Returns the target id or a ControlError.
 */
export function target_add(gid: u32, port: u32, weight: u32, aware: bool, label: u32, distance: u32): i32 {
  if (!groupLive(gid)) return ControlError.NotFound;
  if (weight == 0) return ControlError.Invalid;
  let g = groupPtr(gid);
  let family: u32 = (<u32>load<u8>(g + G_FLAGS) & GF_V6) != 0 ? 6 : 4;
  let portRaw = <u32>bswap<u16>(<u16>port);
  // one target per endpoint within a group
  if (endpointFind(gid, family, scratch, portRaw) >= 0) return ControlError.Exists;
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  let cap = load<u32>(g + G_CAP);
  if (n == cap) {
    let ncap: u32 = cap == 0 ? 4 : cap * 2;
    let nlist = heapAlloc(<usize>ncap << 2);
    if (nlist == 0) return ControlError.NoMemory;
    if (n != 0) memory.copy(nlist, list, <usize>n << 2);
    heapFree(list);
    list = nlist;
    store<u32>(g + G_TARGETS, <u32>list);
    store<u32>(g + G_CAP, ncap);
  }
  let tid: u32;
  if (targetFree >= 0) {
    tid = <u32>targetFree;
    targetFree = <i64>load<i32>(targetPtr(tid) + T_GROUP);
  } else {
    if (targetHwm >= targetCap) return ControlError.TableFull;
    tid = targetHwm++;
  }
  let t = targetPtr(tid);
  memory.fill(t, 0, TARGET_SIZE);
  memory.copy(t + T_ADDR, scratch, family == 4 ? 4 : 16);
  store<u16>(t + T_PORT, <u16>portRaw);
  store<u8>(t + T_FLAGS, <u8>(TF_USED | TF_LIVE | TF_UP | (aware ? TF_AWARE : 0) | (family == 6 ? TF_V6 : 0)));
  store<u8>(t + T_LABEL, <u8>label);
  store<u32>(t + T_GROUP, gid);
  store<u32>(t + T_WEIGHT, weight);
  store<u32>(t + T_DISTANCE, distance);
  store<u32>(t + T_HASH, hashEndpoint(SEED_MAGLEV_OFFSET, t + T_ADDR, family, portRaw));
  if (!indexInsert(endpointIndex, endpointBuckets, endpointHash(gid, family, t + T_ADDR, portRaw), tid)) {
    store<u8>(t + T_FLAGS, 0); // (not with the index sized for every target slot)
    store<i32>(t + T_GROUP, <i32>targetFree);
    targetFree = <i64>tid;
    return ControlError.TableFull;
  }
  store<u32>(list + (<usize>n << 2), tid);
  store<u32>(g + G_NTARGETS, n + 1);
  targetCount++;
  return <i32>tid;
}

/** Exported: remove a target from its group (call group_commit). Its flows end as if it were down. */
export function target_remove(tid: u32): i32 {
  if (!targetLive(tid)) return ControlError.NotFound;
  let t = targetPtr(tid);
  let g = groupPtr(load<u32>(t + T_GROUP));
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  for (let i: u32 = 0; i < n; i++) {
    if (load<u32>(list + (<usize>i << 2)) == tid) {
      // keep list order (round-robin and ring tie order depend on it)
      memory.copy(list + (<usize>i << 2), list + (<usize>(i + 1) << 2), <usize>(n - i - 1) << 2);
      store<u32>(g + G_NTARGETS, n - 1);
      break;
    }
  }
  retireTarget(tid);
  return ControlError.Ok;
}

function retireTarget(tid: u32): void {
  let t = targetPtr(tid);
  let family: u32 = (<u32>load<u8>(t + T_FLAGS) & TF_V6) != 0 ? 6 : 4;
  let portRaw = raw16(t + T_PORT);
  indexRemove(endpointIndex, endpointBuckets, endpointHash(load<u32>(t + T_GROUP), family, t + T_ADDR, portRaw), tid);
  store<u8>(t + T_FLAGS, <u8>(<u32>load<u8>(t + T_FLAGS) & ~(TF_LIVE | TF_UP)));
  targetCount--;
  maybeRecycleTarget(tid);
}

function maybeRecycleTarget(tid: u32): void {
  let t = targetPtr(tid);
  let f = <u32>load<u8>(t + T_FLAGS);
  if ((f & TF_LIVE) != 0 || (f & TF_USED) == 0 || load<u32>(t + T_ACTIVE) != 0) return;
  store<u8>(t + T_FLAGS, 0);
  store<i32>(t + T_GROUP, <i32>targetFree);
  targetFree = <i64>tid;
}

@inline export function targetLive(tid: u32): bool {
  return tid < targetHwm && (<u32>load<u8>(targetPtr(tid) + T_FLAGS) & TF_LIVE) != 0;
}

@inline export function targetUsable(tid: u32): bool {
  return (<u32>load<u8>(targetPtr(tid) + T_FLAGS) & (TF_LIVE | TF_UP)) == (TF_LIVE | TF_UP);
}

/** Exported: mark a target up or down (call group_commit). */
export function target_set_up(tid: u32, up: bool): i32 {
  if (!targetLive(tid)) return ControlError.NotFound;
  let t = targetPtr(tid);
  let f = <u32>load<u8>(t + T_FLAGS);
  store<u8>(t + T_FLAGS, <u8>(up ? f | TF_UP : f & ~TF_UP));
  return ControlError.Ok;
}

/** Exported: change a target's weight (call group_commit). */
export function target_set_weight(tid: u32, weight: u32): i32 {
  if (!targetLive(tid) || weight == 0) return ControlError.Invalid;
  store<u32>(targetPtr(tid) + T_WEIGHT, weight);
  return ControlError.Ok;
}

/** Called when a flow pinned to the target ends. */
export function targetFlowEnded(tid: u32, gid: u32): void {
  let t = targetPtr(tid);
  store<u32>(t + T_ACTIVE, load<u32>(t + T_ACTIVE) - 1);
  maybeRecycleTarget(tid);
  let g = groupPtr(gid);
  store<u32>(g + G_FLOWS, load<u32>(g + G_FLOWS) - 1);
  maybeRecycleGroup(gid);
}

@inline export function targetFlowStarted(tid: u32, gid: u32): void {
  let t = targetPtr(tid);
  store<u32>(t + T_ACTIVE, load<u32>(t + T_ACTIVE) + 1);
  let g = groupPtr(gid);
  store<u32>(g + G_FLOWS, load<u32>(g + G_FLOWS) + 1);
}

// ---- read-out for the host ----

export function target_packets(tid: u32): f64 {
  return tid < targetHwm ? <f64>load<u64>(targetPtr(tid) + T_PACKETS) : 0;
}

export function target_active(tid: u32): u32 {
  return tid < targetHwm ? load<u32>(targetPtr(tid) + T_ACTIVE) : 0;
}

export function group_count(): u32 {
  return groupCount;
}

export function target_count(): u32 {
  return targetCount;
}

/** Ids of the group's current targets are copied to the scratch area (up to 1024); returns how many. */
export function group_targets(gid: u32): u32 {
  if (!groupLive(gid)) return 0;
  let g = groupPtr(gid);
  let n = load<u32>(g + G_NTARGETS);
  if (n > 1024) n = 1024;
  memory.copy(scratch, <usize>load<u32>(g + G_TARGETS), <usize>n << 2);
  return n;
}

