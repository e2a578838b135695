// Rendezvous (highest random weight) hashing of a group TA over the live proxy
// ids: a group's RAP is the proxy with the highest score(ta, proxy), its
// replicas the next ones. When a proxy leaves, only groups that ranked it in
// their top R change RAP set; when one joins, only groups that rank it in the
// top R do. Every proxy with the same membership view computes the same set.
//
// The score is a 64-bit value built from two 32-bit lanes (JavaScript has no
// fast 64-bit integers): each TA and each proxy id is hashed with
// MurmurHash3's x86_32 under two seeds, and the pair is combined by a
// finalising mix. Pure functions: no Math.random, no state but the ring.

import type { TransportAddress } from "./ta.js";

const SEED_HI = 0x9747b28c;
const SEED_LO = 0x5bd1e995;
const PROTO_CODE = { tcp: 6, udp: 17, icmp: 1 } as const;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of `bytes` with `seed`. */
export function murmur3(bytes: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = n & 3;
  if (tail) {
    let k = 0;
    if (tail === 3) k ^= bytes[blocks + 2] << 16;
    if (tail >= 2) k ^= bytes[blocks + 1] << 8;
    k ^= bytes[blocks];
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n;
  return fmix32(h);
}

/** A 64-bit hash as two unsigned 32-bit halves. */
export interface Hash64 {
  readonly hi: number;
  readonly lo: number;
}

function hash64(bytes: Uint8Array): Hash64 {
  return { hi: murmur3(bytes, SEED_HI), lo: murmur3(bytes, SEED_LO) };
}

/** The hash of a TA over its wire bytes (protocol, family, address, port). */
export function taHash(ta: TransportAddress): Hash64 {
  const n = ta.address.length;
  const b = new Uint8Array(4 + n);
  b[0] = PROTO_CODE[ta.protocol];
  b[1] = n === 4 ? 4 : 6;
  b.set(ta.address, 2);
  const port = ta.protocol === "icmp" ? 0 : ta.port;
  b[2 + n] = port >> 8;
  b[3 + n] = port & 0xff;
  return hash64(b);
}

const utf8 = new TextEncoder();

export function idHash(id: string): Hash64 {
  return hash64(utf8.encode(id));
}

/** score(ta, proxy) as [hi, lo]; compared as one unsigned 64-bit number. */
function score(t: Hash64, p: Hash64, out: [number, number]): void {
  scoreParts(t.hi, t.lo, p.hi, p.lo, out);
}

/** score() of a key hashed to (tHi, tLo) and a proxy hashed to (pHi, pLo), without objects (for tight loops over many keys). */
export function scoreParts(tHi: number, tLo: number, pHi: number, pLo: number, out: [number, number]): void {
  const hi = fmix32((tHi ^ Math.imul(pHi, 0x9e3779b1)) + pLo);
  out[0] = hi;
  out[1] = fmix32((tLo ^ Math.imul(pLo, 0x85ebca77)) + hi);
}

/** The live proxies of one membership view, with their hashes precomputed. */
export class Ring {
  readonly ids: readonly string[];
  private readonly hashes: Hash64[];
  private readonly tmp: [number, number] = [0, 0];

  constructor(ids: Iterable<string>) {
    // Sorted and deduplicated, so two views with the same members are the same ring.
    this.ids = [...new Set(ids)].sort();
    this.hashes = this.ids.map(idHash);
  }

  get size(): number {
    return this.ids.length;
  }

  has(id: string): boolean {
    return this.ids.includes(id);
  }

  /** The top `replicas` proxy ids for the TA, best first (fewer when the ring is smaller). */
  raps(ta: TransportAddress, replicas = 2): string[] {
    return this.rapsOf(taHash(ta), replicas);
  }

  /** As raps(), from a precomputed taHash(). */
  rapsOf(h: Hash64, replicas = 2): string[] {
    const r = Math.min(replicas, this.ids.length);
    // Insertion into a small sorted array: R is 2 or 3, the ring a few hundred.
    const bestHi: number[] = [];
    const bestLo: number[] = [];
    const best: number[] = [];
    const s = this.tmp;
    for (let i = 0; i < this.ids.length; i++) {
      score(h, this.hashes[i], s);
      let at = best.length;
      while (at > 0 && (bestHi[at - 1] < s[0] || (bestHi[at - 1] === s[0] && bestLo[at - 1] < s[1]))) at--;
      if (at >= r) continue;
      bestHi.splice(at, 0, s[0]);
      bestLo.splice(at, 0, s[1]);
      best.splice(at, 0, i);
      if (best.length > r) {
        bestHi.pop();
        bestLo.pop();
        best.pop();
      }
    }
    return best.map((i) => this.ids[i]);
  }
}

/** The top `replicas` of `proxies` for the TA (builds a Ring; keep one Ring per view when calling often). */
export function raps(ta: TransportAddress, proxies: Iterable<string>, replicas = 2): string[] {
  return new Ring(proxies).raps(ta, replicas);
}
