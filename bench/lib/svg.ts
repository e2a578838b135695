// A hand-written SVG chart of grouped horizontal bars on a log scale, with
// min-max whiskers: one group per trace, one bar per measurement. No
// dependency; the output is a standalone SVG document.

export interface Series {
  key: string;
  label: string;
  color: string;
}

export interface Bar {
  series: string;
  /** Median value; null when the measurement is missing (skipped). */
  value: number | null;
  min?: number;
  max?: number;
  /** Shown after the value, e.g. "(first 20,480 packets)". */
  note?: string;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
  unit: string;
  series: readonly Series[];
  groups: readonly BarGroup[];
}

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const tick = (v: number): string => String(+v.toPrecision(3));
const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2));

export function barChart(o: ChartOptions): string {
  const W = 980;
  const LEFT = 180;
  const RIGHT = 210;
  const BAR = 13;
  const GAP = 3;
  const GROUP_HEAD = 22;
  const GROUP_GAP = 12;
  const colors = new Map(o.series.map((s) => [s.key, s]));
  const values = o.groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.min, b.max])).filter((v): v is number => v != null && v > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(values.length ? Math.min(...values) : 0.1)));
  const hi = Math.pow(10, Math.ceil(Math.log10(values.length ? Math.max(...values) : 10)));
  const plotW = W - LEFT - RIGHT;
  const x = (v: number): number => LEFT + (plotW * (Math.log10(Math.max(v, lo)) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo) || 1);

  const legendRows = Math.ceil(o.series.length / 3);
  const top = 56 + legendRows * 18 + 24;
  let y = top;
  const body: string[] = [];
  for (const g of o.groups) {
    body.push(`<text x="12" y="${y + 15}" class="group">${esc(g.label)}</text>`);
    y += GROUP_HEAD;
    for (const b of g.bars) {
      const s = colors.get(b.series);
      if (!s) continue;
      body.push(`<text x="${LEFT - 8}" y="${y + BAR - 3}" class="label" text-anchor="end">${esc(s.label)}</text>`);
      if (b.value == null || !(b.value > 0)) {
        body.push(`<text x="${LEFT + 4}" y="${y + BAR - 3}" class="value">${esc(b.note ?? "not measured")}</text>`);
      } else {
        const w = Math.max(1, x(b.value) - LEFT);
        body.push(`<rect x="${LEFT}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${s.color}"><title>${esc(`${s.label}: ${fmt(b.value)} ${o.unit}`)}</title></rect>`);
        let end = LEFT + w;
        if (b.min != null && b.max != null && b.max > b.min) {
          const x0 = x(b.min);
          const x1 = x(b.max);
          const m = y + BAR / 2;
          body.push(`<path d="M${x0.toFixed(1)} ${m}H${x1.toFixed(1)}M${x0.toFixed(1)} ${m - 4}V${m + 4}M${x1.toFixed(1)} ${m - 4}V${m + 4}" class="whisker"/>`);
          end = Math.max(end, x1);
        }
        const text = `${fmt(b.value)}${b.note ? ` ${b.note}` : ""}`;
        body.push(`<text x="${(end + 5).toFixed(1)}" y="${y + BAR - 3}" class="value">${esc(text)}</text>`);
      }
      y += BAR + GAP;
    }
    y += GROUP_GAP;
  }
  const bottom = y;
  const H = bottom + 40;

  const axis: string[] = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const k of [1, 2, 5]) {
      const v = d * k;
      if (v > hi * 1.0001) break;
      const xv = x(v).toFixed(1);
      axis.push(`<line x1="${xv}" y1="${top - 6}" x2="${xv}" y2="${bottom}" class="${k === 1 ? "grid" : "grid minor"}"/>`);
      if (k === 1 || (hi / lo <= 1000 && k !== 1)) {
        axis.push(`<text x="${xv}" y="${bottom + 16}" class="tick" text-anchor="middle">${tick(v)}</text>`);
      }
    }
  }
  axis.push(`<text x="${LEFT + plotW / 2}" y="${bottom + 34}" class="tick" text-anchor="middle">${esc(o.unit)} (log scale; whiskers: slowest to fastest repetition)</text>`);

  const legend = o.series.map((s, i) => {
    const lx = 12 + (i % 3) * 300;
    const ly = 56 + Math.floor(i / 3) * 18;
    return `<rect x="${lx}" y="${ly}" width="12" height="12" fill="${s.color}"/><text x="${lx + 18}" y="${ly + 10}" class="label">${esc(s.label)}</text>`;
  });

  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 17px; font-weight: 600; }
  .subtitle { font-size: 12px; fill: #555; }
  .group { font-size: 13px; font-weight: 600; }
  .label, .value { font-size: 11px; fill: #222; }
  .tick { font-size: 11px; fill: #555; }
  .grid { stroke: #ccc; stroke-width: 1; }
  .minor { stroke: #eee; }
  .whisker { stroke: #000; stroke-width: 1; fill: none; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="24" class="title">${esc(o.title)}</text>
${o.subtitle ? `<text x="12" y="42" class="subtitle">${esc(o.subtitle)}</text>` : ""}
${legend.join("\n")}
${axis.join("\n")}
${body.join("\n")}
</svg>
`;
}
