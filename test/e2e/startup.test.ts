// `pias run` while it starts: a SIGHUP that arrives before the daemon is up
// (loading the core, opening the TUN device) must not kill it (Node's default
// for SIGHUP is to exit); it is held and the config is reloaded once ready.
// Runs in a network namespace it creates and deletes.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";

const skip = netnsUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");

/** Whether process `pid` has a handler for SIGHUP (bit 1 of SigCgt in /proc/PID/status). */
function catchesSighup(pid: number): boolean {
  try {
    const m = /SigCgt:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m !== null && (BigInt(`0x${m[1]}`) & 1n) !== 0n;
  } catch {
    return false;
  }
}

describe("pias run starting up", { skip, timeout: 60_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-startup-"));
  const config = join(dir, "p.json");

  before(() => {
    topo.addNamespace("p");
    writeFileSync(config, JSON.stringify({
      proxy: { address: "10.255.0.1" },
      capacity: { flows: 65536, groups: 4, targets: 4 },
      daemon: { tunName: "pias0", drainMs: 0 },
      groups: [{ protocol: "udp", address: "198.51.100.10", port: 53, targets: [{ address: "10.20.1.2", port: 53 }] }],
    }));
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a SIGHUP as soon as pias has code running (long before it is ready) is held, not fatal: it starts, reloads once, and stops cleanly", async () => {
    const p = topo.start("p", [process.execPath, CLI, "run", "--config", config]);
    let out = "";
    p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    const t0 = Date.now();
    while (!catchesSighup(p.pid!)) {
      assert.ok(Date.now() - t0 < 20_000, "pias never installed a SIGHUP handler");
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.doesNotMatch(out, /"msg":"ready"/, "the signal must arrive during start-up");
    p.kill("SIGHUP");
    await waitForLine(p, /"msg":"config reloaded"/);
    assert.equal(p.exitCode, null, "still running");
    assert.match(out, /"msg":"ready"/);
    p.kill("SIGTERM");
    const code = await new Promise((r) => p.once("exit", r));
    assert.equal(code, 0);
  });
});
