// A replay's output does not depend on how its packets are batched: a small
// capture is replayed in batches of 256 and a large one in batches of 1024
// (src/replay/replay.ts, SMALL_BATCH), and `--batch` picks any size.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { DataPlane } from "../../src/core/dataplane.js";
import { validateConfig } from "../../src/config/validate.js";
import { generateTrace, traceConfig } from "../../src/trace/generate.js";
import { replay, replayCapacity } from "../../src/replay/replay.js";

const tmp = mkdtempSync(join(tmpdir(), "pias-batches-"));
// few flows, so that a batch holds many packets of one flow, its first among them
const options = { packets: 20000, flows: 300, seed: 3, ipv6Share: 0.2 };
const trace = join(tmp, "trace.pcap");
generateTrace({ ...options, out: trace });
const config = validateConfig(traceConfig(options));

for (const reflect of [false, true]) {
  test(`a replay${reflect ? " with --reflect" : ""} emits the same bytes and counts in batches of 1, 7, 256 and 1024 packets`, async () => {
    const outputs: Buffer[] = [];
    const reports: unknown[] = [];
    for (const batch of [1024, 256, 7, 1]) {
      const output = join(tmp, `out-${reflect}-${batch}.pcap`);
      const dp = DataPlane.fromConfig(config, { capacity: replayCapacity(config.capacity, trace) });
      const { seconds, mpps, output: _, ...report } = await replay(dp, { input: trace, output, reflect, batch });
      outputs.push(readFileSync(output));
      reports.push(report);
    }
    assert.ok((reports[0] as { forwarded: number }).forwarded > 0);
    for (let i = 1; i < outputs.length; i++) {
      assert.deepEqual(reports[i], reports[0]);
      assert.ok(outputs[i].equals(outputs[0]), `batches of ${[1024, 256, 7, 1][i]}: other bytes than in batches of 1024`);
    }
  });
}
