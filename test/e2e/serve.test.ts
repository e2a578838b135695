// What a backend serves follows the config across reloads (PacketIO.serve),
// end to end, in network namespaces this file creates and removes (a client,
// the proxy, a target running an echo server):
//
//   client 10.10.0.2 --- 10.10.0.1 proxy 10.20.1.1 --- 10.20.1.2 target
//
// With no anycast prefixes pias serves its group addresses, so a reload that
// adds a group adds an address to serve and one that removes it takes it
// away. For each backend -- TUN with one worker (routes into its device),
// TUN with two workers (routes into the shared multi-queue device), AF_XDP
// with one worker (the program's prefix map) -- the added address is served
// after the reload and, once removed, pias no longer even sees its packets.
// (AF_XDP with two workers: test/e2e/xdp-workers.test.ts.)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xdpUnavailable } from "../../src/io/xdp.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";
import { PiasRun } from "../helpers/pias-run.js";

const skip = netnsUnavailable();
const CLIENTS = join(REPO_ROOT, "test", "e2e", "clients.py");
const SERVERS = join(REPO_ROOT, "test", "e2e", "servers.py");
const TA = "198.51.100.10";
const ADDED = "198.51.100.30";
const TARGET = "10.20.1.2";

describe("a reload changes what pias serves", { skip, timeout: 300_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-serve-"));
  const configPath = join(dir, "pias.json");
  const proxyIfs: string[] = [];
  const pias = new PiasRun(topo, "p", configPath);

  const metric = (name: string): number => {
    const line = topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]).split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(" ").pop()) : 0;
  };
  const connections = (address: string, n: number): number => {
    const r = topo.run("c", ["python3", CLIENTS, "many", address, "7", String(n)], undefined, 120_000);
    assert.equal(r.status, 0, r.stderr);
    return Number(r.stdout.trim());
  };

  before(async () => {
    topo.addNamespace("c");
    topo.addNamespace("p");
    topo.addNamespace("t1");
    const [clientIf, pc] = topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24");
    const [pt, targetIf] = topo.link("p", "10.20.1.1/24", "t1", `${TARGET}/24`);
    proxyIfs.push(pc, pt);
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    topo.exec("t1", ["ip", "route", "add", "default", "via", "10.20.1.1"]);
    topo.exec("c", ["ethtool", "-K", clientIf, "tx", "off"]); // AF_XDP: the peers finish their checksums
    topo.exec("t1", ["ethtool", "-K", targetIf, "tx", "off"]);
    topo.sysctl("p", "net.ipv4.ip_forward", "1");
    // a new TUN device would send IPv6 solicitations into pias: none here, so pias's packet count is the clients' alone
    topo.sysctl("p", "net.ipv6.conf.default.disable_ipv6", "1");
    await waitForLine(topo.start("t1", ["python3", SERVERS, "echo", TARGET, "7"]), /^ready/);
    topo.exec("p", ["ping", "-c", "1", "-W", "2", "10.10.0.2"]);
    topo.exec("p", ["ping", "-c", "1", "-W", "2", TARGET]);
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Start pias with `daemonSection` (its ready line matching `io`), add ADDED by a reload, remove it by another; `served` lists what is served, where the backend shows it. */
  async function addThenRemove(daemonSection: Record<string, unknown>, io: RegExp, served: () => string = () => ""): Promise<void> {
    const config = (added: boolean): string => JSON.stringify({
      proxy: { address: "10.255.0.1" },
      daemon: { metrics: "127.0.0.1:9464", drainMs: 200, logLevel: "info", ...daemonSection },
      groups: [
        { protocol: "tcp", address: TA, port: 7, targets: [{ address: TARGET, port: 7 }] },
        ...(added ? [{ protocol: "tcp", address: ADDED, port: 7, targets: [{ address: TARGET, port: 7 }] }] : []),
      ],
    });
    writeFileSync(configPath, config(false));
    try {
      assert.match(await pias.start(), io);
      assert.equal(connections(TA, 5), 5);
      assert.doesNotMatch(served(), new RegExp(ADDED));
      assert.equal(connections(ADDED, 1), 0, "not served before the reload");

      writeFileSync(configPath, config(true));
      pias.proc!.kill("SIGHUP");
      await pias.waitLog(/"msg":"config reloaded"/);
      assert.equal(connections(ADDED, 20), 20, `served after the reload\n${pias.log.slice(-2000)}`);
      if (served() !== "") assert.match(served(), new RegExp(ADDED));

      pias.log = "";
      writeFileSync(configPath, config(false));
      pias.proc!.kill("SIGHUP");
      await pias.waitLog(/"msg":"config reloaded"/);
      assert.doesNotMatch(served(), new RegExp(ADDED));
      const seen = metric("pias_packets_total");
      assert.equal(connections(ADDED, 1), 0, "not served once removed");
      assert.equal(metric("pias_packets_total"), seen, "pias did not even see its packets");
      assert.equal(connections(TA, 5), 5, "the rest is still served");
    } finally {
      await pias.stop();
    }
  }

  const tunRoutes = (): string => topo.exec("p", ["ip", "-4", "route", "show", "dev", "piasr"]);

  test("TUN, one worker: the group's address is routed into the device, then the route goes", async () => {
    await addThenRemove({ io: "tun", tunName: "piasr", workers: 1 }, /"io":"tun piasr \(/, tunRoutes);
  });

  test("TUN, two workers: the same, on the shared multi-queue device", async () => {
    await addThenRemove({ io: "tun", tunName: "piasr", workers: 2 }, /"io":"tun piasr [^"]*, 2 workers"/, tunRoutes);
  });

  test("AF_XDP, one worker: the program's prefix map takes the address, then lets it go", { skip: xdpUnavailable() }, async () => {
    await addThenRemove({ io: "xdp", xdpInterfaces: proxyIfs, xdpMode: "native", workers: 1 }, /"io":"xdp [^"]*\(native, copy, 1 queue\)"/);
  });
});
