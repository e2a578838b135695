// The daemon's BGP glue with an external BIRD (a real BIRD 2 on the host,
// static protocols only: no session, nothing sent): an unreachable BIRD is
// one log line and the daemon goes on; once BIRD is there the prefixes follow
// the targets' health; a shutdown turns them graceful, waits, withdraws.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { validateConfig } from "../../src/config/validate.js";
import { prefixStatics } from "../../src/bgp/bird-config.js";
import type { TargetUp } from "../../src/bgp/announcer.js";
import { DaemonBgp } from "../../src/daemon/bgp.js";
import { TestBird, birdUnavailable, until } from "../helpers/bird.js";

const skip = birdUnavailable();
const V4 = "203.0.113.0/24";
const V6 = "2001:db8:a::/48";

describe("DaemonBgp with an external BIRD", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "pias-dbgp-"));
  const socket = join(dir, "ext.bird.ctl");
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "debug" }, new Writable({ write: (chunk, _enc, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  const msgs = (msg: string): Record<string, unknown>[] => lines.filter((l) => l.msg === msg);
  const config = validateConfig({
    proxy: { address: "10.255.0.1", address6: "2001:db8:ff::1", anycastPrefixes: [V4, V6] },
    groups: [{ protocol: "tcp", address: "203.0.113.10", port: 80, targets: [{ address: "10.2.0.2", port: 80 }], health: { check: "tcp" } }],
    bgp: { bird: socket, announce: [V4, { prefix: V6, withdrawWhenNoTargets: false }], gracefulShutdownMs: 1200 },
  });
  let health: TargetUp[] = [{ group: "tcp 203.0.113.10:80", target: "10.2.0.2:80", up: true }];
  let bird: TestBird | undefined;
  const bgp = DaemonBgp.prepare(config.bgp!, log);
  after(async () => {
    await bird?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const inBird = async (prefix: string): Promise<string> => {
    const r = await bird!.best(prefix);
    return r === undefined ? "withdrawn" : r.communities.includes("65535:0") ? "graceful" : "announced";
  };

  test("an unreachable BIRD is one log line, however many passes fail; the prefixes count as withdrawn", async () => {
    void bgp.start({ groups: () => config.groups, health: () => health });
    await new Promise((r) => setTimeout(r, 2500)); // three passes
    assert.equal(msgs("bgp BIRD unreachable").length, 1);
    assert.match(String(msgs("bgp BIRD unreachable")[0].err), /ext\.bird\.ctl: ENOENT/);
    assert.deepEqual(bgp.status().prefixes, [{ prefix: V4, announced: false }, { prefix: V6, announced: false }]);
  });

  test("once BIRD is there (with the README snippet) pias announces, and says so", async () => {
    bird = new TestBird(null, "ext", dir, ["router id 10.255.0.1;", "protocol device {}", prefixStatics(V4, "withdrawn"), prefixStatics(V6, "withdrawn")].join("\n"));
    await until("announced in BIRD", async () => ((await inBird(V4)) === "announced" && (await inBird(V6)) === "announced" ? true : undefined), 5000);
    await until("status", async () => (bgp.status().prefixes.every((p) => p.announced) ? true : undefined), 2000);
    assert.equal(msgs("bgp BIRD in line again").length, 1);
    assert.deepEqual(msgs("bgp prefix announced").map((l) => l.prefix).sort(), [V6, V4].sort());
  });

  test("health: the last target down withdraws the IPv4 prefix (one warning with the reason); back up, announced again", async () => {
    health = [{ ...health[0], up: false }];
    bgp.changed();
    await until("withdrawn", async () => ((await inBird(V4)) === "withdrawn" ? true : undefined), 3000);
    assert.equal(await inBird(V6), "announced");
    assert.deepEqual(msgs("bgp prefix withdrawn").map((l) => [l.prefix, l.reason, l.level]), [[V4, "no target of its groups is up", 40]]);
    health = [{ ...health[0], up: true }];
    bgp.changed();
    await until("announced", async () => ((await inBird(V4)) === "announced" ? true : undefined), 3000);
  });

  test("shutdown: graceful (65535:0) at once, withdrawn after gracefulShutdownMs, and BIRD keeps running", async () => {
    const t0 = performance.now();
    const done = bgp.shutdown();
    const gs = await until("graceful", async () => ((await inBird(V4)) === "graceful" && (await inBird(V6)) === "graceful" ? true : undefined), 1000);
    await done;
    const total = performance.now() - t0;
    assert.equal(await inBird(V4), "withdrawn");
    assert.equal(await inBird(V6), "withdrawn");
    assert.ok(gs.ms < 500, `graceful after ${gs.ms} ms`);
    assert.ok(total >= 1200 && total < 3000, `withdrawn after ${total} ms`);
    assert.equal(bird!.process.exitCode, null);
    assert.deepEqual(msgs("bgp prefix graceful shutdown").length, 2);
    assert.ok(msgs("bgp prefix withdrawn").slice(1).every((l) => l.level === 30 && l.reason === "shutting down"));
  });
});
