// npm run sim:overlay: an overlay reached through PIAS (paper §6.2) at scale,
// on the real code: the control plane of every node (ControlNode with the
// overlay role: both heartbeat rings, discovery, HMAC on every frame) on an
// in-memory network with simulated time, and the data path of every node (a
// Wasm core each, with its overlay tables and the partition) carrying real
// packets of every connection.
//
// Geography: nodes, clients and remote hosts are points in a unit square;
// latency is distance. Native anycast takes a packet to the node with the
// smallest *routing* distance from its source: the distance stretched by a
// per (source, node) factor in [1, 1 + NOISE) (BGP picks by AS paths, which
// follow geography only roughly: paper §7, Fig. 9). NOISE 0 is ideal anycast.
//
// Phases: the nodes start and converge; clients discover their local node
// (a DISCOVER for the overlay's group to the anycast address, k = 2, nearest)
// during a control-plane window of OSIM_SECONDS, a third of the way into which
// one node fails (the partition must move only its blocks; it comes back at
// the end). Then the data path: every connection opens (SYN through the
// local node, straight to the host), the host answers (entering at its
// anycast-nearest node, relayed to the owner, down the client's tunnel), the
// client sends again (through the remote node now cached for that host, which
// sends it from the TA) and the host answers again. All connections stay live.
//
// Environment (defaults in brackets):
//   OSIM_NODES [100] OSIM_CLIENTS [10000] OSIM_CONNECTIONS [1000000] OSIM_HOSTS [50000]
//   OSIM_SECONDS [30] control-plane window, simulated s   OSIM_NOISE [0.3]   OSIM_SEED [1]
//   OSIM_JSON [0] (also --json): print the results as one JSON line; the run also
//   writes them to bench/results/overlay-sim.json (OSIM_OUT: another path, "" for none).

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { ControlNode } from "../src/control/node.js";
import { MemoryNetwork } from "../src/control/memnet.js";
import { Authenticator } from "../src/control/auth.js";
import { Partition, type PartitionSpace } from "../src/control/partition.js";
import { overlayClientKey, overlayNodeKey } from "../src/control/overlay-keys.js";
import { MESSAGE_KINDS, type DiscoverReplyMessage } from "../src/control/message.js";
import { sameTa, type Endpoint, type TransportAddress } from "../src/control/ta.js";
import { DataPlane, reasonName } from "../src/core/dataplane.js";
import type { PacketBatch } from "../src/core/batch.js";
import { OverlayKind, Verdict } from "../assembly/shared/abi.js";
import { sealFrame } from "../src/net/overlay-frame.js";
import { buildPacket } from "../test/helpers/packets.js";
import { prng } from "../test/control/arbitraries.js";
import { int, markdownTable } from "./lib/table.js";
import { env } from "./lib/env.js";

const NODES = Math.max(3, Math.floor(env("OSIM_NODES", 100)));
const CLIENTS = Math.max(1, Math.floor(env("OSIM_CLIENTS", 10_000)));
const CONNECTIONS = Math.max(CLIENTS, Math.floor(env("OSIM_CONNECTIONS", 1_000_000)));
const HOSTS = Math.max(1, Math.floor(env("OSIM_HOSTS", 50_000)));
const SECONDS = Math.max(3, env("OSIM_SECONDS", 30));
const NOISE = env("OSIM_NOISE", 0.3);
const SEED = Math.floor(env("OSIM_SEED", 1));
const JSON_OUT = env("OSIM_JSON", 0) !== 0 || process.argv.includes("--json");
const OUT = process.env.OSIM_OUT ?? "bench/results/overlay-sim.json";

const STEP_MS = 100;
const CONTROL_PORT = 7470;
const FRAME_PORT = 7480;
const SPACE: PartitionSpace = { prefixes: ["203.0.113.0/24"], ports: [1024, 65535], blockPorts: 256 };
const GROUP: TransportAddress = { protocol: "udp", address: Uint8Array.of(203, 0, 113, 0), port: FRAME_PORT };
const OVERLAY_KEY = new Uint8Array(32).fill(0x0e);
const CLUSTER_KEY = new Uint8Array(32).fill(0xc1);
const CLIENT_KEY = overlayClientKey(OVERLAY_KEY);
const CHUNK = 25_000;
const BATCH = 256;

const rand = prng(SEED);
const wall0 = performance.now();
const log = (line: string): void =>
  console.error(`[overlay-sim ${((performance.now() - wall0) / 1000).toFixed(1)} s, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB] ${line}`);

// ---------------------------------------------------------------- geography

const place = (n: number): Float64Array => Float64Array.from({ length: 2 * n }, () => rand());
const nodeXY = place(NODES);
const clientXY = place(CLIENTS);
const hostXY = place(HOSTS);
const dist = (a: Float64Array, i: number, b: Float64Array, j: number): number => Math.hypot(a[2 * i] - b[2 * j], a[2 * i + 1] - b[2 * j + 1]);
/** A deterministic per (source, node) routing stretch in [1, 1 + NOISE). */
const stretch = (kind: number, i: number, n: number): number => {
  let h = Math.imul(kind * 0x9e3779b1 + i, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x27d4eb2f);
  h ^= h >>> 13;
  return 1 + NOISE * ((h >>> 0) / 2 ** 32);
};
const alive = new Array<boolean>(NODES).fill(true);
/** The node native anycast delivers to from source i (kind 0 client, 1 host): the smallest routing distance among live nodes. */
function anycastNode(kind: number, xy: Float64Array, i: number): number {
  let best = -1;
  let bestD = Infinity;
  for (let n = 0; n < NODES; n++) {
    if (!alive[n]) continue;
    const d = dist(xy, i, nodeXY, n) * stretch(kind, i, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best;
}
function nearestNode(xy: Float64Array, i: number): number {
  let best = 0;
  for (let n = 1; n < NODES; n++) if (dist(xy, i, nodeXY, n) < dist(xy, i, nodeXY, best)) best = n;
  return best;
}

// ---------------------------------------------------------------- addresses

const ids = Array.from({ length: NODES }, (_, i) => `n${String(i).padStart(3, "0")}`);
const nodeAddr = (i: number): Uint8Array => Uint8Array.of(10, 255, i >> 8, i & 255);
const clientOuter = (c: number): Uint8Array => Uint8Array.of(100, 64 + (c >> 16), (c >> 8) & 255, c & 255);
const clientInner = (c: number): Uint8Array => Uint8Array.of(10, 200 + (c >> 16), (c >> 8) & 255, c & 255);
const hostAddr = (h: number): Uint8Array => Uint8Array.of(198, 18 + (h >> 16), (h >> 8) & 255, h & 255);
const u32 = (b: Uint8Array, at = 0): number => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
const nodeOfAddr = new Map<number, number>(ids.map((_, i) => [u32(nodeAddr(i)), i]));

// ---------------------------------------------------------------- control plane

const net = new MemoryNetwork({ latencyMs: 5, sink: () => {} });
const endpoints: Endpoint[] = ids.map((_, i) => ({ address: nodeAddr(i), port: CONTROL_PORT }));
const nodes = endpoints.map(
  (endpoint, i) =>
    new ControlNode({
      id: ids[i],
      endpoint,
      clusterKey: CLUSTER_KEY,
      groupKey: (ta) => (sameTa(ta, GROUP) ? OVERLAY_KEY : undefined),
      seeds: endpoints.slice(0, 3),
      now: net.now,
      send: net.sender(endpoint),
      incarnation: 1,
      replayCapacity: 1 << 18,
      random: prng(SEED * 1000 + i),
      overlay: { group: GROUP, port: FRAME_PORT, seeds: endpoints.slice(0, 3), distance: (id) => dist(nodeXY, i, nodeXY, Number(id.slice(1))) },
    }),
);
nodes.forEach((n, i) => net.attach(endpoints[i], (from, bytes) => n.receive(from, bytes)));
const ANYCAST: Endpoint = { address: Uint8Array.of(198, 51, 100, 1), port: CONTROL_PORT };
net.anycast(ANYCAST, (from) => {
  const c = from.address[0] === 100 ? ((from.address[1] - 64) << 16) | (from.address[2] << 8) | from.address[3] : -1;
  const n = c >= 0 && c < CLIENTS ? anycastNode(0, clientXY, c) : -1;
  return n >= 0 ? endpoints[n] : undefined;
});
const step = (): void => {
  net.run(net.now() + STEP_MS);
  nodes.forEach((n, i) => alive[i] && n.tick());
};

// clients: a DISCOVER each, answered to the client's socket
const clientAuth = new Authenticator({ groupKey: (ta) => (sameTa(ta, GROUP) ? OVERLAY_KEY : undefined), now: net.now, replayCapacity: 1 << 15 });
const localNode = new Int32Array(CLIENTS).fill(-1);
const nextNode = new Int32Array(CLIENTS).fill(-1);
for (let c = 0; c < CLIENTS; c++) {
  net.attach({ address: clientOuter(c), port: 40000 }, (_from, bytes) => {
    const o = clientAuth.open(bytes);
    if (!o.ok || o.message.type !== "discover-reply") return;
    const m = (o.message as DiscoverReplyMessage).members;
    localNode[c] = m[0] ? nodeOfAddr.get(u32(m[0].endpoint.address))! : -1;
    nextNode[c] = m[1] ? nodeOfAddr.get(u32(m[1].endpoint.address))! : -1;
  });
}

log(`${NODES} nodes, ${int(CLIENTS)} clients, ${int(CONNECTIONS)} connections to ${int(HOSTS)} hosts, anycast noise ${NOISE}`);
for (let s = 0; s < 8000 / STEP_MS; s++) step();
const views = nodes.map((n) => n.overlay!.nodes().length);
log(`overlay membership: every node sees ${Math.min(...views)}..${Math.max(...views)} live nodes`);

const partition = new Partition(SPACE);
partition.setNodes(ids);
const owners0 = Array.from({ length: partition.blocks }, (_, b) => partition.owner(b));
const shares0 = [...partition.shares().values()];

const before = { ...net.byKind };
const bytes0 = net.counters.bytes;
const windowSteps = Math.ceil((SECONDS * 1000) / STEP_MS);
const victim = NODES - 1;
let failure = { node: ids[victim], owned: 0, moved: 0, otherBlocksMoved: 0, viewsAfter: [0, 0] };
let asked = 0;
for (let s = 0; s < windowSteps; s++) {
  if (s === Math.floor(windowSteps / 3)) {
    alive[victim] = false;
    net.detach(endpoints[victim]);
    log(`node ${ids[victim]} fails`);
  }
  if (s === Math.floor((2 * windowSteps) / 3)) {
    // the views have settled: the partition over them moves only the victim's blocks
    const live = nodes[0].overlay!.nodes().map((p) => p.id);
    const after = new Partition(SPACE);
    after.setNodes(live);
    let moved = 0;
    let others = 0;
    for (let b = 0; b < after.blocks; b++) {
      if (after.owner(b) === owners0[b]) continue;
      moved++;
      if (owners0[b] !== ids[victim]) others++;
    }
    const v = nodes.filter((_, i) => alive[i]).map((n) => n.overlay!.nodes().length);
    failure = { node: ids[victim], owned: shares0[victim], moved, otherBlocksMoved: others, viewsAfter: [Math.min(...v), Math.max(...v)] };
  }
  // discovery queries spread over the first half of the window
  const due = Math.min(CLIENTS, Math.floor(((s + 1) / Math.max(1, Math.floor(windowSteps / 2))) * CLIENTS));
  while (asked < due) {
    const c = asked++;
    net.send({ address: clientOuter(c), port: 40000 }, ANYCAST, clientAuth.seal({ type: "discover", ta: GROUP, k: 2, mode: "nearest", exclude: [] }));
  }
  step();
}
const after = { ...net.byKind };
const perSecond: Record<string, number> = {};
for (const k of [...MESSAGE_KINDS, "other"]) {
  const d = (after[k] ?? 0) - (before[k] ?? 0);
  if (d > 0) perSecond[k] = d / SECONDS;
}
const controlBytesPerSecond = (net.counters.bytes - bytes0) / SECONDS;
alive[victim] = true; // it comes back for the data path
net.attach(endpoints[victim], (from, bytes) => nodes[victim].receive(from, bytes));
const answered = localNode.filter((n) => n >= 0).length;
const localIsNearest = Array.from(localNode).filter((n, c) => n >= 0 && n === anycastNode(0, clientXY, c)).length;
log(`control window: ${SECONDS} s; ${int(answered)} of ${int(CLIENTS)} clients discovered their local node`);
for (let c = 0; c < CLIENTS; c++) if (localNode[c] < 0) localNode[c] = anycastNode(0, clientXY, c); // unanswered (lost to the failure): as anycast would

// ---------------------------------------------------------------- data path

const connClient = new Int32Array(CONNECTIONS);
const connHost = new Int32Array(CONNECTIONS);
const connTaAddr = new Uint32Array(CONNECTIONS);
const connTaPort = new Uint16Array(CONNECTIONS);
for (let k = 0; k < CONNECTIONS; k++) {
  connClient[k] = k % CLIENTS;
  connHost[k] = Math.floor(rand() * HOSTS);
}
const load = new Int32Array(NODES);
for (let k = 0; k < CONNECTIONS; k++) load[localNode[connClient[k]]]++;
const entryOf = Int32Array.from({ length: HOSTS }, (_, h) => anycastNode(1, hostXY, h));
const nearestOf = Int32Array.from({ length: HOSTS }, (_, h) => nearestNode(hostXY, h));

const planes: DataPlane[] = [];
const batches: PacketBatch[] = [];
const ownerTable = partition.ownerTable((id) => Number(id.slice(1)));
for (let i = 0; i < NODES; i++) {
  const dp = new DataPlane({
    address: `10.255.${i >> 8}.${i & 255}`,
    capacity: { flows: 16, groups: 1, targets: 1 },
    overlay: { port: FRAME_PORT, clientKey: CLIENT_KEY, nodeKey: overlayNodeKey(CLUSTER_KEY), flows: Math.ceil(load[i] * 1.25) + 64, destinations: 65536, maxBlocks: partition.blocks },
  });
  const o = dp.overlay!;
  o.setSpace(SPACE.prefixes, SPACE.ports, SPACE.blockPorts);
  for (let j = 0; j < NODES; j++) o.setNode(j, `10.255.${j >> 8}.${j & 255}`, true);
  o.setSelf(i);
  o.setOwners(ownerTable);
  planes.push(dp);
  batches.push(dp.createBatch(BATCH, BATCH * 256));
}
log(`data planes: ${NODES} cores, ${int(planes.reduce((a, p) => a + p.memoryBytes(), 0) / 2 ** 20)} MiB of linear memory in all`);

const TIME = 1000;
const counts = { packets: 0, toHost: 0, toClient: 0, returns: 0, returnsAtNearest: 0, returnsAtOwner: 0, viaRemote: 0, direct: 0, nodeFrames: 0 };
const drops: Record<string, number> = {};
const queues: { pkt: Uint8Array; conn: number }[][] = Array.from({ length: NODES }, () => []);
const seenDest = Array.from({ length: NODES }, () => new Set<number>());

const tcp = (src: Uint8Array, sport: number, dst: Uint8Array, dport: number, flags: number): Uint8Array =>
  buildPacket({ family: 4, proto: "tcp", src, dst, sport, dport, tcpFlags: flags, payload: new Uint8Array(0) });
const clientPacket = (k: number, flags: number): Uint8Array => {
  const c = connClient[k];
  const inner = tcp(clientInner(c), 10000 + Math.floor(k / CLIENTS), hostAddr(connHost[k]), 443, flags);
  return buildPacket({ family: 4, proto: "udp", src: clientOuter(c), dst: nodeAddr(localNode[c]), sport: 40000, dport: FRAME_PORT, payload: sealFrame(inner, OverlayKind.ClientData, CLIENT_KEY, TIME) });
};
const hostReply = (k: number, flags: number): Uint8Array => {
  const ta = Uint8Array.of(connTaAddr[k] >>> 24, (connTaAddr[k] >>> 16) & 255, (connTaAddr[k] >>> 8) & 255, connTaAddr[k] & 255);
  return tcp(hostAddr(connHost[k]), 443, ta, connTaPort[k], flags);
};

/** Run every queued packet through its node, following frames to the next node, until none is left. */
function drain(): void {
  for (let busy = true; busy; ) {
    busy = false;
    for (let n = 0; n < NODES; n++) {
      const q = queues[n];
      if (q.length === 0) continue;
      busy = true;
      queues[n] = [];
      const b = batches[n];
      for (let at = 0; at < q.length; at += BATCH) {
        const part = q.slice(at, at + BATCH);
        b.clear();
        for (const { pkt } of part) b.add(pkt, { time: TIME });
        planes[n].process(b);
        part.forEach(({ conn }, i) => {
          counts.packets++;
          if (b.verdict(i) !== Verdict.Forward) {
            const r = reasonName(b.reason(i));
            drops[r] = (drops[r] ?? 0) + 1;
            return;
          }
          const out = b.packet(i);
          const dst = u32(out, 16);
          if (out[9] === 17) {
            // a frame: to another node (its frame port), or down the client's tunnel
            const to = ((out[22] << 8) | out[23]) === FRAME_PORT ? nodeOfAddr.get(dst) : undefined;
            if (to !== undefined) {
              counts.nodeFrames++;
              queues[to].push({ pkt: out.slice(), conn });
            } else if (dst === u32(clientOuter(connClient[conn]))) counts.toClient++;
            return;
          }
          if (dst === u32(hostAddr(connHost[conn]))) {
            counts.toHost++;
            connTaAddr[conn] = u32(out, 12);
            connTaPort[conn] = (out[20] << 8) | out[21];
          }
        });
      }
    }
  }
}

const t0 = performance.now();
for (let from = 0; from < CONNECTIONS; from += CHUNK) {
  const to = Math.min(CONNECTIONS, from + CHUNK);
  const returnAt = (k: number, flags: number): void => {
    const e = entryOf[connHost[k]];
    counts.returns++;
    if (e === nearestOf[connHost[k]]) counts.returnsAtNearest++;
    if (e === localNode[connClient[k]]) counts.returnsAtOwner++;
    seenDest[localNode[connClient[k]]].add(connHost[k]);
    queues[e].push({ pkt: hostReply(k, flags), conn: k });
  };
  for (let k = from; k < to; k++) queues[localNode[connClient[k]]].push({ pkt: clientPacket(k, 0x02), conn: k });
  drain();
  for (let k = from; k < to; k++) returnAt(k, 0x12);
  drain();
  for (let k = from; k < to; k++) queues[localNode[connClient[k]]].push({ pkt: clientPacket(k, 0x10), conn: k });
  drain();
  for (let k = from; k < to; k++) returnAt(k, 0x18);
  drain();
  if ((to / CHUNK) % 8 === 0 || to === CONNECTIONS) log(`${int(to)} connections open`);
}
const dataSeconds = (performance.now() - t0) / 1000;

// ---------------------------------------------------------------- results

const stats = planes.map((p) => p.overlay!.stats());
const sum = (f: (s: (typeof stats)[number]) => number): number => stats.reduce((a, s) => a + f(s), 0);
const meanMax = (v: number[]) => ({ mean: v.reduce((a, b) => a + b, 0) / v.length, min: Math.min(...v), max: Math.max(...v) });
const shares = [...partition.shares().values()];
const perNode = {
  bindings: meanMax(stats.map((s) => s.flowsLive)),
  destinations: meanMax(seenDest.map((s) => s.size)),
  blocks: meanMax(shares),
  tas: meanMax(shares.map((n) => n * SPACE.blockPorts)),
  memoryMiB: meanMax(planes.map((p) => p.memoryBytes() / 2 ** 20)),
};
let cpu = cpus()[0]?.model ?? "unknown";
try {
  cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
} catch {
  // not Linux
}
const results = {
  params: { nodes: NODES, clients: CLIENTS, connections: CONNECTIONS, hosts: HOSTS, seconds: SECONDS, noise: NOISE, seed: SEED, blocks: partition.blocks, blockPorts: SPACE.blockPorts },
  control: {
    messagesPerSecond: perSecond,
    totalPerSecond: Object.values(perSecond).reduce((a, b) => a + b, 0),
    bytesPerSecond: controlBytesPerSecond,
    discovered: answered,
    localIsAnycastNearest: localIsNearest,
    failure,
  },
  data: {
    packets: counts.packets,
    seconds: dataSeconds,
    connectionsOpened: counts.toHost > 0 ? sum((s) => s.flowsCreated) : 0,
    bindingsLive: sum((s) => s.flowsLive),
    toHost: counts.toHost,
    toClient: counts.toClient,
    returns: counts.returns,
    returnsAtRemoteNearest: counts.returnsAtNearest,
    shareAtRemoteNearest: counts.returns ? counts.returnsAtNearest / counts.returns : 0,
    returnsAtOwner: counts.returnsAtOwner,
    relayedToOwner: sum((s) => s.relayedToOwner),
    repliesDirect: sum((s) => s.repliesDirect),
    repliesViaNode: sum((s) => s.repliesViaNode),
    viaRemote: sum((s) => s.viaRemote),
    direct: sum((s) => s.direct),
    sentOut: sum((s) => s.sentOut),
    nodeFrames: counts.nodeFrames,
    drops,
  },
  perNode,
  wallSeconds: (performance.now() - wall0) / 1000,
  machine: { cpu, cores: cpus().length, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, kernel: release(), uname: spawnSync("uname", ["-a"], { encoding: "utf8" }).stdout.trim() },
  commit: spawnSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).stdout.trim(),
  load: readFileSafe("/proc/loadavg"),
};

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}

const pct = (a: number, b: number): string => `${((100 * a) / Math.max(1, b)).toFixed(1)}%`;
const row = (name: string, m: { mean: number; min: number; max: number }, digits = 0): string[] => [name, m.mean.toFixed(digits), m.min.toFixed(digits), m.max.toFixed(digits)];
console.log(`\n## overlay simulation: ${NODES} nodes, ${int(CLIENTS)} clients, ${int(CONNECTIONS)} connections to ${int(HOSTS)} hosts (anycast noise ${NOISE})\n`);
console.log(markdownTable(["control messages per second (all nodes)", ""], [
  ...Object.entries(perSecond).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, int(v)]),
  ["total", `${int(results.control.totalPerSecond)} (${(controlBytesPerSecond / 1e6).toFixed(1)} MB/s)`],
], ["l", "r"]));
console.log();
console.log(markdownTable(["state per node", "mean", "min", "max"], [
  row("NAT bindings (live connections)", perNode.bindings),
  row("remote hosts whose replies reached it (cache)", perNode.destinations),
  row("partition blocks owned", perNode.blocks),
  row("TAs owned", perNode.tas),
  row("Wasm linear memory, MiB", perNode.memoryMiB, 1),
], ["l", "r", "r", "r"]));
console.log();
console.log(markdownTable(["data path", ""], [
  ["connections opened / live bindings", `${int(results.data.connectionsOpened)} / ${int(results.data.bindingsLive)}`],
  ["return packets", int(counts.returns)],
  ["... entering at the remote host's nearest node", `${int(counts.returnsAtNearest)} (${pct(counts.returnsAtNearest, counts.returns)})`],
  ["... entering at the client's local node (the owner) itself", `${int(counts.returnsAtOwner)} (${pct(counts.returnsAtOwner, counts.returns)})`],
  ["... relayed remote node -> owner", int(results.data.relayedToOwner)],
  ["client packets through the remote node / direct", `${int(results.data.viaRemote)} / ${int(results.data.direct)}`],
  ["packets delivered to hosts / to clients", `${int(counts.toHost)} / ${int(counts.toClient)}`],
  ["packets dropped", Object.keys(drops).length ? JSON.stringify(drops) : "0"],
  ["core packets processed (all nodes)", `${int(counts.packets)} in ${dataSeconds.toFixed(1)} s`],
], ["l", "r"]));
console.log(`\n${int(answered)} of ${int(CLIENTS)} clients discovered their local node (${pct(localIsNearest, CLIENTS)} got the node anycast reaches first).`);
console.log(`Node ${failure.node} failed owning ${int(failure.owned)} blocks: ${int(failure.moved)} blocks moved, ${failure.otherBlocksMoved} of other nodes'; live views after: ${failure.viewsAfter.join("..")}.`);
console.log(`${results.wallSeconds.toFixed(0)} s wall, load ${results.load}.`);
if (OUT) {
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2));
  console.log(`raw figures: ${OUT}`);
}
if (JSON_OUT) console.log(JSON.stringify(results));
