// The pcap backend's own logic (src/io/pcap-backend.ts) on a fake node_pcap
// session and a fake neighbour table, with the real core in between: no
// interface, no libpcap, no root. test/e2e/pcap.test.ts runs it for real.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Reason, Verdict } from "../../assembly/shared/abi.js";
import { validateConfig } from "../../src/config/validate.js";
import { DataPlane } from "../../src/core/dataplane.js";
import type { PacketRing } from "../../src/core/ring.js";
import { Neighbors, type NeighborSource } from "../../src/io/neighbors.js";
import { PcapBackend, pcapFilter, type PcapSession, type RawPacket } from "../../src/io/pcap-backend.js";
import { parseAddress } from "../../src/net/addr.js";
import { buildPacket, checksumsValid, locate, withEthernet, type PacketSpec } from "../helpers/packets.js";

const a = (text: string): Uint8Array => parseAddress(text).bytes;
const OWN_MAC = [2, 0xee, 0, 0, 0, 1];
const ROUTER_MAC = [2, 0xee, 0, 0, 0, 0xfe];

class FakeSession implements PcapSession {
  link_type = "LINKTYPE_ETHERNET";
  injected: Uint8Array[] = [];
  failInject = false;
  closed = false;
  private handler: ((p: RawPacket) => void) | null = null;
  on(_event: "packet", cb: (p: RawPacket) => void): void {
    this.handler = cb;
  }
  inject(data: Buffer): void {
    if (this.failInject) throw new Error("send: No buffer space available");
    this.injected.push(Uint8Array.from(data));
  }
  close(): void {
    this.closed = true;
  }
  /** node_pcap's callback: the buffer holds more than the frame; the record header says how much is the frame. */
  capture(frame: Uint8Array, caplen = frame.length): void {
    const header = Buffer.alloc(16);
    header.writeUInt32LE(caplen, 8);
    header.writeUInt32LE(frame.length, 12);
    this.handler!({ buf: Buffer.concat([Buffer.from(frame), Buffer.alloc(64, 0xcc)]), header, link_type: this.link_type });
  }
}

/** One segment: 10.0.0.0/24 on-link, everything else via the router 10.0.0.254, whose MAC is known. */
function neighbors(): { n: Neighbors; resolved: string[] } {
  const resolved: string[] = [];
  const source: NeighborSource = {
    mac: () => OWN_MAC.map((x) => x.toString(16)).join(":"),
    routes: (family) => (family === 4 ? [{ dst: "default", gateway: "10.0.0.254" }, { dst: "10.0.0.0/24" }] : []),
    neighbors: () => [{ dst: "10.0.0.254", lladdr: ROUTER_MAC.map((x) => x.toString(16)).join(":"), state: ["REACHABLE"] }],
    resolve: (hop) => resolved.push(hop),
  };
  return { n: new Neighbors("eth9", source), resolved };
}

function setup() {
  const session = new FakeSession();
  const { n, resolved } = neighbors();
  const io = PcapBackend.over(session, n, "eth9");
  const dp = DataPlane.create({ address: "198.51.100.1", capacity: { flows: 1024, groups: 4, targets: 4 } }, [
    { protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 5353 }] },
  ]);
  const ring = dp.createRing(8, 2048);
  return { session, io, dp, ring, resolved };
}

const frame = (over: Partial<PacketSpec> = {}): Uint8Array =>
  withEthernet(buildPacket({ family: 4, proto: "udp", src: a("10.0.0.7"), dst: a("203.0.113.10"), sport: 5000, dport: 53, payload: new Uint8Array(10), ...over }));

/** What the pump does with a batch: reset the ring, read, process, send. */
function batch(io: PcapBackend, dp: DataPlane, ring: PacketRing): number {
  ring.reset(ring.slots, 1000, io.linkType);
  const n = io.read(ring, ring.slots);
  dp.processBatch(ring.desc, n);
  io.send(ring, n);
  return n;
}

test("the BPF filter captures IP to the anycast prefixes (else the group addresses) and the proxy's addresses, ANDed with the configured one", () => {
  const base = { proxy: { address: "198.51.100.1", address6: "2001:db8:ff::1" }, groups: [{ protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11" }] }] };
  assert.equal(pcapFilter(validateConfig(base), null), "(dst host 203.0.113.10 or dst host 198.51.100.1 or dst host 2001:db8:ff::1)");
  const prefixes = { ...base, proxy: { ...base.proxy, anycastPrefixes: ["203.0.113.0/24"] } };
  assert.equal(pcapFilter(validateConfig(prefixes), "vlan 7"), "(dst net 203.0.113.0/24 or dst host 198.51.100.1 or dst host 2001:db8:ff::1) and (vlan 7)");
  assert.throws(() => pcapFilter(validateConfig({ groups: [] }), null), /no anycast prefix, group or proxy address to capture/);
});

test("captured frames are queued (cut to their capture length) and read into ring slots in batches; one readable call per burst", async () => {
  const { session, io, ring } = setup();
  let readable = 0;
  io.onReadable(() => readable++);
  const frames = Array.from({ length: 11 }, (_, i) => frame({ sport: 6000 + i }));
  for (const f of frames) session.capture(f);
  session.capture(frame(), 30); // snaplen 30: only the first 30 bytes are the frame
  assert.equal(readable, 0, "not from inside the capture callback");
  await new Promise((r) => setImmediate(r));
  assert.equal(readable, 1);
  ring.reset(8, 1000, io.linkType);
  assert.equal(io.read(ring, 8), 8);
  for (let i = 0; i < 8; i++) assert.deepEqual([...ring.packet(i)], [...frames[i]], `slot ${i}`);
  ring.reset(8, 1000, io.linkType);
  assert.equal(io.read(ring, 8), 4);
  assert.deepEqual([...ring.packet(3)], [...frame().subarray(0, 30)]);
  assert.equal(io.read(ring, 8), 0);
  assert.deepEqual(io.stats(), { read: 12, written: 0, queueDropped: 0, neighborUnresolved: 0, injectErrors: 0, queued: 0 });
});

test("past 8192 waiting frames, captured frames are dropped and counted", () => {
  const { session, io } = setup();
  const f = frame();
  for (let i = 0; i < 8200; i++) session.capture(f);
  assert.equal(io.stats().queued, 8192);
  assert.equal(io.stats().queueDropped, 8);
});

test("what the core forwards is injected with this interface's MAC as source and the next hop's as destination; drops are not sent", () => {
  const { session, io, dp, ring } = setup();
  session.capture(frame());
  session.capture(frame({ dst: a("203.0.113.99") })); // not for the proxy
  assert.equal(batch(io, dp, ring), 2);
  assert.equal(ring.verdict(1), Verdict.Drop);
  assert.equal(ring.reason(1), Reason.NotForProxy);
  assert.equal(session.injected.length, 1);
  const out = session.injected[0];
  assert.deepEqual([...out.subarray(0, 6)], ROUTER_MAC, "to the router: 192.0.2.11 is off the segment");
  assert.deepEqual([...out.subarray(6, 12)], OWN_MAC);
  assert.deepEqual([...locate(out.subarray(14)).dst], [192, 0, 2, 11]);
  assert.deepEqual(checksumsValid(out.subarray(14)), { ip: true, l4: true, quoted: true });
  assert.equal(io.stats().written, 1);
});

test("a frame whose next hop has no MAC yet is dropped, counted and its resolution started; a failed injection is counted", () => {
  const { session, io, resolved } = setup();
  const onLink = frame({ dst: a("10.0.0.42") });
  assert.equal(io.sendOne(onLink), false);
  assert.deepEqual(resolved, ["10.0.0.42"]);
  const notIp = Uint8Array.from(frame(), (x, i) => (i === 12 ? 0x88 : i === 13 ? 0x47 : x)); // MPLS
  assert.equal(io.sendOne(notIp), false);
  assert.equal(io.stats().neighborUnresolved, 2);
  session.failInject = true;
  assert.equal(io.sendOne(frame()), false);
  assert.equal(io.stats().injectErrors, 1);
  assert.equal(session.injected.length, 0);
});

test("close() closes the session and no readable call follows", async () => {
  const { session, io } = setup();
  let readable = 0;
  io.onReadable(() => readable++);
  session.capture(frame());
  io.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(readable, 0);
  assert.equal(session.closed, true);
});
