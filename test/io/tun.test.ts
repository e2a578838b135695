// The TUN device addon (src/io/tun.ts over native/tun.cc), on real TUN
// devices. Everything runs in a network namespace this file creates and
// deletes: each case spawns test/io/tun-child.ts there with one scenario,
// which reports what it saw as JSON, and the assertions are made here. The
// only traffic is between a UDP socket on 10.99.0.1 and 10.99.0.2, which is
// routed into the TUN.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { findAddon, TunError } from "../../src/io/tun.js";
import { checksumsValid, get16 } from "../helpers/packets.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHILD = fileURLToPath(new URL("./tun-child.ts", import.meta.url));
const NS = `pias-tun-${randomBytes(4).toString("hex")}`;
const NEEDS_ROOT = "opening a TUN device needs root (CAP_NET_ADMIN)";

/** Why the namespace tests cannot run here, if they cannot. */
function unavailable(): string | undefined {
  if (process.platform !== "linux") return "TUN devices are Linux only";
  if (process.getuid?.() !== 0) return "needs root, to create a network namespace and TUN devices";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing (modprobe tun)";
  if (spawnSync("ip", ["netns", "list"]).status !== 0) return "`ip netns` is unavailable (install iproute2)";
  return undefined;
}

const hasSetpriv = (): boolean => spawnSync("setpriv", ["--version"]).status === 0;

/** Why the io_uring cases cannot run: the addon was built without liburing, or the kernel has io_uring off. */
function uringSkip(): string | undefined {
  try {
    if (readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim() === "2") return "io_uring is disabled (kernel.io_uring_disabled = 2)";
  } catch {
    // older kernels have no such switch
  }
  const ldd = spawnSync("ldd", [join(ROOT, "build", "Release", "pias_tun.node")], { encoding: "utf8" });
  if (!/liburing/.test(ldd.stdout ?? "")) return "the addon was built without liburing (apt-get install liburing-dev, then npm rebuild)";
  return undefined;
}

// JSON reported by the child
type Observed = Record<string, any>;

/** Runs one child scenario in the namespace, under `wrapper` (e.g. setpriv), on I/O path `io`, and returns its report. */
function runChild(scenario: string, wrapper: string[] = [], io: "readv" | "uring" = "readv"): Observed {
  const r = spawnSync("ip", ["netns", "exec", NS, ...wrapper, process.execPath, "--import", "tsx", CHILD, scenario], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 8000,
    env: { ...process.env, PIAS_TUN_IO: io },
  });
  const context = `scenario ${scenario}: status ${r.status} signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.equal(r.signal, null, `the child was killed (hung?): ${context}`);
  assert.equal(r.status, 0, context);
  const last = r.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as Observed;
}

const ip4 = (b: Uint8Array, at: number): string => [...b.subarray(at, at + 4)].join(".");

describe("TUN device, in a network namespace of its own", { skip: unavailable() }, () => {
  before(() => {
    const add = spawnSync("ip", ["netns", "add", NS], { encoding: "utf8" });
    assert.equal(add.status, 0, `ip netns add ${NS}: ${add.stderr}`);
    // No IPv6 on new interfaces: no router solicitations or MLD reports, so
    // the device holds exactly the packets the tests send.
    const v6 = spawnSync("ip", ["netns", "exec", NS, "sh", "-c",
      "[ -d /proc/sys/net/ipv6 ] || exit 0; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"],
    { encoding: "utf8" });
    assert.equal(v6.status, 0, `disabling IPv6 in ${NS}: ${v6.stderr}`);
  });

  after(() => {
    spawnSync("ip", ["netns", "del", NS]);
  });

  test("readBatch puts a datagram routed into the interface at its descriptor's OFF and sets LEN and WIRELEN to its length", () => {
    const r = runChild("read-udp");
    const payload = "ping from the socket";
    assert.equal(r.count, 1, "one packet read");
    assert.equal(r.off, 1024, "OFF is left as it was");
    assert.equal(r.len, 28 + payload.length, "LEN is the packet's length");
    assert.equal(r.wirelen, r.len, "WIRELEN is the packet's length");
    const p = Buffer.from(r.packet, "hex");
    assert.equal(p[0], 0x45, "IPv4, 20-byte header");
    assert.equal(get16(p, 2), p.length, "IP total length");
    assert.equal(p[9], 17, "UDP");
    assert.equal(ip4(p, 12), "10.99.0.1");
    assert.equal(ip4(p, 16), "10.99.0.2");
    assert.equal(get16(p, 20), r.localPort, "from the socket's port");
    assert.equal(get16(p, 22), 9999);
    assert.equal(p.subarray(28).toString(), payload);
    assert.deepEqual(checksumsValid(p), { ip: true, l4: true, quoted: true });
    assert.equal(r.again, 0, "nothing else is waiting");
    assert.equal(r.stats.read, 1);
  });

  test("readBatch honours the view's byteOffset and writes nothing outside the slot it fills", () => {
    const r = runChild("read-udp");
    assert.equal(r.packetInMemory, r.packet, "the packet is at byteOffset + OFF of the whole memory");
    assert.equal(r.byteBefore, 0xaa, "the byte before the packet is untouched");
    assert.equal(r.byteAfter, 0xaa, "the byte after the packet is untouched");
    assert.equal(r.untouchedSlot1, true, "the next descriptor and its slot are untouched");
  });

  test("writeBatch writes the descriptors whose VERDICT matches, and the socket receives the crafted replies", () => {
    const r = runChild("udp-reply");
    assert.equal(r.read, 1, "the request was read");
    assert.equal(r.written, 2, "descriptors 0 and 2 (verdict 1) written, 1 (verdict 0) not");
    const got = [...r.received].sort((a, b) => a.payload.localeCompare(b.payload));
    assert.deepEqual(got, [
      { from: "10.99.0.2", port: 9999, payload: "me too (verdict 1)" },
      { from: "10.99.0.2", port: 9999, payload: "pong (verdict 1)" },
    ]);
    assert.equal(r.stats.written, 2);
    assert.equal(r.stats.writeErrors, 0);
    assert.equal(r.stats.writeDropped, 0);
  });

  test("packets the kernel refuses are counted in writeErrors, not thrown", () => {
    const r = runChild("refused");
    assert.equal(r.written, 0, "writeBatch wrote neither non-IP packet");
    assert.equal(r.single, false, "write returns false");
    assert.equal(r.stats.writeErrors, 3);
    assert.equal(r.stats.written, 0);
  });

  test("readBatch returns 0 at once when no packet is waiting", () => {
    const r = runChild("empty");
    assert.deepEqual(r.counts, [0], "every call returned 0");
    assert.ok(r.ms < 250, `100 empty reads took ${r.ms} ms`);
    assert.equal(r.stats.readErrors, 0, "EAGAIN is not an error");
  });

  test("a packet longer than its slot is counted as truncated and skipped; one that fills it exactly is returned", () => {
    const r = runChild("truncate");
    assert.equal(r.big, 0, "the 328-byte packet is not returned from 64-byte slots");
    assert.equal(r.afterBig.truncated, 1);
    assert.equal(r.afterBig.read, 0);
    assert.equal(r.exact, 1, "the 64-byte packet is returned");
    assert.equal(r.exactLen, 64);
    assert.equal(r.stats.truncated, 1, "and is not counted as truncated");
  });

  test("onReadable calls back when packets arrive, and closing from the callback lets the process exit", () => {
    const r = runChild("readable"); // a child that does not exit fails on the timeout
    assert.ok(r.calls >= 1, "the callback fired");
    assert.equal(r.packets, 2, "it drained both datagrams");
    assert.equal(r.closeThrew, null, "close twice did not throw");
  });

  test("pause stops the callbacks and no longer holds the process, while the device stays open", () => {
    const r = runChild("pause");
    assert.equal(r.calls, 0, "no callback after pause");
    assert.equal(r.readAfterPause, 1, "the datagram is still waiting in the open device");
  });

  test("close is idempotent, removes the interface, and later I/O says the device is closed", () => {
    const r = runChild("close");
    assert.equal(r.existedOpen, true);
    assert.equal(r.existsAfterClose, false, "the interface is gone");
    assert.equal(r.second, null, "a second close does nothing");
    assert.equal(r.pause, null, "pause after close does nothing");
    assert.equal(r.stats, null, "stats stay readable");
    for (const call of ["readBatch", "writeBatch", "write", "onReadable"]) {
      assert.deepEqual(r[call], { name: "Error", message: `the TUN device ${r.name} is closed` }, call);
    }
  });

  test("the interface gets the requested name, or pias<N> numbered by the kernel", () => {
    const r = runChild("names");
    assert.equal(r.named, "piastest7");
    assert.match(r.numbered, /^pias\d+$/);
    assert.equal(r.bothExist, true);
  });

  test("bad arguments throw TypeError or RangeError, never crash, and leave the device working", () => {
    const expected: Record<string, "TypeError" | "RangeError" | null> = {
      "mem is a string": "TypeError",
      "mem is a Uint16Array": "TypeError",
      "mem is missing": "TypeError",
      "desc is negative": "RangeError",
      "desc is fractional": "RangeError",
      "desc is NaN": "RangeError",
      "desc is a string": "TypeError",
      "stride is smaller than a descriptor": "RangeError",
      "descriptors run past the end": "RangeError",
      "max is huge": "RangeError",
      "max is above u32": "RangeError",
      "a slot runs past the end": "RangeError",
      "a slot's OFF + capacity overflows u32": "RangeError",
      "a slot has capacity 0": "RangeError",
      "a slot lies beyond a short view, though inside the buffer": "RangeError",
      "write: a packet past the end": "RangeError",
      "write: stride 28 leaves no verdict byte": "RangeError",
      "write: verdict 256": "RangeError",
      "write: a string": "TypeError",
      "write: an ArrayBuffer": "TypeError",
      "onReadable without a function": "TypeError",
      "open: a 16-byte name": "RangeError",
      "open: a name that is not a string": "TypeError",
      "a view over a memory that has since grown (detached)": "RangeError",
      "a packet past the end whose verdict is not asked for (ignored, no error)": null,
    };
    const r = runChild("bad-args"); // a crash fails here: the child must exit 0
    assert.deepEqual(Object.keys(r.errors).sort(), Object.keys(expected).sort(), "the child ran exactly these cases");
    for (const [what, name] of Object.entries(expected)) {
      assert.equal(r.errors[what]?.name ?? null, name, `${what}: ${JSON.stringify(r.errors[what])}`);
    }
    assert.equal(r.stillWorks, 0, "a read afterwards works (nothing waiting)");
    assert.equal(r.stats.read, 0, "no packet was read by a rejected call");
    assert.equal(r.stats.written, 0, "no packet was written by a rejected call");
  });

  describe("on io_uring (one io_uring_enter per batch each way)", { skip: uringSkip() }, () => {
    test("the queue runs on io_uring", () => {
      assert.equal(runChild("io", [], "uring").io, "uring");
    });

    test("readBatch reads a datagram into descriptor 0 and sets LEN and WIRELEN", () => {
      const r = runChild("read-udp", [], "uring");
      assert.equal(r.count, 1);
      assert.equal(r.len, 28 + "ping from the socket".length);
      assert.equal(r.wirelen, r.len);
      assert.equal(r.packetInMemory, r.packet);
      assert.equal(r.byteBefore, 0xaa);
      assert.equal(r.byteAfter, 0xaa);
      assert.equal(r.untouchedSlot1, true, "no other slot is written");
      assert.equal(r.again, 0);
    });

    test("writeBatch writes exactly the descriptors whose VERDICT matches", () => {
      const r = runChild("udp-reply", [], "uring");
      assert.equal(r.written, 2);
      assert.deepEqual(r.received.map((x: { payload: string }) => x.payload).sort(), ["me too (verdict 1)", "pong (verdict 1)"]);
      assert.equal(r.stats.writeCalls, 1, "both packets in one io_uring_enter");
    });

    test("refused packets are counted, truncated ones skipped, an empty device returns 0 at once", () => {
      assert.equal(runChild("refused", [], "uring").stats.writeErrors, 3);
      const t = runChild("truncate", [], "uring");
      assert.equal(t.big, 0);
      assert.equal(t.stats.truncated, 1);
      assert.equal(t.exact, 1);
      assert.equal(t.exactLen, 64);
      const e = runChild("empty", [], "uring");
      assert.deepEqual(e.counts, [0]);
      assert.ok(e.ms < 250, `100 empty reads took ${e.ms} ms`);
    });

    test("bad arguments throw TypeError or RangeError and never crash", () => {
      const r = runChild("bad-args", [], "uring");
      assert.equal(r.errors["a slot runs past the end"]?.name, "RangeError");
      assert.equal(r.errors["a view over a memory that has since grown (detached)"]?.name, "RangeError");
      assert.equal(r.errors["write: a packet past the end"]?.name, "RangeError");
      assert.equal(r.stats.read, 0);
      assert.equal(r.stats.written, 0);
    });
  });

  test("with the virtio-net header, a datagram is read behind a 10-byte header that leaves its checksum partial (NEEDS_CSUM), and the partial sum completes to a valid checksum", () => {
    const r = runChild("vnet-udp");
    assert.deepEqual(r.features, { vnetHdr: true, offload: 0x67, offloadNames: "CSUM|TSO4|TSO6|USO4|USO6", multiQueue: false, io: "readv", uringBuilt: r.features.uringBuilt, notes: [] });
    assert.equal(r.count, 1);
    assert.equal(r.len, 10 + 28 + "with a header".length);
    assert.deepEqual(r.vnet, { flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 6 });
    assert.equal(r.completedValid, true);
  });

  test("with USO, one UDP_SEGMENT send is read as one UDP super-packet (GSO_UDP_L4, gso_size 1000)", () => {
    const r = runChild("vnet-udp-gso");
    assert.equal(r.python, null, `python: ${r.python}`);
    assert.equal(r.count, 1, "one packet for five datagrams");
    assert.equal(r.ipLength, 20 + 8 + 4500);
    assert.deepEqual(r.vnet, { flags: 1, gsoType: 5, hdrLen: 28, gsoSize: 1000, csumStart: 20, csumOffset: 6 });
    assert.equal(r.completedValid, true, "the partial sum covers the whole super-packet");
  });

  for (const io of ["readv", "uring"] as const) {
    test(`with TSO, a local TCP sender's data is read as super-packets (GSO_TCPV4), and a super-packet written back is segmented by the kernel and received whole (${io})`, (t) => {
      if (io === "uring" && uringSkip()) return t.skip(uringSkip());
      const r = runChild("vnet-tcp", [], io);
      assert.ok(r.data.length >= 1);
      // a lone segment may come without GSO; the rest are super-packets, each with its checksum left partial
      for (const h of r.data) {
        const alone = { flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 20, csumOffset: 16 };
        assert.ok([JSON.stringify(alone), JSON.stringify({ ...alone, gsoType: 1, hdrLen: 40, gsoSize: 536 })].includes(JSON.stringify(h)), JSON.stringify(h));
      }
      assert.ok(r.data.some((h: { gsoType: number }) => h.gsoType === 1), "super-packets came");
      assert.ok(r.data.length < r.bytes / 536, `fewer packets than segments: ${r.data.length} for ${r.bytes} bytes`);
      assert.ok(r.verified.every(Boolean), "every partial checksum completes to a valid one");
      assert.equal(r.written, 1);
      assert.equal(r.receivedLength, 6000);
      assert.equal(r.receivedEqual, true);
    });
  }

  test("queues of a multi-queue device share one interface, each gets part of the flows, and the interface goes with the last queue", () => {
    const r = runChild("multiqueue");
    assert.equal(r.f0.multiQueue, true);
    assert.equal(r.f1.multiQueue, true);
    assert.equal(r.name1, "piasmq0");
    assert.equal(r.n0 + r.n1, 24, "every datagram read once");
    assert.ok(r.n0 > 0 && r.n1 > 0, `both queues read some: ${r.n0} and ${r.n1}`);
    assert.equal(r.existsWithOneQueue, true);
    assert.equal(r.existsAfterBoth, false);
  });

  test("the steering program sends a packet to the proxy to the queue of its NAT port's slice, and keeps every other flow on one queue", (t) => {
    const r = runChild("steering");
    if (typeof r.why === "string" && /not built|no libbpf/.test(r.why)) return t.skip(r.why);
    assert.equal(r.why, null, `attachSteering: ${r.why}`);
    for (const [port, queue] of [[2000, 0], [2001, 0], [2499, 0], [2500, 1], [2777, 1], [2999, 1]]) {
      assert.deepEqual(r.seen[`10.99.0.2:${port}`], [queue], `port ${port}`);
    }
    const flows = Object.entries(r.seen as Record<string, number[]>).filter(([k]) => k.startsWith("10.99.1.3:"));
    assert.equal(flows.length, 12);
    for (const [k, qs] of flows) assert.ok(qs.length === 2 && qs[0] === qs[1], `${k}: both datagrams on one queue: ${qs}`);
    assert.ok(new Set(flows.map(([, qs]) => qs[0])).size === 2, "flows are spread over both queues");
    assert.equal(r.refused, "refused (test)", "a refusal is a reason, not an error");
  });

  test("each step the kernel refuses gives one note and the next simpler setting, down to the plain path; never an error", () => {
    const r = runChild("refusals");
    const refusedOffload = (mask: string) => `the kernel refused TUN offloads ${mask} (TUNSETOFFLOAD: Invalid argument (EINVAL))`;
    const f = (what: string) => ({ vnetHdr: r[what].vnetHdr, offloadNames: r[what].offloadNames, multiQueue: r[what].multiQueue, io: r[what].io, notes: r[what].notes });
    assert.deepEqual(f("USO refused"), { vnetHdr: true, offloadNames: "CSUM|TSO4|TSO6", multiQueue: false, io: "readv", notes: [refusedOffload("CSUM|TSO4|TSO6|USO4|USO6")] });
    assert.deepEqual(f("TSO and USO refused"), { vnetHdr: true, offloadNames: "CSUM", multiQueue: false, io: "readv", notes: [refusedOffload("CSUM|TSO4|TSO6|USO4|USO6"), refusedOffload("CSUM|TSO4|TSO6")] });
    assert.deepEqual(f("every offload refused"), {
      vnetHdr: false, offloadNames: "none", multiQueue: false, io: "readv",
      notes: [refusedOffload("CSUM|TSO4|TSO6|USO4|USO6"), refusedOffload("CSUM|TSO4|TSO6"), refusedOffload("CSUM"), "no TUN offload accepted: plain path (no virtio-net header)"],
    });
    assert.deepEqual(f("the header refused"), { vnetHdr: false, offloadNames: "none", multiQueue: false, io: "readv", notes: ['the kernel refused the virtio-net header on TUN "pias%d" (IFF_VNET_HDR: Invalid argument (EINVAL)); plain path'] });
    assert.deepEqual(f("multi-queue refused"), { vnetHdr: false, offloadNames: "none", multiQueue: false, io: "readv", notes: ['the kernel refused a multi-queue TUN device "pias%d" (IFF_MULTI_QUEUE: Invalid argument (EINVAL)); one queue'] });
    assert.deepEqual(f("io_uring refused"), { vnetHdr: false, offloadNames: "none", multiQueue: false, io: "readv", notes: ["io_uring unavailable (refused (test)): readv and write per packet"] });
    const all = f("nothing refused");
    assert.deepEqual({ ...all, io: undefined }, { vnetHdr: true, offloadNames: "CSUM|TSO4|TSO6|USO4|USO6", multiQueue: true, io: undefined, notes: all.io === "uring" ? [] : all.notes });
  });

  test(`without CAP_NET_ADMIN, open fails with "${NEEDS_ROOT}"`, (t) => {
    if (!hasSetpriv()) return t.skip("setpriv (util-linux) is not installed");
    const r = runChild("open", ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"]);
    assert.deepEqual(r.error, { name: "TunError", message: NEEDS_ROOT, code: "ETUN", sysCode: "EPERM" });
  });

  test("as an unprivileged user, open fails with the same message", (t) => {
    if (!hasSetpriv()) return t.skip("setpriv (util-linux) is not installed");
    const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
    const readable = spawnSync("ip", ["netns", "exec", NS, ...nobody, "test", "-r", CHILD, "-a", "-r", join(ROOT, "node_modules", "tsx", "package.json")]);
    if (readable.status !== 0) return t.skip(`user 65534 cannot read ${CHILD} or node_modules/tsx`);
    const r = runChild("open", nobody);
    assert.equal(r.error?.name, "TunError", JSON.stringify(r.error));
    assert.ok(r.error.message.startsWith(NEEDS_ROOT), r.error.message);
    assert.equal(r.error.sysCode, "EACCES", "/dev/net/tun is root's alone");
  });
});

describe("finding the addon", () => {
  test("it is found by walking up from src/io (tsx) or dist/src/io (compiled)", () => {
    const built = join(ROOT, "build", "Release", "pias_tun.node");
    assert.equal(findAddon(join(ROOT, "src", "io")), built);
    assert.equal(findAddon(join(ROOT, "dist", "src", "io")), built);
  });

  test("when it is not built, the error says how to build it", () => {
    assert.throws(() => findAddon("/"), (err: unknown) => {
      assert.ok(err instanceof TunError);
      assert.equal(err.code, "ETUN");
      assert.match(err.message, /^the TUN addon is not built: run npm rebuild \/ node-gyp rebuild; it needs g\+\+ and make/);
      return true;
    });
  });
});
