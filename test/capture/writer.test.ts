// Where a replay writes: an existing output is replaced or truncated
// (src/capture/writer.ts, openOutput), and either way holds exactly the
// replay's bytes afterwards; the input itself is never an output.

import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, linkSync, lstatSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { DataPlane } from "../../src/core/dataplane.js";
import { validateConfig } from "../../src/config/validate.js";
import { generateTrace, traceConfig } from "../../src/trace/generate.js";
import { REPLACE_FROM } from "../../src/capture/writer.js";
import { replay } from "../../src/replay/replay.js";
import { CaptureFileError } from "../../src/errors.js";

const tmp = mkdtempSync(join(tmpdir(), "pias-writer-"));
const trace = join(tmp, "trace.pcap");
const options = { packets: 2000, flows: 50, seed: 5 };
generateTrace({ ...options, out: trace });
const config = validateConfig(traceConfig(options));

async function replayTo(output: string): Promise<void> {
  await replay(DataPlane.fromConfig(config), { input: trace, output });
}

const expected = join(tmp, "expected.pcap");
await replayTo(expected);
const want = readFileSync(expected);

/** A file of `bytes` bytes that is not a replay's output. */
function existing(path: string, bytes: number): void {
  writeFileSync(path, Buffer.alloc(bytes, 0xa5));
}

/** Replay to `output` (or through it, a link) over `file`, which then holds the replay's bytes: whether it is still the same file. */
async function keptInPlace(file: string, output = file): Promise<boolean> {
  const before = statSync(file).ino;
  await replayTo(output);
  assert.ok(readFileSync(file).equals(want), `${file}: the replay's bytes`);
  return statSync(file).ino === before;
}

test(`an existing output of ${REPLACE_FROM >> 20} MiB or more, ours with one name, is replaced by a new file of its mode holding the replay's bytes`, async () => {
  const out = join(tmp, "big.pcap");
  existing(out, REPLACE_FROM);
  chmodSync(out, 0o640);
  assert.equal(await keptInPlace(out), false, "a new file");
  assert.equal(statSync(out).mode & 0o7777, 0o640, "the old file's mode");
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith("big")), ["big.pcap"], "nothing left beside it");
});

test("an existing output with a second name is truncated in place: both names hold the replay's bytes", async () => {
  const out = join(tmp, "linked.pcap");
  const other = join(tmp, "linked-other.pcap");
  existing(out, REPLACE_FROM);
  linkSync(out, other);
  assert.equal(await keptInPlace(out), true);
  assert.ok(readFileSync(other).equals(want));
});

test(`an existing output under ${REPLACE_FROM >> 20} MiB is truncated in place`, async () => {
  const out = join(tmp, "small.pcap");
  existing(out, 3 * want.length);
  assert.equal(await keptInPlace(out), true);
});

test("an output named by a symbolic link is written through it: the link stays, its target holds the replay's bytes", async () => {
  const target = join(tmp, "through.pcap");
  const link = join(tmp, "via-link.pcap");
  existing(target, REPLACE_FROM);
  symlinkSync(target, link);
  assert.equal(await keptInPlace(target, link), true);
  assert.ok(lstatSync(link).isSymbolicLink());
});

test("an output that is the input, by its name or another, is refused before anything is written: the input stays whole", async () => {
  const input = join(tmp, "input.pcap");
  writeFileSync(input, readFileSync(trace));
  const alias = join(tmp, "input-alias.pcap");
  linkSync(input, alias);
  for (const output of [input, alias, join(tmp, ".", "input.pcap")]) {
    await assert.rejects(replay(DataPlane.fromConfig(config), { input, output }), (e: unknown) => {
      assert.ok(e instanceof CaptureFileError);
      assert.match((e as Error).message, /is the input file/);
      return true;
    });
    assert.ok(readFileSync(input).equals(readFileSync(trace)), `${output}: the input is intact`);
  }
});
