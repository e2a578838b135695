// Entry point of the bench build (asc --target bench, PIAS_BENCH=1): the
// release core's exports plus the stage stop of assembly/stages.ts and the
// memory floors `npm run bench:scale` measures beside the stages. Only the
// bench loads it (DataPlane with build: "bench").
export * from "./index";
export { bench_stop_after } from "./stages";

/**
 * Exported: a pointer chase through `lines` 64-byte lines at `base` (each
 * line's first u32 the index of the next, one random cycle), `steps`
 * dependent loads from line `start`: the DRAM latency floor, in Wasm code.
 */
export function bench_chase(base: usize, start: u32, steps: u32): u32 {
  let p = start;
  for (let i: u32 = 0; i < steps; i++) p = load<u32>(base + (<usize>p << 6));
  return p;
}

/**
 * Exported: `n` independent loads at pseudo-random lines of `lines` 64-byte
 * lines at `base`: the floor of one random access per packet when
 * memory-level parallelism hides the latency.
 */
export function bench_gather(base: usize, lines: u32, n: u32): u32 {
  let x: u32 = 0x9e3779b9;
  let sum: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    sum += load<u32>(base + (<usize>(<u32>((<u64>x * <u64>lines) >> 32)) << 6));
  }
  return sum;
}
