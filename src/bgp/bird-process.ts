// pias's managed BIRD: finds the binary, writes the generated configuration
// into a runtime directory of its own, runs `bird -f` and tells when it exits.
// BIRD must never outlive pias (it would keep attracting traffic to a dead
// proxy), so it is started through `setpriv --pdeathsig SIGTERM`: the kernel
// sends BIRD SIGTERM the moment pias's process ends, however it ends (SIGKILL
// included), and BIRD then closes its sessions, which withdraws the routes at
// once. This module runs the process; it never decides what BIRD announces.

import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { PiasError } from "../errors.js";
import { BirdControl } from "./bird-control.js";

export interface BirdBinaries {
  readonly bird: string;
  readonly setpriv: string;
}

/** BIRD or setpriv is not installed: pias cannot run a managed BIRD. */
export class BirdMissingError extends PiasError {
  constructor(message: string) {
    super("EBIRDMISSING", message);
  }
}

function which(name: string, path: string): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Find `bird` and `setpriv` on PATH; throws a BirdMissingError naming the Debian package to install. */
export function locateBird(path = process.env.PATH ?? ""): BirdBinaries {
  const bird = which("bird", path);
  if (bird === null) {
    throw new BirdMissingError("bgp: no `bird` on PATH: install BIRD 2 (Debian package bird2: apt-get install bird2), or point bgp.bird at the control socket of a running BIRD");
  }
  const setpriv = which("setpriv", path);
  if (setpriv === null) throw new BirdMissingError("bgp: no `setpriv` on PATH (it ties BIRD's life to pias's): install the Debian package util-linux");
  return { bird, setpriv };
}

/** Where managed BIRDs keep their files: systemd's RUNTIME_DIRECTORY, /run/pias as root, else the temporary directory. */
function runtimeBase(): string {
  const base = process.env.RUNTIME_DIRECTORY?.split(":")[0] || (process.getuid?.() === 0 ? "/run/pias" : join(tmpdir(), "pias"));
  mkdirSync(base, { recursive: true, mode: 0o700 });
  return base;
}

/** Remove runtime directories left by a pias that was killed (BIRD removes its socket itself). */
function removeStale(base: string): void {
  for (const name of readdirSync(base)) {
    if (!name.startsWith("bird-")) continue;
    const dir = join(base, name);
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, "pias.pid"), "utf8"));
    } catch {
      continue; // no owner recorded (yet: another pias may be creating it)
    }
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ESRCH") rmSync(dir, { recursive: true, force: true });
    }
  }
}

export interface BirdExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** BIRD's last line of output (its error, when it refused the configuration). */
  readonly lastLine: string;
}

export class ManagedBird {
  private files: { dir: string; config: string; socket: string } | null = null;
  private child: ChildProcess | null = null;
  private lastLine = "";

  constructor(
    private readonly binaries: BirdBinaries,
    /** Each line BIRD writes (its log). */
    private readonly onLine: (line: string) => void,
    /** BIRD exited after it had started (not after stop()). */
    private readonly onExit: (exit: BirdExit) => void,
  ) {}

  /** The runtime directory, created at the first start. */
  private get paths(): { dir: string; config: string; socket: string } {
    if (!this.files) {
      const base = runtimeBase();
      removeStale(base);
      const dir = mkdtempSync(join(base, "bird-"));
      writeFileSync(join(dir, "pias.pid"), String(process.pid));
      this.files = { dir, config: join(dir, "bird.conf"), socket: join(dir, "bird.ctl") };
    }
    return this.files;
  }

  get configPath(): string {
    return this.paths.config;
  }

  get socketPath(): string {
    return this.paths.socket;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Write the configuration BIRD reads at start and on `configure`. */
  writeConfig(text: string): void {
    const tmp = `${this.configPath}.new`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, this.configPath);
  }

  /**
   * Start BIRD on `config` and connect to its control socket. Rejects with a
   * one-line error when BIRD exits first (it refused the configuration) or its
   * socket does not answer within `timeoutMs`.
   */
  async start(config: string, timeoutMs = 10_000): Promise<BirdControl> {
    if (this.child) throw new Error("ManagedBird.start: already running");
    this.writeConfig(config);
    rmSync(this.socketPath, { force: true });
    this.lastLine = "";
    const child = spawn(this.binaries.setpriv, ["--pdeathsig", "SIGTERM", "--", this.binaries.bird, "-f", "-c", this.configPath, "-s", this.socketPath], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    let exited: BirdExit | null = null;
    let started = false;
    let partial = "";
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.trim() === "") continue;
        this.lastLine = line.replace(/^bird: /, "");
        this.onLine(line);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("error", (e) => {
      this.lastLine = e.message;
    });
    child.on("close", (code, signal) => {
      if (partial.trim() !== "") this.lastLine = partial.replace(/^bird: /, "");
      exited = { code, signal, lastLine: this.lastLine };
      if (this.child === child) {
        this.child = null;
        if (started) this.onExit(exited);
      }
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited !== null) throw new PiasError("EBIRD", (exited as BirdExit).lastLine || `BIRD exited (${(exited as BirdExit).signal ?? (exited as BirdExit).code})`);
      if (existsSync(this.socketPath)) {
        try {
          const control = await BirdControl.connect(this.socketPath);
          started = true;
          return control;
        } catch {
          // not listening yet
        }
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new PiasError("EBIRD", `BIRD's control socket ${this.socketPath} did not answer within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stop BIRD (SIGTERM: it closes its sessions, which withdraws its routes; SIGKILL after 3 s). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("close", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await gone;
      clearTimeout(timer);
    }
  }

  /** Stop BIRD and remove the runtime directory. */
  async close(): Promise<void> {
    await this.stop();
    if (this.files) rmSync(this.files.dir, { recursive: true, force: true });
    this.files = null;
  }
}
