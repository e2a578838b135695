// The pias command line, run as a user runs it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { readCapture } from "../../src/capture/file.js";
import { REPO_ROOT, capture } from "../helpers/paths.js";
import { epb, idb, shb } from "../helpers/pcapng.js";

const tmp = mkdtempSync(join(tmpdir(), "pias-cli-"));

function pias(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), ...args], {
    encoding: "utf8",
    cwd: REPO_ROOT,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A one-line message on stderr, no stack trace. */
function oneLine(stderr: string): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0], /^pias: /);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

const trace = join(tmp, "trace.pcap");
const config = join(tmp, "trace.json");

test("gen-trace writes a deterministic trace and a config that serves it", () => {
  const r = pias("gen-trace", "--out", trace, "--packets", "3000", "--flows", "100", "--seed", "7", "--ipv6-share", "0.2", "--config-out", config);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3000 packets, 100 flows \(20 IPv6\)/);
  const again = join(tmp, "again.pcap");
  assert.equal(pias("gen-trace", "--out", again, "--packets", "3000", "--flows", "100", "--seed", "7", "--ipv6-share", "0.2").status, 0);
  assert.deepEqual(readFileSync(again), readFileSync(trace));
});

test("replay --json prints the summary object with every documented field", () => {
  const out = join(tmp, "out.pcap");
  const r = pias("replay", trace, "--config", config, "--out", out, "--json");
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const k of ["packets", "forwarded", "reflected", "dropped", "flows", "targets", "seconds", "mpps"]) assert.ok(k in j, k);
  assert.equal(j.packets, 3000);
  assert.equal(j.forwarded, 3000, `dropped: ${JSON.stringify(j.dropped)}`);
  assert.equal(j.flows, 100);
  assert.equal(Object.values(j.targets as Record<string, number>).reduce((a, b) => a + b, 0), 3000);
  assert.equal(readCapture(out).packets.length, 3000);
});

test("replay --reflect puts each legacy target's reply right after the packet, from the TA to the client", () => {
  const out = join(tmp, "reflect.pcap");
  const r = pias("replay", trace, "--config", config, "--out", out, "--reflect", "--json");
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.ok(j.reflected > 0);
  const packets = readCapture(out).packets;
  assert.equal(packets.length, j.forwarded + j.reflected);
  // A packet NATed to a legacy target leaves from the proxy (198.51.100.1); the record after it is the
  // target's reply as the client receives it: from the TA and port the client used, to the client.
  const tuple = (p: Uint8Array): string => {
    const ip = p.subarray(14); // Ethernet, IPv4
    const l4 = ip.subarray((ip[0] & 15) * 4);
    return `${ip.subarray(12, 16).join(".")}:${(l4[0] << 8) | l4[1]}>${ip.subarray(16, 20).join(".")}:${(l4[2] << 8) | l4[3]}`;
  };
  const isV4Tcp = (p: Uint8Array): boolean => p[12] === 0x08 && p[13] === 0 && p[14 + 9] === 6;
  const sent = new Set(readCapture(trace).packets.filter((p) => isV4Tcp(p.data)).map((p) => tuple(p.data)));
  let checked = 0;
  for (let k = 0; k + 1 < packets.length && checked < 50; k++) {
    const p = packets[k].data;
    if (!isV4Tcp(p) || p.subarray(26, 30).join(".") !== "198.51.100.1") continue;
    const [from, to] = tuple(packets[k + 1].data).split(">");
    assert.ok(sent.has(`${to}>${from}`), `record ${k + 2} (${from} > ${to}) is not the reply to a client's packet`);
    checked++;
  }
  assert.equal(checked, 50);
});

test("the demo replays the bundled trace through a 3-target group", { skip: !existsDemo() && "demo/demo.pcap is made by npm run build" }, () => {
  const r = pias("demo", "--out", join(tmp, "demo-out.pcap"), "--json");
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.packets, 20000);
  assert.equal(Object.keys(j.targets).length, 6); // 3 targets x (tcp, icmp)
  assert.deepEqual(j.dropped, {});
});

function existsDemo(): boolean {
  try {
    readFileSync(join(REPO_ROOT, "demo", "demo.pcap"));
    return true;
  } catch {
    return false;
  }
}

test("a missing input file is a one-line error with exit status 1", () => {
  const r = pias("replay", join(tmp, "nope.pcap"), "--config", config);
  assert.equal(r.status, 1);
  oneLine(r.stderr);
  assert.match(r.stderr, /cannot open/);
});

test("an output that cannot be written (a full device) is a one-line error naming it, with exit status 1", { skip: !existsSync("/dev/full") && "no /dev/full" }, () => {
  const r = pias("replay", trace, "--config", config, "--out", "/dev/full");
  assert.equal(r.status, 1);
  oneLine(r.stderr);
  assert.match(r.stderr, /^pias: cannot write \/dev\/full: ENOSPC/);
});

test("a file that is not a capture, and a truncated capture, are one-line errors", () => {
  const junk = join(tmp, "junk.pcap");
  writeFileSync(junk, "this is not a capture file");
  let r = pias("replay", junk, "--config", config);
  assert.equal(r.status, 1);
  oneLine(r.stderr);
  assert.match(r.stderr, /not a pcap or pcapng file/);
  const cut = join(tmp, "cut.pcap");
  writeFileSync(cut, readFileSync(trace).subarray(0, 5000));
  r = pias("replay", cut, "--config", config);
  assert.equal(r.status, 1);
  oneLine(r.stderr);
  assert.match(r.stderr, /ends in the middle of a record/);
});

test("a capture of an unknown link type is a one-line error", () => {
  const f = join(tmp, "link147.pcap");
  const b = Buffer.from(readFileSync(capture("tcpdump__LINKTYPE_RAW_ipv4.pcap")));
  b.writeUInt32LE(147, 20); // LINKTYPE_USER0
  writeFileSync(f, b);
  const r = pias("replay", f, "--config", config);
  assert.equal(r.status, 1);
  oneLine(r.stderr);
  assert.match(r.stderr, /link type 147 is not supported/);
});

test("a pcapng packet on an interface of an unknown link type is a one-line error (the other interface's packets are fine)", () => {
  const f = join(tmp, "link147.pcapng");
  writeFileSync(f, Buffer.concat([shb(), idb(101), idb(147), epb(0), epb(0), epb(1)])); // LINKTYPE_RAW, LINKTYPE_USER0
  const r = pias("replay", f, "--config", config);
  assert.equal(r.status, 1);
  oneLine(r.stderr);
  assert.match(r.stderr, /link type 147 is not supported/);
});

test("a bad config is a one-line error naming the path", () => {
  const bad = join(tmp, "bad.json");
  writeFileSync(bad, JSON.stringify({ proxy: { address: "198.51.100.1" }, groups: [{ protocol: "tcp", address: "203.0.113.10", port: 80, targets: [{ address: "192.0.2.300" }] }] }));
  const r = pias("replay", trace, "--config", bad);
  assert.equal(r.status, 1);
  oneLine(r.stderr);
  assert.match(r.stderr, /groups\[0\]\.targets\[0\]\.address: "192\.0\.2\.300" is not an IPv4 or IPv6 address/);
});

test("usage errors print the usage and exit with status 2", () => {
  assert.equal(pias("replay").status, 2);
  assert.equal(pias("replay", trace).status, 2);
  assert.equal(pias("frobnicate").status, 2);
  assert.equal(pias("replay", trace, "--config", config, "--bogus").status, 2);
  assert.equal(pias("help").status, 0);
});

const canDropRoot = process.getuid?.() === 0 && spawnSync("setpriv", ["--version"]).status === 0;

test("pias run without root says it needs root (CAP_NET_ADMIN), on one line, exit status 1", { skip: canDropRoot ? false : "needs root and setpriv to run as nobody" }, () => {
  const conf = join(tmp, "run.json");
  writeFileSync(conf, JSON.stringify({ proxy: { address: "10.255.0.1" }, groups: [{ protocol: "tcp", address: "198.51.100.10", port: 80, targets: [{ address: "10.0.0.2", port: 80 }] }] }), { mode: 0o644 });
  spawnSync("chmod", ["755", tmp]);
  const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, join(REPO_ROOT, "dist", "src", "cli", "pias.cjs"), "run", "--config", conf], { encoding: "utf8" });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^pias: opening a TUN device needs root \(CAP_NET_ADMIN\)/);
  oneLine(r.stderr);
});

test("pias run and pias join refuse missing options with usage, exit status 2", () => {
  const run = pias("run");
  assert.equal(run.status, 2);
  assert.match(run.stderr, /^pias: run needs --config CONF/);
  const join_ = pias("join");
  assert.equal(join_.status, 2);
  assert.match(join_.stderr, /^pias: join needs --anycast/);
});

/** The `pias` package.json installs: the CommonJS bundle npm run build makes (package.json, build:cli). */
const BIN = join(REPO_ROOT, JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).bin.pias as string);

function installed(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: tmp });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test("the installed pias (the bundle) replays byte for byte as the modules do, from any directory", { skip: !existsSync(BIN) && "the bundle is made by npm run build" }, () => {
  const fromModules = join(tmp, "modules.pcap");
  const fromBundle = join(tmp, "bundle.pcap");
  assert.equal(pias("replay", trace, "--config", config, "--out", fromModules, "--json").status, 0);
  const r = installed("replay", trace, "--config", config, "--out", fromBundle, "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).forwarded, 3000);
  assert.deepEqual(readFileSync(fromBundle), readFileSync(fromModules));
});

test("the installed pias loads the commands it does not bundle, and their usage errors exit with status 2", { skip: !existsSync(BIN) && "the bundle is made by npm run build" }, () => {
  for (const [args, message] of [[["run"], /^pias: run needs --config CONF/], [["join"], /^pias: join needs --anycast/], [["frobnicate"], /^pias: unknown command "frobnicate"/]] as const) {
    const r = installed(...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /usage: pias <command>/);
  }
  const missing = installed("replay", join(tmp, "nope.pcap"), "--config", config);
  assert.equal(missing.status, 1);
  oneLine(missing.stderr);
});
