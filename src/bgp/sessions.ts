// BGP session states, from BIRD's `show protocols` rows: up while BIRD says
// "Established". Logs one line when a session comes up, one when it goes
// down, and one when a session has not come up for `patienceMs` (a neighbour
// that does not answer or does not know this proxy), with BIRD's own words.
// It only observes: it never changes a session.

import type { Logger } from "pino";
import type { ProtocolRow } from "./bird-control.js";

interface Session {
  up: boolean;
  /** When the session last went down (or was first seen down). */
  downSince: number;
  /** The "not established" line was logged since it last went down. */
  warned: boolean;
}

export interface SessionStatus {
  /** The neighbour's address. */
  readonly neighbor: string;
  readonly up: boolean;
  /** BIRD's state and info, e.g. "start Active Socket: Connection refused". */
  readonly detail: string;
}

export class SessionMonitor {
  private readonly sessions = new Map<string, Session & { detail: string }>();

  constructor(
    private readonly log: Logger,
    private readonly patienceMs: number,
  ) {}

  /**
   * Take the latest rows. `neighbors` maps the BGP protocols to watch to their
   * neighbour's address; a protocol missing from `rows` counts as down
   * (BIRD not running or not reachable: `why` says so).
   */
  observe(rows: readonly ProtocolRow[], neighbors: ReadonlyMap<string, string>, now: number, why = "no such protocol in BIRD"): void {
    const seen = new Set<string>();
    for (const [name, neighbor] of neighbors) {
      seen.add(neighbor);
      const row = rows.find((r) => r.name === name);
      const up = row !== undefined && row.state === "up" && row.info.startsWith("Established");
      const detail = row ? `${row.state} ${row.info}`.trim() : why;
      let s = this.sessions.get(neighbor);
      if (!s) {
        s = { up: false, downSince: now, warned: false, detail };
        this.sessions.set(neighbor, s);
      }
      s.detail = detail;
      if (up && !s.up) {
        this.log.info({ neighbor }, "bgp session up");
      } else if (!up && s.up) {
        s.downSince = now;
        s.warned = false;
        this.log.warn({ neighbor, bird: detail }, "bgp session down");
      } else if (!up && !s.warned && now - s.downSince >= this.patienceMs) {
        s.warned = true;
        this.log.warn({ neighbor, bird: detail, seconds: Math.round((now - s.downSince) / 1000) }, "bgp session not established");
      }
      s.up = up;
    }
    for (const neighbor of this.sessions.keys()) if (!seen.has(neighbor)) this.sessions.delete(neighbor);
  }

  status(): SessionStatus[] {
    return [...this.sessions].map(([neighbor, s]) => ({ neighbor, up: s.up, detail: s.detail }));
  }
}
