// The replay summary and the progress bar: what a terminal shows.

import { test } from "node:test";
import assert from "node:assert/strict";
import { formatReport, num } from "../../src/cli/report.js";
import { ProgressBar } from "../../src/cli/progress.js";
import type { ReplayReport } from "../../src/replay/replay.js";

function report(targets: number): ReplayReport {
  const t: Record<string, number> = {};
  for (let i = 0; i < targets; i++) t[`192.0.2.${i}:80`] = (i * 37) % 1000;
  return {
    input: "in.pcap", output: null, packets: 1000, forwarded: 990, reflected: 0, generated: 0, dropped: { "not-for-proxy": 10 },
    flows: 50, liveFlows: 40, targets: t, bytesIn: 1, bytesOut: 0, seconds: 1, mpps: 0.001,
  };
}

test("the replay summary names the 20 busiest targets, busiest first, and counts the rest (see --json)", () => {
  const text = formatReport(report(1500));
  const lines = text.split("\n");
  assert.ok(lines.length < 40, `${lines.length} lines`);
  const named = lines.filter((l) => /^ {4}192\.0\.2\.\d+:80 /.test(l));
  assert.equal(named.length, 20);
  const counts = named.map((l) => Number(/ ([\d,]+) packets$/.exec(l)![1].replace(/,/g, "")));
  assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
  assert.equal(counts[0], 999);
  assert.match(text, /the 20 busiest of 1,500/);
  assert.match(text, /\n {4}1,480 more \(see --json\), [\d,]+ packets$/);
});

test("a replay with 20 targets or fewer lists them all", () => {
  const text = formatReport(report(3));
  assert.equal(text.split("\n").filter((l) => /^ {4}192\.0\.2\./.test(l)).length, 3);
  assert.doesNotMatch(text, /more \(see --json\)/);
});

/** A terminal stand-in and a clock the test moves. */
function bar(afterMs: number, tty = true): { bar: ProgressBar; out: string[]; at: (ms: number) => void } {
  let t = 0;
  const out: string[] = [];
  return { bar: new ProgressBar(afterMs, { isTTY: tty, write: (s: string) => out.push(s) }, () => t), out, at: (ms) => { t = ms; } };
}

test("the progress bar appears only once the work has taken a second, at most ten times a second, and ends its line", () => {
  const { bar: b, out, at } = bar(1000);
  at(500); b.update(10, 100);
  assert.equal(out.length, 0);
  at(1200); b.update(50, 100);
  assert.equal(out.length, 1);
  assert.match(out[0], /^\r\[#{20}\.{20}\]  50% 50\/100$/);
  at(1250); b.update(60, 100);
  assert.equal(out.length, 1, "redrawn within 100 ms");
  at(1260); b.update(100, 100, "done");
  assert.match(out[1], /100% done$/);
  b.finish();
  assert.equal(out[2], "\n");
});

test("the progress bar draws nothing when stderr is not a terminal or the work ends within its delay", () => {
  const pipe = bar(0, false);
  pipe.at(5000); pipe.bar.update(1, 2); pipe.bar.finish();
  assert.deepEqual(pipe.out, []);
  const quick = bar(1000);
  quick.at(900); quick.bar.update(2, 2); quick.bar.finish();
  assert.deepEqual(quick.out, []);
});

test("counts are grouped by thousands as en-US does, without loading ICU", () => {
  for (const n of [0, 7, 999, 1000, 65536, 1234567, -1234, 12345678901]) assert.equal(num(n), n.toLocaleString("en-US"));
});

test("the progress bar's text is made only when the bar is drawn", () => {
  const { bar: b, out, at } = bar(1000);
  let made = 0;
  const text = () => `${++made} made`;
  at(500); b.update(1, 4, text);
  at(1500); b.update(2, 4, text);
  at(1550); b.update(3, 4, text);
  assert.equal(made, 1, "once: the other updates drew nothing");
  assert.match(out[0], /1 made$/);
});
