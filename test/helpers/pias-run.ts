// `pias run` in a test namespace, for the end-to-end tests that start, reload
// and stop it: started on its "ready" line with its output gathered in `log`,
// stopped with SIGTERM (waiting for its exit).

import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";
import { waitForLine, type Topology } from "./netns.js";

const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");

export class PiasRun {
  /** stdout and stderr since the last start (a test may clear it). */
  log = "";
  proc: ChildProcess | null = null;

  constructor(
    private readonly topo: Topology,
    private readonly ns: string,
    private readonly configPath: string,
  ) {}

  /** Start with `env` added to the environment; resolves with the "ready" line. */
  async start(env: NodeJS.ProcessEnv = {}): Promise<string> {
    this.log = "";
    const proc = this.topo.start(this.ns, [process.execPath, CLI, "run", "--config", this.configPath], { env: { ...process.env, ...env } });
    this.proc = proc;
    proc.stdout!.on("data", (b: Buffer) => (this.log += b.toString()));
    proc.stderr!.on("data", (b: Buffer) => (this.log += b.toString()));
    return waitForLine(proc, /"msg":"ready"/, 30_000);
  }

  /** SIGTERM, and wait for the exit; nothing when it is not running. */
  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await exited;
  }

  /** Resolves once the log matches `re`; throws with the log's end after `timeoutMs`. */
  async waitLog(re: RegExp, timeoutMs = 10_000): Promise<void> {
    const t0 = Date.now();
    while (!re.test(this.log)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`no log line ${re}; log:\n${this.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
