// `pias run` on a TUN device, end to end, in network namespaces this file
// creates and removes: a client, the proxy, and three targets joined by veth
// pairs. Real servers in the targets (python3 -m http.server, a UDP echo
// (servers.py), a TCP sink), real clients (curl, socat, ping, python) in the client
// namespace. No traffic leaves the namespaces.
//
//   client 10.10.0.2 --- 10.10.0.1 proxy 10.20.i.1 --- 10.20.i.2 target i (i = 1, 2, 3)
//                                    pias0 (TUN): 198.51.100.0/24 (anycast), 10.255.0.1 (NAT address)
//
// Target 3 is also a PIAS-aware target of a second group, behind a 1400-byte
// link: the tunnel MTU makes large packets trigger "fragmentation needed".

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";

const skip = netnsUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");
const SERVERS = join(REPO_ROOT, "test", "e2e", "servers.py");
const TA = "198.51.100.10";
const AWARE_TA = "198.51.100.20";
const targets = [1, 2, 3].map((i) => ({ name: `t${i}`, address: `10.20.${i}.2` }));

function config(extra: { weight3?: number; bad?: boolean } = {}): unknown {
  if (extra.bad) return { proxy: { address: "10.255.0.1" }, groups: [{ protocol: "tcp", address: TA }] };
  const health = { check: "http", path: "/id", intervalMs: 300, timeoutMs: 250, fall: 2, rise: 2 };
  return {
    proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"], tunnelMtu: 1400 },
    capacity: { flows: 65536, groups: 16, targets: 64 },
    // one worker: round-robin and weights are exact only within one core (with workers, per worker: test/e2e/workers.test.ts)
    daemon: { io: "tun", tunName: "pias0", metrics: "127.0.0.1:9464", drainMs: 1000, logLevel: "info", workers: 1 },
    groups: [
      {
        name: "web", protocol: "tcp", address: TA, port: 80, policy: "round-robin", health,
        targets: targets.map((t, i) => ({ address: t.address, port: 8080, weight: i === 2 ? (extra.weight3 ?? 1) : 1 })),
      },
      { name: "echo", protocol: "udp", address: TA, port: 53, policy: "round-robin", targets: targets.map((t) => ({ address: t.address, port: 5353 })) },
      { name: "ping", protocol: "icmp", address: TA, targets: targets.map((t) => ({ address: t.address })) },
      { name: "upload", protocol: "tcp", address: AWARE_TA, port: 9000, targets: [{ address: targets[2].address, port: 9000, aware: true }] },
    ],
  };
}

describe("pias run (TUN) between a client and three targets in network namespaces", { skip, timeout: 180_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-e2e-"));
  const configPath = join(dir, "pias.json");
  let daemon: ChildProcess;
  let log = "";
  const http: ChildProcess[] = [];
  /** Start target i's HTTP server (python's http.server looks its own name up before it listens: waitHttp()). */
  const startHttp = (i: number): void => {
    const t = targets[i];
    http[i] = topo.start(t.name, ["python3", "-m", "http.server", "8080", "--bind", t.address, "--protocol", "HTTP/1.1", "--directory", join(dir, t.name)]);
  };
  const waitHttp = async (): Promise<void> => {
    const t0 = Date.now();
    while (!targets.every((t) => topo.run("p", ["curl", "-s", "--max-time", "1", `http://${t.address}:8080/id`]).status === 0)) {
      if (Date.now() - t0 > 20_000) throw new Error("the targets' HTTP servers did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const curl = (path = "/id", times = 1): string[] => {
    const urls = Array.from({ length: times }, () => `http://${TA}${path}`);
    const r = topo.run("c", ["curl", "-s", "-S", "--max-time", "5", ...urls]);
    assert.equal(r.status, 0, `curl: ${r.stderr}\n${log.slice(-1500)}\n${metrics().split("\n").filter((l) => /^pias_target_(up|packets)/.test(l)).join("\n")}`);
    return r.stdout.trim().split("\n");
  };
  const metrics = (): string => topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
  const metric = (text: string, name: string): number => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line ? Number(line.split(" ").pop()) : 0;
  };
  /** Every target of the web group is up in the data plane (its health check passes). */
  const waitAllUp = async (timeoutMs = 10_000): Promise<void> => {
    const t0 = Date.now();
    while ((metrics().match(/pias_target_up\{group="tcp 198\.51\.100\.10:80",[^}]*\} 1/g) ?? []).length !== targets.length) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`not every target came up; log:\n${log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const waitLog = async (re: RegExp, timeoutMs = 10_000): Promise<void> => {
    const t0 = Date.now();
    while (!re.test(log)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`no log line ${re}; log:\n${log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    topo.addNamespace("c");
    topo.addNamespace("p");
    topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24");
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    for (const [i, t] of targets.entries()) {
      topo.addNamespace(t.name);
      topo.link("p", `10.20.${i + 1}.1/24`, t.name, `${t.address}/24`, i === 2 ? 1400 : 1500);
      topo.exec(t.name, ["ip", "route", "add", "default", "via", `10.20.${i + 1}.1`]);
      const www = join(dir, t.name);
      mkdirSync(www);
      writeFileSync(join(www, "id"), `${t.name}\n`);
      startHttp(i);
      await waitForLine(topo.start(t.name, ["python3", SERVERS, "udpecho", t.address, "5353", `${t.name}=`]), /^ready/);
    }
    // target 3: the TA on lo, a user-space IP-in-IP endpoint and a TCP sink for the upload group
    topo.exec("t3", ["ip", "addr", "add", `${AWARE_TA}/32`, "dev", "lo"]);
    const aware = topo.start("t3", [process.execPath, "--import", "tsx", join(REPO_ROOT, "test", "e2e", "aware-endpoint.ts"), targets[2].address], { cwd: REPO_ROOT });
    await waitForLine(aware, /^ready/);
    const sink = topo.start("t3", ["python3", join(REPO_ROOT, "test", "e2e", "sink.py"), "t3", AWARE_TA, "9000"]);
    await waitForLine(sink, /^ready/);

    await waitHttp();

    writeFileSync(configPath, JSON.stringify(config()));
    daemon = topo.start("p", [process.execPath, CLI, "run", "--config", configPath]);
    daemon.stdout!.on("data", (b: Buffer) => (log += b.toString()));
    daemon.stderr!.on("data", (b: Buffer) => (log += b.toString()));
    await waitLog(/"msg":"ready"/);
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("many TCP connections through the TA complete, spread round-robin over the targets, each on one target", () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      // two requests on one connection: both answered by the same target
      const [a, b] = curl("/id", 2);
      assert.match(a, /^t[123]$/);
      assert.equal(b, a, `one connection, two targets: ${a} then ${b}`);
      seen.set(a, (seen.get(a) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ["t1", "t2", "t3"]);
    for (const [t, n] of seen) assert.equal(n, 10, `round-robin: ${t} got ${n} of 30 connections: ${JSON.stringify([...seen])}`);
  });

  test("UDP request/response through the TA", () => {
    const replies = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = topo.run("c", ["socat", "-T", "2", "-", `UDP4:${TA}:53`], `hello ${i}\n`);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout.trim(), new RegExp(`^t[123]=hello ${i}$`));
      replies.add(r.stdout.trim().split("=")[0]);
    }
    assert.equal(replies.size, 3, `round-robin over the targets: ${[...replies]}`);
  });

  test("ICMP echo to the TA is answered by a target through the proxy", () => {
    const r = topo.run("c", ["ping", "-c", "3", "-i", "0.2", "-W", "2", TA]);
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /3 packets transmitted, 3 received/);
    assert.match(r.stdout, new RegExp(`from ${TA.replace(/\./g, "\\.")}`));
  });

  test("a PIAS-aware target behind a 1400-byte link: fragmentation-needed from the proxy, and the upload still completes", () => {
    const before = metric(metrics(), "pias_icmp_generated_total");
    const r = topo.run("c", ["python3", join(REPO_ROOT, "test", "e2e", "clients.py"), "upload", AWARE_TA, "9000", "300000"], undefined, 30_000);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "t3 300000");
    assert.ok(metric(metrics(), "pias_icmp_generated_total") > before, "the proxy sent fragmentation-needed");
    // the client learned the path MTU: 1400 minus the 20-byte tunnel header
    assert.match(topo.exec("c", ["ip", "route", "get", AWARE_TA]), /mtu 1380/);
  });

  test("metrics: packets, drops by reason, live flows, per-target flows and health", () => {
    const m = metrics();
    assert.ok(metric(m, "pias_packets_total") > 0);
    assert.ok(metric(m, "pias_forwarded_packets_total") > 0);
    assert.ok(metric(m, "pias_flows_live") > 0);
    for (const t of targets) {
      assert.match(m, new RegExp(`pias_target_up\\{group="tcp 198\\.51\\.100\\.10:80",target="${t.address.replace(/\./g, "\\.")}:8080"\\} 1`));
      assert.match(m, new RegExp(`pias_target_packets_total\\{group="tcp 198\\.51\\.100\\.10:80",target="${t.address.replace(/\./g, "\\.")}:8080"\\} [1-9]`));
    }
    assert.match(m, /pias_health_checks_total\{group="tcp 198\.51\.100\.10:80",target="10\.20\.1\.2:8080",result="ok"\} [1-9]/);
  });

  test("a target whose server dies is marked down by its health check: new connections avoid it, connections to the others are not disturbed", async () => {
    await waitAllUp();
    const holder = topo.start("c", ["python3", join(REPO_ROOT, "test", "e2e", "clients.py"), "hold", TA, "80", "6"]);
    const first = JSON.parse(await waitForLine(holder, /^\{"before"/)) as { before: string[] };
    assert.deepEqual([...first.before].sort(), ["t1", "t1", "t2", "t2", "t3", "t3"]);
    const downs = log.split('"msg":"target down"').length;
    http[1].kill("SIGKILL");
    try {
      await waitLog(/"target":"10\.20\.2\.2:8080".*"msg":"target down"/);
      assert.equal(log.split('"msg":"target down"').length, downs + 1, "only the dead target went down");
      for (let i = 0; i < 12; i++) assert.notEqual(curl()[0], "t2", "a new connection went to the dead target");
      holder.stdin!.write("\n");
      const done = JSON.parse(await waitForLine(holder, /"after"/)) as { before: string[]; after: string[] };
      const others = done.before.flatMap((t, i) => (t === "t2" ? [] : [i]));
      assert.deepEqual(others.map((i) => done.after[i]), others.map((i) => done.before[i]), "connections to the live targets were not disturbed");
      assert.match(metrics(), /pias_target_up\{group="tcp 198\.51\.100\.10:80",target="10\.20\.2\.2:8080"\} 0/);
    } finally {
      // leave the targets as the test found them
      startHttp(1);
      await waitHttp();
      await waitAllUp();
    }
  });

  test("SIGHUP reloads the config keeping live flows; a bad config is rejected with one log line and the old one stays", async () => {
    await waitAllUp();
    const reloads = (m: string, result: string): number => metric(m, `pias_config_reloads_total{result="${result}"}`);
    const m0 = metrics();
    const holder = topo.start("c", ["python3", join(REPO_ROOT, "test", "e2e", "clients.py"), "hold", TA, "80", "2"]);
    const first = JSON.parse(await waitForLine(holder, /^\{"before"/)) as { before: string[] };
    writeFileSync(configPath, JSON.stringify(config({ weight3: 3 })));
    daemon.kill("SIGHUP");
    await waitLog(/"msg":"config reloaded"/);
    writeFileSync(configPath, JSON.stringify(config({ bad: true })));
    daemon.kill("SIGHUP");
    await waitLog(/"msg":"config reload rejected; the running config stays"/);
    assert.match(log, /groups\[0\]\.port: required for tcp/);
    holder.stdin!.write("\n");
    const done = JSON.parse(await waitForLine(holder, /"after"/)) as { before: string[]; after: string[] };
    assert.deepEqual(done.after, first.before, "live connections keep their targets across reloads");
    // still serving with the reloaded config: weighted round-robin 1:1:3 over ten new connections
    const counts: Record<string, number> = {};
    for (let i = 0; i < 10; i++) {
      const t = curl()[0];
      counts[t] = (counts[t] ?? 0) + 1;
    }
    assert.deepEqual(counts, { t1: 2, t2: 2, t3: 6 }, "new connections follow the reloaded weights");
    const m = metrics();
    assert.equal(reloads(m, "ok") - reloads(m0, "ok"), 1);
    assert.equal(reloads(m, "rejected") - reloads(m0, "rejected"), 1);
  });

  test("SIGTERM drains and exits cleanly, removing its TUN device", async () => {
    const exited = new Promise<number | null>((r) => daemon.once("exit", (code) => r(code)));
    daemon.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(log, /"msg":"draining"/);
    assert.match(log, /"msg":"stopped"/);
    assert.doesNotMatch(topo.exec("p", ["ip", "link", "show"]), /pias0/);
  });
});
