// The cluster wiring of `pias run` under abuse, on an in-memory backend (no
// device, no root): what a flood of packets to unused TAs costs, and how
// joins reach the data plane (batched per tick, acknowledged only once
// installed, refused with the data plane's reason).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { Daemon } from "../../src/daemon/daemon.js";
import { Authenticator } from "../../src/control/auth.js";
import type { JoinAckMessage, Message } from "../../src/control/message.js";
import type { TransportAddress } from "../../src/control/ta.js";
import { parseAddress } from "../../src/net/addr.js";
import { buildUdp, parseUdp } from "../../src/net/packet.js";
import { MemoryIO } from "../helpers/memory-io.js";

const PORT = 7470;
const ANYCAST = parseAddress("198.51.100.1").bytes;
const TA: TransportAddress = { protocol: "tcp", address: parseAddress("198.51.100.10").bytes, port: 80 };
const JOIN_KEY = new Uint8Array(32).fill(0xa7);

async function startDaemon(capacity: { flows: number; groups: number; targets: number }) {
  const dir = mkdtempSync(join(tmpdir(), "pias-cluster-daemon-"));
  const path = join(dir, "p1.json");
  writeFileSync(path, JSON.stringify({
    proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
    capacity,
    daemon: { drainMs: 0 },
    cluster: { id: "p1", controlPort: PORT, key: "c1".repeat(32), groups: [{ protocol: "tcp", address: "198.51.100.10", port: 80, joinKey: "a7".repeat(32) }] },
  }));
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l)); cb(); } });
  const io = new MemoryIO();
  const daemon = await Daemon.start({ configPath: path, logger: pino({ level: "info" }, sink), io: async () => io });
  const drained = async (): Promise<void> => {
    while (io.queue.length > 0) await new Promise((r) => setImmediate(r));
  };
  const signer = new Authenticator({ groupKey: () => JOIN_KEY, now: Date.now });
  const acks = (): JoinAckMessage[] => {
    // a fresh opener each time: its replay cache would refuse frames it opened before
    const opener = new Authenticator({ groupKey: () => JOIN_KEY, now: Date.now });
    return io.sent.flatMap((p) => {
      const d = parseUdp(p);
      if (!d || d.sport !== PORT) return [];
      const o = opener.open(d.payload);
      return o.ok && o.message.type === "join-ack" ? [o.message] : [];
    });
  };
  const joinFrom = (i: number): Uint8Array => {
    const target = { endpoint: { address: Uint8Array.of(10, 8, i >> 8, i & 255), port: 8080 }, weight: 1, label: null, aware: false };
    const msg: Message = { type: "join", ta: TA, target };
    return buildUdp(target.endpoint.address, 40000, ANYCAST, PORT, signer.seal(msg));
  };
  const stop = async (): Promise<void> => {
    await daemon.stop(0);
    rmSync(dir, { recursive: true, force: true });
  };
  return { daemon, io, lines, drained, acks, joinFrom, stop };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("cluster daemon: joins reach the data plane in batches and only installed targets are acknowledged", () => {
  let d: Awaited<ReturnType<typeof startDaemon>>;
  before(async () => {
    d = await startDaemon({ flows: 4096, groups: 16, targets: 3 });
  });
  after(() => d.stop());

  test("joins are not applied on the packet path: the data plane changes at the next tick, with one table update for the batch", async () => {
    d.io.push(d.joinFrom(1), d.joinFrom(2));
    await d.drained();
    assert.equal(d.daemon.dp.targetStats().length, 0, "nothing installed while the packets were handled");
    assert.equal(d.acks().length, 0, "and nothing acknowledged");
    await sleep(250);
    assert.equal(d.daemon.dp.targetStats().length, 2);
    const changed = d.lines.filter((l) => l.msg === "targets changed");
    assert.equal(changed.length, 1, "both joins in one batch");
    assert.deepEqual(d.acks().map((a) => [a.accepted, a.reason]), [[true, "none"], [true, "none"]]);
  });

  test("a join the data plane has no room for is refused to the joiner (dataplane-full) and counted, never acknowledged", async () => {
    d.io.push(d.joinFrom(3), d.joinFrom(4), d.joinFrom(5));
    await sleep(250);
    const acks = d.acks().slice(2);
    assert.deepEqual(acks.map((a) => [a.accepted, a.reason]).sort(), [[false, "dataplane-full"], [false, "dataplane-full"], [true, "none"]].sort());
    const s = d.daemon.cluster!.node.stats();
    assert.equal(s.jap.targets, 3, "the JAP counts only installed targets");
    assert.equal(s.jap.installRefused, 2);
    assert.equal(d.daemon.cluster!.counters.installRefused, 2);
    assert.equal(d.daemon.dp.targetStats().length, 3);
  });
});

describe("cluster daemon: a flood of packets to unused TAs of the anycast prefix", () => {
  let d: Awaited<ReturnType<typeof startDaemon>>;
  before(async () => {
    d = await startDaemon({ flows: 4096, groups: 16, targets: 16 });
  });
  after(() => d.stop());

  test("costs the host a bounded number of packets a second and no state per TA (no RAP group, no IAP cache entry, no queued packet left), bounded log lines, and every packet is counted", async () => {
    const n = 20_000;
    let seed = 1;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (let i = 0; i < n; i++) {
      const src = Uint8Array.of(100, rnd() & 255, rnd() & 255, 1 + (rnd() % 254));
      const dst = Uint8Array.of(198, 51, 100, 2 + (rnd() % 250));
      const dport = 10_000 + (rnd() % 50_000); // never the control port
      d.io.push(buildUdp(src, 1024 + (rnd() % 60000), dst, dport, new Uint8Array(64)));
    }
    await d.drained();
    await sleep(250);
    const s = d.daemon.cluster!.node.stats();
    const c = d.daemon.cluster!.counters;
    const throttled = d.daemon.dp.counters().drops["resolve-throttled"] ?? 0;
    assert.equal(c.unresolved + throttled, n, "every packet reached the host or was dropped by the core as resolve-throttled");
    assert.ok(c.unresolved <= 2 * 1000, `the core hands the host at most 1000 a second: ${c.unresolved}`);
    assert.equal(c.unresolvedDropped, c.unresolved, "every packet the host saw dropped and counted");
    assert.equal(s.rap.groups, 0, "the RAP keeps nothing per TA asked about");
    assert.equal(s.iap.cache, 0, "negative answers are not map entries");
    assert.ok(s.iap.negative > 0 && s.iap.negative <= 65536, String(s.iap.negative));
    assert.equal(s.iap.pending, 0);
    assert.equal(s.iap.queuedBytes, 0);
    assert.ok(s.iap.lookupsThrottled > 0, "lookups past the budget were refused");
    assert.ok(s.iap.lookups <= 400 + 200, `lookups bounded by the budget: ${s.iap.lookups}`);
    const warned = d.lines.filter((l) => l.msg === "no JAP for group");
    assert.ok(warned.length <= 2, `one line per interval, not per packet: ${warned.length}`);
  });
});
