// A replay of a capture larger than one read (8 MiB) reads ahead and writes
// behind on the thread pool (src/replay/replay.ts): its output must be the
// bytes the same replay gives read and written in place (`overlap: false`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { DataPlane } from "../../src/core/dataplane.js";
import { loadConfig } from "../../src/config/load.js";
import { replay, replayCapacity } from "../../src/replay/replay.js";
import { STAGE_BYTES } from "../../src/capture/reader.js";
import { REPO_ROOT } from "../helpers/paths.js";

const tmp = mkdtempSync(join(tmpdir(), "pias-overlap-"));
const trace = join(tmp, "trace.pcap");
const config = join(tmp, "trace.json");
// 64-byte frames, 81 bytes a record: about twice the read size
execFileSync(process.execPath, [join(REPO_ROOT, "dist", "src", "cli", "pias.cjs"), "gen-trace", "--out", trace, "--packets", "200000",
  "--flows", "20000", "--sizes", "64", "--seed", "11", "--config-out", config], { stdio: "ignore" });

function dataPlane(): DataPlane {
  const c = loadConfig(config);
  return DataPlane.fromConfig(c, { capacity: replayCapacity(c.capacity, trace) });
}

for (const reflect of [false, true]) {
  test(`a replay of a capture over ${STAGE_BYTES >> 20} MiB, read ahead and written behind${reflect ? " with --reflect" : ""}, emits the same bytes as read and written in place`, async () => {
    assert.ok(statSync(trace).size > 1.5 * STAGE_BYTES, "the trace spans several reads");
    const ahead = join(tmp, `ahead-${reflect}.pcap`);
    const report = await replay(dataPlane(), { input: trace, output: ahead, reflect });
    const place = join(tmp, `in-place-${reflect}.pcap`);
    const inPlace = await replay(dataPlane(), { input: trace, output: place, reflect, overlap: false });
    assert.equal(report.packets, inPlace.packets);
    assert.equal(report.bytesIn, statSync(trace).size);
    assert.equal(report.bytesOut, statSync(ahead).size);
    assert.ok(readFileSync(ahead).equals(readFileSync(place)), "the same output file");
    assert.ok(report.forwarded > 0 && (!reflect || report.reflected > 0));
  });
}
