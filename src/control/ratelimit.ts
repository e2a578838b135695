// Token buckets. TokenBucket is one budget (the IAP's lookups, the JAP's
// admissions: bounds that hold whatever the number of sources). RateLimiter
// keeps one per source address, for frames from targets (joins above all): a
// flood from one source costs a map lookup, not an HMAC.
//
// The number of tracked sources is bounded: past `maxSources` the source first
// tracked longest ago is forgotten (a forgotten source starts again with a full
// bucket, which is the price of bounded memory). Time is injected.

import { Fifo } from "./fifo.js";

export interface RateLimitOptions {
  /** Tokens added per second. Default 10. */
  readonly ratePerSecond?: number;
  /** Bucket size: the burst a source may send at once. Default 20. */
  readonly burst?: number;
  /** Sources tracked at most. Default 65536. */
  readonly maxSources?: number;
}

/** One budget: `rate` tokens a second, at most `burst` saved up. Time (ms) is passed in. */
export class TokenBucket {
  private tokens: number;
  /** ms of the last refill. */
  private at = -Infinity;

  constructor(
    readonly rate: number,
    readonly burst: number,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError("rate and burst must be positive");
    this.tokens = burst;
  }

  /** Take one token at time `now`; false when the bucket is empty. */
  take(now: number): boolean {
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
      this.at = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class RateLimiter {
  readonly rate: number;
  readonly burst: number;
  readonly maxSources: number;
  private readonly buckets = new Map<string, TokenBucket>();
  /** Tracked sources, oldest first. */
  private readonly order = new Fifo<string>();
  dropped = 0;
  allowed = 0;
  evicted = 0;

  constructor(opts: RateLimitOptions = {}) {
    this.rate = opts.ratePerSecond ?? 10;
    this.burst = opts.burst ?? 20;
    this.maxSources = opts.maxSources ?? 65536;
    if (!(this.rate > 0) || !(this.burst >= 1) || !(this.maxSources >= 1)) throw new RangeError("rate, burst and maxSources must be positive");
  }

  get sources(): number {
    return this.buckets.size;
  }

  /** Take one token for `source` at time `now` (ms); false (and counted) when its bucket is empty. */
  allow(source: string, now: number): boolean {
    let b = this.buckets.get(source);
    if (b === undefined) {
      while (this.buckets.size >= this.maxSources) {
        this.buckets.delete(this.order.shift()!);
        this.evicted++;
      }
      b = new TokenBucket(this.rate, this.burst);
      this.buckets.set(source, b);
      this.order.push(source);
    }
    if (!b.take(now)) {
      this.dropped++;
      return false;
    }
    this.allowed++;
    return true;
  }
}
