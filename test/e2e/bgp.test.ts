// `pias run` announcing its anycast prefixes over BGP, end to end, in network
// namespaces this file creates and removes: a router running BIRD 2 (AS 65000)
// peers with the proxy's managed BIRD (AS 65001) over IPv4 and IPv6, installs
// what it learns in its kernel table, and a client reaches the groups through
// those routes only. No traffic leaves the namespaces.
//
//   client c 10.3.0.2 / 2001:db8:3::2 --- router r --- 10.1.0.2 / 2001:db8:1::2 proxy p --- target t 10.2.0.2 / 2001:db8:2::2
//                                         BIRD AS 65000         pias + BIRD AS 65001         http.server :8080
//
// The router also has 10.1.0.3, on which it runs no session (an unknown
// neighbour for the proxy), and nothing answers at 10.1.0.99 (a silent one).

import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";
import { TestBird, birdUnavailable, recordFigures, until } from "../helpers/bird.js";

const skip = netnsUnavailable() ?? birdUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");
const V4 = "198.51.100.0/24";
const V6 = "2001:db8:a::/48";
const HOLD = 3;

function routerConfig(): string {
  return `
log stderr all;
router id 10.1.0.1;
protocol device {}
protocol kernel { ipv4 { export all; }; }
protocol kernel { ipv6 { export all; }; }
protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
template bgp proxy {
  hold time ${HOLD};
  connect delay time 0;
  connect retry time 1;
  error wait time 1, 2;
  bfd on;
}
protocol bgp proxy4 from proxy { local 10.1.0.1 as 65000; neighbor 10.1.0.2 as 65001; ipv4 { import all; export none; }; }
protocol bgp proxy6 from proxy { local 2001:db8:1::1 as 65000; neighbor 2001:db8:1::2 as 65001; ipv6 { import all; export none; }; }
`;
}

interface Options {
  bfd?: boolean;
  announceV4?: boolean;
  birdConfig?: string;
  external?: string;
}

function proxyConfig(o: Options = {}): unknown {
  const announce = [...(o.announceV4 === false ? [] : [V4]), { prefix: V6, withdrawWhenNoTargets: false }];
  return {
    proxy: { address: "10.255.0.1", address6: "2001:db8:ff::1", anycastPrefixes: [V4, V6] },
    capacity: { flows: 4096, groups: 8, targets: 8 },
    daemon: { tunName: "pias0", metrics: "127.0.0.1:9464", drainMs: 0, logLevel: "debug" },
    groups: [
      {
        protocol: "tcp", address: "198.51.100.10", port: 80, targets: [{ address: "10.2.0.2", port: 8080 }],
        health: { check: "http", intervalMs: 200, timeoutMs: 150, fall: 2, rise: 1 },
      },
      { protocol: "tcp", address: "2001:db8:a::10", port: 80, targets: [{ address: "2001:db8:2::2", port: 8080 }] },
    ],
    bgp: o.external
      ? { bird: o.external, announce, gracefulShutdownMs: 1500 }
      : {
        localAs: 65001,
        neighbors: [
          { address: "10.1.0.1", as: 65000 },
          { address: "2001:db8:1::1", as: 65000 },
          { address: "10.1.0.3", as: 65000 },
          { address: "10.1.0.99", as: 65000 },
        ],
        holdTime: HOLD, bfd: o.bfd ?? false, communities: ["65001:100"], announce, gracefulShutdownMs: 1500,
        ...(o.birdConfig ? { birdConfig: o.birdConfig } : {}),
      },
  };
}

describe("pias run announces its prefixes over BGP to a BIRD router", { skip, timeout: 240_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-bgp-"));
  const configPath = join(dir, "pias.json");
  let router: TestBird;
  let routerLink = "";
  let daemon: ChildProcess;
  let log = "";
  let server: ChildProcess;
  let serve: () => ChildProcess;
  const figures: Record<string, number> = {};

  const metrics = (): string => topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
  const metricValues = (text: string, name: string): Record<string, number> =>
    Object.fromEntries(text.split("\n").filter((l) => l.startsWith(`${name}{`)).map((l) => [/"(.*)"/.exec(l)![1], Number(l.split(" ").pop())]));
  const logLines = (msg: string): Record<string, unknown>[] =>
    log.split("\n").filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
  const waitLog = async (re: RegExp, timeoutMs = 15_000): Promise<void> => {
    await until(`log ${re}`, async () => (re.test(log) ? true : undefined), timeoutMs, 50).catch((e: Error) => {
      throw new Error(`${e.message}\n${log.slice(-4000)}`);
    });
  };
  /** Routes the router has now for a prefix: "announced", "graceful" (with 65535:0) or "withdrawn". */
  const atRouter = async (prefix: string): Promise<string> => {
    const best = await router.best(prefix);
    return best === undefined ? "withdrawn" : best.communities.includes("65535:0") ? "graceful" : "announced";
  };
  const waitRouter = (prefix: string, state: string, timeoutMs = 15_000): Promise<{ ms: number }> =>
    until(`${prefix} ${state} at the router`, async () => ((await atRouter(prefix)) === state ? true : undefined), timeoutMs);

  const curl = (url: string): { ok: boolean; out: string; err: string } => {
    const r = topo.run("c", ["curl", "-s", "-S", "-g", "--max-time", "3", url]);
    return { ok: r.status === 0, out: r.stdout.trim(), err: r.stderr };
  };

  /** Start pias in p; resolves with the time the "ready" line came. */
  const startPias = async (o: Options = {}): Promise<number> => {
    writeFileSync(configPath, JSON.stringify(proxyConfig(o)));
    log = "";
    daemon = topo.start("p", [process.execPath, CLI, "run", "--config", configPath], { env: { ...process.env, RUNTIME_DIRECTORY: join(dir, "run") } });
    daemon.stdout!.on("data", (b: Buffer) => (log += b.toString()));
    daemon.stderr!.on("data", (b: Buffer) => (log += b.toString()));
    await waitForLine(daemon, /"msg":"ready"/);
    return performance.now();
  };
  const stopPias = async (signal: NodeJS.Signals): Promise<number | null> => {
    const exited = new Promise<number | null>((r) => daemon.once("exit", (code) => r(code)));
    daemon.kill(signal);
    return exited;
  };
  /** The managed BIRD's pid, from the "bgp BIRD started" line. */
  const birdPid = (): number => Number(logLines("bgp BIRD started").at(-1)!.pid);
  const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8").replace(/\(.*\)/, "x"));

  before(async () => {
    for (const n of ["r", "c", "p", "t"]) topo.addNamespace(n);
    for (const n of ["r", "p"]) {
      topo.sysctl(n, "net.ipv4.ip_forward", "1");
      topo.sysctl(n, "net.ipv6.conf.all.forwarding", "1");
    }
    const v6 = (ns: string, dev: string, addr: string): void => void topo.exec(ns, ["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
    const [cr, rc] = topo.link("c", "10.3.0.2/24", "r", "10.3.0.1/24");
    v6("c", cr, "2001:db8:3::2/64");
    v6("r", rc, "2001:db8:3::1/64");
    const [rp, pr] = topo.link("r", "10.1.0.1/24", "p", "10.1.0.2/24");
    routerLink = pr;
    topo.exec("r", ["ip", "addr", "add", "10.1.0.3/24", "dev", rp]);
    v6("r", rp, "2001:db8:1::1/64");
    v6("p", pr, "2001:db8:1::2/64");
    const [pt, tp] = topo.link("p", "10.2.0.1/24", "t", "10.2.0.2/24");
    v6("p", pt, "2001:db8:2::1/64");
    v6("t", tp, "2001:db8:2::2/64");
    for (const [ns, v4, v6gw] of [["c", "10.3.0.1", "2001:db8:3::1"], ["p", "10.1.0.1", "2001:db8:1::1"], ["t", "10.2.0.1", "2001:db8:2::1"]]) {
      topo.exec(ns, ["ip", "route", "add", "default", "via", v4]);
      topo.exec(ns, ["ip", "-6", "route", "add", "default", "via", v6gw]);
    }
    const www = join(dir, "www");
    mkdirSync(www);
    writeFileSync(join(www, "id"), "t\n");
    serve = (): ChildProcess => topo.start("t", ["python3", "-m", "http.server", "8080", "--bind", "::", "--directory", www]);
    server = serve();
    router = new TestBird(topo, "r", dir, routerConfig());
    await router.connection();
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the IPv4 and IPv6 prefixes reach the router within 5 s of ready, over IPv4 and IPv6 sessions, with the configured community, and clients are served through them", async (t: TestContext) => {
    const ready = await startPias();
    const [a4, a6] = await Promise.all([waitRouter(V4, "announced", 5000), waitRouter(V6, "announced", 5000)]);
    assert.ok(a4 && a6);
    figures.readyToRouteMs = performance.now() - ready;
    t.diagnostic(`ready -> both prefixes at the router: ${Math.round(figures.readyToRouteMs)} ms`);
    const r4 = (await router.best(V4))!;
    assert.equal(r4.proto, "proxy4");
    assert.deepEqual(r4.communities, ["65001:100"]);
    assert.equal(r4.asPath, "65001");
    assert.equal((await router.best(V6))!.proto, "proxy6");
    for (const url of ["http://198.51.100.10:80/id", "http://[2001:db8:a::10]:80/id"]) {
      const r = curl(url);
      assert.ok(r.ok && r.out === "t", `${url}: ${r.err}`);
    }
  });

  test("metrics and logs: both sessions up and both prefixes announced; an unknown and a silent neighbour log `not established` once each and stay 0", async () => {
    await waitLog(/"neighbor":"10\.1\.0\.99".*"msg":"bgp session not established"/, 15_000);
    await waitLog(/"neighbor":"10\.1\.0\.3".*"msg":"bgp session not established"/, 15_000);
    const m = metrics();
    assert.deepEqual(metricValues(m, "pias_bgp_session_up"), { "10.1.0.1": 1, "2001:db8:1::1": 1, "10.1.0.3": 0, "10.1.0.99": 0 });
    assert.deepEqual(metricValues(m, "pias_bgp_prefix_announced"), { [V4]: 1, [V6]: 1 });
    assert.deepEqual(logLines("bgp session up").map((l) => l.neighbor).sort(), ["10.1.0.1", "2001:db8:1::1"]);
    assert.equal(logLines("bgp session not established").length, 2);
    assert.deepEqual(logLines("bgp prefix announced").map((l) => l.prefix).sort(), [V6, V4].sort());
  });

  test("health: with every target of its groups down the IPv4 prefix is withdrawn (the IPv6 one, withdrawWhenNoTargets: false, stays), and announced again when one is back", async () => {
    server.kill("SIGKILL");
    await waitRouter(V4, "withdrawn", 10_000);
    assert.equal(await atRouter(V6), "announced");
    assert.equal(metricValues(metrics(), "pias_bgp_prefix_announced")[V4], 0);
    // the router can see the withdrawal before pias's log line is read back
    await waitLog(/"reason":"no target of its groups is up".*"msg":"bgp prefix withdrawn"/, 5_000);
    server = serve();
    await waitRouter(V4, "announced", 10_000);
  });

  test("reload: a prefix dropped from bgp.announce is withdrawn at once, and announced again when it is back; a reload that switches BIRD is rejected", async () => {
    writeFileSync(configPath, JSON.stringify(proxyConfig({ announceV4: false })));
    daemon.kill("SIGHUP");
    const w = await waitRouter(V4, "withdrawn", 5000);
    assert.ok(w.ms < 3000, `withdrawn ${w.ms} ms after SIGHUP`);
    assert.equal(await atRouter(V6), "announced");
    writeFileSync(configPath, JSON.stringify(proxyConfig()));
    daemon.kill("SIGHUP");
    await waitRouter(V4, "announced", 5000);
    writeFileSync(configPath, JSON.stringify(proxyConfig({ external: "/run/none.ctl" })));
    daemon.kill("SIGHUP");
    await waitLog(/bgp\.bird: switching BIRD needs a restart.*"msg":"config reload rejected; the running config stays"/);
    writeFileSync(configPath, JSON.stringify(proxyConfig()));
  });

  test("BIRD refusing a configuration (a broken birdConfig include) on reload: one log line, BIRD keeps the previous one and the routes stay", async () => {
    const bad = join(dir, "bad-include.conf");
    writeFileSync(bad, "protocol static { ipv4; route 192.0.2.0/33 blackhole; }\n");
    writeFileSync(configPath, JSON.stringify(proxyConfig({ birdConfig: bad })));
    daemon.kill("SIGHUP");
    await waitLog(/"msg":"bgp BIRD refused the new configuration; it keeps the previous one"/);
    assert.match(JSON.stringify(logLines("bgp BIRD refused the new configuration; it keeps the previous one")[0]), /bad-include\.conf:1/);
    assert.equal(await atRouter(V4), "announced");
    assert.ok(curl("http://198.51.100.10:80/id").ok);
    writeFileSync(configPath, JSON.stringify(proxyConfig()));
    daemon.kill("SIGHUP");
    await waitLog(/"msg":"bgp BIRD reconfigured"/);
  });

  test("a managed BIRD that dies is logged, restarted, and announces again", async () => {
    const pid = birdPid();
    process.kill(pid, "SIGKILL");
    await waitLog(/"msg":"bgp BIRD exited"/);
    await until("a new BIRD", async () => (logLines("bgp BIRD started").length >= 2 ? true : undefined), 10_000);
    assert.notEqual(birdPid(), pid);
    await waitRouter(V4, "announced", 10_000);
    await waitRouter(V6, "announced", 10_000);
  });

  test("SIGTERM: the router sees the prefixes with GRACEFUL_SHUTDOWN (65535:0) before they are withdrawn, then pias exits 0 and its BIRD is gone", async (t: TestContext) => {
    const pid = birdPid();
    const t0 = performance.now();
    const exit = stopPias("SIGTERM");
    const gs = await waitRouter(V4, "graceful", 3000);
    assert.equal((await router.best(V4))!.communities.join(" "), "65001:100 65535:0");
    await waitRouter(V6, "graceful", 3000);
    const w = await waitRouter(V4, "withdrawn", 5000);
    const withdrawnAt = performance.now() - t0;
    assert.equal(await exit, 0);
    assert.ok(withdrawnAt >= 1400, `withdrawn ${withdrawnAt} ms after SIGTERM: the graceful phase is 1500 ms`);
    assert.equal(await atRouter(V6), "withdrawn");
    assert.equal(alive(pid), false);
    figures.sigtermGracefulMs = gs.ms;
    figures.sigtermWithdrawnMs = withdrawnAt;
    t.diagnostic(`SIGTERM -> 65535:0 at the router ${Math.round(gs.ms)} ms, withdrawn ${Math.round(withdrawnAt)} ms (graceful phase 1500 ms; ${Math.round(w.ms)} ms after it was seen)`);
  });

  test("SIGKILL: the managed BIRD dies with pias and the router drops the routes within holdTime", async (t: TestContext) => {
    const ready = await startPias();
    const started = daemon;
    t.after(() => void started.kill("SIGKILL")); // (a failure below must not leave it holding the metrics port)
    await waitRouter(V4, "announced", 5000);
    figures.restartReadyToRouteMs = performance.now() - ready;
    await waitLog(/"msg":"bgp BIRD started"/); // (its line may come after the routes: seen once, 46 ms after ready)
    const pid = birdPid();
    assert.equal(alive(pid), true);
    const t0 = performance.now();
    const exited = stopPias("SIGKILL");
    await waitRouter(V4, "withdrawn", HOLD * 1000);
    const ms = performance.now() - t0;
    await waitRouter(V6, "withdrawn", HOLD * 1000);
    await until("BIRD gone", async () => (alive(pid) ? undefined : true), 2000);
    await exited;
    figures.sigkillWithdrawnMs = ms;
    t.diagnostic(`SIGKILL of pias -> BIRD gone and the route withdrawn at the router: ${Math.round(ms)} ms (holdTime ${HOLD} s)`);
  });

  /** Silence the proxy's link to the router (no FIN, no RST: a dead box) and time the router's withdrawal. */
  const silenceAndTime = async (): Promise<number> => {
    topo.exec("p", ["nft", "add", "table", "inet", "silence"]);
    topo.exec("p", ["nft", "add", "chain", "inet", "silence", "in", "{ type filter hook input priority 0; policy accept; }"]);
    topo.exec("p", ["nft", "add", "chain", "inet", "silence", "out", "{ type filter hook output priority 0; policy accept; }"]);
    const t0 = performance.now();
    topo.exec("p", ["nft", "add", "rule", "inet", "silence", "in", "iifname", routerLink, "drop"]);
    topo.exec("p", ["nft", "add", "rule", "inet", "silence", "out", "oifname", routerLink, "drop"]);
    await waitRouter(V4, "withdrawn", (HOLD + 2) * 1000);
    const ms = performance.now() - t0;
    topo.exec("p", ["nft", "delete", "table", "inet", "silence"]);
    return ms;
  };

  test("a proxy gone silent (no FIN): the router drops its routes within holdTime, and within 1 s with BFD", async (t: TestContext) => {
    await startPias();
    await waitRouter(V4, "announced", 5000);
    const plain = await silenceAndTime();
    assert.ok(plain <= HOLD * 1000 + 500, `withdrawn ${plain} ms after silence, holdTime ${HOLD} s`);
    await stopPias("SIGKILL");
    await startPias({ bfd: true });
    await waitRouter(V4, "announced", 5000);
    await until("the BFD session up at the router", async () => ((await router.command("show bfd sessions")).lines.some((l) => /\sUp\s/.test(l.text)) ? true : undefined), 5000);
    const bfd = await silenceAndTime();
    assert.ok(bfd < 1000, `withdrawn ${bfd} ms after silence with BFD`);
    await stopPias("SIGKILL");
    figures.silentWithdrawnMs = plain;
    figures.silentBfdWithdrawnMs = bfd;
    t.diagnostic(`silent proxy -> withdrawn at the router: ${Math.round(plain)} ms (holdTime ${HOLD} s), with BFD ${Math.round(bfd)} ms`);
  });

  test("BIRD refusing the generated configuration at start (a broken include): one log line, sessions 0, the data plane runs", async () => {
    const bad = join(dir, "bad-include.conf");
    await startPias({ birdConfig: bad });
    await waitLog(/"msg":"bgp BIRD not running"/);
    const line = logLines("bgp BIRD not running")[0];
    assert.match(String(line.err), /^BIRD refused the generated configuration: .*bad-include\.conf:1:\d+ /);
    assert.equal(logLines("bgp BIRD not running").length, 1);
    const m = metrics();
    assert.deepEqual(metricValues(m, "pias_bgp_session_up"), { "10.1.0.1": 0, "2001:db8:1::1": 0, "10.1.0.3": 0, "10.1.0.99": 0 });
    assert.deepEqual(metricValues(m, "pias_bgp_prefix_announced"), { [V4]: 0, [V6]: 0 });
    // the data plane serves: the proxy's own namespace reaches the group through the TUN device
    const r = topo.run("p", ["curl", "-s", "--max-time", "3", "http://198.51.100.10:80/id"]);
    assert.equal(r.stdout.trim(), "t", r.stderr);
    await stopPias("SIGKILL");
  });

  test("external mode: pias drives only its protocols in an operator's BIRD (the README snippet), gracefully on SIGTERM, and the operator's BIRD and session stay", async () => {
    const { prefixStatics } = await import("../../src/bgp/bird-config.js");
    const operator = new TestBird(topo, "p", dir, `
log stderr all;
router id 10.1.0.2;
protocol device {}
${prefixStatics(V4, "withdrawn")}
${prefixStatics(V6, "withdrawn")}
protocol bgp up4 { connect delay time 0; local 10.1.0.2 as 65001; neighbor 10.1.0.1 as 65000; ipv4 { import none; export where proto ~ "pias_*"; }; }
protocol bgp up6 { connect delay time 0; local 2001:db8:1::2 as 65001; neighbor 2001:db8:1::1 as 65000; ipv6 { import none; export where proto ~ "pias_*"; }; }
`);
    await operator.connection();
    await startPias({ external: operator.socket });
    await waitRouter(V4, "announced", 5000);
    await waitRouter(V6, "announced", 5000);
    // the operator's sessions, found in its BIRD, named by their neighbour
    await until("sessions reported", async () => (JSON.stringify(metricValues(metrics(), "pias_bgp_session_up")) === JSON.stringify({ "10.1.0.1": 1, "2001:db8:1::1": 1 }) ? true : undefined), 5000);
    const exit = stopPias("SIGTERM");
    await waitRouter(V4, "graceful", 3000);
    await waitRouter(V4, "withdrawn", 5000);
    assert.equal(await exit, 0);
    assert.equal(operator.process.exitCode, null, "the operator's BIRD still runs");
    assert.ok((await router.command("show protocols proxy4")).lines.some((l) => /Established/.test(l.text)), "its session stays up");
    await operator.stop();
  });

  after(() => recordFigures("bgp", Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Math.round(v)]))));
});
