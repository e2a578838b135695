// `pias discover` against a proxy's control plane on a UDP socket on loopback.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { once } from "node:events";
import { ControlNode } from "../../src/control/node.js";
import { Authenticator } from "../../src/control/auth.js";
import { sameTa, parseTransportAddress } from "../../src/control/ta.js";
import { REPO_ROOT } from "../helpers/paths.js";

const KEY = Buffer.from("5a".repeat(32), "hex");
const GROUP = parseTransportAddress("udp:203.0.113.10:53");

async function discover(port: number, keyFile: string, ...extra: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), "discover", "--anycast", "127.0.0.1", "--port", String(port), "--group", "udp:203.0.113.10:53", "--key-file", keyFile, ...extra], { cwd: REPO_ROOT });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const [code] = await once(child, "exit");
  return { code, out, err };
}

test("pias discover asks the nearest proxy for k members of a group, excluding a list, and a wrong key gets no answer", async () => {
  const socket = createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
  const port = socket.address().port;
  const node = new ControlNode({
    id: "ap", endpoint: { address: Uint8Array.of(127, 0, 0, 1), port }, clusterKey: new Uint8Array(32).fill(7),
    groupKey: (ta) => (sameTa(ta, GROUP) ? KEY : undefined), seeds: [], now: Date.now,
    send: (to, bytes) => socket.send(bytes, to.port, to.address.join(".")),
  });
  socket.on("message", (msg, r) => node.receive({ address: Uint8Array.from(r.address.split(".").map(Number)), port: r.port }, new Uint8Array(msg)));
  // three targets join (signed with the group's key, as pias join would)
  const target = new Authenticator({ clusterKey: new Uint8Array(32), groupKey: () => KEY, now: Date.now });
  for (const [i, label] of [[1, "eu"], [2, null], [3, "us"]] as const) {
    node.receive({ address: Uint8Array.of(10, 0, 0, i), port: 40000 }, target.seal({ type: "join", ta: GROUP, target: { endpoint: { address: Uint8Array.of(10, 0, 0, i), port: 5353 }, weight: 1, label, aware: false } }));
  }
  assert.equal(node.jap.targetCount, 3);
  const dir = mkdtempSync(join(tmpdir(), "pias-discover-"));
  const keyFile = join(dir, "group.key");
  writeFileSync(keyFile, KEY.toString("hex"));
  const wrongKey = join(dir, "wrong.key");
  writeFileSync(wrongKey, "00".repeat(32));
  try {
    const all = await discover(port, keyFile, "--k", "5");
    assert.equal(all.code, 0, all.err);
    assert.deepEqual(all.out.trim().split("\n").sort(), ["10.0.0.1:5353 eu", "10.0.0.2:5353", "10.0.0.3:5353 us"]);

    const two = await discover(port, keyFile, "--k", "2", "--mode", "random", "--exclude", "10.0.0.1:5353");
    assert.equal(two.code, 0, two.err);
    assert.deepEqual(two.out.trim().split("\n").sort(), ["10.0.0.2:5353", "10.0.0.3:5353 us"]);

    const forged = await discover(port, wrongKey, "--timeout", "500");
    assert.equal(forged.code, 1);
    assert.match(forged.err, /^pias: no answer from 127\.0\.0\.1:\d+ within 500 ms\n$/);
    assert.ok(node.stats().rejected["bad-mac"] >= 1);
  } finally {
    socket.close();
  }
});
