// Human-readable replay summary: one screen, whatever the trace (the busiest
// targets by name, the others counted; --json has them all).

import type { ReplayReport } from "../replay/replay.js";

/** A count with thousands separators ("1,234,567"): toLocaleString would load ICU's data, 15 ms of a small replay. */
export const num = (n: number): string => String(n).replace(/\B(?=(\d{3})+$)/g, ",");

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
  // the busiest targets first; the rest in one line (all of them are in --json)
  const targets = Object.entries(r.targets).sort((a, b) => b[1] - a[1]);
  if (targets.length) {
    const shown = targets.slice(0, TARGETS_SHOWN);
    lines.push(targets.length > shown.length ? `  targets (the ${shown.length} busiest of ${num(targets.length)})` : "  targets");
    const tw = Math.max(...shown.map(([k]) => k.length));
    for (const [t, n] of shown) lines.push(`    ${t.padEnd(tw)}  ${num(n)} packets`);
    if (targets.length > shown.length) {
      const rest = targets.slice(shown.length).reduce((a, [, n]) => a + n, 0);
      lines.push(`    ${num(targets.length - shown.length)} more (see --json), ${num(rest)} packets`);
    }
  }
  return lines.join("\n");
}

/** Targets the summary lists by name: it fits a screen whatever the trace. */
const TARGETS_SHOWN = 20;
