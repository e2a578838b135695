// The BGP side of `pias run`: ties the announcer (src/bgp/announcer.ts) to
// the daemon's health checks, reloads and shutdown, and to a BIRD: the one
// pias runs ("managed") or an operator's (external). Every change and every
// second it brings BIRD in line (src/bgp/bird-speaker.ts), watches the
// sessions, and logs one line per state change of a prefix, a session or
// BIRD itself. Nothing BGP does can stop the data plane: a BIRD that is
// missing at run time, refuses its configuration or dies is logged, retried,
// and reported as sessions down; only a managed `bgp` with no BIRD installed
// stops pias at start (prepare()).

import type { Logger } from "pino";
import type { BgpConfig } from "../config/bgp.js";
import type { GroupConfig } from "../config/types.js";
import { ConfigError } from "../errors.js";
import { Announcer, type TargetUp } from "../bgp/announcer.js";
import { managedBirdConfig, neighborProtocol, prefixProtocols, type PrefixState } from "../bgp/bird-config.js";
import type { ProtocolRow } from "../bgp/bird-control.js";
import { ManagedBird, locateBird, type BirdExit } from "../bgp/bird-process.js";
import { BirdSpeaker } from "../bgp/bird-speaker.js";
import { SessionMonitor, type SessionStatus } from "../bgp/sessions.js";

/** How often BIRD is polled (sessions, drift). */
const POLL_MS = 1000;
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;

export interface BgpStatus {
  readonly sessions: readonly SessionStatus[];
  /** Each configured prefix: announced (or graceful) in BIRD right now. */
  readonly prefixes: readonly { prefix: string; announced: boolean }[];
}

/** What the announcer needs from the daemon, read at each decision. */
export interface BgpInputs {
  groups(): readonly GroupConfig[];
  health(): readonly TargetUp[];
}

/** A reload cannot change these in place: throws the one-line ConfigError that rejects it. */
export function assertBgpReload(old: BgpConfig | null, next: BgpConfig | null): void {
  if ((old === null) !== (next === null)) throw new ConfigError("bgp: adding or removing the bgp section needs a restart");
  if (old && next && old.bird !== next.bird) throw new ConfigError("bgp.bird: switching BIRD needs a restart");
}

/** A managed BIRD that failed waits for its restart time: already reported. */
class RestartPending extends Error {
  constructor() {
    super("BIRD is not running (restart pending)");
  }
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class DaemonBgp {
  private readonly announcer = new Announcer();
  private readonly sessions: SessionMonitor;
  private readonly speaker: BirdSpeaker;
  private readonly bird: ManagedBird | null;
  private inputs: BgpInputs | null = null;
  private actual = new Map<string, PrefixState>();
  private timer: NodeJS.Timeout | null = null;
  private tail: Promise<void> = Promise.resolve();
  private queued = false;
  private reconfigure = false;
  private problem: string | null = null;
  private restartAt = 0;
  private restartDelay = RESTART_MIN_MS;
  private stopped = false;

  private constructor(
    private config: BgpConfig,
    private readonly log: Logger,
    bird: ManagedBird | null,
  ) {
    this.bird = bird;
    this.speaker = new BirdSpeaker(bird ? null : config.bird);
    this.sessions = new SessionMonitor(log, Math.max(5000, config.holdTime * 1000));
  }

  /** Check what BGP needs before pias starts (nothing runs yet); throws (one line, naming the package) when a managed BIRD cannot run. */
  static prepare(config: BgpConfig, log: Logger): DaemonBgp {
    if (config.bird !== "managed") return new DaemonBgp(config, log, null);
    const binaries = locateBird();
    let self: DaemonBgp | undefined;
    const bird = new ManagedBird(
      binaries,
      (line) => log.debug({ bird: line }, "bird"),
      (exit) => self?.birdExited(exit),
    );
    self = new DaemonBgp(config, log, bird);
    return self;
  }

  /** The data plane is up: announce what should be, and keep BIRD in line from now on. */
  start(inputs: BgpInputs): Promise<void> {
    this.inputs = inputs;
    this.announcer.update(this.config.announce, inputs.groups(), inputs.health());
    this.timer = setInterval(() => void this.sync(), POLL_MS);
    this.timer.unref();
    return this.sync();
  }

  /** Targets went up or down: decide again. */
  changed(): void {
    if (this.inputs && this.announcer.update(this.config.announce, this.inputs.groups(), this.inputs.health())) void this.sync();
  }

  /** A reload: new prefixes, neighbours or options (the caller checked assertBgpReload first). */
  reload(next: BgpConfig): Promise<void> {
    this.config = next;
    if (this.bird) {
      this.reconfigure = true;
      this.restartAt = 0; // a BIRD that refused the old configuration gets the new one at once
      this.restartDelay = RESTART_MIN_MS;
    }
    if (this.inputs) this.announcer.update(next.announce, this.inputs.groups(), this.inputs.health());
    return this.sync();
  }

  /**
   * SIGTERM: announce with GRACEFUL_SHUTDOWN so routers move traffic away,
   * wait gracefulShutdownMs, withdraw, and stop a managed BIRD.
   */
  async shutdown(): Promise<void> {
    if (this.stopped) return;
    const t0 = Date.now();
    this.announcer.beginShutdown();
    await this.sync();
    await wait(Math.max(0, this.config.gracefulShutdownMs - (Date.now() - t0)));
    this.announcer.withdrawAll("shutting down");
    await this.sync();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.tail;
    this.speaker.close();
    await this.bird?.close();
    this.log.info({}, "bgp stopped");
  }

  status(): BgpStatus {
    return {
      sessions: this.sessions.status(),
      prefixes: this.config.announce.map((a) => ({ prefix: a.prefix, announced: (this.actual.get(a.prefix) ?? "withdrawn") !== "withdrawn" })),
    };
  }

  /** Run one pass after the current one (passes asked for meanwhile are one). */
  private sync(): Promise<void> {
    if (this.queued) return this.tail;
    this.queued = true;
    this.tail = this.tail.then(async () => {
      this.queued = false;
      if (this.stopped) return;
      try {
        await this.pass();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, "bgp internal error");
      }
    });
    return this.tail;
  }

  private async pass(): Promise<void> {
    const wanted = this.announcer.states();
    let rows: ProtocolRow[] = [];
    let failure: string | null = null;
    let applied: Map<string, PrefixState> | null = null;
    try {
      await this.ensureBird(wanted);
      rows = await this.speaker.protocols();
      const result = await this.speaker.apply(wanted, rows);
      applied = result.states;
      if (result.missing.length) {
        const names = result.missing.flatMap((p) => Object.values(prefixProtocols(p)));
        this.report("bgp BIRD lacks pias's protocols", `no ${names.join(", ")}: add them to BIRD (README, "BGP", external mode)`);
      } else {
        this.resolved();
      }
    } catch (err) {
      failure = (err as Error).message;
      if (!(err instanceof RestartPending)) this.report(this.bird ? "bgp BIRD not running" : "bgp BIRD unreachable", failure);
    }
    const neighbors = this.bird
      ? new Map(this.config.neighbors.map((n) => [neighborProtocol(n.address), n.address]))
      : await this.speaker.bgpNeighbors(rows).catch(() => new Map<string, string>());
    this.sessions.observe(failure === null ? rows : [], neighbors, Date.now(), failure ?? undefined);
    this.settle(wanted, applied, failure);
  }

  /** Record what BIRD now does with each prefix; one log line per change. */
  private settle(wanted: ReadonlyMap<string, PrefixState>, applied: Map<string, PrefixState> | null, failure: string | null): void {
    const decisions = this.announcer.decisions();
    for (const prefix of wanted.keys()) {
      const now = applied?.get(prefix) ?? "withdrawn";
      const before = this.actual.get(prefix) ?? "withdrawn";
      if (now === "withdrawn" && !this.config.announce.some((a) => a.prefix === prefix)) {
        this.announcer.forget(prefix);
        this.actual.delete(prefix);
      } else {
        this.actual.set(prefix, now);
      }
      if (now === before) continue;
      const reason = applied ? decisions.get(prefix)?.reason : failure;
      if (now === "announced") this.log.info({ prefix, reason }, "bgp prefix announced");
      else if (now === "graceful") this.log.info({ prefix, reason }, "bgp prefix graceful shutdown");
      else if (this.announcer.shuttingDown) this.log.info({ prefix, reason }, "bgp prefix withdrawn");
      else this.log.warn({ prefix, reason }, "bgp prefix withdrawn");
    }
  }

  /** Managed: start BIRD when it is not running (with backoff), and apply a reloaded configuration. */
  private async ensureBird(wanted: ReadonlyMap<string, PrefixState>): Promise<void> {
    const bird = this.bird;
    if (!bird) return;
    if (!bird.running) {
      // no (re)start while shutting down: there is nothing left to announce
      if (Date.now() < this.restartAt || this.announcer.shuttingDown) throw new RestartPending();
      this.reconfigure = false;
      try {
        this.speaker.adopt(await bird.start(managedBirdConfig(this.config, wanted)));
      } catch (err) {
        this.restartAt = Date.now() + this.restartDelay;
        this.restartDelay = Math.min(RESTART_MAX_MS, this.restartDelay * 2);
        const line = (err as Error).message;
        throw new Error(/:\d+:\d+ /.test(line) ? `BIRD refused the generated configuration: ${line}` : `BIRD did not start: ${line}`);
      }
      this.restartDelay = RESTART_MIN_MS;
      const version = (await this.speaker.connection()).version;
      this.log.info({ pid: bird.pid, socket: bird.socketPath, version, config: bird.configPath }, "bgp BIRD started");
      return;
    }
    if (this.reconfigure) {
      this.reconfigure = false;
      bird.writeConfig(managedBirdConfig(this.config, wanted));
      try {
        await this.speaker.configure(bird.configPath);
        this.log.info({ config: bird.configPath }, "bgp BIRD reconfigured");
      } catch (err) {
        this.log.error({ err: (err as Error).message }, "bgp BIRD refused the new configuration; it keeps the previous one");
      }
    }
  }

  private birdExited(exit: BirdExit): void {
    if (this.stopped) return;
    this.restartAt = Date.now() + this.restartDelay;
    this.log.error({ code: exit.code, signal: exit.signal, last: exit.lastLine, restartInMs: this.restartDelay }, "bgp BIRD exited");
    void this.sync();
  }

  /** Log a problem once, until it changes or goes away. */
  private report(msg: string, err: string): void {
    const key = `${msg}\u0000${err}`;
    if (this.problem === key) return;
    this.problem = key;
    this.log.error({ err, socket: this.speaker.socketPath }, msg);
  }

  private resolved(): void {
    if (this.problem === null) return;
    this.problem = null;
    this.log.info({ socket: this.speaker.socketPath }, "bgp BIRD in line again");
  }
}
