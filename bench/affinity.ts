// npm run sim:affinity: cross-proxy affinity under failures, heartbeat
// membership against membership from a store (etcd leases; here MemoryStore,
// etcd's semantics in memory). The real control-plane code (ControlNode:
// membership, JAP, RAP, IAP, HMAC on every frame) runs for every proxy on an
// in-memory network with simulated time, once per membership kind, with the
// same seed, targets and failures.
//
// Proxies 0..J-1 are JAPs (each group has targets joined at 3 of them);
// proxies J..N-1 are IAPs. Every IAP resolves every group every step (as
// constant client traffic would). Each sample moves clients between two
// random IAPs — what routing does when a proxy fails — and asks: does the new
// IAP pick the same JAP as the old one? An IAP picks a JAP by rendezvous
// hashing of the client over the JAPs it holds for the group (the affinity
// policy's consistent hashing), so the answer is yes exactly when both IAPs
// hold the same JAPs. Clients whose JAP is the dead proxy cannot keep it and
// are counted apart.
//
// Scenarios: JAP 0 crashes at t = 5 s of a 30 s window; the links between
// proxies lose a share of frames (congestion, as often comes with failures;
// targets' links to their JAPs and the store's TCP are not lossy).
//
//   AFF_PROXIES [12]  AFF_JAPS [6]  AFF_GROUPS [24]  AFF_CLIENTS [400 per sample]
//   AFF_SECONDS [30]  AFF_LOSS [0,0.05,0.1,0.2]  AFF_SEED [1]  AFF_JSON [0] (also --json)
//   AFF_WRITE [1]: write bench/results/affinity.json (with the machine, commit and load)

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ControlNode } from "../src/control/node.js";
import { Joiner } from "../src/control/joiner.js";
import { MemoryNetwork } from "../src/control/memnet.js";
import { MemoryStore } from "../src/control/memstore.js";
import { StoreMembership } from "../src/control/lease-membership.js";
import { StoreSync } from "../src/control/store-sync.js";
import { murmur3 } from "../src/control/rendezvous.js";
import { epKey, sameTa, type Endpoint, type TransportAddress } from "../src/control/ta.js";
import type { JapEntry } from "../src/control/message.js";
import { prng } from "../test/control/arbitraries.js";
import { machine } from "./lib/machine.js";
import { markdownTable } from "./lib/table.js";

const env = (name: string, fallback: number): number => {
  const v = process.env[name];
  return v === undefined || v === "" ? fallback : Number(v);
};
const PROXIES = env("AFF_PROXIES", 12);
const JAPS = env("AFF_JAPS", 6);
const GROUPS = env("AFF_GROUPS", 24);
const CLIENTS = env("AFF_CLIENTS", 400);
const SECONDS = env("AFF_SECONDS", 30);
const SEED = env("AFF_SEED", 1);
const LOSSES = (process.env.AFF_LOSS ?? "0,0.05,0.1,0.2").split(",").map(Number);
const JSON_OUT = env("AFF_JSON", 0) !== 0 || process.argv.includes("--json");
const STEP_MS = 100;
const SAMPLE_EVERY = 5; // steps
const TTL_S = 3;
const VICTIM = 0;
const KILL_AT_MS = 5000;

const CLUSTER_KEY = new Uint8Array(32).fill(0x5a);
const JOIN_KEY = new Uint8Array(32).fill(0x7b);
const ANYCAST: Endpoint = { address: Uint8Array.of(198, 51, 100, 1), port: 7470 };
const groups: TransportAddress[] = Array.from({ length: GROUPS }, (_, g) => ({ protocol: "tcp", address: Uint8Array.of(198, 51, 100, 10 + g), port: 80 }));

/** The JAP an IAP picks for a client: the highest rendezvous score over the JAPs it holds. */
const scratch = new Uint8Array(36);
function pick(japs: readonly JapEntry[], client: number): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const j of japs) {
    const id = new TextEncoder().encode(j.proxy.id);
    scratch[0] = client >>> 24;
    scratch[1] = (client >>> 16) & 255;
    scratch[2] = (client >>> 8) & 255;
    scratch[3] = client & 255;
    scratch.set(id.subarray(0, 32), 4);
    const s = murmur3(scratch.subarray(0, 4 + Math.min(32, id.length)), 0xaff1);
    if (s > bestScore || (s === bestScore && best !== undefined && j.proxy.id < best)) {
      bestScore = s;
      best = j.proxy.id;
    }
  }
  return best;
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

interface Outcome {
  membership: "heartbeat" | "store";
  loss: number;
  /** Moves of clients whose JAP (at the old IAP) was alive. */
  moves: number;
  kept: number;
  /** Moves of clients whose JAP was the dead proxy. */
  deadJapMoves: number;
  /** Moves where one of the IAPs had no answer for the group yet. */
  unanswered: number;
  /** Live proxies wrongly declared dead (per view), summed over the run. */
  falseDowns: number;
  /** Seconds from the crash until every IAP stopped handing out the dead JAP. */
  detectS: number;
}

async function run(kind: "heartbeat" | "store", loss: number): Promise<Outcome> {
  const rand = prng(SEED * 7919 + Math.round(loss * 1000));
  const net = new MemoryNetwork({ latencyMs: 5 });
  const store = new MemoryStore(net.now);
  const endpoints = Array.from({ length: PROXIES }, (_, i) => ({ address: Uint8Array.of(192, 0, 2, i + 1), port: 7470 }));
  const isProxy = new Set(endpoints.map(epKey));
  net.drop = (from, to) => loss > 0 && isProxy.has(epKey(from)) && isProxy.has(epKey(to)) && rand() < loss;
  const alive = new Array(PROXIES).fill(true);
  const syncs: (StoreSync | undefined)[] = [];
  let falseDowns = 0;
  const nodes = endpoints.map((endpoint, i) => {
    const id = `ap-${String(i).padStart(2, "0")}`;
    let membership;
    if (kind === "store") {
      membership = new StoreMembership({ self: { id, endpoint }, now: net.now, staleAfterMs: TTL_S * 1000 });
      syncs.push(new StoreSync({ store: store.client(id), prefix: "/pias", membership, leaseTtlS: TTL_S, now: net.now }));
    }
    const node = new ControlNode({
      id, endpoint, clusterKey: CLUSTER_KEY, groupKey: (ta) => (groups.some((g) => sameTa(g, ta)) ? JOIN_KEY : undefined),
      seeds: kind === "heartbeat" ? endpoints : [], membership, now: net.now, send: net.sender(endpoint), incarnation: 1, random: rand,
      onMembership: (ev) => {
        if (ev.kind === "down" && alive[Number(ev.proxy.id.slice(3))]) falseDowns++;
      },
    });
    net.attach(endpoint, (from, bytes) => node.receive(from, bytes));
    return node;
  });
  for (const s of syncs) await s!.start();
  for (const s of syncs) await s!.join();

  // targets: each group joined at 3 of the JAPs, through its nearest one (its home)
  const home = new Map<string, number>();
  net.anycast(ANYCAST, (from) => {
    const h = home.get(epKey(from));
    return h !== undefined && alive[h] ? endpoints[h] : endpoints.find((_, i) => alive[i] && i < JAPS);
  });
  const joiners: Joiner[] = [];
  groups.forEach((ta, g) => {
    const at = new Set<number>();
    while (at.size < Math.min(3, JAPS)) at.add(Math.floor(rand() * JAPS));
    for (const j of at) {
      const control = { address: Uint8Array.of(10, g, j, 2), port: 40000 };
      home.set(epKey(control), j);
      const joiner = new Joiner({ ta, target: { endpoint: { address: control.address, port: 8080 }, weight: 1, label: null, aware: false }, key: JOIN_KEY, anycast: ANYCAST, now: net.now, send: net.sender(control), random: rand });
      net.attach(control, (from, bytes) => joiner.receive(from, bytes));
      joiner.start();
      joiners.push(joiner);
    }
  });

  const iaps = Array.from({ length: PROXIES - JAPS }, (_, k) => JAPS + k);
  let traffic = false;
  const step = async (): Promise<void> => {
    net.run(net.now() + STEP_MS);
    store.expire();
    nodes.forEach((n, i) => {
      if (!alive[i]) return;
      syncs[i]?.tick();
      n.tick();
    });
    for (const j of joiners) j.tick();
    if (traffic) for (const i of iaps) if (alive[i]) for (const ta of groups) nodes[i].resolve(ta);
    await settle();
  };
  // converge: membership and joins, then client traffic (lookups) for 10 s
  for (let t = 0; t < 15_000; t += STEP_MS) {
    traffic = t >= 5000;
    await step();
  }
  falseDowns = 0;

  const out: Outcome = { membership: kind, loss, moves: 0, kept: 0, deadJapMoves: 0, unanswered: 0, falseDowns: 0, detectS: NaN };
  const victim = nodes[VICTIM].self.id;
  let killedAt = -1;
  for (let t = 0, n = 0; t < SECONDS * 1000; t += STEP_MS, n++) {
    if (t === KILL_AT_MS) {
      alive[VICTIM] = false;
      net.detach(endpoints[VICTIM]);
      killedAt = net.now();
    }
    await step();
    if (killedAt >= 0 && Number.isNaN(out.detectS) && iaps.every((i) => groups.every((ta) => !(nodes[i].iap.cached(ta) ?? []).some((j) => j.proxy.id === victim)))) {
      out.detectS = (net.now() - killedAt) / 1000;
    }
    if (n % SAMPLE_EVERY !== 0) continue;
    for (let c = 0; c < CLIENTS; c++) {
      const client = Math.floor(rand() * 2 ** 32);
      const ta = groups[Math.floor(rand() * GROUPS)];
      const a = iaps[Math.floor(rand() * iaps.length)];
      let b = iaps[Math.floor(rand() * (iaps.length - 1))];
      if (b >= a) b++;
      if (b >= PROXIES) b = iaps[0];
      const ja = nodes[a].iap.cached(ta);
      const jb = nodes[b].iap.cached(ta);
      if (!ja?.length || !jb?.length) {
        out.unanswered++;
        continue;
      }
      const before = pick(ja, client);
      if (before === victim && killedAt >= 0) {
        out.deadJapMoves++;
        continue;
      }
      out.moves++;
      if (pick(jb, client) === before) out.kept++;
    }
  }
  out.falseDowns = falseDowns;
  return out;
}

const results: Outcome[] = [];
for (const loss of LOSSES) for (const kind of ["heartbeat", "store"] as const) results.push(await run(kind, loss));
const pct = (a: number, b: number): string => (b === 0 ? "-" : `${((100 * a) / b).toFixed(2)}%`);
const table = markdownTable(
  ["loss between proxies", "membership", "moves (JAP alive)", "kept their JAP", "live proxies declared dead", "dead JAP gone from every IAP"],
  results.map((r) => [`${r.loss * 100}%`, r.membership === "store" ? "store (leases)" : "heartbeats", String(r.moves), pct(r.kept, r.moves), String(r.falseDowns), Number.isNaN(r.detectS) ? "never" : `${r.detectS.toFixed(1)} s`]),
  ["r", "l", "r", "r", "r", "r"],
);
console.log(`cross-proxy affinity: ${PROXIES} proxies (${JAPS} JAPs, ${PROXIES - JAPS} IAPs), ${GROUPS} groups, JAP ap-00 crashes ${KILL_AT_MS / 1000} s into a ${SECONDS} s window, ${CLIENTS} client moves per 0.5 s\n`);
console.log(table);
const json = { generated: new Date().toISOString(), machine: machine(), params: { PROXIES, JAPS, GROUPS, CLIENTS, SECONDS, SEED, TTL_S, heartbeatMs: 1000, deadAfter: 3 }, results };
if (env("AFF_WRITE", 1) !== 0) {
  mkdirSync(join("bench", "results"), { recursive: true });
  writeFileSync(join("bench", "results", "affinity.json"), `${JSON.stringify(json, null, 2)}\n`);
}
if (JSON_OUT) console.log(JSON.stringify(json));
