// `pias run` on an offloaded, multi-queue TUN with two workers, end to end,
// in network namespaces this file creates and removes: a client, the proxy,
// a legacy target and a PIAS-aware target (user-space IP-in-IP endpoint,
// test/e2e/aware-endpoint.ts). Real servers and clients (python, socat).
//
//   client 10.10.0.2 --- 10.10.0.1 proxy 10.20.1.1 --- 10.20.1.2 legacy target
//                                        10.20.2.1 --- 10.20.2.2 aware target (198.51.100.20 on lo)
//
// Shows: 200 MiB arrive intact (sha256 at both ends) through TSO super-packets
// NATed whole (legacy) and cut by the core (aware, whose tunnel also makes
// the client learn the path MTU); 1000 short TCP connections and a UDP
// exchange of 200 flows complete with both workers taking flows and none of
// their replies reaching the other worker; and when the kernel refuses the
// steering program, multi-queue or the offloads, one log line and the plain
// path, still forwarding.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";
import { PiasRun } from "../helpers/pias-run.js";

const skip = netnsUnavailable();
const CLIENTS = join(REPO_ROOT, "test", "e2e", "clients.py");
const SERVERS = join(REPO_ROOT, "test", "e2e", "servers.py");
const TA = "198.51.100.10";
const AWARE_TA = "198.51.100.20";
const LEGACY = "10.20.1.2";
const AWARE = "10.20.2.2";

const config = {
  proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"], tunnelMtu: 1500 },
  capacity: { flows: 65536, groups: 8, targets: 8 },
  daemon: { io: "tun", tunName: "piasw", metrics: "127.0.0.1:9464", drainMs: 500, logLevel: "info", workers: 2, tunOffload: true },
  groups: [
    { protocol: "tcp", address: TA, port: 9000, targets: [{ address: LEGACY, port: 9000 }] },
    { protocol: "tcp", address: TA, port: 7, targets: [{ address: LEGACY, port: 7 }] },
    { protocol: "udp", address: TA, port: 53, targets: [{ address: LEGACY, port: 5353 }] },
    { protocol: "tcp", address: AWARE_TA, port: 9000, targets: [{ address: AWARE, port: 9000, aware: true }] },
  ],
};

describe("pias run with two workers on an offloaded multi-queue TUN", { skip, timeout: 600_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-workers-"));
  const configPath = join(dir, "pias.json");
  const pias = new PiasRun(topo, "p", configPath);

  const metrics = (): string => topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
  const metric = (text: string, name: string): number => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(" ").pop()) : 0;
  };
  const client = (args: string[], timeoutMs = 120_000): string => {
    const r = topo.run("c", ["python3", CLIENTS, ...args], undefined, timeoutMs);
    assert.equal(r.status, 0, `clients.py ${args.join(" ")}: ${r.stderr}\n${pias.log.slice(-2000)}`);
    return r.stdout.trim();
  };


  before(async () => {
    topo.addNamespace("c");
    topo.addNamespace("p");
    topo.addNamespace("t1");
    topo.addNamespace("t2");
    topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24");
    topo.link("p", "10.20.1.1/24", "t1", `${LEGACY}/24`);
    topo.link("p", "10.20.2.1/24", "t2", `${AWARE}/24`);
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    topo.exec("t1", ["ip", "route", "add", "default", "via", "10.20.1.1"]);
    topo.exec("t2", ["ip", "route", "add", "default", "via", "10.20.2.1"]);
    for (const [ns, addr, mode, port] of [["t1", LEGACY, "hash", "9000"], ["t1", LEGACY, "echo", "7"], ["t2", AWARE_TA, "hash", "9000"]]) {
      if (ns === "t2" && mode === "hash") topo.exec("t2", ["ip", "addr", "add", `${AWARE_TA}/32`, "dev", "lo"]);
      await waitForLine(topo.start(ns, ["python3", SERVERS, mode, addr, port]), /^ready/);
    }
    await waitForLine(topo.start("t1", ["python3", SERVERS, "udpecho", LEGACY, "5353"]), /^ready/);
    await waitForLine(topo.start("t2", [process.execPath, "--import", "tsx", join(REPO_ROOT, "test", "e2e", "aware-endpoint.ts"), AWARE], { cwd: REPO_ROOT }), /^ready/);
    writeFileSync(configPath, JSON.stringify(config));
    await pias.start();
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("it runs two workers on an offloaded TUN", () => {
    assert.match(pias.log, /"io":"tun piasw \(\w+, offload CSUM\|TSO4\|TSO6[^"]*\), 2 workers"/);
  });

  test("200 MiB to a legacy target arrive intact (sha256 equal at both ends), NATed as TSO super-packets", () => {
    const before = metric(metrics(), "pias_super_packets_total");
    const r = JSON.parse(client(["bulk", TA, "9000", "200"]));
    assert.equal(r.reply, `${r.sent} ${r.bytes}`, "the target received exactly what the client sent");
    assert.ok(metric(metrics(), "pias_super_packets_total") > before, "super-packets went through the core");
  });

  test("200 MiB to a PIAS-aware target arrive intact: super-packets cut into segments by the core, path MTU per segment", () => {
    const m0 = metrics();
    const r = JSON.parse(client(["bulk", AWARE_TA, "9000", "200"], 300_000));
    assert.equal(r.reply, `${r.sent} ${r.bytes}`, "the target received exactly what the client sent");
    const m1 = metrics();
    assert.ok(metric(m1, "pias_segmented_total") > metric(m0, "pias_segmented_total"), "the core segmented super-packets");
    assert.ok(metric(m1, "pias_segments_total") > metric(m1, "pias_segmented_total"));
    // a 1448-byte segment does not fit the 1500-byte tunnel: the client learned 1480 from the proxy
    assert.match(topo.exec("c", ["ip", "route", "get", AWARE_TA]), /mtu 1480/);
  });

  test("1000 short TCP connections and 200 UDP flows complete; both workers take flows and no reply ever reaches the other worker", () => {
    const m0 = metrics();
    const counters = (): string => metrics().split("\n").filter((l) => /^pias_(dropped|worker|wrong|packets_total|forwarded|io_packets)/.test(l)).join("\n");
    assert.equal(client(["many", TA, "7", "1000"], 300_000), "1000", counters());
    assert.equal(client(["udp", TA, "53", "200"], 300_000), "200", counters());
    const m1 = metrics();
    const created = (m: string, w: number): number => metric(m, `pias_worker_flows_created_total{worker="${w}"}`);
    for (const w of [0, 1]) assert.ok(created(m1, w) - created(m0, w) > 100, `worker ${w} created ${created(m1, w) - created(m0, w)} flows of 1200`);
    assert.equal(metric(m1, "pias_wrong_worker_packets_total"), 0, "a reply reached the worker that does not own its NAT port");
    assert.equal(metric(m1, 'pias_dropped_packets_total{reason="not-for-proxy"}'), 0);
  });

  test("the kernel refusing the steering program: one log line, one worker, still forwarding", async () => {
    await pias.stop();
    await pias.start({ PIAS_TUN_REFUSE: "steering" });
    assert.equal(pias.log.split("\n").filter((l) => /one worker: no TUN steering program: refused \(test\)/.test(l)).length, 1);
    assert.doesNotMatch(pias.log, /2 workers/);
    assert.equal(client(["many", TA, "7", "20"]), "20");
  });

  test("the kernel refusing multi-queue: one log line, one worker, still forwarding", async () => {
    await pias.stop();
    await pias.start({ PIAS_TUN_REFUSE: "multi-queue" });
    assert.equal(pias.log.split("\n").filter((l) => /the kernel refused a multi-queue TUN device/.test(l)).length, 1);
    assert.match(pias.log, /one worker: the TUN device is not multi-queue/);
    assert.equal(client(["many", TA, "7", "20"]), "20");
  });

  test("the kernel refusing every offload: its lines, the plain path (no virtio-net header), still forwarding intact", async () => {
    await pias.stop();
    await pias.start({ PIAS_TUN_REFUSE: "offload" });
    assert.match(pias.log, /no TUN offload accepted: plain path \(no virtio-net header\)/);
    assert.match(pias.log, /"io":"tun piasw \(\w+, no offload\), 2 workers"/);
    const r = JSON.parse(client(["bulk", TA, "9000", "20"]));
    assert.equal(r.reply, `${r.sent} ${r.bytes}`);
    assert.equal(metric(metrics(), "pias_super_packets_total"), 0);
    await pias.stop();
  });
});
