// Stopping points of the pipeline, for the bench build only.
//
// `asc --target bench` compiles the core with PIAS_BENCH=1: process_batch then
// stops every packet after the stage bench_stop_after() names, and
// `npm run bench:scale` times each stage as the difference between two
// stopping points on the same packets. The release and debug builds compile
// with PIAS_BENCH=0: stopAfter() folds to false and no check is left in the
// code (see wasm/pias.wat). Never changes what a full run does.

import { Stage } from "./shared/abi";

/** True in the bench build (asconfig.json: "use": ["PIAS_BENCH=1"]). */
export const STAGED: bool = PIAS_BENCH != 0;

let stop: u32 = <u32>Stage.Verdict;

/** Exported by the bench build (assembly/bench.ts): stop packets after `stage` (a Stage). */
export function bench_stop_after(stage: u32): void {
  stop = stage;
}

/** True when the pipeline must stop after `stage` (never in a release build). */
@inline export function stopAfter(stage: Stage): bool {
  return STAGED && stop == <u32>stage;
}

/** True when the pipeline stops before reaching `stage` (never in a release build). */
@inline export function stopsBefore(stage: Stage): bool {
  return STAGED && stop < <u32>stage;
}
