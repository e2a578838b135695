// Per-group lookup tables, brought up to date by group_commit() after targets
// change: only the group that changed, and within it only what the change
// moves where the table kind allows (rendezvous tables: the slots a changed
// target owned or may take; ring tables: the entries in front of points that
// came or went, ring.ts). A table is built whole only when its size or kind
// changes (the group's member slots doubled) or most of it changed.
//
// Affinity is consistent hashing whose result depends only on the set of
// usable targets, their weights and the table size, so every proxy with the
// same view picks the same target, and a target that leaves moves exactly
// its own keys: rendezvous hashing itself for groups of up to 8 member slots,
// a table of M = 101 entries per member slot for larger ones (filled by rendezvous up to 128
// slots, from a consistent-hashing ring beyond), read with one load.

import { ControlError } from "../shared/abi";
import { heapAlloc, heapFree } from "../memory";
import { rendezvousCost, rendezvousHash, rendezvousKey } from "../hash";
import {
  groupLive, groupPtr, targetPtr, targetUsable, G_NTARGETS, G_TARGETS, G_TABLE, G_TABLE_SIZE,
  G_NEAR, G_NNEAR, G_CAP, G_USABLE, G_WMAX, G_FLAGS, GF_EQUAL_WEIGHTS, GF_RENDEZVOUS_TABLE, G_CANDIDATES, G_NCANDIDATES,
  G_RING, T_FLAGS, TF_DIRTY, T_GROUP, T_WEIGHT, T_HASH, T_DISTANCE, G_RR, G_RR_ROUND,
} from "./groups";
import { buildRing, freeRing, ringScale, updateRing } from "./ring";
import { largestHash } from "./select";

/** Table entries per member slot (M > 100 N keeps the shares within about 10%). */
export const TABLE_FACTOR: u32 = 101;
/**
 * Groups with at most this many member slots use rendezvous hashing directly
 * (no table); up to RENDEZVOUS_TABLE_MAX_SLOTS, a table whose every slot is
 * owned by that slot's rendezvous winner — both move exactly the keys of a
 * target that leaves. Larger groups read a consistent-hashing ring through
 * the table (ring.ts): as exact, and built in O(points log points) where a
 * rendezvous table costs entries x targets. A table costs one load per new
 * flow where rendezvous costs a hash per target (about 780 Wasm instructions
 * more at 43 targets, 140 at 3); below 9 slots the table's memory (404 bytes
 * a slot) and its rebuild when the member slots double are not worth it.
 */
export const HRW_MAX_SLOTS: u32 = 8;
/** (Building one costs entries x targets: at 128 slots about a million hashes; beyond, a ring is cheaper to keep.) */
export const RENDEZVOUS_TABLE_MAX_SLOTS: u32 = 128;

function isPrime(n: u32): bool {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (let d: u32 = 3; <u64>d * d <= <u64>n; d += 2) if (n % d == 0) return false;
  return true;
}

/**
 * Table size for a group whose member list has room for `slots` targets (a
 * power of two that only grows): a prime, the same on every proxy that has
 * seen the same largest membership. It must not follow the number of usable
 * targets, or one target going down would reshuffle every client.
 */
export function tableSize(slots: u32): u32 {
  let m = <u64>slots * TABLE_FACTOR;
  if (m > 0x7fffffff) return 0;
  let p = <u32>m;
  while (!isPrime(p)) p++;
  return p;
}

/** Exported: rebuild group `gid`'s lookup tables from its current targets. */
export function group_commit(gid: u32): i32 {
  if (!groupLive(gid)) return ControlError.NotFound;
  let g = groupPtr(gid);
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);

  // usable targets in list order
  let usable = heapAlloc(<usize>(n + 1) << 2);
  if (usable == 0) return ControlError.NoMemory;
  let u: u32 = 0;
  let wmax: u32 = 0;
  let wmin: u32 = 0xffffffff;
  let dmin: u32 = 0xffffffff;
  let wsum: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (!targetUsable(tid)) continue;
    store<u32>(usable + (<usize>u << 2), tid);
    u++;
    let w = load<u32>(targetPtr(tid) + T_WEIGHT);
    if (w > wmax) wmax = w;
    if (w < wmin) wmin = w;
    wsum += w;
    let d = load<u32>(targetPtr(tid) + T_DISTANCE);
    if (d < dmin) dmin = d;
  }

  let cap = load<u32>(g + G_CAP);
  let m = u == 0 || cap <= HRW_MAX_SLOTS ? 0 : tableSize(cap);
  let rendezvousTable = m != 0 && cap <= RENDEZVOUS_TABLE_MAX_SLOTS;
  let table: usize = 0;
  let reused = false;
  let flags0 = <u32>load<u8>(g + G_FLAGS);
  let sameTable = m != 0 && load<u32>(g + G_TABLE) != 0 && load<u32>(g + G_TABLE_SIZE) == m && ((flags0 & GF_RENDEZVOUS_TABLE) != 0) == rendezvousTable;
  let old = <usize>load<u32>(g + G_CANDIDATES);
  let nOld = load<u32>(g + G_NCANDIDATES);
  if (sameTable && rendezvousTable) {
    // the same kind and size as before: update the slots the change touches
    table = <usize>load<u32>(g + G_TABLE);
    updateRendezvous(gid, table, m, old, nOld, usable, u);
    reused = true;
  } else if (m != 0 && !rendezvousTable) {
    // a ring table: the kept ring changes by the points that came and went (at the same points per
    // weight), and only the entries they move change; a table of a new size is filled from the ring.
    // Else the ring is built anew (and replaces the old one only once complete).
    reused = sameTable;
    table = sameTable ? <usize>load<u32>(g + G_TABLE) : heapAlloc(<usize>m << 2);
    if (table == 0) { heapFree(usable); return ControlError.NoMemory; }
    let scale = ringScale(wsum);
    let oldSum: u64 = 0;
    for (let k: u32 = 0; k < nOld; k++) oldSum += load<u32>(old + (<usize>k << 4) + 8);
    let done = load<u32>(g + G_RING) != 0 && ringScale(oldSum) == scale && updateRing(gid, table, m, old, nOld, usable, u, scale, !sameTable);
    if (!done && !buildRing(g, table, m, usable, u, scale)) {
      if (!sameTable) heapFree(table);
      heapFree(usable);
      return ControlError.NoMemory;
    }
  } else if (m != 0) {
    table = heapAlloc(<usize>m << 2);
    if (table == 0) { heapFree(usable); return ControlError.NoMemory; }
    fillRendezvous(table, m, usable, u);
  }
  if (m == 0 || rendezvousTable) freeRing(g);
  // nearest usable targets (proximity policy), in list order
  let near = heapAlloc(<usize>(u + 1) << 2);
  if (near == 0) { if (!reused) heapFree(table); heapFree(usable); return ControlError.NoMemory; }
  let nn: u32 = 0;
  for (let i: u32 = 0; i < u; i++) {
    let tid = load<u32>(usable + (<usize>i << 2));
    if (load<u32>(targetPtr(tid) + T_DISTANCE) == dmin) {
      store<u32>(near + (<usize>nn << 2), tid);
      nn++;
    }
  }
  // usable targets with what rendezvous hashing reads, in list order
  let cands = heapAlloc(<usize>(u + 1) << 4);
  if (cands == 0) { heapFree(near); if (!reused) heapFree(table); heapFree(usable); return ControlError.NoMemory; }
  for (let i: u32 = 0; i < u; i++) {
    let tid = load<u32>(usable + (<usize>i << 2));
    let c = cands + (<usize>i << 4);
    store<u32>(c, tid);
    store<u32>(c + 4, load<u32>(targetPtr(tid) + T_HASH));
    store<u32>(c + 8, load<u32>(targetPtr(tid) + T_WEIGHT));
  }
  heapFree(usable);

  heapFree(<usize>load<u32>(g + G_CANDIDATES));
  store<u32>(g + G_CANDIDATES, <u32>cands);
  store<u32>(g + G_NCANDIDATES, u);
  if (!reused) heapFree(<usize>load<u32>(g + G_TABLE));
  heapFree(<usize>load<u32>(g + G_NEAR));
  store<u32>(g + G_TABLE, <u32>table);
  store<u32>(g + G_TABLE_SIZE, m);
  store<u32>(g + G_NEAR, <u32>near);
  store<u32>(g + G_NNEAR, nn);
  store<u32>(g + G_USABLE, u);
  let flags = <u32>load<u8>(g + G_FLAGS) & ~(GF_EQUAL_WEIGHTS | GF_RENDEZVOUS_TABLE);
  if (wmin == wmax) flags |= GF_EQUAL_WEIGHTS;
  if (rendezvousTable) flags |= GF_RENDEZVOUS_TABLE;
  store<u8>(g + G_FLAGS, <u8>flags);
  store<u16>(g + G_WMAX, <u16>(wmax > 0xffff ? 0xffff : wmax));
  if (load<u32>(g + G_RR) >= n) store<u32>(g + G_RR, 0xffffffff);
  if (load<u32>(g + G_RR_ROUND) > wmax) store<u32>(g + G_RR_ROUND, 0);
  return ControlError.Ok;
}

/** True when target a (weight wa, slot hash ha) beats b (wb, hb) for a slot: higher w / cost, then larger hash. */
@inline function beats(wa: u64, ha: u32, wb: u64, hb: u32): bool {
  let lhs = wa * rendezvousCost(hb), rhs = wb * rendezvousCost(ha);
  return lhs > rhs || (lhs == rhs && ha > hb);
}

@inline function slotHash(slotKey: u32, tid: u32): u32 {
  return rendezvousHash(slotKey, load<u32>(targetPtr(tid) + T_HASH));
}

/**
 * The rendezvous winner of slot j among the usable targets. `equal`: the
 * same targets as largestHash reads them (select.ts) when they all weigh the
 * same, or 0: with equal weights the best score is the largest hash (a
 * score's cost falls as the hash grows, and equal costs go to the larger
 * hash), found four at a time.
 */
function slotWinner(j: u32, usable: usize, u: u32, equal: usize): u32 {
  let key = rendezvousKey(j);
  if (equal != 0) return load<u32>(equal + (<usize>largestHash(equal, u, key) << 4));
  let best = load<u32>(usable);
  let bw = <u64>load<u32>(targetPtr(best) + T_WEIGHT);
  let bh = slotHash(key, best);
  for (let i: u32 = 1; i < u; i++) {
    let tid = load<u32>(usable + (<usize>i << 2));
    let w = <u64>load<u32>(targetPtr(tid) + T_WEIGHT);
    let h = slotHash(key, tid);
    if (beats(w, h, bw, bh)) { best = tid; bw = w; bh = h; }
  }
  return best;
}

/** The usable targets (id, identity hash; 16 bytes each) when they all weigh the same, for slotWinner; else 0 (also when out of memory: it then weighs them). Free with heapFree. */
function equalWeights(usable: usize, u: u32): usize {
  if (u == 0) return 0;
  let w = load<u32>(targetPtr(load<u32>(usable)) + T_WEIGHT);
  for (let i: u32 = 1; i < u; i++) if (load<u32>(targetPtr(load<u32>(usable + (<usize>i << 2))) + T_WEIGHT) != w) return 0;
  let c = heapAlloc(<usize>u << 4);
  if (c == 0) return 0;
  for (let i: u32 = 0; i < u; i++) {
    let tid = load<u32>(usable + (<usize>i << 2));
    store<u32>(c + (<usize>i << 4), tid);
    store<u32>(c + (<usize>i << 4) + 4, load<u32>(targetPtr(tid) + T_HASH));
  }
  return c;
}

function fillRendezvous(table: usize, m: u32, usable: usize, u: u32): void {
  let equal = equalWeights(usable, u);
  for (let j: u32 = 0; j < m; j++) store<u32>(table + (<usize>j << 2), slotWinner(j, usable, u, equal));
  heapFree(equal);
}

/**
 * Bring a rendezvous table from the old candidates (id, hash, weight) to the
 * new usable targets, touching only what changed: a slot whose owner left,
 * changed identity or lost weight is decided again among all; otherwise only
 * targets that are new or gained weight may take it.
 */
function updateRendezvous(gid: u32, table: usize, m: u32, old: usize, nOld: u32, usable: usize, u: u32): void {
  // challengers: new, changed or heavier targets, as indices into `usable`
  let challengers = heapAlloc(<usize>(u + 1) << 2);
  if (challengers == 0) { fillRendezvous(table, m, usable, u); return; } // out of memory: rebuild in place
  let equal = equalWeights(usable, u);
  let nc: u32 = 0;
  for (let i: u32 = 0; i < u; i++) {
    let tid = load<u32>(usable + (<usize>i << 2));
    let t = targetPtr(tid);
    let was: i64 = -1;
    for (let k: u32 = 0; k < nOld; k++) {
      let o = old + (<usize>k << 4);
      if (load<u32>(o) == tid && load<u32>(o + 4) == load<u32>(t + T_HASH)) { was = <i64>k; break; }
    }
    if (was < 0 || load<u32>(t + T_WEIGHT) > load<u32>(old + (<usize>was << 4) + 8)) {
      store<u32>(challengers + (<usize>nc << 2), tid);
      nc++;
    }
  }
  // dirty: old owners that left, changed identity or got lighter
  for (let k: u32 = 0; k < nOld; k++) {
    let o = old + (<usize>k << 4);
    let tid = load<u32>(o);
    let t = targetPtr(tid);
    // (a removed target's slot may already serve another group)
    let stays = targetUsable(tid) && load<u32>(t + T_GROUP) == gid && load<u32>(t + T_HASH) == load<u32>(o + 4) &&
      load<u32>(t + T_WEIGHT) >= load<u32>(o + 8);
    if (!stays) store<u8>(t + T_FLAGS, <u8>(<u32>load<u8>(t + T_FLAGS) | TF_DIRTY));
  }
  for (let j: u32 = 0; j < m; j++) {
    let at = table + (<usize>j << 2);
    let owner = load<u32>(at);
    if ((<u32>load<u8>(targetPtr(owner) + T_FLAGS) & TF_DIRTY) != 0) {
      store<u32>(at, slotWinner(j, usable, u, equal));
      continue;
    }
    if (nc == 0) continue;
    let key = rendezvousKey(j);
    let best = owner;
    let bw = <u64>load<u32>(targetPtr(owner) + T_WEIGHT);
    let bh = slotHash(key, owner);
    for (let i: u32 = 0; i < nc; i++) {
      let tid = load<u32>(challengers + (<usize>i << 2));
      let w = <u64>load<u32>(targetPtr(tid) + T_WEIGHT);
      let h = slotHash(key, tid);
      if (beats(w, h, bw, bh)) { best = tid; bw = w; bh = h; }
    }
    store<u32>(at, best);
  }
  for (let k: u32 = 0; k < nOld; k++) {
    let t = targetPtr(load<u32>(old + (<usize>k << 4)));
    store<u8>(t + T_FLAGS, <u8>(<u32>load<u8>(t + T_FLAGS) & ~TF_DIRTY));
  }
  heapFree(challengers);
  heapFree(equal);
}

/**
 * Exported, for tests: a digest of group gid's lookup table that names each
 * entry's owner by identity (its endpoint hash), not by target id, so two
 * data planes that reached the same membership along different histories can
 * be compared. 0 when the group has no table.
 */
export function group_table_digest(gid: u32): u32 {
  if (!groupLive(gid)) return 0;
  let g = groupPtr(gid);
  let m = load<u32>(g + G_TABLE_SIZE);
  let table = <usize>load<u32>(g + G_TABLE);
  let h: u32 = 0x811c9dc5 ^ m;
  for (let j: u32 = 0; j < m; j++) h = (h ^ load<u32>(targetPtr(load<u32>(table + (<usize>j << 2))) + T_HASH)) * 0x01000193;
  return h;
}
