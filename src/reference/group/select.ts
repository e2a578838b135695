// Target selection of the reference model (assembly/group/select.ts): by the
// group's policy, among the usable targets, narrowed by scoping, never the
// sender itself.

import { AffinityKey, Policy } from "../../../assembly/shared/abi.js";
import { finalize, hashAddr, hashTuple, mix, rendezvousCost, rendezvousHash, SEED_AFFINITY } from "../hash.js";
import { sameAddr } from "../parse.js";
import type { RefGroup, RefTarget } from "./groups.js";

/** Target selection for new flows (and re-pinning), with the `random` policy's generator state. */
export class Selector {
  private rng: number;

  constructor(seed = 0) {
    this.rng = seed >>> 0 === 0 ? 0x2545f491 : seed >>> 0;
  }

  private nextRandom(): number {
    let x = this.rng;
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    this.rng = x;
    return x;
  }

  /** Pick a target of g for a flow from src:sport to dst:dport (host-order ports), never the sender itself. */
  select(g: RefGroup, family: 4 | 6, src: Uint8Array, dst: Uint8Array, sport: number, dport: number, proto: number): RefTarget | null {
    if (g.usable === 0) return null;
    const label = scopeLabel(g, src);
    const table = g.table;
    const m = table.length;
    const isSender = (t: RefTarget): boolean => sameAddr(t.addr, src);
    const eligible = (t: RefTarget): boolean => t.usable && (label === 0 || t.label === label) && !isSender(t);
    let t: RefTarget | null = null;
    switch (g.policy) {
      case Policy.Affinity: {
        let h = g.affinity === AffinityKey.FiveTuple
          ? hashTuple(SEED_AFFINITY, family, src, dst, sport, dport, proto)
          : hashAddr(SEED_AFFINITY, src);
        if (m === 0 || label !== 0) return rendezvous(g, h, eligible);
        t = table[h % m];
        if (g.rendezvousTable) return isSender(t) ? rendezvous(g, h, (x) => x.usable && !isSender(x)) : t;
        // a member sending to its own group: rehash deterministically
        for (let i = 1; i <= 8 && isSender(t); i++) {
          h = finalize(mix(h, i), 4);
          t = table[h % m];
        }
        break;
      }
      case Policy.RoundRobin:
        return this.roundRobin(g, eligible);
      case Policy.Random:
        if (m === 0 || label !== 0) return this.weightedRandom(g, eligible);
        t = table[this.nextRandom() % m];
        for (let i = 0; i < 8 && isSender(t); i++) t = table[this.nextRandom() % m];
        break;
      case Policy.LeastLoad:
        return leastLoad(g, eligible);
      default:
        return proximity(g, hashAddr(SEED_AFFINITY, src), label, isSender, eligible);
    }
    if (t !== null && isSender(t)) t = g.targets.find((x) => x.usable && !isSender(x)) ?? null;
    return t;
  }

  /** Interleaved weighted round robin over the target list. */
  private roundRobin(g: RefGroup, eligible: (t: RefTarget) => boolean): RefTarget | null {
    const n = g.targets.length;
    const wmax = g.wmax === 0 ? 1 : g.wmax;
    let pos = g.rrPos;
    let round = g.rrRound;
    for (let k = 0; k < n * wmax + n; k++) {
      pos = (pos + 1) >>> 0;
      if (pos >= n) {
        pos = 0;
        round = round >= wmax ? 1 : round + 1;
      }
      if (round === 0) round = 1;
      const t = g.targets[pos];
      if (!eligible(t) || t.weight < round) continue;
      g.rrPos = pos;
      g.rrRound = round;
      return t;
    }
    return null;
  }

  /** A candidate drawn with probability proportional to its weight. */
  private weightedRandom(g: RefGroup, eligible: (t: RefTarget) => boolean): RefTarget | null {
    const candidates = g.targets.filter(eligible);
    const total = candidates.reduce((a, t) => a + t.weight, 0);
    if (total === 0) return null;
    let r = this.nextRandom() % total;
    for (const t of candidates) {
      if (r < t.weight) return t;
      r -= t.weight;
    }
    return null;
  }
}

/** The label a client is scoped to by its longest matching prefix, or 0. */
function scopeLabel(g: RefGroup, src: Uint8Array): number {
  for (const r of g.scopes) {
    let ok = true;
    for (let bit = 0; bit < r.length && ok; bit++) {
      const mask = 0x80 >>> (bit & 7);
      ok = (src[bit >>> 3] & mask) === (r.prefix[bit >>> 3] & mask);
    }
    if (ok) return r.label;
  }
  return 0;
}

/** Weighted rendezvous hashing: the highest weight / -log2(hash) wins; equal scores to the larger hash. */
function rendezvous(g: RefGroup, key: number, eligible: (t: RefTarget) => boolean): RefTarget | null {
  let best: RefTarget | null = null;
  let bw = 0n, bc = 1n, bh = 0;
  for (const t of g.targets) {
    if (!eligible(t)) continue;
    const h = rendezvousHash(key, t.hash);
    const w = BigInt(t.weight);
    const c = BigInt(rendezvousCost(h));
    const lhs = w * bc, rhs = bw * c;
    if (best === null || lhs > rhs || (lhs === rhs && h > bh)) {
      best = t;
      bw = w;
      bc = c;
      bh = h;
    }
  }
  return best;
}

/** The nearest candidate; ties broken by the client's hash. */
function proximity(g: RefGroup, h: number, label: number, isSender: (t: RefTarget) => boolean, eligible: (t: RefTarget) => boolean): RefTarget | null {
  if (label === 0) {
    const nn = g.near.length;
    for (let i = 0; i < nn; i++) {
      const cand = g.near[((h + i) >>> 0) % nn];
      if (!isSender(cand)) return cand;
    }
  }
  const candidates = g.targets.filter(eligible);
  if (candidates.length === 0) return null;
  const dmin = Math.min(...candidates.map((t) => t.distance));
  const nearest = candidates.filter((t) => t.distance === dmin);
  return nearest[h % nearest.length];
}

/** The candidate with the fewest active flows per unit of weight; ties to list order. */
function leastLoad(g: RefGroup, eligible: (t: RefTarget) => boolean): RefTarget | null {
  let best: RefTarget | null = null;
  for (const t of g.targets) {
    if (!eligible(t)) continue;
    if (best === null || BigInt(t.active) * BigInt(best.weight) < BigInt(best.active) * BigInt(t.weight)) best = t;
  }
  return best;
}
