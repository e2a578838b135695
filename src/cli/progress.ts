// A progress bar on stderr for the long-running commands (gen-trace,
// replay): drawn only when stderr is a terminal, only once the work has taken
// `afterMs`, at most ten times a second, and ended with a newline, so a
// short run or a redirected one prints nothing.

import { performance } from "node:perf_hooks";

const WIDTH = 40;
const REDRAW_MS = 100;

/** Where the bar is drawn: stderr, or a stand-in in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export class ProgressBar {
  private readonly start: number;
  private drawnAt = -Infinity;
  private shown = false;

  constructor(
    private readonly afterMs = 0,
    private readonly stream: ProgressStream = process.stderr,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.start = now();
  }

  /** `done` of `total` units of work; `text` (made only when drawn) follows the percentage (default "done/total"). */
  update(done: number, total: number, text: string | (() => string) = `${done}/${total}`): void {
    if (!this.stream.isTTY) return;
    const now = this.now();
    if (now - this.start < this.afterMs || (now - this.drawnAt < REDRAW_MS && done < total)) return;
    this.drawnAt = now;
    this.shown = true;
    const f = total > 0 ? Math.min(1, done / total) : 1;
    const full = Math.round(f * WIDTH);
    this.stream.write(`\r[${"#".repeat(full)}${".".repeat(WIDTH - full)}] ${(f * 100).toFixed(0).padStart(3)}% ${typeof text === "string" ? text : text()}`);
  }

  /** End the bar's line, if it was drawn. */
  finish(): void {
    if (this.shown) this.stream.write("\n");
    this.shown = false;
  }
}
