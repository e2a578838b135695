// Target selection for a new flow, by the group's policy (DESIGN.md section 3).
//
// Reads the tables group_commit() built; allocates nothing. A sender that is
// itself a target of the group is never given itself.

import { AffinityKey, Policy } from "../shared/abi";
import { hashAddr, hashTuple, mix, finalize, SEED_AFFINITY } from "../hash";
import { raw32 } from "../wire/bytes";
import {
  groupPtr, targetPtr, targetUsable, G_POLICY, G_AFFINITY, G_TABLE, G_TABLE_SIZE, G_TARGETS, G_NTARGETS,
  G_RR, G_RR_ROUND, G_NEAR, G_NNEAR, T_ADDR, T_WEIGHT, T_ACTIVE,
} from "./groups";
import { G_WMAX } from "./maglev";

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

/** The affinity key of a flow: hash of the client address or of the whole tuple. */
@inline export function affinityHash(g: usize, family: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32): u32 {
  return load<u8>(g + G_AFFINITY) == <u8>AffinityKey.FiveTuple
    ? hashTuple(SEED_AFFINITY, family, src, dst, sport, dport, proto)
    : hashAddr(SEED_AFFINITY, src, family);
}

/**
 * Pick a target for a new flow of group `gid` from src (the client) to dst.
 * Returns the target id, or -1 when no usable target remains.
 */
export function selectTarget(gid: u32, family: u32, src: usize, dst: usize, sport: u32, dport: u32, proto: u32): i64 {
  let g = groupPtr(gid);
  let m = load<u32>(g + G_TABLE_SIZE);
  if (m == 0) return -1;
  let table = <usize>load<u32>(g + G_TABLE);
  let policy = <u32>load<u8>(g + G_POLICY);
  let tid: i64 = -1;
  if (policy == Policy.Affinity) {
    let h = affinityHash(g, family, src, dst, sport, dport, proto);
    tid = <i64>load<u32>(table + (<usize>(h % m) << 2));
    // a member sending to its own group: rehash deterministically, so other proxies agree
    for (let i: u32 = 1; i <= 8 && isSender(<u32>tid, family, src); i++) {
      h = finalize(mix(h, i), 4);
      tid = <i64>load<u32>(table + (<usize>(h % m) << 2));
    }
  } else if (policy == Policy.RoundRobin) {
    tid = roundRobin(g, family, src);
  } else if (policy == Policy.Random) {
    tid = <i64>load<u32>(table + (<usize>(nextRandom() % m) << 2));
    for (let i: u32 = 0; i < 8 && isSender(<u32>tid, family, src); i++) {
      tid = <i64>load<u32>(table + (<usize>(nextRandom() % m) << 2));
    }
  } else if (policy == Policy.LeastLoad) {
    tid = leastLoad(g, family, src);
  } else {
    let nn = load<u32>(g + G_NNEAR);
    let near = <usize>load<u32>(g + G_NEAR);
    let h = hashAddr(SEED_AFFINITY, src, family);
    for (let i: u32 = 0; i < nn; i++) {
      let cand = load<u32>(near + (<usize>((h + i) % nn) << 2));
      if (!isSender(cand, family, src)) { tid = <i64>cand; break; }
    }
    if (tid < 0) tid = leastLoad(g, family, src); // every nearest target is the sender itself
  }
  if (tid >= 0 && isSender(<u32>tid, family, src)) tid = firstOther(g, family, src);
  return tid;
}

/** Interleaved weighted round robin over the group's usable targets, in list order. */
function roundRobin(g: usize, family: u32, src: usize): i64 {
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
    if (!targetUsable(tid) || load<u32>(targetPtr(tid) + T_WEIGHT) < round || isSender(tid, family, src)) continue;
    store<u32>(g + G_RR, pos);
    store<u32>(g + G_RR_ROUND, round);
    return <i64>tid;
  }
  return -1;
}

/** The usable target with the fewest active flows per unit of weight; ties go to list order. */
function leastLoad(g: usize, family: u32, src: usize): i64 {
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  let best: i64 = -1;
  let bestActive: u64 = 0;
  let bestWeight: u64 = 1;
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (!targetUsable(tid) || isSender(tid, family, src)) continue;
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

function firstOther(g: usize, family: u32, src: usize): i64 {
  let n = load<u32>(g + G_NTARGETS);
  let list = <usize>load<u32>(g + G_TARGETS);
  for (let i: u32 = 0; i < n; i++) {
    let tid = load<u32>(list + (<usize>i << 2));
    if (targetUsable(tid) && !isSender(tid, family, src)) return <i64>tid;
  }
  return -1;
}
