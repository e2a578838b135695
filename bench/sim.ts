// npm run sim: the real control-plane code (ControlNode: membership, JAP, RAP,
// IAP, authentication) for many simulated proxies in one process, on an
// in-memory network with simulated time.
//
// Targets are simulated by a population driver, not one Joiner each: it keeps
// typed arrays (group, home proxy, live flag) and sends real, sealed JOIN /
// KEEPALIVE / LEAVE frames to the anycast control address (routed to each
// target's home proxy, or the next live one) with the real encoder and HMAC;
// it does not verify the JOIN_ACKs it gets (they are counted). Clients are
// simulated as resolve() calls at random IAPs for groups drawn with a skew.
//
// Phases: proxies start and converge; targets join over a ramp; then a
// steady-state window of SIM_SECONDS with churn (joins and leaves), client
// lookups, and one proxy failure a third of the way in. Rates are measured over
// the window. Environment (defaults in brackets):
//
//   SIM_GROUPS [1000000]   groups
//   SIM_PROXIES [40]       proxies
//   SIM_MAX_TARGETS [100000] targets of the largest group; 9 groups get a tenth
//                          of that, 90 a hundredth, the rest 1 (10% of them 2)
//   SIM_SECONDS [30]       steady-state window, simulated seconds
//   SIM_RAMP [20]          simulated seconds over which the targets join
//   SIM_CHURN [2000]       target joins + leaves per simulated second
//   SIM_LOOKUPS [5000]     client resolves per simulated second (all IAPs)
//   SIM_KEEPALIVE [30]     keepalive interval, s (the proxies' default is 10; 30 keeps the
//                          default run, 1.3M targets, within a few minutes)
//   SIM_FAIL [1]           kill one proxy during the window (0: no failure)
//   SIM_SEED [1]
//   SIM_JSON [0]           also print the results as one JSON line (also: --json)

import { ControlNode } from "../src/control/node.js";
import { Authenticator } from "../src/control/auth.js";
import { MemoryNetwork } from "../src/control/memnet.js";
import { murmur3, Ring } from "../src/control/rendezvous.js";
import { MESSAGE_KINDS, type Message, type TargetInfo } from "../src/control/message.js";
import { epKey, type Endpoint, type TransportAddress } from "../src/control/ta.js";
import { markdownTable, int, num } from "./lib/table.js";
import { prng } from "../test/control/arbitraries.js";
import { env } from "./lib/env.js";


const GROUPS = Math.max(1, Math.floor(env("SIM_GROUPS", 1_000_000)));
const PROXIES = Math.max(2, Math.floor(env("SIM_PROXIES", 40)));
const MAX_TARGETS = Math.max(1, Math.floor(env("SIM_MAX_TARGETS", 100_000)));
const SECONDS = Math.max(1, env("SIM_SECONDS", 30));
const RAMP = Math.max(1, env("SIM_RAMP", 20));
const CHURN = env("SIM_CHURN", 2000);
const LOOKUPS = env("SIM_LOOKUPS", 5000);
const KEEPALIVE_S = Math.max(1, Math.floor(env("SIM_KEEPALIVE", 30)));
const FAIL = env("SIM_FAIL", 1) !== 0;
const SEED = Math.floor(env("SIM_SEED", 1));
const JSON_OUT = env("SIM_JSON", 0) !== 0 || process.argv.includes("--json");

const STEP_MS = 100;
const REPLICAS = 2;
const CONTROL_PORT = 7400;
const TARGET_SOURCE_PORT = 40000;

// ---------------------------------------------------------------- randomness

const rand = prng(SEED);
const randInt = (n: number): number => Math.floor(rand() * n);

// ---------------------------------------------------------------- groups and keys

/** Group g: tcp 203.0.113.(g / 65535):(g % 65535 + 1) and beyond: one /24 holds millions of groups. */
function taOf(g: number): TransportAddress {
  const hi = Math.floor(g / 65535);
  return { protocol: "tcp", address: Uint8Array.of(203, (hi >> 16) & 255, 113 + ((hi >> 8) & 255), hi & 255), port: (g % 65535) + 1 };
}

/**
 * The join key of a group, derived from its TA: the simulation stores no key
 * table. It returns one scratch buffer, overwritten by the next call: the
 * authenticator uses a key at once and never keeps it.
 */
const keyIn = new Uint8Array(7);
const keyOut = new Uint8Array(16);
function groupKey(ta: TransportAddress): Uint8Array {
  keyIn.set(ta.address.subarray(0, 4), 0);
  keyIn[4] = ta.port >> 8;
  keyIn[5] = ta.port & 255;
  keyIn[6] = ta.protocol === "tcp" ? 6 : 17;
  let h = murmur3(keyIn, 0x51ed);
  for (let i = 0; i < 16; i += 4) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
    keyOut[i] = h >>> 24;
    keyOut[i + 1] = (h >>> 16) & 255;
    keyOut[i + 2] = (h >>> 8) & 255;
    keyOut[i + 3] = h & 255;
  }
  return keyOut;
}

function groupSize(g: number): number {
  if (g === 0) return MAX_TARGETS;
  if (g < 10) return Math.max(1, Math.floor(MAX_TARGETS / 10));
  if (g < 100) return Math.max(1, Math.floor(MAX_TARGETS / 100));
  return 1 + (murmur3(Uint8Array.of(g & 255, (g >> 8) & 255, (g >> 16) & 255, g >>> 24), SEED) % 10 === 0 ? 1 : 0);
}

// ---------------------------------------------------------------- proxies

const net = new MemoryNetwork({
  latencyMs: 5,
  // JOIN_ACKs (and discovery replies) to simulated targets: counted by kind, not verified.
  sink: () => {},
});
const clusterKey = new Uint8Array(32).fill(0x5a);
const proxyEndpoints: Endpoint[] = Array.from({ length: PROXIES }, (_, i) => ({ address: Uint8Array.of(192, 0, 2 + (i >> 8), i & 255), port: CONTROL_PORT }));
const alive = new Array<boolean>(PROXIES).fill(true);
let released = 0;
let releasedPackets = 0;
let failedLookups = 0;
const nodes = proxyEndpoints.map(
  (endpoint, i) =>
    new ControlNode({
      id: `ap-${String(i).padStart(2, "0")}`,
      endpoint,
      clusterKey,
      groupKey,
      seeds: proxyEndpoints.slice(0, 3),
      now: net.now,
      send: net.sender(endpoint),
      incarnation: 1,
      keepaliveIntervalS: KEEPALIVE_S,
      replicas: REPLICAS,
      // A proxy hears its targets' keepalives at several thousand a second: size the replay cache for it.
      replayCapacity: 1 << 19,
      rateLimit: { ratePerSecond: 10, burst: 20, maxSources: 1 << 16 },
      random: prng(SEED * 1000 + i),
      onRelease: (r) => {
        released++;
        releasedPackets += r.packets.length;
        if (r.failed) failedLookups++;
      },
    }),
);
nodes.forEach((n, i) => net.attach(proxyEndpoints[i], (from, bytes) => n.receive(from, bytes)));

// ---------------------------------------------------------------- targets

let initialTargets = 0;
for (let g = 0; g < GROUPS; g++) initialTargets += groupSize(g);
const capacity = initialTargets + Math.ceil((CHURN / 2) * (SECONDS + 5)) + 16;
const tGroup = new Int32Array(capacity);
const tHome = new Uint8Array(capacity);
/** 0 = not yet joined, 1 = live (sends keepalives), 2 = left. */
const tState = new Uint8Array(capacity);
let targets = 0;
for (let g = 0; g < GROUPS; g++) {
  const n = groupSize(g);
  for (let k = 0; k < n; k++) {
    tGroup[targets] = g;
    tHome[targets] = randInt(PROXIES);
    targets++;
  }
}
// Join order is shuffled so the ramp mixes groups.
const joinOrder = new Int32Array(targets);
for (let i = 0; i < targets; i++) joinOrder[i] = i;
for (let i = targets - 1; i > 0; i--) {
  const j = randInt(i + 1);
  const t = joinOrder[i];
  joinOrder[i] = joinOrder[j];
  joinOrder[j] = t;
}

/** Target i: service endpoint 10.a.b.c:8080, control source 10.a.b.c:40000. */
function targetAddress(i: number): Uint8Array {
  const n = i + 1;
  return Uint8Array.of(10, (n >> 16) & 255, (n >> 8) & 255, n & 255);
}
const ANYCAST: Endpoint = { address: Uint8Array.of(198, 51, 100, 1), port: CONTROL_PORT };
const sourceHome = new Map<string, number>();
net.anycast(ANYCAST, (from) => {
  // Native anycast: the target's nearest proxy while it lives, else the next live one.
  const i = (((from.address[1] << 16) | (from.address[2] << 8) | from.address[3]) - 1) >>> 0;
  const h = from.address[0] === 10 && i < targets ? tHome[i] : (sourceHome.get(epKey(from)) ?? 0);
  for (let k = 0; k < PROXIES; k++) {
    const p = (h + k) % PROXIES;
    if (alive[p]) return proxyEndpoints[p];
  }
  return undefined;
});

const targetAuth = new Authenticator({ groupKey, now: net.now, replayCapacity: 1 });
const targetSend = (i: number, msg: Message): void => {
  const address = targetAddress(i);
  net.send({ address, port: TARGET_SOURCE_PORT }, ANYCAST, targetAuth.seal(msg));
};
const targetInfo = (i: number): TargetInfo => ({ endpoint: { address: targetAddress(i), port: 8080 }, weight: 1, label: null, aware: false });
const join = (i: number): void => {
  tState[i] = 1;
  targetSend(i, { type: "join", ta: taOf(tGroup[i]), target: targetInfo(i) });
  // A random phase (never the current step): keepalives spread evenly over the interval, whatever the join pattern.
  keepaliveBuckets[(bucketNow() + 1 + randInt(KEEPALIVE_BUCKETS - 1)) % KEEPALIVE_BUCKETS].push(i);
};
const leave = (i: number): void => {
  tState[i] = 2;
  targetSend(i, { type: "leave", ta: taOf(tGroup[i]), endpoint: targetInfo(i).endpoint });
};

// Keepalives: each live target sits in one of KEEPALIVE_BUCKETS step buckets and sends once per interval.
const KEEPALIVE_BUCKETS = Math.round((KEEPALIVE_S * 1000) / STEP_MS);
const keepaliveBuckets: number[][] = Array.from({ length: KEEPALIVE_BUCKETS }, () => []);
const start = net.now();
const bucketNow = (): number => Math.floor((net.now() - start) / STEP_MS) % KEEPALIVE_BUCKETS;
function sendKeepalives(): void {
  const b = bucketNow();
  const list = keepaliveBuckets[b];
  let w = 0;
  for (let r = 0; r < list.length; r++) {
    const i = list[r];
    if (tState[i] !== 1) continue;
    list[w++] = i;
    targetSend(i, { type: "keepalive", ta: taOf(tGroup[i]), target: targetInfo(i) });
  }
  list.length = w;
}

// ---------------------------------------------------------------- clients

/** Zipf-like group popularity (P(g) ~ 1/(g+1)): a few groups are hot, most are asked for rarely. */
const pickGroup = (): number => Math.min(GROUPS - 1, Math.floor(Math.exp(rand() * Math.log(GROUPS + 1))) - 1);
const PACKET = new Uint8Array(64);
let resolves = 0;
let hits = 0;
function clientLookups(n: number): void {
  for (let k = 0; k < n; k++) {
    let p = randInt(PROXIES);
    while (!alive[p]) p = (p + 1) % PROXIES;
    resolves++;
    if (nodes[p].resolve(taOf(pickGroup()), PACKET).status === "cached") hits++;
  }
}

// ---------------------------------------------------------------- driver

function step(): void {
  const t = net.now() + STEP_MS;
  net.run(t);
  nodes.forEach((n, i) => alive[i] && n.tick());
  sendKeepalives();
}

function kindCounts(): Record<string, number> {
  return { ...net.byKind };
}

const wall0 = performance.now();
const log = (line: string): void =>
  console.error(`[sim ${((performance.now() - wall0) / 1000).toFixed(1)} s, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB] ${line}`);
log(`${PROXIES} proxies, ${int(GROUPS)} groups, ${int(targets)} targets (largest group ${int(MAX_TARGETS)}), keepalive ${KEEPALIVE_S} s`);

// 1. Membership converges.
for (let s = 0; s < 5000 / STEP_MS; s++) step();
const live0 = nodes.map((n) => n.membership.live().length);
log(`membership: every proxy sees ${Math.min(...live0)}..${Math.max(...live0)} live`);

// 2. Targets join over the ramp.
const rampSteps = Math.ceil((RAMP * 1000) / STEP_MS);
let cursor = 0;
for (let s = 0; s < rampSteps; s++) {
  const until = Math.floor(((s + 1) / rampSteps) * targets);
  while (cursor < until) join(joinOrder[cursor++]);
  step();
}
// Let the last joins and registrations settle.
for (let s = 0; s < 2000 / STEP_MS; s++) step();
log(`ramp: ${int(targets)} joins over ${RAMP} s; JAP targets ${int(nodes.reduce((a, n) => a + n.jap.targetCount, 0))}`);

// 3. Steady state with churn, client lookups and a failure.
const before = kindCounts();
const bytes0 = net.counters.bytes;
const windowSteps = Math.ceil((SECONDS * 1000) / STEP_MS);
const failAt = FAIL ? Math.floor(windowSteps / 3) : -1;
const victim = PROXIES - 1;
let victimTargets = 0;
let rejoinsAtFailure = 0;
let churnCarry = 0;
let lookupCarry = 0;
let joinsDone = 0;
let leavesDone = 0;
let liveTargets = targets;
const wallWindow0 = performance.now();
for (let s = 0; s < windowSteps; s++) {
  if (s === failAt) {
    alive[victim] = false;
    net.detach(proxyEndpoints[victim]);
    victimTargets = nodes[victim].jap.targetCount;
    rejoinsAtFailure = nodes.reduce((a, n, i) => a + (i === victim ? 0 : n.jap.counters.rejoins), 0);
    log(`proxy ${nodes[victim].self.id} fails (its ${int(nodes[victim].jap.targetCount)} targets must move to other proxies)`);
  }
  churnCarry += (CHURN * STEP_MS) / 1000;
  while (churnCarry >= 1) {
    churnCarry -= 1;
    if ((joinsDone + leavesDone) % 2 === 0 && targets < capacity) {
      // A new target joins a random group.
      const i = targets++;
      tGroup[i] = randInt(GROUPS);
      tHome[i] = randInt(PROXIES);
      join(i);
      joinsDone++;
      liveTargets++;
    } else {
      let i = randInt(targets);
      for (let k = 0; k < 8 && tState[i] !== 1; k++) i = randInt(targets);
      if (tState[i] === 1) {
        leave(i);
        leavesDone++;
        liveTargets--;
      }
    }
  }
  lookupCarry += (LOOKUPS * STEP_MS) / 1000;
  const n = Math.floor(lookupCarry);
  lookupCarry -= n;
  clientLookups(n);
  step();
}
const wallWindow = (performance.now() - wallWindow0) / 1000;
// Drain in-flight frames (no new traffic) so the state below is settled.
net.run(net.now() + 50);
const after = kindCounts();
const bytesWindow = net.counters.bytes - bytes0;
log(`window: ${SECONDS} simulated s in ${wallWindow.toFixed(1)} s`);

// ---------------------------------------------------------------- results

const ratePerType: Record<string, number> = {};
for (const k of [...MESSAGE_KINDS, "other"]) {
  const d = (after[k] ?? 0) - (before[k] ?? 0);
  if (d > 0) ratePerType[k] = d / SECONDS;
}
const totalRate = Object.values(ratePerType).reduce((a, b) => a + b, 0);

const liveNodes = nodes.filter((_, i) => alive[i]);
const perProxy = liveNodes.map((n) => {
  const st = n.stats();
  const max = n.rap.maxPerGroup();
  // Rough bytes: JS object overheads measured on V8 for these shapes, rounded up.
  const bytes = st.rap.groups * 260 + st.rap.entries * 120 + st.jap.groups * 220 + st.jap.targets * 330 + st.iap.cache * 260 + st.replayCache * 90;
  return {
    id: n.self.id,
    rapGroups: st.rap.groups,
    rapEntries: st.rap.entries,
    rapMaxJapsPerGroup: max.japs,
    rapMaxWatchersPerGroup: max.watchers,
    japGroups: st.jap.groups,
    japTargets: st.jap.targets,
    iapCache: st.iap.cache,
    replayCache: st.replayCache,
    bytes,
    rejected: Object.values(st.rejected).reduce((a, b) => a + b, 0),
  };
});
type Row = (typeof perProxy)[number];
const summary = (f: (r: Row) => number) => {
  const v = perProxy.map(f);
  return { min: Math.min(...v), mean: v.reduce((a, b) => a + b, 0) / v.length, max: Math.max(...v), total: v.reduce((a, b) => a + b, 0) };
};

// The largest group: how much RAP state it costs, against its targets.
const ring = new Ring(liveNodes.map((n) => n.self.id));
const bigTa = taOf(0);
const bigRaps = ring.raps(bigTa, REPLICAS);
const bigRapEntries = bigRaps.map((id) => nodes.find((n) => n.self.id === id)!.rap.japsOf(bigTa).length);
const bigTargets = liveNodes.reduce((a, n) => a + n.jap.targetsOf(bigTa).length, 0);
const servedTargets = liveNodes.reduce((a, n) => a + n.jap.targetCount, 0);
// The failed proxy's live targets that are served again: by anycast they all reach the next live proxy.
let victimLive = 0;
let moved = 0;
if (FAIL) {
  let next = (victim + 1) % PROXIES;
  while (!alive[next]) next = (next + 1) % PROXIES;
  for (let i = 0; i < targets; i++) {
    if (tHome[i] !== victim || tState[i] !== 1) continue;
    victimLive++;
    if (nodes[next].jap.has(taOf(tGroup[i]), targetInfo(i).endpoint)) moved++;
  }
}
const rejoins = liveNodes.reduce((a, n) => a + n.jap.counters.rejoins, 0) - rejoinsAtFailure;
const maxJapsPerGroup = Math.max(...perProxy.map((r) => r.rapMaxJapsPerGroup));
const heap = process.memoryUsage();
/** Per-kind totals over every proxy, the failed one included (its counts stop when it does). */
const sumKinds = (tables: Record<string, number>[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const t of tables) for (const [k, v] of Object.entries(t)) out[k] = (out[k] ?? 0) + v;
  return out;
};
const allStats = nodes.map((n) => n.stats());

const results = {
  params: { groups: GROUPS, proxies: PROXIES, maxTargets: MAX_TARGETS, seconds: SECONDS, ramp: RAMP, churn: CHURN, lookups: LOOKUPS, keepaliveS: KEEPALIVE_S, fail: FAIL, seed: SEED },
  targets: { initial: initialTargets, live: liveTargets, served: servedTargets, joins: joinsDone, leaves: leavesDone },
  messagesPerSecond: ratePerType,
  totalMessagesPerSecond: totalRate,
  bytesPerSecond: bytesWindow / SECONDS,
  largestGroup: { targets: bigTargets, raps: bigRaps, rapEntries: bigRapEntries, proxies: liveNodes.length },
  rapMaxJapsPerGroup: maxJapsPerGroup,
  failure: {
    proxy: FAIL ? nodes[victim].self.id : null,
    targetsAtFailure: victimTargets,
    liveAtEnd: victimLive,
    servedAgainAtEnd: moved,
    rejoinsByKeepalive: rejoins,
    secondsAfter: FAIL ? ((windowSteps - failAt) * STEP_MS) / 1000 : 0,
  },
  perProxy: {
    rapGroups: summary((r) => r.rapGroups),
    rapEntries: summary((r) => r.rapEntries),
    japGroups: summary((r) => r.japGroups),
    japTargets: summary((r) => r.japTargets),
    iapCache: summary((r) => r.iapCache),
    replayCache: summary((r) => r.replayCache),
    bytes: summary((r) => r.bytes),
  },
  clients: { resolves, hits, released, releasedPackets, failedLookups },
  rejected: perProxy.reduce((a, r) => a + r.rejected, 0),
  // Whole run, drained: what the in-memory network carried (by the kind on the wire), and what the proxies
  // count they sent to the network, accepted from it, and answered from their IAP caches.
  network: { ...net.counters, inFlight: net.inFlight, byKind: kindCounts() },
  proxies: {
    sent: sumKinds(allStats.map((st) => st.sent)),
    received: sumKinds(allStats.map((st) => st.received)),
    iap: sumKinds(allStats.map((st) => ({ hits: st.iap.hits, misses: st.iap.misses, lookups: st.iap.lookups, fallbacks: st.iap.fallbacks }))),
  },
  heapUsedBytes: heap.heapUsed,
  wallSeconds: (performance.now() - wall0) / 1000,
  windowWallSeconds: wallWindow,
};

const out: string[] = [];
out.push(`## PIAS control plane simulation`);
out.push("");
out.push(
  `${PROXIES} proxies (1 failed mid-window: ${FAIL ? "yes" : "no"}), ${int(GROUPS)} groups, ${int(initialTargets)} targets at start (largest group ${int(MAX_TARGETS)}), ` +
    `keepalive ${KEEPALIVE_S} s, refresh 30 s, ${REPLICAS} RAPs per group; window ${SECONDS} simulated s with ${int(CHURN)} joins+leaves/s and ${int(LOOKUPS)} client resolves/s; ` +
    `${results.wallSeconds.toFixed(0)} s wall (window ${wallWindow.toFixed(0)} s).`,
);
out.push("");
out.push("Messages per second (whole cluster, steady-state window):");
out.push("");
out.push(
  markdownTable(
    ["message", "per second", "share"],
    [
      ...Object.entries(ratePerType)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, num(v), `${((100 * v) / totalRate).toFixed(1)}%`]),
      ["total", num(totalRate), "100%"],
      ["bytes/s", int(bytesWindow / SECONDS), ""],
    ],
    ["l", "r", "r"],
  ),
);
out.push("");
out.push(`State per live proxy (${liveNodes.length} proxies, end of window):`);
out.push("");
const stateRow = (name: string, s: { min: number; mean: number; max: number; total: number }) => [name, int(s.min), int(s.mean), int(s.max), int(s.total)];
out.push(
  markdownTable(
    ["state", "min", "mean", "max", "total"],
    [
      stateRow("RAP groups", results.perProxy.rapGroups),
      stateRow("RAP JAP entries", results.perProxy.rapEntries),
      stateRow("JAP groups", results.perProxy.japGroups),
      stateRow("JAP targets", results.perProxy.japTargets),
      stateRow("IAP cache entries", results.perProxy.iapCache),
      stateRow("replay-cache nonces", results.perProxy.replayCache),
      stateRow("bytes (estimate)", results.perProxy.bytes),
    ],
    ["l", "r", "r", "r", "r"],
  ),
);
out.push("");
out.push("RAP state is bounded by the number of proxies, not targets:");
out.push("");
out.push(
  markdownTable(
    ["", "value"],
    [
      ["targets of the largest group", int(bigTargets)],
      ["JAP entries for it at each of its RAPs", bigRapEntries.map(int).join(", ")],
      ["most JAP entries of any group at any RAP", int(maxJapsPerGroup)],
      ["live proxies", int(liveNodes.length)],
      ["targets served / live", `${int(servedTargets)} / ${int(liveTargets)}`],
      ...(FAIL
        ? [[`failed proxy's live targets served again ${results.failure.secondsAfter} s later (keepalive ${KEEPALIVE_S} s)`, `${int(moved)} of ${int(victimLive)}`]]
        : []),
      ["client resolves (cache hits)", `${int(resolves)} (${((100 * hits) / Math.max(1, resolves)).toFixed(1)}%)`],
      ["lookups failed", int(failedLookups)],
      ["frames rejected", int(results.rejected)],
      ["JS heap used (whole process / per live proxy)", `${(heap.heapUsed / 2 ** 20).toFixed(0)} MiB / ${(heap.heapUsed / liveNodes.length / 2 ** 20).toFixed(1)} MiB`],
    ],
    ["l", "r"],
  ),
);
console.log(out.join("\n"));
if (JSON_OUT) console.log(JSON.stringify(results));
