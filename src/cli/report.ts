// Human-readable replay summary.

import type { ReplayReport } from "../replay/replay.js";

const num = (n: number): string => n.toLocaleString("en-US");

export function formatReport(r: ReplayReport): string {
  const lines: string[] = [];
  const dropped = Object.values(r.dropped).reduce((a, b) => a + b, 0);
  lines.push(`pias replay ${r.input}${r.output ? ` -> ${r.output}` : ""}`);
  lines.push(`  packets    ${num(r.packets)} in ${r.seconds.toFixed(3)} s (${r.mpps.toFixed(2)} Mpps)`);
  lines.push(`  forwarded  ${num(r.forwarded)}`);
  if (r.reflected) lines.push(`  reflected  ${num(r.reflected)} target replies, reverse-NATed to the clients`);
  if (r.generated) lines.push(`  generated  ${num(r.generated)} ICMP errors (packet too big for the tunnel)`);
  lines.push(`  dropped    ${num(dropped)}`);
  const reasons = Object.entries(r.dropped).sort((a, b) => b[1] - a[1]);
  const width = Math.max(0, ...reasons.map(([k]) => k.length));
  for (const [reason, n] of reasons) lines.push(`    ${reason.padEnd(width)}  ${num(n)}`);
  lines.push(`  flows      ${num(r.flows)} created, ${num(r.liveFlows)} live at the end`);
  const targets = Object.entries(r.targets);
  if (targets.length) {
    lines.push("  targets");
    const tw = Math.max(...targets.map(([k]) => k.length));
    for (const [t, n] of targets) lines.push(`    ${t.padEnd(tw)}  ${num(n)} packets`);
  }
  return lines.join("\n");
}
