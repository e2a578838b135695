// PIAS across proxies, end to end: four proxies running `pias run` on TUN,
// each announcing the anycast prefix over BGP (its managed BIRD) to a router
// running BIRD, targets that join with `pias join`, and a client. Every
// namespace and link is created and removed here.
//
//            client 10.9.0.2          t1 10.8.1.2          t2 10.8.2.2
//                  \                      |                    /
//                   +------------------ router ---------------+
//                  /                      |                    \
//   p1 10.0.1.2 (J 10.255.0.1)   p2 10.0.2.2 (J 10.255.0.2)   p3 10.0.3.2 (J 10.255.0.3)
//   (and p4 10.0.4.2, J 10.255.0.4, beside them)
//
// Routing decides which proxy is "nearest", never the test: the router's BIRD
// (AS 65000) learns 198.51.100.0/24 from every proxy (AS 65001) and pipes it
// into one table per region with that region's local preference (client
// region: p2, then p4; t1's: p1; t2's: p3, then p1), routes with
// GRACEFUL_SHUTDOWN (65535:0) get local preference 0 (RFC 8326), and each
// region table is the kernel table its source network looks up (ip rule).
// A proxy that stops, drains or dies moves its regions to the next proxy by
// BGP alone. Each proxy's unicast address J is routed to it statically.

import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";
import { PROXIES, routedTestbed } from "../helpers/testbed.js";
import { TestBird, birdUnavailable, recordFigures, until as untilAsync } from "../helpers/bird.js";

const skip = netnsUnavailable() ?? birdUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");
const TA = "198.51.100.10";
const PREFIX = "198.51.100.0/24";
const CONTROL = "198.51.100.1";
const PORT = 7470;
const UDP_PORT = 7;
const CLUSTER_KEY = "c1".repeat(32);
const JOIN_KEY = "a7".repeat(32);
const BIG = 8 << 20;
const proxies = PROXIES;
/** Region -> (kernel table, source network, local preference per proxy; others 100). */
const regions = [
  { name: "c", table: 102, from: "10.9.0.0/24", pref: { p2: 300, p4: 200 } },
  { name: "t1", table: 101, from: "10.8.1.0/24", pref: { p1: 300 } },
  { name: "t2", table: 103, from: "10.8.2.0/24", pref: { p3: 300, p1: 200 } },
];

function routerConfig(): string {
  const lines = [
    "log stderr all;",
    "router id 10.9.0.1;",
    "protocol device {}",
    "template bgp proxy { local as 65000; hold time 3; connect delay time 0; connect retry time 1; error wait time 1, 2; ipv4 { import all; export none; }; }",
    ...proxies.map((p) => `protocol bgp ${p.name} from proxy { neighbor ${p.net}.2 as 65001; }`),
  ];
  for (const r of regions) {
    const prefs = Object.entries(r.pref).map(([p, v]) => `if proto = "${p}" then bgp_local_pref = ${v};`).join(" else ");
    lines.push(
      `ipv4 table region_${r.name};`,
      `filter pref_${r.name} { bgp_local_pref = 100; ${prefs} if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; }`,
      `protocol pipe to_${r.name} { table master4; peer table region_${r.name}; export filter pref_${r.name}; import none; }`,
      `protocol kernel k_${r.name} { ipv4 { table region_${r.name}; export all; }; kernel table ${r.table}; }`,
    );
  }
  return `${lines.join("\n")}\n`;
}

describe("PIAS across four proxies: BGP-routed anycast, joins, rendezvous, IAP -> JAP tunnels, failures", { skip, timeout: 300_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-cluster-"));
  const daemons = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();
  const joiners = new Map<string, ChildProcess>();
  let router: TestBird;

  const metrics = (p: string): string => topo.exec(p, ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
  const metric = (text: string, name: string): number =>
    text.split("\n").filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  const curl = (path = "/id", times = 1): { ok: boolean; out: string[]; err: string } => {
    const r = topo.run("c", ["curl", "-s", "-S", "--max-time", "4", ...Array.from({ length: times }, () => `http://${TA}${path}`)]);
    return { ok: r.status === 0, out: r.stdout.trim().split("\n"), err: r.stderr };
  };
  const dump = (): string => [...logs].map(([p, l]) => `--- ${p}\n${l.slice(-1500)}`).join("\n");
  const until = async (what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> => {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}\n${dump()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** The proxy the router sends a region's anycast traffic to (BGP's choice), or "none". */
  const nearest = async (region: string): Promise<string> => (await router.best(PREFIX, `region_${region}`))?.proto ?? "none";
  const waitNearest = (region: string, proxy: string, timeoutMs = 10_000): Promise<{ ms: number }> =>
    untilAsync(`region ${region} routed to ${proxy}`, async () => ((await nearest(region)) === proxy ? true : undefined), timeoutMs).catch((e: Error) => {
      throw new Error(`${e.message}\n${dump()}`);
    });
  const startJoin = async (t: string, address: string, keyFile: string, group = `tcp:${TA}:80`, port = "8080"): Promise<ChildProcess> => {
    const p = topo.start(t, [process.execPath, CLI, "join", "--anycast", CONTROL, "--port", String(PORT), "--group", group,
      "--address", address, "--target-port", port, "--key-file", keyFile]);
    joiners.set(`${t} ${group}`, p);
    return p;
  };
  const startProxy = async (p: (typeof proxies)[number]): Promise<void> => {
    // the managed BIRDs' files go to this test's directory (removed at the end, also after a SIGKILL)
    const d = topo.start(p.name, [process.execPath, CLI, "run", "--config", join(dir, `${p.name}.json`)], { env: { ...process.env, RUNTIME_DIRECTORY: join(dir, "run") } });
    logs.set(p.name, "");
    d.stdout!.on("data", (b: Buffer) => logs.set(p.name, logs.get(p.name) + b.toString()));
    d.stderr!.on("data", (b: Buffer) => logs.set(p.name, logs.get(p.name) + b.toString()));
    daemons.set(p.name, d);
    await waitForLine(d, /"msg":"ready"/);
  };

  /**
   * Start a proxy that stopped again, once the others have declared it dead
   * (a proxy back before that would be a RAP without registrations until the
   * JAPs' next refresh), and wait until BGP routes the client to it again.
   */
  const restartProxy = async (p: (typeof proxies)[number]): Promise<void> => {
    const others = proxies.filter((q) => q !== p && daemons.get(q.name)!.exitCode === null && daemons.get(q.name)!.signalCode === null);
    const live = others.length + 1;
    await until(`${p.name} dead in every view`, () => others.every((q) => metric(metrics(q.name), "pias_cluster_live_proxies") === live - 1), 30_000);
    await startProxy(p);
    await until(`${p.name} back in every view`, () => [p, ...others].every((q) => metric(metrics(q.name), "pias_cluster_live_proxies") === live), 30_000);
  };

  before(async () => {
    await routedTestbed(topo, dir, (t) => ({ big: Buffer.alloc(BIG, t) }));
    topo.start("t1", ["python3", join(REPO_ROOT, "test", "e2e", "clients.py"), "udp-echo", "10.8.1.2", "7007"]);
    // each source network looks up its region's table; BGP (the router's BIRD) fills the tables
    for (const r of regions) topo.exec("r", ["ip", "rule", "add", "from", r.from, "lookup", String(r.table)]);
    router = new TestBird(topo, "r", dir, routerConfig());
    await router.connection();
    writeFileSync(join(dir, "join.key"), JOIN_KEY);
    writeFileSync(join(dir, "wrong.key"), "00".repeat(32));
    for (const p of proxies) {
      writeFileSync(join(dir, `${p.name}.json`), JSON.stringify({
        proxy: { address: p.j, anycastPrefixes: [PREFIX] },
        capacity: { flows: 65536, groups: 64, targets: 256 },
        daemon: { tunName: "pias0", metrics: "127.0.0.1:9464", drainMs: 0 },
        cluster: {
          id: p.name, controlPort: PORT, key: CLUSTER_KEY, seeds: proxies.filter((q) => q !== p).map((q) => q.j),
          groups: [
            { protocol: "tcp", address: TA, port: 80, joinKey: JOIN_KEY, policy: "affinity", affinity: "flow" },
            { protocol: "udp", address: TA, port: UDP_PORT, joinKey: JOIN_KEY, policy: "affinity", affinity: "flow" },
          ],
        },
        bgp: { localAs: 65001, neighbors: [{ address: `${p.net}.1`, as: 65000 }], holdTime: 3, gracefulShutdownMs: 1500 },
      }));
      await startProxy(p);
    }
    // every proxy's prefix reaches the router, and each region goes to its nearest proxy
    await untilAsync("four routes at the router", async () => ((await router.routes(PREFIX)).length === 4 ? true : undefined), 5000);
    await Promise.all([waitNearest("c", "p2"), waitNearest("t1", "p1"), waitNearest("t2", "p3")]);
    await until("membership", () => proxies.every((p) => metric(metrics(p.name), "pias_cluster_live_proxies") === 4));
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a join signed with the wrong key is rejected and counted, and adds no target", async () => {
    const forged = await startJoin("t1", "10.8.1.2", join(dir, "wrong.key"));
    await until("a rejected join at p1", () => metric(metrics("p1"), "pias_control_rejected_total") > 0);
    assert.equal(metric(metrics("p1"), "pias_jap_targets"), 0);
    forged.kill("SIGKILL");
  });

  test("a target joins through its nearest proxy (the JAP) and a client whose IAP is another proxy completes TCP connections through the IAP -> JAP tunnel", async () => {
    const j = await startJoin("t1", "10.8.1.2", join(dir, "join.key"));
    await waitForLine(j, /joined/i);
    await until("t1 at p1", () => metric(metrics("p1"), "pias_jap_targets") === 1);
    for (let i = 0; i < 10; i++) {
      const r = curl("/id", 2);
      assert.ok(r.ok, r.err);
      assert.deepEqual(r.out, ["t1", "t1"]);
    }
    assert.ok(metric(metrics("p2"), "pias_encapsulated_packets_total") > 0, "p2 (IAP) tunnelled");
    assert.ok(metric(metrics("p1"), "pias_decapsulated_packets_total") > 0, "p1 (JAP) decapsulated");
    assert.equal(metric(metrics("p2"), "pias_jap_targets"), 0, "the IAP holds no target");
  });

  test("a reload (SIGHUP) keeps the groups the cluster installed: joined targets at the JAP, resolved JAPs at the IAP", async () => {
    for (const p of ["p1", "p2"]) daemons.get(p)!.kill("SIGHUP");
    await until("both reloaded", () => ["p1", "p2"].every((p) => /"msg":"config reloaded"/.test(logs.get(p)!)));
    const r = curl("/id", 2);
    assert.ok(r.ok, r.err);
    assert.deepEqual(r.out, ["t1", "t1"]);
  });

  test("a second target joins through another proxy and starts receiving new flows", async () => {
    const j = await startJoin("t2", "10.8.2.2", join(dir, "join.key"));
    await waitForLine(j, /joined/i);
    await until("t2 at p3", () => metric(metrics("p3"), "pias_jap_targets") === 1);
    const seen = new Set<string>();
    await until("flows reaching t2", () => {
      const r = curl();
      if (r.ok) seen.add(r.out[0]);
      return seen.has("t2");
    });
    for (let i = 0; i < 20; i++) {
      const r = curl();
      assert.ok(r.ok, r.err);
      seen.add(r.out[0]);
    }
    assert.deepEqual([...seen].sort(), ["t1", "t2"]);
  });

  // (An IAP that is itself a JAP of the group serves it with its own targets,
  // DESIGN.md §2 step 2, so the move here is between two proxies that are not.)
  test("with affinity, a client that BGP moves to another IAP (its nearest proxy shuts down gracefully) keeps its connections and targets", async () => {
    const holder = topo.start("c", ["python3", join(REPO_ROOT, "test", "e2e", "clients.py"), "hold", TA, "80", "4"]);
    const first = JSON.parse(await waitForLine(holder, /^\{"before"/)) as { before: string[] };
    assert.ok(first.before.every((t) => /^t[12]$/.test(t)), JSON.stringify(first));
    const p2 = daemons.get("p2")!;
    const exited = new Promise((r) => p2.once("exit", r));
    p2.kill("SIGTERM"); // GRACEFUL_SHUTDOWN: the router moves the client's region to p4 before p2 withdraws
    await waitNearest("c", "p4", 3000);
    holder.stdin!.write("\n");
    const done = JSON.parse(await waitForLine(holder, /"after"/)) as { before: string[]; after: string[] };
    assert.deepEqual(done.after, done.before);
    await exited;
    // p2 comes back: BGP makes it the client's nearest proxy again
    await restartProxy(proxies[1]);
    await waitNearest("c", "p2", 5000);
    await until("the client served through p2", () => curl().ok && metric(metrics("p2"), "pias_encapsulated_packets_total") > 0, 30_000);
  });

  /** Stop the client's nearest proxy (p2) with `signal` while the client runs a UDP loop and a long download; what the client saw. */
  const failover = async (signal: NodeJS.Signals): Promise<{ routeMovedMs: number; udpMaxGapMs: number; udpSent: number; udpLostBefore: number; udpLostAfter: number; tcpDownloadSurvived: boolean; tcp: string }> => {
    const udp = topo.start("c", ["python3", join(REPO_ROOT, "test", "e2e", "clients.py"), "udp-loop", TA, String(UDP_PORT), "8", "10"]);
    await waitForLine(udp, /^started/, 15_000);
    const download = topo.start("c", ["curl", "-s", "-S", "-o", "/dev/null", "--limit-rate", "2M", "--max-time", "30", "-w", "%{size_download} %{http_code}", `http://${TA}/big`]);
    let out = "";
    download.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    download.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    const downloaded = new Promise<number | null>((r) => download.once("exit", r));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await nearest("c"), "p2");
    udp.stdin!.write("\n"); // mark: datagrams lost from here on are the failover's
    daemons.get("p2")!.kill(signal);
    const moved = await waitNearest("c", "p4", 3000);
    const loop = JSON.parse(await waitForLine(udp, /maxGapMs/, 20_000)) as { sent: number; maxGapMs: number; lostBeforeMark: number; lostAfterMark: number };
    const status = await downloaded;
    const r = { routeMovedMs: Math.round(moved.ms), udpMaxGapMs: loop.maxGapMs, udpSent: loop.sent, udpLostBefore: loop.lostBeforeMark, udpLostAfter: loop.lostAfterMark, tcpDownloadSurvived: status === 0 && out.trim() === `${BIG} 200`, tcp: `${status}: ${out.trim()}` };
    await restartProxy(proxies[1]);
    await waitNearest("c", "p2", 5000);
    return r;
  };

  test("failover, measured: the client's nearest proxy stopped (SIGTERM: graceful shutdown) and killed (SIGKILL) during a UDP request/response loop and a long TCP download", async (t: TestContext) => {
    const j = await startJoin("t1", "10.8.1.2", join(dir, "join.key"), `udp:${TA}:${UDP_PORT}`, "7007");
    await waitForLine(j, /joined/i);
    await until("t1's UDP membership at p1", () => metric(metrics("p1"), "pias_jap_targets") === 2);
    const figures: Record<string, unknown> = {};
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      const f = await failover(signal);
      figures[signal] = f;
      t.diagnostic(`${signal} of the nearest proxy: the router moved the client's region in ${f.routeMovedMs} ms; UDP every 10 ms: longest gap ${f.udpMaxGapMs} ms, lost ${f.udpLostAfter} from the stop on (${f.udpLostBefore} before it) of ${f.udpSent}; 8 MiB TCP download at 2 MB/s under affinity: ${f.tcpDownloadSurvived ? "survived" : `broke (${f.tcp})`}`);
      assert.ok(f.udpMaxGapMs < 3000, `${signal}: UDP gap ${f.udpMaxGapMs} ms`);
      assert.ok(f.tcpDownloadSurvived, `${signal}: download ${f.tcp}`);
    }
    recordFigures("failover", figures);
    joiners.get(`t1 udp:${TA}:${UDP_PORT}`)!.kill("SIGTERM");
    await until("t1's UDP membership gone", () => metric(metrics("p1"), "pias_jap_targets") === 1);
  });

  test("a target that leaves stops receiving new flows", async () => {
    joiners.get(`t1 tcp:${TA}:80`)!.kill("SIGTERM");
    await until("t1 gone from p1", () => metric(metrics("p1"), "pias_jap_targets") === 0);
    // the RAP pushes the change; the IAP re-reads its answers every second
    let streak = 0;
    await until("the IAP's answer without p1", () => {
      const r = curl();
      streak = r.ok && r.out[0] === "t2" ? streak + 1 : 0;
      return streak >= 5;
    });
    for (let i = 0; i < 10; i++) assert.deepEqual(curl().out, ["t2"]);
  });

  test("a JAP that dies: BGP moves its region to the next proxy, its target re-joins there, the others forget it, and clients recover", async () => {
    daemons.get("p3")!.kill("SIGKILL");
    await waitNearest("t2", "p1", 5000); // p3's BIRD died with it: t2's keepalives now reach p1
    await until("t2 at p1", () => metric(metrics("p1"), "pias_jap_targets") === 1, 30_000);
    await until("p3 dead at p2", () => metric(metrics("p2"), "pias_cluster_live_proxies") === 3, 30_000);
    await until("clients served again", () => {
      const r = curl();
      return r.ok && r.out[0] === "t2";
    }, 30_000);
  });
});
