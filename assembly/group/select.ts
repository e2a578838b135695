// Target selection for a new flow, by the group's policy (DESIGN.md section 3).
//
// Reads the tables group_commit() built; allocates nothing. Candidates are
// the usable targets, narrowed by scoping (a client in a scoped prefix only
// reaches targets with that prefix's label) and never the sender itself (a
// member sending to its own group).
//
// affinity: groups of up to HRW_MAX_SLOTS members use weighted rendezvous
// hashing — removing one of N targets moves exactly the keys it had; larger
// groups look the key up in their table.

import { AffinityKey, Policy } from "../shared/abi";
import { hashAddr, hashTuple, mix, finalize, rendezvousCost, rendezvousHash, rendezvousKey, SEED_AFFINITY } from "../hash";
import { raw32 } from "../wire/bytes";
import {
  groupPtr, targetPtr, targetUsable, G_POLICY, G_AFFINITY, G_TABLE, G_TABLE_SIZE, G_TARGETS, G_NTARGETS,
  G_RR, G_RR_ROUND, G_NEAR, G_NNEAR, G_USABLE, G_WMAX, G_SCOPES, G_NSCOPES, SCOPE_SIZE, S_LEN, S_LABEL, G_FLAGS,
  GF_EQUAL_WEIGHTS, GF_RENDEZVOUS_TABLE, G_CANDIDATES, G_NCANDIDATES,
  T_ADDR, T_WEIGHT, T_ACTIVE, T_LABEL, T_HASH, T_DISTANCE,
} from "./groups";

let rng: u32 = 0x2545f491;

/** Exported: seed of the `random` policy (deterministic runs and tests). */
export function set_random_seed(seed: u32): void {
  rng = seed == 0 ? 0x2545f491 : seed;
}

@inline function nextRandom(): u32 {
  let x = rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  rng = x;
  return x;
}

@inline function isSender(tid: u32, family: u32, src: usize): bool {
  let a = targetPtr(tid) + T_ADDR;
  if (family == 4) return raw32(a) == raw32(src);
  return load<u64>(a) == load<u64>(src) && load<u64>(a + 8) == load<u64>(src + 8);
}

/** A candidate: usable, of the scope's label (0 = any), not the sender. */
@inline function eligible(tid: u32, family: u32, src: usize, label: u32): bool {
  return targetUsable(tid) && (label == 0 || <u32>load<u8>(targetPtr(tid) + T_LABEL) == label) && !isSender(tid, family, src);
}

/** True when the first `bits` bits of the addresses at a and b agree. */
function prefixMatch(a: usize, b: usize, bits: u32): bool {
  let i: u32 = 0;
  for (; i + 8 <= bits; i += 8) if (load<u8>(a + (i >> 3)) != load<u8>(b + (i >> 3))) return false;
  let rest = bits - i;
  if (rest == 0) return true;
  let mask = <u32>(0xff00 >> rest) & 0xff;
  return (<u32>load<u8>(a + (i >> 3)) & mask) == (<u32>load<u8>(b + (i >> 3)) & mask);
}

/** The label a client is scoped to by its longest matching prefix, or 0 (no restriction). */
export function scopeLabel(g: usize, src: usize): u32 {
  let n = load<u32>(g + G_NSCOPES);
  let rules = <usize>load<u32>(g + G_SCOPES);
  for (let i: u32 = 0; i < n; i++) {
    let r = rules + <usize>i * SCOPE_SIZE;
    if (prefixMatch(src, r, <u32>load<u8>(r + S_LEN))) return <u32>load<u8>(r + S_LABEL);
  }
  return 0;
}

/** The affinity key of a flow: hash of the client address or of the whole tuple. */
@inline export function affinityHash(g: usize, family: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32): u32 {
  return load<u8>(g + G_AFFINITY) == <u8>AffinityKey.FiveTuple
    ? hashTuple(SEED_AFFINITY, family, src, dst, sport, dport, proto)
    : hashAddr(SEED_AFFINITY, src, family);
}

/**
 * The table entry selectTarget reads first for a new flow of group `gid`
 * (an affinity group with a table and no scopes), or 0: for the batch
 * prefetch, which touches it beside the chunk's other misses.
 */
@inline export function selectionEntry(gid: u32, family: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32): usize {
  let g = groupPtr(gid);
  let m = load<u32>(g + G_TABLE_SIZE);
  if (m == 0 || <u32>load<u8>(g + G_POLICY) != Policy.Affinity || load<u32>(g + G_NSCOPES) != 0 || load<u32>(g + G_USABLE) == 0) return 0;
  return <usize>load<u32>(g + G_TABLE) + (<usize>(affinityHash(g, family, src, dst, sport, dport, proto) % m) << 2);
}

/** selectTarget for a new flow whose group's selectionEntry is `entry` (not 0): the target it names, read once. */
@inline export function selectAt(entry: usize, gid: u32, family: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32): i64 {
  let tid = load<u32>(entry);
  return isSender(tid, family, src) ? selectTarget(gid, family, src, dst, sport, dport, proto) : <i64>tid; // (the sender itself: rare)
}

/**
 * Pick a target for a new flow of group `gid` from src (the client) to dst.
 * Returns the target id, or -1 when no candidate remains.
 */
export function selectTarget(gid: u32, family: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32): i64 {
  // one copy per family, each with the family a constant
  return family == 4 ? selectFor(gid, 4, src, dst, sport, dport, proto) : selectFor(gid, 6, src, dst, sport, dport, proto);
}

@inline function selectFor(gid: u32, family: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32): i64 {
  let g = groupPtr(gid);
  if (load<u32>(g + G_USABLE) == 0) return -1;
  let label = load<u32>(g + G_NSCOPES) == 0 ? 0 : scopeLabel(g, src); // (no call for a group without scopes)
  let m = load<u32>(g + G_TABLE_SIZE);
  let table = <usize>load<u32>(g + G_TABLE);
  let policy = <u32>load<u8>(g + G_POLICY);
  let tid: i64 = -1;
  if (policy == Policy.Affinity) {
    let h = affinityHash(g, family, src, dst, sport, dport, proto);
    if (m == 0 || label != 0) return rendezvous(g, h, family, src, label);
    tid = <i64>load<u32>(table + (<usize>(h % m) << 2));
    if ((<u32>load<u8>(g + G_FLAGS) & GF_RENDEZVOUS_TABLE) != 0) {
      // a rendezvous table: the sender itself falls back to rendezvous without it
      return isSender(<u32>tid, family, src) ? rendezvous(g, h, family, src, 0) : tid;
    }
    // a member sending to its own group: rehash deterministically, so other proxies agree
    for (let i: u32 = 1; i <= 8 && isSender(<u32>tid, family, src); i++) {
      h = finalize(mix(h, i), 4);
      tid = <i64>load<u32>(table + (<usize>(h % m) << 2));
    }
  } else if (policy == Policy.RoundRobin) {
    return roundRobin(g, family, src, label);
  } else if (policy == Policy.Random) {
    if (m == 0 || label != 0) return weightedRandom(g, family, src, label);
    tid = <i64>load<u32>(table + (<usize>(nextRandom() % m) << 2));
    for (let i: u32 = 0; i < 8 && isSender(<u32>tid, family, src); i++) {
      tid = <i64>load<u32>(table + (<usize>(nextRandom() % m) << 2));
    }
  } else if (policy == Policy.LeastLoad) {
    return leastLoad(g, family, src, label);
  } else {
    return proximity(g, family, src, label);
  }
  if (tid >= 0 && isSender(<u32>tid, family, src)) tid = firstOther(g, family, src);
  return tid;
}

/**
 * Weighted rendezvous hashing: the candidate with the highest
 * weight / -log2(hash) wins (equal scores: the larger hash). Iterates the
 * usable targets group_commit() listed with their hashes and weights.
 */
function rendezvous(g: usize, key: u32, family: u32, src: usize, label: u32): i64 {
  let n = load<u32>(g + G_NCANDIDATES);
  let cands = <usize>load<u32>(g + G_CANDIDATES);
  let km = rendezvousKey(key);
  let equal = (<u32>load<u8>(g + G_FLAGS) & GF_EQUAL_WEIGHTS) != 0;
  if (equal && label == 0 && n != 0) {
    // the common case: the largest hash wins, and the sender is rarely a member
    let tid = load<u32>(cands + (<usize>largestHash(cands, n, km) << 4));
    if (!isSender(tid, family, src)) return <i64>tid;
  }
  // Pass 0 ignores the sender (the common case: it is not a member); if the
  // winner is the sender, pass 1 runs again without it.
  for (let pass = 0; pass < 2; pass++) {
    let best: i64 = -1;
    let bw: u64 = 0, bc: u64 = 1;
    let bh: u32 = 0;
    for (let i: u32 = 0; i < n; i++) {
      let c = cands + (<usize>i << 4);
      let tid = load<u32>(c);
      if (label != 0 && <u32>load<u8>(targetPtr(tid) + T_LABEL) != label) continue;
      if (pass == 1 && isSender(tid, family, src)) continue;
      let h = rendezvousHash(km, load<u32>(c + 4));
      if (equal) {
        // equal weights: the best score (ties to the larger hash) is the largest hash
        if (best < 0 || h > bh) { best = <i64>tid; bh = h; }
        continue;
      }
      let w = <u64>load<u32>(c + 8);
      let cost = rendezvousCost(h);
      let lhs = w * bc, rhs = bw * cost; // w / cost > bw / bc, cross-multiplied
      if (best < 0 || lhs > rhs || (lhs == rhs && h > bh)) {
        best = <i64>tid;
        bw = w;
        bc = cost;
        bh = h;
      }
    }
    if (best < 0 || !isSender(<u32>best, family, src)) return best;
  }
  return -1;
}

// The MurmurHash3 constants of rendezvousHash, four lanes each, and lane
// positions: loaded into registers once per selection (as v128.const, V8
// would materialise them inside the loop).
const RZ = memory.data<u32>([
  0xcc9e2d51, 0xcc9e2d51, 0xcc9e2d51, 0xcc9e2d51,
  0x1b873593, 0x1b873593, 0x1b873593, 0x1b873593,
  5, 5, 5, 5,
  0xe6546b64, 0xe6546b64, 0xe6546b64, 0xe6546b64,
  8, 8, 8, 8,
  0x85ebca6b, 0x85ebca6b, 0x85ebca6b, 0x85ebca6b,
  0xc2b2ae35, 0xc2b2ae35, 0xc2b2ae35, 0xc2b2ae35,
  0, 1, 2, 3,
  4, 4, 4, 4,
], 16);

/**
 * The position of the candidate (of n >= 1 at `cands`) whose rendezvous hash
 * rendezvousHash(km, identity hash) is the largest, the first on a tie: the
 * equal-weights rendezvous winner. Four candidates at a time with SIMD (the
 * same MurmurHash3 steps lane by lane), the rest one by one.
 */
export function largestHash(cands: usize, n: u32, km: u32): u32 {
  let best: u32 = 0;
  let bh: u32 = 0;
  let i: u32 = 0;
  if (n >= 8) {
    let c1 = v128.load(RZ), c2 = v128.load(RZ, 16), five = v128.load(RZ, 32), c3 = v128.load(RZ, 48);
    let eight = v128.load(RZ, 64), f1 = v128.load(RZ, 80), f2 = v128.load(RZ, 96);
    let idx = v128.load(RZ, 112), four = v128.load(RZ, 128);
    let kmv = i32x4.splat(<i32>km);
    let bestH = i32x4.splat(0);
    let bestI = idx;
    for (; i + 4 <= n; i += 4) {
      // lane 1 (the identity hash) of four 16-byte candidates
      let c = cands + (<usize>i << 4) + 4;
      let k = v128.load32_zero(c);
      k = v128.load32_lane(c + 16, k, 1);
      k = v128.load32_lane(c + 32, k, 2);
      k = v128.load32_lane(c + 48, k, 3);
      // mix(km, k)
      k = i32x4.mul(k, c1);
      k = v128.or(i32x4.shl(k, 15), i32x4.shr_u(k, 17));
      k = i32x4.mul(k, c2);
      let h = v128.xor(kmv, k);
      h = v128.or(i32x4.shl(h, 13), i32x4.shr_u(h, 19));
      h = i32x4.add(i32x4.mul(h, five), c3);
      // finalize(h, 8)
      h = v128.xor(h, eight);
      h = v128.xor(h, i32x4.shr_u(h, 16));
      h = i32x4.mul(h, f1);
      h = v128.xor(h, i32x4.shr_u(h, 13));
      h = i32x4.mul(h, f2);
      h = v128.xor(h, i32x4.shr_u(h, 16));
      if (i == 0) {
        bestH = h; // the first four always count (a hash may be 0)
      } else {
        // strictly larger: an earlier candidate keeps a tie, as one by one
        let gt = i32x4.gt_u(h, bestH);
        bestH = v128.bitselect(h, bestH, gt);
        bestI = v128.bitselect(idx, bestI, gt);
      }
      idx = i32x4.add(idx, four);
    }
    // the largest of the four lanes, the lowest position on a tie
    best = <u32>i32x4.extract_lane(bestI, 0);
    bh = <u32>i32x4.extract_lane(bestH, 0);
    let lh = <u32>i32x4.extract_lane(bestH, 1), li = <u32>i32x4.extract_lane(bestI, 1);
    if (lh > bh || (lh == bh && li < best)) { bh = lh; best = li; }
    lh = <u32>i32x4.extract_lane(bestH, 2); li = <u32>i32x4.extract_lane(bestI, 2);
    if (lh > bh || (lh == bh && li < best)) { bh = lh; best = li; }
    lh = <u32>i32x4.extract_lane(bestH, 3); li = <u32>i32x4.extract_lane(bestI, 3);
    if (lh > bh || (lh == bh && li < best)) { bh = lh; best = li; }
  } else {
    bh = rendezvousHash(km, load<u32>(cands + 4));
    i = 1;
  }
  for (; i < n; i++) {
    let h = rendezvousHash(km, load<u32>(cands + (<usize>i << 4) + 4));
    if (h > bh) { bh = h; best = i; }
  }
  return best;
}

/** Interleaved weighted round robin over the group's candidates, in list order. */
function roundRobin(g: usize, family: u32, src: usize, label: u32): i64 {
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  let wmax = <u32>load<u16>(g + G_WMAX);
  if (wmax == 0) wmax = 1;
  let pos = load<u32>(g + G_RR);
  let round = load<u32>(g + G_RR_ROUND);
  let limit = <u64>n * <u64>wmax + <u64>n;
  for (let k: u64 = 0; k < limit; k++) {
    pos++;
    if (pos >= n) {
      pos = 0;
      round = round >= wmax ? 1 : round + 1;
    }
    if (round == 0) round = 1;
    let tid = load<u32>(list + (<usize>pos << 2));
    if (!eligible(tid, family, src, label) || load<u32>(targetPtr(tid) + T_WEIGHT) < round) continue;
    store<u32>(g + G_RR, pos);
    store<u32>(g + G_RR_ROUND, round);
    return <i64>tid;
  }
  return -1;
}

/** A candidate drawn with probability proportional to its weight. */
function weightedRandom(g: usize, family: u32, src: usize, label: u32): i64 {
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  let total: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (eligible(tid, family, src, label)) total += <u64>load<u32>(targetPtr(tid) + T_WEIGHT);
  }
  if (total == 0) return -1;
  let r = <u64>nextRandom() % total;
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (!eligible(tid, family, src, label)) continue;
    let w = <u64>load<u32>(targetPtr(tid) + T_WEIGHT);
    if (r < w) return <i64>tid;
    r -= w;
  }
  return -1;
}

/** The candidate with the fewest active flows per unit of weight; ties go to list order. */
function leastLoad(g: usize, family: u32, src: usize, label: u32): i64 {
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  let best: i64 = -1;
  let bestActive: u64 = 0;
  let bestWeight: u64 = 1;
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (!eligible(tid, family, src, label)) continue;
    let t = targetPtr(tid);
    let a = <u64>load<u32>(t + T_ACTIVE);
    let w = <u64>load<u32>(t + T_WEIGHT);
    if (best < 0 || a * bestWeight < bestActive * w) {
      best = <i64>tid;
      bestActive = a;
      bestWeight = w;
    }
  }
  return best;
}

/** The nearest candidate (lowest configured distance); ties broken by a hash of the client. */
function proximity(g: usize, family: u32, src: usize, label: u32): i64 {
  let h = hashAddr(SEED_AFFINITY, src, family);
  if (label == 0) {
    // the nearest usable targets are precomputed; only the sender may have to be skipped
    let nn = load<u32>(g + G_NNEAR);
    let near = <usize>load<u32>(g + G_NEAR);
    for (let i: u32 = 0; i < nn; i++) {
      let cand = load<u32>(near + (<usize>((h + i) % nn) << 2));
      if (!isSender(cand, family, src)) return <i64>cand;
    }
  }
  // scoped, or every nearest target is the sender: the nearest among the candidates
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  let dmin: u32 = 0xffffffff;
  let count: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (!eligible(tid, family, src, label)) continue;
    let d = load<u32>(targetPtr(tid) + T_DISTANCE);
    if (d < dmin) { dmin = d; count = 0; }
    if (d == dmin) count++;
  }
  if (count == 0) return -1;
  let k = h % count;
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (!eligible(tid, family, src, label) || load<u32>(targetPtr(tid) + T_DISTANCE) != dmin) continue;
    if (k == 0) return <i64>tid;
    k--;
  }
  return -1;
}

function firstOther(g: usize, family: u32, src: usize): i64 {
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (eligible(tid, family, src, 0)) return <i64>tid;
  }
  return -1;
}
