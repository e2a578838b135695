// npm run bench:selection: what affinity's lookup tables cost and how many
// clients a change moves, through the core (test/helpers/selection.ts, the
// harness of test/properties/selection.test.ts):
//
//   1. Lookup tables (about 101 entries per member slot): building one
//      (addGroup with N targets) and updating it when one target goes down
//      and comes back, at N = 100 (a rendezvous table: 65-128 member slots),
//      200 and 400 (ring tables, kept and updated in place).
//   2. Ring tables (over 128 member slots): the share of clients that move
//      when 1 of N targets is removed, times N (1 would be exactly 1/N), at
//      N = 600 and 1100, over 100 N clients. The test only checks <= 1.5/N.
//
// Times: median and minimum of BENCH_REPS (default 5) fresh data planes (on a
// loaded machine the minimum is the better guess). Writes
// bench/results/selection.json (BENCH_OUT: another directory) with the
// machine, the commit and the load average.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { markdownTable } from "./lib/table.js";
import { machine } from "./lib/machine.js";
import { DataPlane } from "../src/core/dataplane.js";
import { PROXY4, TA4 } from "../test/helpers/dataplane.js";
import { removal, targetList } from "../test/helpers/selection.js";

const REPS = Math.max(1, Number(process.env.BENCH_REPS ?? 5));
const OUT = process.env.BENCH_OUT ?? join("bench", "results");

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
/** Member slots of a group of n targets: 4, doubled whenever full (the table is sized by them). */
const slotsFor = (n: number): number => {
  let cap = 4;
  while (cap < n) cap *= 2;
  return cap;
};

const tables = [100, 200, 400].map((n) => {
  const build: number[] = [];
  const update: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const targets = targetList(n);
    const dp = new DataPlane({ address: PROXY4, capacity: { flows: 1024, groups: 4, targets: 4096 } });
    const t0 = performance.now();
    const key = dp.addGroup({ protocol: "udp", address: TA4, port: 53, policy: "affinity", targets });
    build.push(performance.now() - t0);
    const t = targets[(r * 37) % n];
    for (const up of [false, true]) {
      const t1 = performance.now();
      dp.setTargetUp(key, `${t.address}:${t.port}`, up);
      update.push(performance.now() - t1);
    }
  }
  return {
    targets: n, memberSlots: slotsFor(n), buildMs: median(build), buildMsMin: Math.min(...build), buildMsAll: build,
    updateMs: median(update), updateMsMin: Math.min(...update), updateMsAll: update,
  };
});

const rings = ([[600, 3], [1100, 742]] as const).map(([n, pick]) => {
  const clients = 100 * n;
  const { before, after } = removal(n, pick, clients);
  const moved = before.filter((t, i) => t !== after[i]).length / clients;
  return { targets: n, clients, moved, movedTimesN: moved * n };
});

console.log(markdownTable(
  ["targets", "member slots", "build (addGroup) ms, median (min)", "update (one target down or up) ms, median (min)"],
  tables.map((t) => [String(t.targets), String(t.memberSlots), `${t.buildMs.toFixed(1)} (${t.buildMsMin.toFixed(1)})`, `${t.updateMs.toFixed(2)} (${t.updateMsMin.toFixed(2)})`]),
  ["r", "r", "r", "r"],
));
console.log();
console.log(markdownTable(
  ["targets (ring table)", "clients", "moved by removing one", "x N"],
  rings.map((r) => [String(r.targets), String(r.clients), r.moved.toFixed(5), r.movedTimesN.toFixed(2)]),
  ["r", "r", "r", "r"],
));
mkdirSync(OUT, { recursive: true });
const file = join(OUT, "selection.json");
writeFileSync(file, JSON.stringify({ machine: machine(), reps: REPS, rendezvousTables: tables, ringTables: rings }, null, 2) + "\n");
console.log(`\nraw figures: ${file}`);
