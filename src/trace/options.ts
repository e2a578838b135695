// Options of the synthetic trace generator: their defaults, limits and
// validation, and the small seeded PRNG every random choice of the generator
// comes from.
//
// Everything the generator draws must come from the seed through this PRNG,
// never from Math.random, the clock or the environment: the same options must
// give a byte-identical file on every run and every machine.

import { PiasError } from "../errors.js";

/** Frame size distribution: "64" (minimum frames), "1500" (full-MTU frames) or "imix" (simple IMIX, 7:4:1). */
export type TraceSizes = "imix" | "64" | "1500";
export const TRACE_SIZES: readonly TraceSizes[] = ["imix", "64", "1500"];

/** What a trace looks like. Every field is optional; see TRACE_DEFAULTS. */
export interface TraceOptions {
  /** Packets in the trace (default 100000). */
  packets?: number;
  /** Client flows (distinct 5-tuples; ICMP: source, destination, echo identifier) (default 1000). */
  flows?: number;
  /**
   * TCP/UDP groups per address family in use (default 1). Every anycast
   * address of those groups also gets an ICMP echo group, so traceGroups()
   * returns more TAs than this; see traceGroups().
   */
  groups?: number;
  /** PRNG seed, a safe integer (default 1). */
  seed?: number;
  /** Frame sizes (default "imix"). */
  sizes?: TraceSizes;
  /** Fraction of the flows that are IPv6, 0..1 (default 0.1). */
  ipv6Share?: number;
}

/** TraceOptions with every default filled in. */
export type ResolvedTraceOptions = Required<TraceOptions>;

export const TRACE_DEFAULTS: Readonly<ResolvedTraceOptions> = Object.freeze({
  packets: 100000,
  flows: 1000,
  groups: 1,
  seed: 1,
  sizes: "imix",
  ipv6Share: 0.1,
});

/** Inclusive ranges of the numeric options. */
export const TRACE_LIMITS = Object.freeze({
  // The generator keeps remaining-packet counts in an Int32Array (a Fenwick tree).
  packets: [0, 2147483647],
  // Same ceiling as the proxy's capacity.flows; the client address scheme also relies on it (4 flows per client host, 2^22 hosts).
  flows: [1, 16777216],
  // 8 TCP/UDP groups per anycast address; 203.0.113.0/24 and 198.18.0.0/15 hold 131315 addresses.
  groups: [1, 1000000],
} as const);

/** An option of the trace generator is invalid. */
export class TraceOptionsError extends PiasError {
  constructor(message: string) {
    super("ETRACE", message);
  }
}

function integerOption(name: string, v: unknown, [min, max]: readonly [number, number]): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new TraceOptionsError(`${name} must be an integer ${min}..${max}, got ${String(v)}`);
  if (v < min || v > max) throw new TraceOptionsError(`${name}: ${v} is not in ${min}..${max}`);
  return v;
}

/** Fill in the defaults and check every option; throws TraceOptionsError. */
export function resolveTraceOptions(options: TraceOptions = {}): ResolvedTraceOptions {
  const o = { ...TRACE_DEFAULTS, ...stripUndefined(options) };
  const packets = integerOption("packets", o.packets, TRACE_LIMITS.packets);
  const flows = integerOption("flows", o.flows, TRACE_LIMITS.flows);
  const groups = integerOption("groups", o.groups, TRACE_LIMITS.groups);
  if (typeof o.seed !== "number" || !Number.isSafeInteger(o.seed)) {
    throw new TraceOptionsError(`seed must be a safe integer, got ${String(o.seed)}`);
  }
  if (!TRACE_SIZES.includes(o.sizes)) {
    throw new TraceOptionsError(`sizes must be one of ${TRACE_SIZES.join(", ")}, got ${String(o.sizes)}`);
  }
  if (typeof o.ipv6Share !== "number" || !(o.ipv6Share >= 0 && o.ipv6Share <= 1)) {
    throw new TraceOptionsError(`ipv6Share must be a number from 0 to 1, got ${String(o.ipv6Share)}`);
  }
  return { packets, flows, groups, seed: o.seed, sizes: o.sizes, ipv6Share: o.ipv6Share };
}

// `{ packets: undefined }` (an absent CLI flag) means "the default", not "invalid".
function stripUndefined(options: TraceOptions): TraceOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as TraceOptions;
}

/** Which address families have groups: IPv4 unless ipv6Share is 1, IPv6 unless it is 0. */
export function familiesInUse(o: ResolvedTraceOptions): { v4: boolean; v6: boolean } {
  return { v4: o.ipv6Share < 1, v6: o.ipv6Share > 0 };
}

/**
 * Flow f is IPv6 when floor((f + 1) * share) > floor(f * share): exactly
 * floor(flows * share) IPv6 flows, spread evenly over the flow indices (and
 * so, as ranks are shuffled, over popularity).
 */
export function isIPv6Flow(f: number, share: number): boolean {
  return Math.floor((f + 1) * share) > Math.floor(f * share);
}

// ---------------------------------------------------------------- PRNG

/** SplitMix32-style finaliser (murmur3 fmix32): a good 32-bit mix, used to seed and to hash. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * xoshiro128** (Blackman and Vigna): 128-bit state, 32-bit outputs, fast in
 * JavaScript's int32 arithmetic. The state is public so the generator's hot
 * loop can copy it into locals (no calls, no allocation) and store it back.
 */
export class Prng {
  s0: number;
  s1: number;
  s2: number;
  s3: number;

  constructor(seed: number, stream = 0) {
    // Both halves of a safe-integer seed count, so seeds 1 and 2^32 + 1 differ.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = mix32(lo ^ mix32(hi ^ 0x9e3779b9) ^ mix32(stream + 0x7f4a7c15));
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      return mix32(x);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32-bit output, unsigned. */
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9);
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r >>> 0;
  }

  /** Integer in [0, n), n <= 2^32; uneven by at most n / 2^32, irrelevant for the small n used here. */
  below(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
