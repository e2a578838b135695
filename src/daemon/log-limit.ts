// Rate-limited log lines for events a flood can repeat at packet rate (a
// packet to a group no proxy serves, say). The first event of a kind is
// logged at once; later ones within `intervalMs` are only counted, and the
// count goes out as `suppressed` with the next line of that kind, or from
// flush() (called on a timer) once the interval is over, so a flood costs one
// line per kind and interval and the total stays known.
//
// Must never keep per-event state: one entry per kind, and kinds are fixed
// strings in the code.

export type LogLine = (fields: Record<string, unknown>, msg: string) => void;

interface Kind {
  /** ms of the last line written. */
  at: number;
  /** Events since then that wrote no line. */
  suppressed: number;
  /** The last suppressed event's fields and message, for the summary line. */
  fields: Record<string, unknown>;
  msg: string;
}

export class LogLimiter {
  private readonly kinds = new Map<string, Kind>();
  /** Events that wrote no line, over all kinds. */
  suppressedTotal = 0;

  constructor(
    private readonly write: LogLine,
    readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** An event of `kind`: logged now, or counted for the next line of its kind. */
  event(kind: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.now();
    const k = this.kinds.get(kind);
    if (k === undefined) {
      this.kinds.set(kind, { at: now, suppressed: 0, fields, msg });
      this.write(fields, msg);
      return;
    }
    if (now - k.at < this.intervalMs) {
      k.suppressed++;
      k.fields = fields;
      k.msg = msg;
      this.suppressedTotal++;
      return;
    }
    this.emit(k, fields, msg, now);
  }

  /** Write the summary line of every kind whose interval is over and that has suppressed events. */
  flush(): void {
    const now = this.now();
    for (const k of this.kinds.values()) if (k.suppressed > 0 && now - k.at >= this.intervalMs) this.emit(k, k.fields, k.msg, now);
  }

  private emit(k: Kind, fields: Record<string, unknown>, msg: string, now: number): void {
    this.write(k.suppressed > 0 ? { ...fields, suppressed: k.suppressed, intervalMs: this.intervalMs } : fields, msg);
    k.at = now;
    k.suppressed = 0;
  }
}
