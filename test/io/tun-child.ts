// Runs one TUN scenario for test/io/tun.test.ts, inside the network namespace
// the test created (`ip netns exec NS node --import tsx test/io/tun-child.ts
// SCENARIO`), and prints what it observed as one JSON line on stdout. The
// assertions live in the test; this only drives the device and reports.
//
// Traffic stays in the namespace: the TUN is 10.99.0.1/24, and datagrams go
// to 10.99.0.2:9999, which the kernel routes into the TUN.

import { execFileSync, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import net from "node:net";
import { TunDevice, TunRefuse, VNET_HDR_LEN, type TunOptions } from "../../src/io/tun.js";
import { complement, onesSum } from "../../src/net/checksum.js";
import { buildPacket, checksumsValid } from "../helpers/packets.js";

const LOCAL = "10.99.0.1";
const PEER = "10.99.0.2";
const PEER_PORT = 9999;
const STRIDE = 32;
const VERDICT_AT = 28;

/** The Wasm memory and a view into it that starts `VIEW_AT` bytes in, as the daemon's would if it offset its view. */
const VIEW_AT = 4096;
const memory = new WebAssembly.Memory({ initial: 2 });
const mem = new Uint8Array(memory.buffer, VIEW_AT);
const dv = () => new DataView(memory.buffer, VIEW_AT);

/** Descriptor i at view offset i * STRIDE, its slot at 1024 + i * 2048 with `capacity` bytes. */
function layout(slots: number, capacity = 2048): void {
  for (let i = 0; i < slots; i++) {
    dv().setUint32(i * STRIDE, 1024 + i * 2048, true);
    dv().setUint32(i * STRIDE + 4, capacity, true);
    dv().setUint32(i * STRIDE + 8, 0, true);
  }
}

function desc(i: number): { off: number; len: number; wirelen: number } {
  const d = dv();
  return { off: d.getUint32(i * STRIDE, true), len: d.getUint32(i * STRIDE + 4, true), wirelen: d.getUint32(i * STRIDE + 8, true) };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** The I/O path every scenario runs on: PIAS_TUN_IO=uring or readv (default). */
const IO = (process.env.PIAS_TUN_IO ?? "readv") as "readv" | "uring";

/** Opens a TUN and brings it up as 10.99.0.1/24. */
function upTun(name?: string, options: Omit<TunOptions, "name"> = {}): TunDevice {
  const tun = TunDevice.open({ ...(name === undefined ? {} : { name }), io: IO, ...options });
  execFileSync("ip", ["link", "set", tun.name, "up"]);
  execFileSync("ip", ["addr", "add", `${LOCAL}/24`, "dev", tun.name]);
  return tun;
}

async function udpSocket(): Promise<dgram.Socket> {
  const sock = dgram.createSocket("udp4");
  sock.bind(0, LOCAL);
  await once(sock, "listening");
  return sock;
}

async function send(sock: dgram.Socket, payload: string | Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => sock.send(payload, PEER_PORT, PEER, (e) => (e ? reject(e) : resolve())));
}

/** readBatch until a packet comes (the datagram may take a moment to reach the device). */
async function readSome(tun: TunDevice, max: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const n = tun.readBatch(mem, 0, STRIDE, max);
    if (n > 0) return n;
    await new Promise((r) => setTimeout(r, 5));
  }
  return 0;
}

const ipBytes = (s: string): Uint8Array => Uint8Array.from(s.split(".").map(Number));

/** A UDP datagram from the peer back to the socket, with correct checksums. */
function reply(toPort: number, payload: string): Uint8Array {
  return buildPacket({
    family: 4, proto: "udp", src: ipBytes(PEER), dst: ipBytes(LOCAL), sport: PEER_PORT, dport: toPort,
    payload: new TextEncoder().encode(payload),
  });
}

/** Puts `packet` in descriptor i's slot with the given verdict. */
function stage(i: number, packet: Uint8Array, verdict: number): void {
  const { off } = desc(i);
  mem.set(packet, off);
  dv().setUint32(i * STRIDE + 4, packet.length, true);
  mem[i * STRIDE + VERDICT_AT] = verdict;
}

function errorOf(fn: () => unknown): { name: string; message: string; code?: string; sysCode?: string } | null {
  try {
    fn();
    return null;
  } catch (e) {
    const err = e as Error & { code?: string; sysCode?: string };
    return { name: err.constructor.name, message: err.message, code: err.code, sysCode: err.sysCode };
  }
}

const linkExists = (name: string): boolean => {
  try {
    execFileSync("ip", ["link", "show", "dev", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};

const scenarios: Record<string, () => Promise<unknown>> = {
  /** One datagram sent into the TUN, read into descriptor 0 of four. */
  async "read-udp"() {
    const tun = upTun();
    const sock = await udpSocket();
    mem.fill(0xaa);
    layout(4);
    await send(sock, "ping from the socket");
    const count = await readSome(tun, 4);
    const { off, len, wirelen } = desc(0);
    const whole = new Uint8Array(memory.buffer);
    const result = {
      count,
      off, len, wirelen,
      packet: hex(mem.subarray(off, off + len)),
      // the same bytes read through the whole memory, at the view's byteOffset
      packetInMemory: hex(whole.subarray(VIEW_AT + off, VIEW_AT + off + len)),
      byteBefore: mem[off - 1],
      byteAfter: mem[off + len],
      untouchedSlot1: desc(1).len === 2048 && mem.subarray(desc(1).off, desc(1).off + 2048).every((b) => b === 0xaa),
      localPort: sock.address().port,
      again: tun.readBatch(mem, 0, STRIDE, 4),
      stats: tun.stats(),
    };
    sock.close();
    tun.close();
    return result;
  },

  /** Reads the datagram, answers it with two staged replies of which only one has verdict 1. */
  async "udp-reply"() {
    const tun = upTun();
    const sock = await udpSocket();
    const received: { from: string; port: number; payload: string }[] = [];
    sock.on("message", (msg, rinfo) => received.push({ from: rinfo.address, port: rinfo.port, payload: msg.toString() }));
    layout(3);
    await send(sock, "ping");
    const read = await readSome(tun, 1);
    const port = sock.address().port;
    stage(0, reply(port, "pong (verdict 1)"), 1);
    stage(1, reply(port, "not me (verdict 0)"), 0);
    stage(2, reply(port, "me too (verdict 1)"), 1);
    const written = tun.writeBatch(mem, 0, STRIDE, 3, 1);
    const deadline = Date.now() + 2000;
    while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // room for a datagram that should not come
    const result = { read, written, received, stats: tun.stats() };
    sock.close();
    tun.close();
    return result;
  },

  /** Packets the kernel refuses (not IP) are counted, not thrown. */
  async refused() {
    const tun = upTun();
    layout(2);
    stage(0, new Uint8Array(40), 1); // IP version 0
    stage(1, new Uint8Array(40).fill(0xf0, 0, 1), 1); // IP version 15
    const written = tun.writeBatch(mem, 0, STRIDE, 2, 1);
    const single = tun.write(new Uint8Array(20));
    const result = { written, single, stats: tun.stats() };
    tun.close();
    return result;
  },

  /** Nothing sent: readBatch must come back at once with 0. */
  async empty() {
    const tun = upTun();
    layout(8);
    const counts: number[] = [];
    const start = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) counts.push(tun.readBatch(mem, 0, STRIDE, 8));
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    const result = { counts: [...new Set(counts)], ms, stats: tun.stats() };
    tun.close();
    return result;
  },

  /** Into 64-byte slots: a 328-byte packet, then one of exactly 64 bytes. */
  async truncate() {
    const tun = upTun();
    const sock = await udpSocket();
    layout(2, 64);
    await send(sock, Buffer.alloc(300, 0x55));
    await new Promise((r) => setTimeout(r, 50));
    const big = tun.readBatch(mem, 0, STRIDE, 2);
    const afterBig = tun.stats();
    layout(2, 64);
    await send(sock, Buffer.alloc(64 - 28, 0x66));
    const exact = await readSome(tun, 2);
    const result = { big, afterBig, exact, exactLen: desc(0).len, stats: tun.stats() };
    sock.close();
    tun.close();
    return result;
  },

  /** onReadable drains, then closes twice; nothing else keeps the process alive, so it should exit on its own. */
  async readable() {
    const tun = upTun();
    const sock = await udpSocket();
    layout(4);
    const seen = { calls: 0, packets: 0, closeThrew: null as unknown };
    tun.onReadable(() => {
      seen.calls++;
      let n: number;
      do {
        n = tun.readBatch(mem, 0, STRIDE, 4);
        seen.packets += n;
      } while (n === 4);
      if (seen.packets >= 2) {
        seen.closeThrew = errorOf(() => {
          tun.close();
          tun.close();
        });
        sock.close();
      }
    });
    await send(sock, "one");
    await send(sock, "two");
    // Report at exit: reaching it at all means close() released the loop.
    return reportAtExit(() => seen);
  },

  /** onReadable then pause: no callbacks, the packet waits in the device, and the process can exit while it is open. */
  async pause() {
    const tun = upTun();
    const sock = await udpSocket();
    layout(4);
    let calls = 0;
    tun.onReadable(() => calls++);
    tun.pause();
    tun.pause();
    await send(sock, "waiting");
    sock.close();
    await new Promise((r) => setTimeout(r, 200));
    return reportAtExit(() => ({ calls, readAfterPause: tun.readBatch(mem, 0, STRIDE, 4), name: tun.name }));
  },

  /** Close is idempotent; later calls fail clearly; the interface goes away. */
  async close() {
    const tun = upTun();
    const name = tun.name;
    const existedOpen = linkExists(name);
    tun.close();
    const second = errorOf(() => tun.close());
    layout(1);
    return {
      name,
      existedOpen,
      existsAfterClose: linkExists(name),
      second,
      pause: errorOf(() => tun.pause()),
      readBatch: errorOf(() => tun.readBatch(mem, 0, STRIDE, 1)),
      writeBatch: errorOf(() => tun.writeBatch(mem, 0, STRIDE, 1, 1)),
      write: errorOf(() => tun.write(new Uint8Array(20))),
      onReadable: errorOf(() => tun.onReadable(() => {})),
      stats: errorOf(() => tun.stats()),
    };
  },

  /** The requested name, and "pias%d" numbered by the kernel. */
  async names() {
    const named = TunDevice.open({ name: "piastest7" });
    const numbered = TunDevice.open();
    const result = { named: named.name, numbered: numbered.name, bothExist: linkExists(named.name) && linkExists(numbered.name) };
    named.close();
    numbered.close();
    return result;
  },

  /** Each bad call, by name: the error it threw (or null), then whether the device still works. */
  async "bad-args"() {
    const tun = upTun();
    layout(4);
    const len = mem.length;
    const slot = (i: number, off: number, size: number): void => {
      dv().setUint32(i * STRIDE, off, true);
      dv().setUint32(i * STRIDE + 4, size, true);
    };
    const any = tun as unknown as Record<string, (...a: unknown[]) => unknown>;
    const cases: Record<string, () => unknown> = {
      "mem is a string": () => any.readBatch("mem", 0, STRIDE, 1),
      "mem is a Uint16Array": () => tun.readBatch(new Uint16Array(1024) as unknown as Uint8Array, 0, STRIDE, 1),
      "mem is missing": () => any.readBatch(),
      "desc is negative": () => tun.readBatch(mem, -1, STRIDE, 1),
      "desc is fractional": () => tun.readBatch(mem, 0.5, STRIDE, 1),
      "desc is NaN": () => tun.readBatch(mem, NaN, STRIDE, 1),
      "desc is a string": () => any.readBatch(mem, "0", STRIDE, 1),
      "stride is smaller than a descriptor": () => tun.readBatch(mem, 0, 8, 1),
      "descriptors run past the end": () => tun.readBatch(mem, len - 16, STRIDE, 1),
      "max is huge": () => tun.readBatch(mem, 0, STRIDE, 2 ** 31),
      "max is above u32": () => tun.readBatch(mem, 0, STRIDE, 2 ** 40),
      "a slot runs past the end": () => {
        slot(2, len - 100, 2048);
        return tun.readBatch(mem, 0, STRIDE, 4);
      },
      "a slot's OFF + capacity overflows u32": () => {
        layout(4);
        slot(1, 0xffffffff, 0xffffffff);
        return tun.readBatch(mem, 0, STRIDE, 4);
      },
      "a slot has capacity 0": () => {
        layout(4);
        slot(3, 1024, 0);
        return tun.readBatch(mem, 0, STRIDE, 4);
      },
      "a slot lies beyond a short view, though inside the buffer": () => {
        layout(1);
        const short = new Uint8Array(memory.buffer, VIEW_AT, 512); // the slot at 1024 is outside it
        return tun.readBatch(short, 0, STRIDE, 1);
      },
      "write: a packet past the end": () => {
        layout(2);
        slot(1, len - 10, 20);
        mem[STRIDE + VERDICT_AT] = 1;
        return tun.writeBatch(mem, 0, STRIDE, 2, 1);
      },
      "write: stride 28 leaves no verdict byte": () => tun.writeBatch(mem, 0, 28, 1, 1),
      "write: verdict 256": () => tun.writeBatch(mem, 0, STRIDE, 1, 256),
      "write: a string": () => any.write("packet"),
      "write: an ArrayBuffer": () => any.write(new ArrayBuffer(20)),
      "onReadable without a function": () => any.onReadable(42),
      "open: a 16-byte name": () => TunDevice.open({ name: "x".repeat(16) }),
      "open: a name that is not a string": () => TunDevice.open({ name: 7 as unknown as string }),
      "a view over a memory that has since grown (detached)": () => {
        const stale = new Uint8Array(memory.buffer, VIEW_AT);
        memory.grow(1); // detaches the old buffer: the stale view now has length 0
        return tun.readBatch(stale, 0, STRIDE, 1);
      },
      "a packet past the end whose verdict is not asked for (ignored, no error)": () => {
        const m = new Uint8Array(memory.buffer, VIEW_AT);
        for (let i = 0; i < 2; i++) {
          new DataView(memory.buffer, VIEW_AT).setUint32(i * STRIDE, m.length - 4, true);
          new DataView(memory.buffer, VIEW_AT).setUint32(i * STRIDE + 4, 100, true);
          m[i * STRIDE + VERDICT_AT] = 0;
        }
        return tun.writeBatch(m, 0, STRIDE, 2, 1);
      },
    };
    const errors: Record<string, ReturnType<typeof errorOf>> = {};
    for (const [what, fn] of Object.entries(cases)) errors[what] = errorOf(fn);
    const fresh = new Uint8Array(memory.buffer, VIEW_AT);
    new DataView(memory.buffer, VIEW_AT).setUint32(0, 1024, true);
    new DataView(memory.buffer, VIEW_AT).setUint32(4, 2048, true);
    const stillWorks = tun.readBatch(fresh, 0, STRIDE, 1);
    const stats = tun.stats();
    tun.close();
    return { errors, stillWorks, stats };
  },

  /** The I/O path asked for is the one in use. */
  async io() {
    const tun = upTun();
    const result = tun.features();
    tun.close();
    return result;
  },

  /** With the virtio-net header: a UDP datagram comes with a header in front, its checksum left partial. */
  async "vnet-udp"() {
    const tun = upTun(undefined, { vnetHdr: true });
    const sock = await udpSocket();
    layout(2);
    await send(sock, "with a header");
    const count = await readSome(tun, 2);
    const { off, len } = desc(0);
    const bytes = mem.slice(off, off + len);
    const result = { count, len, features: tun.features(), vnet: vnetHeader(bytes), ...completed(bytes.subarray(VNET_HDR_LEN), vnetHeader(bytes)) };
    sock.close();
    tun.close();
    return result;
  },

  /** UDP_SEGMENT (python): one 4500-byte send leaves as one UDP super-packet of 1000-byte segments. */
  async "vnet-udp-gso"() {
    const tun = upTun(undefined, { vnetHdr: true });
    layout(4, 65536 + 64);
    const py = spawnSync("python3", ["-c", [
      "import socket",
      "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
      `s.bind(("${LOCAL}", 0))`,
      "s.setsockopt(17, 103, 1000)  # SOL_UDP, UDP_SEGMENT",
      `s.sendto(bytes(range(250)) * 18, ("${PEER}", ${PEER_PORT}))`,
    ].join("\n")], { encoding: "utf8" });
    const count = await readSome(tun, 4);
    const { off, len } = desc(0);
    const bytes = mem.slice(off, off + len);
    const result = { python: py.status === 0 ? null : py.stderr, count, len, vnet: vnetHeader(bytes), ...completed(bytes.subarray(VNET_HDR_LEN), vnetHeader(bytes)) };
    tun.close();
    return result;
  },

  /**
   * TCP through a header-carrying TUN: the test answers a local connection's
   * SYN itself, then reads the data the socket sends (TSO: super-packets) and
   * writes one super-packet of its own back, which the kernel segments and
   * the socket receives whole.
   */
  async "vnet-tcp"() {
    const tun = upTun(undefined, { vnetHdr: true });
    layout(16, 65536 + 64);
    const received: Buffer[] = [];
    const socket = net.connect({ host: PEER, port: 8080, localAddress: LOCAL });
    socket.on("data", (b) => received.push(b));
    socket.on("error", () => {});
    const packets = async (): Promise<Uint8Array[]> => {
      const n = await readSome(tun, 16);
      return Array.from({ length: n }, (_, i) => mem.slice(desc(i).off, desc(i).off + desc(i).len));
    };
    const ip = (b: Uint8Array): Uint8Array => b.subarray(VNET_HDR_LEN);
    const tcp = (b: Uint8Array) => {
      const p = ip(b);
      const t = 20;
      const v = new DataView(p.buffer, p.byteOffset);
      return { sport: v.getUint16(t), seq: v.getUint32(t + 4), flags: p[t + 13], payload: p.length - t - (p[t + 12] >> 4) * 4 };
    };
    // the sender's SYN (other packets, or none yet on a loaded machine, may come first)
    let syn: Uint8Array | undefined;
    for (const deadline = Date.now() + 10_000; !syn && Date.now() < deadline;) syn = (await packets()).find((b) => ip(b)[9] === 6 && (tcp(b).flags & 0x02) !== 0);
    if (!syn) throw new Error("no SYN from the local TCP sender within 10 s");
    const client = tcp(syn);
    const ISN = 1000;
    const segment = (flags: number, seq: number, payload: Uint8Array = new Uint8Array(0)) => buildPacket({
      family: 4, proto: "tcp", src: ipBytes(PEER), dst: ipBytes(LOCAL), sport: 8080, dport: client.sport,
      tcpFlags: flags, tcpSeq: seq, tcpAck: (client.seq + 1) >>> 0, payload,
    });
    tun.write(segment(0x12, ISN)); // SYN-ACK, window 65535, no options: MSS 536
    await once(socket, "connect");
    socket.write(Buffer.alloc(20000, 0x5a));
    const data: ReturnType<typeof vnetHeader>[] = [];
    let bytes = 0;
    const verified: boolean[] = [];
    // the first window: 10 segments of 536 bytes (initial cwnd, no MSS option), in super-packets
    for (let tries = 0; tries < 50 && bytes < 10 * 536; tries++) {
      for (const b of await packets()) {
        if (tcp(b).payload === 0) continue;
        data.push(vnetHeader(b));
        bytes += tcp(b).payload;
        verified.push(completed(ip(b), vnetHeader(b)).completedValid);
      }
    }
    // our super-packet: 6000 bytes in 1000-byte segments, checksum left partial (the pseudo-header sum, as a TSO sender leaves it)
    const payload = new Uint8Array(6000).map((_, i) => i & 0xff);
    const superPacket = segment(0x18, ISN + 1, payload);
    const l4 = superPacket.subarray(20);
    const pseudo = onesSum(new Uint8Array([...superPacket.subarray(12, 20), 0, 6, l4.length >> 8, l4.length & 0xff]));
    new DataView(l4.buffer, l4.byteOffset).setUint16(16, pseudo);
    const hdr = new Uint8Array(VNET_HDR_LEN);
    const hv = new DataView(hdr.buffer);
    hdr[0] = 1; // NEEDS_CSUM
    hdr[1] = 1; // GSO TCPV4
    hv.setUint16(2, 40, true); // hdr_len
    hv.setUint16(4, 1000, true); // gso_size
    hv.setUint16(6, 20, true); // csum_start
    hv.setUint16(8, 16, true); // csum_offset
    mem.set(hdr, 1024);
    mem.set(superPacket, 1024 + VNET_HDR_LEN);
    dv().setUint32(0, 1024, true);
    dv().setUint32(4, VNET_HDR_LEN + superPacket.length, true);
    mem[VERDICT_AT] = 1;
    const written = tun.writeBatch(mem, 0, STRIDE, 1, 1);
    const deadline = Date.now() + 3000;
    while (Buffer.concat(received).length < payload.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const got = Buffer.concat(received);
    const result = { data, bytes, verified, written, receivedLength: got.length, receivedEqual: Buffer.from(payload).equals(got), stats: tun.stats() };
    socket.destroy();
    tun.close();
    return result;
  },

  /** Two queues of one multi-queue device: datagrams of 24 flows are spread over both. */
  async multiqueue() {
    const q0 = upTun("piasmq0", { multiQueue: true });
    const q1 = TunDevice.open({ name: "piasmq0", multiQueue: true, io: IO });
    const sockets = await Promise.all(Array.from({ length: 24 }, () => udpSocket()));
    for (const s of sockets) await send(s, "which queue?");
    // the test's IPv4 datagrams only: the kernel may send its own IPv6 packets (router solicitations, MLD) into a new device
    const udp = (tun: TunDevice): number => {
      layout(32);
      const n = tun.readBatch(mem, 0, STRIDE, 32);
      let count = 0;
      for (let i = 0; i < n; i++) {
        const { off } = desc(i);
        if (mem[off] >> 4 === 4 && mem[off + 9] === 17) count++;
      }
      return count;
    };
    let n0 = 0;
    let n1 = 0;
    for (const deadline = Date.now() + 3000; n0 + n1 < 24 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 10))) {
      n0 += udp(q0);
      n1 += udp(q1);
    }
    await new Promise((r) => setTimeout(r, 100)); // room for a datagram read twice, which should not come
    n0 += udp(q0);
    n1 += udp(q1);
    const result = { n0, n1, f0: q0.features(), f1: q1.features(), name1: q1.name };
    for (const s of sockets) s.close();
    q1.close();
    const existsWithOneQueue = linkExists("piasmq0");
    q0.close();
    return { ...result, existsWithOneQueue, existsAfterBoth: linkExists("piasmq0") };
  },

  /**
   * Two queues steered by the steering program, with 10.99.0.2 as "the
   * proxy" and NAT ports [2000, 2999] in two slices: datagrams to the proxy
   * reach the queue of their port's slice; others (to 10.99.0.3) are spread
   * by flow, each flow on one queue.
   */
  async steering() {
    const q0 = upTun("piassteer0", { multiQueue: true });
    const q1 = TunDevice.open({ name: "piassteer0", multiQueue: true, io: IO });
    execFileSync("ip", ["route", "add", "10.99.1.0/24", "dev", "piassteer0"]);
    const why = q0.attachSteering({ proxy4: Uint8Array.from([10, 99, 0, 2]), proxy6: null, portMin: 2000, portMax: 2999, slice: 500, workers: 2 });
    const sock = await udpSocket();
    const sent: { to: string; port: number }[] = [];
    for (const port of [2000, 2499, 2500, 2999, 2001, 2777]) sent.push({ to: PEER, port });
    for (let i = 0; i < 12; i++) sent.push({ to: "10.99.1.3", port: 7000 + i });
    for (const s of sent) await new Promise<void>((r, j) => sock.send("steer", s.port, s.to, (e) => (e ? j(e) : r())));
    // a flow's second datagram: the same queue as its first
    for (let i = 0; i < 12; i++) await new Promise<void>((r, j) => sock.send("again", 7000 + i, "10.99.1.3", (e) => (e ? j(e) : r())));
    await new Promise((r) => setTimeout(r, 200));
    const seen: Record<string, number[]> = {};
    for (const [q, tun] of [[0, q0], [1, q1]] as const) {
      layout(32);
      const n = tun.readBatch(mem, 0, STRIDE, 32);
      for (let i = 0; i < n; i++) {
        const { off, len } = desc(i);
        const p = mem.subarray(off, off + len);
        if (p[9] !== 17) continue;
        const key = `${p.slice(16, 20).join(".")}:${(p[22] << 8) | p[23]}`;
        (seen[key] ??= []).push(q);
      }
    }
    sock.close();
    q1.close();
    q0.close();
    return { why, seen, refused: TunDevice.open({ name: "piassteer1", multiQueue: true, refuse: TunRefuse.STEERING }).attachSteering({ proxy4: null, proxy6: null, portMin: 1, portMax: 2, slice: 1, workers: 2 }) };
  },

  /** Each step the kernel may refuse, refused in turn: what the queue runs with, and the notes. */
  async refusals() {
    const cases: Record<string, TunOptions> = {
      "USO refused": { vnetHdr: true, refuse: TunRefuse.USO4 },
      "TSO and USO refused": { vnetHdr: true, refuse: TunRefuse.TSO4 | TunRefuse.USO4 },
      "every offload refused": { vnetHdr: true, refuse: TunRefuse.CSUM },
      "the header refused": { vnetHdr: true, refuse: TunRefuse.VNET_HDR },
      "multi-queue refused": { multiQueue: true, refuse: TunRefuse.MULTI_QUEUE },
      "io_uring refused": { io: "uring", refuse: TunRefuse.URING },
      "nothing refused": { vnetHdr: true, multiQueue: true, io: "uring" },
    };
    const out: Record<string, unknown> = {};
    for (const [what, options] of Object.entries(cases)) {
      const tun = TunDevice.open({ io: IO, ...options });
      out[what] = tun.features();
      tun.close();
    }
    return out;
  },

  /** Just open (run with fewer privileges). */
  async open() {
    const err = errorOf(() => TunDevice.open().close());
    return { error: err };
  },
};

/** The virtio_net_hdr in front of a packet read with vnetHdr. */
function vnetHeader(b: Uint8Array) {
  const v = new DataView(b.buffer, b.byteOffset);
  return { flags: b[0], gsoType: b[1], hdrLen: v.getUint16(2, true), gsoSize: v.getUint16(4, true), csumStart: v.getUint16(6, true), csumOffset: v.getUint16(8, true) };
}

/**
 * A packet whose checksum the header leaves partial (NEEDS_CSUM), completed
 * as the kernel does (the sum from csum_start to the end, complemented, at
 * csum_start + csum_offset): whether the field held more than the
 * pseudo-header, and whether the completed packet verifies.
 */
function completed(ip: Uint8Array, h: ReturnType<typeof vnetHeader>) {
  const p = ip.slice();
  if (h.flags & 1) {
    const at = h.csumStart + h.csumOffset;
    const c = complement(onesSum(p, h.csumStart));
    p[at] = c >> 8;
    p[at + 1] = c & 0xff;
  }
  return { completedValid: checksumsValid(p).l4, ipLength: new DataView(p.buffer).getUint16(2) };
}

function report(result: unknown): void {
  process.stdout.write(JSON.stringify(result) + "\n");
}

/** For scenarios that must let the loop run dry: report when the process exits by itself. */
const AT_EXIT = Symbol("reports at exit");
function reportAtExit(observe: () => unknown): typeof AT_EXIT {
  process.on("exit", () => report(observe()));
  return AT_EXIT;
}

const name = process.argv[2] ?? "";
const scenario = scenarios[name];
if (!scenario) {
  process.stderr.write(`unknown scenario "${name}"; one of: ${Object.keys(scenarios).join(", ")}\n`);
  process.exit(2);
}
const result = await scenario();
if (result !== AT_EXIT) report(result);
