// A replay of a capture larger than one read (8 MiB) reads ahead and writes
// behind on the thread pool (src/replay/replay.ts): its output must be the
// bytes the same replay gives read and written in place, one batch at a time.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Layout } from "../../assembly/shared/abi.js";
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

/** The replay's loop, reading and writing in place. */
function inPlace(output: string, reflect: boolean): number {
  const dp = dataPlane();
  const slots = 1024;
  const arenaBytes = slots * 2048;
  const batch = dp.createBatch(slots, arenaBytes);
  const reflections = reflect ? dp.createBatch(slots, arenaBytes) : undefined;
  const reader = dp.openCaptureReader(trace, true);
  const writer = dp.openCaptureWriter(output, 2 * arenaBytes + 2 * slots * (Layout.HEADROOM + 64) + (1 << 16));
  let packets = 0;
  for (let begun = false; ;) {
    const n = reader.readBatch(batch.desc, slots, batch.arena, arenaBytes);
    if (!begun) { writer.begin(); begun = true; }
    if (n === 0) break;
    packets += n;
    dp.processBatch(batch.desc, n);
    if (reflections) {
      dp.reflectBatch(batch.desc, n, reflections);
      dp.processBatch(reflections.desc, n);
    }
    writer.writeBatch(batch.desc, n, reflections ? reflections.desc : 0);
  }
  reader.close();
  writer.close();
  return packets;
}

for (const reflect of [false, true]) {
  test(`a replay of a capture over ${STAGE_BYTES >> 20} MiB, read ahead and written behind${reflect ? " with --reflect" : ""}, emits the same bytes as read and written in place`, async () => {
    assert.ok(statSync(trace).size > 1.5 * STAGE_BYTES, "the trace spans several reads");
    const ahead = join(tmp, `ahead-${reflect}.pcap`);
    const report = await replay(dataPlane(), { input: trace, output: ahead, reflect });
    const place = join(tmp, `in-place-${reflect}.pcap`);
    assert.equal(report.packets, inPlace(place, reflect));
    assert.equal(report.bytesIn, statSync(trace).size);
    assert.equal(report.bytesOut, statSync(ahead).size);
    assert.ok(readFileSync(ahead).equals(readFileSync(place)), "the same output file");
    assert.ok(report.forwarded > 0 && (!reflect || report.reflected > 0));
  });
}
