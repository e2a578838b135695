// `pias run` with the pcap backend (node_pcap), end to end, in network
// namespaces this file creates and removes: a one-armed proxy on a router.
//
//   client 10.30.1.2 --- router --- 10.30.3.2 target (python3 -m http.server, a UDP echo)
//                          |
//                     10.30.2.2 proxy (pias on its only interface; the router sends it
//                               198.51.100.0/24 and the NAT address 10.255.0.1)
//
// The proxy's kernel does not forward and owns neither address, so only pias
// answers what it captures; it injects frames addressed to the router.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync, type ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";

function pcapUnavailable(): string | undefined {
  try {
    createRequire(import.meta.url)("pcap");
  } catch {
    return "the pcap package is not built (needs libpcap-dev at npm install)";
  }
  if (spawnSync("ethtool", ["--version"]).error) return "ethtool is not installed";
  return netnsUnavailable();
}

const skip = pcapUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");
const SERVERS = join(REPO_ROOT, "test", "e2e", "servers.py");
const TA = "198.51.100.10";

describe("pias run (pcap) as a one-armed proxy beside a router", { skip, timeout: 90_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-pcap-"));
  let daemon: ChildProcess;
  let log = "";

  before(async () => {
    for (const n of ["c", "r", "p", "t"]) topo.addNamespace(n);
    const [clientIf] = topo.link("c", "10.30.1.2/24", "r", "10.30.1.1/24");
    const [, proxyIf] = topo.link("r", "10.30.2.1/24", "p", "10.30.2.2/24");
    const [, targetIf] = topo.link("r", "10.30.3.1/24", "t", "10.30.3.2/24");
    // On a wire every frame carries its checksums; between namespaces the
    // kernel leaves them to an "offload" no veth performs, and pcap would see
    // them unfinished. Hosts compute them, as they would for a real NIC.
    topo.exec("c", ["ethtool", "-K", clientIf, "tx", "off"]);
    topo.exec("t", ["ethtool", "-K", targetIf, "tx", "off"]);
    topo.sysctl("r", "net.ipv4.ip_forward", "1");
    topo.sysctl("p", "net.ipv4.ip_forward", "0");
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.30.1.1"]);
    topo.exec("t", ["ip", "route", "add", "default", "via", "10.30.3.1"]);
    topo.exec("p", ["ip", "route", "add", "default", "via", "10.30.2.1"]);
    topo.exec("r", ["ip", "route", "add", "198.51.100.0/24", "via", "10.30.2.2"]);
    topo.exec("r", ["ip", "route", "add", "10.255.0.1/32", "via", "10.30.2.2"]);
    mkdirSync(join(dir, "www"));
    writeFileSync(join(dir, "www", "id"), "t\n");
    topo.start("t", ["python3", "-m", "http.server", "8080", "--bind", "10.30.3.2", "--directory", join(dir, "www")]);
    await waitForLine(topo.start("t", ["python3", SERVERS, "udpecho", "10.30.3.2", "5353", "t="]), /^ready/);
    const t0 = Date.now();
    while (topo.run("r", ["curl", "-s", "--max-time", "1", "http://10.30.3.2:8080/id"]).status !== 0) {
      if (Date.now() - t0 > 20_000) throw new Error("the target's HTTP server did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    const config = join(dir, "pias.json");
    writeFileSync(config, JSON.stringify({
      proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
      capacity: { flows: 4096, groups: 4, targets: 8 },
      daemon: { io: "pcap", pcapInterface: proxyIf, drainMs: 0 },
      groups: [
        { protocol: "tcp", address: TA, port: 80, targets: [{ address: "10.30.3.2", port: 8080 }] },
        { protocol: "udp", address: TA, port: 53, targets: [{ address: "10.30.3.2", port: 5353 }] },
      ],
    }));
    daemon = topo.start("p", [process.execPath, CLI, "run", "--config", config]);
    daemon.stdout!.on("data", (b: Buffer) => (log += b.toString()));
    daemon.stderr!.on("data", (b: Buffer) => (log += b.toString()));
    await waitForLine(daemon, /"msg":"ready"/);
    topo.run("p", ["ping", "-c", "1", "-W", "1", "10.30.2.1"]); // the router's MAC in the neighbour table
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("TCP connections through the TA complete (captured, NATed, injected toward the router)", () => {
    for (let i = 0; i < 5; i++) {
      const r = topo.run("c", ["curl", "-s", "-S", "--max-time", "5", `http://${TA}/id`]);
      assert.equal(r.status, 0, `curl: ${r.stderr}\n${log}`);
      assert.equal(r.stdout.trim(), "t");
    }
  });

  test("UDP request/response through the TA", () => {
    const r = topo.run("c", ["socat", "-T", "2", "-", `UDP4:${TA}:53`], "hello\n");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "t=hello");
  });

  test("SIGTERM stops it cleanly", async () => {
    const exited = new Promise<number | null>((r) => daemon.once("exit", (code) => r(code)));
    daemon.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(log, /"msg":"stopped"/);
  });
});
