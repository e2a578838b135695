// The reference model's per-group lookup tables (assembly/group/tables.ts).
// A target list keeps its order; the lookup table (groups of more than 8
// member slots), the nearest list and the round-robin state are rebuilt by
// commit() exactly as group_commit() does; the rendezvous and ring tables are
// built by their definitions, where the core updates them in place.

import { rendezvousCost, rendezvousHash } from "../hash.js";
import type { RefGroup, RefTarget } from "./groups.js";

/** Groups with at most this many member slots use rendezvous hashing, no table (HRW_MAX_SLOTS). */
export const HRW_MAX_SLOTS = 8;
/** Up to this many member slots, a rendezvous table (each slot owned by its rendezvous winner); beyond, a ring table. */
export const RENDEZVOUS_TABLE_MAX_SLOTS = 128;

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

/** Lexicographic by address bytes, then by port. */
function endpointOrder(a: RefTarget, b: RefTarget): number {
  for (let i = 0; i < a.addr.length; i++) if (a.addr[i] !== b.addr[i]) return a.addr[i] - b.addr[i];
  return a.port - b.port;
}
