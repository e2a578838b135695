// A client of BIRD 2's control socket (the protocol birdc speaks), straight
// over the UNIX socket: no birdc process per command. BIRD greets with
// "0001 BIRD 2.0.12 ready."; each command is one line; a reply is lines
// "DDDD-text" (more follow), " text" (continues the previous code) and ends
// with "DDDD text". Codes (BIRD's doc/reply_codes): 0xxx done, 1xxx table
// entry, 2xxx table heading, 8xxx run-time error, 9xxx parse error.
// Commands go one at a time, in the order given. This module only speaks the
// protocol: it never decides what to announce.

import { connect, type Socket } from "node:net";
import { PiasError } from "../errors.js";

/** One line of a reply: its code (inherited by continuation lines) and its text. */
export interface BirdLine {
  readonly code: number;
  readonly text: string;
}

export interface BirdReply {
  /** The code of the last line: 0..999 done, 8000..9999 error. */
  readonly code: number;
  readonly lines: readonly BirdLine[];
}

/** BIRD answered a command with an error (8xxx run time, 9xxx parse), or the socket failed. */
export class BirdError extends PiasError {
  constructor(
    message: string,
    /** The reply code, or 0 when the connection failed. */
    readonly replyCode: number,
  ) {
    super("EBIRD", message);
  }
}

interface Pending {
  readonly command: string;
  readonly lines: BirdLine[];
  readonly resolve: (r: BirdReply) => void;
  readonly reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** A line "DDDD-text" / "DDDD text" / " text"; null for anything else. */
function parseLine(line: string, previous: number): { code: number; text: string; last: boolean } | null {
  const m = /^(\d{4})([ -])(.*)$/.exec(line);
  if (m) return { code: Number(m[1]), text: m[3], last: m[2] === " " };
  if (line.startsWith(" ")) return { code: previous, text: line.slice(1), last: false };
  return null;
}

export class BirdControl {
  private buffer = "";
  private readonly queue: Pending[] = [];
  private current: Pending | null = null;
  private welcome: Pending | null = null;
  private failure: Error | null = null;
  /** "BIRD 2.0.12" from the greeting. */
  version = "";

  private constructor(
    readonly path: string,
    private readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {}

  /** Connect and read BIRD's greeting. Rejects with a BirdError (one line) when nothing answers at `path`. */
  static connect(path: string, timeoutMs = 5000): Promise<BirdControl> {
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      const c = new BirdControl(path, socket, timeoutMs);
      socket.setEncoding("utf8");
      const timer = setTimeout(() => c.fail(new BirdError(`BIRD control socket ${path}: no greeting within ${timeoutMs} ms`, 0)), timeoutMs);
      c.welcome = {
        command: "",
        lines: [],
        resolve: (r) => {
          clearTimeout(timer);
          c.version = /^(BIRD \S+)/.exec(r.lines[0]?.text ?? "")?.[1] ?? r.lines[0]?.text ?? "";
          resolve(c);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      socket.on("data", (chunk: string) => c.receive(chunk));
      socket.on("error", (e: NodeJS.ErrnoException) => c.fail(new BirdError(`BIRD control socket ${path}: ${e.code ?? e.message}`, 0)));
      socket.on("close", () => c.fail(new BirdError(`BIRD control socket ${path}: closed by BIRD`, 0)));
    });
  }

  /** False once the connection failed or was closed: make a new one. */
  get open(): boolean {
    return this.failure === null;
  }

  /**
   * Send one command; resolves with the whole reply when it ends in a 0xxx
   * code, rejects with a BirdError carrying BIRD's message for 8xxx/9xxx.
   */
  command(command: string): Promise<BirdReply> {
    if (/[\r\n]/.test(command)) return Promise.reject(new BirdError(`a BIRD command is one line, got ${JSON.stringify(command)}`, 0));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ command, lines: [], resolve, reject });
      this.next();
    });
  }

  close(): void {
    this.fail(new BirdError(`BIRD control socket ${this.path}: closed`, 0));
  }

  private next(): void {
    if (this.current || this.welcome || this.failure) return;
    const p = this.queue.shift();
    if (!p) return;
    this.current = p;
    p.timer = setTimeout(() => this.fail(new BirdError(`BIRD did not answer "${p.command}" within ${this.timeoutMs} ms`, 0)), this.timeoutMs);
    this.socket.write(`${p.command}\n`);
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) >= 0) {
      const raw = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const p = this.welcome ?? this.current;
      if (raw.startsWith("+")) continue; // spontaneous printout (only after `echo`): not a reply
      const parsed = parseLine(raw, p?.lines.at(-1)?.code ?? 0);
      if (!p || !parsed) {
        this.fail(new BirdError(`BIRD control socket ${this.path}: unexpected line ${JSON.stringify(raw.slice(0, 80))}`, 0));
        return;
      }
      p.lines.push({ code: parsed.code, text: parsed.text });
      if (!parsed.last) continue;
      if (p === this.welcome) this.welcome = null;
      else {
        clearTimeout(p.timer);
        this.current = null;
      }
      if (parsed.code >= 8000) p.reject(new BirdError(`BIRD: ${p.command}: ${parsed.text.trim()} (${parsed.code})`, parsed.code));
      else p.resolve({ code: parsed.code, lines: p.lines });
      this.next();
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of [this.welcome, this.current, ...this.queue.splice(0)]) {
      if (!p) continue;
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.welcome = this.current = null;
    this.socket.destroy();
  }
}

/** A row of `show protocols`. */
export interface ProtocolRow {
  readonly name: string;
  /** "BGP", "Static", "Device", ... */
  readonly proto: string;
  readonly table: string;
  /** "up", "down", "start", "stop". */
  readonly state: string;
  readonly since: string;
  /** For BGP: "Established", "Active", "Connect", ... and the last error, e.g. "Active        Socket: Connection refused". */
  readonly info: string;
}

/** The rows of a `show protocols` reply. */
export function parseProtocols(reply: BirdReply): ProtocolRow[] {
  const rows: ProtocolRow[] = [];
  for (const l of reply.lines) {
    if (l.code !== 1002) continue;
    // since: "04:33:23.640" (iso short) or "2026-12-03 04:33:23" (iso long)
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|\S+)\s*(.*?)\s*$/.exec(l.text);
    if (m) rows.push({ name: m[1], proto: m[2], table: m[3], state: m[4], since: m[5], info: m[6].replace(/\s{2,}/g, " ") });
  }
  return rows;
}

/** "Neighbor address: 10.0.0.1" from `show protocols all NAME`, or null. */
export function neighborAddress(reply: BirdReply): string | null {
  for (const l of reply.lines) {
    const m = /^\s*Neighbor address:\s*(\S+)/.exec(l.text);
    if (m) return m[1].replace(/%.*$/, "");
  }
  return null;
}
