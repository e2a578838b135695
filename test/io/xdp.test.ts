// The AF_XDP backend (src/io/xdp-backend.ts over native/xdp.cc) on a real
// veth pair with native XDP, in two network namespaces this file creates and
// removes: the proxy side runs test/io/xdp-child.ts (the daemon's data plane,
// backend and pump, driven by commands); the other side holds the client
// (10.9.0.2) and, one-armed, the target (10.9.0.3), and sends traffic with
// socat, ping and trafgen. Nothing leaves the namespaces.
//
//   c: 10.9.0.2, 10.9.0.3 --- veth (2 queues each way) --- p: 10.9.0.1, XDP + AF_XDP, pias
//      routes 198.51.100.0/24, 2001:db8:100::/48 and 10.255.0.1 via p
//
// Native XDP on veth needs nothing of the peer for AF_XDP: only frames
// redirected or XDP_TX'ed *into* a veth need its peer to run an XDP program
// (which turns on the NAPI context that delivers them) or to have GRO on;
// AF_XDP's copy-mode transmit is the ordinary xmit path.
//
// Offloads: c computes its checksums (tx off): a frame redirected to AF_XDP
// leaves the kernel's stack before anything would complete a checksum left
// "partial" by the sender, so frames must carry finished ones, as on a wire.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { DataPlane, reasonName } from "../../src/core/dataplane.js";
import { Verdict } from "../../assembly/shared/abi.js";
import { validateConfig } from "../../src/config/validate.js";
import { xdpUnavailable, XdpSockets } from "../../src/io/xdp.js";
import { parseAddress } from "../../src/net/addr.js";
import { netnsUnavailable, Topology } from "../helpers/netns.js";
import { buildPacket, withEthernet } from "../helpers/packets.js";
import { REPO_ROOT } from "../helpers/paths.js";

/** Frames of the malformed flood: a million in npm test, ten million in npm run bench:xdp-garbage. */
const GARBAGE = Number(process.env.PIAS_XDP_GARBAGE ?? 1_000_000);
const TA = "198.51.100.10";
const TA6 = "2001:db8:100::10";

function unavailable(): string | undefined {
  const why = xdpUnavailable();
  if (why) return `AF_XDP: ${why}`;
  if (spawnSync("trafgen", ["--version"]).error) return "trafgen (netsniff-ng) is not installed";
  if (spawnSync("socat", ["-V"]).error) return "socat is not installed";
  return netnsUnavailable();
}

const skip = unavailable();

const CONFIG = {
  proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24", "2001:db8:100::/48"] },
  capacity: { flows: 4096, groups: 1024, targets: 1024 },
  daemon: { io: "xdp", xdpInterfaces: ["PROXY_IF"], batch: 256 },
  groups: [{ protocol: "udp", address: TA, port: 53, targets: [{ address: "10.9.0.3", port: 5353 }] }],
};

/** The frames of the garbage flood, each to a served address, each malformed its own way. */
function garbageFrames(dstMac: Uint8Array, srcMac: Uint8Array): { name: string; frame: Uint8Array }[] {
  const c = parseAddress("10.9.0.2").bytes;
  const ta = parseAddress(TA).bytes;
  const c6 = parseAddress("2001:db8:9::2").bytes;
  const ta6 = parseAddress(TA6).bytes;
  const udp = (payload = 8) => buildPacket({ family: 4, proto: "udp", src: c, dst: ta, sport: 4000, dport: 53, payload: new Uint8Array(payload) });
  const tcp = () => buildPacket({ family: 4, proto: "tcp", src: c, dst: ta, sport: 4000, dport: 80, payload: new Uint8Array(4) });
  const edit = (p: Uint8Array, f: (p: Uint8Array) => void): Uint8Array => (f(p), p);
  const cases: { name: string; ip: Uint8Array; vlan?: number; cut?: number }[] = [
    { name: "truncated: the IP header says 1000 bytes, 36 came", ip: edit(udp(), (p) => ((p[2] = 1000 >> 8), (p[3] = 1000 & 255))) },
    { name: "truncated: a 60-byte IPv4 header of which 24 bytes came", ip: edit(udp(), (p) => (p[0] = 0x4f)), cut: 24 },
    { name: "bogus length: IHL 3", ip: edit(udp(), (p) => (p[0] = 0x43)) },
    { name: "bogus length: total length shorter than the header", ip: edit(udp(), (p) => ((p[2] = 0), (p[3] = 12))) },
    { name: "bogus length: UDP length 4", ip: edit(udp(), (p) => ((p[24] = 0), (p[25] = 4))) },
    { name: "bogus length: TCP data offset 2", ip: edit(tcp(), (p) => (p[32] = 0x20)) },
    { name: "version 6 in an IPv4 frame", ip: edit(udp(), (p) => (p[0] = 0x65)) },
    { name: "VLAN-tagged, the IP length past the frame", ip: edit(udp(), (p) => (p[3] = 200)), vlan: 1 },
    { name: "VLAN-tagged twice, IHL 3", ip: edit(udp(), (p) => (p[0] = 0x43)), vlan: 2 },
    { name: "a later fragment with no first", ip: edit(udp(), (p) => ((p[6] = 0x00), (p[7] = 0x10))) },
    { name: "IPv6 extension chain of 40 headers", ip: buildPacket({ family: 6, proto: "udp", src: c6, dst: ta6, sport: 4000, dport: 53, extHeaders: Array(40).fill(60), payload: new Uint8Array(8) }) },
    { name: "IPv6 routing header with segments left", ip: edit(buildPacket({ family: 6, proto: "udp", src: c6, dst: ta6, sport: 4000, dport: 53, extHeaders: [43], payload: new Uint8Array(8) }), (p) => (p[43] = 1)) },
    { name: "IPv6 payload length past the frame", ip: edit(buildPacket({ family: 6, proto: "udp", src: c6, dst: ta6, sport: 4000, dport: 53, payload: new Uint8Array(8) }), (p) => (p[4] = 0x10)) },
  ];
  return cases.map(({ name, ip, vlan, cut }) => {
    const frame = withEthernet(cut ? ip.subarray(0, cut) : ip, vlan ?? 0);
    frame.set(dstMac, 0);
    frame.set(srcMac, 6);
    return { name, frame };
  });
}

/** What the core itself says about each frame (its drop reason), processed as a capture would be. */
function expectedReasons(frames: Uint8Array[]): string[] {
  const dp = DataPlane.fromConfig(validateConfig({ ...CONFIG, daemon: {} }));
  const batch = dp.createBatch(frames.length);
  for (const f of frames) batch.add(f, { link: 1 });
  dp.process(batch);
  return frames.map((_, i) => {
    assert.equal(batch.verdict(i), Verdict.Drop, `garbage frame ${i} was not dropped`);
    return reasonName(batch.reason(i));
  });
}

function trafgenConfig(frames: Uint8Array[]): string {
  return frames.map((f) => `{ ${[...f].map((b) => `0x${b.toString(16).padStart(2, "0")}`).join(", ")} }`).join("\n");
}

describe("AF_XDP backend on a veth pair with native XDP", { skip, timeout: 240_000 + GARBAGE / 10 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-xdp-"));
  const cIf = `x${topo.id}c`;
  const pIf = `x${topo.id}p`;
  let child: ChildProcess;
  let childErr = "";
  let lines: Interface;
  const replies: string[] = [];
  let waiting: ((line: string) => void) | null = null;

  /** Send a command to the proxy child and wait for its JSON answer. */
  const ask = (cmd: string): Promise<Record<string, any>> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer to ${cmd}; the proxy child's stderr: ${childErr.slice(-2000)}`)), 20_000);
      const take = (line: string): void => {
        clearTimeout(t);
        resolve(JSON.parse(line));
      };
      if (replies.length) take(replies.shift()!);
      else waiting = take;
      child.stdin!.write(`${cmd}\n`);
    });
  const settle = async (): Promise<Record<string, any>> => {
    // until two reports a little apart agree: nothing is arriving any more
    let last = await ask("report");
    for (;;) {
      await new Promise((r) => setTimeout(r, 300));
      const now = await ask("report");
      if (now.stats.rx === last.stats.rx && now.stats.programRedirected === last.stats.programRedirected) return now;
      last = now;
    }
  };
  const udpRequest = (text: string): string => {
    const r = topo.run("c", ["socat", "-T", "2", "-", `UDP4:${TA}:53,bind=10.9.0.2`], `${text}\n`);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const trafgen = (frames: Uint8Array[], count: number): void => {
    const cfg = join(dir, `tg-${Date.now()}.cfg`);
    writeFileSync(cfg, trafgenConfig(frames));
    const r = topo.run("c", ["trafgen", "-o", cIf, "-i", cfg, "-n", String(count), "--cpus", "1", "-q"], undefined, 600_000);
    assert.equal(r.status, 0, `trafgen: ${r.stderr}`);
  };

  before(async () => {
    topo.addNamespace("c");
    topo.addNamespace("p");
    const r = spawnSync("ip", ["link", "add", cIf, "netns", topo.ns("c"), "numtxqueues", "2", "numrxqueues", "2", "type", "veth",
      "peer", "name", pIf, "netns", topo.ns("p"), "numtxqueues", "2", "numrxqueues", "2"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    topo.exec("c", ["ip", "addr", "add", "10.9.0.2/24", "dev", cIf]);
    topo.exec("c", ["ip", "addr", "add", "10.9.0.3/24", "dev", cIf]);
    topo.exec("c", ["ip", "addr", "add", "2001:db8:9::2/64", "dev", cIf, "nodad"]);
    topo.exec("p", ["ip", "addr", "add", "10.9.0.1/24", "dev", pIf]);
    topo.exec("p", ["ip", "addr", "add", "2001:db8:9::1/64", "dev", pIf, "nodad"]);
    topo.exec("c", ["ip", "link", "set", cIf, "up"]);
    topo.exec("p", ["ip", "link", "set", pIf, "up"]);
    topo.exec("c", ["ethtool", "-K", cIf, "tx", "off"]);
    for (const prefix of ["198.51.100.0/24", "10.255.0.1/32"]) topo.exec("c", ["ip", "route", "add", prefix, "via", "10.9.0.1"]);
    topo.exec("c", ["ip", "-6", "route", "add", "2001:db8:100::/48", "via", "2001:db8:9::1"]);
    topo.start("c", ["socat", "UDP4-RECVFROM:5353,bind=10.9.0.3,fork", "SYSTEM:sed -u s/^/t=/"]);
    // the proxy's neighbour table knows the client and the target before pias starts
    topo.exec("p", ["ping", "-c", "1", "-W", "2", "10.9.0.2"]);
    topo.exec("p", ["ping", "-c", "1", "-W", "2", "10.9.0.3"]);
    const config = JSON.stringify({ ...CONFIG, daemon: { ...CONFIG.daemon, xdpInterfaces: [pIf] } });
    child = topo.start("p", [process.execPath, "--import", "tsx", join(REPO_ROOT, "test", "io", "xdp-child.ts"), config], { cwd: REPO_ROOT });
    child.stderr!.on("data", (b: Buffer) => (childErr += b.toString()));
    lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the proxy child exited (${code}): ${childErr}`)));
      lines.once("line", () => resolve());
    });
    await ready;
    lines.on("line", (line) => {
      if (waiting) {
        const w = waiting;
        waiting = null;
        w(line);
      } else replies.push(line);
    });
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the UMEM is a region of the core's linear memory, registered at the address the core's memory has", async () => {
    const r = await ask("report");
    assert.equal(r.info.umemAddress, r.memoryAddress + r.info.umemOffset);
    assert.ok(r.info.umemOffset + r.info.umemBytes <= r.memoryBytes, "the UMEM lies inside the core's memory");
    assert.equal(r.info.umemOffset % 65536, 0, "page-aligned");
    assert.equal(r.info.interfaces[0].mode, "native", "native XDP on veth");
  });

  test("one AF_XDP socket per RX queue: frames of many flows arrive on both queues of a two-queue veth", async () => {
    const before = await ask("report");
    assert.deepEqual(before.info.sockets.map((s: any) => s.queue), [0, 1]);
    const c = parseAddress("10.9.0.2").bytes;
    const frames = Array.from({ length: 64 }, (_, i) =>
      withEthernet(buildPacket({ family: 4, proto: "udp", src: c, dst: parseAddress("198.51.100.99").bytes, sport: 2000 + i * 7, dport: 9, payload: new Uint8Array(18) })));
    const macs = macsOf();
    for (const f of frames) (f.set(macs.p, 0), f.set(macs.c, 6));
    trafgen(frames, 2000);
    const r = await settle();
    for (const [i, s] of r.info.sockets.entries()) assert.ok(s.received > before.info.sockets[i].received, `queue ${s.queue} received nothing`);
  });

  test("a UDP request through the TA is NATed to the target and its reply NATed back, by the kernel's routes and neighbours", async () => {
    assert.equal(udpRequest("hello"), "t=hello");
    const r = await ask("report");
    assert.ok(r.stats.tx >= 2, "the request and the reply left through TX rings");
    assert.equal(r.stats.neighborUnresolved, 0);
  });

  test("ARP, neighbour discovery and traffic to the proxy host's own address go to the kernel while the program is attached", async () => {
    const before = await ask("report");
    topo.exec("c", ["ip", "neigh", "flush", "dev", cIf]);
    const ping = topo.run("c", ["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.9.0.1"]);
    assert.equal(ping.status, 0, ping.stdout + ping.stderr);
    const ping6 = topo.run("c", ["ping", "-6", "-c", "1", "-W", "2", "2001:db8:9::1"]);
    assert.equal(ping6.status, 0, ping6.stdout + ping6.stderr);
    const r = await ask("report");
    assert.ok(r.stats.programPassed > before.stats.programPassed);
    assert.equal(r.stats.rx, before.stats.rx, "none of it reached pias");
  });

  test("zero copies between the UMEM and the core: a byte changed in the core's memory after processing is the byte the target receives", async () => {
    assert.deepEqual(await ask("mark"), { marking: true });
    assert.equal(udpRequest("hello"), "t=!ello", "the frame sent is the core's memory as the core left it");
    const r = await ask("report");
    assert.equal(r.stats.hostSent, 0, "the addon copied no packet: it copies only frames the host builds");
  });

  test("a frame the host builds (a control reply) is copied into a free UMEM frame and leaves by the kernel's route", async () => {
    const listener = topo.start("c", ["socat", "-u", "UDP4-RECV:7777,bind=10.9.0.2", "-"]);
    await new Promise((r) => setTimeout(r, 300));
    const got = new Promise<string>((resolve) => listener.stdout!.once("data", (b: Buffer) => resolve(b.toString().trim())));
    const r = await ask("send from-the-host");
    assert.equal(r.sent, true);
    assert.equal(await got, "from-the-host");
    assert.equal(r.stats.hostSent, 1, "the one copy the addon makes");
    listener.kill();
  });

  test(`${GARBAGE.toLocaleString("en")} malformed frames get the core's drop reasons and every UMEM frame is accounted for`, async (t) => {
    const macs = macsOf();
    const cases = garbageFrames(macs.p, macs.c);
    const reasons = expectedReasons(cases.map((c) => c.frame));
    const before = await settle();
    trafgen(cases.map((c) => c.frame), GARBAGE);
    const r = await settle();
    const received = r.stats.rx - before.stats.rx;
    const redirected = r.stats.programRedirected - before.stats.programRedirected;
    t.diagnostic(`${received} of ${GARBAGE} frames reached pias; the program redirected ${redirected} (${r.stats.kernelRxDropped - before.stats.kernelRxDropped} found the fill ring empty; veth dropped the others before XDP ran); frames ${JSON.stringify(r.frames)}`);
    assert.ok(received >= GARBAGE / 10, `only ${received} of ${GARBAGE} frames reached pias`);
    assert.equal(r.counters.packets - before.counters.packets, received, "every frame received went through the core");
    const drops: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.counters.drops as Record<string, number>)) drops[k] = v - (before.counters.drops[k] ?? 0);
    assert.equal(Object.values(drops).reduce((a, b) => a + b, 0), received, "every frame received was dropped, with a reason");
    for (const [i, reason] of reasons.entries()) assert.ok(drops[reason] > 0, `"${cases[i].name}": no ${reason} drops (${JSON.stringify(drops)})`);
    // (reasons counted before the flood, by earlier tests, show here with 0)
    for (const [reason, n] of Object.entries(drops)) if (n > 0) assert.ok(reasons.includes(reason), `unexpected reason ${reason}`);
    const f = r.frames;
    assert.equal(f.errors, 0, "no frame came back in a state it could not be in");
    assert.equal(f.core + f.held, 0, "nothing left in the core");
    assert.equal(f.free + f.fill + f.rx + f.core + f.held + f.tx + f.completion, f.total, JSON.stringify(f));
  });

  test("the kernel holds exactly the frames lent to it: with refilling off, a queue lent K frames receives K of K + 500 sent, then refilling resumes", async () => {
    const off = await ask("refill 0");
    const c = parseAddress("10.9.0.2").bytes;
    const frame = withEthernet(buildPacket({ family: 4, proto: "udp", src: c, dst: parseAddress("198.51.100.99").bytes, sport: 3000, dport: 9, payload: new Uint8Array(18) }));
    const macs = macsOf();
    frame.set(macs.p, 0);
    frame.set(macs.c, 6);
    const most = Math.max(...off.info.sockets.map((s: any) => s.lent));
    trafgen([frame], most + 500); // one flow: one queue
    const r = await settle();
    const got = r.info.sockets.map((s: any, i: number) => ({ ...s, got: s.received - off.info.sockets[i].received, had: off.info.sockets[i].lent }));
    const used = got.filter((s: any) => s.got > 0);
    assert.equal(used.length, 1, `one flow, one queue: ${JSON.stringify(got)}`);
    assert.equal(used[0].got, used[0].had, `queue ${used[0].queue} had ${used[0].had} frames`);
    assert.equal(used[0].lent, 0, "and has none left");
    assert.equal(r.stats.rx - off.stats.rx, used[0].had);
    assert.ok(r.stats.kernelRxDropped - off.stats.kernelRxDropped >= most + 500 - used[0].had, "the rest found no frame");
    const on = await ask("refill 1");
    assert.equal(on.frames.fill, off.frames.fill + off.frames.rx, "lent again");
    assert.equal(udpRequest("again"), "t=!gain");
  });

  test("the UMEM's address stays put while the core's memory grows by 512 MiB (its JavaScript buffer replaced), and frames keep arriving", async () => {
    const before = await ask("report");
    const r = await ask("grow 512");
    assert.equal(r.bufferReplaced, true, "the memory grew: its ArrayBuffer was replaced");
    assert.ok(r.memoryBytes >= before.memoryBytes + (512 << 20));
    assert.equal(r.memoryAddress, before.memoryAddress, "the memory did not move");
    assert.equal(r.info.umemAddress, before.info.umemAddress);
    assert.equal(udpRequest("grown"), "t=!rown");
  });

  test("bad arguments to the addon throw TypeError or RangeError before anything is touched, and the backend keeps running", async () => {
    const calls = (await ask("badargs")) as unknown as { name: string; threw: string | null; message: string }[];
    for (const c of calls) assert.match(c.threw ?? "nothing", /^(TypeError|RangeError)$/, `${c.name}: ${c.threw} ${c.message}`);
    assert.equal(udpRequest("still"), "t=!till");
  });

  test("a memory view that is not the registered one shuts AF_XDP down before anything is read, and detaches the program", async () => {
    assert.match(topo.exec("p", ["ip", "link", "show", pIf]), /prog\/xdp/);
    const r = await ask("move");
    assert.equal(r.moved, true);
    assert.equal(r.code, "EXDPMOVED");
    assert.match(r.message, /the core's linear memory moved .* AF_XDP stopped/);
    assert.equal(r.info.open, false);
    assert.doesNotMatch(topo.exec("p", ["ip", "link", "show", pIf]), /prog\/xdp/);
    const ping = topo.run("c", ["ping", "-c", "1", "-W", "2", "10.9.0.1"]);
    assert.equal(ping.status, 0, "the host still answers");
  });

  test("after SIGKILL the kernel removes the program (its bpf_link's last fd closed) and the host's traffic flows", async () => {
    const victim = topo.start("p", [process.execPath, "--import", "tsx", join(REPO_ROOT, "test", "io", "xdp-child.ts"),
      JSON.stringify({ ...CONFIG, daemon: { ...CONFIG.daemon, xdpInterfaces: [pIf] } })], { cwd: REPO_ROOT });
    await new Promise<void>((resolve, reject) => {
      victim.stdout!.once("data", () => resolve());
      victim.once("exit", (code) => reject(new Error(`exited ${code}`)));
    });
    assert.match(topo.exec("p", ["ip", "link", "show", pIf]), /prog\/xdp/);
    const exited = new Promise((r) => victim.once("exit", r));
    victim.kill("SIGKILL");
    await exited;
    let shown = topo.exec("p", ["ip", "link", "show", pIf]);
    for (let i = 0; i < 50 && /prog\/xdp/.test(shown); i++) {
      await new Promise((r) => setTimeout(r, 100)); // the link is released as the dead process's files close
      shown = topo.exec("p", ["ip", "link", "show", pIf]);
    }
    assert.doesNotMatch(shown, /prog\/xdp/);
    const ping = topo.run("c", ["ping", "-c", "1", "-W", "2", "10.9.0.1"]);
    assert.equal(ping.status, 0);
  });

  test("without root, pias run with io xdp says so in one line and exits 1", () => {
    if (spawnSync("setpriv", ["--version"]).status !== 0) return;
    const config = join(dir, "nonroot.json");
    writeFileSync(config, JSON.stringify({ ...CONFIG, daemon: { ...CONFIG.daemon, xdpInterfaces: [pIf] } }));
    spawnSync("chmod", ["a+rx", dir]);
    spawnSync("chmod", ["a+r", config]);
    const r = topo.run("p", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", process.execPath,
      join(REPO_ROOT, "dist", "src", "cli", "pias.cjs"), "run", "--config", config]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^pias: .*needs root/);
  });

  function macsOf(): { c: Uint8Array; p: Uint8Array } {
    const mac = (ns: string, i: string) => Uint8Array.from(topo.exec(ns, ["cat", `/sys/class/net/${i}/address`]).trim().split(":").map((h) => parseInt(h, 16)));
    return { c: mac("c", cIf), p: mac("p", pIf) };
  }
});

describe("AF_XDP addon options (no root needed)", { skip: xdpUnavailable() }, () => {
  test("bad options are refused with TypeError or RangeError before anything is opened", () => {
    const memory = new Uint8Array(new WebAssembly.Memory({ initial: 512 }).buffer);
    const good = { memory, umemOffset: 65536, umemBytes: 8 << 20, frameSize: 2048, headroom: 128, ringSize: 2048, interfaces: [{ name: "lo", mac: new Uint8Array(6) }], mode: "auto" as const, served: new Uint8Array(0) };
    const bad: [string, Record<string, unknown>, RegExp][] = [
      ["memory not bytes", { memory: [1, 2] }, /memory must be a Uint8Array/],
      ["frame size 1000", { frameSize: 1000 }, /frameSize must be 2048 or 4096/],
      ["ring size 100", { ringSize: 100 }, /ringSize must be a power of two/],
      ["UMEM past the memory", { umemBytes: 64 << 20 }, /lies outside the memory/],
      ["UMEM off a page boundary", { umemOffset: 65536 + 100 }, /page boundary/],
      ["no interfaces", { interfaces: [] }, /from 1 to 16 interfaces/],
      ["a 4-byte MAC", { interfaces: [{ name: "lo", mac: new Uint8Array(4) }] }, /must be 6 bytes/],
      ["mode offload", { mode: "offload" }, /mode must be auto, native or generic/],
    ];
    for (const [name, change, message] of bad) {
      assert.throws(() => XdpSockets.open({ ...good, ...change } as never), (e: Error) => (e instanceof TypeError || e instanceof RangeError) && message.test(e.message), name);
    }
    assert.throws(() => XdpSockets.open({ ...good, interfaces: [{ name: "nosuchif0", mac: new Uint8Array(6) }] }), /no interface nosuchif0/);
  });
});
