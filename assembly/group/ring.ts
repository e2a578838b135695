// The consistent-hashing ring of a large group (over RENDEZVOUS_TABLE_MAX_SLOTS
// member slots) and its lookup table: each usable target puts RING_POINTS x
// weight points on a 32-bit ring, at hashes of its identity; table entry j
// belongs to the first point at or after j * 2^32 / m (wrapping). A target
// that leaves takes its points, and only the entries that fell to them change
// owner.
//
// The ring itself — every point, sorted by (position, identity hash, target
// endpoint) — is kept between commits, so a change costs the entries it moves, not
// a rebuild: updateRing() deletes the points of targets that left, merges in
// those of targets that came (in place, moving memory in bulk), then
// re-assigns only the table ranges in front of the points that appeared and
// of the survivors whose predecessors went. When the table's size changes
// (the group's member slots doubled) the kept ring fills the new table in one
// linear pass, without generating or sorting points. The result is exactly the table
// buildRing() would make from scratch (the order is total, ties included), so
// every proxy with the same membership has the same table whatever the order
// its joins came in.
//
// Control calls only: never on the packet path, and nothing here is read by it
// (select.ts reads the table).

import { heapAlloc, heapFree } from "../memory";
import { rendezvousHash, rendezvousKey } from "../hash";
import { groupPtr, targetPtr, targetUsable, G_RING, G_NRING, T_ADDR, T_FLAGS, T_GROUP, T_HASH, T_PORT, T_WEIGHT, TF_KEPT } from "./groups";

/** Points on the ring per unit of weight. */
export const RING_POINTS: u32 = 101;
/** At most this many points in one group's ring: heavier groups get proportionally fewer per unit of weight. */
export const RING_MAX_POINTS: u32 = 1 << 22;

/** Bytes per point: key u64 (position << 32 | identity hash), target id u32. */
const REC: usize = 12;
/** The ring block starts with its capacity in points (u32), then the points. */
const HDR: usize = 16;
/** Below this many records a sort is an insertion sort (no 256 KiB of counts). */
const SMALL_SORT: u32 = 256;
/** One record being moved by the insertion sort. */
const hold = memory.data(16, 8);

/** Points per unit of weight are divided by this, so a group has at most RING_MAX_POINTS points. */
export function ringScale(totalWeight: u64): u64 {
  let scale = (<u64>RING_POINTS * totalWeight + <u64>RING_MAX_POINTS - 1) / <u64>RING_MAX_POINTS;
  return scale == 0 ? 1 : scale;
}

@inline function pointsOf(weight: u32, scale: u64): u32 {
  let v = <u64>RING_POINTS * <u64>weight / scale;
  return v == 0 ? 1 : <u32>v;
}

@inline function pointKey(k: u32, h: u32): u64 {
  return (<u64>rendezvousHash(rendezvousKey(k), h) << 32) | <u64>h;
}

/**
 * Ring order: by key (position, then identity hash); points of two targets
 * that share an identity hash coincide, and go by endpoint (address bytes,
 * then port), which every proxy sees alike (target ids differ between proxies).
 */
@inline function before(ka: u64, ta: u32, kb: u64, tb: u32): bool {
  return ka < kb || (ka == kb && endpointBefore(ta, tb));
}

function endpointBefore(a: u32, b: u32): bool {
  if (a == b) return false;
  let pa = targetPtr(a), pb = targetPtr(b);
  let x = bswap<u64>(load<u64>(pa + T_ADDR)), y = bswap<u64>(load<u64>(pb + T_ADDR));
  if (x != y) return x < y;
  x = bswap<u64>(load<u64>(pa + T_ADDR + 8));
  y = bswap<u64>(load<u64>(pb + T_ADDR + 8));
  if (x != y) return x < y;
  return bswap<u16>(load<u16>(pa + T_PORT)) < bswap<u16>(load<u16>(pb + T_PORT));
}

/** First index of pts[0..n) whose (key, tid) is not before (key, tid). */
function lowerBound(pts: usize, n: u32, key: u64, tid: u32): u32 {
  let lo: u32 = 0, hi = n;
  while (lo < hi) {
    let mid = (lo + hi) >>> 1;
    let r = pts + <usize>mid * REC;
    if (before(load<u64>(r), load<u32>(r + 8), key, tid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index of pts[0..n) whose (key, tid) is after (key, tid). */
function upperBound(pts: usize, n: u32, key: u64, tid: u32): u32 {
  let lo: u32 = 0, hi = n;
  while (lo < hi) {
    let mid = (lo + hi) >>> 1;
    let r = pts + <usize>mid * REC;
    if (before(key, tid, load<u64>(r), load<u32>(r + 8))) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The index of the point (key, tid) in pts[0..n), or -1. */
function findExact(pts: usize, n: u32, key: u64, tid: u32): i64 {
  let i = lowerBound(pts, n, key, tid);
  if (i >= n) return -1;
  let r = pts + <usize>i * REC;
  return load<u64>(r) == key && load<u32>(r + 8) == tid ? <i64>i : -1;
}

/**
 * Sort n points at `a` in ring order; `tmp` holds n more (unused when n is
 * small). The result is in `a`. False when out of memory.
 */
function sortPoints(a: usize, tmp: usize, n: u32): bool {
  if (n <= SMALL_SORT) {
    for (let i: u32 = 1; i < n; i++) {
      let r = a + <usize>i * REC;
      let k = load<u64>(r), t = load<u32>(r + 8);
      let j = i;
      while (j > 0) {
        let p = a + <usize>(j - 1) * REC;
        if (!before(k, t, load<u64>(p), load<u32>(p + 8))) break;
        j--;
      }
      if (j == i) continue;
      memory.copy(hold, r, REC);
      memory.copy(a + <usize>(j + 1) * REC, a + <usize>j * REC, <usize>(i - j) * REC);
      memory.copy(a + <usize>j * REC, hold, REC);
    }
    return true;
  }
  let counts = heapAlloc(65536 << 2);
  if (counts == 0) return false;
  // LSD radix on the key, 16 bits a pass (four passes end back in `a`); then coinciding points by endpoint
  let src = a, dst = tmp;
  for (let pass: u32 = 0; pass < 4; pass++) {
    memory.fill(counts, 0, 65536 << 2);
    for (let i: u32 = 0; i < n; i++) {
      let d = digit(src + <usize>i * REC, pass);
      store<u32>(counts + d, load<u32>(counts + d) + 1);
    }
    let sum: u32 = 0;
    for (let d: usize = 0; d < 65536; d++) {
      let c = load<u32>(counts + (d << 2));
      store<u32>(counts + (d << 2), sum);
      sum += c;
    }
    for (let i: u32 = 0; i < n; i++) {
      let r = src + <usize>i * REC;
      let d = digit(r, pass);
      let at = load<u32>(counts + d);
      store<u32>(counts + d, at + 1);
      memory.copy(dst + <usize>at * REC, r, REC);
    }
    let t = src; src = dst; dst = t;
  }
  heapFree(counts);
  for (let i: u32 = 1; i < n; i++) {
    // runs of equal keys are rare and short: sort them by endpoint in place
    for (let j = i; j > 0; j--) {
      let p = a + <usize>(j - 1) * REC, r = p + REC;
      if (load<u64>(p) != load<u64>(r) || !endpointBefore(load<u32>(r + 8), load<u32>(p + 8))) break;
      memory.copy(hold, r, REC);
      memory.copy(r, p, REC);
      memory.copy(p, hold, REC);
    }
  }
  return true;
}

/** Byte offset into the counts of a point key's 16-bit digit for radix pass `pass`. */
@inline function digit(r: usize, pass: u32): usize {
  return <usize>((load<u64>(r) >> (<u64>pass << 4)) & 0xffff) << 2;
}

/** Largest entry j of an m-entry table whose position floor(j * 2^32 / m) is at most `pos`. */
@inline function lastEntryAt(pos: u64, m: u32): u32 {
  return <u32>(((pos + 1) * <u64>m - 1) >> 32);
}

@inline function fill(table: usize, from: u32, to: u32, tid: u32): void {
  for (let j = from; j <= to; j++) store<u32>(table + (<usize>j << 2), tid);
}

/** Give point idx of the ring its entries: those after its predecessor's position, up to its own (wrapping for the first). */
function assignPoint(table: usize, m: u32, pts: usize, n: u32, idx: u32): void {
  let r = pts + <usize>idx * REC;
  let pos = load<u64>(r) >> 32;
  let tid = load<u32>(r + 8);
  let prev = idx == 0 ? load<u64>(pts + <usize>(n - 1) * REC) >> 32 : load<u64>(r - REC) >> 32;
  let from = lastEntryAt(prev, m) + 1;
  if (idx == 0) {
    if (from < m) fill(table, from, m - 1, tid); // past the last point: wraps to the first
    fill(table, 0, lastEntryAt(pos, m), tid);
  } else if (from <= lastEntryAt(pos, m)) {
    fill(table, from, lastEntryAt(pos, m), tid);
  }
}

/** A ring block with room for `cap` points (0 when out of memory). */
function ringAlloc(cap: u32): usize {
  let b = heapAlloc(HDR + <usize>cap * REC);
  if (b != 0) store<u32>(b, cap);
  return b;
}

/**
 * Build group g's ring from the `u` usable targets and fill its m-entry
 * table from it; the ring replaces the group's old one. False when out of
 * memory (the group keeps its old ring and table).
 */
export function buildRing(g: usize, table: usize, m: u32, usable: usize, u: u32, scale: u64): bool {
  let count: u64 = 0;
  for (let i: u32 = 0; i < u; i++) count += pointsOf(load<u32>(targetPtr(load<u32>(usable + (<usize>i << 2))) + T_WEIGHT), scale);
  let n = <u32>count;
  let ring = ringAlloc(n);
  if (ring == 0) return false;
  let tmp = n > SMALL_SORT ? heapAlloc(<usize>n * REC) : 0;
  if (n > SMALL_SORT && tmp == 0) { heapFree(ring); return false; }
  let pts = ring + HDR;
  let at: usize = 0;
  for (let i: u32 = 0; i < u; i++) {
    let tid = load<u32>(usable + (<usize>i << 2));
    let t = targetPtr(tid);
    let h = load<u32>(t + T_HASH);
    let v = pointsOf(load<u32>(t + T_WEIGHT), scale);
    for (let k: u32 = 0; k < v; k++) {
      let r = pts + at * REC;
      store<u64>(r, pointKey(k, h));
      store<u32>(r + 8, tid);
      at++;
    }
  }
  let sorted = sortPoints(pts, tmp, n);
  heapFree(tmp);
  if (!sorted) { heapFree(ring); return false; }
  fillTable(table, m, pts, n);
  freeRing(g);
  store<u32>(g + G_RING, <u32>ring);
  store<u32>(g + G_NRING, n);
  return true;
}

/** Fill all m entries from the sorted points: entry j is the first point at or after j * 2^32 / m, wrapping to the first. */
function fillTable(table: usize, m: u32, pts: usize, n: u32): void {
  let p: u32 = 0;
  for (let j: u32 = 0; j < m; j++) {
    let pos = (<u64>j << 32) / <u64>m;
    while (p < n && (load<u64>(pts + <usize>p * REC) >> 32) < pos) p++;
    store<u32>(table + (<usize>j << 2), load<u32>(pts + (p < n ? <usize>p : 0) * REC + 8));
  }
}

/** Free group g's ring, if it has one. */
export function freeRing(g: usize): void {
  heapFree(<usize>load<u32>(g + G_RING));
  store<u32>(g + G_RING, 0);
  store<u32>(g + G_NRING, 0);
}

/**
 * Bring group gid's ring and its m-entry table from the old candidates
 * (id, identity hash, weight, 0 quadruples: the usable targets of the last
 * commit) to the `u` usable targets now, at the same `scale`. A target whose
 * identity or weight changed leaves with its old points and comes back with
 * its new ones. Touches only what the change moves; with `refill` (a new
 * table, of another size) the table is filled whole from the updated ring. False when it cannot (no
 * ring kept, out of memory, or so much changed that a build is cheaper): the
 * ring and the table are then untouched, and the caller builds them.
 */
export function updateRing(gid: u32, table: usize, m: u32, old: usize, nOld: u32, usable: usize, u: u32, scale: u64, refill: bool): bool {
  let g = groupPtr(gid);
  let ring = <usize>load<u32>(g + G_RING);
  let n = load<u32>(g + G_NRING);
  // who leaves (old candidates that do not stay as they were) and who comes
  let left = heapAlloc(<usize>(nOld + 1) * 12);
  let came = heapAlloc(<usize>(u + 1) << 2);
  if (left == 0 || came == 0) { heapFree(left); heapFree(came); return false; }
  let nl: u32 = 0, nc: u32 = 0;
  let nd: u64 = 0, ns: u64 = 0;
  for (let k: u32 = 0; k < nOld; k++) {
    let o = old + (<usize>k << 4);
    let tid = load<u32>(o);
    let t = targetPtr(tid);
    if (targetUsable(tid) && load<u32>(t + T_GROUP) == gid && load<u32>(t + T_HASH) == load<u32>(o + 4) && load<u32>(t + T_WEIGHT) == load<u32>(o + 8)) {
      store<u8>(t + T_FLAGS, <u8>(<u32>load<u8>(t + T_FLAGS) | TF_KEPT));
    } else {
      let l = left + <usize>nl * 12;
      store<u32>(l, tid);
      store<u32>(l + 4, load<u32>(o + 4));
      store<u32>(l + 8, load<u32>(o + 8));
      nl++;
      nd += pointsOf(load<u32>(o + 8), scale);
    }
  }
  for (let i: u32 = 0; i < u; i++) {
    let tid = load<u32>(usable + (<usize>i << 2));
    let t = targetPtr(tid);
    let f = <u32>load<u8>(t + T_FLAGS);
    if ((f & TF_KEPT) != 0) { store<u8>(t + T_FLAGS, <u8>(f & ~TF_KEPT)); continue; }
    store<u32>(came + (<usize>nc << 2), tid);
    nc++;
    ns += pointsOf(load<u32>(t + T_WEIGHT), scale);
  }
  let ok = ring != 0 && nd <= <u64>n && (nd + ns) * 2 <= <u64>n + 64 && applyChanges(g, table, m, left, nl, came, nc, <u32>nd, <u32>ns, scale, !refill);
  heapFree(left);
  heapFree(came);
  if (ok && refill) fillTable(table, m, <usize>load<u32>(g + G_RING) + HDR, load<u32>(g + G_NRING));
  return ok;
}

/**
 * updateRing's work once it knows who left and who came (and, with `assign`,
 * the table ranges they move). Allocates everything before changing anything.
 */
function applyChanges(g: usize, table: usize, m: u32, left: usize, nl: u32, came: usize, nc: u32, nd: u32, ns: u32, scale: u64, assign: bool): bool {
  let ring = <usize>load<u32>(g + G_RING);
  let n = load<u32>(g + G_NRING);
  let pts = ring + HDR;
  if (nd == 0 && ns == 0) return true;
  // the points that go: their records (for their successors afterwards) and indices (sorted)
  let gone = heapAlloc(<usize>nd * REC + 16);
  let idx = heapAlloc(<usize>(nd + 1) << 2);
  let news = heapAlloc(<usize>ns * REC + 16);
  let tmp = ns > SMALL_SORT ? heapAlloc(<usize>ns * REC) : 0;
  let n2 = n - nd + ns;
  let cap = load<u32>(ring);
  let grown: usize = 0;
  if (n2 > cap) grown = ringAlloc(n2 > cap * 2 ? n2 : cap * 2); // doubling: a group that keeps growing copies its ring log(n) times
  let ok = gone != 0 && idx != 0 && news != 0 && (ns <= SMALL_SORT || tmp != 0) && (n2 <= cap || grown != 0);
  let at: u32 = 0;
  for (let i: u32 = 0; ok && i < nl; i++) {
    let l = left + <usize>i * 12;
    let tid = load<u32>(l), h = load<u32>(l + 4);
    let v = pointsOf(load<u32>(l + 8), scale);
    for (let k: u32 = 0; k < v; k++) {
      let key = pointKey(k, h);
      let found = findExact(pts, n, key, tid);
      if (found < 0) { ok = false; break; } // the ring does not hold what the candidates say: rebuild
      let r = gone + <usize>at * REC;
      store<u64>(r, key);
      store<u32>(r + 8, tid);
      store<u32>(idx + (<usize>at << 2), <u32>found);
      at++;
    }
  }
  // the points that come, sorted
  at = 0;
  for (let i: u32 = 0; ok && i < nc; i++) {
    let tid = load<u32>(came + (<usize>i << 2));
    let t = targetPtr(tid);
    let h = load<u32>(t + T_HASH);
    let v = pointsOf(load<u32>(t + T_WEIGHT), scale);
    for (let k: u32 = 0; k < v; k++) {
      let r = news + <usize>at * REC;
      store<u64>(r, pointKey(k, h));
      store<u32>(r + 8, tid);
      at++;
    }
  }
  if (ok) ok = sortPoints(news, tmp, ns) && sortIndices(idx, nd);
  heapFree(tmp);
  if (!ok) {
    heapFree(gone); heapFree(idx); heapFree(news); heapFree(grown);
    return false;
  }
  // ---- nothing fails from here ----
  // identical points (one target, two equal positions) are found at the same index: take the next
  for (let i: u32 = 1; i < nd; i++) {
    let a = load<u32>(idx + (<usize>(i - 1) << 2));
    if (load<u32>(idx + (<usize>i << 2)) <= a) store<u32>(idx + (<usize>i << 2), a + 1);
  }
  // delete: close the gaps, moving each run between deleted points once
  let w: u32 = nd > 0 ? load<u32>(idx) : n;
  for (let i: u32 = 0; i < nd; i++) {
    let from = load<u32>(idx + (<usize>i << 2)) + 1;
    let to = i + 1 < nd ? load<u32>(idx + (<usize>(i + 1) << 2)) : n;
    if (to > from) {
      memory.copy(pts + <usize>w * REC, pts + <usize>from * REC, <usize>(to - from) * REC);
      w += to - from;
    }
  }
  let n1 = n - nd;
  if (grown != 0) {
    memory.copy(grown + HDR, pts, <usize>n1 * REC);
    heapFree(ring);
    ring = grown;
    pts = ring + HDR;
    store<u32>(g + G_RING, <u32>ring);
  }
  // insert: merge from the back, moving each run of old points once
  let i = n1;
  let end = n2;
  for (let s = <i64>ns - 1; s >= 0; s--) {
    let r = news + <usize>s * REC;
    let j = upperBound(pts, i, load<u64>(r), load<u32>(r + 8));
    let cnt = i - j;
    if (cnt > 0) {
      memory.copy(pts + <usize>(end - cnt) * REC, pts + <usize>j * REC, <usize>cnt * REC);
      end -= cnt;
      i = j;
    }
    end--;
    memory.copy(pts + <usize>end * REC, r, REC);
  }
  store<u32>(g + G_NRING, n2);
  // the table: ranges in front of each new point and of each survivor whose predecessor went
  if (assign && n2 > 0) {
    for (let s: u32 = 0; s < ns; s++) {
      let r = news + <usize>s * REC;
      assignPoint(table, m, pts, n2, lowerBound(pts, n2, load<u64>(r), load<u32>(r + 8)));
    }
    for (let d: u32 = 0; d < nd; d++) {
      let r = gone + <usize>d * REC;
      let succ = lowerBound(pts, n2, load<u64>(r), load<u32>(r + 8));
      assignPoint(table, m, pts, n2, succ == n2 ? 0 : succ);
    }
  }
  heapFree(gone); heapFree(idx); heapFree(news);
  return true;
}

/** Sort n u32 values in place (insertion sort when small, else two radix passes). False when out of memory. */
function sortIndices(a: usize, n: u32): bool {
  if (n <= SMALL_SORT) {
    for (let i: u32 = 1; i < n; i++) {
      let v = load<u32>(a + (<usize>i << 2));
      let j = i;
      while (j > 0 && load<u32>(a + (<usize>(j - 1) << 2)) > v) {
        store<u32>(a + (<usize>j << 2), load<u32>(a + (<usize>(j - 1) << 2)));
        j--;
      }
      store<u32>(a + (<usize>j << 2), v);
    }
    return true;
  }
  let tmp = heapAlloc(<usize>n << 2);
  let counts = heapAlloc(65536 << 2);
  if (tmp == 0 || counts == 0) { heapFree(tmp); heapFree(counts); return false; }
  let src = a, dst = tmp;
  for (let shift: u32 = 0; shift < 32; shift += 16) {
    memory.fill(counts, 0, 65536 << 2);
    for (let i: u32 = 0; i < n; i++) {
      let d = <usize>((load<u32>(src + (<usize>i << 2)) >> shift) & 0xffff) << 2;
      store<u32>(counts + d, load<u32>(counts + d) + 1);
    }
    let sum: u32 = 0;
    for (let d: usize = 0; d < 65536; d++) {
      let c = load<u32>(counts + (d << 2));
      store<u32>(counts + (d << 2), sum);
      sum += c;
    }
    for (let i: u32 = 0; i < n; i++) {
      let v = load<u32>(src + (<usize>i << 2));
      let d = <usize>((v >> shift) & 0xffff) << 2;
      let at = load<u32>(counts + d);
      store<u32>(counts + d, at + 1);
      store<u32>(dst + (<usize>at << 2), v);
    }
    let t = src; src = dst; dst = t;
  }
  heapFree(counts);
  heapFree(tmp);
  return true;
}
