// A long replay has its buffers on huge pages (src/replay/replay.ts,
// HUGE_BUFFERS); a short one does not. Its own file: AnonHugePages is the
// process's, and khugepaged may collapse other advised memory meanwhile, so
// the short replay is measured first, before anything in the process asked
// for huge pages.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, statSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { DataPlane } from "../../src/core/dataplane.js";
import { validateConfig } from "../../src/config/validate.js";
import { generateTrace, traceConfig } from "../../src/trace/generate.js";
import { replay, replayCapacity } from "../../src/replay/replay.js";
import { STAGE_BYTES } from "../../src/capture/reader.js";
import { addonBuilt, anonHugeBytes, thpOn } from "../helpers/hugepages.js";

const tmp = mkdtempSync(join(tmpdir(), "pias-huge-buffers-"));
const options = { packets: 200000, flows: 20000, sizes: "64" as const, seed: 11 };
const long = join(tmp, "long.pcap");
const short = join(tmp, "short.pcap");
generateTrace({ ...options, out: long });
generateTrace({ ...options, packets: 20000, out: short });
const config = validateConfig(traceConfig(options));

/** Bytes the process gained on huge pages while `input` was replayed through a fresh data plane. */
async function hugeGrowth(input: string): Promise<number> {
  const dp = DataPlane.fromConfig(config, { capacity: replayCapacity(config.capacity, input) });
  assert.equal(dp.hugePages, 0, "tables for 20,000 flows: too small for huge pages of their own");
  const before = anonHugeBytes();
  await replay(dp, { input, output: `${input}.out` });
  const grown = anonHugeBytes() - before;
  dp.counters(); // (dp, and so its memory, lives until here)
  return grown;
}

test("a replay of a capture read ahead has its buffers on huge pages (the process's AnonHugePages grows by them); one read in place does not", async (t) => {
  if (!thpOn || !addonBuilt) return t.skip("transparent huge pages are off or the pias_memory addon is not built");
  assert.ok(statSync(short).size < STAGE_BYTES && statSync(long).size > STAGE_BYTES);
  assert.equal(await hugeGrowth(short), 0, "read in place: no huge pages");
  // staging (2 x 8 MiB, every page written) and the arena at least: several whole 2 MiB pages
  const grown = await hugeGrowth(long);
  assert.ok(grown >= 8 << 20, `read ahead: ${grown >> 20} MiB more on huge pages`);
});
