// Entry point of the bench build (asc --target bench, PIAS_BENCH=1): the
// release core's exports plus the stage stop of assembly/stages.ts. Only
// `npm run bench:scale` loads it (DataPlane with build: "bench").
export * from "./index";
export { bench_stop_after } from "./stages";
