// Groups, targets and target selection of the reference model: plain objects
// and arrays (assembly/group/groups.ts, tables.ts, select.ts). A target list
// keeps its order; the lookup table (groups of more than 64 member slots),
// the nearest list and the round-robin state are rebuilt by commit() exactly
// as group_commit() does.

import { AffinityKey, Policy } from "../../assembly/shared/abi.js";
import {
  finalize, hashAddr, hashEndpoint, hashTuple, mix, rendezvousCost, rendezvousHash, SEED_AFFINITY, SEED_MAGLEV_OFFSET,
} from "./hash.js";

/** Groups with at most this many member slots use rendezvous hashing, no table (HRW_MAX_SLOTS). */
export const HRW_MAX_SLOTS = 64;
/** Up to this many member slots, a rendezvous table (each slot owned by its rendezvous winner); beyond, a ring table. */
export const RENDEZVOUS_TABLE_MAX_SLOTS = 128;

/** A scope rule: clients in prefix/length only reach targets with label `label` (a label id, 1..255). */
export interface ScopeRule {
  prefix: Uint8Array;
  length: number;
  label: number;
}

export class RefTarget {
  up = true;
  /** Member of its group (cleared on removal). */
  live = true;
  /** Live flows pinned to it. */
  active = 0;
  /** Packets forwarded to it. */
  packets = 0;
  /** Holds a slot of the target table (until removed and its last flow is gone). */
  slotUsed = true;
  /** Identity hash (rendezvous and ring points). */
  readonly hash: number;

  constructor(
    readonly group: RefGroup,
    readonly addr: Uint8Array,
    /** Host order; 0 = the client's destination port. */
    readonly port: number,
    public weight: number,
    readonly aware: boolean,
    readonly distance: number,
    /** Label id (0: none). */
    readonly label = 0,
  ) {
    this.hash = hashEndpoint(SEED_MAGLEV_OFFSET, addr, port);
  }

  get usable(): boolean {
    return this.live && this.up;
  }
}

export class RefGroup {
  targets: RefTarget[] = [];
  table: RefTarget[] = [];
  /** The table is a rendezvous table (not a ring table). */
  rendezvousTable = false;
  near: RefTarget[] = [];
  usable = 0;
  /** Longest prefix first (a stable sort, as the core's insertion sort). */
  scopes: ScopeRule[] = [];
  /** Waiting for its rendezvous answer: with no usable target, packets go to the host. */
  pending = false;
  /** Largest weight among usable targets at the last commit, capped at 0xffff. */
  wmax = 0;
  /** Room in the member list: 0, then 4, doubled whenever it is full; never shrinks. Sizes the lookup table. */
  cap = 0;
  /** Round-robin position in the target list; 0xffffffff: before the first target. */
  rrPos = 0xffffffff;
  rrRound = 0;
  /** Flows referring to the group. */
  flows = 0;
  live = true;
  /** Holds a slot of the group table (until removed and its last flow is gone). */
  slotUsed = true;

  constructor(
    readonly family: 4 | 6,
    readonly proto: number,
    readonly addr: Uint8Array,
    readonly port: number,
    public policy: Policy,
    public affinity: AffinityKey,
  ) {}
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Lookup table size for a member list with room for `slots` targets: the first
 * prime >= 101 slots (0 when that exceeds 2^31 - 1). It follows the grow-only
 * list capacity, not the number of usable targets.
 */
export function tableSize(slots: number): number {
  let p = slots * 101;
  if (p > 0x7fffffff) return 0;
  while (!isPrime(p)) p++;
  return p;
}

/** A target joins g's member list (which grows as the core's does). */
export function addMember(g: RefGroup, t: RefTarget): void {
  g.targets.push(t);
}

/** Grow the member list's room when it is full (target_add does this before it looks for a table slot). */
export function growMembers(g: RefGroup): void {
  if (g.targets.length === g.cap) g.cap = g.cap === 0 ? 4 : g.cap * 2;
}


/** Rebuild the lookup tables from the current targets (group_commit). */
export function commit(g: RefGroup): void {
  const usable = g.targets.filter((t) => t.usable);
  let wmax = 0;
  let dmin = Infinity;
  for (const t of usable) {
    wmax = Math.max(wmax, t.weight);
    dmin = Math.min(dmin, t.distance);
  }
  const m = usable.length === 0 || g.cap <= HRW_MAX_SLOTS ? 0 : tableSize(g.cap);
  g.rendezvousTable = m > 0 && g.cap <= RENDEZVOUS_TABLE_MAX_SLOTS;
  let table: RefTarget[] = [];
  if (g.rendezvousTable) {
    // by definition: every slot is owned by its rendezvous winner (the core updates it incrementally)
    table = Array.from({ length: m }, (_, j) => slotWinner(j, usable));
  } else if (m > 0) {
    table = ringTable(m, usable);
  }
  g.table = table;
  g.usable = usable.length;
  g.near = usable.filter((t) => t.distance === dmin);
  g.wmax = Math.min(wmax, 0xffff);
  if (g.rrPos >= g.targets.length) g.rrPos = 0xffffffff;
  if (g.rrRound > wmax) g.rrRound = 0;
}

const sameAddr = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Points on the ring per unit of weight, and at most this many points per group (RING_POINTS, RING_MAX_POINTS). */
const RING_POINTS = 101;
const RING_MAX_POINTS = 1 << 22;

/**
 * The ring table, by definition: each target's RING_POINTS x weight points
 * (fewer per unit when the group is heavier than RING_MAX_POINTS) at
 * rendezvousHash(k, identity hash), ordered by (position, identity hash) and
 * then endpoint (address bytes, then port: two targets that share an
 * identity hash have coinciding points); entry j belongs to the first point
 * at or after j 2^32 / m.
 */
function ringTable(m: number, usable: RefTarget[]): RefTarget[] {
  const total = usable.reduce((n, t) => n + RING_POINTS * t.weight, 0);
  const scale = Math.max(1, Math.ceil(total / RING_MAX_POINTS));
  const points: { pos: number; hash: number; t: RefTarget }[] = [];
  for (const t of usable) {
    const v = Math.max(1, Math.floor((RING_POINTS * t.weight) / scale));
    for (let k = 0; k < v; k++) points.push({ pos: rendezvousHash(k, t.hash), hash: t.hash, t });
  }
  points.sort((a, b) => a.pos - b.pos || a.hash - b.hash || endpointOrder(a.t, b.t));
  const table: RefTarget[] = new Array(m);
  let p = 0;
  for (let j = 0; j < m; j++) {
    const pos = Number((BigInt(j) << 32n) / BigInt(m));
    while (p < points.length && points[p].pos < pos) p++;
    table[j] = points[p < points.length ? p : 0].t;
  }
  return table;
}

/** Lexicographic by address bytes, then by port. */
function endpointOrder(a: RefTarget, b: RefTarget): number {
  for (let i = 0; i < a.addr.length; i++) if (a.addr[i] !== b.addr[i]) return a.addr[i] - b.addr[i];
  return a.port - b.port;
}

/** The rendezvous winner of table slot j: highest weight / cost (w * cost < 2^37: exact in a double), then larger hash. */
function slotWinner(j: number, usable: RefTarget[]): RefTarget {
  let best = usable[0];
  let bh = rendezvousHash(j, best.hash);
  for (let i = 1; i < usable.length; i++) {
    const t = usable[i];
    const h = rendezvousHash(j, t.hash);
    const lhs = t.weight * rendezvousCost(bh), rhs = best.weight * rendezvousCost(h);
    if (lhs > rhs || (lhs === rhs && h > bh)) { best = t; bh = h; }
  }
  return best;
}

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
