// Peer discovery (paper section 6.1): "give me k members of group G, excluding
// this list". Random selection keeps unstructured overlays connected; nearest
// selection with an exclude list lets a peer find several distinct nearby
// peers instead of the same one over and over.
//
// Pure selection over a candidate list; the node decides where candidates come
// from (its own targets as JAP, which are near the asker since both reached
// this proxy by anycast) and whether to ask another JAP for the rest.

import { epKey, type Endpoint } from "./ta.js";
import type { DiscoverMode } from "./message.js";

export interface PickOptions<T> {
  readonly mode: DiscoverMode;
  /** Candidates to leave out. */
  readonly exclude?: (candidate: T) => boolean;
  /** Smaller is nearer; required for "nearest" (ties are broken at random). */
  readonly distance?: (candidate: T) => number;
  /** Uniform in [0, 1). Default Math.random. */
  readonly random?: () => number;
}

/** Up to k distinct candidates: uniformly at random, or the k nearest. */
export function pickMembers<T>(candidates: readonly T[], k: number, opts: PickOptions<T>): T[] {
  const random = opts.random ?? Math.random;
  const pool = opts.exclude ? candidates.filter((c) => !opts.exclude!(c)) : candidates.slice();
  const n = Math.max(0, Math.min(Math.floor(k), pool.length));
  if (opts.mode === "random") {
    // Partial Fisher-Yates: the first n places are a uniform sample.
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(random() * (pool.length - i));
      const t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
    }
    return pool.slice(0, n);
  }
  const distance = opts.distance;
  if (distance === undefined) throw new TypeError("nearest selection needs a distance function");
  const keyed = pool.map((c) => ({ c, d: distance(c), tie: random() }));
  keyed.sort((a, b) => a.d - b.d || a.tie - b.tie);
  return keyed.slice(0, n).map((x) => x.c);
}

/**
 * A default distance between addresses of the same family: the number of
 * bits after their longest common prefix (0 = same address). Addresses in the
 * same subnet are near; a different family is farthest.
 */
export function prefixDistance(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return 129;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i];
    if (x !== 0) return (a.length - i) * 8 - (7 - Math.floor(Math.log2(x)));
  }
  return 0;
}

/** An exclude predicate from a list of endpoints (the asker's own address is usually in it). */
export function excluding(list: readonly Endpoint[]): (ep: Endpoint) => boolean {
  const keys = new Set(list.map(epKey));
  return (ep) => keys.has(epKey(ep));
}
