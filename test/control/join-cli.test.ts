// `pias join` against a real proxy control plane on a UDP socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { once } from "node:events";
import { ControlNode } from "../../src/control/node.js";
import type { TargetEvent } from "../../src/control/jap.js";
import { sameTa } from "../../src/control/ta.js";
import { CLUSTER, GROUP } from "./arbitraries.js";
import { REPO_ROOT } from "../helpers/paths.js";

const FIXTURE = join(REPO_ROOT, "test/control/fixtures/join-cli.ts");
const tmp = mkdtempSync(join(tmpdir(), "pias-join-"));
const KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const keyFile = join(tmp, "group.key");
writeFileSync(keyFile, `${KEY_HEX}\n`);

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", FIXTURE, ...args], { encoding: "utf8", cwd: REPO_ROOT });
}

test("pias join joins through a proxy, keeps alive, and leaves on SIGTERM", async () => {
  const socket = createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  const port = socket.address().port;
  const events: TargetEvent[] = [];
  const node = new ControlNode({
    id: "ap-local",
    endpoint: { address: Uint8Array.of(127, 0, 0, 1), port },
    clusterKey: CLUSTER,
    groupKey: (ta) => (sameTa(ta, GROUP) ? Buffer.from(KEY_HEX, "hex") : undefined),
    seeds: [],
    now: Date.now,
    send: (to, bytes) => socket.send(bytes, to.port, `${to.address.join(".")}`),
    keepaliveIntervalS: 1,
    onTarget: (e) => events.push(e),
  });
  socket.on("message", (msg, rinfo) => node.receive({ address: Uint8Array.from(rinfo.address.split(".").map(Number)), port: rinfo.port }, new Uint8Array(msg)));
  const ticker = setInterval(() => node.tick(), 50);
  const child = spawn(
    process.execPath,
    ["--import", "tsx", FIXTURE, "--anycast", "127.0.0.1", "--port", String(port), "--group", "tcp:203.0.113.10:80", "--address", "10.0.0.5", "--target-port", "8080", "--key-file", keyFile, "--weight", "3", "--label", "eu-west"],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  try {
    const deadline = Date.now() + 20_000;
    while (!out.includes("joined") && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /joined via proxy ap-local \(127\.0\.0\.1:\d+\), keepalive every 1 s/, `stdout: ${out}\nstderr: ${err}`);
    assert.deepEqual(node.jap.targetsOf(GROUP).map((t) => [t.weight, t.label, t.aware]), [[3, "eu-west", false]]);
    // Keepalives keep it past three intervals.
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(node.jap.targetCount, 1, "kept alive by keepalives");
    assert.ok(node.stats().jap.keepalives >= 2);
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    assert.equal(code, 0, err);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(node.jap.targetCount, 0, "the LEAVE removed it");
    assert.equal(events.at(-1)?.reason, "leave");
    const prefix = "pias join: tcp 203.0.113.10:80 10.0.0.5:8080: ";
    const lines = out.trim().split("\n");
    assert.ok(lines.every((l) => l.startsWith(prefix)), out);
    assert.deepEqual(lines.map((l) => l.slice(prefix.length).split(" ")[0]), ["joining", "joined", "left"], "one line per state change");
  } finally {
    clearInterval(ticker);
    if (child.exitCode === null) child.kill("SIGKILL");
    socket.close();
  }
});

test("pias join refuses bad arguments with one line and no stack trace", () => {
  const base = ["--anycast", "127.0.0.1", "--port", "7400", "--group", "tcp:203.0.113.10:80", "--address", "10.0.0.5", "--target-port", "8080", "--key-file", keyFile];
  const cases: [string[], RegExp][] = [
    [base.filter((_, i) => i !== 6 && i !== 7), /join needs --address/],
    [[...base.slice(0, 5), "tcp:203.0.113.10", ...base.slice(6)], /--group: .*not a group PROTO:ADDRESS:PORT/],
    [[...base.slice(0, 7), "2001:db8::5", ...base.slice(8)], /different address families/],
    [[...base, "--weight", "0"], /--weight must be an integer from 1 to 65535/],
  ];
  for (const [args, message] of cases) {
    const r = cli(...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  const shortKey = join(tmp, "short.key");
  writeFileSync(shortKey, "abc");
  const r = cli(...base.slice(0, -1), shortKey);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /a join key is 32-128 hex digits or at least 16 raw bytes/);
});
