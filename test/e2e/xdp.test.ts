// `pias run` with the AF_XDP backend (daemon.io: xdp), end to end, in network
// namespaces this file creates and removes: a client, the proxy and three
// targets joined by veth pairs, pias on all four of the proxy's interfaces
// with native XDP. Real servers in the targets (python3 -m http.server, a UDP
// echo (servers.py), TCP sinks), real clients (curl, socat, ping, python) in the
// client namespace. No traffic leaves the namespaces.
//
//   client 10.10.0.2 --- 10.10.0.1 proxy 10.20.i.1 --- 10.20.i.2 target i (i = 1, 2, 3)
//                        pias serves 198.51.100.0/24 (anycast) and 10.255.0.1 (NAT address)
//
// Target 3 is also a PIAS-aware target of a second group, behind a 1400-byte
// link: the tunnel MTU makes large packets trigger "fragmentation needed".
//
// Offloads: the client and the targets compute their checksums (tx off). A
// frame pias takes through AF_XDP skips the kernel's stack, so nothing would
// finish a checksum a sender left "partial" for a NIC; veth turns off GSO
// super-packets toward an interface with an XDP program by itself. Native XDP
// on veth needs nothing of the peers here: only XDP_TX or a redirect *into* a
// veth needs the peer to run an XDP program (or have GRO on), and AF_XDP's
// transmit path in copy mode is the ordinary one.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { xdpUnavailable } from "../../src/io/xdp.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";

const why = xdpUnavailable();
const skip = why ? `AF_XDP: ${why}` : netnsUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");
const CLIENTS = join(REPO_ROOT, "test", "e2e", "clients.py");
const SERVERS = join(REPO_ROOT, "test", "e2e", "servers.py");
const TA = "198.51.100.10";
const AWARE_TA = "198.51.100.20";
const BULK = 200 << 20;
const targets = [1, 2, 3].map((i) => ({ name: `t${i}`, address: `10.20.${i}.2` }));

describe("pias run (AF_XDP) between a client and three targets in network namespaces", { skip, timeout: 300_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-xdp-e2e-"));
  const configPath = join(dir, "pias.json");
  const proxyIfs: string[] = [];
  let daemon: ChildProcess;
  let log = "";
  const http: ChildProcess[] = [];

  function config(extra: { weight3?: number; bad?: boolean; groups?: number } = {}): unknown {
    if (extra.bad) return { proxy: { address: "10.255.0.1" }, groups: [{ protocol: "tcp", address: TA }] };
    const health = { check: "http", path: "/id", intervalMs: 300, timeoutMs: 250, fall: 2, rise: 2 };
    // groups that only take room in the core: a reload with many of them grows its memory
    const filler = Array.from({ length: extra.groups ?? 0 }, (_, i) => ({ protocol: "udp", address: TA, port: 10000 + i, targets: [{ address: targets[0].address, port: 7 }] }));
    return {
      proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"], tunnelMtu: 1400 },
      capacity: { flows: 65536, groups: 4096, targets: 4096 },
      daemon: { io: "xdp", xdpInterfaces: proxyIfs, xdpMode: "native", metrics: "127.0.0.1:9464", drainMs: 1000, logLevel: "info" },
      groups: [
        {
          name: "web", protocol: "tcp", address: TA, port: 80, policy: "round-robin", health,
          targets: targets.map((t, i) => ({ address: t.address, port: 8080, weight: i === 2 ? (extra.weight3 ?? 1) : 1 })),
        },
        { name: "bulk", protocol: "tcp", address: TA, port: 9100, targets: [{ address: targets[0].address, port: 9100 }] },
        { name: "echo", protocol: "udp", address: TA, port: 53, policy: "round-robin", targets: targets.map((t) => ({ address: t.address, port: 5353 })) },
        { name: "ping", protocol: "icmp", address: TA, targets: targets.map((t) => ({ address: t.address })) },
        { name: "upload", protocol: "tcp", address: AWARE_TA, port: 9000, targets: [{ address: targets[2].address, port: 9000, aware: true }] },
        ...filler,
      ],
    };
  }

  const curl = (path = "/id", times = 1): string[] => {
    const urls = Array.from({ length: times }, () => `http://${TA}${path}`);
    const r = topo.run("c", ["curl", "-s", "-S", "--max-time", "5", ...urls]);
    assert.equal(r.status, 0, `curl: ${r.stderr}\n${log.slice(-1500)}`);
    return r.stdout.trim().split("\n");
  };
  const metrics = (): string => topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
  const metric = (text: string, name: string): number => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line ? Number(line.split(" ").pop()) : 0;
  };
  const waitLog = async (re: RegExp, timeoutMs = 10_000): Promise<void> => {
    const t0 = Date.now();
    while (!re.test(log)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`no log line ${re}; log:\n${log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const startDaemon = async (): Promise<ChildProcess> => {
    log = "";
    const d = topo.start("p", [process.execPath, CLI, "run", "--config", configPath]);
    d.stdout!.on("data", (b: Buffer) => (log += b.toString()));
    d.stderr!.on("data", (b: Buffer) => (log += b.toString()));
    await waitLog(/"msg":"ready"/);
    return d;
  };
  const xdpAttached = (): number => proxyIfs.filter((i) => /prog\/xdp /.test(topo.exec("p", ["ip", "-d", "link", "show", i]))).length;

  before(async () => {
    topo.addNamespace("c");
    topo.addNamespace("p");
    const [clientIf, proxyIf] = topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24");
    proxyIfs.push(proxyIf);
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    topo.exec("c", ["ethtool", "-K", clientIf, "tx", "off"]);
    for (const [i, t] of targets.entries()) {
      topo.addNamespace(t.name);
      const [pIf, tIf] = topo.link("p", `10.20.${i + 1}.1/24`, t.name, `${t.address}/24`, i === 2 ? 1400 : 1500);
      proxyIfs.push(pIf);
      topo.exec(t.name, ["ethtool", "-K", tIf, "tx", "off"]);
      topo.exec(t.name, ["ip", "route", "add", "default", "via", `10.20.${i + 1}.1`]);
      const www = join(dir, t.name);
      mkdirSync(www);
      writeFileSync(join(www, "id"), `${t.name}\n`);
      http.push(topo.start(t.name, ["python3", "-m", "http.server", "8080", "--bind", t.address, "--protocol", "HTTP/1.1", "--directory", www]));
      await waitForLine(topo.start(t.name, ["python3", SERVERS, "udpecho", t.address, "5353", `${t.name}=`]), /^ready/);
    }
    const bulk = topo.start("t1", ["python3", join(REPO_ROOT, "test", "e2e", "sink.py"), "t1", targets[0].address, "9100", "sha256"]);
    await waitForLine(bulk, /^ready/);
    topo.exec("t3", ["ip", "addr", "add", `${AWARE_TA}/32`, "dev", "lo"]);
    const aware = topo.start("t3", [process.execPath, "--import", "tsx", join(REPO_ROOT, "test", "e2e", "aware-endpoint.ts"), targets[2].address], { cwd: REPO_ROOT });
    await waitForLine(aware, /^ready/);
    const sink = topo.start("t3", ["python3", join(REPO_ROOT, "test", "e2e", "sink.py"), "t3", AWARE_TA, "9000"]);
    await waitForLine(sink, /^ready/);
    // the proxy host routes for the targets: the aware target's direct replies to the client pass
    // through its kernel (the XDP program leaves them alone, they are not to a served address)
    topo.sysctl("p", "net.ipv4.ip_forward", "1");
    // the proxy host's own service, which the XDP program must leave to the kernel (an SSH stand-in)
    topo.start("p", ["socat", "TCP-LISTEN:2222,bind=10.10.0.1,fork,reuseaddr", "EXEC:cat"]);

    const t0 = Date.now();
    while (!targets.every((t) => topo.run("p", ["curl", "-s", "--max-time", "1", `http://${t.address}:8080/id`]).status === 0)) {
      if (Date.now() - t0 > 20_000) throw new Error("the targets' HTTP servers did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    topo.exec("p", ["ping", "-c", "1", "-W", "2", "10.10.0.2"]); // the client's MAC in the neighbour table
    writeFileSync(configPath, JSON.stringify(config()));
    daemon = await startDaemon();
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the program is attached in native mode to all four interfaces, and the log says which mode each runs in", () => {
    assert.equal(xdpAttached(), 4);
    assert.match(log, /"io":"xdp [^"]*\(native, copy, 1 queue\)/);
  });

  test("a 200 MB TCP transfer through the TA arrives whole: sha256 equal at both ends", () => {
    const r = topo.run("c", ["python3", CLIENTS, "random", TA, "9100", String(BULK)], undefined, 180_000);
    assert.equal(r.status, 0, r.stderr);
    const [sent, reply] = r.stdout.trim().split("\n");
    const [bytes, sha] = sent.split(" ");
    assert.equal(reply, `t1 ${bytes} ${sha}`, "the target received every byte, in order");
    assert.equal(Number(bytes), BULK);
  });

  test("many TCP connections through the TA complete, spread round-robin over the targets, each on one target", () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const [a, b] = curl("/id", 2);
      assert.match(a, /^t[123]$/);
      assert.equal(b, a, `one connection, two targets: ${a} then ${b}`);
      seen.set(a, (seen.get(a) ?? 0) + 1);
    }
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
  });

  test("a PIAS-aware target behind a 1400-byte link: IP-in-IP, fragmentation-needed from the proxy, and the upload completes", () => {
    const before = metrics();
    const r = topo.run("c", ["python3", CLIENTS, "upload", AWARE_TA, "9000", "300000"], undefined, 30_000);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "t3 300000");
    const after = metrics();
    assert.ok(metric(after, "pias_icmp_generated_total") > metric(before, "pias_icmp_generated_total"), "the proxy sent fragmentation-needed");
    assert.ok(metric(after, "pias_encapsulated_packets_total") > metric(before, "pias_encapsulated_packets_total"), "tunnelled");
    assert.match(topo.exec("c", ["ip", "route", "get", AWARE_TA]), /mtu 1380/);
  });

  test("metrics: the backend's frames by state add up to the UMEM, and no frame came back in a wrong state", () => {
    const m = metrics();
    const states = ["free", "fill", "rx", "core", "held", "tx", "completion"].map((s) => metric(m, `pias_io_frames{state="${s}"}`));
    assert.ok(states.reduce((a, b) => a + b, 0) > 0);
    assert.equal(metric(m, 'pias_io_packets_total{event="frameErrors"}'), 0);
    assert.ok(metric(m, 'pias_io_packets_total{event="programRedirected"}') > 0);
    assert.ok(metric(m, 'pias_io_packets_total{event="programPassed"}') > 0, "the kernel kept ARP and the health checks' replies");
  });

  test("a target whose server dies is marked down by its health check: new connections avoid it, connections to the others are not disturbed", async () => {
    const holder = topo.start("c", ["python3", CLIENTS, "hold", TA, "80", "6"]);
    const first = JSON.parse(await waitForLine(holder, /^\{"before"/)) as { before: string[] };
    assert.deepEqual([...first.before].sort(), ["t1", "t1", "t2", "t2", "t3", "t3"]);
    http[1].kill("SIGKILL");
    await waitLog(/"target":"10\.20\.2\.2:8080".*"msg":"target down"/);
    for (let i = 0; i < 12; i++) assert.notEqual(curl()[0], "t2", "a new connection went to the dead target");
    holder.stdin!.write("\n");
    const done = JSON.parse(await waitForLine(holder, /"after"/)) as { before: string[]; after: string[] };
    done.before.forEach((t, i) => {
      if (t !== "t2") assert.equal(done.after[i], t, `connection ${i} to ${t} was disturbed: ${done.after[i]}`);
    });
  });

  test("SIGHUP reloads the config (2000 more groups: the core's memory grows under the UMEM) keeping live flows; a bad config is rejected", async () => {
    const holder = topo.start("c", ["python3", CLIENTS, "hold", TA, "80", "2"]);
    const first = JSON.parse(await waitForLine(holder, /^\{"before"/)) as { before: string[] };
    writeFileSync(configPath, JSON.stringify(config({ weight3: 3, groups: 2000 })));
    daemon.kill("SIGHUP");
    await waitLog(/"msg":"config reloaded"/);
    writeFileSync(configPath, JSON.stringify(config({ bad: true })));
    daemon.kill("SIGHUP");
    await waitLog(/"msg":"config reload rejected; the running config stays"/);
    holder.stdin!.write("\n");
    const done = JSON.parse(await waitForLine(holder, /"after"/)) as { before: string[]; after: string[] };
    assert.deepEqual(done.after, first.before, "live connections keep their targets across reloads");
    assert.match(curl()[0], /^t[13]$/, "still serving, from the same UMEM (a moved memory would have stopped pias)");
    assert.ok(!/EXDPMOVED|memory moved/.test(log), "no memory moved");
    assert.equal(daemon.exitCode, null);
  });

  test("SIGTERM drains and exits cleanly, detaching the program from every interface", async () => {
    const exited = new Promise<number | null>((r) => daemon.once("exit", (code) => r(code)));
    daemon.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(log, /"msg":"draining"/);
    assert.match(log, /"msg":"stopped"/);
    assert.equal(xdpAttached(), 0);
  });

  test("SIGKILL: a TCP connection to the proxy host's own address keeps working throughout, and the kernel removes the program", async () => {
    writeFileSync(configPath, JSON.stringify(config()));
    const victim = await startDaemon();
    assert.equal(xdpAttached(), 4);
    const ssh = topo.start("c", ["python3", CLIENTS, "echo", "10.10.0.1", "2222"]);
    await waitForLine(ssh, /^connected/);
    assert.deepEqual(curl()[0].length > 0, true, "pias serves the TA meanwhile");
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise((r) => victim.once("exit", r));
    victim.kill("SIGKILL");
    await exited;
    for (let i = 0; i < 50 && xdpAttached() > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(xdpAttached(), 0, "no program left on any interface");
    await new Promise((r) => setTimeout(r, 300));
    ssh.stdin!.write("\n");
    const r = JSON.parse(await waitForLine(ssh, /"sent"/)) as { sent: number; echoed: number; error: string | null };
    assert.equal(r.error, null);
    assert.ok(r.echoed >= 8, `echoes before and after the kill: ${JSON.stringify(r)}`);
    assert.equal(r.echoed, r.sent);
    const ping = topo.run("c", ["ping", "-c", "1", "-W", "2", "10.10.0.1"]);
    assert.equal(ping.status, 0);
  });
});
