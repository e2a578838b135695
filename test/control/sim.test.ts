// npm run sim in quick mode: the simulation runs as a child process with tiny
// parameters and its numbers are checked for sense (never for speed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";

test("the simulation prints its tables and consistent figures (quick mode)", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "bench/sim.ts"), "--json"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: {
      ...process.env,
      SIM_GROUPS: "300",
      SIM_PROXIES: "6",
      SIM_MAX_TARGETS: "200",
      SIM_SECONDS: "40",
      SIM_RAMP: "3",
      SIM_CHURN: "20",
      SIM_LOOKUPS: "200",
      SIM_KEEPALIVE: "10",
    },
  });
  assert.equal(r.status, 0, r.stderr);
  for (const heading of ["| message", "| keepalive", "| state", "| RAP groups", "RAP state is bounded by the number of proxies"]) assert.ok(r.stdout.includes(heading), heading);
  const j = JSON.parse(r.stdout.trim().split("\n").at(-1)!);

  // Every kind of traffic the scenario makes shows up.
  for (const kind of ["join", "join-ack", "keepalive", "leave", "register", "unregister", "refresh", "lookup", "lookup-reply", "heartbeat"]) {
    assert.ok(j.messagesPerSecond[kind] > 0, `${kind}: ${j.messagesPerSecond[kind]}`);
  }
  // 300 groups: 1 of 200 targets, 9 of 20, 90 of 2, the rest 1 or 2.
  assert.ok(j.targets.initial >= 200 + 9 * 20 + 90 * 2 + 200 && j.targets.initial <= 200 + 9 * 20 + 90 * 2 + 400, String(j.targets.initial));
  assert.equal(j.targets.live, j.targets.initial + j.targets.joins - j.targets.leaves);
  // One proxy failed a third of the way in; 26 s later (more than two keepalive intervals) every live target is served again.
  assert.equal(j.largestGroup.proxies, 5);
  assert.equal(j.failure.servedAgainAtEnd, j.failure.liveAtEnd);
  assert.equal(j.targets.served, j.targets.live);
  assert.equal(j.perProxy.japTargets.total, j.targets.served);
  // RAP state: bounded by the live proxies, whatever the group's size.
  assert.ok(j.largestGroup.targets > 100);
  for (const n of j.largestGroup.rapEntries) assert.ok(n >= 1 && n <= 5, String(n));
  assert.ok(j.rapMaxJapsPerGroup <= 5);
  // Every group with a target is registered at 2 RAPs.
  assert.equal(j.perProxy.rapEntries.total, 2 * j.perProxy.japGroups.total);
  assert.equal(j.clients.resolves, 200 * 40);
  assert.equal(j.clients.failedLookups, 0);
  assert.equal(j.rejected, 0);
  const sum = Object.values(j.messagesPerSecond as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - j.totalMessagesPerSecond) < 1e-6);
});
