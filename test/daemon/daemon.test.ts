// The daemon (src/daemon/daemon.ts) without root: Daemon.start on the TUN
// backend over an in-memory device (DaemonOptions.io; test/helpers/fake-tun.ts),
// with its real pump, core, health checks against servers on loopback,
// metrics endpoint on loopback, reload and drain. test/e2e/daemon.test.ts
// runs `pias run` on a real device in network namespaces.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { HostWork, Verdict } from "../../assembly/shared/abi.js";
import { Daemon } from "../../src/daemon/daemon.js";
import { TunBackend } from "../../src/io/tun-backend.js";
import { parseAddress } from "../../src/net/addr.js";
import { FakeTun } from "../helpers/fake-tun.js";
import { buildPacket, get16, locate, type PacketSpec } from "../helpers/packets.js";

const dir = mkdtempSync(join(tmpdir(), "pias-daemon-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const a = (text: string): Uint8Array => parseAddress(text).bytes;
const packet = (over: Partial<PacketSpec> = {}): Uint8Array =>
  buildPacket({ family: 4, proto: "udp", src: a("10.0.0.7"), dst: a("203.0.113.10"), sport: 5000, dport: 53, payload: new Uint8Array(8), ...over });
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A TCP port on loopback nothing listens on (bound, then closed). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A config: one UDP group, more `groups`, top-level sections replaced by `extra`. */
function configText(extra: Record<string, unknown> = {}, groups: unknown[] = []): string {
  return JSON.stringify({
    proxy: { address: "198.51.100.1", anycastPrefixes: ["203.0.113.0/24"] },
    capacity: { flows: 4096, groups: 8, targets: 16 },
    daemon: { drainMs: 300, logLevel: "info" },
    groups: [{ protocol: "udp", address: "203.0.113.10", port: 53, targets: [{ address: "192.0.2.11", port: 5353 }] }, ...groups],
    ...extra,
  });
}

let configs = 0;
function config(extra: Record<string, unknown> = {}, groups: unknown[] = []): string {
  const path = join(dir, `config-${++configs}.json`);
  writeFileSync(path, configText(extra, groups));
  return path;
}

async function start(configPath: string, onHost?: Parameters<typeof Daemon.start>[0]["onHost"]) {
  const tun = new FakeTun();
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const d = await Daemon.start({ configPath, logger, io: async () => TunBackend.over(tun), onHost });
  return { d, tun, logs, msgs: () => logs.map((l) => l.msg) };
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("started on a given backend, the daemon forwards what the device delivers and logs ready; stop() drains live flows at most drainMs, then closes the backend", async () => {
  const { d, tun, logs, msgs } = await start(config());
  const ready = logs.find((l) => l.msg === "ready");
  assert.deepEqual([ready?.io, ready?.groups, ready?.targets], ["tun fake0", 1, 1]);
  tun.deliver(packet(), packet({ dst: a("198.18.0.1") }));
  await turn();
  assert.equal(tun.written.length, 1);
  assert.deepEqual([...locate(tun.written[0]).dst], [192, 0, 2, 11]);
  const c = d.dp.counters();
  assert.deepEqual([c.packets, c.forwarded, c.dropped, c.flowsLive], [2, 1, 1, 1]);

  const t0 = Date.now();
  await d.stop();
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 2000, `a live flow holds the drain for drainMs (300 ms): ${took} ms`);
  assert.equal(tun.closed, true);
  assert.deepEqual(msgs().slice(-2), ["draining", "stopped"]);
});

test("reload applies a changed file keeping live flows' NAT bindings; a bad file, or one changing the proxy's address, is refused with one log line and the running config stays", async () => {
  const path = config();
  const { d, tun, logs } = await start(path);
  tun.deliver(packet());
  await turn();
  const port = get16(tun.written[0], locate(tun.written[0]).l4);

  writeFileSync(path, configText({}, [{ protocol: "udp", address: "203.0.113.20", port: 53, targets: [{ address: "192.0.2.12", port: 5353 }] }]));
  assert.equal(d.reload(), true);
  tun.deliver(packet(), packet({ dst: a("203.0.113.20") }));
  await turn();
  assert.equal(get16(tun.written[1], locate(tun.written[1]).l4), port, "the live flow kept its NAT port");
  assert.deepEqual([...locate(tun.written[2]).dst], [192, 0, 2, 12], "the added group serves");

  writeFileSync(path, "{ not json");
  assert.equal(d.reload(), false);
  writeFileSync(path, configText({ proxy: { address: "198.51.100.2" } }));
  assert.equal(d.reload(), false);
  const rejected = logs.filter((l) => l.msg === "config reload rejected; the running config stays");
  assert.equal(rejected.length, 2);
  assert.match(String(rejected[1].err), /cannot change without a restart/);
  assert.deepEqual(d.dp.groupKeys(), ["udp 203.0.113.10:53", "udp 203.0.113.20:53"], "the reloaded config keeps running");
  await d.stop(0);
});

test("packets the core hands to the host go to the onHost handler", async () => {
  const seen: [Verdict, number][] = [];
  const { d, tun } = await start(config(), (ring, slot) => seen.push([ring.verdict(slot), ring.reason(slot)]));
  tun.deliver(packet({ dst: a("203.0.113.99") }));
  await turn();
  assert.deepEqual(seen, [[Verdict.ToHost, HostWork.Unresolved]]);
  await d.stop(0);
});

test("health checks mark a target whose port is closed down, and new flows go to the others; metrics show both", async () => {
  const server: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const open = (server.address() as { port: number }).port;
  const closed = await freePort();
  const metricsPort = await freePort();
  const path = config({ daemon: { drainMs: 0, logLevel: "info", metrics: `127.0.0.1:${metricsPort}` } }, [{
    protocol: "tcp", address: "203.0.113.30", port: 80, policy: "round-robin",
    health: { check: "tcp", intervalMs: 100, timeoutMs: 50, fall: 1, rise: 1 },
    targets: [{ address: "127.0.0.1", port: open }, { address: "127.0.0.2", port: closed }],
  }]);
  const { d, tun, logs } = await start(path);
  try {
    await until("the closed target down", () => logs.some((l) => l.msg === "target down"));
    assert.deepEqual(logs.filter((l) => l.msg === "target down").map((l) => l.target), [`127.0.0.2:${closed}`]);
    tun.deliver(...Array.from({ length: 6 }, (_, i) => packet({ proto: "tcp", dst: a("203.0.113.30"), dport: 80, sport: 6000 + i })));
    await turn();
    assert.deepEqual(tun.written.map((p) => [...locate(p).dst].join(".")), Array(6).fill("127.0.0.1"));
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(text, new RegExp(`pias_target_up\\{group="tcp 203\\.0\\.113\\.30:80",target="127\\.0\\.0\\.2:${closed}"\\} 0`));
    assert.match(text, new RegExp(`pias_target_up\\{group="tcp 203\\.0\\.113\\.30:80",target="127\\.0\\.0\\.1:${open}"\\} 1`));
    assert.match(text, /pias_io_packets_total\{event="read"\} 6/);
  } finally {
    await d.stop();
    server.close();
  }
});
