// npm run sim in quick mode: the simulation runs as a child process with tiny
// parameters and its numbers are checked (never for speed) against facts it
// does not compute itself: what the in-memory network carried, counted by the
// kind on the wire (src/control/memnet.ts), what the proxies count they sent
// and accepted (ControlNode.stats()), and the rates the protocol implies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";

const KEEPALIVE_S = 10;
const SECONDS = 40;
/** Frames only targets send; every other kind only proxies send. */
const TARGET_KINDS = ["join", "keepalive", "leave"];

test("the simulation's figures agree with what the in-memory network carried and what the proxies counted (quick mode)", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "bench/sim.ts"), "--json"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: {
      ...process.env,
      SIM_GROUPS: "300",
      SIM_PROXIES: "6",
      SIM_MAX_TARGETS: "200",
      SIM_SECONDS: String(SECONDS),
      SIM_RAMP: "3",
      SIM_CHURN: "20",
      SIM_LOOKUPS: "200",
      SIM_KEEPALIVE: String(KEEPALIVE_S),
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

  // The network: every frame delivered, lost or unreachable, none left in flight.
  const net = j.network as { sent: number; delivered: number; lost: number; unreachable: number; inFlight: number; byKind: Record<string, number> };
  assert.equal(net.inFlight, 0);
  assert.equal(net.sent, net.delivered + net.lost + net.unreachable);
  // Each proxy-sent kind on the wire is what the proxies count they sent; the rest came from the targets.
  const proxySent = j.proxies.sent as Record<string, number>;
  for (const [kind, n] of Object.entries(net.byKind)) {
    if (TARGET_KINDS.includes(kind)) assert.equal(proxySent[kind], undefined, `proxies sent ${kind}`);
    else assert.equal(n, proxySent[kind], `${kind} frames on the network vs sent by the proxies`);
  }
  // Every frame delivered went to a proxy (targets' replies have no receiver) and was accepted.
  const received = Object.values(j.proxies.received as Record<string, number>).reduce((a, b) => a + b, 0);
  assert.equal(received, net.delivered, "frames accepted by the proxies vs delivered by the network");
  assert.equal(j.rejected, 0);
  // The targets' frames: a JOIN per target that ever joined, a LEAVE per target that left.
  assert.equal(net.byKind.join, j.targets.initial + j.targets.joins);
  assert.equal(net.byKind.leave, j.targets.leaves);
  assert.equal(j.targets.live, net.byKind.join - net.byKind.leave);
  // A live target sends one KEEPALIVE per interval: the window's rate is the live targets over the interval.
  const keepalivesExpected = (j.targets.initial + j.targets.live) / 2 / KEEPALIVE_S;
  assert.ok(Math.abs(j.messagesPerSecond.keepalive / keepalivesExpected - 1) < 0.03, `${j.messagesPerSecond.keepalive} keepalives/s, expected ${keepalivesExpected}`);
  // Every kind of proxy traffic the scenario makes shows up.
  for (const kind of ["join-ack", "register", "unregister", "refresh", "lookup", "lookup-reply", "heartbeat"]) {
    assert.ok(j.messagesPerSecond[kind] > 0, `${kind}: ${j.messagesPerSecond[kind]}`);
  }

  // Clients: every resolve reached an IAP, which asked a RAP (on the network, or itself) once per miss that
  // was not already waiting, and once more per fallback to the next replica.
  const iap = j.proxies.iap as { hits: number; misses: number; lookups: number; fallbacks: number };
  assert.equal(iap.hits + iap.misses, j.clients.resolves);
  assert.equal(iap.hits, j.clients.hits);
  assert.ok(net.byKind.lookup <= iap.lookups && iap.lookups <= iap.misses + iap.fallbacks, JSON.stringify({ iap, lookups: net.byKind.lookup }));
  assert.ok(net.byKind["lookup-reply"] <= net.byKind.lookup);
  assert.equal(j.clients.failedLookups, 0);

  // One proxy failed a third of the way in; 26 s later (more than two keepalive intervals) every live target is
  // served again: the JAPs hold exactly the targets the network says are live.
  assert.equal(j.largestGroup.proxies, 5);
  assert.equal(j.failure.servedAgainAtEnd, j.failure.liveAtEnd);
  assert.equal(j.targets.served, j.targets.live);
  // RAP state: bounded by the live proxies, whatever the group's size.
  assert.ok(j.largestGroup.targets > 100);
  for (const n of j.largestGroup.rapEntries) assert.ok(n >= 1 && n <= 5, String(n));
  assert.ok(j.rapMaxJapsPerGroup <= 5);
  // Every group with a target is registered at 2 RAPs.
  assert.equal(j.perProxy.rapEntries.total, 2 * j.perProxy.japGroups.total);
});
