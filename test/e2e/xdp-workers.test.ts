// `pias run` on AF_XDP with two workers, end to end, in network namespaces
// this file creates and removes: a client, the proxy and a target, joined by
// veth pairs with two RX and two TX queues at each end (veth puts a packet
// on the peer's RX queue numbered like the sender's TX queue, which the
// sender picks per socket: flows spread over both queues, and a target's
// reply often comes in on the queue of the worker that does not own its NAT
// port). Real servers (TCP and UDP echo servers) and clients (python).
//
//   client 10.10.0.2 ==2q== 10.10.0.1 proxy 10.20.1.1 ==2q== 10.20.1.2 target
//                                     10.20.2.1 --1q-- 10.20.2.2 (only for the fall-back)
//
// Shows: 1000 short TCP connections and 200 UDP flows complete with both
// workers taking flows; every reply that came in on the other worker's queue
// was handed to its owner (the program's marks, the hand-offs out and in
// agree, none dropped) and no core ever saw a reply it does not own; a reload
// that adds or removes a group address changes what the XDP program
// redirects; a full hand-off ring (PIAS_XDP_HANDOFF_SLOTS=1) drops with its
// own counter; an interface with fewer queues than workers gives one log
// line and one worker. Offloads: the peers compute their checksums (tx off), as
// AF_XDP needs (test/e2e/xdp.test.ts says why).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xdpUnavailable } from "../../src/io/xdp.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";
import { PiasRun } from "../helpers/pias-run.js";

const why = xdpUnavailable();
const skip = why ? `AF_XDP: ${why}` : netnsUnavailable();
const CLIENTS = join(REPO_ROOT, "test", "e2e", "clients.py");
const SERVERS = join(REPO_ROOT, "test", "e2e", "servers.py");
const TA = "198.51.100.10";
const ADDED = "198.51.100.30";
const TARGET = "10.20.1.2";

describe("pias run with two workers on AF_XDP, over veth pairs with two queues", { skip, timeout: 600_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-xdp-workers-"));
  const configPath = join(dir, "pias.json");
  const pias = new PiasRun(topo, "p", configPath);
  const proxyIfs: string[] = [];
  let oneQueueIf = "";

  /** No anycast prefixes: pias serves its group addresses, so a group added by a reload adds what the program redirects. */
  const config = (o: { added?: boolean; interfaces?: string[] } = {}): unknown => ({
    proxy: { address: "10.255.0.1" },
    capacity: { flows: 65536, groups: 8, targets: 8 },
    daemon: { io: "xdp", xdpInterfaces: o.interfaces ?? proxyIfs, xdpMode: "native", workers: 2, metrics: "127.0.0.1:9464", drainMs: 500, logLevel: "info" },
    groups: [
      { protocol: "tcp", address: TA, port: 7, targets: [{ address: TARGET, port: 7 }] },
      { protocol: "udp", address: TA, port: 53, targets: [{ address: TARGET, port: 5353 }] },
      { protocol: "tcp", address: TA, port: 9000, targets: [{ address: TARGET, port: 9000 }] },
      ...(o.added ? [{ protocol: "tcp", address: ADDED, port: 7, targets: [{ address: TARGET, port: 7 }] }] : []),
    ],
  });

  const metrics = (): string => topo.exec("p", ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
  const metric = (text: string, name: string): number => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.split(" ").pop()) : 0;
  };
  const io = (m: string, event: string): number => metric(m, `pias_io_packets_total{event="${event}"}`);
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
    const [clientIf, pc] = topo.link("c", "10.10.0.2/24", "p", "10.10.0.1/24", 1500, 2);
    const [pt, targetIf] = topo.link("p", "10.20.1.1/24", "t1", `${TARGET}/24`, 1500, 2);
    [oneQueueIf] = topo.link("p", "10.20.2.1/24", "t2", "10.20.2.2/24");
    proxyIfs.push(pc, pt);
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.10.0.1"]);
    // a client socket keeps its TX queue (so its flow keeps its worker) across retransmission timeouts (README)
    topo.sysctl("c", "net.core.txrehash", "0");
    topo.exec("t1", ["ip", "route", "add", "default", "via", "10.20.1.1"]);
    topo.exec("c", ["ethtool", "-K", clientIf, "tx", "off"]);
    topo.exec("t1", ["ethtool", "-K", targetIf, "tx", "off"]);
    await waitForLine(topo.start("t1", ["python3", SERVERS, "echo", TARGET, "7"]), /^ready/);
    await waitForLine(topo.start("t1", ["python3", SERVERS, "hash", TARGET, "9000"]), /^ready/);
    await waitForLine(topo.start("t1", ["python3", SERVERS, "udpecho", TARGET, "5353"]), /^ready/);
    // both next hops' MACs in the proxy's neighbour table
    topo.exec("p", ["ping", "-c", "1", "-W", "2", "10.10.0.2"]);
    topo.exec("p", ["ping", "-c", "1", "-W", "2", TARGET]);
    writeFileSync(configPath, JSON.stringify(config()));
    await pias.start();
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("it runs two workers, each with the sockets of one queue of each interface", () => {
    assert.match(pias.log, /"io":"xdp [^"]*\(native, copy, 2 queues\)[^"]*\(native, copy, 2 queues\), 2 workers"/);
  });

  test("1000 short TCP connections and 200 UDP flows complete; replies on the other worker's queue are handed to their owner, and no core sees a reply it does not own", (t) => {
    const m0 = metrics();
    const counters = (): string => metrics().split("\n").filter((l) => /^pias_(dropped|worker|wrong|packets_total|forwarded|io_packets|io_frames)/.test(l)).join("\n");
    assert.equal(client(["many", TA, "7", "1000"], 300_000), "1000", counters());
    // on a short UDP count, also where the kernels lost datagrams: UDP and ICMP counters of each namespace, the links' drops
    const kernels = (): string => ["c", "p", "t1"].map((ns) => {
      const snmp = topo.run(ns, ["nstat", "-az"]).stdout.split("\n").filter((l) => /^(Udp|Icmp)(InDatagrams|OutDatagrams|NoPorts|InErrors|RcvbufErrors|InDestUnreachs|OutDestUnreachs)\s/.test(l)).map((l) => l.trim().split(/\s+/).slice(0, 2).join(" "));
      const links = topo.run(ns, ["ip", "-s", "-o", "link"]).stdout.trim().split("\n").filter((l) => !/^\d+: lo:/.test(l)).join("\n");
      return `${ns}: ${snmp.join(", ")}\n${links}`;
    }).join("\n") + `\n${proxyIfs.map((i) => topo.run("p", ["ethtool", "-S", i]).stdout.split("\n").filter((l) => /drop|xdp/.test(l) && !/: 0$/.test(l)).join(";")).join("\n")}`;
    const udp = client(["udp", TA, "53", "200"], 300_000);
    if (udp !== "200") assert.fail(`${udp} of 200 UDP datagrams answered\n${counters()}\n${kernels()}`);
    const m1 = metrics();
    const d = (name: string, m = m1): number => metric(m, name) - metric(m0, name);
    const created = (w: number): number => d(`pias_worker_flows_created_total{worker="${w}"}`);
    for (const w of [0, 1]) assert.ok(created(w) > 100, `worker ${w} created ${created(w)} flows of 1200`);
    const out = io(m1, "handoffOut") - io(m0, "handoffOut");
    const into = io(m1, "handoffIn") - io(m0, "handoffIn");
    const marked = io(m1, "programForeign") - io(m0, "programForeign");
    t.diagnostic(`flows created by worker 0: ${created(0)}, worker 1: ${created(1)}; frames handed off: ${out}, taken: ${into}, marked by the program: ${marked}`);
    assert.ok(out > 100, `frames handed to the other worker: ${out}`);
    assert.equal(into, out, "every frame handed off was taken by its owner");
    assert.equal(io(m1, "handoffFull"), 0, "no hand-off ring overflowed");
    assert.equal(marked, out, "the program marked exactly the frames the workers handed off");
    for (const w of [0, 1]) assert.equal(metric(m1, `pias_worker_wrong_worker_packets_total{worker="${w}"}`), 0, `worker ${w}'s core saw a reply to another worker's port`);
    assert.equal(metric(m1, 'pias_dropped_packets_total{reason="not-for-proxy"}'), 0);
    // each worker's UMEM: (2 sockets + 2) x 2048 frames, every one of them somewhere
    const frames = ["free", "fill", "rx", "core", "held", "tx", "completion"].reduce((n, st) => n + metric(m1, `pias_io_frames{state="${st}"}`), 0);
    assert.equal(frames, 2 * 4 * 2048, "the workers' frames by state add up to their UMEMs");
    assert.equal(io(m1, "frameErrors"), 0);
  });

  test("a reload adding a group address makes the program redirect it (served); removing it gives it back to the kernel (not served)", async () => {
    assert.equal(client(["many", ADDED, "7", "1"]), "0", "not served before the reload");
    writeFileSync(configPath, JSON.stringify(config({ added: true })));
    pias.proc!.kill("SIGHUP");
    await pias.waitLog(/"msg":"config reloaded"/);
    assert.equal(client(["many", ADDED, "7", "20"]), "20", "served after the reload");
    assert.match(pias.log, new RegExp(`"prefixes":\\[[^\\]]*"${ADDED}/32"[^\\]]*\\],"msg":"serving"`));
    pias.log = "";
    writeFileSync(configPath, JSON.stringify(config()));
    pias.proc!.kill("SIGHUP");
    await pias.waitLog(/"msg":"config reloaded"/);
    const before = metric(metrics(), "pias_packets_total");
    assert.equal(client(["many", ADDED, "7", "1"]), "0", "not served once removed");
    assert.equal(metric(metrics(), "pias_packets_total"), before, "pias did not even see its packets: the program passed them to the kernel");
    assert.equal(client(["many", TA, "7", "5"]), "5", "the rest is still served");
  });

  test("a full hand-off ring drops the frame, counted as handoffFull; the program's marks add up to hand-offs and drops, and TCP recovers", async () => {
    await pias.stop();
    await pias.start({ PIAS_XDP_HANDOFF_SLOTS: "1" }); // one slot per ring: two replies for the other worker in one batch fill it
    // uploads: the target's ACKs come back in bursts, on its own choice of queue (half the time the other worker's)
    for (let i = 0; i < 12 && io(metrics(), "handoffFull") === 0; i++) {
      const r = JSON.parse(client(["bulk", TA, "9000", "20"])) as { sent: string; bytes: number; reply: string };
      assert.equal(r.reply, `${r.sent} ${r.bytes}`, "the target received every byte");
    }
    const m = metrics();
    assert.ok(io(m, "handoffFull") > 0, `no ring overflowed: ${io(m, "handoffOut")} frames handed off`);
    assert.equal(io(m, "programForeign"), io(m, "handoffOut") + io(m, "handoffFull"), "every marked frame was handed off or dropped as handoffFull");
    assert.equal(io(m, "handoffIn"), io(m, "handoffOut"));
  });

  test("an interface with fewer RX queues than workers: one log line, one worker, still forwarding", async () => {
    await pias.stop();
    writeFileSync(configPath, JSON.stringify(config({ interfaces: [...proxyIfs, oneQueueIf] })));
    await pias.start();
    assert.equal(pias.log.split("\n").filter((l) => new RegExp(`one worker: ${oneQueueIf} has 1 RX queue, fewer than the 2 workers`).test(l)).length, 1);
    assert.doesNotMatch(pias.log, /2 workers"/);
    assert.equal(client(["many", TA, "7", "20"]), "20");
    await pias.stop();
  });
});
