// The IAP's negative cache: "no JAP serves this TA", remembered until a
// deadline, in a fixed-size direct-mapped table.
//
// A flood of packets to random addresses and ports of the anycast prefixes
// asks about a new TA with every packet. Each answer is "nobody", so storing
// them in a map would grow memory with the flood. This table is allocated
// once (slots x 12 bytes) and never grows: a TA hashes to one slot; a newer
// answer overwrites whatever the slot held (the cost of a collision is one
// more lookup, which the IAP rate-limits anyway). Two independent 32-bit
// hashes of the TA's key — one picks the slot, one is stored — make a false
// "nobody" for a served group a ~2^-32 event per occupied slot, and a RAP's
// PUSH about the group clears it.
//
// Must never allocate per call, and never grow.

export class NegativeCache {
  private readonly mask: number;
  private readonly tags: Uint32Array;
  private readonly until: Float64Array;
  private live = 0;

  /** `slots` is rounded up to a power of two (at least 16). */
  constructor(slots = 65536) {
    let n = 16;
    while (n < slots) n *= 2;
    this.mask = n - 1;
    this.tags = new Uint32Array(n);
    this.until = new Float64Array(n);
  }

  get slots(): number {
    return this.mask + 1;
  }

  /** Slots holding an answer (expired ones included until overwritten or cleared). */
  get size(): number {
    return this.live;
  }

  /** Bytes the table holds, fixed at construction. */
  get bytes(): number {
    return this.tags.byteLength + this.until.byteLength;
  }

  /** Whether `key` (a taId) is known to have no JAP at time `now`. */
  has(key: string, now: number): boolean {
    const slot = hash(key, 0x9747b28c) & this.mask;
    return this.tags[slot] === tag(key) && this.until[slot] > now;
  }

  /** Remember "no JAP for `key`" until `until` (ms). */
  set(key: string, until: number): void {
    const slot = hash(key, 0x9747b28c) & this.mask;
    if (this.until[slot] === 0) this.live++;
    this.tags[slot] = tag(key);
    this.until[slot] = until;
  }

  /** Forget the answer about `key`, if the table holds it. Returns whether it did. */
  delete(key: string): boolean {
    const slot = hash(key, 0x9747b28c) & this.mask;
    if (this.tags[slot] !== tag(key) || this.until[slot] === 0) return false;
    this.tags[slot] = 0;
    this.until[slot] = 0;
    this.live--;
    return true;
  }
}

/** The stored check hash; never 0, so an empty slot matches nothing. */
function tag(key: string): number {
  return (hash(key, 0x5bd1e995) | 1) >>> 0;
}

/** FNV-1a over the key's char codes (taId strings are bytes), then a murmur3 finaliser. */
function hash(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
