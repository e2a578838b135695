// Markdown tables for the benchmark reports (pasted into README.md as is).

/** A Markdown table; `align` per column: "l" or "r". */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly ("l" | "r")[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length), 3));
  const pad = (s: string, i: number): string => (align[i] === "r" ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => pad(c ?? "", i)).join(" | ")} |`;
  const sep = `| ${widths.map((w, i) => (align[i] === "r" ? "-".repeat(w - 1) + ":" : "-".repeat(w))).join(" | ")} |`;
  return [line(header), sep, ...rows.map(line)].join("\n");
}

/** 3 significant digits, at most 2 decimals: 0.123, 1.23, 12.3, 123. */
export function num(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return "–";
  if (v === 0) return "0";
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export const int = (v: number): string => Math.round(v).toLocaleString("en-US");
