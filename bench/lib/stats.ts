// Repetition statistics and rates shared by the benchmark harnesses.

/** Times of the repetitions of one measurement, in seconds. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("no samples");
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], samples: [...samples] };
}

/** Rates of a measurement over `packets` packets holding `bytes` bytes of frames, from its median time (and its extremes). */
export interface Rates {
  /** Million packets per second at the median time. */
  mpps: number;
  /** Slowest and fastest repetition, Mpps. */
  mppsMin: number;
  mppsMax: number;
  /** 8 x frame bytes / time, Gbit/s, at the median time. */
  gbps: number;
  /** Median time per packet, ns. */
  nsPerPacket: number;
}

export function rates(time: Summary, packets: number, bytes: number): Rates {
  const per = (t: number): number => (t > 0 ? packets / t / 1e6 : 0);
  return {
    mpps: per(time.median),
    mppsMin: per(time.max),
    mppsMax: per(time.min),
    gbps: time.median > 0 ? (8 * bytes) / time.median / 1e9 : 0,
    nsPerPacket: packets > 0 ? (time.median * 1e9) / packets : 0,
  };
}
