// Picks which flow sends the next packet of a synthetic trace, with
// probability proportional to the packets each flow has left: a uniformly
// random interleaving of the flows' packet sequences. Also defines the flow
// records the generator and the sampler share.
//
// Vose's alias table over the flows' remaining counts, sampled by rejection:
// draw a flow from the table, keep it with probability remaining / (remaining
// when the table was built). That keeps every flow's packet count exact, costs
// O(1) and about two cache lines per packet whatever the number of flows (a
// Fenwick tree costs a cache miss per level on big tables), and accepts at
// least half the draws because the table is rebuilt, over the flows that
// still have packets, whenever half the packets it was built for are gone;
// each rebuild is over at most that many flows, so rebuilding costs
// O(flows + packets) in all.
//
// The generator's hot loop does the drawing itself (inline, on its local PRNG
// state) from `cols`; this class only builds the table. It must stay
// deterministic: plain IEEE double arithmetic in a fixed order, no Math.random.

/**
 * Flow records: FLOW_STRIDE int32 per flow in one Int32Array, so one packet
 * touches one cache line of flow state (separate arrays per field cost a
 * cache miss each once there are a million flows).
 */
export const FLOW_STRIDE = 8;
/** Group index. */
export const F_GROUP = 0;
/** IPv4 source address, or the low 32 bits of the IPv6 source (read with >>> 0). */
export const F_ADDR = 1;
/** Source port / ICMP echo identifier. */
export const F_PORT = 2;
/** Per-flow random bits: TTL, IPv4 id base, IPv6 flow label, TCP ACK number. */
export const F_HASH = 3;
/** TCP: the next sequence number (read with >>> 0). */
export const F_SEQ = 4;
/** Packets of the flow. */
export const F_COUNT = 5;
/** Packets sent so far. */
export const F_SENT = 6;
/** Remaining packets when the sampler's table was built. */
export const F_BASE = 7;

/** Alias table columns: COL_STRIDE int32 each. */
export const COL_STRIDE = 4;
/** The column's own flow, kept when a 32-bit draw is below COL_THRESHOLD (both unsigned). */
export const COL_KEEP = 0;
export const COL_ALIAS = 1;
export const COL_THRESHOLD = 2;

export class RemainingSampler {
  /** Alias table, `n` columns. */
  readonly cols: Int32Array;
  /** Columns in the table (0 when no flow has packets left). */
  n = 0;
  /** Remaining packets of all flows when the table was built. */
  builtFor = 0;
  private readonly active: Int32Array;
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;
  private readonly small: Int32Array;
  private readonly large: Int32Array;

  constructor(private readonly flows: Int32Array) {
    const F = flows.length / FLOW_STRIDE;
    this.cols = new Int32Array(F * COL_STRIDE);
    this.active = new Int32Array(F);
    this.prob = new Float64Array(F);
    this.alias = new Int32Array(F);
    this.small = new Int32Array(F);
    this.large = new Int32Array(F);
    for (let f = 0; f < F; f++) this.active[f] = f;
    this.n = F;
    this.rebuild();
  }

  /** Rebuild the table over the flows that still have packets. */
  rebuild(): void {
    const { active, prob, alias, small, large, flows, cols } = this;
    let n = 0;
    let total = 0;
    for (let k = 0; k < this.n; k++) {
      const f = active[k];
      const r = f * FLOW_STRIDE;
      const rem = flows[r + F_COUNT] - flows[r + F_SENT];
      if (rem > 0) {
        active[n++] = f;
        flows[r + F_BASE] = rem;
        total += rem;
      }
    }
    this.n = n;
    this.builtFor = total;
    let ns = 0;
    let nl = 0;
    for (let i = 0; i < n; i++) {
      const q = (flows[active[i] * FLOW_STRIDE + F_BASE] * n) / total;
      prob[i] = q;
      alias[i] = i;
      if (q < 1) small[ns++] = i;
      else large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
      const s = small[--ns];
      const l = large[--nl];
      alias[s] = l;
      const q = prob[l] + prob[s] - 1;
      prob[l] = q;
      if (q < 1) small[ns++] = l;
      else large[nl++] = l;
    }
    // Whatever is left is 1 up to rounding.
    while (nl > 0) prob[large[--nl]] = 1;
    while (ns > 0) prob[small[--ns]] = 1;
    for (let i = 0; i < n; i++) {
      const c = i * COL_STRIDE;
      cols[c + COL_KEEP] = active[i];
      cols[c + COL_ALIAS] = active[alias[i]];
      // prob 1 becomes 2^32 - 1, but such a column's alias is itself.
      cols[c + COL_THRESHOLD] = prob[i] >= 1 ? -1 : Math.max(0, Math.floor(prob[i] * 4294967296)) | 0;
    }
  }
}
