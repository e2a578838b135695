// Keeps `npm run bench` from rotting: the harness runs in quick mode (tiny
// traces, one repetition) as a child process, and its JSON must hold every
// measurement for every trace, with the chart beside it. No timing thresholds:
// figures from a loaded test machine mean nothing.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { CAPTURES_DIR, REPO_ROOT } from "../helpers/paths.js";

const KEYS = ["replay", "hotPath", "model", "tcprewrite", "nodeCopy", "cp"] as const;
const CAPTURES = ["pcapparser__wireshark_samples-test.pcapng", "ppp__example2.pcap", "ppp__tls2.pcap", "ndpi__gnutella.pcap"];
const hasTcprewrite = !spawnSync("tcprewrite", ["-V"]).error;

test("BENCH_QUICK=1 bench/replay.ts measures every peer on every trace and draws the chart", { timeout: 58_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), "pias-bench-smoke-"));
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "bench", "replay.ts")], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 55_000,
    env: { ...process.env, BENCH_QUICK: "1", BENCH_OUT: out },
  });
  assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ""}\n${r.stderr}`);
  assert.match(r.stdout, /\| trace +\| packets \|/, "prints the Markdown tables");

  const json = JSON.parse(readFileSync(join(out, "replay.json"), "utf8"));
  assert.equal(json.options.quick, true);
  assert.ok(json.machine.cpu && json.machine.node);
  const names: string[] = json.traces.map((t: { name: string }) => t.name);
  assert.ok(names.some((n) => /64 B/.test(n)) && names.some((n) => /IMIX/.test(n)), `synthetic traces: ${names.join(", ")}`);
  if (existsSync(CAPTURES_DIR)) {
    const present = CAPTURES.filter((c) => readdirSync(CAPTURES_DIR).includes(c));
    for (const c of present) assert.ok(names.includes(c), `capture ${c} measured`);
  }

  for (const t of json.traces) {
    assert.ok(t.packets > 0 && t.packetBytes > 0, t.name);
    for (const k of KEYS) {
      const m = t.measurements[k];
      assert.ok(m, `${t.name}: ${k} present`);
      if (k === "tcprewrite" && !hasTcprewrite) {
        assert.match(m.skipped, /not installed/);
        continue;
      }
      assert.equal(m.skipped, undefined, `${t.name}: ${k} skipped: ${m.skipped}`);
      for (const f of ["mpps", "gbps", "nsPerPacket", "mppsMin", "mppsMax"]) {
        assert.ok(Number.isFinite(m[f]) && m[f] > 0, `${t.name}: ${k}.${f} = ${m[f]}`);
      }
      assert.ok(m.seconds.samples.length >= 1 && m.seconds.min <= m.seconds.median && m.seconds.median <= m.seconds.max, `${t.name}: ${k} samples`);
      assert.ok(m.packets > 0 && m.packets <= t.packets, `${t.name}: ${k} packets`);
    }
    assert.equal(t.measurements.replay.packets, t.packets);
    assert.equal(t.measurements.hotPath.packets, t.packets);
    assert.ok(t.measurements.replay.peakRssMiB > 0, `${t.name}: replay peak RSS`);
    // the replay child and the in-memory hot path do the same thing to the same packets
    assert.equal(t.checks.agree, true, `${t.name}: replay forwarded ${t.checks.replayForwarded}, hot path ${t.checks.hotPathForwarded}`);
    for (const k of ["replay/nodeCopy", "replay/cp", "hotPath/model"]) assert.ok(t.ratios[k] > 0, `${t.name}: ratio ${k}`);
  }

  const svg = readFileSync(join(out, "replay.svg"), "utf8");
  assert.match(svg, /^<\?xml[^>]*>\s*<svg /);
  assert.match(svg, /<\/svg>\s*$/);
  for (const t of json.traces) assert.ok(svg.includes(t.name.replace(/&/g, "&amp;")), `chart has ${t.name}`);
});
