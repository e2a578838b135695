// BIRD 2 as a test router: runs `bird -f` (in a namespace of a Topology, or
// on the host), talks to it through pias's own control-socket client, and
// reads its routes (`show route ... all`) into objects the tests can check.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BirdControl, BirdError, type BirdReply } from "../../src/bgp/bird-control.js";
import type { Topology } from "./netns.js";

/** Why BIRD tests cannot run here, or undefined when they can. */
export function birdUnavailable(): string | undefined {
  if (spawnSync("bird", ["--version"]).error) return "BIRD 2 is not installed (Debian package bird2)";
  return undefined;
}

/** One route of `show route ... all`. */
export interface Route {
  readonly prefix: string;
  /** The protocol that brought it (a BGP session's name on a router). */
  readonly proto: string;
  /** The table's best route. */
  readonly best: boolean;
  readonly communities: string[];
  readonly largeCommunities: string[];
  readonly localPref: number | null;
  readonly asPath: string;
}

export function parseRoutes(reply: BirdReply): Route[] {
  const routes: Route[] = [];
  let prefix = "";
  let r: { -readonly [K in keyof Route]: Route[K] } | null = null;
  for (const l of reply.lines) {
    const head = /^(\S+)?\s+(?:unicast|blackhole|unreachable|prohibited)\s+\[(\S+)[^\]]*\](\s+\*)?/.exec(l.text);
    if (head) {
      if (head[1]) prefix = head[1];
      r = { prefix, proto: head[2], best: head[3] !== undefined, communities: [], largeCommunities: [], localPref: null, asPath: "" };
      routes.push(r);
      continue;
    }
    if (!r) continue;
    const attr = /^\s*BGP\.(\w+):\s*(.*)$/.exec(l.text);
    if (!attr) continue;
    const pairs = (s: string): string[] => [...s.matchAll(/\(([\d, ]+)\)/g)].map((m) => m[1].replace(/\s/g, "").replace(/,/g, ":"));
    if (attr[1] === "community") r.communities = pairs(attr[2]);
    else if (attr[1] === "large_community") r.largeCommunities = pairs(attr[2]);
    else if (attr[1] === "local_pref") r.localPref = Number(attr[2]);
    else if (attr[1] === "as_path") r.asPath = attr[2].trim();
  }
  return routes;
}

export class TestBird {
  readonly socket: string;
  readonly process: ChildProcess;
  private control: BirdControl | null = null;
  output = "";

  /** Start BIRD on `config` in namespace `ns` of `topo` (or on the host when topo is null); files go to `dir`. */
  constructor(topo: Topology | null, ns: string, dir: string, config: string) {
    const file = join(dir, `${ns}.bird.conf`);
    this.socket = join(dir, `${ns}.bird.ctl`);
    writeFileSync(file, config);
    const cmd = ["bird", "-f", "-c", file, "-s", this.socket];
    this.process = topo ? topo.start(ns, cmd) : spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (b: Buffer): void => {
      this.output = (this.output + b.toString()).slice(-20_000);
    };
    this.process.stdout?.on("data", keep);
    this.process.stderr?.on("data", keep);
  }

  /** The control connection (waits for BIRD's socket, up to 10 s). */
  async connection(): Promise<BirdControl> {
    const t0 = Date.now();
    while (!this.control?.open) {
      try {
        this.control = await BirdControl.connect(this.socket);
      } catch (err) {
        if (this.process.exitCode !== null || Date.now() - t0 > 10_000) throw new Error(`BIRD did not start: ${(err as Error).message}\n${this.output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return this.control;
  }

  async command(cmd: string): Promise<BirdReply> {
    return (await this.connection()).command(cmd);
  }

  /** The routes for exactly `prefix` in `table`. */
  async routes(prefix: string, table = prefix.includes(":") ? "master6" : "master4"): Promise<Route[]> {
    try {
      return parseRoutes(await this.command(`show route ${prefix} table ${table} all`));
    } catch (err) {
      if (err instanceof BirdError && err.replyCode === 8001) return []; // network not in table
      throw err;
    }
  }

  /** The best route for `prefix` in `table`, or undefined. */
  async best(prefix: string, table?: string): Promise<Route | undefined> {
    return (await this.routes(prefix, table)).find((r) => r.best);
  }

  async stop(): Promise<void> {
    this.control?.close();
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const gone = new Promise((r) => this.process.once("exit", r));
      this.process.kill("SIGTERM");
      await gone;
    }
  }
}

/** Poll `probe` every `everyMs` until it returns a value other than undefined; the time it took, in ms, with the value. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 20): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return { value, ms: performance.now() - t0 };
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Print figures a test measured, and append them to $PIAS_FIGURES (JSON lines) for `npm run bench:failover`. */
export function recordFigures(kind: string, figures: Record<string, unknown>): void {
  // eslint-disable-next-line no-console
  console.log(`${kind} figures: ${JSON.stringify(figures)}`);
  if (process.env.PIAS_FIGURES) appendFileSync(process.env.PIAS_FIGURES, `${JSON.stringify({ kind, figures })}\n`);
}
